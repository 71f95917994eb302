"""Tests for the audio path: MIDI rendering, audio descriptors and log-mel inputs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pretty_midi
import pytest

from benchmark.errors import ConfigError, DataError, UnknownNameError
from features import audio, mel, render

SR = 22050
REAL_MIDI_DIR = Path(__file__).resolve().parents[3] / "shared" / "percepiano" / "virtuoso" / "data" / "all_2rounds"


def write_midi(path: Path, notes, pedal=()) -> Path:
    """Write a one-piano MIDI file: notes as (pitch, velocity, start, end), pedal as (time, value)."""
    pm = pretty_midi.PrettyMIDI()
    piano = pretty_midi.Instrument(program=0)
    piano.notes = [pretty_midi.Note(velocity=v, pitch=p, start=s, end=e) for p, v, s, e in notes]
    piano.control_changes = [pretty_midi.ControlChange(number=64, value=v, time=t) for t, v in pedal]
    pm.instruments.append(piano)
    pm.write(str(path))
    return path


def rms(y: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(y, dtype=np.float64))))


@pytest.fixture(scope="module")
def melody(tmp_path_factory) -> Path:
    """A 3 s C-major arpeggio at 4 notes per second: rhythmic enough for beats and onsets."""
    pitches = [60, 64, 67, 72] * 3
    notes = [(p, 80, 0.25 * i, 0.25 * i + 0.2) for i, p in enumerate(pitches)]
    return write_midi(tmp_path_factory.mktemp("midi") / "melody.mid", notes)


@pytest.fixture(scope="module")
def melody_audio(melody) -> np.ndarray:
    return render.render(melody, sr=SR)


# --- render -----------------------------------------------------------------


def test_default_soundfont_is_a_soundfont():
    path = render.default_soundfont()
    assert path.name == "TimGM6mb.sf2"
    assert render.check_soundfont(path) == path


def test_missing_soundfont_raises_config_error(tmp_path, melody):
    with pytest.raises(ConfigError, match="SoundFont not found"):
        render.check_soundfont(tmp_path / "nope.sf2")
    with pytest.raises(ConfigError, match="SoundFont not found"):
        render.render(melody, soundfont=tmp_path / "nope.sf2")


def test_non_soundfont_file_raises_config_error(tmp_path, melody):
    fake = tmp_path / "fake.sf2"
    fake.write_bytes(b"RIFF\x00\x00\x00\x00WAVEfmt ")
    with pytest.raises(ConfigError, match="not a SoundFont"):
        render.check_soundfont(fake)
    with pytest.raises(ConfigError, match="not a SoundFont"):
        render.render(melody, soundfont=fake)


def test_render_is_mono_float32_and_not_silent(melody_audio):
    assert melody_audio.ndim == 1
    assert melody_audio.dtype == np.float32
    assert np.all(np.isfinite(melody_audio))
    assert rms(melody_audio) > 1e-3


@pytest.mark.parametrize("tail_s", [0.0, 0.5, 1.0])
def test_render_length_is_midi_end_plus_tail(tmp_path, tail_s):
    path = write_midi(tmp_path / "len.mid", [(60, 90, 0.1, 0.8), (67, 90, 0.5, 1.37)])
    end_time = pretty_midi.PrettyMIDI(str(path)).get_end_time()
    y = render.render(path, sr=SR, tail_s=tail_s)
    # Event times are quantised to MIDI ticks and samples: allow one synth block (64 samples).
    assert abs(y.size - (end_time + tail_s) * SR) <= 64


def test_higher_velocity_renders_louder(tmp_path):
    chord = [(60, 0.0, 1.0), (64, 0.0, 1.0), (67, 0.5, 1.5)]
    soft = render.render(write_midi(tmp_path / "soft.mid", [(p, 40, s, e) for p, s, e in chord]), sr=SR)
    loud = render.render(write_midi(tmp_path / "loud.mid", [(p, 110, s, e) for p, s, e in chord]), sr=SR)
    assert soft.size == loud.size
    assert rms(loud) > 2 * rms(soft)


def test_sustain_pedal_keeps_a_released_note_ringing(tmp_path):
    note = [(60, 90, 0.0, 0.2)]
    # Both files end with a pedal message at 2.0 s so they render to the same length.
    dry = render.render(write_midi(tmp_path / "dry.mid", note, pedal=[(0.0, 0), (2.0, 0)]), sr=SR)
    wet = render.render(write_midi(tmp_path / "wet.mid", note, pedal=[(0.0, 127), (2.0, 0)]), sr=SR)
    assert dry.size == wet.size
    during = slice(int(0.7 * SR), int(1.9 * SR))  # key released, pedal still down
    assert rms(wet[during]) > 10 * rms(dry[during])
    # Lifting the pedal damps the note: the last half second is much quieter than while held.
    assert rms(wet[-SR // 2 :]) < 0.1 * rms(wet[during])


def test_half_pedal_below_threshold_does_not_sustain(tmp_path):
    note = [(60, 90, 0.0, 0.2)]
    dry = render.render(write_midi(tmp_path / "dry.mid", note, pedal=[(0.0, 0), (2.0, 0)]), sr=SR)
    half = render.render(write_midi(tmp_path / "half.mid", note, pedal=[(0.0, 63), (2.0, 0)]), sr=SR)
    np.testing.assert_array_equal(dry, half)


@pytest.mark.parametrize(
    "content",
    [b"", b"MThd\x00\x00\x00\x06\x00\x01", b"this is not a MIDI file at all"],
    ids=["empty", "truncated", "text"],
)
def test_bad_midi_raises_data_error_naming_the_file(tmp_path, content):
    path = tmp_path / "broken_segment.mid"
    path.write_bytes(content)
    with pytest.raises(DataError, match="broken_segment.mid"):
        render.render(path)


def test_truncated_real_midi_raises_data_error(tmp_path, melody):
    path = tmp_path / "cut.mid"
    path.write_bytes(melody.read_bytes()[:-20])
    with pytest.raises(DataError, match="cut.mid"):
        render.render(path)


def test_missing_midi_raises_data_error(tmp_path):
    with pytest.raises(DataError, match="absent.mid"):
        render.render(tmp_path / "absent.mid")


def test_midi_without_notes_raises_data_error(tmp_path):
    path = write_midi(tmp_path / "pedal_only.mid", [], pedal=[(0.0, 127), (1.0, 0)])
    with pytest.raises(DataError, match="pedal_only.mid.*no notes"):
        render.render(path)


def test_silent_render_raises_data_error(tmp_path, monkeypatch, melody):
    monkeypatch.setattr(render, "_SILENCE_PEAK", 1e6)  # every real render is "silent" now
    with pytest.raises(DataError, match="melody.mid renders to silence"):
        render.render(melody)


@pytest.mark.parametrize("kwargs", [{"sr": 0}, {"tail_s": -1.0}, {"preset": 128}])
def test_bad_render_options_raise_config_error(melody, kwargs):
    with pytest.raises(ConfigError):
        render.render(melody, **kwargs)


# --- audio features -----------------------------------------------------------


def test_feature_table_and_families():
    names = list(audio.FEATURES)
    assert 50 <= len(names) <= 100
    assert all(name.startswith("au_") and doc for name, doc in audio.FEATURES.items())
    families = {audio.feature_family(name) for name in names}
    assert families == set(audio.FAMILIES)  # every family is used
    assert audio.feature_family("au_rms_db_slope") == "au_rms"
    with pytest.raises(UnknownNameError, match="did you mean 'au_rms_mean'"):
        audio.feature_family("au_rsm_mean")


def test_extract_keys_in_order_and_finite(melody_audio):
    features = audio.extract(melody_audio, SR)
    assert list(features) == list(audio.FEATURES)
    assert all(isinstance(v, float) for v in features.values())
    bad = [name for name, value in features.items() if not np.isfinite(value)]
    assert not bad, f"non-finite features: {bad}"
    assert features["au_onset_rate"] == pytest.approx(12 / (melody_audio.size / SR), rel=0.35)


def test_extract_known_answer_for_a_sine():
    amplitude, freq = 0.5, 440.0
    t = np.arange(3 * SR) / SR
    y = (amplitude * np.sin(2 * np.pi * freq * t)).astype(np.float32)
    features = audio.extract(y, SR)
    assert features["au_rms_mean"] == pytest.approx(amplitude / np.sqrt(2), rel=0.02)
    assert features["au_rms_max"] == pytest.approx(amplitude / np.sqrt(2), rel=0.01)
    assert features["au_rms_db_p50"] == pytest.approx(20 * np.log10(amplitude / np.sqrt(2)), abs=0.1)
    assert features["au_spec_centroid_mean"] == pytest.approx(freq, rel=0.05)
    assert features["au_spec_flatness_mean"] < 0.01
    chroma = [features[f"au_chroma_{pc}"] for pc in ("c", "cs", "d", "ds", "e", "f", "fs", "g", "gs", "a", "as", "b")]
    assert int(np.argmax(chroma)) == 9  # A
    assert features["au_hpss_harmonic_ratio"] > 0.9


def test_extract_keeps_absolute_level(melody_audio):
    loud = audio.extract(melody_audio, SR)
    quiet = audio.extract(melody_audio * 0.1, SR)
    assert loud["au_rms_db_p90"] - quiet["au_rms_db_p90"] == pytest.approx(20.0, abs=0.1)
    assert loud["au_mfcc_00_mean"] > quiet["au_mfcc_00_mean"]


def test_extract_rejects_bad_input():
    with pytest.raises(DataError, match="mono"):
        audio.extract(np.zeros((2, SR), dtype=np.float32), SR)
    with pytest.raises(DataError, match="fewer than one"):
        audio.extract(np.zeros(100, dtype=np.float32), SR)
    with pytest.raises(DataError, match="NaN"):
        audio.extract(np.full(SR, np.nan, dtype=np.float32), SR)
    with pytest.raises(ConfigError, match="sr="):
        audio.extract(np.zeros(SR, dtype=np.float32), 8000)


@pytest.mark.skipif(not REAL_MIDI_DIR.is_dir(), reason="shared PercePiano copy not present")
def test_real_percepiano_files_render_and_extract():
    for path in sorted(REAL_MIDI_DIR.glob("*.mid"))[:2]:
        y = render.render(path, sr=SR)
        end_time = pretty_midi.PrettyMIDI(str(path)).get_end_time()
        assert y.size / SR == pytest.approx(end_time + 1.0, abs=0.05)
        features = audio.extract(y, SR)
        assert np.all(np.isfinite(list(features.values())))


# --- log-mel --------------------------------------------------------------------


def test_logmel_shape_dtype_and_frame_rate(melody_audio):
    spec, frame_rate = mel.logmel(melody_audio, SR)
    hop_length = round(SR / 100)
    assert spec.shape == (128, 1 + melody_audio.size // hop_length)
    assert spec.dtype == np.float16
    assert frame_rate == pytest.approx(SR / hop_length)
    spec, frame_rate = mel.logmel(melody_audio, SR, n_mels=64, hop_length=512)
    assert spec.shape == (64, 1 + melody_audio.size // 512)
    assert frame_rate == pytest.approx(SR / 512)


def test_logmel_uses_a_fixed_reference(melody_audio):
    loud, _ = mel.logmel(melody_audio, SR)
    quiet, _ = mel.logmel(melody_audio * 0.1, SR)
    active = loud.astype(np.float32) > -60  # well above the floor in both
    difference = loud.astype(np.float32)[active] - quiet.astype(np.float32)[active]
    np.testing.assert_allclose(difference, 20.0, atol=0.2)
    silence, _ = mel.logmel(np.zeros(SR, dtype=np.float32), SR)
    assert np.all(silence == np.float16(mel.DB_FLOOR))


def test_fit_length_pads_short_input_with_the_floor():
    spec = np.zeros((4, 5), dtype=np.float16)
    for mode, rng in (("test", None), ("train", 0)):
        out = mel.fit_length(spec, 8, mode=mode, rng=rng)
        assert out.shape == (4, 8) and out.dtype == np.float16
        np.testing.assert_array_equal(out[:, :5], 0)
        np.testing.assert_array_equal(out[:, 5:], np.float16(mel.DB_FLOOR))


def test_fit_length_test_mode_centre_crops_deterministically():
    spec = np.tile(np.arange(10, dtype=np.float16), (3, 1))
    out = mel.fit_length(spec, 4, mode="test")
    np.testing.assert_array_equal(out[0], [3, 4, 5, 6])
    np.testing.assert_array_equal(out, mel.fit_length(spec, 4, mode="test"))
    np.testing.assert_array_equal(mel.fit_length(spec, 10, mode="test"), spec)


def test_fit_length_train_mode_random_crop_is_seeded():
    spec = np.tile(np.arange(100, dtype=np.float16), (3, 1))
    a = mel.fit_length(spec, 10, mode="train", rng=np.random.default_rng(7))
    b = mel.fit_length(spec, 10, mode="train", rng=np.random.default_rng(7))
    np.testing.assert_array_equal(a, b)
    rng = np.random.default_rng(0)
    starts = {int(mel.fit_length(spec, 10, mode="train", rng=rng)[0, 0]) for _ in range(20)}
    assert len(starts) > 1  # the crop moves between draws
    for start in starts:  # each crop is a contiguous slice of the input
        assert 0 <= start <= 90


def test_fit_length_rejects_bad_arguments():
    spec = np.zeros((4, 20), dtype=np.float16)
    with pytest.raises(ConfigError, match="rng"):
        mel.fit_length(spec, 10, mode="train")
    with pytest.raises(ConfigError, match="mode"):
        mel.fit_length(spec, 10, mode="eval")
    with pytest.raises(ConfigError, match="n_frames"):
        mel.fit_length(spec, 0)
    with pytest.raises(DataError, match="shape"):
        mel.fit_length(np.zeros(20), 10)


def test_sliding_windows_cover_every_frame():
    spec = np.tile(np.arange(23, dtype=np.float16), (2, 1))
    windows = mel.sliding_windows(spec, 10, 5)
    assert windows.shape == (4, 2, 10)  # starts 0, 5, 10 and 13 (aligned to the end)
    np.testing.assert_array_equal(windows[:, 0, 0], [0, 5, 10, 13])
    np.testing.assert_array_equal(windows[-1, 0], np.arange(13, 23))
    short = mel.sliding_windows(spec[:, :6], 10, 5)
    assert short.shape == (1, 2, 10)
    np.testing.assert_array_equal(short[0, :, 6:], np.float16(mel.DB_FLOOR))
    with pytest.raises(ConfigError, match="hop"):
        mel.sliding_windows(spec, 10, 0)
