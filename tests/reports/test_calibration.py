"""Calibration of the report's tests on the split designs (scripts/calibration.py).

A small fast simulation on a synthetic layout; the tests that docs/calibration.md
reports as calibrated must stay near alpha, and the ones it flags as liberal
must stay liberal (so the simulation can fail in both directions).
"""

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "calibration.py"


def _load_script():
    spec = importlib.util.spec_from_file_location("calibration_script", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def cal():
    return _load_script()


def test_permutation_is_exact_under_its_own_null_on_lopo(cal):
    layout = cal.synthetic_layout(n_performers=14, n_passages=30)
    res = cal.simulate(cal.DESIGNS["lopo"], layout, 60, n_resamples=199, fit_reps=50)
    for test in ("unit-swap permutation", "cluster bootstrap CI"):
        rate = res["rates"]["predictor null"][test]
        # 60 reps: a calibrated test's rate lies in [0, 0.15] with probability > 0.99.
        assert rate <= 0.15, test
        # And it has power against a real difference in the predictors.
        assert res["rates"]["effect"][test] > rate, test


def test_stored_corrected_t_factor_stays_calibrated_on_lopo(cal, real_dataset):
    """The factor reports/calibration.json stores for lopo, on fresh repetitions of the real LOPO design:
    a drift of the test (or of the report code it runs through) out of range fails here."""
    stored = json.loads((SCRIPT.parents[1] / "reports" / "calibration.json").read_text())
    scale = stored["ratio_scale"]["lopo"]
    meta = real_dataset.meta
    piece = meta["piece"].astype(str).to_numpy()
    layout = cal.Layout(meta["player"].astype(str).to_numpy(), meta["excerpt"].astype(str).to_numpy(), piece,
                        piece + "_" + meta["player"].astype(str).to_numpy())
    res = cal.simulate(cal.DESIGNS["lopo"], layout, 80, n_resamples=99, seed=7, scale=scale)
    assert res["fit_reps"] == 0  # the stored factor, not refitted
    # 80 reps: a test with rate 0.05 lands in [0, 0.125] with probability > 0.99.
    assert res["rates"]["learner null"]["corrected t (NB)"] <= 0.125
    assert res["rates"]["effect"]["corrected t (NB)"] > 0.2


def test_fitted_factor_is_calibrated_on_fresh_repetitions(cal):
    """On a small synthetic LOPO layout: fit the factor, then judge it on other repetitions."""
    layout = cal.synthetic_layout(n_performers=14, n_passages=30)
    res = cal.simulate(cal.DESIGNS["lopo"], layout, 80, n_resamples=19, fit_reps=200)
    assert 0.0 < res["scale"] < 20.0 and res["fit_reps"] == 200
    assert res["rates"]["learner null"]["corrected t (NB)"] <= 0.125
    # The Bayesian test with a zero ROPE decides as the corrected t-test does.
    assert res["rates"]["learner null"]["Bayesian correlated t"] == res["rates"]["learner null"]["corrected t (NB)"]


def test_fixed_test_set_has_nothing_to_calibrate(cal):
    res = cal.simulate(cal.DESIGNS["percepiano_performer4"], cal.synthetic_layout(), 3, n_resamples=19, fit_reps=5)
    assert res["few"] and res["n_units"] == 3 and cal.calibrated(res) == {}
    assert all(v == 0.0 for rates in res["rates"].values() for v in rates.values())


def test_calibrated_requires_rate_in_range(cal):
    res = {"few": False, "rates": {"learner null": {t: 0.05 for t in cal.TESTS},
                                   "predictor null": {t: 0.2 for t in cal.TESTS}}}
    res["rates"]["learner null"]["unit-swap permutation"] = 0.25
    got = cal.calibrated(res)
    assert set(got) == set(cal.LEARNER_TESTS) and "unit-swap permutation" not in got
    assert got["corrected t (NB)"] == "the learning algorithms"
    res["rates"]["learner null"]["corrected t (NB)"] = 0.0
    assert "corrected t (NB)" not in cal.calibrated(res)
    # A test of the fitted predictors (in range under the predictor null only), and one in range under both.
    res["rates"]["predictor null"]["unit-swap permutation"] = 0.05
    res["rates"]["predictor null"]["cluster bootstrap CI"] = 0.04
    got = cal.calibrated(res)
    assert got["unit-swap permutation"] == "these two fitted predictors"
    assert got["cluster bootstrap CI"] == "the learning algorithms and these two fitted predictors"


def test_calibration_script_writes_report_and_json(cal, tmp_path):
    out, js = tmp_path / "calibration.md", tmp_path / "calibration.json"
    assert cal.main(["--reps", "2", "--resamples", "19", "--fit-reps", "5", "--synthetic", "--designs",
                     "lopo,percepiano_performer4", "--out", str(out), "--json", str(js)]) == 0
    text = out.read_text()
    assert "## lopo" in text and "too few groups (3)" in text and "--reps 2" in text
    assert "expanded BCa CI (not printed)" in text
    data = json.loads(js.read_text())
    assert set(data["calibrated"]) == {"lopo", "percepiano_performer4"} and np.isclose(data["alpha"], 0.05)


@pytest.mark.parametrize("design, attr, n_folds", [("piece", "piece", None), ("kfold_grouped", "performance", 5)])
def test_grouped_designs_keep_their_unit_on_one_side(cal, design, attr, n_folds):
    """piece and kfold_grouped are simulated with the splits' own groups: no unit on both sides of a fold."""
    layout = cal.synthetic_layout()
    units = getattr(layout, attr)
    for seed in (0, 1):
        folds = cal.folds_of(cal.DESIGNS[design], layout, seed)
        assert len(folds) == (n_folds or np.unique(units).size)
        for tr, te in folds:
            assert not set(units[tr]) & set(units[te])
        assert np.array_equal(np.sort(np.concatenate([te for _, te in folds])), np.arange(units.size))
    assert cal.DESIGNS[design].unit == {"piece": "pieces", "kfold_grouped": "performances"}[design]
    np.testing.assert_array_equal(layout.units(cal.DESIGNS[design].unit), units)
