"""``benchmark`` command line: run, resume, list, report, features, cache.

Library errors are printed as one line (``error: ...``) with a non-zero exit
code; results already computed stay on disk.
"""

from __future__ import annotations

import argparse
import logging
import sys
import traceback
from pathlib import Path

from benchmark.errors import BenchmarkError, ConfigError, OutputError

EXIT_ERROR = 2
EXIT_INTERRUPTED = 130


def _int_list(text: str) -> list[int]:
    try:
        return [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None


def _add_data_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data-dir", help="PercePiano folder (default: $PERCEPIANO_DIR, ./data/percepiano, "
                                      "../shared/percepiano)")
    p.add_argument("--cache-dir", help="feature cache (default: $PERCEPIANO_CACHE or ./.cache/percepiano-bench)")
    p.add_argument("--jobs", type=int, default=None, help="parallel workers (-1: all cores; default 1)")
    p.add_argument("--soundfont", help="SoundFont for rendering audio (default: $PERCEPIANO_SOUNDFONT or the "
                                       "General MIDI SoundFont bundled with pretty_midi); 'run' and 'features "
                                       "build' take several, comma-separated ('default' = the bundled one): audio "
                                       "models then run per font, across fonts and trained on all fonts")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="benchmark", description=__doc__.splitlines()[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress details")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run models on a split and write a run directory")
    run.add_argument("--study", metavar="STUDY.toml", help="read models, variants, split, seeds, features, backend "
                                                           "and report options from a study file; flags override it")
    run.add_argument("--models", help="comma-separated model names (see 'benchmark list models')")
    run.add_argument("--split", default=None, help="split name (see 'benchmark list splits'; default lopo)")
    run.add_argument("--seeds", type=_int_list, default=None, help="comma-separated seeds (default 0)")
    run.add_argument("--n-splits", type=int, default=None,
                     help="folds, for splits that take it (kfold, kfold_grouped, excerpt, excerpt_leaky)")
    run.add_argument("--features", help="feature sets every model consumes instead of its own inputs")
    run.add_argument("--out", default="runs", help="parent folder of run directories (default runs/)")
    run.add_argument("--resume", metavar="RUN_DIR", help="finish an interrupted run; recomputes nothing finished")
    run.add_argument("--exclude-score", action="store_true",
                     help="drop the two deadpan score renderings (players Score, Score2); kept by default")
    run.add_argument("--on-bad-input", choices=("skip", "error"), default=None,
                     help="unreadable MIDI: skip the segment with a warning (default) or stop")
    run.add_argument("--error-score", choices=("nan", "raise"), default=None,
                     help="a failing fold: record it and go on (default) or stop at once")
    run.add_argument("--no-progress", action="store_true", help="hide progress bars")
    run.add_argument("--members", help="members of the ensembles (ensemble_mean, stack), e.g. rf,lgbm,ridge "
                                       "(default: each ensemble's own)")
    run.add_argument("--init", metavar="CHECKPOINT", help="start every neural model's encoder from a pre-trained "
                                                         "SSAST checkpoint ('benchmark pretrain' prints its path; "
                                                         "'default': the default one)")
    run.add_argument("--backend", choices=("joblib", "dask", "dask-local"), default=None,
                     help="where jobs run: local processes (joblib, default), a Dask cluster (dask, with "
                          "--scheduler) or a Dask LocalCluster (dask-local)")
    run.add_argument("--scheduler", metavar="tcp://HOST:PORT", help="Dask scheduler address for --backend dask")
    run.add_argument("--device", choices=("auto", "cpu", "cuda"), default=None,
                     help="where neural models train: a GPU when torch sees one (auto, default), cpu or cuda")
    _add_data_options(run)

    lst = sub.add_parser("list", help="list registered models, splits or feature sets")
    lst.add_argument("what", choices=("models", "splits", "features"))

    spl = sub.add_parser("splits", help="inspect splits: near-duplicates across folds, overlapping passages")
    ssub = spl.add_subparsers(dest="action", required=True)
    chk = ssub.add_parser("check", help="count, per fold, test segments with a near-duplicate (same notes, same "
                                        "recording) in training")
    chk.add_argument("split", help="split name (see 'benchmark list splits')")
    chk.add_argument("--seeds", type=_int_list, default=[0], help="comma-separated seeds (default 0)")
    chk.add_argument("--n-splits", type=int, default=None, help="folds, for splits that take it")
    chk.add_argument("--threshold", type=float, default=0.8,
                     help="shared-note fraction at or above which two segments are near-duplicates (default 0.8)")
    chk.add_argument("--exclude-score", action="store_true", help="drop the score renderings, as 'run' does")
    chk.add_argument("--data-dir", help="PercePiano folder (default: $PERCEPIANO_DIR, ./data/percepiano, "
                                        "../shared/percepiano)")
    pas = ssub.add_parser("passages", help="list the excerpts that overlap in bars and the passages they form")
    pas.add_argument("--threshold", type=float, default=0.8, help="near-duplicate threshold (default 0.8)")
    pas.add_argument("--data-dir", help="PercePiano folder")
    for p in (chk, pas):
        p.add_argument("--cache-dir", help="feature cache that keeps the notes read (stage note_bigrams; default: "
                                           "$PERCEPIANO_CACHE or ./.cache/percepiano-bench)")

    rep = sub.add_parser("report", help="print the results table of a run directory and write its statistical "
                                        "report (significance, per-target, ranks) to RUN_DIR/report/")
    rep.add_argument("run_dir")
    rep.add_argument("--baseline", help="model the others are tested against (default rf if present, else the first)")
    rep.add_argument("--format", default=None, help="comma-separated: md,tex,csv,html (default all)")
    rep.add_argument("--correction", choices=("holm", "fdr_bh"), default=None,
                     help="p-value adjustment across comparisons (default holm)")
    rep.add_argument("--ceiling", action=argparse.BooleanOptionalAction, default=None,
                     help="add r / noise ceiling columns (default: when the run's rater file is readable)")
    rep.add_argument("--data-dir", help="PercePiano folder for the noise ceiling (default: the run's data_dir)")
    rep.add_argument("--n-resamples", type=int, default=None, help="bootstrap resamples and permutations (2000)")
    rep.add_argument("--seed", type=int, default=None, help="seed of the resampling (default 0)")
    rep.add_argument("--out", help="folder for the tables (default RUN_DIR/report)")
    rep.add_argument("--rope", type=float, default=None,
                     help="region of practical equivalence in mean r for the Bayesian correlated t-test "
                          "(default 0.01; 0 or less leaves that table out)")
    rep.add_argument("--plots", action=argparse.BooleanOptionalAction, default=None,
                     help="write the figures (PNG and PDF) into OUT/plots (default on)")
    rep.add_argument("--html", action=argparse.BooleanOptionalAction, default=None,
                     help="write a single-file HTML report, OUT/report.html (default on)")
    rep.add_argument("--importance", metavar="MODELS",
                     help="include the permutation importance that `benchmark importance` stored for these "
                          "models, e.g. rf,lgbm (the report never refits)")

    ceil = sub.add_parser("ceiling", help="print the noise ceiling of each target (split-half reliability of the "
                                          "mean rating)")
    ceil.add_argument("--data-dir", help="PercePiano folder (default: $PERCEPIANO_DIR, ./data/percepiano, "
                                         "../shared/percepiano)")
    ceil.add_argument("--n-splits", type=int, default=200, help="random rater splits (default 200)")
    ceil.add_argument("--seed", type=int, default=0)

    cmp_ = sub.add_parser("compare", help="compare the models of two runs of the same split (A - B)")
    cmp_.add_argument("run_a")
    cmp_.add_argument("run_b")
    cmp_.add_argument("--n-resamples", type=int, default=2000,
                      help="cluster-bootstrap resamples and unit-swap permutations (default 2000)")
    cmp_.add_argument("--seed", type=int, default=0, help="seed of the resampling (default 0)")

    imp = sub.add_parser("importance", help="permutation importance of feature families on a run's held-out "
                                            "folds (refits each fold; stored in the run directory)")
    imp.add_argument("run_dir")
    imp.add_argument("--model", required=True, help="a model of the run, e.g. rf")
    imp.add_argument("--by", choices=("family", "feature"), default="family")
    imp.add_argument("--n-repeats", type=int, default=5, help="permutations per unit and fold (default 5)")
    imp.add_argument("--max-folds", type=int, default=None, help="only the first N (seed, fold) jobs")
    imp.add_argument("--cache-dir", default=None, help="feature cache (default: the run's)")
    imp.add_argument("--seed", type=int, default=0, help="seed of the permutations (default 0)")

    feat = sub.add_parser("features", help="build or inspect the feature cache")
    fsub = feat.add_subparsers(dest="action", required=True)
    fb = fsub.add_parser("build", help="prebuild feature sets for every segment")
    fb.add_argument("--features", default="midi", help="comma-separated feature sets: midi,audio,score,mel "
                                                       "(default midi)")
    fb.add_argument("--on-bad-input", choices=("skip", "error"), default="skip")
    _add_data_options(fb)
    fd = fsub.add_parser("docs", help="print every feature's name and documentation as Markdown")
    fd.add_argument("--features", default="midi,audio,score", help="comma-separated tabular feature sets")
    fi = fsub.add_parser("info", help="what is cached, and its size")
    fi.add_argument("--cache-dir")

    ren = sub.add_parser("render", help="render one segment's MIDI to a WAV file (listening check)")
    ren.add_argument("segment_id", help="e.g. Schubert_D960_mv2_8bars_1_17")
    ren.add_argument("-o", "--output", required=True, help="WAV file to write")
    _add_data_options(ren)

    from benchmark import cli_ssast

    cli_ssast.add_commands(sub, _add_data_options)

    cache = sub.add_parser("cache", help="manage the feature cache")
    csub = cache.add_subparsers(dest="action", required=True)
    cc = csub.add_parser("clear", help="delete cached entries")
    cc.add_argument("--stage", help="only this stage: a feature set (midi, audio, score, mel) or render; only "
                                    "entries the cache wrote are removed")
    cc.add_argument("--cache-dir")
    return parser


def _model_list(text: str, variants: dict) -> list[str]:
    from benchmark.jobs import resolve_model

    names = [n.strip() for n in text.split(",") if n.strip()]
    if not names:
        raise ConfigError("no models given; pass a comma-separated list")
    for n in names:
        resolve_model(n, variants)
    return list(dict.fromkeys(names))


def _config_from_args(args: argparse.Namespace):
    """The run's config: command-line flags over the study file (if any) over the defaults."""
    from benchmark.runner import RunConfig
    from benchmark.study import load_study
    from features.sets import FEATURE_SETS

    study = load_study(args.study) if args.study else None
    s = study["study"] if study else {}
    b = study["backend"] if study else {}
    variants = study["variants"] if study else {}
    if args.models:
        models = _model_list(args.models, variants)
    elif study:
        models = study["models"]
    else:
        raise ConfigError("no models given; pass e.g. --models ridge,rf,lgbm (see 'benchmark list models') "
                          "or --study STUDY.toml")
    if getattr(args, "init", None):
        from benchmark.cli_ssast import with_init

        variants = with_init(models, variants, args.init)
    features = FEATURE_SETS.parse_list(args.features) if args.features else s.get("features")
    members = _model_list(args.members, variants) if args.members else s.get("members")

    def pick(flag, key, default, table=s):
        return flag if flag is not None else table.get(key, default)

    resolved = None
    if study:
        resolved = {k: study[k] for k in ("study", "models", "variants", "report")}
    return RunConfig(models=models, split=pick(args.split, "split", "lopo"), seeds=pick(args.seeds, "seeds", [0]),
                     features=features, n_splits=pick(args.n_splits, "n_splits", None),
                     data_dir=pick(args.data_dir, "data_dir", None),
                     include_score=not (args.exclude_score or s.get("exclude_score", False)),
                     on_bad_input=pick(args.on_bad_input, "on_bad_input", "skip"),
                     error_score=pick(args.error_score, "error_score", "nan"),
                     jobs=pick(args.jobs, "jobs", 1, b), cache_dir=pick(args.cache_dir, "cache_dir", None, b),
                     soundfont=pick(args.soundfont, "soundfont", None), variants=variants, members=members,
                     backend=pick(args.backend, "name", "joblib", b), scheduler=pick(args.scheduler, "scheduler", None, b),
                     study=resolved, device=pick(args.device, "device", "auto"))


def _check_writable(folder: Path, what: str) -> None:
    """Refuse a folder that is a file or cannot be written, before any expensive step."""
    import tempfile

    if folder.exists() and not folder.is_dir():
        raise ConfigError(f"{what} {str(folder)!r} is a file, not a folder; pass a folder")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as exc:
        raise ConfigError(f"{what} {str(folder)!r} is not writable ({exc.strerror or exc}); pass another folder "
                          "or fix its permissions") from None


#: Options of 'benchmark run' that shape results: --resume takes them from the run's manifest.
RESULT_FLAGS = ("models", "split", "seeds", "n_splits", "features", "exclude_score", "on_bad_input", "error_score",
                "members", "data_dir", "soundfont")


def _check_resume_flags(args: argparse.Namespace, config) -> None:
    """Refuse result-shaping flags on --resume that differ from the run being resumed (never ignore them)."""
    if args.study:
        return  # compared as a whole above
    from features.sets import FEATURE_SETS

    given = {"models": (lambda v: _model_list(v, config.variants), "models"),
             "split": (str, "split"), "seeds": (list, "seeds"), "n_splits": (int, "n_splits"),
             "features": (FEATURE_SETS.parse_list, "features"), "on_bad_input": (str, "on_bad_input"),
             "error_score": (str, "error_score"), "members": (lambda v: _model_list(v, config.variants), "members"),
             "data_dir": (str, "data_dir"), "soundfont": (str, "soundfont")}
    differ = []
    for flag, (norm, field) in given.items():
        value = getattr(args, flag)
        if value is None:
            continue
        old = getattr(config, field)
        new = norm(value)
        if flag == "models":  # the run's models include the ensembles' members
            same = all(m in config.run_models for m in new)
        elif flag in ("data_dir", "soundfont") and old is not None:
            same = Path(new).resolve() == Path(old).resolve()
        else:
            same = (list(new) if isinstance(new, list | tuple) else new) == (list(old) if isinstance(old, list | tuple)
                                                                               else old)
        if not same:
            differ.append(f"--{flag.replace('_', '-')}")
    if args.exclude_score and config.include_score:
        differ.append("--exclude-score")
    # Where neural models train and the checkpoint they start from change their results: the finished jobs
    # were fitted with the run's own, so the remaining ones must be too.
    if args.device is not None and args.device != config.device:
        differ.append(f"--device (the run's: {config.device})")
    if args.init:
        from benchmark.cli_ssast import with_init

        if with_init(config.models, config.variants, args.init) != config.variants:
            inits = sorted({str(v["params"].get("init")) for v in config.variants.values() if "init" in v["params"]})
            differ.append(f"--init (the run's: {', '.join(inits) or 'none'})")
    if differ:
        raise ConfigError(f"--resume continues the run with the options it started with; {', '.join(differ)} "
                          "differ from them (only --jobs, --backend, --scheduler, --cache-dir may change); "
                          "drop them or start a new run")


def _cmd_run(args: argparse.Namespace) -> int:
    from benchmark.runner import EXECUTION_OPTIONS, Runner, load_config, new_run_dir

    if args.resume:
        run_dir = Path(args.resume)
        config = load_config(run_dir)
        if args.study:
            # The study (with any flags) must describe the run being resumed.
            wanted = _config_from_args(args)
            wanted.validate()
            old, new = config.results_key(), wanted.results_key()
            diff = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
            if diff:
                raise ConfigError(f"{args.study} does not describe the run being resumed (differs in: "
                                  f"{', '.join(diff)}); resume with --resume alone or start a new run")
        # Execution options may change on resume; everything else comes from the manifest.
        for name in EXECUTION_OPTIONS:
            if getattr(args, name) is not None:
                setattr(config, name, getattr(args, name))
        _check_resume_flags(args, config)
        _check_writable(run_dir, "the run directory")
    else:
        config = _config_from_args(args)
        config.validate()
        _check_writable(Path(args.out), "--out")
        run_dir = new_run_dir(args.out, config.split)
    runner = Runner(config, run_dir, progress=not args.no_progress, command=args.argv, notify=_say)
    try:
        runner.prepare()
        if runner.skipped:
            print(f"warning: skipped {len(runner.skipped)} segment(s) with unreadable MIDI: "
                  f"{', '.join(sorted(runner.skipped))}", file=sys.stderr)
        counts = runner.run()
    except OutputError as exc:
        if not runner.store.exists:
            raise
        raise OutputError(f"{exc}; finished jobs are kept; then finish with: benchmark run --resume {run_dir}") from None
    except KeyboardInterrupt:
        if not runner.store.exists:
            # Interrupted while loading data or building features: no run directory exists yet.
            print("interrupted before the run started; features built so far are cached; rerun the same command",
                  file=sys.stderr)
            return EXIT_INTERRUPTED
        if hasattr(runner, "folds"):
            runner.collect()
        print(f"interrupted; finished jobs are kept in {run_dir}; finish with: benchmark run --resume {run_dir}",
              file=sys.stderr)
        return EXIT_INTERRUPTED
    print(f"jobs: {counts['ok']} run, {counts['resumed']} resumed, {counts['failed']} failed "
          f"(features {runner.feature_seconds:.1f}s, {runner.features.n_cached} cached)")
    from reports.rundata import RunData

    # The closing table reports what the runner just collected: the job files are not read again.
    _report(run_dir, RunData.from_contents(run_dir, runner.contents))
    lost = counts.get("failed_models") or {}
    if lost:
        # The other models' results are above and on disk; a model that never fitted is still a failed run.
        names = ", ".join(f"{m} ({n} job{'s' if n != 1 else ''})" for m, n in lost.items())
        first = next(iter(lost))
        print(f"error: every job of {names} failed; the other models' results are kept; tracebacks: "
              f"{runner.store.jobs_dir}/{first}__*.error.txt", file=sys.stderr)
        return EXIT_ERROR
    return 0


def _say(line: str) -> None:
    """A phase of the run (the plan, data, features, leakage check), as it starts."""
    print(line, flush=True)


def _report(run_dir: Path, run=None, summary=None) -> int:
    """Print and write the results table (summary.md, summary.csv) of a run (``run``: its RunData, if read;
    ``summary``: its :func:`reports.summary.summary_table`, if computed)."""
    from reports.fonts import font_table, format_font_table
    from reports.rundata import load_run_data, missing_note
    from reports.summary import format_table, summary_table
    from splits import leakage_note

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


def _cmd_report(args: argparse.Namespace) -> int:
    from reports.report import build_report, write_report
    from reports.rundata import finished_view, load_run_data
    from reports.tables import FORMATS, make_displays, render_markdown

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
        from benchmark.errors import DataError
        from reports.ceiling import run_ceiling

        data_dir = args.data_dir or run.manifest.get("data_dir")
        try:
            # The ceiling of the segments the run scored (a fixed test set's own), with a CI over its units.
            ceiling = run_ceiling(run, data_dir, n_resamples=args.n_resamples, seed=args.seed)
        except DataError as exc:
            if args.ceiling:
                raise
            ceiling_note = f"no noise-ceiling column ({exc}); pass --data-dir or --no-ceiling"
    importance = {}
    if args.importance:
        from reports.analysis import importance_table

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
                          errors=bool(args.plots or args.html))
    _report(run_dir, run, report.summary)
    if ceiling is None and args.ceiling is not False:
        print(f"\nnote: {ceiling_note}", file=sys.stderr)
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
                              ceiling_note="noise ceiling not available for this run")
            written.append(html.name)
    print(f"\nreport: {out} ({', '.join(written)}; {','.join(formats)})")
    return 0


