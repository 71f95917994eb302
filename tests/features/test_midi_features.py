"""Tests for the symbolic MIDI features (features.midi, midi_stats, midi_io).

Synthetic files use 1000 ticks per beat at 60 bpm, so one tick is exactly
1 ms and every time below is exact; expected values are worked out by hand
in the comments.
"""

from __future__ import annotations

import math
import os
import re
import time
import warnings
from pathlib import Path

import mido
import numpy as np
import pretty_midi
import pytest
from scipy import stats

from benchmark.errors import DataError, UnknownNameError
from features.midi import FAMILIES, FEATURES, VERSION, extract, feature_family
from features.midi_io import read_performance

REPO_ROOT = Path(__file__).resolve().parents[2]
CORE = (
    "dur_total",
    "density_notes_per_s",
    "pitch_range",
    "vel_mean",
    "vel_p90_p10",
    "ioi_mean",
    "ioi_median",
    "art_ratio_median",
    "pedal_frac",
    "poly_mean",
)
# A melody of four notes, IOI 0.5 s, with one pedal press over [0.45, 0.95).
MELODY = [(60, 40, 0.0, 0.4), (62, 60, 0.5, 0.9), (64, 80, 1.0, 1.2), (65, 100, 1.5, 2.0)]
MELODY_PEDAL = [(0.45, 127), (0.95, 0)]


def write_midi(path, notes, sustain=(), soft=(), tempo=1_000_000, ticks_per_beat=1000):
    """Write a type-0 file; ``notes`` are (pitch, velocity, start_s, end_s)."""
    scale = ticks_per_beat * 1e6 / tempo  # ticks per second
    events = []  # (tick, same-tick order, message); offs before ons, as players emit them
    for pitch, velocity, start, end in notes:
        events.append((round(start * scale), 1, mido.Message("note_on", note=pitch, velocity=velocity)))
        events.append((round(end * scale), 0, mido.Message("note_off", note=pitch, velocity=0)))
    for control, changes in ((64, sustain), (67, soft)):
        for t, value in changes:
            events.append((round(t * scale), 0, mido.Message("control_change", control=control, value=value)))
    events.sort(key=lambda e: (e[0], e[1]))
    track = mido.MidiTrack([mido.MetaMessage("set_tempo", tempo=tempo, time=0)])
    tick = 0
    for at, _, msg in events:
        track.append(msg.copy(time=at - tick))
        tick = at
    midi = mido.MidiFile(type=0, ticks_per_beat=ticks_per_beat)
    midi.tracks.append(track)
    midi.save(path)
    return Path(path)


def real_midi_dir() -> Path:
    """The real performance MIDI folder; skip when absent, fail when absent on CI."""
    root = Path(os.environ.get("PERCEPIANO_DIR") or REPO_ROOT.parent / "shared" / "percepiano")
    midi_dir = root / "virtuoso" / "data" / "all_2rounds"
    if not midi_dir.is_dir():
        message = f"PercePiano MIDI folder not found at '{midi_dir}'"
        if os.environ.get("CI", "").strip().lower() in {"true", "1", "yes"}:
            pytest.fail(f"{message}; CI=true, so the real-data test may not be skipped")
        pytest.skip(message)
    return midi_dir


# --- the public table -------------------------------------------------------


def test_table_is_well_formed():
    assert len(FEATURES) >= 40 and isinstance(VERSION, str) and VERSION
    for name, doc in FEATURES.items():
        assert re.fullmatch(r"[a-z0-9]+(_[a-z0-9]+)+", name), name
        assert doc and "\n" not in doc and doc.endswith(")"), f"{name}: one line ending with its unit"
    families = [feature_family(name) for name in FEATURES]
    assert set(families) == set(FAMILIES)  # every family used, no stray prefix
    # Families are contiguous, so a report lists them in table order.
    assert [f for i, f in enumerate(families) if i == 0 or families[i - 1] != f] == list(FAMILIES)


def test_feature_family_rejects_unknown_prefix():
    assert feature_family("vel_mean") == "vel"
    with pytest.raises(UnknownNameError, match="did you mean 'vel_mean'"):
        feature_family("vell_mean")
    with pytest.raises(UnknownNameError, match="no known family"):
        feature_family("pedal")


def test_keys_match_table_in_order(tmp_path):
    values = extract(write_midi(tmp_path / "m.mid", MELODY, MELODY_PEDAL))
    assert list(values) == list(FEATURES)
    assert all(type(v) is float for v in values.values())


# --- hand-computed values ---------------------------------------------------


