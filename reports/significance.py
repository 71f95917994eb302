"""Paper-grade comparison of the models of one run: CIs, paired tests, per-target table, ranks.

Every number comes from the run directory (manifest, metric rows, out-of-fold
predictions) and a tested function of :mod:`reports.stats`; this module only
decides what is paired with what:

* *Pooled* metrics score all out-of-fold predictions of a seed at once (see
  :mod:`reports.summary`), averaged over the complete seeds.
* Intervals say what was resampled: segments, or whole units of the split
  (performers for ``lopo``, pieces for ``piece``, passages for ``excerpt``).
* Differences are ``model - baseline`` of the fold-level mean metric, one
  estimand per row, and each row answers two claims with one primary test
  each (:mod:`reports.claims`): *are the learning algorithms different?*
  (the learner t: corrected resampled t plus the between-seed variance) and
  *are these fitted predictors different?* (the cluster-bootstrap t over the
  split's units). Each claim's interval, adjusted p-value and mark come from
  that one test; the unit-swap permutation test is secondary. A claim that
  docs/calibration.md does not back on the run's design (split, folds, seeds,
  units) is not printed as a number; below 10 units nothing group-level is.
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
from reports.claims import CLAIMS, claim_columns
from reports.comparisons import adjust_family, calibration_note, compare_pair, pair_claims_of, pair_scorer
from reports.paired import standardized_difference
from reports.pooled import available_metrics, per_target_columns, within_performer
from reports.rundata import FEW_GROUPS, RunData, load_run_data, resolve_baseline, too_few, unit_labels
from reports.scoring import METRIC_FUNCTIONS, bootstrap_pooled, nanmean, pooled_metric
from reports.summary import pooled_segment_ci, pooled_value
from reports.units import UnitComparison

__all__ = ["CORRECTIONS", "compare_pair", "per_target_table", "significance_table", "within_performer"]

CORRECTIONS = ("holm", "fdr_bh")
CORRECTION_NAMES = {"holm": "Holm (family-wise error rate)", "fdr_bh": "Benjamini-Hochberg (false discovery rate)"}
METRIC_LABELS = {"pearson": "r", "r2": "R²"}
#: Per claim (learner, pred): interval at the family-compatible level, p and adjusted p, df, that level,
#: the detectable effect (non-significant rows) and why there is no number.
CLAIM_COLUMNS = tuple(f"{c}_{x}" for c in ("learner", "pred")
                      for x in ("lo", "hi", "p", "p_adj", "df", "level", "mde", "note"))
_METRIC_COLUMNS = ("", "seg_lo", "seg_hi", "cluster_lo", "cluster_hi", "pianists", "pianists_seg_lo",
                   "pianists_seg_hi", "within", "within_lo", "within_hi",
                   "seeds_sd", "fold_mean", "fold_sd", "fold_n", "diff", "effect", *CLAIM_COLUMNS, "perm_p",
                   "perm_p_adj", "n_units")


def _metric_columns(metrics) -> list[str]:
    return [f"{m}_{c}" if c else m for m in metrics for c in _METRIC_COLUMNS]


def _check_options(correction: str, n_resamples: int) -> None:
    if correction not in CORRECTIONS:
        raise ConfigError(f"correction={correction!r}; use one of {CORRECTIONS}")
    if int(n_resamples) < 1:
        raise ConfigError(f"n_resamples={n_resamples!r} must be >= 1 (2000 is usual)")


def _effect(res: UnitComparison, metric: str) -> float:
    """:func:`reports.paired.standardized_difference` of the two models' fold-level means on the row's fold units."""
    levels = [float(np.mean(v[np.isfinite(v)])) if np.isfinite(v).any() else np.nan for v in (res.fold_a, res.fold_b)]
    return standardized_difference(*levels, metric)


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
            "confidence": float(confidence), "seed": int(seed), "claims": dict(CLAIMS),
            "primary": {"learner": "learner t", "predictor": "cluster bootstrap t"},
            "secondary": ["unit-swap permutation"], **({"partial": run.partial_note} if run.partial_note else {})}


def _method_notes(run: RunData, base: str, correction: str, n_resamples: int, confidence: float,
                  family: str, seeds: list[int], families: dict | None) -> list[str]:
    design = run.design
    pooled = ("pooled out-of-fold predictions of each seed" if run.partition
              else "each fold model scored on the fixed test set")
    unit = design.unit
    seeds_text = ("they change the folds: CV repeats" if design.seeded
                  else "they do not change the folds: model seeds, replicates of each learner's own randomness")
    notes = [
        f"Split {run.split!r}; unit of generalisation: {unit} ({design.n_units}); seeds "
        f"{','.join(map(str, run.seeds))} ({seeds_text}).",
        f"Pooled metrics: mean over targets of Pearson r / R² on {pooled}, averaged over complete seeds; "
        f"{confidence:.0%} percentile bootstrap CIs ({n_resamples} resamples) over segments"
        + ("" if unit == "segments" else f" and over whole {unit}") + ". "
        "Pianists only: the pooled metric without the two deadpan score renderings (players Score, Score2), "
        "with its segment CI. Within-performer r: truth and predictions centred per performer, so the performers' mean levels do "
        "not count. Seed sd: spread of the pooled metric over seeds (model instability), not a CI. Bold: the best "
        "fold-level mean, the quantity the tests compare.",
        f"Differences (model - {base!r}) are on the fold-level mean metric ({design.fold_level}). Two claims, one "
        f"primary test each, declared before looking. {CLAIMS['learner'].capitalize()}? The learner t: the "
        "corrected resampled t over the fold units (Nadeau & Bengio 2003) with this design's calibrated factor"
        + ("" if design.seeded else ", plus the variance of each model's fold-level mean between its model seeds "
           "(Satterthwaite df); a stochastic learner needs as many model seeds as docs/calibration.md found its "
           "family needs") + f". {CLAIMS['predictor'].capitalize()} on these {unit}? The cluster-bootstrap t: the "
        f"difference -+ sqrt(G/(G-1)) t_{{G-1}} times the bootstrap SE over {unit} (Hesterberg 2015), and the "
        "p-value of that same interval. Secondary, never marked: p perm swaps whole "
        f"{unit} between the two models' predictions ({n_resamples} permutations).",
        f"p-values adjusted with {CORRECTION_NAMES[correction]} over one family per claim: {family}. Each "
        "interval is printed at the level that agrees with its adjusted decision (Holm: 1 - alpha/(m - i + 1) "
        "for the i-th rejected comparison, 1 - alpha/(m - r) for the others; Benjamini-Hochberg: the false "
        "coverage-statement rate intervals of Benjamini & Yekutieli 2005), so an interval excludes 0 exactly "
        "when its p_adj < 0.05 and the row is marked. Beside a non-significant difference: the smallest true "
        "difference that test would detect with 80% power at that level, from its own standard error.",
        "Effect size: for r, Cohen's q = atanh(r_model) - atanh(r_baseline) of the fold-level means (0.1 small, "
        "0.3 medium, 0.5 large); for R², (R²_model - R²_baseline) / (1 - R²_baseline), the share of the "
        "baseline's unexplained variance removed. Neither depends on fold size (Cohen's d_z of fold differences "
        "does: it divides by their spread, which shrinks as folds grow).",
    ]
    if design.few:
        notes.append(f"Only {design.n_units} {unit}: {too_few(design.n_units)}: no cluster CI or group-level "
                     "p-value is given as a number.")
    if seeds:
        notes.append(calibration_note(run, seeds, families))
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
    families: dict | None = None,
) -> pd.DataFrame:
    """One row per model: pooled metrics with CIs, and both claims of its difference to a baseline.

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
    * ``m_diff``: fold-level mean ``model - baseline``; ``m_effect``: a
      standardized effect size that does not depend on fold size (Cohen's q
      for r, the proportional error reduction for R²;
      :func:`reports.paired.standardized_difference`);
    * the learner claim ``m_learner_*`` and the predictor claim ``m_pred_*``
      (:func:`reports.claims.claim_columns`): ``lo``/``hi`` (the interval at
      ``level``, the level that agrees with the adjusted decision), ``p``,
      ``p_adj`` (adjusted over one family per claim: every model pair x
      metric), ``df``, ``mde`` (non-significant rows: the difference that
      test detects with 80% power) and ``note`` (why there is no number:
      ``needs >= k model seeds``, ``not calibrated for this design ...``,
      ``too few groups (n)``);
    * ``m_perm_p`` (``_adj``): the secondary whole-unit swap permutation test;
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
    families : dict, optional
        Model -> learner family (``deterministic``, ``tabular``, ``neural``) from the model
        registry (:func:`benchmark.config.learner_families`; reports never read the registry).
        A model whose predictions are identical across seeds counts as deterministic anyway;
        one the mapping does not name gets the strictest family's seed requirement.

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
    recs, claims, tested_seeds = [], {}, []
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
                    claims[(len(recs), m)], _ = pair_claims_of(run, model, base, m, common, families=families,
                                                               n_resamples=n_resamples, seed=seed,
                                                               confidence=confidence)
                    rec.update({f"{m}_diff": res.diff, f"{m}_effect": _effect(res, m), f"{m}_n_units": res.J})
                tested_seeds = tested_seeds or common
        rec["note"] = "; ".join(notes)
        recs.append(rec)
    _claims_into(recs, claims, metrics, correction)
    table = pd.DataFrame(recs)
    for col in _metric_columns(metrics):
        if col not in table:
            table[col] = "" if col.endswith("_note") else np.nan
    if "ceiling_fraction" not in table and ceil is not None:
        table["ceiling_fraction"] = np.nan
    order = ["model", "role", "status", "jobs_ok", "jobs_expected", "seeds_used"]
    order += _metric_columns(metrics)
    order += [c for c in ("ceiling_fraction", "note") if c in table]
    table = table[order]
    table.attrs.update(_run_attrs(run, "significance", base, correction, n_resamples, confidence, seed))
    table.attrs["metrics"] = list(metrics)
    n_pairs = int(sum(r["model"] != base for r in recs))
    table.attrs["family"] = f"{n_pairs} model pairs x {len(metrics)} metrics"
    table.attrs["notes"] = _method_notes(run, base, correction, n_resamples, confidence, table.attrs["family"],
                                         tested_seeds or run.seeds, families)
    table.attrs["n_groups"] = design.n_units
    return table


