"""Predictions made elsewhere, checked against the run's own folds before any job starts.

``benchmark run --predictions NAME=FILE`` (or ``benchmark.evaluate(predictions={NAME: FILE})``) adds
NAME as a model of the ``imported`` family (:mod:`models.imported`). :func:`check_predictions` reads the
file (long format: ``sample_id, target, y_pred`` and, unless the split has one seed and tests every
segment once, ``seed`` and ``fold``; optionally ``role``: ``test`` or ``validation``) and refuses, one
line naming the file, the row and what to do:

* an id that is not a segment of the dataset, one that is not labelled, one the run does not hold;
* a target that is not one of the dataset's ratings;
* a seed the run does not have, a fold the split does not have;
* a prediction whose fold disagrees with the harness's fold for that segment (the segment was in that
  fold's training set: a prediction made with the segment in training is the leak the harness exists to
  catch);
* a (seed, fold, sample, target) repeated, or one missing;
* a y_pred that is NaN or infinite;
* a sidecar (``FILE.json``) whose data sha256, split or fold hash (:meth:`benchmark.store.Folds.assignment_hash`)
  differs from the run's.

What passes is each (seed, fold)'s predictions in the fold's test order, which a job of the imported model
returns as its prediction (:func:`benchmark.execute.fit_job`).
"""

from __future__ import annotations

import difflib
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from benchmark.dataset import SCORE_PLAYERS, parse_segment_name
from benchmark.errors import ConfigError, DataError
from benchmark.hashing import file_sha256
from benchmark.store import Folds
from benchmark.tablefile import read_sidecar, read_table, sidecar_path
from models import MODELS

#: Columns every predictions file has; ``seed`` and ``fold`` may be left out (see :func:`check_predictions`).
REQUIRED = ("sample_id", "target", "y_pred")
ROLES = ("test", "validation")


@dataclass
class ImportedFile:
    """A predictions file that passed every check.

    Attributes
    ----------
    name, path, sha256 : str
    blocks : dict (seed, fold) -> ndarray (n_test, n_targets)
        Each fold's test predictions, rows in the fold's test order, columns in the dataset's target order.
    n_rows : int
        Rows of the file.
    n_validation : int
        Rows with ``role = validation`` (checked, not scored).
    """

    name: str
    path: str
    sha256: str
    blocks: dict[tuple[int, int], np.ndarray] = field(default_factory=dict)
    n_rows: int = 0
    n_validation: int = 0

    def record(self) -> dict:
        """What the manifest records of the file."""
        return {"path": self.path, "sha256": self.sha256, "rows": self.n_rows, "validation_rows": self.n_validation}


@dataclass
class RunDesign:
    """What a predictions file is checked against: the run's segments, ratings, folds and provenance.

    Attributes
    ----------
    sample_ids : ndarray (n_samples,)
        The run's segments, in the order fold positions refer to.
    left_out : dict of str -> str
        Segments of the dataset the run does not hold, and why.
    unlabelled : set of str
        The dataset's unlabelled segments.
    excluded_players : tuple of str
        Players the run leaves out (the score renderings under ``--exclude-score``).
    target_names : list of str
    folds : dict seed -> list of (train, test) positions
    validation : dict seed -> list of positions, or None
    split : str
    partition : bool
        Every segment is tested exactly once per seed.
    data_hash : str
        :meth:`benchmark.dataset.Dataset.content_hash` of the run's segments.
    fold_table : Folds
        The run's folds (its fold hash).
    """

    sample_ids: np.ndarray
    left_out: dict
    unlabelled: set
    excluded_players: tuple
    target_names: list[str]
    folds: dict[int, list[tuple[np.ndarray, np.ndarray]]]
    validation: dict[int, list[np.ndarray]] | None
    split: str
    partition: bool
    data_hash: str
    fold_table: Folds


