"""Error analysis of a run: where models fail, and which features they use.

* :func:`error_table` / :func:`hardest` - mean absolute error per performer,
  piece or target with bootstrap CIs, largest first.
* :func:`error_matrix` - groups x models (or x targets) MAE or mean r, the
  data of the heatmaps.
* :func:`importance_table` - the permutation importance of feature families
  that ``benchmark importance`` (:mod:`benchmark.importance`) stored in the
  run, summarised with CIs over folds. Reports never refit.

Every CI says what was resampled. A segment bootstrap treats the segments of
a group as independent; a cluster bootstrap over the crossed factor (pieces
within a performer, performers within a piece) is wider and closer to "a new
piece" or "a new performer" (see :mod:`reports.bootstrap`).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from benchmark.dataset import SCORE_PLAYERS
from benchmark.errors import ConfigError
from benchmark.metrics import column_pearson
from benchmark.store import RunStore
from reports.bootstrap import bootstrap_ci
from reports.results import best_model, model_predictions, model_stack, scored_models
from reports.rundata import RunData, load_run_data, stack_predictions
from reports.scoring import nanmean

logger = logging.getLogger(__name__)

GROUPINGS = ("performer", "piece", "target")
RESAMPLE = ("segments", "performers", "pieces")
_FACTOR = {"performers": "performer", "pieces": "piece"}


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
        ``pearson`` (pooled r, averaged over seeds) and, when some segments are the deadpan renderings,
        ``pearson_pianists`` (the same without them). Sorted by ``mae``
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
        pianists = preds[~preds["performer"].astype(str).isin(SCORE_PLAYERS)]
        if len(pianists) < len(preds):
            out["pearson_pianists"] = out["target"].map(_pooled_pearson(pianists))
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
    """Pooled r per target (:func:`reports.rundata.stack_predictions`), averaged over replicates: one per
    seed, or per (seed, fold) when fold models share a test set (a sample predicted twice in a seed)."""
    preds = preds if "seed" in preds else preds.assign(seed=0)
    partition = "fold" not in preds or not preds.duplicated(["seed", "sample_id", "target"]).any()
    targets = list(dict.fromkeys(preds["target"]))
    _, y, stack, _ = stack_predictions(preds, targets, partition)
    return dict(zip(targets, nanmean(column_pearson(y, stack), axis=0).tolist(), strict=True))


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

def importance_table(
    run_dir: str | Path,
    model: str,
    *,
    by: str = "family",
    n_resamples: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
) -> pd.DataFrame | None:
    """Summary of the permutation importance ``benchmark importance`` stored in a run; None if not computed.

    Reads only (the refit is :func:`benchmark.importance.run_importance`).

    Returns
    -------
    DataFrame, one row per unit, sorted by ``drop_r`` descending, or None
        ``family`` (or ``feature``), ``n_features``, ``drop_r``/``_lo``/``_hi``
        (mean over folds of the per-fold drop in mean Pearson r, CI by
        percentile bootstrap over folds), ``increase_mse``/``_lo``/``_hi``,
        ``drop_r_pooled`` (drop in pooled r over the assembled test folds,
        averaged over seeds; NaN on a fixed test set), ``n_folds``. ``attrs``:
        the stored metadata (model, by, jobs, n_repeats, max_abs_diff_to_run)
        plus base_r, base_r_pooled, resampled="folds", confidence.
    """
    stored = RunStore(run_dir).read_importance(model, by)
    if stored is None:
        return None
    folds = stored[stored["scope"] == "fold"]
    pooled = stored[stored["scope"] == "pooled"]
    rows = []
    for unit, d in folds.groupby("unit", sort=False):
        row = {by: unit, "n_features": int(d["n_features"].iloc[0])}
        for col in ("drop_r", "increase_mse"):
            est_, lo, hi = _ci(d[col].to_numpy(), None, "folds", n_resamples, confidence, seed)
            row.update({col: est_, f"{col}_lo": lo, f"{col}_hi": hi})
        p = pooled.loc[pooled["unit"] == unit, "drop_r"]
        row["drop_r_pooled"] = float(p.mean()) if len(p) else np.nan
        row["n_folds"] = len(d)
        rows.append(row)
    out = pd.DataFrame(rows).sort_values("drop_r", ascending=False, kind="stable").reset_index(drop=True)
    out.attrs.update(stored.attrs)
    out.attrs["jobs"] = [tuple(j) for j in stored.attrs.get("jobs", [])]
    out.attrs.update(base_r=float(folds.drop_duplicates(["seed", "fold"])["base_r"].mean()),
                     base_r_pooled=float(pooled.drop_duplicates("seed")["base_r"].mean()) if len(pooled) else np.nan,
                     resampled="folds", confidence=confidence)
    return out
