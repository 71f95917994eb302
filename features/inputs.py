"""The input contract of models that read arrays: a lazy, picklable per-segment view.

Tabular models receive a plain ``ndarray (n_samples, n_features)``. A model
whose registered inputs include an array stage (``mel``, ``roll``; registry
metadata ``kind="array"``) receives a :class:`SegmentInputs` instead:

* ``X.sample_ids``: ``ndarray (n,)`` of segment ids;
* ``X.table``: the tabular block, ``ndarray (n, p)`` of the model's tabular
  feature sets (``p`` may be 0), with ``X.columns`` and ``X.sets``;
* ``X.mel(i)`` / ``X.pianoroll(i)`` / ``X.notes(i)``: segment ``i``'s array, read from the
  feature cache when asked (``X.array(stage, i)`` in general);
* ``len(X)``, ``X.shape == (n, p)`` and ``X[idx]`` (an integer array, a
  slice or a boolean mask gives a new view), so splitters and the runner
  slice it exactly like an array.

The view holds cache keys, never arrays: pickling it to a worker costs a few
kilobytes, and each worker reads the arrays from the (shared) cache itself.
Models never compute keys or read paths; :func:`features.build.build_features`
made sure every entry exists.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np

from benchmark.errors import CacheError
from features.cache import Cache

__all__ = ["ArrayRef", "SegmentInputs"]


@dataclass(frozen=True)
class ArrayRef:
    """Where one array stage's entries live: the cache folder, the stage, one key per segment.

    Attributes
    ----------
    root : str
        Cache folder.
    stage : str
        Cache stage (the feature set's registry name).
    keys : ndarray of str, shape (n_samples,)
    load : callable
        ``load(entry) -> ndarray``, a module-level function (so it pickles).
    """

    root: str
    stage: str
    keys: np.ndarray
    load: Callable[[dict], np.ndarray]

    def take(self, idx) -> ArrayRef:
        return ArrayRef(self.root, self.stage, self.keys[idx], self.load)

    def read(self, i: int) -> np.ndarray:

        entry = Cache(self.root).get(self.stage, str(self.keys[i]))
        if entry is None:
            raise CacheError(f"the {self.stage!r} cache entry {self.keys[i][:12]} is missing from {self.root!r} "
                             "(cleared while the run was going?); rerun, or 'benchmark features build'")
        return self.load(entry)


class SegmentInputs:
    """A lazy per-segment input view: sample ids, a tabular block and cached arrays.

    Parameters
    ----------
    sample_ids : array-like of str, shape (n_samples,)
    table : ndarray, shape (n_samples, n_features)
        The tabular block (``n_features`` may be 0).
    columns : sequence of str
        Names of ``table``'s columns.
    arrays : mapping accessor -> ArrayRef
        E.g. ``{"mel": ArrayRef(...), "pianoroll": ArrayRef(...)}``.
    sets : mapping, optional
        Tabular feature set -> its column names (which columns came from where).

    Raises
    ------
    ValueError
        When the lengths of ``sample_ids``, ``table`` and the arrays' keys differ.
    """

    def __init__(self, sample_ids, table: np.ndarray, columns, arrays: Mapping[str, ArrayRef],
                 sets: Mapping[str, list[str]] | None = None) -> None:
        self.sample_ids = np.asarray(sample_ids)
        self.table = np.asarray(table, dtype=float).reshape(len(self.sample_ids), -1)
        self.columns = list(columns)
        self.arrays = dict(arrays)
        self.sets = dict(sets or {})
        n = len(self.sample_ids)
        if self.table.shape[1] != len(self.columns):
            raise ValueError(f"table has {self.table.shape[1]} columns but {len(self.columns)} names")
        for name, ref in self.arrays.items():
            if len(ref.keys) != n:
                raise ValueError(f"array {name!r} has {len(ref.keys)} keys for {n} samples")

    # --- array-like -------------------------------------------------------
    def __len__(self) -> int:
        return len(self.sample_ids)

    @property
    def shape(self) -> tuple[int, int]:
        """``(n_samples, n_table_features)``: what sklearn's splitters and ``len`` checks read."""
        return self.table.shape

    def __getitem__(self, idx) -> SegmentInputs:
        if isinstance(idx, int | np.integer):
            idx = [int(idx)]
        idx = np.asarray(idx) if not isinstance(idx, slice) else idx
        return SegmentInputs(self.sample_ids[idx], self.table[idx], self.columns,
                             {k: v.take(idx) for k, v in self.arrays.items()}, self.sets)

    def __repr__(self) -> str:
        return (f"SegmentInputs(n_samples={len(self)}, table={self.table.shape[1]} columns, "
                f"arrays={sorted(self.arrays)})")

    # --- arrays -------------------------------------------------------------
    @property
    def cache_root(self) -> str | None:
        """The feature cache the arrays are read from (pre-trained checkpoints live there too)."""
        return next(iter(self.arrays.values())).root if self.arrays else None

    @property
    def kinds(self) -> list[str]:
        """Accessors this view offers (``mel``, ``pianoroll``)."""
        return sorted(self.arrays)

    def array(self, accessor: str, i: int) -> np.ndarray:
        """Segment ``i``'s array of the stage behind ``accessor``.

        Raises
        ------
        KeyError
            The view holds no such array (the model's registered inputs lack the stage).
        CacheError
            The entry vanished from the cache.
        """
        if accessor not in self.arrays:
            raise KeyError(f"these inputs hold no {accessor!r} arrays (have: {', '.join(self.kinds) or 'none'}); "
                           "register the model with that stage among its inputs")
        return self.arrays[accessor].read(int(i))

    def mel(self, i: int) -> np.ndarray:
        """Log-mel spectrogram of segment ``i``: float16 (n_mels, n_frames), dB (see :mod:`features.mel`)."""
        return self.array("mel", i)

    def pianoroll(self, i: int) -> np.ndarray:
        """Piano roll of segment ``i``: uint8 (4, 88, n_frames) (see :mod:`features.roll`)."""
        return self.array("pianoroll", i)

    def notes(self, i: int) -> np.ndarray:
        """Performed notes of segment ``i`` aligned to the score: float32 (n_notes, n_columns) (see
        :mod:`features.notes`)."""
        return self.array("notes", i)
