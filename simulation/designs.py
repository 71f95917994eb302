"""The real split designs the calibration simulates: segment layout, folds, units, and a design's key.

A *design* is what a stored calibration applies to: the split, its fold count,
its seed count (CV repeats where seeds change the folds; model seeds where
they do not) and its unit count (:class:`DesignKey`). A run whose design
differs in any of them is "not calibrated for this design" until
``benchmark power`` (or docs/calibration.md) simulates it.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from benchmark.errors import ConfigError


@dataclass(frozen=True)
class Layout:
    """Segments of the data set: performer, passage, piece and performance of each."""

    performer: np.ndarray
    passage: np.ndarray
    piece: np.ndarray
    performance: np.ndarray

    def units(self, unit: str) -> np.ndarray:
        """The label of each segment's unit (``segments``: the segment itself)."""
        if unit == "segments":
            return np.arange(self.performer.size).astype(str)
        return getattr(self, UNIT_ATTR[unit])

    @property
    def n(self) -> int:
        return int(self.performer.size)


#: A design's unit -> the Layout attribute that labels it.
UNIT_ATTR = {"performers": "performer", "passages": "passage", "pieces": "piece", "performances": "performance"}


@dataclass(frozen=True)
class Design:
    """A split design as the calibration simulates it.

    Attributes
    ----------
    name : str
        The registered split.
    unit : str
        What the split generalises over (what tests resample).
    seeded : bool
        Whether the seed changes the folds (seeds are CV repeats).
    partition : bool
        Whether each seed's test folds cover every segment once (False: a fixed test set).
    n_seeds : int
        CV repeats of a seeded design (1 otherwise).
    n_splits : int or None
        Fold count of a split that takes one (None: the data fixes it).
    """

    name: str
    unit: str
    seeded: bool
    partition: bool
    n_seeds: int
    n_splits: int | None = None

    def with_seeds(self, n_seeds: int) -> Design:
        """The same design with ``n_seeds`` CV repeats (a seeded design) or unchanged."""
        if n_seeds < 1:
            raise ConfigError(f"seeds={n_seeds!r} must be >= 1")
        if not self.seeded:
            return self
        return Design(self.name, self.unit, self.seeded, self.partition, int(n_seeds), self.n_splits)

    def with_splits(self, n_splits: int | None) -> Design:
        """The same design with ``n_splits`` folds, for a split that takes a fold count."""
        if n_splits is None:
            return self
        if self.n_splits is None:
            raise ConfigError(f"split {self.name!r} does not take a fold count (the data fixes its folds)")
        if n_splits < 2:
            raise ConfigError(f"n_splits={n_splits!r} must be >= 2")
        return Design(self.name, self.unit, self.seeded, self.partition, self.n_seeds, int(n_splits))


DESIGNS = {
    "lopo": Design("lopo", "performers", False, True, 1),
    "kfold": Design("kfold", "segments", True, True, 3, 5),
    "excerpt": Design("excerpt", "passages", True, True, 3, 4),
    "kfold_grouped": Design("kfold_grouped", "performances", True, True, 3, 5),
    "piece": Design("piece", "pieces", False, True, 1),
    "percepiano_performer4": Design("percepiano_performer4", "performers", False, False, 1),
}


@dataclass(frozen=True)
class DesignKey:
    """What a stored calibration is keyed by: split, folds per seed, seeds, units.

    ``seeds`` counts CV repeats for a seeded split and model seeds (per model) for
    an unseeded one, where the learner-level test's calibration depends on them.
    """

    split: str
    n_folds: int
    n_seeds: int
    n_units: int

    def label(self) -> str:
        return f"{self.split}: {self.n_folds} folds x {self.n_seeds} seeds, {self.n_units} units"

    def as_dict(self) -> dict:
        return {"split": self.split, "n_folds": self.n_folds, "n_seeds": self.n_seeds, "n_units": self.n_units}


