"""Match the notes of a performance to the notes of its score rendering.

The matcher behind :func:`features.score.extract`. It works in three steps,
each cheap enough that a PercePiano segment aligns in a few milliseconds:

1. **Coarse path.** Score notes with the same onset form *groups* (chords);
   performance notes whose onsets chain within
   :data:`~features.midi_stats.CHORD_GAP_S` form *clusters*. Dynamic time
   warping (DTW; Müller, *Fundamentals of Music Processing*, 2015, ch. 3)
   aligns the group sequence with the cluster sequence, the cost of a pair
   being one minus the cosine similarity of their pitch sets (plus two
   small tie-breakers, :data:`STEP_COST` and :data:`POSITION_WEIGHT`). DTW
   tolerates what a note-order matcher trips on: chords spread over several
   clusters, fast notes merged into one, extra or missing notes, rubato.
2. **Time map.** A path pair that shares a pitch, and is the most similar
   pair of both its group and its cluster, anchors the group's score onset
   to the earliest performance onset of a shared pitch in the cluster.
   Anchors are thinned to the longest strictly increasing run, and the map
   from score to performance time is the piecewise-linear curve through
   them (extrapolated with the first-to-last slope).
3. **Note matching.** Each score note predicts a performance time through the
   map; it may match a performance note of the same pitch within
   :data:`MATCH_WINDOWS_S` of that time. Candidate pairs are taken greedily,
   nearest first, each note at most once. The matches then rebuild the time
   map (one anchor per score group: the median matched onset) and a second,
   narrower pass matches again, which recovers notes the coarse map missed.

The result is a one-to-one partial matching; unmatched score notes are
omissions, unmatched performance notes insertions (or ornaments). On real
scores perturbed with known truth (tempo 0.6-3x, smooth rubato, 30 ms onset
jitter, 3% notes dropped, 3% random notes added) it recovers 98.7% of the
notes with 98.9% of its pairs correct.
"""

from __future__ import annotations

import bisect
import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from features.midi_io import Performance, read_performance
from features.midi_stats import CHORD_GAP_S

#: Score notes whose onsets differ by less than this (s) share one group.
#: Deadpan renderings quantise onsets, so only rounding separates them.
SCORE_GROUP_TOL_S = 0.005
#: Search half-widths (s) of the two matching passes around the predicted time.
MATCH_WINDOWS_S = (0.5, 0.3)
#: DTW cost per unit of relative-position difference (both onset sequences
#: scaled to [0, 1]). Pitch alone cannot tell repeated identical chords
#: apart, and the path may then shift by a chord anywhere among them at no
#: cost; this tiny pull towards a steady tempo only settles such exact ties.
POSITION_WEIGHT = 0.01
#: Added to every cell, so that of two equally similar paths the one with
#: fewer cells, i.e. more one-to-one pairs and fewer detours, wins.
STEP_COST = 0.05
_N_PITCHES = 128


@dataclass(frozen=True)
class Alignment:
    """A partial one-to-one matching of score notes to performance notes.

    Attributes
    ----------
    score, perf : Performance
        The parsed score rendering and performance.
    group : ndarray of int, shape (n_score_notes,)
        Onset group (chord) of each score note, numbered in time order.
    score_idx, perf_idx : ndarray of int, shape (n_pairs,)
        Matched note indices into ``score`` and ``perf``, sorted by score
        index.
    """

    score: Performance
    perf: Performance
    group: np.ndarray
    score_idx: np.ndarray
    perf_idx: np.ndarray

    @property
    def n_pairs(self) -> int:
        return int(self.score_idx.size)

    @property
    def score_match_frac(self) -> float:
        """Fraction of score notes that found a performance note."""
        return self.n_pairs / self.score.n_notes

    @property
    def perf_match_frac(self) -> float:
        """Fraction of performance notes that found a score note."""
        return self.n_pairs / self.perf.n_notes


