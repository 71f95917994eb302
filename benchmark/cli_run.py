"""``benchmark run``: a new run from flags and a study file, or ``--resume`` of an interrupted one.

The command builds the run's :class:`benchmark.config.RunConfig` (flags over the study file over the
defaults), checks it and the output folder before anything slow, drives the
:class:`benchmark.runner.Runner`, and prints the closing results table from what the runner collected
(:func:`benchmark.cli_report.write_summary`).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from benchmark.api import run_config
from benchmark.cli_data import say
from benchmark.cli_report import write_summary
from benchmark.cli_ssast import with_init
from benchmark.config import EXECUTION_OPTIONS, RunConfig, load_config
from benchmark.description import description_path
from benchmark.errors import EXIT_ERROR, EXIT_INTERRUPTED, ConfigError, OutputError
from benchmark.imported import add_imports, parse_assignments
from benchmark.jobs import resolve_model
from benchmark.runner import Runner, new_run_dir
from benchmark.study import load_study
from features.sets import FEATURE_SETS
from reports.rundata import RunData


def _model_list(text: str, variants: dict) -> list[str]:
    names = [n.strip() for n in text.split(",") if n.strip()]
    if not names:
        raise ConfigError("no models given; pass a comma-separated list")
    for n in names:
        resolve_model(n, variants)
    return list(dict.fromkeys(names))


def _config_from_args(args: argparse.Namespace):
    """The run's config: command-line flags over the study file (if any) over the defaults."""

    study = load_study(args.study) if args.study else None
    s = study["study"] if study else {}
    b = study["backend"] if study else {}
    variants = study["variants"] if study else {}
    predictions = parse_assignments(getattr(args, "predictions", None))
    if args.models:
        models = _model_list(args.models, variants)
    elif study:
        models = study["models"]
    elif predictions:
        models = []
    else:
        raise ConfigError("no models given; pass e.g. --models ridge,rf,lgbm (see 'benchmark list models') "
                          "or --study STUDY.toml")
    models, variants = add_imports(models, variants, predictions)
    if getattr(args, "init", None):
        variants = with_init(models, variants, args.init)
    features = FEATURE_SETS.parse_list(args.features) if args.features else s.get("features")
    members = _model_list(args.members, variants) if args.members else s.get("members")

    def pick(flag, key, default, table=s):
        return flag if flag is not None else table.get(key, default)

    resolved = None
    if study:
        resolved = {k: study[k] for k in ("study", "models", "variants", "report")}
    dataset = pick(getattr(args, "dataset", None), "dataset", None)
    if dataset is not None:
        # The description file itself, absolute: --resume from another folder reads the same one.
        dataset = str(description_path(dataset).resolve())
    return RunConfig(models=models, split=pick(args.split, "split", "lopo"), seeds=pick(args.seeds, "seeds", [0]),
                     features=features, n_splits=pick(args.n_splits, "n_splits", None),
                     data_dir=pick(args.data_dir, "data_dir", None),
                     include_score=not (args.exclude_score or s.get("exclude_score", False)),
                     on_bad_input=pick(args.on_bad_input, "on_bad_input", "skip"),
                     error_score=pick(args.error_score, "error_score", "nan"),
                     jobs=pick(args.jobs, "jobs", 1, b), cache_dir=pick(args.cache_dir, "cache_dir", None, b),
                     soundfont=pick(args.soundfont, "soundfont", None), variants=variants, members=members,
                     backend=pick(args.backend, "name", "joblib", b), scheduler=pick(args.scheduler, "scheduler", None, b),
                     study=resolved, device=pick(args.device, "device", "auto"), dataset=dataset)


def _check_writable(folder: Path, what: str) -> None:
    """Refuse a folder that is a file or cannot be written, before any expensive step."""

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
                "members", "data_dir", "soundfont", "dataset")


