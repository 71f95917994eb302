"""Handcrafted symbolic features of a piano performance MIDI file.

:func:`extract` turns one file into a flat, ordered ``{name: value}`` dict with
one entry per key of :data:`FEATURES`. Names carry a family prefix (see
:data:`FAMILIES` and :func:`feature_family`) so that importance can be summed
per family in reports.

Conventions: times are seconds, velocities MIDI units (1-127), pitches MIDI
note numbers; standard deviations are population (``ddof=0``) values. The
segment *span* runs from the first key press to the last key release.
Simultaneous notes are grouped into onset *clusters*: successive onsets less
than :data:`~features.midi_stats.CHORD_GAP_S` (50 ms) apart are chained into one cluster (the gap histogram
of PercePiano has its trough there, between chord asynchrony and the fastest
written note values). The *top voice* is the highest note of each cluster, a
common proxy for the melody. A feature is NaN where it is undefined, e.g. IOI
statistics of a file with a single onset or chord statistics without chords.
"""

from __future__ import annotations

import os

from features.families import family_of
from features.midi_io import read_performance
from features.midi_stats import compute_features

VERSION = "1"

FAMILIES: dict[str, str] = {
    "dur": "segment length and note (key-down) durations",
    "density": "number of notes and onsets, absolute and per second",
    "pitch": "pitch range, register and top/bass voice height",
    "vel": "velocity (dynamics) level, spread, contour and voicing balance",
    "ioi": "inter-onset intervals between successive onset clusters",
    "timing": "tempo stability: local IOI changes, drift and rubato",
    "art": "articulation: key-down duration against IOI, key overlap, silence",
    "pedal": "sustain (CC64) and soft (CC67) pedal use and its blurring effect",
    "poly": "polyphony: keys held and notes sounding at once, chord size",
    "chord": "onset asynchrony within chords, melody and bass lead",
}