def _cmd_ceiling(args: argparse.Namespace) -> int:
    from reports.ceiling import noise_ceiling

    table = noise_ceiling(args.data_dir, n_splits=args.n_splits, seed=args.seed)
    print(table.to_string(index=False, float_format=lambda x: f"{x:.3f}"))
    m = table.attrs.get("match", {})
    print(f"\n{m.get('n_label_segments_rated', '?')} rated segments, {m.get('n_raters', '?')} raters; "
          f"ceiling_r = sqrt(Spearman-Brown split-half reliability of the mean rating), "
          f"{args.n_splits} random rater splits")
    return 0


def _cmd_importance(args: argparse.Namespace) -> int:
    from benchmark.importance import run_importance

    table = run_importance(args.run_dir, args.model, by=args.by, n_repeats=args.n_repeats, max_folds=args.max_folds,
                           cache_dir=args.cache_dir, seed=args.seed)
    n_jobs = len(table.attrs["jobs"])
    print(f"importance of {args.model} by {args.by}: {table['unit'].nunique()} units x {n_jobs} folds stored in "
          f"{Path(args.run_dir) / 'importance'}; `benchmark report {args.run_dir} --importance {args.model}` shows it")
    return 0


def _cmd_compare(args: argparse.Namespace) -> int:
    from benchmark.config import model_definitions
    from reports.compare import compare_runs, format_comparison

    table = compare_runs(args.run_a, args.run_b, n_resamples=args.n_resamples, seed=args.seed,
                         definitions=model_definitions)
    print(format_comparison(table))
    return 0


