"""The run's results table: one row per model, pooled and per-fold metrics with CIs.

Pooled metrics score all out-of-fold predictions of a seed at once; per-fold
metrics score each fold's test set and average over folds. For a split whose
test folds do not partition the data (``percepiano_performer4``: every fold's
model is scored on the same fixed test set) "pooled" means: each fold model
scored on the whole test set, averaged over folds, which is the dataset
paper's protocol.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from benchmark.errors import ConfigError
from benchmark.metrics import column_pearson, pearson_from_sums

logger = logging.getLogger(__name__)

Z_EPS = 1e-12
_REL_EPS = 1e-10


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
    """Read a run directory's manifest, metric rows and predictions (through :class:`benchmark.store.RunStore`).

    Raises
    ------
    ConfigError
        If the folder is not a run directory or holds no finished job.
    """
    from benchmark.store import RunStore

    contents = RunStore(run_dir).read()
    return contents.manifest, contents.rows, contents.preds


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


METRIC_FUNCTIONS = {"pearson": column_pearson, "r2": column_r2}


def pooled_metric(y_true: np.ndarray, stack: np.ndarray, metric: str) -> float:
    """Target-averaged pooled metric, averaged over replicates.

    Parameters
    ----------
    y_true : ndarray, shape (n_samples, n_targets)
    stack : ndarray, shape (n_replicates, n_samples, n_targets)
    metric : {"pearson", "r2"}

    Returns
    -------
    float
        NaN-mean over replicates and targets (a constant prediction has no r).
    """
    return float(_nanmean(METRIC_FUNCTIONS[metric](y_true, stack)))


class PooledScorer:
    """Pooled metric of a prediction stack from weighted sums over rows.

    A bootstrap resample only re-weights rows (``w = bincount(idx)``) and a
    swap test only picks, per row, one of two models' predictions, so the
    metric follows from sums of a few per-row moments: one matrix-vector
    product per resample instead of a pass over the data. The result equals
    :func:`pooled_metric` on the resampled rows up to rounding.

    Sums of squares lose precision to cancellation when a column holds
    outliers far beyond its bulk (a diverging model predicting 1e10 for one
    segment); such data is scored directly on the resampled rows instead, as
    :func:`pooled_metric` does.

    Parameters
    ----------
    y_true : ndarray, shape (n_samples, n_targets)
    stack : ndarray, shape (n_replicates, n_samples, n_targets)
    metric : {"pearson", "r2"}
    other : ndarray, shape like ``stack``, optional
        A second model's predictions, for :meth:`diff` and :meth:`mixed`.
    """

    #: Largest n_samples * max(x^2) / MAD(x)^2 (x: a centred column) that the moment sums tolerate.
    MAX_SPREAD = 1e7

    def __init__(self, y_true: np.ndarray, stack: np.ndarray, metric: str, *, other: np.ndarray | None = None):
        if metric not in METRIC_FUNCTIONS:
            raise ConfigError(f"unknown metric {metric!r}; use {tuple(METRIC_FUNCTIONS)}")
        self.metric = metric
        self._raw = (y_true, stack, other)
        # Pearson r is shift-invariant, so both models share one centring (rows of the two may mix);
        # centring keeps the sums free of cancellation, and a constant column exactly constant.
        both = stack if other is None else (stack + other) / 2.0
        center = both.mean(axis=1, keepdims=True)
        checked = [y_true - y_true.mean(axis=0)] + [s - center for s in (stack, other) if s is not None]
        self.direct = not all(self._well_conditioned(c) for c in checked)
        if self.direct:
            return
        self._a = self._moments(y_true, stack, center)
        self._b = None if other is None else self._moments(y_true, other, center)
        if self._b is not None:
            self._a_sum, self._delta = self._a.sum(axis=0), self._b - self._a

    def _well_conditioned(self, centered: np.ndarray) -> bool:
        x = np.moveaxis(centered, -2, 0).reshape(centered.shape[-2], -1)
        if not np.isfinite(x).all():
            return False
        # Rounding error of a sum of squares ~ eps * n * max(x^2); the spread to resolve ~ MAD^2.
        mad = np.median(np.abs(x - np.median(x, axis=0)), axis=0)
        peak = (x * x).max(axis=0)
        # A column constant in its bulk is safe only when it is constant throughout.
        return bool(np.all(np.where(mad > 0, peak * len(x) <= self.MAX_SPREAD * mad * mad, np.ptp(x, axis=0) == 0)))

    def _moments(self, y: np.ndarray, st: np.ndarray, center: np.ndarray) -> np.ndarray:
        yc = np.broadcast_to(y - y.mean(axis=0), st.shape)
        if self.metric == "pearson":
            pc = st - center
            parts = (yc, pc, yc * yc, pc * pc, yc * pc)
        else:
            parts = (yc, yc * yc, (y - st) ** 2)
        m = np.stack(parts)  # (k, n_replicates, n_samples, n_targets)
        return np.ascontiguousarray(np.moveaxis(m, 2, 0).reshape(st.shape[1], -1))

    def _from_sums(self, s: np.ndarray, total: float) -> float:
        # Called once per resample: plain ufuncs, no error-state context, only valid cells divided.
        if self.metric == "pearson":
            # A constant column (zero variance up to the rounding of the shared centring) is NaN.
            r = pearson_from_sums(*s.reshape(5, -1), total)
            val = r[np.isfinite(r)]
        else:
            sy, syy, ssr = s.reshape(3, -1)
            sst = syy - sy * sy / total
            ok = (sst > Z_EPS) & (sst > _REL_EPS * syy)
            val = 1.0 - ssr[ok] / sst[ok]
        return float(val.sum() / val.size) if val.size else float("nan")

    def _direct(self, weights: np.ndarray, pick: np.ndarray | None = None, model: int = 0) -> float:
        y, a, b = self._raw
        st = (a, b)[model]
        if pick is not None:
            st = np.where(pick.reshape(1, -1, 1) > 0, b, a)
        rows = np.repeat(np.arange(len(y)), np.asarray(weights).astype(int))
        return pooled_metric(y[rows], st[:, rows], self.metric)

    def score(self, weights: np.ndarray) -> float:
        """The metric of ``stack`` with row ``i`` counted ``weights[i]`` times (integer counts)."""
        if self.direct:
            return self._direct(weights)
        return self._from_sums(weights @ self._a, float(weights.sum()))

    def diff(self, weights: np.ndarray) -> float:
        """``score`` of ``stack`` minus that of ``other`` on the same weighted rows."""
        if self.direct:
            return self._direct(weights) - self._direct(weights, model=1)
        total = float(weights.sum())
        return self._from_sums(weights @ self._a, total) - self._from_sums(weights @ self._b, total)

    def mixed(self, pick_other: np.ndarray) -> float:
        """The metric of ``stack`` with the rows where ``pick_other`` is 1 taken from ``other``."""
        pick = np.asarray(pick_other, dtype=float).reshape(-1)
        if self.direct:
            return self._direct(np.ones(pick.size), pick)
        return self._from_sums(self._a_sum + pick @ self._delta, float(pick.size))


def bootstrap_pooled(y_true, stack, metric, *, groups=None, resampled=None, n_resamples=1000,
                     confidence=0.95, seed=0):
    """Bootstrap CI of :func:`pooled_metric` with :func:`reports.bootstrap.bootstrap_ci`.

    The statistic gathers resampled row indices, so one draw of segments (or of
    whole groups when ``groups`` is given) serves every replicate alike.

    Parameters
    ----------
    y_true : ndarray, shape (n_samples, n_targets)
    stack : ndarray, shape (n_replicates, n_samples, n_targets)
    metric : {"pearson", "r2"}
    groups : array-like, shape (n_samples,), optional
    resampled : str, optional
        What a unit is, for the result's label ("performers", "pieces", ...).
    n_resamples, confidence, seed
        As :func:`reports.bootstrap.bootstrap_ci` (percentile method).

    Returns
    -------
    reports.bootstrap.BootstrapResult
        NaN bounds when the metric is undefined in some resample.
    """
    scorer = PooledScorer(y_true, stack, metric)
    n = len(y_true)

    def statistic(idx: np.ndarray) -> float:
        return scorer.score(np.bincount(idx, minlength=n).astype(float))

    return undefined_tolerant_ci(np.arange(n), statistic, groups=groups, resampled=resampled,
                                 n_resamples=n_resamples, confidence=confidence, seed=seed)


def undefined_tolerant_ci(*args, **kwargs):
    """:func:`reports.bootstrap.bootstrap_ci`, with NaN bounds (logged, not warned) when some resample
    has no defined metric, e.g. a cluster resample of one performer under a constant predictor."""
    from scipy.stats import DegenerateDataWarning

    from reports.bootstrap import bootstrap_ci

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DegenerateDataWarning)
        res = bootstrap_ci(*args, **kwargs)
    if np.isfinite(res.estimate) and not (np.isfinite(res.low) and np.isfinite(res.high)):
        logger.info("bootstrap CI over %s undefined: the metric is undefined in some resamples", res.resampled)
    return res


def summary_table(run_dir, *, n_resamples: int = 2000, seed: int = 0) -> pd.DataFrame:
    """One row per model: pooled mean r and R^2 with 95% segment-bootstrap CIs,
    per-fold means, and how many of the planned jobs finished.

    ``run_dir`` is a run directory or a :class:`reports.rundata.RunData` already read.
    """
    if hasattr(run_dir, "manifest"):
        manifest, rows, preds = run_dir.manifest, run_dir.rows, run_dir.preds
    else:
        manifest, rows, preds = load_run(run_dir)
    cfg = manifest["config"]
    partition = bool(manifest["split"].get("partition", True))
    targets = manifest["target_names"]
    n_folds = manifest["n_folds"]
    expected = sum(n_folds.values())
    out = []
    for model in manifest.get("models") or cfg["models"]:
        r = rows[rows["model"] == model]
        ok_jobs = r[r["status"] == "ok"].drop_duplicates(["seed", "fold"])
        failed = r[r["status"] == "failed"].drop_duplicates(["seed", "fold"])
        rec = {"model": model, "jobs_ok": len(ok_jobs), "jobs_expected": expected, "jobs_failed": len(failed)}
        complete_seeds = [int(s) for s in cfg["seeds"]
                          if (ok_jobs["seed"] == int(s)).sum() == n_folds[str(s)]]
        rec["complete"] = len(ok_jobs) == expected
        seeded = bool(manifest["split"].get("seeded", True))
        if complete_seeds and len(preds):
            p = preds[(preds["model"] == model) & preds["seed"].isin(complete_seeds)]
            ids, y_true, stack, _ = prediction_stack(p, model, targets, partition)
            # Constant within every fold: pooling folds correlates only the constant's moves between
            # folds (the leave-one-out mean artefact), so the correlation is undefined.
            spread = p.groupby(["seed", "fold", "target"])["y_pred"].agg(lambda v: float(np.ptp(v.to_numpy())))
            constant = bool((spread <= 1e-12 * max(1.0, float(p["y_pred"].abs().max()))).all())
            for metric in METRIC_FUNCTIONS:
                if constant and metric == "pearson":
                    rec["pooled_pearson"] = rec["pooled_pearson_lo"] = rec["pooled_pearson_hi"] = np.nan
                    continue
                rec[f"pooled_{metric}"] = pooled_metric(y_true, stack, metric)
                ci = bootstrap_pooled(y_true, stack, metric, n_resamples=n_resamples, seed=seed)
                rec[f"pooled_{metric}_lo"], rec[f"pooled_{metric}_hi"] = ci.low, ci.high
            rec["seeds_used"] = ",".join(map(str, complete_seeds))
        # Per-fold columns use complete seeds only; seeds that do not change the folds are averaged
        # within each fold first (they are not replicates).
        per_fold = r[(r["status"] == "ok") & r["metric"].isin(["pearson", "r2", "mae"])
                     & r["seed"].isin(complete_seeds)]
        fold_means = per_fold.groupby(["metric", "seed", "fold"])["value"].mean()
        if not seeded and partition:
            fold_means = fold_means.groupby(level=["metric", "fold"]).mean()
        for metric, vals in fold_means.groupby(level="metric"):
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
                # complete but undefined: a constant prediction has no correlation
                return "undefined (constant within each fold)" if row["complete"] else "n/a (no complete seed)"
            return f"{row[f'pooled_{metric}']:.3f} [{row[f'pooled_{metric}_lo']:.3f}, {row[f'pooled_{metric}_hi']:.3f}]"

        def fold(metric, row=row):
            m = row.get(f"fold_{metric}_mean", np.nan)
            return "n/a" if pd.isna(m) else f"{m:.3f} ± {row[f'fold_{metric}_sd']:.3f}"

        jobs = f"{row['jobs_ok']}/{row['jobs_expected']}"
        if not row["complete"]:
            jobs += f" (partial: {row['jobs_ok']} of {row['jobs_expected']} jobs)"
        lines.append(f"| {row['model']} | {ci('pearson')} | {ci('r2')} | {fold('pearson')} | {fold('r2')} | {jobs} |")
    lines.append("")
    lines.append(f"Split `{split}`. Headline: the pooled mean r, the number published results report; it mixes "
                 "the correlation of performers' mean levels with the correlation within performers, so the "
                 "report (`benchmark report`) adds the within-performer r and the fold-level r with cluster CIs, "
                 "and tests differences on the fold-level r. CIs here: percentile bootstrap over segments "
                 "(2000 resamples, the same draw for every seed: the report's segment CIs are the same). Per-fold: mean ± sd over folds of the "
                 "target-averaged metric, complete seeds only, seeds averaged within a fold when they do not "
                 "change the folds.")
    return "\n".join(lines)
