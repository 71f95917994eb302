"""Input assembly and execution of one job, on whichever worker a backend sends it to.

:func:`run_job` is the unit of work of every backend: it assembles the job's
inputs from a :class:`RunInputs` (sent to each worker once) and the outputs of
its dependencies, builds a fresh estimator, fits it on the training fold and
predicts the test fold. It never raises for a failing model: the error and its
traceback come back in the :class:`JobOutput`, and the driver records them.
"""

from __future__ import annotations

import logging
import os
import sys
import time
import traceback
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from benchmark.jobs import Job, is_ensemble
from benchmark.store import JobKey
from splits.inner import inner_cv

#: Environment variables that size the thread pools of BLAS, OpenMP and friends.
THREAD_ENV = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "VECLIB_MAXIMUM_THREADS",
              "NUMEXPR_NUM_THREADS")

logger = logging.getLogger(__name__)


def _driver_log_level() -> int:
    return logging.getLogger().getEffectiveLevel()


def worker_logging(level: int) -> None:
    """Give a fresh worker process the driver's log level, so ``-v`` shows what jobs log (neural epochs).

    A process whose root logger already has handlers (the driver itself, a Dask worker) is left alone.
    """
    root = logging.getLogger()
    if not root.handlers:
        logging.basicConfig(level=level, format=f"%(levelname)s %(name)s [pid {os.getpid()}]: %(message)s")


@dataclass
class RunInputs:
    """What every job of a run reads; a backend ships it to each worker once.

    Attributes
    ----------
    sample_ids : ndarray (n_samples,)
    y : ndarray (n_samples, n_targets)
    groups : ndarray (n_samples,) or None
        The split's group labels: they group the inner CV of models and stackers.
    folds : dict (seed, fold) -> (train, test)
        Integer positions into ``sample_ids``.
    matrices : dict model name -> array-like (n_samples, ...)
        Each model's input, indexable by an integer position array.
    threads : int
        BLAS/OpenMP/torch threads each job may use.
    inner_splits : int
        Folds of the inner CV that makes a stacker member's inner predictions.
    train_matrices : dict model name -> list of array-like (n_samples, ...)
        A model trained on other inputs than it is tested on (other SoundFonts): one matrix per
        rendering; its training set stacks the training rows of each (``matrices`` is the test input).
    validation : dict (seed, fold) -> ndarray
        The split's own validation positions of each fold, when it defines them
        (passed to ``fit(..., validation=(X_val, y_val))``); empty otherwise.
    device : str
        ``--device`` (auto, cpu, cuda), passed to models tagged ``neural``.
    log_level : int
        The driver's log level when the inputs were assembled; worker processes log at it.
    """

    sample_ids: np.ndarray
    y: np.ndarray
    groups: np.ndarray | None
    folds: dict[tuple[int, int], tuple[np.ndarray, np.ndarray]]
    matrices: dict[str, Any] = field(default_factory=dict)
    threads: int = 1
    inner_splits: int = 5
    train_matrices: dict[str, list] = field(default_factory=dict)
    validation: dict[tuple[int, int], np.ndarray] = field(default_factory=dict)
    device: str = "auto"
    log_level: int = field(default_factory=_driver_log_level)

    def for_job(self, job: Job) -> RunInputs:
        """The part of the inputs one job reads (its fold, its model's input): less to send to a process."""
        key = (job.seed, job.fold)
        matrices = {job.model: self.matrices[job.model]} if job.model in self.matrices else {}
        train = {job.model: self.train_matrices[job.model]} if job.model in self.train_matrices else {}
        validation = {key: self.validation[key]} if key in self.validation else {}
        return RunInputs(self.sample_ids, self.y, self.groups, {key: self.folds[key]}, matrices, self.threads,
                         self.inner_splits, train_matrices=train, validation=validation, device=self.device,
                         log_level=self.log_level)


