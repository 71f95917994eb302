"""Per-rater ratings, read and matched to the mean ratings: PercePiano's answer sheets, or a described
dataset's rater table.

Beside the dataset loaders (:mod:`benchmark.dataset`, :mod:`benchmark.description`), this is the
reader of the raw ratings: :func:`read_raters` parses the rater file and the mean ratings once, and
:func:`rating_array` and :func:`rating_match_report` work from that one read (the noise ceiling,
:mod:`reports.ceiling`, needs both). A described dataset's rater table (``[raters]`` in its
``dataset.toml``) is a long table, one row per (item, rater, target) answer: repeated rows of one rater,
item and target are that rater's repeated answer sheets (the k-th repeat belongs to sheet k), and an empty
rating is a question left unanswered. It becomes the same answer sheets as PercePiano's file, in the order
the table first names them (the ceiling's random rater splits depend on that order).

PercePiano's file:

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

import io
import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from benchmark.dataset import MEAN_LABELS, N_TARGETS, RATER_LABELS, TARGET_NAMES, _load_json, resolve_data_dir
from benchmark.description import DESCRIPTION_NAME, Description, load_described, read_description, read_table
from benchmark.errors import DataError
from benchmark.hashing import read_regular_bytes

#: Highest valid answer; a sheet with a larger one is dropped (upstream rule).
MAX_RATING = 7.0
#: Largest rater file read (PercePiano's ``total_2rounds.csv`` is 2 MB): a larger one is refused before it fills memory.
MAX_RATERS_BYTES = 64 * 2**20
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
    if not path.exists():
        raise DataError(f"rater file {str(path)!r} is missing; is this a PercePiano clone?")
    data = read_regular_bytes(path, "rater file", MAX_RATERS_BYTES)  # PercePiano's: 2 MB
    try:
        raw = pd.read_csv(io.BytesIO(data), index_col=False, encoding="utf-8")
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
        The PercePiano folder, or the folder of a described dataset.
    sheets : DataFrame
        Every valid answer sheet: ``user``, ``segment`` (an item id) and one column per target (NaN =
        unanswered; PercePiano: 1..7).
    info : dict
        Counts of the raw file (sheets, dropped sheets, raters, file names, renamed Score sheets).
    labels : dict
        The mean ratings: item id -> list of values, targets first (PercePiano's mean-label JSON, keys
        stripped).
    target_names : tuple of str
    scale : float
        What the mean ratings are divided by (PercePiano: 7, its 7-point scale mapped to [0, 1]; a described
        dataset's ``[raters] scale``, default 1).
    source : str
        The rater file, for messages.
    """

    root: Path
    sheets: pd.DataFrame
    info: dict
    labels: dict
    target_names: tuple[str, ...] = TARGET_NAMES
    scale: float = MAX_RATING
    source: str = RATER_LABELS


def _is_description(source) -> bool:
    if isinstance(source, Description):
        return True
    if source is None:
        return False
    p = Path(source)
    return (p.is_file() and p.suffix.lower() == ".toml") or (p.is_dir() and (p / DESCRIPTION_NAME).is_file())


def read_raters(data_dir: str | os.PathLike | RaterData | Description | None = None) -> RaterData:
    """Parse the rater ratings and the mean ratings once (a :class:`RaterData` passes through).

    Parameters
    ----------
    data_dir : path, Description or RaterData, optional
        A PercePiano folder (:func:`benchmark.dataset.resolve_data_dir`), or a described dataset (its
        ``dataset.toml``, its folder, or a :class:`benchmark.description.Description`).

    Raises
    ------
    DataError
        Missing or malformed files, or a described dataset without a rater table.
    """
    if isinstance(data_dir, RaterData):
        return data_dir
    if _is_description(data_dir):
        return _read_described(data_dir)
    root = resolve_data_dir(data_dir)
    sheets, info = _read_sheets(root)
    labels = {k.strip(): v for k, v in _load_json(root / MEAN_LABELS).items()}
    return RaterData(root, sheets, info, labels)


