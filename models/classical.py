"""Baselines and tree ensembles on tabular features.

Every model imputes missing features with the training-fold median (and
scales, where the model cares) inside its own pipeline, so nothing is learnt
from the test fold. Heavy libraries are imported when a model is built.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from benchmark.params import AnyOf, Choice, Float, Int, List
from models.base import SklearnModel
from models.registry import MODELS
from splits.inner import inner_cv

TABULAR = ("midi",)
#: ``n_jobs`` of the wrapped estimators: a positive count of threads, or -1 for every core.
N_JOBS = Int(1, also=(-1,))
#: A share of the training rows or features, in (0, 1].
SHARE = Float(0.0, 1.0, low_open=True)


def _impute():
    from sklearn.impute import SimpleImputer

    # keep_empty_features: a feature that is all-NaN in one training fold must
    # not change the column count between folds.
    return SimpleImputer(strategy="median", keep_empty_features=True)


class MeanModel(SklearnModel):
    """Predicts the training-fold mean of every target (the floor any model must beat)."""

    PARAMS: dict = {}

    def __init__(self, random_state: int | None = None) -> None:
        self.random_state = random_state

    def _make_estimator(self, groups):
        from sklearn.dummy import DummyRegressor

        return DummyRegressor(strategy="mean")


class RidgeModel(SklearnModel):
    """Standardised ridge regression, alpha chosen by inner CV on the training fold.

    The inner CV is grouped by the outer split's groups when the runner passes
    them (e.g. performers under ``lopo``), so validation inside the training
    fold respects the same grouping as the outer test.
    """

    PARAMS = {"alphas": List(Float(0.0, low_open=True)), "inner_splits": Int(2)}

    def __init__(self, alphas: tuple[float, ...] = tuple(float(a) for a in np.logspace(-2, 4, 13)), inner_splits: int = 5,
                 random_state: int | None = None) -> None:
        self.alphas = alphas
        self.inner_splits = inner_splits
        self.random_state = random_state

    def _make_estimator(self, groups):
        from sklearn.linear_model import Ridge
        from sklearn.model_selection import GridSearchCV
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        pipe = make_pipeline(_impute(), StandardScaler(), Ridge())
        cv = inner_cv(groups, self.inner_splits, self.random_state)
        return GridSearchCV(pipe, {"ridge__alpha": list(self.alphas)}, cv=cv, scoring="r2")

    def _fit_params(self, groups) -> dict[str, Any]:
        return {} if groups is None else {"groups": groups}


class RandomForestModel(SklearnModel):
    """Multi-output random forest (one forest predicts all 19 targets)."""

    PARAMS = {"n_estimators": Int(1), "max_features": AnyOf(SHARE, Int(1), Choice("sqrt", "log2")),
              "min_samples_leaf": AnyOf(Int(1), Float(0.0, 0.5, low_open=True)), "n_jobs": N_JOBS}

    def __init__(self, n_estimators: int = 300, max_features: float = 0.33, min_samples_leaf: int = 3,
                 n_jobs: int = 1, random_state: int | None = None) -> None:
        self.n_estimators = n_estimators
        self.max_features = max_features
        self.min_samples_leaf = min_samples_leaf
        self.n_jobs = n_jobs
        self.random_state = random_state

    def _make_estimator(self, groups):
        from sklearn.ensemble import RandomForestRegressor
        from sklearn.pipeline import make_pipeline

        return make_pipeline(_impute(), RandomForestRegressor(
            n_estimators=self.n_estimators, max_features=self.max_features,
            min_samples_leaf=self.min_samples_leaf, n_jobs=self.n_jobs, random_state=self.random_state))


class XGBModel(SklearnModel):
    """XGBoost with one tree per target per round (its native multi-output)."""

    PARAMS = {"n_estimators": Int(1), "learning_rate": Float(0.0, low_open=True), "max_depth": Int(0),
              "subsample": SHARE, "colsample_bytree": SHARE, "n_jobs": N_JOBS}

    def __init__(self, n_estimators: int = 300, learning_rate: float = 0.03, max_depth: int = 3,
                 subsample: float = 0.8, colsample_bytree: float = 0.5, n_jobs: int = 1,
                 random_state: int | None = None) -> None:
        self.n_estimators = n_estimators
        self.learning_rate = learning_rate
        self.max_depth = max_depth
        self.subsample = subsample
        self.colsample_bytree = colsample_bytree
        self.n_jobs = n_jobs
        self.random_state = random_state

    def _make_estimator(self, groups):
        from xgboost import XGBRegressor

        return XGBRegressor(n_estimators=self.n_estimators, learning_rate=self.learning_rate,
                            max_depth=self.max_depth, subsample=self.subsample,
                            colsample_bytree=self.colsample_bytree, tree_method="hist",
                            n_jobs=self.n_jobs, random_state=self.random_state or 0)


class LGBMModel(SklearnModel):
    """LightGBM, one booster per target (MultiOutputRegressor)."""

    PARAMS = {"n_estimators": Int(1), "learning_rate": Float(0.0, low_open=True), "num_leaves": Int(2),
              "min_child_samples": Int(0), "subsample": SHARE, "colsample_bytree": SHARE, "n_jobs": N_JOBS}

    def __init__(self, n_estimators: int = 200, learning_rate: float = 0.03, num_leaves: int = 15,
                 min_child_samples: int = 20, subsample: float = 0.8, colsample_bytree: float = 0.5,
                 n_jobs: int = 1, random_state: int | None = None) -> None:
        self.n_estimators = n_estimators
        self.learning_rate = learning_rate
        self.num_leaves = num_leaves
        self.min_child_samples = min_child_samples
        self.subsample = subsample
        self.colsample_bytree = colsample_bytree
        self.n_jobs = n_jobs
        self.random_state = random_state

    def _booster(self, n_estimators: int):
        """One rating's LightGBM regressor with this model's settings and ``n_estimators`` rounds."""
        from lightgbm import LGBMRegressor

        return LGBMRegressor(
            n_estimators=n_estimators, learning_rate=self.learning_rate, num_leaves=self.num_leaves,
            min_child_samples=self.min_child_samples, subsample=self.subsample, subsample_freq=1,
            colsample_bytree=self.colsample_bytree, n_jobs=self.n_jobs, random_state=self.random_state,
            verbose=-1)

    def _make_estimator(self, groups):
        from sklearn.multioutput import MultiOutputRegressor

        return MultiOutputRegressor(self._booster(self.n_estimators))


# ``deterministic`` tells the report which learners need no model seeds (docs/calibration.md): the mean
# has no randomness; ridge's only random choice is the shuffle of an ungrouped inner CV.
MODELS.register("mean", inputs=TABULAR, tags=("baseline",), deterministic=True)(MeanModel)
MODELS.register("ridge", inputs=TABULAR, tags=("baseline", "linear"), deterministic="grouped")(RidgeModel)
MODELS.register("rf", inputs=TABULAR, tags=("trees",))(RandomForestModel)
MODELS.register("xgb", inputs=TABULAR, tags=("trees", "boosting"))(XGBModel)
MODELS.register("lgbm", inputs=TABULAR, tags=("trees", "boosting"))(LGBMModel)

# The same forests and boosters on the audio features (rendered audio, as in the
# task list this project grew from) and on every handcrafted set together, so a
# table shows what audio adds over MIDI.
MODELS.register("rf_audio", inputs=("audio",), tags=("trees", "audio"),
                description="Random forest on audio features of the rendered MIDI")(RandomForestModel)
MODELS.register("rf_all", inputs=("midi", "audio", "score"), tags=("trees", "audio"),
                description="Random forest on MIDI + audio + score-aligned features")(RandomForestModel)
MODELS.register("lgbm_all", inputs=("midi", "audio", "score"), tags=("trees", "boosting", "audio"),
                description="LightGBM on MIDI + audio + score-aligned features")(LGBMModel)
