"""``benchmark`` command line: run, resume, list, report, features, cache.

This module holds the parser of every command and the one error boundary:
library errors are printed as one line (``error: ...``) with a non-zero exit
code; results already computed stay on disk. The commands live in one module
per group, imported only when their command runs (so ``--help`` imports no
model, report or torch): :mod:`benchmark.cli_run` (run, resume),
:mod:`benchmark.cli_report` (report, compare, ceiling, importance),
:mod:`benchmark.cli_results` (export, leaderboard, stats),
:mod:`benchmark.cli_data` (list, splits, features, render, cache),
:mod:`benchmark.cli_dataset` (dataset export, dataset check),
:mod:`benchmark.cli_exchange` (folds export, predictions export, validate-model) and
:mod:`benchmark.cli_ssast` (pretrain, explain).
"""

from __future__ import annotations

import argparse
import errno
import importlib
import logging
import sys
import traceback
from concurrent.futures import BrokenExecutor

from benchmark.errors import EXIT_ERROR, EXIT_INTERRUPTED, BenchmarkError

__all__ = ["COMMANDS", "EXIT_ERROR", "EXIT_INTERRUPTED", "build_parser", "expected_failure", "main"]

#: Sources of ``benchmark pretrain --corpus`` (:mod:`benchmark.cli_ssast` checks them) and the default.
CORPUS_SOURCES = ("score", "unlabelled", "synthetic", "maestro")
DEFAULT_CORPUS = "score,unlabelled,synthetic"

#: Each command's handler, as "module:function"; the module is imported when its command runs.
COMMANDS = {
    "run": "benchmark.cli_run:cmd_run",
    "report": "benchmark.cli_report:cmd_report",
    "compare": "benchmark.cli_report:cmd_compare",
    "power": "benchmark.cli_report:cmd_power",
    "ceiling": "benchmark.cli_report:cmd_ceiling",
    "importance": "benchmark.cli_report:cmd_importance",
    "export": "benchmark.cli_results:cmd_export",
    "leaderboard": "benchmark.cli_results:cmd_leaderboard",
    "stats": "benchmark.cli_results:cmd_stats",
    "list": "benchmark.cli_data:cmd_list",
    "splits": "benchmark.cli_data:cmd_splits",
    "features": "benchmark.cli_data:cmd_features",
    "render": "benchmark.cli_data:cmd_render",
    "cache": "benchmark.cli_data:cmd_cache",
    "dataset": "benchmark.cli_dataset:cmd_dataset",
    "folds": "benchmark.cli_exchange:cmd_folds",
    "predictions": "benchmark.cli_exchange:cmd_predictions",
    "validate-model": "benchmark.cli_exchange:cmd_validate_model",
    "pretrain": "benchmark.cli_ssast:cmd_pretrain",
    "explain": "benchmark.cli_ssast:cmd_explain",
}


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


