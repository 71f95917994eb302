"""A study file: one TOML file under version control describes a whole study.

``benchmark run --study study.toml``::

    [study]                      # what the run computes
    split = "lopo"
    seeds = [0, 1, 2]
    features = ["midi"]          # optional: every model's feature sets
    n_splits = 5                 # optional: for splits that take it
    exclude_score = false
    error_score = "nan"

    [models.rf]                  # a registered model with its own defaults
    [models.rf_deep]             # a named variant: a registered model and parameters
    model = "rf"
    min_samples_leaf = 1
    [models.mine]                # a class of your own by import path, parameters checked against it
    class_path = "my_pkg.models:MyModel"
    [models.ensemble_mean]
    members = ["ridge", "rf", "lgbm"]

    [backend]                    # how it runs (may change on --resume)
    name = "joblib"              # joblib | dask | dask-local
    jobs = 2
    scheduler = "tcp://10.0.0.5:8786"

    [report]                     # defaults of 'benchmark report'
    baseline = "rf"
    correction = "holm"
    rope = 0.01
    n_resamples = 2000

Every key and every model parameter is checked before any job starts,
parameters against the registered factory's signature and their values
against what the model family declares (:mod:`benchmark.params`); a
misspelt one fails with the close matches. A table named like a registered
model may not make that name mean another model (another base model or
other parameters than ``members``, ``init``, ``device``, which the command
line sets too): give the variant its own name. Command-line flags override
the file.
"""

from __future__ import annotations

import difflib
import tomllib
from pathlib import Path
from typing import Any

from benchmark.errors import ConfigError
from benchmark.hashing import read_regular_bytes
from benchmark.params import ModelNames
from features.sets import FEATURE_SETS
from models import MODELS
from splits import get_split

SECTIONS = ("study", "models", "backend", "report")
STUDY_KEYS = {"split": str, "seeds": list, "features": list, "n_splits": int, "exclude_score": bool,
              "error_score": str, "on_bad_input": str, "members": (list, str), "data_dir": str, "dataset": str, "soundfont": str,
              "name": str, "description": str, "device": str}
BACKEND_KEYS = {"name": str, "jobs": int, "scheduler": str, "cache_dir": str}
REPORT_KEYS = {"baseline": str, "correction": str, "rope": float, "n_resamples": int, "seed": int,
               "format": str, "plots": bool, "html": bool, "ceiling": bool}


def _hint(word: str, choices) -> str:
    close = difflib.get_close_matches(word, list(choices), n=2, cutoff=0.5)
    return f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""


def _check_table(where: str, table: Any, allowed: dict[str, type]) -> dict:
    if not isinstance(table, dict):
        raise ConfigError(f"{where} must be a table ([{where}]), got {type(table).__name__}")
    for key, value in table.items():
        if key not in allowed:
            raise ConfigError(f"unknown key {key!r} in [{where}]{_hint(key, allowed)} "
                              f"(known: {', '.join(sorted(allowed))})")
        want = allowed[key]
        ok = isinstance(value, want) or (want is float and isinstance(value, int) and not isinstance(value, bool))
        if not ok or (want is int and isinstance(value, bool)):
            names = " or ".join(w.__name__ for w in (want if isinstance(want, tuple) else (want,)))
            raise ConfigError(f"[{where}] {key} = {value!r}: expected {names}")
    return dict(table)


#: Parameters a study may set on a registered model's own name: the ones the command line sets without
#: renaming the model (--members, --init, --device); the manifest records them and 'compare' shows them.
WIRING_PARAMS = ("members", "init", "device")


def _check_shadowing(name: str, base: str, params: dict) -> None:
    """Refuse a table named like a registered model that would make that name mean another model."""

    if name not in MODELS:
        return
    changed = sorted(p for p in params if p not in WIRING_PARAMS)
    if base == name and not changed:
        return
    spec = MODELS.get(name)
    what = (f"model = {base!r}" if base != name
            else f"{', '.join(changed)} = {', '.join(repr(params[p]) for p in changed)}")
    raise ConfigError(f"[models.{name}] sets {what}, but {name!r} is a registered model ({spec.description}); "
                      f"tables and 'benchmark compare' would show it as {name!r}: give the variant its own name, "
                      f"e.g. [models.{name}_custom] with model = {base!r}")


