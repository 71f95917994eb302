"""The run store: the one reader and writer of the run-directory layout."""

import numpy as np
import pandas as pd
import pytest

from benchmark.errors import ConfigError
from benchmark.store import PRED_COLUMNS, ROW_COLUMNS, Folds, JobKey, RunStore


def _rows(key, status="ok"):
    return pd.DataFrame([{"run_id": "r", "model": key.model, "split": "lopo", "seed": key.seed, "fold": key.fold,
                          "target": "t0", "metric": "pearson", "value": 0.5, "n_train": 3, "n_test": 1,
                          "fit_seconds": 0.1, "status": status, "error": None if status == "ok" else "boom"}],
                        columns=ROW_COLUMNS)


def _preds(key, value=1.0):
    return pd.DataFrame([{"sample_id": "a", "performer": "1", "piece": "p", "model": key.model, "seed": key.seed,
                          "fold": key.fold, "target": "t0", "y_true": 0.0, "y_pred": value}], columns=PRED_COLUMNS)


def test_job_names_keep_the_old_layout_and_set_model_seeds_apart():
    assert JobKey("rf", 0, 3).name == "rf__seed0__fold003"
    assert JobKey("rf", 0, 3, 0).name == "rf__seed0__fold003"  # model seed = split seed: the old name
    bag = JobKey("rf", 0, 3, 1000)
    assert bag.name == "rf__seed0__mseed1000__fold003" and not bag.reported and bag.mseed == 1000
    for key in (JobKey("lgbm_all", 2, 11), bag, JobKey("a__b", 1, 0)):
        assert JobKey.parse(key.name) == JobKey(key.model, key.seed, key.fold,
                                                 None if key.reported else key.model_seed)
    assert JobKey.parse("rf__seed0__fold003.tmp-abc") is None


def test_job_is_done_only_when_rows_and_predictions_read_back(tmp_path):
    store = RunStore(tmp_path)
    store.create()
    key = JobKey("rf", 0, 0)
    assert not store.is_done(key)
    store.write_job(key, _rows(key), preds=_preds(key), params={"n_estimators": 3})
    assert store.is_done(key) and not store.is_done(key, inner=True)
    assert store.read_job_params(key) == {"n_estimators": 3}
    # a torn predictions file (a killed writer of another tool): not done, and left out of the reports
    (tmp_path / "jobs" / f"{key.name}.preds.parquet").write_bytes(b"PAR1 torn")
    assert not store.is_done(key)
    assert store.read_jobs()[0].empty
    # a failed job keeps its traceback, and is not done
    bad = JobKey("ridge", 0, 0)
    store.write_job(bad, _rows(bad, "failed"), traceback="Traceback...\nValueError: boom")
    assert not store.is_done(bad) and "boom" in store.read_traceback(bad)
    # rerun ok: the old traceback goes
    store.write_job(bad, _rows(bad), preds=_preds(bad))
    assert store.is_done(bad) and store.read_traceback(bad) is None


def test_temporary_files_are_never_read_and_are_cleaned(tmp_path):
    store = RunStore(tmp_path)
    store.create()
    key = JobKey("rf", 0, 0)
    store.write_job(key, _rows(key), preds=_preds(key))
    # what a writer killed mid-write leaves behind
    stale = tmp_path / "jobs" / "rf__seed0__fold001.rows.parquet.tmp-0123"
    stale.write_bytes(b"half")
    assert store.job_keys() == [key]
    store.create()
    assert not stale.exists()


def test_unreported_jobs_stay_out_of_the_tables(tmp_path):
    store = RunStore(tmp_path)
    store.create()
    plain, member = JobKey("rf", 0, 0), JobKey("rf", 0, 0, 1000)
    store.write_job(plain, _rows(plain), preds=_preds(plain, 1.0))
    store.write_job(member, _rows(member), preds=_preds(member, 2.0))
    assert store.job_keys() == [plain]
    assert set(store.job_keys(reported_only=False)) == {plain, member}
    rows, preds = store.read_jobs()
    assert len(rows) == 1 and preds["y_pred"].tolist() == [1.0]
    assert store.read_job_preds(member)["y_pred"].tolist() == [2.0]


def test_read_needs_a_manifest_and_a_finished_job(tmp_path):
    store = RunStore(tmp_path / "run")
    with pytest.raises(ConfigError, match="not a run directory"):
        store.read()
    store.write_manifest({"run_id": "run"})
    store.create()
    with pytest.raises(ConfigError, match="no finished job"):
        store.read()


def test_folds_round_trip_positions_and_equality(tmp_path):
    ids = np.array(["a", "b", "c", "d"])
    groups = np.array(["g1", "g1", "g2", "g2"])
    folds = {0: [(np.array([2, 3]), np.array([0, 1])), (np.array([0, 1]), np.array([2, 3]))]}
    f = Folds.from_indices(ids, groups, folds)
    store = RunStore(tmp_path)
    store.write_folds(f)
    back = store.read_folds()
    assert back.seeds == [0] and back.n_folds(0) == 2 and back.has_groups
    assert back.same_as(f, 0)
    tr, te = back.positions(0, 1, ids[::-1])  # positions in any order of ids
    assert sorted(ids[::-1][tr]) == ["a", "b"] and sorted(ids[::-1][te]) == ["c", "d"]
    moved = Folds(back.frame.assign(fold=back.frame["fold"].where(back.frame["sample_id"] != "a", 1)))
    assert not moved.same_as(f, 0)


def test_reports_read_the_collected_tables_only_while_they_are_current(tmp_path):
    """metrics.parquet / predictions.parquet are what a report reads when they are newer than every job
    file and hold the same jobs; a job rewritten (or added) after the collection sends it to the job files."""
    import os

    store = RunStore(tmp_path)
    store.write_manifest({"run_id": "run"})
    store.create()
    keys = [JobKey("rf", 0, 0), JobKey("rf", 0, 1), JobKey("ridge", 0, 0)]
    for i, key in enumerate(keys):
        store.write_job(key, _rows(key), preds=_preds(key, float(i)))
    old = 1_000_000_000_000_000_000
    for p in (tmp_path / "jobs").iterdir():
        os.utime(p, ns=(old, old))
    contents = store.collect(keys + [JobKey("rf", 0, 0, 1000)])  # an unreported member job is left out
    assert contents.failed == [] and sorted(contents.preds["y_pred"]) == [0.0, 1.0, 2.0]
    assert store._read_collected(store.job_keys()) is not None
    # The collected tables are read: poison them to see it, then restore.
    metrics = tmp_path / RunStore.METRICS
    good = pd.read_parquet(metrics)
    good.assign(value=9.0).to_parquet(metrics, index=False)
    assert (store.read().rows["value"] == 9.0).all()
    good.to_parquet(metrics, index=False)
    # A job rewritten after the collection (a resume): its file is newer, the job files are the truth.
    store.write_job(keys[0], _rows(keys[0]), preds=_preds(keys[0], 7.0))
    assert store._read_collected(store.job_keys()) is None
    assert 7.0 in store.read().preds["y_pred"].tolist()
    # A job the collection does not hold: not current either, even with older files.
    store.collect(keys)
    extra = JobKey("lgbm", 0, 0)
    store.write_job(extra, _rows(extra), preds=_preds(extra, 5.0))
    os.utime(store._job_path(extra, "rows"), ns=(old, old))
    os.utime(store._job_path(extra, "preds"), ns=(old, old))
    assert store._read_collected(store.job_keys()) is None
    assert 5.0 in store.read().preds["y_pred"].tolist()
