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

from benchmark.errors import ConfigError, UnknownNameError
from benchmark.metrics import column_pearson
from benchmark.store import RunStore

logger = logging.getLogger(__name__)

IMPORTANCE_BY = ("family", "feature")


def _mean_r(y: np.ndarray, p: np.ndarray, axis=None) -> np.ndarray | float:
    r = column_pearson(y, p)
    ok = np.isfinite(r)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(ok, r, 0.0).sum(axis=-1) / ok.sum(axis=-1)


def _family_function(feature_set: str) -> Callable[[str], str]:
    if feature_set == "midi":
        from features.midi import feature_family
    elif feature_set == "audio":
        from features.audio import feature_family
    elif feature_set == "score":
        from features.score import feature_family
    else:
        def feature_family(name: str) -> str:
            return name.split("_", 1)[0]
    return feature_family


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


def _run_inputs(store: RunStore, model: str, cache_dir):
    """Manifest, config, dataset, feature matrix and folds of a run, checked against its manifest."""
    from benchmark.dataset import load_dataset
    from benchmark.runner import load_config
    from features.build import build_features
    from features.cache import Cache, resolve_cache_dir

    manifest = store.read_manifest()
    rid = str(manifest.get("run_id", store.root.name))
    cfg = load_config(store.root)
    if model not in cfg.models:
        raise ConfigError(f"model {model!r} is not in run {rid} (models: {', '.join(cfg.models)})")
    if not (store.root / store.FOLDS).is_file():
        raise ConfigError(f"run {rid} has no folds.parquet; importance cannot refit its folds")
    folds = store.read_folds()
    ds = load_dataset(manifest.get("data_dir") or cfg.data_dir, include_score=cfg.include_score)
    ds = ds.subset(ds.meta["sample_id"].isin(set(folds.frame["sample_id"])).to_numpy())
    if ds.content_hash() != manifest.get("data_hash"):
        raise ConfigError(f"the data in {ds.root} changed since run {rid} "
                          f"(hash {str(manifest.get('data_hash'))[:12]}); importance would not match the run")
    sets = cfg.feature_sets(model)
    cache = Cache(resolve_cache_dir(cache_dir or cfg.cache_dir))
    fm = build_features(ds.meta, sets, cache, n_jobs=1, on_bad_input="skip", progress=False,
                        soundfont=cfg.soundfont)
    for fs in sets:
        expected = manifest.get("feature_sets", {}).get(fs)
        if expected is not None and expected != len(fm.sets[fs]):
            raise ConfigError(f"feature set {fs!r} now has {len(fm.sets[fs])} columns, the run used {expected}; "
                              "the extractor changed since the run")
    missing = sorted(set(ds.meta["sample_id"]) - set(fm.X.index))
    if missing:
        raise ConfigError(f"{len(missing)} segment(s) of the run have no features now, e.g. {missing[0]}")
    return manifest, rid, cfg, ds, fm, folds


def _fold_groups(folds, ids: np.ndarray) -> np.ndarray | None:
    """The group of each sample as the run stored it in its folds (what the runner fitted with), or None."""
    if not folds.has_groups:
        return None
    g = folds.frame.drop_duplicates("sample_id").set_index("sample_id")["group"]
    return g.loc[ids].to_numpy()


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

    For each job, in the order of the manifest: build the model through the
    registry with the run's seed as ``random_state``, fit it on the training
    fold of ``folds.parquet`` with the groups stored there, predict the test
    fold, then for each unit permute the rows of its columns *jointly* in the
    test fold only, ``n_repeats`` times, and record the drop in mean Pearson
    r over targets and the increase in MSE.

    Parameters
    ----------
    run_dir : path
    model : str
        A model of the run (typically ``rf``, ``lgbm``, ``xgb``).
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
    from features.build import align_rows
    from models import MODELS

    if by not in IMPORTANCE_BY:
        raise ConfigError(f"by={by!r}; use one of {IMPORTANCE_BY}")
    if int(n_repeats) < 1:
        raise ConfigError(f"n_repeats={n_repeats!r} must be >= 1 (5 is usual)")
    if max_folds is not None and int(max_folds) < 1:
        raise ConfigError(f"max_folds={max_folds!r} must be >= 1, or None for every fold")
    store = RunStore(run_dir)
    manifest, rid, cfg, ds, fm, folds = _run_inputs(store, model, cache_dir)
    sets = {fs: fm.sets[fs] for fs in cfg.feature_sets(model)}
    cols = [c for names in sets.values() for c in names]
    units = feature_units(sets, by)
    ids = ds.meta["sample_id"].to_numpy()
    X = align_rows(fm.X, ids, cols)
    y = ds.y
    groups = _fold_groups(folds, ids)
    preds = store.read_jobs(store.job_keys())[1] if store.job_keys() else pd.DataFrame()
    targets = list(manifest.get("target_names") or [])
    partition = bool(manifest.get("split", {}).get("partition", True))

    jobs = [(int(s), k) for s in cfg.seeds for k in range(int(manifest["n_folds"][str(s)]))]
    if max_folds is not None:
        jobs = jobs[: int(max_folds)]
    records = []
    max_diff = 0.0
    pooled: dict[int, dict] = {}
    for s, k in jobs:
        tr, te = folds.positions(s, k, ids)
        if np.intersect1d(tr, te).size:
            raise ConfigError(f"folds.parquet of run {rid}: seed {s} fold {k} has samples on both sides")
        est = MODELS.build(model, random_state=s)
        est.fit(X[tr], y[tr], groups=None if groups is None else groups[tr])
        base = est.predict(X[te])
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
                Xp = X[te].copy()
                Xp[:, c] = Xp[rng.permutation(len(te))][:, c]
                p = est.predict(Xp)
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
