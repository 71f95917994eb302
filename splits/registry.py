"""The split registry and the one entry point the runner calls, :func:`make_splits`.

Every registered factory returns an object with sklearn's splitter API
(``split(X, y=None, groups=None)``, ``get_n_splits(...)``). A spec's extras say
where its groups come from and what kind of split it is; :func:`split_info`
reports them without building anything.

Besides the registered names, two families take any group column of the
dataset by name (:func:`get_split`): ``group:COLUMN`` leaves one value of
``COLUMN`` out, ``kfold_grouped:COLUMN`` is a grouped K-fold over it,
shuffled by seed. ``lopo`` leaves one value of the performer column out
(the protocol's ``player``), with the reference (deadpan) items as one unit.
"""

from __future__ import annotations

import difflib
import logging
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from benchmark.errors import ConfigError, UnknownNameError
from benchmark.registry import Registry, Spec
from splits.overlap import OVERLAP_COLUMNS, passage_groups, performance_groups
from splits.performer import FOLD_ID_COLUMNS, PerformerFourFold, performer_fold_ids
from splits.splitters import GroupSplitter

logger = logging.getLogger(__name__)

SPLITS = Registry("split")

#: Largest seed sklearn's random generators accept, plus one.
_SEED_LIMIT = 2**32

Folds = list[tuple[np.ndarray, np.ndarray]]


def _column(name: str) -> Callable[[pd.DataFrame], np.ndarray]:
    def groups_from(meta: pd.DataFrame) -> np.ndarray:
        return meta[name].to_numpy()

    return groups_from


def _derived(name: str, compute: Callable[[pd.DataFrame], np.ndarray]) -> Callable[[pd.DataFrame], np.ndarray]:
    """Groups from the column ``name`` when the metadata has it, else computed from the MIDI notes."""

    def groups_from(meta: pd.DataFrame) -> np.ndarray:
        return meta[name].to_numpy() if name in meta.columns else compute(meta)

    return groups_from


#: The two deadpan score renderings; note-identical in 8 excerpts, so a performer split keeps them together.
DEADPAN_PLAYERS: tuple[str, ...] = ("Score", "Score2")
#: The one performer unit both deadpan renderings form.
DEADPAN_UNIT = "Score+Score2"


def performer_units(meta: pd.DataFrame) -> np.ndarray:
    """The performer unit of every row: the player, with the reference (deadpan) items as one unit.

    PercePiano's ``Score`` and ``Score2`` render the same score MIDIs without
    expression and are note-identical in 8 excerpts; as two units, leaving one
    out kept its twin in training (16 test segments with an any-player
    near-duplicate in training). As one unit (:data:`DEADPAN_UNIT`) they are
    held out together, and every grouped inner CV or early-stopping hold-out
    that reads the split's groups keeps them together too. Any dataset's
    reference items (the ``reference`` column) form one unit the same way,
    labelled by their performers joined with ``+`` (``Score+Score2``).

    Parameters
    ----------
    meta : DataFrame, shape (n_samples, ...)
        Needs the ``player`` column; ``reference`` (bool) marks the reference items (without it, the
        players :data:`DEADPAN_PLAYERS` do).

    Returns
    -------
    ndarray of str, shape (n_samples,)
    """
    player = meta["player"].astype(str).to_numpy()
    if "reference" in meta.columns:
        ref = meta["reference"].to_numpy(dtype=bool)
    else:
        ref = np.isin(player, DEADPAN_PLAYERS)
    if not ref.any():
        return player.astype(object)
    players = set(player[ref])
    # PercePiano's deadpan players keep their one label whichever of them a subset holds.
    unit = DEADPAN_UNIT if players <= set(DEADPAN_PLAYERS) else "+".join(sorted(players))
    return np.where(ref, unit, player).astype(object)


def _leave_one_group_out(name: str, column: str) -> GroupSplitter:
    from sklearn.model_selection import LeaveOneGroupOut

    return GroupSplitter(LeaveOneGroupOut(), column=column, name=name)


def _register_shuffled_group_kfold(name: str, column: str, n_splits: int, description: str, **extra: Any):
    """Register ``name``: a grouped K-fold by ``column`` (``n_splits`` by default), shuffled by seed."""

    def factory(n_splits: int = n_splits, random_state: int = 0) -> GroupSplitter:
        from sklearn.model_selection import GroupKFold

        cv = GroupKFold(n_splits=n_splits, shuffle=True, random_state=random_state)
        return GroupSplitter(cv, column=column, name=name)

    factory.__name__ = factory.__qualname__ = name
    factory.__doc__ = f"Grouped K-fold by {column}, shuffled by seed."
    return SPLITS.register(name, description=description, defaults={"n_splits": n_splits}, group_column=column,
                           partition=True, seeded=True, **extra)(factory)


