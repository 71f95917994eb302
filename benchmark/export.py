"""Write a run's result file (``result.json``): the runner's closing step and ``benchmark export``.

The content is computed by :func:`reports.resultfile.build_result` from the
run read once; this module adds what only the engine knows (what each model
name means, :func:`benchmark.config.model_definitions`, and where it came
from: the registry, a plugin or imported predictions), checks the file
against its JSON Schema, and writes it through the store
(:meth:`benchmark.store.RunStore.write_result`), which owns its path.
"""

from __future__ import annotations

import os
from importlib import metadata
from pathlib import Path

from threadpoolctl import threadpool_limits

from benchmark import provenance
from benchmark.config import model_definitions
from benchmark.errors import ConfigError
from benchmark.store import RunStore
from models import MODELS
from reports.resultfile import build_result, validate_result
from reports.rundata import RunData, load_run_data


def model_source(base: str | None) -> str:
    """Where a registered model comes from: ``registered`` (this package), ``plugin`` or ``imported``.

    A registry entry may say so itself (``source``: ``built-in``, ``plugin:<dist>``, a class path; tag
    ``imported`` for predictions made elsewhere); otherwise its factory's module tells: a factory outside
    this package's ``models`` is a plugin's. ``unknown`` for a name the registry no longer knows.
    """
    if base is None:
        return "unknown"
    try:
        spec = MODELS.get(base)
    except ConfigError:
        return "unknown"
    if "imported" in spec.tags:
        return "imported"
    declared = str(getattr(spec, "source", "") or spec.extra.get("source", "") or "")
    if declared:
        return "registered" if declared == "built-in" else "plugin"
    module = getattr(spec.factory, "__module__", "") or ""
    return "registered" if module.split(".")[0] == "models" else "plugin"


def definitions_with_sources(run_dir: str | os.PathLike) -> dict[str, dict]:
    """:func:`benchmark.config.model_definitions` of a run, each with its ``source`` (:func:`model_source`)."""
    out = {}
    for model, d in model_definitions(run_dir).items():
        out[model] = {**d, "source": model_source(d.get("base"))}
    return out



def harness() -> dict:
    """Version and git commit of the harness writing a file now."""
    try:
        version = metadata.version("percepiano-bench")
    except metadata.PackageNotFoundError:
        version = None
    return {"version": version, "git_commit": provenance.git_commit()}


def export_result(run: str | os.PathLike | RunData, out: str | os.PathLike | None = None, *,
                  n_resamples: int = 2000, seed: int = 0) -> Path:
    """Compute, validate and write the result file of a run; return its path.

    Parameters
    ----------
    run : path or RunData
        A run directory (a finished one, or the finished part of one), or it read once.
    out : path, optional
        Where to write; default ``RUN_DIR/result.json``.
    n_resamples, seed
        Of the bootstrap CIs (the report's defaults: the same numbers as its tables).

    Raises
    ------
    ConfigError
        Not a run directory, or no finished job.
    DataError
        The content fails the schema (a bug: reported, never written).
    OutputError
        The file cannot be written.
    """
    data = load_run_data(run)
    # Thousands of small matrix products (one per bootstrap draw), as in the report: one BLAS thread.
    with threadpool_limits(limits=1, user_api="blas"):
        result = build_result(data, definitions=definitions_with_sources(data.run_dir), harness=harness(),
                              n_resamples=n_resamples, seed=seed)
    validate_result(result, f"the result file of run {data.run_id}")
    return RunStore(data.run_dir).write_result(result, out)
