"""Every pooled metric of the registry for one model of a run: over all players, and over the pianists only.

The pooled metrics (:data:`benchmark.metrics.POOLED_METRICS`: Pearson r, R^2,
MSE, CCC and the rater-spread accuracies) score all out-of-fold predictions of
a seed at once (a fixed test set: each fold model on the test set), per
target, then average over targets and complete seeds. Each can be computed
over two populations of segments:

* ``all``: every scored segment;
* ``pianists``: the human performers only. The two deadpan score renderings
  (players ``Score`` and ``Score2``: 116 segments with extreme ratings) are
  easy to place at the ends of every scale and add 0.014 to 0.047 to the
  pooled mean r, so every table that shows a pooled metric shows it without
  them too (:data:`benchmark.dataset.SCORE_PLAYERS`).

The rater-spread accuracies need the raters' spread of every scored segment:
the run's ``rater_spread.parquet`` (written by the runner), or, for a run from
before it was stored, the spread computed from the rater file of the run's
data folder when that folder's mean labels reproduce the run's truth
(:func:`run_spread`). Each quantity is computed once per run (:meth:`RunData.memo`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from benchmark.dataset import SCORE_PLAYERS
from benchmark.errors import DataError
from benchmark.metrics import POOLED_METRICS, REGISTRY, column_metric
from benchmark.raters import rater_spread, read_raters
from benchmark.store import RunStore
from reports.rundata import FEW_GROUPS, RunData, too_few, unit_labels
from reports.scoring import bootstrap_pooled, nanmean, pooled_metric

#: The populations a pooled metric is computed over.
POPULATIONS = ("all", "pianists")
#: How tables and the result file name each population.
POPULATION_NOTES = {
    "all": "every scored segment (the 20 pianists and the two deadpan score renderings)",
    "pianists": f"the human performers only: the deadpan score renderings ({', '.join(SCORE_PLAYERS)}) left out",
}
#: Metrics whose within-performer value is defined (truth and predictions centred per performer).
WITHIN_METRICS = ("pearson", "r2", "mse", "ccc")


def within_performer(y: np.ndarray, stack: np.ndarray, performers: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Truth and predictions centred within each performer: their r is the within-performer r.

    Pooled r over LOPO predictions mixes the correlation of the performers'
    means with the correlation within performers; centring both sides per
    performer (per replicate) leaves the latter only.
    """
    _, codes = np.unique(performers, return_inverse=True)
    counts = np.bincount(codes).astype(float)[:, None]

    def centre(a: np.ndarray) -> np.ndarray:
        means = np.zeros((counts.shape[0], a.shape[-1]))
        np.add.at(means, codes, a)
        return a - (means / counts)[codes]

    return centre(y), np.stack([centre(s) for s in stack])


def run_spread(run: RunData) -> tuple[pd.DataFrame | None, dict]:
    """The raters' spread of the run's segments (index sample_id, one column per target), and where it came from.

    Returns
    -------
    spread : DataFrame or None
        None when the run has none and its data folder cannot give it (then ``info["reason"]`` says why).
    info : dict
        ``available``, ``source`` (``"run"``: the run's ``rater_spread.parquet``; ``"data_dir"``: computed now
        from the data folder's rater file) and ``reason`` when unavailable.
    """
    def compute():
        stored = RunStore(run.run_dir).read_spread()
        if stored is not None:
            wide = stored.pivot(index="sample_id", columns="target", values="sd")
            return wide.reindex(columns=run.targets), {"available": True, "source": "run"}
        recorded = run.manifest.get("rater_spread")
        if isinstance(recorded, dict) and recorded.get("available") is False:
            return None, {"available": False, "reason": str(recorded.get("reason", "no rater file"))}
        return _spread_from_data(run)

    return run.memo(("spread",), compute)


def _spread_from_data(run: RunData) -> tuple[pd.DataFrame | None, dict]:
    """The spread from the run's data folder, for a run from before the runner stored it.

    Trusted only when that folder's mean labels give exactly the run's truth: otherwise the folder holds
    other data than the run scored.
    """
    data_dir = run.manifest.get("data_dir")
    if not data_dir or not Path(data_dir).is_dir():
        return None, {"available": False, "reason": "the run stores no rater spread and its data folder is gone"}
    try:
        raters = read_raters(data_dir)
        spread, labels = rater_spread(raters), raters.labels
    except DataError as exc:
        return None, {"available": False, "reason": f"the run stores no rater spread ({exc})"}
    truth = run.preds.drop_duplicates(["sample_id", "target"]).pivot(index="sample_id", columns="target",
                                                                    values="y_true")[run.targets]
    ids = truth.index.to_numpy()
    if not all(i in spread.index and i in labels for i in ids):
        return None, {"available": False, "reason": f"the data folder {data_dir} lacks segments the run scored"}
    labelled = np.array([labels[i][: len(run.targets)] for i in ids], dtype=float)
    if not np.allclose(labelled, truth.to_numpy(), rtol=0, atol=1e-12):
        return None, {"available": False, "reason": f"the mean labels in {data_dir} differ from the run's truth"}
    out = spread.loc[ids]
    out.columns = run.targets
    return out, {"available": True, "source": "data_dir", "data_dir": str(data_dir)}


