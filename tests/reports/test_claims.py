"""The two claims' primary tests (reports/claims.py): known answers, reference implementations, and the
property that an interval, its p-value and its mark cannot disagree."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from benchmark.errors import ConfigError
from reports.claims import (
    bayes_and_tost,
    bootstrap_t_pvalue,
    bootstrap_t_se_factor,
    compatible_levels,
    detectable_effect,
    learner_test,
    t_interval,
    t_pvalue,
)
from reports.multitest import adjust_pvalues
from reports.paired import corrected_resampled_ttest, tost_corrected


def test_deterministic_learners_reduce_to_the_corrected_t():
    rng = np.random.default_rng(0)
    a, b = rng.normal(0.5, 0.05, (1, 21)), rng.normal(0.48, 0.05, (1, 21))
    got = learner_test(a, b, 1100.0, 60.0, ratio_scale=0.2, deterministic=(True, True))
    ref = corrected_resampled_ttest(a[0], b[0], 1100.0, 60.0, ratio_scale=0.2)
    assert got.pvalue == pytest.approx(ref.pvalue, rel=1e-12) and got.df == ref.df
    assert got.interval(0.95) == pytest.approx((ref.ci_low, ref.ci_high), rel=1e-12)
    assert got.v_seeds == 0.0 and got.reason == ""


def test_seeded_design_is_the_repeated_cv_corrected_t_over_all_cells():
    rng = np.random.default_rng(1)
    a, b = rng.normal(0.5, 0.05, (3, 5)), rng.normal(0.5, 0.05, (3, 5))
    got = learner_test(a, b, 900.0, 230.0, ratio_scale=1.5, seeded=True)
    ref = corrected_resampled_ttest(a.ravel(), b.ravel(), 900.0, 230.0, ratio_scale=1.5)
    assert got.pvalue == pytest.approx(ref.pvalue, rel=1e-12) and got.J == 15


def test_seed_variance_is_added_hand_computed():
    """Two seeds x three folds each, every quantity written out by hand."""
    a = np.array([[0.50, 0.60, 0.70], [0.54, 0.62, 0.76]])
    b = np.array([[0.45, 0.58, 0.66], [0.47, 0.56, 0.69]])
    n_tr, n_te, c = 100.0, 50.0, 1.0
    d = a.mean(0) - b.mean(0)  # [0.06, 0.04, 0.055]
    # Seed means and their variances (ddof 1), and the seed x fold residual mean squares.
    ma, mb = a.mean(1), b.mean(1)
    s2a, s2b = np.var(ma, ddof=1), np.var(mb, ddof=1)
    ra = a - ma[:, None] - a.mean(0) + a.mean()
    rb = b - mb[:, None] - b.mean(0) + b.mean()
    msa, msb = (ra ** 2).sum() / 2, (rb ** 2).sum() / 2
    v_folds = (1 / 3 + c * n_te / n_tr) * max(0.0, np.var(d, ddof=1) - msa / 2 - msb / 2)
    v = v_folds + s2a / 2 + s2b / 2
    df = v ** 2 / (v_folds ** 2 / 2 + (s2a / 2) ** 2 / 1 + (s2b / 2) ** 2 / 1)
    got = learner_test(a, b, n_tr, n_te, ratio_scale=c)
    assert got.diff == pytest.approx(d.mean())
    assert got.v_folds == pytest.approx(v_folds) and got.v_seeds == pytest.approx(s2a / 2 + s2b / 2)
    assert got.df == pytest.approx(df)
    assert got.pvalue == pytest.approx(2 * stats.t.sf(abs(d.mean()) / np.sqrt(v), df))


def test_one_seed_of_a_stochastic_learner_gives_no_learner_level_answer():
    a, b = np.full((1, 5), 0.5) + np.arange(5) / 100, np.full((1, 5), 0.4)
    got = learner_test(a, b, 100.0, 20.0)
    assert np.isnan(got.pvalue) and got.reason == "needs >= 2 model seeds"
    assert got.diff == pytest.approx(0.12)  # the difference itself is still known
    # A deterministic partner still needs the stochastic one to have enough seeds; three suffice for min_seeds=3.
    assert learner_test(a, b, 100.0, 20.0, deterministic=(False, True)).reason == "needs >= 2 model seeds"
    a3 = a + np.array([[0.0], [0.01], [-0.01]])
    assert learner_test(a3, b, 100.0, 20.0, deterministic=(False, True), min_seeds=3).reason == ""
    assert learner_test(a3[:2], b, 100.0, 20.0, min_seeds=3).reason == "needs >= 3 model seeds"


def test_learner_test_rejects_bad_input():
    with pytest.raises(ConfigError, match="same folds"):
        learner_test(np.zeros((2, 3)), np.zeros((2, 4)), 10, 5)
    with pytest.raises(ConfigError, match="positive sizes"):
        learner_test(np.zeros((2, 3)), np.zeros((2, 3)), 0, 5)
    with pytest.raises(ConfigError, match="at least 2 fold units"):
        learner_test(np.zeros((2, 1)), np.zeros((2, 1)), 10, 5)
    with pytest.raises(ConfigError, match="ratio_scale"):
        learner_test(np.zeros((2, 3)), np.zeros((2, 3)), 10, 5, ratio_scale=-1)


def test_seed_effects_shared_across_folds_break_the_naive_test_not_the_learner_test():
    """Scores a[s, k] = f_k + u_s + e_sk with a seed effect u shared by every fold (as a model seed is):
    A and B are the same learner. Ignoring the seeds rejects far too often; adding their variance does not."""
    rng = np.random.default_rng(2)
    J, K, reps = 21, 3, 3000
    f = rng.normal(0.6, 0.05, J)
    naive = learner = 0
    for _ in range(reps):
        a = f + rng.normal(0, 0.01, (K, 1)) + rng.normal(0, 0.004, (K, J))
        b = f + rng.normal(0, 0.01, (K, 1)) + rng.normal(0, 0.004, (K, J))
        naive += learner_test(a, b, 1100, 57, ratio_scale=0.2, deterministic=(True, True)).pvalue < 0.05
        learner += learner_test(a, b, 1100, 57, ratio_scale=0.2).pvalue < 0.05
    assert naive / reps > 0.3
    assert 0.02 <= learner / reps <= 0.07


@settings(max_examples=200, deadline=None)
@given(diff=st.floats(-0.5, 0.5), se=st.floats(1e-4, 0.3), df=st.floats(1.0, 200.0),
       level=st.floats(0.5, 0.999))
def test_interval_and_p_value_never_disagree(diff, se, df, level):
    lo, hi = t_interval(diff, se, df, level)
    p = t_pvalue(diff, se, df)
    if abs(p - (1 - level)) > 1e-9:  # away from the exact edge
        assert (lo > 0 or hi < 0) == (p < 1 - level)


@settings(max_examples=200, deadline=None)
@given(diff=st.floats(-0.3, 0.3), se=st.floats(1e-4, 0.2), G=st.integers(10, 300))
def test_bootstrap_interval_excludes_zero_exactly_when_its_p_is_below_alpha(diff, se, G):
    half = bootstrap_t_se_factor(G) * stats.t.ppf(0.975, G - 1) * se
    p = bootstrap_t_pvalue(diff, se, G)
    if abs(p - 0.05) > 1e-9:
        assert (abs(diff) > half) == (p < 0.05)


@settings(max_examples=25, deadline=None)
@given(p=st.lists(st.one_of(st.floats(0.0, 1.0), st.just(float("nan"))), min_size=1, max_size=30),
       method=st.sampled_from(["holm", "fdr_bh", "bonferroni"]))
def test_compatible_intervals_agree_with_the_adjusted_decision(p, method):
    """An interval at the returned level excludes 0 exactly when the adjusted p-value is below alpha."""
    p = np.asarray(p)
    levels = compatible_levels(p, method)
    _, reject = adjust_pvalues(p, method)
    ok = np.isfinite(p)
    # The interval at level L excludes 0 iff its raw p < 1 - L (t_interval / t_pvalue duality above).
    near = np.isclose(p, 1 - levels, rtol=0, atol=1e-12)
    assert np.array_equal(((p < 1 - levels) & ok)[~near], reject[~near])


def test_compatible_levels_known_values():
    # Holm, 3 rows: 0.01 < 0.05/3 rejected at 1 - 0.05/3; 0.03 > 0.05/2 stops; the rest at 1 - 0.05/2.
    got = compatible_levels([0.03, 0.01, 0.2], "holm")
    np.testing.assert_allclose(got, [1 - 0.025, 1 - 0.05 / 3, 1 - 0.025])
    # BH: 0.01 <= 0.05/3 and 0.03 <= 2 * 0.05/3 -> R = 2: selected at 1 - 2 * 0.05/3, the other at 1 - 0.05.
    np.testing.assert_allclose(compatible_levels([0.03, 0.01, 0.2], "fdr_bh"), [1 - 0.1 / 3, 1 - 0.1 / 3, 0.95])
    np.testing.assert_allclose(compatible_levels([0.03, np.nan], "none"), [0.95, 0.95])
    with pytest.raises(ConfigError, match="unknown adjustment"):
        compatible_levels([0.1], "sidak")


def test_detectable_effect_known_answer():
    # Large df: (1.96 + 0.8416) x SE.
    assert detectable_effect(0.01, 1e7) == pytest.approx(0.01 * (stats.norm.ppf(0.975) + stats.norm.ppf(0.8)),
                                                         rel=1e-5)
    assert detectable_effect(0.01, 20) == pytest.approx(0.01 * (stats.t.ppf(0.975, 20) + stats.t.ppf(0.8, 20)))
    assert np.isnan(detectable_effect(np.nan, 20))


def test_bayes_and_tost_share_the_learner_test_variance():
    rng = np.random.default_rng(3)
    a, b = rng.normal(0.5, 0.03, 21), rng.normal(0.49, 0.03, 21)
    ref = corrected_resampled_ttest(a, b, 1100.0, 57.0)
    se = (ref.ci_high - ref.ci_low) / (2 * stats.t.ppf(0.975, ref.df))
    v = bayes_and_tost(ref.mean_diff, se, ref.df, rope=0.01)
    tost = tost_corrected(a, b, 1100.0, 57.0, 0.01)
    assert v.tost_p == pytest.approx(tost.pvalue, rel=1e-9)
    assert v.p_better + v.p_equivalent + v.p_worse == pytest.approx(1.0)
    # With no ROPE and threshold 0.975, "better or worse" is the two-sided test at 0.05.
    for d in (-0.05, -0.01, 0.0, 0.02, 0.06):
        w = bayes_and_tost(d, 0.02, 20.0, rope=0.0, threshold=0.975)
        assert (w.verdict in ("better", "worse")) == (t_pvalue(d, 0.02, 20.0) < 0.05)
    assert bayes_and_tost(np.nan, 0.02, 20.0, rope=0.01).verdict == "not tested"


# ------------------------------------------------------------- rows of a report


@settings(max_examples=300, deadline=None)
@given(diff=st.floats(-0.3, 0.3), se=st.floats(1e-4, 0.2), df=st.floats(2.0, 60.0),
       p_adj=st.floats(0.0, 1.0), level=st.floats(0.8, 0.999))
def test_claim_columns_agree_with_their_mark(diff, se, df, p_adj, level):
    """Any claim: the printed interval excludes 0 exactly when the p beside it is significant and the cell is
    marked, when the level and p_adj come from one adjustment (p_adj < alpha iff raw p < 1 - level)."""
    from reports.claims import PairClaims, claim_columns
    from reports.tables import claim_cell

    raw = t_pvalue(diff, se, df)
    # An adjustment consistent with the level: reject iff raw < 1 - level; p_adj on the same side of alpha.
    p_adj = min(p_adj, 0.049) if raw < 1 - level else max(p_adj, 0.051)
    c = PairClaims(diff, None, "n/a (fixed test set)", se, df, raw, "", np.nan, 0.01, 20)
    cols = claim_columns(c, 0.95, level, np.nan, p_adj)
    lo, hi = cols["pred_lo"], cols["pred_hi"]
    if abs(raw - (1 - level)) > 1e-9:
        assert (lo > 0 or hi < 0) == (p_adj < 0.05)
    cell = claim_cell({f"m_{k}": v for k, v in cols.items()}, "m_", "pred")
    assert ("‡" in cell) == (p_adj < 0.05)
    assert ("detects" in cell) == (p_adj >= 0.05)
    assert claim_cell({f"m_{k}": v for k, v in cols.items()}, "m_", "learner") == "n/a (fixed test set)"


@pytest.fixture(scope="module")
def random_runs(tmp_path_factory):
    from tests.reports.test_significance import make_run, noisy

    root = tmp_path_factory.mktemp("random_runs")
    rng = np.random.default_rng(11)
    runs = []
    for i in range(3):
        scales = rng.uniform(0.3, 1.0, 4)
        models = {f"m{j}": noisy(float(s), 40 + 10 * i + j) for j, s in enumerate(scales)}
        runs.append(make_run(root / f"r{i}", models, data_seed=i))
    return runs


@pytest.mark.parametrize("correction, metric", [("holm", "pearson"), ("fdr_bh", "r2")])
def test_no_report_row_contradicts_itself(random_runs, correction, metric):
    """Over random runs: in every row of the significance and per-target tables, each claim's interval
    excludes 0 exactly when its adjusted p is below 0.05, and the row is marked exactly then."""
    from reports.significance import per_target_table, significance_table
    from reports.tables import display_per_target, display_significance

    seen = {True: 0, False: 0}
    for run in random_runs:
        table = significance_table(run, correction=correction, n_resamples=49, metrics=(metric,))
        for r in table.to_dict("records"):
            for m in (metric,):
                for claim in ("learner", "pred"):
                    lo, hi, p = r[f"{m}_{claim}_lo"], r[f"{m}_{claim}_hi"], r[f"{m}_{claim}_p_adj"]
                    if not np.isfinite(p):
                        continue
                    assert (lo > 0 or hi < 0) == (p < 0.05), (r["model"], m, claim)
                    seen[bool(p < 0.05)] += 1
        for d in display_significance(table):
            h = d.header
            li = next(i for i, x in enumerate(h) if x.startswith("learners differ?"))
            pi = next(i for i, x in enumerate(h) if x.startswith("fitted predictors differ?"))
            for row, r in zip(d.rows, table.to_dict("records"), strict=True):
                m = d.name.rsplit("-", 1)[1]
                assert ("†" in row[li]) == bool(r[f"{m}_learner_p_adj"] < 0.05)
                assert ("‡" in row[pi]) == bool(r[f"{m}_pred_p_adj"] < 0.05)
                assert "‡" not in row[li] and "†" not in row[pi]
        if metric != "pearson":
            continue
        per = per_target_table(run, correction=correction, n_resamples=49)
        disp = display_per_target(per)[0]
        for model in per.attrs["models"][1:]:
            j = disp.header.index(f"{model} r [95% CI] (fold-level r)")
            for row, (_, r) in zip(disp.rows, per.iterrows(), strict=True):
                assert ("†" in row[j]) == bool(r[f"{model}.learner_p_adj"] < 0.05)
                assert ("‡" in row[j]) == bool(r[f"{model}.pred_p_adj"] < 0.05)
    assert seen[True] and seen[False]  # both kinds of rows occurred, so the check has teeth


@pytest.mark.real_calibration
def test_one_model_seed_of_a_randomized_learner_gets_no_learner_level_mark(tmp_path, monkeypatch):
    """The independent check: the same randomized learner under two seeds, one model seed each, on LOPO.
    Its seed effect is shared by every fold, so the fold-level test alone would call the two different;
    with the calibration saying tabular learners need 2 model seeds, the learner cell says so instead of a
    number, and the predictor claim (these two fitted predictors) is still tested."""
    from reports.significance import significance_table
    from reports.tables import display_significance
    from tests.reports.test_significance import make_run

    def randomized(model_seed):
        def fn(y, perf, seed_fold):
            shared = np.random.default_rng([model_seed, seed_fold[0]]).normal(0, 0.4, y.shape[1])
            return y + shared + np.random.default_rng([model_seed, *seed_fold]).normal(0, 0.6, y.shape)
        return fn

    store = {"designs": {"lopo": {"key": {"split": "lopo", "n_folds": 12, "n_seeds": 1, "n_units": 12},
                                  "ratio_scale": 0.2, "predictor": {"calibrated": True},
                                  "learner": {"calibrated": True, "min_seeds": {"deterministic": 1, "tabular": 2},
                                              "max_seeds": {"tabular": 5}}}}}
    monkeypatch.setattr("reports.calibrated.STORE", store)
    fams = {"rf_a": "tabular", "rf_b": "tabular"}
    one = make_run(tmp_path / "one", {"rf_a": randomized(1), "rf_b": randomized(2)})
    table = significance_table(one, baseline="rf_a", families=fams, metrics=("pearson",), n_resamples=99)
    row = table.set_index("model").loc["rf_b"]
    assert row["pearson_learner_note"] == "needs >= 2 model seeds" and np.isnan(row["pearson_learner_p_adj"])
    assert np.isfinite(row["pearson_pred_p"])
    cells = display_significance(table)[0]
    shown = cells.rows[[r[0] for r in cells.rows].index("rf_b")]
    li = next(i for i, h in enumerate(cells.header) if h.startswith("learners differ?"))
    assert shown[li] == "needs >= 2 model seeds" and "†" not in " ".join(shown)
    # Two model seeds each: the learner claim gets its number (and its seed variance).
    two = make_run(tmp_path / "two", {"rf_a": randomized(1), "rf_b": randomized(2)}, seeds=(0, 1))
    row = significance_table(two, baseline="rf_a", families=fams, metrics=("pearson",),
                             n_resamples=99).set_index("model").loc["rf_b"]
    assert row["pearson_learner_note"] == "" and np.isfinite(row["pearson_learner_p"])
