"""The reports' scoring core: pooled and fold-level metrics of prediction stacks, from moment sums.

Every number of a report is Pearson r or R^2 of some rows, and both come from
:mod:`benchmark.metrics` (:func:`~benchmark.metrics.pearson_from_sums`, the one
Pearson; :func:`~benchmark.metrics.r2_from_sums`, the one R^2). This module
adds one way to score a *stack* of predictions:

* :func:`pooled_metric`: the target-averaged pooled metric of a stack
  (n_replicates, n_samples, n_targets), averaged over replicates;
* one moment-sum engine (:class:`MomentSums`): each row's moments
  (:func:`moments`) are summed with weights, so a bootstrap draw (weights per
  row or unit) or a swap of two models' rows costs one matrix product, and the
  metric of every cell follows from the sums (:func:`metric_from_sums`). Its
  two uses differ only in what a row is and how cells are averaged:
  :class:`PooledScorer` (rows = segments, cells = replicates x targets: the
  pooled metric) and :class:`UnitScorer` (rows = the split's units, cells =
  fold units x targets: the fold-level metric of a model pair);
* :func:`bootstrap_pooled`: the percentile bootstrap of :func:`pooled_metric`.
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass

import numpy as np
from scipy.stats import DegenerateDataWarning

from benchmark.errors import ConfigError
from benchmark.metrics import (
    POOLED_METRICS,
    REGISTRY,
    ccc_from_sums,
    column_metric,
    column_pearson,
    column_r2,
    mse_from_sums,
    pearson_from_sums,
    r2_from_sums,
    share_from_sums,
    within_spread,
)
from reports.bootstrap import bootstrap_weights_ci

logger = logging.getLogger(__name__)

#: The metrics the report's paired tests compare (the headline pair).
METRIC_FUNCTIONS = {"pearson": column_pearson, "r2": column_r2}
#: Moments per row and metric (see :func:`moments`); every pooled metric of the registry.
N_MOMENTS = {"pearson": 5, "r2": 3, "mse": 1, "ccc": 5, **{m: 1 for m in POOLED_METRICS if REGISTRY[m].needs_spread}}
#: Metrics whose value changes when truth and prediction are shifted apart: centre both by the truth's mean.
_COMMON_SHIFT = ("ccc",)
#: Metrics summed from non-negative per-row terms only (no cancellation in their moment sums).
_NO_CANCELLATION = ("mse", *(m for m in POOLED_METRICS if REGISTRY[m].needs_spread))


def nanmean(a, axis=None):
    """``np.nanmean`` that returns NaN for an all-NaN slice without a warning.

    A constant prediction (the mean baseline) has no correlation: all-NaN is a
    legitimate result here, not a warning.
    """
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmean(a, axis=axis)


def check_metric(metric: str) -> None:
    """Raise ConfigError for a metric that is not ``pearson`` or ``r2``."""
    if metric not in METRIC_FUNCTIONS:
        raise ConfigError(f"unknown metric {metric!r}; use {tuple(METRIC_FUNCTIONS)}")


def check_pooled_metric(metric: str, sd: np.ndarray | None = None) -> None:
    """Raise ConfigError for a metric the reports cannot pool, or a rater-spread metric without ``sd``."""
    if metric not in N_MOMENTS:
        raise ConfigError(f"unknown metric {metric!r}; use one of {POOLED_METRICS}")
    if REGISTRY[metric].needs_spread and sd is None:
        raise ConfigError(f"metric {metric!r} needs the raters' per-segment spread, which this run lacks")


def pooled_metric(y_true: np.ndarray, stack: np.ndarray, metric: str, *, sd: np.ndarray | None = None) -> float:
    """Target-averaged pooled metric, averaged over replicates.

    Parameters
    ----------
    y_true : ndarray, shape (n_samples, n_targets)
    stack : ndarray, shape (n_replicates, n_samples, n_targets)
    metric : str
        A pooled metric of the registry (:data:`benchmark.metrics.POOLED_METRICS`).
    sd : ndarray, shape (n_samples, n_targets), optional
        The raters' spread of each segment (rater-spread metrics only).

    Returns
    -------
    float
        NaN-mean over replicates and targets (a constant prediction has no r).
    """
    check_pooled_metric(metric, sd)
    return float(nanmean(column_metric(metric, y_true, stack, sd)))


def moments(yc: np.ndarray, pc: np.ndarray, metric: str, *, resid: np.ndarray | None = None,
            sd: np.ndarray | None = None, axis: int = -1) -> np.ndarray:
    """Per-row moments whose sums give the metric of a set of rows (:func:`metric_from_sums`).

    Pearson r and CCC: ``y, p, y^2, p^2, y p``; R^2: ``y, y^2, (y - p)^2``;
    MSE: ``(y - p)^2``; a rater-spread accuracy: the indicator of ``|y - p| <=
    k sd``; stacked on ``axis``. ``yc`` and ``pc`` are truth and prediction,
    best centred (r and R^2 are shift-invariant; CCC only when both are shifted
    alike; centring keeps the sums free of cancellation). ``resid`` is the
    residual ``y - p`` when the caller has it uncentred; ``sd`` the raters'
    spread of each row (rater-spread metrics).

    Raises
    ------
    ConfigError
        Unknown metric, or a rater-spread metric without ``sd``.
    """
    check_pooled_metric(metric, sd)
    r = yc - pc if resid is None else resid
    spec = REGISTRY[metric]
    if metric in ("pearson", "ccc"):
        parts = (yc, pc, yc * yc, pc * pc, yc * pc)
    elif metric == "r2":
        parts = (yc, yc * yc, r ** 2)
    elif metric == "mse":
        parts = (r ** 2,)
    else:  # a rater-spread accuracy
        parts = (within_spread(r, 0.0, sd, spec.spread_k),)
    return np.stack(np.broadcast_arrays(*parts), axis=axis)


def metric_from_sums(s: np.ndarray, n: np.ndarray, metric: str) -> np.ndarray:
    """The metric of every cell from its moment sums ``s`` (..., k) and row counts ``n`` (...); NaN if undefined.

    Each metric's one formula lives in :mod:`benchmark.metrics`: Pearson r
    :func:`~benchmark.metrics.pearson_from_sums`, R^2
    :func:`~benchmark.metrics.r2_from_sums`, CCC
    :func:`~benchmark.metrics.ccc_from_sums`, MSE
    :func:`~benchmark.metrics.mse_from_sums`, the rater-spread accuracies
    :func:`~benchmark.metrics.share_from_sums`.
    """
    if metric not in N_MOMENTS:
        raise ConfigError(f"unknown metric {metric!r}; use one of {POOLED_METRICS}")
    parts = np.moveaxis(s, -1, 0)
    if metric == "pearson":
        return pearson_from_sums(*parts, n)
    if metric == "r2":
        return r2_from_sums(*parts, n)
    if metric == "ccc":
        return ccc_from_sums(*parts, n)
    if metric == "mse":
        return mse_from_sums(parts[0], n)
    return share_from_sums(parts[0], n)


class MomentSums:
    """Moment rows of one model (A) and optionally a second (B), summed under weights or swaps.

    ``a`` and ``b`` are (n_rows, n_columns) matrices of per-row moments (the
    columns: cells x moments in the subclass's layout). A weighted sum is one
    matrix product; a swap moves whole rows from A to B (and back), which is
    the same product on ``b - a``.
    """

    def _set_rows(self, a: np.ndarray, b: np.ndarray | None) -> None:
        self._a, self._b = a, b
        self._a_sum = a.sum(axis=0)
        if b is not None:
            self._delta = b - a

    def _swap_sums(self, swap: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Sums of A and B with the rows where ``swap`` is 1 exchanged (``swap``: (n_rows,) or (P, n_rows))."""
        moved = swap @ self._delta
        return self._a_sum + moved, self._b.sum(axis=0) - moved


class PooledScorer(MomentSums):
    """Pooled metric of a prediction stack from weighted sums over rows.

    A bootstrap resample only re-weights rows (``w = bincount(idx)``) and a
    swap test only picks, per row, one of two models' predictions, so the
    metric follows from sums of a few per-row moments: one matrix-vector
    product per resample instead of a pass over the data. The result equals
    :func:`pooled_metric` on the resampled rows up to rounding.

    Sums of squares lose precision to cancellation when a column holds
    outliers far beyond its bulk (a diverging model predicting 1e10 for one
    segment); such data is scored directly on the resampled rows instead, as
    :func:`pooled_metric` does.

    Parameters
    ----------
    y_true : ndarray, shape (n_samples, n_targets)
    stack : ndarray, shape (n_replicates, n_samples, n_targets)
    metric : str
        A pooled metric of the registry (:data:`benchmark.metrics.POOLED_METRICS`).
    other : ndarray, shape like ``stack``, optional
        A second model's predictions, for :meth:`diff` and :meth:`mixed`.
    sd : ndarray, shape (n_samples, n_targets), optional
        The raters' spread of each segment (rater-spread metrics only).
    """

    #: Largest n_samples * max(x^2) / MAD(x)^2 (x: a centred column) that the moment sums tolerate.
    MAX_SPREAD = 1e7

    def __init__(self, y_true: np.ndarray, stack: np.ndarray, metric: str, *, other: np.ndarray | None = None,
                 sd: np.ndarray | None = None):
        check_pooled_metric(metric, sd)
        self.metric = metric
        self.sd = None if sd is None else np.asarray(sd, dtype=float)
        self._raw = (y_true, stack, other)
        # Pearson r is shift-invariant, so both models share one centring (rows of the two may mix);
        # centring keeps the sums free of cancellation, and a constant column exactly constant. CCC sees
        # the difference of the means: truth and predictions are shifted by the same amount (the truth's mean).
        both = stack if other is None else (stack + other) / 2.0
        center = (np.broadcast_to(y_true.mean(axis=0), both.shape[:1] + (1,) + both.shape[2:])
                  if metric in _COMMON_SHIFT else both.mean(axis=1, keepdims=True))
        checked = [y_true - y_true.mean(axis=0)] + [s - center for s in (stack, other) if s is not None]
        # Sums of non-negative terms (squared residuals, hit indicators) do not cancel: MSE and the rater-spread
        # shares need no check (finite predictions only).
        if metric in _NO_CANCELLATION:
            self.direct = not all(np.isfinite(c).all() for c in checked)
        else:
            self.direct = not all(self._well_conditioned(c) for c in checked)
        if self.direct:
            return
        a = self._rows(y_true, stack, center)
        self._set_rows(a, None if other is None else self._rows(y_true, other, center))

    def _well_conditioned(self, centered: np.ndarray) -> bool:
        x = np.moveaxis(centered, -2, 0).reshape(centered.shape[-2], -1)
        if not np.isfinite(x).all():
            return False
        # Rounding error of a sum of squares ~ eps * n * max(x^2); the spread to resolve ~ MAD^2.
        mad = np.median(np.abs(x - np.median(x, axis=0)), axis=0)
        peak = (x * x).max(axis=0)
        # A column constant in its bulk is safe only when it is constant throughout.
        return bool(np.all(np.where(mad > 0, peak * len(x) <= self.MAX_SPREAD * mad * mad, np.ptp(x, axis=0) == 0)))

    def _rows(self, y: np.ndarray, st: np.ndarray, center: np.ndarray) -> np.ndarray:
        """Per-sample moments, shape (n_samples, k * n_replicates * n_targets) (moment-major columns)."""
        yc = y - y.mean(axis=0)
        m = moments(np.broadcast_to(yc, st.shape), st - center, self.metric, resid=y - st, sd=self.sd, axis=0)
        return np.ascontiguousarray(np.moveaxis(m, 2, 0).reshape(st.shape[1], -1))

    def _cells(self, sums: np.ndarray, totals: np.ndarray) -> np.ndarray:
        """Metric of every (replicate, target) cell, shape (P, n_cells), from sums (P, columns)."""
        k = N_MOMENTS[self.metric]
        s = np.moveaxis(sums.reshape(len(sums), k, -1), 1, -1)
        return metric_from_sums(s, totals[:, None], self.metric)

    @staticmethod
    def _average(cells: np.ndarray) -> np.ndarray:
        """Mean over each row's defined cells (NaN when none is)."""
        ok = np.isfinite(cells)
        out = np.full(len(cells), np.nan)
        full = ok.all(axis=1)
        out[full] = cells[full].sum(axis=1) / cells.shape[1]
        for i in np.flatnonzero(~full):
            val = cells[i][ok[i]]
            if val.size:
                out[i] = val.sum() / val.size
        return out

    def _direct(self, weights: np.ndarray, pick: np.ndarray | None = None, model: int = 0) -> float:
        y, a, b = self._raw
        st = (a, b)[model]
        if pick is not None:
            st = np.where(pick.reshape(1, -1, 1) > 0, b, a)
        rows = np.repeat(np.arange(len(y)), np.asarray(weights).astype(int))
        return pooled_metric(y[rows], st[:, rows], self.metric, sd=None if self.sd is None else self.sd[rows])

    def scores(self, weights: np.ndarray) -> np.ndarray:
        """:meth:`score` of each row of ``weights`` (P, n_samples), shape (P,)."""
        weights = np.atleast_2d(np.asarray(weights, dtype=float))
        if self.direct:
            return np.array([self._direct(w) for w in weights])
        # One matrix-vector product per row, as in score(): a batched product would round differently.
        sums = np.stack([w @ self._a for w in weights])
        return self._average(self._cells(sums, weights.sum(axis=1)))

    def score(self, weights: np.ndarray) -> float:
        """The metric of ``stack`` with row ``i`` counted ``weights[i]`` times (integer counts)."""
        return float(self.scores(weights)[0])

    def diff(self, weights: np.ndarray) -> float:
        """``score`` of ``stack`` minus that of ``other`` on the same weighted rows."""
        if self.direct:
            return self._direct(weights) - self._direct(weights, model=1)
        w = np.asarray(weights, dtype=float)
        sums = np.stack([w @ self._a, w @ self._b])
        cells = self._average(self._cells(sums, np.full(2, float(w.sum()))))
        return float(cells[0] - cells[1])

    def mixed(self, pick_other: np.ndarray) -> float:
        """The metric of ``stack`` with the rows where ``pick_other`` is 1 taken from ``other``."""
        pick = np.asarray(pick_other, dtype=float).reshape(-1)
        if self.direct:
            return self._direct(np.ones(pick.size), pick)
        sums, _ = self._swap_sums(pick)
        return float(self._average(self._cells(sums[None], np.array([float(pick.size)])))[0])


@dataclass(frozen=True)
class Cells:
    """The scored cells of a run for one model pair: one (fold unit, row set) per (seed, fold).

    Attributes
    ----------
    y : ndarray (n, T)
    pred_a, pred_b : ndarray (n_cells_units, n, T)
        Predictions of each fold unit (rows outside ``rows[u]`` unused).
    rows : list of ndarray
        Sample positions scored in each fold unit.
    seed, fold : ndarray (n_fold_units,)
        The (seed, fold) of each fold unit (fold -1 for a fixed test set's fold-averaged unit).
    groups : ndarray (n,)
        Unit label of every sample.
    n_train, n_test : ndarray (n_fold_units,)
    """

    y: np.ndarray
    pred_a: np.ndarray
    pred_b: np.ndarray
    rows: list
    seed: np.ndarray
    fold: np.ndarray
    groups: np.ndarray
    n_train: np.ndarray
    n_test: np.ndarray


class UnitScorer(MomentSums):
    """Fold-level mean metric of two models, under resampling or swapping of whole units.

    Rows are the units (performers, passages, segments...); columns hold, for
    every (fold, target) cell, the moment sums of that unit's segments. A
    bootstrap draw weights the units, a permutation swaps whole units between
    models A and B; either way the cells' sums are one matrix product.

    The statistic: per target, the mean over folds of the fold's metric, each
    fold weighted by the share of its segments present (1 without resampling;
    a LOPO fold drawn twice counts twice); then the mean over targets (a target
    undefined in every fold is skipped).

    Parameters
    ----------
    cells : Cells
    metric : {"pearson", "r2"}
    """

    def __init__(self, cells: Cells, metric: str) -> None:
        check_metric(metric)
        self.metric = metric
        y = cells.y
        labels, codes = np.unique(cells.groups, return_inverse=True)
        self.units = labels
        G, U, T = len(labels), len(cells.rows), y.shape[1]
        # Centring per target keeps the sums free of cancellation (r and R^2 are shift-invariant
        # when truth and prediction shift together; R^2 uses y - p, unchanged).
        c = y.mean(axis=0)
        k = N_MOMENTS[metric]
        a = np.zeros((G, U, T, k))
        b = np.zeros((G, U, T, k))
        self._n = np.zeros((G, U))
        for u, idx in enumerate(cells.rows):
            yu = y[idx] - c
            for out, pred in ((a, cells.pred_a), (b, cells.pred_b)):
                np.add.at(out[:, u], codes[idx], moments(yu, pred[u][idx] - c, metric))
            np.add.at(self._n[:, u], codes[idx], 1.0)
        self.shape = (U, T, k)
        self._set_rows(a.reshape(G, -1), b.reshape(G, -1))
        self._n0 = self._n.sum(axis=0)
        self.cells = cells

    @property
    def n_units(self) -> int:
        return len(self.units)

    def _stat(self, sums: np.ndarray, counts: np.ndarray) -> np.ndarray:
        """Per-target statistic (P, T) from sums (P, G-summed columns) and counts (P, U)."""
        U, T, k = self.shape
        m = metric_from_sums(sums.reshape(-1, U, T, k), counts[:, :, None], self.metric)  # (P, U, T)
        w = np.broadcast_to((counts / self._n0)[:, :, None], m.shape)
        ok = np.isfinite(m) & (w > 0)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(ok, m * w, 0.0).sum(axis=1) / np.where(ok, w, 0.0).sum(axis=1)

    def statistic(self, weights: np.ndarray) -> np.ndarray:
        """Per-target statistic of model A alone, shape (P, T), for unit ``weights`` (P, G)."""
        return self._stat(weights @ self._a, weights @ self._n)

    def per_target(self, weights: np.ndarray | None = None, swap: np.ndarray | None = None) -> np.ndarray:
        """Per-target differences A - B, shape (P, T), for unit ``weights`` or ``swap`` masks (P, G)."""
        if swap is not None:
            swap = np.atleast_2d(np.asarray(swap, dtype=float))
            sa, sb = self._swap_sums(swap)
            counts = np.broadcast_to(self._n0, (len(swap), len(self._n0)))
        else:
            w = np.ones((1, self.n_units)) if weights is None else np.atleast_2d(np.asarray(weights, dtype=float))
            sa, sb, counts = w @ self._a, w @ self._b, w @ self._n
        return self._stat(sa, counts) - self._stat(sb, counts)

    def scores(self, model: str = "a") -> np.ndarray:
        """The fold-unit metric of one model, shape (U, T) (all segments present)."""
        U, T, k = self.shape
        s = (self._a if model == "a" else self._b).sum(axis=0).reshape(U, T, k)
        return metric_from_sums(s, self._n0[:, None], self.metric)


def nanmean_last(a: np.ndarray) -> np.ndarray:
    """Mean over the last axis of the finite values (NaN where none is), without warnings."""
    ok = np.isfinite(a)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(ok, a, 0.0).sum(axis=-1) / ok.sum(axis=-1)


def bootstrap_pooled(y_true, stack, metric, *, groups=None, resampled=None, n_resamples=1000,
                     confidence=0.95, seed=0, sd=None):
    """Percentile bootstrap CI of :func:`pooled_metric` (:func:`reports.bootstrap.bootstrap_weights_ci`).

    A draw of segments (or of whole groups when ``groups`` is given) becomes
    row weights, so one draw serves every replicate alike; a draw whose metric
    is undefined (e.g. a cluster resample of one performer under a constant
    predictor) gives NaN bounds, logged, not warned.

    Parameters
    ----------
    y_true : ndarray, shape (n_samples, n_targets)
    stack : ndarray, shape (n_replicates, n_samples, n_targets)
    metric : str
        A pooled metric of the registry.
    groups : array-like, shape (n_samples,), optional
    resampled : str, optional
        What a unit is, for the result's label ("performers", "pieces", ...).
    n_resamples, confidence, seed
        As :func:`reports.bootstrap.bootstrap_ci` (percentile method).
    sd : ndarray, shape (n_samples, n_targets), optional
        The raters' spread of each segment (rater-spread metrics only).

    Returns
    -------
    reports.bootstrap.BootstrapResult
        NaN bounds when the metric is undefined in some resample.
    """
    scorer = PooledScorer(y_true, stack, metric, sd=sd)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DegenerateDataWarning)
        res = bootstrap_weights_ci(len(y_true), scorer.scores, groups=groups, resampled=resampled,
                                   n_resamples=n_resamples, confidence=confidence, seed=seed)
    if np.isfinite(res.estimate) and not (np.isfinite(res.low) and np.isfinite(res.high)):
        logger.info("bootstrap CI over %s undefined: the metric is undefined in some resamples", res.resampled)
    return res