def _add_dataset_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--dataset", metavar="PATH", help="a described dataset: its dataset.toml or its folder (default: "
                                                     "PercePiano; see README 'Your own dataset')")


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
    run.add_argument("--features", help="feature sets every model consumes instead of its own inputs; "
                                        "file:PATH is a table of your own (sample_id + numeric columns)")
    run.add_argument("--predictions", action="append", metavar="NAME=FILE",
                     help="score predictions made elsewhere as model NAME (CSV or Parquet: sample_id, target, "
                          "y_pred, seed, fold; see docs/formats.md); checked against the run's folds before any "
                          "job starts; repeat for several files")
    run.add_argument("--out", default="runs", help="parent folder of run directories (default runs/)")
    run.add_argument("--resume", metavar="RUN_DIR", help="finish an interrupted run; recomputes nothing finished")
    run.add_argument("--exclude-score", action="store_true",
                     help="drop the reference (deadpan) items: PercePiano's two score renderings (players Score, "
                          "Score2), a described dataset's [reference]; kept by default")
    run.add_argument("--on-bad-input", choices=("skip", "error"), default=None,
                     help="unreadable MIDI or audio: skip the item with a warning (default) or stop")
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
    _add_dataset_option(run)

    lst = sub.add_parser("list", help="list registered models, splits or feature sets")
    lst.add_argument("what", choices=("models", "splits", "features"))
    lst.add_argument("--dataset", metavar="PATH", help="mark what this described dataset cannot run (models that "
                                                       "read MIDI on audio-only items; splits without their column)")
    lst.add_argument("--study", metavar="STUDY.toml", help="models: also the study's models (variants, class_path)")
    lst.add_argument("--predictions", action="append", metavar="NAME=FILE",
                     help="models: also these imported predictions files")

    _add_exchange_commands(sub)

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
    _add_dataset_option(chk)
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
    _add_dataset_option(ceil)
    ceil.add_argument("--n-splits", type=int, default=200, help="random rater splits (default 200)")
    ceil.add_argument("--seed", type=int, default=0)

    cmp_ = sub.add_parser("compare", help="compare the models of two runs of the same split (A - B)")
    cmp_.add_argument("run_a")
    cmp_.add_argument("run_b")
    cmp_.add_argument("--n-resamples", type=int, default=2000,
                      help="cluster-bootstrap resamples and unit-swap permutations (default 2000)")
    cmp_.add_argument("--seed", type=int, default=0, help="seed of the resampling (default 0)")

    pw = sub.add_parser("power", help="false-positive rate, power and minimum detectable effect of a split's real "
                                      "design, simulated as docs/calibration.md does")
    pw.add_argument("--split", required=True, help="lopo, kfold, kfold_grouped, excerpt or piece")
    pw.add_argument("--seeds", type=int, default=None,
                    help="CV repeats of a split whose seed changes the folds (default: the calibrated design's 3)")
    pw.add_argument("--n-splits", type=int, default=None, help="folds, for splits that take it")
    pw.add_argument("--effect", default="0.01,0.02,0.05",
                    help="expected differences of the fold-level metric to report power at (default 0.01,0.02,0.05)")
    pw.add_argument("--metric", default="fold_r", help="fold_r (default) or fold_r2")
    pw.add_argument("--reps", type=int, default=100, help="simulated data sets per effect (default 100)")
    pw.add_argument("--resamples", type=int, default=199,
                    help="bootstrap resamples and permutations per data set (default 199)")
    pw.add_argument("--seed", type=int, default=0)
    pw.add_argument("--data-dir", help="PercePiano folder (its real segment layout; default as 'run')")

    imp = sub.add_parser("importance", help="permutation importance of feature families on a run's held-out "
                                            "folds (refits each fold; stored in the run directory)")
    imp.add_argument("run_dir")
    imp.add_argument("--model", required=True, help="a model of the run, e.g. rf")
    imp.add_argument("--by", choices=("family", "feature"), default="family")
    imp.add_argument("--n-repeats", type=int, default=5, help="permutations per unit and fold (default 5)")
    imp.add_argument("--max-folds", type=int, default=None, help="only the first N (seed, fold) jobs")
    imp.add_argument("--cache-dir", default=None, help="feature cache (default: the run's)")
    imp.add_argument("--seed", type=int, default=0, help="seed of the permutations (default 0)")

    _add_results_commands(sub)

    feat = sub.add_parser("features", help="build or inspect the feature cache")
    fsub = feat.add_subparsers(dest="action", required=True)
    fb = fsub.add_parser("build", help="prebuild feature sets for every segment")
    fb.add_argument("--features", default="midi", help="comma-separated feature sets: midi,audio,score,mel "
                                                       "(default midi)")
    fb.add_argument("--on-bad-input", choices=("skip", "error"), default="skip")
    _add_data_options(fb)
    _add_dataset_option(fb)
    fd = fsub.add_parser("docs", help="print every feature's name and documentation as Markdown")
    fd.add_argument("--features", default="midi,audio,score", help="comma-separated tabular feature sets")
    fi = fsub.add_parser("info", help="what is cached, and its size")
    fi.add_argument("--cache-dir")

    ren = sub.add_parser("render", help="render one segment's MIDI to a WAV file (listening check)")
    ren.add_argument("segment_id", help="e.g. Schubert_D960_mv2_8bars_1_17")
    ren.add_argument("-o", "--output", required=True, help="WAV file to write")
    _add_data_options(ren)
    _add_dataset_option(ren)

    _add_ssast_commands(sub, _add_data_options)
    _add_dataset_commands(sub)

    cache = sub.add_parser("cache", help="manage the feature cache")
    csub = cache.add_subparsers(dest="action", required=True)
    cc = csub.add_parser("clear", help="delete cached entries")
    cc.add_argument("--stage", help="only this stage: a feature set (midi, audio, score, mel) or render; only "
                                    "entries the cache wrote are removed")
    cc.add_argument("--cache-dir")
    return parser