def run_design(dataset, folds: dict, validation: dict | None, split: str, partition: bool,
               skipped: dict | None = None) -> RunDesign:
    """The design a predictions file is checked against, from the run's dataset, folds and split.

    ``skipped`` holds the segments the run dropped as unreadable; a score rendering the run leaves out
    (``--exclude-score``) is recognised by its player.
    """
    ids = dataset.meta["sample_id"].to_numpy()
    left_out = {str(s): f"skipped: {why}" for s, why in (skipped or {}).items()}
    return RunDesign(sample_ids=ids, left_out=left_out, unlabelled=set(dataset.unlabelled),
                     excluded_players=() if dataset.include_score else SCORE_PLAYERS,
                     target_names=list(dataset.target_names), folds=folds, validation=validation, split=split,
                     partition=partition, data_hash=dataset.content_hash(),
                     fold_table=Folds.from_indices(ids, None, folds))


def _player(stem: str) -> str | None:
    try:
        return str(parse_segment_name(stem)["player"])
    except DataError:
        return None


#: What a model name may be made of (a CLI token; ':' marks class paths, ',' separates lists).
NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.+-]*$")


def add_imports(models: list[str], variants: dict, predictions: dict[str, str | os.PathLike]
                ) -> tuple[list[str], dict]:
    """``models`` and ``variants`` with each predictions file added as a model of the ``imported`` family.

    Parameters
    ----------
    predictions : dict NAME -> FILE
        The name each file is imported as (``--predictions NAME=FILE``).

    Returns
    -------
    (models, variants)
        New objects: NAME appended to the models, ``{"model": "imported", "params": {"path", "sha256"}}``
        as its variant (the file's absolute path and content hash, which the manifest keeps).

    Raises
    ------
    ConfigError
        A name that is not a plain token, is a registered model or another model of the run, or a file that
        does not exist.
    """
    models, variants = list(models), dict(variants)
    for name, path in predictions.items():
        where = f"--predictions {name}={path}"
        if not isinstance(name, str) or not NAME.match(name):
            raise ConfigError(f"{where}: {name!r} is not a model name; use letters, digits and _ . + - "
                              "(e.g. muq_probe=preds.csv)")
        if name in MODELS:
            raise ConfigError(f"{where}: {name!r} is a registered model; import the file under a name of its own, "
                              f"e.g. {name}_ext")
        if name in variants or name in models:
            raise ConfigError(f"{where}: the run already has a model {name!r}; give each import a name of its own")
        variants[name] = {"model": "imported", "params": file_record(path)}
        models.append(name)
    return models, variants


def parse_assignments(items: list[str] | None, flag: str = "--predictions") -> dict[str, str]:
    """``["NAME=FILE", ...]`` as ``{NAME: FILE}``.

    Raises
    ------
    ConfigError
        An item without ``=``, an empty side, a name given twice.
    """
    out: dict[str, str] = {}
    for item in items or []:
        name, sep, path = str(item).partition("=")
        name, path = name.strip(), path.strip()
        if not sep or not name or not path:
            raise ConfigError(f"{flag} {item!r}: expected NAME=FILE, e.g. {flag} muq_probe=muq_preds.csv")
        if name in out:
            raise ConfigError(f"{flag}: {name!r} is given twice; import each file under a name of its own")
        out[name] = path
    return out


def file_record(path: str | os.PathLike) -> dict:
    """``{"path": absolute path, "sha256": ...}`` of a predictions file given on the command line.

    Raises
    ------
    ConfigError
        The file does not exist.
    """
    p = Path(path).expanduser()
    if not p.is_file():
        raise ConfigError(f"--predictions: {str(path)!r} is not a file; give NAME=FILE with a CSV or Parquet file")
    return {"path": str(p.resolve()), "sha256": file_sha256(p)}


def _row(frame: pd.DataFrame, mask) -> int:
    """1-based data row (the header not counted) of the first row where ``mask`` holds."""
    return int(np.flatnonzero(np.asarray(mask))[0]) + 1


def _integers(frame: pd.DataFrame, column: str, where: str) -> np.ndarray:
    values = pd.to_numeric(frame[column], errors="coerce").to_numpy(dtype=float)
    bad = ~np.isfinite(values) | (values != np.round(values))
    if bad.any():
        i = _row(frame, bad)
        raise ConfigError(f"{where} row {i}: {column} = {frame[column].iloc[i - 1]!r} is not an integer; "
                          f"every {column} is a whole number")
    return values.astype(int)