def _resolve_models(models: Any) -> tuple[list[str], dict[str, dict]]:

    if not isinstance(models, dict) or not models:
        raise ConfigError("the study lists no models; add e.g. [models.rf]")
    names, variants = [], {}
    for name, table in models.items():
        if not isinstance(table, dict):
            raise ConfigError(f"[models.{name}] must be a table of parameters, got {table!r}")
        params = dict(table)
        if "class_path" in params:
            # A model class of the user's own, by import path: resolved by the model registry (its
            # parameters checked against the class's signature below, like a registered model's).
            if "model" in params:
                raise ConfigError(f"[models.{name}] sets both model and class_path; keep one (class_path = "
                                  "'pkg.module:Class' names a class, model = 'NAME' a registered model)")
            base = params.pop("class_path")
            if not isinstance(base, str) or ":" not in base:
                raise ConfigError(f"[models.{name}] class_path = {base!r}: expected 'package.module:ClassName'")
        else:
            base = params.pop("model", name)
        if not isinstance(base, str):
            raise ConfigError(f"[models.{name}] model = {base!r}: expected the name of a registered model")
        spec = MODELS.get(base)  # unknown: raises with close matches
        # Names and values; a comma-separated member list becomes a list. What needs the machine or the
        # cache (a GPU, a checkpoint) is checked when the run is configured (RunConfig.check_models).
        params = spec.check_params(params, where=f"[models.{name}]")
        _check_shadowing(name, base, params)
        names.append(name)
        if base != name or params:
            variants[name] = {"model": base, "params": params}
    return names, variants


#: Largest study file read (ours are under 2 KB).
MAX_STUDY_BYTES = 1 * 2**20


def _read(path: Path) -> dict:
    raw = read_regular_bytes(path, "study file", MAX_STUDY_BYTES, ConfigError)  # not a FIFO, not a huge file
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"study file {path} is not UTF-8 text (byte 0x{raw[exc.start]:02x} at offset "
                          f"{exc.start}); save it as UTF-8") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"study file {path}: {exc}") from None


def load_study(path: str | Path) -> dict:
    """Read and check a study file; return it resolved.

    Returns
    -------
    dict
        ``study`` (checked [study] table), ``models`` (names in file order),
        ``variants`` (name -> {"model", "params"}), ``backend``, ``report``,
        ``path``.

    Raises
    ------
    ConfigError
        Unreadable TOML, an unknown section, key, model or parameter (with
        close matches), or a value of the wrong type.
    """
    path = Path(path)
    doc = _read(path)
    for section in doc:
        if section not in SECTIONS:
            raise ConfigError(f"unknown section [{section}] in {path}{_hint(section, SECTIONS)} "
                              f"(known: {', '.join(SECTIONS)})")
    study = _check_table("study", doc.get("study", {}), STUDY_KEYS)
    names, variants = _resolve_models(doc.get("models"))
    backend = _check_table("backend", doc.get("backend", {}), BACKEND_KEYS)
    report = _check_table("report", doc.get("report", {}), REPORT_KEYS)
    if "seeds" in study and not all(isinstance(s, int) and not isinstance(s, bool) for s in study["seeds"]):
        raise ConfigError(f"[study] seeds = {study['seeds']!r}: expected a list of integers")
    if "seeds" in study and not study["seeds"]:
        raise ConfigError("[study] seeds = []: no seeds given; list at least one, e.g. seeds = [0]")
    if "members" in study:
        members = ModelNames().convert(study["members"])
        if ModelNames().problem(study["members"]) is not None:
            raise ConfigError(f"[study] members = {study['members']!r}: expected {ModelNames().describe()}")
        study["members"] = members

    if "split" in study:
        get_split(study["split"])
    for fs in study.get("features", []):
        FEATURE_SETS.get(fs)
    for m in study.get("members", []):
        if m not in names:
            MODELS.get(m)
    for v in variants.values():
        for m in v["params"].get("members", []) or []:
            if m not in names:
                MODELS.get(m)
    return {"study": study, "models": names, "variants": variants, "backend": backend, "report": report,
            "path": str(path)}