def _cmd_list(args: argparse.Namespace) -> int:
    if args.what == "models":
        from models import MODELS as reg
    elif args.what == "splits":
        from splits import SPLITS as reg
    else:
        import models  # noqa: F401  (registers the feature sets computed by models: ssast)
        from features.sets import FEATURE_SETS as reg
    for spec in reg:
        extra = f"  [inputs: {','.join(spec.inputs)}]" if spec.inputs else ""
        if args.what == "splits":
            extra = ("  [LEAKS: can put a same-player near-duplicate of a test segment in training]"
                     if spec.extra.get("leaks") else "  [no same-player near-duplicates across folds]")
        describe = spec.extra.get("describe")  # registry metadata, e.g. a neural model's size and input
        if describe is not None:
            extra += f"  [{describe(spec)}]"
        print(f"{spec.name:<24} {spec.description}{extra}")
    if args.what == "splits":
        print("\nCheck any split on the data: benchmark splits check SPLIT")
    return 0


def _cmd_splits(args: argparse.Namespace) -> int:
    from benchmark.dataset import load_dataset
    from features.cache import Cache, resolve_cache_dir
    from splits import excerpt_overlaps, leakage_summary, leakage_table, passage_groups, shared_note_matrix
    from splits.overlap import note_cache

    if not 0 < args.threshold <= 1:
        raise ConfigError(f"--threshold {args.threshold}: use a shared-note fraction in (0, 1]")
    ds = load_dataset(args.data_dir, include_score=not getattr(args, "exclude_score", False))
    with note_cache(Cache(resolve_cache_dir(args.cache_dir))):
        shared = shared_note_matrix(ds.meta)
    if args.action == "passages":
        links = excerpt_overlaps(ds.meta, shared, threshold=args.threshold)
        print(links.to_string(index=False, float_format=lambda x: f"{x:.3f}"))
        passages = passage_groups(ds.meta, shared, threshold=args.threshold)
        print(f"\n{ds.meta['excerpt'].nunique()} excerpts form {len(set(passages))} passages "
              f"(excerpts linked when a player's segments of both share >= {args.threshold:g} of their notes)")
        return 0
    table = leakage_table(args.split, ds.meta, seeds=args.seeds, n_splits=args.n_splits, threshold=args.threshold,
                          shared=shared)
    per_fold = table[table["fold"] >= 0]
    print(per_fold.to_string(index=False))
    print("\n" + leakage_summary(table, args.threshold))
    return 0