def check_predictions(name: str, path: str | os.PathLike, design: RunDesign, *,
                      sha256: str | None = None) -> ImportedFile:
    """Read a predictions file and check it against the run's design (see the module's list).

    Parameters
    ----------
    name : str
        The model name the file is imported as.
    path : path
    design : RunDesign
    sha256 : str, optional
        The file's hash when the run started (a resume): a changed file is refused.

    Returns
    -------
    ImportedFile

    Raises
    ------
    ConfigError
        The first problem, in one line naming the file, the row and what to do.
    """
    path = Path(path)
    where = f"predictions {name!r} ({path})"
    if not path.is_file():
        raise ConfigError(f"{where}: the file does not exist; give the file the predictions were written to")
    digest = file_sha256(path)
    if sha256 is not None and digest != sha256:
        raise ConfigError(f"{where}: the file changed since the run started (sha256 {sha256[:12]} -> {digest[:12]}); "
                          "its finished jobs scored the old one: restore it or start a new run")
    frame = read_table(path)
    missing = [c for c in REQUIRED if c not in frame.columns]
    if missing:
        raise ConfigError(f"{where}: no column {', '.join(map(repr, missing))} (columns: {', '.join(frame.columns)}); "
                          "a predictions file is long: sample_id, target, y_pred, seed, fold (docs/formats.md)")
    _check_sidecar(where, path, design, frame)
    seeds = sorted(design.folds)
    role = frame["role"].astype(str).to_numpy() if "role" in frame.columns else np.full(len(frame), "test")
    bad = ~np.isin(role, ROLES)
    if bad.any():
        i = _row(frame, bad)
        raise ConfigError(f"{where} row {i}: role = {role[i - 1]!r}; use 'test' or 'validation' (or no role column)")
    ids = frame["sample_id"].to_numpy(dtype=object)
    _check_ids(where, frame, ids, design)
    targets = frame["target"].astype(str).to_numpy()
    unknown = ~np.isin(targets, design.target_names)
    if unknown.any():
        i = _row(frame, unknown)
        close = difflib.get_close_matches(targets[i - 1].lower(), design.target_names, n=1, cutoff=0.6)
        hint = f"; did you mean {close[0]!r}?" if close else f" (the ratings: {', '.join(design.target_names)})"
        raise ConfigError(f"{where} row {i}: target {targets[i - 1]!r} is not one of the dataset's ratings{hint}")
    y = pd.to_numeric(frame["y_pred"], errors="coerce").to_numpy(dtype=float)
    bad = ~np.isfinite(y)
    if bad.any():
        i = _row(frame, bad)
        raise ConfigError(f"{where} row {i}: y_pred = {frame['y_pred'].iloc[i - 1]!r} is not a finite number; "
                          "every prediction must be finite (no NaN, no inf)")
    seed, fold = _seeds_and_folds(where, frame, ids, design, role)
    out_seeds = sorted(set(seed.tolist()) - set(seeds))
    if out_seeds:
        i = _row(frame, seed == out_seeds[0])
        raise ConfigError(f"{where} row {i}: seed {out_seeds[0]} is not a seed of this run (seeds "
                          f"{','.join(map(str, seeds))}); drop its rows or run with --seeds that include it")
    test = role == "test"
    blocks = _test_blocks(where, frame, ids[test], targets[test], seed[test], fold[test], y[test], design,
                          np.flatnonzero(test))
    _check_validation_rows(where, frame, ids, targets, seed, fold, role, design)
    return ImportedFile(name=name, path=str(path.resolve()), sha256=digest, blocks=blocks, n_rows=len(frame),
                        n_validation=int((~test).sum()))


