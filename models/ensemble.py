"""Ensembles that reuse their members' fold predictions instead of refitting them.

Their input kind is ``member_predictions`` (registry metadata): the runner
plans the member jobs the entry's ``plan_members`` names, and hands the
ensemble ``X`` of shape (n_samples, n_members, n_targets), the members'
predictions of the same samples.

* ``ensemble_mean``: the average of the members' predictions.
* ``bag``: seed bagging, one member model fitted with ``n_seeds`` model seeds
  under the same folds, averaged (the first seed is the split seed, so the
  plain member's own job is reused).
* ``stack``: stacked regression (Breiman 1996, *Machine Learning* 24:49-64):
  per target, non-negative least-squares weights of the members, fitted on
  the members' *inner* out-of-fold predictions of the training fold (a
  grouped inner CV inside the training fold), never on the test fold.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.exceptions import NotFittedError

from benchmark.errors import ConfigError
from benchmark.params import Int, ModelNames, Text
from models.registry import MODELS

#: Members of ``ensemble_mean`` and ``stack`` when neither ``--members`` nor a study names them.
DEFAULT_MEMBERS = ("ridge", "rf", "lgbm")
#: Model seed of the i-th member of a seed bag in split seed s: s + SEED_STRIDE * i (i = 0 is the plain job).
SEED_STRIDE = 1000


def same_seed_members(params: dict[str, Any], seed: int) -> list[tuple[str, int]]:
    """Every listed member, with the split seed as model seed."""
    members = params.get("members") or DEFAULT_MEMBERS
    if isinstance(members, str):
        members = [m.strip() for m in members.split(",") if m.strip()]
    return [(m, seed) for m in members]


def seed_bag_members(params: dict[str, Any], seed: int) -> list[tuple[str, int]]:
    """One member model under ``n_seeds`` model seeds, the first being the split seed."""
    n = int(params.get("n_seeds", 5))
    if n < 1:

        raise ConfigError(f"n_seeds={n} must be >= 1")
    return [(str(params.get("member", "rf")), seed + SEED_STRIDE * i) for i in range(n)]


def _check(X) -> np.ndarray:
    X = np.asarray(X, dtype=float)
    if X.ndim != 3:
        raise ValueError(f"expected member predictions of shape (n_samples, n_members, n_targets); got {X.shape}")
    return X


class MeanEnsemble:
    """The average of the members' predictions (nothing is learnt)."""

    PARAMS = {"members": ModelNames()}

    def __init__(self, members: tuple[str, ...] | list[str] = DEFAULT_MEMBERS, random_state: int | None = None) -> None:
        self.members = members
        self.random_state = random_state

    def get_params(self) -> dict[str, Any]:
        return {"members": list(self.members), "random_state": self.random_state}

    def fit(self, X, y, *, groups=None) -> MeanEnsemble:
        self.n_targets_ = np.asarray(y).shape[1]
        return self

    def predict(self, X) -> np.ndarray:
        if not hasattr(self, "n_targets_"):
            raise NotFittedError(f"{type(self).__name__} is not fitted; call fit(X, y) first")
        return _check(X).mean(axis=1)


class SeedBag(MeanEnsemble):
    """Seed bagging: ``member`` fitted under ``n_seeds`` model seeds on the same folds, averaged."""

    PARAMS = {"member": Text(), "n_seeds": Int(1)}

    def __init__(self, member: str = "rf", n_seeds: int = 5, random_state: int | None = None) -> None:
        self.member = member
        self.n_seeds = n_seeds
        self.random_state = random_state

    def get_params(self) -> dict[str, Any]:
        return {"member": self.member, "n_seeds": self.n_seeds, "random_state": self.random_state}


class NonNegativeStacker:
    """Per target, non-negative least-squares weights of the members (no intercept).

    ``fit`` must be given the members' inner out-of-fold predictions of the
    training fold; the runner does (the registry entry says ``train_on="inner"``).
    """

    PARAMS = {"members": ModelNames()}

    def __init__(self, members: tuple[str, ...] | list[str] = DEFAULT_MEMBERS, random_state: int | None = None) -> None:
        self.members = members
        self.random_state = random_state

    def get_params(self) -> dict[str, Any]:
        return {"members": list(self.members), "random_state": self.random_state}

    def fit(self, X, y, *, groups=None) -> NonNegativeStacker:
        from scipy.optimize import nnls

        X = _check(X)
        y = np.asarray(y, dtype=float)
        if not np.isfinite(X).all():
            raise ValueError("member predictions hold NaN or inf; every inner fold must predict every sample")
        self.weights_ = np.stack([nnls(X[:, :, j], y[:, j])[0] for j in range(y.shape[1])], axis=1)
        return self

    def predict(self, X) -> np.ndarray:
        if not hasattr(self, "weights_"):
            raise NotFittedError(f"{type(self).__name__} is not fitted; call fit(X, y) first")
        return np.einsum("nmt,mt->nt", _check(X), self.weights_)

    def fitted_summary(self) -> dict[str, Any]:
        """The weights, (n_members, n_targets), kept in the job's params file."""
        return {"weights": self.weights_.tolist(), "members": list(self.members)}


_ENSEMBLE = ("member_predictions",)
MODELS.register("ensemble_mean", inputs=_ENSEMBLE, tags=("ensemble",), defaults={"members": DEFAULT_MEMBERS},
                plan_members=same_seed_members,
                description="Mean of the members' out-of-fold predictions (--members, default ridge,rf,lgbm)"
                )(MeanEnsemble)
MODELS.register("bag", inputs=_ENSEMBLE, tags=("ensemble",), defaults={"member": "rf", "n_seeds": 5},
                plan_members=seed_bag_members,
                description="Seed bagging: one model under n_seeds model seeds on the same folds, averaged"
                )(SeedBag)
MODELS.register("stack", inputs=_ENSEMBLE, tags=("ensemble",), defaults={"members": DEFAULT_MEMBERS},
                plan_members=same_seed_members, train_on="inner",
                description="Non-negative stacking per target on the members' inner out-of-fold predictions"
                )(NonNegativeStacker)
