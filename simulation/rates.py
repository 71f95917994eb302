"""Rejection rates with their 95% intervals, and what "calibrated" means for one.

Two kinds of repetitions:

* independent repetitions (a fresh simulated data set each): the Wilson
  score interval (Wilson 1927) of a binomial proportion;
* pairs (or pairs of K-seed groups) formed from one bank of S model seeds:
  the pairs share seeds, so the rate is a U-statistic (Hoeffding 1948) and
  its pairs are not independent. Its interval is the delete-one-seed
  jackknife (Arvesen 1969: consistent for U-statistics): each seed is left out
  in turn, the rate is recomputed over the pairs that do not use it, and the
  normal interval uses the jackknife variance. The pairs are a random sample
  of all possible ones (an incomplete U-statistic); the jackknife sees that
  sampling too, since leaving a seed out drops its sampled pairs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

ALPHA = 0.05
#: A printed test is calibrated for a question when its false-positive rate's 95% interval lies here.
BAND = (0.02, 0.08)


@dataclass(frozen=True)
class Rate:
    """A rejection rate, its 95% interval, how many repetitions and which interval method."""

    rate: float
    low: float
    high: float
    n: int
    method: str

    @property
    def inside(self) -> bool:
        """Whether the whole interval lies in :data:`BAND`."""
        return bool(BAND[0] <= self.low and self.high <= BAND[1])

    @property
    def valid(self) -> bool:
        """Whether the test keeps its level: the interval's upper end at most :data:`BAND`'s (calibrated, or
        conservative: a test that rejects a true null less often than alpha never overstates a difference)."""
        return bool(self.high <= BAND[1])

    @property
    def status(self) -> str:
        """``calibrated`` (interval inside the band), ``conservative`` or ``liberal`` (interval wholly
        below or above it), or ``uncertain`` (the interval crosses an edge: more repetitions needed)."""
        if self.inside:
            return "calibrated"
        if self.high < BAND[0]:
            return "conservative"
        if self.low > BAND[1]:
            return "liberal"
        return "uncertain"

    def text(self) -> str:
        return f"{self.rate:.3f} [{self.low:.3f}, {self.high:.3f}]"

    def as_dict(self) -> dict:
        return {"rate": self.rate, "low": self.low, "high": self.high, "n": self.n, "method": self.method}


def wilson(k: int, n: int, z: float = 1.959963984540054) -> tuple[float, float]:
    """Wilson score interval of ``k`` successes in ``n`` independent trials."""
    if n <= 0:
        return np.nan, np.nan
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return float(max(0.0, centre - half)), float(min(1.0, centre + half))


def independent_rate(rejections) -> Rate:
    """The rate of independent repetitions' rejections (bool array) with its Wilson interval."""
    x = np.asarray(rejections, dtype=bool)
    lo, hi = wilson(int(x.sum()), x.size)
    return Rate(float(x.mean()) if x.size else np.nan, lo, hi, int(x.size), "Wilson")


def group_pairs(n_seeds: int, k: int, n_pairs: int, rng: np.random.Generator) -> np.ndarray:
    """``n_pairs`` random pairs of disjoint k-seed groups from ``n_seeds`` seeds: shape (n_pairs, 2, k).

    Raises
    ------
    ValueError
        Fewer than 2k seeds.
    """
    if n_seeds < 2 * k:
        raise ValueError(f"{n_seeds} seeds cannot form two disjoint groups of {k}")
    keys = rng.random((n_pairs, n_seeds))
    draws = np.argsort(keys, axis=1)[:, :2 * k]
    return draws.reshape(n_pairs, 2, k)


def jackknife_rate(rejections, pairs: np.ndarray, n_seeds: int, z: float = 1.959963984540054) -> Rate:
    """The rate over pairs formed from one bank, with the delete-one-seed jackknife interval.

    Parameters
    ----------
    rejections : bool array (P,)
    pairs : int array (P, ...)
        The bank seeds (positions) each pair uses.
    n_seeds : int
        Seeds in the bank.
    """
    x = np.asarray(rejections, dtype=float)
    P = x.size
    used = np.zeros((P, n_seeds), dtype=bool)
    used[np.repeat(np.arange(P), pairs.reshape(P, -1).shape[1]), pairs.reshape(P, -1).ravel()] = True
    total, count = x.sum(), float(P)
    with_i = used.T.astype(float)  # (S, P)
    loo = (total - with_i @ x) / (count - with_i.sum(axis=1))
    loo = loo[np.isfinite(loo)]
    S = loo.size
    var = (S - 1) / S * float(((loo - loo.mean()) ** 2).sum()) if S > 1 else np.nan
    rate = float(x.mean())
    half = z * np.sqrt(var) if np.isfinite(var) else np.nan
    return Rate(rate, float(max(0.0, rate - half)), float(min(1.0, rate + half)), P,
                f"jackknife over {n_seeds} seeds")
