"""Content hashes of files, shared by the dataset fingerprint and the feature cache.

Also the one check that every reader of outside files (MIDI, labels, score MIDI) makes
before opening one: :func:`regular_stat`. Opening a FIFO for reading blocks until some
writer appears (forever, on a dataset), and a character device may never end, so
anything but a regular file is refused by ``os.stat`` before it is opened.
"""

from __future__ import annotations

import errno
import hashlib
import os
import stat
from functools import lru_cache
from pathlib import Path

_KINDS = ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISSOCK, "a socket"),
          (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"))


class NotRegularFileError(OSError):
    """A path that names a directory, FIFO, socket or device where a regular file was expected.

    An ``OSError`` (``errno`` EISDIR for a directory, else EINVAL) with ``filename`` set, so every
    caller that treats an unreadable input as bad input treats this one the same way.
    """


def regular_stat(path: str | os.PathLike) -> os.stat_result:
    """``os.stat(path)`` (following links), refusing anything but a regular file before anyone opens it.

    Raises
    ------
    FileNotFoundError, PermissionError, OSError
        From ``os.stat``.
    NotRegularFileError
        ``path`` is a directory, FIFO, socket or device.
    """
    st = os.stat(path)
    if not stat.S_ISREG(st.st_mode):
        kind = next((name for test, name in _KINDS if test(st.st_mode)), "not a regular file")
        code = errno.EISDIR if stat.S_ISDIR(st.st_mode) else errno.EINVAL
        raise NotRegularFileError(code, f"is {kind}, not a regular file", str(path))
    return st


def read_regular_bytes(path: str | os.PathLike, what: str, limit: int, error: type[Exception] | None = None, *,
                       limit_name: str | None = None, missing: str = "does not exist", note: str = "") -> bytes:
    """The bytes of a regular file of at most ``limit`` bytes, checked before reading (a FIFO would block
    the read forever; a huge file would fill memory).

    Parameters
    ----------
    path : path
    what : str
        What the file is, for messages (``"rater file"``).
    limit : int
        Most bytes accepted.
    error : exception class, optional
        Raised with one line naming the file and what to do (default :class:`benchmark.errors.DataError`).
    limit_name : str, optional
        The constant that sets ``limit``, named in the message (``MAX_LABELS_BYTES``).
    missing : str
        What the message says of a file that does not exist (after its path).
    note : str
        Added to the message of a file over the limit (what such files usually weigh).
    """
    from benchmark.errors import DataError

    error = error or DataError
    cap = f"the limit {limit_name}={limit / 2**20:g} MiB" if limit_name else f"the limit of {limit / 2**20:g} MiB"
    tail = f"; {note}" if note else ""
    try:
        st = regular_stat(path)
    except FileNotFoundError:
        raise error(f"{what} {str(path)!r} {missing}") from None
    except NotRegularFileError as exc:
        raise error(f"{what} {str(path)!r} is not a regular file ({exc.strerror.split(',')[0]})") from None
    except OSError as exc:
        raise error(f"{what} {str(path)!r} cannot be read: {exc.strerror or exc}") from None
    if st.st_size > limit:
        raise error(f"{what} {str(path)!r} is {st.st_size / 2**20:.1f} MiB, over {cap}{tail}")
    try:
        with open(path, "rb") as fh:
            raw = fh.read(limit + 1)  # the file may have grown since the stat
    except OSError as exc:
        raise error(f"{what} {str(path)!r} cannot be read: {exc.strerror or exc}") from None
    if len(raw) > limit:
        raise error(f"{what} {str(path)!r} is over {cap}{tail}")
    return raw


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
    """sha256 of a file's bytes (computed once per process for an unchanged file).

    Raises
    ------
    OSError
        Missing or unreadable; :class:`NotRegularFileError` for anything but a regular file.
    """
    st = regular_stat(path)
    return _sha256_cached(str(Path(path).resolve()), st.st_size, st.st_mtime_ns)
