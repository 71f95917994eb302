"""D4, D8 (run store): a full disk while writing a job leaves no temporary file and one line; a corrupt
predictions file is not 'done' and --resume repairs it; results do not depend on --jobs; compare accepts
runs whose folds are identical whatever the options' spelling."""

from __future__ import annotations

import errno
import os

import numpy as np
import pandas as pd
import pytest
from hostile_util import assert_one_line_error, assert_same_results, run_tables

import benchmark.store as store_mod
from benchmark.execute import fit_threads
from benchmark.store import RunStore
from models import MODELS


@pytest.fixture()
def base(fake_data_dir, tmp_path):
    return ["--data-dir", fake_data_dir, "--cache-dir", tmp_path / "cache", "--no-progress"]


def only_run(folder):
    [run] = list(folder.iterdir())
    return run


@pytest.mark.parametrize("fail_at", [1, 9])
def test_full_disk_while_writing_a_job_then_resume(base, cli, tmp_path, monkeypatch, clean_run, fail_at):
    """An injected ENOSPC on the n-th rename (no tmpfs here): one line, no .tmp- left, --resume completes."""
    assert cli("features", "build", *base[:4])[0] == 0  # warm the feature cache: only run files are written below
    real = os.replace
    calls = {"n": 0}

    def replace(src, dst):
        calls["n"] += 1
        if calls["n"] == fail_at:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(src, dst)

    monkeypatch.setattr(store_mod.os, "replace", replace)
    code, _, err = cli("run", "--models", "mean,ridge", "--seeds", "0,1", *base, "--out", tmp_path / "full")
    run = only_run(tmp_path / "full")
    assert not [p for p in run.rglob("*") if ".tmp-" in p.name]
    monkeypatch.setattr(store_mod.os, "replace", real)
    if RunStore(run).exists:
        assert_one_line_error(code, err, "disk is full", f"--resume {run}")
        code, _, err = cli("run", "--resume", run, "--no-progress")
    else:  # the manifest itself could not be written: nothing to resume, and the message does not say so
        assert_one_line_error(code, err, "disk is full")
        assert "--resume" not in err
        code, _, err = cli("run", "--models", "mean,ridge", "--seeds", "0,1", *base, "--out", tmp_path / "again")
        run = only_run(tmp_path / "again")
    assert code == 0, err
    assert_same_results(clean_run, run)


DAMAGE = {"garbage": lambda raw: b"not parquet", "truncated": lambda raw: raw[: len(raw) // 2],
          "empty": lambda raw: b"", "zeroed_tail": lambda raw: raw[:-12] + bytes(12)}


def test_corrupt_predictions_files_are_recomputed_by_resume(cli, tmp_path, clean_run):
    import shutil

    run = shutil.copytree(clean_run, tmp_path / "copy")
    store = RunStore(run)
    keys = store.job_keys()[: len(DAMAGE)]
    for key, damage in zip(keys, DAMAGE.values(), strict=True):
        path = store._job_path(key, "preds")
        path.write_bytes(damage(path.read_bytes()))
        assert not store.is_done(key), key
    code, out, err = cli("run", "--resume", run, "--no-progress")
    assert code == 0, err
    assert f"{len(DAMAGE)} run" in out
    assert all(store.is_done(k) for k in keys)
    assert_same_results(clean_run, run)


def test_corrupt_manifest_and_folds_are_one_line(cli, tmp_path, clean_run):
    import shutil

    run = shutil.copytree(clean_run, tmp_path / "copy")
    (run / "folds.parquet").write_bytes(b"junk")
    code, _, err = cli("report", run, "--no-plots", "--no-html", "--format", "md")
    assert_one_line_error(code, err, "folds.parquet")
    (run / "manifest.json").write_text("{not json")
    code, _, err = cli("run", "--resume", run, "--no-progress")
    assert_one_line_error(code, err, "manifest.json")


def test_classical_models_fit_single_threaded_whatever_jobs():
    """D8: the BLAS pool a classical job fits with does not depend on --jobs (so neither do its bits)."""
    assert fit_threads(MODELS.get("ridge"), 1) == fit_threads(MODELS.get("ridge"), 8) == 1


@pytest.mark.slow
def test_results_are_bit_identical_across_jobs(base, cli, tmp_path):
    """D8: ridge (BLAS) and the ensembles give the same bits with --jobs 1 and --jobs 2."""
    runs = []
    for jobs in ("1", "2"):
        code, _, err = cli("run", "--models", "ridge,stack", "--members", "mean,ridge", *base, "--jobs", jobs,
                           "--out", tmp_path / f"j{jobs}")
        assert code == 0, err
        runs.append(only_run(tmp_path / f"j{jobs}"))
    assert_same_results(*runs)


def test_compare_accepts_identical_folds_spelled_differently(base, cli, tmp_path):
    """D8: the excerpt split's default n_splits and the same number written out are the same folds."""
    for name, extra in (("a", []), ("b", ["--n-splits", "4"])):
        code, _, err = cli("run", "--models", "ridge", "--split", "excerpt", *base, *extra,
                           "--out", tmp_path / name)
        assert code == 0, err
    code, out, err = cli("compare", only_run(tmp_path / "a"), only_run(tmp_path / "b"), "--n-resamples", "50")
    assert code == 0, err
    code, _, err = cli("run", "--models", "mean", "--split", "excerpt", *base, "--n-splits", "3",
                       "--out", tmp_path / "c")
    assert code == 0, err
    code, _, err = cli("compare", only_run(tmp_path / "a"), only_run(tmp_path / "c"), "--n-resamples", "50")
    assert_one_line_error(code, err, "fold assignments differ")


def test_is_done_reads_every_column(clean_run, tmp_path):
    """A predictions file whose y_pred column cannot be read is not done, even if sample_id reads back."""
    import shutil

    import pyarrow as pa
    import pyarrow.parquet as pq

    run = shutil.copytree(clean_run, tmp_path / "copy")
    store = RunStore(run)
    key = store.job_keys()[0]
    path = store._job_path(key, "preds")
    df = pd.read_parquet(path).drop(columns=["y_pred"])
    pq.write_table(pa.Table.from_pandas(df, preserve_index=False), path)
    assert not store.is_done(key)
    rows, preds = run_tables(run)
    assert np.isfinite(preds["y_true"]).all()
