"""The versioned result file of a run (``result.json``): what a run measured, readable without its directory.

A run directory is an internal layout; a result file is what leaves the
machine. Like MTEB's per-task result files it names the harness version and
commit, the data (its sha256) and the split (parameters and the fold
assignment's hash, :meth:`benchmark.store.Folds.assignment_hash`), and for
every model its definition and, per metric of the registry, each number with
the name of its aggregation and population, so that a leaderboard
(:mod:`reports.leaderboard`) can set it beside published numbers without
comparing a pooled value with a per-fold one. Its per-fold scores are what
``benchmark stats`` reads.

The format is fixed by the JSON Schema ``docs/result.schema.json``
(:data:`SCHEMA_VERSION`, semantic: a reader accepts every file of its major
version, since minor versions only add fields; another major version is
refused with a line that says what to do). :func:`build_result` computes a
file's content from a :class:`reports.rundata.RunData` (each number through
:mod:`reports.pooled`, the same code as the report's tables);
:func:`read_result` reads and validates one.
"""

from __future__ import annotations

import json
import math
from functools import lru_cache
from pathlib import Path

import jsonschema
import numpy as np

from benchmark.errors import DataError
from benchmark.metrics import REGISTRY, SPREAD_KS
from reports import pooled
from reports.rundata import FEW_GROUPS, RunData, missing_note, too_few

#: The version of the result format this harness writes (major.minor).
SCHEMA_VERSION = "1.0"
#: What a result file says it is.
KIND = "percepiano-bench result"
#: The JSON Schema of the format.
SCHEMA_PATH = Path(__file__).resolve().parents[1] / "docs" / "result.schema.json"

#: How each aggregation turns predictions into one number (the file carries these definitions).
AGGREGATIONS = {
    "pooled": "the metric of each target over all out-of-fold predictions of a seed at once (every fold's test "
              "segments pooled), then the mean over targets, then over complete seeds",
    "fixed_test_set": "the metric of each target for each fold model on the fixed test set, then the mean over "
                      "targets, then over fold models and complete seeds (the dataset paper's protocol)",
    "per_fold": "the metric of each target on each test fold, then the mean over targets; the mean (and sd) over "
                "folds, seeds averaged within a fold when they do not change the folds",
    "within_performer": "as pooled, with truth and predictions centred within each performer first (the "
                        "performers' mean levels do not count)",
}


def _json_value(value):
    """A model's parameters as strict JSON: a value JSON cannot hold (a scikit-learn class's ``error_score=nan``,
    an infinite bound) is written as its name (``"nan"``, ``"inf"``), never as a bare NaN."""
    if isinstance(value, float) and not math.isfinite(value):
        return repr(value)
    if isinstance(value, dict):
        return {k: _json_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_value(v) for v in value]
    return value


def _num(x) -> float | None:
    """A JSON number, or None for NaN / inf (JSON has no NaN)."""
    if x is None:
        return None
    x = float(x)
    return x if math.isfinite(x) else None


def _ci(res) -> list | None:
    if res is None or _num(res.low) is None or _num(res.high) is None:
        return None
    return [float(res.low), float(res.high)]


def pooled_aggregation(run: RunData) -> str:
    """``pooled``, or ``fixed_test_set`` for a split whose fold models share one test set."""
    return "pooled" if run.partition else "fixed_test_set"


def _metric_entry(run: RunData, model: str, seeds: list[int], metric: str, *, n_resamples: int, seed: int,
                  confidence: float) -> dict:
    agg = pooled_aggregation(run)
    design = run.design
    undefined = pooled.undefined(run, model, seeds, metric)
    entry: dict = {}
    for population in pooled.POPULATIONS:
        key = "pooled" if population == "all" else f"pooled_{population}"
        value = None if undefined else _num(pooled.pooled_value(run, model, seeds, metric, population))
        item = {"aggregation": agg, "population": population, "value": value, "ci_segments": None,
                "ci_units": None, "ci_units_note": None}
        if value is not None:
            kw = dict(population=population, n_resamples=n_resamples, confidence=confidence, seed=seed)
            item["ci_segments"] = _ci(pooled.pooled_ci(run, model, seeds, metric, by="segments", **kw))
            if design.unit == "segments":
                item["ci_units"] = item["ci_segments"]
            elif design.n_units < FEW_GROUPS:
                item["ci_units_note"] = too_few(design.n_units)
            else:
                item["ci_units"] = _ci(pooled.pooled_ci(run, model, seeds, metric, by="units", **kw))
        if undefined:
            item["note"] = "undefined: the model predicts a constant within every fold"
        entry[key] = item
    folds = pooled.fold_values(run, model, metric, seeds)
    folds = folds[np.isfinite(folds.to_numpy(dtype=float))] if len(folds) else folds
    entry["per_fold"] = {"aggregation": "per_fold", "population": "all",
                         "mean": _num(folds.mean()) if len(folds) else None,
                         "sd": _num(folds.std(ddof=1)) if len(folds) > 1 else None, "n_folds": int(len(folds))}
    within = pooled.within_value(run, model, seeds, metric)
    entry["within_performer"] = ({"aggregation": "within_performer", "population": "all", "value": _num(within)}
                                 if metric in pooled.WITHIN_METRICS and _num(within) is not None else None)
    return entry


