"""D4, D6, D7 (CLI): every option is checked before any expensive step; every expected failure is one line
and exit 2 (-v for the traceback); Ctrl-C during the feature build does not advise --resume."""

from __future__ import annotations

import errno
import sys

import pytest
from hostile_util import assert_one_line_error

import features.build
from benchmark import cli as cli_mod
from benchmark.cli import EXIT_INTERRUPTED, expected_failure
from benchmark.errors import DataError


@pytest.fixture()
def base(fake_data_dir, tmp_path):
    return ["--data-dir", fake_data_dir, "--cache-dir", tmp_path / "cache", "--out", tmp_path / "runs", "--no-progress"]


@pytest.fixture()
def no_feature_build(monkeypatch):
    """Fail the test if an option error is found only after the feature build started."""

    def too_late(*a, **k):
        raise AssertionError("the feature build started before the options were checked")

    monkeypatch.setattr("benchmark.runner.build_features", too_late)
    monkeypatch.setattr(features.build, "build_features", too_late)


@pytest.mark.parametrize("extra, needle", [
    (["--jobs", "0"], "--jobs 0"),
    (["--jobs", "-3"], "--jobs -3"),
    (["--seeds", ""], "no seeds given"),
    (["--seeds", "0,0"], "--seeds repeats 0"),
    (["--seeds", "1,2,1"], "--seeds repeats 1"),
    (["--n-splits", "1", "--split", "kfold"], "--n-splits 1"),
    (["--n-splits", "50", "--split", "excerpt"], "n_splits"),
    (["--soundfont", "/nonexistent.sf2"], "SoundFont not found"),
])
def test_bad_options_fail_before_the_feature_build(base, cli, no_feature_build, extra, needle):
    code, _, err = cli("run", "--models", "ridge", *base, *extra)
    assert_one_line_error(code, err, needle)


def test_out_that_is_a_file_or_unwritable(base, cli, tmp_path, no_feature_build):
    f = tmp_path / "afile"
    f.write_text("x")
    code, _, err = cli("run", "--models", "ridge", *base, "--out", f)
    assert_one_line_error(code, err, "is a file, not a folder")
    code, _, err = cli("run", "--models", "ridge", *base, "--out", f / "sub")
    assert_one_line_error(code, err, "is not writable")


def test_features_build_checks_jobs_and_soundfont_first(fake_data_dir, tmp_path, cli, no_feature_build):
    common = ["--data-dir", fake_data_dir, "--cache-dir", tmp_path / "c"]
    code, _, err = cli("features", "build", "--jobs", "0", *common)
    assert_one_line_error(code, err, "--jobs 0")
    code, _, err = cli("features", "build", "--soundfont", tmp_path / "no.sf2", *common)
    assert_one_line_error(code, err, "SoundFont not found")


def test_a_valid_soundfont_unused_by_the_models_is_ignored_with_a_warning(base, cli, caplog):
    from features.render import default_soundfont

    code, _, err = cli("run", "--models", "mean", *base, "--soundfont", default_soundfont())
    # The warning goes through logging: pytest's log capture takes it before stderr when its plugin is on.
    warned = err + caplog.text
    assert code == 0 and "--soundfont" in warned and "ignored" in warned


def test_resume_refuses_result_options_that_differ(base, cli, tmp_path):
    code, out, _ = cli("run", "--models", "mean,ridge", *base)
    assert code == 0
    [run] = list((tmp_path / "runs").iterdir())
    for extra, needle in ((["--models", "xgb"], "--models"), (["--seeds", "0,1"], "--seeds"),
                          (["--split", "kfold"], "--split"), (["--exclude-score"], "--exclude-score")):
        code, _, err = cli("run", "--resume", run, "--no-progress", *extra)
        assert_one_line_error(code, err, needle, "differ")
    # the same options again, and execution options, are fine
    code, out, err = cli("run", "--resume", run, "--no-progress", "--models", "ridge", "--jobs", "2")
    assert code == 0, err


def test_ctrl_c_during_the_feature_build_does_not_advise_resume(base, cli, tmp_path, monkeypatch):
    def interrupted(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr("benchmark.runner.build_features", interrupted)
    code, _, err = cli("run", "--models", "ridge", *base)
    assert code == EXIT_INTERRUPTED
    assert "--resume" not in err and "rerun the same command" in err
    assert not any((tmp_path / "runs").iterdir())


@pytest.mark.parametrize("exc, needle", [
    (OSError(errno.ENOSPC, "No space left on device", "/x/y"), "disk is full: /x/y"),
    (PermissionError(errno.EACCES, "Permission denied", "/x"), "Permission denied: /x"),
    (MemoryError(), "out of memory"),
])
def test_os_level_failures_are_one_line(base, cli, monkeypatch, exc, needle):
    def boom(*a, **k):
        raise exc

    monkeypatch.setattr("benchmark.runner.open_dataset", boom)
    code, _, err = cli("run", "--models", "ridge", *base)
    assert_one_line_error(code, err, needle, "-v for the traceback")
    code, _, err = cli("-v", "run", "--models", "ridge", *base)
    assert code == 2 and "Traceback" in err and err.strip().splitlines()[-1].startswith("error: ")


def test_a_bug_keeps_its_traceback(base, monkeypatch):
    def bug(*a, **k):
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr("benchmark.runner.open_dataset", bug)
    with pytest.raises(ZeroDivisionError):
        cli_mod.main(["run", "--models", "ridge", *map(str, base)])


def _raise_data_error(i):
    if i == 1:
        raise DataError("bad input in a worker")
    return i


def _die(i):
    import os

    os._exit(3)


def test_worker_errors_are_one_line():
    from joblib import Parallel, delayed

    with pytest.raises(Exception) as info:
        Parallel(n_jobs=2)(delayed(_raise_data_error)(i) for i in range(4))
    assert expected_failure(info.value) == "bad input in a worker"
    wrapped = RuntimeError("wrapper")
    wrapped.__cause__ = DataError("inner cause")
    assert expected_failure(wrapped) == "inner cause"
    with pytest.raises(Exception) as info:
        Parallel(n_jobs=2)(delayed(_die)(i) for i in range(2))
    assert "a worker process died" in expected_failure(info.value)
    assert expected_failure(ZeroDivisionError()) is None


def test_no_option_error_prints_a_traceback(cli, tmp_path):
    code, _, err = cli("features", "build", "--data-dir", tmp_path / "missing")
    assert_one_line_error(code, err, "does not exist")
    assert sys.exc_info()[0] is None
