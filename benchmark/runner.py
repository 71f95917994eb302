"""Run the grid model x split x seed x fold and keep every finished job on disk.

A run directory holds::

    manifest.json            command, versions, git commit, data hash, options
    folds.parquet            sample_id, seed, fold, role (train/test), group (the split's label)
    jobs/<job>.preds.parquet out-of-fold predictions of one finished job
    jobs/<job>.rows.parquet  its tidy metric rows (written last: the "done" mark)
    metrics.parquet          all per-fold metric rows (written at the end)
    predictions.parquet      all out-of-fold predictions (written at the end)

A job is one (model, seed, fold). An interrupted run is finished with
``benchmark run --resume RUN_DIR``: jobs whose rows file says ``ok`` are not
recomputed.
"""

from __future__ import annotations

import datetime as _dt
import json
import logging
import os
import platform
import subprocess
import sys
import time
import traceback
import uuid
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path

import numpy as np
import pandas as pd
from joblib import Parallel, delayed
from tqdm.auto import tqdm

from benchmark.dataset import Dataset, load_dataset
from benchmark.errors import BenchmarkError, ConfigError
from benchmark.metrics import METRICS, per_target
from features.build import build_features
from features.cache import Cache, resolve_cache_dir
from models import MODELS
from splits import SPLITS, make_splits, split_groups, split_info

logger = logging.getLogger(__name__)

ERROR_SCORES = ("nan", "raise")
ROW_COLUMNS = ["run_id", "model", "split", "seed", "fold", "target", "metric", "value",
               "n_train", "n_test", "fit_seconds", "status", "error"]
PRED_COLUMNS = ["sample_id", "performer", "piece", "model", "seed", "fold", "target", "y_true", "y_pred"]


@dataclass
class RunConfig:
    """Everything that defines a run; saved in the manifest and reused by ``--resume``."""

    models: list[str]
    split: str = "lopo"
    seeds: list[int] = field(default_factory=lambda: [0])
    features: list[str] | None = None
    n_splits: int | None = None
    data_dir: str | None = None
    include_score: bool = True
    on_bad_input: str = "skip"
    error_score: str = "nan"
    jobs: int = 1
    cache_dir: str | None = None
    soundfont: str | None = None

    def validate(self) -> None:
        for m in self.models:
            MODELS.get(m)
        SPLITS.get(self.split)
        if not self.seeds:
            raise ConfigError("no seeds given; pass e.g. --seeds 0,1,2")
        if self.error_score not in ERROR_SCORES:
            raise ConfigError(f"error_score={self.error_score!r}; use one of {ERROR_SCORES}")

    def feature_sets(self, model: str) -> list[str]:
        """The feature sets ``model`` consumes (``--features`` overrides its declared inputs)."""
        return list(self.features) if self.features else list(MODELS.get(model).inputs)


def job_id(model: str, seed: int, fold: int) -> str:
    return f"{model}__seed{seed}__fold{fold:03d}"


def _versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for pkg in ("numpy", "scipy", "pandas", "scikit-learn", "xgboost", "lightgbm", "percepiano-bench"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            out[pkg] = "not installed"
    return out


def _git_commit() -> str | None:
    try:
        res = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5,
                             cwd=Path(__file__).resolve().parent)
        return res.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def _atomic_parquet(df: pd.DataFrame, path: Path) -> None:
    tmp = path.with_name(f".tmp-{uuid.uuid4().hex}-{path.name}")
    df.to_parquet(tmp, index=False)
    os.replace(tmp, path)


def _atomic_json(obj: dict, path: Path) -> None:
    tmp = path.with_name(f".tmp-{uuid.uuid4().hex}-{path.name}")
    tmp.write_text(json.dumps(obj, indent=2, default=str))
    os.replace(tmp, path)


def _fit_predict(model: str, seed: int, X_train, y_train, groups_train, X_test):
    # Runs in a worker: builds a fresh estimator, so no state crosses folds.
    est = MODELS.build(model, random_state=seed)
    t0 = time.perf_counter()
    try:
        est.fit(X_train, y_train, groups=groups_train)
        pred = est.predict(X_test)
    except Exception as exc:  # a failing fold is recorded, not fatal (see error_score)
        return None, time.perf_counter() - t0, f"{type(exc).__name__}: {exc}", traceback.format_exc()
    return pred, time.perf_counter() - t0, None, None


