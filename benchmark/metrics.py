"""Per-target regression metrics: Pearson r, Spearman rho, R^2, MAE.

Two ways to aggregate over a cross-validation run, which differ a lot under
group splits (a leave-one-performer-out fold holds one player, whose ratings
vary little, so per-fold correlations are small and noisy):

- **pooled**: concatenate every fold's out-of-fold predictions, then score once;
- **per-fold**: score each fold's test set, then average over folds.

The runner stores per-fold rows; ``reports`` derives pooled rows from the
saved out-of-fold predictions.
"""

from __future__ import annotations

import numpy as np
from scipy import stats

METRICS = ("pearson", "spearman", "r2", "mae")


def _column_metric(name: str, t: np.ndarray, p: np.ndarray) -> float:
    if len(t) < 2:
        return float("nan")
    if name == "mae":
        return float(np.mean(np.abs(t - p)))
    if name == "r2":
        ss_tot = float(np.sum((t - t.mean()) ** 2))
        if ss_tot == 0.0:
            return float("nan")
        return 1.0 - float(np.sum((t - p) ** 2)) / ss_tot
    # A constant column has no correlation; report NaN rather than a warning storm.
    if np.ptp(t) == 0 or np.ptp(p) == 0:
        return float("nan")
    if name == "pearson":
        return float(stats.pearsonr(t, p).statistic)
    if name == "spearman":
        return float(stats.spearmanr(t, p).statistic)
    raise ValueError(f"unknown metric {name!r}; use one of {METRICS}")


def per_target(y_true: np.ndarray, y_pred: np.ndarray, metrics: tuple[str, ...] = METRICS) -> dict[str, np.ndarray]:
    """Score every target column.

    Parameters
    ----------
    y_true, y_pred : ndarray, shape (n_samples, n_targets)

    Returns
    -------
    dict
        metric name -> ndarray (n_targets,); NaN where undefined (constant column,
        fewer than two samples).
    """
    y_true = np.asarray(y_true, dtype=float)
    y_pred = np.asarray(y_pred, dtype=float)
    if y_true.shape != y_pred.shape or y_true.ndim != 2:
        raise ValueError(f"y_true {y_true.shape} and y_pred {y_pred.shape} must both be (n_samples, n_targets)")
    return {m: np.array([_column_metric(m, y_true[:, j], y_pred[:, j]) for j in range(y_true.shape[1])])
            for m in metrics}


def mean_pearson(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Mean over targets of the per-target Pearson r (NaN targets ignored)."""
    return float(np.nanmean(per_target(y_true, y_pred, ("pearson",))["pearson"]))


def mean_r2(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Mean over targets of the per-target R^2; equals sklearn's uniform-average r2_score."""
    return float(np.nanmean(per_target(y_true, y_pred, ("r2",))["r2"]))
