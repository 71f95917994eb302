"""Model families, one registry. Importing this package registers every model.

A model is a factory registered with ``MODELS.register("name", inputs=...)`` (see ``classical`` for
tabular ones, ``ensemble`` for models of other models' predictions, ``neural`` for torch ones) and imported
below; it follows the estimator protocol of ``base`` and declares in its registry entry what it reads, so
the engine never names it. Models read no run directory and import torch only inside ``fit``.
"""

from models import (
    classical,  # noqa: F401  (registers mean, ridge, rf, xgb, lgbm)
    deviation,  # noqa: F401  (registers lgbm_dev)
    ensemble,  # noqa: F401  (registers ensemble_mean, bag, stack)
    multitarget,  # noqa: F401  (registers lgbm_all_rr, lgbm_all_tuned)
    neural,  # noqa: F401  (registers ast_*, hybrid*; torch is imported only when one is fitted)
    note_models,  # noqa: F401  (registers note_bilstm, note_han, note_transformer, note_hybrid; torch-free too)
    ssast_features,  # noqa: F401  (registers the 'ssast' embedding feature set, ridge_ssast, lgbm_ssast)
)
from models.base import Estimator, SklearnModel
from models.registry import MODELS

__all__ = ["MODELS", "Estimator", "SklearnModel", "pretrain"]


def pretrain(**kwargs):
    """``benchmark pretrain`` (imports torch): see :func:`models.pretraining.run_pretrain`."""
    from models.pretraining import run_pretrain

    return run_pretrain(**kwargs)