def folds_of(design: Design, layout: Layout, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """The design's folds on ``layout`` for split seed ``seed`` (as the registered split builds them).

    Raises
    ------
    ConfigError
        An unknown design name.
    """
    from sklearn.model_selection import GroupKFold, KFold, LeaveOneGroupOut

    X = np.zeros((layout.n, 1))
    if design.name == "lopo":
        return list(LeaveOneGroupOut().split(X, groups=layout.performer))
    if design.name == "kfold":
        return list(KFold(design.n_splits or 5, shuffle=True, random_state=seed).split(X))
    if design.name == "excerpt":
        return list(GroupKFold(design.n_splits or 4, shuffle=True, random_state=seed).split(X, groups=layout.passage))
    if design.name == "kfold_grouped":
        return list(GroupKFold(design.n_splits or 5, shuffle=True, random_state=seed).split(
            X, groups=layout.performance))
    if design.name == "piece":
        return list(LeaveOneGroupOut().split(X, groups=layout.piece))
    if design.name == "percepiano_performer4":
        # The paper's shape: a fixed test set of 3 performers, 4 models trained on the others.
        perf = np.unique(layout.performer)
        test = np.flatnonzero(np.isin(layout.performer, perf[:3]))
        rest = perf[3:]
        out = []
        for k in range(4):
            val = rest[k::4]
            train = np.flatnonzero(~np.isin(layout.performer, np.concatenate([perf[:3], val])))
            out.append((train, test))
        return out
    raise ConfigError(f"unknown design {design.name!r}; use one of {', '.join(DESIGNS)}")


def design_key(design: Design, layout: Layout, n_seeds: int | None = None) -> DesignKey:
    """The :class:`DesignKey` of ``design`` on ``layout`` (``n_seeds`` model seeds for an unseeded split)."""
    folds = folds_of(design, layout, 0)
    units = layout.units(design.unit)
    if not design.partition:
        units = units[folds[0][1]]
    seeds = design.n_seeds if design.seeded else int(n_seeds or 1)
    return DesignKey(design.name, len(folds), seeds, int(np.unique(units).size))


def real_layout(data_dir: Path | None = None) -> Layout | None:
    """Performer, passage, piece and performance of every PercePiano segment; None if the data is absent.

    The passage is the ``excerpt`` split's own group (:func:`splits.passage_groups`:
    excerpts that overlap in bars, found from the notes), not the excerpt label
    (``excerpt_leaky``); the performance is ``kfold_grouped``'s
    (:func:`splits.performance_groups`: one player's rendition of one piece,
    note-identical renditions joined). Finding them reads every MIDI file, so
    the excerpt-to-passage and piece_player-to-performance maps are kept in the
    feature cache, keyed by the label file's content. The performer is the
    ``lopo`` split's unit (the two deadpan renderings are one).
    """
    from benchmark.dataset import MEAN_LABELS, load_dataset, resolve_data_dir
    from benchmark.errors import BenchmarkError
    from features.cache import resolve_cache_dir
    from splits.registry import performer_units

    try:
        root = resolve_data_dir(data_dir)
    except BenchmarkError:
        return None
    meta = load_dataset(root).meta
    key = hashlib.sha256((root / MEAN_LABELS).read_bytes()).hexdigest()[:16]
    path = Path(resolve_cache_dir(None)) / f"calibration_groups_{key}.json"
    base = meta["piece"].astype(str) + "_" + meta["player"].astype(str)
    if path.is_file():
        maps = json.loads(path.read_text())
    else:
        from splits import passage_groups, performance_groups, shared_note_matrix

        shared = shared_note_matrix(meta)
        maps = {"passage": dict(zip(meta["excerpt"].astype(str), map(str, passage_groups(meta, shared)),
                                    strict=True)),
                "performance": dict(zip(base, map(str, performance_groups(meta, shared)), strict=True))}
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(maps, indent=0, sort_keys=True))
    return Layout(performer_units(meta).astype(str),
                  meta["excerpt"].astype(str).map(maps["passage"]).to_numpy(),
                  meta["piece"].astype(str).to_numpy(), base.map(maps["performance"]).to_numpy())


def synthetic_layout(n_performers: int = 22, n_passages: int = 60, rng_seed: int = 0) -> Layout:
    """A small layout like PercePiano's: unequal performers, passages played by several performers.

    Every 3 passages form a piece; a performance is one performer's segments of one piece.
    """
    rng = np.random.default_rng(rng_seed)
    sizes = rng.integers(6, 30, n_performers)
    performer = np.repeat(np.arange(n_performers), sizes).astype(str)
    passage_id = rng.integers(0, n_passages, performer.size)
    piece = (passage_id // 3).astype(str)
    return Layout(performer, passage_id.astype(str), piece, np.char.add(np.char.add(piece, "_"), performer))
