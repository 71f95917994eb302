"""What two MIDI files have in common note for note: bigram codes and the near-copy measures.

A feature of the notes themselves, read from the MIDI files (never from
their names), shared by the splits (near-duplicates, passage and performance
groups, the leakage check: :mod:`splits.overlap`) and the SSAST corpus
(:mod:`features.corpus`, which leaves out near-copies of rated segments).

Shared-note fraction
--------------------
Each performance becomes the multiset of its *note bigrams*: consecutive notes
(sorted by onset, then pitch) as ``(pitch, velocity, next pitch, next
velocity)``. Velocities are what a player's key strokes recorded, so two
performances share a bigram when they are the same recording of the same
notes; a different player (or the same player's repeat of the same bars) plays
other velocities. The shared-note fraction of two segments is the size of the
multiset intersection divided by the bigram count of the *shorter* one, so an
8-bar cut of a 16-bar segment scores 1.0 against it. A fraction at or above
:data:`DEFAULT_THRESHOLD` (0.8) marks a near-duplicate.

Onset bigrams (renderings)
--------------------------
The note bigrams tell recordings apart by their velocities, so they miss two
*renderings* of a score that share every onset but not the velocity map: 6 of
the 13 unlabelled ``Score`` segments share under 80 % of their note bigrams
with their rated ``Score2`` twins (the same notes at the same milliseconds,
constant velocity 80 against a dynamics map). :func:`onset_bigrams` ignores
velocity: a performance becomes its sequence of onsets (the notes that start
within the same millisecond form one chord), each bigram the chord, the gap to
the next onset in 10 ms steps and the next chord. Chords count as one event so
that a chordal texture does not match another rendering at another tempo
through its within-chord pairs alone. :func:`near_copies` applies both
measures, each with the same threshold, between two lists of files.

"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from benchmark.errors import CacheError, ConfigError
from benchmark.hashing import file_sha256
from features.cache import make_key
from features.midi_io import read_performance

logger = logging.getLogger(__name__)

#: Shared-note fraction at or above which two segments count as near-duplicates.
DEFAULT_THRESHOLD = 0.8

#: In-process memo: (measure, file sha256) -> expanded bigram codes (a file's notes never change under its hash).
_CODES: dict[tuple[str, str], np.ndarray] = {}
#: Memo keys computed alongside another measure's parse and not yet offered to a note cache.
_UNCACHED: set[tuple[str, str]] = set()
#: Feature-cache stage of the bigram codes, and its version (bump it when :func:`note_bigrams` changes).
BIGRAM_STAGE, BIGRAM_VERSION = "note_bigrams", "1"
#: Version of :func:`onset_bigrams` (kept in the same stage, under keys of their own).
ONSET_VERSION = "1"
#: Width of the onset-gap steps of :func:`onset_bigrams`, in seconds.
ONSET_GAP_S = 0.01
#: The near-copy measures of :func:`near_copies`: name -> what two files sharing >= 80 % of them have in common.
MEASURES = {"notes": "note bigrams (pitch and velocity of consecutive notes): the same key strokes",
            "onsets": "onset bigrams (chord, gap in 10 ms steps, next chord): the same timing, any velocities"}
#: The feature cache :func:`note_bigrams` reads and fills, set by :func:`note_cache` (None: memo only).
_CACHE: ContextVar[Any] = ContextVar("note_bigram_cache", default=None)


@contextmanager
def note_cache(cache: Any) -> Iterator[None]:
    """Within the block, :func:`note_bigrams` keeps its codes in ``cache`` (a :class:`features.cache.Cache`).

    Reading every MIDI file's notes is most of what the split groups and the
    leakage check cost; with the cache, a file is parsed once per content,
    not once per process. A hit returns the same codes as a parse, bit for bit.
    """
    token = _CACHE.set(cache)
    try:
        yield
    finally:
        _CACHE.reset(token)


def note_bigrams(path: str | Path) -> np.ndarray:
    """The note-bigram multiset of one MIDI file, as unique integer codes.

    A bigram ``(p1, v1, p2, v2)`` (each 0..127) is packed into 28 bits; its
    ``k``-th occurrence in the file gets the code ``bigram * 2**20 + k``, so that
    the multiset intersection of two files is the plain set intersection of
    their codes.

    Parameters
    ----------
    path : str or Path

    Returns
    -------
    ndarray of int64, shape (n_bigrams,)
        Sorted, unique.

    Raises
    ------
    DataError
        If the file cannot be read (see :func:`features.midi_io.read_performance`).
    """
    return _codes(path, "notes")


def onset_bigrams(path: str | Path) -> np.ndarray:
    """The onset-bigram multiset of one MIDI file, as unique integer codes (velocities ignored).

    The notes starting within the same millisecond form one chord, identified
    by a 21-bit hash of its pitch multiset; a bigram is (chord, gap to the next
    onset in :data:`ONSET_GAP_S` steps, capped at 81.91 s, next chord), and its
    ``k``-th occurrence (capped at 255) gets its own code, as in :func:`note_bigrams`.

    Parameters
    ----------
    path : str or Path

    Returns
    -------
    ndarray of int64, shape (n_onsets - 1,) at most
        Sorted, unique.

    Raises
    ------
    DataError
        If the file cannot be read.
    """
    return _codes(path, "onsets")


def _codes(path: str | Path, measure: str) -> np.ndarray:
    """One measure's codes of a file: from the memo, the note cache (:func:`note_cache`) or a parse.

    A parse computes every measure at once (a file is read once for both) and
    memoises them; only the requested one goes to the cache then, the others
    when they are first requested with a cache set.
    """
    key = (measure, file_sha256(Path(path)))
    hit = _CODES.get(key)
    if hit is not None:
        if key in _UNCACHED and _CACHE.get() is not None:
            _fetch(path, measure, lambda m: {"codes": hit})
            _UNCACHED.discard(key)
        return hit
    parsed: list = []  # the file's notes, read at most once

    def compute(m: str) -> dict[str, np.ndarray]:
        if not parsed:
            parsed.append(_read_notes(path))
        return {"codes": _CODE_OF[m](parsed[0])}

    _CODES[key] = _fetch(path, measure, compute)
    for other in MEASURES:
        if parsed and (other, key[1]) not in _CODES:
            _CODES[(other, key[1])] = compute(other)["codes"]
            _UNCACHED.add((other, key[1]))
    return _CODES[key]


def _fetch(path: str | Path, measure: str, compute) -> np.ndarray:
    """``compute(measure)["codes"]`` through the note cache, when one is set."""
    cache = _CACHE.get()
    if cache is None:
        return compute(measure)["codes"]
    # The note bigrams keep their original key (params {}), so caches filled before the onsets stay valid.
    entry = (make_key(BIGRAM_STAGE, BIGRAM_VERSION, {}, [path]) if measure == "notes" else
             make_key(BIGRAM_STAGE, ONSET_VERSION, {"measure": measure, "gap_s": ONSET_GAP_S}, [path]))
    try:
        return cache.fetch(BIGRAM_STAGE, entry, lambda: compute(measure))["codes"]
    except CacheError as exc:
        # The cache only saves time here: the groups and the leakage check still get the notes.
        logger.warning("note bigrams of %s not cached: %s", path, exc)
        return compute(measure)["codes"]


def _read_notes(path: str | Path):
    """The file's notes (:func:`features.midi_io.read_performance`): the one place this module reads MIDI."""
    return read_performance(path)


