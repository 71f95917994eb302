"""D4 (hostile MIDI): corrupt, truncated, fuzzed and crafted files are skipped and named (or stop the run
with one line under --on-bad-input error); limits on duration, notes and size are named in the error."""

from __future__ import annotations

import random

import mido
import pytest
from hostile_util import assert_one_line_error

from benchmark.dataset import MIDI_DIR, load_dataset
from benchmark.errors import DataError
from features import midi_io, render
from features.build import build_features
from features.cache import Cache

VICTIM = "Beethoven_WoO80_var3_8bars_2_3"


def late_note_midi(path, seconds_per_beat=16.777215, ticks=0x0FFFFFFF):
    """A valid MIDI file whose only note ends ~4.5e9 s after it starts (MemoryError bait)."""
    mid = mido.MidiFile(ticks_per_beat=1)
    tr = mido.MidiTrack()
    tr.append(mido.MetaMessage("set_tempo", tempo=int(seconds_per_beat * 1e6), time=0))
    tr.append(mido.Message("note_on", note=60, velocity=80, time=0))
    tr.append(mido.Message("note_off", note=60, velocity=0, time=ticks))
    mid.tracks.append(tr)
    mid.save(path)


def many_notes_midi(path, n):
    mid = mido.MidiFile(ticks_per_beat=480)
    tr = mido.MidiTrack()
    for i in range(n):
        tr.append(mido.Message("note_on", note=40 + i % 40, velocity=60, time=0 if i == 0 else 10))
        tr.append(mido.Message("note_off", note=40 + i % 40, velocity=0, time=5))
    mid.tracks.append(tr)
    mid.save(path)


