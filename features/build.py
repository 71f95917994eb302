"""Build feature matrices (and make sure array stages are cached) for a dataset, in parallel, through the cache."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from joblib import Parallel, delayed
from tqdm.auto import tqdm

from benchmark.errors import BenchmarkError, ConfigError, DataError
from benchmark.progress import format_duration, job_costs
from benchmark.workers import n_workers
from features.cache import Cache, make_key
from features.inputs import ArrayRef, SegmentInputs
from features.sets import FEATURE_SETS, ArrayStage, FeatureSet, is_array_stage
from features.stages import AudioParams, MelParams, logmel_for

logger = logging.getLogger(__name__)

ON_BAD_INPUT = ("skip", "error")


@dataclass
class FeatureMatrix:
    """Features for the rows of a dataset.

    Attributes
    ----------
    X : DataFrame, shape (n_samples, n_features)
        Indexed by ``sample_id``; rows of skipped samples are absent.
    skipped : dict
        sample_id -> reason, for inputs that could not be read.
    sets : dict
        Tabular feature set name -> its column names in ``X``.
    arrays : dict
        Array stage name -> (its :class:`ArrayStage`, dict sample_id -> cache key).
    n_cached, n_computed : int
    """

    X: pd.DataFrame
    skipped: dict[str, str] = field(default_factory=dict)
    sets: dict[str, list[str]] = field(default_factory=dict)
    arrays: dict[str, tuple[ArrayStage, dict[str, str]]] = field(default_factory=dict)
    n_cached: int = 0
    n_computed: int = 0

    def inputs(self, sample_ids, names: list[str], cache_root) -> np.ndarray | SegmentInputs:
        """One model's input for the segments ``sample_ids`` (in that order), chosen from the sets' kinds.

        Only tabular sets: the plain matrix ``ndarray (n, p)``. Any array stage
        among ``names``: a :class:`features.inputs.SegmentInputs` holding the
        tabular block of the tabular sets (maybe zero columns) and the stages'
        cache keys.
        """
        tables = [n for n in names if n not in self.arrays]
        cols = [c for fs in tables for c in self.sets[fs]]
        table = align_rows(self.X, sample_ids, cols)
        stages = [n for n in names if n in self.arrays]
        if not stages:
            return table
        refs = {}
        for name in stages:
            stage, keys = self.arrays[name]
            refs[stage.accessor] = ArrayRef(str(cache_root), stage.name, np.asarray([keys[s] for s in sample_ids]),
                                            stage.load)
        return SegmentInputs(np.asarray(sample_ids), table, cols, refs, {fs: self.sets[fs] for fs in tables})


def align_rows(X: pd.DataFrame, sample_ids, columns: list[str] | None = None) -> np.ndarray:
    """The rows of ``X`` for ``sample_ids``, in that order, as a float array (n_samples, n_columns).

    This is the one place a feature table meets the labels: it refuses a
    table or an id list with repeated ids and ids without features, so a row
    can never silently receive another segment's features.

    Raises
    ------
    DataError
        Repeated sample ids on either side, or ids the table lacks.
    """
    ids = pd.Index(np.asarray(sample_ids))
    for what, index in (("feature table", X.index), ("labels", ids)):
        if not index.is_unique:
            dup = index[index.duplicated()].unique()[:3].tolist()
            raise DataError(f"the {what} repeat sample id(s) {dup}; every segment must appear once")
    missing = ids.difference(X.index)
    if len(missing):
        raise DataError(f"{len(missing)} labelled segment(s) have no features, e.g. {missing[0]!r}")
    out = X.loc[ids, columns if columns is not None else list(X.columns)].to_numpy(dtype=float)
    if out.shape[0] != len(ids):  # unreachable given the checks above; kept as the invariant it guards
        raise DataError(f"feature rows ({out.shape[0]}) do not match the labels ({len(ids)})")
    return out


def _compute_one(fs: FeatureSet, row: dict, cache: Cache, key: str) -> tuple[str, np.ndarray | None, str | None]:
    def compute() -> dict[str, np.ndarray]:
        values = np.asarray(fs.compute(row, cache), dtype=float)
        if values.shape != (len(fs.feature_names),):
            raise BenchmarkError(
                f"feature set {fs.name!r} returned shape {values.shape} for {row['sample_id']!r}; "
                f"expected ({len(fs.feature_names)},)"
            )
        return {"values": values}

    try:
        values = cache.fetch(fs.cache_stage, key, compute)["values"]
    except DataError as exc:
        return row["sample_id"], None, str(exc)
    return row["sample_id"], values, None


def build_feature_set(
    fs: FeatureSet,
    meta: pd.DataFrame,
    cache: Cache,
    *,
    n_jobs: int = 1,
    progress: bool = True,
    notify: Callable[[str], None] | None = None,
) -> tuple[pd.DataFrame, dict[str, str], int]:
    """Compute (or read from ``cache``) one feature set for every row of ``meta``.

    ``notify`` receives one line with the counts before anything is computed.

    Returns
    -------
    X : DataFrame (n_ok, n_features), indexed by sample_id
    bad : dict sample_id -> error message
    n_cached : int
    """
    if not meta["sample_id"].is_unique:
        dup = meta.loc[meta["sample_id"].duplicated(), "sample_id"].unique()[:3].tolist()
        raise DataError(f"sample ids {dup} appear more than once; every segment must appear once")
    rows = meta.to_dict("records")
    values: dict[str, np.ndarray] = {}
    bad: dict[str, str] = {}
    todo = []
    for r in rows:
        try:
            k = make_key(fs.cache_stage, fs.version, fs.row_params(r), fs.inputs(r))
        except OSError as exc:  # an input that cannot be read is bad input, like an unparsable one
            bad[r["sample_id"]] = f"cannot read {exc.filename or 'an input file'}: {exc.strerror or exc}"
            continue
        hit = cache.get(fs.cache_stage, k)
        if hit is not None and hit["values"].shape == (len(fs.feature_names),):
            values[r["sample_id"]] = hit["values"]
        else:
            todo.append((r, k))
    n_cached = len(values)
    _announce(notify, fs.name, len(rows), n_cached, n_jobs)
    if todo:
        logger.info("feature set %s: %d cached, computing %d", fs.name, n_cached, len(todo))
        calls = [delayed(_compute_one)(fs, r, cache, k) for r, k in todo]
        for sid, vec, err in _in_parallel(calls, fs.name, n_jobs, progress):
            if err is not None:
                bad[sid] = err
            else:
                values[sid] = vec
    order = [r["sample_id"] for r in rows if r["sample_id"] in values]
    X = pd.DataFrame(np.vstack([values[s] for s in order]) if order else np.empty((0, len(fs.feature_names))),
                     index=pd.Index(order, name="sample_id"), columns=list(fs.feature_names))
    return X, bad, n_cached


def build_features(
    meta: pd.DataFrame,
    names: list[str] | tuple[str, ...],
    cache: Cache,
    *,
    n_jobs: int = 1,
    on_bad_input: str = "skip",
    progress: bool = True,
    soundfont: str | None = None,
    notify: Callable[[str], None] | None = None,
) -> FeatureMatrix:
    """Build and join the tabular feature sets ``names`` for every row of ``meta``; cache its array stages.

    Array stages (``mel``, ``roll``) are computed into the cache, never loaded
    into the table: the result records each segment's key
    (:attr:`FeatureMatrix.arrays`), from which :meth:`FeatureMatrix.inputs`
    makes a model's lazy input view.

    Parameters
    ----------
    on_bad_input : {"skip", "error"}
        What to do with a segment whose input cannot be read: drop it (a
        warning lists every skipped id) or raise.
    soundfont : path, optional
        SoundFont for the audio stages (default: ``$PERCEPIANO_SOUNDFONT`` or
        the General MIDI SoundFont bundled with pretty_midi).
    notify : callable, optional
        Receives one line per set before it is built (segments cached, to compute, estimated time).

    Raises
    ------
    DataError
        ``on_bad_input="error"`` and some input was bad; the message names them.
    """
    if on_bad_input not in ON_BAD_INPUT:
        raise ConfigError(f"on_bad_input={on_bad_input!r}; use one of {ON_BAD_INPUT}")
    parts, skipped, sets, arrays = [], {}, {}, {}
    n_cached = n_computed = 0
    for name in names:
        if is_array_stage(name):
            stage = FEATURE_SETS.build(name, **({"soundfont": soundfont} if name == "mel" else {}))
            keys, bad, hits = build_array_stage(stage, meta, cache, n_jobs=n_jobs, progress=progress, notify=notify)
            arrays[name] = (stage, keys)
            skipped.update(bad)
            n_cached += hits
            n_computed += len(meta) - hits
            continue
        if FEATURE_SETS.get(name).extra.get("kind") == "file":
            # A table of the user's own (--features file:PATH): read once through the cache, by its sha256,
            # aligned by sample id (a segment the file lacks is an error).
            from features.external import external_table

            X = external_table(name, meta, cache)
            if notify is not None:
                notify(f"features {name}: {len(X)} segments, {X.shape[1]} columns from the file")
            parts.append(X)
            sets[name] = list(X.columns)
            continue
        options = {"soundfont": soundfont} if name == "audio" else {}
        if FEATURE_SETS.get(name).extra.get("needs_cache"):
            # A set computed from a cached artefact (a pre-trained encoder: 'ssast') finds it in this cache.
            options = {"soundfont": soundfont, "cache_root": str(cache.root)}
        fs = FEATURE_SETS.build(name, **options)
        X, bad, hits = build_feature_set(fs, meta, cache, n_jobs=n_jobs, progress=progress, notify=notify)
        parts.append(X)
        skipped.update(bad)
        sets[name] = list(X.columns)
        n_cached += hits
        n_computed += len(meta) - hits
    if skipped:
        listing = "; ".join(f"{sid}: {msg}" for sid, msg in sorted(skipped.items()))
        if on_bad_input == "error":
            raise DataError(f"{len(skipped)} segment(s) have unreadable input ({listing}); "
                            "fix the files or pass --on-bad-input skip")
        logger.warning("skipping %d segment(s) with unreadable input: %s", len(skipped), ", ".join(sorted(skipped)))
    if parts:
        X = pd.concat(parts, axis=1, join="inner")
    else:
        X = pd.DataFrame(index=pd.Index(meta["sample_id"], name="sample_id"))
    keep = [s for s in meta["sample_id"] if s not in skipped]
    X = pd.DataFrame(align_rows(X, keep), index=pd.Index(keep, name="sample_id"), columns=X.columns)
    return FeatureMatrix(X=X, skipped=skipped, sets=sets, arrays=arrays, n_cached=n_cached, n_computed=n_computed)


def _sample_error(fn: Callable[..., Any], row: dict, *args: Any) -> tuple[str, str | None]:
    """``fn(row, *args)`` for its side effect (a cache entry): (sample id, the DataError's message or None)."""
    try:
        fn(row, *args)
    except DataError as exc:
        return row["sample_id"], str(exc)
    return row["sample_id"], None


def _in_parallel(calls: list, name: str, n_jobs: int, progress: bool) -> Iterator:
    """Results of joblib ``calls`` (delayed) in worker processes as they finish, under one progress bar."""
    results = Parallel(n_jobs=n_jobs, return_as="generator_unordered")(calls)
    # No extrapolated remaining time: the first results wait for worker start-up and compiled kernels, so
    # tqdm's rate said hours for minutes of work; the line before the bar gives the measured estimate.
    return tqdm(results, total=len(calls), desc=f"features:{name}", disable=not progress,
                bar_format="{l_bar}{bar}| {n_fmt}/{total_fmt} [{elapsed}, {rate_fmt}]")


def _announce(notify: Callable[[str], None] | None, name: str, n_rows: int, n_cached: int, n_jobs: int) -> None:
    """One line before a feature set's build: how many segments are cached, how many to compute, how long."""
    if notify is None:
        return
    todo = n_rows - n_cached
    line = f"features {name}: {n_rows} segments, {n_cached} cached, {todo} to compute"
    per = job_costs()["features"].get(name)
    if todo and per:
        workers = n_workers(n_jobs)
        line += f" (about {format_duration(todo * float(per['seconds']) / workers)} on {workers} worker(s))"
    notify(line)


def build_array_stage(
    stage: ArrayStage,
    meta: pd.DataFrame,
    cache: Cache,
    *,
    n_jobs: int = 1,
    progress: bool = True,
    notify: Callable[[str], None] | None = None,
) -> tuple[dict[str, str], dict[str, str], int]:
    """Make sure every row's entry of an array stage is in ``cache``.

    ``notify`` receives one line with the counts before anything is computed.

    An entry whose file exists counts as cached (reading every spectrogram
    back would cost more than the run's bookkeeping should); the cache's own
    checksum catches a corrupt one when a model reads it.

    Returns
    -------
    keys : dict sample_id -> cache key
        For every row whose entry exists.
    bad : dict sample_id -> error message
    n_cached : int
        Entries that were already there.
    """
    rows = meta.to_dict("records")
    keys, todo = {}, []
    for r in rows:
        k = stage.key(r)
        keys[r["sample_id"]] = k
        if not cache.path(stage.name, k).is_file():
            todo.append(r)
    n_cached = len(rows) - len(todo)
    _announce(notify, stage.name, len(rows), n_cached, n_jobs)
    bad: dict[str, str] = {}
    if todo:
        logger.info("array stage %s: %d cached, computing %d", stage.name, n_cached, len(todo))
        calls = [delayed(_sample_error)(stage.ensure, r, cache) for r in todo]
        for sid, err in _in_parallel(calls, stage.name, n_jobs, progress):
            if err is not None:
                bad[sid] = err
    return {s: k for s, k in keys.items() if s not in bad}, bad, n_cached


def build_arrays(
    meta: pd.DataFrame,
    cache: Cache,
    *,
    soundfont: str | None = None,
    mel: MelParams | None = None,
    n_jobs: int = 1,
    progress: bool = True,
) -> dict[str, str]:
    """Render and cache the log-mel spectrogram of every row; return sample_id -> error for failures."""
    audio = AudioParams(soundfont=soundfont)
    audio.resolved_soundfont()  # fail fast on a bad SoundFont, before any worker starts
    mel = mel or MelParams()
    calls = [delayed(_sample_error)(logmel_for, r, cache, audio, mel) for r in meta.to_dict("records")]
    bad = {}
    for sid, err in _in_parallel(calls, "mel", n_jobs, progress):
        if err is not None:
            bad[sid] = err
    return bad
