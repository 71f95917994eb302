import numpy as np
import pytest
from scipy import stats
from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score

from benchmark.metrics import (
    METRICS,
    POOLED_METRICS,
    REGISTRY,
    SPREAD_KS,
    SPREAD_METRICS,
    ccc_from_sums,
    column_ccc,
    column_mse,
    column_pearson,
    column_r2,
    column_spread,
    mean_pearson,
    mean_r2,
    pearson_from_sums,
    per_target,
    spread_name,
)
from reports.scoring import PooledScorer, metric_from_sums, pooled_metric


def test_per_target_matches_references():
    rng = np.random.default_rng(0)
    t = rng.random((50, 4))
    p = t + rng.normal(0, 0.2, (50, 4))
    m = per_target(t, p)
    for j in range(4):
        assert m["pearson"][j] == pytest.approx(stats.pearsonr(t[:, j], p[:, j]).statistic, abs=1e-12)
        assert m["spearman"][j] == pytest.approx(stats.spearmanr(t[:, j], p[:, j]).statistic, abs=1e-12)
        assert m["r2"][j] == pytest.approx(r2_score(t[:, j], p[:, j]), abs=1e-12)
        assert m["mae"][j] == pytest.approx(mean_absolute_error(t[:, j], p[:, j]), abs=1e-12)
    assert mean_r2(t, p) == pytest.approx(r2_score(t, p), abs=1e-12)  # uniform average, as the paper
    assert mean_pearson(t, p) == pytest.approx(np.mean(m["pearson"]))
    np.testing.assert_allclose(column_pearson(t, p), m["pearson"], atol=1e-12)
    np.testing.assert_allclose(column_r2(t, p), m["r2"], atol=1e-12)


def test_hand_computed_case():
    t = np.array([[1.0], [2.0], [3.0]])
    p = np.array([[1.0], [3.0], [2.0]])
    m = per_target(t, p)
    assert m["pearson"][0] == pytest.approx(0.5)  # cov 0.5 / (1 * 1)
    assert m["r2"][0] == pytest.approx(0.0)  # ss_res 2, ss_tot 2
    assert m["mae"][0] == pytest.approx(2 / 3)


def test_constant_columns_give_nan_not_errors():
    t = np.array([[1.0, 1.0], [2.0, 1.0], [3.0, 1.0]])
    p = np.array([[2.0, 1.0], [2.0, 2.0], [2.0, 3.0]])
    m = per_target(t, p)
    assert np.isnan(m["pearson"][0]) and np.isnan(m["pearson"][1]) and np.isnan(m["r2"][1])
    assert np.isnan(column_pearson(t, p)).all()
    with pytest.raises(ValueError, match="must both be"):
        per_target(t, p[:, :1])


def test_one_pearson_formula_matches_scipy_everywhere():
    """benchmark.metrics.pearson_from_sums is the one Pearson r: its one-call form, the runner's per-target
    scores, the moment-sum scorers of the significance tables and the pooled bootstrap all agree with scipy."""
    rng = np.random.default_rng(5)
    y = rng.normal(3.0, 0.4, (40, 3))  # offset so that the raw sums would cancel without centring
    stack = y[None] + rng.normal(0, 0.5, (2, 40, 3))
    ref = np.array([[stats.pearsonr(y[:, j], s[:, j]).statistic for j in range(3)] for s in stack])
    np.testing.assert_allclose(column_pearson(y, stack), ref, atol=1e-12)
    np.testing.assert_allclose(per_target(y, stack[0])["pearson"], ref[0], atol=1e-12)
    sums = [y.sum(0), stack[0].sum(0), (y * y).sum(0), (stack[0] ** 2).sum(0), (y * stack[0]).sum(0)]
    np.testing.assert_allclose(pearson_from_sums(*sums, 40.0), ref[0], atol=1e-9)
    np.testing.assert_allclose(metric_from_sums(np.stack(sums, axis=-1), np.full(3, 40.0), "pearson"), ref[0],
                               atol=1e-9)
    scorer = PooledScorer(y, stack, "pearson")
    assert scorer.score(np.ones(40)) == pytest.approx(ref.mean(), abs=1e-12)
    w = rng.integers(0, 3, 40)
    rows = np.repeat(np.arange(40), w)
    expect = np.mean([stats.pearsonr(y[rows, j], s[rows, j]).statistic for s in stack for j in range(3)])
    assert scorer.score(w.astype(float)) == pytest.approx(expect, abs=1e-12)
    # Undefined where scipy warns: a constant column, or fewer than two rows.
    assert np.isnan(pearson_from_sums(2.0, 4.0, 2.0, 8.0, 4.0, 2.0))  # y = (1, 1)
    assert np.isnan(column_pearson(y[:1], stack[0][:1])).all()