def damage(kind: str, path, rng):
    raw = path.read_bytes()
    if kind == "empty":
        path.write_bytes(b"")
    elif kind == "truncated":
        path.write_bytes(raw[: len(raw) // 2])
    elif kind == "header_only":
        path.write_bytes(raw[:14])
    elif kind == "garbage":
        path.write_bytes(bytes(rng.randrange(256) for _ in range(300)))
    elif kind == "text":
        path.write_text("this is not a MIDI file\n")
    elif kind == "no_notes":
        mid = mido.MidiFile()
        mid.tracks.append(mido.MidiTrack([mido.MetaMessage("end_of_track")]))
        mid.save(path)
    elif kind == "late_note":
        late_note_midi(path)
    elif kind == "directory":
        path.unlink()
        path.mkdir()
    else:
        raise AssertionError(kind)


KINDS = ["empty", "truncated", "header_only", "garbage", "text", "no_notes", "late_note", "directory"]


@pytest.mark.parametrize("kind", KINDS)
def test_bad_midi_is_skipped_and_named_and_others_unchanged(fake_data_dir, tmp_path, cli, kind):
    clean_features = build_features(load_dataset(fake_data_dir).meta, ["midi", "score"], Cache(tmp_path / "clean"),
                                    progress=False).X
    damage(kind, fake_data_dir / MIDI_DIR / f"{VICTIM}.mid", random.Random(kind))
    common = ["--features", "midi,score", "--data-dir", fake_data_dir, "--cache-dir", tmp_path / "c"]
    code, out, err = cli("features", "build", *common)
    assert code == 0, err
    assert "1 skipped" in out
    code, _, err = cli("features", "build", "--on-bad-input", "error", *common)
    assert_one_line_error(code, err, VICTIM, "--on-bad-input skip")
    fm = build_features(load_dataset(fake_data_dir).meta, ["midi", "score"], Cache(tmp_path / "c"), progress=False)
    assert list(fm.skipped) == [VICTIM]
    expected = clean_features.drop(index=VICTIM)
    assert fm.X.to_numpy().tobytes() == expected.to_numpy().tobytes()


def test_late_note_is_refused_by_name_not_by_memory_error(tmp_path):
    path = tmp_path / "late.mid"
    late_note_midi(path)
    with pytest.raises(DataError, match="MAX_DURATION_S=1800 s"):
        midi_io.read_performance(path)
    with pytest.raises(DataError, match="MAX_DURATION_S"):
        render.render(path)


def test_render_command_refuses_a_hostile_file_in_one_line(fake_data_dir, tmp_path, cli):
    late_note_midi(fake_data_dir / MIDI_DIR / f"{VICTIM}.mid")
    code, _, err = cli("render", VICTIM, "-o", tmp_path / "x.wav", "--data-dir", fake_data_dir,
                       "--cache-dir", tmp_path / "c")
    assert_one_line_error(code, err, "MAX_DURATION_S")


def test_note_and_size_limits_are_named(tmp_path, monkeypatch):
    path = tmp_path / "many.mid"
    many_notes_midi(path, 60)
    monkeypatch.setattr(midi_io, "MAX_NOTES", 50)
    with pytest.raises(DataError, match="60 notes, over the limit MAX_NOTES=50"):
        midi_io.read_performance(path)
    with pytest.raises(DataError, match="MAX_NOTES=50"):
        render._read_events(path)
    monkeypatch.setattr(midi_io, "MAX_FILE_BYTES", 100)
    with pytest.raises(DataError, match="over the limit MAX_FILE_BYTES"):
        midi_io.read_performance(path)
    with pytest.raises(DataError, match="MAX_FILE_BYTES"):
        render._read_events(path)


def test_real_scale_files_are_within_the_limits(fake_data_dir):
    """The limits leave headroom: a 10-minute, 20000-note file is accepted."""
    path = fake_data_dir / "long.mid"
    many_notes_midi(path, 20000)
    perf = midi_io.read_performance(path)
    assert perf.n_notes == 20000 and perf.offset.max() < midi_io.MAX_DURATION_S


def test_fuzzed_midi_raises_data_error_or_parses(fake_data_dir, tmp_path):
    """Byte-mutated MIDI: the reader and the renderer's event reader raise DataError or succeed, nothing else."""
    src = sorted((fake_data_dir / MIDI_DIR).glob("*.mid"))[0]
    clean = src.read_bytes()
    rng = random.Random(99)
    counts = {"ok": 0, "bad": 0}
    for i in range(200):
        raw = bytearray(clean)
        for _ in range(rng.randint(1, 6)):
            j = rng.randrange(len(raw))
            raw[j] = rng.randrange(256)
        if rng.random() < 0.2:
            raw = raw[: rng.randrange(len(raw))]
        path = tmp_path / f"fuzz{i}.mid"
        path.write_bytes(bytes(raw))
        for reader in (midi_io.read_performance, render._read_events):
            try:
                reader(path)
                counts["ok"] += 1
            except DataError:
                counts["bad"] += 1
    assert counts["ok"] and counts["bad"], counts


def test_fuzzed_midi_through_the_feature_build(fake_data_dir, tmp_path):
    """A few byte-mutated files in the dataset: skipped by name or computed, the rest bit-identical."""
    midi_dir = fake_data_dir / MIDI_DIR
    meta = load_dataset(fake_data_dir).meta
    clean = build_features(meta, ["midi"], Cache(tmp_path / "clean"), progress=False).X
    rng = random.Random(7)
    victims = sorted(rng.sample(list(meta["sample_id"]), 5))
    for sid in victims:
        p = midi_dir / f"{sid}.mid"
        raw = bytearray(p.read_bytes())
        for _ in range(8):
            raw[rng.randrange(14, len(raw))] = rng.randrange(256)
        p.write_bytes(bytes(raw))
    fm = build_features(meta, ["midi"], Cache(tmp_path / "c"), progress=False)
    assert set(fm.skipped) <= set(victims)
    untouched = [s for s in meta["sample_id"] if s not in victims]
    assert fm.X.loc[untouched].to_numpy().tobytes() == clean.loc[untouched].to_numpy().tobytes()
    assert len(fm.X) + len(fm.skipped) == len(meta)
