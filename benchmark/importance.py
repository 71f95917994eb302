"""Permutation importance of feature families on a run's held-out folds (``benchmark importance``).

For each (seed, fold) of a finished run the model is refitted on the run's
own training fold (``folds.parquet``, with the run's own groups, as the
runner fitted it), and a family's columns are permuted jointly in the test
fold only (Breiman 2001; Fisher, Rudin & Dominici 2019, "model reliance").
Nothing of a test fold reaches training. The tidy per-fold results go into
the run directory through :class:`benchmark.store.RunStore`
(``importance/<model>__<by>.parquet``); :mod:`reports.analysis` only reads
them, it never refits. Models are built through the registry
(:data:`models.MODELS`), never imported by name.

Importance measures what this fitted model relies on, not what is causally
relevant: correlated families share credit (Strobl et al. 2008; Hooker,
Mentch & Zhou 2021).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from benchmark.config import load_config
from benchmark.errors import ConfigError, UnknownNameError
from benchmark.execute import fit_job, limit_threads
from benchmark.execute import fit_threads as execute_threads
from benchmark.jobs import is_ensemble, resolve_model
from benchmark.metrics import column_pearson
from benchmark.refit import job_threads, open_run, stored_job
from benchmark.store import JobKey
from features.audio import feature_family as audio_family
from features.inputs import SegmentInputs
from features.midi import feature_family as midi_family
from features.score import feature_family as score_family
from features.sets import is_array_stage
from models import MODELS

logger = logging.getLogger(__name__)

IMPORTANCE_BY = ("family", "feature")


def _mean_r(y: np.ndarray, p: np.ndarray, axis=None) -> np.ndarray | float:
    r = column_pearson(y, p)
    ok = np.isfinite(r)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(ok, r, 0.0).sum(axis=-1) / ok.sum(axis=-1)


#: How a feature set's column names map to families (other sets: the name's first token).
FAMILIES = {"midi": midi_family, "audio": audio_family, "score": score_family}


def _family_function(feature_set: str) -> Callable[[str], str]:
    def first_token(name: str) -> str:
        return name.split("_", 1)[0]

    return FAMILIES.get(feature_set, first_token)


def feature_units(sets: dict[str, list[str]], by: str = "family") -> dict[str, list[int]]:
    """Column indices of each permutation unit: a feature family or a single feature.

    Parameters
    ----------
    sets : dict
        Feature set name -> its column names, in matrix order.
    by : {"family", "feature"}

    Returns
    -------
    dict
        Unit name -> column positions in the concatenated matrix, in order of
        first appearance. A name without a known family prefix is its own unit.
    """
    units: dict[str, list[int]] = {}
    pos = 0
    for fs, names in sets.items():
        family = _family_function(fs)
        for name in names:
            if by == "feature":
                unit = name
            else:
                try:
                    unit = family(name)
                except UnknownNameError:
                    unit = name
            units.setdefault(unit, []).append(pos)
            pos += 1
    return units


def run_importance(
    run_dir: str | Path,
    model: str,
    *,
    n_repeats: int = 5,
    by: str = "family",
    max_folds: int | None = None,
    cache_dir: str | Path | None = None,
    seed: int = 0,
    write: bool = True,
) -> pd.DataFrame:
    """Refit ``model`` on each (seed, fold) of a run and record the permutation importance of each unit.

    For each job, in the order of the manifest: rebuild the run's inputs
    (:func:`benchmark.refit.open_run`: the model's feature sets and metadata
    columns, the groups of ``folds.parquet``, the split's validation fold, a
    font condition's rendering) and the job as it ran
    (:func:`benchmark.refit.stored_job`: a study variant's base model, its
    stored parameters, a checkpoint ``init``, the model seed), fit it as the
    runner did (:func:`benchmark.execute.fit_job`), predict the test fold,
    then for each unit permute the rows of its columns *jointly* in the test
    fold only, ``n_repeats`` times, and record the drop in mean Pearson r over
    targets and the increase in MSE. A hybrid's units are the families of
    its tabular branch.

    Parameters
    ----------
    run_dir : path
    model : str
        A model of the run (typically ``rf``, ``lgbm``, ``xgb``; a study variant's name, a font condition
        or a hybrid too).
    n_repeats : int
        Permutations per unit and fold.
    by : {"family", "feature"}
    max_folds : int, optional
        Use only the first ``max_folds`` (seed, fold) jobs, to bound the cost.
    cache_dir : path, optional
        Feature cache (default: the run's).
    seed : int
        Seeds the permutations (not the model: that uses the run's seeds).
    write : bool
        Store the result in the run directory (:meth:`RunStore.write_importance`).

    Returns
    -------
    DataFrame (tidy), one row per (unit, seed, fold) with ``scope`` "fold",
    plus one per (unit, seed) with ``scope`` "pooled" (partition splits: the
    drop in pooled r over the assembled test folds; ``fold`` -1)
        ``unit``, ``n_features``, ``scope``, ``seed``, ``fold``, ``drop_r``,
        ``increase_mse`` (NaN when pooled), ``base_r``. ``attrs``: model, by,
        jobs, n_repeats, seed, run_id, max_abs_diff_to_run (largest
        difference between the refitted and stored predictions: 0 when the
        refit reproduces the run).

    Raises
    ------
    ConfigError
        Unknown model or ``by``, bad ``n_repeats``/``max_folds``, data or
        features changed since the run.
    """
    if by not in IMPORTANCE_BY:
        raise ConfigError(f"by={by!r}; use one of {IMPORTANCE_BY}")
    if int(n_repeats) < 1:
        raise ConfigError(f"n_repeats={n_repeats!r} must be >= 1 (5 is usual)")
    if max_folds is not None and int(max_folds) < 1:
        raise ConfigError(f"max_folds={max_folds!r} must be >= 1, or None for every fold")
    # The run's inputs as its runner assembled them: the model's feature sets and metadata columns, the
    # stored folds and groups, the split's validation folds, the font condition.
    assembly, store = open_run(run_dir, [model], cache_dir=cache_dir)
    manifest = store.read_manifest()
    rid = str(manifest.get("run_id", store.root.name))
    cfg = load_config(store.root)
    spec_sets = assembly.sets(model)
    tables = [fs for fs in spec_sets if not is_array_stage(fs)]
    sets = {fs: assembly.features.sets[fs] for fs in tables}
    units = feature_units(sets, by)
    if not units:
        raise ConfigError(f"model {model!r} reads no tabular features ({', '.join(spec_sets)}): permutation "
                          "importance permutes feature columns; explain an array model with 'benchmark explain'")
    base_spec = MODELS.get(assembly.variants[model]["model"] if model in assembly.variants
                           else resolve_model(model, cfg.variants).base)
    if is_ensemble(base_spec):
        raise ConfigError(f"model {model!r} is an ensemble of other models' predictions: it has no features to "
                          "permute; ask for one of its members")
    ids = assembly.dataset.meta["sample_id"].to_numpy()
    y = assembly.dataset.y
    preds = store.read_jobs(store.job_keys())[1] if store.job_keys() else pd.DataFrame()
    targets = list(manifest.get("target_names") or [])
    partition = bool(manifest.get("split", {}).get("partition", True))
    threads = job_threads(cfg)

    jobs = [(int(s), k) for s in cfg.seeds for k in range(int(manifest["n_folds"][str(s)]))]
    if max_folds is not None:
        jobs = jobs[: int(max_folds)]
    records = []
    max_diff = 0.0
    pooled: dict[int, dict] = {}
    for s, k in jobs:
        job = stored_job(store, JobKey(model, s, k))
        spec = MODELS.get(job.base)
        ctx = assembly.inputs([job], threads=threads)
        tr, te = ctx.folds[(s, k)]
        if np.intersect1d(tr, te).size:
            raise ConfigError(f"folds.parquet of run {rid}: seed {s} fold {k} has samples on both sides")
        limit_threads(execute_threads(spec, threads))
        # The runner's own fit: the stored parameters, model seed, groups and validation fold.
        fitted = fit_job(job, spec, ctx)
        est, base, X_test = fitted.estimator, fitted.pred, fitted.X_test
        max_diff = max(max_diff, _diff_to_run(preds, targets, model, s, k, ids[te], base))
        base_r = float(_mean_r(y[te], base))
        base_mse = float(np.mean((y[te] - base) ** 2))
        rng = np.random.default_rng([seed, s, k])
        slot = pooled.setdefault(s, {"te": [], "base": [], "perm": {u: [] for u in units}})
        slot["te"].append(te)
        slot["base"].append(base)
        for unit, c in units.items():
            drops, incs, reps = [], [], []
            for _ in range(int(n_repeats)):
                p = est.predict(_permuted(X_test, c, rng.permutation(len(te))))
                drops.append(base_r - float(_mean_r(y[te], p)))
                incs.append(float(np.mean((y[te] - p) ** 2)) - base_mse)
                reps.append(p)
            slot["perm"][unit].append(np.stack(reps))
            records.append({"unit": unit, "n_features": len(c), "scope": "fold", "seed": s, "fold": k,
                            "drop_r": float(np.mean(drops)), "increase_mse": float(np.mean(incs)),
                            "base_r": base_r})
        logger.info("importance %s: seed %d fold %d done (base r %.3f)", model, s, k, base_r)
    if partition:
        for s, slot in pooled.items():
            te = np.concatenate(slot["te"])
            if len(te) < 3:
                continue
            base_r = float(_mean_r(y[te], np.concatenate(slot["base"])))
            for unit, c in units.items():
                perm = np.concatenate(slot["perm"][unit], axis=1)  # (n_repeats, n_test_total, n_targets)
                drop = base_r - float(np.mean(_mean_r(y[te][None], perm)))
                records.append({"unit": unit, "n_features": len(c), "scope": "pooled", "seed": s, "fold": -1,
                                "drop_r": drop, "increase_mse": np.nan, "base_r": base_r})
    out = pd.DataFrame(records)
    out.attrs.update(model=model, by=by, jobs=[list(j) for j in jobs], n_repeats=int(n_repeats), seed=int(seed),
                     run_id=rid, max_abs_diff_to_run=max_diff)
    if max_diff > 1e-6:
        logger.warning("refitted %s predicts up to %.2g away from the run's stored predictions: the model "
                       "is not deterministic or the environment changed", model, max_diff)
    if write:
        store.write_importance(model, by, out, dict(out.attrs))
    return out


def _permuted(X, columns: list[int], order: np.ndarray):
    """``X`` with the rows of ``columns`` permuted jointly by ``order`` (a matrix, or a SegmentInputs' table)."""
    if isinstance(X, SegmentInputs):
        table = X.table.copy()
        table[:, columns] = table[order][:, columns]
        return SegmentInputs(X.sample_ids, table, X.columns, X.arrays, X.sets)
    Xp = np.array(X, copy=True)
    Xp[:, columns] = Xp[order][:, columns]
    return Xp


def _diff_to_run(preds: pd.DataFrame, targets: list, model: str, seed: int, fold: int, test_ids: np.ndarray,
                 pred: np.ndarray) -> float:
    """Largest |refit - stored| prediction of a job; 0.0 when the run stored none."""
    if not len(preds):
        return 0.0
    d = preds[(preds["model"] == model) & (preds["seed"] == seed) & (preds["fold"] == fold)]
    if d.empty:
        return 0.0
    wide = d.pivot(index="sample_id", columns="target", values="y_pred")
    stored = wide.reindex(index=test_ids, columns=targets).to_numpy()
    return float(np.nanmax(np.abs(stored - pred))) if np.isfinite(stored).any() else 0.0
