import numpy as np
import pytest
from scipy import stats
from sklearn.metrics import mean_absolute_error, r2_score

from benchmark.metrics import column_pearson, column_r2, mean_pearson, mean_r2, pearson_from_sums, per_target
from reports.scoring import PooledScorer, metric_from_sums


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
