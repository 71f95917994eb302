"""Score-aligned features: how a performance departs from its notated score.

PercePiano ships a deadpan rendering of the score of every excerpt
(``virtuoso/data/score_midi``); :func:`score_midi_for` finds it for a dataset
row and :func:`extract` compares a performance with it. The notes are matched
by :func:`features.score_align.align` (DTW over chords for a coarse time map,
then nearest-first matching of equal pitches within a window around the
mapped time); every feature below is computed from the matched pairs only.

Conventions: ``s`` is score time and ``t`` performance time, both in seconds
of the MIDI files. The *time map* is a line or curve ``t(s)``; a *tempo
ratio* is its slope, performance seconds per score second, so a ratio above 1
is slower than the score. Tempo curves are log2 of the local slope over the
global one (octaves, 0 = on the average tempo). Each matched score group
(chord) gives one *anchor*: its score onset and the median onset of its
matched notes. The *local* time map is a least-squares line through the
anchors within :data:`LOCAL_HALF_WIDTH_S` score seconds. Timing deviations
and chord asynchronies are in milliseconds; standard deviations are
population (``ddof=0``) values. A chord's *top note* is the highest pitch of
its score group, the usual melody proxy.

A segment whose score cannot be found or read, or whose match covers less
than :data:`MIN_SCORE_MATCH` of the score notes, gets NaN for every feature
except the two match fractions (NaN too when there is no score) and logs a
warning: its features would describe a wrong alignment.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path

import numpy as np

from benchmark.errors import DataError
from features import note_summary
from features.families import family_of
from features.midi_io import Performance, read_performance
from features.midi_stats import LEGATO_RATIO, STACCATO_RATIO, _corr, _mean, _Segment, _slope, _std
from features.score_align import (
    LOCAL_HALF_WIDTH_S,
    MIN_SCORE_MATCH,
    Alignment,
    align,
    group_anchors,
    local_fit,
    read_score,
)

logger = logging.getLogger(__name__)

#: 2: the note-level summary features of :mod:`features.note_summary` joined the set (families sc_beat,
#: sc_bar, sc_phrase, sc_metric, sc_harm).
VERSION = "2"

#: Half-width (performance s) of the window of the local mean velocity.
VELOCITY_HALF_WIDTH_S = 1.0
#: Score intervals shorter than this (s), e.g. grace notes, are left out of
#: the interval-level tempo ratios, whose jitter they would blow up.
MIN_SCORE_IOI_S = 0.05
#: Pedal-extended sound at least this many times the notated length overhangs.
OVERHANG_RATIO = 2.0
#: Score renderings in order of preference: ``Score`` (flat velocity, notated
#: tempo) exists for every excerpt; ``Score2`` also renders dynamics and pedal.
SCORE_PLAYERS = ("Score", "Score2")

FAMILIES: dict[str, str] = {
    "sc_match": "how much of the score and of the performance the alignment matched",
    "sc_tempo": "global tempo against the score and the local tempo curve (rubato)",
    "sc_timing": "onset deviation from linear and local score-to-performance time maps",
    "sc_vel": "velocity around its local mean and melody emphasis in score chords",
    "sc_async": "onset asynchrony among the notes of one score chord",
    "sc_art": "performed key-down length against the notated length, tempo-scaled",
    "sc_pedal": "pedal-extended sounding length against the notated length",
}

FEATURES: dict[str, str] = {
    "sc_match_score_frac": "fraction of score notes matched to a performance note (ratio)",
    "sc_match_perf_frac": "fraction of performance notes matched to a score note (ratio)",
    "sc_tempo_ratio": "performance over score time between the first and last anchors, > 1 slower (ratio)",
    "sc_tempo_slope": "least-squares slope of the local tempo curve over the segment, > 0 slows down (octaves)",
    "sc_tempo_local_std": "std of the local tempo curve, rubato depth (octaves)",
    "sc_tempo_local_range": "95th minus 5th percentile of the local tempo curve (octaves)",
    "sc_tempo_ioi_std": "std of log2 tempo ratios between successive anchors (octaves)",
    "sc_tempo_ioi_acf1": "lag-1 autocorrelation of those ratios, smooth rubato > 0 (unitless)",
    "sc_timing_lin_std": "std of note onsets around the least-squares linear time map (ms)",
    "sc_timing_lin_mae": "mean absolute onset deviation from the linear time map (ms)",
    "sc_timing_local_std": "std of note onsets around the local time map (ms)",
    "sc_timing_local_mae": "mean absolute onset deviation from the local time map (ms)",
    "sc_vel_local_std": "std of velocity minus the mean of matched notes within 1 s (MIDI velocity)",
    "sc_vel_local_range": "95th minus 5th percentile of that deviation (MIDI velocity)",
    "sc_vel_melody_gap": "top-note velocity minus the mean of the other notes, per score chord (MIDI velocity)",
    "sc_async_spread_mean": "mean onset spread, last minus first matched note, of score chords (ms)",
    "sc_async_spread_max": "largest onset spread of a score chord (ms)",
    "sc_async_melody_lead": "mean onset of other chord notes minus the top note's, Goebl 2001 (ms)",
    "sc_art_ratio_median": "median key-down length over notated length times local tempo ratio (ratio)",
    "sc_art_log_std": "std of log2 of that ratio (octaves)",
    "sc_art_staccato_frac": "fraction of notes held less than half their tempo-scaled notated length (ratio)",
    "sc_art_legato_frac": "fraction of notes held at least their tempo-scaled notated length (ratio)",
    "sc_pedal_sound_ratio": "median pedal-extended sounding length over tempo-scaled notated length (ratio)",
    "sc_pedal_overhang_frac": "fraction of notes sounding at least twice their tempo-scaled notated length (ratio)",
}

# The note-level summaries (computed from the note stage's per-note table) belong to this set too.
FAMILIES.update(note_summary.FAMILIES)
FEATURES.update(note_summary.FEATURES)

_SCORE_NAME_RE = re.compile(r"^(?P<piece>.+)_(?P<bars>\d+)bars_(?P<player>Score2?)_(?P<segment>\d+)$")


def feature_family(name: str) -> str:
    """Return the family (a key of :data:`FAMILIES`) of a feature name.

    Raises
    ------
    UnknownNameError
        The name starts with no known family prefix.
    """
    return family_of(name, FAMILIES, FEATURES)


def score_midi_for(meta_row: Mapping, score_dir: str | os.PathLike | None = None) -> Path | None:
    """Find the score rendering of a dataset row's excerpt.

    Score files are named ``<piece>_<N>bars_<Score|Score2>_<segment>.mid``.
    Segment numbers are compared as integers: the Schubert D960 files write
    them with two digits (``..._Score_01.mid``) while the dataset's
    ``segment`` column holds ``1``. ``Score`` is preferred over ``Score2``
    (see :data:`SCORE_PLAYERS`); the same rendering serves every player of
    the excerpt, the deadpan ones included.

    Parameters
    ----------
    meta_row : mapping
        A row of ``Dataset.meta`` (a pandas Series or a dict) with ``piece``,
        ``bars`` and ``segment``, and ``midi_path`` when ``score_dir`` is None.
    score_dir : str or PathLike, optional
        The ``virtuoso/data/score_midi`` folder. By default the upstream
        layout's: ``score_midi`` beside the folder of ``meta_row["midi_path"]``.

    Returns
    -------
    Path or None
        None when the folder or the excerpt's file is absent.

    Raises
    ------
    DataError
        ``meta_row`` lacks one of the fields above.
    """
    try:
        key = (str(meta_row["piece"]).strip(), int(meta_row["bars"]), int(meta_row["segment"]))
        if score_dir is None:
            score_dir = Path(meta_row["midi_path"]).parent.parent / "score_midi"
    except (KeyError, TypeError, ValueError) as exc:
        raise DataError(
            f"cannot find a score for row {dict(meta_row)!r:.200}: needs piece, bars, segment "
            f"(and midi_path without score_dir): {type(exc).__name__}: {exc}"
        ) from None
    score_dir = Path(score_dir)
    if not score_dir.is_dir():
        return None
    index = _score_index(str(score_dir.resolve()), score_dir.stat().st_mtime_ns)
    for player in SCORE_PLAYERS:
        path = index.get((*key, player))
        if path is not None:
            return path
    return None


@lru_cache(maxsize=4)
def _score_index(score_dir: str, mtime_ns: int) -> dict[tuple, Path]:
    """(piece, bars, segment, player) -> path; the mtime keys out stale listings."""
    index: dict[tuple, Path] = {}
    for path in sorted(Path(score_dir).glob("*.mid")):
        m = _SCORE_NAME_RE.match(path.stem.strip())
        if m is None:
            continue  # e.g. whole-piece renderings such as beethoven_woo80.mid
        index.setdefault((m["piece"], int(m["bars"]), int(m["segment"]), m["player"]), path)
    return index


def extract(perf_midi_path: str | os.PathLike, score_midi_path: str | os.PathLike | None) -> dict[str, float]:
    """Compute every feature of :data:`FEATURES` for one performance.

    Parameters
    ----------
    perf_midi_path : str or PathLike
        The performance MIDI file.
    score_midi_path : str or PathLike or None
        Its score rendering, e.g. from :func:`score_midi_for`; None when the
        excerpt has none.

    Returns
    -------
    dict of str to float
        Keys in :data:`FEATURES` order; all NaN but the match fractions when
        the segment cannot be aligned (see the module docstring), NaN where a
        feature is undefined (e.g. chord features without chords).

    Raises
    ------
    DataError
        The performance file is missing, empty, not MIDI, or holds no notes.
        A missing or unreadable *score* only logs a warning.
    """
    perf = read_performance(perf_midi_path)
    values = dict.fromkeys(FEATURES, np.nan)
    if score_midi_path is None:
        logger.warning("no score MIDI for '%s'; score features are NaN", perf.path)
        return values
    try:
        score = read_score(score_midi_path)
    except DataError as exc:
        logger.warning("cannot read the score of '%s' (%s); score features are NaN", perf.path, exc)
        return values

    alignment = align(perf, score)
    values["sc_match_score_frac"] = alignment.score_match_frac
    values["sc_match_perf_frac"] = alignment.perf_match_frac
    if alignment.score_match_frac < MIN_SCORE_MATCH:
        logger.warning(
            "'%s' matches only %.0f%% of the notes of score '%s' (< %.0f%%); wrong score or wrong file? "
            "score features are NaN",
            perf.path,
            100 * alignment.score_match_frac,
            score.path,
            100 * MIN_SCORE_MATCH,
        )
        return values
    computed = _compute(alignment)
    computed.update(_note_summary(perf, score, score_midi_path, alignment))
    expected = FEATURES.keys() - {"sc_match_score_frac", "sc_match_perf_frac"}
    if computed.keys() != expected:
        # A programming error, not bad data: the table and the code disagree.
        raise RuntimeError(f"feature table out of sync: {sorted(computed.keys() ^ expected)}")
    values.update(computed)
    return {name: float(values[name]) for name in FEATURES}


def _note_summary(perf: Performance, score: Performance, path, alignment: Alignment) -> dict[str, float]:
    """The note-level summary features (:mod:`features.note_summary`) from this alignment."""
    from features.notes import note_table, read_grid

    grid = read_grid(path)
    return note_summary.summary(note_table(perf, score, grid, alignment=alignment), grid)


def _compute(al: Alignment) -> dict[str, float]:
    """Tempo, timing, velocity, asynchrony, articulation and pedal features."""
    score, perf = al.score, al.perf
    s = score.onset[al.score_idx]
    t = perf.onset[al.perf_idx]
    group = al.group[al.score_idx]
    s_anchor, t_anchor = group_anchors(s, group, t)
    values: dict[str, float] = {}
    if s_anchor.size < 2:
        return dict.fromkeys((k for k in FEATURES if not k.startswith("sc_match")), np.nan)

    ratio = (t_anchor[-1] - t_anchor[0]) / (s_anchor[-1] - s_anchor[0])
    values.update(_tempo(s_anchor, t_anchor, ratio))

    # Linear time map through the notes; local map through the anchors,
    # falling back to the linear one where too few anchors are near.
    lin_slope = _slope(s, t)
    lin_res = t - (t.mean() + lin_slope * (s - s.mean()))
    local_slope, local_intercept = local_fit(s_anchor, t_anchor, s, LOCAL_HALF_WIDTH_S)
    fallback = ~(local_slope > 0)  # too few anchors near, or a degenerate fit
    local_slope[fallback] = lin_slope
    local_intercept[fallback] = t.mean() - lin_slope * s.mean()
    local_res = t - (local_intercept + local_slope * s)
    values["sc_timing_lin_std"] = 1e3 * _std(lin_res)
    values["sc_timing_lin_mae"] = 1e3 * _mean(np.abs(lin_res))
    values["sc_timing_local_std"] = 1e3 * _std(local_res)
    values["sc_timing_local_mae"] = 1e3 * _mean(np.abs(local_res))

    velocity = perf.velocity[al.perf_idx].astype(np.float64)
    values.update(_chords(al, s, t, velocity))
    values.update(_velocity(t, velocity))

    # Notated length in performance seconds at the local tempo.
    notated = (score.offset - score.onset)[al.score_idx] * local_slope
    values.update(_articulation(perf, al.perf_idx, notated))
    return values


def _tempo(s_anchor: np.ndarray, t_anchor: np.ndarray, ratio: float) -> dict[str, float]:
    slope, _ = local_fit(s_anchor, t_anchor, s_anchor, LOCAL_HALF_WIDTH_S)
    ok = slope > 0  # NaN (too few anchors) and a degenerate fit fail this too
    curve = np.log2(slope[ok] / ratio)
    position = (s_anchor[ok] - s_anchor[0]) / (s_anchor[-1] - s_anchor[0])

    ds, dt = np.diff(s_anchor), np.diff(t_anchor)
    long_enough = ds >= MIN_SCORE_IOI_S
    ioi_ratio = np.log2(dt[long_enough] / ds[long_enough] / ratio)
    return {
        "sc_tempo_ratio": ratio,
        "sc_tempo_slope": _slope(position, curve) if curve.size >= 2 else np.nan,
        "sc_tempo_local_std": _std(curve),
        "sc_tempo_local_range": float(np.subtract(*np.percentile(curve, [95, 5]))) if curve.size else np.nan,
        "sc_tempo_ioi_std": _std(ioi_ratio),
        "sc_tempo_ioi_acf1": _corr(ioi_ratio[:-1], ioi_ratio[1:]) if ioi_ratio.size >= 3 else np.nan,
    }


def _chords(al: Alignment, s: np.ndarray, t: np.ndarray, velocity: np.ndarray) -> dict[str, float]:
    """Asynchrony and melody velocity within score chords (>= 2 matched notes)."""
    group = al.group[al.score_idx]
    pitch = al.score.pitch[al.score_idx]
    # The score's top note of each group, matched or not, defines the melody.
    top_pitch = np.full(al.group[-1] + 1, -1)
    np.maximum.at(top_pitch, al.group, al.score.pitch)
    n_groups = top_pitch.size
    size = np.bincount(group, minlength=n_groups)
    chord = size >= 2
    t_min = np.full(n_groups, np.inf)
    t_max = np.full(n_groups, -np.inf)
    np.minimum.at(t_min, group, t)
    np.maximum.at(t_max, group, t)
    spread = 1e3 * (t_max - t_min)[chord]

    is_top = pitch == top_pitch[group]
    has_top = np.bincount(group[is_top], minlength=n_groups) > 0
    led = chord & has_top
    t_sum = np.bincount(group, weights=t, minlength=n_groups)
    v_sum = np.bincount(group, weights=velocity, minlength=n_groups)
    t_top = np.zeros(n_groups)
    v_top = np.zeros(n_groups)
    t_top[group[is_top]] = t[is_top]
    v_top[group[is_top]] = velocity[is_top]
    others = np.maximum(size - 1, 1)
    lead = 1e3 * ((t_sum - t_top) / others - t_top)[led]
    gap = (v_top - (v_sum - v_top) / others)[led]
    return {
        "sc_vel_melody_gap": _mean(gap),
        "sc_async_spread_mean": _mean(spread),
        "sc_async_spread_max": float(spread.max()) if spread.size else np.nan,
        "sc_async_melody_lead": _mean(lead),
    }


def _velocity(t: np.ndarray, velocity: np.ndarray) -> dict[str, float]:
    order = np.argsort(t, kind="stable")
    t, velocity = t[order], velocity[order]
    lo = np.searchsorted(t, t - VELOCITY_HALF_WIDTH_S, side="left")
    hi = np.searchsorted(t, t + VELOCITY_HALF_WIDTH_S, side="right")
    cum = np.concatenate(([0.0], np.cumsum(velocity)))
    deviation = velocity - (cum[hi] - cum[lo]) / (hi - lo)
    return {
        "sc_vel_local_std": _std(deviation),
        "sc_vel_local_range": float(np.subtract(*np.percentile(deviation, [95, 5]))),
    }


def _articulation(perf: Performance, perf_idx: np.ndarray, notated: np.ndarray) -> dict[str, float]:
    # Key-down length (Bresin & Battel 2000 measure it against the IOI; here
    # against the notated length, which separates articulation from rhythm).
    held = (perf.offset - perf.onset)[perf_idx] / notated
    # _Segment extends each release to the next pedal lift, as features.midi does.
    sound = (_Segment(perf).sound_end - perf.onset)[perf_idx] / notated
    log_held = np.log2(held)
    return {
        "sc_art_ratio_median": float(np.median(held)),
        "sc_art_log_std": _std(log_held),
        "sc_art_staccato_frac": float(np.mean(held < STACCATO_RATIO)),
        "sc_art_legato_frac": float(np.mean(held >= LEGATO_RATIO)),
        "sc_pedal_sound_ratio": float(np.median(sound)),
        "sc_pedal_overhang_frac": float(np.mean(sound >= OVERHANG_RATIO)),
    }
