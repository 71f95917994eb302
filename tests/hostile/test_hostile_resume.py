"""Issue 17, items 6, 15 and 17 (manifest): --resume refuses --device and --init that differ from the run's;
a second driver on a run directory fails at once, naming the holder (two real processes; kill -9 frees it);
the manifest keeps the command that started the run and records every resume."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import asdict
from pathlib import Path

import pytest
from hostile_util import assert_one_line_error

from benchmark.runner import RunConfig
from benchmark.store import RunStore

ROOT = Path(__file__).resolve().parents[2]


def _manifest_only_run(tmp_path, models, variants=None, device="auto"):
    """A run directory with just a manifest (enough for --resume's checks, which come before anything else)."""
    cfg = RunConfig(models=models, variants=variants or {}, device=device)
    run = tmp_path / "run"
    RunStore(run).write_manifest({"config": asdict(cfg), "command": ["benchmark", "run"]})
    return run


@pytest.fixture()
def no_data_read(monkeypatch):
    def too_late(*a, **k):
        raise AssertionError("the data was read before --resume's options were checked")

    monkeypatch.setattr("benchmark.runner.open_dataset", too_late)


def test_resume_refuses_another_device(cli, tmp_path, no_data_read):
    run = _manifest_only_run(tmp_path, ["ast_tiny"], device="cpu")
    code, _, err = cli("run", "--resume", run, "--device", "cuda", "--no-progress")
    assert_one_line_error(code, err, "--device (the run's: cpu)", "differ")


def test_resume_refuses_another_checkpoint(cli, tmp_path, no_data_read):
    ckpt = tmp_path / "a.npz"
    run = _manifest_only_run(tmp_path, ["ast_tiny"],
                             variants={"ast_tiny": {"model": "ast_tiny", "params": {"init": str(ckpt)}}})
    code, _, err = cli("run", "--resume", run, "--init", tmp_path / "b.npz", "--no-progress")
    assert_one_line_error(code, err, f"--init (the run's: {ckpt})", "differ")
    # a run started without a checkpoint cannot get one on resume either
    run2 = tmp_path / "plain"
    shutil.copytree(_manifest_only_run(tmp_path / "x", ["ast_tiny"]), run2)
    code, _, err = cli("run", "--resume", run2, "--init", ckpt, "--no-progress")
    assert_one_line_error(code, err, "--init (the run's: none)")
    # a run without a neural model: --init applies to nothing, and says so
    run3 = _manifest_only_run(tmp_path / "y", ["ridge"])
    code, _, err = cli("run", "--resume", run3, "--init", ckpt, "--no-progress")
    assert_one_line_error(code, err, "--init applies to neural models")


def test_resume_with_the_runs_own_device_goes_on(clean_run, cli, tmp_path):
    run = shutil.copytree(clean_run, tmp_path / "run")
    code, _, err = cli("run", "--resume", run, "--device", "auto", "--no-progress")
    assert code == 0, err


def test_manifest_keeps_the_original_command_and_lists_the_resumes(clean_run, cli, tmp_path):
    run = shutil.copytree(clean_run, tmp_path / "run")
    original = json.loads((run / "manifest.json").read_text())["command"]
    for jobs in ("1", "2"):
        code, _, err = cli("run", "--resume", run, "--jobs", jobs, "--no-progress")
        assert code == 0, err
    m = json.loads((run / "manifest.json").read_text())
    assert m["command"] == original
    assert [r["command"][-3:] for r in m["resumes"]] == [["--jobs", "1", "--no-progress"],
                                                         ["--jobs", "2", "--no-progress"]]
    assert m["resumed"] == m["resumes"][-1]["time"]


HOLD = """
import sys, time
from benchmark.store import RunStore
store = RunStore(sys.argv[1])  # kept: the lock lives as long as the store's open lock file
store.acquire_lock(["benchmark", "run", "--resume", sys.argv[1]])
print("locked", flush=True)
time.sleep(120)
"""


def test_a_second_driver_fails_at_once_naming_the_holder_and_kill_9_frees_it(clean_run, tmp_path):
    run = shutil.copytree(clean_run, tmp_path / "run")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(run)], stdout=subprocess.PIPE, text=True, env=env)
    try:
        assert holder.stdout.readline().strip() == "locked"
        cmd = [sys.executable, "-m", "benchmark.cli", "run", "--resume", str(run), "--no-progress"]
        t0 = time.perf_counter()
        second = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120)
        assert_one_line_error(second.returncode, second.stderr, f"run directory '{run}' is in use by pid "
                              f"{holder.pid}", "benchmark run --resume", "since")
        assert "run directory:" not in second.stdout  # refused before the plan, the data and the features
        assert time.perf_counter() - t0 < 60
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    # The kernel released the lock with the killed process: the next driver gets in and finishes the run.
    third = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert third.returncode == 0, third.stderr
    assert "resuming: 16 of 16 jobs done" in third.stdout


