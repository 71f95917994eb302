"""The note stage (features.notes) on a hand-made score/performance pair whose every feature is worked out by hand.

The score (written with mido, 480 ticks per quarter) is three bars of 3/4:
bar 0 at 60 bpm (1 s per quarter) holds a C-major chord and five eighths,
bar 1 after a tempo change to 120 bpm (0.5 s per quarter) a D-minor chord and
two quarters, bar 2 a C-major chord. So there is a score onset every 0.5 s,
s = 0, 0.5, ..., 4.5, and every local window of +-1 s holds at least three
anchors. The performance (1000 ticks per second) plays every score note at
t = 1.25 s + 0.2, except that the E of the first chord comes 30 ms late (the
chord's anchor is the median of three onsets, so the time map is untouched)
and a stray note (pitch 90, absent from the score) is inserted at 1.75 s.
"""

from __future__ import annotations

import logging
import math

import mido
import numpy as np
import pytest

from features.cache import Cache
from features.notes import COLUMN_INDEX, COLUMNS, VERSION, extract, make_grid, notes_for, stage_key

TPQ = 480
# (pitch, start tick, length in ticks) of the score; bar 0 at 1 s per quarter, then 0.5 s per quarter.
SCORE = [(60, 0, 480), (64, 0, 480), (67, 0, 480),
         (72, 240, 240), (74, 480, 240), (76, 720, 240), (77, 960, 240), (79, 1200, 240),
         (62, 1440, 480), (65, 1440, 480), (69, 1440, 480), (81, 1920, 480), (83, 2400, 240),
         (60, 2880, 960), (64, 2880, 960), (67, 2880, 960)]
#: Score seconds of each note above (worked from the tempo map), its beat, beat in bar, bar, notated beats.
SCORE_S = [0, 0, 0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 3.0, 3.0, 3.5, 4.0, 4.5, 4.5, 4.5]
SCORE_END_S = [1, 1, 1, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 3.5, 3.5, 4.0, 4.25, 5.5, 5.5, 5.5]
BEAT = [0, 0, 0, 0.5, 1, 1.5, 2, 2.5, 3, 3, 3, 4, 5, 6, 6, 6]
BEAT_IN_BAR = [0, 0, 0, 0.5, 1, 1.5, 2, 2.5, 0, 0, 0, 1, 2, 0, 0, 0]
BAR = [0] * 8 + [1] * 5 + [2] * 3
NOTATED_BEATS = [1, 1, 1, 0.5, 0.5, 0.5, 0.5, 0.5, 1, 1, 1, 1, 0.5, 2, 2, 2]
#: Performed key-down length over the tempo-scaled notated length, per score note (whole ms every one).
HELD = [1.0, 1.0, 1.0, 0.8, 1.0, 1.0, 1.0, 0.6, 1.0, 1.0, 1.0, 1.2, 0.8, 1.0, 1.0, 1.0]
SLOPE, OFFSET, LATE = 1.25, 0.2, 0.030
STRAY = (90, 1.75, 0.1)  # pitch, onset, length (s)
SUSTAIN = [(0.1, 127), (2.0, 0)]  # (s, value): down before the first note, up at 2.0 s


def _write(path, tpq, tempi, signature, notes, controls=()):
    """notes: (pitch, velocity, start tick, end tick); tempi: (tick, us per quarter); controls: (tick, cc, value)."""
    events = [(t, 1, mido.MetaMessage("set_tempo", tempo=u)) for t, u in tempi]
    if signature:
        events.append((0, 0, mido.MetaMessage("time_signature", numerator=signature[0], denominator=signature[1])))
    for pitch, vel, on, off in notes:
        events += [(on, 3, mido.Message("note_on", note=pitch, velocity=vel)),
                   (off, 2, mido.Message("note_off", note=pitch, velocity=0))]
    events += [(t, 2, mido.Message("control_change", control=cc, value=v)) for t, cc, v in controls]
    track, now = mido.MidiTrack(), 0
    for tick, _, msg in sorted(events, key=lambda e: (e[0], e[1])):
        track.append(msg.copy(time=tick - now))
        now = tick
    mid = mido.MidiFile(ticks_per_beat=tpq)
    mid.tracks.append(track)
    mid.save(path)
    return path


def _score(path):
    return _write(path, TPQ, [(0, 1_000_000), (1440, 500_000)], (3, 4),
                  [(p, 64, on, on + length) for p, on, length in SCORE])