def _check_sidecar(where: str, path: Path, design: RunDesign, frame: pd.DataFrame) -> None:
    meta = read_sidecar(path)
    if meta is None:
        return
    side = sidecar_path(path)
    split = meta.get("split", {})
    split_name = split.get("name") if isinstance(split, dict) else split
    if split_name and split_name != design.split:
        raise ConfigError(f"{where}: its sidecar {side.name} says split {split_name!r}, the run's is {design.split!r}; "
                          "predict the run's folds (benchmark folds export --split ...) or run that split")
    data = meta.get("data_sha256")
    if data and data != design.data_hash:
        raise ConfigError(f"{where}: its sidecar {side.name} has data sha256 {str(data)[:12]}, the run's data is "
                          f"{design.data_hash[:12]}; the predictions were made on other data (or another "
                          "--exclude-score): export the folds again from this data")
    fold_hash = meta.get("fold_hash")
    if fold_hash:
        seeds = meta.get("seeds") or sorted(design.folds)
        try:
            seeds = [int(s) for s in seeds]
        except (TypeError, ValueError):
            raise ConfigError(f"{where}: its sidecar {side.name} has seeds {seeds!r}; expected a list of integers") from None
        absent = [s for s in seeds if s not in design.folds]
        if absent:
            raise ConfigError(f"{where}: its sidecar {side.name} is for seeds {','.join(map(str, seeds))}, the run has "
                              f"no seed {absent[0]}; run with --seeds {','.join(map(str, seeds))}")
        ours = design.fold_table.assignment_hash(seeds)
        if fold_hash != ours:
            raise ConfigError(f"{where}: its sidecar {side.name} has fold hash {str(fold_hash)[:12]}, the run's folds "
                              f"(seeds {','.join(map(str, seeds))}) hash to {ours[:12]}; the predictions were made on "
                              "other folds: export the run's folds (benchmark folds export) and predict those")


def _check_ids(where: str, frame: pd.DataFrame, ids: np.ndarray, design: RunDesign) -> None:
    nulls = pd.isna(frame["sample_id"]).to_numpy()
    if nulls.any():
        raise ConfigError(f"{where} row {_row(frame, nulls)}: sample_id is empty; every row names its segment")
    in_run = np.isin(ids, design.sample_ids)
    if in_run.all():
        return
    i = _row(frame, ~in_run)
    sid = ids[i - 1]
    if sid in design.unlabelled:
        why = "is not labelled (PercePiano has no ratings for it)"
    elif sid in design.left_out:
        why = f"is not in this run ({design.left_out[sid]})"
    elif _player(str(sid)) in design.excluded_players:
        why = "is not in this run (a score rendering, left out by --exclude-score)"
    else:
        close = difflib.get_close_matches(str(sid), [str(s) for s in design.sample_ids], n=1, cutoff=0.8)
        why = "is not a segment of the dataset" + (f"; did you mean {close[0]!r}?" if close else "")
    raise ConfigError(f"{where} row {i}: sample_id {sid!r} {why}; predict the run's segments only "
                      "(benchmark folds export lists them)")


def _test_folds(design: RunDesign) -> dict[int, dict[str, list[int]]]:
    """seed -> sample id -> the folds whose test set holds it."""
    out: dict[int, dict[str, list[int]]] = {}
    for s, pairs in design.folds.items():
        where: dict[str, list[int]] = {}
        for k, (_, te) in enumerate(pairs):
            for sid in design.sample_ids[te]:
                where.setdefault(sid, []).append(k)
        out[s] = where
    return out


