"""Audio stages through the cache and the CLI: render, audio features, mel, bad SoundFonts."""

import numpy as np
import pytest
import soundfile

from benchmark.cli import EXIT_ERROR, main
from benchmark.dataset import load_dataset
from benchmark.errors import DataError
from features.build import build_arrays, build_features
from features.cache import Cache
from features.stages import AudioParams, MelParams, logmel_for, rendered_audio


@pytest.fixture()
def rows(fake_data_dir):
    return load_dataset(fake_data_dir).meta


def test_rendered_audio_is_cached_by_content(rows, tmp_path):
    cache = Cache(tmp_path / "c")
    row = rows.iloc[0].to_dict()
    y1 = rendered_audio(row, cache, AudioParams())
    assert cache.info()[0]["entries"] == 1
    y2 = rendered_audio(row, cache, AudioParams())
    np.testing.assert_allclose(y1, y2, atol=1e-3)  # second read comes from the float16 entry
    rendered_audio(row, cache, AudioParams(sr=16000))  # a parameter change is a new entry
    assert cache.info()[0]["entries"] == 2


def test_mel_stage_shape_and_frame_rate(rows, tmp_path):
    cache = Cache(tmp_path / "c")
    spec, rate = logmel_for(rows.iloc[0].to_dict(), cache, AudioParams(), MelParams(n_mels=64))
    assert spec.dtype == np.float16 and spec.shape[0] == 64
    assert rate == pytest.approx(22050 / round(22050 / 100))
    assert {r["stage"] for r in cache.info()} == {"render", "mel"}
    assert build_arrays(rows.iloc[:3], cache, mel=MelParams(n_mels=64)) == {}


def test_audio_feature_set_builds_then_reads_cache(rows, tmp_path):
    cache = Cache(tmp_path / "c")
    fm = build_features(rows.iloc[:4], ["audio"], cache, progress=False)
    assert fm.X.shape == (4, 85) and fm.n_computed == 4
    assert np.isfinite(fm.X[["au_rms_mean"]].to_numpy()).all()
    again = build_features(rows.iloc[:4], ["audio"], cache, progress=False)
    assert again.n_cached == 4
    np.testing.assert_array_equal(fm.X.to_numpy(), again.X.to_numpy())


def test_bad_soundfont_is_one_line_error(fake_data_dir, tmp_path, capsys):
    not_sf = tmp_path / "piano.sf2"
    not_sf.write_bytes(b"RIFF\x00\x00\x00\x00WAVEfmt ")
    common = ["--data-dir", str(fake_data_dir), "--cache-dir", str(tmp_path / "c")]
    for sf in (str(tmp_path / "missing.sf2"), str(not_sf)):
        code = main(["features", "build", "--features", "audio", "--soundfont", sf, *common])
        err = capsys.readouterr().err
        assert code == EXIT_ERROR and len(err.strip().splitlines()) == 1 and "SoundFont" in err


def test_render_command_writes_audible_wav(fake_data_dir, tmp_path, capsys):
    out = tmp_path / "seg.wav"
    sid = "Schubert_D960_mv2_4bars_1_1"
    assert main(["render", sid, "-o", str(out), "--data-dir", str(fake_data_dir),
                 "--cache-dir", str(tmp_path / "c")]) == 0
    y, sr = soundfile.read(out)
    assert sr == 22050 and np.sqrt(np.mean(y ** 2)) > 1e-3
    # the fake segment lasts n_notes * ioi plus a held bass note; the tail adds 1 s
    import pretty_midi

    end = pretty_midi.PrettyMIDI(str(fake_data_dir / "virtuoso/data/all_2rounds" / f"{sid}.mid")).get_end_time()
    assert len(y) / sr == pytest.approx(end + 1.0, abs=0.05)
    assert main(["render", "nope", "-o", str(out), "--data-dir", str(fake_data_dir)]) == EXIT_ERROR
    assert "unknown segment" in capsys.readouterr().err


def test_corrupt_entry_is_rebuilt_not_served(rows, tmp_path):
    cache = Cache(tmp_path / "c")
    first = build_features(rows.iloc[:3], ["midi"], cache, progress=False)
    entry = sorted((tmp_path / "c" / "midi").rglob("*.npz"))[0]
    entry.write_bytes(entry.read_bytes()[:40])  # truncated by a crash or a bad disk
    again = build_features(rows.iloc[:3], ["midi"], cache, progress=False)
    assert again.n_cached == 2 and again.n_computed == 1
    np.testing.assert_array_equal(first.X.to_numpy(), again.X.to_numpy())
    assert build_features(rows.iloc[:3], ["midi"], cache, progress=False).n_cached == 3


def test_midi_that_renders_to_silence_is_skipped_with_its_id(rows, tmp_path):
    import pretty_midi

    row = rows.iloc[0]
    pm = pretty_midi.PrettyMIDI()
    inst = pretty_midi.Instrument(program=0)
    inst.control_changes.append(pretty_midi.ControlChange(64, 100, 0.0))  # pedal, but no note at all
    inst.control_changes.append(pretty_midi.ControlChange(64, 0, 2.0))
    pm.instruments.append(inst)
    pm.write(row["midi_path"])
    fm = build_features(rows.iloc[:3], ["audio"], Cache(tmp_path / "c"), progress=False, on_bad_input="skip")
    assert list(fm.skipped) == [row["sample_id"]] and len(fm.X) == 2
    with pytest.raises(DataError, match=row["sample_id"]):
        build_features(rows.iloc[:3], ["audio"], Cache(tmp_path / "c"), progress=False, on_bad_input="error")
