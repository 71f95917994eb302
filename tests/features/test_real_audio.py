"""Real recordings as input: a described dataset of WAV files (rendered by `benchmark render`, described with
audio paths only) gives the rendered-MIDI path's audio features and log-mels, runs rf_audio and ast_ultratiny,
refuses MIDI-only models in one line, and skips bad audio by name."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest
import soundfile

from benchmark.cli import main
from benchmark.dataset import TARGET_NAMES, load_dataset
from benchmark.description import load_described
from features.build import build_features
from features.cache import Cache
from features.stages import AudioParams, MelParams, logmel_for
from tests.benchmark.described_util import only_run, write_description
from tests.conftest import make_fake_percepiano

DESCRIPTION = f"""
[dataset]
name = "recorded"
ratings = "ratings.csv"
id = "take"

[targets]
columns = {json.dumps(list(TARGET_NAMES))}
range = [0, 1]

[groups]
performer = "pianist"
piece = "piece"

[media]
audio = "wav"
"""

STUDY = """
[models.ast_ultratiny_quick]
model = "ast_ultratiny"
epochs = 1
crop = 16
time_pool = 4
batch_size = 8
device = "cpu"
"""


@pytest.fixture(scope="module")
def recorded(tmp_path_factory):
    """A fake PercePiano (8 segments) and the same performances as WAV files, described by audio paths only."""
    tmp = tmp_path_factory.mktemp("recorded")
    root = make_fake_percepiano(tmp / "pp", n_segments=1)
    native = load_dataset(root)
    folder = tmp / "recorded"
    (folder / "wav").mkdir(parents=True)
    rows = []
    for sid, player, piece, y in zip(native.meta["sample_id"], native.meta["player"], native.meta["piece"],
                                     native.y, strict=True):
        wav = folder / "wav" / f"{sid}.wav"
        assert main(["render", sid, "-o", str(wav), "--data-dir", str(root), "--cache-dir", str(tmp / "cache")]) == 0
        rows.append({"take": sid, "pianist": player, "piece": piece, "wav": f"wav/{sid}.wav",
                     **dict(zip(TARGET_NAMES, y, strict=True))})
    pd.DataFrame(rows).to_csv(folder / "ratings.csv", index=False)
    write_description(folder, DESCRIPTION)
    return root, folder, tmp


def test_recordings_give_the_rendered_paths_audio_features_and_log_mels(recorded, tmp_path):
    root, folder, _ = recorded
    native, described = load_dataset(root), load_described(folder)
    assert described.meta["midi_path"].isna().all() and described.has_media("audio").all()
    # Separate caches: nothing the rendered path stored can reach the recorded one. Three players' first take.
    pick = [0, 3, 5]
    a = build_features(native.meta.iloc[pick], ["audio"], Cache(tmp_path / "c1"), progress=False)
    b = build_features(described.meta.iloc[pick], ["audio"], Cache(tmp_path / "c2"), progress=False)
    assert list(a.X.index) == list(b.X.index) and list(a.X.columns) == list(b.X.columns)
    assert np.array_equal(a.X.to_numpy(), b.X.to_numpy(), equal_nan=True)  # bit for bit
    audio, mel = AudioParams(), MelParams()
    for i in pick:
        ma, ra = logmel_for(native.meta.iloc[i].to_dict(), Cache(tmp_path / "c1"), audio, mel)
        mb, rb = logmel_for(described.meta.iloc[i].to_dict(), Cache(tmp_path / "c2"), audio, mel)
        assert ra == rb and np.array_equal(ma, mb)
    # The recorded item's keys are its file's: the cache holds a decode stage, no rendering.
    assert {r["stage"] for r in Cache(tmp_path / "c2").info()} == {"decode", "audio", "mel"}


def test_rf_audio_and_ast_ultratiny_run_end_to_end_on_recordings(recorded, tmp_path, capsys):
    _, folder, tmp = recorded
    study = tmp_path / "study.toml"
    study.write_text(STUDY)
    assert main(["run", "--no-progress", "--study", str(study), "--models", "rf_audio,ast_ultratiny_quick",
                 "--split", "lopo", "--dataset", str(folder), "--cache-dir", str(tmp / "cache"),
                 "--out", str(tmp_path / "runs")]) == 0
    run = only_run(tmp_path / "runs")
    metrics = pd.read_parquet(run / "metrics.parquet")
    assert set(metrics["model"]) == {"rf_audio", "ast_ultratiny_quick"} and (metrics["status"] == "ok").all()
    assert metrics.groupby("model")["fold"].nunique().eq(4).all()
    manifest = json.loads((run / "manifest.json").read_text())
    # No MIDI: the near-duplicate check says it cannot run, instead of failing or pretending.
    assert "no MIDI" in manifest["leakage"]["skipped"]
    assert "Leakage check not run" in capsys.readouterr().out


def test_midi_models_are_unavailable_in_one_line(recorded, tmp_path, capsys):
    _, folder, _ = recorded
    capsys.readouterr()
    assert main(["run", "--no-progress", "--models", "rf_audio,rf,lgbm_all", "--dataset", str(folder),
                 "--cache-dir", str(tmp_path / "cache"), "--out", str(tmp_path / "runs")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "model(s) rf, lgbm_all read MIDI" in err[0] and "8 of 8 items" in err[0]
    assert "rf_audio" in err[0]  # what can run instead
    assert not (tmp_path / "cache").exists() and not any((tmp_path / "runs").iterdir())  # no run started
    assert main(["list", "models", "--dataset", str(folder)]) == 0
    out = capsys.readouterr().out.splitlines()
    line = {o.split()[0]: o for o in out if o.strip() and not o.startswith("unavailable")}
    assert "UNAVAILABLE" in line["rf"] and "UNAVAILABLE" in line["ast_tiny_roll"] and "UNAVAILABLE" in line["hybrid"]
    assert "UNAVAILABLE" not in line["rf_audio"] and "UNAVAILABLE" not in line["ast_ultratiny"]
    [summary] = [o for o in out if o.startswith("unavailable for dataset 'recorded'")]
    assert "8 of 8 items have no MIDI" in summary and "rf," in summary


def test_bad_audio_is_skipped_by_name(recorded, tmp_path, capsys):
    _, folder, _ = recorded
    bad = tmp_path / "bad"
    shutil.copytree(folder, bad)
    wavs = sorted((bad / "wav").glob("*.wav"))
    soundfile.write(wavs[0], np.zeros(22050, dtype=np.float32), 22050)  # silent
    wavs[1].write_bytes(b"RIFF\x00\x00\x00\x00not audio at all")  # unreadable
    soundfile.write(wavs[2], np.zeros((0,), dtype=np.float32), 22050)  # empty
    args = ["run", "--no-progress", "--models", "rf_audio", "--dataset", str(bad), "--cache-dir",
            str(tmp_path / "cache"), "--out", str(tmp_path / "runs")]
    capsys.readouterr()
    assert main(args) == 0
    err = capsys.readouterr().err
    assert "skipped 3 segment(s) with unreadable MIDI or audio" in err
    assert all(w.stem in err for w in wavs[:3])
    preds = pd.read_parquet(only_run(tmp_path / "runs") / "predictions.parquet")
    assert preds["sample_id"].nunique() == 5
    assert main([*args[:-1], str(tmp_path / "runs2"), "--on-bad-input", "error"]) == 2
    line = capsys.readouterr().err.strip()
    assert line.startswith("error: 3 segment(s) have unreadable input") and "silent" in line and "empty" in line


def test_audio_over_the_duration_limit_or_not_a_file_is_refused_from_the_header(tmp_path):
    """The limits are read from the header, before any sample is decoded."""
    from benchmark.errors import DataError
    from features import decode

    long = tmp_path / "long.wav"
    soundfile.write(long, np.full(int((decode.MAX_DURATION_S + 1) * 100), 0.1, dtype=np.float32), 100)
    with pytest.raises(DataError, match=r"lasts 1801 s, over the limit MAX_DURATION_S = 1800 s"):
        decode.load(long, 22050)
    fifo = tmp_path / "pipe.wav"
    import os

    os.mkfifo(fifo)
    with pytest.raises(DataError, match="is not a regular file .is a FIFO"):
        decode.load(fifo, 22050)  # refused before open: would block forever


def test_a_recording_at_another_rate_is_resampled_and_a_mono_file_kept_exactly(tmp_path):
    from features import decode

    t = np.arange(44100) / 44100
    tone = (0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    soundfile.write(tmp_path / "a.wav", tone, 44100, subtype="FLOAT")
    assert np.array_equal(decode.load(tmp_path / "a.wav", 44100), tone)  # same rate: the samples themselves
    half = decode.load(tmp_path / "a.wav", 22050)
    assert half.shape == (22050,)
    # soxr keeps a 440 Hz tone: compare with the analytic tone away from the edges.
    ref = 0.5 * np.sin(2 * np.pi * 440 * np.arange(22050) / 22050)
    assert np.max(np.abs(half[500:-500] - ref[500:-500])) < 1e-3
    stereo = np.stack([tone, np.full_like(tone, 0.25)], axis=1)
    soundfile.write(tmp_path / "s.wav", stereo, 44100, subtype="FLOAT")
    assert np.allclose(decode.load(tmp_path / "s.wav", 44100), (tone + 0.25) / 2, atol=1e-7)
