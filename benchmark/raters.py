"""PercePiano's per-rater answer sheets (``labels/total_2rounds.csv``), read and matched to the mean labels.

Beside the dataset loader (:mod:`benchmark.dataset`, the mean labels and the
MIDI files), this is the reader of the raw ratings: :func:`read_raters` parses
the rater file and the mean-label JSON once, and :func:`rating_array` and
:func:`rating_match_report` work from that one read (the noise ceiling,
:mod:`reports.ceiling`, needs both).

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
* The raters' spread of a segment (:func:`rater_spread`, for the dataset
  paper's rater-spread accuracy) is the population standard deviation of the
  answers to a question over the segment's valid sheets, divided by 7: the
  same answers whose mean is the label. Upstream's
  ``label_2round_std_reg_19_with0_rm_highstd0.json`` counts an unanswered
  question as a rating of 0 instead (``upstream=True`` reproduces that file
  to 1e-16); of the 22,591 (segment, target) spreads this widens 1,722, by up
  to 0.34 on the label scale (2.4 rating points), and narrows one (by 0.003),
  so the harness uses the answers only.
* 3,060 (rater, segment) pairs hold more than one valid sheet (up to 5; in
  1,735 of them the sheets are identical, i.e. resubmissions). The JSON mean
  counts every sheet; by default the reliability here first averages one
  rater's sheets of a segment, so that a duplicate never lands in both split
  halves and passes for agreement between raters. That leaves 5 to 17 raters
  per segment (mean 9.3). Counting sheets instead (``by_rater=False``) raises
  every reliability by 0.02 to 0.05, mostly through the duplicates.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from benchmark.dataset import MEAN_LABELS, N_TARGETS, RATER_LABELS, TARGET_NAMES, _load_json, resolve_data_dir
from benchmark.errors import DataError

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


@dataclass(frozen=True)
class RaterData:
    """One read of the rater file and the mean labels.

    Attributes
    ----------
    root : Path
        The PercePiano folder.
    sheets : DataFrame
        Every valid answer sheet: ``user``, ``segment`` (a mean-label key) and the 19 targets (1..7, NaN =
        unanswered).
    info : dict
        Counts of the raw file (sheets, dropped sheets, raters, file names, renamed Score sheets).
    labels : dict
        The mean-label JSON, keys stripped.
    """

    root: Path
    sheets: pd.DataFrame
    info: dict
    labels: dict


def read_raters(data_dir: str | os.PathLike | RaterData | None = None) -> RaterData:
    """Parse the rater file and the mean labels of a PercePiano folder (a :class:`RaterData` passes through).

    Raises
    ------
    DataError
        Missing or malformed files.
    """
    if isinstance(data_dir, RaterData):
        return data_dir
    root = resolve_data_dir(data_dir)
    sheets, info = _read_sheets(root)
    labels = {k.strip(): v for k, v in _load_json(root / MEAN_LABELS).items()}
    return RaterData(root, sheets, info, labels)


def rating_match_report(data_dir: str | os.PathLike | RaterData | None = None) -> dict:
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
    raters = read_raters(data_dir)
    sheets, info, labels = raters.sheets, raters.info, raters.labels
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


def rating_array(data_dir: str | os.PathLike | RaterData | None = None, *,
                 by_rater: bool = True) -> tuple[np.ndarray, list[str]]:
    """Individual ratings of the labelled segments as a padded array.

    Parameters
    ----------
    data_dir : path or RaterData, optional
        See :func:`benchmark.dataset.resolve_data_dir`; a :func:`read_raters` result is used as it is.
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
    raters = read_raters(data_dir)
    sheets = raters.sheets
    segments = sorted(raters.labels)
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




def rater_spread(data_dir: str | os.PathLike | RaterData | None = None, *, upstream: bool = False) -> pd.DataFrame:
    """The raters' standard deviation of every labelled segment and target, on the label scale (0..1).

    The population standard deviation (ddof 0, as upstream) of the answers of
    every valid sheet of the segment (the answers whose mean is the label),
    divided by :data:`MAX_RATING`. A question answered on one sheet only has
    spread 0.

    Parameters
    ----------
    data_dir : path or RaterData, optional
    upstream : bool
        Count an unanswered question as a rating of 0, as upstream's
        ``label_2round_std_reg_19_with0_rm_highstd0.json`` does (for checking
        against that file; see the module note).

    Returns
    -------
    DataFrame, index the mean-label keys (sorted), one column per target.

    Raises
    ------
    DataError
        Missing or malformed files, or a labelled segment without ratings.
    """
    raters = read_raters(data_dir)
    segments = sorted(raters.labels)
    sheets = raters.sheets[raters.sheets["segment"].isin(set(segments))]
    missing = sorted(set(segments) - set(sheets["segment"]))
    if missing:
        raise DataError(f"{len(missing)} labelled segments have no ratings in {RATER_LABELS}, e.g. {missing[:3]}")
    answers = sheets[list(TARGET_NAMES)] / MAX_RATING
    if upstream:
        answers = answers.fillna(0.0)
    answers.insert(0, "segment", sheets["segment"].to_numpy())
    grouped = answers.groupby("segment")[list(TARGET_NAMES)]
    # Population sd of the answered values: sqrt(mean(x^2) - mean(x)^2) would cancel; centre first.
    centred = answers[list(TARGET_NAMES)] - grouped.transform("mean")
    sd = np.sqrt((centred ** 2).groupby(answers["segment"]).mean())
    return sd.loc[segments]
