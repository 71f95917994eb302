"""Helpers of the hostile suite: run the CLI in-process and check the one-line error contract."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from benchmark.cli import main


@pytest.fixture()
def cli(capsys):
    """``cli(*args) -> (exit code, stdout, stderr)`` of ``benchmark`` run in this process."""

    def run(*args):
        capsys.readouterr()
        code = main([str(a) for a in args])
        out, err = capsys.readouterr()
        return code, out, err

    return run


def _make_fake_percepiano():
    # tests/conftest.py and this file are both imported as "conftest": load the root one by path.
    spec = importlib.util.spec_from_file_location("_root_conftest", Path(__file__).parents[1] / "conftest.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.make_fake_percepiano


@pytest.fixture(scope="module")
def clean_run(tmp_path_factory):
    """A finished run (mean, ridge; seeds 0,1; lopo) on its own synthetic data; copy it before editing."""
    root = tmp_path_factory.mktemp("clean_run")
    data = _make_fake_percepiano()(root / "percepiano")
    code = main(["run", "--no-progress", "--models", "mean,ridge", "--seeds", "0,1", "--data-dir", str(data),
                 "--cache-dir", str(root / "cache"), "--out", str(root / "runs")])
    assert code == 0
    [run] = list((root / "runs").iterdir())
    return run


# A tiny piano-roll network (no audio to render): 4 lopo folds x 2 seeds = 8 jobs of about a second each.
NEURAL_STUDY = """
[study]
split = "lopo"
seeds = [0, 1]
device = "cpu"

[models.roll_quick]
model = "ast_tiny_roll"
epochs = 2
patience = 2
crop = 16
time_pool = 4
batch_size = 8
"""


@pytest.fixture(scope="module")
def neural_env(tmp_path_factory):
    """(data dir, cache dir, study file, a finished neural run): copy the run before damaging it."""
    root = tmp_path_factory.mktemp("neural_run")
    data = _make_fake_percepiano()(root / "percepiano")
    study = root / "study.toml"
    study.write_text(NEURAL_STUDY)
    code = main(["run", "--no-progress", "--study", str(study), "--data-dir", str(data),
                 "--cache-dir", str(root / "cache"), "--out", str(root / "runs")])
    assert code == 0
    [run] = list((root / "runs").iterdir())
    return data, root / "cache", study, run
