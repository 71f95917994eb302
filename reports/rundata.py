"""A run directory read once for reporting: completeness, groups, per-fold scores, leakage check.

The guards of every report live here: a model's seed counts only when all its
folds finished ``ok`` (:meth:`RunData.complete_seeds`), and
:func:`check_groups` verifies from ``folds.parquet`` that no group of the
split's grouping sits on both sides of a fold.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from benchmark.errors import ConfigError, DataError
from benchmark.store import Folds, RunStore
from reports.summary import prediction_stack

#: What a resampled group is called, by the split's group column.
GROUP_LABELS = {"player": "performers", "piece": "pieces", "excerpt": "excerpts", "composer": "composers",
                "performer fold id": "performer fold ids", "passage": "passages", "performance": "performances"}
#: Prediction columns holding the dataset meta of a group column.
PRED_GROUP_COLUMNS = {"player": "performer", "piece": "piece"}


@dataclass
class RunData:
    """A run directory read once: the inputs of every table of a report.

    Attributes
    ----------
    run_dir : Path
    manifest : dict
    rows : DataFrame
        Tidy per-fold metric rows of the finished jobs.
    preds : DataFrame
        Out-of-fold predictions of the ``ok`` jobs.
    models, targets : list of str
    seeds : list of int
    n_folds : dict of int -> int
        Planned folds per seed.
    partition : bool
        Whether the test folds of a seed cover every sample once.
    group_column : str or None
        The split's grouping (a dataset meta column).
    folds : benchmark.store.Folds or None
        Train and test ids of every fold (None for a run without ``folds.parquet``).
    """

    run_dir: Path
    manifest: dict
    rows: pd.DataFrame
    preds: pd.DataFrame
    models: list[str]
    targets: list[str]
    seeds: list[int]
    n_folds: dict[int, int]
    partition: bool
    group_column: str | None
    folds: Folds | None = None
    _stacks: dict = field(default_factory=dict, repr=False)

    @property
    def split(self) -> str:
        return str(self.manifest["config"]["split"])

    @property
    def cluster(self) -> str | None:
        """Label of the cluster-bootstrap unit, or None for an ungrouped split."""
        if self.group_column is None:
            return None
        return GROUP_LABELS.get(self.group_column, f"{self.group_column} groups")

    @property
    def n_expected(self) -> int:
        return sum(self.n_folds.values())

    def ok_units(self, model: str) -> set[tuple[int, int]]:
        """(seed, fold) jobs of ``model`` whose rows are all ``ok``."""
        r = self.rows[self.rows["model"] == model]
        status = r.groupby(["seed", "fold"])["status"].agg(lambda s: bool((s == "ok").all()))
        return {(int(s), int(f)) for (s, f), ok in status.items() if ok}

    def complete_seeds(self, model: str) -> list[int]:
        units = self.ok_units(model)
        return [s for s in self.seeds if all((s, k) in units for k in range(self.n_folds[s]))]

    def status(self, model: str) -> str:
        """``"complete"`` or ``"partial: k of n folds"`` (k finished ``ok``)."""
        k = len(self.ok_units(model))
        return "complete" if k == self.n_expected else f"partial: {k} of {self.n_expected} folds"

    def stack(self, model: str, seeds: list[int]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Predictions of ``model`` over ``seeds`` (all complete) as arrays.

        Returns
        -------
        ids : ndarray (n_samples,)
        y_true : ndarray (n_samples, n_targets)
        stack : ndarray (n_replicates, n_samples, n_targets)
            One replicate per seed, or per (seed, fold) for a non-partition split.
        rep_seed : ndarray (n_replicates,)
            The seed of each replicate.
        """
        key = (model, tuple(seeds))
        if key not in self._stacks:
            ids = y_true = None
            parts, rep_seed = [], []
            for s in seeds:
                p = self.preds[(self.preds["model"] == model) & (self.preds["seed"] == s)]
                i, y, st, _ = prediction_stack(p, model, self.targets, self.partition)
                if ids is None:
                    ids, y_true = i, y
                elif not np.array_equal(i, ids):
                    raise DataError(f"model {model!r}: seeds {seeds[0]} and {s} predict different segments; "
                                    "the run directory is inconsistent, rerun it")
                parts.append(st)
                rep_seed += [s] * len(st)
            self._stacks[key] = (ids, y_true, np.concatenate(parts), np.asarray(rep_seed))
        return self._stacks[key]

    def groups(self, ids: np.ndarray) -> np.ndarray | None:
        """Group label (the split's group column) of each sample id; None when ungrouped."""
        if self.group_column is None:
            return None
        try:
            return group_labels(self.preds, ids, self.group_column)
        except DataError:
            # Passages and performances come from the notes, not the names: use the labels the split stored.
            if self.folds is None or not self.folds.has_groups:
                raise
            stored = dict(zip(self.folds.frame["sample_id"].astype(str), self.folds.frame["group"].astype(str),
                              strict=False))
            if not all(str(i) in stored for i in ids):
                raise
            return np.asarray([stored[str(i)] for i in ids])


