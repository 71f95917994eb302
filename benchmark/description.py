"""Any rating dataset, described by a file (``dataset.toml``): read, checked, loaded into the dataset protocol.

A description names a ratings table (CSV, Parquet or JSON records), its id
column, the target columns and their range, the group columns the splits
use, the media columns (MIDI, audio, score MIDI; paths relative to the
description), optional per-rater ratings and optional reference (deadpan)
items. ``docs/dataset.md`` is the format's reference; in short::

    [dataset]
    name = "my-listening-test"
    ratings = "ratings.csv"
    id = "clip"
    metadata = ["take"]            # optional: further columns kept with each item

    [targets]
    columns = ["tone", "timing", "overall"]
    range = [1, 7]                 # or {tone = [1, 7], timing = [1, 7], overall = [0, 100]}

    [groups]
    performer = "pianist"          # lopo leaves one value out
    piece = "piece"
    composer = "composer"
    columns = ["system"]           # any others: group:system, kfold_grouped:system

    [media]
    audio = "wav"                  # and/or midi = "...", score_midi = "..."

    [raters]                       # optional: the noise ceiling
    file = "raters.csv"            # long table: id, rater, target, rating

    [reference]                    # optional: deadpan items
    performers = ["deadpan"]

Everything is checked before any job starts, one line per problem naming the
file, the key or item and how to fix it (:func:`read_description` for the
file alone, :func:`load_described` against the tables and the media).
"""

from __future__ import annotations

import difflib
import hashlib
import io
import json
import logging
import math
import os
import tomllib
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from benchmark.dataset import MEDIA_COLUMNS, Dataset, load_dataset
from benchmark.errors import ConfigError, DataError
from benchmark.hashing import file_sha256, read_regular_bytes

logger = logging.getLogger(__name__)

#: The file ``--dataset DIR`` reads in a folder.
DESCRIPTION_NAME = "dataset.toml"
#: Largest accepted ratings or rater table, in bytes: a table costs several times its size in memory once
#: parsed; 256 MiB holds millions of ratings.
MAX_TABLE_BYTES = 256 * 2**20
#: Largest accepted description file (a few hundred bytes in practice).
MAX_DESCRIPTION_BYTES = 2**20
#: Ratings table formats, by file suffix.
TABLE_FORMATS = {".csv": "csv", ".tsv": "tsv", ".parquet": "parquet", ".pq": "parquet", ".json": "json"}
#: The role groups: the description's key -> the protocol's ``meta`` column.
ROLES = {"performer": "player", "piece": "piece", "composer": "composer"}
#: ``meta`` columns the harness defines; a table column of another role may not take these names.
RESERVED = ("sample_id", "player", "piece", "composer", "midi_path", "audio_path", "score_midi_path", "reference")

#: Every section and key, with the type each key takes.
SCHEMA: dict[str, dict[str, tuple]] = {
    "dataset": {"name": (str,), "ratings": (str,), "id": (str,), "metadata": (list,), "description": (str,)},
    "targets": {"columns": (list,), "range": (list, dict)},
    "groups": {"performer": (str,), "piece": (str,), "composer": (str,), "columns": (list,)},
    "media": {"midi": (str,), "audio": (str,), "score_midi": (str,)},
    "raters": {"file": (str,), "id": (str,), "rater": (str,), "target": (str,), "rating": (str,), "range": (list,),
               "scale": (int, float)},
    "reference": {"performers": (list,), "column": (str,)},
}
REQUIRED = {"dataset": ("name", "ratings", "id"), "targets": ("columns", "range"), "raters": ("file",)}


def _hint(word: str, choices) -> str:
    close = difflib.get_close_matches(str(word), [str(c) for c in choices], n=2, cutoff=0.5)
    return f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""


@dataclass(frozen=True)
class RaterSpec:
    """Where a described dataset's per-rater ratings are: a long table ``id, rater, target, rating``."""

    file: Path
    id: str = "id"
    rater: str = "rater"
    target: str = "target"
    rating: str = "rating"
    range: tuple[float, float] | None = None
    #: The ratings table holds the raters' mean divided by this (PercePiano: 7); checked by ``dataset check``.
    scale: float = 1.0


