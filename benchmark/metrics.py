"""The metric registry: per-target regression metrics and the one formula of each.

Pearson r, Spearman rho, R^2 and MAE, and the metrics the literature reports
besides them: MSE, Lin's (1989) concordance correlation coefficient (CCC) and
the dataset paper's rater-spread accuracy (the share of predictions within k
standard deviations of the raters' ratings of the segment, k = 1, 0.5, 0.1).
:data:`REGISTRY` says how to read each (label, direction, source).

Two ways to aggregate over a cross-validation run, which differ a lot under
group splits (a leave-one-performer-out fold holds one player, whose ratings
vary little, so per-fold correlations are small and noisy):

- **pooled**: concatenate every fold's out-of-fold predictions, then score once;
- **per-fold**: score each fold's test set, then average over folds.

The runner stores per-fold rows; ``reports`` derives pooled rows from the
saved out-of-fold predictions.

This module holds the project's one Pearson r (:func:`pearson_from_sums`), its
one R^2 (:func:`r2_from_sums`), its one CCC (:func:`ccc_from_sums`), its one
MSE (:func:`mse_from_sums`) and its one rater-spread share
(:func:`share_from_sums`), each with one rule for "undefined"; every other
place (the runner's per-fold rows, the reports' pooled and fold-level scorers,
the bootstrap) computes them through these functions.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats


@dataclass(frozen=True)
class MetricSpec:
    """One metric of the registry.

    Attributes
    ----------
    name : str
        The registry name (metric rows, table columns, ``--metric``).
    label : str
        How tables print it.
    higher_is_better : bool
    description : str
    source : str
        Where the metric comes from (the paper a reader checks it against).
    pooled : bool
        Whether the reports compute it pooled over folds, from moment sums (with bootstrap CIs).
    spread_k : float or None
        For a rater-spread accuracy: the k of "within k rater standard deviations".
    """

    name: str
    label: str
    higher_is_better: bool
    description: str
    source: str
    pooled: bool = True
    spread_k: float | None = None

    @property
    def needs_spread(self) -> bool:
        """Whether scoring it needs the raters' per-segment standard deviation."""
        return self.spread_k is not None


#: The rater-spread accuracies: k of the dataset paper's evaluation (upstream ``evaluate_std_score``).
SPREAD_KS = (1.0, 0.5, 0.1)


def spread_name(k: float) -> str:
    """Registry name of the rater-spread accuracy at ``k`` (``acc_1sd``, ``acc_0.5sd``, ``acc_0.1sd``)."""
    return f"acc_{k:g}sd"


_SPREAD = {spread_name(k): MetricSpec(
    spread_name(k), f"acc ±{k:g} sd", True,
    f"share of predictions within {k:g} standard deviation(s) of the raters' ratings of the segment "
    "(|y_pred - y_true| <= k sd; sd over the answers of every valid sheet, on the label scale)",
    "Park et al. 2024 (PercePiano), upstream evaluate_std_score", spread_k=k) for k in SPREAD_KS}

#: Every metric the harness reports, by name.
REGISTRY: dict[str, MetricSpec] = {
    "pearson": MetricSpec("pearson", "r", True, "Pearson correlation of truth and prediction", "Pearson 1895"),
    "r2": MetricSpec("r2", "R²", True, "coefficient of determination 1 - SS_res / SS_tot (scikit-learn's r2_score)",
                     "scikit-learn r2_score"),
    "spearman": MetricSpec("spearman", "ρ", True, "Spearman rank correlation", "Spearman 1904", pooled=False),
    "mae": MetricSpec("mae", "MAE", False, "mean absolute error", "", pooled=False),
    "mse": MetricSpec("mse", "MSE", False, "mean squared error (scikit-learn's mean_squared_error)",
                      "Park et al. 2024 (PercePiano) report it beside R²"),
    "ccc": MetricSpec("ccc", "CCC", True, "concordance correlation coefficient 2 s_yp / (s_y² + s_p² + (ȳ - p̄)²), "
                      "moments with 1/n", "Lin 1989, Biometrics 45:255-268"),
    **_SPREAD,
}

