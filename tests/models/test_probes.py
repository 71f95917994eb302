"""Issue 19: the probe family against reference implementations. ``ridge_path`` is scikit-learn's Ridge for
every alpha; ``ridge_probe`` picks, per rating, the alpha of least squared error over a grouped inner CV
(recomputed here by brute force with GroupKFold and sklearn's Ridge) and refits it on the whole training
fold; ``mlp_probe`` keeps the weights of its best validation epoch, validated on whole groups."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.impute import SimpleImputer
from sklearn.linear_model import Ridge
from sklearn.model_selection import GroupKFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from models.probes import MLPProbe, RidgeProbe, ridge_path
from splits.inner import holdout


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(3)
    X = rng.normal(size=(90, 12))
    # Ratings of very different noise levels: their best alphas differ.
    w = rng.normal(size=(12, 4))
    y = X @ w * np.array([1.0, 0.3, 0.05, 0.0]) + rng.normal(0, [0.1, 0.5, 1.0, 1.0], (90, 4))
    groups = np.repeat(np.arange(9), 10)
    return X, y, groups


def _scaler(X):
    return make_pipeline(SimpleImputer(strategy="median", keep_empty_features=True), StandardScaler()).fit(X)


def test_ridge_path_is_sklearns_ridge_for_every_alpha(data):
    X, y, _ = data
    s = _scaler(X[:60])
    Ztr, Zte = s.transform(X[:60]), s.transform(X[60:])
    alphas = [0.01, 1.0, 30.0, 1e4]
    path = ridge_path(Ztr, y[:60], Zte, alphas)
    for i, a in enumerate(alphas):
        np.testing.assert_allclose(path[i], Ridge(alpha=a).fit(Ztr, y[:60]).predict(Zte), rtol=1e-9, atol=1e-10)


def test_ridge_probe_picks_each_ratings_alpha_by_grouped_inner_cv(data):
    X, y, groups = data
    alphas = (0.1, 1.0, 10.0, 100.0, 1000.0)
    probe = RidgeProbe(alphas=alphas, inner_splits=3).fit(X, y, groups=groups)
    errors = np.zeros((len(alphas), y.shape[1]))
    for tr, te in GroupKFold(n_splits=3).split(X, y, groups):
        s = _scaler(X[tr])
        for i, a in enumerate(alphas):
            pred = Ridge(alpha=a).fit(s.transform(X[tr]), y[tr]).predict(s.transform(X[te]))
            errors[i] += ((pred - y[te]) ** 2).sum(axis=0)
    want = np.asarray(alphas)[np.argmin(errors, axis=0)]
    np.testing.assert_array_equal(probe.alpha_, want)
    assert len(set(probe.alpha_)) > 1  # one alpha per rating, not one for all
    s = _scaler(X)
    for j, a in enumerate(want):
        ref = Ridge(alpha=a).fit(s.transform(X), y[:, j]).predict(s.transform(X[:7]))
        np.testing.assert_allclose(probe.predict(X[:7])[:, j], ref, rtol=1e-9, atol=1e-10)


def test_mlp_probe_keeps_its_best_epoch_and_validates_on_whole_groups(data):
    X, y, groups = data
    probe = MLPProbe(hidden=16, max_epochs=40, patience=5, random_state=0).fit(X, y, groups=groups)
    assert probe.validation_ == "holdout"
    assert probe.best_epoch_ == int(np.argmin(probe.losses_)) + 1
    assert len(probe.losses_) == 40 or len(probe.losses_) == probe.best_epoch_ + 5  # stopped by patience
    fit_idx, val_idx = holdout(len(X), groups, fraction=0.2, random_state=0)
    assert not set(groups[fit_idx]) & set(groups[val_idx]) and len(val_idx)
    # The kept weights give the best validation loss recorded.
    s = _scaler(X[fit_idx])
    t_val = (y[val_idx] - y[fit_idx].mean(0)) / y[fit_idx].std(0)
    z = probe.net_.predict(s.transform(X[val_idx])).reshape(t_val.shape)
    assert np.mean((z - t_val) ** 2) == pytest.approx(min(probe.losses_), rel=1e-9)
    # A split's own validation fold replaces the hold-out.
    other = MLPProbe(hidden=8, max_epochs=3, random_state=0).fit(X[:60], y[:60], validation=(X[60:], y[60:]))
    assert other.validation_ == "split"
