"""Paper-grade comparison of the models of one run: CIs, paired tests, per-target table, ranks.

Every number comes from the run directory (manifest, metric rows, out-of-fold
predictions) and a tested function of :mod:`reports.stats`; this module only
decides what is paired with what:

* *Pooled* metrics score all out-of-fold predictions of a seed at once (see
  :mod:`reports.summary`), averaged over the complete seeds.
* Intervals say what was resampled: segments, or whole units of the split
  (performers for ``lopo``, pieces for ``piece``, passages for ``excerpt``).
* Differences are ``model - baseline`` of the fold-level mean metric, one
  estimand per row: its CI, the corrected t-test and the unit-swap permutation
  test are all on it (:mod:`reports.units`). Seeds that do not change the
  folds are averaged within fold; below 10 units no group-level number is
  printed.
* A model whose jobs did not all finish is never averaged silently: only its
  complete seeds are used and it is marked ``partial: k of n folds``; with no
  complete seed it gets no numbers and no tests.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from benchmark.errors import ConfigError
from benchmark.metrics import column_pearson
from reports import calibrated
from reports.calibrated import ratio_scale, withheld
from reports.multitest import adjust_pvalues
from reports.paired import bayesian_correlated_ttest, five_by_two_cv_ftest, standardized_difference, tost_corrected
from reports.pooled import available_metrics, per_target_columns, within_performer
from reports.rundata import FEW_GROUPS, RunData, fold_scores, load_run_data, resolve_baseline, too_few, unit_labels
from reports.scoring import METRIC_FUNCTIONS, bootstrap_pooled, nanmean, pooled_metric
from reports.summary import pooled_segment_ci, pooled_value
from reports.units import UnitComparison, UnitScorer, compare_units, pair_cells

CORRECTIONS = ("holm", "fdr_bh")
CORRECTION_NAMES = {"holm": "Holm (family-wise error rate)", "fdr_bh": "Benjamini-Hochberg (false discovery rate)"}
METRIC_LABELS = {"pearson": "r", "r2": "R²"}
_METRIC_COLUMNS = ("", "seg_lo", "seg_hi", "cluster_lo", "cluster_hi", "pianists", "pianists_seg_lo",
                   "pianists_seg_hi", "within", "within_lo", "within_hi",
                   "seeds_sd", "fold_mean", "fold_sd", "fold_n", "diff", "diff_lo", "diff_hi", "nb_t", "nb_df",
                   "nb_p", "nb_p_adj", "perm_p", "perm_p_adj", "effect", "n_units")


def _metric_columns(metrics) -> list[str]:
    return [f"{m}_{c}" if c else m for m in metrics for c in _METRIC_COLUMNS]


def _check_options(correction: str, n_resamples: int) -> None:
    if correction not in CORRECTIONS:
        raise ConfigError(f"correction={correction!r}; use one of {CORRECTIONS}")
    if int(n_resamples) < 1:
        raise ConfigError(f"n_resamples={n_resamples!r} must be >= 1 (2000 is usual)")


def compare_pair(run: RunData, model: str, base: str, metric: str, seeds: list[int], *, n_resamples: int,
                 seed: int, confidence: float) -> tuple[UnitComparison, list[UnitComparison]]:
    """``model - base`` on the fold-level mean metric, targets averaged and per target (cached on ``run``).

    See :mod:`reports.units`: whole units of the split are resampled and swapped;
    seeds are averaged within fold unless they change the folds.
    """
    def compute():
        scorer = UnitScorer(pair_cells(run, model, base, seeds), metric)
        return compare_units(scorer, seeded=run.design.seeded, partition=run.design.partition,
                             n_resamples=n_resamples, confidence=confidence, seed=seed,
                             ratio_scale=ratio_scale(run.split))

    return run.memo(("compare", model, base, metric, tuple(seeds), int(n_resamples), int(seed), float(confidence)),
                    compute)


def withheld_tests(split: str) -> dict[str, str]:
    """Per printed quantity (``ci``, ``nb``, ``perm``, ``bayes``): the text shown instead of its number on
    ``split`` when docs/calibration.md found the test out of range there ("" = printed)."""
    return {"ci": withheld(split, "cluster bootstrap CI"), "nb": withheld(split, "corrected t (NB)"),
            "perm": withheld(split, "unit-swap permutation"), "bayes": withheld(split, "Bayesian correlated t")}


def _comparison_columns(res: UnitComparison, split: str, metric: str = "pearson") -> dict:
    """The comparison's columns; a test found uncalibrated for ``split`` is left NaN (never printed).

    ``effect`` is :func:`reports.paired.standardized_difference` of the two
    models' fold-level means on the fold units the row's tests use.
    """
    w = withheld_tests(split)
    nan = np.nan
    levels = [float(np.mean(v[np.isfinite(v)])) if np.isfinite(v).any() else nan for v in (res.fold_a, res.fold_b)]
    return {"diff": res.diff, "effect": standardized_difference(*levels, metric), "diff_lo": nan if w["ci"] else res.ci_low, "diff_hi": nan if w["ci"] else res.ci_high,
            "nb_t": nan if w["nb"] else res.nb_t, "nb_df": nan if w["nb"] else res.nb_df,
            "nb_p": nan if w["nb"] else res.nb_p, "perm_p": nan if w["perm"] else res.perm_p, "n_units": res.J}


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
    design = run.design
    return {"kind": kind, "run_id": run.run_id, "split": run.split,
            "group_column": run.group_column, "cluster": None if design.unit == "segments" else design.unit,
            "unit": design.unit, "n_units": design.n_units, "few": design.few,
            "too_few": too_few(design.n_units) if design.few else "", "seeded": design.seeded,
            "partition": run.partition, "seeds": list(run.seeds), "baseline": base, "correction": correction,
            "n_resamples": int(n_resamples), "perm_floor": 1.0 / (int(n_resamples) + 1),
            "confidence": float(confidence), "seed": int(seed), "calibrated": calibrated_tests(run.split),
            "withheld": withheld_tests(run.split), **({"partial": run.partial_note} if run.partial_note else {})}


def calibrated_tests(split: str) -> dict:
    """Which printed tests ``docs/calibration.md`` found calibrated for ``split`` (see scripts/calibration.py)."""
    # Read through the module: a test may patch the calibration table.
    return dict(calibrated.CALIBRATED.get(split, {}))


def calibration_note(split: str) -> str:
    """Which tests docs/calibration.md found calibrated for ``split``, and which are withheld."""
    if not calibrated.covered(split):
        return (f"Split {split!r} is not among the designs simulated in docs/calibration.md: the false-positive "
                "rates of its tests are unknown; read its p-values and CIs with that in mind.")
    cal = calibrated_tests(split)
    text = ("Calibrated for this split (docs/calibration.md: false-positive rate in [0.03, 0.07] at alpha 0.05 "
            "on its real design): " + ("; ".join(f"{k}: {v}" for k, v in cal.items()) if cal else "none") + ".")
    off = [t for t in calibrated.TESTS if t not in cal]
    if off:
        text += (f" Not calibrated, so not printed as numbers (cells say 'not calibrated for {split}', or "
                 "'too few groups' where that applies first): "
                 + ", ".join(off) + ".")
    return text


def _method_notes(run: RunData, base: str, correction: str, n_resamples: int, confidence: float,
                  family: str) -> list[str]:
    design = run.design
    pooled = ("pooled out-of-fold predictions of each seed" if run.partition
              else "each fold model scored on the fixed test set")
    unit = design.unit
    notes = [
        f"Split {run.split!r}; unit of generalisation: {unit} ({design.n_units}); seeds "
        f"{','.join(map(str, run.seeds))} ({'they change the folds' if design.seeded else 'they do not change the folds: not replicates'}).",
        f"Pooled metrics: mean over targets of Pearson r / R² on {pooled}, averaged over complete seeds; "
        f"{confidence:.0%} percentile bootstrap CIs ({n_resamples} resamples) over segments"
        + ("" if unit == "segments" else f" and over whole {unit}") + ". "
        "Pianists only: the pooled metric without the two deadpan score renderings (players Score, Score2), "
        "with its segment CI. Within-performer r: truth and predictions centred per performer, so the performers' mean levels do "
        "not count. Seed sd: spread of the pooled metric over seeds (model instability), not a CI.",
        f"Differences (model - {base!r}) are on the fold-level mean metric ({design.fold_level}): its "
        f"{confidence:.0%} CI is a cluster bootstrap over {unit}: the difference -+ sqrt(G/(G-1)) t_{{G-1}} "
        "times the bootstrap SE (Hesterberg 2015's expansion); p NB is the corrected resampled t-test "
        "(Nadeau & Bengio 2003; repeated-CV form when seeds change the folds) over the fold units; p perm swaps "
        f"whole {unit} between the two models' predictions ({n_resamples} permutations): it tests these two "
        "fitted predictors on these units, not the learning algorithms.",
        f"p-values adjusted with {CORRECTION_NAMES[correction]} over one family per table: {family}.",
        "Effect size: for r, Cohen's q = atanh(r_model) - atanh(r_baseline) of the fold-level means (0.1 small, "
        "0.3 medium, 0.5 large); for R², (R²_model - R²_baseline) / (1 - R²_baseline), the share of the "
        "baseline's unexplained variance removed. Neither depends on fold size (Cohen's d_z of fold differences "
        "does: it divides by their spread, which shrinks as folds grow).",
    ]
    if design.few:
        notes.append(f"Only {design.n_units} {unit}: {too_few(design.n_units)}: no cluster CI or group-level "
                     "p-value is given as a number.")
    notes.append(calibration_note(run.split))
    if not run.partition:
        notes.append("Fixed test set: the fold models share one test set, so they are tested through their "
                     "fold-averaged predictions over the test set's units, never as independent folds.")
    return notes


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

    * ``m``: pooled metric averaged over the complete seeds (NaN for Pearson r
      of a model that is constant within every fold);
    * ``m_seg_lo/hi``: percentile bootstrap over segments; ``m_cluster_lo/hi``:
      over whole units of the split (NaN when ungrouped or with fewer than
      10 units); ``m_pianists`` (``_seg_lo/hi``): the pooled metric without the deadpan score
      renderings, with its segment CI; ``m_within`` (``_lo/hi``): within-performer metric
      (truth and predictions centred per performer) with a performer-cluster CI;
    * ``m_seeds_sd``: sd of the pooled metric over seeds (instability);
    * ``m_fold_mean``, ``m_fold_sd``, ``m_fold_n``: the fold-level mean metric,
      its sd and number of fold units (seeds averaged within fold unless
      they change the folds);
    * ``m_diff``: fold-level mean ``model - baseline``; ``m_diff_lo/hi``:
      cluster bootstrap CI over units; ``m_nb_t``, ``m_nb_df``, ``m_nb_p``:
      corrected resampled t-test over fold units; ``m_perm_p``: whole-unit swap
      permutation test; ``*_p_adj``: adjusted over one family (every model
      pair x metric of the table); ``m_effect``: a standardized effect size
      that does not depend on fold size (Cohen's q for r, the proportional
      error reduction for R²; :func:`reports.paired.standardized_difference`);
      ``m_n_units``: fold units J.

    plus ``model``, ``role``, ``status``, ``jobs_ok``, ``jobs_expected``,
    ``seeds_used``, ``ceiling_fraction`` (with ``ceiling``) and ``note``.

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
        :func:`reports.ceiling.noise_ceiling` output, or a per-test-set ceiling.
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
    design = run.design
    base_seeds = set(run.complete_seeds(base))
    recs = []
    for model in run.models:
        seeds = run.complete_seeds(model)
        rec = {"model": model, "role": "baseline" if model == base else "", "status": run.status(model),
               "jobs_ok": run.jobs(model)[0], "jobs_expected": run.jobs(model)[1],
               "seeds_used": ",".join(map(str, seeds))}
        notes = []
        if not seeds:
            notes.append("no complete seed: no pooled metric, excluded from tests")
        elif len(seeds) < len(run.seeds):
            notes.append(f"only complete seeds {rec['seeds_used']} used")
        constant = bool(seeds) and run.constant(model, seeds)
        if constant:
            notes.append("constant within every fold: its correlation is undefined")
        if seeds:
            ids, y, st, rep_seed = run.stack(model, seeds)
            groups = unit_labels(run, ids) if design.unit != "segments" else None
            performer = run.meta(ids)["performer"]
            # A dataset without a performer column stores none: no within-performer metric then.
            has_performer = bool(performer.notna().all())
            perf_groups = performer.astype(str).to_numpy() if has_performer else None
            yw, stw = within_performer(y, st, perf_groups) if has_performer else (None, None)
            for m in metrics:
                undefined = constant and m == "pearson"
                rec[m] = np.nan if undefined else pooled_value(run, model, seeds, m)
                if undefined:
                    continue
                seg = pooled_segment_ci(run, model, seeds, m, n_resamples=n_resamples, confidence=confidence,
                                        seed=seed)
                rec[f"{m}_seg_lo"], rec[f"{m}_seg_hi"] = seg.low, seg.high
                # The same metric without the deadpan score renderings (reports.pooled).
                rec[f"{m}_pianists"] = pooled_value(run, model, seeds, m, "pianists")
                pseg = pooled_segment_ci(run, model, seeds, m, n_resamples=n_resamples, confidence=confidence,
                                         seed=seed, population="pianists")
                if pseg is not None:
                    rec[f"{m}_pianists_seg_lo"], rec[f"{m}_pianists_seg_hi"] = pseg.low, pseg.high
                if groups is not None and not design.few:
                    clu = bootstrap_pooled(y, st, m, groups=groups, resampled=design.unit,
                                           n_resamples=n_resamples, confidence=confidence, seed=seed)
                    rec[f"{m}_cluster_lo"], rec[f"{m}_cluster_hi"] = clu.low, clu.high
                rec[f"{m}_within"] = pooled_metric(yw, stw, m) if has_performer else np.nan
                if has_performer and len(np.unique(perf_groups)) >= FEW_GROUPS:
                    wci = bootstrap_pooled(yw, stw, m, groups=perf_groups, resampled="performers",
                                           n_resamples=n_resamples, confidence=confidence, seed=seed)
                    rec[f"{m}_within_lo"], rec[f"{m}_within_hi"] = wci.low, wci.high
                per_seed = np.array([pooled_metric(y, st[rep_seed == s], m) for s in seeds])
                rec[f"{m}_seeds_sd"] = float(np.std(per_seed, ddof=1)) if len(seeds) > 1 else np.nan
                f = run.fold_level(model, m, seeds)
                rec[f"{m}_fold_mean"] = float(f.mean()) if f.notna().any() else np.nan
                rec[f"{m}_fold_sd"] = float(f.std(ddof=1)) if f.notna().sum() > 1 else np.nan
                rec[f"{m}_fold_n"] = int(f.notna().sum())
            if ceil is not None and not constant:
                r_t = nanmean(column_pearson(y, st), axis=0)
                rec["ceiling_fraction"] = float(nanmean(r_t / ceil))
        common = [s for s in seeds if s in base_seeds]
        if model != base and seeds:
            if not common:
                notes.append(f"no complete seed shared with baseline {base!r}: excluded from tests")
            else:
                if len(common) < len(seeds):
                    notes.append(f"tests on seeds {','.join(map(str, common))} shared with the baseline")
                for m in metrics:
                    res, _ = compare_pair(run, model, base, m, common, n_resamples=n_resamples, seed=seed,
                                          confidence=confidence)
                    rec.update({f"{m}_{k}": v for k, v in _comparison_columns(res, run.split, m).items()})
        rec["note"] = "; ".join(notes)
        recs.append(rec)
    table = pd.DataFrame(recs)
    for col in _metric_columns(metrics):
        if col not in table:
            table[col] = np.nan
    if "ceiling_fraction" not in table and ceil is not None:
        table["ceiling_fraction"] = np.nan
    for test in ("nb_p", "perm_p"):
        cols = [f"{m}_{test}" for m in metrics]
        adj = adjust_pvalues(table[cols].to_numpy(dtype=float), correction)[0]
        for j, col in enumerate(cols):
            table[f"{col}_adj"] = adj[:, j]
    order = ["model", "role", "status", "jobs_ok", "jobs_expected", "seeds_used"]
    order += _metric_columns(metrics)
    order += [c for c in ("ceiling_fraction", "note") if c in table]
    table = table[order]
    table.attrs.update(_run_attrs(run, "significance", base, correction, n_resamples, confidence, seed))
    table.attrs["metrics"] = list(metrics)
    n_pairs = int(sum(r["model"] != base for r in recs))
    table.attrs["family"] = f"{n_pairs} model pairs x {len(metrics)} metrics, per test"
    table.attrs["notes"] = _method_notes(run, base, correction, n_resamples, confidence, table.attrs["family"])
    table.attrs["n_groups"] = design.n_units
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
    with_tests: bool = True,
) -> pd.DataFrame:
    """One row per target: each model's pooled r with CI, r / ceiling and its test against the baseline.

    Columns are ``target``, ``ceiling_r`` (with ``ceiling``) and, per model,
    ``{model}.r``, ``{model}.r_lo``, ``{model}.r_hi`` (percentile bootstrap
    over the split's units, or segments: ``attrs["resampled"]``; NaN with
    fewer than 10 units), ``{model}.r_over_ceiling`` and, for models other
    than the baseline, ``{model}.diff`` (that target's fold-level mean r
    difference), ``{model}.nb_p`` (corrected resampled t-test over fold
    units), ``{model}.perm_p`` (whole-unit swap permutation test) and their
    ``_adj`` forms, adjusted over one family: every model pair x target.
    Beside them, per model, every other pooled metric of the registry the run
    can report (``attrs["metrics"]``), as ``{model}.{metric}`` (``mse``,
    ``ccc``, ``acc_1sd``...), and each metric over the pianists only,
    ``{model}.r_pianists``, ``{model}.{metric}_pianists`` (the deadpan score
    renderings left out; :func:`reports.pooled.per_target_columns`).

    Parameters
    ----------
    run_dir, baseline, correction, n_resamples, seed, ceiling, confidence
        As :func:`significance_table`.
    resample : {"split", "segments"}
        CI unit: the split's units (segments if ungrouped) or segments.
    with_tests : bool
        False leaves the test columns NaN (the figures need only the CIs).

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
    design = run.design
    table = pd.DataFrame({"target": run.targets})
    if ceil is not None:
        table["ceiling_r"] = ceil
        if {"ceiling_lo", "ceiling_hi"} <= set(ceiling.columns):
            bounds = ceiling.set_index("target").loc[run.targets]
            table["ceiling_lo"] = bounds["ceiling_lo"].to_numpy(dtype=float)
            table["ceiling_hi"] = bounds["ceiling_hi"].to_numpy(dtype=float)
    use_groups = resample == "split" and design.unit != "segments"
    notes = []
    base_seeds = set(run.complete_seeds(base))
    tested = []
    per_model: dict[str, np.ndarray] = {}
    for model in run.models:
        seeds = run.complete_seeds(model)
        cols = {c: np.full(len(run.targets), np.nan) for c in ("r", "r_lo", "r_hi", "r_over_ceiling")}
        if model != base:
            cols.update({c: np.full(len(run.targets), np.nan) for c in ("diff", "nb_p", "perm_p")})
        if not seeds:
            notes.append(f"{model}: {run.status(model)}, no complete seed: no values")
        elif run.constant(model, seeds):
            notes.append(f"{model}: constant within every fold: r undefined, not tested")
        else:
            ids, y, st, _ = run.stack(model, seeds)
            groups = unit_labels(run, ids) if use_groups else None
            for j in range(len(run.targets)):
                cols["r"][j] = pooled_metric(y[:, [j]], st[:, :, [j]], "pearson")
                if use_groups and design.few:
                    continue
                ci = bootstrap_pooled(y[:, [j]], st[:, :, [j]], "pearson", groups=groups,
                                      resampled=design.unit if use_groups else None, n_resamples=n_resamples,
                                      confidence=confidence, seed=seed)
                cols["r_lo"][j], cols["r_hi"][j] = ci.low, ci.high
            if ceil is not None:
                cols["r_over_ceiling"] = cols["r"] / ceil
            common = [s for s in seeds if s in base_seeds]
            if model != base and common and not with_tests:
                pass
            elif model != base and common and not run.constant(base, common):
                _, per_t = compare_pair(run, model, base, "pearson", common, n_resamples=n_resamples, seed=seed,
                                        confidence=confidence)
                for j, res in enumerate(per_t):
                    c = _comparison_columns(res, run.split)
                    cols["diff"][j], cols["nb_p"][j], cols["perm_p"][j] = c["diff"], c["nb_p"], c["perm_p"]
                tested.append(model)
            elif model != base:
                notes.append(f"{model}: no complete seed shared with baseline {base!r}, or an undefined "
                             "baseline: not tested")
            if run.status(model) != "complete":
                notes.append(f"{model}: {run.status(model)}; complete seeds {','.join(map(str, seeds))} only")
        per_model.update({f"{model}.{c}": v for c, v in cols.items()})
        per_model.update(per_target_columns(run, model, seeds))  # MSE, CCC, rater spread; pianists only
    # One concat instead of a column insert per model and quantity (pandas fragments the frame otherwise).
    table = pd.concat([table, pd.DataFrame(per_model, index=table.index)], axis=1)
    others = [m for m in run.models if m != base]
    adjusted = {}
    for c in ("nb_p", "perm_p"):
        block = table[[f"{m}.{c}" for m in others]].to_numpy(dtype=float) if others else np.empty((len(table), 0))
        adj = adjust_pvalues(block, correction)[0]
        adjusted.update({f"{m}.{c}_adj": adj[:, k] for k, m in enumerate(others)})
    table = pd.concat([table, pd.DataFrame(adjusted, index=table.index)], axis=1)
    if ceil is None:
        table = table.drop(columns=[f"{m}.r_over_ceiling" for m in run.models])
    table.attrs.update(_run_attrs(run, "per_target", base, correction, n_resamples, confidence, seed))
    table.attrs["models"] = list(run.models)
    table.attrs["metrics"] = list(available_metrics(run))
    table.attrs["status"] = {m: run.status(m) for m in run.models}
    table.attrs["resampled"] = design.unit if use_groups else "segments"
    family = f"{len(tested)} model pairs x {len(run.targets)} targets"
    table.attrs["family"] = family
    few = use_groups and design.few
    table.attrs["notes"] = [
        f"Split {run.split!r}; unit: {design.unit} ({design.n_units}); seeds {','.join(map(str, run.seeds))}.",
        f"Pooled Pearson r per target; {confidence:.0%} percentile bootstrap CI over "
        f"{table.attrs['resampled']} ({n_resamples} resamples)"
        + (f": {too_few(design.n_units)}, no CI." if few else "."),
        f"Tests against baseline {base!r} per target, on that target's fold-level mean r: corrected resampled "
        f"t-test over fold units and whole-{design.unit} swap permutation test, adjusted with "
        f"{CORRECTION_NAMES[correction]} over one family: {family}."
        + (f" {too_few(design.n_units)}: no p-value." if design.few else ""),
        *notes,
    ]
    if ceil is not None:
        n_seg = ceiling.attrs.get("n_segments")
        table.attrs["notes"].append(
            "Ceiling r: sqrt of the split-half (Spearman-Brown) reliability of the mean rating"
            + (f", of the {n_seg} segments the run scored" if n_seg else "")
            + (f"; its CI resamples {ceiling.attrs['resampled']}" if "ceiling_lo" in table else "")
            + ". r / ceiling divides each model's r by the ceiling of the same segments.")
    return table