@SPLITS.register(
    "kfold",
    description=(
        "Shuffled K-fold over segments (no grouping: near-duplicates, performers and passages leak across "
        "folds; see kfold_grouped)"
    ),
    defaults={"n_splits": 5},
    group_column=None,
    partition=True,
    seeded=True,
    leaks=True,
)
def kfold(n_splits: int = 5, random_state: int = 0) -> Any:
    """Shuffled K-fold over segments."""
    from sklearn.model_selection import KFold

    return KFold(n_splits=n_splits, shuffle=True, random_state=random_state)


@SPLITS.register(
    "lopo",
    description=(
        "Leave one performer out: one fold per performer, and one for the reference items together "
        "(PercePiano's two deadpan score renderings, Score and Score2, are note-identical in 8 excerpts)"
    ),
    group_column="player",
    groups_from=performer_units,
    group_label="performer",
    partition=True,
    seeded=False,
)
def lopo() -> GroupSplitter:
    """Leave one performer out."""
    return _leave_one_group_out("lopo", "player")


kfold_grouped = _register_shuffled_group_kfold(
    "kfold_grouped", "performance", 5,
    "Grouped K-fold by performance (one player's rendition of one piece), shuffled by seed: "
    "no near-duplicate of a test segment in training",
    columns=("piece", "player", "midi_path"),
    groups_from=_derived("performance", performance_groups),
    derived=True,
    leaks=False,
)

excerpt = _register_shuffled_group_kfold(
    "excerpt", "passage", 4,
    "Grouped K-fold by passage (excerpts that overlap in bars, found from the notes, form one group), "
    "shuffled by seed: unseen passages of seen pieces, like the paper's composition 4-fold split",
    columns=(*OVERLAP_COLUMNS, "bars"),
    groups_from=_derived("passage", passage_groups),
    derived=True,
    leaks=False,
)

excerpt_leaky = _register_shuffled_group_kfold(
    "excerpt_leaky", "excerpt", 4,
    "The old excerpt split, grouped K-fold by excerpt label: LEAKS, a 16-bar excerpt and its 8-bar cut "
    "of the same recording can sit on opposite sides; only to reproduce numbers made with it",
    groups_from=_column("excerpt"),
    leaks=True,
)


@SPLITS.register(
    "piece",
    description="Leave one piece out (unseen music; Schubert D960 mv3 alone holds about half the segments)",
    group_column="piece",
    groups_from=_column("piece"),
    partition=True,
    seeded=False,
)
def piece() -> GroupSplitter:
    """Leave one piece out."""
    return _leave_one_group_out("piece", "piece")


@SPLITS.register(
    "composer",
    description="Leave one composer out (Schubert vs. Beethoven)",
    group_column="composer",
    groups_from=_column("composer"),
    partition=True,
    seeded=False,
)
def composer() -> GroupSplitter:
    """Leave one composer out."""
    return _leave_one_group_out("composer", "composer")


@SPLITS.register(
    "percepiano_performer4",
    description=(
        "The dataset paper's performer 4-fold split: a fixed test set (performer fold ids 1, 2) "
        "scored by 4 models, each trained without its validation fold (ids 2k+3, 2k+4)"
    ),
    group_column="player",
    columns=FOLD_ID_COLUMNS,
    groups_from=performer_fold_ids,
    group_label="performer fold id",
    partition=False,
    seeded=False,
    validation=True,
)
def percepiano_performer4() -> PerformerFourFold:
    """The dataset paper's performer 4-fold split."""
    return PerformerFourFold()


#: The split families over any group column: ``FAMILY:COLUMN``.
SPLIT_FAMILIES = {
    "group": "Leave one value of the group column out",
    "kfold_grouped": "Grouped K-fold over the group column, shuffled by seed",
}
#: Split names that read a role column and what the role is called (for messages).
ROLE_SPLITS = {"lopo": "performer", "piece": "piece", "composer": "composer"}


