"""Model families, one registry. Importing this package registers every model."""

from models import (
    classical,  # noqa: F401  (registers mean, ridge, rf, xgb, lgbm)
    deviation,  # noqa: F401  (registers lgbm_dev)
    ensemble,  # noqa: F401  (registers ensemble_mean, bag, stack)
    neural,  # noqa: F401  (registers ast_*, hybrid*; torch is imported only when one is fitted)
)
from models.base import Estimator, SklearnModel
from models.registry import MODELS

__all__ = ["MODELS", "Estimator", "SklearnModel"]
