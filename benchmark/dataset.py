"""The dataset protocol, and PercePiano's own loader behind it.

Every rating dataset reaches the harness as one :class:`Dataset`: the items'
ids and metadata (``meta``), the targets (``y``, ``target_names``, their
declared ``target_ranges``), the group columns the splits may use
(``group_columns``), the media of each item (``midi_path``, ``audio_path``,
``score_midi_path`` columns), the reference (deadpan) items, the per-rater
ratings (:func:`benchmark.raters.read_raters` reads them from
``rater_source``), and the dataset's identity (:meth:`Dataset.identity`,
:meth:`Dataset.content_hash`). The loader, the splits, the runner, the noise
ceiling and the reports read only these.

Two loaders produce it: :func:`load_dataset` reads PercePiano from its upstream
layout (``labels/`` and ``virtuoso/data/``, so the same code reads the shared
copy and a user's ``git clone https://github.com/JonghoKimSNU/PercePiano``),
and :func:`benchmark.description.load_described` reads any dataset described
by a ``dataset.toml``; :func:`benchmark.description.open_dataset` picks one.

The protocol's metadata columns (``meta``)
------------------------------------------
``sample_id`` (str, unique); the role columns ``player`` (the performer: the
``lopo`` split leaves one value out, predictions call it ``performer``),
``piece`` and ``composer`` when the dataset has them; every other group
column under its own name; ``midi_path``, ``audio_path`` and
``score_midi_path`` (None where an item lacks that medium); ``reference``
(True for deadpan or reference items, held out together by ``lopo`` and
dropped by ``--exclude-score``). PercePiano's meta also holds ``segment``,
``bars`` and ``excerpt``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd

from benchmark.errors import DataError
from benchmark.hashing import file_sha256, read_regular_bytes

logger = logging.getLogger(__name__)

MEAN_LABELS = "labels/label_2round_mean_reg_19_with0_rm_highstd0.json"
STD_LABELS = "labels/label_2round_std_reg_19_with0_rm_highstd0.json"
RATER_LABELS = "labels/total_2rounds.csv"
MIDI_DIR = "virtuoso/data/all_2rounds"
SCORE_MIDI_DIR = "virtuoso/data/score_midi"

#: The 19 perceptual dimensions, in label order (upstream README table).
TARGET_NAMES: tuple[str, ...] = (
    "timing_stable_unstable",
    "articulation_short_long",
    "articulation_soft_hard",
    "pedal_sparse_saturated",
    "pedal_clean_blurred",
    "timbre_even_colorful",
    "timbre_shallow_rich",
    "timbre_bright_dark",
    "timbre_soft_loud",
    "dynamic_mellow_raw",
    "dynamic_little_large_range",
    "music_making_fast_slow",
    "music_making_flat_spacious",
    "music_making_disproportioned_balanced",
    "music_making_pure_dramatic",
    "emotion_pleasant_dark",
    "emotion_low_high_energy",
    "emotion_honest_imaginative",
    "interpretation_unsatisfactory_convincing",
)
N_TARGETS = len(TARGET_NAMES)
SCORE_PLAYERS = ("Score", "Score2")

#: Documented range of the mean ratings and their standard deviations (7-point scale mapped to [0, 1]).
LABEL_RANGE = (0.0, 1.0)
#: Largest accepted labels file, in bytes: PercePiano's are under 0.5 MiB, and a JSON file costs about
#: ten times its size in memory once parsed, so a 200 MB file would take gigabytes.
MAX_LABELS_BYTES = 16 * 2**20
#: Integers with more digits than this are read as floats (so a 5001-digit "rating" is out of range,
#: not a ValueError from Python's limit on int conversion); no rating in [0, 1] comes near.
_MAX_INT_DIGITS = 18

#: Where to look for the data when no directory is given, in order.
DEFAULT_DATA_DIRS = ("data/percepiano", "../shared/percepiano")

_NAME_RE = re.compile(r"^(?P<piece>.+)_(?P<bars>\d+)bars_(?P<player>[^_]+)_(?P<segment>\d+)$")


#: The columns of ``meta`` that name an item's media files (None where the item lacks that medium).
MEDIA_COLUMNS = {"midi": "midi_path", "audio": "audio_path", "score_midi": "score_midi_path"}
#: PercePiano's group columns: what ``group:COLUMN`` and ``kfold_grouped:COLUMN`` accept on it.
PERCEPIANO_GROUPS = ("player", "piece", "composer", "excerpt")


@dataclass
class Dataset:
    """Labelled items: the dataset protocol (see the module note).

    Attributes
    ----------
    root : Path
        The dataset directory (PercePiano's folder, or the folder of a ``dataset.toml``).
    meta : DataFrame, shape (n_samples, ...)
        One row per item, sorted by ``sample_id``; the protocol's columns (module note). PercePiano's:
        ``sample_id``, ``piece``, ``composer``, ``player``, ``segment``, ``bars``, ``excerpt``,
        ``midi_path``, ``score_midi_path``, ``audio_path`` (None), ``reference``.
    y : ndarray, shape (n_samples, n_targets)
        Mean ratings, columns in ``target_names`` order (PercePiano: scaled to [0, 1]).
    y_std : ndarray or None, shape (n_samples, n_targets)
        Rater standard deviations where the dataset has them (PercePiano), else None.
    target_names : tuple of str
    unlabelled : list of str
        Performance MIDI files without labels (dropped upstream).
    include_score : bool
        Whether the reference (deadpan) items are kept.
    name : str
        The dataset's name (``percepiano`` for the native loader).
    description : Path or None
        The ``dataset.toml`` a described dataset was read from; None for PercePiano's own loader.
    target_ranges : tuple of (float, float)
        The declared range of each target.
    group_columns : tuple of str
        The ``meta`` columns splits may group by (``group:COLUMN``, ``kfold_grouped:COLUMN``).
    identity_parts : dict
        What identifies a described dataset besides its media (the description's and the rating
        tables' sha256); empty for PercePiano's own loader.
    """

    root: Path
    meta: pd.DataFrame
    y: np.ndarray
    y_std: np.ndarray | None = None
    target_names: tuple[str, ...] = TARGET_NAMES
    unlabelled: list[str] = field(default_factory=list)
    include_score: bool = True
    name: str = "percepiano"
    description: Path | None = None
    target_ranges: tuple[tuple[float, float], ...] = ((LABEL_RANGE,) * N_TARGETS)
    group_columns: tuple[str, ...] = PERCEPIANO_GROUPS
    identity_parts: dict = field(default_factory=dict)

    @property
    def n_samples(self) -> int:
        return len(self.meta)

    def subset(self, mask: np.ndarray) -> Dataset:
        """Return a new dataset holding the rows where ``mask`` is true."""
        mask = np.asarray(mask, dtype=bool)
        return replace(self, meta=self.meta.loc[mask].reset_index(drop=True), y=self.y[mask],
                       y_std=None if self.y_std is None else self.y_std[mask], unlabelled=list(self.unlabelled))

    def has_media(self, kind: str) -> np.ndarray:
        """Which items have a ``kind`` file (``midi``, ``audio``, ``score_midi``): bool (n_samples,)."""
        column = MEDIA_COLUMNS[kind]
        if column not in self.meta.columns:
            return np.zeros(self.n_samples, dtype=bool)
        return np.array([isinstance(p, str) and bool(p) for p in self.meta[column]], dtype=bool)

    @property
    def rater_source(self):
        """Where :func:`benchmark.raters.read_raters` finds the per-rater ratings: the description of a
        described dataset, PercePiano's folder otherwise."""
        return self.description if self.description is not None else self.root

    def content_hash(self) -> str:
        """sha256 over what defines the data: the label (ratings) files and every item's media bytes.

        PercePiano's own loader: the two label files and every labelled MIDI file (unchanged since the
        first runs, so their ``--resume`` still matches). A described dataset: its identity (the
        description's sha256, the ratings' and the rater table's) and every item's media files.
        """
        h = hashlib.sha256()
        if self.description is None:
            for rel in (MEAN_LABELS, STD_LABELS):
                h.update(file_sha256(self.root / rel).encode())
            for sid, p in zip(self.meta["sample_id"], self.meta["midi_path"], strict=False):
                h.update(sid.encode())
                h.update(file_sha256(Path(p)).encode())
            return h.hexdigest()
        h.update(json.dumps(self.identity_parts, sort_keys=True).encode())
        columns = [c for c in MEDIA_COLUMNS.values() if c in self.meta.columns]
        for row in self.meta[["sample_id", *columns]].itertuples(index=False):
            h.update(str(row[0]).encode())
            for p in row[1:]:
                h.update((file_sha256(Path(p)) if isinstance(p, str) and p else "-").encode())
        return h.hexdigest()

    def identity(self) -> dict:
        """The manifest's record of which dataset a run used: name, kind, where, and its content hashes."""
        out = {"name": self.name, "kind": "percepiano" if self.description is None else "described",
               "root": str(Path(self.root).resolve()),
               "description": None if self.description is None else str(Path(self.description).resolve()),
               "targets": list(self.target_names), "n_items": self.n_samples}
        out.update(self.identity_parts)
        return out


def resolve_data_dir(data_dir: str | os.PathLike | None = None) -> Path:
    """Find the dataset: ``data_dir``, ``$PERCEPIANO_DIR``, ``./data/percepiano``,
    ``../shared/percepiano`` (the first that exists).

    Raises
    ------
    DataError
        If an explicitly given directory does not exist, or none is found.
    """
    if data_dir is not None:
        path = Path(data_dir).expanduser()
        if path.exists() and not path.is_dir():
            raise DataError(f"data directory {str(path)!r} is a file, not a folder; pass the folder of a "
                            "PercePiano clone")
        if not path.is_dir():
            raise DataError(f"data directory {str(path)!r} does not exist; pass the folder of a PercePiano clone")
        return path
    env = os.environ.get("PERCEPIANO_DIR")
    if env:
        path = Path(env).expanduser()
        if path.exists() and not path.is_dir():
            raise DataError(f"$PERCEPIANO_DIR={env!r} is a file, not a folder; point it at a PercePiano clone")
        if not path.is_dir():
            raise DataError(f"$PERCEPIANO_DIR={env!r} does not exist; point it at a PercePiano clone")
        return path
    for cand in DEFAULT_DATA_DIRS:
        if Path(cand).is_dir():
            return Path(cand)
    raise DataError(
        "PercePiano data not found in ./data/percepiano or ../shared/percepiano; "
        "clone https://github.com/JonghoKimSNU/PercePiano (MIT) and pass --data-dir or set $PERCEPIANO_DIR"
    )


def parse_segment_name(name: str) -> dict[str, object]:
    """Split ``<piece>_<N>bars_<player>_<segment>`` into its parts.

    Raises
    ------
    DataError
        If the name does not follow the pattern.
    """
    m = _NAME_RE.match(name.strip())
    if m is None:
        raise DataError(f"segment name {name!r} does not match <piece>_<N>bars_<player>_<segment>")
    piece = m["piece"]
    return {
        "piece": piece,
        "composer": piece.split("_")[0],
        "player": m["player"],
        "segment": int(m["segment"]),
        "bars": int(m["bars"]),
        "excerpt": f"{piece}_{m['bars']}bars_{m['segment']}",
    }


def _score_index(score_dir: Path) -> dict[tuple, Path]:
    """(piece, bars, segment, Score|Score2) -> score MIDI path.

    Segment numbers are compared as integers: the Schubert D960 files write
    them with two digits (``..._Score_01.mid``). ``Score`` (flat velocity,
    notated tempo) is preferred over ``Score2`` by the caller.
    """
    index = {}
    if not score_dir.is_dir():
        return index
    for p in sorted(score_dir.glob("*.mid")):
        m = _NAME_RE.match(p.stem.strip())
        if m is not None:
            index[(m["piece"], int(m["bars"]), int(m["segment"]), m["player"])] = p
    return index


def _unique_pairs(path: Path):
    def hook(pairs: list) -> dict:
        seen: dict[str, str] = {}
        for k, _ in pairs:
            # Keys name segments after stripping stray whitespace, so " X" and "X" are the same segment.
            norm = k.strip() if isinstance(k, str) else k
            if norm in seen:
                raise DataError(f"labels file {str(path)!r}: key {k!r} repeats {seen[norm]!r} (the same segment "
                                "after stripping whitespace); keep one entry per segment")
            seen[norm] = k
        return {(k.strip() if isinstance(k, str) else k): v for k, v in pairs}

    return hook


def _parse_int(digits: str) -> int | float:
    return int(digits) if len(digits.lstrip("-")) <= _MAX_INT_DIGITS else float(digits)


def _read_labels_bytes(path: Path) -> bytes:
    """The bytes of a labels file: a regular file of at most :data:`MAX_LABELS_BYTES`, checked before reading."""
    return read_regular_bytes(path, "labels file", MAX_LABELS_BYTES, limit_name="MAX_LABELS_BYTES",
                              missing="is missing; is this a PercePiano clone?",
                              note="PercePiano's labels files are under 1 MiB")


def _load_json(path: Path) -> dict:
    """A labels file as ``{segment (stripped): values}``; keys must be unique after stripping.

    Raises
    ------
    DataError
        Missing, not a regular file, over :data:`MAX_LABELS_BYTES`, unreadable, not JSON, not a non-empty
        object, or a key repeated after stripping.
    """
    raw = _read_labels_bytes(path)
    try:
        data = json.loads(raw.decode("utf-8"), object_pairs_hook=_unique_pairs(path), parse_int=_parse_int)
    except (ValueError, RecursionError) as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise DataError(f"labels file {str(path)!r} is not valid JSON: {str(exc):.200}") from None
    if not isinstance(data, dict) or not data:
        raise DataError(f"labels file {str(path)!r} must be a non-empty JSON object segment -> list")
    return data


def _is_number(x: object) -> bool:
    # bool is an int in Python, and "0.5" converts with float(): neither is a rating.
    return isinstance(x, int | float) and not isinstance(x, bool)


def _label_matrix(data: dict, path: Path, keys: list[str], width: int) -> np.ndarray:
    lo, hi = LABEL_RANGE
    rows = []
    for k in keys:
        v = data.get(k)
        if not isinstance(v, list) or len(v) < width:
            raise DataError(f"labels file {str(path)!r}: entry {k!r} should hold at least {width} numbers, got {v!r:.80}")
        bad = [(j, x) for j, x in enumerate(v[:width]) if not _is_number(x)]
        if bad:
            j, x = bad[0]
            raise DataError(f"labels file {str(path)!r}: entry {k!r} holds a non-number at position {j}: {x!r:.40} "
                            f"({type(x).__name__}); ratings are JSON numbers")
        row = [float(x) for x in v[:width]]
        out = [(j, x) for j, x in enumerate(row) if not (lo <= x <= hi)]  # also catches NaN
        if out:
            j, x = out[0]
            what = f"{x!r}" if not np.isinf(x) else f"{x!r} (Infinity, or a number too large for a float)"
            raise DataError(f"labels file {str(path)!r}: entry {k!r} holds {what} at position {j} "
                            f"({TARGET_NAMES[j] if j < len(TARGET_NAMES) else j}), outside the documented range "
                            f"[{lo:g}, {hi:g}]")
        rows.append(row)
    return np.asarray(rows, dtype=float)


def load_dataset(data_dir: str | os.PathLike | None = None, *, include_score: bool = True) -> Dataset:
    """Read labelled segments from a PercePiano directory.

    Parameters
    ----------
    data_dir : path, optional
        See :func:`resolve_data_dir`.
    include_score : bool, default True
        Keep the two deadpan score renderings (players ``Score``, ``Score2``).
        They are labelled like the pianists and the dataset paper keeps them
        (always in training for its performer folds), so the default keeps them.

    Returns
    -------
    Dataset
        Sorted by ``sample_id``.

    Raises
    ------
    DataError
        Missing directory, labels file or MIDI folder; malformed labels.
    """
    root = resolve_data_dir(data_dir)
    midi_dir = root / MIDI_DIR
    if not midi_dir.is_dir():
        raise DataError(f"MIDI folder {str(midi_dir)!r} is missing; is {str(root)!r} a PercePiano clone?")
    mean = _load_json(root / MEAN_LABELS)
    std = _load_json(root / STD_LABELS)

    # File names may carry stray whitespace (one upstream file starts with a space).
    files: dict[str, Path] = {}
    for p in sorted(midi_dir.glob("*.mid")):
        if p.stem.strip() in files:
            raise DataError(f"MIDI files {files[p.stem.strip()].name!r} and {p.name!r} name the same segment "
                            f"(after stripping whitespace) in {str(midi_dir)!r}; remove one")
        files[p.stem.strip()] = p
    score_files = _score_index(root / SCORE_MIDI_DIR)

    keys = sorted(mean)  # already stripped and unique (see _load_json)
    missing_midi = [k for k in keys if k not in files]
    if missing_midi:
        raise DataError(
            f"{len(missing_midi)} labelled segments have no MIDI file in {str(midi_dir)!r}, e.g. {missing_midi[:3]}"
        )
    missing_std = [k for k in keys if k not in std]
    if missing_std:
        raise DataError(f"{len(missing_std)} segments lack a label std, e.g. {missing_std[:3]}")

    records = []
    for k in keys:
        parts = parse_segment_name(k)
        excerpt = (parts["piece"], parts["bars"], parts["segment"])
        sp = score_files.get((*excerpt, "Score")) or score_files.get((*excerpt, "Score2"))
        records.append(
            {
                "sample_id": k,
                **parts,
                "midi_path": str(files[k]),
                "score_midi_path": str(sp) if sp is not None else None,
                "audio_path": None,
                # The deadpan score renderings: one performer unit under lopo, dropped by --exclude-score.
                "reference": parts["player"] in SCORE_PLAYERS,
            }
        )
    meta = pd.DataFrame.from_records(records)
    y = _label_matrix(mean, root / MEAN_LABELS, keys, N_TARGETS)
    y_std = _label_matrix(std, root / STD_LABELS, keys, N_TARGETS)
    ds = Dataset(
        root=root,
        meta=meta,
        y=y,
        y_std=y_std,
        unlabelled=sorted(set(files) - set(keys)),
        include_score=include_score,
    )
    if not include_score:
        ds = ds.subset(~meta["reference"].to_numpy(dtype=bool))
    logger.info("loaded %d labelled segments from %s", ds.n_samples, root)
    return ds