def test_no_other_pearson_implementation():
    """Every Pearson r in benchmark/ and reports/ goes through benchmark.metrics (no duplicate formula)."""
    from pathlib import Path

    root = Path(__file__).parents[2]
    offenders = []
    for path in [*(root / "benchmark").rglob("*.py"), *(root / "reports").rglob("*.py")]:
        text = path.read_text()
        if path.name != "metrics.py" and ("pearsonr(" in text or "corrcoef(" in text or "def column_pearson" in text):
            offenders.append(path.name)
    assert offenders == []


# ------------------------------------------------------- the literature's metrics


def test_literature_metrics_hand_computed():
    """y = (1, 2, 3), p = (1, 3, 2): both means 2, variances 2/3, covariance 1/3 (moments over n)."""
    t = np.array([[1.0], [2.0], [3.0]])
    p = np.array([[1.0], [3.0], [2.0]])
    sd = np.array([[0.5], [1.0], [0.0]])
    m = per_target(t, p, ("mse", "ccc", "acc_1sd", "acc_0.5sd", "acc_0.1sd"), sd=sd)
    assert m["mse"][0] == pytest.approx(2 / 3)  # (0 + 1 + 1) / 3
    assert m["ccc"][0] == pytest.approx(0.5)  # 2 * 1/3 / (2/3 + 2/3 + 0)
    # |y - p| = 0, 1, 1 against 1 sd = 0.5, 1, 0: the first two are within; 0.5 sd: 0.25, 0.5, 0: the first only.
    assert m["acc_1sd"][0] == pytest.approx(2 / 3)
    assert m["acc_0.5sd"][0] == pytest.approx(1 / 3)
    assert m["acc_0.1sd"][0] == pytest.approx(1 / 3)
    # A shift: r stays 1, CCC = 2 * 2/3 / (2/3 + 2/3 + 1) = 4/7, MSE = 1.
    m = per_target(t, t + 1.0, ("pearson", "ccc", "mse"))
    assert m["pearson"][0] == pytest.approx(1.0) and m["ccc"][0] == pytest.approx(4 / 7)
    assert m["mse"][0] == pytest.approx(1.0)
    # A constant prediction has no r, but its CCC is 0 (no covariance) and its MSE is defined.
    m = per_target(t, np.full_like(t, 2.0), ("pearson", "ccc", "mse"))
    assert np.isnan(m["pearson"][0]) and m["ccc"][0] == 0.0 and m["mse"][0] == pytest.approx(2 / 3)
    # Undefined: truth and prediction the same constant (no spread at all), or no rows.
    assert np.isnan(ccc_from_sums(6.0, 6.0, 12.0, 12.0, 12.0, 3.0))
    assert np.isnan(column_mse(t[:0], p[:0])).all() and np.isnan(column_spread(t[:0], p[:0], sd[:0], 1.0)).all()
    with pytest.raises(ValueError, match="standard deviation"):
        per_target(t, p, ("acc_1sd",))


