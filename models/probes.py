"""Probes: the protocol by which the field scores a frozen representation (MARBLE, HEAR, MuQ/MERT papers).

Both read any feature set, built-in or a file of embeddings (``--features file:muq.parquet``), and fit
inside the training fold only:

* ``ridge_probe``: standardised ridge regression with one alpha *per rating*, chosen by a grouped inner CV
  of the training fold (the outer split's groups, :func:`splits.inner.inner_cv`) over a wide grid; the
  solutions for every alpha come from one SVD per inner fold, so thousands of embedding dimensions cost
  little. (``ridge`` picks one alpha for all ratings by R^2 over a narrower grid.)
* ``mlp_probe``: one hidden layer (scikit-learn's ``MLPRegressor``, Adam), standardised inputs and ratings,
  early stopping on a grouped hold-out of the training fold (:func:`splits.inner.holdout`; the split's own
  validation fold where it has one), keeping the weights of the best epoch.
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
from sklearn.exceptions import NotFittedError

from benchmark.params import Float, Int, List
from models.classical import TABULAR, _impute
from models.registry import MODELS
from splits.inner import holdout, inner_cv

#: The ridge probe's default grid: wide, for anything from 80 handcrafted features to 4096 embedding dimensions.
PROBE_ALPHAS = tuple(float(a) for a in np.logspace(-2, 6, 17))


def _standardiser():
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(_impute(), StandardScaler())


def ridge_path(X_train: np.ndarray, y_train: np.ndarray, X_test: np.ndarray, alphas) -> np.ndarray:
    """Ridge predictions of ``X_test`` for every alpha, from one SVD of the centred training matrix.

    ``X_train`` and ``X_test`` are already standardised by the training rows (column means 0 on the
    training side); the intercept is the training mean of ``y``.

    Returns
    -------
    ndarray (n_alphas, n_test, n_targets)
    """
    mean = y_train.mean(axis=0)
    U, s, Vt = np.linalg.svd(X_train, full_matrices=False)
    UtY = U.T @ (y_train - mean)
    XV = X_test @ Vt.T
    out = np.empty((len(alphas), len(X_test), y_train.shape[1]))
    for i, a in enumerate(alphas):
        out[i] = XV @ ((s / (s ** 2 + a))[:, None] * UtY) + mean
    return out


class RidgeProbe:
    """Standardised ridge regression, one alpha per rating chosen by grouped inner CV of the training fold.

    Parameters
    ----------
    alphas : sequence of float
        The grid; per rating, the alpha with the least inner-CV squared error (ties: the larger alpha).
    inner_splits : int
        Folds of the inner CV (grouped by the outer split's groups when the runner passes them).
    random_state : int, optional
        Shuffles an ungrouped inner K-fold.
    """

    PARAMS = {"alphas": List(Float(0.0, low_open=True)), "inner_splits": Int(2)}

    def __init__(self, alphas: tuple[float, ...] = PROBE_ALPHAS, inner_splits: int = 5,
                 random_state: int | None = None) -> None:
        self.alphas = alphas
        self.inner_splits = inner_splits
        self.random_state = random_state

    def get_params(self) -> dict[str, Any]:
        return {"alphas": tuple(self.alphas), "inner_splits": self.inner_splits, "random_state": self.random_state}

    def fit(self, X, y, *, groups=None, validation=None) -> RidgeProbe:
        X = np.asarray(X, dtype=float)
        y = np.asarray(y, dtype=float)
        if y.ndim != 2 or len(X) != len(y):
            raise ValueError(f"expected X (n, p) and y (n, t) with the same n; got {X.shape} and {y.shape}")
        alphas = np.asarray(sorted(float(a) for a in self.alphas))
        errors = np.zeros((len(alphas), y.shape[1]))
        if len(alphas) > 1:
            cv = inner_cv(groups, self.inner_splits, self.random_state)
            for itr, ite in cv.split(X, y, groups):
                scale = _standardiser().fit(X[itr])
                pred = ridge_path(scale.transform(X[itr]), y[itr], scale.transform(X[ite]), alphas)
                errors += ((pred - y[ite]) ** 2).sum(axis=1)
        # The largest alpha among equal errors: the simpler model.
        best = len(alphas) - 1 - np.argmin(errors[::-1], axis=0)
        self.alpha_ = alphas[best]
        self.scaler_ = _standardiser().fit(X)
        Z = self.scaler_.transform(X)
        self.intercept_ = y.mean(axis=0)
        U, s, Vt = np.linalg.svd(Z, full_matrices=False)
        UtY = U.T @ (y - self.intercept_)
        self.coef_ = np.stack([Vt.T @ ((s / (s ** 2 + a)) * UtY[:, j]) for j, a in enumerate(self.alpha_)], axis=1)
        return self

    def predict(self, X) -> np.ndarray:
        if not hasattr(self, "coef_"):
            raise NotFittedError(f"{type(self).__name__} is not fitted; call fit(X, y) first")
        return self.scaler_.transform(np.asarray(X, dtype=float)) @ self.coef_ + self.intercept_

    def fitted_summary(self) -> dict[str, Any]:
        """The alpha chosen for each rating, kept in the job's params file."""
        return {"alpha": [float(a) for a in self.alpha_]}


class MLPProbe:
    """One hidden layer on standardised inputs, early-stopped on a grouped hold-out of the training fold.

    Parameters
    ----------
    hidden : int
        Units of the hidden layer (ReLU).
    alpha : float
        L2 penalty.
    learning_rate : float
        Adam's initial step.
    batch_size : int
    max_epochs : int
    patience : int
        Epochs without a better validation loss before stopping; the best epoch's weights are kept.
    validation_fraction : float
        Share of the training fold held out (whole groups) when the split has no validation fold.
    random_state : int, optional
        Initial weights, batch order and the hold-out.
    """

    PARAMS = {"hidden": Int(1), "alpha": Float(0.0), "learning_rate": Float(0.0, low_open=True),
              "batch_size": Int(1), "max_epochs": Int(1), "patience": Int(1),
              "validation_fraction": Float(0.0, 1.0, low_open=True, high_open=True)}

    def __init__(self, hidden: int = 256, alpha: float = 1e-3, learning_rate: float = 1e-3, batch_size: int = 64,
                 max_epochs: int = 200, patience: int = 10, validation_fraction: float = 0.2,
                 random_state: int | None = None) -> None:
        self.hidden = hidden
        self.alpha = alpha
        self.learning_rate = learning_rate
        self.batch_size = batch_size
        self.max_epochs = max_epochs
        self.patience = patience
        self.validation_fraction = validation_fraction
        self.random_state = random_state

    def get_params(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in ("hidden", "alpha", "learning_rate", "batch_size", "max_epochs",
                                              "patience", "validation_fraction", "random_state")}

    def fit(self, X, y, *, groups=None, validation=None) -> MLPProbe:
        import warnings

        from sklearn.exceptions import ConvergenceWarning
        from sklearn.neural_network import MLPRegressor

        X = np.asarray(X, dtype=float)
        y = np.asarray(y, dtype=float)
        if y.ndim != 2 or len(X) != len(y):
            raise ValueError(f"expected X (n, p) and y (n, t) with the same n; got {X.shape} and {y.shape}")
        seed = 0 if self.random_state is None else int(self.random_state)
        if validation is not None:
            X_fit, y_fit = X, y
            X_val, y_val = np.asarray(validation[0], dtype=float), np.asarray(validation[1], dtype=float)
            self.validation_ = "split"
        else:
            fit_idx, val_idx = holdout(len(X), groups, fraction=self.validation_fraction, random_state=seed)
            X_fit, y_fit, X_val, y_val = X[fit_idx], y[fit_idx], X[val_idx], y[val_idx]
            self.validation_ = "holdout"
        self.scaler_ = _standardiser().fit(X_fit)
        self.y_mean_, self.y_scale_ = y_fit.mean(axis=0), y_fit.std(axis=0)
        self.y_scale_[self.y_scale_ == 0] = 1.0
        Z_fit, Z_val = self.scaler_.transform(X_fit), self.scaler_.transform(X_val)
        t_fit, t_val = (y_fit - self.y_mean_) / self.y_scale_, (y_val - self.y_mean_) / self.y_scale_
        net = MLPRegressor(hidden_layer_sizes=(self.hidden,), alpha=self.alpha, learning_rate_init=self.learning_rate,
                           batch_size=min(self.batch_size, len(Z_fit)), random_state=seed, shuffle=True)
        best, best_loss, waited, self.losses_ = None, np.inf, 0, []
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            for _ in range(self.max_epochs):
                net.partial_fit(Z_fit, t_fit)
                loss = float(np.mean((net.predict(Z_val).reshape(t_val.shape) - t_val) ** 2))
                self.losses_.append(loss)
                if loss < best_loss:
                    best, best_loss, waited = (copy.deepcopy(net.coefs_), copy.deepcopy(net.intercepts_)), loss, 0
                else:
                    waited += 1
                    if waited >= self.patience:
                        break
        net.coefs_, net.intercepts_ = best
        self.net_ = net
        self.best_epoch_ = int(np.argmin(self.losses_)) + 1
        self.n_targets_ = y.shape[1]
        return self

    def predict(self, X) -> np.ndarray:
        if not hasattr(self, "net_"):
            raise NotFittedError(f"{type(self).__name__} is not fitted; call fit(X, y) first")
        z = self.net_.predict(self.scaler_.transform(np.asarray(X, dtype=float))).reshape(len(X), self.n_targets_)
        return z * self.y_scale_ + self.y_mean_

    def fitted_summary(self) -> dict[str, Any]:
        """The epoch whose weights were kept, and what it was validated on."""
        return {"best_epoch": self.best_epoch_, "epochs": len(self.losses_), "validation": self.validation_}


MODELS.register("ridge_probe", inputs=TABULAR, tags=("probe", "linear"),
                description="Probe: standardised ridge, one alpha per rating by grouped inner CV (any feature set)"
                )(RidgeProbe)
MODELS.register("mlp_probe", inputs=TABULAR, tags=("probe",),
                description="Probe: one hidden layer, early-stopped on a grouped hold-out (any feature set)"
                )(MLPProbe)
