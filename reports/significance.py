"""Paper-grade comparison of the models of one run: CIs, paired tests, per-target table, ranks.

Every number comes from the run directory (manifest, metric rows, out-of-fold
predictions) and a tested function of :mod:`reports.stats`; this module only
decides what is paired with what:

* *Pooled* metrics score all out-of-fold predictions of a seed at once (see
  :mod:`reports.summary`), averaged over the complete seeds.
* Intervals say what was resampled: segments, whole groups of the split's
  grouping (performers for ``lopo``, pieces for ``piece``, ...), or seeds.
* Differences are ``model - baseline``. Fold-level tests pair (seed, fold)
  units; the permutation test and the paired bootstrap pair segments.
* A model whose jobs did not all finish is never averaged silently: only its
  complete seeds are used and it is marked ``partial: k of n folds``; with no
  complete seed it gets no numbers and no tests.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from benchmark.errors import ConfigError, DataError
from reports.multitest import adjust_pvalues
from reports.paired import corrected_resampled_ttest, effect_size
from reports.permutation import permutation_test_predictions
from reports.rundata import RunData, fold_scores, load_run_data, resolve_baseline
from reports.summary import (
    METRIC_FUNCTIONS,
    PooledScorer,
    _nanmean,
    bootstrap_pooled,
    column_pearson,
    pooled_metric,
    undefined_tolerant_ci,
)

CORRECTIONS = ("holm", "fdr_bh")
#: Below this many groups a cluster-bootstrap CI gets a warning note.
FEW_GROUPS = 10
CORRECTION_NAMES = {"holm": "Holm (family-wise error rate)", "fdr_bh": "Benjamini-Hochberg (false discovery rate)"}
METRIC_LABELS = {"pearson": "r", "r2": "R²"}
_METRIC_COLUMNS = ("", "seg_lo", "seg_hi", "cluster_lo", "cluster_hi", "seeds_lo", "seeds_hi", "seeds_sd",
                   "fold_mean", "fold_sd", "fold_n", "diff", "diff_lo", "diff_hi", "nb_t", "nb_df", "nb_p",
                   "nb_p_adj", "perm_p", "perm_p_adj", "cohen_dz", "hedges_gz", "n_units")


def _metric_columns(metrics) -> list[str]:
    return [f"{m}_{c}" if c else m for m in metrics for c in _METRIC_COLUMNS]


def _check_options(correction: str, n_resamples: int) -> None:
    if correction not in CORRECTIONS:
        raise ConfigError(f"correction={correction!r}; use one of {CORRECTIONS}")
    if int(n_resamples) < 1:
        raise ConfigError(f"n_resamples={n_resamples!r} must be >= 1 (2000 is usual)")


def _seed_interval(values: np.ndarray, confidence: float) -> tuple[float, float, float]:
    """t-interval of the mean over seeds, and the sd; NaN below 2 seeds."""
    v = values[np.isfinite(values)]
    if v.size < 2:
        return np.nan, np.nan, np.nan
    sd = float(v.std(ddof=1))
    half = float(stats.t.ppf(0.5 + confidence / 2, v.size - 1)) * sd / np.sqrt(v.size)
    return float(v.mean()) - half, float(v.mean()) + half, sd


def _paired_tests(run: RunData, model: str, base: str, metric: str, seeds: list[int], *, target: str | None = None,
                  n_resamples: int, seed: int, confidence: float, with_bootstrap: bool = True) -> dict:
    """``model - base``: corrected t-test over (seed, fold), permutation test, paired bootstrap."""
    out: dict = {}
    a = fold_scores(run, model, metric, seeds, target)
    b = fold_scores(run, base, metric, seeds, target)
    units = a.merge(b, left_index=True, right_index=True, suffixes=("_a", "_b"))
    # A fold where either model has no score (constant predictions have no r) cannot be paired.
    units = units[np.isfinite(units["value_a"]) & np.isfinite(units["value_b"])]
    out["n_units"] = len(units)
    if len(units) >= 2:
        va, vb = units["value_a"].to_numpy(), units["value_b"].to_numpy()
        n_train, n_test = units["n_train_a"].to_numpy(), units["n_test_a"].to_numpy()
        nb = corrected_resampled_ttest(va, vb, n_train, n_test, confidence=confidence)
        es = effect_size(va, vb, confidence=confidence, n_train=n_train, n_test=n_test)
        out.update(nb_t=nb.statistic, nb_df=nb.df, nb_p=nb.pvalue, cohen_dz=es.cohen_dz, hedges_gz=es.hedges_gz)
    ids, y, sa, _ = run.stack(model, seeds)
    ids_b, _, sb, _ = run.stack(base, seeds)
    if not np.array_equal(ids, ids_b):
        raise DataError(f"models {model!r} and {base!r} predict different segments; the run is inconsistent")
    if target is not None:
        j = run.targets.index(target)
        y, sa, sb = y[:, [j]], sa[:, :, [j]], sb[:, :, [j]]
    scorer = PooledScorer(y, sa, metric, other=sb)
    n = len(y)
    # The swap test moves a segment's predictions of every seed and target together. Its arrays are
    # indicators: "prediction" 1 means the segment's row is taken from the other model, which the
    # scorer turns into the pooled metric of the mixed predictions.
    perm = permutation_test_predictions(np.zeros(n), np.zeros(n), np.ones(n),
                                        lambda _, pick: scorer.mixed(pick), n_permutations=n_resamples, seed=seed)
    out.update(diff=perm.statistic, perm_p=perm.pvalue)
    if with_bootstrap and np.isfinite(perm.statistic):
        # As reports.bootstrap.paired_bootstrap_diff: both models scored on the same resample.
        ci = undefined_tolerant_ci(np.arange(n), lambda idx: scorer.diff(np.bincount(idx, minlength=n).astype(float)),
                          groups=run.groups(ids), resampled=run.cluster, n_resamples=n_resamples,
                          confidence=confidence, seed=seed)
        out.update(diff_lo=ci.low, diff_hi=ci.high)
    return out


def _ceiling_values(run: RunData, ceiling: pd.DataFrame | None) -> np.ndarray | None:
    if ceiling is None:
        return None
    if not isinstance(ceiling, pd.DataFrame) or not {"target", "ceiling_r"} <= set(ceiling.columns):
        raise ConfigError("ceiling must be the DataFrame of reports.ceiling.noise_ceiling (target, ceiling_r)")
    c = ceiling.set_index("target")["ceiling_r"]
    missing = [t for t in run.targets if t not in c.index]
    if missing:
        raise ConfigError(f"the ceiling table lacks {len(missing)} target(s) of this run, e.g. {missing[:2]}")
    return c.loc[run.targets].to_numpy(dtype=float)


def _run_attrs(run: RunData, kind: str, base: str, correction: str, n_resamples: int, confidence: float,
               seed: int) -> dict:
    return {"kind": kind, "run_id": str(run.manifest.get("run_id", run.run_dir.name)), "split": run.split,
            "group_column": run.group_column, "cluster": run.cluster, "partition": run.partition,
            "seeds": list(run.seeds), "baseline": base, "correction": correction, "n_resamples": int(n_resamples),
            "confidence": float(confidence), "seed": int(seed)}


def _method_notes(run: RunData, base: str, correction: str, n_resamples: int, confidence: float) -> list[str]:
    pooled = ("pooled out-of-fold predictions of each seed" if run.partition
              else "each fold model scored on the fixed test set")
    cluster = (f"whole {run.cluster} (the split's grouping, column {run.group_column!r})"
               if run.cluster else "nothing else (the split is not grouped)")
    return [
        f"Split {run.split!r}, grouping: {run.group_column or 'none'}; seeds {','.join(map(str, run.seeds))}.",
        f"Metrics: mean over targets of Pearson r / R² on {pooled}, averaged over complete seeds.",
        f"{confidence:.0%} CIs: percentile bootstrap ({n_resamples} resamples) over segments and over {cluster}; "
        "one draw serves every seed. Performers and pieces are crossed, so one factor's resampling covers only "
        "its share of the variance." + (" Seeds: t-interval over the seeds' pooled values." if len(run.seeds) > 1
                                         else ""),
        f"Differences: model - baseline {base!r}: paired bootstrap CI over {run.cluster or 'segments'}; "
        "corrected resampled t-test (Nadeau & Bengio 2003) over matched (seed, fold) units of the per-fold "
        f"target-averaged metric; paired permutation test on out-of-fold predictions ({n_resamples} "
        "permutations); Cohen's d_z of the fold differences.",
        f"p-values adjusted across the model-vs-baseline pairs with {CORRECTION_NAMES[correction]}.",
    ]


def significance_table(
    run_dir: str | Path | RunData,
    *,
    baseline: str | None = None,
    correction: str = "holm",
    n_resamples: int = 2000,
    seed: int = 0,
    ceiling: pd.DataFrame | None = None,
    metrics: tuple[str, ...] = ("pearson", "r2"),
    confidence: float = 0.95,
) -> pd.DataFrame:
    """One row per model: pooled metrics with CIs, and tests of the difference to a baseline.

    For each metric ``m`` in ``metrics`` (``pearson``: mean r over targets;
    ``r2``: mean R^2), the columns are

    * ``m``: pooled metric averaged over the complete seeds;
    * ``m_seg_lo/hi``: percentile bootstrap over segments; ``m_cluster_lo/hi``:
      over whole groups of the split (``attrs["cluster"]`` names them; NaN for
      an ungrouped split); the same draw serves every seed;
    * ``m_seeds_lo/hi``, ``m_seeds_sd``: t-interval over seeds (>= 2 seeds);
    * ``m_fold_mean``, ``m_fold_sd``, ``m_fold_n``: over (seed, fold) units of
      the target-averaged per-fold metric;
    * ``m_diff``: pooled ``model - baseline``; ``m_diff_lo/hi``: paired
      bootstrap CI over the split's groups (segments when ungrouped);
    * ``m_nb_t``, ``m_nb_df``, ``m_nb_p``: Nadeau-Bengio corrected resampled
      t-test over matched (seed, fold) units (n_train/n_test from the metric
      rows); ``m_perm_p``: paired permutation test on the out-of-fold
      predictions (a segment's predictions swapped in every seed at once);
      ``*_p_adj``: adjusted across the model-vs-baseline pairs with
      ``correction``; ``m_cohen_dz``, ``m_hedges_gz``: effect sizes of the
      fold differences; ``m_n_units``: pairs used.

    plus ``model``, ``role`` (``baseline`` or empty), ``status``
    (``complete`` / ``partial: k of n folds``), ``jobs_ok``,
    ``jobs_expected``, ``seeds_used``, ``ceiling_fraction`` (mean over
    targets of pooled r / ceiling r, when ``ceiling`` is given) and ``note``.
    ``attrs`` records the split, its grouping, the baseline, the correction
    and one sentence per method (``attrs["notes"]``).

    Parameters
    ----------
    run_dir : path or RunData
    baseline : str, optional
        Default ``rf`` if in the run, else the first model.
    correction : {"holm", "fdr_bh"}
    n_resamples : int
        Bootstrap resamples and permutations.
    seed : int
    ceiling : DataFrame, optional
        :func:`reports.ceiling.noise_ceiling` output.
    metrics : tuple of {"pearson", "r2"}
    confidence : float

    Returns
    -------
    DataFrame, one row per model in run order.

    Raises
    ------
    ConfigError
        Unknown baseline, metric or correction; not a run directory.
    DataError
        Models whose predictions cover different segments.
    """
    run = load_run_data(run_dir)
    _check_options(correction, n_resamples)
    bad = [m for m in metrics if m not in METRIC_FUNCTIONS]
    if bad:
        raise ConfigError(f"unknown metric {bad[0]!r}; use {tuple(METRIC_FUNCTIONS)}")
    base = resolve_baseline(run, baseline)
    ceil = _ceiling_values(run, ceiling)
    base_seeds = set(run.complete_seeds(base))
    recs = []
    for model in run.models:
        seeds = run.complete_seeds(model)
        rec = {"model": model, "role": "baseline" if model == base else "", "status": run.status(model),
               "jobs_ok": len(run.ok_units(model)), "jobs_expected": run.n_expected,
               "seeds_used": ",".join(map(str, seeds))}
        notes = []
        if not seeds:
            notes.append("no complete seed: no pooled metric, excluded from tests")
        elif len(seeds) < len(run.seeds):
            notes.append(f"only complete seeds {rec['seeds_used']} used")
        if seeds:
            ids, y, st, rep_seed = run.stack(model, seeds)
            groups = run.groups(ids)
            for m in metrics:
                rec[m] = pooled_metric(y, st, m)
                seg = bootstrap_pooled(y, st, m, n_resamples=n_resamples, confidence=confidence, seed=seed)
                rec[f"{m}_seg_lo"], rec[f"{m}_seg_hi"] = seg.low, seg.high
                if groups is not None:
                    clu = bootstrap_pooled(y, st, m, groups=groups, resampled=run.cluster,
                                           n_resamples=n_resamples, confidence=confidence, seed=seed)
                    rec[f"{m}_cluster_lo"], rec[f"{m}_cluster_hi"] = clu.low, clu.high
                per_seed = np.array([pooled_metric(y, st[rep_seed == s], m) for s in seeds])
                rec[f"{m}_seeds_lo"], rec[f"{m}_seeds_hi"], rec[f"{m}_seeds_sd"] = _seed_interval(per_seed, confidence)
                f = fold_scores(run, model, m, seeds)["value"]
                rec[f"{m}_fold_mean"] = float(f.mean())
                rec[f"{m}_fold_sd"] = float(f.std(ddof=1)) if f.notna().sum() > 1 else np.nan
                rec[f"{m}_fold_n"] = int(f.notna().sum())
            if ceil is not None:
                r_t = _nanmean(column_pearson(y, st), axis=0)
                rec["ceiling_fraction"] = float(_nanmean(r_t / ceil))
        common = [s for s in seeds if s in base_seeds]
        if model != base and seeds:
            if not common:
                notes.append(f"no complete seed shared with baseline {base!r}: excluded from tests")
            else:
                if len(common) < len(seeds):
                    notes.append(f"tests on seeds {','.join(map(str, common))} shared with the baseline")
                for m in metrics:
                    res = _paired_tests(run, model, base, m, common, n_resamples=n_resamples, seed=seed,
                                        confidence=confidence)
                    rec.update({f"{m}_{k}": v for k, v in res.items()})
        rec["note"] = "; ".join(notes)
        recs.append(rec)
    table = pd.DataFrame(recs)
    for col in _metric_columns(metrics):
        if col not in table:
            table[col] = np.nan
    if "ceiling_fraction" not in table and ceil is not None:
        table["ceiling_fraction"] = np.nan
    for col in (f"{m}_{k}" for m in metrics for k in ("nb_p", "perm_p")):
        table[f"{col}_adj"] = adjust_pvalues(table[col].to_numpy(dtype=float), correction)[0]
    order = ["model", "role", "status", "jobs_ok", "jobs_expected", "seeds_used"]
    order += _metric_columns(metrics)
    order += [c for c in ("ceiling_fraction", "note") if c in table]
    table = table[order]
    table.attrs.update(_run_attrs(run, "significance", base, correction, n_resamples, confidence, seed))
    table.attrs["metrics"] = list(metrics)
    table.attrs["notes"] = _method_notes(run, base, correction, n_resamples, confidence)
    n_groups = len(np.unique(run.groups(run.preds["sample_id"].unique()))) if run.cluster and len(run.preds) else 0
    table.attrs["n_groups"] = n_groups
    if 0 < n_groups < FEW_GROUPS:
        table.attrs["notes"].append(f"Only {n_groups} {run.cluster}: a cluster bootstrap over so few units is "
                                    "coarse; read its CIs with care.")
    return table


def per_target_table(
    run_dir: str | Path | RunData,
    *,
    baseline: str | None = None,
    correction: str = "holm",
    n_resamples: int = 2000,
    seed: int = 0,
    ceiling: pd.DataFrame | None = None,
    resample: str = "split",
    confidence: float = 0.95,
) -> pd.DataFrame:
    """One row per target: each model's pooled r with CI, r / ceiling and its test against the baseline.

    Columns are ``target``, ``ceiling_r`` (with ``ceiling``) and, per model,
    ``{model}.r``, ``{model}.r_lo``, ``{model}.r_hi`` (percentile bootstrap
    over the split's groups, or segments: ``attrs["resampled"]``),
    ``{model}.r_over_ceiling`` and, for models other than the baseline,
    ``{model}.diff`` (pooled r difference), ``{model}.nb_p`` (corrected
    resampled t-test over (seed, fold) units of that target's per-fold r),
    ``{model}.perm_p`` (permutation test on that target's predictions) and
    their ``_adj`` forms, adjusted across the targets with ``correction``.

    Parameters
    ----------
    run_dir, baseline, correction, n_resamples, seed, ceiling, confidence
        As :func:`significance_table`.
    resample : {"split", "segments"}
        CI unit: the split's groups (segments if ungrouped) or segments.

    Returns
    -------
    DataFrame, one row per target in label order.

    Raises
    ------
    ConfigError
        As :func:`significance_table`, or a bad ``resample``.
    """
    run = load_run_data(run_dir)
    _check_options(correction, n_resamples)
    if resample not in ("split", "segments"):
        raise ConfigError(f"resample={resample!r}; use 'split' (the split's groups) or 'segments'")
    base = resolve_baseline(run, baseline)
    ceil = _ceiling_values(run, ceiling)
    table = pd.DataFrame({"target": run.targets})
    if ceil is not None:
        table["ceiling_r"] = ceil
    use_groups = resample == "split" and run.cluster is not None
    notes = []
    base_seeds = set(run.complete_seeds(base))
    for model in run.models:
        seeds = run.complete_seeds(model)
        cols = {c: np.full(len(run.targets), np.nan) for c in ("r", "r_lo", "r_hi", "r_over_ceiling")}
        if model != base:
            cols.update({c: np.full(len(run.targets), np.nan) for c in ("diff", "nb_p", "perm_p")})
        if not seeds:
            notes.append(f"{model}: {run.status(model)}, no complete seed: no values")
        else:
            ids, y, st, _ = run.stack(model, seeds)
            groups = run.groups(ids) if use_groups else None
            for j in range(len(run.targets)):
                ci = bootstrap_pooled(y[:, [j]], st[:, :, [j]], "pearson", groups=groups,
                                      resampled=run.cluster if use_groups else None, n_resamples=n_resamples,
                                      confidence=confidence, seed=seed)
                cols["r"][j], cols["r_lo"][j], cols["r_hi"][j] = ci.estimate, ci.low, ci.high
            if ceil is not None:
                cols["r_over_ceiling"] = cols["r"] / ceil
            common = [s for s in seeds if s in base_seeds]
            if model != base and common:
                for j, t in enumerate(run.targets):
                    res = _paired_tests(run, model, base, "pearson", common, target=t, n_resamples=n_resamples,
                                        seed=seed, confidence=confidence, with_bootstrap=False)
                    for c in ("diff", "nb_p", "perm_p"):
                        cols[c][j] = res.get(c, np.nan)
            elif model != base:
                notes.append(f"{model}: no complete seed shared with baseline {base!r}: not tested")
            if run.status(model) != "complete":
                notes.append(f"{model}: {run.status(model)}; complete seeds {','.join(map(str, seeds))} only")
        for c, v in cols.items():
            table[f"{model}.{c}"] = v
        if model != base:
            for c in ("nb_p", "perm_p"):
                table[f"{model}.{c}_adj"] = adjust_pvalues(table[f"{model}.{c}"].to_numpy(), correction)[0]
    if ceil is None:
        table = table.drop(columns=[f"{m}.r_over_ceiling" for m in run.models])
    table.attrs.update(_run_attrs(run, "per_target", base, correction, n_resamples, confidence, seed))
    table.attrs["models"] = list(run.models)
    table.attrs["status"] = {m: run.status(m) for m in run.models}
    table.attrs["resampled"] = run.cluster if use_groups else "segments"
    table.attrs["notes"] = [
        f"Split {run.split!r}, grouping: {run.group_column or 'none'}; seeds {','.join(map(str, run.seeds))}.",
        f"Pooled Pearson r per target; {confidence:.0%} percentile bootstrap CI over "
        f"{table.attrs['resampled']} ({n_resamples} resamples).",
        f"Tests against baseline {base!r} per target: corrected resampled t-test over (seed, fold) and paired "
        f"permutation test on out-of-fold predictions, adjusted across the {len(run.targets)} targets with "
        f"{CORRECTION_NAMES[correction]}.",
        *notes,
    ]
    return table


def bayesian_table(
    run_dir: str | Path | RunData,
    *,
    baseline: str | None = None,
    rope: float = 0.01,
    metric: str = "pearson",
    threshold: float = 0.95,
) -> pd.DataFrame:
    """Bayesian correlated t-test of every model against the baseline, with a ROPE.

    Over matched (seed, fold) units of the target-averaged per-fold metric
    (Benavoli et al. 2017, "Time for a change", JMLR 18): rho = mean n_test /
    (n_train + n_test). The verdict is "better", "worse" or "equivalent" when
    that posterior probability reaches ``threshold``, else "undecided". When the
    run is a 5x2 design (5 seeds of a 2-fold split), Dietterich's 5x2cv t-test
    is added (``cv5x2_t``, ``cv5x2_p``); otherwise those cells are NaN.

    Returns
    -------
    DataFrame, one row per non-baseline model: ``model``, ``p_better``,
    ``p_equivalent``, ``p_worse``, ``verdict``, ``n_units``, ``cv5x2_t``, ``cv5x2_p``.
    """
    from reports.paired import bayesian_correlated_ttest, five_by_two_cv_ttest

    run = load_run_data(run_dir)
    base = resolve_baseline(run, baseline)
    base_seeds = set(run.complete_seeds(base))
    design_5x2 = (run.partition and len(run.seeds) == 5 and all(n == 2 for n in run.n_folds.values()))
    recs = []
    for model in run.models:
        if model == base:
            continue
        seeds = [s for s in run.complete_seeds(model) if s in base_seeds]
        rec = {"model": model, "p_better": np.nan, "p_equivalent": np.nan, "p_worse": np.nan,
               "verdict": "not tested", "n_units": 0, "cv5x2_t": np.nan, "cv5x2_p": np.nan}
        units = fold_scores(run, model, metric, seeds).merge(
            fold_scores(run, base, metric, seeds), left_index=True, right_index=True, suffixes=("_a", "_b"))
        units = units[np.isfinite(units["value_a"]) & np.isfinite(units["value_b"])]
        rec["n_units"] = len(units)
        if len(units) >= 2:
            rho = float((units["n_test_a"] / (units["n_train_a"] + units["n_test_a"])).mean())
            res = bayesian_correlated_ttest(units["value_a"].to_numpy(), units["value_b"].to_numpy(), rho, rope)
            rec.update(p_better=res.p_a_better, p_equivalent=res.p_rope, p_worse=res.p_b_better)
            probs = {"better": res.p_a_better, "equivalent": res.p_rope, "worse": res.p_b_better}
            best = max(probs, key=probs.get)
            rec["verdict"] = best if probs[best] >= threshold else "undecided"
        if design_5x2 and len(units) == 10:
            a = units["value_a"].unstack("fold").to_numpy()
            b = units["value_b"].unstack("fold").to_numpy()
            cv = five_by_two_cv_ttest(a, b)
            rec.update(cv5x2_t=cv.statistic, cv5x2_p=cv.pvalue)
        recs.append(rec)
    table = pd.DataFrame(recs, columns=["model", "p_better", "p_equivalent", "p_worse", "verdict", "n_units",
                                        "cv5x2_t", "cv5x2_p"])
    table.attrs.update({"kind": "bayesian", "baseline": base, "metric": metric, "rope": rope, "notes": [
        f"Bayesian correlated t-test (Benavoli et al. 2017) of each model against '{base}' over matched "
        f"(seed, fold) units of the per-fold mean {metric}; ROPE ±{rope}; verdict when a posterior "
        f"probability reaches {threshold}.",
        "5x2cv paired t-test (Dietterich 1998): only for runs of 5 seeds x 2 folds "
        "(e.g. --split kfold --n-splits 2 --seeds 0,1,2,3,4); NaN otherwise."]})
    return table
