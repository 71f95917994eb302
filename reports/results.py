"""One model's out-of-fold predictions of a run, arranged for figures, error analysis and comparisons.

Built on :class:`reports.rundata.RunData` (the run read once, with its
completeness guards): only seeds in which a model finished every fold are
used, since an incomplete seed would score a subset of the segments.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from benchmark.errors import ConfigError
from benchmark.metrics import column_pearson, column_r2
from reports.rundata import RunData
from reports.scoring import nanmean


@dataclass(frozen=True)
class ModelStack:
    """One model's out-of-fold predictions arranged for scoring.

    Attributes
    ----------
    model : str
    sample_ids : ndarray, shape (n_samples,)
    y_true : ndarray, shape (n_samples, n_targets)
    stack : ndarray, shape (n_replicates, n_samples, n_targets)
        One replicate per seed (partition splits) or per (seed, fold) (fixed
        test set: every fold model predicts the same segments).
    meta : DataFrame, shape (n_samples, 2)
        ``performer`` and ``piece`` of every segment, indexed by sample_id.
    seeds : list of int
        The complete seeds used.
    """

    model: str
    sample_ids: np.ndarray
    y_true: np.ndarray
    stack: np.ndarray
    meta: pd.DataFrame
    seeds: list[int]

    def pearson(self) -> np.ndarray:
        """Pooled Pearson r per target, averaged over replicates; shape (n_targets,)."""
        return nanmean(column_pearson(self.y_true, self.stack), axis=0)

    def r2(self) -> np.ndarray:
        """Pooled R^2 per target, averaged over replicates; shape (n_targets,)."""
        return nanmean(column_r2(self.y_true, self.stack), axis=0)

    def abs_error(self) -> np.ndarray:
        """|y_pred - y_true| averaged over replicates; shape (n_samples, n_targets)."""
        return np.abs(self.stack - self.y_true[None]).mean(axis=0)


def run_id(run: RunData) -> str:
    return run.run_id


def scored_models(run: RunData) -> list[str]:
    """Models of the run (in its order) with predictions in at least one complete seed."""
    if not len(run.preds):
        return []
    have = set(run.preds["model"].unique())
    return [m for m in run.models if m in have and run.complete_seeds(m)]


def _seeds(run: RunData, model: str, seeds: list[int] | None) -> list[int]:
    if model not in run.models:
        raise ConfigError(f"model {model!r} is not in run {run_id(run)} (models: {', '.join(run.models)})")
    complete = run.complete_seeds(model)
    if not complete or model not in set(run.preds.get("model", ())):
        raise ConfigError(f"model {model!r} has no complete seed in run {run_id(run)} ({run.status(model)}); "
                          f"finish it with: benchmark run --resume {run.run_dir}")
    if seeds is None:
        return complete
    bad = [s for s in seeds if s not in complete]
    if bad or not seeds:
        raise ConfigError(f"model {model!r}: seed(s) {bad or seeds} not complete in run {run_id(run)} "
                          f"(complete: {complete})")
    return [int(s) for s in seeds]


def model_predictions(run: RunData, model: str, seeds: list[int] | None = None) -> pd.DataFrame:
    """Tidy prediction rows of ``model`` in its complete seeds (or the given complete ones).

    Raises
    ------
    ConfigError
        The model is not in the run, has no complete seed, or a given seed is
        not complete.
    """
    seeds = _seeds(run, model, seeds)
    return run.preds[(run.preds["model"] == model) & run.preds["seed"].isin(seeds)]


def model_stack(run: RunData, model: str, seeds: list[int] | None = None) -> ModelStack:
    """:class:`ModelStack` of ``model`` over its complete seeds (or the given complete ones).

    Raises
    ------
    ConfigError
        As :func:`model_predictions`.
    """
    seeds = _seeds(run, model, seeds)
    ids, y_true, stack, _ = run.stack(model, seeds)
    return ModelStack(model, ids, y_true, stack, run.meta(ids), seeds)


def best_model(run: RunData) -> str:
    """The scored model with the highest pooled mean r (R^2 breaks an all-NaN tie).

    Raises
    ------
    ConfigError
        No model has a complete seed.
    """
    models = scored_models(run)
    if not models:
        raise ConfigError(f"run {run_id(run)} has no model with a complete seed of predictions")

    def key(m: str) -> tuple[float, float]:
        s = model_stack(run, m)
        r, r2 = float(nanmean(s.pearson())), float(nanmean(s.r2()))
        return (-np.inf if np.isnan(r) else r, -np.inf if np.isnan(r2) else r2)

    return max(models, key=key)