def _cmd_features(args: argparse.Namespace) -> int:
    from features.cache import Cache, resolve_cache_dir

    if args.action == "docs":
        return _feature_docs(args.features)
    cache = Cache(resolve_cache_dir(getattr(args, "cache_dir", None)))
    if args.action == "info":
        rows = cache.info()
        if not rows:
            print(f"cache {cache.root} is empty")
        for r in rows:
            print(f"{r['stage']:<12} {r['entries']:>6} entries {r['bytes'] / 1e6:>10.1f} MB")
        return 0
    import time

    import models  # noqa: F401  (registers the feature sets computed by models: ssast)
    from benchmark.dataset import load_dataset
    from benchmark.workers import check_jobs
    from features.build import build_array_stage, build_features
    from features.sets import FEATURE_SETS, is_array_stage
    from features.stages import check_soundfont_use

    names = FEATURE_SETS.parse_list(args.features)
    tables = [n for n in names if not is_array_stage(n)]
    check_jobs(args.jobs)
    check_soundfont_use(args.soundfont, names)
    ds = load_dataset(args.data_dir)
    t0 = time.perf_counter()
    from features.soundfonts import split_soundfonts

    fonts = split_soundfonts(args.soundfont) or [None]
    for font in fonts:  # several SoundFonts (--soundfont A,B): the tables once per font
        if not tables:
            break
        fm = build_features(ds.meta, tables, cache, n_jobs=args.jobs or 1, on_bad_input=args.on_bad_input,
                            soundfont=font, notify=_say)
        print(f"{','.join(tables)}{f' ({font})' if len(fonts) > 1 else ''}: {len(fm.X)} segments x "
              f"{fm.X.shape[1]} features ({fm.n_cached} cached, {fm.n_computed} computed, {len(fm.skipped)} skipped)")
    for name in [n for n in names if is_array_stage(n)]:
        if name == "mel" and len(fonts) > 1:
            raise ConfigError("mel spectrograms take one --soundfont; several work for the audio feature set only")
        stage = FEATURE_SETS.build(name, **({"soundfont": args.soundfont} if name == "mel" else {}))
        keys, bad, hits = build_array_stage(stage, ds.meta, cache, n_jobs=args.jobs or 1, notify=_say)
        print(f"{name}: {len(keys)} arrays cached ({hits} already, {len(keys) - hits} computed), {len(bad)} failed"
              + (f" ({', '.join(sorted(bad))})" if bad else ""))
    print(f"done in {time.perf_counter() - t0:.1f}s; cache {cache.root}")
    return 0


