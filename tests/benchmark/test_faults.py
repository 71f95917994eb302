"""Faults: the driver killed outright (SIGKILL) at a random moment, then --resume, gives the tables of an
uninterrupted run; two runs sharing one feature cache do not corrupt it."""

import os
import random
import signal
import subprocess
import sys
import time

import pandas as pd

from benchmark.cli import main
from benchmark.store import RunStore


def tables(run_dir):
    rows, preds = RunStore(run_dir).read_jobs()
    rows = rows.drop(columns=["run_id", "fit_seconds"]).sort_values(["model", "seed", "fold", "metric", "target"])
    preds = preds.sort_values(["model", "seed", "fold", "sample_id", "target"])
    return rows.reset_index(drop=True), preds.reset_index(drop=True)


def run_args(fake_data_dir, cache, out):
    return ["run", "--no-progress", "--models", "mean,ridge,stack", "--members", "mean,ridge", "--seeds", "0,1",
            "--data-dir", str(fake_data_dir), "--cache-dir", str(cache), "--out", str(out)]


def test_sigkill_of_the_driver_then_resume_equals_an_uninterrupted_run(fake_data_dir, tmp_path, capsys):
    cache = tmp_path / "cache"
    assert main(run_args(fake_data_dir, cache, tmp_path / "full")) == 0  # also warms the feature cache
    [full] = list((tmp_path / "full").iterdir())
    n_jobs = len(RunStore(full).job_keys())
    # kill -9 the driver once a random number of jobs is on disk, or at a random moment while writing them
    rng = random.Random()
    stop_after = rng.randint(1, n_jobs - 1)
    extra_delay = rng.uniform(0.0, 0.3)
    proc = subprocess.Popen([sys.executable, "-m", "benchmark.cli", *run_args(fake_data_dir, cache, tmp_path / "k")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    run = None
    while proc.poll() is None and time.monotonic() < deadline:
        dirs = list((tmp_path / "k").glob("*")) if (tmp_path / "k").exists() else []
        run = dirs[0] if dirs else None
        if run is not None and len(list((run / "jobs").glob("*.rows.parquet"))) >= stop_after:
            time.sleep(extra_delay)
            break
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert run is not None, "the driver never created its run directory"
    where = f"killed after >= {stop_after} of {n_jobs} jobs (+{extra_delay:.2f}s)"
    done_before = len(RunStore(run).job_keys())
    capsys.readouterr()
    assert main(["run", "--no-progress", "--resume", str(run)]) == 0, where
    out = capsys.readouterr().out
    # only the unfinished jobs were recomputed
    assert f"{n_jobs - done_before} run" in out or done_before == n_jobs, (where, out)
    (ra, pa), (rb, pb) = tables(full), tables(run)
    pd.testing.assert_frame_equal(ra, rb, check_exact=True, obj=where)
    pd.testing.assert_frame_equal(pa, pb, check_exact=True, obj=where)


def test_two_runs_sharing_one_cache_do_not_corrupt_it(fake_data_dir, tmp_path):
    cache = tmp_path / "cache"
    args = ["run", "--no-progress", "--models", "mean", "--data-dir", str(fake_data_dir), "--cache-dir", str(cache)]
    procs = [subprocess.Popen([sys.executable, "-m", "benchmark.cli", *args, "--out", str(tmp_path / f"r{i}")],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT) for i in range(2)]
    outs = [p.communicate(timeout=300)[0].decode() for p in procs]
    assert all(p.returncode == 0 for p in procs), outs
    # every entry both wrote reads back (checksummed), and a third run is served entirely from the cache
    from features.cache import Cache

    assert all(r["entries"] > 0 for r in Cache(cache).info())
    third = subprocess.run([sys.executable, "-m", "benchmark.cli", *args, "--out", str(tmp_path / "r3")],
                           capture_output=True, text=True, timeout=300)
    assert third.returncode == 0 and "24 cached" in third.stdout, third.stdout + third.stderr
    [a], [b] = (list((tmp_path / f"r{i}").iterdir()) for i in range(2))
    pd.testing.assert_frame_equal(tables(a)[1], tables(b)[1], check_exact=True)
