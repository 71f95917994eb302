"""``benchmark report``, ``compare``, ``ceiling`` and ``importance``: what a run's results say.

``report`` builds one :class:`reports.report.Report` (each quantity computed once) and writes every
rendering of it; ``compare`` tests two runs of one split against each other; ``ceiling`` prints the
ratings' noise ceiling; ``importance`` refits a run's folds to measure permutation importance (stored in
the run, shown by ``report --importance``). :func:`write_summary` is the results table both ``run`` and
``report`` print.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from benchmark.config import learner_families, model_definitions
from benchmark.errors import ConfigError, DataError
from benchmark.importance import run_importance
from reports.analysis import importance_table
from reports.ceiling import noise_ceiling, run_ceiling
from reports.compare import compare_runs, format_comparison
from reports.fonts import font_table, format_font_table
from reports.report import build_report, write_report
from reports.rundata import finished_view, load_run_data, missing_note
from reports.summary import format_table, summary_table
from reports.tables import FORMATS, make_displays, render_markdown
from splits import leakage_note


def write_summary(run_dir: Path, run=None, summary=None) -> int:
    """Print and write the results table (summary.md, summary.csv) of a run (``run``: its RunData, if read;
    ``summary``: its :func:`reports.summary.summary_table`, if computed)."""

    run = load_run_data(run if run is not None else run_dir)
    table = summary if summary is not None else summary_table(run)
    text = format_table(table, split=run.split, partition=run.partition)
    unfinished = run.partial_note or ("; ".join(missing_note(run)) if missing_note(run) else "")
    if unfinished:
        text += "\n" + unfinished
    note = leakage_note(run.manifest.get("leakage"))
    if note:
        text += "\n" + note
    fonts = format_font_table(font_table(run.manifest, table), run.manifest)
    if fonts:
        text += "\n\n" + fonts
    table.to_csv(Path(run_dir) / "summary.csv", index=False)
    (Path(run_dir) / "summary.md").write_text(text + "\n")
    print(text)
    print(f"\nresults: {run_dir} (summary.md, summary.csv, metrics.parquet, predictions.parquet)")
    return 0


#: Defaults of 'benchmark report' when neither a flag nor the run's study file sets them.
REPORT_DEFAULTS = {"format": "md,tex,csv,html", "correction": "holm", "n_resamples": 2000, "seed": 0, "rope": 0.01,
                   "plots": True, "html": True}


def _report_defaults(args: argparse.Namespace, study_report: dict) -> None:
    """Fill report options: a flag, else the run's study file ([report]), else :data:`REPORT_DEFAULTS`."""
    for key in ("baseline", "ceiling", *REPORT_DEFAULTS):
        if getattr(args, key, None) is None:
            setattr(args, key, study_report.get(key, REPORT_DEFAULTS.get(key)))


