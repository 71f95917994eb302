"""The simulation engine (simulation/): rates and their intervals, the nulls, the learner banks, power and MDE."""

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from benchmark.errors import ConfigError
from simulation.designs import DESIGNS, design_key, synthetic_layout
from simulation.engine import CLUSTER, LEARNER, NAIVE, bank_rates, decide
from simulation.power import mde_from_curve, noise_for
from simulation.rates import BAND, Rate, group_pairs, independent_rate, jackknife_rate, wilson
from simulation.toy import toy_cells


def test_wilson_matches_statsmodels():
    from statsmodels.stats.proportion import proportion_confint

    for k, n in ((0, 50), (5, 100), (37, 400), (200, 200)):
        np.testing.assert_allclose(wilson(k, n), proportion_confint(k, n, method="wilson"), atol=1e-12)
    r = independent_rate([True] * 10 + [False] * 190)
    assert r.rate == pytest.approx(0.05) and r.method == "Wilson" and r.n == 200


def test_rate_status_follows_the_band():
    assert Rate(0.05, 0.03, 0.07, 500, "").status == "calibrated"
    assert Rate(0.05, 0.015, 0.09, 80, "").status == "uncertain"
    assert Rate(0.005, 0.0, 0.015, 900, "").status == "conservative"
    assert Rate(0.2, 0.15, 0.25, 300, "").status == "liberal"
    assert BAND == (0.02, 0.08)


def test_group_pairs_are_disjoint_groups():
    pairs = group_pairs(10, 3, 500, np.random.default_rng(0))
    assert pairs.shape == (500, 2, 3)
    assert all(len(set(p.ravel())) == 6 for p in pairs)
    with pytest.raises(ValueError, match="cannot form"):
        group_pairs(5, 3, 1, np.random.default_rng(0))


def test_jackknife_interval_covers_a_known_u_statistic():
    """Seeds x_i ~ N(0, 1); a pair rejects when |x_i - x_j| > c, so the true rate is 2 Phi(-c / sqrt 2).
    The delete-one-seed jackknife interval of the rate over pairs of one bank covers it about 95% of the time."""
    c = 1.96 * np.sqrt(2)
    truth = 2 * stats.norm.sf(c / np.sqrt(2))
    rng = np.random.default_rng(0)
    cover, banks = 0, 300
    for _ in range(banks):
        x = rng.normal(size=60)
        pairs = group_pairs(60, 1, 1500, rng)
        rej = np.abs(x[pairs[:, 0, 0]] - x[pairs[:, 1, 0]]) > c
        r = jackknife_rate(rej, pairs, 60)
        cover += r.low <= truth <= r.high
    assert 0.88 <= cover / banks <= 0.99
    # Pairs sharing seeds are not independent: the jackknife interval is wider than Wilson's would be.
    assert r.high - r.low > np.subtract(*wilson(int(rej.sum()), rej.size)[::-1])


def test_mde_from_a_known_probit_curve():
    effects = np.array([0.01, 0.02, 0.04, 0.08])
    power = stats.norm.cdf((effects - 0.03) / 0.01)  # 80% at 0.03 + 0.8416 * 0.01
    assert mde_from_curve(effects, power) == pytest.approx(0.03 + stats.norm.ppf(0.8) * 0.01, abs=2e-3)
    assert np.isnan(mde_from_curve([0.01, 0.02], [0.1, 0.3]))
    # The pilot's effect map is inverted monotonically.
    assert noise_for(0.05, np.array([0.5, 1.0, 2.0]), np.array([0.02, 0.05, 0.1])) == pytest.approx(1.0)


@pytest.fixture(scope="module")
def layout():
    return synthetic_layout(n_performers=14, n_passages=30)


