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


def permissive_calibration(key):
    """A stored calibration entry that backs every claim on ``key``'s design, ratio factor 1 (Nadeau-Bengio),
    one model seed enough for every family."""
    return {"key": {"split": key.split, "n_folds": key.n_folds, "n_seeds": key.n_seeds, "n_units": key.n_units},
            "ratio_scale": 1.0, "predictor": {"calibrated": True},
            "learner": {"calibrated": True, "min_seeds": {"deterministic": 1, "tabular": 1, "neural": 1},
                        "max_seeds": {}}}, ""


@pytest.fixture(autouse=True)
def _calibration_backs_every_design(monkeypatch, request):
    """Report tests check the numbers: run them as for a design docs/calibration.md backs in full (every claim
    printed, factor 1). A test marked ``real_calibration`` reads ``reports.calibrated.STORE`` instead."""
    if request.node.get_closest_marker("real_calibration") is None:
        monkeypatch.setattr("reports.calibrated.lookup", permissive_calibration)