def available_metrics(run: RunData) -> tuple[str, ...]:
    """The pooled metrics this run can report (the rater-spread ones only with the raters' spread)."""
    spread, _ = run_spread(run)
    return tuple(m for m in POOLED_METRICS if spread is not None or not REGISTRY[m].needs_spread)


def population_mask(run: RunData, ids: np.ndarray, population: str) -> np.ndarray:
    """Which of ``ids`` belong to ``population`` (``all`` or ``pianists``).

    Raises
    ------
    ValueError
        An unknown population.
    """
    if population not in POPULATIONS:
        raise ValueError(f"population {population!r}; use one of {POPULATIONS}")
    if population == "all":
        return np.ones(len(ids), dtype=bool)
    return ~run.meta(ids)["performer"].astype(str).isin(SCORE_PLAYERS).to_numpy()


def scored(run: RunData, model: str, seeds: list[int], population: str = "all"):
    """``(ids, y_true, stack, rep_seed, sd)`` of ``model`` over ``seeds``, restricted to ``population``.

    ``sd`` is the raters' spread of those segments, or None when the run has none.
    """
    def compute():
        ids, y, st, rep = run.stack(model, seeds)
        keep = population_mask(run, ids, population)
        spread, _ = run_spread(run)
        sd = None if spread is None else spread.loc[ids].to_numpy(dtype=float)
        if keep.all():
            return ids, y, st, rep, sd
        return ids[keep], y[keep], st[:, keep], rep, None if sd is None else sd[keep]

    return run.memo(("scored", model, tuple(seeds), population), compute)


def undefined(run: RunData, model: str, seeds: list[int], metric: str) -> bool:
    """Whether ``metric`` is undefined for ``model``: Pearson r of a model constant within every fold."""
    return metric == "pearson" and run.constant(model, seeds)


def pooled_value(run: RunData, model: str, seeds: list[int], metric: str, population: str = "all") -> float:
    """The pooled metric of ``model`` over complete ``seeds`` (:func:`reports.scoring.pooled_metric`), once per run."""
    def compute():
        _, y, st, _, sd = scored(run, model, seeds, population)
        return pooled_metric(y, st, metric, sd=sd) if len(y) else float("nan")

    return run.memo(("pooled", model, tuple(seeds), metric, population), compute)


def pooled_ci(run: RunData, model: str, seeds: list[int], metric: str, *, population: str = "all",
              by: str = "segments", n_resamples: int = 2000, confidence: float = 0.95, seed: int = 0):
    """Percentile bootstrap CI of :func:`pooled_value` over segments or whole units of the split, once per run.

    ``by="units"`` resamples the split's units (performers under lopo); below
    :data:`reports.rundata.FEW_GROUPS` units, or for an ungrouped split, it is
    the segment CI's job and this returns None.

    Returns
    -------
    reports.bootstrap.BootstrapResult or None
    """
    def compute():
        ids, y, st, _, sd = scored(run, model, seeds, population)
        if not len(y):
            return None
        groups, resampled = None, None
        if by == "units":
            if run.design.unit == "segments":
                return None
            groups = unit_labels(run, ids)
            if len(np.unique(groups)) < FEW_GROUPS:
                return None
            resampled = run.design.unit
        return bootstrap_pooled(y, st, metric, groups=groups, resampled=resampled, n_resamples=n_resamples,
                                confidence=confidence, seed=seed, sd=sd)

    return run.memo(("pooled_ci", model, tuple(seeds), metric, population, by, int(n_resamples),
                     float(confidence), int(seed)), compute)


def within_value(run: RunData, model: str, seeds: list[int], metric: str) -> float:
    """The within-performer metric (truth and predictions centred per performer); NaN where not defined."""
    if metric not in WITHIN_METRICS or undefined(run, model, seeds, metric):
        return float("nan")

    def compute():
        ids, y, st, _ = run.stack(model, seeds)
        yw, stw = within_performer(y, st, run.meta(ids)["performer"].astype(str).to_numpy())
        return pooled_metric(yw, stw, metric)

    return run.memo(("within", model, tuple(seeds), metric), compute)