def group_labels(preds: pd.DataFrame, ids, column: str) -> np.ndarray:
    """The ``column`` group of each sample id, from the predictions' meta or the segment name.

    Raises
    ------
    DataError
        A sample whose group cannot be told.
    """
    from benchmark.dataset import parse_segment_name

    ids = np.asarray(ids)
    known: dict[str, str] = {}
    pcol = PRED_GROUP_COLUMNS.get(column)
    if pcol is not None and pcol in preds.columns and len(preds):
        m = preds.drop_duplicates("sample_id")
        known = dict(zip(m["sample_id"].astype(str), m[pcol].astype(str), strict=True))
    out = []
    for sid in ids.astype(str):
        if sid not in known:
            try:
                known[sid] = str(parse_segment_name(sid)[column])
            except (DataError, KeyError):
                raise DataError(f"cannot tell the {column!r} of segment {sid!r}: not in the predictions, "
                                "and its name does not follow <piece>_<N>bars_<player>_<segment>") from None
        out.append(known[sid])
    return np.asarray(out)


def load_run_data(run: str | Path | RunData) -> RunData:
    """Read a run directory (or pass a :class:`RunData` through).

    Raises
    ------
    ConfigError
        Not a run directory, or no finished job.
    """
    if isinstance(run, RunData):
        return run
    contents = RunStore(run).read()
    manifest = contents.manifest
    cfg = manifest["config"]
    return RunData(
        run_dir=Path(run),
        manifest=manifest,
        rows=contents.rows,
        preds=contents.preds,
        folds=contents.folds,
        models=list(manifest.get("models") or cfg["models"]),  # the run's names (SoundFont conditions too)
        targets=list(manifest["target_names"]),
        seeds=[int(s) for s in cfg["seeds"]],
        n_folds={int(s): int(n) for s, n in manifest["n_folds"].items()},
        partition=bool(manifest["split"].get("partition", True)),
        group_column=manifest["split"].get("group_column"),
    )


def resolve_baseline(run: RunData, baseline: str | None) -> str:
    """``baseline`` if it is a model of the run; default ``rf`` if present, else the first model.

    Raises
    ------
    ConfigError
        ``baseline`` is not a model of this run.
    """
    if baseline is None:
        return "rf" if "rf" in run.models else run.models[0]
    if baseline not in run.models:
        raise ConfigError(f"baseline {baseline!r} is not a model of this run; use one of {run.models}")
    return baseline


