"""Slow: false-positive rates of the naive and corrected t-tests under a true null."""

import importlib.util
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "calibration.py"


def _load_script():
    spec = importlib.util.spec_from_file_location("calibration_script", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_corrected_ttest_is_calibrated_under_null():
    # Same settings as docs/calibration.md: 200 data sets, 10 x GroupKFold(10).
    res = _load_script().simulate(200)
    rates = res["rates"]
    assert rates["corrected resampled t-test"] < 0.07
    # The naive test ignores the fold correlation and rejects far too often.
    assert rates["naive paired t-test"] > 0.2


def test_calibration_script_smoke(tmp_path):
    module = _load_script()
    out = tmp_path / "calibration.md"
    assert module.main(["--reps", "2", "--repeats", "2", "--folds", "5", "--out", str(out)]) == 0
    text = out.read_text()
    assert "corrected resampled t-test" in text and "--reps 2" in text
