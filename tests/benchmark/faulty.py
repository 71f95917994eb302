"""Models whose first fit kills its own process (a Dask worker dying mid-job) or cancels its own Dask task.

Importable by name (``tests.benchmark.faulty``) so that Dask worker processes
unpickle it; registering happens on import, in the test and in each worker.
"""

import os
import signal
from pathlib import Path

from models.classical import MeanModel
from models.registry import MODELS


class _FailsOnce(MeanModel):
    """The mean baseline, except that the first fit anywhere (no ``marker`` file yet) runs :meth:`_fail` first."""

    def __init__(self, marker: str = "", random_state: int | None = None) -> None:
        self.marker = marker
        self.random_state = random_state

    def fit(self, X, y, *, groups=None):
        marker = Path(self.marker)
        if not marker.exists():
            self._fail(marker)
        return super().fit(X, y, groups=groups)


class KillsWorkerOnce(_FailsOnce):
    """The first fit anywhere SIGKILLs the process running it."""

    def _fail(self, marker: Path) -> None:
        marker.write_text(str(os.getpid()))
        os.kill(os.getpid(), signal.SIGKILL)


class CancelsItselfOnce(_FailsOnce):
    """The first fit anywhere has the scheduler forget its own task.

    The driver's future of that job is then cancelled ("already forgotten" or "cancelled by ..."), as when a
    scheduler drops a job whose inputs were lost; the backend must submit the job again.
    """

    def _fail(self, marker: Path) -> None:
        from distributed import Future, get_client, get_worker

        key = get_worker().get_current_task()
        marker.write_text(key)
        client = get_client()
        client.cancel([Future(key, client)], force=True)


for _name, _cls in (("kills_worker_once", KillsWorkerOnce), ("cancels_itself_once", CancelsItselfOnce)):
    if _name not in MODELS:
        MODELS.register(_name, inputs=("midi",), tags=("test",))(_cls)
