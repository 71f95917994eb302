"""A small finished run on the synthetic dataset, built once per session for the report tests."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest


def _make_fake_percepiano():
    # tests/conftest.py and this file are both imported as "conftest": load the
    # root one by path to reach its dataset generator.
    spec = importlib.util.spec_from_file_location("_root_conftest", Path(__file__).parents[1] / "conftest.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.make_fake_percepiano


@pytest.fixture(scope="session")
def small_run(tmp_path_factory) -> Path:
    """Run directory of mean, ridge, rf under lopo, seed 0, on 24 synthetic segments (4 performers).

    Read-only for tests: copy it (``shutil.copytree``) before editing.
    """
    from benchmark.cli import main

    root = tmp_path_factory.mktemp("small_run")
    data = _make_fake_percepiano()(root / "percepiano")
    out = root / "runs"
    code = main(["run", "--no-progress", "--models", "mean,ridge,rf", "--split", "lopo", "--data-dir", str(data),
                 "--cache-dir", str(root / "cache"), "--out", str(out)])
    assert code == 0
    (run,) = [d for d in out.iterdir() if d.is_dir()]
    return run


@pytest.fixture(autouse=True)
def _calibration_covers_no_split(monkeypatch):
    """Report tests check the numbers: run them as for a split docs/calibration.md did not simulate
    (every test printed). A test of the withholding sets ``reports.calibrated.CALIBRATED`` itself."""
    monkeypatch.setattr("reports.calibrated.CALIBRATED", {})