#: Metrics the runner writes per fold for every job (the rater-spread ones too when the run has the spread).
METRICS = ("pearson", "spearman", "r2", "mae", "mse", "ccc")
#: The rater-spread accuracies, in the order of :data:`SPREAD_KS`.
SPREAD_METRICS = tuple(spread_name(k) for k in SPREAD_KS)
#: Metrics the reports compute pooled (moment sums), in report order.
POOLED_METRICS = ("pearson", "r2", "mse", "ccc", *SPREAD_METRICS)


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


def mse_from_sums(ssr, n) -> np.ndarray:
    """Mean squared error from ``ssr = sum (y - p)^2`` over ``n`` rows: the project's one MSE.

    NaN for no rows (scikit-learn's ``mean_squared_error`` of one column otherwise).
    """
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(np.asarray(n) > 0, ssr / np.where(np.asarray(n) > 0, n, 1.0), np.nan)


def ccc_from_sums(sy, sp, syy, spp, syp, n) -> np.ndarray:
    """Lin's (1989) concordance correlation coefficient from moment sums: the project's one CCC.

    ``2 s_yp / (s_y^2 + s_p^2 + (mean_y - mean_p)^2)`` with the moments of
    Lin's estimator (divided by n), from the same five sums as
    :func:`pearson_from_sums`. Unlike Pearson r it is not shift-invariant
    between y and p: callers that centre must shift truth and prediction by
    the same amount. A constant prediction that misses the truth scores 0; NaN
    for fewer than two rows, or when truth and prediction are the same
    constant (the denominator vanishes; below 1e-10 of the raw second moments, plus 1e-12).
    """
    with np.errstate(invalid="ignore", divide="ignore"):
        my, mp = sy / n, sp / n
        den = (syy + spp) / n - 2.0 * my * mp
        ok = (n > 1) & (den > _REL * (np.abs(syy) + np.abs(spp)) / np.where(n > 0, n, 1.0) + _EPS)
        return np.where(ok, 2.0 * (syp / n - my * mp) / np.where(ok, den, 1.0), np.nan)