def test_design_key_and_changed_designs(layout):
    key = design_key(DESIGNS["lopo"], layout, n_seeds=3)
    assert (key.split, key.n_folds, key.n_seeds, key.n_units) == ("lopo", 14, 3, 14)
    kg = DESIGNS["kfold_grouped"]
    assert design_key(kg.with_seeds(5), layout).n_seeds == 5 and design_key(kg, layout).n_folds == 5
    assert design_key(kg.with_splits(10), layout).n_folds == 10
    with pytest.raises(ConfigError, match="does not take a fold count"):
        DESIGNS["lopo"].with_splits(5)
    assert design_key(DESIGNS["percepiano_performer4"], layout).n_units == 3


def test_weak_predictor_null_differs_by_unit_but_not_on_average(layout):
    """Per unit one model is noisier; over units neither is better in expectation."""
    from reports.units import UnitScorer

    design = DESIGNS["lopo"]
    sharp, weak, mean_diff = [], [], []
    for r in range(60):
        for scen, out in (("predictor null", sharp), ("weak predictor null", weak)):
            cells = toy_cells(design, layout, np.random.default_rng([r, 5]), scen)
            s = UnitScorer(cells, "pearson")
            per_unit = s.per_target(weights=np.eye(s.n_units))[:, 0]  # each unit alone
            out.append(np.var(per_unit))
            if scen == "weak predictor null":
                mean_diff.append(s.per_target()[0, 0])
    assert np.mean(weak) > 1.2 * np.mean(sharp)
    assert abs(np.mean(mean_diff)) < 3 * np.std(mean_diff) / np.sqrt(len(mean_diff))


def test_decide_runs_the_report_rules(layout):
    design = DESIGNS["lopo"]
    cells = toy_cells(design, layout, np.random.default_rng(0), "effect", noise=3.0)
    out = decide(cells, design, ratio_scale=0.2, n_resamples=99)
    assert out[LEARNER] and out[CLUSTER]  # a large effect is found by both claims
    assert out["_units"] == 14 and out["_folds"][0].shape == (1, 14)
    # The learner t of deterministic learners is the naive corrected t.
    assert out[LEARNER] == out[NAIVE]


def test_bank_rates_of_shared_seed_effects():
    """A fake bank whose seeds shift every fold alike: the naive corrected t rejects too often, the learner t does
    not, and with one seed per learner the learner t gives no answer."""
    from simulation.bank import BankDesign

    rng = np.random.default_rng(1)
    S, J = 40, 21
    scores = 0.6 + rng.normal(0, 0.05, J)[None] + rng.normal(0, 0.01, (S, 1)) + rng.normal(0, 0.004, (S, J))
    bank = BankDesign("lopo", "lopo", np.zeros((J, 1)), np.arange(J).astype(str), np.zeros(J, int), np.arange(J),
                      [np.array([k]) for k in range(J)], np.full(J, 1100.0), np.full(J, 57.0), True, False)
    res = bank_rates(scores, bank, DESIGNS["lopo"], ratio_scale=0.2, ks=(1, 3), n_pairs=800)
    assert res["_n_seeds"] == S and LEARNER not in res[1]
    assert res[1][NAIVE].rate > 0.3 and res[3][NAIVE].rate > 0.3
    assert res[3][LEARNER].rate < 0.1 and "jackknife" in res[3][LEARNER].method


def test_calibrate_design_says_what_is_calibrated(layout):
    from simulation.calibrate import calibrate_design, min_seeds

    res = calibrate_design(DESIGNS["lopo"], layout, learner_reps=30, predictor_reps=10, reference_reps=5,
                           fit_reps=30, n_resamples=19, power_reps=5, tost_reps=5, log=lambda m: None)
    assert set(res["toy"]) == {"learner null", "predictor null", "weak predictor null"}
    assert res["verdicts"]["learner"]["test"] == LEARNER and res["verdicts"]["predictor"]["test"] == CLUSTER
    # 10 repetitions cannot put an interval inside the band: nothing is called calibrated on so little.
    assert not res["verdicts"]["predictor"]["calibrated"]
    few = calibrate_design(DESIGNS["percepiano_performer4"], layout, log=lambda m: None)
    assert few["few"] and not few["verdicts"]["learner"]["calibrated"]
    good, bad = Rate(0.05, 0.03, 0.07, 1, ""), Rate(0.05, 0.0, 0.1, 1, "")
    bank = {"rates": {1: {}, 2: {LEARNER: bad}, 3: {LEARNER: good}, 5: {LEARNER: good}}}
    assert min_seeds(bank, seeded=False) == 3
    bank["rates"][5] = {LEARNER: bad}
    assert min_seeds(bank, seeded=False) is None


