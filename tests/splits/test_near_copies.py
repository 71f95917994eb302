"""Onset bigrams and near_copies: renderings that differ only in velocity, files holding others, the threshold."""

from __future__ import annotations

import numpy as np
import pretty_midi
import pytest

from benchmark.errors import ConfigError
from features import bigrams as overlap
from features.cache import Cache
from splits.overlap import near_copies, note_bigrams, onset_bigrams, shared_fraction


def write_notes(path, notes) -> str:
    """A MIDI file with ``notes`` = [(pitch, velocity, start), ...], each 0.2 s long."""
    pm = pretty_midi.PrettyMIDI()
    inst = pretty_midi.Instrument(program=0)
    for pitch, velocity, start in notes:
        inst.notes.append(pretty_midi.Note(velocity=velocity, pitch=pitch, start=start, end=start + 0.2))
    pm.instruments.append(inst)
    pm.write(str(path))
    return str(path)


MELODY = [(60 + (i * 3) % 11, 40 + 5 * i, 0.25 * i) for i in range(11)]  # 11 notes, 10 bigrams, all distinct


def test_onset_bigrams_ignore_velocity_and_see_tempo(tmp_path):
    base = write_notes(tmp_path / "a.mid", MELODY)
    flat = write_notes(tmp_path / "flat.mid", [(p, 80, t) for p, _, t in MELODY])  # a deadpan twin: velocity 80
    slower = write_notes(tmp_path / "slow.mid", [(p, v, t * 1.25) for p, v, t in MELODY])
    assert onset_bigrams(base).size == 10
    # The note bigrams see other key strokes in the twin; the onset bigrams see the same rendering.
    assert shared_fraction([note_bigrams(base)], [note_bigrams(flat)])[0, 0] == 0.0
    assert shared_fraction([onset_bigrams(base)], [onset_bigrams(flat)])[0, 0] == 1.0
    # The same notes 25 % slower: every gap moves from 25 to 31 steps of 10 ms, nothing is shared.
    assert shared_fraction([onset_bigrams(base)], [onset_bigrams(slower)])[0, 0] == 0.0
    assert shared_fraction([note_bigrams(base)], [note_bigrams(slower)])[0, 0] == 1.0


def test_a_chord_is_one_onset(tmp_path):
    chords = [(p + 12 * k, 64, 0.5 * k) for k in range(3) for p in (48, 52, 55)]  # three 3-note chords
    path = write_notes(tmp_path / "c.mid", chords)
    assert onset_bigrams(path).size == 2  # chord 1 -> 2, chord 2 -> 3 (a note-level count would be 8)
    # The same chords twice as fast share no onset bigram, although every within-chord pair is the same.
    fast = write_notes(tmp_path / "f.mid", [(p, v, t / 2) for p, v, t in chords])
    assert shared_fraction([onset_bigrams(path)], [onset_bigrams(fast)])[0, 0] == 0.0
    # Reordering notes inside a chord changes nothing (the chord is a multiset of pitches).
    shuffled = write_notes(tmp_path / "s.mid", [chords[i] for i in (2, 0, 1, 5, 3, 4, 8, 7, 6)])
    assert np.array_equal(onset_bigrams(path), onset_bigrams(shuffled))


def test_near_copies_in_both_directions(tmp_path):
    whole = write_notes(tmp_path / "whole.mid", MELODY)
    cut = write_notes(tmp_path / "cut.mid", [(p, v, t - 1.25) for p, v, t in MELODY[5:]])  # last 6 notes
    other = write_notes(tmp_path / "other.mid", [(90, 50, 0.3 * i) for i in range(6)])
    got = near_copies([whole, other], [cut])
    assert list(zip(got["a"], got["b"], got["measure"], strict=True)) == [(0, 0, "notes"), (0, 0, "onsets")]
    assert (got["shared"] == 1.0).all() and list(got["n_a"]) == [10, 10] and list(got["n_b"]) == [5, 5]
    back = near_copies([cut], [other, whole], measures=("onsets",))
    assert list(zip(back["a"], back["b"], back["n_a"], back["n_b"], strict=True)) == [(0, 1, 5, 10)]


@pytest.mark.parametrize(("n_same", "listed"), [(9, True), (8, False)])
def test_near_copies_threshold_is_inclusive(tmp_path, n_same, listed):
    """10 bigrams each; the first ``n_same`` notes equal, then new pitches: 8/10 = 0.8 is a near-copy, 7/10 not."""
    ref = write_notes(tmp_path / "ref.mid", MELODY)
    tail = [(100 + i, 60, 0.25 * (n_same + i)) for i in range(11 - n_same)]
    cand = write_notes(tmp_path / "cand.mid", MELODY[:n_same] + tail)
    got = near_copies([cand], [ref])
    expected = (n_same - 1) / 10
    assert shared_fraction([note_bigrams(cand)], [note_bigrams(ref)])[0, 0] == pytest.approx(expected)
    assert len(got) == (2 if listed else 0)


def test_one_parse_fills_both_measures_and_the_cache_hit_equals_it(tmp_path, monkeypatch):
    path = write_notes(tmp_path / "m.mid", MELODY)
    calls = []
    real = overlap._read_notes
    monkeypatch.setattr(overlap, "_read_notes", lambda p: calls.append(p) or real(p))
    monkeypatch.setattr(overlap, "_CODES", {})
    cache = Cache(tmp_path / "cache")
    with overlap.note_cache(cache):
        notes, onsets = note_bigrams(path), onset_bigrams(path)
    assert len(calls) == 1
    assert len(list(cache.entries(overlap.BIGRAM_STAGE))) == 2  # each measure asked for is cached
    monkeypatch.setattr(overlap, "_CODES", {})  # a new process: only the cache remembers
    with overlap.note_cache(cache):
        assert np.array_equal(onset_bigrams(path), onsets) and np.array_equal(note_bigrams(path), notes)
    assert len(calls) == 1
    assert np.array_equal(overlap._onset_codes(real(path)), onsets)


def test_a_measure_memoised_by_the_other_parse_reaches_the_cache_when_asked(tmp_path, monkeypatch):
    path = write_notes(tmp_path / "m.mid", MELODY)
    monkeypatch.setattr(overlap, "_CODES", {})
    cache = Cache(tmp_path / "cache")
    with overlap.note_cache(cache):
        note_bigrams(path)
    assert len(list(cache.entries(overlap.BIGRAM_STAGE))) == 1  # the leakage check caches only what it reads
    with overlap.note_cache(cache):
        onsets = onset_bigrams(path)  # from the memo, and now into the cache
    assert len(list(cache.entries(overlap.BIGRAM_STAGE))) == 2
    monkeypatch.setattr(overlap, "_CODES", {})
    monkeypatch.setattr(overlap, "_read_notes", None)  # a parse would fail
    with overlap.note_cache(cache):
        assert np.array_equal(onset_bigrams(path), onsets)


def test_near_copies_rejects_bad_arguments(tmp_path):
    path = write_notes(tmp_path / "m.mid", MELODY)
    with pytest.raises(ConfigError, match="unknown near-copy measure"):
        near_copies([path], [path], measures=("pitch",))
    with pytest.raises(ConfigError, match="threshold"):
        near_copies([path], [path], threshold=0.0)
