"""Load PercePiano from its upstream layout into one table of segments.

The layout is the upstream repository's own (``labels/`` and
``virtuoso/data/``), so the same code reads the shared copy and a user's
``git clone https://github.com/JonghoKimSNU/PercePiano``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from benchmark.errors import DataError
from benchmark.hashing import file_sha256, regular_stat

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


@dataclass
class Dataset:
    """Labelled PercePiano segments.

    Attributes
    ----------
    root : Path
        The dataset directory.
    meta : DataFrame, shape (n_samples, ...)
        One row per segment: ``sample_id``, ``piece``, ``composer``, ``player``,
        ``segment``, ``bars``, ``excerpt``, ``midi_path``, ``score_midi_path``.
    y : ndarray, shape (n_samples, 19)
        Mean ratings scaled to [0, 1], columns in :data:`TARGET_NAMES` order.
    y_std : ndarray, shape (n_samples, 19)
        Rater standard deviations (same scale).
    target_names : tuple of str
    unlabelled : list of str
        Performance MIDI files without labels (dropped upstream).
    """

    root: Path
    meta: pd.DataFrame
    y: np.ndarray
    y_std: np.ndarray
    target_names: tuple[str, ...] = TARGET_NAMES
    unlabelled: list[str] = field(default_factory=list)
    include_score: bool = True

    @property
    def n_samples(self) -> int:
        return len(self.meta)

    def subset(self, mask: np.ndarray) -> Dataset:
        """Return a new dataset holding the rows where ``mask`` is true."""
        mask = np.asarray(mask, dtype=bool)
        return Dataset(
            root=self.root,
            meta=self.meta.loc[mask].reset_index(drop=True),
            y=self.y[mask],
            y_std=self.y_std[mask],
            target_names=self.target_names,
            unlabelled=list(self.unlabelled),
            include_score=self.include_score,
        )

    def content_hash(self) -> str:
        """sha256 over the label files and every labelled MIDI file's bytes."""
        h = hashlib.sha256()
        for rel in (MEAN_LABELS, STD_LABELS):
            h.update(file_sha256(self.root / rel).encode())
        for sid, p in zip(self.meta["sample_id"], self.meta["midi_path"], strict=False):
            h.update(sid.encode())
            h.update(file_sha256(Path(p)).encode())
        return h.hexdigest()



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
    try:
        size = regular_stat(path).st_size  # a FIFO would block the read forever
    except FileNotFoundError:
        raise DataError(f"labels file {str(path)!r} is missing; is this a PercePiano clone?") from None
    except OSError as exc:
        raise DataError(f"labels file {str(path)!r} cannot be read: {exc.strerror or exc}") from None
    too_big = f"labels file {str(path)!r} is over the limit MAX_LABELS_BYTES={MAX_LABELS_BYTES // 2**20} MiB"
    if size > MAX_LABELS_BYTES:
        raise DataError(f"{too_big} ({size / 2**20:.1f} MiB); PercePiano's labels files are under 1 MiB")
    try:
        with open(path, "rb") as fh:
            raw = fh.read(MAX_LABELS_BYTES + 1)  # the file may have grown since the stat
    except OSError as exc:
        raise DataError(f"labels file {str(path)!r} cannot be read: {exc.strerror or exc}") from None
    if len(raw) > MAX_LABELS_BYTES:
        raise DataError(f"{too_big}; PercePiano's labels files are under 1 MiB")
    return raw


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
        ds = ds.subset(~meta["player"].isin(SCORE_PLAYERS).to_numpy())
    logger.info("loaded %d labelled segments from %s", ds.n_samples, root)
    return ds
