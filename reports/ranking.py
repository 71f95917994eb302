"""Ranking many models: Friedman test and Nemenyi post-hoc (Demsar 2006).

Demsar (2006, "Statistical comparisons of classifiers over multiple data
sets", JMLR 7) ranks k models within each of N independent blocks (data
sets), tests equal mean ranks with Friedman's chi-square (Friedman 1937), and
compares all pairs with the Nemenyi test (Nemenyi 1963): two models differ
when their average ranks differ by more than the critical difference
``CD = q_alpha * sqrt(k (k + 1) / (6 N))``, q_alpha being the studentized
range quantile for k groups and infinite df divided by sqrt(2).

The blocks must be independent. The 19 PercePiano targets share the same
segments, so a Friedman test with targets as blocks is exploratory; blocks of
independent seeds or disjoint performer folds come closer to the assumption.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from benchmark.errors import ConfigError

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class FriedmanNemenyiResult:
    """Friedman test, average ranks and Nemenyi comparisons.

    Attributes
    ----------
    statistic, pvalue : float
        Friedman chi-square (tie-corrected, as ``scipy.stats.friedmanchisquare``) and p.
    df : int
        k - 1.
    iman_davenport_f, iman_davenport_p : float
        Iman & Davenport's (1980) F form, less conservative (Demsar's advice),
        df (k - 1, (k - 1)(N - 1)).
    avg_ranks : Series
        Average rank per model, 1 = best; sorted best first.
    cd : float
        Nemenyi critical difference at ``alpha``.
    q_alpha : float
    alpha : float
    pairwise_p : DataFrame, shape (k, k)
        Nemenyi p-values (diagonal 1.0); p < alpha exactly when the rank
        difference exceeds ``cd``.
    n_blocks, n_models : int
    """

    statistic: float
    pvalue: float
    df: int
    iman_davenport_f: float
    iman_davenport_p: float
    avg_ranks: pd.Series
    cd: float
    q_alpha: float
    alpha: float
    pairwise_p: pd.DataFrame
    n_blocks: int
    n_models: int


def nemenyi_q_alpha(k: int, alpha: float = 0.05) -> float:
    """Critical value q_alpha of the Nemenyi test (Demsar 2006, Table 5a).

    ``studentized_range.ppf(1 - alpha, k, inf) / sqrt(2)``: the studentized
    range is defined on means scaled by their standard error, the rank
    difference test on differences, hence the sqrt(2).

    Raises
    ------
    ConfigError
        k < 2 or alpha outside (0, 1).
    """
    if int(k) < 2:
        raise ConfigError(f"the Nemenyi test needs k >= 2 models, got {k}")
    if not 0.0 < alpha < 1.0:
        raise ConfigError(f"alpha={alpha!r} must lie strictly between 0 and 1")
    return float(stats.studentized_range.ppf(1.0 - alpha, int(k), np.inf) / np.sqrt(2.0))


def nemenyi_cd(k: int, n_blocks: int, alpha: float = 0.05) -> float:
    """Nemenyi critical difference ``q_alpha * sqrt(k (k + 1) / (6 N))`` (Demsar 2006, eq. 2).

    Raises
    ------
    ConfigError
        k < 2, n_blocks < 1 or bad alpha.
    """
    if int(n_blocks) < 1:
        raise ConfigError(f"n_blocks={n_blocks!r} must be >= 1")
    return nemenyi_q_alpha(k, alpha) * float(np.sqrt(k * (k + 1) / (6.0 * n_blocks)))


def friedman_nemenyi(
    scores: pd.DataFrame, *, alpha: float = 0.05, higher_is_better: bool = True
) -> FriedmanNemenyiResult:
    """Friedman test over blocks, average ranks and Nemenyi post-hoc comparisons.

    Assumes independent blocks and, within a block, exchangeable models under
    H0 (Friedman 1937; Nemenyi 1963; Demsar 2006). The Nemenyi p-value of a
    pair is ``studentized_range.sf(|R_i - R_j| * sqrt(2) / se, k, inf)`` with
    ``se = sqrt(k (k + 1) / (6 N))``, the inverse of the CD rule.

    Parameters
    ----------
    scores : DataFrame, shape (n_blocks, n_models)
        One row per block (seed, fold, or target: see the module note), one
        column per model. Blocks with a NaN are dropped with a warning.
    alpha : float
    higher_is_better : bool
        Rank 1 goes to the highest score (True) or the lowest (False). Ties
        share their average rank.

    Returns
    -------
    FriedmanNemenyiResult
        Every block fully tied gives statistic 0 and p = 1.0.

    Raises
    ------
    ConfigError
        Not a DataFrame, fewer than 3 models (use a paired test), fewer than
        2 complete blocks, bad alpha.
    """
    if not isinstance(scores, pd.DataFrame):
        raise ConfigError(f"scores must be a DataFrame (blocks x models), got {type(scores).__name__}")
    if not 0.0 < alpha < 1.0:
        raise ConfigError(f"alpha={alpha!r} must lie strictly between 0 and 1")
    k = scores.shape[1]
    if k < 3:
        raise ConfigError(f"Friedman needs at least 3 models, got {k}; compare two models with a paired test")
    values = scores.to_numpy(dtype=float)
    complete = ~np.isnan(values).any(axis=1)
    if not complete.all():
        logger.warning("dropping %d of %d blocks with a NaN score", int((~complete).sum()), len(values))
        values = values[complete]
    n = values.shape[0]
    if n < 2:
        raise ConfigError(f"Friedman needs at least 2 complete blocks, got {n}")

    ranks = stats.rankdata(-values if higher_is_better else values, axis=1)
    avg = pd.Series(ranks.mean(axis=0), index=scores.columns, name="avg_rank")
    if np.all(values == values[:, :1]):
        chi2, p = 0.0, 1.0
    else:
        res = stats.friedmanchisquare(*values.T)
        chi2, p = float(res.statistic), float(res.pvalue)
    denom = n * (k - 1) - chi2
    if denom <= 0.0:
        f_id, p_id = np.inf, 0.0
    else:
        f_id = (n - 1) * chi2 / denom
        p_id = float(stats.f.sf(f_id, k - 1, (k - 1) * (n - 1)))

    q = nemenyi_q_alpha(k, alpha)
    se = float(np.sqrt(k * (k + 1) / (6.0 * n)))
    diff = np.abs(avg.to_numpy()[:, None] - avg.to_numpy()[None, :])
    pmat = stats.studentized_range.sf(diff * np.sqrt(2.0) / se, k, np.inf)
    pmat = np.clip(pmat, 0.0, 1.0)
    np.fill_diagonal(pmat, 1.0)
    return FriedmanNemenyiResult(
        statistic=chi2,
        pvalue=p,
        df=k - 1,
        iman_davenport_f=float(f_id),
        iman_davenport_p=float(p_id),
        avg_ranks=avg.sort_values(),
        cd=q * se,
        q_alpha=q,
        alpha=alpha,
        pairwise_p=pd.DataFrame(pmat, index=scores.columns, columns=scores.columns),
        n_blocks=n,
        n_models=k,
    )
