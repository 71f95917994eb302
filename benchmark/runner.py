"""Run the grid model x split seed x fold and keep every finished job in the run store.

The run is done in five steps, each owned by one place:

* **planning**: :func:`benchmark.jobs.plan` lists every job up front (members
  before the ensembles that read them);
* **input assembly**: :meth:`Runner.prepare` loads the data, builds each
  model's input and the folds into a :class:`benchmark.execute.RunInputs`;
* **execution**: a backend (:mod:`benchmark.backends`) runs
  :func:`benchmark.execute.run_job` for every unfinished job;
* **persistence**: :class:`benchmark.store.RunStore` writes each finished job
  as it arrives (the only code that knows the run-directory layout);
* **provenance**: :mod:`benchmark.provenance` and the manifest.

An interrupted run (Ctrl-C, or the driver killed outright) is finished with
``benchmark run --resume RUN_DIR``: only jobs whose rows say ``ok`` and whose
predictions read back are kept.
"""

from __future__ import annotations

import datetime as _dt
import logging
import os
import sys
import time
import uuid
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pandas as pd

from benchmark import provenance
from benchmark.assembly import Assembly, font_setup
from benchmark.backends import check_backend, make_backend, n_workers, threads_per_worker
from benchmark.config import DEVICES, ERROR_SCORES, EXECUTION_OPTIONS, RunConfig, load_config, results_key
from benchmark.dataset import Dataset
from benchmark.description import open_dataset
from benchmark.errors import BenchmarkError, ConfigError, DataError
from benchmark.execute import JobOutput, RunInputs
from benchmark.export import export_result
from benchmark.fonts import FONT_SETS, conditions_record
from benchmark.hashing import file_sha256
from benchmark.imported import ImportedFile, check_predictions, run_design
from benchmark.jobs import Job, is_imported, plan
from benchmark.metrics import METRICS, SPREAD_METRICS, per_target
from benchmark.progress import (
    FREE_TAGS,
    FamilyETA,
    GridProgress,
    estimate_seconds,
    format_duration,
    job_cost,
    job_costs,
)
from benchmark.raters import rater_spread, read_raters
from benchmark.store import PRED_COLUMNS, ROW_COLUMNS, Folds, JobKey, RunStore, job_id
from features.build import build_features
from features.cache import Cache, resolve_cache_dir
from features.external import is_file_set, sha256_of
from features.soundfonts import font_labels, split_soundfonts
from models import MODELS
from reports.rundata import RunData
from splits import make_splits, make_validation_folds, run_leakage, split_groups, split_info
from splits.overlap import note_cache

logger = logging.getLogger(__name__)

# RunConfig and load_config live in benchmark.config; importable from here as before.
__all__ = ["DEVICES", "ERROR_SCORES", "EXECUTION_OPTIONS", "RunConfig", "Runner", "job_id", "load_config",
           "new_run_dir", "PRED_COLUMNS", "ROW_COLUMNS"]


