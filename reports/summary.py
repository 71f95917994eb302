"""The run's results table: one row per model, pooled and per-fold metrics with CIs.

Pooled metrics score all out-of-fold predictions of a seed at once; per-fold
metrics score each fold's test set and average over folds. For a split whose
test folds do not partition the data (``percepiano_performer4``: every fold's
model is scored on the same fixed test set) "pooled" means: each fold model
scored on the whole test set, averaged over folds, which is the dataset
paper's protocol.

The pooled metric of a model and its percentile bootstrap over segments
(:func:`pooled_segment_ci`) are the same quantity in this table and in the
significance table (:mod:`reports.significance`): computed once per run.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from reports import pooled
from reports.rundata import RunData, load_run_data
from reports.scoring import METRIC_FUNCTIONS

#: Per-fold metrics of the table (the runner's per-fold rows), in the order of summary.csv's columns.
FOLD_METRICS = ("mae", "pearson", "r2")


def pooled_value(run: RunData, model: str, seeds: list[int], metric: str, population: str = "all") -> float:
    """The pooled metric of ``model`` over complete ``seeds`` (:func:`reports.pooled.pooled_value`), once per run."""
    return pooled.pooled_value(run, model, seeds, metric, population)


def pooled_segment_ci(run: RunData, model: str, seeds: list[int], metric: str, *, n_resamples: int,
                      confidence: float = 0.95, seed: int = 0, population: str = "all"):
    """Percentile bootstrap over segments of :func:`pooled_value` (one draw for every seed), once per run.

    Returns
    -------
    reports.bootstrap.BootstrapResult
    """
    return pooled.pooled_ci(run, model, seeds, metric, population=population, by="segments",
                            n_resamples=n_resamples, confidence=confidence, seed=seed)


def summary_table(run_dir: str | Path | RunData, *, n_resamples: int = 2000, seed: int = 0) -> pd.DataFrame:
    """One row per model: pooled mean r and R^2 with 95% segment-bootstrap CIs, over all players and over the
    pianists only (``pooled_<metric>_pianists``, ``_lo``, ``_hi``: the deadpan renderings left out), per-fold
    means, and how many of the planned jobs finished.

    ``run_dir`` is a run directory or a :class:`reports.rundata.RunData` already read.
    """
    run = load_run_data(run_dir)
    out = []
    for model in run.models:
        r = run.rows[run.rows["model"] == model]
        failed = r[r["status"] == "failed"].drop_duplicates(["seed", "fold"])
        jobs_ok, jobs_expected = run.jobs(model)  # of the whole run, also in a partial run's finished view
        rec = {"model": model, "jobs_ok": jobs_ok, "jobs_expected": jobs_expected, "jobs_failed": len(failed)}
        complete_seeds = run.complete_seeds(model)
        rec["complete"] = jobs_ok == jobs_expected
        if complete_seeds and len(run.preds):
            # Constant within every fold: pooling folds correlates only the constant's moves between
            # folds (the leave-one-out mean artefact), so the correlation is undefined.
            constant = run.constant(model, complete_seeds)
            for metric in METRIC_FUNCTIONS:
                for population in pooled.POPULATIONS:
                    col = f"pooled_{metric}" + ("" if population == "all" else f"_{population}")
                    if constant and metric == "pearson":
                        rec[col] = rec[f"{col}_lo"] = rec[f"{col}_hi"] = np.nan
                        continue
                    rec[col] = pooled_value(run, model, complete_seeds, metric, population)
                    ci = pooled_segment_ci(run, model, complete_seeds, metric, n_resamples=n_resamples, seed=seed,
                                           population=population)
                    rec[f"{col}_lo"], rec[f"{col}_hi"] = (np.nan, np.nan) if ci is None else (ci.low, ci.high)
            rec["seeds_used"] = ",".join(map(str, complete_seeds))
        # Per-fold columns: complete seeds only, seeds averaged within each fold when they do not change it.
        if complete_seeds:
            for metric in FOLD_METRICS:
                vals = run.fold_level(model, metric, complete_seeds)
                if len(vals):
                    rec[f"fold_{metric}_mean"] = float(vals.mean())
                    rec[f"fold_{metric}_sd"] = float(vals.std(ddof=1)) if len(vals) > 1 else float("nan")
        out.append(rec)
    table = pd.DataFrame(out)
    table.attrs.update(n_resamples=int(n_resamples), seed=int(seed), split=run.split, partition=run.partition)
    return table


def format_table(table: pd.DataFrame, *, split: str, partition: bool = True, n_resamples: int | None = None) -> str:
    """Markdown rendering of :func:`summary_table`; incomplete models are marked, not averaged silently."""
    n_resamples = int(table.attrs.get("n_resamples", 2000) if n_resamples is None else n_resamples)
    pooled = "pooled OOF" if partition else "fixed test set, mean over fold models"
    lines = [
        f"| model | mean r ({pooled}) [95% CI] | mean R^2 ({pooled}) [95% CI] | mean r, pianists only [95% CI] | "
        "mean R^2, pianists only [95% CI] | per-fold mean r | per-fold mean R^2 | jobs |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for _, row in table.iterrows():
        def ci(metric, row=row):
            if pd.isna(row.get(f"pooled_{metric}", np.nan)):
                # complete but undefined: a constant prediction has no correlation
                return "undefined (constant within each fold)" if row["complete"] else "n/a (no complete seed)"
            lo, hi = row.get(f"pooled_{metric}_lo", np.nan), row.get(f"pooled_{metric}_hi", np.nan)
            return f"{row[f'pooled_{metric}']:.3f}" + ("" if pd.isna(lo) else f" [{lo:.3f}, {hi:.3f}]")

        def fold(metric, row=row):
            m = row.get(f"fold_{metric}_mean", np.nan)
            return "n/a" if pd.isna(m) else f"{m:.3f} ± {row[f'fold_{metric}_sd']:.3f}"

        jobs = f"{row['jobs_ok']}/{row['jobs_expected']}"
        if not row["complete"]:
            jobs += f" (partial: {row['jobs_ok']} of {row['jobs_expected']} jobs)"
        lines.append(f"| {row['model']} | {ci('pearson')} | {ci('r2')} | {ci('pearson_pianists')} | {ci('r2_pianists')} "
                     f"| {fold('pearson')} | {fold('r2')} | {jobs} |")
    lines.append("")
    lines.append(f"Split `{split}`. Headline: the pooled mean r, the number published results report; it mixes "
                 "the correlation of performers' mean levels with the correlation within performers, so the "
                 "report (`benchmark report`) adds the within-performer r and the fold-level r with cluster CIs, "
                 "and tests differences on the fold-level r. CIs here: percentile bootstrap over segments "
                 f"({n_resamples} resamples, the same draw for every seed: the report's segment CIs are the same). "
                 "Pianists only: the same metric without the two deadpan score renderings (players Score, Score2). "
                 "Per-fold: mean ± sd over folds of the target-averaged metric, complete seeds only, seeds averaged "
                 "within a fold when they do not change the folds.")
    return "\n".join(lines)
