"""The Python API: ``benchmark.evaluate(...)`` scores models on the harness's folds from a script or notebook.

It builds the same :class:`benchmark.config.RunConfig` ``benchmark run`` builds, validates it the same way
(every problem before any job starts) and drives the same :class:`benchmark.runner.Runner` into a run
directory the :class:`benchmark.store.RunStore` lays out, through the same feature cache: a run made here
is a run like any other (``benchmark report``, ``compare``, ``--resume`` read it). What it adds is the
objects a script holds: a model may be an estimator instance (``sklearn.svm.SVR()``), a class or a class
path besides a registered name, and the result is an :class:`Evaluation` with tidy DataFrames.

Example
-------
>>> import benchmark
>>> from sklearn.svm import SVR
>>> result = benchmark.evaluate(["ridge", SVR(C=3.0)], split="lopo", seeds=(0,))   # doctest: +SKIP
>>> result.metrics.groupby(["model", "metric"])["value"].mean()                    # doctest: +SKIP
>>> result.report(baseline="ridge")                                                # doctest: +SKIP
"""

from __future__ import annotations

import inspect
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from benchmark.config import RunConfig
from benchmark.errors import ConfigError
from benchmark.imported import NAME, add_imports
from benchmark.jobs import resolve_model
from benchmark.runner import Runner, new_run_dir
from features.sets import FEATURE_SETS
from models import MODELS
from models.adapters import CLASS_PATH, class_path_of, encode_params


@dataclass
class Evaluation:
    """What :func:`evaluate` returns: the run's tidy results and its directory.

    Attributes
    ----------
    run_dir : Path
        The run directory (``benchmark report RUN_DIR`` reads it too).
    metrics : DataFrame
        One row per (model, seed, fold, metric, target): the per-fold scores (``metrics.parquet``).
    predictions : DataFrame
        One row per (model, seed, fold, sample_id, target): ``y_true``, ``y_pred`` (``predictions.parquet``).
    counts : dict
        Jobs run, resumed and failed.
    models : list of str
        The run's model names (an estimator instance is named after its class: ``SVR``).
    runner : Runner
        The runner that made it (its ``contents``, ``skipped`` segments, ``feature_seconds``).
    """

    run_dir: Path
    metrics: pd.DataFrame
    predictions: pd.DataFrame
    counts: dict
    models: list[str]
    runner: Runner | None = field(default=None, repr=False)

    def report(self, baseline: str | None = None, *, out: str | os.PathLike | None = None,
               formats: tuple[str, ...] = ("md", "csv"), n_resamples: int = 2000, seed: int = 0,
               correction: str = "holm", rope: float | None = 0.01):
        """Build and write the run's report (as ``benchmark report``, without figures): returns the
        :class:`reports.report.Report`, whose ``tables`` hold every table as a DataFrame.

        Parameters
        ----------
        baseline : str, optional
            The model every other is tested against (default: the report's own choice).
        out : path, optional
            Folder for the tables (default ``RUN_DIR/report``).
        formats : tuple of {"md", "tex", "csv", "html"}
        n_resamples, seed, correction, rope
            As ``benchmark report``'s flags.
        """
        from reports.report import build_report, write_report
        from reports.rundata import finished_view, load_run_data

        run = finished_view(load_run_data(self.run_dir))
        report = build_report(run, baseline=baseline, correction=correction, n_resamples=n_resamples, seed=seed,
                              rope=rope, errors=False)
        write_report(report, Path(out) if out is not None else self.run_dir / "report", formats=list(formats))
        return report


def _unique(name: str, taken: set[str]) -> str:
    out, k = name, 2
    while out in taken or out in MODELS:
        out, k = f"{name}_{k}", k + 1
    return out


def model_entries(models, variants: dict | None = None) -> tuple[list[str], dict]:
    """``models`` (names, class paths, classes, estimator objects, or ``(name, model)`` pairs) as the run's
    model names and variants.

    An estimator object becomes a variant of its class path with its ``get_params(deep=False)`` (recorded in
    the manifest, JSON; nested estimators by their class path), named after its class unless a name is
    given; a class becomes its class path.

    Raises
    ------
    ConfigError
        An unknown name (with close matches), a name given twice, parameters the manifest cannot record.
    """
    names: list[str] = []
    variants = dict(variants or {})
    if isinstance(models, str | bytes) or not hasattr(models, "__iter__"):
        models = [models]
    for item in models:
        name, model = item if isinstance(item, tuple) and len(item) == 2 and isinstance(item[0], str) else (None, item)
        if name is not None and name in MODELS and model != name:
            raise ConfigError(f"model name {name!r} is a registered model; give yours a name of its own, e.g. "
                              f"('{name}_mine', model)")
        if isinstance(model, str):
            resolve_model(model, variants)  # unknown: raises with close matches
            if name is None or name == model:
                entry = model
            else:
                entry = name
                variants[name] = {"model": model, "params": {}}
        elif inspect.isclass(model):
            path = class_path_of(model)
            MODELS.get(path)
            entry = name or path
            if entry != path:
                variants[entry] = {"model": path, "params": {}}
        elif callable(getattr(model, "fit", None)) and callable(getattr(model, "get_params", None)):
            path = class_path_of(model)
            if not CLASS_PATH.match(path) or "<locals>" in path:
                raise ConfigError(f"model {model!r}: its class {path} cannot be imported by path (defined inside a "
                                  "function?); define it at a module's top level")
            entry = name or _unique(type(model).__name__, set(names) | set(variants))
            MODELS.get(path)  # imports, and is a regressor
            try:
                params = model.get_params(deep=False)
            except TypeError:
                params = model.get_params()
            params = {k: v for k, v in params.items() if k != "random_state"}  # the job's model seed sets it
            variants[entry] = {"model": path, "params": encode_params(params, where=f"model {entry!r}")}
        else:
            raise ConfigError(f"model {model!r}: give a registered name, a class path 'pkg.module:Class', a class "
                              "or an estimator object with fit, predict and get_params")
        if not NAME.match(entry) and not CLASS_PATH.match(entry):
            raise ConfigError(f"model name {entry!r}: use letters, digits and _ . + -")
        if entry in names:
            raise ConfigError(f"model {entry!r} is given twice; name one of them: ('{entry}_2', model)")
        names.append(entry)
    return names, variants