def fold_scores(run: RunData, model: str, metric: str, seeds: list[int], target: str | None = None) -> pd.DataFrame:
    """Per-(seed, fold) score of ``model``: the target-averaged metric, or one target's.

    Returns
    -------
    DataFrame indexed by (seed, fold) with ``value``, ``n_train``, ``n_test``.
    """
    r = run.rows
    r = r[(r["model"] == model) & (r["status"] == "ok") & (r["metric"] == metric) & r["seed"].isin(seeds)]
    if target is not None:
        r = r[r["target"] == target]
    # pandas' mean skips NaN: a constant-prediction target has no r and drops out of the average.
    return r.groupby(["seed", "fold"]).agg(value=("value", "mean"), n_train=("n_train", "first"),
                                           n_test=("n_test", "first"))




@dataclass(frozen=True)
class GroupCheck:
    """Outcome of :func:`check_groups`.

    Attributes
    ----------
    status : str
        ``"ok"``, ``"violation"``, ``"not applicable"`` (ungrouped split) or
        ``"unchecked"`` (folds or group labels unavailable).
    message : str
        One line for the report.
    violations : DataFrame
        ``seed``, ``fold``, ``group``, ``n_train``, ``n_test``: segments of the
        group on each side; empty unless ``status == "violation"``.
    """

    status: str
    message: str
    violations: pd.DataFrame


def check_groups(run: str | Path | RunData) -> GroupCheck:
    """Check, per seed and fold, that no group of the split's grouping is on both sides.

    Uses the run's folds (:class:`benchmark.store.Folds`: train and test ids
    of every fold, with the split's own group labels when the runner stored
    them), else each segment's group from the dataset meta stored with the
    predictions (performer, piece), or from its name for other groupings.

    Returns
    -------
    GroupCheck
    """
    run = load_run_data(run)
    empty = pd.DataFrame(columns=["seed", "fold", "group", "n_train", "n_test"])
    column = run.group_column
    if column is None:
        return GroupCheck("not applicable", f"split {run.split!r} is not grouped: performers and pieces may be "
                          "on both sides of a fold by design", empty)
    if run.folds is None:
        return GroupCheck("unchecked", f"cannot check the grouping: {run.run_dir / 'folds.parquet'} is missing",
                          empty)
    restricted = run.folds.restrict(run.seeds)
    folds = restricted.frame
    ids = folds["sample_id"].unique()
    if restricted.has_groups:
        # The runner stored the labels the split itself grouped by (e.g. the
        # paper's performer fold ids for percepiano_performer4).
        labels = dict(zip(folds["sample_id"], folds["group"], strict=True))
        column = run.manifest["split"].get("group_label") or column
    else:
        try:
            labels = dict(zip(ids, group_labels(run.preds, ids, column), strict=True))
        except DataError as exc:
            return GroupCheck("unchecked", f"cannot check the grouping: {exc}", empty)
        folds = folds.assign(group=folds["sample_id"].map(labels))
    counts = folds.groupby(["seed", "fold", "group", "role"]).size().unstack("role", fill_value=0)
    for role in ("train", "test"):
        if role not in counts:
            counts[role] = 0
    both = counts[(counts["train"] > 0) & (counts["test"] > 0)].reset_index()
    unit = GROUP_LABELS.get(column, f"{column} groups")
    n_folds = folds.groupby("seed")["fold"].nunique()
    scope = "; ".join(f"seed {s}: {n} folds" for s, n in n_folds.items())
    if both.empty:
        return GroupCheck("ok", f"ok: no {column} value is on both sides of any fold ({scope}; "
                          f"{len(set(labels.values()))} {unit})", empty)
    both = both.rename(columns={"train": "n_train", "test": "n_test"})[["seed", "fold", "group", "n_train",
                                                                       "n_test"]]
    first = both.iloc[0]
    pairs = both[["seed", "fold"]].drop_duplicates()
    shown = ", ".join(map(str, both[(both["seed"] == first["seed"]) & (both["fold"] == first["fold"])]["group"]))
    return GroupCheck("violation", f"VIOLATION: {len(pairs)} fold(s) have a {column} value on both sides, "
                      f"e.g. seed {first['seed']} fold {first['fold']}: {shown}", both.reset_index(drop=True))

