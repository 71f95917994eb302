"""Paired tests, effect sizes, permutation test and p-value adjustment.

Reference answers: scipy.stats (ttest_rel, wilcoxon, t), statsmodels
multipletests, and worked examples computed by hand below. Tolerance 1e-8
unless stated.
"""

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from scipy import stats
from statsmodels.stats.multitest import multipletests

from benchmark.errors import ConfigError
from reports.stats import (
    BayesianTestResult,
    TestResult,
    adjust_pvalues,
    bayesian_correlated_ttest,
    corrected_resampled_ttest,
    effect_size,
    five_by_two_cv_ttest,
    paired_ttest,
    permutation_test_predictions,
    wilcoxon_test,
)

TOL = 1e-8


def _scores(seed, n, shift=0.1):
    rng = np.random.default_rng(seed)
    a = rng.normal(0.6, 0.1, n)
    return a, a - shift + rng.normal(0, 0.1, n)


# ------------------------------------------------------------ paired t-test


@pytest.mark.parametrize(("seed", "n"), [(0, 2), (1, 5), (2, 20), (3, 100)])
def test_paired_ttest_matches_scipy(seed, n):
    a, b = _scores(seed, n)
    res = paired_ttest(a, b)
    ref = stats.ttest_rel(a, b)
    assert res.statistic == pytest.approx(ref.statistic, abs=TOL)
    assert res.pvalue == pytest.approx(ref.pvalue, abs=TOL)
    assert res.df == n - 1 == ref.df
    ci = ref.confidence_interval(0.95)
    assert (res.ci_low, res.ci_high) == pytest.approx((ci.low, ci.high), abs=TOL)
    assert res.mean_diff == pytest.approx(np.mean(a - b), abs=1e-12)
    assert isinstance(res, TestResult) and res.n == n


@settings(max_examples=60, deadline=None)
@given(
    arrays(np.float64, st.integers(3, 30), elements=st.floats(-1, 1)),
    st.floats(-0.5, 0.5),
    st.integers(0, 2**31),
)
def test_paired_tests_properties(a, shift, seed):
    noise = np.random.default_rng(seed).normal(0, 0.05, a.size)
    b = a + shift + noise
    naive = paired_ttest(a, b)
    ref = stats.ttest_rel(a, b)
    assert naive.statistic == pytest.approx(ref.statistic, rel=1e-8, abs=TOL)
    assert naive.pvalue == pytest.approx(ref.pvalue, abs=TOL)
    corrected = corrected_resampled_ttest(a, b, 90, 10)
    # The correction only inflates the variance: never more significant than the naive test.
    assert corrected.pvalue >= naive.pvalue - 1e-12
    assert 0.0 <= corrected.pvalue <= 1.0
    assert paired_ttest(b, a).statistic == pytest.approx(-naive.statistic, abs=TOL)


# ------------------------------------------------ corrected resampled t-test


def test_corrected_ttest_worked_example():
    # J = 5 differences d = a - b = [0.02, 0.04, 0.01, 0.03, 0.05]
    # mean(d) = 0.15 / 5 = 0.03
    # deviations -0.01, 0.01, -0.02, 0, 0.02 -> squares sum 1e-4+1e-4+4e-4+0+4e-4 = 1e-3
    # var(d, ddof=1) = 1e-3 / 4 = 2.5e-4
    # n_test / n_train = 10 / 90 = 1/9;  1/J + 1/9 = 1/5 + 1/9 = 14/45
    # corrected variance = 14/45 * 2.5e-4 = 7/90000  ->  se = sqrt(7) / 300
    # t = 0.03 / (sqrt(7)/300) = 9 / sqrt(7) = 3.40168..., df = J - 1 = 4
    # Student t with 4 df has the closed-form cdf
    #   F(t) = 1/2 + 3/8 * x * (1 - t^2 / (12 (1 + t^2/4))),  x = t / sqrt(1 + t^2/4)
    # and the two-sided p = 2 (1 - F(t)) = 0.0272351...
    b = np.array([0.70, 0.66, 0.75, 0.68, 0.60])
    d = np.array([0.02, 0.04, 0.01, 0.03, 0.05])
    a = b + d
    t = 9 / np.sqrt(7)
    x = t / np.sqrt(1 + t * t / 4)
    p = 2 * (1 - (0.5 + 3 / 8 * x * (1 - t * t / (12 * (1 + t * t / 4)))))
    res = corrected_resampled_ttest(a, b, n_train=90, n_test=10)
    assert res.statistic == pytest.approx(t, abs=TOL)
    assert res.pvalue == pytest.approx(p, abs=TOL)
    assert res.pvalue == pytest.approx(0.0272351397, abs=1e-9)
    assert res.df == 4
    assert res.mean_diff == pytest.approx(0.03, abs=1e-12)
    half = stats.t.ppf(0.975, 4) * np.sqrt(7) / 300
    assert (res.ci_low, res.ci_high) == pytest.approx((0.03 - half, 0.03 + half), abs=TOL)
    # Per-unit sizes (group folds of unequal size) use their means: 90 and 10 again.
    res_arr = corrected_resampled_ttest(a, b, [88, 92, 90, 89, 91], [12, 8, 10, 11, 9])
    assert res_arr.statistic == pytest.approx(t, abs=TOL)
    # Naive test on the same d: se = sqrt(2.5e-4 / 5) = sqrt(5e-5), t = 0.03 / sqrt(5e-5) = 3 sqrt(2)
    assert paired_ttest(a, b).statistic == pytest.approx(3 * np.sqrt(2), abs=TOL)


