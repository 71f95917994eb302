"""Content-addressed on-disk cache shared by every feature stage.

A key is the sha256 of canonical JSON holding the stage name, the extractor's
VERSION, its parameters and the sha256 of every input file's bytes (never a
path or an mtime), so a changed file, extractor or parameter makes a new key and
nothing stale is served. Entries are ``.npz`` files written to a temporary file
in the same folder and renamed into place, so a crash never leaves half an entry
and two runs can share one cache (the last rename wins; both wrote the same
bytes). Each entry stores a checksum of its arrays and its own key: a corrupt
entry, or a valid entry found under another key's name, is detected, deleted
and rebuilt, never served.

One dtype policy for every stage: :meth:`Cache.fetch` computes on a miss,
stores, and returns the arrays *decoded from the bytes it stored*, so a miss
returns exactly (bit for bit, dtype included) what every later hit returns,
and results never depend on the cache's history.
"""

from __future__ import annotations

import errno
import hashlib
import io
import json
import logging
import os
import re
import tempfile
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from benchmark.errors import CacheError
from benchmark.hashing import file_sha256

logger = logging.getLogger(__name__)

DEFAULT_CACHE_DIR = ".cache/percepiano-bench"
_CHECKSUM = "__checksum__"
#: The entry's own key; entries written before it was recorded lack it and are trusted on their checksum.
_KEY = "__key__"
_KEY_RE = re.compile(r"^[0-9a-f]{64}$")
_STAGE_RE = re.compile(r"^[a-z][a-z0-9_]*$")


def resolve_cache_dir(cache_dir: str | os.PathLike | None = None) -> Path:
    """``cache_dir``, else ``$PERCEPIANO_CACHE``, else ``./.cache/percepiano-bench``."""
    if cache_dir is not None:
        return Path(cache_dir).expanduser()
    return Path(os.environ.get("PERCEPIANO_CACHE", DEFAULT_CACHE_DIR)).expanduser()