def _add_results_commands(sub) -> None:
    """The ``export``, ``leaderboard`` and ``stats`` sub-commands (:mod:`benchmark.cli_results`)."""
    exp = sub.add_parser("export", help="write a run's versioned result file (result.json; docs/result.schema.json)")
    exp.add_argument("run_dir")
    exp.add_argument("-o", "--output", help="file to write (default RUN_DIR/result.json)")
    exp.add_argument("--n-resamples", type=int, default=2000, help="bootstrap resamples of the CIs (default 2000)")
    exp.add_argument("--seed", type=int, default=0, help="seed of the resampling (default 0)")

    lb = sub.add_parser("leaderboard", help="one table per protocol: result files (or run directories) beside the "
                                            "published numbers of docs/published.toml, each labelled with its "
                                            "aggregation and comparability")
    lb.add_argument("results", nargs="*", help="result files or run directories (none: the published numbers only)")
    lb.add_argument("--protocol", help="only these splits, comma-separated (default: every split of the results)")
    lb.add_argument("--metric", default="r2", help="a metric of the registry (default r2, what papers report)")
    lb.add_argument("--aggregation", help="columns, comma-separated: fixed_test_set, pooled, per_fold, "
                                          "within_performer (default: every one a row has)")
    lb.add_argument("--population", choices=("all", "pianists"), default="all",
                    help="all: every column, with a pianists-only column beside each pooled one (default); "
                         "pianists: the pianists-only columns alone")
    lb.add_argument("--format", default="md", help="md, csv or tex (default md)")
    lb.add_argument("-o", "--output", help="file to write (default: print)")
    lb.add_argument("--published", help="another file of published numbers (default docs/published.toml)")
    lb.add_argument("--no-published", action="store_true", help="leave the published numbers out")
    lb.add_argument("--n-resamples", type=int, default=2000,
                    help="bootstrap resamples for a run directory without result.json (default 2000)")

    st = sub.add_parser("stats", help="the report's paired tests and rank statistics on per-fold scores from any "
                                      "source (CSV or Parquet: model, unit, value[, seed, fold, metric, n_train, "
                                      "n_test, family]; or a result.json)")
    st.add_argument("scores", metavar="SCORES_FILE")
    st.add_argument("--baseline", help="model the others are tested against (default rf if present, else the first)")
    st.add_argument("--metric", help="metrics to test, comma-separated (default pearson,r2 when present, else all)")
    st.add_argument("--split", help="the split the scores come from: the calibration is keyed by its design; "
                                    "without it no claim is printed as a number (a result file says it itself)")
    st.add_argument("--family", help="learner families for the calibration, MODEL=FAMILY comma-separated "
                                     "(deterministic, tabular, neural; overrides a family column; default: unknown, "
                                     "the strictest, unless a model's scores are identical across seeds)")
    st.add_argument("--correction", choices=("holm", "fdr_bh"), default="holm")
    st.add_argument("--n-resamples", type=int, default=2000, help="bootstrap resamples and permutations (2000)")
    st.add_argument("--seed", type=int, default=0, help="seed of the resampling (default 0)")
    st.add_argument("--format", choices=("md", "csv"), default="md")