@dataclass(frozen=True)
class Description:
    """A checked ``dataset.toml`` (its keys and types; the tables are checked by :func:`load_described`).

    Attributes
    ----------
    path : Path
        The description file.
    sha256 : str
        Of its bytes: part of the dataset's identity.
    name : str
    ratings : Path
        The ratings table.
    id : str
        Its id column.
    targets : tuple of str
        Target columns, in the order models predict them.
    ranges : tuple of (float, float)
        Each target's declared range (inclusive).
    roles : dict
        ``performer``/``piece``/``composer`` -> the table's column.
    columns : tuple of str
        The other group columns.
    metadata : tuple of str
        Further columns kept with each item.
    media : dict
        ``midi``/``audio``/``score_midi`` -> the table's column of paths.
    raters : RaterSpec or None
    reference_performers : tuple of str
        Values of the performer column that mark reference (deadpan) items.
    reference_column : str or None
        A true/false column that marks them.
    """

    path: Path
    sha256: str
    name: str
    ratings: Path
    id: str
    targets: tuple[str, ...]
    ranges: tuple[tuple[float, float], ...]
    roles: dict = field(default_factory=dict)
    columns: tuple[str, ...] = ()
    metadata: tuple[str, ...] = ()
    media: dict = field(default_factory=dict)
    raters: RaterSpec | None = None
    reference_performers: tuple[str, ...] = ()
    reference_column: str | None = None

    @property
    def root(self) -> Path:
        """The folder relative paths start from."""
        return self.path.parent

    def group_columns(self) -> list[str]:
        """The table's group columns: the roles' then the others, each once."""
        return list(dict.fromkeys([*self.roles.values(), *self.columns]))


def description_path(path: str | os.PathLike) -> Path:
    """The description file of ``path``: the file itself, or ``dataset.toml`` in a folder.

    Raises
    ------
    ConfigError
        Nothing there, or a folder without ``dataset.toml``.
    """
    p = Path(path).expanduser()
    if p.is_dir():
        if not (p / DESCRIPTION_NAME).is_file():
            raise ConfigError(f"--dataset {str(p)!r} is a folder without {DESCRIPTION_NAME}; pass the description "
                              f"file or its folder ('benchmark dataset export --format generic DIR' writes one)")
        return p / DESCRIPTION_NAME
    if not p.exists():
        raise ConfigError(f"dataset description {str(p)!r} does not exist; pass a {DESCRIPTION_NAME} or its folder")
    return p


def _string_list(where: str, value, *, allow_empty: bool = False) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise ConfigError(f"{where} = {value!r}: expected a list of column names (strings)")
    if not value and not allow_empty:
        raise ConfigError(f"{where} is empty; name at least one column")
    repeated = sorted({v for v in value if value.count(v) > 1})
    if repeated:
        raise ConfigError(f"{where} names {', '.join(map(repr, repeated))} twice; list each column once")
    return tuple(value)


def _range(where: str, value) -> tuple[float, float]:
    ok = (isinstance(value, list) and len(value) == 2
          and all(isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) for v in value))
    if not ok or not value[0] < value[1]:
        raise ConfigError(f"{where} = {value!r}: expected [low, high] with two finite numbers, low < high")
    return float(value[0]), float(value[1])


def _check_section(where: Path, name: str, table) -> dict:
    if not isinstance(table, dict):
        raise ConfigError(f"{where}: [{name}] must be a table, got {type(table).__name__}")
    allowed = SCHEMA[name]
    for key, value in table.items():
        if key not in allowed:
            raise ConfigError(f"{where}: unknown key {key!r} in [{name}]{_hint(key, allowed)} "
                              f"(known: {', '.join(sorted(allowed))})")
        if not isinstance(value, allowed[key]) or isinstance(value, bool):
            names = " or ".join({"str": "a string", "list": "a list", "dict": "a table", "int": "a number",
                                 "float": "a number"}[t.__name__] for t in allowed[key])
            raise ConfigError(f"{where}: [{name}] {key} = {value!r}: expected {names}")
        if isinstance(value, str) and not value.strip():
            raise ConfigError(f"{where}: [{name}] {key} is empty")
    missing = [k for k in REQUIRED.get(name, ()) if k not in table]
    if missing:
        raise ConfigError(f"{where}: [{name}] lacks {', '.join(missing)} (see docs/dataset.md)")
    return table


