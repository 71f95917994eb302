"""Feature arithmetic behind :func:`features.midi.extract`.

Everything here works on the numpy arrays of a parsed
:class:`~features.midi_io.Performance`; each ``_family`` function returns
the values of one or two prefixes of :data:`features.midi.FEATURES`.
Conventions (clusters, span, top voice) are described in :mod:`features.midi`.
"""

from __future__ import annotations

import numpy as np

from features.midi_io import Performance

#: Successive onsets closer than this (s) belong to the same cluster (chord).
CHORD_GAP_S = 0.05
#: CC64 at or above this is "pedal down" (the MIDI on/off convention).
PEDAL_ON = 64
#: CC64 in [HALF_PEDAL_LOW, HALF_PEDAL_HIGH) counts as half pedal: the dampers
#: only partly lifted. Disklavier recordings report depth continuously.
HALF_PEDAL_LOW, HALF_PEDAL_HIGH = 32, 96
#: Window (s) over which mean velocity traces the phrase-level dynamic contour.
MACRO_WINDOW_S = 1.0
#: IOIs in the running median that tracks the local tempo.
TEMPO_WINDOW = 9
#: Duration/IOI ratio bounds for staccato (below) and legato (at or above).
STACCATO_RATIO, LEGATO_RATIO = 0.5, 1.0
#: Pitch bounds of the low (below C3) and high (from C5 up) registers.
LOW_PITCH, HIGH_PITCH = 48, 72


def compute_features(perf: Performance) -> dict[str, float]:
    """Compute the feature values of a parsed performance.

    Parameters
    ----------
    perf : Performance
        At least one note.

    Returns
    -------
    dict of str to float
        One value per key of :data:`features.midi.FEATURES`, in any order.
    """
    seg = _Segment(perf)
    values: dict[str, float] = {}
    for family in (_duration, _pitch, _velocity, _timing, _articulation, _pedal, _polyphony):
        values.update(family(seg))
    return values


class _Segment:
    """Arrays derived once from a performance and shared by the feature families.

    Attributes
    ----------
    onset, offset, duration, pitch, velocity : ndarray, shape (n_notes,)
    t0, t1, span : float
        First key press, last key release and their distance (s).
    cluster : ndarray of int, shape (n_notes,)
        Onset cluster of each note.
    first, last : ndarray of int, shape (n_clusters,)
        Index of the earliest and the latest note of each cluster.
    size : ndarray of int, shape (n_clusters,)
    start : ndarray, shape (n_clusters,)
        Earliest onset of each cluster.
    top, bass : ndarray of int, shape (n_clusters,)
        Index of the highest and the lowest note of each cluster.
    ioi : ndarray, shape (n_clusters - 1,)
    pedal_at_release : ndarray of bool, shape (n_notes,)
        Whether the sustain pedal is down when each key is released.
    sound_end : ndarray, shape (n_notes,)
        When each note stops sounding: key release, or the sustain pedal's
        release after it, capped at ``t1``.
    """

    def __init__(self, perf: Performance):
        self.perf = perf
        self.onset, self.offset = perf.onset, perf.offset
        self.pitch = perf.pitch.astype(np.float64)
        self.velocity = perf.velocity.astype(np.float64)
        self.duration = self.offset - self.onset
        self.t0, self.t1 = float(self.onset[0]), float(self.offset.max())
        self.span = self.t1 - self.t0

        new_cluster = np.diff(self.onset) >= CHORD_GAP_S
        self.cluster = np.concatenate(([0], np.cumsum(new_cluster)))
        self.first = np.flatnonzero(np.concatenate(([True], new_cluster)))
        self.last = np.concatenate((self.first[1:] - 1, [self.onset.size - 1]))
        self.size = self.last - self.first + 1
        self.start = self.onset[self.first]
        self.ioi = np.diff(self.start)
        # Sort by (cluster, pitch): each cluster's run then ends on its top note.
        by_pitch = np.lexsort((self.pitch, self.cluster))
        self.top, self.bass = by_pitch[self.last], by_pitch[self.first]

        # A key released under the sustain pedal keeps sounding until the
        # dampers fall at the next lift (or the segment ends).
        self.pedal_at_release = _state_at(perf.sustain_times, perf.sustain_values, self.offset) >= PEDAL_ON
        was_pressed = np.concatenate(([False], perf.sustain_values[:-1] >= PEDAL_ON))
        lifts = perf.sustain_times[was_pressed & (perf.sustain_values < PEDAL_ON)]
        next_lift = np.append(lifts, np.inf)[np.searchsorted(lifts, self.offset, side="right")]
        self.sound_end = np.where(self.pedal_at_release, np.minimum(next_lift, self.t1), self.offset)

    def per_second(self, count: float) -> float:
        return count / self.span if self.span > 0 else np.nan

    def chords(self) -> np.ndarray:
        """Indices of clusters with two or more notes."""
        return np.flatnonzero(self.size >= 2)


