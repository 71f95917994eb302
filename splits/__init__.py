"""Cross-validation splits over a dataset's group columns, behind one registry.

``make_splits(name, meta, seed=..., n_splits=...)`` returns validated integer
``(train, test)`` folds; ``split_info(name)`` describes a split without building
it; ``leakage_table(name, meta)`` counts test segments whose near-duplicate
(same notes, same recording) sits in training. Every registered factory
returns an object with sklearn's splitter API.

``group:COLUMN`` and ``kfold_grouped:COLUMN`` split over any group column of a dataset (:func:`get_split`).
A new split is a factory registered with ``@SPLITS.register`` in ``splits/registry.py``; the common
splitter checks and the leakage check run over the registry.
"""

from splits.leakage import fold_leakage, leakage_note, leakage_summary, leakage_table, run_leakage
from splits.overlap import excerpt_overlaps, passage_groups, performance_groups, shared_note_matrix
from splits.performer import PerformerFourFold, performer_fold_id, performer_fold_ids, validation_fold_ids
from splits.registry import (
    DEADPAN_UNIT,
    SPLIT_FAMILIES,
    SPLITS,
    get_split,
    make_splits,
    make_validation_folds,
    performer_units,
    split_groups,
    split_info,
    split_problem,
)
from splits.splitters import GroupSplitter

__all__ = [
    "DEADPAN_UNIT",
    "SPLIT_FAMILIES",
    "SPLITS",
    "get_split",
    "split_problem",
    "excerpt_overlaps",
    "fold_leakage",
    "leakage_note",
    "leakage_summary",
    "leakage_table",
    "passage_groups",
    "performance_groups",
    "shared_note_matrix",
    "GroupSplitter",
    "PerformerFourFold",
    "make_splits",
    "make_validation_folds",
    "performer_fold_id",
    "performer_fold_ids",
    "performer_units",
    "run_leakage",
    "split_groups",
    "split_info",
    "validation_fold_ids",
]
