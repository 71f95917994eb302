"""The note stage: every performed note of a segment, in time order, with its features aligned to the score.

One array per segment, ``float32 (n_notes, n_columns)``, columns in
:data:`COLUMNS` order, cached like every stage (the key holds the performance
and score MIDI files' bytes, :data:`VERSION` and the alignment's settings).
The note-level networks (:mod:`models.note_models`) read it through
:meth:`features.inputs.SegmentInputs.notes`; the note summary features of the
``score`` set (:mod:`features.note_summary`) are computed from the same
per-note quantities.

How each column is made (``s`` score time, ``t`` performance time, seconds of
the MIDI files; conventions of :mod:`features.score`):

* The notes are matched to the score rendering by
  :func:`features.score_align.align`, the project's score alignment
  (``docs/score_alignment.md``). Each matched score group (chord) gives an
  anchor: its score onset and the median onset of its matched notes.
* **Score time of every note.** A matched note takes its score note's onset;
  an unmatched one (an insertion, an ornament) its onset mapped back through
  the piecewise-linear time map of the anchors (:func:`time_map` with the roles
  of score and performance swapped), so every note has a score position.
* **Local tempo.** The slope of the least-squares line through the anchors
  within :data:`features.score.LOCAL_HALF_WIDTH_S` score seconds of the note's
  score time (the local time map of ``sc_timing_local_*``), falling back to
  the line through all matched notes where fewer than three anchors are near.
  ``tempo`` is log2 of that slope (performance seconds per score second: > 0
  slower than notated), ``tempo_dev`` log2 of it over the segment's global
  ratio (first to last anchor).
* **Onset deviation** of a matched note: its onset minus the local time map's
  prediction from its score onset (the residual whose sd is
  ``sc_timing_local_std``). **Articulation**: log2 of the key-down length
  over the notated length times the local slope (``sc_art_*`` summarise its
  ratio). Both are 0 for an unmatched note (``matched`` = 0 says so).
* **Score position.** Score seconds become MIDI ticks through the score file's
  tempo map, ticks become beats and bars through its time signatures (a beat
  is the signature's denominator: a quarter in 3/4, a half in 2/2, an eighth
  in 6/8); bar 0 starts at the file's first tick, so a pickup written as a
  short bar (a 1/8 signature before 2/2) is bar 0.
* **Pedal.** The sustain (CC64) and una corda (CC67) values in force at the
  key press and at the key release, over 127.

A segment without a score, with an unreadable score, or whose alignment
matches less than :data:`features.score.MIN_SCORE_MATCH` of the score notes
keeps its performance columns and gets a stand-in grid (one beat per second
from its first onset, four beats to a bar), every score-derived column 0 and
``matched`` 0; the entry's ``match`` record says why (NaN match fractions
without a score) and a warning is logged.

The entry also stores ``match``: ``[share of score notes matched, share of
performed notes matched]``, the alignment quality of the segment
(``scripts/note_stage_report.py`` summarises it over the dataset).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import mido
import numpy as np

from benchmark.errors import DataError
from features.cache import Cache, make_key
from features.midi_io import DEFAULT_TEMPO_US, Performance, read_performance
from features.midi_stats import _slope, _state_at
from features.score_align import (
    LOCAL_HALF_WIDTH_S,
    MATCH_WINDOWS_S,
    MIN_SCORE_MATCH,
    SCORE_GROUP_TOL_S,
    Alignment,
    align,
    group_anchors,
    local_fit,
    read_score,
    time_map,
)

logger = logging.getLogger(__name__)

VERSION = "1"
STAGE = "notes"
#: Durations and intervals are floored here (s) before their log2: a chord's
#: notes are a few ms apart, and log2(0) is no feature.
MIN_TIME_S = 0.01
#: Beats per bar and seconds per beat of the stand-in grid of an unaligned segment.
FALLBACK_BEATS_PER_BAR, FALLBACK_BEAT_S = 4, 1.0

COLUMNS: dict[str, str] = {
    "pitch": "MIDI note number (semitones)",
    "onset": "key press, from the segment's first key press (s)",
    "log_duration": "log2 of the key-down length, floored at 10 ms (log2 s)",
    "velocity": "MIDI velocity (1-127)",
    "log_ioi": "log2 of the interval from the previous note's onset, floored at 10 ms; the first note gets the "
               "floor (log2 s)",
    "tempo": "log2 of the local time map's slope at the note's score position, > 0 slower than notated (octaves)",
    "tempo_dev": "log2 of that local slope over the segment's global tempo ratio (octaves)",
    "onset_dev": "onset minus the local time map's prediction from the score onset; 0 if unmatched (s)",
    "articulation": "log2 of the key-down length over the notated length times the local slope; 0 if unmatched "
                    "(octaves)",
    "sustain_onset": "sustain pedal (CC64) value at the key press over 127 (ratio)",
    "sustain_release": "sustain pedal (CC64) value at the key release over 127 (ratio)",
    "soft_onset": "una corda (CC67) value at the key press over 127 (ratio)",
    "score_beat": "score position from the score's first tick, in beats of the time signature; unmatched notes "
                  "mapped back through the time map (beats)",
    "beat_in_bar": "score position from the last bar line (beats)",
    "bar": "bar number, 0 = the score's first bar (bars)",
    "beat": "beat number, floor of score_beat (beats)",
    "score_duration": "notated duration; 0 if unmatched (beats)",
    "matched": "1 if the alignment matched the note to a score note, else 0 (flag)",
}
COLUMN_INDEX: dict[str, int] = {name: i for i, name in enumerate(COLUMNS)}


# --- the score's grid: tempo map and time signatures ------------------------------------------------------
@dataclass(frozen=True)
class ScoreGrid:
    """Tempo map and time signatures of a score MIDI file: seconds -> ticks -> beats and bars.

    Attributes
    ----------
    ticks_per_beat : int
        The file's resolution (ticks per quarter note).
    tempo_ticks, tempo_seconds, sec_per_tick : ndarray, shape (n_tempi,)
        Each tempo segment's first tick, its time in seconds and its seconds per tick.
    sig_ticks : ndarray, shape (n_signatures,)
        Each time signature's first tick (the first is 0).
    beat_ticks, bar_ticks : ndarray, shape (n_signatures,)
        Ticks per beat (the signature's denominator) and per bar.
    sig_beats, sig_bars : ndarray, shape (n_signatures,)
        Beats and bars before each signature starts (a bar cut short by a
        change of signature counts as a bar).
    """

    ticks_per_beat: int
    tempo_ticks: np.ndarray
    tempo_seconds: np.ndarray
    sec_per_tick: np.ndarray
    sig_ticks: np.ndarray
    beat_ticks: np.ndarray
    bar_ticks: np.ndarray
    sig_beats: np.ndarray
    sig_bars: np.ndarray

    def ticks(self, seconds: np.ndarray) -> np.ndarray:
        """Score seconds -> ticks (before the first tempo: the first tempo, extrapolated)."""
        seconds = np.asarray(seconds, dtype=np.float64)
        idx = np.maximum(np.searchsorted(self.tempo_seconds, seconds, side="right") - 1, 0)
        return self.tempo_ticks[idx] + (seconds - self.tempo_seconds[idx]) / self.sec_per_tick[idx]

    def position(self, seconds: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Score seconds -> (beats from the start, beats from the last bar line, bar number).

        Positions before the first tick (an unmatched note mapped back before
        the score's start) extend the first signature backwards: negative beats and bars.
        """
        ticks = self.ticks(seconds)
        k = np.maximum(np.searchsorted(self.sig_ticks, ticks, side="right") - 1, 0)
        rel = ticks - self.sig_ticks[k]
        beats = self.sig_beats[k] + rel / self.beat_ticks[k]
        # A tick's float error must not drop a note on a bar line into the bar before.
        whole = np.floor(rel / self.bar_ticks[k] + 1e-9)
        beat_in_bar = np.maximum(rel - whole * self.bar_ticks[k], 0.0) / self.beat_ticks[k]
        return beats, beat_in_bar, self.sig_bars[k] + whole


def read_grid(path: str | os.PathLike) -> ScoreGrid:
    """The tempo map and time signatures of a MIDI file (cached per path, size and mtime).

    Tempo events follow :func:`features.midi_io.read_performance` (merged over
    tracks, 120 bpm before the first); without a time signature before the
    first tick the grid is 4/4 there, as MIDI defines.

    Raises
    ------
    DataError
        The file is missing or cannot be parsed.
    """
    path = Path(path)
    try:
        stat = path.stat()
    except OSError as exc:
        raise DataError(f"cannot read score MIDI '{path}': {exc.strerror or exc}") from exc
    return _read_grid_cached(str(path), stat.st_mtime_ns, stat.st_size)


@lru_cache(maxsize=32)
def _read_grid_cached(path: str, mtime_ns: int, size: int) -> ScoreGrid:
    try:
        midi = mido.MidiFile(path)
    except Exception as exc:  # mido raises many types on bad bytes; one error type for callers
        raise DataError(f"cannot parse score MIDI '{path}': {type(exc).__name__}: {exc}") from exc
    if midi.ticks_per_beat <= 0:
        raise DataError(f"score MIDI '{path}' uses SMPTE time division, which is not supported")
    tempi, signatures = [], []
    for track in midi.tracks:
        tick = 0
        for msg in track:
            tick += msg.time
            if msg.type == "set_tempo":
                tempi.append((tick, msg.tempo))
            elif msg.type == "time_signature":
                signatures.append((tick, msg.numerator, msg.denominator))
    return make_grid(midi.ticks_per_beat, tempi, signatures)


def make_grid(ticks_per_beat: int, tempi: list[tuple[int, int]], signatures: list[tuple[int, int, int]]) -> ScoreGrid:
    """A :class:`ScoreGrid` from (tick, microseconds per quarter) and (tick, numerator, denominator) events."""
    tempi = sorted(tempi)
    if not tempi or tempi[0][0] > 0:
        tempi.insert(0, (0, DEFAULT_TEMPO_US))
    tempo_ticks = np.array([t for t, _ in tempi], dtype=np.float64)
    sec_per_tick = np.array([u for _, u in tempi], dtype=np.float64) / (1e6 * ticks_per_beat)
    tempo_seconds = np.concatenate(([0.0], np.cumsum(np.diff(tempo_ticks) * sec_per_tick[:-1])))

    # Of several signatures on one tick the last holds (stable sort keeps file order).
    by_tick: dict[int, tuple[int, int]] = {}
    for tick, num, den in sorted(signatures, key=lambda s: s[0]):
        if num > 0 and den > 0:
            by_tick[int(tick)] = (int(num), int(den))
    if 0 not in by_tick:
        by_tick[0] = (4, 4)
    sig_ticks = np.array(sorted(by_tick), dtype=np.float64)
    beat_ticks = np.array([ticks_per_beat * 4.0 / by_tick[int(t)][1] for t in sig_ticks])
    bar_ticks = np.array([by_tick[int(t)][0] for t in sig_ticks]) * beat_ticks
    spans = np.diff(sig_ticks)
    sig_beats = np.concatenate(([0.0], np.cumsum(spans / beat_ticks[:-1])))
    sig_bars = np.concatenate(([0.0], np.cumsum(np.ceil(spans / bar_ticks[:-1] - 1e-9))))
    return ScoreGrid(int(ticks_per_beat), tempo_ticks, tempo_seconds, sec_per_tick, sig_ticks, beat_ticks,
                     bar_ticks, sig_beats, sig_bars)


# --- per-note features ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class NoteTable:
    """The note stage's array of one segment and how its alignment went.

    Attributes
    ----------
    values : ndarray, shape (n_notes, n_columns)
        float64, columns in :data:`COLUMNS` order, notes in time order.
    score_match_frac, perf_match_frac : float
        Shares of score and of performed notes matched (NaN without a score).
    aligned : bool
        False when the score-derived columns are the stand-in (see the module docstring).
    alignment : Alignment or None
    """

    values: np.ndarray
    score_match_frac: float
    perf_match_frac: float
    aligned: bool
    alignment: Alignment | None = None

    def column(self, name: str) -> np.ndarray:
        return self.values[:, COLUMN_INDEX[name]]


def _log2_floor(x: np.ndarray) -> np.ndarray:
    return np.log2(np.maximum(x, MIN_TIME_S))


def note_table(perf: Performance, score: Performance | None, grid: ScoreGrid | None,
               alignment: Alignment | None = None) -> NoteTable:
    """Every performed note's features (see the module docstring).

    Parameters
    ----------
    perf : Performance
    score : Performance or None
        The score rendering; None when the segment has none.
    grid : ScoreGrid or None
        The score file's grid (needed when ``score`` is given).
    alignment : Alignment, optional
        ``align(perf, score)`` when the caller has it already.

    Returns
    -------
    NoteTable
    """

    n = perf.n_notes
    out = np.zeros((n, len(COLUMNS)))
    col = COLUMN_INDEX
    out[:, col["pitch"]] = perf.pitch
    out[:, col["onset"]] = perf.onset - perf.onset[0]
    out[:, col["log_duration"]] = _log2_floor(perf.offset - perf.onset)
    out[:, col["velocity"]] = perf.velocity
    out[:, col["log_ioi"]] = _log2_floor(np.diff(perf.onset, prepend=perf.onset[0]))
    out[:, col["sustain_onset"]] = _state_at(perf.sustain_times, perf.sustain_values, perf.onset) / 127.0
    out[:, col["sustain_release"]] = _state_at(perf.sustain_times, perf.sustain_values, perf.offset) / 127.0
    out[:, col["soft_onset"]] = _state_at(perf.soft_times, perf.soft_values, perf.onset) / 127.0

    def unaligned(score_frac: float, perf_frac: float, al: Alignment | None) -> NoteTable:
        beats = (perf.onset - perf.onset[0]) / FALLBACK_BEAT_S
        out[:, col["score_beat"]] = beats
        out[:, col["beat"]] = np.floor(beats)
        out[:, col["bar"]] = np.floor(beats / FALLBACK_BEATS_PER_BAR)
        out[:, col["beat_in_bar"]] = beats - FALLBACK_BEATS_PER_BAR * out[:, col["bar"]]
        return NoteTable(out, score_frac, perf_frac, False, al)

    if score is None or grid is None:
        return unaligned(np.nan, np.nan, None)
    al = alignment if alignment is not None else align(perf, score)
    if al.score_match_frac < MIN_SCORE_MATCH:
        return unaligned(al.score_match_frac, al.perf_match_frac, al)
    s = score.onset[al.score_idx]
    t = perf.onset[al.perf_idx]
    s_anchor, t_anchor = group_anchors(s, al.group[al.score_idx], t)
    if s_anchor.size < 2:
        return unaligned(al.score_match_frac, al.perf_match_frac, al)

    ratio = (t_anchor[-1] - t_anchor[0]) / (s_anchor[-1] - s_anchor[0])
    s_note = time_map(t_anchor, s_anchor, perf.onset)  # the inverse map: performance -> score time
    s_note[al.perf_idx] = s
    lin_slope = _slope(s, t)
    if not lin_slope > 0:  # every matched note on one score onset, or a map running backwards
        lin_slope = ratio
    slope, intercept = local_fit(s_anchor, t_anchor, s_note, LOCAL_HALF_WIDTH_S)
    fallback = ~(slope > 0)  # too few anchors near, or a degenerate fit: the linear map, as features.score does
    slope[fallback] = lin_slope
    intercept[fallback] = t.mean() - lin_slope * s.mean()
    out[:, col["tempo"]] = np.log2(slope)
    out[:, col["tempo_dev"]] = np.log2(slope / ratio)

    m = al.perf_idx
    out[m, col["onset_dev"]] = t - (intercept[m] + slope[m] * s)
    notated = (score.offset - score.onset)[al.score_idx]
    out[m, col["articulation"]] = np.log2((perf.offset - perf.onset)[m] / (notated * slope[m]))
    out[m, col["matched"]] = 1.0

    beats, beat_in_bar, bar = grid.position(s_note)
    out[:, col["score_beat"]] = beats
    out[:, col["beat_in_bar"]] = beat_in_bar
    out[:, col["bar"]] = bar
    out[:, col["beat"]] = np.floor(beats + 1e-9)
    end_beats, _, _ = grid.position(score.offset[al.score_idx])
    out[m, col["score_duration"]] = end_beats - beats[m]
    return NoteTable(out, al.score_match_frac, al.perf_match_frac, True, al)


def extract(perf_midi_path: str | os.PathLike, score_midi_path: str | os.PathLike | None) -> NoteTable:
    """The note table of one performance against its score rendering (see :func:`note_table`).

    Raises
    ------
    DataError
        The performance file is missing, empty, not MIDI or holds no notes.
        A missing or unreadable *score* only logs a warning (the stand-in grid).
    """

    perf = read_performance(perf_midi_path)
    score = grid = None
    if score_midi_path is None:
        logger.warning("no score MIDI for '%s'; its notes get the stand-in grid", perf.path)
    else:
        try:
            score, grid = read_score(score_midi_path), read_grid(score_midi_path)
        except DataError as exc:
            logger.warning("cannot read the score of '%s' (%s); its notes get the stand-in grid", perf.path, exc)
            score = grid = None
    table = note_table(perf, score, grid)
    if score is not None and not table.aligned:
        logger.warning("'%s' matches %.0f%% of the notes of score '%s' (< %.0f%% or too few anchors); its notes "
                       "get the stand-in grid", perf.path, 100 * table.score_match_frac, score.path,
                       100 * MIN_SCORE_MATCH)
    return table


# --- the cached stage ------------------------------------------------------------------------------------------
def _score_path(row: Mapping[str, Any]) -> str | None:
    sp = row.get("score_midi_path")
    return sp if isinstance(sp, str) and sp else None


def stage_params() -> dict[str, Any]:
    """Settings the stage's output depends on beyond its own code: part of every key."""

    return {"min_score_match": MIN_SCORE_MATCH, "local_half_width_s": LOCAL_HALF_WIDTH_S,
            "match_windows_s": list(MATCH_WINDOWS_S), "score_group_tol_s": SCORE_GROUP_TOL_S,
            "min_time_s": MIN_TIME_S}


def stage_key(row: Mapping[str, Any]) -> str:
    """Cache key of a segment's note entry: the performance's and the score's bytes, the version, the settings."""
    sp = _score_path(row)
    return make_key(STAGE, VERSION, stage_params(), [row["midi_path"]] + ([sp] if sp else []))


def notes_for(row: Mapping[str, Any], cache: Cache) -> dict[str, np.ndarray]:
    """The segment's stored entry: ``notes`` float32 (n_notes, n_columns), ``match`` float64 (2,).

    What a miss returns equals what every later hit returns, bit for bit (:meth:`Cache.fetch`).

    Raises
    ------
    DataError
        The performance MIDI is unreadable or holds no notes.
    """
    def compute() -> dict[str, np.ndarray]:
        table = extract(row["midi_path"], _score_path(row))
        return {"notes": table.values.astype(np.float32),
                "match": np.array([table.score_match_frac, table.perf_match_frac], dtype=np.float64)}

    return cache.fetch(STAGE, stage_key(row), compute)


def ensure(row: Mapping[str, Any], cache: Cache) -> None:
    """Compute and cache the segment's entry if absent (the array stage's ``ensure``)."""
    notes_for(row, cache)


def load_notes(entry: dict) -> np.ndarray:
    """The stored note array, float32 (n_notes, n_columns), columns in :data:`COLUMNS` order."""
    return entry["notes"]