def _perf_notes():
    """(pitch, velocity, onset s, offset s) of the performance, in score order, then the stray note."""
    notes = []
    for k, ((pitch, _, _), s, end, held) in enumerate(zip(SCORE, SCORE_S, SCORE_END_S, HELD, strict=True)):
        onset = SLOPE * s + OFFSET + (LATE if k == 1 else 0.0)
        notes.append((pitch, 50 + k, onset, onset + held * SLOPE * (end - s)))
    return notes + [(STRAY[0], 99, STRAY[1], STRAY[1] + STRAY[2])]


def _perf(path):
    ms = [(p, v, round(1000 * on), round(1000 * off)) for p, v, on, off in _perf_notes()]
    return _write(path, 1000, [(0, 1_000_000)], None, ms, [(round(1000 * t), 64, v) for t, v in SUSTAIN])


@pytest.fixture()
def pair(tmp_path):
    return _perf(tmp_path / "perf.mid"), _score(tmp_path / "score.mid")


def _expected():
    """Every column by hand, rows in time order (onset, then pitch), as the stage sorts them."""
    rows = []
    for k, ((pitch, _, _), s, end, held) in enumerate(zip(SCORE, SCORE_S, SCORE_END_S, HELD, strict=True)):
        onset = SLOPE * s + OFFSET + (LATE if k == 1 else 0.0)
        length = held * SLOPE * (end - s)
        rows.append({"pitch": pitch, "onset_abs": onset, "log_duration": math.log2(length), "velocity": 50 + k,
                     "tempo": math.log2(SLOPE), "tempo_dev": 0.0, "onset_dev": LATE if k == 1 else 0.0,
                     "articulation": math.log2(held), "score_beat": BEAT[k], "beat_in_bar": BEAT_IN_BAR[k],
                     "bar": BAR[k], "beat": math.floor(BEAT[k]), "score_duration": NOTATED_BEATS[k], "matched": 1,
                     "release": onset + length})
    # The stray note: score time (1.75 - 0.2) / 1.25 = 1.24 s, in bar 0 at 1 s per quarter: beat 1.24.
    s = (STRAY[1] - OFFSET) / SLOPE
    rows.append({"pitch": STRAY[0], "onset_abs": STRAY[1], "log_duration": math.log2(STRAY[2]), "velocity": 99,
                 "tempo": math.log2(SLOPE), "tempo_dev": 0.0, "onset_dev": 0.0, "articulation": 0.0,
                 "score_beat": s, "beat_in_bar": s, "bar": 0, "beat": 1, "score_duration": 0.0, "matched": 0,
                 "release": STRAY[1] + STRAY[2]})
    rows.sort(key=lambda r: (r["onset_abs"], r["pitch"]))
    onsets = np.array([r["onset_abs"] for r in rows])
    ioi = np.diff(onsets, prepend=onsets[0])
    for r, gap in zip(rows, ioi, strict=True):
        r["onset"] = r["onset_abs"] - onsets[0]
        r["log_ioi"] = math.log2(max(gap, 0.01))

        def pedal(t):  # the sustain value in force at t (events at t count)
            return ([v for when, v in SUSTAIN if when <= t + 1e-12] or [0])[-1] / 127

        r["sustain_onset"], r["sustain_release"], r["soft_onset"] = pedal(r["onset_abs"]), pedal(r["release"]), 0.0
    return rows


def test_hand_made_pair_gives_the_hand_computed_features(pair):
    table = extract(*pair)
    assert table.aligned
    assert table.values.shape == (17, len(COLUMNS))
    expected = _expected()
    for name in COLUMNS:
        want = np.array([r[name] for r in expected], dtype=float)
        # The MIDI files hold times in whole ticks of 1 ms (performance) and 1/480 quarter (score).
        np.testing.assert_allclose(table.column(name), want, atol=2e-9, rtol=0, err_msg=name)
    assert table.score_match_frac == 1.0 and table.perf_match_frac == pytest.approx(16 / 17)