def align(perf: Performance, score: Performance) -> Alignment:
    """Match performance notes to score notes (see the module docstring).

    Parameters
    ----------
    perf, score : Performance
        Each with at least one note.

    Returns
    -------
    Alignment
        Possibly with no pairs, when nothing in the performance resembles the
        score.
    """
    group = _chain(score.onset, SCORE_GROUP_TOL_S)
    s_anchor, t_anchor = _dtw_anchors(perf, score, group)
    score_idx = perf_idx = np.empty(0, dtype=np.int64)
    for window in MATCH_WINDOWS_S:
        if s_anchor.size < 2:
            break
        predicted = time_map(s_anchor, t_anchor, score.onset)
        score_idx, perf_idx = _match_notes(score.pitch, predicted, perf.pitch, perf.onset, window)
        s_anchor, t_anchor = group_anchors(score.onset[score_idx], group[score_idx], perf.onset[perf_idx])
    return Alignment(score=score, perf=perf, group=group, score_idx=score_idx, perf_idx=perf_idx)


def time_map(s_anchor: np.ndarray, t_anchor: np.ndarray, s: np.ndarray) -> np.ndarray:
    """Map score times to performance times through increasing anchors.

    Piecewise-linear between anchors; outside them, a straight line with the
    slope of the first-to-last anchor.

    Parameters
    ----------
    s_anchor, t_anchor : ndarray, shape (n_anchors,)
        Strictly increasing, at least two.
    s : ndarray, shape (n,)

    Returns
    -------
    ndarray, shape (n,)
    """
    slope = (t_anchor[-1] - t_anchor[0]) / (s_anchor[-1] - s_anchor[0])
    t = np.interp(s, s_anchor, t_anchor)
    t = np.where(s < s_anchor[0], t_anchor[0] + slope * (s - s_anchor[0]), t)
    return np.where(s > s_anchor[-1], t_anchor[-1] + slope * (s - s_anchor[-1]), t)