def _script(name):
    spec = importlib.util.spec_from_file_location(f"{name}_script", Path(__file__).parents[2] / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_calibration_script_writes_report_and_json(tmp_path):
    out, js, costs = tmp_path / "calibration.md", tmp_path / "calibration.json", tmp_path / "benchmarks.md"
    costs.write_text("# Measured timings\n\n<!-- calibration-cost:begin -->\nold\n<!-- calibration-cost:end -->\ntail\n")
    cal = _script("calibration")
    assert cal.main(["--synthetic", "--designs", "lopo,percepiano_performer4", "--learner-reps", "20",
                     "--predictor-reps", "8", "--reference-reps", "4", "--fit-reps", "20", "--power-reps", "4",
                     "--tost-reps", "4", "--resamples", "19", "--out", str(out), "--json", str(js),
                     "--costs", str(costs)]) == 0
    block = costs.read_text()
    assert "old" not in block and block.endswith("tail\n") and "| lopo |" in block
    text = out.read_text()
    assert "## lopo" in text and "too few groups (3)" in text and "--learner-reps 20" in text
    assert "weak predictor null" in text and "Minimum detectable effect" in text
    data = json.loads(js.read_text())
    assert data["version"] == 2 and data["designs"]["lopo"]["key"]["n_folds"] == 22
    assert data["tests"] == {"learner": LEARNER, "predictor": CLUSTER,
                             "secondary": ["unit-swap permutation", "Bayesian verdict", "TOST equivalence"]}
    # --reuse keeps the toy part of a --full file and recomputes only the banks: the same report.
    full = tmp_path / "full.json"
    common = ["--synthetic", "--designs", "lopo", "--learner-reps", "20", "--predictor-reps", "8",
              "--reference-reps", "4", "--fit-reps", "20", "--power-reps", "4", "--tost-reps", "4", "--resamples", "19"]
    assert cal.main([*common, "--full", str(full), "--out", str(out), "--json", str(js)]) == 0
    first = json.loads(js.read_text())["designs"]
    assert cal.main(["--designs", "lopo", "--reuse", str(full), "--out", str(out), "--json", str(js)]) == 0
    again = json.loads(js.read_text())["designs"]
    assert again == first


def test_power_on_a_small_layout_and_its_errors(layout, capsys):
    from benchmark.cli import EXIT_ERROR, main
    from simulation.power import format_power, run_power

    res = run_power("lopo", effects=(0.05,), reps=10, n_resamples=19, fit_reps=30, layout=layout)
    assert res.key["n_folds"] == 14 and not res.stored_factor and res.null[LEARNER].n == 10
    assert res.effects[0]["requested"] and res.effects[0]["effect"] == pytest.approx(0.05, abs=1e-9)
    text = format_power(res)
    assert "minimum detectable effect at 80% power, learner t" in text and "fitted here" in text
    with pytest.raises(ConfigError, match="fixed test set"):
        run_power("percepiano_performer4", layout=layout)
    with pytest.raises(ConfigError, match="simulates the designs"):
        run_power("composer", layout=layout)
    with pytest.raises(ConfigError, match="--effect"):
        run_power("lopo", effects=(0.0,), layout=layout)
    with pytest.raises(ConfigError, match="does not take a fold count"):
        run_power("lopo", n_splits=5, layout=layout)
    assert main(["power", "--split", "lopo", "--effect", "a,b"]) == EXIT_ERROR
    assert capsys.readouterr().err.startswith("error: --effect 'a,b'")
