"""Where pre-trained SSAST checkpoints are found and what they hold, without importing torch.

A checkpoint is a cache entry of stage ``ssast_ckpt`` (see :mod:`models.ssast`);
``benchmark pretrain`` with default settings also writes the *pointer*
``ssast_ckpt/default-<input>.json`` naming the default checkpoint's key. The
runner resolves a model's ``init`` here when a run is configured (a missing
default checkpoint stops the run before it starts, with the ``benchmark
pretrain`` command), and the models resolve it again when they load it.
:func:`read_checkpoint_arrays` reads a checkpoint file (its weights as numpy
arrays, the input scale and the manifest): :mod:`models.ssast` turns the
weights into torch tensors, :mod:`models.pretraining` reads only the manifest.
"""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path

import numpy as np

from benchmark.errors import ConfigError
from features.cache import Cache, resolve_cache_dir

#: Cache stage of the pre-trained checkpoints (apart from the frozen-encoder embeddings).
CHECKPOINT_STAGE = "ssast_ckpt"
#: Where caches made before the split kept checkpoints and their default pointers: still read, never written.
LEGACY_STAGE = "ssast"
#: Prefix of the encoder's weights inside a checkpoint entry.
PARAM_PREFIX = "param/"


def default_pointer(cache_root, kind: str) -> Path:
    """The pointer file naming the default checkpoint of ``kind`` (mel or roll) input."""
    return Path(cache_root) / CHECKPOINT_STAGE / f"default-{kind}.json"


def write_pointer(cache_root, kind: str, key: str, corpus: str) -> Path:
    """Make ``key`` the default checkpoint of ``kind`` input: written to a temporary name and renamed.

    A reader (a run starting while ``pretrain`` finishes) sees the old pointer
    or the new one, never half a file.
    """
    ptr = default_pointer(cache_root, kind)
    ptr.parent.mkdir(parents=True, exist_ok=True)
    tmp = ptr.with_name(f"{ptr.name}.tmp-{uuid.uuid4().hex}")
    try:
        tmp.write_text(json.dumps({"key": key, "corpus": corpus}, indent=1) + "\n")
        os.replace(tmp, ptr)
    finally:
        tmp.unlink(missing_ok=True)
    return ptr


def read_pointer(ptr: Path) -> str:
    """The checkpoint key a pointer file names.

    Raises
    ------
    ConfigError
        The file is not JSON with a 64-hex-digit ``key`` (its path and how to repair it).
    """
    try:
        key = json.loads(ptr.read_text(encoding="utf-8"))["key"]
    except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else f"{type(exc).__name__}: {exc}"
        raise ConfigError(f"default-checkpoint pointer {str(ptr)!r} is unreadable ({reason}); delete it and run "
                          "'benchmark pretrain' again to rewrite it") from None
    if not (isinstance(key, str) and len(key) == 64 and all(c in "0123456789abcdef" for c in key)):
        raise ConfigError(f"default-checkpoint pointer {str(ptr)!r} names no checkpoint key ({key!r}); delete it "
                          "and run 'benchmark pretrain' again to rewrite it")
    return key


def resolve_checkpoint(init: str, kind: str, cache_root=None) -> Path:
    """The checkpoint file ``init`` names: a path to an ``.npz``, a cache key, or ``default``.

    Raises
    ------
    ConfigError
        No such checkpoint, or a damaged pointer (the message says how to make or repair it).
    """
    root = Path(cache_root) if cache_root else resolve_cache_dir()
    cache = Cache(root)
    if init == "default":
        ptr = default_pointer(root, kind)
        legacy = root / LEGACY_STAGE / ptr.name
        if not ptr.is_file() and legacy.is_file():
            ptr = legacy  # a cache made before checkpoints had their own stage
        if not ptr.is_file():
            raise ConfigError(f"no default SSAST checkpoint for {kind!r} input in the cache {str(root)!r}; "
                              f"make it first with: benchmark pretrain --input {kind}"
                              + (f" --cache-dir {root}" if cache_root else ""))
        key = read_pointer(ptr)
        found = _in_cache(cache, key)
        if found is None:
            raise ConfigError(f"the default SSAST checkpoint for {kind!r} input ({key[:12]}, named by {ptr}) is "
                              f"not in the cache; make it again with: benchmark pretrain --input {kind}"
                              + (f" --cache-dir {root}" if cache_root else ""))
        return found
    path = Path(init).expanduser()
    if path.suffix == ".npz":
        if not path.is_file():
            raise ConfigError(f"checkpoint {str(path)!r} does not exist; make one with 'benchmark pretrain'")
        return path
    if len(init) == 64 and all(c in "0123456789abcdef" for c in init):
        found = _in_cache(cache, init)
        if found is not None:
            return found
    raise ConfigError(f"init={init!r} is neither a checkpoint file (.npz) nor a key of a checkpoint in "
                      f"{str(root)!r}; make one with 'benchmark pretrain' (it prints the path)")


def _in_cache(cache: Cache, key: str) -> Path | None:
    for stage in (CHECKPOINT_STAGE, LEGACY_STAGE):
        p = cache.path(stage, key)
        if p.is_file() and (stage == CHECKPOINT_STAGE or is_checkpoint(p)):
            return p
    return None


def is_checkpoint(path: Path) -> bool:
    """Whether a file in the legacy stage is a checkpoint (not an embedding entry under the same key)."""
    entry = Cache(path.parents[2]).get(path.parents[1].name, path.stem)
    return entry is not None and "manifest" in entry and any(k.startswith(PARAM_PREFIX) for k in entry)


def read_checkpoint_arrays(path) -> tuple[dict[str, np.ndarray], np.ndarray, dict]:
    """(encoder weights as arrays, input norm, manifest) of a checkpoint file.

    Raises
    ------
    ConfigError
        The file is unreadable or fails its checksum.
    """
    path = Path(path)
    # The stage folder the file lies in: a checkpoint copied from an older cache (stage 'ssast') still reads.
    entry = Cache(path.parents[2]).get(path.parents[1].name, path.stem)
    if entry is None or "manifest" not in entry:
        raise ConfigError(f"checkpoint {str(path)!r} is unreadable or corrupt; pre-train again")
    weights = {k[len(PARAM_PREFIX):]: np.array(v) for k, v in entry.items() if k.startswith(PARAM_PREFIX)}
    return weights, entry["norm"], json.loads(str(entry["manifest"]))