def _duration(seg: _Segment) -> dict[str, float]:
    d = seg.duration
    return {
        "dur_total": seg.span,
        "dur_note_mean": d.mean(),
        "dur_note_median": np.median(d),
        "dur_note_std": d.std(),
        "dur_note_max": d.max(),
        "density_n_notes": d.size,
        "density_notes_per_s": seg.per_second(d.size),
        "density_onsets_per_s": seg.per_second(seg.start.size),
    }


def _pitch(seg: _Segment) -> dict[str, float]:
    p = seg.pitch
    return {
        "pitch_mean": p.mean(),
        "pitch_std": p.std(),
        "pitch_min": p.min(),
        "pitch_max": p.max(),
        "pitch_range": p.max() - p.min(),
        "pitch_low_frac": np.mean(p < LOW_PITCH),
        "pitch_high_frac": np.mean(p >= HIGH_PITCH),
        "pitch_top_mean": p[seg.top].mean(),
        "pitch_bass_mean": p[seg.bass].mean(),
    }


def _velocity(seg: _Segment) -> dict[str, float]:
    v = seg.velocity
    p10, p25, p50, p75, p90 = np.percentile(v, [10, 25, 50, 75, 90])
    centred = v - v.mean()
    m2 = np.mean(centred**2)
    peak = np.maximum.reduceat(v, seg.first)
    window = np.floor((seg.onset - seg.t0) / MACRO_WINDOW_S).astype(np.int64)
    counts = np.bincount(window)
    macro = np.bincount(window, weights=v)[counts > 0] / counts[counts > 0]

    chords = seg.chords()
    size = seg.size[chords]
    v_sum = np.add.reduceat(v, seg.first)[chords]
    v_sq = np.add.reduceat(v**2, seg.first)[chords]
    v_top, v_bass = v[seg.top[chords]], v[seg.bass[chords]]
    chord_var = np.maximum(v_sq / size - (v_sum / size) ** 2, 0.0)  # rounding can dip below 0
    return {
        "vel_mean": v.mean(),
        "vel_std": np.sqrt(m2),
        "vel_cv": np.sqrt(m2) / v.mean(),
        "vel_min": v.min(),
        "vel_max": v.max(),
        "vel_range": v.max() - v.min(),
        "vel_p10": p10,
        "vel_median": p50,
        "vel_p90": p90,
        "vel_p90_p10": p90 - p10,
        "vel_iqr": p75 - p25,
        "vel_skew": np.mean(centred**3) / m2**1.5 if m2 > 0 else np.nan,
        "vel_kurtosis": np.mean(centred**4) / m2**2 - 3.0 if m2 > 0 else np.nan,
        "vel_slope": _slope(seg.onset, v),
        "vel_local_absdiff": _mean(np.abs(np.diff(peak))),
        "vel_macro_std": macro.std() if macro.size >= 2 else np.nan,
        "vel_macro_range": macro.max() - macro.min() if macro.size >= 2 else np.nan,
        "vel_top_mean": v[seg.top].mean(),
        "vel_top_minus_rest": _mean(v_top - (v_sum - v_top) / (size - 1)),
        "vel_bass_minus_rest": _mean(v_bass - (v_sum - v_bass) / (size - 1)),
        "vel_chord_std": _mean(np.sqrt(chord_var)),
        "vel_pitch_corr": _corr(v, seg.pitch),
    }


