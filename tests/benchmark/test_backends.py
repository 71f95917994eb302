"""Backends: a real Dask LocalCluster on loopback gives the serial run's tables; a dead worker's job is retried."""

import numpy as np
import pandas as pd
import pytest

from benchmark.errors import ConfigError
from benchmark.runner import RunConfig, Runner
from benchmark.store import RunStore

distributed = pytest.importorskip("distributed", reason="dask backends need: pip install '.[dask]'")


def tables(run_dir):
    """Metric rows and predictions of a run in a canonical order, minus what may differ (run id, timings)."""
    rows, preds = RunStore(run_dir).read_jobs()
    rows = rows.drop(columns=["run_id", "fit_seconds"]).sort_values(["model", "seed", "fold", "metric", "target"])
    preds = preds.sort_values(["model", "seed", "fold", "sample_id", "target"])
    return rows.reset_index(drop=True), preds.reset_index(drop=True)


@pytest.fixture()
def config(fake_data_dir, tmp_path):
    def make(models, **kw):
        return RunConfig(models=models, data_dir=str(fake_data_dir), cache_dir=str(tmp_path / "cache"), **kw)
    return make


def test_dask_cluster_and_joblib_processes_equal_a_serial_run(config, tmp_path):
    models = ["mean", "ridge", "ensemble_mean"]
    Runner(config(models, members=["mean", "ridge"], seeds=[0, 1]), tmp_path / "serial", progress=False).run()
    # A real scheduler and two workers on 127.0.0.1 (threads keep the test fast on 2 cores; worker
    # processes are tested below), reached as --backend dask --scheduler tcp://... would reach a cluster.
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False, protocol="tcp://",
                                  host="127.0.0.1", dashboard_address=None) as cluster:
        cfg = config(models, members=["mean", "ridge"], seeds=[0, 1], backend="dask",
                     scheduler=cluster.scheduler_address)
        Runner(cfg, tmp_path / "dask", progress=False).run()
    # and joblib with two worker processes (loky), in dependency waves
    Runner(config(models, members=["mean", "ridge"], seeds=[0, 1], jobs=2), tmp_path / "loky", progress=False).run()
    ra, pa = tables(tmp_path / "serial")
    assert len(ra) == 3 * 2 * 4 * 19 * 6 and (ra["status"] == "ok").all()
    for other in ("dask", "loky"):
        rb, pb = tables(tmp_path / other)
        pd.testing.assert_frame_equal(ra, rb, check_exact=True, obj=other)
        pd.testing.assert_frame_equal(pa, pb, check_exact=True, obj=other)


def check_all_ok(run_dir, counts):
    assert counts["ok"] == 4 and counts["failed"] == 0
    rows, preds = RunStore(run_dir).read_jobs()
    assert (rows["status"] == "ok").all() and preds.groupby("sample_id").size().eq(19).all()
    assert np.isfinite(preds["y_pred"]).all()


@pytest.mark.parametrize("workers", [1, 2])
def test_worker_killed_mid_job_is_retried(config, tmp_path, workers):
    """dask-local: a LocalCluster of worker processes; the first fit SIGKILLs its worker.

    With one worker, the dead worker held the only copy of the run's inputs: they must be recomputed, not lost
    (scattered inputs were forgotten with it, and every job was cancelled as "already forgotten").
    """
    from tests.benchmark import faulty  # noqa: F401  (registers kills_worker_once)

    marker = tmp_path / "killed-once"
    cfg = config(["kills_worker_once"], variants={"kills_worker_once": {
        "model": "kills_worker_once", "params": {"marker": str(marker)}}}, backend="dask-local", jobs=workers)
    counts = Runner(cfg, tmp_path / "run", progress=False).run()
    assert marker.exists()  # one worker really died mid-job ...
    check_all_ok(tmp_path / "run", counts)  # ... and its job was rerun


def test_job_cancelled_by_the_scheduler_is_resubmitted(config, tmp_path):
    """A job whose future the scheduler cancels (forgets) is submitted again, not recorded as failed."""
    from tests.benchmark import faulty  # noqa: F401  (registers cancels_itself_once)

    marker = tmp_path / "cancelled-once"
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=False, protocol="tcp://",
                                  host="127.0.0.1", dashboard_address=None) as cluster:
        cfg = config(["cancels_itself_once"], variants={"cancels_itself_once": {
            "model": "cancels_itself_once", "params": {"marker": str(marker)}}}, backend="dask",
            scheduler=cluster.scheduler_address)
        counts = Runner(cfg, tmp_path / "run", progress=False).run()
    assert marker.read_text().startswith("job-cancels_itself_once")  # a job's own task was cancelled ...
    check_all_ok(tmp_path / "run", counts)  # ... and it ran again


def test_backend_options_are_checked():
    from benchmark.backends import make_backend

    with pytest.raises(ConfigError, match="did you mean 'dask'"):
        make_backend("dsk")
    with pytest.raises(ConfigError, match="needs --scheduler"):
        make_backend("dask")
    with pytest.raises(ConfigError, match="--scheduler is for --backend dask"):
        make_backend("joblib", scheduler="tcp://127.0.0.1:8786")