def share_from_sums(hits, n) -> np.ndarray:
    """A share ``hits / n`` (the rater-spread accuracy from its per-row indicators); NaN for no rows."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(np.asarray(n) > 0, hits / np.where(np.asarray(n) > 0, n, 1.0), np.nan)


def within_spread(y_true, y_pred, sd, k: float) -> np.ndarray:
    """1.0 where ``|y_pred - y_true| <= k sd``, else 0.0 (arrays broadcast): the rater-spread indicator.

    The dataset paper's ``evaluate_std_score`` counts a prediction in
    ``[y - k sd, y + k sd]``; a segment whose raters agree (sd 0) counts only an exact hit.
    """
    y_true, y_pred, sd = (np.asarray(a, dtype=float) for a in (y_true, y_pred, sd))
    return (np.abs(y_pred - y_true) <= k * sd).astype(float)


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


def column_mse(y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
    """MSE of each column (:func:`mse_from_sums`), vectorised over any leading axes; shapes as :func:`column_r2`."""
    y_true, y_pred = np.broadcast_arrays(np.asarray(y_true, dtype=float), np.asarray(y_pred, dtype=float))
    return mse_from_sums(((y_true - y_pred) ** 2).sum(axis=-2), float(y_true.shape[-2]))


def column_ccc(y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
    """CCC of each column (:func:`ccc_from_sums`), vectorised over any leading axes; shapes as :func:`column_r2`."""
    y_true, y_pred = np.broadcast_arrays(np.asarray(y_true, dtype=float), np.asarray(y_pred, dtype=float))
    n = y_true.shape[-2]
    if n == 0:
        return np.full(y_true.shape[:-2] + y_true.shape[-1:], np.nan)
    c = y_true.mean(axis=-2, keepdims=True)  # one shift for both: CCC sees the difference of their means
    t, p = y_true - c, y_pred - c
    return ccc_from_sums(t.sum(axis=-2), p.sum(axis=-2), (t * t).sum(axis=-2), (p * p).sum(axis=-2),
                         (t * p).sum(axis=-2), float(n))


def column_spread(y_true: np.ndarray, y_pred: np.ndarray, sd: np.ndarray, k: float) -> np.ndarray:
    """Rater-spread accuracy of each column at ``k`` (:func:`within_spread`, :func:`share_from_sums`).

    Parameters
    ----------
    y_true, y_pred : ndarray, shape (..., n_samples, n_targets)
    sd : ndarray, shape (n_samples, n_targets)
        The raters' standard deviation of each segment and target, on the label scale.
    k : float

    Returns
    -------
    ndarray, shape (..., n_targets); NaN with no samples.
    """
    hits = within_spread(y_true, y_pred, sd, k)
    return share_from_sums(hits.sum(axis=-2), float(hits.shape[-2]))


def column_metric(name: str, y_true: np.ndarray, y_pred: np.ndarray, sd: np.ndarray | None = None) -> np.ndarray:
    """Any pooled metric of the registry per column, vectorised over leading axes (shapes as :func:`column_r2`).

    Raises
    ------
    ValueError
        An unknown or not pooled metric, or a rater-spread metric without ``sd``.
    """
    spec = REGISTRY.get(name)
    if spec is None or not spec.pooled:
        raise ValueError(f"unknown pooled metric {name!r}; use one of {POOLED_METRICS}")
    if spec.needs_spread:
        if sd is None:
            raise ValueError(f"metric {name!r} needs the raters' per-segment standard deviation (sd)")
        return column_spread(y_true, y_pred, sd, spec.spread_k)
    return {"pearson": column_pearson, "r2": column_r2, "mse": column_mse, "ccc": column_ccc}[name](y_true, y_pred)


def _column_metric(name: str, t: np.ndarray, p: np.ndarray, sd: np.ndarray | None = None) -> float:
    spec = REGISTRY.get(name)
    if spec is not None and spec.needs_spread:
        if sd is None:
            raise ValueError(f"metric {name!r} needs the raters' per-segment standard deviation (sd)")
        return float(column_spread(t[:, None], p[:, None], sd[:, None], spec.spread_k)[0])
    if name == "mse":
        return float(column_mse(t[:, None], p[:, None])[0])
    if len(t) < 2:
        return float("nan")
    if name == "ccc":
        return float(column_ccc(t[:, None], p[:, None])[0])
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
    raise ValueError(f"unknown metric {name!r}; use one of {tuple(REGISTRY)}")


def per_target(y_true: np.ndarray, y_pred: np.ndarray, metrics: tuple[str, ...] = METRICS, *,
               sd: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Score every target column.

    Parameters
    ----------
    y_true, y_pred : ndarray, shape (n_samples, n_targets)
    metrics : tuple of str
        Names of :data:`REGISTRY`.
    sd : ndarray, shape (n_samples, n_targets), optional
        The raters' standard deviation of each segment and target (label scale); needed by the
        rater-spread metrics (:data:`SPREAD_METRICS`).

    Returns
    -------
    dict
        metric name -> ndarray (n_targets,); NaN where undefined (constant column,
        fewer than two samples).

    Raises
    ------
    ValueError
        Mismatched shapes, an unknown metric, or a rater-spread metric without ``sd``.
    """
    y_true = np.asarray(y_true, dtype=float)
    y_pred = np.asarray(y_pred, dtype=float)
    if y_true.shape != y_pred.shape or y_true.ndim != 2:
        raise ValueError(f"y_true {y_true.shape} and y_pred {y_pred.shape} must both be (n_samples, n_targets)")
    if sd is not None:
        sd = np.asarray(sd, dtype=float)
        if sd.shape != y_true.shape:
            raise ValueError(f"sd {sd.shape} must have the shape of y_true {y_true.shape}")
    return {m: np.array([_column_metric(m, y_true[:, j], y_pred[:, j], None if sd is None else sd[:, j])
                         for j in range(y_true.shape[1])]) for m in metrics}


def mean_pearson(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Mean over targets of the per-target Pearson r (NaN targets ignored)."""
    return float(np.nanmean(per_target(y_true, y_pred, ("pearson",))["pearson"]))


def mean_r2(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Mean over targets of the per-target R^2; equals sklearn's uniform-average r2_score."""
    return float(np.nanmean(per_target(y_true, y_pred, ("r2",))["r2"]))
