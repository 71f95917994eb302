"""Tables that cross the harness's boundary: CSV or Parquet chosen by suffix, and their JSON sidecar.

Exported folds and predictions, imported predictions and external feature files are all tables read or
written here, so every format is read one way: CSV floats round-trip exactly (shortest repr on writing, pandas'
correctly rounded parser on reading; tested), identifiers stay text, an unreadable file is one line. A
table's provenance (data sha256, split, fold hash, versions) travels in a sidecar ``<file>.json`` next to
it (:func:`sidecar_path`).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pandas as pd

from benchmark.errors import ConfigError, DataError, OutputError

#: Suffixes of the formats read and written, by kind.
FORMATS = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}


def table_format(path: str | os.PathLike, *, also: tuple[str, ...] = ()) -> str:
    """``csv`` or ``parquet`` (or one of ``also``, e.g. ``npz``) from the file's suffix.

    Raises
    ------
    ConfigError
        Another suffix; the message lists the known ones.
    """
    suffix = Path(path).suffix.lower()
    kind = FORMATS.get(suffix) or (suffix[1:] if suffix[1:] in also else None)
    if kind is None:
        known = ", ".join(sorted({*FORMATS, *(f".{a}" for a in also)}))
        raise ConfigError(f"{path}: unknown table format {suffix or '(no suffix)'!r}; use one of {known}")
    return kind


def read_table(path: str | os.PathLike, *, text_columns: tuple[str, ...] = ("sample_id",)) -> pd.DataFrame:
    """Read a CSV or Parquet table; ``text_columns`` are read as strings (ids never become numbers).

    Raises
    ------
    ConfigError
        A missing file or unknown suffix.
    DataError
        A file that cannot be parsed as its format, or an empty one.
    """
    path = Path(path)
    kind = table_format(path)
    if not path.is_file():
        raise ConfigError(f"{path}: no such file")
    try:
        if kind == "csv":
            frame = pd.read_csv(path, dtype={c: str for c in text_columns})
        else:
            frame = pd.read_parquet(path)
    except Exception as exc:  # pandas and pyarrow raise many types for a damaged file
        raise DataError(f"{path}: cannot be read as {kind} ({type(exc).__name__}: "
                        f"{str(exc).splitlines()[0] if str(exc) else ''}); write it with pandas' to_{kind}") from None
    if not len(frame):
        raise DataError(f"{path}: the table has no rows")
    frame.columns = [str(c) for c in frame.columns]
    for c in text_columns:
        if c in frame.columns and kind != "csv":
            frame[c] = frame[c].map(lambda v: v if v is None or isinstance(v, str) else str(v))
    return frame


def write_table(frame: pd.DataFrame, path: str | os.PathLike) -> Path:
    """Write ``frame`` as CSV or Parquet by ``path``'s suffix (through a temporary file renamed into place).

    Raises
    ------
    ConfigError
        An unknown suffix.
    OutputError
        The file cannot be written.
    """
    path = Path(path)
    kind = table_format(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        if kind == "csv":
            frame.to_csv(tmp, index=False)  # floats as their shortest repr: read back bit for bit
        else:
            frame.to_parquet(tmp, index=False)
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise OutputError(f"cannot write {path}: {exc.strerror or exc}") from None
    return path


def sidecar_path(path: str | os.PathLike) -> Path:
    """The JSON sidecar of a table: ``folds.csv`` -> ``folds.csv.json``."""
    path = Path(path)
    return path.with_name(path.name + ".json")


def write_sidecar(path: str | os.PathLike, meta: dict[str, Any]) -> Path:
    """Write the sidecar of the table at ``path``; return its path."""
    side = sidecar_path(path)
    try:
        side.write_text(json.dumps(meta, indent=2, default=str) + "\n")
    except OSError as exc:
        raise OutputError(f"cannot write {side}: {exc.strerror or exc}") from None
    return side


def read_sidecar(path: str | os.PathLike) -> dict[str, Any] | None:
    """The sidecar of the table at ``path``, or None when there is none.

    Raises
    ------
    DataError
        A sidecar that is not a JSON object.
    """
    side = sidecar_path(path)
    if not side.is_file():
        return None
    try:
        meta = json.loads(side.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataError(f"{side}: not readable JSON ({type(exc).__name__}: {exc}); fix or remove it") from None
    if not isinstance(meta, dict):
        raise DataError(f"{side}: expected a JSON object, got {type(meta).__name__}; fix or remove it")
    return meta
