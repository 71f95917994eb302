"""``benchmark export``, ``leaderboard`` and ``stats``: results that leave the run directory.

``export`` writes a run's versioned result file (:mod:`benchmark.export`; every run since the format exists
writes its own); ``leaderboard`` sets result files beside the published numbers of ``docs/published.toml``,
one table per protocol (:mod:`reports.leaderboard`); ``stats`` gives the report's two claims and rank
statistics on per-fold scores from any source (:mod:`reports.scoretable`).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from benchmark.errors import ConfigError
from benchmark.export import export_result
from benchmark.store import RunStore
from reports.leaderboard import AGGREGATIONS, board_display, leaderboard, load_published
from reports.resultfile import read_result
from reports.scoretable import rank_table, read_scores, stats_table
from reports.tables import Display, claim_cell, fmt, fmt_p, to_latex, to_markdown

LEADERBOARD_FORMATS = ("md", "csv", "tex")


def cmd_export(args: argparse.Namespace) -> int:
    path = export_result(args.run_dir, args.output, n_resamples=args.n_resamples, seed=args.seed)
    print(f"result file: {path}")
    return 0


def _result_of(item: str, n_resamples: int) -> dict:
    """A result file, or the result file of a run directory (written now if the run has none)."""
    path = Path(item)
    if path.is_dir():
        store = RunStore(path)
        if not store.exists:
            raise ConfigError(f"{item!r} is a folder but not a run directory (no manifest.json)")
        if not store.result_path.is_file():
            print(f"note: {item} has no result.json (a run from before the format); writing it now", file=sys.stderr)
            export_result(path, n_resamples=n_resamples)
        path = store.result_path
    return read_result(path)


def cmd_leaderboard(args: argparse.Namespace) -> int:
    fmt_ = args.format
    if fmt_ not in LEADERBOARD_FORMATS:
        raise ConfigError(f"--format {fmt_!r}: use one of {', '.join(LEADERBOARD_FORMATS)}")
    aggs = tuple(a.strip() for a in args.aggregation.split(",") if a.strip()) if args.aggregation else None
    bad = [a for a in aggs or () if a not in AGGREGATIONS]
    if bad:
        raise ConfigError(f"--aggregation {bad[0]!r}: use any of {', '.join(AGGREGATIONS)}")
    results = [_result_of(item, args.n_resamples) for item in args.results]
    published = [] if args.no_published else load_published(args.published)
    protocols = tuple(p.strip() for p in args.protocol.split(",") if p.strip()) if args.protocol else None
    boards = leaderboard(results, published, metric=args.metric, aggregations=aggs, protocols=protocols,
                         population=args.population)
    if not boards:
        raise ConfigError("nothing to show: no result file and no published entry for the metric "
                          f"{args.metric!r}")
    if fmt_ == "csv":
        import pandas as pd

        frame = pd.concat([b.frame() for b in boards], ignore_index=True)
        text = frame.to_csv(index=False)
    else:
        render = to_markdown if fmt_ == "md" else to_latex
        text = "\n".join(render(board_display(b)) for b in boards)
    if args.output:
        Path(args.output).write_text(text)
        print(f"leaderboard: {args.output} ({len(boards)} protocol(s))")
    else:
        print(text, end="" if text.endswith("\n") else "\n")
    return 0


def stats_display(table, name: str = "stats") -> Display:
    """The Markdown/LaTeX display of :func:`reports.scoretable.stats_table`: both claims' cells as the report
    prints them (:func:`reports.tables.claim_cell`), and the secondary permutation p."""
    a = table.attrs
    corr = {"holm": "Holm", "fdr_bh": "Benjamini-Hochberg"}.get(a.get("correction"), a.get("correction"))
    header = ["model", "metric", f"Δ vs {a.get('baseline')}", "effect",
              f"learners differ? learner t [CI] p_adj ({corr})",
              f"fitted predictors differ? cluster-bootstrap t [CI] p_adj ({corr})", "p perm (adj), secondary",
              "units", "cells", "missing (left out)"]
    rows = []
    floor = a.get("perm_floor")
    for r in table.to_dict("records"):
        diff = fmt(r["diff"], signed=True)
        if diff == "n/a":
            rows.append([r["model"], r["metric"], r.get("note") or "not tested", "", "", "", "", str(r["n_units"]),
                         str(r["n_cells"]), r["missing"] or "none"])
            continue
        perm = (fmt_p(r["perm_p_adj"], floor, r["perm_p"]) if np.isfinite(r["perm_p"])
                else r.get("pred_note") or "n/a")
        rows.append([r["model"], r["metric"], diff, fmt(r["effect"], signed=True), claim_cell(r, "", "learner"),
                     claim_cell(r, "", "pred"), perm, str(r["n_units"]), str(r["n_cells"]), r["missing"] or "none"])
    caption = f"Paired tests against {a.get('baseline')} ({a.get('source')})."
    return Display(name, header, rows, [[False] * len(header) for _ in rows], ["l", "l"] + ["r"] * 7 + ["l"],
                   caption, list(a.get("notes", [])))


def cmd_stats(args: argparse.Namespace) -> int:
    scores = read_scores(args.scores, split=args.split)
    metrics = tuple(m.strip() for m in args.metric.split(",") if m.strip()) if args.metric else None
    # A run's own result.json (in its run directory): the learner families the report takes from the registry.
    path = Path(args.scores)
    store = RunStore(path.parent)
    families = {}
    if path.name == "result.json" and store.exists and store.result_path.resolve() == path.resolve():
        from benchmark.config import learner_families  # the model registry: only for a run's own result file

        families = {m: f for m, f in learner_families(path.parent).items() if m in set(scores.frame["model"])}
    for item in (args.family or "").split(","):
        if item.strip():
            model, sep, fam = item.partition("=")
            if not sep or not model.strip() or not fam.strip():
                raise ConfigError(f"--family {item!r}: give MODEL=FAMILY pairs, comma-separated "
                                  "(e.g. rf=tabular,ridge=deterministic)")
            families[model.strip()] = fam.strip()
    table = stats_table(scores, baseline=args.baseline, metrics=metrics, correction=args.correction,
                        n_resamples=args.n_resamples, seed=args.seed, families=families)
    if args.format == "csv":
        print(table.to_csv(index=False), end="")
        return 0
    print(to_markdown(stats_display(table)))
    for metric in table.attrs["metrics"]:
        try:
            ranks, info = rank_table(scores, metric)
        except ConfigError as exc:
            print(f"No ranking of {metric}: {exc}")
            continue
        order = ", ".join(f"{m} {v:.2f}" for m, v in zip(ranks["model"], ranks["avg_rank"], strict=True))
        dropped = f"; cells left out (a model lacks them): {info['dropped']}" if info["dropped"] else ""
        if info["excluded"]:
            dropped += f"; excluded (undefined in every cell): {', '.join(info['excluded'])}"
        print(f"Friedman over {info['n_blocks']} cells ({metric}; exploratory: folds share training data): "
              f"chi2 p = {info['pvalue']:.3g}; average ranks {order}; Nemenyi CD = {info['cd']:.3f}{dropped}")
    return 0