def read_description(path: str | os.PathLike) -> Description:
    """Read and check a ``dataset.toml`` on its own: sections, keys, types, names (not the tables yet).

    Raises
    ------
    ConfigError
        Not TOML, an unknown section or key (with close matches), a wrong type, a missing required key,
        a column named twice or in two roles, a bad range.
    DataError
        The file cannot be read.
    """
    path = description_path(path)
    raw = read_regular_bytes(path, "dataset description", MAX_DESCRIPTION_BYTES)
    try:
        doc = tomllib.loads(raw.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: not a valid TOML file ({exc})") from None
    for section in doc:
        if section not in SCHEMA:
            raise ConfigError(f"{path}: unknown section [{section}]{_hint(section, SCHEMA)} "
                              f"(known: {', '.join(SCHEMA)})")
    for section in ("dataset", "targets"):
        if section not in doc:
            raise ConfigError(f"{path}: the [{section}] section is missing (see docs/dataset.md)")
    sections = {name: _check_section(path, name, doc.get(name, {})) for name in SCHEMA if name in doc}
    ds, tg = sections["dataset"], sections["targets"]
    groups, media = sections.get("groups", {}), sections.get("media", {})
    targets = _string_list(f"{path}: [targets] columns", tg["columns"])
    rng = tg["range"]
    if isinstance(rng, dict):
        unknown = [k for k in rng if k not in targets]
        if unknown:
            raise ConfigError(f"{path}: [targets] range names {unknown[0]!r}, not a target{_hint(unknown[0], targets)}")
        lacking = [t for t in targets if t not in rng]
        if lacking:
            raise ConfigError(f"{path}: [targets] range gives no range for {', '.join(lacking)}; give every target "
                              "one, or one [low, high] for all")
        ranges = tuple(_range(f"{path}: [targets] range.{t}", rng[t]) for t in targets)
    else:
        ranges = (_range(f"{path}: [targets] range", rng),) * len(targets)
    roles = {k: groups[k] for k in ROLES if k in groups}
    columns = _string_list(f"{path}: [groups] columns", groups.get("columns", []), allow_empty=True)
    metadata = _string_list(f"{path}: [dataset] metadata", ds.get("metadata", []), allow_empty=True)
    if not media.get("midi") and not media.get("audio"):
        raise ConfigError(f"{path}: [media] names neither a midi nor an audio column; every item needs a "
                          "performance to compute features from (add e.g. audio = \"wav\")")
    uses: dict[str, str] = {}

    def claim(column: str, what: str) -> None:
        if column in uses:
            raise ConfigError(f"{path}: column {column!r} is both {uses[column]} and {what}; a column has one role")
        uses[column] = what

    claim(ds["id"], "[dataset] id")
    for t in targets:
        claim(t, "a target")
    for role, column in roles.items():
        claim(column, f"[groups] {role}")
    for column in columns:
        claim(column, "a [groups] column")
        if column in RESERVED:
            raise ConfigError(f"{path}: [groups] columns names {column!r}, the harness's own name for "
                              + (f"the {next(k for k, v in ROLES.items() if v == column)} group: declare it as "
                                 f"[groups] {next(k for k, v in ROLES.items() if v == column)} = {column!r}"
                                 if column in ROLES.values() else "an item's media or flag: rename the column"))
    for column in metadata:
        claim(column, "[dataset] metadata")
        if column in RESERVED:
            raise ConfigError(f"{path}: [dataset] metadata names {column!r}, a name the harness reserves "
                              f"({', '.join(RESERVED)}); rename the column")
    for kind, column in media.items():
        claim(column, f"[media] {kind}")
    raters = None
    if "raters" in sections:
        r = sections["raters"]
        names = {k: r.get(k, k if k != "id" else ds["id"]) for k in ("id", "rater", "target", "rating")}
        repeated = sorted({v for v in names.values() if list(names.values()).count(v) > 1})
        if repeated:
            raise ConfigError(f"{path}: [raters] uses the column {repeated[0]!r} for two roles (id, rater, target, "
                              "rating need four columns)")
        scale = r.get("scale", 1.0)
        if not (math.isfinite(scale) and scale > 0):
            raise ConfigError(f"{path}: [raters] scale = {scale!r}: expected a positive number")
        raters = RaterSpec(file=path.parent / r["file"], **names, scale=float(scale),
                           range=_range(f"{path}: [raters] range", r["range"]) if "range" in r else None)
    ref = sections.get("reference", {})
    performers = _string_list(f"{path}: [reference] performers", ref.get("performers", []), allow_empty=True)
    if performers and "performer" not in roles:
        raise ConfigError(f"{path}: [reference] performers needs [groups] performer (the column whose values "
                          "they are)")
    if performers and "column" in ref:
        raise ConfigError(f"{path}: [reference] gives both performers and column; mark reference items one way")
    if "column" in ref:
        claim(ref["column"], "[reference] column")
    return Description(path=path, sha256=hashlib.sha256(raw).hexdigest(), name=ds["name"].strip(),
                       ratings=path.parent / ds["ratings"], id=ds["id"], targets=targets, ranges=ranges,
                       roles=roles, columns=columns, metadata=metadata, media=dict(media), raters=raters,
                       reference_performers=performers, reference_column=ref.get("column"))


# --- tables -------------------------------------------------------------------------------------------------


#: pandas 3 parses CSV floats exactly by default (and deprecates the option); pandas 2 needs "round_trip".
_EXACT_FLOATS = {"float_precision": "round_trip"} if int(pd.__version__.split(".")[0]) < 3 else {}


def _no_repeated_keys(path: Path):
    def hook(pairs: list) -> dict:
        keys = [k for k, _ in pairs]
        repeated = sorted({k for k in keys if keys.count(k) > 1})
        if repeated:
            raise DataError(f"{str(path)!r}: a record repeats the key {repeated[0]!r}; give each column once")
        return dict(pairs)

    return hook


def read_table(path: Path, *, what: str, strings: list[str], numbers: list[str]) -> pd.DataFrame:
    """A CSV, TSV, Parquet or JSON-records table, read exactly: ``strings`` as text, ``numbers`` as numbers.

    CSV numbers are parsed with round-trip precision (the float a value was written from); empty
    cells are missing (NaN or None), never the text "NA". JSON numbers must be JSON numbers.

    Raises
    ------
    DataError
        Unknown format, not a regular file, over :data:`MAX_TABLE_BYTES`, unparseable, or a value of the
        wrong kind (the message names the row and column).
    """
    fmt = TABLE_FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise DataError(f"{what} {str(path)!r}: unknown format {path.suffix!r}; use "
                        f"{', '.join(sorted(TABLE_FORMATS))}")
    raw = read_regular_bytes(path, what, MAX_TABLE_BYTES)
    try:
        if fmt in ("csv", "tsv"):
            with warnings.catch_warnings():
                # A row with more cells than the header would otherwise lose them with only a warning.
                warnings.simplefilter("error", pd.errors.ParserWarning)
                table = pd.read_csv(io.BytesIO(raw), sep="," if fmt == "csv" else "\t", encoding="utf-8",
                                    dtype={c: str for c in strings}, keep_default_na=False, na_values=[""],
                                    index_col=False, **_EXACT_FLOATS)
        elif fmt == "parquet":
            table = pd.read_parquet(io.BytesIO(raw))
        else:
            records = json.loads(raw.decode("utf-8"), object_pairs_hook=_no_repeated_keys(path))
            if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
                raise DataError(f"{what} {str(path)!r} must be a JSON list of records (one object per item)")
            for i, rec in enumerate(records):
                for col in numbers:
                    v = rec.get(col)
                    if v is not None and (isinstance(v, bool) or not isinstance(v, int | float)):
                        raise DataError(f"{what} {str(path)!r}: record {i} holds {col} = {v!r:.40}, not a JSON "
                                        "number")
            table = pd.DataFrame.from_records(records)
    except DataError:
        raise
    except (ValueError, UnicodeDecodeError, pd.errors.ParserError, pd.errors.ParserWarning, OSError,
            RecursionError) as exc:
        raise DataError(f"{what} {str(path)!r} cannot be parsed: {str(exc).splitlines()[0] if str(exc) else exc!r:.200}"
                        ) from None
    except Exception as exc:  # pyarrow's own errors (ArrowInvalid...) when a Parquet file is damaged
        if type(exc).__module__.startswith("pyarrow"):
            raise DataError(f"{what} {str(path)!r} cannot be parsed: {str(exc).splitlines()[0]:.200}") from None
        raise
    if not len(table):
        raise DataError(f"{what} {str(path)!r} holds no rows")
    return table


def _text(values: pd.Series) -> list[str | None]:
    """Cells as stripped text, None where missing (a Parquet or JSON number becomes its text)."""
    out = []
    for v in values:
        if v is None or (isinstance(v, float) and math.isnan(v)) or v is pd.NA:
            out.append(None)
            continue
        if isinstance(v, float) and v.is_integer():
            v = int(v)
        s = str(v).strip()
        out.append(s or None)
    return out


def _numbers(table: pd.DataFrame, column: str, ids: list[str], where: str) -> np.ndarray:
    """A column of numbers as float64; the first value that is no number is named with its item.

    A CSV column with one unparseable cell arrives as text: every other cell is then the text of a number.
    (A JSON file's strings were refused by :func:`read_table`.)
    """
    col = table[column]
    values = np.empty(len(col))
    for i, v in enumerate(col):
        if isinstance(v, str):
            try:
                values[i] = float(v)
                continue
            except ValueError:
                raise DataError(f"{where}: item {ids[i]!r} has {column} = {v!r:.40}, not a number") from None
        if v is None or v is pd.NA:
            values[i] = np.nan
            continue
        if isinstance(v, bool | np.bool_) or not isinstance(v, int | float | np.integer | np.floating):
            raise DataError(f"{where}: item {ids[i]!r} has {column} = {v!r:.40}, not a number")
        values[i] = float(v)
    return values


def _check_columns(desc: Description, table: pd.DataFrame) -> None:
    where = desc.path
    have = [str(c) for c in table.columns]
    named = [("[dataset] id", desc.id), *(("[targets] columns", t) for t in desc.targets),
             *((f"[groups] {r}", c) for r, c in desc.roles.items()), *(("[groups] columns", c) for c in desc.columns),
             *(("[dataset] metadata", c) for c in desc.metadata), *((f"[media] {k}", c) for k, c in desc.media.items())]
    if desc.reference_column:
        named.append(("[reference] column", desc.reference_column))
    for key, column in named:
        if column not in have:
            raise ConfigError(f"{where}: {key} names the column {column!r}, which {desc.ratings.name} lacks"
                              f"{_hint(column, have)} (its columns: {', '.join(have[:30])})")


def _ratings_table(desc: Description) -> pd.DataFrame:
    """The ratings table, read with the description's text and number columns; every named column present."""
    strings = [desc.id, *desc.group_columns(), *desc.media.values()]
    table = read_table(desc.ratings, what="ratings table", strings=strings, numbers=list(desc.targets))
    _check_columns(desc, table)
    return table


def _resolve(desc: Description, cell: str) -> Path:
    p = Path(cell).expanduser()
    return p if p.is_absolute() else desc.root / p


def media_inventory(desc: Description) -> dict[str, tuple[int, int, list[tuple[str, str]]]]:
    """Per media kind: files found, items without one, and the missing ones as ``(id, path as written)``.

    Raises
    ------
    ConfigError, DataError
        As :func:`load_described` for the ratings table and its columns.
    """
    table = _ratings_table(desc)
    ids = [s or "" for s in _text(table[desc.id])]
    out = {}
    for kind, column in desc.media.items():
        cells = _text(table[column])
        missing = [(sid, c) for sid, c in zip(ids, cells, strict=True) if c is not None and not _resolve(desc, c).is_file()]
        empty = sum(c is None for c in cells)
        out[kind] = (len(cells) - empty - len(missing), empty, missing)
    return out


def _media_paths(desc: Description, table: pd.DataFrame, ids: list[str]) -> dict[str, list[str | None]]:
    """Each declared media column as absolute paths (None where the item lacks it); every named file exists."""
    out: dict[str, list[str | None]] = {}
    for kind, column in desc.media.items():
        paths, missing = [], []
        for sid, cell in zip(ids, _text(table[column]), strict=True):
            if cell is None:
                paths.append(None)
                continue
            p = _resolve(desc, cell)
            if not p.is_file():
                missing.append((sid, cell))
            paths.append(os.path.abspath(p))
        if missing:
            sid, cell = missing[0]
            raise DataError(f"{desc.path}: {len(missing)} {kind} file(s) of [media] {kind} = {column!r} do not exist, "
                            f"e.g. item {sid!r}: {cell!r} (relative paths start at {str(desc.root)!r})")
        out[MEDIA_COLUMNS[kind]] = paths
    return out


def _reference(desc: Description, table: pd.DataFrame, performers: list[str] | None, ids: list[str]) -> np.ndarray:
    n = len(ids)
    if desc.reference_column:
        flags = []
        for sid, v in zip(ids, table[desc.reference_column], strict=True):
            text = str(v).strip().lower() if v is not None and not (isinstance(v, float) and math.isnan(v)) else ""
            if isinstance(v, bool | np.bool_) or text in ("true", "false", "1", "0", "yes", "no", ""):
                flags.append(bool(v) if isinstance(v, bool | np.bool_) else text in ("true", "1", "yes"))
            else:
                raise DataError(f"{desc.path}: [reference] column {desc.reference_column!r}: item {sid!r} holds "
                                f"{v!r:.40}; use true/false")
        return np.asarray(flags, dtype=bool)
    if desc.reference_performers:
        known = set(performers or [])
        unknown = [v for v in desc.reference_performers if v not in known]
        if unknown:
            raise ConfigError(f"{desc.path}: [reference] performers names {unknown[0]!r}, which is no value of the "
                              f"performer column {desc.roles['performer']!r}{_hint(unknown[0], sorted(known))}")
        return np.isin(np.asarray(performers, dtype=object), list(desc.reference_performers))
    return np.zeros(n, dtype=bool)


def load_described(path: str | os.PathLike | Description, *, include_reference: bool = True) -> Dataset:
    """Load a described dataset into the dataset protocol (:class:`benchmark.dataset.Dataset`).

    Parameters
    ----------
    path : path or Description
        A ``dataset.toml``, its folder, or a :func:`read_description` result.
    include_reference : bool
        Keep the reference (deadpan) items; False drops them (``--exclude-score``).

    Returns
    -------
    Dataset
        Sorted by ``sample_id``; ``meta`` holds the protocol's columns (:mod:`benchmark.dataset`).

    Raises
    ------
    ConfigError
        The description is malformed or names a column the table lacks.
    DataError
        An unreadable table, a missing or repeated id, a rating that is not a number or lies outside the
        declared range, a missing group value, a group column with one value, a missing media file, an item
        with neither MIDI nor audio, a missing rater table.
    """
    desc = path if isinstance(path, Description) else read_description(path)
    where = f"{desc.path} ({desc.ratings.name})"
    table = _ratings_table(desc)
    ids_raw = _text(table[desc.id])
    if None in ids_raw:
        raise DataError(f"{where}: row {ids_raw.index(None)} has no id in column {desc.id!r}")
    first: dict[str, int] = {}
    for i, sid in enumerate(ids_raw):
        if sid in first:
            raise DataError(f"{where}: the id {sid!r} appears twice (rows {first[sid]} and {i}, after stripping "
                            "whitespace); every item needs its own id")
        first[sid] = i
    ids = list(ids_raw)
    y = np.column_stack([_numbers(table, t, ids, where) for t in desc.targets])
    for j, (t, (lo, hi)) in enumerate(zip(desc.targets, desc.ranges, strict=True)):
        bad = np.flatnonzero(~((y[:, j] >= lo) & (y[:, j] <= hi)))  # NaN fails both
        if bad.size:
            v, sid = y[bad[0], j], ids[bad[0]]
            if np.isnan(v):
                raise DataError(f"{where}: item {sid!r} has no rating for {t}; every item needs every target "
                                "(drop the item or the target)")
            raise DataError(f"{where}: item {sid!r} has {t} = {float(v)!r}, outside the declared range [{lo:g}, {hi:g}] "
                            f"([targets] range); {bad.size} value(s) of {t} are outside it")
    meta = pd.DataFrame({"sample_id": ids})
    groups: dict[str, list[str]] = {}
    for column in desc.group_columns():
        values = _text(table[column])
        if None in values:
            i = values.index(None)
            raise DataError(f"{where}: item {ids[i]!r} has no value in the group column {column!r}; every item "
                            "needs one (a split puts it in one group)")
        distinct = set(values)
        if len(distinct) < 2:
            raise DataError(f"{where}: the group column {column!r} has one value ({next(iter(distinct))!r}) for all "
                            f"{len(values)} items; a split over it cannot hold anything out: drop it from [groups] "
                            "or fix the table")
        groups[column] = values
    for role, column in desc.roles.items():
        meta[ROLES[role]] = groups[column]
    for column in desc.group_columns():
        meta[column] = groups[column]
    for column in desc.metadata:
        meta[column] = table[column].to_numpy()
    media = _media_paths(desc, table, ids)
    for column in MEDIA_COLUMNS.values():
        meta[column] = media.get(column, [None] * len(ids))
    lacking = [sid for sid, m, a in zip(ids, meta["midi_path"], meta["audio_path"], strict=True) if not m and not a]
    if lacking:
        raise DataError(f"{where}: {len(lacking)} item(s) have neither a MIDI nor an audio file, e.g. {lacking[0]!r}; "
                        "every item needs a performance")
    performer = desc.roles.get("performer")
    meta["reference"] = _reference(desc, table, groups.get(performer) if performer else None, ids)
    order = sorted(range(len(ids)), key=ids.__getitem__)
    meta = meta.iloc[order].reset_index(drop=True)
    y = y[order]
    identity = {"description_sha256": desc.sha256, "ratings_sha256": file_sha256(desc.ratings),
                "raters_sha256": None}
    if desc.raters is not None:
        if not desc.raters.file.is_file():
            raise DataError(f"{desc.path}: [raters] file {str(desc.raters.file)!r} does not exist")
        identity["raters_sha256"] = file_sha256(desc.raters.file)
    group_columns = tuple(dict.fromkeys([*(ROLES[r] for r in desc.roles), *desc.group_columns()]))
    ds = Dataset(root=desc.root, meta=meta, y=y, y_std=None, target_names=desc.targets, unlabelled=[],
                 include_score=include_reference, name=desc.name, description=desc.path,
                 target_ranges=desc.ranges, group_columns=group_columns, identity_parts=identity)
    if not include_reference:
        ds = ds.subset(~meta["reference"].to_numpy(dtype=bool))
    logger.info("loaded %d items of dataset %r from %s", ds.n_samples, desc.name, desc.path)
    return ds


def open_dataset(dataset: str | os.PathLike | None = None, data_dir: str | os.PathLike | None = None, *,
                 include_score: bool = True) -> Dataset:
    """The dataset of a command: a described one (``dataset``: a ``dataset.toml`` or its folder), else PercePiano.

    Parameters
    ----------
    dataset : path, optional
        See :func:`load_described`.
    data_dir : path, optional
        PercePiano's folder (:func:`benchmark.dataset.resolve_data_dir`); not with ``dataset``.
    include_score : bool
        Keep the reference (deadpan) items.

    Raises
    ------
    ConfigError
        Both ``dataset`` and ``data_dir`` given, or a bad description.
    DataError
        Missing or malformed data.
    """
    if dataset is None:
        return load_dataset(data_dir, include_score=include_score)
    if data_dir is not None:
        raise ConfigError(f"--dataset {str(dataset)!r} and --data-dir {str(data_dir)!r} both name the data; "
                          "--data-dir is PercePiano's folder, --dataset any described dataset: pass one")
    return load_described(dataset, include_reference=include_score)
