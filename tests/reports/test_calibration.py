"""Calibration of the report's tests on the split designs (the simulation package behind scripts/calibration.py).

Small fast simulations on a synthetic layout; the rules docs/calibration.md
reports as calibrated must stay near alpha, and the ones it flags as liberal
must stay liberal (so the simulation can fail in both directions).
"""

import json
from pathlib import Path

import numpy as np
import pytest

from simulation.designs import DESIGNS, Layout, folds_of, synthetic_layout
from simulation.engine import CLUSTER, LEARNER, NAIVE, PERM, fit_scale, rates_of, toy_reps

STORED = Path(__file__).resolve().parents[2] / "reports" / "calibration.json"


@pytest.fixture(scope="module")
def layout():
    return synthetic_layout(n_performers=14, n_passages=30)


def test_permutation_and_cluster_interval_hold_under_the_sharp_predictor_null(layout):
    reps = toy_reps(DESIGNS["lopo"], layout, "predictor null", 60, seed=0, ratio_scale=1.0, n_resamples=99)
    rates = rates_of(reps, (CLUSTER, PERM))
    effect = rates_of(toy_reps(DESIGNS["lopo"], layout, "effect", 30, seed=0, ratio_scale=1.0, n_resamples=99,
                               noise=3.0), (CLUSTER, PERM))
    for rule in (CLUSTER, PERM):
        # 60 reps: a calibrated test's rate lies in [0, 0.15] with probability > 0.99.
        assert rates[rule].rate <= 0.15, rule
        assert effect[rule].rate > rates[rule].rate + 0.3, rule


def test_stored_factor_stays_calibrated_on_real_lopo(real_dataset):
    """The factor reports/calibration.json stores for lopo, on fresh repetitions of the real LOPO design:
    a drift of the test (or of the report code it runs through) out of range fails here."""
    from splits.registry import performer_units

    stored = json.loads(STORED.read_text())
    scale = stored["designs"]["lopo"]["ratio_scale"]
    meta = real_dataset.meta
    piece = meta["piece"].astype(str).to_numpy()
    layout = Layout(performer_units(meta).astype(str), meta["excerpt"].astype(str).to_numpy(), piece,
                    piece + "_" + meta["player"].astype(str).to_numpy())
    reps = toy_reps(DESIGNS["lopo"], layout, "learner null", 120, seed=7, ratio_scale=scale, n_resamples=0)
    # 120 reps: a test with rate 0.05 lands in [0, 0.117] with probability > 0.99.
    assert rates_of(reps, [LEARNER])[LEARNER].rate <= 0.117
    effect = toy_reps(DESIGNS["lopo"], layout, "effect", 30, seed=7, ratio_scale=scale, n_resamples=0, noise=3.0)
    assert rates_of(effect, [LEARNER])[LEARNER].rate > 0.3


def test_fitted_factor_is_calibrated_on_fresh_repetitions(layout):
    """On a small synthetic LOPO layout: fit the factor, then judge it on other repetitions."""
    design = DESIGNS["lopo"]
    first = toy_reps(design, layout, "learner null", 200, seed=0, ratio_scale=1.0, n_resamples=0)
    scale = fit_scale(first, design)
    assert 0.0 < scale < 20.0
    fresh = toy_reps(design, layout, "learner null", 120, seed=1000, ratio_scale=scale, n_resamples=0)
    rates = rates_of(fresh, [LEARNER, NAIVE])
    assert rates[LEARNER].rate <= 0.117
    # Deterministic learners: the learner t is the corrected t, the seed variance being zero.
    assert rates[LEARNER].rate == rates[NAIVE].rate


def test_the_stored_calibration_is_keyed_by_design():
    stored = json.loads(STORED.read_text())
    assert stored["version"] == 2 and stored["band"] == [0.02, 0.08]
    for name, d in stored["designs"].items():
        assert set(d["key"]) == {"split", "n_folds", "n_seeds", "n_units"} and d["key"]["split"] == name
    assert stored["designs"]["lopo"]["key"]["n_units"] == 21
    assert stored["designs"]["percepiano_performer4"]["few"]


@pytest.mark.real_calibration
def test_the_stored_lopo_calibration_gives_one_model_seed_of_a_randomized_learner_no_learner_number():
    """The independent check against the file the report reads: under LOPO (21 folds, 21 units), two randomized
    learners with one model seed each get no learner-level number, and the cell says why; two deterministic
    learners with one seed get theirs (the toy null backs them)."""
    from reports.calibrated import STORE, RunKey, learner_withheld

    entry = STORE["designs"]["lopo"]
    key = RunKey("lopo", entry["key"]["n_folds"], 1, entry["key"]["n_units"], seeded=False)
    assert (key.n_folds, key.n_units) == (21, 21)
    for fam in ("tabular", "neural"):
        why, need = learner_withheld(key, (fam, fam))
        k = entry["learner"]["min_seeds"].get(fam)
        if k is None:  # no calibrated k at all: withheld as uncalibrated, never printed
            assert why.startswith("not calibrated for this design"), why
        else:  # one seed cannot show the between-seed variance: a stochastic family needs two or more
            assert k >= 2 and need == k and why == f"needs >= {k} model seeds"
    assert learner_withheld(key, ("deterministic", "deterministic")) == ("", 1)
    assert entry["learner"]["calibrated"]


@pytest.mark.parametrize("design, attr, n_folds", [("piece", "piece", None), ("kfold_grouped", "performance", 5)])
def test_grouped_designs_keep_their_unit_on_one_side(design, attr, n_folds):
    """piece and kfold_grouped are simulated with the splits' own groups: no unit on both sides of a fold."""
    layout = synthetic_layout()
    units = getattr(layout, attr)
    for seed in (0, 1):
        folds = folds_of(DESIGNS[design], layout, seed)
        assert len(folds) == (n_folds or np.unique(units).size)
        for tr, te in folds:
            assert not set(units[tr]) & set(units[te])
        assert np.array_equal(np.sort(np.concatenate([te for _, te in folds])), np.arange(units.size))
    assert DESIGNS[design].unit == {"piece": "pieces", "kfold_grouped": "performances"}[design]
    np.testing.assert_array_equal(layout.units(DESIGNS[design].unit), units)