def _model_entry(run: RunData, model: str, definition: dict, metrics: tuple[str, ...], *, n_resamples: int,
                 seed: int, confidence: float) -> dict:
    seeds = run.complete_seeds(model)
    ok, planned = run.jobs(model)
    entry = {
        "name": model,
        "source": definition.get("source", "unknown"),
        "base": definition.get("base"),
        "params": _json_value(definition.get("params")),
        "feature_sets": definition.get("features"),
        "checkpoint": definition.get("checkpoint"),
        "status": run.status(model),
        "jobs_ok": int(ok),
        "jobs_planned": int(planned),
        "seeds_used": [int(s) for s in seeds],
        "scores": {},
        "per_target": {},
        "fold_scores": [],
    }
    if not seeds:
        return entry
    for m in metrics:
        entry["scores"][m] = _metric_entry(run, model, seeds, m, n_resamples=n_resamples, seed=seed,
                                           confidence=confidence)
        if not pooled.undefined(run, model, seeds, m):
            vals = pooled.per_target_values(run, model, seeds, m)
            entry["per_target"][m] = {t: _num(v) for t, v in zip(run.targets, vals, strict=True)}
    row_metrics = [m for m in dict.fromkeys(run.rows["metric"].dropna()) if m in REGISTRY]
    entry["fold_scores"] = [{**r, "values": {k: _num(v) for k, v in r["values"].items()}}
                            for r in pooled.fold_rows(run, model, seeds, row_metrics)]
    return entry


def build_result(run: RunData, *, definitions: dict | None = None, harness: dict | None = None,
                 n_resamples: int = 2000, seed: int = 0, confidence: float = 0.95, created: str | None = None) -> dict:
    """The result file's content for a run (every model, every pooled metric the run can report).

    Parameters
    ----------
    run : RunData
        Read once (:func:`reports.rundata.load_run_data`); its memo is shared with the report's tables.
    definitions : dict, optional
        What each model name means (:func:`benchmark.config.model_definitions`, plus ``source``).
    harness : dict, optional
        ``version`` and ``git_commit`` of the harness writing the file (default: the run's own).
    n_resamples, seed, confidence
        Of every bootstrap CI (the report's defaults).
    created : str, optional
        ISO time of writing (default: the run's creation time, so the file is a function of the run).

    Returns
    -------
    dict
        Valid under :data:`SCHEMA_PATH` (check with :func:`validate_result`).
    """
    manifest = run.manifest
    cfg = manifest.get("config", {})
    design = run.design
    split = dict(manifest.get("split") or {})
    metrics = pooled.available_metrics(run)
    _, spread_info = pooled.run_spread(run)
    versions = manifest.get("versions") or {}
    harness = dict(harness or {})
    definitions = definitions or {}
    unfinished = run.partial_note or ("; ".join(missing_note(run)) if missing_note(run) else "")
    folds_hash = run.folds.assignment_hash() if run.folds is not None else None
    return {
        "schema_version": SCHEMA_VERSION,
        "kind": KIND,
        "created": created or manifest.get("created"),
        "harness": {
            "name": "percepiano-bench",
            "version": harness.get("version") or versions.get("percepiano-bench"),
            "git_commit": harness.get("git_commit", manifest.get("git_commit")),
            "run_version": versions.get("percepiano-bench"),
            "run_git_commit": manifest.get("git_commit"),
            "packages": {k: str(v) for k, v in versions.items()},
        },
        "run": {
            "run_id": run.run_id,
            "created": manifest.get("created"),
            "command": [str(c) for c in manifest.get("command") or []],
            "complete": not unfinished,
            "note": unfinished or None,
        },
        "data": {
            "dataset": "PercePiano",
            "sha256": manifest.get("data_hash"),
            "n_segments": int(manifest.get("n_samples") or len(run.preds["sample_id"].unique())),
            "include_score": bool(manifest.get("include_score", cfg.get("include_score", True))),
            "targets": list(run.targets),
            "rater_spread": {k: (str(v) if not isinstance(v, bool | list) else v) for k, v in spread_info.items()},
        },
        "split": {
            "name": run.split,
            "description": split.get("description"),
            "params": {"n_splits": cfg.get("n_splits"), "include_score": cfg.get("include_score", True)},
            "fold_assignment_hash": folds_hash,
            "seeds": [int(s) for s in run.seeds],
            "seeded": bool(design.seeded),
            "partition": bool(run.partition),
            "n_folds": {str(s): int(n) for s, n in run.n_folds.items()},
            "group_column": run.group_column,
            "unit": design.unit,
            "n_units": int(design.n_units),
        },
        "statistics": {"n_resamples": int(n_resamples), "seed": int(seed), "confidence": float(confidence),
                       "ci_segments": "percentile bootstrap over segments",
                       "ci_units": f"percentile bootstrap over whole {design.unit} (none below {FEW_GROUPS})"},
        "aggregations": dict(AGGREGATIONS),
        "populations": dict(pooled.POPULATION_NOTES),
        "metrics": {m: {"label": REGISTRY[m].label, "higher_is_better": REGISTRY[m].higher_is_better,
                        "description": REGISTRY[m].description, "source": REGISTRY[m].source,
                        "target_average": "mean over the targets",
                        **({"k": REGISTRY[m].spread_k} if REGISTRY[m].spread_k in SPREAD_KS else {})}
                    for m in metrics},
        "models": [_model_entry(run, m, definitions.get(m, {}), metrics, n_resamples=n_resamples, seed=seed,
                                confidence=confidence) for m in run.models],
    }


