"""Compare two runs of the same split, model by model (``benchmark compare RUN_A RUN_B``).

Two runs are comparable only when their segments are predicted under the same
conditions: the same data (manifest data hash), the same split with the same
options, and the same fold assignment in every shared seed. Then a model's
out-of-fold predictions in run A and run B are paired fold by fold, and
their difference (A - B) is tested with the machinery of the significance
table: the estimand is the fold-level mean metric (each test fold's metric,
averaged over targets and folds), and each row answers both claims with one
primary test each (:mod:`reports.claims`): the learner t (did the change make
the learning algorithm better? model seeds count as replicates of its
randomness, so a stochastic learner needs as many as docs/calibration.md
says) and the cluster-bootstrap t over the split's units (do these two
fitted predictors differ on these units?), adjusted over the table (Holm) with
intervals at the levels that agree with the adjusted decisions. The
whole-unit swap permutation test is secondary. With fewer than
:data:`reports.units.FEW_GROUPS` units no CI or p-value is computed: the cell
says ``too few groups (n)``. Typical use: the same models before and after a
code change, or with other options.

A model name may mean different models in the two runs (other parameters,
feature sets, ``--members`` or ``--init`` checkpoint; an older run may even
have let a study variant take a registered model's name). Each row's
``differs`` says what differs between the two definitions
(:func:`benchmark.config.model_definitions`, passed in by the caller), so a difference is never read
as a re-run of one model; the rows are still compared, since comparing two
settings of one model is what ``compare`` is for.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from benchmark.errors import ConfigError
from reports.claims import claim_columns, pair_claims
from reports.comparisons import adjust_family, model_family, run_key
from reports.results import run_id
from reports.rundata import RunData, load_run_data
from reports.tables import claim_cell
from reports.units import UnitScorer, compare_units, pair_cells, run_design, too_few

METRICS = ("pearson", "r2")
#: What identifies a model in a run, in the order ``differs`` names it.
DEFINITION = ("base", "params", "features", "checkpoint")


def _show(v) -> str:
    if v is None:
        return "none"
    if isinstance(v, list | tuple):
        return ",".join(map(str, v)) or "none"
    s = str(v)
    return s[:12] if len(s) == 64 and all(c in "0123456789abcdef" for c in s) else s


def definition_differences(a: dict | None, b: dict | None) -> list[str]:
    """What differs between two definitions of one model name (:func:`benchmark.config.model_definitions`).

    Returns e.g. ``["base mean vs rf", "n_estimators 300 vs 100", "features midi vs midi,audio"]``;
    empty when they are the same. A value one run does not record is not called a difference.
    """
    if a is None or b is None:
        return ["definition unknown in " + ("A" if a is None else "B")]
    out = []
    if a.get("base") and b.get("base") and a["base"] != b["base"]:
        out.append(f"base model {a['base']} vs {b['base']}")
    pa, pb = a.get("params"), b.get("params")
    if pa is not None and pb is not None:
        for k in sorted(set(pa) | set(pb)):
            if k == "init":
                continue  # the checkpoint below says what it resolved to
            if pa.get(k) != pb.get(k):
                out.append(f"{k} {_show(pa.get(k)) if k in pa else 'unset'} vs {_show(pb.get(k)) if k in pb else 'unset'}")
    for key, label in (("features", "features"), ("checkpoint", "checkpoint")):
        va, vb = a.get(key), b.get(key)
        if key == "features" and (va is None or vb is None):
            continue
        if va != vb:
            out.append(f"{label} {_show(va)} vs {_show(vb)}")
    return out


def _level(scorer: UnitScorer, which: str) -> float:
    """The fold-level mean metric of one side: per target the mean over fold units, then over targets."""
    sc = scorer.scores(which)
    ok = np.isfinite(sc)
    with np.errstate(invalid="ignore", divide="ignore"):
        per_t = np.where(ok, sc, 0.0).sum(axis=0) / ok.sum(axis=0)
    per_t = per_t[np.isfinite(per_t)]
    return float(per_t.mean()) if per_t.size else float("nan")


def _folds(run: RunData):
    if run.folds is None:
        raise ConfigError(f"run {run_id(run)} has no folds.parquet; it cannot be compared")
    return run.folds


def check_comparable(a: RunData, b: RunData) -> list[int]:
    """Refuse runs that differ in data, split or folds; return the shared seeds.

    Raises
    ------
    ConfigError
        Different data hashes, splits (name or options), targets, fold
        assignments, or no shared seed.
    """
    if a.manifest.get("data_hash") != b.manifest.get("data_hash"):
        raise ConfigError(f"runs used different data (hash {str(a.manifest.get('data_hash'))[:12]} vs "
                          f"{str(b.manifest.get('data_hash'))[:12]}); compare runs on the same data")
    # The description is prose that may be reworded between versions, and options may be spelled
    # differently (the default n_splits or the same number written out): the fold check below is the real test.
    sa, sb = (r.manifest.get("split", {}).get("name") for r in (a, b))
    na, nb = a.manifest["config"].get("n_splits"), b.manifest["config"].get("n_splits")
    if sa != sb:
        raise ConfigError(f"runs use different splits ({sa!r}, n_splits={na} vs {sb!r}, n_splits={nb}); "
                          "compare runs of the same split")
    if a.targets != b.targets:
        raise ConfigError("runs predict different targets; compare runs of the same dataset version")
    seeds = [int(s) for s in a.manifest["config"]["seeds"] if int(s) in {int(x) for x in b.manifest["config"]["seeds"]}]
    if not seeds:
        raise ConfigError(f"runs share no seed (A: {a.manifest['config']['seeds']}, B: "
                          f"{b.manifest['config']['seeds']}); rerun one with a shared --seeds")
    fa, fb = _folds(a), _folds(b)
    for s in seeds:
        if not fa.same_as(fb, s):
            raise ConfigError(f"fold assignments differ in seed {s} (different split version or options, "
                              f"n_splits={na} vs {nb}); compare runs with the same folds")
    return seeds


def compare_runs(
    run_a: str | Path,
    run_b: str | Path,
    *,
    metrics: tuple[str, ...] = METRICS,
    n_resamples: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
    definitions=None,
    families=None,
) -> pd.DataFrame:
    """Per model present in both runs: the fold-level mean metric in each, and A - B with a CI and a p-value.

    A model is compared on the seeds complete in both runs. The units are
    those of the split (read from run A's folds; run B's are the same, see
    :func:`check_comparable`).

    Parameters
    ----------
    run_a, run_b : path
    metrics : tuple of {"pearson", "r2"}
        Fold-level mean over targets and folds of Pearson r / R^2.
    n_resamples : int
        Cluster-bootstrap resamples, and unit-swap permutations of the two-sided permutation test.
    confidence : float
    seed : int
    definitions : callable, optional
        ``definitions(run_dir) -> {model: {"base", "params", "features", "checkpoint", ...}}``, what each
        model name of a run meant (:func:`benchmark.config.model_definitions`; reports never read the
        model registry themselves, so the caller passes it). Without it, ``differs`` is empty.
    families : callable, optional
        ``families(run_dir) -> {model: "deterministic" | "tabular" | "neural"}``
        (:func:`benchmark.config.learner_families`); without it, a model whose predictions
        differ between seeds gets the strictest family's seed requirement.

    Returns
    -------
    DataFrame, one row per shared model (run A's order)
        ``model``, ``seeds``, ``n_segments``, ``n_units``, then per metric ``m``:
        ``m_a``, ``m_b``, ``m_diff`` (A - B), both claims' columns
        (:func:`reports.claims.claim_columns`: ``m_learner_*``, ``m_pred_*``, adjusted with Holm
        over models x metrics) and the secondary ``m_perm_p``; ``differs`` (what differs between the
        model's definitions in A and B, "" when nothing does) and ``note``. ``attrs``: run ids,
        split, unit, n_units, few, seeded, n_resamples, perm_floor, confidence.

    Raises
    ------
    ConfigError
        The runs are not comparable (:func:`check_comparable`), share no
        model, a metric is unknown, or ``n_resamples < 1``.
    """
    bad = [m for m in metrics if m not in METRICS]
    if bad:
        raise ConfigError(f"unknown metric {bad[0]!r}; use {METRICS}")
    a, b = load_run_data(run_a), load_run_data(run_b)
    seeds = check_comparable(a, b)
    models = [m for m in a.models if m in b.models]
    if not models:
        raise ConfigError(f"the runs share no model (A: {', '.join(a.models)}; B: {', '.join(b.models)})")
    defs_a, defs_b = (definitions(a.run_dir), definitions(b.run_dir)) if definitions is not None else ({}, {})
    design = run_design(a)
    fam_a, fam_b = (families(a.run_dir), families(b.run_dir)) if families is not None else ({}, {})
    rows, claims = [], {}
    for model in models:
        rec: dict = {"model": model, "differs": "; ".join(definition_differences(defs_a.get(model), defs_b.get(model)))
                     if definitions is not None else ""}
        common = [s for s in seeds if s in a.complete_seeds(model) and s in b.complete_seeds(model)]
        if not common:
            rec["note"] = "no seed complete in both runs: not compared"
            rows.append(rec)
            continue
        notes = []
        cells = pair_cells(a, model, model, common, run_b=b)
        key = run_key(a, common)
        fams = (model_family(a, model, common, fam_a), model_family(b, model, common, fam_b))
        for m in metrics:
            scorer = UnitScorer(cells, m)
            res, _ = compare_units(scorer, seeded=design.seeded, n_resamples=n_resamples, confidence=confidence,
                                   seed=seed)
            claims[(len(rows), m)] = pair_claims(scorer, res, key, partition=design.partition, families=fams,
                                                 few_text=too_few(res.n_units))
            rec.update({f"{m}_a": _level(scorer, "a"), f"{m}_b": _level(scorer, "b"), f"{m}_diff": res.diff})
        rec.update(seeds=",".join(map(str, common)), n_segments=len(cells.y), n_units=scorer.n_units)
        _, y_b, _, _ = b.stack(model, common)
        if not np.allclose(cells.y, y_b):
            notes.append("y_true differs between runs")
        rec["note"] = "; ".join(notes)
        rows.append(rec)
    for name, attr in (("learner", "learner_p"), ("pred", "pred_p"), ("perm", "perm_p")):
        grid = np.array([[getattr(claims[(i, m)], attr) if (i, m) in claims else np.nan for m in metrics]
                         for i in range(len(rows))], dtype=float).reshape(len(rows), len(metrics))
        claims[name] = adjust_family(grid, "holm")
    for i, rec in enumerate(rows):
        for j, m in enumerate(metrics):
            c = claims.get((i, m))
            if c is None:
                continue
            rec.update({f"{m}_{k}": v for k, v in claim_columns(
                c, claims["learner"][1][i, j], claims["pred"][1][i, j], claims["learner"][0][i, j],
                claims["pred"][0][i, j]).items()})
            rec[f"{m}_perm_p"], rec[f"{m}_perm_p_adj"] = c.perm_p, claims["perm"][0][i, j]
    cols = ["model", "seeds", "n_segments", "n_units"] + [
        f"{m}_{c}" for m in metrics for c in ("a", "b", "diff", "learner_lo", "learner_hi", "learner_p",
                                              "learner_p_adj", "learner_df", "learner_level", "learner_mde",
                                              "learner_note", "pred_lo", "pred_hi", "pred_p", "pred_p_adj",
                                              "pred_df", "pred_level", "pred_mde", "pred_note", "perm_p",
                                              "perm_p_adj")]
    out = pd.DataFrame(rows).reindex(columns=cols + ["differs", "note"])
    out.attrs.update(run_a=run_id(a), run_b=run_id(b), split=a.split, resampled=design.unit, unit=design.unit,
                     n_units=design.n_units, few=design.few, seeded=design.seeded, partition=design.partition,
                     n_resamples=int(n_resamples), perm_floor=1.0 / (int(n_resamples) + 1),
                     confidence=confidence, metrics=list(metrics), correction="holm")
    return out


def format_comparison(table: pd.DataFrame) -> str:
    """Markdown rendering of :func:`compare_runs`."""
    at = table.attrs
    metrics = at.get("metrics", list(METRICS))
    label = {"pearson": "r", "r2": "R^2"}
    differs = "differs" in table and table["differs"].fillna("").astype(bool).any()
    head = ["model", "seeds"]
    for m in metrics:
        head += [f"{label.get(m, m)} A", f"{label.get(m, m)} B", f"{label.get(m, m)} A-B",
                 "learners differ? [CI] p_adj", "fitted predictors differ? [CI] p_adj", "p perm (secondary)"]
    if differs:
        head.append("what differs (A vs B)")
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    floor = at.get("perm_floor", 0.0)
    few = too_few(at.get("n_units", 0)) if at.get("few") else None

    def num(v, fmt="{:.3f}"):
        return "n/a" if v is None or pd.isna(v) else fmt.format(v)

    def pval(r, m):
        v, adj = r.get(f"{m}_perm_p"), r.get(f"{m}_perm_p_adj")
        if few is not None:
            return few
        if v is None or pd.isna(v):
            return r.get(f"{m}_pred_note") or "n/a"
        if v <= floor * (1 + 1e-9):
            return f"< {floor:.2g}"
        return num(adj, "{:.4f}")

    for _, r in table.iterrows():
        cells = [str(r["model"]), "" if pd.isna(r.get("seeds")) else str(r["seeds"])]
        rec = {k: (None if not isinstance(v, str) and pd.isna(v) else v) for k, v in r.items()}
        for m in metrics:
            if pd.isna(r.get(f"{m}_diff")):
                cells += [num(r.get(f"{m}_a")), num(r.get(f"{m}_b")), "n/a", "", "", ""]
                continue
            cells += [num(r[f"{m}_a"]), num(r[f"{m}_b"]), num(r[f"{m}_diff"], "{:+.3f}"),
                      claim_cell(rec, f"{m}_", "learner"), claim_cell(rec, f"{m}_", "pred"), pval(r, m)]
        if differs:
            cells.append(r["differs"] or "same model")
        lines.append("| " + " | ".join(cells) + " |")
    unit = at.get("unit", "segments")
    seeds = ("seeds change the folds: each (seed, fold) is a fold unit" if at.get("seeded")
             else "seeds averaged within each fold")
    lines += ["", f"A = {at.get('run_a')}, B = {at.get('run_b')}; split `{at.get('split')}`, unit: "
              f"{at.get('n_units')} {unit}. Metrics: fold-level mean over targets and test folds of out-of-fold "
              f"Pearson r / R^2 ({seeds}). Learners: the learner t (corrected resampled t with the design's "
              "calibrated factor, plus the between-seed variance where seeds do not change the folds); fitted "
              f"predictors: the cluster-bootstrap t over {unit} (the difference -+ sqrt(G/(G-1)) t_{{G-1}} times "
              f"the bootstrap SE, {at.get('n_resamples')} resamples) and that interval's p. Both adjusted with Holm "
              "over models x metrics, each interval at the level that agrees with its adjusted p (95% unless "
              f"named); † / ‡ mark p_adj < 0.05. p perm (secondary): whole {unit} swapped between the runs "
              f"({at.get('n_resamples')} permutations), Holm-adjusted, marks nothing."
              + (f" Only {at.get('n_units')} {unit}: {few}, no CI or p-value." if few else "")]
    if differs:
        lines.append("A row whose model differs between the runs (last column) compares two different models "
                     "under one name: read it as that change, not as a re-run of one model.")
    notes = [f"{r['model']}: {r['note']}" for _, r in table.iterrows() if isinstance(r.get("note"), str) and r["note"]]
    if notes:
        lines.append("Notes: " + "; ".join(notes))
    return "\n".join(lines)
