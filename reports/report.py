"""The full report of a run, computed once: every table, ranking, figure's data and check in one object.

:func:`build_report` reads the run once (:class:`reports.rundata.RunData`) and
computes each quantity once into plain data: the results table
(:func:`reports.summary.summary_table`), the significance, per-target and
Bayesian tables (:mod:`reports.significance`), the Friedman/Nemenyi rankings
(:func:`rank_models`) and rank intervals, the grouping check
(:func:`reports.rundata.check_groups`) and the error analysis of the best model
(:class:`ErrorAnalysis`: hardest performers, pieces and targets, the heatmaps'
matrices). The renderers only format these objects: :func:`write_report`
(Markdown, LaTeX, CSV via :mod:`reports.tables`), :mod:`reports.plots`
(:func:`reports.plots.report_figures`, PNG and PDF) and :mod:`reports.html`, so
a figure and a table can never disagree.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from benchmark.errors import ConfigError
from benchmark.metrics import column_pearson
from reports.analysis import error_matrix, hardest
from reports.bayesian import bayesian_table
from reports.pooled import metrics_table
from reports.ranking import FriedmanNemenyiResult, friedman_nemenyi
from reports.results import ModelStack, best_model, model_stack
from reports.rundata import GroupCheck, RunData, check_groups, finished_view, load_run_data, missing_note, too_few
from reports.scoring import METRIC_FUNCTIONS, nanmean
from reports.significance import per_target_table, significance_table
from reports.summary import summary_table
from reports.tables import write_tables
from reports.units import rank_intervals

METRIC_LABEL = {"pearson": "r", "r2": "R²"}
RANK_BLOCKS = ("targets", "folds")
#: Why each kind of block falls short of Demsar's independent data sets.
BLOCK_LABELS = {
    "targets": "exploratory: targets share segments",
    "folds": "(seed, fold) units as blocks: folds share training data",
}


@dataclass(frozen=True)
class Ranking:
    """Friedman test and Nemenyi comparisons of the run's models over one kind of block.

    Attributes
    ----------
    blocks : {"targets", "folds"}
    metric : {"pearson", "r2"}
    label : str
        The caveat of this kind of block (see :data:`BLOCK_LABELS`).
    scores : DataFrame, shape (n_blocks, n_models)
        Higher is better; the input of :func:`reports.ranking.friedman_nemenyi`.
    result : FriedmanNemenyiResult
        ``avg_ranks``, ``cd`` and ``pairwise_p`` are what a CD diagram draws.
    excluded : dict of str -> str
        Models left out, with the reason.
    """

    blocks: str
    metric: str
    label: str
    scores: pd.DataFrame
    result: FriedmanNemenyiResult
    excluded: dict = field(default_factory=dict)

    def table(self) -> pd.DataFrame:
        """Average ranks, best first (``model``, ``avg_rank``), with the test in ``attrs``."""
        r = self.result
        out = r.avg_ranks.rename("avg_rank").rename_axis("model").reset_index()
        out.attrs.update({
            "kind": "ranking", "blocks": self.blocks, "metric": self.metric, "label": self.label,
            "friedman_chi2": r.statistic, "friedman_p": r.pvalue, "df": r.df,
            "iman_davenport_f": r.iman_davenport_f, "iman_davenport_p": r.iman_davenport_p,
            "cd": r.cd, "alpha": r.alpha, "n_blocks": r.n_blocks, "n_models": r.n_models,
            "excluded": dict(self.excluded),
            "notes": [
                f"Friedman test over {r.n_blocks} {self.blocks} as blocks ({self.label}): chi2({r.df}) = "
                f"{r.statistic:.2f}, p {_fmt_p(r.pvalue)}; Iman-Davenport F = {r.iman_davenport_f:.2f}, "
                f"p {_fmt_p(r.iman_davenport_p)}.",
                f"Nemenyi critical difference at alpha = {r.alpha}: CD = {r.cd:.3f} (Demsar 2006); rank 1 = best "
                f"{'r' if self.metric == 'pearson' else 'R²'}.",
                *[f"Excluded {m}: {why}." for m, why in self.excluded.items()],
            ],
        })
        return out

    def pvalue_table(self) -> pd.DataFrame:
        """Nemenyi p-values, one row per model (``model`` column), for a CD diagram."""
        out = self.result.pairwise_p.rename_axis("model").reset_index()
        out.attrs.update({"kind": "pvalues", "blocks": self.blocks, "metric": self.metric, "label": self.label,
                          "notes": [f"Nemenyi p-values, {self.blocks} as blocks ({self.label})."]})
        return out


def _fmt_p(p: float) -> str:
    return "n/a" if not np.isfinite(p) else ("< 0.001" if p < 0.001 else f"= {p:.3f}")


def rank_models(run_dir: str | Path | RunData, *, blocks: str = "targets", metric: str = "pearson",
                alpha: float = 0.05) -> Ranking:
    """Friedman test and Nemenyi post-hoc over models (Demsar 2006).

    ``blocks="targets"``: each target's pooled metric (averaged over the seeds
    complete for every ranked model) is a block; exploratory, since the 19
    targets share the same segments. ``blocks="folds"``: each (seed, fold)
    unit's target-averaged metric is a block.

    Parameters
    ----------
    run_dir : path or RunData
    blocks : {"targets", "folds"}
    metric : {"pearson", "r2"}
    alpha : float

    Returns
    -------
    Ranking

    Raises
    ------
    ConfigError
        Bad ``blocks`` or ``metric``; fewer than 3 models with scores; no seed
        complete for all of them.
    """
    run = load_run_data(run_dir)
    if blocks not in RANK_BLOCKS:
        raise ConfigError(f"blocks={blocks!r}; use one of {RANK_BLOCKS}")
    if metric not in METRIC_FUNCTIONS:
        raise ConfigError(f"unknown metric {metric!r}; use {tuple(METRIC_FUNCTIONS)}")
    excluded = {m: f"{run.status(m)}, no complete seed" for m in run.models if not run.complete_seeds(m)}
    models = [m for m in run.models if m not in excluded]
    seeds = [s for s in run.seeds if all(s in run.complete_seeds(m) for m in models)]
    if models and not seeds:
        raise ConfigError(f"no seed is complete for every model of {models}; resume the run or rank fewer models")
    cols = {}
    for m in models:
        if blocks == "targets":
            _, y, st, _ = run.stack(m, seeds)
            cols[m] = nanmean(METRIC_FUNCTIONS[metric](y, st), axis=0)
        else:
            # Seeds that do not change the folds are one block per fold, not replicates.
            cols[m] = run.fold_level(m, metric, seeds)
    index = run.targets if blocks == "targets" else None
    scores = pd.DataFrame(cols, index=index)
    for m in list(scores):
        if scores[m].isna().all():
            excluded[m] = "metric undefined on every block (constant predictions)"
            scores = scores.drop(columns=m)
    if scores.shape[1] < 3:
        raise ConfigError(f"Friedman/Nemenyi needs at least 3 models with scores, got {list(scores)}; "
                          "compare two models with the paired tests")
    return Ranking(blocks, metric, BLOCK_LABELS[blocks], scores, friedman_nemenyi(scores, alpha=alpha), excluded)


@dataclass
class ErrorAnalysis:
    """Where the run's best model fails: the data of the error tables and of the scatter and heatmap figures.

    Attributes
    ----------
    best : str
        The scored model with the highest pooled mean r (:func:`reports.results.best_model`).
    stack : ModelStack
        Its out-of-fold predictions.
    scatter_r : ndarray, shape (n_targets,)
        Pearson r per target of the replicate the scatter figure shows (the first seed, or fold model).
    hardest : dict of str -> DataFrame
        ``performer``, ``piece``, ``target``: :func:`reports.analysis.hardest` of ``best`` (top rows),
        cluster CIs over pieces, performers and performers respectively.
    matrices : dict of str -> DataFrame
        ``performer_mae``, ``piece_mae`` (groups x models) and ``performer_target_mae`` (performers x
        targets of ``best``): :func:`reports.analysis.error_matrix`.
    n_resamples : int
    top : int
    """

    best: str
    stack: ModelStack
    scatter_r: np.ndarray
    hardest: dict[str, pd.DataFrame]
    matrices: dict[str, pd.DataFrame]
    n_resamples: int
    top: int


#: (grouping, resampled factor) of each "hardest" table.
HARDEST = (("performer", "pieces"), ("piece", "performers"), ("target", "performers"))


def error_analysis(run: str | Path | RunData, *, n_resamples: int = 2000, seed: int = 0,
                   top: int = 10) -> ErrorAnalysis:
    """:class:`ErrorAnalysis` of a run's best model.

    Raises
    ------
    ConfigError
        No model has a complete seed.
    """
    run = load_run_data(run)
    best = best_model(run)
    stack = model_stack(run, best)
    # A dataset without a performer or piece column has no such grouping (its predictions store None there).
    present = {c for c in ("performer", "piece") if len(run.preds) and run.preds[c].notna().all()}
    factor = {"performers": "performer", "pieces": "piece"}
    tables = {by: hardest(run, by, model=best, top=top, resample=resample if factor[resample] in present
                          else "segments", n_resamples=n_resamples, seed=seed)
              for by, resample in HARDEST if by == "target" or by in present}
    matrices = {f"{by}_mae": error_matrix(run, by, columns="model", value="mae")
                for by in ("performer", "piece") if by in present}
    if "performer" in present:
        matrices["performer_target_mae"] = error_matrix(run, "performer", columns="target", value="mae", model=best)
    return ErrorAnalysis(best, stack, column_pearson(stack.y_true, stack.stack[0]), tables, matrices,
                         int(n_resamples), int(top))


@dataclass
class Report:
    """Everything :func:`build_report` computed: the renderers format it, they compute nothing.

    Attributes
    ----------
    run : RunData
    tables : dict of str -> DataFrame
        ``significance``, ``per_target``, ``metrics`` (every pooled metric of the registry, all players and
        pianists only), ``bayesian``, ``ranking_<blocks>`` /
        ``ranking_<blocks>_pvalues`` for each ranking that could be computed,
        ``rank_intervals``, ``group_violations``.
    rankings : dict of str -> Ranking
    check : GroupCheck
    notes : list of str
        Rankings, intervals or analyses that could not be computed, and why.
    summary : DataFrame or None
        :func:`reports.summary.summary_table` (the results table).
    ceiling : DataFrame or None
        The noise ceiling the tables were built with.
    errors : ErrorAnalysis or None
        None when no model has a complete seed.
    importance : dict of str -> DataFrame
        Stored permutation importance (:func:`reports.analysis.importance_table`) by model.
    n_resamples, seed : int
        Of every bootstrap and permutation.
    """

    run: RunData
    tables: dict[str, pd.DataFrame]
    rankings: dict[str, Ranking]
    check: GroupCheck
    notes: list[str]
    summary: pd.DataFrame | None = None
    ceiling: pd.DataFrame | None = None
    errors: ErrorAnalysis | None = None
    importance: dict[str, pd.DataFrame] = field(default_factory=dict)
    n_resamples: int = 2000
    seed: int = 0

    def header(self) -> list[str]:
        """The lines that state the split, its grouping and the outcome of the grouping check."""
        run = self.run
        desc = run.manifest["split"].get("description", "")
        folds = ", ".join(f"seed {s}: {run.n_folds[s]}" for s in run.seeds)
        return [
            f"Run {run.run_id}: split {run.split!r}"
            + (f" ({desc})" if desc else "") + f"; grouping: {run.group_column or 'none'}; folds: {folds}.",
            f"Group check: {self.check.message}",
        ]


def build_report(run_dir: str | Path | RunData, *, baseline: str | None = None, correction: str = "holm",
                 n_resamples: int = 2000, seed: int = 0, ceiling: pd.DataFrame | None = None,
                 rank_blocks: tuple[str, ...] = RANK_BLOCKS, rank_metric: str = "pearson",
                 rope: float | None = 0.01, importance: dict[str, pd.DataFrame] | None = None,
                 errors: bool = True, top: int = 10, families: dict | None = None) -> Report:
    """Compute every table, ranking and figure's data of the report of a run, each once.

    Parameters
    ----------
    run_dir : path or RunData
    baseline, correction, n_resamples, seed, ceiling
        As :func:`reports.significance.significance_table`; ``n_resamples``
        and ``seed`` drive every bootstrap and permutation of the report (the
        results table's included).
    rank_blocks : tuple of {"targets", "folds"}
    rank_metric : {"pearson", "r2"}
    rope : float or None
        Region of practical equivalence (in mean r) of the Bayesian correlated
        t-test table; None leaves the table out.
    importance : dict, optional
        Model -> :func:`reports.analysis.importance_table` table, carried for the renderers.
    errors : bool
        Compute the :class:`ErrorAnalysis` (the figures and the HTML need it).
    top : int
        Rows of the "hardest" tables.
    families : dict, optional
        Model -> learner family (:func:`benchmark.config.learner_families`), which decides how many
        model seeds a learner-level claim needs (see :func:`reports.significance.significance_table`).

    Returns
    -------
    Report
        Of a partial run in which some model has no complete seed, the report of
        :func:`reports.rundata.finished_view` (the folds every model finished),
        saying so in every table's notes together with the missing folds and the
        ``--resume`` command.

    Raises
    ------
    ConfigError
        As :func:`reports.significance.significance_table`; a partial run with no
        fold finished by every model.
    """
    # Thousands of small matrix products (one per bootstrap draw): BLAS threads would only add overhead,
    # and one thread makes the sums independent of the machine's core count.
    with threadpool_limits(limits=1, user_api="blas"):
        return _build_report(run_dir, baseline=baseline, correction=correction, n_resamples=n_resamples,
                             seed=seed, ceiling=ceiling, rank_blocks=rank_blocks, rank_metric=rank_metric,
                             rope=rope, importance=importance, errors=errors, top=top, families=families)


def _build_report(run_dir, *, baseline, correction, n_resamples, seed, ceiling, rank_blocks, rank_metric, rope,
                  importance, errors, top, families) -> Report:
    run = finished_view(load_run_data(run_dir))
    check = check_groups(run)
    summary = summary_table(run, n_resamples=n_resamples, seed=seed)
    opts = dict(baseline=baseline, correction=correction, n_resamples=n_resamples, seed=seed, ceiling=ceiling,
                families=families)
    tables = {"significance": significance_table(run, **opts), "per_target": per_target_table(run, **opts),
              "metrics": metrics_table(run, n_resamples=n_resamples, seed=seed)}
    if rope is not None and len(run.models) > 1:
        tables["bayesian"] = bayesian_table(run, baseline=baseline, rope=rope, families=families,
                                            n_resamples=n_resamples, seed=seed)
    rankings, notes = {}, []
    for blocks in rank_blocks:
        try:
            rankings[blocks] = rank_models(run, blocks=blocks, metric=rank_metric)
        except ConfigError as exc:
            notes.append(f"No ranking over {blocks}: {exc}")
            continue
        tables[f"ranking_{blocks}"] = rankings[blocks].table()
        tables[f"ranking_{blocks}_pvalues"] = rankings[blocks].pvalue_table()
    try:
        ranks = rank_intervals(run, metric=rank_metric, n_resamples=n_resamples, seed=seed)
    except ConfigError as exc:
        notes.append(f"No rank intervals: {exc}")
    else:
        a = ranks.attrs
        conf = int(round(100 * a["confidence"]))
        ranks.attrs.update(kind="rank_intervals", caption=f"Rank of each model ({METRIC_LABEL.get(rank_metric, rank_metric)}, "
                           f"fold-level mean) with a {conf}% interval", notes=[
                               f"1 = best; ties share the average rank. Interval: percentile cluster bootstrap over "
                               f"{a['n_units']} {a['unit']} ({a['n_resamples']} draws, the same draw for every model)"
                               + (f"; {too_few(a['n_units'])}: no interval." if a["few"] else ".")])
        tables["rank_intervals"] = ranks
    if check.status == "violation":
        tables["group_violations"] = check.violations
        tables["group_violations"].attrs.update({"kind": "violations", "notes": [check.message]})
    # A partial run says so in every table, with what is missing and how to finish it.
    unfinished = run.partial_note or ("Unfinished run: " + "; ".join(missing_note(run)) + "."
                                      if missing_note(run) else "")
    if unfinished:
        notes.insert(0, unfinished)
    for t in tables.values():
        t.attrs["check"] = check.message
        if unfinished:
            t.attrs["notes"] = [unfinished, *t.attrs.get("notes", [])]
    analysis = None
    if errors:
        try:
            analysis = error_analysis(run, n_resamples=n_resamples, seed=seed, top=top)
        except ConfigError as exc:
            notes.append(f"No error analysis: {exc}")
    return Report(run, tables, rankings, check, notes, summary=summary, ceiling=ceiling, errors=analysis,
                  importance=dict(importance or {}), n_resamples=int(n_resamples), seed=int(seed))


def write_report(report: Report, out_dir: str | Path, formats=("md", "tex", "csv", "html")) -> dict[str, list[Path]]:
    """Write every table of ``report`` (see :func:`reports.tables.write_tables`) and ``report.json``.

    ``report.json`` holds the header lines, notes and each table's metadata.
    """
    out_dir = Path(out_dir)
    written = write_tables(report.tables, out_dir, formats=formats)
    meta = {"header": report.header(), "notes": report.notes, "group_check": report.check.status,
            "tables": {name: t.attrs for name, t in report.tables.items()}}
    (out_dir / "report.json").write_text(json.dumps(meta, indent=2, default=str) + "\n")
    return written
