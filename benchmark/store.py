"""The run directory: the only code that knows its layout.

A run directory holds::

    manifest.json                 command, versions, git commit, data hash, options, resolved study
    run.lock                      held (flock) by the driver working in the directory: pid, host, command, since
    folds.parquet                 sample_id, seed, fold, role (train/test), group (the split's label)
    jobs/<job>.preds.parquet      out-of-fold predictions of one finished job (its test fold)
    jobs/<job>.inner.parquet      inner out-of-fold predictions of its training fold (members of a stacker)
    jobs/<job>.params.json        the model's resolved parameters, model seed, dependencies, fitted extras
    jobs/<job>.error.txt          traceback of a failed job
    jobs/<job>.state.npz          fitted weights of a neural job (for 'benchmark explain')
    jobs/<job>.rows.parquet       its tidy metric rows (written last)
    metrics.parquet               all per-fold metric rows (written at the end)
    predictions.parquet           all out-of-fold predictions (written at the end)

A job is done only when its rows say ``ok`` *and* its predictions (and, when
asked for, its inner predictions) read back, its params.json parses and, for a
job that stored fitted weights (a neural job; its params.json names the state
file), every array of its state.npz reads back (the zip CRC of each is checked):
a driver killed between two writes, or a file damaged later, leaves a job that
is simply recomputed. Every file is written to a temporary name and renamed
into place, so no reader ever sees half a file; temporary names never end in
``.parquet``, so no reader mistakes one for a result.

Job names: ``<model>__seed<s>__fold<kkk>`` (model seed = split seed, the
default and the layout of older runs) or ``<model>__seed<s>__mseed<m>__fold<kkk>``
when a job's model seed differs from its split seed (members of a seed bag).
"""

from __future__ import annotations

import errno
import json
import os
import re
import uuid
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from benchmark.errors import ConfigError, DataError, OutputError
from benchmark.lock import HeldLock

ROW_COLUMNS = ["run_id", "model", "split", "seed", "fold", "target", "metric", "value",
               "n_train", "n_test", "fit_seconds", "status", "error"]
PRED_COLUMNS = ["sample_id", "performer", "piece", "model", "seed", "fold", "target", "y_true", "y_pred"]
INNER_COLUMNS = ["sample_id", "target", "y_pred"]
FOLD_COLUMNS = ["sample_id", "seed", "fold", "role", "group"]

_JOB_RE = re.compile(r"^(?P<model>.+?)__seed(?P<seed>-?\d+)(?:__mseed(?P<mseed>-?\d+))?__fold(?P<fold>\d+)$")


@dataclass(frozen=True)
class JobKey:
    """Identity of one job: model (a run's model name), split seed, fold, model seed.

    A model seed equal to the split seed is stored as None, so both spellings are one key.
    """

    model: str
    seed: int
    fold: int
    model_seed: int | None = None

    def __post_init__(self) -> None:
        if self.model_seed is not None and int(self.model_seed) == int(self.seed):
            object.__setattr__(self, "model_seed", None)

    @property
    def sort_key(self) -> tuple:
        return (self.model, self.seed, self.fold, self.mseed)

    @property
    def mseed(self) -> int:
        """The model's random seed (the split seed unless set apart)."""
        return self.seed if self.model_seed is None else int(self.model_seed)

    @property
    def reported(self) -> bool:
        """Whether the job is one of its model's reported (seed, fold) units (model seed = split seed)."""
        return self.mseed == self.seed

    @property
    def name(self) -> str:
        if self.reported:
            return f"{self.model}__seed{self.seed}__fold{self.fold:03d}"
        return f"{self.model}__seed{self.seed}__mseed{self.mseed}__fold{self.fold:03d}"

    @classmethod
    def parse(cls, name: str) -> JobKey | None:
        m = _JOB_RE.match(name)
        if m is None:
            return None
        mseed = m["mseed"]
        return cls(m["model"], int(m["seed"]), int(m["fold"]), None if mseed is None else int(mseed))

    def __str__(self) -> str:
        return self.name


def job_id(model: str, seed: int, fold: int) -> str:
    """File stem of the reported job (``model``, ``seed``, ``fold``)."""
    return JobKey(model, int(seed), int(fold)).name


