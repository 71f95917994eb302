"""Execution backends: where the jobs of a run are fitted.

* ``joblib`` (default): local worker processes (loky), in dependency waves.
* ``dask``: an existing Dask cluster (``--scheduler tcp://HOST:PORT``); every
  job is a future, an ensemble's member jobs are passed to it as futures, jobs
  of models tagged ``neural`` ask for the worker resource ``GPU``.
* ``dask-local``: a Dask ``LocalCluster`` on this machine (loopback only).

Every backend calls ``on_result`` in the driver as each job finishes, so the
driver writes it to the store at once; a killed driver loses only running jobs.
Dask is imported only when a Dask backend is chosen (``pip install .[dask]``).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable

from benchmark.errors import ConfigError
from benchmark.execute import JobOutput, RunInputs, run_job
from benchmark.jobs import Job, waves
from benchmark.store import JobKey
from benchmark.workers import check_jobs, n_workers, threads_per_worker

__all__ = ["BACKENDS", "GPU_RESOURCE", "check_jobs", "make_backend", "n_workers", "threads_per_worker"]

logger = logging.getLogger(__name__)

BACKENDS = ("joblib", "dask", "dask-local")
#: Extra Dask worker resource a neural job asks for; start such workers with ``--resources GPU=1``.
GPU_RESOURCE = "GPU"

OnResult = Callable[[Job, JobOutput], None]
LoadDep = Callable[[JobKey], JobOutput]


def needs_gpu(spec) -> bool:
    return "neural" in spec.tags


class JoblibBackend:
    """Local processes via joblib (loky), one dependency wave after another.

    Parameters
    ----------
    jobs : int
        Worker processes (-1: every core).
    """

    name = "joblib"

    def __init__(self, jobs: int = 1) -> None:
        self.workers = n_workers(jobs)

    def run(self, jobs: list[Job], specs: dict, ctx: RunInputs, load_dep: LoadDep, on_result: OnResult) -> None:
        from joblib import Parallel, delayed, parallel_config

        done: dict[JobKey, JobOutput] = {}
        by_key = {j.key: j for j in jobs}
        for wave in waves(jobs):
            calls = []
            for j in wave:
                deps = tuple(done[d] if d in done else load_dep(d) for d in j.deps)
                calls.append(delayed(run_job)(j, specs[j.base], ctx.for_job(j), *deps))
            if self.workers == 1:
                # In-process: no pickling, and a test can patch the fit.
                results = (c[0](*c[1], **c[2]) for c in calls)
            else:
                with parallel_config(backend="loky", inner_max_num_threads=ctx.threads):
                    results = Parallel(n_jobs=self.workers, return_as="generator_unordered")(calls)
            for out in results:
                # Keep only what a later wave reads: members' predictions.
                done[out.key] = out
                on_result(by_key[out.key], out)


class DaskBackend:
    """Jobs as Dask futures on a cluster (``address``) or a ``LocalCluster`` (``address=None``).

    Parameters
    ----------
    address : str, optional
        Scheduler address, e.g. ``tcp://10.0.0.5:8786``; None starts a LocalCluster.
    jobs : int
        Workers of the LocalCluster (-1: every core).
    processes : bool
        LocalCluster workers as processes (True) or threads of this process.
    retries : int
        Extra attempts of a job that raised on its worker (Dask's ``retries``), and resubmissions of a
        job that was lost: cancelled or forgotten by the scheduler, or given up after its workers died
        (``KilledWorker``). Dask itself reschedules a job whose worker died, up to its ``allowed-failures``.
    """

    name = "dask"

    def __init__(self, address: str | None = None, *, jobs: int = 1, processes: bool = True,
                 retries: int = 2) -> None:
        _import_distributed()
        self.address = address
        self.workers = n_workers(jobs)
        self.processes = processes
        self.retries = retries

    def _client(self):
        from distributed import Client, LocalCluster

        if self.address:
            try:
                return Client(self.address, timeout="20s"), None
            except OSError as exc:
                raise ConfigError(f"cannot reach the Dask scheduler at {self.address} ({exc}); start it with "
                                  "'dask scheduler' and pass its address to --scheduler") from None
        # TCP on loopback only, whether workers are processes or threads of this one.
        cluster = LocalCluster(n_workers=self.workers, threads_per_worker=1, processes=self.processes,
                               protocol="tcp://", host="127.0.0.1", dashboard_address=None, scheduler_port=0)
        return Client(cluster), cluster

    def run(self, jobs: list[Job], specs: dict, ctx: RunInputs, load_dep: LoadDep, on_result: OnResult) -> None:
        import uuid

        from distributed import as_completed

        client, cluster = self._client()
        try:
            gpu_jobs = [j for j in jobs if needs_gpu(specs[j.base])]
            if gpu_jobs and self.address:
                have = [w for w in client.scheduler_info()["workers"].values()
                        if w.get("resources", {}).get(GPU_RESOURCE)]
                if not have:
                    raise ConfigError(f"{len(gpu_jobs)} neural job(s) need a worker with the {GPU_RESOURCE} "
                                      f"resource; start one with: dask worker {self.address} --resources "
                                      f"{GPU_RESOURCE}=1")
            if self.address:
                # One job per worker thread: BLAS/OpenMP/torch get one thread each (start workers with
                # --nworkers <cores> --nthreads 1), as the driver cannot see the workers' cores.
                ctx = dataclasses.replace(ctx, threads=1)
            # The inputs as a task, not scattered data: the scheduler recomputes a task whose every copy died
            # with its worker, but forgets scattered data and cancels all that depends on it ("already
            # forgotten"). A unique token keeps this run's keys apart from any other run on the same cluster.
            token = uuid.uuid4().hex[:12]
            ctx_f = client.submit(_identity, ctx, key=f"inputs-{token}", pure=False)
            futures: dict[JobKey, object] = {}
            by_future: dict[str, Job] = {}
            attempts: dict[JobKey, int] = {}
            needed = {d for j in jobs for d in j.deps}
            outputs: dict[JobKey, JobOutput] = {}  # finished members, for a dependent submitted again

            def submit(j: Job):
                # A finished dependency goes by value (its future is released), a running one as its future.
                deps = [outputs[d] if d in outputs else futures[d] if d in futures else load_dep(d) for d in j.deps]
                resources = {GPU_RESOURCE: 1} if self.address and needs_gpu(specs[j.base]) else None
                n = attempts[j.key] = attempts.get(j.key, -1) + 1
                f = client.submit(run_job, j, specs[j.base], ctx_f, *deps, key=f"job-{j.key.name}-{token}-{n}",
                                  pure=False, retries=self.retries, resources=resources)
                futures[j.key] = f
                by_future[f.key] = j
                return f

            for wave in waves(jobs):
                for j in wave:
                    submit(j)
            pending = as_completed(list(futures.values()))
            for f in pending:
                j = by_future.pop(f.key)
                try:
                    out = f.result()
                except Exception as exc:
                    if _is_lost(exc) and attempts[j.key] < self.retries:
                        # Its worker(s) died (KilledWorker), or the scheduler dropped it (cancelled): again,
                        # under a new key, as a new future the loop waits for.
                        logger.warning("job %s lost (%s: %s); resubmitting it (attempt %d of %d)", j.key.name,
                                       type(exc).__name__, exc, attempts[j.key] + 2, self.retries + 1)
                        f.release()
                        pending.add(submit(j))
                        continue
                    out = JobOutput(j.key, error=f"{type(exc).__name__}: {exc}", traceback=repr(exc))
                if j.key in needed:
                    outputs[j.key] = out
                on_result(j, out)
                f.release()
        finally:
            client.close()
            if cluster is not None:
                cluster.close()


def _identity(x):
    return x


def _is_lost(exc: BaseException) -> bool:
    """True for a job that never ran to the end: cancelled or forgotten by the scheduler, or its workers died."""
    from concurrent.futures import CancelledError  # distributed's FutureCancelledError derives from it

    from distributed.scheduler import KilledWorker

    return isinstance(exc, CancelledError | KilledWorker)


#: Address schemes a Dask scheduler listens on.
SCHEDULER_SCHEMES = ("tcp", "tls", "ws", "wss", "ucx")


def parse_scheduler(address: str) -> tuple[str, str, int]:
    """``(scheme, host, port)`` of a Dask scheduler address such as ``tcp://10.0.0.5:8786``.

    Raises
    ------
    ConfigError
        Not ``SCHEME://HOST:PORT`` with a known scheme and a port in 1..65535.
    """
    from urllib.parse import urlsplit

    hint = "; pass the address 'dask scheduler' prints, e.g. tcp://10.0.0.5:8786"
    text = str(address).strip()
    if "://" not in text:
        raise ConfigError(f"--scheduler {address!r} is not a scheduler address (SCHEME://HOST:PORT){hint}")
    parts = urlsplit(text)
    try:
        port = parts.port
    except ValueError:
        port = None
    if parts.scheme not in SCHEDULER_SCHEMES or not parts.hostname or port is None or not 0 < port < 65536 \
            or parts.path not in ("", "/"):
        raise ConfigError(f"--scheduler {address!r} is not a scheduler address (SCHEME://HOST:PORT with SCHEME "
                          f"one of {', '.join(SCHEDULER_SCHEMES)}){hint}")
    return parts.scheme, parts.hostname, port


def check_backend(name: str, scheduler: str | None = None, *, timeout: float = 10.0) -> None:
    """Make sure the backend can run at all, before the data is read or a run directory made.

    The Dask backends need dask and distributed installed; ``dask`` also a
    scheduler that answers at ``scheduler`` (connected to, then left).

    Raises
    ------
    ConfigError
        Dask missing, or the scheduler cannot be reached within ``timeout`` seconds.
    """
    if name not in ("dask", "dask-local"):
        return
    _import_distributed()
    if name != "dask" or not scheduler:
        return
    import socket

    scheme, host, port = parse_scheduler(scheduler)
    try:
        with socket.create_connection((host, port), timeout=timeout):
            pass
    except OSError as exc:
        raise ConfigError(f"cannot reach the Dask scheduler at {scheduler} ({exc.strerror or exc}); start it with "
                          "'dask scheduler' and pass its address to --scheduler") from None
    if scheme == "tcp":
        from distributed import Client

        try:
            Client(scheduler, timeout=f"{timeout}s").close()
        except (OSError, TimeoutError) as exc:
            raise ConfigError(f"{scheduler} accepts connections but no Dask scheduler answers ({exc}); pass the "
                              "address 'dask scheduler' prints") from None


def _import_distributed() -> None:
    try:
        import distributed  # noqa: F401
    except ImportError:
        raise ConfigError("the dask backends need dask and distributed; install them with "
                          "pip install '.[dask]'") from None


def check_backend_options(name: str, scheduler: str | None = None) -> None:
    """Refuse an unknown backend, ``dask`` without a scheduler, a scheduler for another backend, a bad address.

    Raises
    ------
    ConfigError
    """
    if name not in BACKENDS:
        import difflib

        close = difflib.get_close_matches(name, BACKENDS, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise ConfigError(f"unknown backend {name!r}{hint} (use one of {', '.join(BACKENDS)})")
    if name == "dask" and not scheduler:
        raise ConfigError("--backend dask needs --scheduler tcp://HOST:PORT (or use --backend dask-local)")
    if scheduler and name != "dask":
        raise ConfigError(f"--scheduler is for --backend dask, not {name!r}")
    if scheduler:
        parse_scheduler(scheduler)


def make_backend(name: str, *, jobs: int = 1, scheduler: str | None = None):
    """The backend called ``name``.

    Raises
    ------
    ConfigError
        See :func:`check_backend_options`; dask not installed.
    """
    check_backend_options(name, scheduler)
    if name == "joblib":
        return JoblibBackend(jobs)
    return DaskBackend(scheduler if name == "dask" else None, jobs=jobs)