def test_mse_matches_sklearn_and_ccc_matches_lins_decomposition():
    """MSE against scikit-learn; CCC against Lin's (1989) factorisation r * C_b, C_b = 2 / (v + 1/v + u^2) with
    v = s_y / s_p and u = (mean_y - mean_p) / sqrt(s_y s_p): an independent route to the same number."""
    rng = np.random.default_rng(3)
    y = rng.normal(0.5, 0.1, (60, 4))
    p = 0.8 * y + rng.normal(0.12, 0.05, (60, 4))
    m = per_target(y, p, ("mse", "ccc"))
    for j in range(4):
        assert m["mse"][j] == pytest.approx(mean_squared_error(y[:, j], p[:, j]), abs=1e-15)
        sy, sp = y[:, j].std(), p[:, j].std()  # ddof 0, as Lin's estimator
        v, u = sy / sp, (y[:, j].mean() - p[:, j].mean()) / np.sqrt(sy * sp)
        r = stats.pearsonr(y[:, j], p[:, j]).statistic
        assert m["ccc"][j] == pytest.approx(r * 2.0 / (v + 1.0 / v + u * u), abs=1e-12)
    np.testing.assert_allclose(column_ccc(y, p[None])[0], m["ccc"], atol=1e-14)
    np.testing.assert_allclose(column_mse(y, p), m["mse"], atol=1e-15)


def test_spread_accuracy_matches_the_upstream_rule():
    """The dataset paper's rule (upstream evaluate_std_score, re-expressed here): per label, the share of
    predictions inside [y - k sd, y + k sd]; then the mean over labels."""
    rng = np.random.default_rng(4)
    y = rng.uniform(0.2, 0.8, (80, 5))
    sd = rng.uniform(0.0, 0.15, (80, 5))
    sd[:3] = 0.0
    p = y + rng.normal(0, 0.08, y.shape)
    p[0] = y[0]  # an exact hit counts even with sd 0
    for k in SPREAD_KS:
        inside = (p >= y - k * sd) & (p <= y + k * sd)
        reference = inside.mean(axis=0)
        name = spread_name(k)
        np.testing.assert_allclose(per_target(y, p, (name,), sd=sd)[name], reference, atol=0)
        np.testing.assert_allclose(column_spread(y, p[None], sd, k)[0], reference, atol=0)
    assert [spread_name(k) for k in SPREAD_KS] == list(SPREAD_METRICS) == ["acc_1sd", "acc_0.5sd", "acc_0.1sd"]


@pytest.mark.parametrize("metric", POOLED_METRICS)
def test_pooled_scorer_gives_every_pooled_metric(metric):
    """Each pooled metric from weighted moment sums equals the metric of the resampled rows (offset data, two
    replicates), so its bootstraps resample what the tables print."""
    rng = np.random.default_rng(6)
    y = rng.normal(3.0, 0.4, (40, 3))
    stack = y[None] + rng.normal(0.1, 0.3, (2, 40, 3))
    sd = rng.uniform(0.05, 0.5, (40, 3))
    scorer = PooledScorer(y, stack, metric, sd=sd)
    assert not scorer.direct
    assert scorer.score(np.ones(40)) == pytest.approx(pooled_metric(y, stack, metric, sd=sd), abs=1e-12)
    w = rng.integers(0, 3, 40)
    rows = np.repeat(np.arange(40), w)
    assert scorer.score(w.astype(float)) == pytest.approx(
        pooled_metric(y[rows], stack[:, rows], metric, sd=sd[rows]), abs=1e-12)


def test_registry_describes_every_metric():
    assert set(METRICS) | set(SPREAD_METRICS) <= set(REGISTRY)
    assert {"mse", "ccc", *SPREAD_METRICS} <= set(POOLED_METRICS)
    assert not REGISTRY["mse"].higher_is_better and REGISTRY["ccc"].higher_is_better
    assert "Lin 1989" in REGISTRY["ccc"].source and REGISTRY["acc_0.5sd"].spread_k == 0.5
