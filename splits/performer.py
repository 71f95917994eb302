"""The PercePiano paper's performer 4-fold split, rebuilt exactly.

Upstream (``virtuoso/pyScoreParser/m2pf_dataset_performerfold.py``, commit
e672299; see ``SPLITS.md`` in the shared data folder) gives every segment a
*performer fold id* from its player and composer, holds out the ids in
:data:`TEST_FOLD_IDS` as one fixed test set, and uses ids ``2k+3`` and ``2k+4``
as the validation set of fold ``k``. Each fold's model trains on everything
that is neither test nor its own validation set, early-stops on the validation
set, and is scored on the shared test set.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pandas as pd

from benchmark.errors import ConfigError, DataError

#: Beethoven players in the order whose index is their fold id (upstream list).
BEETHOVEN_PLAYERS: tuple[int, ...] = (1, 2, 3, 4, 7, 11, 14, 18, 19, 22, 24, 26)
#: Fold ids of the deadpan score renderings; both are always in training.
SCORE_FOLD_IDS: dict[str, int] = {"Score": 0, "Score2": -1}
#: Fold ids forming the fixed test set.
TEST_FOLD_IDS: tuple[int, ...] = (1, 2)
N_FOLDS = 4
#: Columns of ``meta`` that the fold id is computed from.
FOLD_ID_COLUMNS: tuple[str, ...] = ("player", "composer")


def validation_fold_ids(k: int) -> tuple[int, int]:
    """Fold ids forming the validation set of fold ``k`` (``2k+3``, ``2k+4``).

    Parameters
    ----------
    k : int
        Fold number, ``0 <= k < N_FOLDS``.

    Returns
    -------
    tuple of int

    Raises
    ------
    ConfigError
        If ``k`` is out of range.
    """
    if not 0 <= k < N_FOLDS:
        raise ConfigError(f"performer fold k={k} is out of range; use 0..{N_FOLDS - 1}")
    return (2 * k + 3, 2 * k + 4)


def performer_fold_id(player: object, composer: str) -> int:
    """Performer fold id of one segment, as the dataset paper computes it.

    ``Score`` -> 0 and ``Score2`` -> -1; a Beethoven player maps to its index in
    :data:`BEETHOVEN_PLAYERS`; a Schubert player maps to ``int(player)``.

    Parameters
    ----------
    player : str or int
        The ``player`` field ('0'..'26', 'Score', 'Score2').
    composer : str
        'Beethoven' or 'Schubert'.

    Returns
    -------
    int

    Raises
    ------
    DataError
        If the player is not an integer (nor a score rendering), a Beethoven
        player is not in the upstream list, or the composer is neither
        Beethoven nor Schubert.
    """
    name = str(player).strip()
    if name in SCORE_FOLD_IDS:
        return SCORE_FOLD_IDS[name]
    try:
        number = int(name)
    except ValueError:
        raise DataError(
            f"player {player!r} is neither a number nor one of {sorted(SCORE_FOLD_IDS)}; cannot assign a performer fold"
        ) from None
    if composer == "Beethoven":
        if number not in BEETHOVEN_PLAYERS:
            raise DataError(
                f"Beethoven player {number} is not in the upstream performer list {list(BEETHOVEN_PLAYERS)}; "
                "cannot assign a performer fold"
            )
        return BEETHOVEN_PLAYERS.index(number)
    if composer == "Schubert":
        return number
    raise DataError(f"composer {composer!r} has no performer fold rule; expected 'Beethoven' or 'Schubert'")


def performer_fold_ids(meta: pd.DataFrame) -> np.ndarray:
    """Performer fold id of every row of ``meta``.

    Parameters
    ----------
    meta : DataFrame, shape (n_samples, ...)
        Must hold the columns ``player`` and ``composer``.

    Returns
    -------
    ndarray of int, shape (n_samples,)

    Raises
    ------
    ConfigError
        If a needed column is missing.
    DataError
        If a row cannot be mapped; see :func:`performer_fold_id`.
    """
    missing = [c for c in FOLD_ID_COLUMNS if c not in meta.columns]
    if missing:
        raise ConfigError(f"performer folds need the column(s) {missing} in the metadata; it has {list(meta.columns)}")
    ids = [performer_fold_id(p, c) for p, c in zip(meta["player"], meta["composer"], strict=True)]
    return np.asarray(ids, dtype=int)


class PerformerFourFold:
    """Splitter for the paper's performer 4-fold split (sklearn splitter API).

    ``groups`` are performer fold ids (:func:`performer_fold_ids`). Fold ``k``
    yields ``(train_k, test)`` where ``test`` is the same fixed test set every
    time; :meth:`validation_folds` gives the matching early-stopping sets.
    """

    def get_n_splits(self, X=None, y=None, groups=None) -> int:
        """Return the number of folds (always 4)."""
        return N_FOLDS

    def split(self, X, y=None, groups=None) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Yield ``(train, test)`` index arrays, one pair per fold.

        Parameters
        ----------
        X : array-like, shape (n_samples, ...)
            Only its length is used.
        y : ignored
        groups : array-like of int, shape (n_samples,)
            Performer fold ids.

        Yields
        ------
        train : ndarray of int
            Everything neither in the test set nor in fold ``k``'s validation set.
        test : ndarray of int
            The fixed test set (fold ids in :data:`TEST_FOLD_IDS`).

        Raises
        ------
        ConfigError
            If ``groups`` is missing or the test set is empty.
        """
        for train, _, test in self._folds(X, groups):
            yield train, test

    def validation_folds(self, X, y=None, groups=None) -> list[np.ndarray]:
        """Validation index arrays, one per fold, in :meth:`split` order.

        Parameters are as for :meth:`split`.

        Returns
        -------
        list of ndarray of int
            Fold ``k``'s validation set (fold ids ``2k+3``, ``2k+4``).
        """
        return [val for _, val, _ in self._folds(X, groups)]

    def _folds(self, X, groups) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        if groups is None:
            raise ConfigError(
                "split 'percepiano_performer4' needs groups: the performer fold ids "
                f"computed from the columns {list(FOLD_ID_COLUMNS)} (see performer_fold_ids)"
            )
        ids = np.asarray(groups)
        if len(ids) != len(X):
            raise ConfigError(f"groups has {len(ids)} entries but X has {len(X)} samples")
        test_mask = np.isin(ids, TEST_FOLD_IDS)
        if not test_mask.any():
            raise ConfigError(
                f"no sample has a performer fold id in {list(TEST_FOLD_IDS)}; the fixed test set would be empty"
            )
        test = np.flatnonzero(test_mask)
        folds = []
        for k in range(N_FOLDS):
            val_mask = np.isin(ids, validation_fold_ids(k)) & ~test_mask
            train = np.flatnonzero(~test_mask & ~val_mask)
            folds.append((train, np.flatnonzero(val_mask), test))
        return folds

    def __repr__(self) -> str:
        return "PerformerFourFold()"
