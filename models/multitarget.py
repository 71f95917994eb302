"""LightGBM variants that use the structure of the 19 ratings (issue 11: closing the accuracy gap).

The 19 PercePiano ratings are strongly correlated (on the training folds the
first principal component of the standardised ratings carries about 45% of
their variance, the first ten about 94%). ``lgbm_all`` fits one booster per
rating and ignores that; two ways to use it, both fitted on the training fold
only:

* :class:`ReducedRankLGBM` (``lgbm_all_rr``) shares strength across ratings:
  the 19 boosters' predictions are projected onto the leading principal
  subspace of the training fold's standardised ratings (the smallest number of
  components holding ``variance`` of their variance), which removes the
  directions in which the ratings barely vary and the boosters mostly fit
  noise (reduced-rank shrinkage of a multi-output predictor).
* :class:`TunedLGBM` (``lgbm_all_tuned``) tunes per rating: the number of
  boosting rounds of each rating's booster is chosen by an inner
  cross-validation grouped like the outer split (the averaged validation-loss
  curve of ``inner_splits`` inner folds), then the booster is refitted on the
  whole training fold with that many rounds.
"""

from __future__ import annotations

import warnings
from numbers import Integral, Real
from typing import Any

import numpy as np
from sklearn.exceptions import NotFittedError

from benchmark.params import Float, Int
from models.classical import LGBMModel
from models.registry import MODELS
from splits.inner import inner_cv

#: Inputs of the ``lgbm_all`` family: MIDI + audio + score-aligned features.
ALL_FEATURES = ("midi", "audio", "score")


class ReducedRankLGBM(LGBMModel):
    """``LGBMModel`` whose predictions are projected onto the training ratings' leading principal subspace.

    Parameters
    ----------
    variance : float, default 0.95
        Share of the standardised training ratings' variance the kept
        components must hold, in (0, 1]; 1 keeps every component (the
        projection is then the identity and the model equals ``LGBMModel``).
    **LGBMModel parameters
    """

    PARAMS = {**LGBMModel.PARAMS, "variance": Float(0.0, 1.0, low_open=True)}

    def __init__(self, variance: float = 0.95, n_estimators: int = 200, learning_rate: float = 0.03,
                 num_leaves: int = 15, min_child_samples: int = 20, subsample: float = 0.8,
                 colsample_bytree: float = 0.5, n_jobs: int = 1, random_state: int | None = None) -> None:
        super().__init__(n_estimators=n_estimators, learning_rate=learning_rate, num_leaves=num_leaves,
                         min_child_samples=min_child_samples, subsample=subsample,
                         colsample_bytree=colsample_bytree, n_jobs=n_jobs, random_state=random_state)
        self.variance = variance

    def fit(self, X, y, *, groups=None, validation=None) -> ReducedRankLGBM:
        if isinstance(self.variance, bool) or not isinstance(self.variance, Real) or not 0.0 < self.variance <= 1.0:
            raise ValueError(f"variance must be a number in (0, 1], got {self.variance!r}")
        super().fit(X, y, groups=groups)
        y = np.asarray(y, dtype=float)
        self.mean_ = y.mean(axis=0)
        scale = y.std(axis=0)
        self.scale_ = np.where(scale > 0, scale, 1.0)
        _, s, vt = np.linalg.svd((y - self.mean_) / self.scale_, full_matrices=False)
        share = np.cumsum(s**2) / max(float(np.sum(s**2)), np.finfo(float).tiny)
        # Smallest k whose components hold `variance` (a tolerance keeps variance=1.0 at full rank).
        k = int(np.searchsorted(share, float(self.variance) - 1e-12) + 1)
        self.components_ = vt[: min(k, len(s))]
        return self

    def predict(self, X) -> np.ndarray:
        if not hasattr(self, "components_"):
            raise NotFittedError(f"{type(self).__name__} is not fitted; call fit(X, y) first")
        z = (super().predict(X) - self.mean_) / self.scale_
        return (z @ self.components_.T @ self.components_) * self.scale_ + self.mean_

    def fitted_summary(self) -> dict[str, Any]:
        return {"n_components": int(len(self.components_))}


