"""Bootstrap confidence intervals: segment and cluster bootstrap, paired differences."""

import numpy as np
import pytest
from scipy import stats

from benchmark.errors import ConfigError
from reports.stats import BootstrapResult, bootstrap_ci, paired_bootstrap_diff


def mean_pearson(y_true, y_pred):
    """Mean Pearson r over target columns."""
    yt = y_true - y_true.mean(axis=0)
    yp = y_pred - y_pred.mean(axis=0)
    return float(np.mean((yt * yp).sum(axis=0) / np.sqrt((yt**2).sum(axis=0) * (yp**2).sum(axis=0))))


def _clustered(seed=0, n_groups=20, per_group=30, between=1.0, within=0.1):
    rng = np.random.default_rng(seed)
    groups = np.repeat(np.arange(n_groups), per_group)
    x = rng.normal(0, between, n_groups)[groups] + rng.normal(0, within, groups.size)
    return x, groups


def test_percentile_ci_of_mean_is_normal_theory():
    x = np.random.default_rng(0).normal(10.0, 2.0, 5000)
    res = bootstrap_ci(x, np.mean, n_resamples=2000)
    se = x.std(ddof=1) / np.sqrt(x.size)
    assert isinstance(res, BootstrapResult)
    assert res.estimate == pytest.approx(x.mean())
    # Percentile quantiles of 2000 resamples carry Monte Carlo error of about 0.05 se.
    assert res.low == pytest.approx(x.mean() - 1.96 * se, abs=0.15 * se)
    assert res.high == pytest.approx(x.mean() + 1.96 * se, abs=0.15 * se)
    assert (res.method, res.resampled, res.n_resamples, res.n_units) == ("percentile", "segments", 2000, 5000)


def test_bca_and_basic_close_for_symmetric_statistic():
    x = np.random.default_rng(1).normal(0.0, 1.0, 400)
    se = x.std(ddof=1) / np.sqrt(x.size)
    for method in ("BCa", "basic"):
        res = bootstrap_ci(x, np.mean, method=method, n_resamples=2000)
        assert res.method == method
        assert res.high - res.low == pytest.approx(2 * 1.96 * se, rel=0.15)


def test_cluster_bootstrap_wider_for_clustered_data():
    x, groups = _clustered()
    seg = bootstrap_ci(x, np.mean, n_resamples=1000)
    clu = bootstrap_ci(x, np.mean, n_resamples=1000, groups=groups, resampled="performers")
    assert clu.resampled == "performers" and clu.n_units == 20
    assert clu.estimate == pytest.approx(seg.estimate)
    # Between-group sd 1 dominates: the segment bootstrap pretends to have 600
    # independent values, the cluster bootstrap knows there are 20.
    assert (clu.high - clu.low) > 3 * (seg.high - seg.low)
    se_groups = stats.sem(np.bincount(groups, weights=x) / 30)
    assert clu.high - clu.low == pytest.approx(2 * 1.96 * se_groups, rel=0.25)


def test_singleton_groups_reproduce_segment_bootstrap():
    # With one row per group, labels sorted like the rows, the cluster
    # bootstrap draws the same row indices from the same seed.
    x = np.random.default_rng(2).normal(size=50)
    seg = bootstrap_ci(x, np.median, n_resamples=500, seed=3)
    clu = bootstrap_ci(x, np.median, n_resamples=500, seed=3, groups=np.arange(50) * 3 + 100)
    assert (clu.low, clu.high) == pytest.approx((seg.low, seg.high), abs=1e-12)
    assert clu.resampled == "groups"