def _family_spec(name: str) -> Spec:
    family, _, column = name.partition(":")
    column = column.strip()
    if family not in SPLIT_FAMILIES:
        close = [f"{f}:{column}" for f in SPLIT_FAMILIES if f.startswith(family[:3])] or [f"group:{column}"]
        raise UnknownNameError(f"unknown split {name!r}; did you mean {close[0]!r}? (families over a group column: "
                               f"{', '.join(f + ':COLUMN' for f in SPLIT_FAMILIES)})")
    if not column:
        raise ConfigError(f"split {name!r} names no column; use {family}:COLUMN with one of the dataset's group "
                          "columns ('benchmark dataset check' lists them)")
    if family == "group":
        def factory() -> GroupSplitter:
            return _leave_one_group_out(name, column)

        return Spec(name=name, factory=factory, description=f"{SPLIT_FAMILIES[family]} ({column})",
                    extra={"group_column": column, "groups_from": _column(column), "partition": True,
                           "seeded": False, "family": family})

    def kfold_factory(n_splits: int = 5, random_state: int = 0) -> GroupSplitter:
        from sklearn.model_selection import GroupKFold

        return GroupSplitter(GroupKFold(n_splits=n_splits, shuffle=True, random_state=random_state), column=column,
                             name=name)

    return Spec(name=name, factory=kfold_factory, description=f"{SPLIT_FAMILIES[family]} ({column})",
                defaults={"n_splits": 5}, extra={"group_column": column, "groups_from": _column(column),
                                                 "partition": True, "seeded": True, "family": family})


def get_split(name: str) -> Spec:
    """The spec of a split name: a registered one, or ``group:COLUMN`` / ``kfold_grouped:COLUMN``.

    Raises
    ------
    UnknownNameError
        An unknown name (with close matches) or family.
    ConfigError
        A family without a column.
    """
    if not isinstance(name, str):
        raise ConfigError(f"split {name!r}: expected a split name")
    if ":" in name:
        return _family_spec(name)
    return SPLITS.get(name)


def _required_columns(spec: Spec, meta: pd.DataFrame | None = None) -> tuple[str, ...]:
    column = spec.extra.get("group_column")
    if meta is not None and spec.extra.get("derived") and column in meta.columns:
        # A precomputed group column (passage, performance) spares reading the MIDI files.
        return (column,)
    if "columns" in spec.extra:
        return tuple(spec.extra["columns"])
    column = spec.extra.get("group_column")
    return (column,) if column else ()


def split_info(name: str) -> dict[str, Any]:
    """Describe a registered split without building it.

    Parameters
    ----------
    name : str
        Registry name, e.g. ``'lopo'``.

    Returns
    -------
    dict
        ``name``; ``description``; ``group_column`` (str or None: what is
        grouped); ``columns`` (tuple of metadata columns the split reads);
        ``group_label`` (what the split's own group labels are, e.g. the
        paper's performer fold ids); ``partition`` (True if the test folds
        cover every sample exactly once);
        ``seeded`` (True if the seed changes the folds); ``n_splits`` (default
        fold count, or None if the data fixes it); ``validation`` (True if the
        split also provides per-fold validation sets, see
        :func:`make_validation_folds`); ``leaks`` (True if the split can put
        a same-player near-duplicate of a test segment in training, see
        :mod:`splits.leakage`).

    Raises
    ------
    UnknownNameError
        If ``name`` is not registered; the message suggests close matches.
    """
    spec = get_split(name)
    return {
        "name": spec.name,
        "description": spec.description,
        "group_column": spec.extra.get("group_column"),
        "group_label": spec.extra.get("group_label", spec.extra.get("group_column")),
        "columns": _required_columns(spec),
        "partition": bool(spec.extra.get("partition", True)),
        "seeded": bool(spec.extra.get("seeded", False)),
        "n_splits": spec.defaults.get("n_splits"),
        "validation": bool(spec.extra.get("validation", False)),
        "leaks": bool(spec.extra.get("leaks", False)),
        "family": spec.extra.get("family"),
    }