class Folds:
    """The folds of a run: which samples each (seed, fold) trains and tests on, and their group.

    One object serves the runner (writing), the reports (group check), ``compare``
    (equal assignments) and the importance refit (positions of train/test ids).

    Parameters
    ----------
    frame : DataFrame
        Columns ``sample_id, seed, fold, role, group`` (``group`` may be None).
    """

    def __init__(self, frame: pd.DataFrame) -> None:
        missing = {"sample_id", "seed", "fold", "role"} - set(frame.columns)
        if missing:
            raise DataError(f"folds table lacks column(s) {sorted(missing)}; the run directory is damaged")
        if "group" not in frame:
            frame = frame.assign(group=None)
        self.frame = frame.reset_index(drop=True)

    @classmethod
    def from_indices(cls, sample_ids, groups, folds: dict[int, list[tuple[np.ndarray, np.ndarray]]]) -> Folds:
        """Build from integer (train, test) positions into ``sample_ids``, per seed."""
        ids = np.asarray(sample_ids)
        g = np.full(len(ids), None) if groups is None else groups
        g = np.asarray([None if x is None else str(x) for x in g], dtype=object)
        parts = []
        for s, pairs in folds.items():
            for k, (tr, te) in enumerate(pairs):
                for role, idx in (("train", tr), ("test", te)):
                    parts.append(pd.DataFrame({"sample_id": ids[idx], "seed": int(s), "fold": k, "role": role,
                                               "group": g[idx]}))
        frame = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=FOLD_COLUMNS)
        return cls(frame)

    @property
    def seeds(self) -> list[int]:
        return sorted(int(s) for s in self.frame["seed"].unique())

    def n_folds(self, seed: int) -> int:
        return int(self.frame.loc[self.frame["seed"] == seed, "fold"].nunique())

    def ids(self, seed: int, fold: int, role: str) -> np.ndarray:
        """Sample ids on ``role`` ("train" or "test") of one fold."""
        f = self.frame
        return f.loc[(f["seed"] == seed) & (f["fold"] == fold) & (f["role"] == role), "sample_id"].to_numpy()

    def positions(self, seed: int, fold: int, sample_ids) -> tuple[np.ndarray, np.ndarray]:
        """(train, test) positions of one fold in ``sample_ids``.

        Raises
        ------
        DataError
            A fold's sample is not in ``sample_ids``.
        """
        pos = pd.Series(np.arange(len(sample_ids)), index=np.asarray(sample_ids))
        out = []
        for role in ("train", "test"):
            ids = self.ids(seed, fold, role)
            missing = ~pd.Index(ids).isin(pos.index)
            if missing.any():
                raise DataError(f"seed {seed} fold {fold}: {int(missing.sum())} {role} segment(s) are not in the "
                                f"data, e.g. {ids[missing][0]}")
            out.append(pos[ids].to_numpy())
        return out[0], out[1]

    def assignment(self, seed: int) -> pd.DataFrame:
        """Seed ``seed``'s (fold, role, sample_id) rows in a canonical order, for equality checks."""
        cols = ["seed", "fold", "role", "sample_id"]
        return self.frame.loc[self.frame["seed"] == seed, cols].sort_values(cols).reset_index(drop=True)

    def same_as(self, other: Folds, seed: int) -> bool:
        """Whether both assign every sample of ``seed`` to the same fold and side."""
        return self.assignment(seed).equals(other.assignment(seed))

    @property
    def has_groups(self) -> bool:
        return bool(len(self.frame)) and bool(self.frame["group"].notna().all())

    def restrict(self, seeds) -> Folds:
        return Folds(self.frame[self.frame["seed"].isin(list(seeds))])


def _tmp(path: Path) -> Path:
    # The suffix keeps a half-written file out of every "*.parquet" / "*.json" glob.
    return path.with_name(f"{path.name}.tmp-{uuid.uuid4().hex}")


def _atomic(path: Path, write) -> None:
    """Write through a temporary file renamed into place; on failure remove it and raise OutputError."""
    tmp = _tmp(path)
    try:
        write(tmp)
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        reason = "disk is full" if exc.errno == errno.ENOSPC else exc.strerror or str(exc)
        raise OutputError(f"cannot write {path}: {reason}; free space or fix permissions") from None


def atomic_parquet(df: pd.DataFrame, path: Path) -> None:
    _atomic(path, lambda tmp: df.to_parquet(tmp, index=False))


def atomic_npz(arrays: dict, path: Path) -> None:
    def write(tmp: Path) -> None:
        # Through an open file: np.savez would append ".npz" to a path that does not end with it.
        with open(tmp, "wb") as fh:
            np.savez(fh, **arrays)

    _atomic(path, write)


