"""Issue 17, items 9 and 10 (store side): a neural job is done only when its fitted weights and its params read
back, so --resume repairs a damaged state.npz or params.json; a full disk while writing the weights leaves no
temporary file and one line naming the file and the resume command."""

from __future__ import annotations

import errno
import shutil

import numpy as np
import pytest
from hostile_util import assert_one_line_error, assert_same_results

import benchmark.store as store_mod
from benchmark.cli import main
from benchmark.store import RunStore


def _bitflip(raw: bytes) -> bytes:
    mid = len(raw) // 2  # inside an array's data: only the zip CRC tells
    return raw[:mid] + bytes([raw[mid] ^ 0xFF]) + raw[mid + 1:]


# Each damage on its own job of one run copy; one --resume repairs them all.
DAMAGE = {
    ("state", "truncated"): lambda p: p.write_bytes(p.read_bytes()[: p.stat().st_size // 2]),
    ("state", "garbage"): lambda p: p.write_bytes(b"not an npz file" * 10),
    ("state", "bitflip"): lambda p: p.write_bytes(_bitflip(p.read_bytes())),
    ("state", "missing"): lambda p: p.unlink(),
    ("params", "truncated"): lambda p: p.write_bytes(p.read_bytes()[: p.stat().st_size // 2]),
    ("params", "garbage"): lambda p: p.write_bytes(b"\xff\xfe garbage"),
    ("params", "not_an_object"): lambda p: p.write_text("[1, 2]"),
    ("params", "missing"): lambda p: p.unlink(),
}


def test_damaged_state_or_params_of_a_neural_job_is_recomputed_by_resume(neural_env, tmp_path, capsys):
    _, _, _, clean = neural_env
    run = shutil.copytree(clean, tmp_path / "copy")
    store = RunStore(run)
    keys = store.job_keys()
    assert len(keys) == len(DAMAGE) == 8
    for key in keys:  # every job of the finished run stored its weights, named in its params
        assert store.is_done(key)
        assert store.read_job_params(key)["state"] == f"{key.name}.state.npz"
    for key, ((kind, _), damage) in zip(keys, DAMAGE.items(), strict=True):
        damage(store._job_path(key, kind))
        assert not store.is_done(key), (key, kind)
    capsys.readouterr()
    assert main(["run", "--resume", str(run), "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert f"jobs: {len(DAMAGE)} run, 0 resumed" in out, out
    clean_store = RunStore(clean)
    for key in keys:
        assert store.is_done(key)
        got, want = store.read_state(key), clean_store.read_state(key)
        assert sorted(got) == sorted(want)
        for name in want:  # the recomputed weights are the same bits (one seed, one thread)
            np.testing.assert_array_equal(got[name], want[name])
        assert store.read_job_params(key)["params"] == clean_store.read_job_params(key)["params"]
    assert_same_results(clean, run)


def test_damaged_state_and_params_are_named_with_the_resume_hint(neural_env, tmp_path):
    from benchmark.errors import DataError

    _, _, _, clean = neural_env
    run = shutil.copytree(clean, tmp_path / "copy")
    store = RunStore(run)
    key = store.job_keys()[0]
    DAMAGE[("state", "truncated")](store._job_path(key, "state"))
    DAMAGE[("params", "garbage")](store._job_path(key, "params"))
    with pytest.raises(DataError, match=rf"{key.name}.state.npz are damaged.*--resume {run}"):
        store.read_state(key)
    with pytest.raises(DataError, match=rf"{key.name}.params.json is damaged.*--resume {run}"):
        store.read_job_params(key)


def test_a_run_from_before_weights_were_kept_stays_done(neural_env, tmp_path):
    """Old neural jobs stored no state and no marker: they are finished, not recomputed."""
    _, _, _, clean = neural_env
    run = shutil.copytree(clean, tmp_path / "copy")
    store = RunStore(run)
    key = store.job_keys()[0]
    params = store.read_job_params(key)
    del params["state"]
    store_mod.atomic_json(params, store._job_path(key, "params"))
    store._job_path(key, "state").unlink()
    assert store.is_done(key)


@pytest.mark.parametrize("partial", [True, False])
def test_full_disk_while_writing_a_state_leaves_no_tmp_and_one_line(neural_env, tmp_path, monkeypatch, capsys,
                                                                     partial):
    """ENOSPC inside np.savez (after some bytes, or at once): no .tmp- file, the path and --resume named."""
    data, cache, study, clean = neural_env
    real = np.savez

    def full(fh, **arrays):
        if partial:
            real(fh, **{k: arrays[k] for k in list(arrays)[:1]})  # a part of the file made it to disk
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(store_mod.np, "savez", full)
    out = tmp_path / "runs"
    capsys.readouterr()
    code = main(["run", "--no-progress", "--study", str(study), "--data-dir", str(data), "--cache-dir", str(cache),
                 "--out", str(out)])
    err = capsys.readouterr().err
    [run] = list(out.iterdir())
    assert not [p for p in run.rglob("*") if ".tmp-" in p.name]
    assert_one_line_error(code, err, "disk is full", ".state.npz", f"--resume {run}")
    monkeypatch.setattr(store_mod.np, "savez", real)
    assert main(["run", "--resume", str(run), "--no-progress"]) == 0
    assert_same_results(clean, run)


def test_epoch_budget_script_reads_what_every_neural_job_stored(neural_env):
    """scripts/epoch_budget.py (docs/benchmarks.md's epoch-cap table) on the tiny run: 2 epochs with patience 2
    cannot stop early, so all 8 jobs stopped at the cap."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[2] / "scripts" / "epoch_budget.py"
    spec = importlib.util.spec_from_file_location("epoch_budget", path)
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    _, _, _, run = neural_env
    jobs = script.job_table(run)
    assert len(jobs) == 8 and set(jobs["model"]) == {"roll_quick"}
    assert (jobs["epochs"] == 2).all() and (jobs["epochs_run"] == 2).all() and jobs["hit_cap"].all()
    rows, _ = RunStore(run).read_jobs()
    r = rows[rows["metric"] == "pearson"].groupby(["seed", "fold"])["value"].mean()
    np.testing.assert_allclose(jobs.set_index(["seed", "fold"])["fold_r"], r.loc[jobs.set_index(["seed", "fold"]).index])
    row = script.summary(jobs).loc["roll_quick"]
    assert row["folds"] == 8 and row["stopped at the cap"] == 8 and row["epochs run (median, max)"] == "2, 2"
    assert "| roll_quick | 2 | 2 | 8 |" in script.markdown(script.summary(jobs).reset_index())