def _parse_bigrams(path: str | Path) -> np.ndarray:
    """The codes of :func:`note_bigrams`, read from the file."""
    return _note_codes(_read_notes(path))


def _note_codes(perf) -> np.ndarray:
    order = np.lexsort((perf.pitch, perf.onset))
    p = perf.pitch[order].astype(np.int64)
    v = perf.velocity[order].astype(np.int64)
    bigram, occurrence = _occurrence((((p[:-1] << 7 | v[:-1]) << 7 | p[1:]) << 7) | v[1:])
    return np.unique(bigram << 20 | occurrence)


def _occurrence(codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``codes`` sorted, and each one's occurrence index among the equal codes (0 for the first)."""
    codes = np.sort(codes)
    starts = np.r_[0, np.flatnonzero(np.diff(codes)) + 1] if codes.size else np.zeros(0, dtype=np.int64)
    return codes, np.arange(codes.size) - np.repeat(starts, np.diff(np.r_[starts, codes.size]))


def _pitch_hashes() -> np.ndarray:
    """A fixed 64-bit random number per MIDI pitch (from sha256, so the same on every platform)."""
    import hashlib

    return np.array([int.from_bytes(hashlib.sha256(f"pitch {p}".encode()).digest()[:8], "little")
                     for p in range(128)], dtype=np.uint64)


_PITCH_HASH = _pitch_hashes()


def _onset_codes(perf) -> np.ndarray:
    """The codes of :func:`onset_bigrams` of a parsed performance."""
    order = np.lexsort((perf.pitch, perf.onset))
    onset = perf.onset[order]
    starts = np.r_[0, np.flatnonzero(np.diff(np.round(onset * 1000))) + 1]
    # A chord's hash: the wrapping sum of its pitches' random numbers (a multiset hash), top 21 bits.
    chord = (np.add.reduceat(_PITCH_HASH[perf.pitch[order].astype(np.int64)], starts) >> np.uint64(43))
    chord = chord.astype(np.int64)
    gap = np.minimum(np.round(np.diff(onset[starts]) / ONSET_GAP_S).astype(np.int64), 2**13 - 1)
    bigram, occurrence = _occurrence((chord[:-1] << 13 | gap) << 21 | chord[1:])
    return np.unique(bigram << 8 | np.minimum(occurrence, 255))


_CODE_OF = {"notes": _note_codes, "onsets": _onset_codes}


def shared_fraction(codes_a: Sequence[np.ndarray], codes_b: Sequence[np.ndarray]) -> np.ndarray:
    """Shared-code fraction of every pair: multiset intersection / code count of the shorter of the two.

    Parameters
    ----------
    codes_a, codes_b : sequences of ndarray
        Codes of :func:`note_bigrams` or :func:`onset_bigrams` (one measure for both).

    Returns
    -------
    ndarray of float, shape (len(codes_a), len(codes_b))
        0 where either file has no bigram.
    """
    from scipy import sparse

    codes = [*codes_a, *codes_b]
    sizes = np.array([c.size for c in codes], dtype=np.int64)
    vocab, col = np.unique(np.concatenate(codes) if codes else np.zeros(0, np.int64), return_inverse=True)
    row = np.repeat(np.arange(len(codes)), sizes)
    incidence = sparse.csr_matrix((np.ones(row.size, dtype=np.int32), (row, col)), shape=(len(codes), vocab.size))
    n = len(codes_a)
    shared = (incidence[:n] @ incidence[n:].T).toarray().astype(float)
    smaller = np.minimum.outer(sizes[:n], sizes[n:]).astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(smaller > 0, shared / smaller, 0.0)


def near_copies(paths_a: Sequence[str | Path], paths_b: Sequence[str | Path], *,
                threshold: float = DEFAULT_THRESHOLD, measures: Sequence[str] = tuple(MEASURES)) -> pd.DataFrame:
    """Every pair (a, b) of files that share at least ``threshold`` of the shorter one's bigrams, per measure.

    Either file may hold the other: the fraction is relative to the shorter,
    so a 16-bar file holding an 8-bar one scores 1.0, whichever list it is in.

    Parameters
    ----------
    paths_a, paths_b : sequences of paths
        MIDI files; every one must be readable.
    threshold : float, default 0.8
    measures : names in :data:`MEASURES`
        ``notes`` (:func:`note_bigrams`) and ``onsets`` (:func:`onset_bigrams`).

    Returns
    -------
    DataFrame
        One row per (pair, measure) at or above the threshold: ``a``, ``b`` (positions
        in the two lists), ``measure``, ``shared`` (the fraction), ``n_a``, ``n_b``
        (bigram counts: the smaller one is the file held by the other).

    Raises
    ------
    ConfigError
        Unknown measure, or a threshold outside (0, 1].
    DataError
        A file cannot be read.
    """
    unknown = [m for m in measures if m not in MEASURES]
    if unknown:
        raise ConfigError(f"unknown near-copy measure(s) {unknown}; use {', '.join(MEASURES)}")
    if not 0 < threshold <= 1:
        raise ConfigError(f"threshold={threshold} must be in (0, 1]")
    parts = []
    for measure in measures:
        fetch = note_bigrams if measure == "notes" else onset_bigrams
        ca, cb = [fetch(p) for p in paths_a], [fetch(p) for p in paths_b]
        frac = shared_fraction(ca, cb)
        a, b = np.nonzero(frac >= threshold)
        parts.append(pd.DataFrame({"a": a, "b": b, "measure": measure, "shared": frac[a, b],
                                   "n_a": [ca[i].size for i in a], "n_b": [cb[j].size for j in b]}))
    columns = ["a", "b", "measure", "shared", "n_a", "n_b"]
    out = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=columns)
    return out[columns].astype({"a": np.int64, "b": np.int64, "n_a": np.int64, "n_b": np.int64})