def test_melody_hand_computed(tmp_path):
    f = extract(write_midi(tmp_path / "melody.mid", MELODY, MELODY_PEDAL))
    expected = {
        "dur_total": 2.0,
        "dur_note_mean": (0.4 + 0.4 + 0.2 + 0.5) / 4,
        "dur_note_median": 0.4,
        "density_n_notes": 4,
        "density_notes_per_s": 2.0,
        "density_onsets_per_s": 2.0,
        "pitch_mean": 62.75,
        "pitch_range": 5,
        "pitch_top_mean": 62.75,
        "vel_mean": 70,
        "vel_std": math.sqrt((30**2 + 10**2 + 10**2 + 30**2) / 4),
        "vel_range": 60,
        "vel_p10": 46,  # 40 + 0.3 * 20, linear interpolation
        "vel_skew": 0,
        "vel_slope": 40,  # +20 every 0.5 s
        "vel_local_absdiff": 20,
        "vel_macro_std": 20,  # 1 s windows: means 50 and 90
        "vel_macro_range": 40,
        "ioi_mean": 0.5,
        "ioi_std": 0,
        "ioi_cv": 0,
        "timing_log_ratio_mean": 0,
        "timing_half_ratio": 1,
        "art_ratio_median": 0.8,  # ratios 0.4/0.5, 0.4/0.5, 0.2/0.5; the last note has no next onset
        "art_log_ratio_mean": (2 * math.log2(0.8) + math.log2(0.4)) / 3,
        "art_staccato_frac": 1 / 3,
        "art_legato_frac": 0,
        "art_kot_mean": (-0.1 - 0.1 - 0.3) / 3,
        "art_kot_median": -0.1,
        "art_top_legato_frac": 0,
        "art_silence_frac": (0.1 + 0.1 + 0.3) / 2,
        "pedal_frac": 0.5 / 2,
        "pedal_depth_mean": 0.5 / 2,
        "pedal_half_frac": 0,
        "pedal_presses_per_s": 1 / 2,
        "pedal_press_mean": 0.5,
        "pedal_onset_frac": 1 / 4,  # the note at 0.5 s
        "pedal_release_frac": 1 / 4,  # the key released at 0.9 s sounds until 0.95 s
        "pedal_extension_mean": 0.05 / 4,
        "pedal_blur_ratio": (1.5 + 0.05) / 1.5,
        "pedal_soft_frac": 0,
        "poly_mean": 1.5 / 2,
        "poly_max": 1,
        "poly_sounding_mean": 1.55 / 2,
        "poly_sounding_max": 1,
        "poly_chord_size_mean": 1,
        "poly_chord_frac": 0,
    }
    assert {k: f[k] for k in expected} == pytest.approx(expected, abs=1e-9)
    for undefined in ("timing_acf1", "timing_drift_std", "pedal_gap_mean", "vel_top_minus_rest", "chord_spread_mean"):
        assert math.isnan(f[undefined]), undefined


def test_chords_hand_computed(tmp_path):
    # Two chords, rolled by 30 ms and 10 ms, melody on top and played first.
    notes = [
        (72, 90, 0.000, 0.98), (60, 50, 0.020, 0.98), (64, 40, 0.030, 0.98),
        (74, 80, 1.000, 1.90), (62, 60, 1.010, 1.90),
    ]  # fmt: skip
    f = extract(write_midi(tmp_path / "chords.mid", notes))
    chord_std = (np.std([90, 50, 40]) + np.std([80, 60])) / 2
    expected = {
        "density_onsets_per_s": 2 / 1.9,
        "poly_max": 3,
        "poly_chord_size_mean": 2.5,
        "poly_chord_frac": 1,
        "poly_mean": (0.98 + 0.96 + 0.95 + 0.90 + 0.89) / 1.9,
        "ioi_mean": 1.0,
        "pitch_top_mean": 73,
        "pitch_bass_mean": 61,
        "vel_top_mean": 85,
        "vel_top_minus_rest": ((90 - 45) + (80 - 60)) / 2,
        "vel_bass_minus_rest": ((50 - 65) + (60 - 80)) / 2,
        "vel_chord_std": chord_std,
        "chord_spread_mean": 0.02,
        "chord_spread_max": 0.03,
        "chord_melody_lead": (0.025 + 0.01) / 2,
        "chord_bass_lead": ((0.015 - 0.02) + (1.0 - 1.01)) / 2,
        "art_legato_frac": 0,
        "art_kot_mean": 0.98 - 1.0,
    }
    assert {k: f[k] for k in expected} == pytest.approx(expected, abs=1e-9)


