"""Paired permutation test on out-of-fold predictions, one segment per unit."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from benchmark.errors import ConfigError
from reports.paired import TestResult


def permutation_test_predictions(
    y_true,
    pred_a,
    pred_b,
    metric: Callable[[np.ndarray, np.ndarray], float],
    *,
    n_permutations: int = 9999,
    seed: int = 0,
) -> TestResult:
    """Paired permutation test on out-of-fold predictions (sign-flip / swap test).

    Under H0 the two models' predictions for a segment are exchangeable, so
    each permutation swaps A's and B's predictions of a segment (all its
    targets together) with probability 1/2 and recomputes
    ``metric(y_true, A) - metric(y_true, B)``. Two-sided
    ``p = (1 + #{|null| >= |observed|}) / (1 + n_permutations)`` (the +1
    keeps p > 0 and the test exact; Phipson & Smyth 2010). No normality
    assumption; it tests these predictions on these segments, not the
    learners over training sets.

    Parameters
    ----------
    y_true, pred_a, pred_b : array-like, shape (n_samples,) or (n_samples, n_targets)
    metric : callable
        ``metric(y_true, y_pred) -> float``, e.g. mean Pearson r over targets.
    n_permutations : int
    seed : int

    Returns
    -------
    TestResult
        ``statistic`` and ``mean_diff`` are the observed metric difference;
        df NaN. Identical predictions give p = 1.0.

    Raises
    ------
    ConfigError
        Shape mismatch, fewer than 2 samples, ``n_permutations < 1``.
    """
    y = np.asarray(y_true, dtype=float)
    pa = np.asarray(pred_a, dtype=float)
    pb = np.asarray(pred_b, dtype=float)
    if not (y.shape == pa.shape == pb.shape) or y.ndim not in (1, 2):
        raise ConfigError(
            f"y_true, pred_a, pred_b need one common shape (n_samples[, n_targets]), got {y.shape}, {pa.shape}, {pb.shape}"
        )
    if y.shape[0] < 2:
        raise ConfigError(f"need at least 2 samples, got {y.shape[0]}")
    if int(n_permutations) < 1:
        raise ConfigError(f"n_permutations={n_permutations!r} must be >= 1 (9999 is usual)")
    observed = float(metric(y, pa) - metric(y, pb))
    name = "paired permutation test (swap predictions)"
    if not np.isfinite(observed):
        return TestResult(np.nan, np.nan, np.nan, name, observed, y.shape[0])
    rng = np.random.default_rng(seed)
    shape = (y.shape[0],) + (1,) * (y.ndim - 1)
    null = np.empty(int(n_permutations))
    for k in range(null.size):
        swap = (rng.random(y.shape[0]) < 0.5).reshape(shape)
        null[k] = metric(y, np.where(swap, pb, pa)) - metric(y, np.where(swap, pa, pb))
    # Tolerance so that float noise in a tie does not count as "less extreme".
    tol = 1e-12 * max(1.0, abs(observed))
    count = int(np.sum(np.abs(null) >= abs(observed) - tol))
    return TestResult(observed, (1 + count) / (1 + null.size), np.nan, name, observed, y.shape[0])
