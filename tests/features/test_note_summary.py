"""Note-level summary features of the score set (features.note_summary) on a hand-made pair, worked out by hand.

The score (mido, 480 ticks per quarter, 60 bpm: beat b at score second b) is
eight bars of 2/4: every bar holds a chord on its downbeat lasting the bar
(C major in even bars, G major in odd ones, so the harmony changes on each
downbeat from bar 1 on), a chord tone on its second beat and an off-beat
chord tone after each beat. The performance plays beat b at T_b = 0.5 +
sum of the beat lengths d before it, where d = 1.5 s for the last beat of each
two-bar span (beats 3, 7, 11) and 1 s otherwise; chord notes at T_b - 10, +0,
+10 ms (the median stays T_b); off-beat notes half a beat after T_b plus 20
ms (even beats) or 40 ms (odd beats); downbeat chords at velocity 80, every
other note at 60. The sustain pedal goes down before the first note, is
changed (lift 150 ms after the downbeat, down again 100 ms later) at the
harmonic changes of bars 1-5, and held through those of bars 6 and 7.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from features.note_summary import FEATURES, summary
from features.notes import extract, read_grid
from features.score import FEATURES as SCORE_FEATURES
from features.score import extract as score_extract
from tests.features.test_notes import _write

N_BARS = 8
D = np.array([1.5 if b in (3, 7, 11) else 1.0 for b in range(16)])
T = 0.5 + np.concatenate(([0.0], np.cumsum(D)[:-1]))  # performed time of beat b
DELTA = np.array([0.02 if b % 2 == 0 else 0.04 for b in range(16)])


def _chord(bar):
    return (48, 52, 55) if bar % 2 == 0 else (43, 47, 50)


def _tones(bar):  # second-beat tone, off-beat tone
    return (72, 76) if bar % 2 == 0 else (71, 74)


def _score(path):
    notes = []
    for bar in range(N_BARS):
        b0 = 960 * bar
        notes += [(p, 64, b0, b0 + 960) for p in _chord(bar)]
        second, off = _tones(bar)
        notes += [(second, 64, b0 + 480, b0 + 720), (off, 64, b0 + 240, b0 + 480), (off, 64, b0 + 720, b0 + 960)]
    return _write(path, 480, [(0, 1_000_000)], (2, 4), notes)


def _perf(path):
    notes = []
    for bar in range(N_BARS):
        down, second = 2 * bar, 2 * bar + 1
        second_pitch, off = _tones(bar)
        notes += [(p, 80, T[down] + dt, T[down] + 1.8) for p, dt in zip(_chord(bar), (-0.01, 0.0, 0.01), strict=True)]
        notes.append((second_pitch, 60, T[second], T[second] + 0.4))
        for b in (down, second):
            onset = T[b] + 0.5 * D[b] + DELTA[b]
            notes.append((off, 60, onset, onset + 0.3))
    pedal = [(0.3, 127)]
    for bar in range(1, 6):
        pedal += [(T[2 * bar] + 0.15, 0), (T[2 * bar] + 0.25, 127)]
    pedal.append((T[15] + 2.0, 0))
    ms = [(p, v, round(1000 * a), round(1000 * b)) for p, v, a, b in notes]
    return _write(path, 1000, [(0, 1_000_000)], None, ms, [(round(1000 * t), 64, v) for t, v in pedal])


@pytest.fixture()
def pair(tmp_path):
    return _perf(tmp_path / "perf.mid"), _score(tmp_path / "score.mid")


def _expected() -> dict[str, float]:
    out = {}
    ratio = (T[15] - T[0]) / 15  # performance seconds per score second between the first and last beat
    tempo = np.log2(D[:15] / ratio)  # beat b's interval is d_b (one score second each)
    out["sc_beat_tempo_std"] = tempo.std()
    out["sc_beat_tempo_change_std"] = np.diff(tempo).std()
    # Off-beats inside the span of beat anchors (beats 0..15; the off-beat after beat 15 is outside).
    micro = 1e3 * DELTA[:15]
    out["sc_beat_micro_mean"], out["sc_beat_micro_std"] = micro.mean(), micro.std()
    bar_len = np.array([D[2 * j] + D[2 * j + 1] for j in range(7)]) / 2  # downbeat to downbeat, 2 score s
    out["sc_bar_tempo_std"] = np.log2(bar_len / ratio).std()
    # Per two-bar span (4 beats): chord notes -10, 0, +10 ms twice, second beats 0 twice, off-beats DELTA.
    stds = []
    for p in range(4):
        dev = [-10, 0, 10, -10, 0, 10, 0, 0] + [1e3 * DELTA[b] for b in range(4 * p, 4 * p + 4) if b < 15]
        stds.append(np.std(dev))
    out["sc_phrase_timing_std_mean"], out["sc_phrase_timing_std_sd"] = np.mean(stds), np.std(stds)
    # Intervals by the span of their first beat: [1, 1, 1, 1.5] three times, then [1, 1, 1].
    out["sc_phrase_final_tempo"] = (3 * math.log2(1.5 / 1.125) + 0.0) / 4
    out["sc_metric_downbeat_vel"] = 80 - 60
    # Harmonic changes on the downbeats of bars 1..7: lifts 150 ms after at bars 1..5, held at bars 6 and 7.
    out["sc_harm_pedal_change_frac"] = 5 / 7
    out["sc_harm_pedal_lag_median"] = 150.0
    out["sc_harm_pedal_blur_frac"] = 2 / 7
    return out


def test_hand_made_pair_gives_the_hand_computed_summaries(pair):
    table = extract(*pair)
    assert table.aligned and table.score_match_frac == 1.0 and table.perf_match_frac == 1.0
    got = summary(table, read_grid(pair[1]))
    assert list(got) == list(FEATURES)
    for name, want in _expected().items():
        assert got[name] == pytest.approx(want, abs=1e-6), name


def test_the_summaries_join_the_score_set(pair):
    values = score_extract(*pair)
    assert list(values) == list(SCORE_FEATURES)
    assert set(FEATURES) <= set(SCORE_FEATURES)
    for name, want in _expected().items():
        assert values[name] == pytest.approx(want, abs=1e-6), name


def test_unaligned_segments_get_nan(pair):
    table = extract(pair[0], None)
    assert all(math.isnan(v) for v in summary(table, None).values())
    assert all(math.isnan(v) for v in summary(None, None).values())