@dataclass
class JobOutput:
    """What a job returns to the driver.

    Attributes
    ----------
    key : JobKey
    pred : ndarray (n_test, n_targets) or None
        Predictions of the test fold, in the fold's test order; None when failed.
    inner : ndarray (n_train, n_targets) or None
        Inner out-of-fold predictions of the training fold, in its train order.
    fit_seconds : float
    error, traceback : str or None
    params : dict
        The estimator's resolved parameters (``get_params()``).
    fitted : dict
        Small fitted quantities worth keeping (a stacker's weights).
    state : dict of str -> ndarray, optional
        The fitted model's weights (neural models), stored with the job for ``benchmark explain``.
    """

    key: JobKey
    pred: np.ndarray | None = None
    inner: np.ndarray | None = None
    fit_seconds: float = 0.0
    error: str | None = None
    traceback: str | None = None
    params: dict = field(default_factory=dict)
    fitted: dict = field(default_factory=dict)
    state: dict | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


def limit_threads(n: int) -> None:
    """Size BLAS/OpenMP/torch thread pools of this process to ``n`` (no oversubscription)."""
    for var in THREAD_ENV:
        os.environ[var] = str(n)
    try:
        from threadpoolctl import threadpool_limits

        threadpool_limits(n)
    except ImportError:  # threadpoolctl ships with scikit-learn; env vars still apply to new pools
        pass
    torch = sys.modules.get("torch")  # only when a model already imported it
    if torch is not None and torch.get_num_threads() != n:
        torch.set_num_threads(n)


def fit_threads(spec, threads: int) -> int:
    """BLAS/OpenMP threads a job fits with: ``threads`` for neural models, 1 for the others.

    Classical models fit single-threaded (their own ``n_jobs=1``); a BLAS pool
    sized by ``--jobs`` would change float rounding (ridge predictions moved by
    1e-15, enough to reorder Spearman ties), so results would depend on
    ``--jobs``. One thread makes them bit-identical whatever ``--jobs`` is.
    """
    return int(threads) if "neural" in getattr(spec, "tags", ()) else 1


def _fit_predict(spec, params: dict, seed: int, X_train, y_train, groups_train, X_test, validation=None):
    """Fit a fresh estimator on the training fold and predict ``X_test``; returns (estimator, predictions).

    ``validation`` (X_val, y_val), the split's own validation fold, is passed
    only when there is one, so estimators whose ``fit`` takes no
    ``validation`` keep working on every other split.
    """
    est = spec.build(**params, random_state=seed)
    extra = {} if validation is None else {"validation": validation}
    est.fit(X_train, y_train, groups=groups_train, **extra)
    return est, np.asarray(est.predict(X_test), dtype=float)


def model_params(spec, params: dict, device: str) -> dict:
    """A model's factory parameters in a run; a neural model also gets ``--device`` unless the study set one."""
    params = dict(params)
    if "neural" in spec.tags:
        params.setdefault("device", device)
    return params


def _member_inputs(job: Job, spec, deps: tuple[JobOutput, ...]):
    """An ensemble's inputs: members' test predictions, and (stackers) their inner training-fold ones.

    Returns (X_train, X_test): (n_train, n_members, n_targets) or None, and (n_test, n_members, n_targets).
    """
    bad = [d.key.name for d in deps if not d.ok]
    if bad:
        raise RuntimeError(f"member job(s) failed: {', '.join(bad)}")
    X_test = np.stack([d.pred for d in deps], axis=1)
    X_train = None
    if spec.extra.get("train_on") == "inner":
        missing = [d.key.name for d in deps if d.inner is None]
        if missing:
            raise RuntimeError(f"member job(s) {', '.join(missing)} have no inner predictions")
        X_train = np.stack([d.inner for d in deps], axis=1)
    return X_train, X_test


def _stacked_training(views: list, tr: np.ndarray, y: np.ndarray, g_tr: np.ndarray | None):
    """The training set of a model trained on several renderings: each segment once per rendering.

    The copies of a segment keep its label and share one group (its split group, else the
    segment itself), so a grouped inner CV never splits a segment's renderings.
    """
    X_train = np.concatenate([np.asarray(V[tr]) for V in views])
    y_train = np.tile(y[tr], (len(views), 1))
    if g_tr is None and len(views) == 1:
        return X_train, y_train, None
    groups = g_tr if g_tr is not None else tr
    return X_train, y_train, np.tile(groups, len(views))


