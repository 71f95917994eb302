import numpy as np
import pytest
from scipy import stats
from sklearn.metrics import mean_absolute_error, r2_score

from benchmark.metrics import mean_pearson, mean_r2, per_target
from reports.summary import column_pearson, column_r2


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
