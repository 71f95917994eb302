"""Note-level summary features for the trees: what the note stage makes measurable, as ``score`` set columns.

Computed from the same alignment and per-note table as the note stage
(:func:`features.notes.note_table`), so they describe timing, dynamics and
pedalling *relative to the score's beats, bars and harmony*, which the
segment-level ``sc_*`` features (one time map per segment) cannot see:

* **Beat anchors.** Each score beat (an integer score position, see
  :mod:`features.notes`) with matched notes starting on it gives an anchor:
  its score onset ``S`` and the median performed onset ``T`` of those notes
  (anchors whose ``T`` would run backwards are dropped, as few as possible).
  The *beat-anchored map* is the piecewise-linear curve through them. A beat
  interval's tempo is ``(T2 - T1) / (S2 - S1)`` over the segment's global
  ratio between its first and last beat anchors, in log2 (octaves; > 0 slower).
* **Beat deviation** of a matched note within the anchors' span: its onset
  minus the beat-anchored map at its score onset (ms). For a note on a beat
  that is its offset from the beat's median; for an off-beat note, how early
  or late it falls within its beat relative to the score's subdivision.
* **Phrases** are spans of :data:`PHRASE_BARS` bars from the score's first
  bar (PercePiano excerpts are 4, 8 or 16 bars, so a 4-bar excerpt still has
  two); no phrase analysis is attempted.
* **Harmonic changes.** For every score beat, the pitch classes of the score
  notes sounding in it (onset before the beat's end, release after its
  start); a beat whose set shares less than :data:`HARMONY_JACCARD` of its
  pitch classes (Jaccard index) with the previous beat's, and on which a score
  note starts, is a change, placed in the performance by the time map through
  the alignment's group anchors. A *lift* is the sustain pedal (CC64) falling
  from >= 64 to < 64.

Every feature is NaN when the segment is not aligned (no score, a match
below :data:`features.score.MIN_SCORE_MATCH`) or when its ingredients are
missing (e.g. fewer than two beat anchors, no harmonic change).
"""

from __future__ import annotations

import numpy as np

from features.midi_stats import _mean, _std
from features.notes import NoteTable
from features.score_align import group_anchors, time_map

#: Bars per phrase of the phrase-level features.
PHRASE_BARS = 2
#: Below this Jaccard index of pitch-class sets, two successive beats hold different harmonies.
HARMONY_JACCARD = 0.5
#: A lift counts as the pedal change of a harmonic change from this long before it to this long after (s).
LIFT_WINDOW_S = (-0.25, 0.5)
#: The pedal "blurs" a change when it is down this long before and after it (s) without a lift between.
BLUR_SPAN_S = (-0.1, 0.3)
PEDAL_DOWN = 64
_ON_BEAT_TOL = 1e-6

FAMILIES: dict[str, str] = {
    "sc_beat": "tempo from beat to beat and timing within beats, against the score's beats",
    "sc_bar": "tempo from bar to bar against the score's bars",
    "sc_phrase": "timing variance and final lengthening per two-bar span",
    "sc_metric": "dynamics of the score's downbeats",
    "sc_harm": "sustain-pedal changes at the score's harmonic changes",
}

FEATURES: dict[str, str] = {
    "sc_beat_tempo_std": "std of log2 tempo of successive beat intervals over the global ratio (octaves)",
    "sc_beat_tempo_change_std": "std of the change of log2 tempo from one beat interval to the next (octaves)",
    "sc_beat_micro_mean": "mean onset of off-beat notes against the beat-anchored time map, > 0 late (ms)",
    "sc_beat_micro_std": "std of off-beat notes' onsets against the beat-anchored time map (ms)",
    "sc_bar_tempo_std": "std of log2 tempo of successive bar intervals (downbeat to downbeat) over the global "
                        "ratio (octaves)",
    "sc_phrase_timing_std_mean": "mean over two-bar spans of the std of notes' onsets against the beat-anchored "
                                 "map (ms)",
    "sc_phrase_timing_std_sd": "sd over two-bar spans of that std, how evenly timing varies (ms)",
    "sc_phrase_final_tempo": "mean over two-bar spans of log2 of the last beat interval over the span's mean "
                             "interval, > 0 slows at the end (octaves)",
    "sc_metric_downbeat_vel": "mean velocity of notes on downbeats minus that of the other notes (MIDI velocity)",
    "sc_harm_pedal_change_frac": "fraction of harmonic changes with a sustain-pedal lift from 0.25 s before to "
                                 "0.5 s after (ratio)",
    "sc_harm_pedal_lag_median": "median time from a harmonic change to its pedal lift, > 0 after (ms)",
    "sc_harm_pedal_blur_frac": "fraction of harmonic changes with the sustain pedal held down from 0.1 s before "
                               "to 0.3 s after, no lift (ratio)",
}