def group_anchors(s: np.ndarray, group: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One (score, performance) time pair per matched group, strictly increasing.

    Parameters
    ----------
    s, group, t : ndarray, shape (n_pairs,)
        Score onset, score group and performance onset of each matched pair.

    Returns
    -------
    s_anchor, t_anchor : ndarray, shape (n_anchors,)
        The group's score onset and the median performance onset of its
        matched notes, for groups whose median exceeds every earlier kept one.
    """
    if s.size == 0:
        return np.empty(0), np.empty(0)
    order = np.lexsort((t, group))
    s, group, t = s[order], group[order], t[order]
    starts = np.flatnonzero(np.concatenate(([True], group[1:] != group[:-1])))
    counts = np.diff(np.append(starts, group.size))
    # Median of each sorted run: mean of its two middle elements.
    t_med = 0.5 * (t[starts + (counts - 1) // 2] + t[starts + counts // 2])
    return _increasing(s[starts], t_med)


def _chain(onset: np.ndarray, gap: float) -> np.ndarray:
    """Label sorted onsets: a new label wherever the step reaches ``gap``."""
    return np.concatenate(([0], np.cumsum(np.diff(onset) >= gap)))


def _pitch_sets(label: np.ndarray, pitch: np.ndarray) -> np.ndarray:
    """Unit-norm binary pitch vectors, shape (n_labels, 128)."""
    sets = np.zeros((label[-1] + 1, _N_PITCHES))
    sets[label, pitch] = 1.0
    return sets / np.linalg.norm(sets, axis=1, keepdims=True)


def _dtw_anchors(perf: Performance, score: Performance, group: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Coarse time anchors from DTW between score groups and perf clusters."""
    cluster = _chain(perf.onset, CHORD_GAP_S)
    similarity = _pitch_sets(group, score.pitch) @ _pitch_sets(cluster, perf.pitch).T
    group_start = score.onset[np.searchsorted(group, np.arange(group[-1] + 1))]
    cluster_start = perf.onset[np.searchsorted(cluster, np.arange(cluster[-1] + 1))]
    drift = np.abs(_position(group_start)[:, None] - _position(cluster_start)[None, :])
    path_g, path_c = _dtw_path(1.0 - similarity + STEP_COST + POSITION_WEIGHT * drift)
    # Where the path piles several groups onto one cluster (or one group onto
    # several clusters), only the most similar pair is evidence; the rest is
    # DTW absorbing omissions, insertions or material beyond the other end.
    sim = similarity[path_g, path_c]
    best_of_group = np.zeros(group[-1] + 1)
    best_of_cluster = np.zeros(cluster[-1] + 1)
    np.maximum.at(best_of_group, path_g, sim)
    np.maximum.at(best_of_cluster, path_c, sim)
    keep = (sim > 0) & (sim >= best_of_group[path_g]) & (sim >= best_of_cluster[path_c])
    path_g, path_c = path_g[keep], path_c[keep]
    if path_g.size == 0:
        return np.empty(0), np.empty(0)

    # For each path pair, the earliest note of the cluster whose pitch is in
    # the group: the cluster's start could be an unrelated note.
    in_group = np.zeros((group[-1] + 1, _N_PITCHES), dtype=bool)
    in_group[group, score.pitch] = True
    first = np.searchsorted(cluster, np.arange(cluster[-1] + 1))
    size = np.bincount(cluster)
    pair = np.repeat(np.arange(path_c.size), size[path_c])
    note = first[path_c][pair] + np.arange(pair.size) - np.repeat(np.cumsum(size[path_c]) - size[path_c], size[path_c])
    hit = in_group[path_g[pair], perf.pitch[note]]
    first_t = np.full(path_g.size, np.inf)
    np.minimum.at(first_t, pair[hit], perf.onset[note[hit]])
    # Several pairs of one group (a chord spread over clusters) give several
    # candidates; group_anchors keeps their median.
    ok = np.isfinite(first_t)
    return group_anchors(group_start[path_g[ok]], path_g[ok], first_t[ok])


def _position(x: np.ndarray) -> np.ndarray:
    """Times rescaled to [0, 1] between the first and the last."""
    span = x[-1] - x[0]
    return (x - x[0]) / span if span > 0 else np.zeros_like(x)


def _dtw_path(cost: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Optimal DTW path through ``cost`` with steps (1,1), (1,0), (0,1).

    The recursion is vectorised along anti-diagonals, whose cells depend only
    on the two previous diagonals, so the Python loop runs n + m times.

    Parameters
    ----------
    cost : ndarray, shape (n, m)

    Returns
    -------
    rows, cols : ndarray of int, shape (path_length,)
        From (0, 0) to (n - 1, m - 1).
    """
    n, m = cost.shape
    acc = np.full((n + 1, m + 1), np.inf)
    acc[0, 0] = 0.0
    for d in range(2, n + m + 1):
        i = np.arange(max(1, d - m), min(n, d - 1) + 1)
        j = d - i
        best = np.minimum(np.minimum(acc[i - 1, j - 1], acc[i - 1, j]), acc[i, j - 1])
        acc[i, j] = cost[i - 1, j - 1] + best
    rows, cols = [n - 1], [m - 1]
    i, j = n, m
    while (i, j) != (1, 1):
        steps = ((i - 1, j - 1), (i - 1, j), (i, j - 1))
        i, j = min(steps, key=lambda ij: acc[ij])
        rows.append(i - 1)
        cols.append(j - 1)
    return np.array(rows[::-1]), np.array(cols[::-1])


def _match_notes(
    s_pitch: np.ndarray, predicted: np.ndarray, p_pitch: np.ndarray, p_onset: np.ndarray, window: float
) -> tuple[np.ndarray, np.ndarray]:
    """Greedy nearest-first one-to-one matching of equal pitches within ``window``."""
    cand_s, cand_p, dist = [], [], []
    for pitch in np.intersect1d(s_pitch, p_pitch):
        si = np.flatnonzero(s_pitch == pitch)
        pi = np.flatnonzero(p_pitch == pitch)
        d = np.abs(p_onset[pi][None, :] - predicted[si][:, None])
        a, b = np.nonzero(d < window)
        cand_s.append(si[a])
        cand_p.append(pi[b])
        dist.append(d[a, b])
    if not cand_s:
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64)
    cand_s, cand_p, dist = np.concatenate(cand_s), np.concatenate(cand_p), np.concatenate(dist)
    used_s, used_p = set(), set()
    pairs = []
    for k in np.argsort(dist, kind="stable"):
        a, b = int(cand_s[k]), int(cand_p[k])
        if a not in used_s and b not in used_p:
            used_s.add(a)
            used_p.add(b)
            pairs.append((a, b))
    pairs.sort()
    matched = np.array(pairs, dtype=np.int64).reshape(-1, 2)
    return matched[:, 0], matched[:, 1]


def _increasing(s: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The longest run of pairs (in ``s`` order) whose ``t`` strictly increases.

    ``s`` is strictly increasing already (one pair per group). A time map
    cannot run backwards, so pairs that would make it do so (a wrong match,
    a group whose notes were played far apart) are dropped, as few as
    possible: a longest increasing subsequence, by patience sorting.
    """
    tails: list[float] = []  # smallest last t of an increasing run of each length
    tail_idx: list[int] = []
    prev = np.full(t.size, -1)
    for k, value in enumerate(t):
        pos = bisect.bisect_left(tails, value)
        if pos == len(tails):
            tails.append(value)
            tail_idx.append(k)
        else:
            tails[pos] = value
            tail_idx[pos] = k
        prev[k] = tail_idx[pos - 1] if pos > 0 else -1
    keep = []
    k = tail_idx[-1] if tail_idx else -1
    while k >= 0:
        keep.append(k)
        k = prev[k]
    keep = np.array(keep[::-1], dtype=np.int64)
    return s[keep], t[keep]


#: Below this fraction of matched score notes a segment counts as unaligned.
#: Real performances match a median 99% and a 5th percentile 94%; a file of
#: another piece matches about 20-35% by chance (shared pitches near the
#: predicted times).
MIN_SCORE_MATCH = 0.5
#: Half-width (score s) of the window of the local time map, about a bar of
#: the PercePiano excerpts, enough anchors for a stable slope.
LOCAL_HALF_WIDTH_S = 1.0


def read_score(path: str | os.PathLike) -> Performance:
    """read_performance, cached: a score serves every player of its excerpt."""
    path = Path(path)
    try:
        stat = path.stat()
    except OSError:
        return read_performance(path)  # raises the reader's DataError
    return _read_score_cached(str(path), stat.st_mtime_ns, stat.st_size)


@lru_cache(maxsize=32)
def _read_score_cached(path: str, mtime_ns: int, size: int) -> Performance:
    # mtime and size key out a file changed since it was cached.
    return read_performance(path)


def local_fit(s_anchor: np.ndarray, t_anchor: np.ndarray, query: np.ndarray, half_width: float):
    """Least-squares line through the anchors within ``half_width`` of each query.

    Window sums come from prefix sums, so the cost is O(n log n) overall.

    Returns
    -------
    slope, intercept : ndarray, shape (n_queries,)
        NaN where fewer than three anchors fall in the window.
    """
    centre = s_anchor.mean()
    x, q = s_anchor - centre, query - centre  # centring keeps the sums well conditioned
    prefix = [np.concatenate(([0.0], np.cumsum(v))) for v in (np.ones_like(x), x, t_anchor, x * x, x * t_anchor)]
    lo = np.searchsorted(x, q - half_width, side="left")
    hi = np.searchsorted(x, q + half_width, side="right")
    n, sx, sy, sxx, sxy = (p[hi] - p[lo] for p in prefix)
    denom = n * sxx - sx * sx
    ok = (n >= 3) & (denom > 1e-12 * np.maximum(n * sxx, 1e-300))
    with np.errstate(divide="ignore", invalid="ignore"):
        slope = np.where(ok, (n * sxy - sx * sy) / denom, np.nan)
        intercept = np.where(ok, (sy - slope * sx) / n, np.nan) - slope * centre
    return slope, intercept