def test_paired_arrays_statistic_and_seed():
    rng = np.random.default_rng(3)
    y = rng.normal(size=(120, 19))
    pred = y + rng.normal(0, 1.0, y.shape)
    res = bootstrap_ci((y, pred), mean_pearson, n_resamples=300, seed=5)
    assert res.estimate == pytest.approx(mean_pearson(y, pred))
    assert res.low < res.estimate < res.high
    assert res == bootstrap_ci((y, pred), mean_pearson, n_resamples=300, seed=5)
    assert res != bootstrap_ci((y, pred), mean_pearson, n_resamples=300, seed=6)
    bca = bootstrap_ci((y, pred), mean_pearson, n_resamples=300, method="BCa", groups=np.arange(120) % 12)
    assert bca.low < bca.estimate < bca.high and bca.n_units == 12


def test_paired_bootstrap_diff_uses_same_resamples():
    rng = np.random.default_rng(4)
    y = rng.normal(size=(80, 4))
    pa = y + rng.normal(0, 1.0, y.shape)
    # Pearson r ignores a shift, so on every common resample the difference is exactly 0;
    # independent resamples of A and B would give a wide interval.
    res = paired_bootstrap_diff(y, pa, pa + 3.0, mean_pearson, n_resamples=200)
    assert res.estimate == pytest.approx(0.0, abs=1e-12)
    assert res.low == pytest.approx(0.0, abs=1e-12) and res.high == pytest.approx(0.0, abs=1e-12)


def test_paired_bootstrap_diff_detects_better_model():
    rng = np.random.default_rng(5)
    y = rng.normal(size=(300, 3))
    groups = np.repeat(np.arange(15), 20)
    good = y + rng.normal(0, 0.5, y.shape)
    bad = y + rng.normal(0, 1.5, y.shape)
    for g in (None, groups):
        res = paired_bootstrap_diff(y, good, bad, mean_pearson, groups=g, n_resamples=500)
        assert res.estimate == pytest.approx(mean_pearson(y, good) - mean_pearson(y, bad))
        assert res.low > 0


def test_bootstrap_validates_inputs():
    x = np.arange(10.0)
    with pytest.raises(ConfigError, match="same number of rows"):
        bootstrap_ci((x, x[:5]), lambda a, b: 0.0)
    with pytest.raises(ConfigError, match="one label per row"):
        bootstrap_ci(x, np.mean, groups=[0, 1])
    with pytest.raises(ConfigError, match="at least 2 resampling units"):
        bootstrap_ci(x, np.mean, groups=np.zeros(10), resampled="performers")
    with pytest.raises(ConfigError, match="unknown"):
        bootstrap_ci(x, np.mean, method="bca")
    with pytest.raises(ConfigError, match="confidence"):
        bootstrap_ci(x, np.mean, confidence=95)
    with pytest.raises(ConfigError, match="common shape"):
        paired_bootstrap_diff(x, x, x[:3], lambda a, b: 0.0)


def test_nan_statistic_gives_nan_interval():
    res = bootstrap_ci(np.array([1.0, np.nan, 2.0]), np.mean)
    assert np.isnan(res.estimate) and np.isnan(res.low) and np.isnan(res.high)


def test_bca_bounds_match_scipy_bca():
    """The BCa bounds from scipy's own replicates and the jackknife equal scipy.stats.bootstrap(method='BCa')."""
    from reports.bootstrap import bca_bounds

    x = np.random.default_rng(1).gamma(2.0, size=25)
    res = stats.bootstrap((x,), np.mean, method="BCa", n_resamples=999, rng=np.random.default_rng(3))
    jack = np.array([np.delete(x, i).mean() for i in range(x.size)])
    lo, hi = bca_bounds(res.bootstrap_distribution, x.mean(), jack)
    assert lo == pytest.approx(res.confidence_interval.low, rel=1e-12)
    assert hi == pytest.approx(res.confidence_interval.high, rel=1e-12)
    # Expanded for 25 units: the normal quantile becomes sqrt(25/24) t_24, so the interval widens.
    elo, ehi = bca_bounds(res.bootstrap_distribution, x.mean(), jack, n_units=25)
    assert elo < lo and ehi > hi
    with pytest.raises(ConfigError, match="at least 3"):
        bca_bounds(res.bootstrap_distribution, x.mean(), jack, n_units=2)
