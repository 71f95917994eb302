"""The CPU budget of a command: how many worker processes ``--jobs`` means, and how many threads each gets.

In ``benchmark``'s core: the backends, the run configuration, the feature build and pre-training all size
their pools with it, and none of them needs the engine for it.
"""

from __future__ import annotations

import os

from benchmark.errors import ConfigError


def n_workers(jobs: int | None) -> int:
    """``--jobs`` as a worker count (-1: every core)."""
    cpus = os.cpu_count() or 1
    return cpus if jobs is None or jobs < 0 else max(1, int(jobs))


def check_jobs(jobs: int | None) -> None:
    """Refuse a worker count that is neither -1 (every core) nor positive.

    Raises
    ------
    ConfigError
    """
    if jobs is not None and (isinstance(jobs, bool) or not isinstance(jobs, int) or (jobs < 1 and jobs != -1)):
        raise ConfigError(f"--jobs {jobs!r}: use a positive number of workers, or -1 for every core")


def threads_per_worker(workers: int) -> int:
    """BLAS/OpenMP threads per worker so that workers x threads <= cores."""
    return max(1, (os.cpu_count() or 1) // max(1, workers))
