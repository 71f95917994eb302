"""D3 (concurrency): each process gets its own numba cache slot, so concurrent compilations can never poison
a shared cache; concurrent builds and runs on one feature cache, and kill -9 then --resume, give the results
of a clean run."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pandas as pd
import pytest
from hostile_util import assert_same_results

from benchmark.store import RunStore

ROOT = Path(__file__).resolve().parents[2]

CLAIMER = textwrap.dedent("""
    import sys, time
    sys.path.insert(0, sys.argv[1])
    from features.numba_guard import claim_numba_cache
    slot = claim_numba_cache()
    print(slot, flush=True)
    import numba
    assert numba.config.CACHE_DIR == str(slot)
    import kernels
    value = {"int": 3, "float": 2.5, "complex": 1j, "bool": True}[sys.argv[2]]
    print(kernels.twice(value), flush=True)
    time.sleep(float(sys.argv[3]))
""")

KERNELS = textwrap.dedent("""
    import numba

    @numba.njit(cache=True)
    def twice(x):
        return x + x
""")


def _env(tmp_path):
    env = dict(os.environ, PERCEPIANO_NUMBA_CACHE=str(tmp_path / "numba"), PYTHONPATH=str(tmp_path / "mod"))
    env.pop("NUMBA_CACHE_DIR", None)
    return env


def test_concurrent_processes_get_distinct_numba_cache_slots(tmp_path):
    """Four processes compile four signatures of one cached kernel at once: each writes only its own slot."""
    (tmp_path / "mod").mkdir()
    (tmp_path / "mod" / "kernels.py").write_text(KERNELS)
    script = tmp_path / "claim.py"
    script.write_text(CLAIMER)
    kinds = ["int", "float", "complex", "bool"]
    procs = [subprocess.Popen([sys.executable, str(script), str(ROOT), k, "3"], env=_env(tmp_path),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for k in kinds]
    outs = [p.communicate(timeout=120) for p in procs]
    assert all(p.returncode == 0 for p in procs), [o[1][-500:] for o in outs]
    slots = [o[0].splitlines()[0] for o in outs]
    assert len(set(slots)) == 4, slots  # alive at the same time: never the same slot
    assert [o[0].splitlines()[1] for o in outs] == ["6", "5.0", "2j", "2"]
    for slot in slots:
        written = list(Path(slot).rglob("*.nbi"))
        assert len(written) == 1, (slot, written)  # this process's kernel, in this process's slot only
    # A later process reuses a free slot and its compiled kernel.
    later = subprocess.run([sys.executable, str(script), str(ROOT), "int", "0"], env=_env(tmp_path),
                           capture_output=True, text=True, timeout=120)
    assert later.returncode == 0, later.stderr
    assert later.stdout.splitlines()[0] in slots


def test_a_killed_process_frees_its_slot(tmp_path):
    (tmp_path / "mod").mkdir()
    (tmp_path / "mod" / "kernels.py").write_text(KERNELS)
    script = tmp_path / "claim.py"
    script.write_text(CLAIMER)
    p = subprocess.Popen([sys.executable, str(script), str(ROOT), "int", "60"], env=_env(tmp_path),
                         stdout=subprocess.PIPE, text=True)
    first = p.stdout.readline().strip()
    p.stdout.readline()
    os.kill(p.pid, signal.SIGKILL)
    p.wait()
    again = subprocess.run([sys.executable, str(script), str(ROOT), "int", "0"], env=_env(tmp_path),
                           capture_output=True, text=True, timeout=120)
    assert again.returncode == 0 and again.stdout.splitlines()[0] == first


def _build(data, cache, features, jobs):
    return subprocess.Popen([sys.executable, "-m", "benchmark.cli", "features", "build", "--features", features,
                             "--jobs", str(jobs), "--data-dir", str(data), "--cache-dir", str(cache)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _table(data, cache, features):
    from benchmark.dataset import load_dataset
    from features.build import build_features
    from features.cache import Cache

    fm = build_features(load_dataset(data).meta, features.split(","), Cache(cache), progress=False)
    assert fm.n_computed == 0  # everything was cached by the concurrent builds
    return fm.X


def test_two_concurrent_builds_on_one_cache(fake_data_dir, tmp_path):
    procs = [_build(fake_data_dir, tmp_path / "shared", "midi,score", 2) for _ in range(2)]
    outs = [p.communicate(timeout=300) for p in procs]
    assert all(p.returncode == 0 for p in procs), [o[1][-800:] for o in outs]
    from benchmark.dataset import load_dataset
    from features.build import build_features
    from features.cache import Cache

    clean = build_features(load_dataset(fake_data_dir).meta, ["midi", "score"], Cache(tmp_path / "clean"),
                           progress=False).X
    got = _table(fake_data_dir, tmp_path / "shared", "midi,score")
    assert got.to_numpy().tobytes() == clean.to_numpy().tobytes()


@pytest.mark.slow
def test_audio_builds_repeated_and_concurrent_never_crash(fake_data_dir, tmp_path):
    """The issue's bar on the synthetic set: 5 x --jobs 2 on fresh caches, then two concurrent builds on one."""
    tables = []
    for i in range(5):
        p = _build(fake_data_dir, tmp_path / f"c{i}", "audio", 2)
        out, err = p.communicate(timeout=900)
        assert p.returncode == 0, err[-800:]
        tables.append(_table(fake_data_dir, tmp_path / f"c{i}", "audio"))
    procs = [_build(fake_data_dir, tmp_path / "shared", "audio", 2) for _ in range(2)]
    outs = [p.communicate(timeout=900) for p in procs]
    assert all(p.returncode == 0 for p in procs), [o[1][-800:] for o in outs]
    tables.append(_table(fake_data_dir, tmp_path / "shared", "audio"))
    for t in tables[1:]:
        pd.testing.assert_frame_equal(tables[0], t, check_exact=True)