@lru_cache(maxsize=1)
def schema() -> dict:
    """The JSON Schema of the result format (``docs/result.schema.json``)."""
    return json.loads(SCHEMA_PATH.read_text())


def validate_result(obj: dict, where: str = "result") -> None:
    """Check ``obj`` against the JSON Schema (:func:`schema`).

    Raises
    ------
    DataError
        The first problem, with where in the file it is.
    """
    validator = jsonschema.Draft202012Validator(schema())
    errors = sorted(validator.iter_errors(obj), key=lambda e: list(e.absolute_path))
    if errors:
        e = errors[0]
        path = "/".join(map(str, e.absolute_path)) or "(top level)"
        more = f" (and {len(errors) - 1} more problem(s))" if len(errors) > 1 else ""
        raise DataError(f"{where} is not a valid result file at {path}: {e.message}{more}")


def _major(version: str) -> int | None:
    try:
        return int(str(version).split(".")[0])
    except ValueError:
        return None


def check_version(obj: dict, where: str = "result") -> None:
    """Refuse a file of another major schema version (or none), with what to do about it.

    Raises
    ------
    DataError
    """
    if not isinstance(obj, dict) or obj.get("kind") != KIND:
        raise DataError(f"{where} is not a percepiano-bench result file (no \"kind\": \"{KIND}\"); "
                        "write one with: benchmark export RUN_DIR")
    version = obj.get("schema_version")
    ours = _major(SCHEMA_VERSION)
    theirs = _major(version) if version is not None else None
    if theirs is None:
        raise DataError(f"{where} has no readable schema_version ({version!r}); re-export it from its run "
                        "directory: benchmark export RUN_DIR")
    if theirs < ours:
        raise DataError(f"{where} was written with result schema {version}, which this harness (schema "
                        f"{SCHEMA_VERSION}) no longer reads; re-export it from its run directory with this "
                        "version: benchmark export RUN_DIR -o FILE")
    if theirs > ours:
        raise DataError(f"{where} was written with result schema {version}, newer than this harness reads "
                        f"({SCHEMA_VERSION}); update percepiano-bench")


def read_result(path: str | Path) -> dict:
    """Read and validate one result file (its own file: nothing from its run directory is needed).

    Raises
    ------
    DataError
        Unreadable, not JSON, another major schema version, or invalid under the schema.
    """
    path = Path(path)
    try:
        obj = json.loads(path.read_text())
    except OSError as exc:
        raise DataError(f"cannot read result file {path}: {exc.strerror or exc}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DataError(f"{path} is not a JSON result file ({exc})") from None
    check_version(obj, str(path))
    validate_result(obj, str(path))
    return obj


def score(result: dict, model: str, metric: str, aggregation: str, population: str = "all") -> dict | None:
    """One number of a result file: ``{"value", "ci_segments", "ci_units", "aggregation"}`` or None.

    ``aggregation``: ``pooled`` (also matches a fixed test set's ``fixed_test_set``), ``fixed_test_set``,
    ``per_fold`` (value = the mean over folds) or ``within_performer``.
    """
    entry = next((m for m in result["models"] if m["name"] == model), None)
    scores = (entry or {}).get("scores", {}).get(metric)
    if not scores:
        return None
    if aggregation in ("pooled", "fixed_test_set"):
        item = scores.get("pooled" if population == "all" else f"pooled_{population}")
        if item is None or (aggregation == "fixed_test_set" and item["aggregation"] != "fixed_test_set"):
            return None
        return item
    if aggregation == "per_fold":
        pf = scores.get("per_fold") or {}
        return {**pf, "value": pf.get("mean")} if population == "all" else None
    if aggregation == "within_performer":
        return scores.get("within_performer") if population == "all" else None
    return None
