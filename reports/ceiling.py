"""Noise ceiling of PercePiano's 19 targets from the individual ratings.

A model is scored against the *mean* rating of a handful of raters, which is
itself noisy; even the true perceptual value would correlate imperfectly with
it. If rel is the reliability of the mean rating (the share of its variance
that is true-score variance), no predictor's Pearson r with it can exceed
sqrt(rel) in expectation (classical test theory, Lord & Novick 1968; the
"noise ceiling" of Lage-Castellanos et al. 2019).

Matching ``labels/total_2rounds.csv`` to the mean-label JSON (checked on the
shared copy, commit e672299):

* The CSV has one row per (rater, segment) answer sheet: 14,934 rows, 65
  raters, 1,202 distinct ``filename`` values (``.wav``). It holds 20
  ``Question_*`` columns: the first 19 are the dimensions in label order; the
  20th (``Question_9_2_1``, answered on 464 sheets) is no target and is
  ignored, as upstream (which takes ``row[3:-2]``).
* A segment key is the file name without extension, with ``_score_`` written
  ``_Score_``. The second deadpan rendering was played back under the first
  one's name for Beethoven WoO80 segments 5-16 and Schubert D935 no.3 (4 bars)
  segment 1: those 13 ``..._Score_<n>`` names are read as
  ``..._Score2_<n>`` (so the upstream ``map_midi_to_label.py`` does; the 13
  ``_Score_`` MIDI files are exactly the 13 unlabelled ones).
* Answers are 1..7; an empty cell (1,596) or 0 (574) means "not answered". A
  sheet with any answer above 7 (348 such answers, all 8 or 9, in 208 sheets)
  is dropped whole, as upstream; 14,726 sheets remain.
* Then every one of the 1,189 JSON segments has ratings, and the JSON value
  j (j < 19) equals the mean of the non-missing answers to question j over the
  segment's sheets, divided by 7, exactly (maximum difference 0.0;
  :func:`rating_match_report` recomputes it). The 20th JSON value is a
  pianist index, not a target. A segment has 5 to 19 sheets (mean 12.4).
* 3,060 (rater, segment) pairs hold more than one valid sheet (up to 5; in
  1,735 of them the sheets are identical, i.e. resubmissions). The JSON mean
  counts every sheet; by default the reliability here first averages one
  rater's sheets of a segment, so that a duplicate never lands in both split
  halves and passes for agreement between raters. That leaves 5 to 17 raters
  per segment (mean 9.3). Counting sheets instead (``by_rater=False``) raises
  every reliability by 0.02 to 0.05, mostly through the duplicates.
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path

import numpy as np
import pandas as pd

from benchmark.dataset import MEAN_LABELS, N_TARGETS, RATER_LABELS, TARGET_NAMES, _load_json, resolve_data_dir
from benchmark.errors import ConfigError, DataError

logger = logging.getLogger(__name__)

#: Highest valid answer; a sheet with a larger one is dropped (upstream rule).
MAX_RATING = 7.0
#: Deadpan renderings rated under the ``Score`` name that are ``Score2``.
_SCORE2_RULES = (
    (re.compile(r"^Beethoven_WoO80_.*_Score_(\d+)$"), range(5, 17)),
    (re.compile(r"^Schubert_D935_no\.3_4bars_Score_(\d+)$"), range(1, 2)),
)


def segment_key(filename: str) -> str:
    """Map a ``total_2rounds.csv`` file name to its mean-label JSON key (see module note)."""
    key = filename.strip()
    key = re.sub(r"\.(wav|mid|midi|mp3|flac)$", "", key, flags=re.IGNORECASE)
    key = key.replace("_score_", "_Score_").replace("_score2_", "_Score2_")
    for pattern, segments in _SCORE2_RULES:
        m = pattern.match(key)
        if m and int(m[1]) in segments:
            head, _, tail = key.rpartition("_Score_")
            key = f"{head}_Score2_{tail}"
    return key


def _read_sheets(root: Path) -> tuple[pd.DataFrame, dict]:
    """All valid answer sheets: columns ``user``, ``segment`` and the 19 targets (NaN = unanswered)."""
    path = root / RATER_LABELS
    if not path.is_file():
        raise DataError(f"rater file {str(path)!r} is missing; is this a PercePiano clone?")
    try:
        raw = pd.read_csv(path, index_col=False, encoding="utf-8")
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise DataError(f"rater file {str(path)!r} cannot be parsed: {exc}") from None
    cols = {c.lower(): c for c in raw.columns}
    # The first 19 Question_* columns are the targets; a 20th, if present, is not.
    questions = [c for c in raw.columns if str(c).startswith("Question_")][:N_TARGETS]
    if "user" not in cols or "filename" not in cols or len(questions) != N_TARGETS:
        raise DataError(
            f"rater file {str(path)!r} needs columns user, filename and {N_TARGETS} Question_* columns, "
            f"got {list(raw.columns)[:5]}... with {len(questions)} Question_* columns"
        )
    try:
        answers = raw[questions].apply(pd.to_numeric, errors="raise").to_numpy(dtype=float, copy=True)
    except (ValueError, TypeError) as exc:
        raise DataError(f"rater file {str(path)!r} holds a non-numeric answer: {exc}") from None
    answers[answers == 0.0] = np.nan
    invalid = np.nanmax(np.where(np.isnan(answers), -np.inf, answers), axis=1) > MAX_RATING
    sheets = pd.DataFrame(answers[~invalid], columns=list(TARGET_NAMES))
    sheets.insert(0, "segment", [segment_key(str(f)) for f in raw.loc[~invalid, cols["filename"]]])
    sheets.insert(0, "user", raw.loc[~invalid, cols["user"]].astype(str).to_numpy())
    info = {
        "n_sheets": len(raw),
        "n_sheets_dropped_over_7": int(invalid.sum()),
        "n_raters": int(raw[cols["user"]].nunique()),
        "n_filenames": int(raw[cols["filename"]].nunique()),
        "n_renamed": int(
            sum(segment_key(f) != re.sub(r"\.\w+$", "", f.strip()) for f in raw[cols["filename"]].unique())
        ),
    }
    return sheets, info


def rating_match_report(data_dir: str | os.PathLike | None = None) -> dict:
    """Check that the rater file reproduces the mean-label JSON.

    Returns
    -------
    dict
        ``n_sheets``, ``n_sheets_dropped_over_7``, ``n_raters``,
        ``n_filenames``, ``n_renamed``, ``n_label_segments``,
        ``n_label_segments_rated`` (JSON segments with at least one sheet),
        ``n_rated_unlabelled`` (rated keys absent from the JSON),
        ``max_abs_diff`` (JSON mean vs recomputed mean / 7),
        ``n_duplicate_pairs`` ((rater, segment) pairs with several sheets).

    Raises
    ------
    DataError
        Missing or malformed files.
    """
    root = resolve_data_dir(data_dir)
    sheets, info = _read_sheets(root)
    labels = {k.strip(): v for k, v in _load_json(root / MEAN_LABELS).items()}
    means = sheets.groupby("segment")[list(TARGET_NAMES)].mean() / MAX_RATING
    rated = [k for k in labels if k in means.index]
    json_means = np.array([labels[k][:N_TARGETS] for k in rated], dtype=float)
    diff = np.abs(json_means - means.loc[rated].to_numpy())
    dup = sheets.groupby(["user", "segment"]).size()
    return {
        **info,
        "n_label_segments": len(labels),
        "n_label_segments_rated": len(rated),
        "n_rated_unlabelled": int(len(set(means.index) - set(labels))),
        "max_abs_diff": float(np.nanmax(diff)) if diff.size else float("nan"),
        "n_duplicate_pairs": int((dup > 1).sum()),
    }


def rating_array(data_dir: str | os.PathLike | None = None, *, by_rater: bool = True) -> tuple[np.ndarray, list[str]]:
    """Individual ratings of the labelled segments as a padded array.

    Parameters
    ----------
    data_dir : path, optional
        See :func:`benchmark.dataset.resolve_data_dir`.
    by_rater : bool
        Average each rater's sheets of a segment into one rating (default);
        False keeps every sheet as a separate rating, as the JSON mean does.

    Returns
    -------
    ratings : ndarray, shape (n_segments, max_raters, 19)
        Ratings on the 1..7 scale; NaN for unanswered or padding.
    segments : list of str
        The mean-label JSON keys, sorted, one per row.

    Raises
    ------
    DataError
        Missing or malformed files, or a labelled segment without ratings.
    """
    root = resolve_data_dir(data_dir)
    sheets, _ = _read_sheets(root)
    segments = sorted(k.strip() for k in _load_json(root / MEAN_LABELS))
    sheets = sheets[sheets["segment"].isin(set(segments))]
    if by_rater:
        sheets = sheets.groupby(["segment", "user"], sort=False)[list(TARGET_NAMES)].mean().reset_index()
    missing = sorted(set(segments) - set(sheets["segment"]))
    if missing:
        raise DataError(f"{len(missing)} labelled segments have no ratings in {RATER_LABELS}, e.g. {missing[:3]}")
    row = pd.Series(np.arange(len(segments)), index=segments)[sheets["segment"]].to_numpy()
    slot = sheets.groupby("segment").cumcount().to_numpy()
    out = np.full((len(segments), int(slot.max()) + 1, N_TARGETS), np.nan)
    out[row, slot] = sheets[list(TARGET_NAMES)].to_numpy(dtype=float)
    return out, segments


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
    answered = ~np.isnan(x)
    present = answered.any(axis=2)
    n_present = present.sum(axis=1)
    values = np.where(answered, x, 0.0)
    rng = np.random.default_rng(seed)
    rs = np.empty((int(n_splits), x.shape[2]))
    for k in range(rs.shape[0]):
        keys = np.where(present, rng.random(present.shape), np.inf)
        rank = np.argsort(np.argsort(keys, axis=1), axis=1)
        in_a = (rank < (n_present // 2)[:, None])[:, :, None] & answered
        in_b = answered & ~in_a
        halves = []
        for mask in (in_a, in_b):
            count = mask.sum(axis=1)
            with np.errstate(invalid="ignore", divide="ignore"):
                halves.append(np.where(count > 0, (values * mask).sum(axis=1) / count, np.nan))
        rs[k] = _pearson_columns(*halves)
    return rs.mean(axis=0)


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
) -> pd.DataFrame:
    """Reliability of each target's mean rating and the implied ceiling on Pearson r.

    Parameters
    ----------
    data_dir : path, optional
        A PercePiano directory (see :func:`benchmark.dataset.resolve_data_dir`).
    n_splits : int
        Random rater splits for the split-half reliability.
    seed : int
    by_rater : bool
        See :func:`rating_array`.

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
        :func:`rating_match_report`.

    Raises
    ------
    DataError
        Missing or malformed files.
    ConfigError
        ``n_splits < 1``.
    """
    ratings, _ = rating_array(data_dir, by_rater=by_rater)
    r = split_half_r(ratings, n_splits=n_splits, seed=seed)
    sb = spearman_brown(r)
    rows = []
    for t, name in enumerate(TARGET_NAMES):
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
    out.attrs["match"] = rating_match_report(data_dir)
    out.attrs["by_rater"] = by_rater
    return out