def _run_cmd(data, cache, out, *extra):
    return [sys.executable, "-m", "benchmark.cli", "run", "--no-progress", "--models", "mean,ridge,stack",
            "--members", "mean,ridge", "--seeds", "0,1", "--data-dir", str(data), "--cache-dir", str(cache),
            "--out", str(out), *extra]


@pytest.mark.slow
@pytest.mark.parametrize("round_", range(3))
def test_kill_9_at_a_random_point_then_resume(fake_data_dir, tmp_path, round_):
    """kill -9 of a --jobs 2 run at a random moment (feature build, grid or collect), then --resume."""
    clean = subprocess.run(_run_cmd(fake_data_dir, tmp_path / "cache", tmp_path / "clean"), capture_output=True,
                           text=True, timeout=600)
    assert clean.returncode == 0, clean.stderr[-800:]
    [clean_run] = list((tmp_path / "clean").iterdir())
    rng = random.Random()
    delay = rng.uniform(0.5, 12.0)
    cache = tmp_path / ("cache" if round_ % 2 else "cold")  # a cold cache: the kill may land in the build
    p = subprocess.Popen(_run_cmd(fake_data_dir, cache, tmp_path / "k", "--jobs", "2"),
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(delay)
    os.kill(p.pid, signal.SIGKILL)
    p.wait()
    runs = list((tmp_path / "k").iterdir()) if (tmp_path / "k").exists() else []
    if not runs or not RunStore(runs[0]).exists:  # killed before the run began: a new run
        again = subprocess.run(_run_cmd(fake_data_dir, cache, tmp_path / "k2"), capture_output=True, text=True,
                               timeout=600)
        assert again.returncode == 0, again.stderr[-800:]
        [run] = list((tmp_path / "k2").iterdir())
    else:
        run = runs[0]
        again = subprocess.run([sys.executable, "-m", "benchmark.cli", "run", "--no-progress", "--resume", str(run)],
                               capture_output=True, text=True, timeout=600)
        assert again.returncode == 0, (delay, again.stderr[-800:])
    assert_same_results(clean_run, run)