def fold_table(run: RunData, model: str, seeds: list[int]) -> pd.DataFrame:
    """Per (metric, seed, fold) of ``model``: the target-averaged value of its ``ok`` rows (NaN targets skipped, as
    :func:`reports.rundata.fold_scores`), ``n_train`` and ``n_test``; one grouping for every metric, once per run."""
    def compute():
        r = run.rows
        r = r[(r["model"] == model) & (r["status"] == "ok") & r["seed"].isin(seeds)]
        return r.groupby(["metric", "seed", "fold"]).agg(value=("value", "mean"), n_train=("n_train", "first"),
                                                         n_test=("n_test", "first"))

    return run.memo(("fold_table", model, tuple(seeds)), compute)


def fold_values(run: RunData, model: str, metric: str, seeds: list[int]) -> pd.Series:
    """Fold-level values of ``metric`` (target-averaged per (seed, fold); seeds averaged within a fold when they
    do not change the folds, as :meth:`reports.rundata.RunData.fold_level`), from the run's per-fold rows, or
    from its predictions for a metric the rows lack (a run from before the metric existed)."""
    table = fold_table(run, model, seeds)
    if metric in table.index.get_level_values("metric"):
        f = table.loc[metric, "value"]
        return f.groupby(level="fold").mean() if not run.design.seeded and run.partition else f

    def compute():
        p = run.preds[(run.preds["model"] == model) & run.preds["seed"].isin(seeds)]
        spread, _ = run_spread(run)
        out = {}
        for (s, k), grp in p.groupby(["seed", "fold"], sort=True):
            wide = grp.pivot(index="sample_id", columns="target", values="y_pred")[run.targets]
            truth = grp.pivot(index="sample_id", columns="target", values="y_true")[run.targets]
            sd = None if spread is None else spread.loc[wide.index, run.targets].to_numpy(dtype=float)
            if REGISTRY[metric].needs_spread and sd is None:
                return pd.Series(dtype=float)
            vals = pooled_metric(truth.to_numpy(), wide.to_numpy()[None], metric, sd=sd)
            out[(int(s), int(k))] = vals
        series = pd.Series(out, dtype=float)
        series.index = pd.MultiIndex.from_tuples(series.index, names=["seed", "fold"])
        if not run.design.seeded and run.partition:
            series = series.groupby(level="fold").mean()
        return series

    return run.memo(("fold_values", model, metric, tuple(seeds)), compute)


def per_target_values(run: RunData, model: str, seeds: list[int], metric: str,
                      population: str = "all") -> np.ndarray:
    """The pooled ``metric`` of each target (averaged over replicates), shape (n_targets,)."""

    def compute():
        _, y, st, _, sd = scored(run, model, seeds, population)
        if not len(y) or undefined(run, model, seeds, metric):
            return np.full(len(run.targets), np.nan)
        return nanmean(column_metric(metric, y, st, sd), axis=0)

    return run.memo(("per_target", model, tuple(seeds), metric, population), compute)


