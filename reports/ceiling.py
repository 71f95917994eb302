"""Noise ceiling of each target from the individual ratings (PercePiano's 19, or a described dataset's).

A model is scored against the *mean* rating of a handful of raters, which is
itself noisy; even the true perceptual value would correlate imperfectly with
it. If rel is the reliability of the mean rating (the share of its variance
that is true-score variance), no predictor's Pearson r with it can exceed
sqrt(rel) in expectation (classical test theory, Lord & Novick 1968; the
"noise ceiling" of Lage-Castellanos et al. 2019).

The per-rater answer sheets come from :mod:`benchmark.raters` (read and
matched to the mean labels once per call); this module only computes the
reliabilities.
"""

from __future__ import annotations

import logging
import os
import warnings

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from benchmark.errors import ConfigError, DataError
from benchmark.metrics import pearson_from_sums
from benchmark.raters import rating_array, rating_match_report, read_raters
from reports.rundata import FEW_GROUPS, unit_labels

logger = logging.getLogger(__name__)

def spearman_brown(r, factor: float = 2.0):
    """Spearman-Brown prophecy ``factor * r / (1 + (factor - 1) * r)`` (Spearman 1910; Brown 1910).

    Reliability of a test ``factor`` times as long, assuming parallel
    (equally reliable, exchangeable) parts; factor 2 turns a split-half
    correlation into the reliability of the whole.
    """
    r = np.asarray(r, dtype=float)
    return factor * r / (1.0 + (factor - 1.0) * r)


def icc_oneway(ratings) -> tuple[float, float, float]:
    """One-way random-effects ICC(1,1) and ICC(1,k) (Shrout & Fleiss 1979), unbalanced.

    Model: x_ij = mu + t_i + e_ij with segment effects t_i and rater noise e_ij
    independent and normal; raters are not crossed with segments (each
    segment has its own raters), which is PercePiano's design. From the
    one-way ANOVA with n_i ratings of segment i, N = sum n_i, s segments,
    MSB = sum n_i (mean_i - mean)^2 / (s - 1) and
    MSW = sum (x_ij - mean_i)^2 / (N - s). With unequal n_i, k is replaced by
    ``k0 = (N - sum n_i^2 / N) / (s - 1)`` (Snedecor & Cochran 1989; McGraw &
    Wong 1996): ICC(1,1) = (MSB - MSW) / (MSB + (k0 - 1) MSW) and
    ICC(1,k) = (MSB - MSW) / MSB, the reliability of a mean of k0 ratings
    (the Spearman-Brown step-up of ICC(1,1) by k0).

    Parameters
    ----------
    ratings : array-like, shape (n_segments, max_raters)
        NaN marks a missing rating. Segments with fewer than 2 ratings are
        ignored.

    Returns
    -------
    icc1, icc1k, k0 : float
        NaN when fewer than 2 segments remain or MSB is 0.

    Raises
    ------
    ConfigError
        Input not 2-D.
    """
    x = np.asarray(ratings, dtype=float)
    if x.ndim != 2:
        raise ConfigError(f"ratings must be 2-D (segments x raters), got shape {x.shape}")
    n_i = (~np.isnan(x)).sum(axis=1)
    x = x[n_i >= 2]
    n_i = n_i[n_i >= 2]
    s = n_i.size
    if s < 2:
        return np.nan, np.nan, np.nan
    total = n_i.sum()
    mean_i = np.nansum(x, axis=1) / n_i
    grand = np.nansum(x) / total
    msb = float(np.sum(n_i * (mean_i - grand) ** 2) / (s - 1))
    msw = float(np.nansum((x - mean_i[:, None]) ** 2) / (total - s))
    k0 = float((total - np.sum(n_i**2) / total) / (s - 1))
    if msb == 0.0:
        return np.nan, np.nan, k0
    return (msb - msw) / (msb + (k0 - 1.0) * msw), (msb - msw) / msb, k0


