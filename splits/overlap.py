"""Which segments hold the same notes: near-duplicates, passages and performances.

PercePiano cut its excerpts from longer recordings, and its 16-bar excerpts
contain 8-bar excerpts cut from the *same* recording: the same player's same
bars appear under two excerpt labels. A split that groups by the excerpt label
can put one copy in training and the other in test. This module finds such
pairs from the note content of the MIDI files, not from their names.

The note measures (bigram codes, the shared fraction, near copies) are
:mod:`features.bigrams`; this module groups segments with them.

Groupings
---------
* ``passage``: excerpts of one piece are linked when some player's segments of
  both are near-duplicates (they overlap in bars); a passage is a connected
  component of that graph, labelled by its first excerpt name.
* ``performance``: one player's rendition of one piece (movement or variation):
  ``<piece>_<player>``. Near-duplicates are always within a performance.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
import pandas as pd

from benchmark.errors import ConfigError
from features.bigrams import (
    BIGRAM_STAGE,
    DEFAULT_THRESHOLD,
    MEASURES,
    near_copies,
    note_bigrams,
    note_cache,
    onset_bigrams,
    shared_fraction,
)

__all__ = ["BIGRAM_STAGE", "DEFAULT_THRESHOLD", "MEASURES", "OVERLAP_COLUMNS", "excerpt_overlaps", "near_copies",
           "note_bigrams", "note_cache", "onset_bigrams", "passage_groups", "performance_groups", "shared_fraction",
           "shared_note_matrix"]

logger = logging.getLogger(__name__)

#: Columns of the metadata the groupings read.
OVERLAP_COLUMNS: tuple[str, ...] = ("piece", "player", "excerpt", "midi_path")


def _check_meta(meta: pd.DataFrame, columns: Sequence[str]) -> None:
    if not isinstance(meta, pd.DataFrame):
        raise ConfigError(f"meta must be a pandas DataFrame, got {type(meta).__name__}")
    missing = [c for c in columns if c not in meta.columns]
    if missing:
        raise ConfigError(f"note overlap needs the column(s) {missing} in the metadata; it has {list(meta.columns)}")


def shared_note_matrix(meta: pd.DataFrame) -> np.ndarray:
    """Shared-note fraction of every pair of segments.

    Parameters
    ----------
    meta : DataFrame, shape (n_samples, ...)
        Needs ``midi_path``.

    Returns
    -------
    ndarray of float, shape (n_samples, n_samples)
        Symmetric; ``[i, j]`` = shared bigrams / bigrams of the shorter of
        ``i`` and ``j``; the diagonal is 1.

    Raises
    ------
    ConfigError
        If ``midi_path`` is missing.
    DataError
        If a MIDI file cannot be read.
    """
    _check_meta(meta, ("midi_path",))
    codes = [note_bigrams(p) for p in meta["midi_path"]]
    frac = shared_fraction(codes, codes)
    np.fill_diagonal(frac, 1.0)
    return frac


def performance_groups(
    meta: pd.DataFrame, shared: np.ndarray | None = None, *, threshold: float = DEFAULT_THRESHOLD
) -> np.ndarray:
    """One player's rendition of one piece, ``<piece>_<player>``, for every segment.

    Performances of one piece by two "players" that hold near-duplicate
    segments are joined (the deadpan renderings ``Score`` and ``Score2`` are
    note-identical in some excerpts), so no grouping by performance can put
    a copy of a test segment in training. A joined group is labelled by its
    alphabetically first performance.

    Parameters
    ----------
    meta : DataFrame, shape (n_samples, ...)
        Needs ``piece``, ``player`` and ``midi_path``.
    shared : ndarray, optional
        :func:`shared_note_matrix` of ``meta`` (computed when None).
    threshold : float, default 0.8

    Returns
    -------
    ndarray of str, shape (n_samples,)

    Raises
    ------
    ConfigError
        If a needed column is missing.
    DataError
        If a MIDI file cannot be read.
    """
    _check_meta(meta, ("piece", "player", "midi_path"))
    shared = shared_note_matrix(meta) if shared is None else shared
    base = (meta["piece"].astype(str) + "_" + meta["player"].astype(str)).to_numpy()
    i, j = np.nonzero(np.triu(shared >= threshold, k=1))
    label = _join_labels(base, zip(base[i], base[j], strict=True))
    return np.array([label[b] for b in base], dtype=object)


def _join_labels(labels, links) -> dict:
    """Each distinct label -> the alphabetically first label of its connected component under ``links`` (pairs)."""
    names = sorted(set(labels))
    index = {b: k for k, b in enumerate(names)}
    root = _components(len(names), [(index[a], index[b]) for a, b in links if a != b])
    return {b: names[root[k]] for k, b in enumerate(names)}


def _components(n: int, edges: list[tuple[int, int]]) -> np.ndarray:
    parent = list(range(n))

    def find(a: int) -> int:
        while parent[a] != a:
            parent[a] = parent[parent[a]]
            a = parent[a]
        return a

    for a, b in edges:
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    return np.array([find(a) for a in range(n)])


def excerpt_overlaps(
    meta: pd.DataFrame, shared: np.ndarray | None = None, *, threshold: float = DEFAULT_THRESHOLD
) -> pd.DataFrame:
    """Pairs of excerpts of one piece that overlap in bars, with the evidence.

    Parameters
    ----------
    meta : DataFrame, shape (n_samples, ...)
        Needs ``piece``, ``player``, ``excerpt``, ``bars`` and ``midi_path``.
    shared : ndarray, shape (n_samples, n_samples), optional
        :func:`shared_note_matrix` of ``meta`` (computed when None).
    threshold : float, default 0.8

    Returns
    -------
    DataFrame
        One row per linked pair (``excerpt_a < excerpt_b``): ``piece``,
        ``excerpt_a``, ``bars_a``, ``excerpt_b``, ``bars_b``, ``n_players``
        (players with segments of both), ``n_duplicates`` (of those, players
        whose two segments are near-duplicates), ``max_shared`` (largest
        same-player shared-note fraction).
    """
    _check_meta(meta, (*OVERLAP_COLUMNS, "bars"))
    shared = shared_note_matrix(meta) if shared is None else shared
    excerpt = meta["excerpt"].to_numpy()
    player = meta["player"].to_numpy()
    piece = meta["piece"].to_numpy()
    bars = dict(zip(meta["excerpt"], meta["bars"], strict=True))
    rows = []
    same = (player[:, None] == player[None, :]) & (piece[:, None] == piece[None, :])
    same &= excerpt[:, None] < excerpt[None, :]
    for i, j in zip(*np.nonzero(same), strict=True):
        rows.append((piece[i], excerpt[i], excerpt[j], player[i], shared[i, j]))
    pairs = pd.DataFrame(rows, columns=["piece", "excerpt_a", "excerpt_b", "player", "shared"])
    columns = ["piece", "excerpt_a", "bars_a", "excerpt_b", "bars_b", "n_players", "n_duplicates", "max_shared"]
    if pairs.empty:
        return pd.DataFrame(columns=columns)
    out = (
        pairs.assign(dup=pairs["shared"] >= threshold)
        .groupby(["piece", "excerpt_a", "excerpt_b"], sort=True)
        .agg(n_players=("player", "nunique"), n_duplicates=("dup", "sum"), max_shared=("shared", "max"))
        .reset_index()
    )
    out = out[out["n_duplicates"] > 0].reset_index(drop=True)
    out["bars_a"] = out["excerpt_a"].map(bars)
    out["bars_b"] = out["excerpt_b"].map(bars)
    out["n_duplicates"] = out["n_duplicates"].astype(int)
    return out[columns]


def passage_groups(
    meta: pd.DataFrame, shared: np.ndarray | None = None, *, threshold: float = DEFAULT_THRESHOLD
) -> np.ndarray:
    """The passage of every segment: excerpts linked by near-duplicates form one group.

    Two excerpts of the same piece are linked when at least one player's
    segments of them are near-duplicates (:func:`excerpt_overlaps`); a passage
    is a connected component, labelled by its alphabetically first excerpt.

    Parameters
    ----------
    meta : DataFrame, shape (n_samples, ...)
        Needs ``piece``, ``player``, ``excerpt``, ``bars`` and ``midi_path``.
    shared, threshold
        As in :func:`performance_groups`, which also gives the returned labels' type and the errors raised.
    """
    links = excerpt_overlaps(meta, shared, threshold=threshold)
    label = _join_labels(meta["excerpt"], zip(links["excerpt_a"], links["excerpt_b"], strict=True))
    logger.debug("%d excerpts form %d passages", len(label), len(set(label.values())))
    return meta["excerpt"].map(label).to_numpy()
