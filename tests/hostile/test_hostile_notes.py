"""The note stage on hostile input: a corrupt score only costs the score columns (stand-in grid, a warning);
a performance without notes is a DataError the builder records as a skipped segment; a score whose time
signature is nonsense (denominator 0 cannot be written; numerator 0 can) falls back to 4/4."""

from __future__ import annotations

import logging

import mido
import numpy as np
import pytest

from benchmark.errors import DataError
from features.notes import extract, make_grid, notes_for


def _midi(path, notes, signature=None):
    mid = mido.MidiFile(ticks_per_beat=480)
    tr = mido.MidiTrack()
    if signature:
        tr.append(mido.MetaMessage("time_signature", numerator=signature[0], denominator=signature[1], time=0))
    for k, pitch in enumerate(notes):
        tr.append(mido.Message("note_on", note=pitch, velocity=60, time=0 if k == 0 else 240))
        tr.append(mido.Message("note_off", note=pitch, velocity=0, time=200))
    mid.tracks.append(tr)
    mid.save(path)
    return path


def test_corrupt_score_gives_the_stand_in_grid_with_a_warning(tmp_path, caplog):
    perf = _midi(tmp_path / "perf.mid", [60, 62, 64, 65, 67])
    score = tmp_path / "score.mid"
    score.write_bytes(b"MThd\x00\x00\x00\x06garbage")
    with caplog.at_level(logging.WARNING, logger="features.notes"):
        table = extract(perf, score)
    assert not table.aligned and "cannot read the score" in caplog.text
    assert table.values.shape == (5, 18) and np.isfinite(table.values).all()


def test_a_performance_without_notes_is_a_data_error(tmp_path):
    empty = tmp_path / "empty.mid"
    mid = mido.MidiFile()
    mid.tracks.append(mido.MidiTrack())
    mid.save(empty)
    from features.cache import Cache

    with pytest.raises(DataError, match="no notes"):
        notes_for({"midi_path": str(empty), "score_midi_path": None}, Cache(tmp_path / "cache"))


def test_a_zero_numerator_signature_is_ignored():
    grid = make_grid(480, [], [(0, 0, 4)])
    beats, in_bar, bar = grid.position(np.array([0.0, 2.0]))  # 120 bpm: 2 s = 4 quarters = one 4/4 bar
    np.testing.assert_allclose(beats, [0, 4])
    np.testing.assert_array_equal(bar, [0, 1])