def test_corrected_ttest_rejects_bad_sizes():
    a, b = _scores(0, 5)
    with pytest.raises(ConfigError, match="positive sizes"):
        corrected_resampled_ttest(a, b, 0, 10)
    with pytest.raises(ConfigError, match="positive sizes"):
        corrected_resampled_ttest(a, b, 90, [10, 10, -1, 10, 10])


# ------------------------------------------------------------- Wilcoxon


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("n", [6, 25, 80])
def test_wilcoxon_matches_scipy(seed, n):
    a, b = _scores(seed, n, shift=0.03)
    res = wilcoxon_test(a, b)
    ref = stats.wilcoxon(a, b)
    assert res.statistic == pytest.approx(ref.statistic, abs=TOL)
    assert res.pvalue == pytest.approx(ref.pvalue, abs=TOL)
    assert np.isnan(res.df)


def test_wilcoxon_with_ties_and_zeros_matches_scipy():
    a = np.array([0.5, 0.6, 0.7, 0.8, 0.5, 0.4, 0.9, 0.3, 0.6, 0.7])
    b = np.array([0.4, 0.6, 0.5, 0.6, 0.4, 0.5, 0.7, 0.3, 0.5, 0.5])
    for zero_method in ("wilcox", "pratt", "zsplit"):
        res = wilcoxon_test(a, b, zero_method=zero_method)
        ref = stats.wilcoxon(a, b, zero_method=zero_method)
        assert res.statistic == pytest.approx(ref.statistic, abs=TOL)
        assert res.pvalue == pytest.approx(ref.pvalue, abs=TOL)


# ---------------------------------------------------------------- 5x2cv


def test_five_by_two_worked_example():
    # differences p_i^(j), replication i = row, fold j = column:
    #   [0.04 0.02] mean 0.03 -> s1^2 = 0.01^2 + 0.01^2 = 2e-4
    #   [0.01 0.03] mean 0.02 -> s2^2 = 2e-4
    #   [0.05 0.01] mean 0.03 -> s3^2 = 0.02^2 + 0.02^2 = 8e-4
    #   [0.02 0.02] mean 0.02 -> s4^2 = 0
    #   [0.03 0.05] mean 0.04 -> s5^2 = 2e-4
    # sum s_i^2 / 5 = 1.4e-3 / 5 = 2.8e-4; t = p_1^(1) / sqrt(2.8e-4) = 0.04 / 0.0167332 = 2.390457
    # Student t with 5 df: F(t) = 1/2 + (th + sin th cos th (1 + 2/3 cos^2 th)) / pi, th = atan(t / sqrt 5)
    p = np.array([[0.04, 0.02], [0.01, 0.03], [0.05, 0.01], [0.02, 0.02], [0.03, 0.05]])
    b = np.full((5, 2), 0.6)
    res = five_by_two_cv_ttest(b + p, b)
    t = 0.04 / np.sqrt(2.8e-4)
    th = np.arctan(t / np.sqrt(5))
    pval = 2 * (1 - (0.5 + (th + np.sin(th) * np.cos(th) * (1 + 2 / 3 * np.cos(th) ** 2)) / np.pi))
    assert res.statistic == pytest.approx(t, abs=TOL)
    assert res.statistic == pytest.approx(2.3904572187, abs=1e-9)
    assert res.pvalue == pytest.approx(pval, abs=TOL)
    assert res.df == 5
    assert res.mean_diff == pytest.approx(0.028, abs=1e-12)


