"""Fixed folds out, predictions out: what another code base needs to be scored on the harness's folds.

* :func:`fold_table` / :func:`export_folds` (``benchmark folds export``): one row per (seed, fold,
  sample_id) with its role (``train``, ``validation``, ``test``) and the split's group label, computed by
  the same :func:`splits.make_splits` on the same segments as ``benchmark run`` (or read from a run's
  ``folds.parquet``), with a sidecar that carries the data sha256, the split and its parameters, the fold
  hash (:meth:`benchmark.store.Folds.assignment_hash`, the value the run manifest prints) and the
  harness's version.
* :func:`export_predictions` (``benchmark predictions export``): a run's out-of-fold predictions of one
  model in the format ``--predictions`` imports, with the same sidecar: the harness's own predictions
  scored again through the import path, or handed to another tool.

The formats and their columns: ``docs/formats.md``.
"""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from benchmark import provenance
from benchmark.description import open_dataset
from benchmark.errors import ConfigError
from benchmark.store import Folds, RunStore
from benchmark.tablefile import table_format, write_sidecar, write_table
from splits import make_splits, make_validation_folds, split_groups, split_info

#: Columns of an exported fold table.
FOLD_EXPORT_COLUMNS = ["seed", "fold", "sample_id", "role", "group", "player", "piece"]
#: Columns of an exported (or imported) predictions table.
PREDICTION_EXPORT_COLUMNS = ["seed", "fold", "sample_id", "target", "y_pred"]
#: Version of the exported formats (a sidecar's ``format_version``).
FORMAT_VERSION = 1


def _harness() -> dict:
    return {"harness_version": provenance.versions().get("percepiano-bench"), "git_commit": provenance.git_commit(),
            "written": provenance.now()}


def fold_table(split: str, *, seeds=(0,), n_splits: int | None = None, data_dir=None, dataset=None,
               include_score: bool = True) -> tuple[pd.DataFrame, dict]:
    """The folds ``benchmark run`` would use for ``split`` and ``seeds``, as a table with its sidecar.

    Parameters
    ----------
    split : str
    seeds : sequence of int
    n_splits : int, optional
        For splits that take it.
    data_dir : path, optional
    dataset : path, optional
        A described dataset (``dataset.toml`` or its folder) instead of PercePiano.
    include_score : bool
        False as with ``--exclude-score``.

    Returns
    -------
    (DataFrame, dict)
        :data:`FOLD_EXPORT_COLUMNS` rows sorted by seed, fold, role, sample_id; the sidecar.

    Raises
    ------
    ConfigError
        An unknown split, bad seeds or fold count (as ``benchmark run`` says them).
    """
    seeds = [int(s) for s in seeds]
    if not seeds or len(set(seeds)) != len(seeds):
        raise ConfigError(f"--seeds {seeds}: give each seed once, at least one")
    ds = open_dataset(dataset, data_dir, include_score=include_score)
    folds = {s: make_splits(split, ds.meta, seed=s, n_splits=n_splits) for s in seeds}
    groups = split_groups(split, ds.meta)
    ids = ds.meta["sample_id"].to_numpy()
    table = Folds.from_indices(ids, groups, folds)
    frame = table.frame.copy()
    info = split_info(split)
    if info.get("validation"):
        g = table.frame.drop_duplicates("sample_id").set_index("sample_id")["group"]
        parts = []
        for s in seeds:
            for k, v in enumerate(make_validation_folds(split, ds.meta)):
                parts.append(pd.DataFrame({"sample_id": ids[v], "seed": s, "fold": k, "role": "validation",
                                           "group": g.reindex(ids[v]).to_numpy()}))
        frame = pd.concat([frame, *parts], ignore_index=True)
    meta = ds.meta.set_index("sample_id")
    frame["player"] = meta["player"].reindex(frame["sample_id"]).to_numpy()
    frame["piece"] = meta["piece"].reindex(frame["sample_id"]).to_numpy()
    frame = frame[FOLD_EXPORT_COLUMNS].sort_values(["seed", "fold", "role", "sample_id"]).reset_index(drop=True)
    sidecar = {
        "format": "percepiano-bench folds", "format_version": FORMAT_VERSION,
        "split": {"name": split, "n_splits": n_splits, "group_label": info.get("group_label"),
                  "partition": info.get("partition"), "validation": info.get("validation")},
        "seeds": seeds, "n_folds": {str(s): len(f) for s, f in folds.items()},
        "fold_hash": table.assignment_hash(), "fold_hashes": table.assignment_hashes(),
        "data_sha256": ds.content_hash(), "data_dir": str(ds.root.resolve()), "n_samples": ds.n_samples,
        "include_score": include_score, "target_names": list(ds.target_names), **_harness(),
    }
    return frame, sidecar