def bayesian_table(
    run_dir: str | Path | RunData,
    *,
    baseline: str | None = None,
    rope: float = 0.01,
    metric: str = "pearson",
    threshold: float = 0.95,
) -> pd.DataFrame:
    """Bayesian correlated t-test and TOST of every model against the baseline, with a ROPE.

    Over the fold units of the fold-level mean metric (seeds averaged within
    fold unless they change the folds; Benavoli et al. 2017, "Time for a
    change", JMLR 18): rho = mean n_test / (n_train + n_test). The verdict is
    "better", "worse" or "equivalent" when that posterior probability reaches
    ``threshold``, else "undecided". ``tost_p`` is the two one-sided tests
    p-value of equivalence within the ROPE under the corrected t (Schuirmann
    1987). When the run is a 5x2 design (5 seeds of a 2-fold split),
    Alpaydin's combined 5x2cv F-test is added (``cv5x2_f``, ``cv5x2_p``).
    A fixed test set or fewer than 10 units gets no test.

    Returns
    -------
    DataFrame, one row per non-baseline model: ``model``, ``p_better``,
    ``p_equivalent``, ``p_worse``, ``verdict``, ``tost_p``, ``n_units``, ``cv5x2_f``, ``cv5x2_p``.
    """
    run = load_run_data(run_dir)
    base = resolve_baseline(run, baseline)
    design = run.design
    base_seeds = set(run.complete_seeds(base))
    design_5x2 = (run.partition and len(run.seeds) == 5 and all(n == 2 for n in run.n_folds.values()))
    recs = []
    for model in run.models:
        if model == base:
            continue
        seeds = [s for s in run.complete_seeds(model) if s in base_seeds]
        rec = {"model": model, "p_better": np.nan, "p_equivalent": np.nan, "p_worse": np.nan,
               "verdict": "not tested", "tost_p": np.nan, "n_units": 0, "cv5x2_f": np.nan, "cv5x2_p": np.nan}
        if not run.partition:
            rec["verdict"] = "not tested (fixed test set)"
        elif design.few:
            rec["verdict"] = too_few(design.n_units)
        elif seeds:
            a = run.fold_level(model, metric, seeds)
            b = run.fold_level(base, metric, seeds)
            sizes = fold_scores(run, model, metric, seeds)
            if not design.seeded:
                sizes = sizes.groupby(level="fold")[["n_train", "n_test"]].mean()
            units = pd.concat([a.rename("a"), b.rename("b"), sizes[["n_train", "n_test"]]], axis=1)
            units = units[np.isfinite(units["a"]) & np.isfinite(units["b"])]
            rec["n_units"] = len(units)
            if len(units) >= 2:
                # rho / (1 - rho) is the corrected t's n_test/n_train term, scaled by the split's calibration.
                q = ratio_scale(run.split) * float(units["n_test"].mean() / units["n_train"].mean())
                rho = q / (1.0 + q)
                res = bayesian_correlated_ttest(units["a"].to_numpy(), units["b"].to_numpy(), rho, rope)
                probs = {"better": res.p_a_better, "equivalent": res.p_rope, "worse": res.p_b_better}
                best = max(probs, key=probs.get)
                if withheld_tests(run.split)["bayes"]:
                    rec["verdict"] = withheld_tests(run.split)["bayes"]
                else:
                    rec.update(p_better=res.p_a_better, p_equivalent=res.p_rope, p_worse=res.p_b_better)
                    rec["verdict"] = best if probs[best] >= threshold else "undecided"
                # TOST is two one-sided corrected t-tests: printed only where the corrected t is calibrated.
                if not withheld_tests(run.split)["nb"]:
                    rec["tost_p"] = tost_corrected(units["a"].to_numpy(), units["b"].to_numpy(),
                                                   units["n_train"].to_numpy(),
                                                   ratio_scale(run.split) * units["n_test"].to_numpy(), rope).pvalue
            if design_5x2 and len(units) == 10:
                cv = five_by_two_cv_ftest(units["a"].unstack("fold").to_numpy(), units["b"].unstack("fold").to_numpy())
                rec.update(cv5x2_f=cv.statistic, cv5x2_p=cv.pvalue)
        recs.append(rec)
    table = pd.DataFrame(recs, columns=["model", "p_better", "p_equivalent", "p_worse", "verdict", "tost_p",
                                        "n_units", "cv5x2_f", "cv5x2_p"])
    table.attrs.update({"kind": "bayesian", "baseline": base, "metric": metric, "rope": rope, "notes": [
        f"Bayesian correlated t-test (Benavoli et al. 2017) of each model against '{base}' over the fold units "
        f"({design.fold_level}) of the fold-level mean {metric}; ROPE ±{rope}; verdict when a posterior "
        f"probability reaches {threshold}. TOST: equivalence within ±{rope} (two one-sided corrected t-tests).",
        "5x2cv combined F-test (Alpaydin 1999): only for runs of 5 seeds x 2 folds "
        "(e.g. --split kfold --n-splits 2 --seeds 0,1,2,3,4); NaN otherwise.", calibration_note(run.split)]})
    return table