class Runner:
    """Plan, execute and resume one run.

    Parameters
    ----------
    config : RunConfig
    run_dir : path
        Created if absent; an existing one is resumed.
    progress : bool
        Show progress bars.
    """

    def __init__(self, config: RunConfig, run_dir: str | os.PathLike, *, progress: bool = True,
                 command: list[str] | None = None) -> None:
        config.validate()
        self.config = config
        self.run_dir = Path(run_dir)
        self.progress = progress
        self.command = command if command is not None else sys.argv
        self.run_id = self.run_dir.name

    # --- planning -------------------------------------------------------
    def prepare(self) -> None:
        """Load data, build features, compute folds, write the manifest."""
        cfg = self.config
        self.dataset: Dataset = load_dataset(cfg.data_dir, include_score=cfg.include_score)
        cache = Cache(resolve_cache_dir(cfg.cache_dir))
        needed = sorted({fs for m in cfg.models for fs in cfg.feature_sets(m)})
        t0 = time.perf_counter()
        fm = build_features(self.dataset.meta, needed, cache, n_jobs=cfg.jobs, on_bad_input=cfg.on_bad_input,
                            progress=self.progress, soundfont=cfg.soundfont)
        self.feature_seconds = time.perf_counter() - t0
        keep = self.dataset.meta["sample_id"].isin(fm.X.index).to_numpy()
        self.dataset = self.dataset.subset(keep)
        self.features = fm
        self.skipped = fm.skipped
        info = split_info(cfg.split)
        self.split_info = info
        # The split's own group labels: they group the models' inner CV too.
        self.groups = split_groups(cfg.split, self.dataset.meta)
        self.folds = {s: make_splits(cfg.split, self.dataset.meta, seed=s, n_splits=cfg.n_splits) for s in cfg.seeds}
        self._write_manifest()

    def _write_manifest(self) -> None:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        (self.run_dir / "jobs").mkdir(exist_ok=True)
        path = self.run_dir / "manifest.json"
        data_hash = self.dataset.content_hash()
        if path.exists():
            old = json.loads(path.read_text())
            if old.get("data_hash") != data_hash:
                raise ConfigError(f"{path}: the data changed since this run started "
                                  f"({old.get('data_hash', '?')[:12]} -> {data_hash[:12]}); start a new run")
            if old.get("config") != asdict(self.config):
                raise ConfigError(f"{path}: options differ from the run being resumed; resume with --resume alone")
        manifest = {
            "run_id": self.run_id,
            "created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
            "command": list(self.command),
            "config": asdict(self.config),
            "versions": _versions(),
            "git_commit": _git_commit(),
            "data_dir": str(self.dataset.root.resolve()),
            "data_hash": data_hash,
            "n_samples": self.dataset.n_samples,
            "include_score": self.config.include_score,
            "skipped_inputs": self.skipped,
            "split": {"name": self.config.split, **{k: v for k, v in self.split_info.items()}},
            "n_folds": {str(s): len(f) for s, f in self.folds.items()},
            "feature_sets": {k: len(v) for k, v in self.features.sets.items()},
            "target_names": list(self.dataset.target_names),
        }
        if path.exists():
            manifest["created"] = json.loads(path.read_text()).get("created", manifest["created"])
            manifest["resumed"] = _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")
        _atomic_json(manifest, path)
        rows = []
        ids = self.dataset.meta["sample_id"].to_numpy()
        groups = self.groups if self.groups is not None else np.full(len(ids), None)
        groups = np.asarray([None if g is None else str(g) for g in groups], dtype=object)
        for s, folds in self.folds.items():
            for k, (tr, te) in enumerate(folds):
                rows.append(pd.DataFrame({"sample_id": ids[tr], "seed": s, "fold": k, "role": "train",
                                          "group": groups[tr]}))
                rows.append(pd.DataFrame({"sample_id": ids[te], "seed": s, "fold": k, "role": "test",
                                          "group": groups[te]}))
        _atomic_parquet(pd.concat(rows, ignore_index=True), self.run_dir / "folds.parquet")

    def plan(self) -> list[tuple[str, int, int]]:
        return [(m, s, k) for s in self.config.seeds for m in self.config.models for k in range(len(self.folds[s]))]

    def is_done(self, jid: str) -> bool:
        path = self.run_dir / "jobs" / f"{jid}.rows.parquet"
        if not path.exists():
            return False
        try:
            status = pd.read_parquet(path, columns=["status"])["status"]
        except Exception:  # unreadable marker: recompute the job
            return False
        return bool(len(status)) and bool((status == "ok").all())

    # --- execution ------------------------------------------------------
    def _matrix(self, model: str) -> np.ndarray:
        cols = [c for fs in self.config.feature_sets(model) for c in self.features.sets[fs]]
        return self.features.X.loc[self.dataset.meta["sample_id"], cols].to_numpy(dtype=float)

    def run(self) -> dict[str, int]:
        """Execute every unfinished job; return counts of done/failed/skipped jobs.

        Raises
        ------
        BenchmarkError
            When every job of the run failed, or ``error_score="raise"`` and one did.
        KeyboardInterrupt
            Propagated after the finished jobs are on disk.
        """
        if not hasattr(self, "folds"):
            self.prepare()
        cfg = self.config
        plan = self.plan()
        todo = [j for j in plan if not self.is_done(job_id(*j))]
        logger.info("%d jobs planned, %d already done", len(plan), len(plan) - len(todo))
        y = self.dataset.y
        mats = {m: self._matrix(m) for m in cfg.models}
        args = []
        for m, s, k in todo:
            tr, te = self.folds[s][k]
            g = self.groups[tr] if self.groups is not None else None
            args.append(((m, s, k), delayed(_fit_predict)(m, s, mats[m][tr], y[tr], g, mats[m][te])))
        counts = {"planned": len(plan), "resumed": len(plan) - len(todo), "ok": 0, "failed": 0}
        if todo:
            results = Parallel(n_jobs=cfg.jobs, return_as="generator")(d for _, d in args)
            bar = tqdm(total=len(todo), desc=f"run:{cfg.split}", disable=not self.progress)
            try:
                for (key, _), res in zip(args, results, strict=False):
                    status = self._save_job(*key, *res)
                    counts[status] += 1
                    bar.update(1)
                    if status == "failed" and cfg.error_score == "raise":
                        self.collect()
                        raise BenchmarkError(f"job {job_id(*key)} failed: {res[2]} (error_score=raise); "
                                             f"finished jobs are kept in {self.run_dir}")
            finally:
                bar.close()
        failed = self.collect()
        if failed and cfg.error_score == "raise":
            raise BenchmarkError(f"{len(failed)} job(s) failed, e.g. {failed[0]}; see {self.run_dir}/metrics.parquet")
        if failed and len(failed) == len(plan):
            raise BenchmarkError(f"every job failed, e.g. {failed[0]}")
        return counts

    def _save_job(self, model, seed, fold, pred, fit_seconds, error, tb) -> str:
        tr, te = self.folds[seed][fold]
        meta = self.dataset.meta.iloc[te]
        y_true = self.dataset.y[te]
        jid = job_id(model, seed, fold)
        base = {"run_id": self.run_id, "model": model, "split": self.config.split, "seed": seed, "fold": fold,
                "n_train": len(tr), "n_test": len(te), "fit_seconds": fit_seconds}
        if error is not None:
            logger.warning("job %s failed: %s", jid, error)
            rows = pd.DataFrame([{**base, "target": None, "metric": None, "value": np.nan,
                                  "status": "failed", "error": error}], columns=ROW_COLUMNS)
            _atomic_parquet(rows, self.run_dir / "jobs" / f"{jid}.rows.parquet")
            return "failed"
        names = list(self.dataset.target_names)
        n, t = pred.shape
        preds = pd.DataFrame({
            "sample_id": np.repeat(meta["sample_id"].to_numpy(), t),
            "performer": np.repeat(meta["player"].to_numpy(), t),
            "piece": np.repeat(meta["piece"].to_numpy(), t),
            "model": model, "seed": seed, "fold": fold,
            "target": np.tile(names, n),
            "y_true": y_true.ravel(), "y_pred": pred.ravel(),
        }, columns=PRED_COLUMNS)
        scores = per_target(y_true, pred)
        rows = pd.DataFrame([{**base, "target": names[j], "metric": mname, "value": scores[mname][j],
                              "status": "ok", "error": None}
                             for mname in METRICS for j in range(t)], columns=ROW_COLUMNS)
        _atomic_parquet(preds, self.run_dir / "jobs" / f"{jid}.preds.parquet")
        _atomic_parquet(rows, self.run_dir / "jobs" / f"{jid}.rows.parquet")
        return "ok"

    def collect(self) -> list[str]:
        """Concatenate per-job files into metrics.parquet and predictions.parquet."""
        rows, preds, failed = [], [], []
        for m, s, k in self.plan():
            jid = job_id(m, s, k)
            rpath = self.run_dir / "jobs" / f"{jid}.rows.parquet"
            if not rpath.exists():
                continue
            r = pd.read_parquet(rpath)
            rows.append(r)
            if (r["status"] == "ok").all():
                preds.append(pd.read_parquet(self.run_dir / "jobs" / f"{jid}.preds.parquet"))
            else:
                failed.append(f"{jid}: {r['error'].iloc[0]}")
        if rows:
            _atomic_parquet(pd.concat(rows, ignore_index=True), self.run_dir / "metrics.parquet")
        if preds:
            _atomic_parquet(pd.concat(preds, ignore_index=True), self.run_dir / "predictions.parquet")
        return failed


def new_run_dir(out: str | os.PathLike, split: str) -> Path:
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    return Path(out) / f"{stamp}-{split}-{uuid.uuid4().hex[:6]}"


def load_config(run_dir: str | os.PathLike) -> RunConfig:
    """Read the config of an existing run (for ``--resume``)."""
    path = Path(run_dir) / "manifest.json"
    if not path.is_file():
        raise ConfigError(f"{str(run_dir)!r} is not a run directory (no manifest.json); pass the folder a run printed")
    try:
        cfg = json.loads(path.read_text())["config"]
        return RunConfig(**cfg)
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise ConfigError(f"{path} is unreadable ({exc}); start a new run") from None
