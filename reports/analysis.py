"""Error analysis of a run: where models fail, and which features they use.

* :func:`error_table` / :func:`hardest` - mean absolute error per performer,
  piece or target with bootstrap CIs, largest first.
* :func:`error_matrix` - groups x models (or x targets) MAE or mean r, the
  data of the heatmaps.
* :func:`permutation_importance_run` - permutation importance of feature
  families (Breiman 2001; Fisher, Rudin & Dominici 2019, "model reliance") on
  the held-out folds of a run: the model is refitted on each training fold,
  and a family's columns are permuted in the test fold only.

Every CI says what was resampled. A segment bootstrap treats the segments of
a group as independent; a cluster bootstrap over the crossed factor (pieces
within a performer, performers within a piece) is wider and closer to "a new
piece" or "a new performer" (see :mod:`reports.bootstrap`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from benchmark.errors import ConfigError, UnknownNameError
from reports.bootstrap import bootstrap_ci
from reports.results import best_model, model_predictions, model_stack, nanmean, run_id, scored_models
from reports.rundata import RunData, load_run_data
from reports.summary import column_pearson

logger = logging.getLogger(__name__)

GROUPINGS = ("performer", "piece", "target")
RESAMPLE = ("segments", "performers", "pieces")
_FACTOR = {"performers": "performer", "pieces": "piece"}
IMPORTANCE_BY = ("family", "feature")


def _segment_errors(preds: pd.DataFrame) -> pd.DataFrame:
    """Absolute error per (segment, target), averaged over replicates (seeds, fold models)."""
    need = {"sample_id", "performer", "piece", "target", "y_true", "y_pred"}
    missing = need - set(preds.columns)
    if missing:
        raise ConfigError(f"predictions lack column(s) {sorted(missing)}; pass a run's predictions table")
    if "model" in preds and preds["model"].nunique() > 1:
        raise ConfigError(f"predictions of {preds['model'].nunique()} models given; filter to one model first")
    if preds.empty:
        raise ConfigError("no predictions given")
    d = preds.assign(abs_error=(preds["y_pred"] - preds["y_true"]).abs())
    return d.groupby(["sample_id", "target"], sort=False).agg(
        abs_error=("abs_error", "mean"), performer=("performer", "first"), piece=("piece", "first")).reset_index()


def _ci(values: np.ndarray, groups, resampled: str, n_resamples: int, confidence: float, seed: int):
    try:
        res = bootstrap_ci(values, np.mean, groups=groups, resampled=resampled, n_resamples=n_resamples,
                           confidence=confidence, seed=seed)
    except ConfigError:  # fewer than two resampling units: no interval
        return float(np.mean(values)), np.nan, np.nan
    return res.estimate, res.low, res.high


def error_table(
    preds: pd.DataFrame,
    by: str,
    *,
    resample: str = "segments",
    n_resamples: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
) -> pd.DataFrame:
    """Mean absolute error per performer, piece or target, largest first.

    A group's MAE averages ``|y_pred - y_true|`` over its segments and all
    targets (for ``by="target"``: over all segments, that target); replicates
    (seeds, or fold models on a fixed test set) are averaged per segment first.

    Parameters
    ----------
    preds : DataFrame
        Tidy predictions of ONE model (columns sample_id, performer, piece,
        target, y_true, y_pred), e.g. :func:`reports.results.model_predictions`.
    by : {"performer", "piece", "target"}
    resample : {"segments", "performers", "pieces"}
        Bootstrap unit, within each group for performers and pieces:
        ``"segments"`` resamples a group's segments; ``"pieces"`` (for
        ``by="performer"``) resamples the pieces a performer played, each with
        all its segments (cluster bootstrap), and vice versa. Resampling the
        grouping factor itself is meaningless and raises.
    n_resamples, confidence, seed
        Percentile bootstrap (see :func:`reports.bootstrap.bootstrap_ci`).

    Returns
    -------
    DataFrame
        Columns ``<by>``, ``mae``, ``mae_lo``, ``mae_hi``, ``n_segments``,
        ``n_units`` (resampling units; CI NaN below 2); for targets also
        ``pearson`` (pooled r, averaged over seeds). Sorted by ``mae``
        descending. ``attrs``: ``resampled``, ``confidence``, ``by``.

    Raises
    ------
    ConfigError
        Unknown ``by`` / ``resample``, ``resample`` equal to the grouping, or
        predictions of several models.
    """
    if by not in GROUPINGS:
        raise ConfigError(f"by={by!r}; use one of {GROUPINGS}")
    if resample not in RESAMPLE:
        raise ConfigError(f"resample={resample!r}; use one of {RESAMPLE}")
    if _FACTOR.get(resample) == by:
        raise ConfigError(f"resample={resample!r} with by={by!r} leaves one unit per group; "
                          f"resample segments or the other factor")
    err = _segment_errors(preds)
    rows = []
    if by == "target":
        for target, d in err.groupby("target", sort=False):
            groups = None if resample == "segments" else d[_FACTOR[resample]].to_numpy()
            est, lo, hi = _ci(d["abs_error"].to_numpy(), groups, resample, n_resamples, confidence, seed)
            n_units = len(d) if groups is None else len(np.unique(groups))
            rows.append({"target": target, "mae": est, "mae_lo": lo, "mae_hi": hi, "n_segments": len(d),
                         "n_units": n_units})
        out = pd.DataFrame(rows)
        out["pearson"] = out["target"].map(_pooled_pearson(preds))
    else:
        seg = err.groupby("sample_id", sort=False).agg(abs_error=("abs_error", "mean"),
                                                       performer=("performer", "first"),
                                                       piece=("piece", "first"))
        for name, d in seg.groupby(by, sort=True):
            groups = None if resample == "segments" else d[_FACTOR[resample]].to_numpy()
            est, lo, hi = _ci(d["abs_error"].to_numpy(), groups, resample, n_resamples, confidence, seed)
            n_units = len(d) if groups is None else len(np.unique(groups))
            rows.append({by: name, "mae": est, "mae_lo": lo, "mae_hi": hi, "n_segments": len(d),
                         "n_units": n_units})
        out = pd.DataFrame(rows)
    out = out.sort_values("mae", ascending=False, kind="stable").reset_index(drop=True)
    out.attrs.update(resampled=resample, confidence=confidence, by=by, n_resamples=n_resamples)
    return out


def _pooled_pearson(preds: pd.DataFrame) -> dict[str, float]:
    """Pooled r per target, one replicate per seed (or per (seed, fold) on a fixed test set)."""
    keys = [k for k in ("seed", "fold") if k in preds]
    if "seed" in preds and not preds.duplicated(["seed", "sample_id", "target"]).any():
        keys = ["seed"]
    out: dict[str, list[float]] = {}
    for _, d in (preds.groupby(keys) if keys else [((), preds)]):
        for target, t in d.groupby("target"):
            out.setdefault(target, []).append(
                column_pearson(t["y_true"].to_numpy()[:, None], t["y_pred"].to_numpy()[:, None])[0])
    return {k: float(nanmean(v)) for k, v in out.items()}


def hardest(
    run: str | Path | RunData,
    by: str,
    *,
    model: str | None = None,
    top: int | None = None,
    resample: str = "segments",
    n_resamples: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
) -> pd.DataFrame:
    """:func:`error_table` of one model of a run (default: the best by pooled mean r).

    ``top`` keeps the first rows. ``attrs["model"]`` names the model.
    """
    run = load_run_data(run)
    model = model or best_model(run)
    out = error_table(model_predictions(run, model), by, resample=resample, n_resamples=n_resamples,
                      confidence=confidence, seed=seed)
    attrs = dict(out.attrs, model=model)
    if top is not None:
        out = out.head(int(top))
    out.attrs = attrs
    return out


def _sort_labels(labels) -> list:
    def key(x):
        s = str(x)
        return (0, int(s), s) if s.isdigit() else (1, 0, s)

    return sorted(labels, key=key)


def error_matrix(
    run: str | Path | RunData,
    by: str,
    *,
    columns: str = "model",
    value: str = "mae",
    model: str | None = None,
) -> pd.DataFrame:
    """Groups x models (or x targets) table of MAE or mean Pearson r.

    Parameters
    ----------
    run : run directory or :class:`~reports.rundata.RunData`
    by : {"performer", "piece"}
    columns : {"model", "target"}
        One column per scored model, or per target of ``model``.
    value : {"mae", "pearson"}
        Mean absolute error over the group's segments (and targets), or the
        Pearson r within the group (mean over targets for ``columns="model"``),
        averaged over replicates. Within-group r is computed on few segments
        with little spread and is noisy.
    model : str, optional
        For ``columns="target"``; default the best model.

    Returns
    -------
    DataFrame, shape (n_groups, n_columns); index named ``by``.

    Raises
    ------
    ConfigError
        Bad ``by``, ``columns`` or ``value``.
    """
    if by not in ("performer", "piece"):
        raise ConfigError(f"by={by!r}; use 'performer' or 'piece'")
    if columns not in ("model", "target"):
        raise ConfigError(f"columns={columns!r}; use 'model' or 'target'")
    if value not in ("mae", "pearson"):
        raise ConfigError(f"value={value!r}; use 'mae' or 'pearson'")
    run = load_run_data(run)
    models = scored_models(run) if columns == "model" else [model or best_model(run)]
    cols: dict[str, pd.Series] = {}
    for m in models:
        s = model_stack(run, m)
        labels = s.meta[by].to_numpy()
        per_group = {}
        for g in np.unique(labels):
            idx = np.flatnonzero(labels == g)
            if value == "mae":
                v = s.abs_error()[idx].mean(axis=0)
            else:
                v = nanmean(column_pearson(s.y_true[idx], s.stack[:, idx]), axis=0)
            per_group[g] = v
        table = pd.DataFrame(per_group, index=run.targets).T
        if columns == "model":
            cols[m] = table.mean(axis=1) if value == "mae" else pd.Series(nanmean(table.to_numpy(), axis=1),
                                                                          index=table.index)
        else:
            cols.update({t: table[t] for t in run.targets})
    out = pd.DataFrame(cols)
    out = out.loc[_sort_labels(out.index)]
    out.index.name = by
    out.attrs.update(value=value, columns=columns, model=models[0] if columns == "target" else None)
    return out


# --- permutation importance -------------------------------------------------

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


def _run_inputs(run_dir: Path, model: str, cache_dir):
    """Dataset, feature matrix and fold table of a run, checked against its manifest."""
    from benchmark.dataset import load_dataset
    from benchmark.runner import load_config
    from features.build import build_features
    from features.cache import Cache, resolve_cache_dir

    res = load_run_data(run_dir)
    cfg = load_config(run_dir)
    if model not in cfg.models:
        raise ConfigError(f"model {model!r} is not in run {run_id(res)} (models: {', '.join(cfg.models)})")
    if res.folds is None:
        raise ConfigError(f"run {run_id(res)} has no folds.parquet; importance cannot refit its folds")
    folds = res.folds
    ds = load_dataset(res.manifest.get("data_dir") or cfg.data_dir, include_score=cfg.include_score)
    ds = ds.subset(ds.meta["sample_id"].isin(set(folds.frame["sample_id"])).to_numpy())
    if ds.content_hash() != res.manifest.get("data_hash"):
        raise ConfigError(f"the data in {ds.root} changed since run {run_id(res)} "
                          f"(hash {str(res.manifest.get('data_hash'))[:12]}); importance would not match the run")
    sets = cfg.feature_sets(model)
    cache = Cache(resolve_cache_dir(cache_dir or cfg.cache_dir))
    fm = build_features(ds.meta, sets, cache, n_jobs=1, on_bad_input="skip", progress=False,
                        soundfont=cfg.soundfont)
    for fs in sets:
        expected = res.manifest.get("feature_sets", {}).get(fs)
        if expected is not None and expected != len(fm.sets[fs]):
            raise ConfigError(f"feature set {fs!r} now has {len(fm.sets[fs])} columns, the run used {expected}; "
                              "the extractor changed since the run")
    missing = sorted(set(ds.meta["sample_id"]) - set(fm.X.index))
    if missing:
        raise ConfigError(f"{len(missing)} segment(s) of the run have no features now, e.g. {missing[0]}")
    return res, cfg, ds, fm, folds


def permutation_importance_run(
    run_dir: str | Path,
    model: str,
    *,
    n_repeats: int = 5,
    by: str = "family",
    max_folds: int | None = None,
    cache_dir: str | Path | None = None,
    seed: int = 0,
    n_resamples: int = 2000,
    confidence: float = 0.95,
) -> pd.DataFrame:
    """Permutation importance of feature families (or features) on a run's held-out folds.

    For each (seed, fold) of the run, in the order of the manifest: rebuild the
    model with the run's seed as ``random_state``, fit it on the training
    fold of ``folds.parquet`` (with the split's groups, as the runner does),
    predict the test fold, then for each unit permute the rows of its columns
    *jointly* (one permutation for all columns of a family, keeping their
    correlations) in the test fold only, ``n_repeats`` times, and record the
    drop in mean Pearson r over targets and the increase in MSE. Nothing of a
    test fold reaches training, and features are the run's feature sets,
    rebuilt through the cache and checked against the manifest's data hash.

    Importance measures what this fitted model relies on, not what is
    causally relevant: correlated families share credit (permuting one leaves
    the information in the other), so a low score does not mean useless
    (Strobl et al. 2008; Hooker, Mentch & Zhou 2021).

    Parameters
    ----------
    run_dir : path
    model : str
        A model of the run (typically ``rf``, ``lgbm``, ``xgb``).
    n_repeats : int
        Permutations per unit and fold.
    by : {"family", "feature"}
        Permute whole families (default, ~10 units for ``midi``) or single
        features (83 units: slower).
    max_folds : int, optional
        Use only the first ``max_folds`` (seed, fold) jobs, to bound the cost.
    cache_dir : path, optional
        Feature cache (default: the run's).
    seed : int
        Seeds the permutations (not the model: that uses the run's seeds).
    n_resamples, confidence
        Percentile bootstrap over folds for the CIs.

    Returns
    -------
    DataFrame, one row per unit, sorted by ``drop_r`` descending
        ``family`` (or ``feature``), ``n_features``, ``drop_r``/``_lo``/``_hi``
        (mean over folds of the per-fold drop in mean Pearson r, CI by
        bootstrap over folds), ``increase_mse``/``_lo``/``_hi`` (likewise, MSE
        averaged over targets), ``drop_r_pooled`` (drop in the pooled r of the
        assembled out-of-fold predictions, partition splits only, else NaN),
        ``n_folds``. ``attrs``: model, by, jobs (list of (seed, fold)),
        n_repeats, base_r (mean per-fold r), base_r_pooled, resampled="folds",
        confidence, max_abs_diff_to_run (largest difference between the
        refitted models' predictions and the run's stored ones: 0 when the
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
    run_dir = Path(run_dir)
    res, cfg, ds, fm, folds = _run_inputs(run_dir, model, cache_dir)
    sets = {fs: fm.sets[fs] for fs in cfg.feature_sets(model)}
    cols = [c for names in sets.values() for c in names]
    units = feature_units(sets, by)
    ids = ds.meta["sample_id"].to_numpy()
    X = align_rows(fm.X, ids, cols)
    y = ds.y
    gcol = res.manifest["split"].get("group_column")
    groups = ds.meta[gcol].to_numpy() if gcol in ds.meta else None

    jobs = [(int(s), k) for s in cfg.seeds for k in range(int(res.manifest["n_folds"][str(s)]))]
    if max_folds is not None:
        jobs = jobs[: int(max_folds)]
    records = []
    max_diff = 0.0
    pooled: dict[int, dict] = {}
    n_t = y.shape[1]
    for s, k in jobs:
        tr, te = folds.positions(s, k, ids)
        if np.intersect1d(tr, te).size:
            raise ConfigError(f"folds.parquet of run {run_id(res)}: seed {s} fold {k} has samples on both sides")
        est = MODELS.build(model, random_state=s)
        est.fit(X[tr], y[tr], groups=None if groups is None else groups[tr])
        base = est.predict(X[te])
        max_diff = max(max_diff, _diff_to_run(res, model, s, k, ids[te], base))
        base_r = float(nanmean(column_pearson(y[te], base)))
        base_mse = float(np.mean((y[te] - base) ** 2))
        rng = np.random.default_rng([seed, s, k])
        slot = pooled.setdefault(s, {"te": [], "base": [], "perm": {u: [] for u in units}})
        slot["te"].append(te)
        slot["base"].append(base)
        for unit, c in units.items():
            drops, incs, preds = [], [], []
            for _ in range(int(n_repeats)):
                Xp = X[te].copy()
                Xp[:, c] = Xp[rng.permutation(len(te))][:, c]
                p = est.predict(Xp)
                drops.append(base_r - float(nanmean(column_pearson(y[te], p))))
                incs.append(float(np.mean((y[te] - p) ** 2)) - base_mse)
                preds.append(p)
            slot["perm"][unit].append(np.stack(preds))
            records.append({"unit": unit, "seed": s, "fold": k, "drop_r": float(np.mean(drops)),
                            "increase_mse": float(np.mean(incs)), "base_r": base_r})
        logger.info("importance %s: seed %d fold %d done (base r %.3f)", model, s, k, base_r)

    per_fold = pd.DataFrame(records)
    pooled_drop, base_pooled = _pooled_drops(pooled, y, units, n_t) if res.partition else ({}, np.nan)
    rows = []
    for unit, c in units.items():
        d = per_fold[per_fold["unit"] == unit]
        row = {by: unit, "n_features": len(c)}
        for col in ("drop_r", "increase_mse"):
            est_, lo, hi = _ci(d[col].to_numpy(), None, "folds", n_resamples, confidence, seed)
            row.update({col: est_, f"{col}_lo": lo, f"{col}_hi": hi})
        row["drop_r_pooled"] = pooled_drop.get(unit, np.nan)
        row["n_folds"] = len(d)
        rows.append(row)
    out = pd.DataFrame(rows).sort_values("drop_r", ascending=False, kind="stable").reset_index(drop=True)
    out.attrs.update(model=model, by=by, jobs=jobs, n_repeats=int(n_repeats),
                     base_r=float(per_fold.drop_duplicates(["seed", "fold"])["base_r"].mean()),
                     base_r_pooled=base_pooled, resampled="folds", confidence=confidence,
                     run_id=run_id(res), max_abs_diff_to_run=max_diff)
    if max_diff > 1e-6:
        logger.warning("refitted %s predicts up to %.2g away from the run's stored predictions: the model "
                       "is not deterministic or the environment changed", model, max_diff)
    return out


def _diff_to_run(res: RunData, model: str, seed: int, fold: int, test_ids: np.ndarray, pred: np.ndarray) -> float:
    """Largest |refit - stored| prediction of a job; 0.0 when the run stored none."""
    p = res.preds
    if not len(p):
        return 0.0
    d = p[(p["model"] == model) & (p["seed"] == seed) & (p["fold"] == fold)]
    if d.empty:
        return 0.0
    wide = d.pivot(index="sample_id", columns="target", values="y_pred")
    stored = wide.reindex(index=test_ids, columns=res.targets).to_numpy()
    return float(np.nanmax(np.abs(stored - pred))) if np.isfinite(stored).any() else 0.0


def _pooled_drops(pooled: dict, y: np.ndarray, units: dict, n_t: int) -> tuple[dict[str, float], float]:
    """Drop in pooled r over the assembled test folds, per seed, averaged over seeds."""
    drops: dict[str, list[float]] = {u: [] for u in units}
    bases = []
    for slot in pooled.values():
        te = np.concatenate(slot["te"])
        if len(te) < 3:
            continue
        base = np.concatenate(slot["base"])
        base_r = float(nanmean(column_pearson(y[te], base)))
        bases.append(base_r)
        for u in units:
            perm = np.concatenate(slot["perm"][u], axis=1)  # (n_repeats, n_test_total, n_targets)
            perm_r = nanmean(column_pearson(y[te][None], perm), axis=1)
            drops[u].append(base_r - float(np.mean(perm_r)))
    return {u: float(np.mean(v)) for u, v in drops.items() if v}, float(np.mean(bases)) if bases else np.nan
