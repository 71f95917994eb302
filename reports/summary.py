"""The run's results table: one row per model, pooled and per-fold metrics with CIs.

Pooled metrics score all out-of-fold predictions of a seed at once; per-fold
metrics score each fold's test set and average over folds. For a split whose
test folds do not partition the data (``percepiano_performer4``: every fold's
model is scored on the same fixed test set) "pooled" means: each fold model
scored on the whole test set, averaged over folds, which is the dataset
paper's protocol.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from benchmark.errors import ConfigError

Z_EPS = 1e-12


def column_pearson(y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
    """Pearson r of each column, vectorised over any leading axes.

    Parameters
    ----------
    y_true, y_pred : ndarray, shape (..., n_samples, n_targets)

    Returns
    -------
    ndarray, shape (..., n_targets); NaN for a constant column.
    """
    t = y_true - y_true.mean(axis=-2, keepdims=True)
    p = y_pred - y_pred.mean(axis=-2, keepdims=True)
    num = (t * p).sum(axis=-2)
    den = np.sqrt((t * t).sum(axis=-2) * (p * p).sum(axis=-2))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > Z_EPS, num / np.where(den > Z_EPS, den, 1.0), np.nan)


def column_r2(y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
    """R^2 of each column (sklearn's definition), vectorised over leading axes."""
    ss_res = ((y_true - y_pred) ** 2).sum(axis=-2)
    ss_tot = ((y_true - y_true.mean(axis=-2, keepdims=True)) ** 2).sum(axis=-2)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(ss_tot > Z_EPS, 1.0 - ss_res / np.where(ss_tot > Z_EPS, ss_tot, 1.0), np.nan)


def _nanmean(a: np.ndarray, axis=None):
    # A constant prediction (the mean baseline) has no correlation: all-NaN is a
    # legitimate result here, not a warning.
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmean(a, axis=axis)


def load_run(run_dir: str | Path) -> tuple[dict, pd.DataFrame, pd.DataFrame]:
    """Read a run directory's manifest, metric rows and predictions.

    Raises
    ------
    ConfigError
        If the folder is not a run directory or holds no finished job.
    """
    run_dir = Path(run_dir)
    mpath = run_dir / "manifest.json"
    if not mpath.is_file():
        raise ConfigError(f"{str(run_dir)!r} is not a run directory (no manifest.json)")
    manifest = json.loads(mpath.read_text())
    jobs = sorted((run_dir / "jobs").glob("*.rows.parquet"))
    if not jobs:
        raise ConfigError(f"run {str(run_dir)!r} has no finished job yet; resume it with --resume")
    rows = pd.concat([pd.read_parquet(p) for p in jobs], ignore_index=True)
    ok = [p.with_name(p.name.replace(".rows.", ".preds.")) for p in jobs]
    preds = pd.concat([pd.read_parquet(p) for p in ok if p.exists()], ignore_index=True) if any(
        p.exists() for p in ok) else pd.DataFrame()
    return manifest, rows, preds


def prediction_stack(preds: pd.DataFrame, model: str, targets: list[str], partition: bool):
    """Arrange one model's predictions as arrays for scoring.

    Returns
    -------
    sample_ids : ndarray (n_samples,)
    y_true : ndarray (n_samples, n_targets)
    stack : ndarray (n_replicates, n_samples, n_targets)
        One replicate per seed (``partition``) or per (seed, fold) otherwise.
    meta : DataFrame (n_samples,) with performer and piece
    """
    d = preds[preds["model"] == model]
    keys = ["seed"] if partition else ["seed", "fold"]
    wide = d.pivot_table(index=[*keys, "sample_id"], columns="target", values="y_pred", aggfunc="first")[targets]
    truth = d.drop_duplicates(["sample_id", "target"]).pivot(index="sample_id", columns="target", values="y_true")
    reps = wide.index.droplevel("sample_id").unique()
    ids = truth.index.to_numpy()
    # Replicates must cover the same samples; an incomplete seed is dropped by the caller.
    stack = np.stack([wide.loc[r].reindex(ids).to_numpy() for r in reps])
    meta = d.drop_duplicates("sample_id").set_index("sample_id").loc[ids, ["performer", "piece"]]
    return ids, truth[targets].to_numpy(), stack, meta


def bootstrap_mean_metric(y_true, stack, metric, *, groups=None, n_resamples=1000, confidence=0.95, seed=0):
    """Percentile bootstrap CI of the target-averaged metric, averaged over replicates.

    Resamples segments (or whole groups when ``groups`` is given) with the same
    draw for every replicate.
    """
    rng = np.random.default_rng(seed)
    fn = column_pearson if metric == "pearson" else column_r2
    n = len(y_true)
    if groups is None:
        draws = (rng.integers(0, n, n) for _ in range(n_resamples))
    else:
        labels, inv = np.unique(groups, return_inverse=True)
        members = [np.flatnonzero(inv == g) for g in range(len(labels))]

        def cluster_draw():
            pick = rng.integers(0, len(labels), len(labels))
            return np.concatenate([members[g] for g in pick])

        draws = (cluster_draw() for _ in range(n_resamples))
    vals = np.array([_nanmean(fn(y_true[idx], stack[:, idx])) for idx in draws])
    if np.isnan(vals).all():
        return float("nan"), float("nan")
    alpha = (1 - confidence) / 2
    return float(np.nanquantile(vals, alpha)), float(np.nanquantile(vals, 1 - alpha))


def summary_table(run_dir: str | Path, *, n_resamples: int = 1000, seed: int = 0) -> pd.DataFrame:
    """One row per model: pooled mean r and R^2 with 95% segment-bootstrap CIs,
    per-fold means, and how many of the planned jobs finished."""
    manifest, rows, preds = load_run(run_dir)
    cfg = manifest["config"]
    partition = bool(manifest["split"].get("partition", True))
    targets = manifest["target_names"]
    n_folds = manifest["n_folds"]
    expected = sum(n_folds.values())
    out = []
    for model in cfg["models"]:
        r = rows[rows["model"] == model]
        ok_jobs = r[r["status"] == "ok"].drop_duplicates(["seed", "fold"])
        failed = r[r["status"] == "failed"].drop_duplicates(["seed", "fold"])
        rec = {"model": model, "jobs_ok": len(ok_jobs), "jobs_expected": expected, "jobs_failed": len(failed)}
        complete_seeds = [int(s) for s in cfg["seeds"]
                          if (ok_jobs["seed"] == int(s)).sum() == n_folds[str(s)]]
        rec["complete"] = len(ok_jobs) == expected
        if complete_seeds and len(preds):
            p = preds[(preds["model"] == model) & preds["seed"].isin(complete_seeds)]
            ids, y_true, stack, _ = prediction_stack(p, model, targets, partition)
            for metric, fn in (("pearson", column_pearson), ("r2", column_r2)):
                rec[f"pooled_{metric}"] = float(_nanmean(fn(y_true, stack)))
                lo, hi = bootstrap_mean_metric(y_true, stack, metric, n_resamples=n_resamples, seed=seed)
                rec[f"pooled_{metric}_lo"], rec[f"pooled_{metric}_hi"] = lo, hi
            rec["seeds_used"] = ",".join(map(str, complete_seeds))
        per_fold = r[(r["status"] == "ok") & r["metric"].isin(["pearson", "r2", "mae"])]
        fold_means = per_fold.groupby(["metric", "seed", "fold"])["value"].mean().groupby("metric")
        for metric, vals in fold_means:
            rec[f"fold_{metric}_mean"] = float(vals.mean())
            rec[f"fold_{metric}_sd"] = float(vals.std(ddof=1)) if len(vals) > 1 else float("nan")
        out.append(rec)
    return pd.DataFrame(out)


def format_table(table: pd.DataFrame, *, split: str, partition: bool = True) -> str:
    """Markdown rendering of :func:`summary_table`; incomplete models are marked, not averaged silently."""
    pooled = "pooled OOF" if partition else "fixed test set, mean over fold models"
    lines = [
        f"| model | mean r ({pooled}) [95% CI] | mean R^2 ({pooled}) [95% CI] | per-fold mean r | per-fold mean R^2 | jobs |",
        "|---|---|---|---|---|---|",
    ]
    for _, row in table.iterrows():
        def ci(metric, row=row):
            if pd.isna(row.get(f"pooled_{metric}", np.nan)):
                return "n/a (no complete seed)"
            return f"{row[f'pooled_{metric}']:.3f} [{row[f'pooled_{metric}_lo']:.3f}, {row[f'pooled_{metric}_hi']:.3f}]"

        def fold(metric, row=row):
            m = row.get(f"fold_{metric}_mean", np.nan)
            return "n/a" if pd.isna(m) else f"{m:.3f} ± {row[f'fold_{metric}_sd']:.3f}"

        jobs = f"{row['jobs_ok']}/{row['jobs_expected']}"
        if not row["complete"]:
            jobs += f" (partial: {row['jobs_ok']} of {row['jobs_expected']} jobs)"
        lines.append(f"| {row['model']} | {ci('pearson')} | {ci('r2')} | {fold('pearson')} | {fold('r2')} | {jobs} |")
    lines.append("")
    lines.append(f"Split `{split}`. CIs: percentile bootstrap over segments (1000 resamples), same draw for every "
                 "seed. Per-fold: mean ± sd over (seed, fold) of the target-averaged metric.")
    return "\n".join(lines)
