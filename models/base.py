"""The estimator protocol every registered model follows (scikit-learn style)."""

from __future__ import annotations

import inspect
from typing import Any, Protocol, runtime_checkable

import numpy as np
from sklearn.exceptions import NotFittedError


@runtime_checkable
class Estimator(Protocol):
    """What the runner needs from a model.

    ``fit(X, y, *, groups=None, validation=None) -> self`` with ``X``
    (n_samples, n_features), or a :class:`features.inputs.SegmentInputs` for
    a model whose inputs include an array stage, and ``y`` (n_samples,
    n_targets); ``validation`` is ``(X_val, y_val)``, the split's own
    validation fold when it has one (a model that early-stops uses it, and
    otherwise holds out part of the training fold with
    :func:`splits.inner.holdout`; nothing ever sees the test fold); ``predict(X) -> ndarray (n_samples,
    n_targets)``; ``get_params() -> dict``. ``__init__`` only stores
    parameters, fitted state ends in ``_``, randomness comes only from
    ``random_state``, and predict before fit raises.
    """

    def fit(self, X: np.ndarray, y: np.ndarray, *, groups: np.ndarray | None = None,
            validation: tuple | None = None) -> Estimator: ...

    def predict(self, X: np.ndarray) -> np.ndarray: ...

    def get_params(self) -> dict[str, Any]: ...


class SklearnModel:
    """Base for models that wrap a scikit-learn estimator built at fit time.

    Subclasses implement :meth:`_make_estimator`, called afresh on every
    :meth:`fit`, so a refit never carries state from an earlier fold.
    Imputation and scaling live inside the wrapped pipeline: they see the
    training fold only.
    """

    def get_params(self) -> dict[str, Any]:
        names = [p for p in inspect.signature(type(self).__init__).parameters if p != "self"]
        return {n: getattr(self, n) for n in names}

    def _make_estimator(self, groups: np.ndarray | None) -> Any:
        raise NotImplementedError

    def _fit_params(self, groups: np.ndarray | None) -> dict[str, Any]:
        return {}

    def fit(self, X: np.ndarray, y: np.ndarray, *, groups: np.ndarray | None = None,
            validation: tuple | None = None) -> SklearnModel:
        # ``validation`` is unused: these models select nothing by early stopping.
        X = np.asarray(X, dtype=float)
        y = np.asarray(y, dtype=float)
        if y.ndim != 2 or len(X) != len(y):
            raise ValueError(f"expected X (n, p) and y (n, t) with the same n; got {X.shape} and {y.shape}")
        self.estimator_ = self._make_estimator(groups)
        self.estimator_.fit(X, y, **self._fit_params(groups))
        self.n_targets_ = y.shape[1]
        return self

    def predict(self, X: np.ndarray) -> np.ndarray:
        if not hasattr(self, "estimator_"):
            raise NotFittedError(f"{type(self).__name__} is not fitted; call fit(X, y) first")
        pred = np.asarray(self.estimator_.predict(np.asarray(X, dtype=float)), dtype=float)
        return pred.reshape(len(X), self.n_targets_)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"
