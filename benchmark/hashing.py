"""Content hashes of files, shared by the dataset fingerprint and the feature cache."""

from __future__ import annotations

import hashlib
import os
from functools import lru_cache
from pathlib import Path


@lru_cache(maxsize=65536)
def _sha256_cached(path: str, size: int, mtime_ns: int) -> str:
    # The hash is of the content; (size, mtime) only decides whether this process
    # may reuse a hash it already computed for the same unchanged file.
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def file_sha256(path: str | os.PathLike) -> str:
    """sha256 of a file's bytes (computed once per process for an unchanged file)."""
    st = os.stat(path)
    return _sha256_cached(str(Path(path).resolve()), st.st_size, st.st_mtime_ns)
