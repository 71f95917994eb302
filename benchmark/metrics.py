"""Per-target regression metrics: Pearson r, Spearman rho, R^2, MAE.

Two ways to aggregate over a cross-validation run, which differ a lot under
group splits (a leave-one-performer-out fold holds one player, whose ratings
vary little, so per-fold correlations are small and noisy):

- **pooled**: concatenate every fold's out-of-fold predictions, then score once;
- **per-fold**: score each fold's test set, then average over folds.

The runner stores per-fold rows; ``reports`` derives pooled rows from the
saved out-of-fold predictions.

This module holds the project's one Pearson r (:func:`pearson_from_sums`) and
its one R^2 (:func:`r2_from_sums`), each with one rule for "undefined"; every
other place (the runner's per-fold rows, the reports' pooled and fold-level
scorers, the bootstrap) computes them through these two functions.
"""

from __future__ import annotations

import numpy as np
from scipy import stats

METRICS = ("pearson", "spearman", "r2", "mae")


_EPS = 1e-12
_REL = 1e-10


def pearson_from_sums(sy, sp, syy, spp, syp, n) -> np.ndarray:
    """Pearson r from the moment sums of a set of rows: the project's one Pearson formula.

    ``sy = sum y``, ``sp = sum p``, ``syy = sum y^2``, ``spp = sum p^2``,
    ``syp = sum y p`` over ``n`` rows (arrays broadcast). NaN where r is
    undefined: fewer than two rows, or a column that is constant (variance
    below 1e-10 of its raw second moment, which absorbs rounding). Sums of
    centred values keep the formula free of cancellation
    (:func:`column_pearson` centres; :class:`reports.units.UnitScorer`
    centres each target before summing).
    """
    with np.errstate(invalid="ignore", divide="ignore"):
        vy, vp = syy - sy * sy / n, spp - sp * sp / n
        ok = (n > 1) & (vy > _REL * np.abs(syy) + _EPS) & (vp > _REL * np.abs(spp) + _EPS)
        return np.where(ok, (syp - sy * sp / n) / np.sqrt(np.where(ok, vy * vp, 1.0)), np.nan)


def r2_from_sums(sy, syy, ssr, n) -> np.ndarray:
    """R^2 from the sums of a set of rows: the project's one R^2 formula.

    ``sy = sum y``, ``syy = sum y^2``, ``ssr = sum (y - p)^2`` over ``n`` rows
    (arrays broadcast); ``1 - ssr / (syy - sy^2 / n)``, scikit-learn's
    ``r2_score`` of one column. NaN where R^2 is undefined, by the same rule as
    :func:`pearson_from_sums`: fewer than two rows, or a constant truth
    (variance below 1e-10 of its raw second moment, plus 1e-12).
    """
    with np.errstate(invalid="ignore", divide="ignore"):
        sst = syy - sy * sy / n
        ok = (n > 1) & (sst > _REL * np.abs(syy) + _EPS)
        return np.where(ok, 1.0 - ssr / np.where(ok, sst, 1.0), np.nan)


def column_r2(y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
    """R^2 of each column (scikit-learn's definition), vectorised over any leading axes (:func:`r2_from_sums`).

    Parameters
    ----------
    y_true, y_pred : ndarray, shape (..., n_samples, n_targets)

    Returns
    -------
    ndarray, shape (..., n_targets); NaN for a constant truth or fewer than two samples.
    """
    y_true, y_pred = np.broadcast_arrays(np.asarray(y_true, dtype=float), np.asarray(y_pred, dtype=float))
    n = y_true.shape[-2]
    if n == 0:
        return np.full(y_true.shape[:-2] + y_true.shape[-1:], np.nan)
    t = y_true - y_true.mean(axis=-2, keepdims=True)
    return r2_from_sums(t.sum(axis=-2), (t * t).sum(axis=-2), ((y_true - y_pred) ** 2).sum(axis=-2), float(n))


def column_pearson(y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
    """Pearson r of each column, vectorised over any leading axes (:func:`pearson_from_sums`).

    Parameters
    ----------
    y_true, y_pred : ndarray, shape (..., n_samples, n_targets)

    Returns
    -------
    ndarray, shape (..., n_targets); NaN for a constant column or fewer than two samples.
    """
    y_true, y_pred = np.broadcast_arrays(np.asarray(y_true, dtype=float), np.asarray(y_pred, dtype=float))
    n = y_true.shape[-2]
    if n == 0:
        return np.full(y_true.shape[:-2] + y_true.shape[-1:], np.nan)
    t = y_true - y_true.mean(axis=-2, keepdims=True)
    p = y_pred - y_pred.mean(axis=-2, keepdims=True)
    return pearson_from_sums(t.sum(axis=-2), p.sum(axis=-2), (t * t).sum(axis=-2), (p * p).sum(axis=-2),
                             (t * p).sum(axis=-2), float(n))


def _column_metric(name: str, t: np.ndarray, p: np.ndarray) -> float:
    if len(t) < 2:
        return float("nan")
    if name == "mae":
        return float(np.mean(np.abs(t - p)))
    if name == "r2":
        return float(column_r2(t[:, None], p[:, None])[0])
    if name == "pearson":
        return float(column_pearson(t[:, None], p[:, None])[0])
    # A constant column has no correlation; report NaN rather than a warning storm.
    if np.ptp(t) == 0 or np.ptp(p) == 0:
        return float("nan")
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