class Runner:
    """Plan, execute and resume one run.

    Parameters
    ----------
    config : RunConfig
    run_dir : path
        Created if absent; an existing one is resumed.
    progress : bool
        Show the progress bar.
    command : list of str, optional
        Recorded in the manifest (default ``sys.argv``).
    notify : callable, optional
        Receives one line per phase (the plan, data, each feature set, the leakage check); default: the log.
    """

    def __init__(self, config: RunConfig, run_dir: str | os.PathLike, *, progress: bool = True,
                 command: list[str] | None = None, notify=None) -> None:
        config.validate()
        self.config = config
        self.run_dir = Path(run_dir)
        self.store = RunStore(self.run_dir)
        self.progress = progress
        self.command = command if command is not None else sys.argv
        self.run_id = self.run_dir.name
        self.notify = notify or logger.info

    def close(self) -> None:
        """Release the run directory (its lock); the process exiting releases it too."""
        self.store.release_lock()

    def __enter__(self) -> Runner:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # --- input assembly ---------------------------------------------------
    def prepare(self) -> None:
        """Load data, build features, compute folds, write the manifest and folds.

        Checks the backend first, then locks the run directory (one driver at a time) until :meth:`run`
        ends; the plan and each phase go to ``notify`` as they start.
        """
        cache = Cache(resolve_cache_dir(self.config.cache_dir))
        try:
            # The notes read for note-derived split groups and for the leakage check are kept in the same cache.
            with note_cache(cache):
                self._prepare(cache)
        except BaseException:
            self.close()  # the run directory is free again (run() releases it when it ends)
            raise

    def _prepare(self, cache: Cache) -> None:
        cfg = self.config
        # Before anything slow: the cluster answers, and no other driver works in this run directory.
        check_backend(cfg.backend, cfg.scheduler)
        if self.store.exists:
            self.store.acquire_lock(self.command)
        self.notify(f"data: reading {cfg.dataset or cfg.data_dir or 'PercePiano (default location)'} ...")
        t0 = time.perf_counter()
        self.dataset: Dataset = open_dataset(cfg.dataset, cfg.data_dir, include_score=cfg.include_score)
        # The split's group column and every model's media, on this dataset, before anything slow.
        cfg.check_dataset(self.dataset)
        # Split options (--n-splits against the number of groups, a seed) are checked on the labelled data
        # now, before a possibly long feature build; the folds are recomputed below without skipped segments.
        folds = {s: make_splits(cfg.split, self.dataset.meta, seed=s, n_splits=cfg.n_splits) for s in cfg.seeds}
        self.notify(f"data: {self.dataset.n_samples} labelled segments ({time.perf_counter() - t0:.1f} s)")
        # Imported predictions are checked against these folds now, before anything slow (and again below if
        # unreadable segments change the folds).
        self.imported = self._check_imports(self.dataset, folds)
        fonts = font_labels(split_soundfonts(cfg.soundfont))
        # With several SoundFonts every audio model runs once per (training fonts, test font) condition.
        self.models, self.variants, self.font_conditions = font_setup(cfg, fonts)
        self.font_record = conditions_record(fonts, self.font_conditions) if len(fonts) > 1 else None
        self._announce(folds)
        needed = sorted({fs for m in cfg.run_models for fs in cfg.feature_sets(m)})
        # Feature files of the user's own (--features file:PATH): their sha256, checked on resume before the build.
        self.feature_files = {fs: sha256_of(fs) for fs in needed if is_file_set(fs)}
        self._check_feature_files()
        t0 = time.perf_counter()
        first = next(iter(fonts.values())) if fonts else None
        fm = build_features(self.dataset.meta, needed, cache, n_jobs=cfg.jobs, on_bad_input=cfg.on_bad_input,
                            progress=self.progress, soundfont=first, notify=self.notify)
        # Several SoundFonts: the font-dependent tables once more per further font (the others are shared).
        self.font_tables: dict[str, pd.DataFrame] = {}
        if len(fonts) > 1:
            self.font_tables[next(iter(fonts))] = fm.X
            font_sets = [fs for fs in needed if fs in FONT_SETS]
            for label, font in list(fonts.items())[1:]:
                other = build_features(self.dataset.meta, font_sets, cache, n_jobs=cfg.jobs,
                                       on_bad_input=cfg.on_bad_input, progress=self.progress, soundfont=font,
                                       notify=self.notify)
                self.font_tables[label] = other.X
        self.feature_seconds = time.perf_counter() - t0
        keep = self.dataset.meta["sample_id"].isin(fm.X.index).to_numpy()
        for table in self.font_tables.values():
            keep = keep & self.dataset.meta["sample_id"].isin(table.index).to_numpy()
        self.dataset = self.dataset.subset(keep)
        self.spread, self.spread_record = self._rater_spread()
        self.features = fm
        self.skipped = fm.skipped
        self.split_info = split_info(cfg.split)
        # The split's own group labels: they group the models' inner CV too.
        self.groups = split_groups(cfg.split, self.dataset.meta)
        self.folds = {s: make_splits(cfg.split, self.dataset.meta, seed=s, n_splits=cfg.n_splits) for s in cfg.seeds}
        # Test segments whose near-duplicate (same notes, same recording) is in training, per fold.
        self.notify("leakage check: looking for near-duplicates of test segments in training ...")
        self.leakage = run_leakage(self.folds, self.dataset.meta)
        # A split with its own validation folds (the paper's performer split) hands them to every fit;
        # otherwise a model that needs one holds out part of its training fold.
        self.validation = None
        if self.split_info.get("validation"):
            self.validation = {s: make_validation_folds(cfg.split, self.dataset.meta) for s in cfg.seeds}
        if self.imported and self.skipped:
            self.imported = self._check_imports(self.dataset, self.folds)
        self.cache_root = str(cache.root.resolve())
        self.jobs: list[Job] = plan(self.models, cfg.seeds, {s: len(f) for s, f in self.folds.items()},
                                    self.variants, cfg.members)
        self._write_manifest()

    def _rater_spread(self) -> tuple[pd.DataFrame | None, dict]:
        """The raters' spread of the run's segments (for the rater-spread metrics), and what the manifest says.

        A data folder without a readable rater file gives no spread: the run goes on without those metrics
        and the manifest says why.
        """
        try:
            # PercePiano's rater file, or a described dataset's [raters] table (scaled by its own scale).
            raters = read_raters(self.dataset.description or self.dataset.root)
            spread = rater_spread(raters)
        except DataError as exc:
            self.notify(f"rater spread: none ({exc}); the rater-spread accuracies are left out")
            return None, {"available": False, "reason": str(exc)}
        ids = self.dataset.meta["sample_id"].to_numpy()
        names = list(self.dataset.target_names)
        missing = [i for i in ids if i not in spread.index]
        if missing:
            reason = f"{len(missing)} segments have no ratings in {raters.source}, e.g. {missing[0]}"
            self.notify(f"rater spread: none ({reason}); the rater-spread accuracies are left out")
            return None, {"available": False, "reason": reason}
        source = Path(raters.source)
        source = source if source.is_absolute() else Path(raters.root) / source
        record = {"available": True, "source": raters.source,
                  "sha256": file_sha256(source),
                  "definition": f"population sd of the answers of every valid sheet, divided by {raters.scale:g} "
                                "(benchmark.raters.rater_spread)",
                  "metrics": list(SPREAD_METRICS)}
        return spread.loc[ids, names], record

    def _check_imports(self, dataset: Dataset, folds: dict) -> dict[str, ImportedFile]:
        """Every imported model's predictions file read and checked against the run's folds (one line on the
        first problem); ``{}`` when the run imports none."""
        cfg = self.config
        imports = {m: ref.params for m, ref in cfg.refs.items() if is_imported(MODELS.get(ref.base))}
        if not imports:
            return {}
        info = split_info(cfg.split)
        validation = ({s: make_validation_folds(cfg.split, dataset.meta) for s in cfg.seeds}
                      if info.get("validation") else None)
        design = run_design(dataset, folds, validation, cfg.split, bool(info.get("partition", True)),
                            getattr(self, "skipped", None))
        out = {}
        for name, params in imports.items():
            out[name] = check_predictions(name, params["path"], design, sha256=params.get("sha256"))
            self.notify(f"predictions {name}: {params['path']} ({out[name].n_rows} rows) match the run's folds")
        return out

    def _announce(self, folds: dict) -> None:
        """Tell the plan before anything slow: models, folds, jobs, the run directory and an estimate."""
        cfg = self.config
        jobs = plan(self.models, cfg.seeds, {s: len(f) for s, f in folds.items()}, self.variants, cfg.members)
        done = {j.key for j in jobs if self.store.exists and self.is_done(j)}
        todo = [j for j in jobs if j.key not in done]
        workers = n_workers(cfg.jobs)
        n_folds = sorted({len(f) for f in folds.values()})
        seeds = ",".join(map(str, cfg.seeds))
        self.notify(f"plan: {len(self.models)} model(s) ({', '.join(self.models)}) x {len(cfg.seeds)} seed(s) "
                    f"({seeds}) x {'/'.join(map(str, n_folds))} folds of {cfg.split} = {len(jobs)} jobs "
                    f"on {workers} worker(s) ({cfg.backend})")
        where = (f"resuming: {len(done)} of {len(jobs)} jobs done, {len(todo)} to run" if self.store.exists
                 else "written once the features are built")
        self.notify(f"run directory: {self.run_dir} ({where})")
        specs = {j.base: MODELS.get(j.base) for j in jobs}
        n_train = {(s, k): len(tr) for s, f in folds.items() for k, (tr, _) in enumerate(f)}
        seconds, unknown = estimate_seconds(todo, specs, n_train, workers)
        costs = job_costs()
        fitted = [m for m in dict.fromkeys(j.model for j in todo) if not FREE_TAGS & set(specs[
            next(j.base for j in todo if j.model == m)].tags)]
        if fitted and len(unknown) == len(fitted):
            self.notify(f"estimate: none (no measured cost for {', '.join(unknown)} in benchmark/costs.json); "
                        "the progress bar's ETA starts once each model's first job finishes")
        elif todo:
            note = f"; not counted (never measured): {', '.join(unknown)}" if unknown else ""
            self.notify(f"estimate: jobs about {format_duration(seconds)} on {workers} worker(s), from per-model "
                        f"costs measured on {costs.get('machine') or 'the reference machine'} "
                        f"(docs/benchmarks.md){note}; features not yet cached come on top")

    @property
    def assembly(self) -> Assembly:
        """The inputs of this run's jobs (:class:`benchmark.assembly.Assembly`), from what :meth:`prepare` built."""
        if getattr(self, "_assembly", None) is None:
            self._assembly = Assembly(self.dataset, self.features, self.folds, self.groups, self.validation,
                                      self.cache_root, self.config.feature_sets, self.variants, self.font_tables,
                                      self.font_conditions, self.config.device, self.imported)
        return self._assembly

    def _matrix(self, model: str, font: str | None = None):
        """The model's input (:meth:`benchmark.assembly.Assembly.matrix`)."""
        return self.assembly.matrix(model, font)

    def inputs(self, jobs: list[Job], threads: int = 1) -> RunInputs:
        """What the workers need for ``jobs`` (:meth:`benchmark.assembly.Assembly.inputs`)."""
        return self.assembly.inputs(jobs, threads)

    # --- provenance -------------------------------------------------------
    def _write_manifest(self) -> None:
        if not self.store.exists:
            self.store.acquire_lock(self.command)  # a new run: locked before it has files
        self.store.create()
        data_hash = self.dataset.content_hash()
        ids = self.dataset.meta["sample_id"].to_numpy()
        folds = Folds.from_indices(ids, self.groups, self.folds)
        old = self.store.read_manifest() if self.store.exists else None
        if old is not None:
            if old.get("data_hash") != data_hash:
                raise ConfigError(f"{self.run_dir}/manifest.json: the data changed since this run started "
                                  f"({old.get('data_hash', '?')[:12]} -> {data_hash[:12]}); start a new run")
            if results_key(old.get("config", {})) != self.config.results_key():
                raise ConfigError(f"{self.run_dir}/manifest.json: options differ from the run being resumed; "
                                  "resume with --resume alone (execution options such as --jobs and --backend "
                                  "may change)")
            self._check_same_folds(folds, old)
        manifest = {
            "run_id": self.run_id,
            "created": old.get("created") if old else provenance.now(),
            # The command that started the run; each --resume is appended to "resumes".
            "command": list(old["command"]) if old and old.get("command") else list(self.command),
            "config": asdict(self.config),
            "versions": provenance.versions(),
            "runtime": provenance.runtime(self._model_specs(), self.config.device),
            "git_commit": provenance.git_commit(),
            "data_dir": str(self.dataset.root.resolve()),
            "data_hash": data_hash,
            "dataset": self.dataset.identity(),
            "n_samples": self.dataset.n_samples,
            "include_score": self.config.include_score,
            "skipped_inputs": self.skipped,
            "split": {"name": self.config.split, **dict(self.split_info)},
            "n_folds": {str(s): len(f) for s, f in self.folds.items()},
            # The fold hash (benchmark.store.Folds.assignment_hash): what 'benchmark folds export' prints.
            "fold_hash": folds.assignment_hash(),
            "fold_hashes": folds.assignment_hashes(),
            "leakage": self.leakage,
            "fonts": self.font_record,
            "feature_sets": {k: len(v) for k, v in self.features.sets.items()},
            "rater_spread": self.spread_record,
            "target_names": list(self.dataset.target_names),
            # Predictions made elsewhere, scored as models: each file's path and sha256 (a resume checks it).
            "imports": {m: f.record() for m, f in self.imported.items()},
            "feature_files": self.feature_files,
            "n_jobs_planned": len(self.jobs),
            "models": list(self.models),
        }
        if old is not None:
            now = provenance.now()
            manifest["resumed"] = now
            manifest["resumes"] = [*old.get("resumes", []), {"command": list(self.command), "time": now}]
        self.store.write_manifest(manifest)
        self.store.write_folds(folds)
        if self.spread is not None:
            long = self.spread.rename_axis("sample_id").reset_index().melt(
                id_vars="sample_id", var_name="target", value_name="sd")
            self.store.write_spread(long)

    def _check_feature_files(self) -> None:
        """On resume, refuse a feature file (``file:PATH``) whose content changed since the run started."""
        if not self.store.exists or not self.feature_files:
            return
        old = (self.store.read_manifest() or {}).get("feature_files") or {}
        for name, digest in self.feature_files.items():
            before = old.get(name)
            if before and before != digest:
                raise ConfigError(f"feature set {name!r}: the file changed since the run started (sha256 "
                                  f"{before[:12]} -> {digest[:12]}); its finished jobs read the old one: restore it "
                                  "or start a new run")

    def _check_same_folds(self, folds: Folds, old: dict) -> None:
        """Refuse to resume a run whose stored folds differ from the ones this code computes for its split.

        The finished jobs were fitted and scored on the stored folds; new jobs on other folds would mix two
        designs in one table (e.g. a lopo run made when the two score renderings were two units, 22 folds).
        """
        stored = self.store.read_folds() if (self.run_dir / RunStore.FOLDS).is_file() else None
        if stored is None:
            return
        before, now = stored.assignment_hash(), folds.assignment_hash()
        if before == now:
            return
        n_before = {s: stored.n_folds(s) for s in stored.seeds}
        n_now = {s: len(f) for s, f in self.folds.items()}
        detail = "; ".join(f"seed {s}: {n_before.get(s, 0)} folds stored, {n_now[s]} now"
                           for s in n_now if n_before.get(s) != n_now[s])
        raise ConfigError(f"{self.run_dir}/{RunStore.FOLDS}: the folds this version computes for split "
                          f"{self.config.split!r} differ from the run's (fold hash {before[:12]} -> {now[:12]}"
                          f"{'; ' + detail if detail else ''}); its finished jobs were scored on other folds: "
                          "start a new run")

    def _model_specs(self) -> list:
        return [MODELS.get(ref.base) for ref in self.config.refs.values()]

    # --- planning ---------------------------------------------------------
    def plan(self) -> list[Job]:
        """Every job of the run, dependencies first."""
        return list(self.jobs)

    def is_done(self, job: Job | JobKey | str) -> bool:
        if isinstance(job, str):
            key, inner = JobKey.parse(job), False
        elif isinstance(job, JobKey):
            key, inner = job, False
        else:
            key, inner = job.key, job.inner
        return key is not None and self.store.is_done(key, inner=inner)

    # --- execution ----------------------------------------------------------
    def run(self, backend=None) -> dict[str, int]:
        """Execute every unfinished job; return counts of planned/resumed/ok/failed jobs.

        Parameters
        ----------
        backend : optional
            A backend object (:mod:`benchmark.backends`); default: the config's ``backend``.

        Raises
        ------
        BenchmarkError
            When every job of the run failed, or ``error_score="raise"`` and one did.
        KeyboardInterrupt
            Propagated after the finished jobs are on disk.

        The run directory is locked from :meth:`prepare` until this returns or raises.
        """
        try:
            return self._run(backend)
        finally:
            self.close()

    def _run(self, backend=None) -> dict[str, int]:
        if not hasattr(self, "folds"):
            self.prepare()
        cfg = self.config
        jobs = self.plan()
        todo = [j for j in jobs if not self.is_done(j)]
        counts = {"planned": len(jobs), "resumed": len(jobs) - len(todo), "ok": 0, "failed": 0, "failed_models": {}}
        logger.info("%d jobs planned, %d already done", len(jobs), counts["resumed"])
        if todo:
            backend = backend or make_backend(cfg.backend, jobs=cfg.jobs, scheduler=cfg.scheduler)
            specs = {j.base: MODELS.get(j.base) for j in jobs}
            ctx = self.inputs(todo, threads=threads_per_worker(n_workers(cfg.jobs)))
            bar = GridProgress(len(jobs), counts["resumed"], self._eta(todo, specs),
                               desc=f"run:{cfg.split}:{cfg.backend}", disable=not self.progress)

            def on_result(job: Job, out: JobOutput) -> None:
                self.persist(job, out)
                counts["ok" if out.ok else "failed"] += 1
                bar.update(job.model, out.fit_seconds, out.ok)
                if not out.ok and cfg.error_score == "raise":
                    self.collect()
                    raise BenchmarkError(f"job {job.key.name} failed: {out.error} (error_score=raise); "
                                         f"finished jobs are kept in {self.run_dir}")

            try:
                backend.run(todo, specs, ctx, self.load_output, on_result)
            finally:
                bar.close()
        failed = self.collect()
        self.write_result()
        if failed and cfg.error_score == "raise":
            raise BenchmarkError(f"{len(failed)} job(s) failed, e.g. {failed[0]}; see {self.run_dir}/metrics.parquet")
        reported = [j for j in jobs if j.key.reported]
        if failed and len(failed) == len(reported):
            raise BenchmarkError(f"every job failed, e.g. {failed[0]}; tracebacks: {self.store.jobs_dir}/*.error.txt")
        counts["failed_models"] = self.failed_models()
        return counts

    def _eta(self, todo: list[Job], specs: dict) -> FamilyETA:
        """The per-model ETA of ``todo``, starting from the measured costs until a model's first job finishes."""
        remaining: dict[str, int] = {}
        for j in todo:
            remaining[j.model] = remaining.get(j.model, 0) + 1
        prior = {}
        costs = job_costs()
        for j in todo:
            spec = specs[j.base]
            if j.model not in prior:
                n_train = len(self.folds[j.seed][j.fold][0])
                c = 0.0 if FREE_TAGS & set(spec.tags) else job_cost(j.base, spec.tags, n_train, costs)
                if c is not None:
                    prior[j.model] = c
        return FamilyETA(remaining, n_workers(self.config.jobs), prior)

    def failed_models(self) -> dict[str, int]:
        """Models none of whose reported jobs finished ``ok`` although some ran: model -> failed jobs."""
        rows, _ = self.store.read_jobs([j.key for j in self.plan() if j.key.reported])
        if not len(rows):
            return {}
        out = {}
        for model, r in rows.groupby("model", sort=False):
            if not (r["status"] == "ok").any():
                out[str(model)] = int(r.drop_duplicates(["seed", "fold"]).shape[0])
        return out

    # --- persistence --------------------------------------------------------
    def persist(self, job: Job, out: JobOutput) -> None:
        """Write one finished job to the store: rows, predictions, inner predictions, params, traceback."""
        tr, te = self.folds[job.seed][job.fold]
        base = {"run_id": self.run_id, "model": job.model, "split": self.config.split, "seed": job.seed,
                "fold": job.fold, "n_train": len(tr), "n_test": len(te), "fit_seconds": out.fit_seconds}
        params = {"model": job.model, "base": job.base, "params": out.params or job.param_dict,
                  "seed": job.seed, "model_seed": job.model_seed, "fold": job.fold,
                  "deps": [d.name for d in job.deps], "fitted": out.fitted}
        if not out.ok:
            logger.warning("job %s failed: %s", job.key.name, out.error)
            rows = pd.DataFrame([{**base, "target": None, "metric": None, "value": np.nan,
                                  "status": "failed", "error": out.error}], columns=ROW_COLUMNS)
            self.store.write_job(job.key, rows, params=params, traceback=out.traceback or out.error)
            return
        meta = self.dataset.meta.iloc[te]
        y_true = self.dataset.y[te]
        names = list(self.dataset.target_names)
        pred = out.pred
        n, t = pred.shape
        # A dataset without a performer or piece column stores None there.
        performer, piece = (meta[c].to_numpy() if c in meta.columns else np.full(n, None, dtype=object)
                            for c in ("player", "piece"))
        preds = pd.DataFrame({
            "sample_id": np.repeat(meta["sample_id"].to_numpy(), t),
            "performer": np.repeat(performer, t),
            "piece": np.repeat(piece, t),
            "model": job.model, "seed": job.seed, "fold": job.fold,
            "target": np.tile(names, n),
            "y_true": y_true.ravel(), "y_pred": pred.ravel(),
        }, columns=PRED_COLUMNS)
        inner = None
        if out.inner is not None:
            ids = self.dataset.meta["sample_id"].to_numpy()[tr]
            inner = pd.DataFrame({"sample_id": np.repeat(ids, t), "target": np.tile(names, len(ids)),
                                  "y_pred": out.inner.ravel()})
        metrics = METRICS if self.spread is None else METRICS + SPREAD_METRICS
        sd = None if self.spread is None else self.spread.to_numpy()[te]
        scores = per_target(y_true, pred, metrics, sd=sd)
        rows = pd.DataFrame([{**base, "target": names[j], "metric": mname, "value": scores[mname][j],
                              "status": "ok", "error": None}
                             for mname in metrics for j in range(t)], columns=ROW_COLUMNS)
        self.store.write_job(job.key, rows, preds=preds, inner=inner, params=params, state=out.state)

    def load_output(self, key: JobKey) -> JobOutput:
        """A finished job's predictions read back from the store (an ensemble reuses them)."""
        tr, te = self.folds[key.seed][key.fold]
        ids = self.dataset.meta["sample_id"].to_numpy()
        names = list(self.dataset.target_names)

        def wide(df: pd.DataFrame, order: np.ndarray) -> np.ndarray:
            w = df.pivot(index="sample_id", columns="target", values="y_pred")
            return w.reindex(index=order, columns=names).to_numpy(dtype=float)

        pred = wide(self.store.read_job_preds(key), ids[te])
        inner_path_ok = self.store.is_done(key, inner=True)
        inner = wide(self.store.read_inner(key), ids[tr]) if inner_path_ok else None
        return JobOutput(key, pred=pred, inner=inner)

    def collect(self) -> list[str]:
        """Concatenate the reported jobs' files into metrics.parquet and predictions.parquet.

        What was collected stays in :attr:`contents` (a :class:`benchmark.store.RunContents`), so the
        closing report uses it instead of reading the job files again.

        Returns
        -------
        list of str
            ``"<job>: <error>"`` for every failed job.
        """
        self.contents = self.store.collect([j.key for j in self.plan()])
        return self.contents.failed


    def write_result(self) -> Path | None:
        """Write the run's result file (``result.json``, :func:`benchmark.export.export_result`) from what
        :meth:`collect` gathered; None when no job finished (there is nothing to report yet).

        The run as read (:attr:`run_data`, a :class:`reports.rundata.RunData`) is kept, so the closing
        results table reuses the pooled metrics and CIs computed here.
        """
        self.run_data = None
        if not (self.contents.rows["status"] == "ok").any():
            return None
        self.run_data = RunData.from_contents(self.run_dir, self.contents)
        return export_result(self.run_data)


def new_run_dir(out: str | os.PathLike, split: str) -> Path:
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    # group:system -> group-system: a colon in a folder name trips scp, rsync and other systems' file names.
    return Path(out) / f"{stamp}-{split.replace(':', '-')}-{uuid.uuid4().hex[:6]}"