def export_folds(out: str | os.PathLike, split: str | None = None, *, run_dir=None, **options) -> tuple[Path, dict]:
    """Write :func:`fold_table` (or a run's own folds, ``run_dir``) to ``out`` (CSV or Parquet) and its sidecar.

    Returns
    -------
    (path of the sidecar, sidecar)

    Raises
    ------
    ConfigError
        Neither or both of ``split`` and ``run_dir``; an unknown suffix; what :func:`fold_table` raises.
    """
    table_format(out)
    if (split is None) == (run_dir is None):
        raise ConfigError("folds export: give --split (the folds a run would use) or --run RUN_DIR (a run's own)")
    frame, sidecar = fold_table(split, **options) if run_dir is None else run_fold_table(run_dir)
    write_table(frame, out)
    return write_sidecar(out, sidecar), sidecar


def _run_sidecar(store: RunStore, manifest: dict, folds) -> dict:
    cfg = manifest.get("config", {})
    seeds = [int(s) for s in cfg.get("seeds", folds.seeds)]
    return {
        "split": {"name": cfg.get("split"), "n_splits": cfg.get("n_splits"),
                  **{k: manifest.get("split", {}).get(k) for k in ("group_label", "partition", "validation")}},
        "seeds": seeds, "n_folds": {str(s): folds.n_folds(s) for s in seeds},
        "fold_hash": folds.assignment_hash(seeds), "fold_hashes": {str(s): folds.assignment_hash([s]) for s in seeds},
        "data_sha256": manifest.get("data_hash"), "data_dir": manifest.get("data_dir"),
        "n_samples": manifest.get("n_samples"), "include_score": manifest.get("include_score"),
        "target_names": manifest.get("target_names"), "run_id": manifest.get("run_id", store.root.name), **_harness(),
    }


def run_fold_table(run_dir: str | os.PathLike) -> tuple[pd.DataFrame, dict]:
    """A run's own folds (``folds.parquet``) in the export format, with the sidecar.

    Raises
    ------
    ConfigError
        Not a run directory, or one without folds.
    """
    store = RunStore(run_dir)
    manifest = store.read_manifest()
    folds = store.read_folds()
    frame = folds.frame.copy()
    preds_meta = None
    try:
        preds_meta = store.read().preds.drop_duplicates("sample_id").set_index("sample_id")
    except ConfigError:
        pass
    for col, src in (("player", "performer"), ("piece", "piece")):
        frame[col] = (preds_meta[src].reindex(frame["sample_id"]).to_numpy() if preds_meta is not None else None)
    frame = frame[FOLD_EXPORT_COLUMNS].sort_values(["seed", "fold", "role", "sample_id"]).reset_index(drop=True)
    return frame, {"format": "percepiano-bench folds", "format_version": FORMAT_VERSION,
                   **_run_sidecar(store, manifest, folds)}


def export_predictions(run_dir: str | os.PathLike, model: str, out: str | os.PathLike) -> tuple[Path, dict]:
    """Write a run's out-of-fold predictions of ``model`` in the import format, with its sidecar.

    Returns
    -------
    (path of the sidecar, sidecar)

    Raises
    ------
    ConfigError
        Not a run directory, a model the run does not hold, or one with unfinished jobs.
    """
    table_format(out)
    store = RunStore(run_dir)
    contents = store.read()
    manifest = contents.manifest
    preds = contents.preds[contents.preds["model"] == model]
    models = sorted(set(contents.preds["model"]))
    if not len(preds):
        raise ConfigError(f"run {store.root.name!r} has no predictions of model {model!r} (it has: "
                          f"{', '.join(models) or 'none'})")
    n_folds = {int(s): int(n) for s, n in manifest.get("n_folds", {}).items()}
    have = preds[["seed", "fold"]].drop_duplicates()
    if len(have) != sum(n_folds.values()):
        raise ConfigError(f"model {model!r} of run {store.root.name!r} finished {len(have)} of "
                          f"{sum(n_folds.values())} jobs; finish the run first (benchmark run --resume {store.root})")
    frame = preds[PREDICTION_EXPORT_COLUMNS].sort_values(["seed", "fold", "sample_id", "target"]).reset_index(drop=True)
    write_table(frame, out)
    folds = contents.folds if contents.folds is not None else store.read_folds()
    sidecar = {"format": "percepiano-bench predictions", "format_version": FORMAT_VERSION, "model": model,
               **_run_sidecar(store, manifest, folds)}
    return write_sidecar(out, sidecar), sidecar