def test_five_by_two_checks_shape_and_nan():
    with pytest.raises(ConfigError, match=r"shape \(5, 2\)"):
        five_by_two_cv_ttest(np.zeros((10,)), np.zeros((10,)))
    bad = np.zeros((5, 2))
    bad[2, 1] = np.nan
    with pytest.raises(ConfigError, match="NaN"):
        five_by_two_cv_ttest(bad, np.zeros((5, 2)))
    same = np.random.default_rng(0).random((5, 2))
    res = five_by_two_cv_ttest(same, same)
    assert (res.statistic, res.pvalue) == (0.0, 1.0)


# --------------------------------------------------- Bayesian correlated t


def test_bayesian_correlated_ttest_posterior():
    a, b = _scores(4, 30, shift=0.02)
    d = a - b
    rho, rope = 0.1, 0.01
    res = bayesian_correlated_ttest(a, b, rho=rho, rope=rope)
    scale = np.sqrt((1 / 30 + rho / (1 - rho)) * np.var(d, ddof=1))
    post = stats.t(df=29, loc=d.mean(), scale=scale)
    assert isinstance(res, BayesianTestResult)
    assert res.scale == pytest.approx(scale, abs=TOL)
    assert res.p_a_better == pytest.approx(post.sf(rope), abs=TOL)
    assert res.p_b_better == pytest.approx(post.cdf(-rope), abs=TOL)
    assert res.p_rope == pytest.approx(post.cdf(rope) - post.cdf(-rope), abs=TOL)
    assert res.p_a_better + res.p_rope + res.p_b_better == pytest.approx(1.0, abs=1e-12)
    assert np.isnan(res.pvalue) and res.df == 29
    flipped = bayesian_correlated_ttest(a, b, rho=rho, rope=rope, higher_is_better=False)
    assert flipped.p_a_better == pytest.approx(res.p_b_better, abs=TOL)


def test_bayesian_ttest_without_correlation_is_one_sided_ttest():
    # rho = 0 and rope = 0: the posterior of mu is t(n-1, mean, se) and
    # P(mu < 0) equals the one-sided p-value of the paired t-test for mean > 0.
    a, b = _scores(5, 12, shift=0.1)
    res = bayesian_correlated_ttest(a, b, rho=0.0, rope=0.0)
    ref = stats.ttest_rel(a, b)
    assert ref.statistic > 0
    assert res.p_b_better == pytest.approx(ref.pvalue / 2, abs=TOL)
    assert res.p_rope == pytest.approx(0.0, abs=1e-12)


def test_bayesian_ttest_rejects_bad_parameters():
    a, b = _scores(0, 10)
    with pytest.raises(ConfigError, match="rho"):
        bayesian_correlated_ttest(a, b, rho=1.0, rope=0.01)
    with pytest.raises(ConfigError, match="rope"):
        bayesian_correlated_ttest(a, b, rho=0.1, rope=-0.01)


# ---------------------------------------------------------- effect sizes


def test_effect_size_by_hand():
    b = np.zeros(5)
    a = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
    # d = a: mean 3, sd(ddof=1) = sqrt(10/4) = sqrt(2.5); d_z = 3 / sqrt(2.5) = 1.897366...
    # Hedges J(m) with m = n - 1 = 4: Gamma(2) / (sqrt(2) Gamma(1.5)) = 1 / (sqrt(2) sqrt(pi)/2) = sqrt(2/pi)
    es = effect_size(a, b)
    assert es.cohen_dz == pytest.approx(3 / np.sqrt(2.5), abs=TOL)
    assert es.hedges_gz == pytest.approx(3 / np.sqrt(2.5) * np.sqrt(2 / np.pi), abs=TOL)
    ci = stats.ttest_rel(a, b).confidence_interval(0.95)
    assert (es.ci_low, es.ci_high) == pytest.approx((ci.low, ci.high), abs=TOL)
    assert not es.corrected


def test_hedges_correction_close_to_approximation():
    a, b = _scores(1, 20)
    es = effect_size(a, b)
    m = 19
    assert es.hedges_gz / es.cohen_dz == pytest.approx(1 - 3 / (4 * m - 1), abs=1e-3)


def test_effect_size_corrected_ci_matches_test():
    a, b = _scores(2, 30)
    es = effect_size(a, b, n_train=270, n_test=30, confidence=0.9)
    res = corrected_resampled_ttest(a, b, 270, 30, confidence=0.9)
    assert (es.ci_low, es.ci_high) == pytest.approx((res.ci_low, res.ci_high), abs=TOL)
    assert es.corrected and es.confidence == 0.9
    with pytest.raises(ConfigError, match="both n_train and n_test"):
        effect_size(a, b, n_train=270)