FEATURES: dict[str, str] = {
    "dur_total": "segment span, first key press to last key release (s)",
    "dur_note_mean": "mean key-down duration (s)",
    "dur_note_median": "median key-down duration (s)",
    "dur_note_std": "standard deviation of key-down duration (s)",
    "dur_note_max": "longest key-down duration (s)",
    "density_n_notes": "number of notes (count)",
    "density_notes_per_s": "notes per second of span (1/s)",
    "density_onsets_per_s": "onset clusters per second of span (1/s)",
    "pitch_mean": "mean pitch (MIDI note number)",
    "pitch_std": "standard deviation of pitch (semitones)",
    "pitch_min": "lowest pitch (MIDI note number)",
    "pitch_max": "highest pitch (MIDI note number)",
    "pitch_range": "highest minus lowest pitch (semitones)",
    "pitch_low_frac": "fraction of notes below C3, MIDI 48 (ratio)",
    "pitch_high_frac": "fraction of notes at or above C5, MIDI 72 (ratio)",
    "pitch_top_mean": "mean pitch of the top voice, highest note per cluster (MIDI note number)",
    "pitch_bass_mean": "mean pitch of the bass, lowest note per cluster (MIDI note number)",
    "vel_mean": "mean velocity (MIDI velocity)",
    "vel_std": "standard deviation of velocity (MIDI velocity)",
    "vel_cv": "coefficient of variation of velocity, std / mean (ratio)",
    "vel_min": "lowest velocity (MIDI velocity)",
    "vel_max": "highest velocity (MIDI velocity)",
    "vel_range": "highest minus lowest velocity (MIDI velocity)",
    "vel_p10": "10th percentile of velocity (MIDI velocity)",
    "vel_median": "median velocity (MIDI velocity)",
    "vel_p90": "90th percentile of velocity (MIDI velocity)",
    "vel_p90_p10": "robust dynamic range, 90th minus 10th percentile (MIDI velocity)",
    "vel_iqr": "interquartile range of velocity (MIDI velocity)",
    "vel_skew": "skewness of velocity, biased Fisher-Pearson; NaN if constant (unitless)",
    "vel_kurtosis": "excess kurtosis of velocity, biased; NaN if constant (unitless)",
    "vel_slope": "least-squares slope of velocity over onset time, crescendo > 0 (velocity/s)",
    "vel_local_absdiff": "mean absolute change of cluster peak velocity between successive clusters (MIDI velocity)",
    "vel_macro_std": "std of mean velocity over 1 s windows; NaN if < 2 windows (MIDI velocity)",
    "vel_macro_range": "max minus min of mean velocity over 1 s windows (MIDI velocity)",
    "vel_top_mean": "mean velocity of the top voice (MIDI velocity)",
    "vel_top_minus_rest": "per-chord top-note velocity minus mean of the other notes, averaged (MIDI velocity)",
    "vel_bass_minus_rest": "per-chord bass-note velocity minus mean of the other notes, averaged (MIDI velocity)",
    "vel_chord_std": "mean within-chord velocity std, voicing contrast (MIDI velocity)",
    "vel_pitch_corr": "Pearson correlation of velocity with pitch (unitless)",
    "ioi_mean": "mean inter-onset interval between clusters (s)",
    "ioi_median": "median inter-onset interval (s)",
    "ioi_std": "standard deviation of inter-onset intervals (s)",
    "ioi_cv": "coefficient of variation of inter-onset intervals (ratio)",
    "ioi_p10": "10th percentile of inter-onset intervals (s)",
    "ioi_p90": "90th percentile of inter-onset intervals (s)",
    "ioi_log_std": "standard deviation of log2 inter-onset interval (octaves)",
    "timing_log_ratio_mean": "mean |log2(IOI[k+1] / IOI[k])|, local tempo change (octaves)",
    "timing_acf1": "lag-1 autocorrelation of log2 IOI (unitless)",
    "timing_half_ratio": "median IOI of the first half over that of the second, > 1 speeds up (ratio)",
    "timing_drift_std": "std of the 9-IOI running median of log2 IOI, slow tempo drift (octaves)",
    "timing_local_dev": "median |log2 IOI - its 9-IOI running median|, local rubato (octaves)",
    "art_ratio_median": "median key-down duration over time to the next cluster onset (ratio)",
    "art_log_ratio_mean": "mean log2 of duration over time to the next onset (octaves)",
    "art_log_ratio_std": "std of log2 of duration over time to the next onset (octaves)",
    "art_staccato_frac": "fraction of notes held less than half the time to the next onset (ratio)",
    "art_legato_frac": "fraction of notes held up to or past the next onset (ratio)",
    "art_top_ratio_median": "median duration-to-next-onset ratio of the top voice (ratio)",
    "art_kot_mean": "mean key overlap time of successive top-voice notes, detached < 0 (s)",
    "art_kot_median": "median key overlap time of successive top-voice notes (s)",
    "art_top_legato_frac": "fraction of successive top-voice pairs whose keys overlap (ratio)",
    "art_silence_frac": "fraction of span with no key held down (ratio)",
    "pedal_frac": "fraction of span with the sustain pedal down, CC64 >= 64 (ratio)",
    "pedal_depth_mean": "time-averaged sustain depth over the span, CC64 / 127 (ratio)",
    "pedal_half_frac": "fraction of span at half pedal, 32 <= CC64 < 96 (ratio)",
    "pedal_presses_per_s": "sustain presses (CC64 >= 64 intervals) meeting the span, per second (1/s)",
    "pedal_press_mean": "mean length of those presses, clipped to the span; NaN if none (s)",
    "pedal_gap_mean": "mean pedal-up time between successive presses; NaN if < 2 presses (s)",
    "pedal_onset_frac": "fraction of notes struck with the sustain pedal down (ratio)",
    "pedal_release_frac": "fraction of notes released with the sustain pedal down (ratio)",
    "pedal_extension_mean": "mean sounding time the pedal adds after key release, per note (s)",
    "pedal_blur_ratio": "total sounding time over total key-down time (ratio)",
    "pedal_soft_frac": "fraction of span with the soft pedal down, CC67 >= 64 (ratio)",
    "poly_mean": "time-averaged number of keys held down over the span (count)",
    "poly_max": "most keys held down at once (count)",
    "poly_sounding_mean": "time-averaged number of notes sounding, pedal included (count)",
    "poly_sounding_max": "most notes sounding at once, pedal included (count)",
    "poly_chord_size_mean": "mean number of notes per onset cluster (count)",
    "poly_chord_frac": "fraction of onset clusters with two or more notes (ratio)",
    "chord_spread_mean": "mean onset spread, last minus first onset, of chords (s)",
    "chord_spread_median": "median onset spread of chords (s)",
    "chord_spread_max": "largest onset spread of a chord (s)",
    "chord_melody_lead": "mean onset of other chord notes minus that of the top note, Goebl 2001 (s)",
    "chord_bass_lead": "mean onset of other chord notes minus that of the bass note (s)",
}


def feature_family(name: str) -> str:
    """Return the family prefix of a feature name.

    Parameters
    ----------
    name : str
        A key of :data:`FEATURES` (or any name that starts with a family
        prefix and an underscore).

    Returns
    -------
    str
        A key of :data:`FAMILIES`.

    Raises
    ------
    UnknownNameError
        The name starts with no known family prefix.
    """
    return family_of(name, FAMILIES, FEATURES)


def extract(path: str | os.PathLike) -> dict[str, float]:
    """Compute every feature of :data:`FEATURES` for one performance MIDI file.

    Parameters
    ----------
    path : str or PathLike

    Returns
    -------
    dict of str to float
        Keys in :data:`FEATURES` order; NaN where a feature is undefined.

    Raises
    ------
    DataError
        The file is missing, empty, truncated, not MIDI, or holds no notes.
    """
    values = compute_features(read_performance(path))
    if values.keys() != FEATURES.keys():
        # A programming error, not bad data: the table and the code disagree.
        missing = sorted(FEATURES.keys() - values.keys())
        extra = sorted(values.keys() - FEATURES.keys())
        raise RuntimeError(f"feature table out of sync: missing {missing}, undocumented {extra}")
    return {name: float(values[name]) for name in FEATURES}
