"""Model families, one registry. Importing this package registers every model.

A model is a factory registered with ``MODELS.register("name", inputs=...)`` (see ``classical`` for
tabular ones, ``ensemble`` for models of other models' predictions, ``neural`` for torch ones) and imported
below; it follows the estimator protocol of ``base`` and declares in its registry entry what it reads, so
the engine never names it. Models read no run directory and import torch only inside ``fit``.

Models from outside come in three ways: a class path (``my_pkg.models:MyModel``, resolved by
:func:`models.adapters.resolve_class_path`), a plugin package's entry points (``percepiano_bench.models``,
loaded here by :func:`models.plugins.load_plugins`), and an imported predictions file (the ``imported``
family of :mod:`models.imported`).
"""

from models import (
    classical,  # noqa: F401  (registers mean, ridge, rf, xgb, lgbm)
    deviation,  # noqa: F401  (registers lgbm_dev)
    ensemble,  # noqa: F401  (registers ensemble_mean, bag, stack)
    imported,  # noqa: F401  (registers imported: predictions made elsewhere, scored as a model)
    multitarget,  # noqa: F401  (registers lgbm_all_rr, lgbm_all_tuned)
    neural,  # noqa: F401  (registers ast_*, hybrid*; torch is imported only when one is fitted)
    note_models,  # noqa: F401  (registers note_bilstm, note_han, note_transformer, note_hybrid; torch-free too)
    probes,  # noqa: F401  (registers ridge_probe, mlp_probe)
    ssast_features,  # noqa: F401  (registers the 'ssast' embedding feature set, ridge_ssast, lgbm_ssast)
)
from models.adapters import resolve_class_path
from models.base import Estimator, SklearnModel
from models.plugins import load_plugins
from models.registry import MODELS

MODELS.set_resolver(resolve_class_path)
# After the built-in families: a plugin's name that clashes with a built-in one yields, with a warning.
load_plugins(MODELS)

__all__ = ["MODELS", "Estimator", "SklearnModel", "pretrain"]


def pretrain(**kwargs):
    """``benchmark pretrain`` (imports torch): see :func:`models.pretraining.run_pretrain`."""
    from models.pretraining import run_pretrain

    return run_pretrain(**kwargs)

