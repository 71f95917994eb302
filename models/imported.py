"""Predictions made elsewhere, scored as a model: the ``imported`` family.

``benchmark run --predictions NAME=FILE`` adds a model NAME, a variant of ``imported`` whose parameters
are the file's path and sha256. Its input kind is ``imported_predictions`` (registry metadata): the engine
reads and checks the file before any job starts (:mod:`benchmark.imported`) and hands each job the
file's predictions of its test fold as ``X`` (n_test, n_targets). Fitting learns nothing; ``predict``
returns them. So the imported model is planned, stored, reported, compared, resumed and put in
ensembles (``--members rf,NAME``) like any other model.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.exceptions import NotFittedError

from benchmark.errors import ConfigError
from benchmark.params import Text
from models.registry import MODELS

#: Input kind of a model whose input is a predictions file's rows (registry metadata).
IMPORTED_PREDICTIONS = "imported_predictions"


class ImportedPredictions:
    """The predictions a file holds for the segments of ``X``: nothing is fitted.

    Parameters
    ----------
    path : str
        The predictions file (CSV or Parquet).
    sha256 : str
        Its content hash when the run started; a resume with a changed file is refused.
    """

    PARAMS = {"path": Text(), "sha256": Text()}

    def __init__(self, path: str | None = None, sha256: str | None = None, random_state: int | None = None) -> None:
        self.path = path
        self.sha256 = sha256
        self.random_state = random_state

    def get_params(self) -> dict[str, Any]:
        return {"path": self.path, "sha256": self.sha256, "random_state": self.random_state}

    def fit(self, X, y, *, groups=None, validation=None) -> ImportedPredictions:
        y = np.asarray(y, dtype=float)
        if y.ndim != 2:
            raise ValueError(f"expected y of shape (n_samples, n_targets); got {y.shape}")
        self.n_targets_ = y.shape[1]
        return self

    def predict(self, X) -> np.ndarray:
        if not hasattr(self, "n_targets_"):
            raise NotFittedError(f"{type(self).__name__} is not fitted; call fit(X, y) first")
        X = np.asarray(X, dtype=float)
        if X.ndim != 2 or X.shape[1] != self.n_targets_:
            raise ValueError(f"expected the file's predictions, shape (n_samples, {self.n_targets_}); got {X.shape}")
        return X.copy()

    @staticmethod
    def check_params(params: dict, context: dict, where: str) -> None:
        """An imported model needs its file (the CLI's ``--predictions NAME=FILE`` gives it)."""
        if not params.get("path"):
            raise ConfigError(f"{where}: an imported model scores a predictions file; add one with "
                              "--predictions NAME=FILE (or predictions={NAME: FILE} in benchmark.evaluate)")


MODELS.register("imported", inputs=(IMPORTED_PREDICTIONS,), tags=("imported",),
                description="predictions made elsewhere (--predictions NAME=FILE), scored on the harness's folds"
                )(ImportedPredictions)