def split_problem(name: str, meta: pd.DataFrame, group_columns=None) -> str | None:
    """Why the split ``name`` cannot run on ``meta`` (one line), or None when it can.

    Parameters
    ----------
    name : str
        A registered split or ``group:COLUMN`` / ``kfold_grouped:COLUMN``.
    meta : DataFrame
        The dataset's items (:attr:`benchmark.dataset.Dataset.meta`).
    group_columns : sequence of str, optional
        The dataset's group columns (:attr:`benchmark.dataset.Dataset.group_columns`): a family split
        must name one of them.

    Raises
    ------
    UnknownNameError
        ``name`` is no split.
    """
    spec = get_split(name)
    column = spec.extra.get("group_column")
    if spec.extra.get("family"):
        known = list(group_columns) if group_columns is not None else [c for c in meta.columns]
        if column not in known or column not in meta.columns:
            close = difflib.get_close_matches(column, known, n=1)
            hint = f"; did you mean {spec.extra['family']}:{close[0]}?" if close else ""
            return (f"split {name!r} groups by {column!r}, which is not a group column of the dataset{hint} "
                    f"(its group columns: {', '.join(known) or 'none'})")
        return None
    for col in _required_columns(spec, meta):
        if col not in meta.columns:
            role = ROLE_SPLITS.get(name)
            if role is not None and col == column:
                return (f"split {name!r} groups by the {role}, and the dataset declares no {role} column ([groups] "
                        f"{role} in its dataset.toml); use group:COLUMN with one of its group columns")
            return f"split {name!r} needs the column {col!r}, which the dataset lacks"
        if col == "midi_path" and meta[col].isna().any():
            return (f"split {name!r} finds its groups from the MIDI notes, and {int(meta[col].isna().sum())} item(s) "
                    "have no MIDI")
    return None