def cmd_report(args: argparse.Namespace) -> int:
    run_dir = Path(args.run_dir)
    # The run is read once; every table below uses it (of a partial run, the folds every model finished).
    run = finished_view(load_run_data(run_dir))
    _report_defaults(args, (run.manifest["config"].get("study") or {}).get("report", {}))
    formats = [f.strip() for f in args.format.split(",") if f.strip()]
    bad = [f for f in formats if f not in FORMATS]
    if bad or not formats:
        raise ConfigError(f"--format {args.format!r}: use any of {','.join(FORMATS)}")
    ceiling = None
    if args.ceiling is not False:
        described = (run.manifest.get("dataset") or {}).get("description")
        source = args.data_dir or described or run.manifest.get("data_dir")
        try:
            # The ceiling of the segments the run scored (a fixed test set's own), with a CI over its units.
            ceiling = run_ceiling(run, source, n_resamples=args.n_resamples, seed=args.seed)
        except DataError as exc:
            if args.ceiling:
                raise
            fix = "--no-ceiling" if described and not args.data_dir else "--data-dir or --no-ceiling"
            ceiling_note = f"noise ceiling unavailable, no r / ceiling column: {exc}; pass {fix}"
    importance = {}
    if args.importance:
        for model in [m.strip() for m in args.importance.split(",") if m.strip()]:
            imp = importance_table(run_dir, model, n_resamples=args.n_resamples, seed=args.seed)
            if imp is None:
                raise ConfigError(f"run has no stored importance for {model!r}; run "
                                  f"`benchmark importance {run_dir} --model {model}` first")
            importance[model] = imp
    # Every table, figure and the HTML below format this one report: each quantity is computed once.
    report = build_report(run, baseline=args.baseline, correction=args.correction,
                          n_resamples=args.n_resamples, seed=args.seed, ceiling=ceiling,
                          rope=args.rope if args.rope > 0 else None, importance=importance,
                          errors=bool(args.plots or args.html), families=learner_families(run_dir))
    if ceiling is None and args.ceiling is not False:
        # Printed with the report's notes below, and kept in report.json and the HTML.
        report.notes.append(ceiling_note[0].upper() + ceiling_note[1:] + ".")
    write_summary(run_dir, run, report.summary)
    out = Path(args.out) if args.out else run_dir / "report"
    written = write_report(report, out, formats=formats)
    print("\n" + "\n".join(report.header()) + "\n")
    print(render_markdown(make_displays(report.tables["significance"], "significance")))
    for blocks, ranking in report.rankings.items():
        ranks = ", ".join(f"{m} {v:.2f}" for m, v in ranking.result.avg_ranks.items())
        excluded = f" (excluded: {', '.join(ranking.excluded)})" if ranking.excluded else ""
        print(f"Friedman over {blocks} ({ranking.label}): p = {ranking.result.pvalue:.3g}; "
              f"average ranks {ranks}{excluded}; Nemenyi CD = {ranking.result.cd:.3f}")
    for note in report.notes:
        print(note)
    written = list(written)
    for model, imp in importance.items():
        imp.to_csv(out / f"importance_{model}.csv", index=False)
        written.append(f"importance_{model}.csv")
    if args.plots or args.html:
        from reports.plots import report_figures, save_figures

        figures = report_figures(report)
        paths, pngs = save_figures(figures, out / "plots" if args.plots else None)
        if args.plots:
            written.append(f"plots/ ({len(paths)} files)")
        if args.html:
            from reports.html import write_html

            html = write_html(report, out / "report.html", figures, pngs,
                              ceiling_note=ceiling_note if ceiling is None and args.ceiling is not False
                              else "noise ceiling not available for this run")
            written.append(html.name)
    print(f"\nreport: {out} ({', '.join(written)}; {','.join(formats)})")
    return 0


def cmd_ceiling(args: argparse.Namespace) -> int:
    if args.dataset and args.data_dir:
        raise ConfigError("--dataset and --data-dir both name the data; pass one")
    table = noise_ceiling(args.dataset or args.data_dir, n_splits=args.n_splits, seed=args.seed)
    print(table.to_string(index=False, float_format=lambda x: f"{x:.3f}"))
    m = table.attrs.get("match", {})
    print(f"\n{m.get('n_label_segments_rated', '?')} rated segments, {m.get('n_raters', '?')} raters; "
          f"ceiling_r = sqrt(Spearman-Brown split-half reliability of the mean rating), "
          f"{args.n_splits} random rater splits")
    return 0


def cmd_importance(args: argparse.Namespace) -> int:
    table = run_importance(args.run_dir, args.model, by=args.by, n_repeats=args.n_repeats, max_folds=args.max_folds,
                           cache_dir=args.cache_dir, seed=args.seed)
    n_jobs = len(table.attrs["jobs"])
    print(f"importance of {args.model} by {args.by}: {table['unit'].nunique()} units x {n_jobs} folds stored in "
          f"{Path(args.run_dir) / 'importance'}; `benchmark report {args.run_dir} --importance {args.model}` shows it")
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    table = compare_runs(args.run_a, args.run_b, n_resamples=args.n_resamples, seed=args.seed,
                         definitions=model_definitions, families=learner_families)
    print(format_comparison(table))
    return 0


def cmd_power(args: argparse.Namespace) -> int:
    from simulation.power import format_power, run_power

    try:
        effects = tuple(float(e) for e in args.effect.split(",") if e.strip())
    except ValueError:
        raise ConfigError(f"--effect {args.effect!r}: use comma-separated numbers, e.g. 0.01,0.02,0.05") from None
    res = run_power(args.split, seeds=args.seeds, n_splits=args.n_splits, effects=effects, metric=args.metric,
                    reps=args.reps, n_resamples=args.resamples, seed=args.seed, data_dir=args.data_dir)
    print(format_power(res, args.metric))
    return 0
