"""PercePiano written in the generic dataset format (``benchmark dataset export --format generic DIR``).

The export writes ``ratings.csv`` (one row per labelled segment: its id, player,
piece, composer, excerpt, bars, segment, the 19 mean ratings and the paths of
its performance and score MIDI, relative to ``DIR``), ``raters.csv`` (the
per-rater answers as a long table: one row per valid answer sheet and target,
in the rater file's order, an empty rating where the sheet left the question
unanswered) and ``dataset.toml`` describing both. The MIDI files are referred
to, never copied. Read back with ``--dataset DIR``, it gives the native
loader's items, ratings, folds and noise ceiling bit for bit: ratings are
written with Python's shortest round-trip representation and read back with
round-trip precision, and the rater table keeps the sheets' order, which the
ceiling's random rater splits depend on.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import numpy as np
import pandas as pd

from benchmark.dataset import LABEL_RANGE, SCORE_PLAYERS, load_dataset
from benchmark.description import DESCRIPTION_NAME
from benchmark.errors import ConfigError, DataError
from benchmark.raters import MAX_RATING, read_raters

logger = logging.getLogger(__name__)

#: Formats ``benchmark dataset export`` writes.
EXPORT_FORMATS = ("generic",)
RATINGS_FILE = "ratings.csv"
RATERS_FILE = "raters.csv"


def _relative(path, out: Path) -> str:
    """``path`` relative to ``out`` (empty where the item has none: None, or NaN once pandas stored it)."""
    if not isinstance(path, str) or not path:
        return ""
    return os.path.relpath(os.path.abspath(path), os.path.abspath(out))


def _toml_list(values) -> str:
    return "[" + ", ".join(json.dumps(str(v)) for v in values) + "]"


def export_generic(out_dir: str | os.PathLike, data_dir: str | os.PathLike | None = None, *,
                   raters: bool = True) -> dict:
    """Write PercePiano (from ``data_dir``) in the generic format into ``out_dir``.

    Parameters
    ----------
    out_dir : path
        Created if absent; must not hold a ``dataset.toml`` already.
    data_dir : path, optional
        PercePiano's folder (:func:`benchmark.dataset.resolve_data_dir`).
    raters : bool
        Also write the rater table (needs ``labels/total_2rounds.csv``); without it the description has
        no ``[raters]`` and the noise ceiling is unavailable.

    Returns
    -------
    dict
        ``description`` (path), ``n_items``, ``n_rater_rows`` (0 without raters).

    Raises
    ------
    ConfigError
        ``out_dir`` is a file, or already holds a description.
    DataError
        PercePiano's files are missing or malformed.
    """
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"export folder {str(out)!r} is a file; pass a folder")
    if (out / DESCRIPTION_NAME).exists():
        raise ConfigError(f"{str(out / DESCRIPTION_NAME)!r} exists already; export into an empty folder")
    ds = load_dataset(data_dir, include_score=True)
    sheets = None
    if raters:
        try:
            sheets = read_raters(ds.root)  # before writing anything: a missing rater file fails here
        except DataError as exc:
            raise DataError(f"{exc}; pass --no-raters to export without the per-rater table") from None
    out.mkdir(parents=True, exist_ok=True)
    meta = ds.meta
    table = pd.DataFrame({"sample_id": meta["sample_id"], "player": meta["player"], "piece": meta["piece"],
                          "composer": meta["composer"], "excerpt": meta["excerpt"], "bars": meta["bars"],
                          "segment": meta["segment"]})
    for j, name in enumerate(ds.target_names):
        table[name] = ds.y[:, j]
    table["midi"] = [_relative(p, out) for p in meta["midi_path"]]
    table["score_midi"] = [_relative(p, out) for p in meta["score_midi_path"]]
    # repr (pandas' default for floats) is Python's shortest round-trip form: read back, every bit is kept.
    table.to_csv(out / RATINGS_FILE, index=False)
    n_rater_rows = 0
    if sheets is not None:
        s = sheets.sheets
        targets = list(sheets.target_names)
        answers = s[targets].to_numpy(dtype=float)
        long = pd.DataFrame({"sample_id": np.repeat(s["segment"].to_numpy(), len(targets)),
                             "rater": np.repeat(s["user"].to_numpy(), len(targets)),
                             "target": np.tile(targets, len(s)),
                             "rating": answers.ravel()})
        long.to_csv(out / RATERS_FILE, index=False)
        n_rater_rows = len(long)
    lo, hi = LABEL_RANGE
    lines = [
        "# PercePiano in the generic dataset format, written by `benchmark dataset export --format generic`.",
        "# Media paths are relative to this file; the MIDI files stay where they are.",
        "[dataset]",
        'name = "percepiano"',
        f'ratings = "{RATINGS_FILE}"',
        'id = "sample_id"',
        'metadata = ["segment", "bars"]',
        'description = "PercePiano (Park, Kim et al., Sci Rep 2024): 19 perceptual ratings, mean of 5-19 expert '
        'sheets on a 7-point scale divided by 7"',
        "",
        "[targets]",
        f"columns = {_toml_list(ds.target_names)}",
        f"range = [{lo!r}, {hi!r}]",
        "",
        "[groups]",
        'performer = "player"',
        'piece = "piece"',
        'composer = "composer"',
        'columns = ["excerpt"]',
        "",
        "[media]",
        'midi = "midi"',
        'score_midi = "score_midi"',
        "",
    ]
    if sheets is not None:
        lines += ["[raters]", f'file = "{RATERS_FILE}"', 'id = "sample_id"', 'rater = "rater"', 'target = "target"',
                  'rating = "rating"', f"range = [1, {int(MAX_RATING)}]",
                  f"scale = {int(MAX_RATING)}  # ratings.csv holds the mean answer divided by {int(MAX_RATING)}", ""]
    deadpan = [p for p in SCORE_PLAYERS if p in set(meta["player"])]
    if deadpan:
        lines += ["[reference]", "# the deadpan score renderings: one performer unit under lopo, dropped by "
                  "--exclude-score", f"performers = {_toml_list(deadpan)}", ""]
    (out / DESCRIPTION_NAME).write_text("\n".join(lines), encoding="utf-8")
    logger.info("exported %d items to %s", ds.n_samples, out)
    return {"description": str(out / DESCRIPTION_NAME), "n_items": ds.n_samples, "n_rater_rows": n_rater_rows}
