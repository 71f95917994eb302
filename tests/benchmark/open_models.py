"""Model classes from "outside" the harness, for the tests of issue 19: imported by class path
(``tests.benchmark.open_models:TrainMean``), registered by a plugin made in a test, and checked by
``validate-model``. The broken ones each break one check of :data:`benchmark.validate.CHECKS` and nothing else.
"""

from __future__ import annotations

import numpy as np


class TrainMean:
    """Predicts each target's training mean, plus ``shift`` (the built-in ``mean`` when shift is 0)."""

    def __init__(self, shift: float = 0.0, random_state: int | None = None) -> None:
        self.shift = shift
        self.random_state = random_state

    def get_params(self) -> dict:
        return {"shift": self.shift, "random_state": self.random_state}

    def fit(self, X, y, *, groups=None, validation=None) -> TrainMean:
        self.mean_ = np.mean(np.asarray(y, dtype=float), axis=0) + self.shift
        return self

    def predict(self, X) -> np.ndarray:
        if not hasattr(self, "mean_"):
            raise RuntimeError("not fitted")
        return np.tile(self.mean_, (len(X), 1))


def register(registry) -> None:
    """A plugin's entry point that receives the registry: ``demo_mean`` (TrainMean) and a clash with ``ridge``."""
    registry.register("demo_mean", inputs=("midi",), description="training mean, from a plugin")(TrainMean)
    registry.register("ridge", inputs=("midi",), description="a plugin's ridge that must not win")(TrainMean)


class WrongShape(TrainMean):
    """Predicts one column too few."""

    def predict(self, X) -> np.ndarray:
        return super().predict(X)[:, :-1]


class CarriesState(TrainMean):
    """A refit averages in the earlier fit's mean: state carried between fits."""

    def fit(self, X, y, *, groups=None, validation=None) -> CarriesState:
        new = np.mean(np.asarray(y, dtype=float), axis=0)
        self.mean_ = (self.mean_ + new) / 2 if hasattr(self, "mean_") else new
        return self


class Nondeterministic(TrainMean):
    """Adds noise from an unseeded generator: two fits with one random_state disagree."""

    def fit(self, X, y, *, groups=None, validation=None) -> Nondeterministic:
        super().fit(X, y)
        self.mean_ = self.mean_ + np.random.default_rng().normal(0, 0.1, self.mean_.shape)
        return self


class ReadsTestFold(TrainMean):
    """Predicts the training mean plus a little of the test inputs' mean: the test fold reaches the model."""

    def predict(self, X) -> np.ndarray:
        return super().predict(X) + 1e-3 * float(np.nanmean(X))