def _add_dataset_commands(sub) -> None:
    """The ``dataset`` sub-commands (:mod:`benchmark.cli_dataset`)."""
    ds = sub.add_parser("dataset", help="describe your own rating dataset: export PercePiano in the generic format, "
                                        "check a dataset.toml")
    dsub = ds.add_subparsers(dest="action", required=True)
    exp = dsub.add_parser("export", help="write PercePiano in the generic format (ratings.csv, raters.csv, "
                                         "dataset.toml; the MIDI files are referred to, not copied)")
    exp.add_argument("out_dir", metavar="DIR", help="folder to write (must not hold a dataset.toml)")
    exp.add_argument("--format", choices=("generic",), required=True, help="the format to write")
    exp.add_argument("--data-dir", help="PercePiano folder (default: $PERCEPIANO_DIR, ./data/percepiano, "
                                        "../shared/percepiano)")
    exp.add_argument("--no-raters", action="store_true", help="leave the per-rater table out (no noise ceiling)")
    chk = dsub.add_parser("check", help="validate a dataset description and print what the harness sees: items, "
                                        "targets, groups, media, raters, the splits and models available")
    chk.add_argument("path", metavar="PATH", help="a dataset.toml or its folder")
    chk.add_argument("--media", action=argparse.BooleanOptionalAction, default=False,
                     help="also open every audio file's header (duration, rate) and name the bad ones")
def _add_exchange_commands(sub) -> None:
    """``folds export``, ``predictions export`` and ``validate-model`` (:mod:`benchmark.cli_exchange`)."""
    fo = sub.add_parser("folds", help="the harness's folds as a file, for training a model elsewhere")
    fsub = fo.add_subparsers(dest="action", required=True)
    fe = fsub.add_parser("export", help="write one row per (seed, fold, sample_id) with its role (train, "
                                        "validation, test) and group, and a sidecar FILE.json with the data sha256 "
                                        "and the fold hash")
    fe.add_argument("--split", help="split name (see 'benchmark list splits')")
    fe.add_argument("--run", metavar="RUN_DIR", help="instead of --split: the folds of this run")
    fe.add_argument("--seeds", type=_int_list, default=[0], help="comma-separated seeds (default 0)")
    fe.add_argument("--n-splits", type=int, default=None, help="folds, for splits that take it")
    fe.add_argument("--exclude-score", action="store_true", help="drop the score renderings, as 'run' does")
    fe.add_argument("--data-dir", help="PercePiano folder")
    _add_dataset_option(fe)
    fe.add_argument("-o", "--output", required=True, help="FILE.csv or FILE.parquet")

    pr = sub.add_parser("predictions", help="a run's out-of-fold predictions in the format --predictions imports")
    psub = pr.add_subparsers(dest="action", required=True)
    pe = psub.add_parser("export", help="write one model's predictions (seed, fold, sample_id, target, y_pred) "
                                        "and a sidecar FILE.json")
    pe.add_argument("run_dir")
    pe.add_argument("--model", required=True, help="a model of the run")
    pe.add_argument("-o", "--output", required=True, help="FILE.csv or FILE.parquet")

    vm = sub.add_parser("validate-model", help="check a model's estimator protocol on a small part of the data: "
                                               "each check passes or says what is wrong; exit 0 only when all pass")
    vm.add_argument("model", help="a registered model or a class path (my_pkg.models:MyModel)")
    vm.add_argument("--param", action="append", metavar="KEY=VALUE",
                    help="a parameter of the model (a TOML value: 3, 0.1, 'text', [1, 2]); repeat")
    vm.add_argument("--features", help="feature sets to validate on instead of the model's own")
    vm.add_argument("--n-segments", type=int, default=None, help="segments of the data used (default 96)")
    vm.add_argument("--data-dir", help="PercePiano folder")
    vm.add_argument("--cache-dir", help="feature cache")