# ---------------------------------------------------- degenerate inputs


@pytest.mark.parametrize(
    "test",
    [
        paired_ttest,
        wilcoxon_test,
        lambda a, b: corrected_resampled_ttest(a, b, 90, 10),
    ],
    ids=["ttest", "wilcoxon", "corrected"],
)
def test_identical_inputs_give_p_one(test):
    a = np.array([0.5, 0.6, 0.7, 0.55])
    res = test(a, a.copy())
    assert res.statistic == 0.0
    assert res.pvalue == 1.0
    assert res.mean_diff == 0.0


def test_identical_inputs_other_results():
    a = np.array([0.5, 0.6, 0.7, 0.55])
    bayes = bayesian_correlated_ttest(a, a, rho=0.1, rope=0.01)
    assert (bayes.p_a_better, bayes.p_rope, bayes.p_b_better) == (0.0, 1.0, 0.0)
    es = effect_size(a, a)
    assert es.cohen_dz == 0.0 and es.hedges_gz == 0.0


def test_constant_nonzero_difference():
    a = np.array([0.5, 0.6, 0.7, 0.55])
    res = paired_ttest(a + 0.125, a)  # 0.125 is exact in binary: var(d) == 0
    assert res.statistic == np.inf and res.pvalue == 0.0
    assert effect_size(a, a + 0.125).cohen_dz == -np.inf


@pytest.mark.parametrize("test", [paired_ttest, wilcoxon_test, lambda a, b: corrected_resampled_ttest(a, b, 9, 1)])
def test_fewer_than_two_pairs_raises(test):
    with pytest.raises(ConfigError, match="at least 2 paired scores"):
        test([0.5], [0.4])
    with pytest.raises(ConfigError, match="at least 2 paired scores"):
        test([], [])


def test_length_mismatch_and_shape_raise():
    with pytest.raises(ConfigError, match="differ in length"):
        paired_ttest([0.1, 0.2, 0.3], [0.1, 0.2])
    with pytest.raises(ConfigError, match="1-D"):
        paired_ttest(np.zeros((2, 3)), np.zeros((2, 3)))
    with pytest.raises(ConfigError, match="nan_policy"):
        paired_ttest([0.1, 0.2], [0.1, 0.3], nan_policy="drop")


def test_nan_policies():
    a, b = _scores(3, 10)
    a_nan = a.copy()
    a_nan[3] = np.nan
    keep = np.arange(10) != 3
    prop = paired_ttest(a_nan, b)
    assert np.isnan(prop.statistic) and np.isnan(prop.pvalue)
    assert np.isnan(wilcoxon_test(a_nan, b).pvalue)
    omit = paired_ttest(a_nan, b, nan_policy="omit")
    ref = stats.ttest_rel(a[keep], b[keep])
    assert omit.pvalue == pytest.approx(ref.pvalue, abs=TOL) and omit.n == 9
    cor = corrected_resampled_ttest(a_nan, b, np.arange(90, 100), np.arange(10, 20), nan_policy="omit")
    ratio = np.arange(10, 20)[keep].mean() / np.arange(90, 100)[keep].mean()
    d = (a - b)[keep]
    assert cor.statistic == pytest.approx(d.mean() / np.sqrt((1 / 9 + ratio) * d.var(ddof=1)), abs=TOL)
    with pytest.raises(ConfigError, match="NaN"):
        paired_ttest(a_nan, b, nan_policy="raise")
    with pytest.raises(ConfigError, match="at least 2"):
        paired_ttest([np.nan, 0.1, np.nan], [0.2, 0.3, 0.1], nan_policy="omit")


# ------------------------------------------------------ permutation test


def _mse(y, p):
    return float(np.mean((y - p) ** 2))


def test_permutation_test_matches_exact_enumeration():
    rng = np.random.default_rng(7)
    y = rng.normal(size=8)
    pa = y + rng.normal(0, 0.5, 8)
    pb = y + rng.normal(0, 0.8, 8)
    observed = _mse(y, pa) - _mse(y, pb)
    # Exact null: all 2^8 swap patterns equally likely.
    null = []
    for swap in itertools.product([False, True], repeat=8):
        s = np.array(swap)
        null.append(_mse(y, np.where(s, pb, pa)) - _mse(y, np.where(s, pa, pb)))
    exact = np.mean(np.abs(null) >= abs(observed) - 1e-12)
    res = permutation_test_predictions(y, pa, pb, _mse, n_permutations=20000, seed=1)
    assert res.statistic == pytest.approx(observed, abs=1e-12)
    # Monte Carlo error sd <= sqrt(0.25 / 20000) = 0.0035.
    assert res.pvalue == pytest.approx(exact, abs=0.015)