def test_cache_hit_equals_miss_bit_for_bit_and_records_the_alignment_quality(pair, tmp_path):
    row = {"midi_path": str(pair[0]), "score_midi_path": str(pair[1])}
    cache = Cache(tmp_path / "cache")
    miss = notes_for(row, cache)
    assert cache.path("notes", stage_key(row)).is_file()
    hit = notes_for(row, cache)
    assert miss.keys() == hit.keys() == {"notes", "match"}
    for k in miss:
        assert miss[k].dtype == hit[k].dtype and miss[k].tobytes() == hit[k].tobytes()
    assert miss["notes"].dtype == np.float32 and miss["notes"].shape == (17, len(COLUMNS))
    np.testing.assert_array_equal(miss["match"], [1.0, 16 / 17])
    np.testing.assert_array_equal(miss["notes"], extract(*pair).values.astype(np.float32))


def test_the_key_follows_content_version_and_the_score(pair, tmp_path):
    row = {"midi_path": str(pair[0]), "score_midi_path": str(pair[1])}
    key = stage_key(row)
    copy = tmp_path / "elsewhere.mid"
    copy.write_bytes(pair[0].read_bytes())
    assert stage_key({**row, "midi_path": str(copy)}) == key  # content, not path
    assert stage_key({**row, "score_midi_path": None}) != key
    assert VERSION


def test_no_score_or_a_wrong_score_gets_the_stand_in_grid(pair, tmp_path, caplog):
    with caplog.at_level(logging.WARNING, logger="features.notes"):
        table = extract(pair[0], None)
    assert not table.aligned and math.isnan(table.score_match_frac)
    assert "no score MIDI" in caplog.text
    # Stand-in: one beat per second from the first onset, four to a bar; score-derived columns 0.
    onset = table.column("onset")
    np.testing.assert_allclose(table.column("score_beat"), onset)
    np.testing.assert_allclose(table.column("bar"), np.floor(onset / 4))
    for name in ("tempo", "tempo_dev", "onset_dev", "articulation", "score_duration", "matched"):
        assert not table.column(name).any(), name
    other = _write(tmp_path / "other.mid", TPQ, [(0, 500_000)], (4, 4),
                   [(30 + k, 64, 240 * k, 240 * k + 200) for k in range(12)])
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="features.notes"):
        wrong = extract(pair[0], other)
    assert not wrong.aligned and wrong.score_match_frac == 0.0 and "stand-in grid" in caplog.text


def test_grid_counts_a_pickup_bar_and_signature_changes():
    # A 1/8 pickup, then 2/2 (as in some Schubert D935 score files): 480 ticks per quarter.
    grid = make_grid(480, [(0, 500_000)], [(0, 1, 8), (240, 2, 2)])
    ticks = np.array([0, 120, 240, 720, 1200, 2160, 2400])
    beats, in_bar, bar = grid.position(ticks * 0.5 / 480)  # 0.5 s per quarter
    # Pickup: eighth beats; then half-note beats, bars of 1920 ticks from tick 240.
    np.testing.assert_allclose(beats, [0, 0.5, 1, 1.5, 2, 3, 3.25])
    np.testing.assert_allclose(in_bar, [0, 0.5, 0, 0.5, 1, 0, 0.25], atol=1e-8)
    np.testing.assert_array_equal(bar, [0, 0, 1, 1, 1, 2, 2])
    # No signature: 4/4; a tempo change halves the seconds per tick.
    grid = make_grid(480, [(0, 500_000), (960, 1_000_000)], [])
    np.testing.assert_allclose(grid.ticks(np.array([0.5, 1.0, 2.0, -0.5])), [480, 960, 1440, -480])
    beats, in_bar, bar = grid.position(np.array([2.0, 4.0]))
    np.testing.assert_allclose(beats, [3, 5])
    np.testing.assert_array_equal(bar, [0, 1])


def test_score_rendering_against_itself_has_no_deviation(real_dataset):
    """A deadpan 'Score' segment aligned to its own score file: every note matched, on time, at the notated tempo."""
    meta = real_dataset.meta
    row = meta[meta["player"] == "Score"].iloc[0]
    table = extract(row["midi_path"], row["score_midi_path"])
    assert table.aligned and table.score_match_frac == 1.0 and table.perf_match_frac == 1.0
    np.testing.assert_allclose(table.column("onset_dev"), 0, atol=1e-6)
    np.testing.assert_allclose(table.column("tempo"), 0, atol=1e-6)
    assert table.column("matched").all()
    bars = table.column("bar")
    assert bars.min() == 0 and np.all(np.diff(bars) >= 0) and bars.max() >= int(row["bars"]) - 1
    assert COLUMN_INDEX["pitch"] == 0