def _check_int(label: str, value: Any, name: str, minimum: int, limit: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise ConfigError(f"split {name!r}: {label}={value!r} must be an integer")
    if value < minimum or (limit is not None and value >= limit):
        bound = f"between {minimum} and {limit - 1}" if limit is not None else f"at least {minimum}"
        raise ConfigError(f"split {name!r}: {label}={value} must be {bound}")
    return int(value)


def _groups(spec: Spec, meta: pd.DataFrame) -> np.ndarray | None:
    """Check the metadata holds what the split reads and return its groups."""
    if not isinstance(meta, pd.DataFrame):
        raise ConfigError(f"split {spec.name!r}: meta must be a pandas DataFrame, got {type(meta).__name__}")
    if len(meta) < 2:
        raise ConfigError(f"split {spec.name!r}: meta has {len(meta)} rows; at least 2 are needed to split")
    for column in _required_columns(spec, meta):
        if column not in meta.columns:
            raise ConfigError(
                f"split {spec.name!r} needs the column {column!r} in the metadata; it has {list(meta.columns)}"
            )
        n_missing = int(meta[column].isna().sum())
        if n_missing:
            raise ConfigError(f"split {spec.name!r}: column {column!r} has {n_missing} missing values")
    groups_from = spec.extra.get("groups_from")
    return None if groups_from is None else np.asarray(groups_from(meta))


def split_groups(name: str, meta: pd.DataFrame) -> np.ndarray | None:
    """The group label of every row as the split ``name`` uses it (None for ungrouped splits).

    For ``percepiano_performer4`` these are the paper's performer fold ids,
    not the raw ``player`` labels (Beethoven and Schubert players with the
    same label get different ids).
    """
    return _groups(get_split(name), meta)


def _params(spec: Spec, seed: int, n_splits: int | None) -> dict[str, Any]:
    """Validate the options alone (before looking at the data); return factory kwargs."""
    name = spec.name
    info = split_info(name)
    seed = _check_int("seed", seed, name, 0, _SEED_LIMIT)
    params: dict[str, Any] = {"random_state": seed} if info["seeded"] else {}
    if info["n_splits"] is None:
        if n_splits is not None:
            raise ConfigError(
                f"split {name!r} does not take n_splits (its number of folds is fixed); leave n_splits unset"
            )
        return params
    params["n_splits"] = info["n_splits"] if n_splits is None else _check_int("n_splits", n_splits, name, 2)
    return params


def _check_n_groups(spec: Spec, meta: pd.DataFrame, groups: np.ndarray | None, n_splits: int | None) -> None:
    """Raise if the data holds too few groups (samples, when ungrouped) for the folds."""
    columns = _required_columns(spec, meta)
    source = f"column {columns[0]!r}" if len(columns) == 1 else f"columns {list(columns)}"
    n_groups = len(np.unique(groups)) if groups is not None else len(meta)
    where = f"n_groups={n_groups} ({source})" if groups is not None else f"n_samples={n_groups}"
    if n_splits is not None and n_splits > n_groups:
        raise ConfigError(f"split {spec.name!r}: n_splits={n_splits} > {where}; use fewer folds")
    if n_splits is None and groups is not None and n_groups < 2:
        raise ConfigError(f"split {spec.name!r}: {where}; at least 2 groups are needed")


def _check_folds(name: str, folds: Folds, n_samples: int, groups: np.ndarray | None, partition: bool) -> None:
    """Raise if a fold is empty, out of range, overlapping, or leaks a group."""
    if not folds:
        raise ConfigError(f"split {name!r} produced no folds")
    for i, (train, test) in enumerate(folds):
        for label, idx in (("train", train), ("test", test)):
            if idx.size == 0:
                raise ConfigError(f"split {name!r} fold {i}: the {label} set is empty")
            if idx.min() < 0 or idx.max() >= n_samples or np.unique(idx).size != idx.size:
                raise ConfigError(f"split {name!r} fold {i}: {label} indices are out of range or repeated")
        if np.intersect1d(train, test).size:
            raise ConfigError(f"split {name!r} fold {i}: train and test share samples")
        if groups is not None and np.intersect1d(groups[train], groups[test]).size:
            raise ConfigError(f"split {name!r} fold {i}: a group is on both the train and the test side")
    if partition:
        counts = np.bincount(np.concatenate([test for _, test in folds]), minlength=n_samples)
        if not np.all(counts == 1):
            raise ConfigError(f"split {name!r}: the test folds do not cover every sample exactly once")


def _build(name: str, meta: pd.DataFrame, seed: int, n_splits: int | None) -> tuple[Any, np.ndarray, Any]:
    spec = get_split(name)
    params = _params(spec, seed, n_splits)
    groups = _groups(spec, meta)
    _check_n_groups(spec, meta, groups, params.get("n_splits"))
    splitter = spec.build(**params)
    return splitter, np.zeros((len(meta), 1)), groups


def make_splits(
    name: str, meta: pd.DataFrame, *, seed: int = 0, n_splits: int | None = None
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Build the registered split ``name`` on ``meta`` and return its folds.

    Parameters
    ----------
    name : str
        Registry name (``kfold``, ``kfold_grouped``, ``lopo``, ``excerpt``,
        ``excerpt_leaky``, ``piece``, ``composer``, ``percepiano_performer4``).
    meta : DataFrame, shape (n_samples, ...)
        Segment metadata (``Dataset.meta``); must hold the split's columns.
    seed : int, default 0
        Random state for seeded splits; ignored by the others.
    n_splits : int, optional
        Fold count for splits that take one (``kfold``, ``kfold_grouped``,
        ``excerpt``, ``excerpt_leaky``); their
        own default when None. Splits whose folds the data fixes reject it.

    Returns
    -------
    list of (train, test)
        Integer position arrays into ``meta`` (not index labels), one pair per
        fold. For ``percepiano_performer4`` every ``test`` is the same fixed
        test set.

    Raises
    ------
    UnknownNameError
        If ``name`` is not registered.
    ConfigError
        If a needed column is missing or has missing values, ``n_splits`` is
        given to a split that does not take it, is below 2 or exceeds the number
        of groups (samples for ``kfold``), the seed is invalid, or a fold
        comes out empty.
    DataError
        If the metadata holds values a split cannot map (performer fold ids).
    """
    splitter, X, groups = _build(name, meta, seed, n_splits)
    folds = [
        (np.asarray(train, dtype=np.intp), np.asarray(test, dtype=np.intp))
        for train, test in splitter.split(X, None, groups)
    ]
    _check_folds(name, folds, len(meta), groups, split_info(name)["partition"])
    logger.debug("split %r: %d folds over %d samples", name, len(folds), len(meta))
    return folds


def make_validation_folds(name: str, meta: pd.DataFrame) -> list[np.ndarray]:
    """Validation (early-stopping) sets of a split that defines them.

    Parameters
    ----------
    name : str
        Registry name of a split whose :func:`split_info` has ``validation=True``
        (``percepiano_performer4``).
    meta : DataFrame, shape (n_samples, ...)

    Returns
    -------
    list of ndarray of int
        One array of positions into ``meta`` per fold, in :func:`make_splits`
        order; each is disjoint from that fold's train and test sets.

    Raises
    ------
    ConfigError
        If the split has no validation sets, or as for :func:`make_splits`.
    """
    if not split_info(name)["validation"]:
        raise ConfigError(f"split {name!r} has no validation folds; hold out part of each training fold instead")
    splitter, X, groups = _build(name, meta, 0, None)
    return [np.asarray(v, dtype=np.intp) for v in splitter.validation_folds(X, None, groups)]