def split_half_r(ratings, *, n_splits: int = 200, seed: int = 0) -> np.ndarray:
    """Mean split-half correlation of segment means, per target.

    Each split shuffles every segment's raters and puts the first
    floor(n_i / 2) in one half, the rest in the other (odd n_i: halves differ
    by one rating, a small bias of the factor-2 Spearman-Brown step-up). The
    two half-means are correlated (Pearson) across segments; a segment whose
    half lacks an answer for a target is left out of that target's
    correlation. The same rater split serves all targets.

    Parameters
    ----------
    ratings : array-like, shape (n_segments, max_raters, n_targets)
        NaN = missing; a rater slot is present when it holds any answer.
    n_splits : int
    seed : int

    Returns
    -------
    ndarray, shape (n_targets,)
        Average over splits of the half-mean correlation (not yet Spearman-Brown corrected).

    Raises
    ------
    ConfigError
        Wrong shape or ``n_splits < 1``.
    """
    x = np.asarray(ratings, dtype=float)
    if x.ndim != 3:
        raise ConfigError(f"ratings must be 3-D (segments x raters x targets), got shape {x.shape}")
    if int(n_splits) < 1:
        raise ConfigError(f"n_splits={n_splits!r} must be >= 1")
    rng = np.random.default_rng(seed)
    return np.mean([_pearson_columns(*_halves(x, rng)) for _ in range(int(n_splits))], axis=0)