def _claims_into(recs: list[dict], claims: dict, metrics, correction: str) -> None:
    """Adjust each claim's p-values over the table's family (rows x metrics) and write both claims' columns."""
    for m in metrics:
        for r in recs:
            r.setdefault(f"{m}_perm_p", np.nan)
    rows = sorted({i for i, _ in claims})
    if not rows:
        return
    grid = {name: np.full((len(rows), len(metrics)), np.nan) for name in ("learner", "pred", "perm")}
    for a, i in enumerate(rows):
        for b, m in enumerate(metrics):
            c = claims.get((i, m))
            if c is not None:
                grid["learner"][a, b], grid["pred"][a, b], grid["perm"][a, b] = c.learner_p, c.pred_p, c.perm_p
    adj = {name: adjust_family(g, correction) for name, g in grid.items()}
    for a, i in enumerate(rows):
        for b, m in enumerate(metrics):
            c = claims.get((i, m))
            if c is None:
                continue
            cols = claim_columns(c, adj["learner"][1][a, b], adj["pred"][1][a, b], adj["learner"][0][a, b],
                                 adj["pred"][0][a, b])
            recs[i].update({f"{m}_{k}": v for k, v in cols.items()})
            recs[i][f"{m}_perm_p"], recs[i][f"{m}_perm_p_adj"] = c.perm_p, adj["perm"][0][a, b]


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
    families: dict | None = None,
) -> pd.DataFrame:
    """One row per target: each model's pooled r with CI, r / ceiling and its test against the baseline.

    Columns are ``target``, ``ceiling_r`` (with ``ceiling``) and, per model,
    ``{model}.r``, ``{model}.r_lo``, ``{model}.r_hi`` (percentile bootstrap
    over the split's units, or segments: ``attrs["resampled"]``; NaN with
    fewer than 10 units), ``{model}.r_over_ceiling``, ``{model}.fold_r`` (the
    target's fold-level mean r, what the tests compare) and, for models other
    than the baseline, ``{model}.diff`` (that target's fold-level mean r
    difference), ``{model}.learner_p`` (the learner claim's learner t),
    ``{model}.pred_p`` (the predictor claim's cluster-bootstrap t),
    ``{model}.perm_p`` (secondary: whole-unit swap permutation test) and their
    ``_adj`` forms, each adjusted over one family: every model pair x target.
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
    families : dict, optional
        As :func:`significance_table`.

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
    notes_by_claim: dict[str, set] = {}
    per_model: dict[str, np.ndarray] = {}
    for model in run.models:
        seeds = run.complete_seeds(model)
        cols = {c: np.full(len(run.targets), np.nan) for c in ("r", "r_lo", "r_hi", "r_over_ceiling", "fold_r")}
        if model != base:
            cols.update({c: np.full(len(run.targets), np.nan) for c in ("diff", "learner_p", "pred_p", "perm_p")})
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
            # Each target's fold-level mean r (what the tests compare, and what bold marks).
            cols["fold_r"] = nanmean(pair_scorer(run, model, model, "pearson", seeds).scores("a"), axis=0)
            common = [s for s in seeds if s in base_seeds]
            if model != base and common and not with_tests:
                pass
            elif model != base and common and not run.constant(base, common):
                _, per_t = pair_claims_of(run, model, base, "pearson", common, families=families,
                                          n_resamples=n_resamples, seed=seed, confidence=confidence)
                for j, c in enumerate(per_t):
                    cols["diff"][j], cols["learner_p"][j], cols["pred_p"][j] = c.diff, c.learner_p, c.pred_p
                    cols["perm_p"][j] = c.perm_p
                notes_by_claim.setdefault("learner", set()).update(c.learner_note for c in per_t if c.learner_note)
                notes_by_claim.setdefault("pred", set()).update(c.pred_note for c in per_t if c.pred_note)
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
    for c in ("learner_p", "pred_p", "perm_p"):
        block = table[[f"{m}.{c}" for m in others]].to_numpy(dtype=float) if others else np.empty((len(table), 0))
        adj = adjust_family(block, correction)[0]
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
        f"Tests against baseline {base!r} per target, on that target's fold-level mean r, one primary test per "
        f"claim: p learners (the learner t: {CLAIMS['learner']}?) and p predictors (the cluster-bootstrap t over "
        f"{design.unit}: {CLAIMS['predictor']}?), each adjusted with {CORRECTION_NAMES[correction]} over one "
        f"family: {family}; the whole-{design.unit} swap permutation test is secondary (unmarked)."
        + (f" {too_few(design.n_units)}: no p-value." if design.few else ""),
        *[f"No {('learner' if k == 'learner' else 'predictor')}-level number: {t}." for k, v in
          sorted(notes_by_claim.items()) for t in sorted(v) if not t.startswith("too few")],
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