def _read_described(source) -> RaterData:
    """A described dataset's rater table as answer sheets (module note), checked against its items."""
    desc = source if isinstance(source, Description) else read_description(source)
    spec = desc.raters
    if spec is None:
        raise DataError(f"dataset {desc.name!r} has no per-rater ratings ([raters] in {desc.path}); the noise "
                        "ceiling needs them")
    ds = load_described(desc)
    columns = [spec.id, spec.rater, spec.target, spec.rating]
    table = read_table(spec.file, what="rater table", strings=[spec.id, spec.rater, spec.target],
                       numbers=[spec.rating])
    have = [str(c) for c in table.columns]
    for key, column in zip(("id", "rater", "target", "rating"), columns, strict=True):
        if column not in have:
            raise DataError(f"{desc.path}: [raters] {key} names the column {column!r}, which {spec.file.name} lacks "
                            f"(its columns: {', '.join(have[:20])})")
    where = f"{desc.path} ({spec.file.name})"
    table = table[columns].rename(columns=dict(zip(columns, ("segment", "user", "target", "rating"), strict=True)))
    for key in ("segment", "user", "target"):
        if table[key].isna().any():
            row = int(np.flatnonzero(table[key].isna().to_numpy())[0])
            raise DataError(f"{where}: row {row} has no {key if key != 'segment' else 'id'}; every answer names its "
                            "item, rater and target")
        table[key] = table[key].astype(str).str.strip()
    unknown = sorted(set(table["target"]) - set(desc.targets))
    if unknown:
        raise DataError(f"{where}: target {unknown[0]!r} is not one of the dataset's targets "
                        f"({', '.join(desc.targets)}); rater answers are matched to the targets by name")
    values = np.empty(len(table))
    for i, v in enumerate(table["rating"]):
        if v is None or v is pd.NA:
            values[i] = np.nan
        elif isinstance(v, str):
            try:  # a CSV column with one unparseable cell arrives as text
                values[i] = float(v)
            except ValueError:
                raise DataError(f"{where}: row {i} holds the rating {v!r:.40}, not a number (leave it empty if "
                                "unanswered)") from None
        elif isinstance(v, bool | np.bool_) or not isinstance(v, int | float | np.integer | np.floating):
            raise DataError(f"{where}: row {i} holds the rating {v!r:.40}, not a number (leave it empty if "
                            "unanswered)")
        else:
            values[i] = float(v)
    if spec.range is not None:
        lo, hi = spec.range
        out = np.flatnonzero(~np.isnan(values) & ~((values >= lo) & (values <= hi)))
        if out.size:
            i = int(out[0])
            raise DataError(f"{where}: row {i} ({table['segment'].iat[i]!r}, rater {table['user'].iat[i]!r}) holds "
                            f"the rating {float(values[i])!r}, outside the declared range [{lo:g}, {hi:g}] ([raters] range)")
    if not np.isfinite(values[~np.isnan(values)]).all():
        raise DataError(f"{where}: a rating is infinite")
    # The k-th answer of one rater to one item and target belongs to the rater's k-th sheet of that item;
    # sheets are numbered in the order the table first names them.
    sheet = table.groupby(["segment", "user", "target"], sort=False).cumcount().to_numpy()
    codes, uniques = pd.MultiIndex.from_arrays([table["segment"], table["user"], sheet]).factorize()
    t_code = pd.Index(desc.targets).get_indexer(table["target"])
    wide = np.full((len(uniques), len(desc.targets)), np.nan)
    wide[codes, t_code] = values
    sheets = pd.DataFrame(wide, columns=list(desc.targets))
    sheets.insert(0, "segment", uniques.get_level_values(0).to_numpy())
    sheets.insert(0, "user", uniques.get_level_values(1).to_numpy())
    labels = {sid: [float(v) for v in row] for sid, row in zip(ds.meta["sample_id"], ds.y, strict=True)}
    info = {"n_sheets": len(sheets), "n_sheets_dropped_over_7": 0, "n_raters": int(table["user"].nunique()),
            "n_filenames": int(table["segment"].nunique()), "n_renamed": 0, "n_rows": len(table)}
    return RaterData(desc.root, sheets, info, labels, tuple(desc.targets), spec.scale, str(spec.file))


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
    names = list(raters.target_names)
    means = sheets.groupby("segment")[names].mean() / raters.scale
    rated = [k for k in labels if k in means.index]
    json_means = np.array([labels[k][:len(names)] for k in rated], dtype=float).reshape(len(rated), len(names))
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


def rating_array(data_dir: str | os.PathLike | RaterData | Description | None = None, *,
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
    ratings : ndarray, shape (n_segments, max_raters, n_targets)
        Ratings (PercePiano: on the 1..7 scale); NaN for unanswered or padding.
    segments : list of str
        The mean-label JSON keys (a described dataset's item ids), sorted, one per row.

    Raises
    ------
    DataError
        Missing or malformed files, or a labelled segment without ratings.
    """
    raters = read_raters(data_dir)
    sheets = raters.sheets
    names = list(raters.target_names)
    segments = sorted(raters.labels)
    sheets = sheets[sheets["segment"].isin(set(segments))]
    if by_rater:
        sheets = sheets.groupby(["segment", "user"], sort=False)[names].mean().reset_index()
    missing = sorted(set(segments) - set(sheets["segment"]))
    if missing:
        raise DataError(f"{len(missing)} labelled segments have no ratings in {raters.source}, e.g. {missing[:3]}")
    row = pd.Series(np.arange(len(segments)), index=segments)[sheets["segment"]].to_numpy()
    slot = sheets.groupby("segment").cumcount().to_numpy()
    out = np.full((len(segments), int(slot.max()) + 1, len(names)), np.nan)
    out[row, slot] = sheets[names].to_numpy(dtype=float)
    return out, segments




def rater_spread(data_dir: str | os.PathLike | RaterData | None = None, *, upstream: bool = False) -> pd.DataFrame:
    """The raters' standard deviation of every labelled segment and target, on the label scale (0..1).

    The population standard deviation (ddof 0, as upstream) of the answers of
    every valid sheet of the segment (the answers whose mean is the label),
    divided by the ratings' scale (PercePiano: :data:`MAX_RATING`). A question answered on one sheet only has
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
        raise DataError(f"{len(missing)} labelled segments have no ratings in {raters.source}, e.g. {missing[:3]}")
    names = list(raters.target_names)
    answers = sheets[names] / raters.scale  # PercePiano: / 7, its 7-point scale mapped to [0, 1]
    if upstream:
        answers = answers.fillna(0.0)
    answers.insert(0, "segment", sheets["segment"].to_numpy())
    grouped = answers.groupby("segment")[names]
    # Population sd of the answered values: sqrt(mean(x^2) - mean(x)^2) would cancel; centre first.
    centred = answers[names] - grouped.transform("mean")
    sd = np.sqrt((centred ** 2).groupby(answers["segment"]).mean())
    return sd.loc[segments]
