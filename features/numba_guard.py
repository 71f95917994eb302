"""Give every process its own numba on-disk cache, so parallel audio extraction cannot poison it.

librosa compiles its kernels with ``numba.jit(cache=True)``. numba's cache is
not safe for concurrent writers: two processes that compile *different*
signatures of one function at the same moment both pick the same data-file
name, and the index one of them writes ends up pointing at the other's
machine code; every later process that loads it dies with SIGSEGV (seen with
``features build --features audio --jobs 2`` and with two concurrent runs).

The guard: before librosa is imported, a process claims a *slot*, a numbered
cache folder under :func:`numba_cache_root`, by taking an exclusive
``flock`` on ``slot-N.lock`` that it holds until it exits (the kernel drops
it even after ``kill -9``). A slot is therefore written by one process at a
time, never two, and it keeps its compiled kernels for the next process that
claims it, so compilation (about a minute for librosa's kernels) is paid once
per slot, not once per process; a new slot starts as a copy of the fullest
existing one.
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
import tempfile
from importlib import metadata
from pathlib import Path

logger = logging.getLogger(__name__)

#: Environment variable that overrides the folder holding the slots.
ENV_VAR = "PERCEPIANO_NUMBA_CACHE"
MAX_SLOTS = 256

_claimed: Path | None = None
_lock_fd: int | None = None


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "none"


def numba_cache_root() -> Path:
    """``$PERCEPIANO_NUMBA_CACHE``, else ``$XDG_CACHE_HOME/percepiano-bench/numba`` (``~/.cache/...``),
    in a sub-folder per Python, numba and librosa version."""
    base = os.environ.get(ENV_VAR)
    if base:
        root = Path(base).expanduser()
    else:
        xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
        root = Path(xdg) / "percepiano-bench" / "numba"
    tag = f"py{sys.version_info[0]}{sys.version_info[1]}-numba{_version('numba')}-librosa{_version('librosa')}"
    return root / tag


def _point_numba_at(folder: Path) -> None:
    # numba reads NUMBA_CACHE_DIR when it is imported; setting its config (not os.environ) keeps child
    # processes from inheriting this process's slot: each child claims its own.
    from numba.core import config

    config.CACHE_DIR = str(folder)


def _seed(slot: Path) -> None:
    """Fill an empty slot with a copy of the fullest other slot, so a new slot does not recompile everything.

    Copying a slot its owner is writing is safe: one process writes a slot, each file is renamed into
    place, and an index entry whose data file is not (yet) there is treated by numba as a miss.
    """
    if any(slot.iterdir()):
        return
    others = [p for p in slot.parent.glob("slot-*") if p.is_dir() and p != slot]
    best = max(others, key=lambda p: sum(1 for _ in p.rglob("*.nbi")), default=None)
    if best is None:
        return
    try:
        shutil.copytree(best, slot, dirs_exist_ok=True, ignore=shutil.ignore_patterns("*.tmp*", "tmp*"))
    except (OSError, shutil.Error) as exc:  # a partial copy is only a partial warm start
        logger.debug("could not seed %s from %s: %s", slot, best, exc)


def claimed_slot() -> Path | None:
    """The folder this process's numba cache lives in, if :func:`claim_numba_cache` redirected it."""
    return _claimed


def claim_numba_cache() -> Path | None:
    """Point this process's numba cache at a slot no other live process uses; idempotent.

    Call it before importing librosa. If librosa was already imported (its
    kernels' cache locations are fixed at import), nothing changes and None is
    returned. If no slot folder can be written, a private temporary folder is
    used instead (kernels are then compiled afresh in this process).

    Returns
    -------
    Path or None
        The slot folder.
    """
    global _claimed, _lock_fd
    if _claimed is not None:
        return _claimed
    if "librosa" in sys.modules:
        logger.debug("librosa is already imported; its numba cache location cannot be changed")
        return None
    try:
        import fcntl
    except ImportError:  # not POSIX: fall back to a private folder
        fcntl = None
    root = numba_cache_root()
    try:
        if fcntl is None:
            raise OSError("no flock on this platform")
        root.mkdir(parents=True, exist_ok=True)
        for n in range(MAX_SLOTS):
            fd = os.open(root / f"slot-{n}.lock", os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                continue
            slot = root / f"slot-{n}"
            slot.mkdir(exist_ok=True)
            _lock_fd, _claimed = fd, slot  # the lock is held until this process exits
            _seed(slot)
            break
        else:
            raise OSError(f"all {MAX_SLOTS} slots are in use")
    except OSError as exc:
        _claimed = Path(tempfile.mkdtemp(prefix="percepiano-numba-"))
        logger.warning("numba cache slots under %s are unusable (%s); compiling into %s", root, exc, _claimed)
    _point_numba_at(_claimed)
    logger.debug("numba cache of process %d: %s", os.getpid(), _claimed)
    return _claimed
