"""A finished run's jobs, rebuilt from its directory: what ``benchmark importance`` and ``benchmark explain`` refit
or read.

:func:`open_run` rebuilds a run's :class:`benchmark.assembly.Assembly` from
its directory: the data (checked against the manifest's hash), the features
from the cache, the folds and groups of ``folds.parquet``, the split's
validation folds and the font conditions, exactly as the runner assembled
them. :func:`stored_job` turns a finished job's ``params.json`` into the
:class:`benchmark.jobs.Job` the runner ran: the base model behind a study
variant's name, its resolved parameters (a checkpoint ``init`` included) and
its model seed; :func:`benchmark.execute.fit_job` fits it on the assembly's
inputs as a worker of the run did.
"""

from __future__ import annotations

import os

import pandas as pd

from benchmark.assembly import Assembly, font_setup
from benchmark.config import load_config
from benchmark.description import open_dataset
from benchmark.errors import ConfigError, DataError
from benchmark.fonts import FONT_SETS
from benchmark.jobs import Job, freeze
from benchmark.store import JobKey, RunStore
from benchmark.workers import n_workers, threads_per_worker
from features.build import build_features
from features.cache import Cache, resolve_cache_dir
from features.soundfonts import font_labels, split_soundfonts
from splits import make_validation_folds, split_info


def stored_job(store: RunStore, key: JobKey) -> Job:
    """The :class:`benchmark.jobs.Job` a finished job of a run was, from its ``params.json``.

    The base model is the one the job ran (a study variant's name resolves to
    it), the parameters are the estimator's resolved ones (a neural model's
    ``init`` checkpoint included), and the model seed is the job's.

    Raises
    ------
    ConfigError
        The job wrote no parameters (it has not run).
    DataError
        Its params.json is damaged.
    """
    resume = f"recompute the job with: benchmark run --resume {store.root}"
    try:
        params = store.read_job_params(key)
    except (ValueError, OSError) as exc:  # not JSON, not UTF-8, unreadable
        raise DataError(f"job {key.name}: its params.json is damaged ({type(exc).__name__}: {str(exc)[:120]}); "
                        f"{resume}") from None
    if params is None:
        raise ConfigError(f"job {key.name} has not run: its params.json is missing; finish the run with: "
                          f"benchmark run --resume {store.root}")
    if not isinstance(params, dict) or not isinstance(params.get("base"), str) \
            or not isinstance(params.get("params"), dict):
        raise DataError(f"job {key.name}: its params.json lacks the model's base or parameters (damaged); {resume}")
    resolved = {k: v for k, v in params["params"].items() if k != "random_state"}
    mseed = params.get("model_seed", key.mseed)
    return Job(JobKey(key.model, key.seed, key.fold, None if mseed is None else int(mseed)), params["base"],
               freeze(resolved))


def open_run(run_dir: str | os.PathLike, models: list[str], *, cache_dir=None,
             segments: list[str] | None = None) -> tuple[Assembly, RunStore]:
    """The :class:`Assembly` of a finished run, rebuilt from its directory for ``models``.

    Parameters
    ----------
    run_dir : path
    models : list of str
        Names of the run (study variants and font conditions included) whose inputs are needed.
    cache_dir : path, optional
        Feature cache (default: the run's).
    segments : list of str, optional
        Only these segments (``benchmark explain``): the data is not checked against the run's hash and
        there are no folds.

    Returns
    -------
    (Assembly, RunStore)

    Raises
    ------
    ConfigError
        A model that is not in the run, a run without folds.parquet, data or features that changed since
        the run.
    """
    store = RunStore(run_dir)
    manifest = store.read_manifest()
    rid = str(manifest.get("run_id", store.root.name))
    cfg = load_config(store.root)
    fonts = font_labels(split_soundfonts(cfg.soundfont))
    names, variants, conditions = font_setup(cfg, fonts)
    unknown = [m for m in models if m not in names]
    if unknown:
        raise ConfigError(f"model {unknown[0]!r} is not in run {rid} (models: {', '.join(names)})")
    if cfg.dataset is not None:
        ds = open_dataset((manifest.get("dataset") or {}).get("description") or cfg.dataset,
                          include_score=cfg.include_score)
    else:
        ds = open_dataset(None, manifest.get("data_dir") or cfg.data_dir, include_score=cfg.include_score)
    folds = None
    if segments is not None:
        ds = ds.subset(ds.meta["sample_id"].isin(set(segments)).to_numpy())
    else:
        if not (store.root / store.FOLDS).is_file():
            raise ConfigError(f"run {rid} has no folds.parquet; its folds cannot be refitted")
        folds = store.read_folds()
        ds = ds.subset(ds.meta["sample_id"].isin(set(folds.frame["sample_id"])).to_numpy())
        if ds.content_hash() != manifest.get("data_hash"):
            raise ConfigError(f"the data in {ds.root} changed since run {rid} "
                              f"(hash {str(manifest.get('data_hash'))[:12]}); a refit would not match the run")
    base_sets = sorted({fs for m in models for fs in cfg.feature_sets(conditions[m].model if m in conditions
                                                                      else m)})
    cache = Cache(resolve_cache_dir(cache_dir or cfg.cache_dir))
    first = next(iter(fonts.values())) if fonts else None
    fm = build_features(ds.meta, base_sets, cache, n_jobs=1, on_bad_input="skip", progress=False, soundfont=first)
    font_tables: dict[str, pd.DataFrame] = {}
    if conditions:
        font_tables[next(iter(fonts))] = fm.X
        for label, font in list(fonts.items())[1:]:
            sets = [fs for fs in base_sets if fs in FONT_SETS]
            font_tables[label] = build_features(ds.meta, sets, cache, n_jobs=1, on_bad_input="skip",
                                                progress=False, soundfont=font).X
    for fs in base_sets:
        expected = manifest.get("feature_sets", {}).get(fs)
        if expected is not None and fs in fm.sets and expected != len(fm.sets[fs]):
            raise ConfigError(f"feature set {fs!r} now has {len(fm.sets[fs])} columns, the run used {expected}; "
                              "the extractor changed since the run")
    missing = sorted(set(ds.meta["sample_id"]) - set(fm.X.index))
    if missing:
        raise ConfigError(f"{len(missing)} segment(s) of the run have no features now, e.g. {missing[0]}")
    ids = ds.meta["sample_id"].to_numpy()
    positions, groups, validation = {}, None, None
    if folds is not None:
        positions = {s: [folds.positions(s, k, ids) for k in range(int(manifest["n_folds"][str(s)]))]
                     for s in cfg.seeds}
        if folds.has_groups:
            # The groups the runner fitted with, as it stored them.
            g = folds.frame.drop_duplicates("sample_id").set_index("sample_id")["group"]
            groups = g.loc[ids].to_numpy()
        if split_info(cfg.split).get("validation"):
            validation = {s: make_validation_folds(cfg.split, ds.meta) for s in cfg.seeds}
    assembly = Assembly(ds, fm, positions, groups, validation, str(cache.root.resolve()), cfg.feature_sets,
                        variants, font_tables, conditions, cfg.device)
    return assembly, store


def job_threads(config) -> int:
    """The BLAS/torch threads each job of this run had (:func:`benchmark.backends.threads_per_worker`)."""
    return threads_per_worker(n_workers(config.jobs))