def _npz_intact(path: Path) -> bool:
    """Whether every array of an ``.npz`` reads back: each member's zip CRC checked, in 1 MiB chunks.

    Cheaper than loading the arrays (an ``ast_base`` state is 340 MB) and as strict: ``np.savez``
    stores a CRC-32 of every array.
    """
    with zipfile.ZipFile(path) as zf:
        names = zf.namelist()
        return bool(names) and all(n.endswith(".npy") for n in names) and zf.testzip() is None


def atomic_text(text: str, path: Path) -> None:
    _atomic(path, lambda tmp: tmp.write_text(text))


def atomic_json(obj: Any, path: Path) -> None:
    atomic_text(json.dumps(obj, indent=2, default=_json_default), path)


def _json_default(o: Any) -> Any:
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    return str(o)


class RunStore:
    """Read and write one run directory.

    Parameters
    ----------
    run_dir : path
    """

    MANIFEST = "manifest.json"
    FOLDS = "folds.parquet"
    METRICS = "metrics.parquet"
    PREDICTIONS = "predictions.parquet"
    IMPORTANCE = "importance"
    LOCK = "run.lock"

    def __init__(self, run_dir: str | os.PathLike) -> None:
        self.root = Path(run_dir)
        self.jobs_dir = self.root / "jobs"
        self._lock = None

    # --- one driver at a time -------------------------------------------------
    def acquire_lock(self, command: list[str] | None = None) -> None:
        """Take the run directory for this process (an exclusive ``flock`` on ``run.lock``).

        A second driver (a second ``--resume``) then fails at once, naming
        this one, instead of computing the same jobs twice and removing the
        other's temporary files; see :class:`benchmark.lock.HeldLock`.

        Raises
        ------
        ConfigError
            Another process holds it; the message says which (pid, host, command, since when).
        """

        if self._lock is None:
            self.root.mkdir(parents=True, exist_ok=True)
            self._lock = HeldLock.acquire(self.root / self.LOCK, command, what=f"run directory {str(self.root)!r}",
                                          why="two drivers would compute the same jobs twice")

    def release_lock(self) -> None:
        """Let another driver in."""
        if self._lock is not None:
            self._lock.release()
            self._lock = None

    # --- layout -----------------------------------------------------------
    def _job_path(self, key: JobKey, kind: str) -> Path:
        ext = {"rows": "rows.parquet", "preds": "preds.parquet", "inner": "inner.parquet",
               "params": "params.json", "error": "error.txt", "state": "state.npz"}[kind]
        return self.jobs_dir / f"{key.name}.{ext}"

    def create(self) -> None:
        """Create the folders; remove temporary files a killed writer left behind."""
        self.jobs_dir.mkdir(parents=True, exist_ok=True)
        for tmp in self.jobs_dir.glob("*.tmp-*"):
            tmp.unlink(missing_ok=True)

    # --- permutation importance (benchmark importance) ------------------------
    def _importance_paths(self, model: str, by: str) -> tuple[Path, Path]:
        base = self.root / self.IMPORTANCE / f"{model}__{by}"
        return base.with_suffix(".parquet"), base.with_suffix(".json")

    def write_importance(self, model: str, by: str, table: pd.DataFrame, meta: dict) -> Path:
        """Store the tidy per-fold importance of ``model`` (by ``by``) and its metadata; return the table's path."""
        table_path, meta_path = self._importance_paths(model, by)
        table_path.parent.mkdir(parents=True, exist_ok=True)
        atomic_parquet(pd.DataFrame(table), table_path)
        atomic_json(meta, meta_path)
        return table_path

    def read_importance(self, model: str, by: str = "family") -> pd.DataFrame | None:
        """The stored importance of ``model`` with its metadata in ``attrs``, or None when none was computed.

        Raises
        ------
        DataError
            The table exists but its metadata does not (the run directory is damaged).
        """
        table_path, meta_path = self._importance_paths(model, by)
        if not table_path.is_file():
            return None
        if not meta_path.is_file():
            raise DataError(f"{table_path} has no {meta_path.name}; rerun benchmark importance")
        table = pd.read_parquet(table_path)
        table.attrs.update(json.loads(meta_path.read_text()))
        return table

    # --- manifest and folds -------------------------------------------------
    @property
    def exists(self) -> bool:
        return (self.root / self.MANIFEST).is_file()

    def read_manifest(self) -> dict:
        """The manifest.

        Raises
        ------
        ConfigError
            Not a run directory, or an unreadable manifest.
        """
        path = self.root / self.MANIFEST
        if not path.is_file():
            raise ConfigError(f"{str(self.root)!r} is not a run directory (no manifest.json); "
                              "pass the folder a run printed")
        try:
            return json.loads(path.read_text())
        except (json.JSONDecodeError, OSError) as exc:
            raise ConfigError(f"{path} is unreadable ({exc}); start a new run") from None

    def write_manifest(self, manifest: dict) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        atomic_json(manifest, self.root / self.MANIFEST)

    def write_folds(self, folds: Folds) -> None:
        atomic_parquet(folds.frame[FOLD_COLUMNS], self.root / self.FOLDS)

    def read_folds(self) -> Folds:
        """The run's folds.

        Raises
        ------
        ConfigError
            ``folds.parquet`` is missing (a run directory of an early version).
        """
        path = self.root / self.FOLDS
        if not path.is_file():
            raise ConfigError(f"run {self.root.name!r} has no folds.parquet; rerun it")
        try:
            frame = pd.read_parquet(path)
        except Exception as exc:  # pyarrow raises its own types for damaged files
            raise DataError(f"{path} is unreadable ({type(exc).__name__}); the run directory is damaged") from None
        return Folds(frame)

    # --- jobs -------------------------------------------------------------
    def write_job(self, key: JobKey, rows: pd.DataFrame, *, preds: pd.DataFrame | None = None,
                  inner: pd.DataFrame | None = None, params: dict | None = None,
                  traceback: str | None = None, state: dict | None = None) -> None:
        """Write one finished job; the rows go last, so a job is never half-done on disk.

        Parameters
        ----------
        key : JobKey
        rows : DataFrame
            Tidy metric rows (:data:`ROW_COLUMNS`).
        preds : DataFrame, optional
            Out-of-fold predictions of the test fold (:data:`PRED_COLUMNS`); None for a failed job.
        inner : DataFrame, optional
            Inner out-of-fold predictions of the training fold (:data:`INNER_COLUMNS`).
        params : dict, optional
            Resolved parameters and other provenance of the job (JSON-able).
        traceback : str, optional
            Traceback of a failed job.
        state : dict of str -> ndarray, optional
            The fitted model's weights (neural models), for ``benchmark explain``.
        """
        self.jobs_dir.mkdir(parents=True, exist_ok=True)
        # A rerun of a failed job must not leave the old traceback, nor a stale rows mark mid-way.
        self._job_path(key, "rows").unlink(missing_ok=True)
        if preds is not None:
            atomic_parquet(preds[PRED_COLUMNS], self._job_path(key, "preds"))
        if inner is not None:
            atomic_parquet(inner[INNER_COLUMNS], self._job_path(key, "inner"))
        if state is not None:
            # The params name the state file, so a job whose state went missing is not done (see is_done).
            params = {**(params or {}), "state": self._job_path(key, "state").name}
        if params is not None:
            atomic_json(params, self._job_path(key, "params"))
        if state is not None:
            atomic_npz(state, self._job_path(key, "state"))
        if traceback is not None:
            atomic_text(traceback, self._job_path(key, "error"))
        else:
            self._job_path(key, "error").unlink(missing_ok=True)
        atomic_parquet(rows[ROW_COLUMNS], self._job_path(key, "rows"))

    def is_done(self, key: JobKey, *, inner: bool = False) -> bool:
        """Whether ``key`` finished ``ok`` and its predictions (and inner ones if asked) read back.

        Its params.json, when there is one, must parse; a job whose params name a state file, or
        that has one, must have every array of it read back.
        """
        try:
            status = pd.read_parquet(self._job_path(key, "rows"), columns=["status"])["status"]
            if not len(status) or not bool((status == "ok").all()):
                return False
            # Every column is read, not just one: damage in any column page makes the job unfinished.
            preds = pd.read_parquet(self._job_path(key, "preds"))
            if not len(preds) or list(preds.columns) != PRED_COLUMNS:
                return False
            if inner:
                inner_preds = pd.read_parquet(self._job_path(key, "inner"))
                if not len(inner_preds) or list(inner_preds.columns) != INNER_COLUMNS:
                    return False
            params = self.read_job_params(key)
            if (params or {}).get("state") or self._job_path(key, "state").exists():
                if params is None:  # weights without the parameters to rebuild the model: unusable
                    return False
                return _npz_intact(self._job_path(key, "state"))
        except Exception:  # missing or unreadable (a torn write by another tool): recompute the job
            return False
        return True

    def read_job_rows(self, key: JobKey) -> pd.DataFrame | None:
        path = self._job_path(key, "rows")
        return pd.read_parquet(path) if path.is_file() else None

    def read_job_preds(self, key: JobKey) -> pd.DataFrame:
        """Outer (test-fold) predictions of a finished job.

        Raises
        ------
        DataError
            The job has no readable predictions.
        """
        return self._read(key, "preds")

    def read_inner(self, key: JobKey) -> pd.DataFrame:
        """Inner out-of-fold predictions of a job's training fold (``sample_id, target, y_pred``).

        Raises
        ------
        DataError
            The job wrote none (it was not a stacker's member) or they are unreadable.
        """
        return self._read(key, "inner")

    def read_state(self, key: JobKey) -> dict[str, np.ndarray]:
        """The fitted weights a neural job stored.

        Raises
        ------
        DataError
            The job stored none (not a neural model, or a run from before weights were kept).
        """
        path = self._job_path(key, "state")
        if not path.is_file():
            raise DataError(f"job {key.name} of run {self.root.name!r} stored no fitted weights (only neural "
                            "models do); rerun the model to explain it")
        try:
            # Reading every array checks each one's zip CRC: a truncated or altered file raises here.
            with np.load(path, allow_pickle=False) as npz:
                return {k: npz[k] for k in npz.files}
        except Exception as exc:  # zipfile, numpy's format reader and OSError each raise their own types
            raise DataError(f"job {key.name}: its fitted weights {path} are damaged ({type(exc).__name__}: "
                            f"{str(exc):.120}); recompute the job with: benchmark run --resume {self.root}") from None

    def read_job_params(self, key: JobKey) -> dict | None:
        """A job's params.json, or None when it wrote none.

        Raises
        ------
        DataError
            The file does not parse to a JSON object (damaged).
        """
        path = self._job_path(key, "params")
        if not path.is_file():
            return None
        try:
            params = json.loads(path.read_bytes().decode("utf-8"))
        except (OSError, ValueError, RecursionError) as exc:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
            raise DataError(f"job {key.name}: {path} is damaged ({type(exc).__name__}: {str(exc):.120}); "
                            f"recompute the job with: benchmark run --resume {self.root}") from None
        if not isinstance(params, dict):
            raise DataError(f"job {key.name}: {path} holds a JSON {type(params).__name__}, not an object (damaged); "
                            f"recompute the job with: benchmark run --resume {self.root}")
        return params

    def read_traceback(self, key: JobKey) -> str | None:
        path = self._job_path(key, "error")
        return path.read_text() if path.is_file() else None

    def _read(self, key: JobKey, kind: str) -> pd.DataFrame:
        path = self._job_path(key, kind)
        try:
            return pd.read_parquet(path)
        except Exception as exc:
            raise DataError(f"job {key.name}: cannot read its {kind} ({path.name}: {exc}); "
                            f"rerun it with: benchmark run --resume {self.root}") from None

    def job_keys(self, *, reported_only: bool = True) -> list[JobKey]:
        """Keys of every job with a rows file, sorted."""
        keys = []
        for p in self.jobs_dir.glob("*.rows.parquet"):
            key = JobKey.parse(p.name[: -len(".rows.parquet")])
            if key is not None and (key.reported or not reported_only):
                keys.append(key)
        return sorted(keys, key=lambda k: k.sort_key)

    # --- whole run ----------------------------------------------------------
    def read_jobs(self, keys: list[JobKey] | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
        """Rows and outer predictions of ``keys`` (default: every reported job on disk).

        A job whose rows say ``ok`` but whose predictions do not read back is
        left out entirely: it is not finished (``--resume`` recomputes it).
        """
        keys = self.job_keys() if keys is None else keys
        rows, preds = [], []
        for k in keys:
            try:
                r = self.read_job_rows(k)
            except Exception:  # a torn rows file (pyarrow raises its own types): the job is not finished
                continue
            if r is None or not len(r):
                continue
            if (r["status"] == "ok").all():
                try:
                    preds.append(self.read_job_preds(k))
                except DataError:
                    continue
            rows.append(r)
        return (pd.concat(rows, ignore_index=True) if rows else pd.DataFrame(columns=ROW_COLUMNS),
                pd.concat(preds, ignore_index=True) if preds else pd.DataFrame(columns=PRED_COLUMNS))

    def collect(self, keys: list[JobKey]) -> RunContents:
        """Write metrics.parquet and predictions.parquet from the reported jobs among ``keys``; return them.

        Returns
        -------
        RunContents
            The manifest, folds, rows and predictions just collected (``failed``: ``"<job>: <error>"`` of
            every failed job), so that a caller reports them without reading the job files again.
        """
        keys = sorted((k for k in keys if k.reported), key=lambda k: k.sort_key)
        rows, preds = self.read_jobs(keys)
        if len(rows):
            atomic_parquet(rows, self.root / self.METRICS)
        if len(preds):
            atomic_parquet(preds, self.root / self.PREDICTIONS)
        return RunContents(self.read_manifest(), rows, preds, self._folds_if_any())

    def _folds_if_any(self) -> Folds | None:
        return self.read_folds() if (self.root / self.FOLDS).is_file() else None

    def _read_collected(self, keys: list[JobKey]) -> tuple[pd.DataFrame, pd.DataFrame] | None:
        """metrics.parquet and predictions.parquet when they hold exactly ``keys``' jobs and are newer than
        every job file; None otherwise (then the job files are the truth)."""
        metrics, predictions = self.root / self.METRICS, self.root / self.PREDICTIONS
        try:
            stamps = [metrics.stat().st_mtime_ns] + ([predictions.stat().st_mtime_ns]
                                                     if predictions.is_file() else [])
            newest = max((p.stat().st_mtime_ns for k in keys for kind in ("rows", "preds")
                          if (p := self._job_path(k, kind)).is_file()), default=0)
            # Strictly newer: a job file written in the same clock tick as the collection is not trusted.
            if newest >= min(stamps):
                return None
            rows = pd.read_parquet(metrics)
            preds = pd.read_parquet(predictions) if predictions.is_file() else pd.DataFrame(columns=PRED_COLUMNS)
        except Exception:  # missing, torn or unreadable: read the job files instead
            return None
        if list(rows.columns) != ROW_COLUMNS or list(preds.columns) != PRED_COLUMNS:
            return None
        jobs = {(m, int(s), int(f)) for m, s, f in rows[["model", "seed", "fold"]].drop_duplicates().itertuples(
            index=False)}
        if jobs != {(k.model, k.seed, k.fold) for k in keys}:
            return None
        if bool((rows["status"] == "ok").any()) and not len(preds):
            return None
        return rows, preds

    def read(self) -> RunContents:
        """Manifest, rows and predictions of the reported jobs, and folds, read once.

        The collected ``metrics.parquet`` and ``predictions.parquet`` are read
        instead of the job files when they are newer than every job file and
        hold the same jobs (:meth:`collect` wrote them from those files).

        Raises
        ------
        ConfigError
            Not a run directory, or no finished job.
        """
        manifest = self.read_manifest()
        keys = self.job_keys()
        if not keys:
            raise ConfigError(f"run {str(self.root)!r} has no finished job yet; resume it with --resume")
        folds = self._folds_if_any()
        collected = self._read_collected(keys)
        rows, preds = collected if collected is not None else self.read_jobs(keys)
        read = set(zip(rows["model"], rows["seed"].astype(int), rows["fold"].astype(int), strict=True))
        unread = [k.name for k in keys if (k.model, k.seed, k.fold) not in read]
        return RunContents(manifest, rows, preds, folds, unread)


@dataclass
class RunContents:
    """What :meth:`RunStore.read` and :meth:`RunStore.collect` return."""

    manifest: dict
    rows: pd.DataFrame
    preds: pd.DataFrame
    folds: Folds | None
    #: Jobs with a rows file that did not read back (torn or damaged): left out, ``--resume`` redoes them.
    unread: list[str] = field(default_factory=list)

    @property
    def failed(self) -> list[str]:
        """``"<job>: <error>"`` for every failed reported job."""
        if not len(self.rows):
            return []
        failed = self.rows[self.rows["status"] != "ok"].drop_duplicates(["model", "seed", "fold"])
        return [f"{job_id(r.model, r.seed, r.fold)}: {r.error}" for r in failed.itertuples()]
