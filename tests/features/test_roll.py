"""The piano-roll stage: values by hand, cached bit for bit, real segments."""

import numpy as np
import pretty_midi
import pytest

from features import roll as roll_mod
from features.cache import Cache
from features.stages import AudioParams, MelParams, RollParams, pianoroll_for


def _midi(path):
    pm = pretty_midi.PrettyMIDI()
    inst = pretty_midi.Instrument(program=0)
    inst.notes.append(pretty_midi.Note(velocity=80, pitch=60, start=0.5, end=1.0))
    inst.notes.append(pretty_midi.Note(velocity=30, pitch=108, start=0.7, end=0.9))
    inst.notes.append(pretty_midi.Note(velocity=99, pitch=10, start=0.7, end=0.9))  # below the piano: dropped
    inst.control_changes.append(pretty_midi.ControlChange(64, 100, 0.2))
    inst.control_changes.append(pretty_midi.ControlChange(64, 0, 0.8))
    inst.control_changes.append(pretty_midi.ControlChange(67, 50, 0.0))
    pm.instruments.append(inst)
    pm.write(str(path))
    return path


def test_roll_channels_by_hand(tmp_path):
    entry = roll_mod.pianoroll(_midi(tmp_path / "a.mid"), 100.0, tail_s=1.0)
    notes, pedal = entry["notes"], entry["pedal"]
    assert notes.dtype == np.uint8 and pedal.dtype == np.uint8
    assert notes.shape == (2, 88, 201) and pedal.shape == (2, 201)  # 1 + floor((1.0 + 1.0) * 100)
    c4, c8 = 60 - 21, 108 - 21
    assert notes[0, c4, 50] == 80 and notes[0, c4].sum() == 80
    assert notes[1, c4, 50:101].all() and not notes[1, c4, :50].any() and not notes[1, c4, 101:].any()
    assert notes[0, c8, 70] == 30 and int(notes[0].astype(int).sum()) == 110  # the pitch-10 note is gone
    assert pedal[0, 15] == 0 and pedal[0, 25] == 100 and pedal[0, 85] == 0
    assert (pedal[1] == 50).all()
    full = roll_mod.assemble(entry)
    assert full.shape == (4, 88, 201) and full.dtype == np.uint8
    assert (full[2, :, 25] == 100).all() and (full[3] == 50).all()


def test_roll_cache_hit_equals_miss_bit_for_bit(tmp_path, monkeypatch):
    row = {"midi_path": str(_midi(tmp_path / "a.mid")), "sample_id": "a"}
    cache = Cache(tmp_path / "c")
    params = RollParams.like(AudioParams(), MelParams())
    assert params.frame_rate == pytest.approx(22050 / 220)
    miss = pianoroll_for(row, cache, params)

    def boom(*a, **k):
        raise AssertionError("a hit must not recompute")

    monkeypatch.setattr(roll_mod, "pianoroll", boom)
    hit = pianoroll_for(row, cache, params)
    assert set(hit) == set(miss)
    for k in miss:
        assert hit[k].dtype == miss[k].dtype and hit[k].shape == miss[k].shape
        assert hit[k].tobytes() == miss[k].tobytes()


def test_roll_of_real_segments(real_dataset, tmp_path):
    from features.midi_io import read_performance

    cache = Cache(tmp_path / "c")
    params = RollParams.like(AudioParams(), MelParams())
    for row in real_dataset.meta.iloc[[0, 500]].to_dict("records"):
        entry = pianoroll_for(row, cache, params)
        perf = read_performance(row["midi_path"])
        expected = 1 + int(np.floor((perf.offset.max() + 1.0) * params.frame_rate))
        assert entry["notes"].shape == (2, 88, expected)
        # every note's onset is marked, and nothing else (notes sharing a key and frame count once)
        on = {(p - 21, int(t * params.frame_rate)) for p, t in zip(perf.pitch, perf.onset, strict=True)}
        assert int((entry["notes"][0] > 0).sum()) == len(on)
        assert entry["pedal"][0].max() > 0  # PercePiano performances use the sustain pedal
