"""An exclusive lock on a file that says who holds it (``flock``; the kernel frees it when the holder dies).

:class:`HeldLock` takes ``fcntl.flock(LOCK_EX | LOCK_NB)`` on a file and
writes the holder's pid, host, command and start time into it. The kernel
releases a ``flock`` when its file is closed, so also when the process exits,
however it dies (``kill -9`` included); the file then keeps its last holder's
details, which the next holder overwrites. A process that cannot take the
lock reads those details and says who holds it.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
from pathlib import Path

from benchmark.errors import ConfigError
from benchmark.provenance import now


class HeldLock:
    """A held lock; :meth:`release` (or the process ending) lets the next one in."""

    def __init__(self, fh) -> None:
        self._fh = fh

    @classmethod
    def acquire(cls, path: Path, command: list[str] | None = None, *, what: str, why: str = "") -> HeldLock:
        """Lock ``path`` for this process (at once, or never).

        Raises
        ------
        ConfigError
            Another process holds it: ``what`` is in use by pid P on HOST since T (COMMAND); ``why`` ends it.
        """

        fh = open(path, "a+")  # never truncated before the lock is ours: the holder's details stay readable
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            fh.seek(0)
            holder = fh.read()
            fh.close()
            raise ConfigError(f"{what} is in use by {describe_holder(holder)}; wait for it to finish or stop it, "
                              f"then rerun" + (f" ({why})" if why else "")) from None
        fh.seek(0)
        fh.truncate()
        fh.write(json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "since": now(),
                             "command": [str(c) for c in (command or [])]}))
        fh.flush()
        return cls(fh)

    def release(self) -> None:
        if self._fh is not None:
            self._fh.close()  # closing the file releases the flock
            self._fh = None


def describe_holder(text: str) -> str:
    """``pid P on HOST since T (COMMAND)`` from a lock file's contents, or ``another process``."""
    try:
        h = json.loads(text)
        command = " ".join(map(str, h.get("command") or [])) or "no command recorded"
        return f"pid {h.get('pid')} on {h.get('host')} since {h.get('since')} ({command})"
    except (ValueError, AttributeError):
        return "another process"
