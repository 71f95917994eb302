"""External features: ``--features file:PATH``, a table of your own (embeddings computed elsewhere) as a feature set.

The file (CSV, Parquet or NPZ) holds one row per segment: a ``sample_id`` column and numeric feature
columns (an NPZ: arrays ``sample_id`` (n,), ``features`` (n, p) and optionally ``feature_names`` (p,)). The
feature-set registry resolves any name ``file:PATH`` (:func:`resolve_file_set`, like the model registry's
class paths), so it is a feature set like ``midi``: every tabular model reads it, it combines with built-in
sets (``--features midi,file:muq.parquet``), and ``--resume`` and ``compare`` see it by name.

The table enters the run through the cache (stage :data:`STAGE`), keyed by the file's sha256: a changed
file is another entry, never a stale one. Rows are aligned by sample id (:func:`external_table`): a segment
of the run that the file lacks is an error naming it, never a shifted row; rows of other segments are
ignored. Repeated ids, a non-numeric column, an infinite value or a file without feature columns are one
line each, before any job starts. NaN is allowed (models fill it with the training fold's median).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from benchmark.errors import ConfigError, DataError
from benchmark.registry import Spec
from benchmark.tablefile import read_table, table_format
from features.cache import Cache, make_key

#: The name prefix the feature-set registry resolves.
PREFIX = "file:"
#: Cache stage of the parsed tables.
STAGE = "external"
#: Version of the parsing (part of the cache key).
VERSION = "1"


def file_path(name: str) -> Path:
    """The path of a ``file:PATH`` feature-set name (``~`` expanded, not resolved)."""
    return Path(name[len(PREFIX):]).expanduser()


def canonical(name: str) -> str:
    """``file:`` + the absolute path: the name a run records, so a resume from another folder finds the file."""
    return PREFIX + str(file_path(name).resolve()) if is_file_set(name) else name


def is_file_set(name: str) -> bool:
    return isinstance(name, str) and name.startswith(PREFIX)


def resolve_file_set(name: str) -> Spec | None:
    """The feature-set registry's resolver: a spec for ``file:PATH``, None for a name of another form.

    Raises
    ------
    ConfigError
        No path, a path that is not a file, a suffix that is not CSV, Parquet or NPZ.
    """
    if not is_file_set(name):
        return None
    path = file_path(name)
    if not name[len(PREFIX):].strip():
        raise ConfigError(f"feature set {name!r}: give a file after 'file:', e.g. --features file:muq.parquet")
    table_format(path, also=("npz",))
    if not path.is_file():
        raise ConfigError(f"feature set {name!r}: {str(path)!r} is not a file; give a CSV, Parquet or NPZ file with "
                          "sample_id and numeric feature columns (docs/formats.md)")
    return Spec(name=canonical(name), factory=lambda: str(path.resolve()), description=f"features from {path}",
                extra={"kind": "file", "path": str(path.resolve())}, source="file")


def _read(path: Path) -> tuple[np.ndarray, list[str], np.ndarray]:
    """(ids, column names, values) of a features file, checked."""
    where = f"feature file {str(path)!r}"
    if table_format(path, also=("npz",)) == "npz":
        try:
            with np.load(path, allow_pickle=False) as z:
                arrays = {k: z[k] for k in z.files}
        except Exception as exc:  # numpy raises several types for a damaged archive
            raise ConfigError(f"{where}: cannot read it as NPZ ({type(exc).__name__}: {exc})") from None
        missing = [k for k in ("sample_id", "features") if k not in arrays]
        if missing:
            raise ConfigError(f"{where}: no array {', '.join(map(repr, missing))} (arrays: {', '.join(arrays)}); an "
                              "NPZ holds sample_id (n,) and features (n, p), optionally feature_names (p,)")
        ids = np.asarray(arrays["sample_id"]).astype(str)
        values = np.asarray(arrays["features"])
        if values.ndim != 2 or len(values) != len(ids):
            raise ConfigError(f"{where}: features has shape {values.shape} for {len(ids)} sample ids; expected "
                              f"({len(ids)}, p)")
        names = ([str(n) for n in arrays["feature_names"]] if "feature_names" in arrays
                 else [f"f{j}" for j in range(values.shape[1])])
        if len(names) != values.shape[1]:
            raise ConfigError(f"{where}: {len(names)} feature_names for {values.shape[1]} feature columns")
        frame = pd.DataFrame(values, columns=names)
        frame.insert(0, "sample_id", ids)
    else:
        frame = read_table(path)
    if "sample_id" not in frame.columns:
        raise ConfigError(f"{where}: no sample_id column (columns: {', '.join(map(str, frame.columns[:8]))}); "
                          "a features file has sample_id and numeric feature columns")
    cols = [c for c in frame.columns if c != "sample_id"]
    if not cols:
        raise ConfigError(f"{where}: no feature columns besides sample_id")
    ids = frame["sample_id"].astype(str).to_numpy()
    dup = pd.Index(ids).duplicated()
    if dup.any():
        first = int(np.flatnonzero(ids == ids[dup][0])[0]) + 1
        raise ConfigError(f"{where}: sample_id {ids[dup][0]!r} appears more than once (rows {first} and "
                          f"{int(np.flatnonzero(dup)[0]) + 1}); give each segment one row")
    values = np.empty((len(frame), len(cols)))
    for j, c in enumerate(cols):
        col = pd.to_numeric(frame[c], errors="coerce").to_numpy(dtype=float)
        text = np.isnan(col) & frame[c].notna().to_numpy()
        if text.any():
            i = int(np.flatnonzero(text)[0])
            raise ConfigError(f"{where} row {i + 1}: column {c!r} = {frame[c].iloc[i]!r} is not a number; feature "
                              "columns are numeric (leave a value empty for a missing one)")
        if np.isinf(col).any():
            i = int(np.flatnonzero(np.isinf(col))[0])
            raise ConfigError(f"{where} row {i + 1}: column {c!r} is infinite; give finite values (empty for missing)")
        values[:, j] = col
    return ids, [str(c) for c in cols], values


def external_table(name: str, meta: pd.DataFrame, cache: Cache) -> pd.DataFrame:
    """The features of ``file:PATH`` for the segments of ``meta``, in its order, columns ``<file name>:<column>``.

    The parsed file is cached under its sha256 (stage :data:`STAGE`): a hit returns what a miss stored.

    Raises
    ------
    ConfigError
        What :func:`_read` refuses; a segment of ``meta`` the file lacks (the message names it and counts the rest).
    """
    path = file_path(name)
    try:
        key = make_key(STAGE, VERSION, {}, [path])
    except OSError as exc:
        raise ConfigError(f"feature file {str(path)!r}: cannot read it ({exc.strerror or exc})") from None

    def compute() -> dict[str, np.ndarray]:
        ids, cols, values = _read(path)
        return {"ids": ids.astype(str), "columns": np.asarray(cols, dtype=str), "values": values}

    entry = cache.fetch(STAGE, key, compute)
    table = pd.DataFrame(entry["values"], index=pd.Index(entry["ids"].astype(str), name="sample_id"),
                         columns=[f"{path.name}:{c}" for c in entry["columns"].astype(str)])
    wanted = meta["sample_id"].astype(str).to_numpy()
    missing = [s for s in wanted if s not in table.index]
    if missing:
        more = f" and {len(missing) - 1} more" if len(missing) > 1 else ""
        raise ConfigError(f"feature file {str(path)!r} has no row for segment {missing[0]!r}{more}; it needs every "
                          f"segment of the run ({len(wanted)}; benchmark folds export lists them)")
    return table.loc[wanted]


def sha256_of(name: str) -> str:
    """The sha256 of a ``file:PATH`` feature set's file (what a run's manifest records)."""
    from benchmark.hashing import file_sha256

    try:
        return file_sha256(file_path(name))
    except OSError as exc:
        raise DataError(f"feature file {str(file_path(name))!r}: cannot read it ({exc.strerror or exc})") from None

