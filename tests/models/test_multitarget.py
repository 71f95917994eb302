"""lgbm_all_rr (reduced-rank projection) and lgbm_all_tuned (per-rating rounds by grouped inner CV)."""

import numpy as np
import pytest
from lightgbm import LGBMRegressor
from sklearn.decomposition import PCA
from sklearn.model_selection import GroupKFold

from models import MODELS
from models.classical import LGBMModel


@pytest.fixture(scope="module")
def data():
    """Ratings driven by two latent factors (+ noise): strongly correlated like PercePiano's 19."""
    rng = np.random.default_rng(3)
    X = rng.normal(size=(150, 6))
    factors = np.c_[X[:, 0] + 0.5 * X[:, 1] ** 2, np.sin(2 * X[:, 2])]
    y = factors @ rng.normal(size=(2, 19)) + rng.normal(0, 0.3, (150, 19))
    groups = np.repeat(np.arange(15), 10)
    return X, y, groups


def test_reduced_rank_matches_sklearn_pca_projection_of_the_boosters(data):
    X, y, groups = data
    est = MODELS.build("lgbm_all_rr", variance=0.9, n_estimators=30, random_state=0).fit(X[:120], y[:120])
    base = LGBMModel(n_estimators=30, random_state=0).fit(X[:120], y[:120]).predict(X[120:])
    mu, sd = y[:120].mean(0), y[:120].std(0)
    pca = PCA(n_components=0.9, svd_solver="full").fit((y[:120] - mu) / sd)
    ref = pca.inverse_transform(pca.transform((base - mu) / sd)) * sd + mu
    assert est.fitted_summary() == {"n_components": pca.n_components_}
    assert 2 <= pca.n_components_ < 19
    np.testing.assert_allclose(est.predict(X[120:]), ref, atol=1e-10)
    # The projected predictions have the chosen rank (around the training mean).
    assert np.linalg.matrix_rank((est.predict(X[120:]) - mu) / sd, tol=1e-8) == pca.n_components_


def test_reduced_rank_with_all_the_variance_is_plain_lgbm(data):
    X, y, _ = data
    a = MODELS.build("lgbm_all_rr", variance=1.0, n_estimators=20, random_state=0).fit(X, y)
    b = LGBMModel(n_estimators=20, random_state=0).fit(X, y)
    assert a.fitted_summary() == {"n_components": 19}
    np.testing.assert_allclose(a.predict(X), b.predict(X), atol=1e-10)


def test_reduced_rank_keeps_a_constant_rating_and_rejects_a_bad_share(data):
    X, y, _ = data
    y = y.copy()
    y[:, 4] = 3.0  # no variance: its scale is taken as 1, its prediction stays the training value
    pred = MODELS.build("lgbm_all_rr", n_estimators=10, random_state=0).fit(X, y).predict(X)
    np.testing.assert_allclose(pred[:, 4], 3.0, atol=1e-9)
    for bad in (0, 1.5, "0.9", True, float("nan")):
        with pytest.raises(ValueError, match=r"variance must be a number in \(0, 1\], got"):
            MODELS.build("lgbm_all_rr", variance=bad).fit(X, y)


def _reference_rounds(X, y, groups, max_rounds, n_inner):
    """The inner-CV choice recomputed by hand: MSE after k rounds via LightGBM's num_iteration."""
    curves = np.zeros((y.shape[1], max_rounds))
    for itr, ite in GroupKFold(n_splits=n_inner).split(X, y, groups):
        for j in range(y.shape[1]):
            m = LGBMRegressor(n_estimators=max_rounds, learning_rate=0.03, num_leaves=15, min_child_samples=20,
                              subsample=0.8, subsample_freq=1, colsample_bytree=0.5, n_jobs=1, random_state=0,
                              verbose=-1).fit(X[itr], y[itr, j])
            for k in range(1, max_rounds + 1):
                curves[j, k - 1] += np.sum((m.predict(X[ite], num_iteration=k) - y[ite, j]) ** 2)
    return np.argmin(curves, axis=1) + 1


def test_tuned_rounds_are_the_grouped_inner_cv_argmin_and_the_refit_uses_them(data):
    X, y, groups = data
    y = y[:, :3]
    est = MODELS.build("lgbm_all_tuned", max_estimators=40, random_state=0).fit(X, y, groups=groups)
    np.testing.assert_array_equal(est.n_estimators_, _reference_rounds(X, y, groups, 40, 3))
    for j, n in enumerate(est.n_estimators_):
        ref = LGBMRegressor(n_estimators=int(n), learning_rate=0.03, num_leaves=15, min_child_samples=20,
                            subsample=0.8, subsample_freq=1, colsample_bytree=0.5, n_jobs=1, random_state=0,
                            verbose=-1).fit(X, y[:, j])
        np.testing.assert_allclose(est.predict(X)[:, j], ref.predict(X))
    assert est.fitted_summary() == {"n_estimators": [int(n) for n in est.n_estimators_]}


def test_tuned_gives_a_noise_rating_fewer_rounds_than_a_learnable_one(data):
    X, y, groups = data
    rng = np.random.default_rng(0)
    y2 = np.c_[3 * X[:, 0] + X[:, 1], rng.normal(size=len(X))]
    est = MODELS.build("lgbm_all_tuned", max_estimators=300, random_state=0).fit(X, y2, groups=groups)
    learnable, noise = est.n_estimators_
    assert learnable > 150 and noise < 50, est.n_estimators_


def test_tuned_inner_cv_is_grouped_and_sees_the_training_fold_only(data, monkeypatch):
    X, y, groups = data
    seen = []
    orig = GroupKFold.split

    def spy(self, X_, y_=None, groups=None):
        seen.append((len(X_), set(np.asarray(groups))))
        return orig(self, X_, y_, groups)

    monkeypatch.setattr(GroupKFold, "split", spy)
    MODELS.build("lgbm_all_tuned", max_estimators=5, random_state=0).fit(X[:90], y[:90, :2], groups=groups[:90])
    assert seen == [(90, set(groups[:90]))]


def test_tuned_rejects_bad_settings(data):
    X, y, _ = data
    for name, bad in (("inner_splits", 1), ("inner_splits", 2.5), ("max_estimators", 0), ("max_estimators", "9")):
        with pytest.raises(ValueError, match=f"{name} must be an integer >= "):
            MODELS.build("lgbm_all_tuned", **{name: bad}).fit(X, y)


def test_both_are_registered_on_the_lgbm_all_inputs():
    for name in ("lgbm_all_rr", "lgbm_all_tuned"):
        assert MODELS.get(name).inputs == MODELS.get("lgbm_all").inputs