def _add_ssast_commands(sub, add_data_options) -> None:
    """The ``pretrain`` and ``explain`` sub-commands (:mod:`benchmark.cli_ssast`)."""
    pre = sub.add_parser("pretrain", help="self-supervised pre-training (SSAST masked patch modelling) of an AST "
                                          "encoder on performances nobody rated; the checkpoint goes in the cache")
    pre.add_argument("--input", choices=("mel", "roll"), default="mel", help="log-mel or piano roll (default mel)")
    pre.add_argument("--model", help="registered model whose encoder is pre-trained (default ast_tiny for mel, "
                                     "ast_tiny_roll for roll)")
    pre.add_argument("--corpus", default=DEFAULT_CORPUS,
                     help=f"comma-separated sources: {','.join(CORPUS_SOURCES)} (default {DEFAULT_CORPUS}; "
                          "maestro needs --maestro-dir)")
    pre.add_argument("--n-synthetic", type=int, default=None,
                     help="random performances (tempo, timing, velocity, pedal) per score MIDI (default 3)")
    pre.add_argument("--corpus-seed", type=int, default=None, help="seed of the synthetic performances (default 0)")
    pre.add_argument("--maestro-dir", help="an unpacked MAESTRO v3 folder (with maestro-v3.0.0.csv); adds its "
                                           "train split, cut into 30 s excerpts")
    pre.add_argument("--maestro-limit", type=int, default=None, help="use at most this many MAESTRO performances")
    pre.add_argument("--transductive", action="store_true",
                     help="also pre-train on every PercePiano segment's input (never its labels): the encoder "
                          "sees the test folds' audio; the checkpoint records it")
    pre.add_argument("--mask-ratio", type=float, default=None, help="share of patches masked (default 0.4)")
    pre.add_argument("--epochs", type=int, default=None, help="epochs over the corpus (default 60)")
    pre.add_argument("--batch-size", type=int, default=None, help="crops per step (default 32)")
    pre.add_argument("--lr", type=float, default=None, help="peak AdamW learning rate (default 1e-3)")
    pre.add_argument("--seed", type=int, default=None, help="seed of masks, crops and initial weights (default 0)")
    pre.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    pre.add_argument("--threads", type=int, default=1, help="torch threads for training (default 1)")
    pre.add_argument("--force", action="store_true", help="train again even if the checkpoint is cached")
    pre.add_argument("--no-progress", action="store_true", help="hide progress bars")
    add_data_options(pre)

    exp = sub.add_parser("explain", help="attention rollout of a fitted neural model over one segment's "
                                         "spectrogram or piano roll (PNG), and the hybrid's feature attributions")
    exp.add_argument("run_dir")
    exp.add_argument("segment_id")
    exp.add_argument("--model", help="which neural model of the run (default: the first one)")
    exp.add_argument("--seed", type=int, default=None, help="split seed (default: the run's first)")
    exp.add_argument("-o", "--output", help="PNG to write (default RUN_DIR/explain/MODEL__SEGMENT.png)")
    exp.add_argument("--top", type=int, default=15, help="hybrid: how many features to show (default 15)")
    exp.add_argument("--target", metavar="RATING", help="hybrid: attribute this rating's prediction (e.g. "
                                                        "timing_stable) instead of the mean of all ratings")


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


def handler(command: str):
    """The function that runs ``command`` (:data:`COMMANDS`), its group's module imported now."""
    module, name = COMMANDS[command].split(":")
    return getattr(importlib.import_module(module), name)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    # What the manifest records: the command line as typed (or as a caller of main() passed it).
    args.argv = list(sys.argv) if argv is None else ["benchmark", *map(str, argv)]
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        return handler(args.command)(args)
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