def test_single_note_leaves_interval_features_undefined(tmp_path):
    # Half pedal (CC64 40) for 1 s, full for 0.5 s, then up; soft pedal over [0.5, 1).
    path = write_midi(
        tmp_path / "one.mid",
        [(60, 64, 0.0, 2.0)],
        sustain=[(0.0, 40), (1.0, 100), (1.5, 0)],
        soft=[(0.5, 127), (1.0, 0)],
    )
    f = extract(path)
    assert f["density_n_notes"] == 1 and f["vel_std"] == 0 and f["density_onsets_per_s"] == 0.5
    assert f["pedal_half_frac"] == pytest.approx(0.5)
    assert f["pedal_frac"] == pytest.approx(0.25)
    assert f["pedal_depth_mean"] == pytest.approx((40 * 1.0 + 100 * 0.5) / 127 / 2)
    assert f["pedal_soft_frac"] == pytest.approx(0.25)
    assert f["pedal_release_frac"] == 0
    undefined = ["ioi_mean", "ioi_std", "ioi_log_std", "vel_skew", "vel_slope", "art_ratio_median", "art_kot_mean"]
    assert all(math.isnan(f[k]) for k in undefined)


def test_pedal_presses_gaps_and_same_tick_repedal(tmp_path):
    note = [(60, 64, 0.0, 2.0)]
    f = extract(write_midi(tmp_path / "two.mid", note, sustain=[(0.1, 127), (0.5, 0), (0.8, 127), (1.2, 0)]))
    assert (f["pedal_presses_per_s"], f["pedal_press_mean"], f["pedal_gap_mean"]) == pytest.approx((1.0, 0.4, 0.3))
    # A lift and a press on one tick leave the dampers up: one press of 1.1 s.
    f = extract(write_midi(tmp_path / "same.mid", note, sustain=[(0.1, 127), (0.5, 0), (0.5, 127), (1.2, 0)]))
    assert (f["pedal_presses_per_s"], f["pedal_press_mean"]) == pytest.approx((0.5, 1.1))
    assert math.isnan(f["pedal_gap_mean"])


def test_velocity_moments_match_scipy(tmp_path):
    rng = np.random.default_rng(0)
    velocity = rng.integers(20, 120, size=40)
    notes = [(60 + i % 12, int(v), 0.25 * i, 0.25 * i + 0.2) for i, v in enumerate(velocity)]
    f = extract(write_midi(tmp_path / "random.mid", notes))
    assert f["vel_skew"] == pytest.approx(stats.skew(velocity), rel=1e-9)
    assert f["vel_kurtosis"] == pytest.approx(stats.kurtosis(velocity), rel=1e-9)
    assert f["vel_iqr"] == pytest.approx(stats.iqr(velocity), rel=1e-9)
    assert f["vel_pitch_corr"] == pytest.approx(stats.pearsonr(velocity, 60 + np.arange(40) % 12)[0], rel=1e-9)
    assert f["vel_slope"] == pytest.approx(stats.linregress(0.25 * np.arange(40), velocity).slope, rel=1e-9)


# --- orderings ----------------------------------------------------------------


def test_louder_file_has_larger_velocity_mean(tmp_path):
    soft = extract(write_midi(tmp_path / "soft.mid", MELODY))
    loud = extract(write_midi(tmp_path / "loud.mid", [(p, v + 20, s, e) for p, v, s, e in MELODY]))
    assert loud["vel_mean"] == pytest.approx(soft["vel_mean"] + 20)
    assert loud["vel_std"] == pytest.approx(soft["vel_std"])


def test_staccato_and_legato_order_articulation(tmp_path):
    onsets = np.arange(8) * 0.5
    staccato = extract(write_midi(tmp_path / "stacc.mid", [(60 + i, 64, t, t + 0.1) for i, t in enumerate(onsets)]))
    legato = extract(write_midi(tmp_path / "leg.mid", [(60 + i, 64, t, t + 0.55) for i, t in enumerate(onsets)]))
    assert staccato["art_ratio_median"] == pytest.approx(0.2) and legato["art_ratio_median"] == pytest.approx(1.1)
    assert staccato["art_staccato_frac"] == 1 and legato["art_legato_frac"] == 1
    assert staccato["art_kot_mean"] == pytest.approx(-0.4) and legato["art_kot_mean"] == pytest.approx(0.05)
    assert staccato["art_silence_frac"] > legato["art_silence_frac"] == 0


# --- the reader ---------------------------------------------------------------


def test_reader_follows_tempo_changes_and_pedal_only_tracks(tmp_path):
    # Type 1: tempo on the conductor track, notes on one track, pedal on another.
    conductor = mido.MidiTrack(
        [mido.MetaMessage("set_tempo", tempo=500_000, time=0), mido.MetaMessage("set_tempo", tempo=1_000_000, time=480)]
    )
    notes = mido.MidiTrack(
        [mido.Message("note_on", note=60, velocity=50, time=0), mido.Message("note_off", note=60, time=480),
         mido.Message("note_on", note=62, velocity=70, time=480), mido.Message("note_off", note=62, time=480)]
    )  # fmt: skip
    pedal = mido.MidiTrack([mido.Message("control_change", control=64, value=127, time=720)])
    midi = mido.MidiFile(type=1, ticks_per_beat=480, tracks=[conductor, notes, pedal])
    path = tmp_path / "tempo.mid"
    midi.save(path)
    perf = read_performance(path)
    # 480 ticks at 0.5 s/beat, then 1 s/beat.
    np.testing.assert_allclose(perf.onset, [0.0, 1.5])
    np.testing.assert_allclose(perf.offset, [0.5, 2.5])
    np.testing.assert_allclose(perf.sustain_times, [1.0])