def make_key(stage: str, version: str, params: Mapping[str, Any], inputs: list[str | os.PathLike]) -> str:
    """Cache key: sha256 of canonical JSON of stage, version, params and input hashes."""
    doc = {
        "stage": stage,
        "version": str(version),
        "params": dict(params),
        "inputs": [file_sha256(p) for p in inputs],
    }
    blob = json.dumps(doc, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()


def _checksum(arrays: Mapping[str, np.ndarray]) -> str:
    h = hashlib.sha256()
    for name in sorted(arrays):
        a = np.ascontiguousarray(arrays[name])
        h.update(name.encode())
        h.update(str(a.dtype).encode())
        h.update(str(a.shape).encode())
        h.update(a.tobytes())
    return h.hexdigest()


class Cache:
    """A folder of content-addressed ``.npz`` entries, one sub-folder per stage.

    Parameters
    ----------
    root : path
        Cache folder (created on first write).
    """

    def __init__(self, root: str | os.PathLike) -> None:
        self.root = Path(root)

    def path(self, stage: str, key: str) -> Path:
        return self.root / stage / key[:2] / f"{key}.npz"

    def get(self, stage: str, key: str) -> dict[str, np.ndarray] | None:
        """Return the arrays stored under ``key``, or None if absent or corrupt.

        A corrupt entry (unreadable, or checksum mismatch) is deleted so the
        caller rebuilds it.
        """
        path = self.path(stage, key)
        try:
            arrays = _decode(path)
        except FileNotFoundError:
            return None
        except Exception as exc:  # zipfile/ValueError/OSError: any unreadable entry
            logger.warning("cache entry %s is corrupt (%s); rebuilding it", path, exc)
            self._discard(path)
            return None
        stored = arrays.pop(_CHECKSUM, None)
        own_key = arrays.pop(_KEY, None)
        if stored is None or str(stored) != _checksum(arrays):
            logger.warning("cache entry %s fails its checksum; rebuilding it", path)
            self._discard(path)
            return None
        if own_key is not None and str(own_key) != key:
            logger.warning("cache entry %s holds the entry of key %s (a moved file); rebuilding it",
                           path, str(own_key)[:12])
            self._discard(path)
            return None
        return arrays

    def fetch(self, stage: str, key: str, compute: Callable[[], Mapping[str, np.ndarray]]) -> dict[str, np.ndarray]:
        """The entry under ``key``; on a miss, ``compute()`` it, store it and return what was stored.

        What a miss returns is decoded from the very bytes written to the
        cache, so it equals what every later hit returns, bit for bit and
        dtype for dtype (e.g. audio computed in float32 and stored in float16
        comes back as float16 either way).

        Raises
        ------
        CacheError
            The entry cannot be written (see :meth:`put`).
        """
        hit = self.get(stage, key)
        if hit is not None:
            return hit
        blob = self._write(stage, key, compute())
        arrays = _decode(io.BytesIO(blob))
        arrays.pop(_CHECKSUM, None)
        arrays.pop(_KEY, None)
        return arrays

    def put(self, stage: str, key: str, arrays: Mapping[str, np.ndarray]) -> Path:
        """Store ``arrays`` under ``key`` atomically.

        Raises
        ------
        CacheError
            When the cache folder cannot be written (permissions, disk full);
            no partial entry is left behind.
        """
        self._write(stage, key, arrays)
        return self.path(stage, key)

    def _write(self, stage: str, key: str, arrays: Mapping[str, np.ndarray]) -> bytes:
        """Encode ``arrays`` with their checksum and key, write them atomically; return the bytes written."""
        if not _STAGE_RE.match(stage) or not _KEY_RE.match(key):
            raise CacheError(f"invalid cache stage {stage!r} or key {key!r}")
        path = self.path(stage, key)
        payload = {k: np.asarray(v) for k, v in arrays.items()}
        payload[_CHECKSUM] = np.asarray(_checksum(payload))
        payload[_KEY] = np.asarray(key)
        buf = io.BytesIO()
        np.savez(buf, **payload)
        blob = buf.getvalue()
        tmp = None
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".npz")
            with os.fdopen(fd, "wb") as fh:
                fh.write(blob)
            os.replace(tmp, path)
            tmp = None
        except OSError as exc:
            reason = "disk is full" if exc.errno == errno.ENOSPC else exc.strerror or str(exc)
            raise CacheError(
                f"cannot write cache entry under {str(self.root)!r}: {reason}; "
                "free space, fix permissions or pass --cache-dir"
            ) from None
        finally:
            if tmp is not None:
                self._discard(Path(tmp))
        return blob

    @staticmethod
    def _discard(path: Path) -> None:
        try:
            path.unlink()
        except OSError:
            pass

    def entries(self, stage: str) -> Iterable[Path]:
        """Files of ``stage`` this cache wrote: ``<stage>/<k[:2]>/<k>.npz`` for a sha256 ``k``, and temporary
        files a killed writer left there; nothing else under the folder is ever listed (or removed)."""
        stage_dir = self.root / stage
        if not stage_dir.is_dir():
            return
        for sub in sorted(stage_dir.iterdir()):
            if not (sub.is_dir() and re.fullmatch(r"[0-9a-f]{2}", sub.name)):
                continue
            for f in sorted(sub.iterdir()):
                key = f.name[: -len(".npz")] if f.name.endswith(".npz") else ""
                own = _KEY_RE.match(key) and key[:2] == sub.name
                if f.is_file() and (own or (f.name.startswith(".tmp-") and f.name.endswith(".npz"))):
                    yield f

    def stages(self) -> list[str]:
        """Stage folders present in the cache (names a stage could have; other folders are not ours)."""
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir() if p.is_dir() and _STAGE_RE.match(p.name))

    def info(self) -> list[dict[str, Any]]:
        """One dict per stage: number of entries and bytes on disk."""
        rows = []
        for stage in self.stages():
            files = [f for f in self.entries(stage) if not f.name.startswith(".tmp-")]
            if files:
                rows.append({"stage": stage, "entries": len(files), "bytes": sum(f.stat().st_size for f in files)})
        return rows

    def clear(self, stages: Iterable[str]) -> int:
        """Delete the entries of ``stages`` (and their leftover temporary files); return how many entries.

        Only files named like this cache's own entries are removed, so a cache
        folder that also holds other files (or is pointed at the wrong folder)
        loses nothing else.

        Raises
        ------
        CacheError
            A stage name that is not a plain name (``..``, ``a/b``).
        """
        stages = [stages] if isinstance(stages, str) else list(stages)
        bad = [s for s in stages if not _STAGE_RE.match(s)]
        if bad:
            raise CacheError(f"invalid cache stage {bad[0]!r}; stages are plain names such as midi, audio, render")
        n = 0
        for stage in stages:
            for f in list(self.entries(stage)):
                self._discard(f)
                n += not f.name.startswith(".tmp-")
        return n


def _decode(source) -> dict[str, np.ndarray]:
    with np.load(source, allow_pickle=False) as npz:
        return {k: npz[k] for k in npz.files}
