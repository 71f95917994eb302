"""Leakage check: test segments whose near-duplicate sits on the training side.

For every fold, a test segment *leaks* when some training segment shares at
least ``threshold`` of its notes with it (:func:`splits.overlap.shared_note_matrix`):
``same_player`` counts those whose duplicate is by the same player (the 16-bar
excerpts that contain an 8-bar cut of the same recording), ``any_player`` those
with a duplicate by anyone (adds, e.g., the note-identical ``Score``/``Score2``
renderings).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from benchmark.errors import BenchmarkError, ConfigError
from splits.overlap import DEFAULT_THRESHOLD, shared_note_matrix
from splits.registry import make_splits

#: Columns of :func:`leakage_table`.
LEAKAGE_COLUMNS = ("seed", "fold", "n_test", "same_player", "any_player")


def fold_leakage(
    folds: Sequence[tuple[np.ndarray, np.ndarray]],
    meta: pd.DataFrame,
    shared: np.ndarray | None = None,
    *,
    threshold: float = DEFAULT_THRESHOLD,
) -> tuple[list[dict], dict]:
    """Per-fold leak counts of one set of folds, and their union over folds.

    Parameters
    ----------
    folds : list of (train, test)
        Integer positions into ``meta``.
    meta : DataFrame, shape (n_samples, ...)
        Needs ``midi_path``; ``player`` (without it every near-duplicate counts as a same-player one).
    shared : ndarray, shape (n_samples, n_samples), optional
        :func:`shared_note_matrix` of ``meta`` (computed when None).
    threshold : float, default 0.8

    Returns
    -------
    rows : list of dict
        ``fold``, ``n_test``, ``same_player``, ``any_player`` per fold.
    total : dict
        ``n_test`` (distinct test segments), ``same_player`` and ``any_player``
        (distinct test segments that leak in at least one fold they are tested in).
    """
    shared = shared_note_matrix(meta) if shared is None else shared
    n = len(meta)
    # No performer column: nothing tells two performers apart, so every near-duplicate counts (the upper bound).
    player = meta["player"].to_numpy() if "player" in meta.columns else np.zeros(n, dtype=int)
    tested = np.zeros(n, bool)
    leak_same = np.zeros(n, bool)
    leak_any = np.zeros(n, bool)
    rows = []
    for k, (train, test) in enumerate(folds):
        dup = shared[np.ix_(test, train)] >= threshold
        same = dup & (player[test][:, None] == player[train][None, :])
        s, a = same.any(axis=1), dup.any(axis=1)
        tested[test] = True
        leak_same[test[s]] = True
        leak_any[test[a]] = True
        rows.append({"fold": k, "n_test": int(len(test)), "same_player": int(s.sum()), "any_player": int(a.sum())})
    total = {"n_test": int(tested.sum()), "same_player": int(leak_same.sum()), "any_player": int(leak_any.sum())}
    return rows, total


def leakage_table(
    name: str,
    meta: pd.DataFrame,
    *,
    seeds: Sequence[int] = (0,),
    n_splits: int | None = None,
    threshold: float = DEFAULT_THRESHOLD,
    shared: np.ndarray | None = None,
) -> pd.DataFrame:
    """Leak counts of the registered split ``name``, per seed and fold.

    Parameters
    ----------
    name : str
        Registry name of the split.
    meta : DataFrame, shape (n_samples, ...)
    seeds : sequence of int, default (0,)
    n_splits : int, optional
        As for :func:`splits.make_splits`.
    threshold : float, default 0.8
        Shared-note fraction at or above which two segments are near-duplicates.
    shared : ndarray, optional
        :func:`shared_note_matrix` of ``meta``.

    Returns
    -------
    DataFrame
        Columns :data:`LEAKAGE_COLUMNS`; one row per (seed, fold) and one per
        seed with ``fold = -1`` holding the distinct-segment totals.

    Raises
    ------
    ConfigError
        As for :func:`splits.make_splits`, or if ``threshold`` is not in (0, 1].
    """

    if not 0 < threshold <= 1:
        raise ConfigError(f"threshold={threshold!r} must be a shared-note fraction in (0, 1]")
    shared = shared_note_matrix(meta) if shared is None else shared
    out = []
    for seed in seeds:
        folds = make_splits(name, meta, seed=seed, n_splits=n_splits)
        rows, total = fold_leakage(folds, meta, shared, threshold=threshold)
        out += [{"seed": seed, **r} for r in rows]
        out.append({"seed": seed, "fold": -1, **total})
    return pd.DataFrame(out, columns=list(LEAKAGE_COLUMNS))


def leakage_summary(table: pd.DataFrame, threshold: float = DEFAULT_THRESHOLD) -> str:
    """One line per seed: how many test segments have a near-duplicate in training."""
    totals = table[table["fold"] == -1]
    parts = [
        f"seed {r.seed}: {r.same_player} of {r.n_test} test segments have a same-player near-duplicate in "
        f"training ({r.any_player} with any player)"
        for r in totals.itertuples()
    ]
    return f"Leakage check (shared-note fraction >= {threshold:g}): " + "; ".join(parts) + "."


def run_leakage(
    folds: dict[int, list[tuple[np.ndarray, np.ndarray]]], meta: pd.DataFrame, *, threshold: float = DEFAULT_THRESHOLD
) -> dict:
    """The leakage record of a run's manifest: per seed, per-fold and total counts.

    Parameters
    ----------
    folds : dict of seed -> list of (train, test)
    meta : DataFrame
        The run's segments (``player``, ``midi_path``).
    threshold : float, default 0.8

    Returns
    -------
    dict
        ``threshold``; ``seeds``: ``{seed: {"n_test", "same_player", "any_player", "folds": [...]}}``;
        or ``error`` (one line) when the MIDI notes could not be read, or ``skipped`` (one line) when
        some item has no MIDI (the check compares notes).
    """
    if "midi_path" not in meta.columns or meta["midi_path"].isna().any():
        n = len(meta) if "midi_path" not in meta.columns else int(meta["midi_path"].isna().sum())
        return {"threshold": threshold,
                "skipped": f"{n} of {len(meta)} items have no MIDI, and near-duplicates are found from the notes; "
                           "make sure no recording appears twice across the split's groups"}
    try:
        shared = shared_note_matrix(meta)
    except BenchmarkError as exc:
        return {"threshold": threshold, "error": str(exc)}
    seeds = {}
    for seed, f in folds.items():
        rows, total = fold_leakage(f, meta, shared, threshold=threshold)
        seeds[str(seed)] = {**total, "folds": rows}
    return {"threshold": threshold, "seeds": seeds}


def leakage_note(record: dict | None) -> str | None:
    """One line for a report from a manifest's leakage record (None for runs made before the check)."""
    if not record:
        return None
    threshold = record.get("threshold", DEFAULT_THRESHOLD)
    if "error" in record:
        return f"Leakage check (shared-note fraction >= {threshold:g}) could not run: {record['error']}"
    if "skipped" in record:
        return f"Leakage check not run: {record['skipped']}."
    rows = [{"seed": int(s), "fold": -1, **{k: v for k, v in r.items() if k != "folds"}}
            for s, r in record["seeds"].items()]
    return leakage_summary(pd.DataFrame(rows, columns=list(LEAKAGE_COLUMNS)), threshold)