def summary(table: NoteTable | None, grid) -> dict[str, float]:
    """Every feature of :data:`FEATURES` for one segment.

    Parameters
    ----------
    table : NoteTable or None
        The note table of the segment (:func:`features.notes.note_table`);
        None or unaligned gives all NaN.
    grid : ScoreGrid or None
        The score file's grid.

    Returns
    -------
    dict of str to float, keys in :data:`FEATURES` order.
    """
    values = dict.fromkeys(FEATURES, np.nan)
    if table is None or not table.aligned or table.alignment is None or grid is None:
        return values
    al = table.alignment
    m = al.perf_idx
    s = al.score.onset[al.score_idx]
    t = al.perf.onset[m]
    beat = table.column("score_beat")[m]
    on_beat = np.abs(beat - np.round(beat)) < _ON_BEAT_TOL

    # Beat anchors: one per score beat with matched notes starting on it.
    S, T = _anchors(s[on_beat], t[on_beat], np.round(beat[on_beat]))
    if S.size >= 2:
        ratio = (T[-1] - T[0]) / (S[-1] - S[0])
        tempo = np.log2(np.diff(T) / np.diff(S) / ratio)
        values["sc_beat_tempo_std"] = _std(tempo)
        values["sc_beat_tempo_change_std"] = _std(np.diff(tempo)) if tempo.size >= 2 else np.nan
        inside = (s >= S[0]) & (s <= S[-1])
        dev = 1e3 * (t[inside] - time_map(S, T, s[inside]))
        off = ~on_beat[inside]
        values["sc_beat_micro_mean"] = _mean(dev[off])
        values["sc_beat_micro_std"] = _std(dev[off])
        _, in_bar_b, bars_b = grid.position(S)
        down = np.abs(in_bar_b) < _ON_BEAT_TOL
        if down.sum() >= 3:
            values["sc_bar_tempo_std"] = _std(np.log2(np.diff(T[down]) / np.diff(S[down]) / ratio))
        phrase = np.floor(table.column("bar")[m][inside] / PHRASE_BARS)
        stds = [_std(dev[phrase == p]) for p in np.unique(phrase) if np.sum(phrase == p) >= 3]
        values["sc_phrase_timing_std_mean"] = _mean(np.asarray(stds))
        values["sc_phrase_timing_std_sd"] = _std(np.asarray(stds)) if len(stds) >= 2 else np.nan
        phrase_of_interval = np.floor(bars_b[:-1] / PHRASE_BARS)  # an interval belongs to its start's phrase
        interval = np.diff(T) / np.diff(S)
        finals = []
        for p in np.unique(phrase_of_interval):
            x = interval[phrase_of_interval == p]
            if x.size >= 2:
                finals.append(np.log2(x[-1] / x.mean()))
        values["sc_phrase_final_tempo"] = _mean(np.asarray(finals))

    velocity = al.perf.velocity[m].astype(np.float64)
    downbeat = on_beat & (np.abs(table.column("beat_in_bar")[m]) < _ON_BEAT_TOL)
    if downbeat.any() and (~downbeat).any():
        values["sc_metric_downbeat_vel"] = float(velocity[downbeat].mean() - velocity[~downbeat].mean())
    values.update(_pedal_at_changes(table, grid))
    return values


def _anchors(s: np.ndarray, t: np.ndarray, beat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(score onset, median performed onset) per beat, strictly increasing in both (see group_anchors)."""
    if s.size == 0:
        return np.empty(0), np.empty(0)
    _, beat_id = np.unique(beat, return_inverse=True)
    return group_anchors(s, beat_id, t)  # the notes of one beat share its score onset


def _pedal_at_changes(table: NoteTable, grid) -> dict[str, float]:
    al = table.alignment
    score, perf = al.score, al.perf
    out = {k: np.nan for k in ("sc_harm_pedal_change_frac", "sc_harm_pedal_lag_median", "sc_harm_pedal_blur_frac")}
    start, _, _ = grid.position(score.onset)
    end, _, _ = grid.position(score.offset)
    first, last = int(np.floor(start.min() + _ON_BEAT_TOL)), int(np.ceil(end.max() - _ON_BEAT_TOL))
    beats = np.arange(first, last)
    sounding = (start[None, :] < beats[:, None] + 1 - _ON_BEAT_TOL) & (end[None, :] > beats[:, None] + _ON_BEAT_TOL)
    pcs = np.zeros((beats.size, 12), dtype=bool)
    rows, cols = np.nonzero(sounding)
    pcs[rows, score.pitch[cols] % 12] = True
    inter = (pcs[1:] & pcs[:-1]).sum(1)
    union = (pcs[1:] | pcs[:-1]).sum(1)
    both = pcs[1:].any(1) & pcs[:-1].any(1)
    change = both & (inter < HARMONY_JACCARD * np.maximum(union, 1))
    # The change's score time: the onset of a score note starting on that beat (none: no event to place).
    s_change = []
    for b in beats[1:][change]:
        on = np.flatnonzero(np.abs(start - b) < _ON_BEAT_TOL)
        if on.size:
            s_change.append(score.onset[on[0]])
    if not s_change:
        return out
    s_anchor, t_anchor = group_anchors(score.onset[al.score_idx], al.group[al.score_idx], perf.onset[al.perf_idx])
    t_change = time_map(s_anchor, t_anchor, np.asarray(s_change))
    times, values = perf.sustain_times, perf.sustain_values
    down = values >= PEDAL_DOWN
    lifts = times[1:][down[:-1] & ~down[1:]] if times.size >= 2 else np.empty(0)
    lag, blur = [], []
    for tc in t_change:
        near = lifts[(lifts >= tc + LIFT_WINDOW_S[0]) & (lifts <= tc + LIFT_WINDOW_S[1])]
        if near.size:
            lag.append(near[np.argmin(np.abs(near - tc))] - tc)
        span_lift = np.any((lifts > tc + BLUR_SPAN_S[0]) & (lifts < tc + BLUR_SPAN_S[1]))
        held = _down_at(times, values, tc + BLUR_SPAN_S[0]) and _down_at(times, values, tc + BLUR_SPAN_S[1])
        blur.append(held and not span_lift)
    out["sc_harm_pedal_change_frac"] = len(lag) / len(t_change)
    out["sc_harm_pedal_lag_median"] = 1e3 * float(np.median(lag)) if lag else np.nan
    out["sc_harm_pedal_blur_frac"] = float(np.mean(blur))
    return out


def _down_at(times: np.ndarray, values: np.ndarray, when: float) -> bool:
    idx = np.searchsorted(times, when, side="right") - 1
    return bool(idx >= 0 and values[idx] >= PEDAL_DOWN)