def test_reader_matches_pretty_midi(tmp_path):
    pm = pretty_midi.PrettyMIDI(resolution=384, initial_tempo=93.0)
    piano = pretty_midi.Instrument(program=0)
    rng = np.random.default_rng(1)
    for start in np.sort(rng.uniform(0, 10, 60)):
        pitch = int(rng.integers(40, 90))
        piano.notes.append(pretty_midi.Note(int(rng.integers(1, 128)), pitch, start, start + rng.uniform(0.05, 1.0)))
    piano.control_changes.append(pretty_midi.ControlChange(64, 100, 1.234))
    pm.instruments.append(piano)
    path = tmp_path / "pm.mid"
    pm.write(str(path))
    _assert_same_notes(path)


def _assert_same_notes(path: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # pretty_midi warns about meta events on non-zero tracks
        ref = pretty_midi.PrettyMIDI(str(path))
    ref_notes = sorted((n.start, n.pitch, n.end, n.velocity) for i in ref.instruments for n in i.notes)
    perf = read_performance(path)
    onset, pitch, offset, velocity = map(np.array, zip(*ref_notes, strict=True))
    np.testing.assert_allclose(perf.onset, onset, atol=1e-9)
    np.testing.assert_allclose(perf.offset, offset, atol=1e-9)
    np.testing.assert_array_equal(perf.pitch, pitch)
    np.testing.assert_array_equal(perf.velocity, velocity)


def _no_notes(path: Path) -> None:
    write_midi(path, [], sustain=[(0.0, 127)])


def _unclosed_note(path: Path) -> None:
    track = mido.MidiTrack([mido.Message("note_on", note=60, velocity=64, time=0)])
    mido.MidiFile(tracks=[track]).save(path)


def _truncated(path: Path) -> None:
    write_midi(path, MELODY, MELODY_PEDAL)
    path.write_bytes(path.read_bytes()[:-7])


@pytest.mark.parametrize(
    ("name", "make", "message"),
    [
        ("empty.mid", lambda p: p.write_bytes(b""), "empty or truncated"),
        ("truncated.mid", _truncated, "empty or truncated"),
        ("header_only.mid", lambda p: p.write_bytes(b"MThd\x00\x00\x00\x06\x00"), "empty or truncated"),
        ("notes.txt.mid", lambda p: p.write_text("C4 E4 G4, not a MIDI file\n"), "cannot parse"),
        ("silent.mid", _no_notes, "no notes"),
        ("unclosed.mid", _unclosed_note, "no notes"),
        ("missing.mid", lambda p: None, "not found"),
    ],
)
def test_bad_files_raise_data_error_naming_the_file(tmp_path, name, make, message):
    path = tmp_path / name
    make(path)
    with pytest.raises(DataError, match=re.escape(name)) as info:
        extract(path)
    assert message in str(info.value)


# --- real data ------------------------------------------------------------------


def test_real_files(tmp_path):
    midi_dir = real_midi_dir()
    paths = sorted(midi_dir.glob("*.mid"))
    spaced = [p for p in paths if p.name.startswith(" ")]
    assert spaced, "the dataset has one file whose name begins with a space"
    for path in [*spaced, *paths[::300]]:
        values = extract(path)
        assert list(values) == list(FEATURES)
        assert all(math.isfinite(values[k]) for k in CORE), path.name
        _assert_same_notes(path)
    truncated = tmp_path / paths[0].name
    truncated.write_bytes(paths[0].read_bytes()[:500])
    with pytest.raises(DataError, match=re.escape(truncated.name)):
        extract(truncated)


@pytest.mark.slow
def test_all_real_files_are_fast_and_finite():
    paths = sorted(real_midi_dir().glob("*.mid"))
    start = time.perf_counter()
    rows = np.array([list(extract(p).values()) for p in paths])
    elapsed = time.perf_counter() - start
    assert elapsed < 60, f"{len(paths)} files took {elapsed:.1f} s"
    core = [list(FEATURES).index(k) for k in CORE]
    assert np.isfinite(rows[:, core]).all()
    assert not np.isnan(rows).all(axis=0).any()  # no feature is undefined everywhere