def test_two_runners_in_one_process_take_turns(clean_run, tmp_path):
    """The lock is held from prepare() to the end of run(): a second driver in the same process is refused
    while the first holds it, and gets in after."""
    from benchmark.errors import ConfigError
    from benchmark.runner import Runner, load_config

    run = shutil.copytree(clean_run, tmp_path / "run")
    first = Runner(load_config(run), run, progress=False)
    first.store.acquire_lock(["first"])
    with pytest.raises(ConfigError, match=f"in use by pid {os.getpid()} .* \\(first\\)"):
        Runner(load_config(run), run, progress=False).run()
    first.close()
    assert Runner(load_config(run), run, progress=False).run()["resumed"] == 16


def test_resume_refuses_a_run_whose_stored_folds_differ_from_the_splits_folds_now(clean_run, cli, tmp_path):
    """A run made when its split gave other folds (a lopo run of 22 folds, from before the two score
    renderings became one unit) must not be finished on today's folds: its finished jobs were scored on others."""
    import pandas as pd

    run = shutil.copytree(clean_run, tmp_path / "run")
    folds = pd.read_parquet(run / "folds.parquet")
    # The old code's folds: the last fold's test performer split into two folds (one more fold).
    last = folds["fold"].max()
    test = folds[(folds["fold"] == last) & (folds["role"] == "test") & (folds["seed"] == 0)]
    moved = test["sample_id"].iloc[: len(test) // 2]
    extra = folds[(folds["fold"] == last) & (folds["seed"] == 0)].copy()
    extra["fold"] = last + 1
    extra.loc[(extra["role"] == "test") & ~extra["sample_id"].isin(moved), "role"] = "train"
    extra = extra[~((extra["role"] == "train") & extra["sample_id"].isin(moved))]
    old = pd.concat([folds, extra], ignore_index=True)
    old.to_parquet(run / "folds.parquet", index=False)
    before = {p.name: p.read_bytes() for p in [run / "folds.parquet", run / "manifest.json"]}
    jobs_before = sorted(p.name for p in (run / "jobs").iterdir())
    code, _, err = cli("run", "--resume", run, "--no-progress")
    assert_one_line_error(code, err, "folds.parquet", "differ from the run's", "fold hash",
                          f"seed 0: {last + 2} folds stored, {last + 1} now", "start a new run")
    assert {p.name: p.read_bytes() for p in [run / "folds.parquet", run / "manifest.json"]} == before
    assert sorted(p.name for p in (run / "jobs").iterdir()) == jobs_before
    # The same run with its own folds resumes (the check compares the assignment, not the file's row order).
    folds.sample(frac=1.0, random_state=0).to_parquet(run / "folds.parquet", index=False)
    code, _, err = cli("run", "--resume", run, "--no-progress")
    assert code == 0, err
    m = json.loads((run / "manifest.json").read_text())
    assert m["fold_hash"] == RunStore(run).read_folds().assignment_hash() and len(m["fold_hash"]) == 64