def _seeds_and_folds(where: str, frame: pd.DataFrame, ids: np.ndarray, design: RunDesign,
                     role: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The rows' seeds and folds: the file's, or (one seed, every segment tested once) the harness's."""
    has = [c for c in ("seed", "fold") if c in frame.columns]
    seeds = sorted(design.folds)
    if len(has) == 2:
        return _integers(frame, "seed", where), _integers(frame, "fold", where)
    if has == ["seed"] or has == ["fold"]:
        raise ConfigError(f"{where}: it has a {has[0]} column but no {'fold' if has == ['seed'] else 'seed'} column; "
                          "give both, or neither (one seed, every segment tested once)")
    if len(seeds) != 1 or not design.partition:
        why = f"{len(seeds)} seeds" if len(seeds) != 1 else f"split {design.split!r} tests a segment in several folds"
        raise ConfigError(f"{where}: no seed and fold columns, but the run has {why}; add seed and fold columns "
                          "(benchmark folds export gives each segment's)")
    if (role != "test").any():
        raise ConfigError(f"{where}: validation rows need seed and fold columns; add them")
    tests = _test_folds(design)[seeds[0]]
    return np.full(len(frame), seeds[0]), np.asarray([tests[s][0] for s in ids])


def _test_blocks(where, frame, ids, targets, seed, fold, y, design: RunDesign, rows) -> dict:
    """Every (seed, fold)'s test predictions as (n_test, n_targets); refuses leaks, repeats and gaps."""
    tests = _test_folds(design)
    for s in sorted(set(seed.tolist())):
        n_folds = len(design.folds[s])
        on = seed == s
        out_of_range = on & ((fold < 0) | (fold >= n_folds))
        if out_of_range.any():
            j = np.flatnonzero(out_of_range)[0]
            raise ConfigError(f"{where} row {rows[j] + 1}: fold {int(fold[j])} does not exist (seed {s} has folds 0 "
                              f"to {n_folds - 1} of split {design.split!r}); number the folds as the export does")
        for j in np.flatnonzero(on):
            if int(fold[j]) not in tests[s].get(ids[j], ()):
                i = rows[j] + 1
                ours = tests[s].get(ids[j], [])
                raise ConfigError(
                    f"{where} row {i}: segment {ids[j]!r} is predicted in seed {s} fold {int(fold[j])}, where the "
                    f"harness trains on it (its test fold: {', '.join(map(str, ours)) or 'none'}); a prediction made "
                    "with the segment in training leaks: predict each segment from the fold that holds it out")
    keys = pd.DataFrame({"seed": seed, "fold": fold, "sample_id": ids, "target": targets})
    dup = keys.duplicated(keep=False).to_numpy()
    if dup.any():
        k = keys.iloc[np.flatnonzero(dup)[0]]
        same = np.flatnonzero((keys == k).all(axis=1).to_numpy())
        first, second = rows[same[0]] + 1, rows[same[1]] + 1
        raise ConfigError(f"{where} rows {first} and {second} both predict seed {k.seed}, fold {k.fold}, segment "
                          f"{k.sample_id!r}, target {k.target!r}; keep one prediction per (seed, fold, segment, target)")
    names = list(design.target_names)
    col = {t: j for j, t in enumerate(names)}
    blocks = {}
    frame_keys = {(int(a), int(b), c, d): v for a, b, c, d, v in zip(seed, fold, ids, targets, y, strict=True)}
    for s in sorted(design.folds):
        for k, (_, te) in enumerate(design.folds[s]):
            block = np.full((len(te), len(names)), np.nan)
            for r, sid in enumerate(design.sample_ids[te]):
                for t in names:
                    v = frame_keys.get((s, k, sid, t))
                    if v is None:
                        n_missing = _count_missing(frame_keys, design, names)
                        more = f" (and {n_missing - 1} more)" if n_missing > 1 else ""
                        raise ConfigError(f"{where}: no prediction for seed {s}, fold {k}, segment {sid!r}, target "
                                          f"{t!r}{more}; every test segment of every fold of every seed of the run "
                                          "needs all its ratings")
                    block[r, col[t]] = v
            blocks[(s, k)] = block
    return blocks


def _count_missing(frame_keys: dict, design: RunDesign, names: list[str]) -> int:
    return sum((s, k, sid, t) not in frame_keys for s, pairs in design.folds.items() for k, (_, te) in enumerate(pairs)
               for sid in design.sample_ids[te] for t in names)


def _check_validation_rows(where, frame, ids, targets, seed, fold, role, design: RunDesign) -> None:
    """Validation rows: only where the split has validation folds, and only for a fold's validation segments."""
    rows = np.flatnonzero(role == "validation")
    if not len(rows):
        return
    if not design.validation:
        raise ConfigError(f"{where} row {rows[0] + 1}: role 'validation', but split {design.split!r} has no "
                          "validation folds; drop those rows (or the role column)")
    members = {(s, k): set(design.sample_ids[v]) for s, vs in design.validation.items() for k, v in enumerate(vs)}
    for j in rows:
        s, k = int(seed[j]), int(fold[j])
        if ids[j] not in members.get((s, k), ()):
            raise ConfigError(f"{where} row {j + 1}: segment {ids[j]!r} is not in the validation set of seed {s} "
                              f"fold {k}; give validation predictions of each fold's validation segments only")
    keys = pd.DataFrame({"seed": seed[rows], "fold": fold[rows], "sample_id": ids[rows], "target": targets[rows]})
    dup = keys.duplicated().to_numpy()
    if dup.any():
        raise ConfigError(f"{where} row {rows[np.flatnonzero(dup)[0]] + 1}: a second validation prediction of the "
                          "same (seed, fold, segment, target); keep one")