@dataclass
class FittedJob:
    """A job fitted on its training fold (:func:`fit_job`).

    Attributes
    ----------
    estimator : object
        The fitted estimator.
    pred : ndarray (n_test, n_targets)
        Its predictions of the test fold, in the fold's order.
    X_train, y_train, groups_train, X_test
        What it was fitted on and predicted (a refit permutes ``X_test``'s columns, for importance).
    train, test : ndarray
        The fold's positions.
    params : dict
        The factory parameters it was built with (besides ``random_state``, the job's model seed).
    """

    estimator: Any
    pred: np.ndarray
    X_train: Any
    y_train: np.ndarray
    groups_train: np.ndarray | None
    X_test: Any
    train: np.ndarray
    test: np.ndarray
    params: dict


def fit_job(job: Job, spec, ctx: RunInputs, *deps: JobOutput) -> FittedJob:
    """Assemble one job's inputs from ``ctx``, build a fresh estimator and fit it on the training fold.

    The one way a job is fitted: a run's workers (:func:`run_job`) and every
    refit of a finished run (``benchmark importance``, through
    :func:`benchmark.refit.open_run`) call it.

    Raises
    ------
    Exception
        Whatever the model raises (:func:`run_job` records it).
    """
    tr, te = ctx.folds[(job.seed, job.fold)]
    g_tr = ctx.groups[tr] if ctx.groups is not None else None
    params = model_params(spec, job.param_dict, ctx.device)
    validation = None
    if is_ensemble(spec):
        X_train, X_test = _member_inputs(job, spec, deps)
    else:
        X = ctx.matrices[job.model]
        X_train, X_test = X[tr], X[te]
        val = ctx.validation.get((job.seed, job.fold))
        if val is not None:
            validation = (X[val], ctx.y[val])
    y_train, g_fit = ctx.y[tr], g_tr
    views = ctx.train_matrices.get(job.model)
    if views:
        X_train, y_train, g_fit = _stacked_training(views, tr, ctx.y, g_tr)
        if job.inner:
            raise RuntimeError(f"{job.model} trains on several renderings; it cannot feed a stacker")
    est, pred = _fit_predict(spec, params, job.model_seed, X_train, y_train, g_fit, X_test, validation)
    return FittedJob(est, pred, X_train, y_train, g_fit, X_test, np.asarray(tr), np.asarray(te), params)


def run_job(job: Job, spec, ctx: RunInputs, *deps: JobOutput) -> JobOutput:
    """Assemble inputs, fit, predict (and inner-predict) one job.

    Parameters
    ----------
    job : Job
    spec : benchmark.registry.Spec
        The base model's registry entry (carried, so workers need no registry lookup).
    ctx : RunInputs
    *deps : JobOutput
        Outputs of ``job.deps``, in order.

    Returns
    -------
    JobOutput
        With ``error`` and ``traceback`` set when anything raised.
    """
    worker_logging(ctx.log_level)
    limit_threads(fit_threads(spec, ctx.threads))
    tr, _ = ctx.folds[(job.seed, job.fold)]
    if "neural" in spec.tags:  # context for the per-epoch lines its training logs
        logger.info("job %s: fitting on %d segments", job.key.name, len(tr))
    g_tr = ctx.groups[tr] if ctx.groups is not None else None
    t0 = time.perf_counter()
    try:
        fitted = fit_job(job, spec, ctx, *deps)
        est, pred = fitted.estimator, fitted.pred
        inner = None
        if job.inner:
            inner = np.full((len(tr), ctx.y.shape[1]), np.nan)
            cv = inner_cv(g_tr, ctx.inner_splits, job.model_seed)
            for itr, ite in cv.split(fitted.X_train, ctx.y[tr], g_tr):
                _, inner[ite] = _fit_predict(spec, fitted.params, job.model_seed, fitted.X_train[itr],
                                             ctx.y[tr][itr], None if g_tr is None else g_tr[itr],
                                             fitted.X_train[ite])
        params = est.get_params() if hasattr(est, "get_params") else {}
        fitted_summary = est.fitted_summary() if hasattr(est, "fitted_summary") else {}
        # Fitted weights of models that export them (neural ones), kept for 'benchmark explain'.
        state = est.export_state() if hasattr(est, "export_state") else None
    except Exception as exc:  # a failing job is recorded, not fatal (see error_score)
        return JobOutput(job.key, fit_seconds=time.perf_counter() - t0, error=f"{type(exc).__name__}: {exc}",
                         traceback=traceback.format_exc())
    return JobOutput(job.key, pred=pred, inner=inner, fit_seconds=time.perf_counter() - t0,
                     params=params, fitted=fitted_summary, state=state)
