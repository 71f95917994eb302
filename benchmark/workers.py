"""The CPU budget of a command: how many worker processes ``--jobs`` means, and how many threads each gets.

In ``benchmark``'s core: the backends, the run configuration, the feature build and pre-training all size
their pools with it, and none of them needs the engine for it.
"""

from __future__ import annotations

import os

from benchmark.errors import ConfigError


def available_cores() -> int:
    """Cores this process may run on: its CPU affinity (``taskset``, a container's cpuset) where the OS
    reports it, else ``os.cpu_count()``. A run pinned to one core of a shared machine then gives each
    worker one thread instead of spinning two OpenMP threads on one core."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except AttributeError:  # no affinity API (macOS, Windows)
        return os.cpu_count() or 1


def n_workers(jobs: int | None) -> int:
    """``--jobs`` as a worker count (-1: every core)."""
    cpus = available_cores()
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
    return max(1, available_cores() // max(1, workers))
