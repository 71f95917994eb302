"""Models whose first fit kills its own process (a Dask worker dying mid-job) or cancels its own Dask task.

Importable by name (``tests.benchmark.faulty``) so that Dask worker processes
unpickle it; registering happens on import, in the test and in each worker.
"""

import os
import signal
from pathlib import Path

from models.classical import MeanModel
from models.registry import MODELS


class KillsWorkerOnce(MeanModel):
    """The mean baseline, except that the first fit anywhere SIGKILLs the process running it."""

    def __init__(self, marker: str = "", random_state: int | None = None) -> None:
        self.marker = marker
        self.random_state = random_state

    def fit(self, X, y, *, groups=None):
        marker = Path(self.marker)
        if not marker.exists():
            marker.write_text(str(os.getpid()))
            os.kill(os.getpid(), signal.SIGKILL)
        return super().fit(X, y, groups=groups)


if "kills_worker_once" not in MODELS:
    MODELS.register("kills_worker_once", inputs=("midi",), tags=("test",))(KillsWorkerOnce)


class CancelsItselfOnce(MeanModel):
    """The mean baseline, except that the first fit anywhere has the scheduler forget its own task.

    The driver's future of that job is then cancelled ("already forgotten" or "cancelled by ..."), as when a
    scheduler drops a job whose inputs were lost; the backend must submit the job again.
    """

    def __init__(self, marker: str = "", random_state: int | None = None) -> None:
        self.marker = marker
        self.random_state = random_state

    def fit(self, X, y, *, groups=None):
        marker = Path(self.marker)
        if not marker.exists():
            from distributed import Future, get_client, get_worker

            marker.write_text(get_worker().get_current_task())
            client = get_client()
            client.cancel([Future(get_worker().get_current_task(), client)], force=True)
        return super().fit(X, y, groups=groups)


if "cancels_itself_once" not in MODELS:
    MODELS.register("cancels_itself_once", inputs=("midi",), tags=("test",))(CancelsItselfOnce)
