"""Ensembles reuse their members' fold predictions; stacking never sees the test fold."""

import numpy as np
import pandas as pd
import pytest

import benchmark.execute as execute_mod
from benchmark.runner import RunConfig, Runner
from benchmark.store import JobKey, RunStore


@pytest.fixture()
def config(fake_data_dir, tmp_path):
    def make(models, **kw):
        return RunConfig(models=models, data_dir=str(fake_data_dir), cache_dir=str(tmp_path / "cache"), **kw)
    return make


def wide(preds: pd.DataFrame) -> pd.DataFrame:
    return preds.pivot(index="sample_id", columns="target", values="y_pred").sort_index()


def test_ensemble_mean_averages_stored_member_predictions_without_refitting(config, tmp_path, monkeypatch):
    fitted = []
    real = execute_mod._fit_predict

    def counting(spec, params, seed, *a):
        fitted.append(spec.name)
        return real(spec, params, seed, *a)

    monkeypatch.setattr(execute_mod, "_fit_predict", counting)
    cfg = config(["ensemble_mean"], members=["mean", "ridge"])
    assert cfg.models == ["ensemble_mean"]
    runner = Runner(cfg, tmp_path / "run", progress=False)
    runner.run()
    # Members are reported too; validating the config resolves them without changing it.
    assert runner.config.run_models == ["mean", "ridge", "ensemble_mean"] and runner.config.models == ["ensemble_mean"]
    assert runner.models == ["mean", "ridge", "ensemble_mean"]
    assert sorted(fitted) == sorted(["mean"] * 4 + ["ridge"] * 4 + ["ensemble_mean"] * 4)
    store = RunStore(tmp_path / "run")
    for k in range(4):
        members = [wide(store.read_job_preds(JobKey(m, 0, k))) for m in ("mean", "ridge")]
        ens = wide(store.read_job_preds(JobKey("ensemble_mean", 0, k)))
        np.testing.assert_array_equal(ens.to_numpy(), (members[0].to_numpy() + members[1].to_numpy()) / 2)
    # the ensemble is a model of the run like any other
    from reports.summary import summary_table

    table = summary_table(tmp_path / "run", n_resamples=50).set_index("model")
    assert table.loc["ensemble_mean", "complete"] and np.isfinite(table.loc["ensemble_mean", "pooled_r2"])
    # rerunning the ensemble alone reuses the members' stored predictions: no member is refitted
    fitted.clear()
    for k in range(4):
        (tmp_path / "run" / "jobs" / f"{JobKey('ensemble_mean', 0, k).name}.rows.parquet").unlink()
    Runner(runner.config, tmp_path / "run", progress=False).run()
    assert fitted == ["ensemble_mean"] * 4


def test_stacking_weights_never_see_the_test_fold(config, tmp_path):
    cfg = config(["stack"], members=["ridge", "rf"], variants={})
    run = tmp_path / "run"
    runner = Runner(cfg, run, progress=False)
    runner.run()
    store = RunStore(run)
    folds = store.read_folds()
    weights = {}
    for k in range(4):
        key = JobKey("stack", 0, k)
        w = np.asarray(store.read_job_params(key)["fitted"]["weights"])
        assert w.shape == (2, 19) and (w >= 0).all() and (w.sum(axis=0) > 0).all()
        weights[k] = w
        # members' inner predictions cover exactly the training fold: no test segment
        for m in ("ridge", "rf"):
            inner = store.read_inner(JobKey(m, 0, k))
            assert set(inner["sample_id"]) == set(folds.ids(0, k, "train"))
    before = {k: wide(store.read_job_preds(JobKey("stack", 0, k))) for k in range(4)}
    # poison every member's test-fold predictions, then refit the stacker alone
    for m in ("ridge", "rf"):
        for k in range(4):
            key = JobKey(m, 0, k)
            poisoned = store.read_job_preds(key).assign(y_pred=lambda d: 1e6 * (1 + d["y_pred"]))
            store.write_job(key, store.read_job_rows(key), preds=poisoned, inner=store.read_inner(key),
                            params=store.read_job_params(key))
    for k in range(4):
        (run / "jobs" / f"{JobKey('stack', 0, k).name}.rows.parquet").unlink()
    Runner(runner.config, run, progress=False).run()
    for k in range(4):
        np.testing.assert_array_equal(np.asarray(store.read_job_params(JobKey("stack", 0, k))["fitted"]["weights"]),
                                      weights[k])
        after = wide(store.read_job_preds(JobKey("stack", 0, k)))
        assert not np.allclose(after.to_numpy(), before[k].to_numpy())  # the poison did reach the test side


def test_seed_bag_averages_model_seeds_under_the_same_folds(config, tmp_path):
    variants = {"bag3": {"model": "bag", "params": {"member": "rf", "n_seeds": 3}},
                "rf": {"model": "rf", "params": {"n_estimators": 20}}}
    run = tmp_path / "run"
    Runner(config(["bag3"], variants=variants), run, progress=False).run()
    store = RunStore(run)
    for k in range(4):
        members = [wide(store.read_job_preds(JobKey("rf", 0, k, m))).to_numpy() for m in (0, 1000, 2000)]
        assert not np.array_equal(members[0], members[1])  # different model seeds
        bag = wide(store.read_job_preds(JobKey("bag3", 0, k))).to_numpy()
        np.testing.assert_allclose(bag, np.mean(members, axis=0), rtol=0, atol=1e-12)
        assert store.read_job_params(JobKey("rf", 0, k, 1000))["model_seed"] == 1000
    # only the plain rf job (model seed = split seed) is reported
    rows, _ = store.read_jobs()
    assert set(rows["model"]) == {"rf", "bag3"} and len(rows.drop_duplicates(["model", "seed", "fold"])) == 8
