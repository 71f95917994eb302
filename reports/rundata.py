"""A run directory read once for reporting: completeness, design, prediction stacks, per-fold scores.

Every report computes from one :class:`RunData`, and the definitions every
table shares live here, once:

* a model's seed counts only when all its folds finished ``ok``
  (:meth:`RunData.complete_seeds`);
* a model's predictions as arrays (:meth:`RunData.stack`, the one way to
  stack them), and whether it predicts a constant within every fold
  (:meth:`RunData.constant`: its correlation is then undefined);
* the fold-level scores, with seeds averaged within each fold when they do
  not change the folds (:meth:`RunData.fold_level`);
* the run's statistical design: what a unit of the split is and how many
  there are (:attr:`RunData.design`, :func:`unit_labels`);
* :func:`check_groups` verifies from ``folds.parquet`` that no group of the
  split's grouping sits on both sides of a fold.

A quantity a report needs twice (a pooled metric's bootstrap, a model pair's
comparison) is computed once and kept on the run (:meth:`RunData.memo`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np
import pandas as pd

from benchmark.dataset import parse_segment_name
from benchmark.errors import ConfigError, DataError
from benchmark.store import Folds, RunContents, RunStore

#: What a resampled group is called, by the split's group column.
GROUP_LABELS = {"player": "performers", "piece": "pieces", "excerpt": "excerpts", "composer": "composers",
                "performer fold id": "performer fold ids", "passage": "passages", "performance": "performances"}
#: Prediction columns holding the dataset meta of a group column.
PRED_GROUP_COLUMNS = {"player": "performer", "piece": "piece"}
#: Below this many units a group-level test or CI is not printed as a number.
FEW_GROUPS = 10
#: What a unit is called, by the split's group column.
UNIT_NAMES = {"player": "performers", "performer": "performers", "piece": "pieces", "excerpt": "excerpts",
              "passage": "passages", "composer": "composers", "performance": "performances"}
#: A prediction is constant within a fold when its spread is below this share of its largest magnitude.
CONSTANT_TOL = 1e-12


def too_few(n: int) -> str:
    """The text a cell shows instead of a group-level number over ``n`` units."""
    return f"too few groups ({n})"


@dataclass(frozen=True)
class Design:
    """How a run's split generalises, read from its manifest and folds.

    Attributes
    ----------
    split : str
    unit : str
        What a test resamples/permutes: "performers", "pieces", "passages", "segments", ...
    seeded : bool
        Whether the seed changes the folds (then seeds are CV repeats).
    partition : bool
        Whether each seed's test folds cover every sample once (False: fixed test set).
    n_units : int
        Units in the scored segments (test-set units for a fixed test set).
    """

    split: str
    unit: str
    seeded: bool
    partition: bool
    n_units: int

    @property
    def few(self) -> bool:
        return self.n_units < FEW_GROUPS

    @property
    def fold_level(self) -> str:
        """How (seed, fold) scores become the units of the fold-level tests."""
        if not self.partition:
            return "fixed test set: fold-averaged predictions, no fold-level test"
        if self.seeded:
            return "folds x seeds (seeds change the folds: repeated-CV correction)"
        return "folds, seeds averaged within each fold (seeds do not change the folds)"


def stack_predictions(preds: pd.DataFrame, targets: list[str],
                      partition: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """One model's tidy predictions of some seeds as arrays (see :meth:`RunData.stack`).

    Returns
    -------
    sample_ids : ndarray (n_samples,)
    y_true : ndarray (n_samples, n_targets)
    stack : ndarray (n_replicates, n_samples, n_targets)
        One replicate per seed (``partition``) or per (seed, fold) otherwise.
    rep_seed : ndarray (n_replicates,)
    """
    keys = ["seed"] if partition else ["seed", "fold"]
    wide = preds.pivot_table(index=[*keys, "sample_id"], columns="target", values="y_pred", aggfunc="first")[targets]
    truth = preds.drop_duplicates(["sample_id", "target"]).pivot(index="sample_id", columns="target", values="y_true")
    reps = wide.index.droplevel("sample_id").unique()
    ids = truth.index.to_numpy()
    # Replicates must cover the same samples; an incomplete seed is dropped by the caller.
    stack = np.stack([wide.loc[r].reindex(ids).to_numpy() for r in reps])
    rep_seed = np.asarray([r[0] if isinstance(r, tuple) else r for r in reps])
    return ids, truth[targets].to_numpy(), stack, rep_seed


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
    fold_ids : dict of int -> list of int, optional
        The fold ids of each seed this view reports (default ``0 .. n_folds - 1``; fewer in the view of
        a partial run's finished folds, :func:`finished_view`).
    unread : list of str
        Jobs whose files exist but do not read back (torn or damaged), left out.
    partial_note : str
        Set on a :func:`finished_view`: what it leaves out, for every rendering of the report.
    base : RunData, optional
        The whole run a :func:`finished_view` was taken from (its job counts are the ones shown).
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
    fold_ids: dict[int, list[int]] | None = None
    unread: list[str] = field(default_factory=list)
    partial_note: str = ""
    base: RunData | None = field(default=None, repr=False)
    _memo: dict = field(default_factory=dict, repr=False)

    @classmethod
    def from_contents(cls, run_dir: str | Path, contents: RunContents) -> RunData:
        """A :class:`RunData` of what :meth:`benchmark.store.RunStore.read` (or ``collect``) returned."""
        manifest = contents.manifest
        cfg = manifest["config"]
        return cls(
            run_dir=Path(run_dir),
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
            unread=list(getattr(contents, "unread", [])),
        )

    def memo(self, key: tuple, compute):
        """``compute()`` the first time ``key`` is asked for, the stored value after: a quantity two
        tables (or a table and a figure) share is computed once."""
        if key not in self._memo:
            self._memo[key] = compute()
        return self._memo[key]

    @property
    def run_id(self) -> str:
        return str(self.manifest.get("run_id", self.run_dir.name))

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
        return sum(len(self.planned(s)) for s in self.seeds)

    def planned(self, seed: int) -> list[int]:
        """The fold ids of ``seed`` this run (or view) reports."""
        if self.fold_ids is not None:
            return list(self.fold_ids.get(seed, []))
        return list(range(self.n_folds[seed]))

    def ok_units(self, model: str) -> set[tuple[int, int]]:
        """(seed, fold) jobs of ``model`` whose rows are all ``ok``."""
        def compute():
            r = self.rows[self.rows["model"] == model]
            status = r.groupby(["seed", "fold"])["status"].agg(lambda s: bool((s == "ok").all()))
            return {(int(s), int(f)) for (s, f), ok in status.items() if ok}

        return set(self.memo(("ok_units", model), compute))

    def complete_seeds(self, model: str) -> list[int]:
        """The seeds in which every fold of ``model`` finished ``ok``: the only ones any number uses."""
        def compute():
            units = self.ok_units(model)
            return [s for s in self.seeds if self.planned(s) and all((s, k) in units for k in self.planned(s))]

        return list(self.memo(("complete_seeds", model), compute))

    def missing(self, model: str) -> list[tuple[int, int]]:
        """The planned (seed, fold) jobs of ``model`` that did not finish ``ok``."""
        units = self.ok_units(model)
        return [(s, k) for s in self.seeds for k in self.planned(s) if (s, k) not in units]

    def jobs(self, model: str) -> tuple[int, int]:
        """(finished ``ok``, planned) reported jobs of ``model`` in the whole run (a view's base)."""
        run = self.base if self.base is not None else self
        return len(run.ok_units(model)), run.n_expected

    def status(self, model: str) -> str:
        """``"complete"`` or ``"partial: k of n folds"`` (k finished ``ok``, in the whole run)."""
        k, n = self.jobs(model)
        return "complete" if k == n else f"partial: {k} of {n} folds"

    def stack(self, model: str, seeds: list[int]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Predictions of ``model`` over ``seeds`` (all complete) as arrays: the one way to stack them.

        Returns
        -------
        ids : ndarray (n_samples,)
            Sorted sample ids.
        y_true : ndarray (n_samples, n_targets)
        stack : ndarray (n_replicates, n_samples, n_targets)
            One replicate per seed, or per (seed, fold) for a non-partition split.
        rep_seed : ndarray (n_replicates,)
            The seed of each replicate.
        """
        def compute():
            ids = y_true = None
            parts, rep_seed = [], []
            for s in seeds:
                p = self.preds[(self.preds["model"] == model) & (self.preds["seed"] == s)]
                i, y, st, _ = stack_predictions(p, self.targets, self.partition)
                if ids is None:
                    ids, y_true = i, y
                elif not np.array_equal(i, ids):
                    raise DataError(f"model {model!r}: seeds {seeds[0]} and {s} predict different segments; "
                                    "the run directory is inconsistent, rerun it")
                parts.append(st)
                rep_seed += [s] * len(st)
            return ids, y_true, np.concatenate(parts), np.asarray(rep_seed)

        return self.memo(("stack", model, tuple(seeds)), compute)

    def meta(self, ids: np.ndarray) -> pd.DataFrame:
        """``performer`` and ``piece`` of each sample id (as the predictions store them), indexed by id."""
        table = self.memo(("meta",), lambda: self.preds.drop_duplicates("sample_id").set_index("sample_id")[
            ["performer", "piece"]])
        return table.loc[ids]

    def constant(self, model: str, seeds: list[int]) -> bool:
        """Whether ``model`` predicts a constant within every (seed, fold, target): its correlation is undefined.

        Pooling such predictions across folds gives a pooled r that reflects only
        how the constant moves between folds (the leave-one-out mean artefact),
        not any prediction, so it is reported as undefined.
        """
        def compute():
            p = self.preds[(self.preds["model"] == model) & self.preds["seed"].isin(seeds)]
            if not len(p):
                return False
            spread = p.groupby(["seed", "fold", "target"])["y_pred"].agg(lambda v: float(np.ptp(v.to_numpy())))
            return bool((spread <= CONSTANT_TOL * max(1.0, float(p["y_pred"].abs().max()))).all())

        return self.memo(("constant", model, tuple(seeds)), compute)

    def fold_level(self, model: str, metric: str, seeds: list[int]) -> pd.Series:
        """Fold-level scores of ``model`` (the target-averaged per-fold metric): one per (seed, fold), or,
        when the seeds do not change the folds, one per fold with the seeds averaged within it (they are
        not replicates)."""
        f = fold_scores(self, model, metric, seeds)["value"]
        if not self.design.seeded and self.partition:
            f = f.groupby(level="fold").mean()
        return f

    @cached_property
    def design(self) -> Design:
        """The run's :class:`Design`: its unit, whether seeds change the folds, how many units it scored."""
        n = 0
        if len(self.preds):
            n = len(np.unique(unit_labels(self, self.preds["sample_id"].unique())))
        return Design(self.split, unit_name(self), _seeded(self), self.partition, n)


def _seeded(run: RunData) -> bool:
    """The manifest's ``seeded`` flag; for an older manifest, whether any two seeds' folds differ."""
    flag = run.manifest.get("split", {}).get("seeded")
    if flag is not None:
        return bool(flag)
    if run.folds is None or len(run.seeds) < 2:
        return False
    first = run.folds.assignment(run.seeds[0]).drop(columns="seed")
    return any(not first.equals(run.folds.assignment(s).drop(columns="seed")) for s in run.seeds[1:])


def _stored_groups(run: RunData) -> bool:
    return run.partition and run.folds is not None and run.folds.restrict(run.seeds).has_groups


def unit_labels(run: RunData, ids) -> np.ndarray:
    """The unit (group label) of each sample id, from the run's folds or the split's group column.

    A partition split's own labels are stored in ``folds.parquet``; a fixed test
    set's folds are labelled by fold id, so its units come from the split's
    group column (the performer). An ungrouped split's unit is the segment.

    Raises
    ------
    DataError
        A sample whose unit cannot be told.
    """
    ids = np.asarray(ids)
    if _stored_groups(run):
        f = run.folds.frame.drop_duplicates("sample_id").set_index("sample_id")["group"]
        missing = ~pd.Index(ids).isin(f.index)
        if missing.any():
            raise DataError(f"segment {ids[missing][0]!r} is not in the run's folds; the run directory is damaged")
        return f.loc[ids].astype(str).to_numpy()
    if run.group_column is None:
        return ids.astype(str)
    try:
        return group_labels(run.preds, ids, run.group_column)
    except DataError:
        if run.folds is None:
            # The split's own groups (passages, performances...) are stored in folds.parquet only.
            raise DataError(f"run {run.run_id} has no folds.parquet, where the split's {run.group_column!r} "
                            f"groups are stored; the run directory is damaged: restore "
                            f"{run.run_dir / 'folds.parquet'} or rerun the run") from None
        raise


def unit_name(run: RunData) -> str:
    """What one unit of the run's split is called ("performers", "passages", "segments", ...)."""
    if run.group_column is None:
        return "segments"
    if _stored_groups(run):
        label = run.manifest.get("split", {}).get("group_label") or run.group_column
        return UNIT_NAMES.get(label, UNIT_NAMES.get(run.group_column, f"{label} groups"))
    return UNIT_NAMES.get(run.group_column, f"{run.group_column} groups")


def run_design(run: RunData) -> Design:
    """:attr:`RunData.design` (the run's :class:`Design`, derived once)."""
    return run.design


def _units_text(units) -> str:
    by_seed: dict[int, list[int]] = {}
    for s, k in sorted(units):
        by_seed.setdefault(s, []).append(k)
    return "; ".join(f"seed {s} fold{'s' if len(ks) > 1 else ''} {', '.join(map(str, ks))}"
                     for s, ks in by_seed.items())


def missing_note(run: RunData) -> list[str]:
    """One line per model with unfinished folds (which ones) and per unreadable job, and how to finish."""
    lines = []
    for m in run.models:
        gone = run.missing(m)
        if gone:
            lines.append(f"{m}: {len(gone)} of {run.n_expected} folds not finished ({_units_text(gone)})")
    if run.unread:
        lines.append(f"unreadable job files (torn or damaged), left out: {', '.join(run.unread)}")
    if lines:
        lines.append(f"finish the run with: benchmark run --resume {run.run_dir}")
    return lines


def finished_view(run: RunData) -> RunData:
    """The part of a partial run that can be reported: the (seed, fold) units every model finished.

    A run in which every model has a complete seed is returned as it is (its
    tables use complete seeds only and mark partial models). Otherwise a model
    without one would get no number at all: the view keeps, in one seed (the
    one with most such folds), the folds that every model with a finished fold
    finished, so each model is scored on the same folds and every test pairs
    only folds both models have; pooled metrics then cover those folds'
    segments only. ``partial_note`` says so, and names the missing folds.

    Raises
    ------
    ConfigError
        No unit is finished by every model that has a finished fold.
    """
    if all(run.complete_seeds(m) for m in run.models):
        return run
    started = [m for m in run.models if run.ok_units(m)]
    common = set.intersection(*(run.ok_units(m) for m in started)) if started else set()
    if not common:
        raise ConfigError(f"run {run.run_id} is unfinished and no fold is finished by every model ("
                          + "; ".join(missing_note(run)) + ")")
    # One seed: a pooled metric needs the same segments in every seed it averages. The seed whose
    # folds every model finished most often (the first on a tie).
    counts = {s: sum(1 for t, _ in common if t == s) for s in run.seeds}
    seed = max(run.seeds, key=lambda s: counts[s])
    common = {(t, k) for t, k in common if t == seed}
    fold_ids = {seed: sorted(k for _, k in common)}
    seeds = [seed]
    keep_rows = [(int(s), int(k)) in common for s, k in zip(run.rows["seed"], run.rows["fold"], strict=True)]
    keep_preds = [(int(s), int(k)) in common for s, k in zip(run.preds["seed"], run.preds["fold"], strict=True)]
    folds = None
    if run.folds is not None:
        f = run.folds.frame
        folds = Folds(f[[(int(s), int(k)) in common for s, k in zip(f["seed"], f["fold"], strict=True)]])
    n_units = sum(len(v) for v in fold_ids.values())
    idle = [m for m in run.models if m not in started]
    note = (f"PARTIAL RUN: every number is computed on the {n_units} of {run.n_expected} (seed, fold) units that "
            f"every model finished ({_units_text(common)}); pooled metrics cover those folds' segments only, "
            "and tests pair only those folds. Missing: " + "; ".join(missing_note(run))
            + (f". Models without any finished fold are left out: {', '.join(idle)}" if idle else "") + ".")
    view = RunData(run.run_dir, run.manifest, run.rows[keep_rows].reset_index(drop=True),
                   run.preds[keep_preds].reset_index(drop=True), [m for m in run.models if m in started],
                   run.targets, seeds, {s: run.n_folds[s] for s in seeds}, run.partition, run.group_column,
                   folds, {s: fold_ids[s] for s in seeds}, list(run.unread), note, run)
    return view


def group_labels(preds: pd.DataFrame, ids, column: str) -> np.ndarray:
    """The ``column`` group of each sample id, from the predictions' meta or the segment name.

    Raises
    ------
    DataError
        A sample whose group cannot be told.
    """
    ids = np.asarray(ids)
    known: dict[str, str] = {}
    pcol = PRED_GROUP_COLUMNS.get(column)
    if pcol is not None and pcol in preds.columns and len(preds):
        m = preds.drop_duplicates("sample_id")
        known = dict(zip(m["sample_id"].astype(str), m[pcol].astype(str), strict=True))
    out = []
    for sid in map(str, ids):
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
    return RunData.from_contents(run, RunStore(run).read())


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

