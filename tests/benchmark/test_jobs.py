"""Planning: jobs as data, split seed and model seed apart, members before their ensembles."""

import pytest

from benchmark.errors import ConfigError
from benchmark.jobs import plan, waves
from benchmark.store import JobKey


def test_plain_grid_is_model_x_seed_x_fold():
    jobs = plan(["mean", "rf"], [0, 1], {0: 3, 1: 2})
    assert len(jobs) == 2 * (3 + 2)
    assert all(j.model_seed == j.seed and not j.deps and not j.inner for j in jobs)
    assert len(waves(jobs)) == 1


def test_ensemble_reads_members_of_the_same_fold_and_seed():
    jobs = plan(["ensemble_mean"], [0], {0: 2}, members=["ridge", "rf"])
    by_key = {j.key: j for j in jobs}
    ens = by_key[JobKey("ensemble_mean", 0, 1)]
    assert ens.deps == (JobKey("ridge", 0, 1), JobKey("rf", 0, 1))
    assert not any(by_key[d].inner for d in ens.deps)  # a mean needs no inner predictions
    first, second = waves(jobs)
    assert {j.model for j in first} == {"ridge", "rf"} and {j.model for j in second} == {"ensemble_mean"}


def test_stacker_members_write_inner_predictions():
    jobs = plan(["rf", "stack"], [0], {0: 2}, members=["ridge", "rf"])
    assert {j.model for j in jobs if j.inner} == {"ridge", "rf"}
    assert len([j for j in jobs if j.model == "rf"]) == 2  # rf planned once, shared by the stacker


def test_seed_bag_varies_the_model_seed_under_fixed_folds():
    variants = {"bag3": {"model": "bag", "params": {"member": "rf", "n_seeds": 3}}}
    jobs = plan(["bag3"], [7], {7: 1}, variants=variants)
    members = [j for j in jobs if j.model == "rf"]
    assert sorted(j.model_seed for j in members) == [7, 1007, 2007]
    assert {(j.seed, j.fold) for j in members} == {(7, 0)}  # same split seed, same fold
    assert sum(j.key.reported for j in members) == 1  # the plain rf job is reused as the first member
    bag = next(j for j in jobs if j.model == "bag3")
    assert bag.param_dict == {"member": "rf", "n_seeds": 3} and len(bag.deps) == 3


def test_an_ensemble_of_ensembles_is_refused():
    with pytest.raises(ConfigError, match="itself an ensemble"):
        plan(["ensemble_mean"], [0], {0: 1}, members=["stack"])
