"""Content-addressed on-disk cache shared by every feature stage.

A key is the sha256 of canonical JSON holding the stage name, the extractor's
VERSION, its parameters and the sha256 of every input file's bytes (never a
path or an mtime), so a changed file, extractor or parameter makes a new key and
nothing stale is served. Entries are ``.npz`` files written to a temporary file
in the same folder and renamed into place, so a crash never leaves half an entry
and two runs can share one cache (the last rename wins; both wrote the same
bytes). Each entry stores a checksum of its arrays: a corrupt entry is detected,
deleted and rebuilt, never served.
"""

from __future__ import annotations

import errno
import hashlib
import io
import json
import logging
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from benchmark.errors import CacheError
from benchmark.hashing import file_sha256

logger = logging.getLogger(__name__)

DEFAULT_CACHE_DIR = ".cache/percepiano-bench"
_CHECKSUM = "__checksum__"


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
            with np.load(path, allow_pickle=False) as npz:
                arrays = {k: npz[k] for k in npz.files}
        except FileNotFoundError:
            return None
        except Exception as exc:  # zipfile/ValueError/OSError: any unreadable entry
            logger.warning("cache entry %s is corrupt (%s); rebuilding it", path, exc)
            self._discard(path)
            return None
        stored = arrays.pop(_CHECKSUM, None)
        if stored is None or str(stored) != _checksum(arrays):
            logger.warning("cache entry %s fails its checksum; rebuilding it", path)
            self._discard(path)
            return None
        return arrays

    def put(self, stage: str, key: str, arrays: Mapping[str, np.ndarray]) -> Path:
        """Store ``arrays`` under ``key`` atomically.

        Raises
        ------
        CacheError
            When the cache folder cannot be written (permissions, disk full);
            no partial entry is left behind.
        """
        path = self.path(stage, key)
        payload = {k: np.asarray(v) for k, v in arrays.items()}
        payload[_CHECKSUM] = np.asarray(_checksum(payload))
        buf = io.BytesIO()
        np.savez(buf, **payload)
        tmp = None
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".npz")
            with os.fdopen(fd, "wb") as fh:
                fh.write(buf.getbuffer())
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
        return path

    @staticmethod
    def _discard(path: Path) -> None:
        try:
            path.unlink()
        except OSError:
            pass

    def info(self) -> list[dict[str, Any]]:
        """One dict per stage: number of entries and bytes on disk."""
        rows = []
        if not self.root.is_dir():
            return rows
        for stage_dir in sorted(p for p in self.root.iterdir() if p.is_dir()):
            files = [f for f in stage_dir.rglob("*.npz") if not f.name.startswith(".tmp-")]
            rows.append({"stage": stage_dir.name, "entries": len(files), "bytes": sum(f.stat().st_size for f in files)})
        return rows

    def clear(self, stage: str | None = None) -> int:
        """Delete every entry (of one stage, if given); return how many were removed."""
        dirs = [self.root / stage] if stage else [p for p in self.root.iterdir() if p.is_dir()] if self.root.is_dir() else []
        n = 0
        for d in dirs:
            if not d.is_dir():
                continue
            for f in d.rglob("*.npz"):
                self._discard(f)
                n += 1
        return n