def test_permutation_test_multi_target_and_extremes():
    rng = np.random.default_rng(0)
    y = rng.normal(size=(200, 3))
    good = y + rng.normal(0, 0.1, y.shape)
    bad = y + rng.normal(0, 2.0, y.shape)
    res = permutation_test_predictions(y, good, bad, _mse, n_permutations=199, seed=0)
    assert res.pvalue == pytest.approx(1 / 200)  # nothing as extreme: the +1 correction
    same = permutation_test_predictions(y, good, good.copy(), _mse, n_permutations=99)
    assert same.pvalue == 1.0 and same.statistic == 0.0
    again = permutation_test_predictions(y, good, bad + 1.9 * (good - bad), _mse, n_permutations=99, seed=3)
    assert again == permutation_test_predictions(y, good, bad + 1.9 * (good - bad), _mse, n_permutations=99, seed=3)


def test_permutation_test_validates():
    y = np.zeros((5, 2))
    with pytest.raises(ConfigError, match="common shape"):
        permutation_test_predictions(y, y, np.zeros((5, 3)), _mse)
    with pytest.raises(ConfigError, match="n_permutations"):
        permutation_test_predictions(y, y, y, _mse, n_permutations=0)
    with pytest.raises(ConfigError, match="at least 2 samples"):
        permutation_test_predictions(y[:1], y[:1], y[:1], _mse)


# ----------------------------------------------------- p-value adjustment


@pytest.mark.parametrize("method", ["holm", "fdr_bh", "bonferroni", "fdr_by"])
def test_adjust_pvalues_matches_statsmodels(method):
    p = np.array([0.001, 0.01, 0.02, 0.03, 0.04, 0.2, 0.5, 0.049])
    adj, rej = adjust_pvalues(p, method)
    ref_rej, ref_adj, _, _ = multipletests(p, alpha=0.05, method=method)
    np.testing.assert_allclose(adj, ref_adj, atol=TOL, rtol=0)
    np.testing.assert_array_equal(rej, ref_rej)


def test_adjust_pvalues_is_explicit_not_statsmodels_default():
    p = np.array([0.01, 0.02, 0.03, 0.04])
    holm, _ = adjust_pvalues(p)  # our default is Holm
    hs = multipletests(p)[1]  # statsmodels' default, Holm-Sidak
    assert not np.allclose(holm, hs)
    np.testing.assert_allclose(holm, multipletests(p, method="holm")[1], atol=TOL)


def test_adjust_pvalues_nan_pass_through_and_shape():
    p = np.array([[0.01, np.nan], [0.04, 0.03]])
    adj, rej = adjust_pvalues(p, "fdr_bh")
    assert adj.shape == rej.shape == (2, 2)
    assert np.isnan(adj[0, 1]) and not rej[0, 1]
    ref = multipletests([0.01, 0.04, 0.03], method="fdr_bh")[1]
    np.testing.assert_allclose(adj[~np.isnan(p)], ref, atol=TOL)
    all_nan, none = adjust_pvalues([np.nan, np.nan], "holm")
    assert np.isnan(all_nan).all() and not none.any()


def test_adjust_pvalues_validates():
    with pytest.raises(ConfigError, match="unknown p-value adjustment 'hs'"):
        adjust_pvalues([0.1], "hs")
    with pytest.raises(ConfigError, match=r"\[0, 1\]"):
        adjust_pvalues([1.5], "holm")


def test_standardized_difference_by_hand():
    from reports.paired import standardized_difference

    # Cohen's q: atanh(0.5) - atanh(0.3) = 0.5493061 - 0.3095196.
    assert standardized_difference(0.5, 0.3, "pearson") == pytest.approx(0.2397865, abs=1e-7)
    # R²: (0.4 - 0.2) / (1 - 0.2).
    assert standardized_difference(0.4, 0.2, "r2") == pytest.approx(0.25)
    assert np.isnan(standardized_difference(np.nan, 0.3, "pearson"))
    assert np.isnan(standardized_difference(1.0, 0.3, "pearson"))
    with pytest.raises(ConfigError, match="unknown metric"):
        standardized_difference(0.1, 0.2, "mae")