def _check_resume_flags(args: argparse.Namespace, config) -> None:
    """Refuse result-shaping flags on --resume that differ from the run being resumed (never ignore them)."""
    if args.study:
        return  # compared as a whole above

    given = {"models": (lambda v: _model_list(v, config.variants), "models"),
             "split": (str, "split"), "seeds": (list, "seeds"), "n_splits": (int, "n_splits"),
             "features": (FEATURE_SETS.parse_list, "features"), "on_bad_input": (str, "on_bad_input"),
             "error_score": (str, "error_score"), "members": (lambda v: _model_list(v, config.variants), "members"),
             "data_dir": (str, "data_dir"), "soundfont": (str, "soundfont"),
             "dataset": (lambda v: str(description_path(v).resolve()), "dataset")}
    differ = []
    for flag, (norm, field) in given.items():
        value = getattr(args, flag)
        if value is None:
            continue
        old = getattr(config, field)
        new = norm(value)
        if flag == "models":  # the run's models include the ensembles' members
            same = all(m in config.run_models for m in new)
        elif flag in ("data_dir", "soundfont", "dataset") and old is not None:
            same = Path(new).resolve() == Path(old).resolve()
        else:
            same = (list(new) if isinstance(new, list | tuple) else new) == (list(old) if isinstance(old, list | tuple)
                                                                               else old)
        if not same:
            differ.append(f"--{flag.replace('_', '-')}")
    if args.exclude_score and config.include_score:
        differ.append("--exclude-score")
    if getattr(args, "predictions", None):
        given = {n: str(Path(p).expanduser().resolve()) for n, p in parse_assignments(args.predictions).items()}
        ran = {m: v["params"].get("path") for m, v in config.variants.items() if v.get("model") == "imported"}
        if any(ran.get(n) != p for n, p in given.items()):
            differ.append("--predictions (the run's: " + (", ".join(f"{n}={p}" for n, p in ran.items()) or "none") + ")")
    # Where neural models train and the checkpoint they start from change their results: the finished jobs
    # were fitted with the run's own, so the remaining ones must be too.
    if args.device is not None and args.device != config.device:
        differ.append(f"--device (the run's: {config.device})")
    if args.init:
        if with_init(config.models, config.variants, args.init) != config.variants:
            inits = sorted({str(v["params"].get("init")) for v in config.variants.values() if "init" in v["params"]})
            differ.append(f"--init (the run's: {', '.join(inits) or 'none'})")
    if differ:
        raise ConfigError(f"--resume continues the run with the options it started with; {', '.join(differ)} "
                          "differ from them (only --jobs, --backend, --scheduler, --cache-dir may change); "
                          "drop them or start a new run")


def cmd_run(args: argparse.Namespace) -> int:
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
    held: list[Runner] = []

    def warn_skipped(runner: Runner) -> None:
        if runner.skipped:
            media = "MIDI or audio" if runner.dataset.has_media("audio").any() else "MIDI"
            print(f"warning: skipped {len(runner.skipped)} segment(s) with unreadable {media}: "
                  f"{', '.join(sorted(runner.skipped))}", file=sys.stderr)

    # The same path as benchmark.evaluate (benchmark.api.run_config); this command adds its messages.
    try:
        result = run_config(config, run_dir, progress=not args.no_progress, command=args.argv, notify=say,
                            started=held.append, prepared=warn_skipped)
    except OutputError as exc:
        if not held or not held[0].store.exists:
            raise
        raise OutputError(f"{exc}; finished jobs are kept; then finish with: benchmark run --resume {run_dir}") from None
    except KeyboardInterrupt:
        if not held:
            raise
        runner = held[0]
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
    runner, counts = result.runner, result.counts
    print(f"jobs: {counts['ok']} run, {counts['resumed']} resumed, {counts['failed']} failed "
          f"(features {runner.feature_seconds:.1f}s, {runner.features.n_cached} cached)")

    # The closing table reports what the runner just collected (and computed for result.json): the job files
    # are not read again, nor a pooled metric recomputed.
    write_summary(run_dir, getattr(runner, "run_data", None) or RunData.from_contents(run_dir, runner.contents))
    lost = counts.get("failed_models") or {}
    if lost:
        # The other models' results are above and on disk; a model that never fitted is still a failed run.
        names = ", ".join(f"{m} ({n} job{'s' if n != 1 else ''})" for m, n in lost.items())
        first = next(iter(lost))
        print(f"error: every job of {names} failed; the other models' results are kept; tracebacks: "
              f"{runner.store.jobs_dir}/{first}__*.error.txt", file=sys.stderr)
        return EXIT_ERROR
    return 0
