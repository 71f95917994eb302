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


@settings(max_examples=60, deadline=None)
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