class TunedLGBM(LGBMModel):
    """One LightGBM booster per rating, its number of rounds chosen by a grouped inner CV on the training fold.

    Parameters
    ----------
    max_estimators : int, default 400
        Most boosting rounds tried per rating.
    inner_splits : int, default 3
        Inner folds (grouped by the outer split's groups when the runner passes
        them; see :func:`splits.inner.inner_cv`).
    learning_rate, num_leaves, min_child_samples, subsample, colsample_bytree, n_jobs, random_state
        As :class:`models.classical.LGBMModel`.
    """

    PARAMS = {**{k: v for k, v in LGBMModel.PARAMS.items() if k != "n_estimators"}, "max_estimators": Int(1),
              "inner_splits": Int(2)}

    def __init__(self, max_estimators: int = 400, inner_splits: int = 3, learning_rate: float = 0.03,
                 num_leaves: int = 15, min_child_samples: int = 20, subsample: float = 0.8,
                 colsample_bytree: float = 0.5, n_jobs: int = 1, random_state: int | None = None) -> None:
        # The boosters' settings are LGBMModel's (its ``_booster``); the rounds are chosen per rating in fit.
        super().__init__(n_estimators=max_estimators, learning_rate=learning_rate, num_leaves=num_leaves,
                         min_child_samples=min_child_samples, subsample=subsample,
                         colsample_bytree=colsample_bytree, n_jobs=n_jobs, random_state=random_state)
        self.max_estimators = max_estimators
        self.inner_splits = inner_splits

    def validation_curves(self, X: np.ndarray, y: np.ndarray, groups: np.ndarray | None) -> np.ndarray:
        """Inner-CV validation MSE after each round, per rating: shape (n_targets, max_estimators).

        Each inner fold's curve is weighted by its size, so the result is the
        mean squared error over all inner validation samples.
        """

        curves = np.zeros((y.shape[1], int(self.max_estimators)))
        cv = inner_cv(groups, int(self.inner_splits), self.random_state)
        for itr, ite in cv.split(X, y, groups):
            for j in range(y.shape[1]):
                booster = self._booster(int(self.max_estimators))
                with warnings.catch_warnings():
                    # lightgbm >= 4.6 prefers eval_X/eval_y; eval_set works from 4.3 (pyproject's floor) on.
                    warnings.filterwarnings("ignore", message=".*'eval_set' is deprecated")
                    booster.fit(X[itr], y[itr, j], eval_set=[(X[ite], y[ite, j])], eval_metric="l2")
                curves[j] += np.asarray(booster.evals_result_["valid_0"]["l2"]) * len(ite)
        return curves / len(y)

    def fit(self, X, y, *, groups=None, validation=None) -> TunedLGBM:
        # ``validation`` is unused: the rounds come from the inner CV on the training fold.
        X = np.asarray(X, dtype=float)
        y = np.asarray(y, dtype=float)
        if y.ndim != 2 or len(X) != len(y):
            raise ValueError(f"expected X (n, p) and y (n, t) with the same n; got {X.shape} and {y.shape}")
        for name, low in (("max_estimators", 1), ("inner_splits", 2)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, Integral) or value < low:
                raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
        self.n_estimators_ = np.argmin(self.validation_curves(X, y, groups), axis=1) + 1
        self.estimators_ = [self._booster(int(n)).fit(X, y[:, j]) for j, n in enumerate(self.n_estimators_)]
        self.n_targets_ = y.shape[1]
        return self

    def predict(self, X) -> np.ndarray:
        if not hasattr(self, "estimators_"):
            raise NotFittedError(f"{type(self).__name__} is not fitted; call fit(X, y) first")
        X = np.asarray(X, dtype=float)
        return np.column_stack([e.predict(X) for e in self.estimators_]).reshape(len(X), self.n_targets_)

    def fitted_summary(self) -> dict[str, Any]:
        return {"n_estimators": [int(n) for n in self.n_estimators_]}


MODELS.register("lgbm_all_rr", inputs=ALL_FEATURES, tags=("trees", "boosting", "audio", "multi-output"),
                description="lgbm_all with predictions projected onto the training ratings' leading "
                            "principal components (reduced rank, 95% of their variance)")(ReducedRankLGBM)
MODELS.register("lgbm_all_tuned", inputs=ALL_FEATURES, tags=("trees", "boosting", "audio", "tuned"),
                description="lgbm_all with each rating's number of rounds chosen by a grouped inner CV "
                            "on the training fold")(TunedLGBM)