def evaluate(models=(), *, split: str = "lopo", seeds=(0,), features=None, predictions: dict | None = None,
             out: str | os.PathLike | None = None, n_splits: int | None = None, data_dir=None, cache_dir=None,
             jobs: int = 1, members=None, include_score: bool = True, device: str = "auto",
             progress: bool = False) -> Evaluation:
    """Score models on the harness's folds, as ``benchmark run`` does, and return the results.

    Parameters
    ----------
    models : sequence
        Each a registered name (``"ridge"``), a class path (``"my_pkg.models:MyModel"``), a class, an
        estimator object (any scikit-learn regressor: ``SVR()``), or a ``(name, model)`` pair.
    split : str
        A registered split (``benchmark list splits``).
    seeds : sequence of int
    features : str or sequence of str, optional
        Feature sets every tabular model reads (default: each model's own).
    predictions : dict NAME -> path, optional
        Predictions made elsewhere, imported as models (``--predictions NAME=FILE``).
    out : path, optional
        Folder the run directory is made in; default a new temporary folder (the run directory stays).
    n_splits, data_dir, cache_dir, jobs, members, include_score, device
        As ``benchmark run``'s flags.
    progress : bool
        Progress bars.

    Returns
    -------
    Evaluation

    Raises
    ------
    BenchmarkError
        Whatever ``benchmark run`` refuses, before any job starts (one line each).
    """
    names, variants = model_entries(models)
    names, variants = add_imports(names, variants, dict(predictions or {}))
    if not names:
        raise ConfigError("evaluate: no models; pass models=[...] or predictions={NAME: FILE}")
    if isinstance(features, str):
        features = FEATURE_SETS.parse_list(features)
    if isinstance(members, str):
        members = [m.strip() for m in members.split(",") if m.strip()]
    config = RunConfig(models=names, split=split, seeds=[int(s) for s in seeds],
                       features=list(features) if features else None, n_splits=n_splits,
                       data_dir=str(data_dir) if data_dir is not None else None, include_score=include_score,
                       jobs=jobs, cache_dir=str(cache_dir) if cache_dir is not None else None, variants=variants,
                       members=list(members) if members else None, device=device)
    config.validate()
    folder = Path(out) if out is not None else Path(tempfile.mkdtemp(prefix="percepiano-bench-"))
    folder.mkdir(parents=True, exist_ok=True)
    return run_config(config, new_run_dir(folder, config.split), progress=progress, command=["benchmark.evaluate"])


def run_config(config: RunConfig, run_dir: str | os.PathLike, *, progress: bool = False,
               command: list[str] | None = None, notify: Callable[[str], None] | None = None,
               started: Callable[[Runner], None] | None = None,
               prepared: Callable[[Runner], None] | None = None) -> Evaluation:
    """Run (or resume, when ``run_dir`` holds a run) ``config`` into ``run_dir``: the one path both
    :func:`evaluate` and ``benchmark run`` take.

    Parameters
    ----------
    config : RunConfig
    run_dir : path
    progress : bool
    command : list of str, optional
        What the manifest records as the command that made the run.
    notify : callable, optional
        Receives the runner's one-line phase messages (data, features, plan).
    started, prepared : callable, optional
        Called with the :class:`benchmark.runner.Runner` once it exists, and once its data, features and
        folds are ready (the command line prints its warnings there, and needs the runner if interrupted).

    Returns
    -------
    Evaluation
        With what the runner collected (the job files are not read again).
    """
    runner = Runner(config, run_dir, progress=progress, command=command, notify=notify)
    if started is not None:
        started(runner)
    runner.prepare()
    if prepared is not None:
        prepared(runner)
    counts = runner.run()
    contents = runner.contents
    return Evaluation(run_dir=Path(run_dir), metrics=contents.rows, predictions=contents.preds, counts=dict(counts),
                      models=list(config.models), runner=runner)