def _feature_docs(names: str) -> int:
    from features.sets import FEATURE_SETS

    for name in FEATURE_SETS.parse_list(names):
        spec = FEATURE_SETS.get(name)
        if spec.extra.get("kind") == "array":
            continue
        fs = spec.build()
        print(f"## `{name}`: {spec.description}\n\nExtractor version {fs.version}.\n")
        print("| feature | what it measures |\n|---|---|")
        for feat in fs.feature_names:
            print(f"| `{feat}` | {fs.docs[feat]} |")
        print()
    return 0


def _cmd_render(args: argparse.Namespace) -> int:
    import soundfile

    from benchmark.dataset import load_dataset
    from features.cache import Cache, resolve_cache_dir
    from features.stages import AudioParams, rendered_audio

    ds = load_dataset(args.data_dir)
    rows = ds.meta[ds.meta["sample_id"] == args.segment_id.strip()]
    if rows.empty:
        import difflib

        close = difflib.get_close_matches(args.segment_id, list(ds.meta["sample_id"]), n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise ConfigError(f"unknown segment {args.segment_id!r}{hint}")
    if args.soundfont and "," in args.soundfont:
        raise ConfigError(f"render takes one --soundfont, got {args.soundfont!r}")
    params = AudioParams(soundfont=args.soundfont)
    y = rendered_audio(rows.iloc[0].to_dict(), Cache(resolve_cache_dir(args.cache_dir)), params)
    try:
        soundfile.write(args.output, y, params.sr, subtype="FLOAT")
    except (OSError, RuntimeError) as exc:
        raise ConfigError(f"cannot write {args.output!r}: {exc}") from None
    print(f"wrote {args.output} ({len(y) / params.sr:.2f} s, {params.sr} Hz, peak {abs(y).max():.3f})")
    return 0


def cache_stages() -> list[str]:
    """Every stage the harness writes to the cache: the feature sets' (a set may name its own, and
    others it writes, e.g. ``ssast``: ``ssast_emb`` and the checkpoints' ``ssast_ckpt``), the rendered audio
    and the note bigrams of the split groups and the leakage check."""
    import models  # noqa: F401  (registers the feature sets computed by models: ssast)
    from features.sets import FEATURE_SETS
    from splits.overlap import BIGRAM_STAGE

    return sorted({s for spec in FEATURE_SETS for s in spec.extra.get("stages", (spec.name,))}
                  | {"render", BIGRAM_STAGE})


def _cmd_cache(args: argparse.Namespace) -> int:
    from features.cache import Cache, resolve_cache_dir

    cache = Cache(resolve_cache_dir(args.cache_dir))
    if args.stage is not None:
        known = cache_stages()
        if args.stage not in known:
            import difflib

            close = difflib.get_close_matches(args.stage, known, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise ConfigError(f"unknown cache stage {args.stage!r}{hint} (stages: {', '.join(known)})")
        stages = [args.stage]
    else:
        stages = sorted(set(cache_stages()) | set(cache.stages()))
    n = cache.clear(stages)
    print(f"removed {n} entries from {cache.root}")
    return 0


def _chain(exc: BaseException):
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        yield exc
        exc = exc.__cause__ or exc.__context__


def _is_os_level(exc: BaseException) -> bool:
    return not any(isinstance(e, BenchmarkError) for e in _chain(exc))


def expected_failure(exc: BaseException) -> str | None:
    """The one-line message for a failure the user can act on, or None for a bug (which keeps its traceback).

    Expected: any :class:`BenchmarkError` (also when a worker raised it and
    joblib re-raised or chained it), an ``OSError`` (unreadable or unwritable
    file, full disk), a ``MemoryError``, and a worker process that died.
    """
    import errno
    from concurrent.futures import BrokenExecutor

    for e in _chain(exc):
        if isinstance(e, BenchmarkError):
            return str(e)
    if isinstance(exc, MemoryError):
        return ("out of memory; an input is larger than this machine can hold (see the limits in the README's "
                "Errors section) or too many workers run at once: try fewer --jobs")
    if isinstance(exc, OSError):
        reason = "disk is full" if exc.errno == errno.ENOSPC else (exc.strerror or str(exc) or type(exc).__name__)
        where = f": {exc.filename}" if getattr(exc, "filename", None) else ""
        return f"{reason}{where}"
    if isinstance(exc, BrokenExecutor):
        return (f"a worker process died ({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}); "
                "finished work is kept; rerun the command (with --jobs 1 to see the failing input)")
    return None


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    # What the manifest records: the command line as typed (or as a caller of main() passed it).
    args.argv = list(sys.argv) if argv is None else ["benchmark", *map(str, argv)]
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    handlers = {"run": _cmd_run, "list": _cmd_list, "report": _cmd_report, "ceiling": _cmd_ceiling,
                "compare": _cmd_compare, "importance": _cmd_importance, "features": _cmd_features, "splits": _cmd_splits, "cache": _cmd_cache, "render": _cmd_render}
    from benchmark.cli_ssast import HANDLERS

    handlers.update(HANDLERS)
    try:
        return handlers[args.command](args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as exc:  # the one error boundary: expected failures become one line, bugs keep a traceback
        message = expected_failure(exc)
        if message is None:
            raise
        if args.verbose:
            traceback.print_exc()
        hint = " (-v for the traceback)" if _is_os_level(exc) and not args.verbose else ""
        print(f"error: {message}{hint}", file=sys.stderr)
        return EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())