def _timing(seg: _Segment) -> dict[str, float]:
    ioi = seg.ioi
    values = {"ioi_mean": _mean(ioi), "ioi_median": _median(ioi), "ioi_std": _std(ioi)}
    values["ioi_cv"] = values["ioi_std"] / values["ioi_mean"]
    values["ioi_p10"], values["ioi_p90"] = np.percentile(ioi, [10, 90]) if ioi.size else (np.nan, np.nan)
    log_ioi = np.log2(ioi)
    values["ioi_log_std"] = _std(log_ioi)
    values["timing_log_ratio_mean"] = _mean(np.abs(np.diff(log_ioi)))
    values["timing_acf1"] = _corr(log_ioi[:-1], log_ioi[1:]) if ioi.size >= 3 else np.nan

    midpoint = 0.5 * (seg.start[0] + seg.start[-1])
    in_first_half = seg.start[:-1] < midpoint
    values["timing_half_ratio"] = _median(ioi[in_first_half]) / _median(ioi[~in_first_half])

    # Running median over TEMPO_WINDOW IOIs tracks the local tempo while
    # ignoring single long or short notes of the rhythm.
    if ioi.size >= TEMPO_WINDOW:
        local = np.median(np.lib.stride_tricks.sliding_window_view(log_ioi, TEMPO_WINDOW), axis=1)
        centre = log_ioi[TEMPO_WINDOW // 2 : TEMPO_WINDOW // 2 + local.size]
        values["timing_drift_std"] = local.std()
        values["timing_local_dev"] = np.median(np.abs(centre - local))
    else:
        values["timing_drift_std"] = values["timing_local_dev"] = np.nan
    return values


def _articulation(seg: _Segment) -> dict[str, float]:
    # Each note against the time from its own onset to the next cluster: the
    # key-down/IOI ratio of Bresin & Battel (2000), > 1 overlaps the next note.
    has_next = seg.cluster < seg.start.size - 1
    to_next = seg.start[seg.cluster[has_next] + 1] - seg.onset[has_next]
    ratio = seg.duration[has_next] / to_next
    log_ratio = np.log2(ratio)
    top, nxt = seg.top[:-1], seg.top[1:]
    top_ratio = seg.duration[top] / (seg.start[1:] - seg.onset[top])
    kot = seg.offset[top] - seg.onset[nxt]  # key overlap time, Bresin & Battel (2000)

    # A gap is silent when the next press comes after every key so far is up.
    held_until = np.maximum.accumulate(seg.offset)[:-1]
    gaps = seg.onset[1:] - held_until
    return {
        "art_ratio_median": _median(ratio),
        "art_log_ratio_mean": _mean(log_ratio),
        "art_log_ratio_std": _std(log_ratio),
        "art_staccato_frac": _mean(ratio < STACCATO_RATIO) if ratio.size else np.nan,
        "art_legato_frac": _mean(ratio >= LEGATO_RATIO) if ratio.size else np.nan,
        "art_top_ratio_median": _median(top_ratio),
        "art_kot_mean": _mean(kot),
        "art_kot_median": _median(kot),
        "art_top_legato_frac": _mean(kot > 0) if kot.size else np.nan,
        "art_silence_frac": gaps[gaps > 0].sum() / seg.span if seg.span > 0 else np.nan,
    }


def _pedal(seg: _Segment) -> dict[str, float]:
    perf = seg.perf
    lengths, depth = _step_pieces(perf.sustain_times, perf.sustain_values, seg.t0, seg.t1)
    pressed = depth >= PEDAL_ON
    # Runs of equal pedal state form presses and the gaps between them.
    run = np.concatenate(([0], np.cumsum(pressed[1:] != pressed[:-1])))
    run_length = np.bincount(run, weights=lengths)
    run_pressed = pressed[np.searchsorted(run, np.arange(run_length.size))]
    presses = run_length[run_pressed]
    inner = np.arange(run_length.size)
    between = ~run_pressed & (inner > 0) & (inner < run_length.size - 1)

    soft_lengths, soft_depth = _step_pieces(perf.soft_times, perf.soft_values, seg.t0, seg.t1)
    key_time = seg.duration.sum()
    return {
        "pedal_frac": _time_fraction(lengths, pressed),
        "pedal_depth_mean": _time_fraction(lengths, depth / 127.0),
        "pedal_half_frac": _time_fraction(lengths, (depth >= HALF_PEDAL_LOW) & (depth < HALF_PEDAL_HIGH)),
        "pedal_presses_per_s": seg.per_second(presses.size),
        "pedal_press_mean": _mean(presses),
        "pedal_gap_mean": _mean(run_length[between]),
        "pedal_onset_frac": np.mean(_state_at(perf.sustain_times, perf.sustain_values, seg.onset) >= PEDAL_ON),
        "pedal_release_frac": np.mean(seg.pedal_at_release),
        "pedal_extension_mean": np.mean(seg.sound_end - seg.offset),
        "pedal_blur_ratio": (seg.sound_end - seg.onset).sum() / key_time,
        "pedal_soft_frac": _time_fraction(soft_lengths, soft_depth >= PEDAL_ON),
    }


def _polyphony(seg: _Segment) -> dict[str, float]:
    chords = seg.chords()
    size = seg.size[chords]
    first, last = seg.first[chords], seg.last[chords]
    spread = seg.onset[last] - seg.onset[first]
    onset_sum = np.add.reduceat(seg.onset, seg.first)[chords]
    t_top, t_bass = seg.onset[seg.top[chords]], seg.onset[seg.bass[chords]]
    return {
        "poly_mean": seg.duration.sum() / seg.span if seg.span > 0 else np.nan,
        "poly_max": _max_concurrent(seg.onset, seg.offset),
        "poly_sounding_mean": (seg.sound_end - seg.onset).sum() / seg.span if seg.span > 0 else np.nan,
        "poly_sounding_max": _max_concurrent(seg.onset, seg.sound_end),
        "poly_chord_size_mean": seg.size.mean(),
        "poly_chord_frac": np.mean(seg.size >= 2),
        "chord_spread_mean": _mean(spread),
        "chord_spread_median": _median(spread),
        "chord_spread_max": spread.max() if spread.size else np.nan,
        # Melody lead (Goebl 2001, JASA 110(1)): positive when the top note sounds first.
        "chord_melody_lead": _mean((onset_sum - t_top) / (size - 1) - t_top),
        "chord_bass_lead": _mean((onset_sum - t_bass) / (size - 1) - t_bass),
    }


def _mean(x: np.ndarray) -> float:
    return float(np.mean(x)) if x.size else np.nan


def _median(x: np.ndarray) -> float:
    return float(np.median(x)) if x.size else np.nan


def _std(x: np.ndarray) -> float:
    return float(np.std(x)) if x.size else np.nan


def _corr(x: np.ndarray, y: np.ndarray) -> float:
    """Pearson correlation; NaN when either side is constant or too short."""
    if x.size < 2:
        return np.nan
    dx, dy = x - x.mean(), y - y.mean()
    denom = np.sqrt(np.sum(dx**2) * np.sum(dy**2))
    return float(np.sum(dx * dy) / denom) if denom > 0 else np.nan


def _slope(x: np.ndarray, y: np.ndarray) -> float:
    """Least-squares slope of y on x; NaN when x is constant."""
    dx = x - x.mean()
    sxx = np.sum(dx**2)
    return float(np.sum(dx * (y - y.mean())) / sxx) if sxx > 0 else np.nan


def _state_at(times: np.ndarray, values: np.ndarray, query: np.ndarray) -> np.ndarray:
    """Controller value in force at each query time (0 before the first event)."""
    idx = np.searchsorted(times, query, side="right") - 1
    return np.where(idx >= 0, values[np.maximum(idx, 0)] if values.size else 0, 0)


def _step_pieces(times: np.ndarray, values: np.ndarray, t0: float, t1: float) -> tuple[np.ndarray, np.ndarray]:
    """Cut [t0, t1] into the pieces over which a controller is constant.

    Returns
    -------
    lengths : ndarray, shape (n_pieces,)
        Piece lengths (s), positive as event times are distinct.
    values : ndarray, shape (n_pieces,)
        The controller value over each piece.
    """
    inside = (times > t0) & (times < t1)
    bounds = np.concatenate(([t0], times[inside], [t1]))
    piece_values = np.concatenate((_state_at(times, values, np.array([t0])), values[inside]))
    return np.diff(bounds), piece_values


def _time_fraction(lengths: np.ndarray, weight: np.ndarray) -> float:
    """Length-weighted mean of ``weight`` over the pieces of a step function."""
    total = lengths.sum()
    return float(np.sum(lengths * weight) / total) if total > 0 else np.nan


def _max_concurrent(start: np.ndarray, end: np.ndarray) -> float:
    """Most intervals [start, end) open at once; touching intervals do not overlap."""
    times = np.concatenate((start, end))
    delta = np.concatenate((np.ones(start.size), -np.ones(end.size)))
    order = np.lexsort((delta, times))  # at equal times releases come first
    return float(np.cumsum(delta[order]).max())