def metrics_table(run: RunData, *, n_resamples: int = 2000, seed: int = 0, confidence: float = 0.95) -> pd.DataFrame:
    """One row per model: every pooled metric of the registry, over all players and over the pianists only.

    Columns per metric ``m`` of :func:`available_metrics` and population ``p``
    (``all`` has no suffix, ``pianists`` the suffix ``_pianists``): ``m``,
    ``m_seg_lo``, ``m_seg_hi`` (percentile bootstrap over segments), and
    ``m_fold_mean``, ``m_fold_sd`` (fold-level, all players). Plus ``model``,
    ``status``, ``seeds_used``.
    """
    metrics = available_metrics(run)
    recs = []
    for model in run.models:
        seeds = run.complete_seeds(model)
        rec = {"model": model, "status": run.status(model), "seeds_used": ",".join(map(str, seeds))}
        for m in metrics:
            for pop in POPULATIONS:
                sfx = "" if pop == "all" else f"_{pop}"
                rec[f"{m}{sfx}"] = rec[f"{m}{sfx}_seg_lo"] = rec[f"{m}{sfx}_seg_hi"] = np.nan
                if not seeds or undefined(run, model, seeds, m):
                    continue
                rec[f"{m}{sfx}"] = pooled_value(run, model, seeds, m, pop)
                ci = pooled_ci(run, model, seeds, m, population=pop, n_resamples=n_resamples, confidence=confidence,
                               seed=seed)
                if ci is not None:
                    rec[f"{m}{sfx}_seg_lo"], rec[f"{m}{sfx}_seg_hi"] = ci.low, ci.high
            f = fold_values(run, model, m, seeds) if seeds else pd.Series(dtype=float)
            rec[f"{m}_fold_mean"] = float(f.mean()) if f.notna().any() else np.nan
            rec[f"{m}_fold_sd"] = float(f.std(ddof=1)) if f.notna().sum() > 1 else np.nan
        recs.append(rec)
    table = pd.DataFrame(recs)
    _, info = run_spread(run)
    pooled = ("pooled out-of-fold predictions of each seed" if run.partition
              else "each fold model scored on the fixed test set")
    notes = [
        f"Pooled metrics on {pooled}: per target, then the mean over targets and complete seeds; "
        f"{confidence:.0%} percentile bootstrap CIs over segments ({n_resamples} resamples). Pianists only: "
        f"{POPULATION_NOTES['pianists']}. Fold-level: mean ± sd over folds of the target-averaged metric.",
        "MSE: mean squared error on the label scale (0..1), lower is better. CCC: Lin's (1989) concordance "
        "correlation, which unlike r also penalises a shift or a wrong scale. acc ±k sd: the dataset paper's "
        "rater-spread accuracy, the share of predictions within k standard deviations of the segment's ratings "
        "(sd of the answers of every valid sheet; upstream counts an unanswered question as 0, see "
        "benchmark/raters.py).",
    ]
    if not info.get("available"):
        notes.append(f"No rater-spread accuracy: {info.get('reason')}.")
    elif info.get("source") == "data_dir":
        notes.append(f"The raters' spread was computed from {info.get('data_dir')} (the run predates storing it; "
                     "its mean labels reproduce the run's truth).")
    if run.design.few:
        notes.append(f"{too_few(run.design.n_units)}: the significance table gives no unit-level CI.")
    table.attrs.update({"kind": "metrics", "run_id": run.run_id, "split": run.split, "metrics": list(metrics),
                        "populations": list(POPULATIONS), "n_resamples": int(n_resamples), "seed": int(seed),
                        "confidence": float(confidence), "spread": info, "notes": notes,
                        "caption": f"Every pooled metric, all players and pianists only, split {run.split} "
                                   f"(run {run.run_id})."})
    return table


def fold_unit_label(run: RunData, model: str, seeds: list[int]) -> dict[tuple[int, int], str | None]:
    """The unit of each (seed, fold) test set of ``model``: its one unit's label, or None when it holds several."""
    p = run.preds[(run.preds["model"] == model) & run.preds["seed"].isin(seeds)].drop_duplicates(
        ["seed", "fold", "sample_id"])
    if not len(p):
        return {}
    labels = pd.Series(unit_labels(run, p["sample_id"].to_numpy()), index=p.index)
    out = {}
    for (s, k), idx in p.groupby(["seed", "fold"]).groups.items():
        u = labels.loc[idx].unique()
        out[(int(s), int(k))] = str(u[0]) if len(u) == 1 and run.partition else None
    return out


def fold_rows(run: RunData, model: str, seeds: list[int], metrics) -> list[dict]:
    """Per (seed, fold) of ``model``: n_train, n_test, its unit and the target-averaged value of each metric
    the run's rows hold (the scores ``benchmark stats`` reads)."""
    units = fold_unit_label(run, model, seeds)
    table = fold_table(run, model, seeds)
    have = set(table.index.get_level_values("metric"))
    out: dict[tuple[int, int], dict] = {}
    for m in metrics:
        if m not in have:
            continue
        for (s, k), r in table.loc[m].iterrows():
            rec = out.setdefault((int(s), int(k)), {"seed": int(s), "fold": int(k), "unit": units.get((int(s), int(k))),
                                                    "n_train": int(r["n_train"]), "n_test": int(r["n_test"]),
                                                    "values": {}})
            rec["values"][m] = float(r["value"]) if np.isfinite(r["value"]) else None
    return [out[key] for key in sorted(out)]


#: The per-target table's name of each pooled metric (Pearson r keeps its ``r`` columns).
PER_TARGET_NAMES = {"pearson": "r"}


def per_target_columns(run: RunData, model: str, seeds: list[int]) -> dict[str, np.ndarray]:
    """The per-target table's columns of ``model`` for every pooled metric beside Pearson r's CI columns.

    ``{model}.r_pianists`` and, for each other metric ``m`` of :func:`available_metrics`, ``{model}.{m}`` and
    ``{model}.{m}_pianists``: the pooled value of each target (NaN without a complete seed).
    """
    out = {}
    for m in available_metrics(run):
        name = PER_TARGET_NAMES.get(m, m)
        for pop in POPULATIONS:
            if m == "pearson" and pop == "all":
                continue  # the table's own r column, with its CI
            col = f"{model}.{name}" + ("" if pop == "all" else f"_{pop}")
            out[col] = (per_target_values(run, model, seeds, m, pop) if seeds
                        else np.full(len(run.targets), np.nan))
    return out