def _halves(x: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """One random rater split of every segment: the two half-means, each (n_segments, n_targets)."""
    answered = ~np.isnan(x)
    present = answered.any(axis=2)
    n_present = present.sum(axis=1)
    values = np.where(answered, x, 0.0)
    keys = np.where(present, rng.random(present.shape), np.inf)
    rank = np.argsort(np.argsort(keys, axis=1), axis=1)
    in_a = (rank < (n_present // 2)[:, None])[:, :, None] & answered
    in_b = answered & ~in_a
    halves = []
    for mask in (in_a, in_b):
        count = mask.sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            halves.append(np.where(count > 0, (values * mask).sum(axis=1) / count, np.nan))
    return halves[0], halves[1]


def ceiling_interval(ratings, groups=None, *, n_splits: int = 20, n_resamples: int = 1000,
                     confidence: float = 0.95, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Percentile bootstrap interval of each target's ceiling r, resampling segments or whole groups.

    Each draw resamples the segments (or the groups of ``groups``, e.g. the
    split's performers, each drawn group bringing all its segments) with
    replacement and recomputes the ceiling as :func:`noise_ceiling` does:
    split-half r averaged over ``n_splits`` fixed rater splits, the factor-2
    Spearman-Brown step-up, its square root. The rater splits are drawn once
    and kept across draws, so the interval reflects which segments were
    rated, not the rater split (whose average over splits is precise).

    Parameters
    ----------
    ratings : ndarray, shape (n_segments, max_raters, n_targets)
        As :func:`benchmark.raters.rating_array`.
    groups : array-like, shape (n_segments,), optional
        Resample whole groups; default segments.
    n_splits, n_resamples, confidence, seed

    Returns
    -------
    low, high : ndarray, shape (n_targets,)

    Raises
    ------
    ConfigError
        Wrong shape, fewer than 2 units, ``n_resamples < 1`` or a bad ``confidence``.
    """
    x = np.asarray(ratings, dtype=float)
    if x.ndim != 3:
        raise ConfigError(f"ratings must be 3-D (segments x raters x targets), got shape {x.shape}")
    if int(n_resamples) < 1 or int(n_splits) < 1:
        raise ConfigError(f"n_resamples={n_resamples!r} and n_splits={n_splits!r} must be >= 1")
    if not 0.0 < confidence < 1.0:
        raise ConfigError(f"confidence={confidence!r} must lie strictly between 0 and 1, e.g. 0.95")
    codes = np.arange(x.shape[0]) if groups is None else np.unique(np.asarray(groups), return_inverse=True)[1]
    if len(codes) != x.shape[0]:
        raise ConfigError(f"groups must have one label per segment ({x.shape[0]}), got {len(codes)}")
    G = int(codes.max()) + 1
    if G < 2:
        raise ConfigError(f"need at least 2 resampling units, got {G}")
    rng = np.random.default_rng(seed)
    parts = []
    for _ in range(int(n_splits)):
        a, b = _halves(x, rng)
        ok = np.isfinite(a) & np.isfinite(b)
        a, b = np.where(ok, a, 0.0), np.where(ok, b, 0.0)
        parts.append(np.stack([a, b, a * a, b * b, a * b, ok.astype(float)], axis=-1))  # (S, T, 6)
    per_seg = np.stack(parts, axis=1)  # (S, K, T, 6)
    per_unit = np.zeros((G, *per_seg.shape[1:]))
    np.add.at(per_unit, codes, per_seg)
    flat = per_unit.reshape(G, -1)
    ceilings = []
    for start in range(0, int(n_resamples), 100):
        p = min(100, int(n_resamples) - start)
        w = np.zeros((p, G))
        np.add.at(w, (np.repeat(np.arange(p), G), rng.integers(0, G, size=(p, G)).ravel()), 1.0)
        sums = (w @ flat).reshape(p, *per_unit.shape[1:])
        r = pearson_from_sums(*np.moveaxis(sums, -1, 0))  # (p, K, T)
        with warnings.catch_warnings():  # a resample whose target is constant has no r: NaN, skipped below
            warnings.simplefilter("ignore", RuntimeWarning)
            sb = spearman_brown(np.nanmean(r, axis=1))
        ceilings.append(np.sqrt(np.clip(sb, 0.0, None)))
    c = np.concatenate(ceilings)
    alpha = (1.0 - confidence) / 2.0
    return np.nanquantile(c, alpha, axis=0), np.nanquantile(c, 1.0 - alpha, axis=0)


def _pearson_columns(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pearson r per column over the rows where both are finite."""
    ok = np.isfinite(a) & np.isfinite(b)
    n = ok.sum(axis=0)
    a = np.where(ok, a, 0.0)
    b = np.where(ok, b, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        ma, mb = a.sum(axis=0) / n, b.sum(axis=0) / n
        da, db = np.where(ok, a - ma, 0.0), np.where(ok, b - mb, 0.0)
        return (da * db).sum(axis=0) / np.sqrt((da**2).sum(axis=0) * (db**2).sum(axis=0))


def noise_ceiling(
    data_dir: str | os.PathLike | None = None,
    *,
    n_splits: int = 200,
    seed: int = 0,
    by_rater: bool = True,
    segments=None,
    groups=None,
    n_resamples: int = 0,
    confidence: float = 0.95,
) -> pd.DataFrame:
    """Reliability of each target's mean rating and the implied ceiling on Pearson r.

    The ceiling belongs to a set of segments: a model scored on a fixed test set
    (``percepiano_performer4``: 193 segments) is compared with the ceiling of
    those segments (``segments``), not of all 1,189 (0.810 vs 0.863 on average
    there).

    Parameters
    ----------
    data_dir : path, optional
        A PercePiano directory (see :func:`benchmark.dataset.resolve_data_dir`), or a described dataset
        with a rater table (its ``dataset.toml``; :func:`benchmark.raters.read_raters`).
    n_splits : int
        Random rater splits for the split-half reliability.
    seed : int
    by_rater : bool
        See :func:`benchmark.raters.rating_array`.
    segments : sequence of str, optional
        Only these segments (mean-label keys, i.e. a run's ``sample_id``); default all.
    groups : sequence, optional
        One label per entry of ``segments`` (e.g. the split's performers): the
        CI resamples whole groups; default segments.
    n_resamples : int
        With > 0, add ``ceiling_lo`` and ``ceiling_hi``: the percentile
        bootstrap interval of :func:`ceiling_interval` (20 rater splits).
    confidence : float

    Returns
    -------
    DataFrame, one row per target in label order
        ``target``; ``n_segments`` (segments with >= 2 ratings for it);
        ``mean_raters`` (mean ratings per such segment); ``split_half_r``
        (:func:`split_half_r`); ``spearman_brown`` (its factor-2 step-up, the
        split-half reliability of the full mean); ``icc1k``
        (:func:`icc_oneway`, a mean of k0 ratings); ``ceiling_r`` =
        sqrt(max(spearman_brown, 0)), the expected Pearson r of a perfect
        predictor of the true score with the observed mean. Segments have 5
        to 17 raters, so every reliability is a pooled value, higher for the
        segments with many raters. ``attrs["match"]`` holds
        :func:`benchmark.raters.rating_match_report`; ``attrs["n_segments"]`` the segments used,
        ``attrs["resampled"]`` what the CI resampled.

    Raises
    ------
    DataError
        Missing or malformed files, or a segment of ``segments`` without ratings.
    ConfigError
        ``n_splits < 1``, or ``groups`` without ``segments`` or of another length.
    """
    raters = read_raters(data_dir)  # the rater file and the mean labels, parsed once
    ratings, keys = rating_array(raters, by_rater=by_rater)
    if groups is not None and (segments is None or len(groups) != len(segments)):
        raise ConfigError("groups needs segments, one group label per segment")
    if segments is not None:
        pos = pd.Series(np.arange(len(keys)), index=keys)
        wanted = pd.Index([str(k) for k in segments])
        missing = wanted[~wanted.isin(pos.index)]
        if len(missing):
            raise DataError(f"{len(missing)} segment(s) have no ratings, e.g. {list(missing[:3])}; "
                            "is the run from this PercePiano folder?")
        ratings = ratings[pos.loc[wanted].to_numpy()]
    r = split_half_r(ratings, n_splits=n_splits, seed=seed)
    sb = spearman_brown(r)
    rows = []
    for t, name in enumerate(raters.target_names):
        x = ratings[:, :, t]
        n_i = (~np.isnan(x)).sum(axis=1)
        _, icc1k, _ = icc_oneway(x)
        rows.append(
            {
                "target": name,
                "n_segments": int((n_i >= 2).sum()),
                "mean_raters": float(n_i[n_i >= 2].mean()),
                "split_half_r": float(r[t]),
                "spearman_brown": float(sb[t]),
                "icc1k": float(icc1k),
                "ceiling_r": float(np.sqrt(max(sb[t], 0.0))),
            }
        )
    out = pd.DataFrame(rows)
    if int(n_resamples) > 0:
        out["ceiling_lo"], out["ceiling_hi"] = ceiling_interval(ratings, groups, n_resamples=n_resamples,
                                                                confidence=confidence, seed=seed)
    out.attrs["match"] = rating_match_report(raters)
    out.attrs["by_rater"] = by_rater
    out.attrs["n_segments"] = int(ratings.shape[0])
    out.attrs["resampled"] = "segments" if groups is None else "groups"
    return out


def run_ceiling(run, data_dir=None, *, n_splits: int = 200, n_resamples: int = 1000, confidence: float = 0.95,
                seed: int = 0, unit: str | None = None) -> pd.DataFrame:
    """:func:`noise_ceiling` of the segments a run scored, with a CI over the split's units.

    r / ceiling compares a model's r with the ceiling of *the same* segments: for
    a partition split all of them, for a fixed test set only the test set's.
    The CI resamples the split's units (performers, passages...) when there
    are at least 10 of them, as the model's cluster CIs do, else segments.

    Parameters
    ----------
    run : reports.rundata.RunData
    data_dir : path, optional
        Default: the run's dataset (a described dataset's ``dataset.toml``, else its ``data_dir``).
    n_splits, n_resamples, confidence, seed
        As :func:`noise_ceiling`.
    unit : str, optional
        Label of the resampled groups (default the split's unit name).

    Raises
    ------
    DataError
        Missing rater file, or scored segments without ratings.
    """
    ids = np.sort(run.preds["sample_id"].astype(str).unique())
    design = run.design
    groups = None
    if design.unit != "segments" and not design.few:
        groups = unit_labels(run, ids)
        if len(np.unique(groups)) < FEW_GROUPS:
            groups = None
    # Many small matrix products: one BLAS thread (as the report's other bootstraps; see build_report).
    with threadpool_limits(limits=1, user_api="blas"):
        source = data_dir or (run.manifest.get("dataset") or {}).get("description") or run.manifest.get("data_dir")
        out = noise_ceiling(source, n_splits=n_splits, seed=seed,
                            segments=ids, groups=groups, n_resamples=n_resamples, confidence=confidence)
    out.attrs["resampled"] = "segments" if groups is None else (unit or design.unit)
    return out
