"""Bootstrap confidence intervals over segments or over whole groups.

One mechanism serves both cases: scipy.stats.bootstrap resamples an array of
*unit* indices, and the statistic gathers the rows of the drawn units. A unit
is a segment (ordinary bootstrap, Efron & Tibshirani 1993) or a group such as
a performer or a piece (cluster bootstrap; Davison & Hinkley 1997, sec. 3.8;
Field & Welsh 2007). Resampling segments assumes segments are independent;
segments of one performer (or piece) are not, so a segment bootstrap is too
narrow for claims that should hold for new performers. Performers and pieces
are crossed here: resampling one factor covers only its share of the
variance, so every result records which factor was resampled.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

from benchmark.errors import ConfigError

BOOTSTRAP_METHODS = ("percentile", "BCa", "basic")


@dataclass(frozen=True)
class BootstrapResult:
    """A bootstrap confidence interval.

    Attributes
    ----------
    estimate : float
        The statistic on the full data.
    low, high : float
        Interval bounds (NaN when the statistic is NaN or, for BCa, degenerate).
    method : str
        ``"percentile"``, ``"BCa"`` or ``"basic"``.
    resampled : str
        What was resampled: ``"segments"``, ``"performers"``, ``"pieces"``...
    n_resamples : int
    confidence : float
    n_units : int
        Number of resampling units (segments or groups).
    """

    estimate: float
    low: float
    high: float
    method: str
    resampled: str
    n_resamples: int
    confidence: float
    n_units: int


def _as_arrays(data) -> tuple[np.ndarray, ...]:
    arrays = tuple(np.asarray(x) for x in data) if isinstance(data, tuple) else (np.asarray(data),)
    if any(a.ndim == 0 for a in arrays):
        raise ConfigError("bootstrap data must be arrays with samples along axis 0, got a scalar")
    n = arrays[0].shape[0]
    if any(a.shape[0] != n for a in arrays):
        raise ConfigError(
            f"paired arrays must have the same number of rows, got {[a.shape[0] for a in arrays]}; "
            "pass (y_true, y_pred) aligned by segment"
        )
    return arrays


def bootstrap_ci(
    data,
    statistic: Callable[..., float],
    *,
    n_resamples: int = 2000,
    confidence: float = 0.95,
    method: str = "percentile",
    seed: int = 0,
    groups: Sequence | np.ndarray | None = None,
    resampled: str | None = None,
) -> BootstrapResult:
    """Confidence interval of ``statistic`` by (cluster) bootstrap.

    Percentile and basic intervals (Efron & Tibshirani 1993) assume the
    bootstrap distribution mimics the sampling distribution; BCa (Efron 1987)
    corrects bias and skew using a jackknife over the units, which costs one
    statistic call per unit. All assume the resampling units are independent
    and exchangeable.

    Parameters
    ----------
    data : array-like or tuple of array-likes
        One array, or a tuple of arrays paired row-wise (all resampled with the
        same row indices), each with the samples along axis 0, e.g.
        ``(y_true, y_pred)`` of shape (n_samples, n_targets). A list is one array.
    statistic : callable
        ``statistic(*arrays) -> float`` on the (resampled) arrays.
    n_resamples : int
    confidence : float
    method : {"percentile", "BCa", "basic"}
    seed : int
        Seeds ``numpy.random.default_rng`` passed to scipy as ``rng``.
    groups : array-like, shape (n_samples,), optional
        Group label of every row. When given, whole groups are resampled with
        replacement (cluster bootstrap) and the statistic sees all rows of the
        drawn groups, a group drawn twice contributing its rows twice.
    resampled : str, optional
        Label for the result; defaults to ``"segments"`` without groups and
        ``"groups"`` with them. Pass ``"performers"``/``"pieces"``.

    Returns
    -------
    BootstrapResult

    Raises
    ------
    ConfigError
        Mismatched rows, fewer than 2 units, bad method or confidence.
    """
    if method not in BOOTSTRAP_METHODS:
        raise ConfigError(f"bootstrap method {method!r} unknown; use one of {BOOTSTRAP_METHODS}")
    if not 0.0 < confidence < 1.0:
        raise ConfigError(f"confidence={confidence!r} must lie strictly between 0 and 1, e.g. 0.95")
    if int(n_resamples) < 1:
        raise ConfigError(f"n_resamples={n_resamples!r} must be >= 1 (2000 or more is usual)")
    arrays = _as_arrays(data)
    n = arrays[0].shape[0]
    if groups is None:
        members = None
        n_units = n
        label = resampled or "segments"
    else:
        g = np.asarray(groups)
        if g.shape != (n,):
            raise ConfigError(f"groups must have one label per row ({n}), got shape {g.shape}")
        if any(isinstance(x, float) and np.isnan(x) for x in g.tolist()):
            raise ConfigError("groups contain NaN; every row needs a group label")
        _, codes = np.unique(g, return_inverse=True)
        members = [np.flatnonzero(codes == u) for u in range(codes.max() + 1)]
        n_units = len(members)
        label = resampled or "groups"
    if n_units < 2:
        raise ConfigError(
            f"need at least 2 resampling units, got {n_units} ({label}); a bootstrap over one unit is void"
        )

    def rows_of(units: np.ndarray) -> np.ndarray:
        return units if members is None else np.concatenate([members[u] for u in units])

    def on_units(units: np.ndarray) -> float:
        rows = rows_of(units)
        return float(statistic(*(a[rows] for a in arrays)))

    def vectorized(units: np.ndarray, axis: int = -1) -> np.ndarray:
        # scipy passes unit indices with the resamples stacked on leading axes.
        units = np.asarray(units)
        flat = units.reshape(-1, units.shape[-1])
        return np.array([on_units(row) for row in flat]).reshape(units.shape[:-1])

    estimate = on_units(np.arange(n_units))
    if not np.isfinite(estimate):
        return BootstrapResult(estimate, np.nan, np.nan, method, label, int(n_resamples), confidence, n_units)
    res = stats.bootstrap(
        (np.arange(n_units),),
        vectorized,
        vectorized=True,
        n_resamples=int(n_resamples),
        confidence_level=confidence,
        method=method,
        rng=np.random.default_rng(seed),
    )
    ci = res.confidence_interval
    return BootstrapResult(
        estimate, float(ci.low), float(ci.high), method, label, int(n_resamples), confidence, n_units
    )


def paired_bootstrap_diff(
    y_true,
    pred_a,
    pred_b,
    metric: Callable[[np.ndarray, np.ndarray], float],
    *,
    groups: Sequence | np.ndarray | None = None,
    n_resamples: int = 2000,
    confidence: float = 0.95,
    method: str = "percentile",
    seed: int = 0,
    resampled: str | None = None,
) -> BootstrapResult:
    """Bootstrap CI of ``metric(y_true, pred_a) - metric(y_true, pred_b)``.

    Both metrics are computed on the *same* resample, so the interval reflects
    the paired difference (shared segment difficulty cancels), not two
    independent intervals. Assumptions as :func:`bootstrap_ci`; pass
    ``groups`` for a cluster bootstrap over performers or pieces.

    Parameters
    ----------
    y_true, pred_a, pred_b : array-like, shape (n_samples,) or (n_samples, n_targets)
    metric : callable
        ``metric(y_true, y_pred) -> float``.
    groups, n_resamples, confidence, method, seed, resampled
        As :func:`bootstrap_ci`.

    Returns
    -------
    BootstrapResult
        ``estimate`` is the observed difference.

    Raises
    ------
    ConfigError
        Shape mismatch, or as :func:`bootstrap_ci`.
    """
    y, a, b = (np.asarray(x) for x in (y_true, pred_a, pred_b))
    if not (y.shape == a.shape == b.shape):
        raise ConfigError(f"y_true, pred_a, pred_b need one common shape, got {y.shape}, {a.shape}, {b.shape}")

    def diff(yt: np.ndarray, pa: np.ndarray, pb: np.ndarray) -> float:
        return metric(yt, pa) - metric(yt, pb)

    return bootstrap_ci(
        (y, a, b),
        diff,
        n_resamples=n_resamples,
        confidence=confidence,
        method=method,
        seed=seed,
        groups=groups,
        resampled=resampled,
    )
