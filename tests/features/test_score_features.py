"""Tests for the score-aligned features (features.score, features.score_align).

Synthetic files are written with pretty_midi at 1000 ticks per beat and
60 bpm, so one tick is 1 ms and every time below is exact. The score is a
melody of 32 notes, 0.5 s apart, over a three-note chord on every other beat;
a "performance" is that score transformed in a known way, so each expected
value follows from the transformation (worked out in the comments).
"""

from __future__ import annotations

import logging
import math
import re
import time
from pathlib import Path

import numpy as np
import pretty_midi
import pytest

from benchmark.errors import DataError, UnknownNameError
from features.midi_io import read_performance
from features.score import (
    FAMILIES,
    FEATURES,
    MIN_SCORE_MATCH,
    VERSION,
    extract,
    feature_family,
    score_midi_for,
)
from features.score_align import align

N_BEATS = 32
IOI = 0.5
MATCH_KEYS = ("sc_match_score_frac", "sc_match_perf_frac")


def make_score() -> list[tuple[int, int, float, float]]:
    """(pitch, velocity, start, end): melody 0.4 s long, chords 0.9 s, top velocity 80, others 60."""
    rng = np.random.default_rng(7)
    melody = 72 + np.cumsum(rng.choice([-2, -1, 1, 2, 3], N_BEATS)) % 14
    notes = []
    for k in range(N_BEATS):
        start = k * IOI
        notes.append((int(melody[k]), 80, start, start + 0.4))
        if k % 2 == 0:
            root = 43 + (k // 2) % 7
            notes += [(root + d, 60, start, start + 0.9) for d in (0, 7, 12)]
    return notes


def write_midi(path: Path, notes, sustain=()) -> Path:
    pm = pretty_midi.PrettyMIDI(resolution=1000, initial_tempo=60.0)
    piano = pretty_midi.Instrument(program=0)
    piano.notes = [pretty_midi.Note(velocity=v, pitch=p, start=round(s, 3), end=round(e, 3)) for p, v, s, e in notes]
    piano.control_changes = [pretty_midi.ControlChange(64, value, t) for t, value in sustain]
    pm.instruments.append(piano)
    pm.write(str(path))
    return path


@pytest.fixture()
def score_path(tmp_path):
    return write_midi(tmp_path / "score.mid", make_score())


def run(tmp_path, score_path, notes, sustain=()):
    return extract(write_midi(tmp_path / "perf.mid", notes, sustain), score_path)


def test_table_is_well_formed():
    assert VERSION
    assert 30 <= len(FEATURES) <= 40
    for name, doc in FEATURES.items():
        assert re.fullmatch(r"sc_[a-z]+_[a-z0-9_]+", name), name
        assert feature_family(name) in FAMILIES
        assert doc.endswith(")"), f"{name}: the doc should end with its unit"
    assert {feature_family(n) for n in FEATURES} == set(FAMILIES)


def test_feature_family_rejects_unknown_prefix():
    with pytest.raises(UnknownNameError, match="did you mean 'sc_tempo_ratio'"):
        feature_family("sc_tempx_ratio")


def test_exact_slower_rendering(tmp_path, score_path):
    # Every time scaled by 1.25: tempo ratio 1.25, no deviation of any kind.
    notes = [(p, v, 1.25 * s, 1.25 * e) for p, v, s, e in make_score()]
    f = run(tmp_path, score_path, notes)
    assert list(f) == list(FEATURES)
    assert f["sc_match_score_frac"] == 1.0 and f["sc_match_perf_frac"] == 1.0
    assert f["sc_tempo_ratio"] == pytest.approx(1.25, abs=1e-3)
    for name in ("sc_timing_lin_std", "sc_timing_lin_mae", "sc_timing_local_std", "sc_async_spread_mean"):
        assert f[name] < 1.0, name  # ms; only the 1 ms tick rounding remains
    for name in ("sc_tempo_slope", "sc_tempo_local_std", "sc_tempo_local_range", "sc_tempo_ioi_std"):
        assert abs(f[name]) < 5e-3, name  # octaves
    assert f["sc_art_ratio_median"] == pytest.approx(1.0, abs=1e-2)
    assert f["sc_art_log_std"] < 1e-2
    # Melody 80 over chord notes 60 in every chord.
    assert f["sc_vel_melody_gap"] == pytest.approx(20.0)


def test_onset_jitter_is_measured(tmp_path, score_path):
    # Known jitter e at tempo ratio 1: the residual of the least-squares line
    # of (s + e) on s is the residual of e on s, computed here with polyfit.
    rng = np.random.default_rng(3)
    score = make_score()
    jitter = np.round(rng.normal(0.0, 0.02, len(score)), 3)
    notes = [(p, v, 0.1 + s + j, 0.1 + e + j) for (p, v, s, e), j in zip(score, jitter, strict=True)]  # no onset < 0
    f = run(tmp_path, score_path, notes)
    assert f["sc_match_score_frac"] == 1.0
    s = np.array([n[2] for n in score])
    residual = jitter - np.polyval(np.polyfit(s, jitter, 1), s)
    assert f["sc_timing_lin_std"] == pytest.approx(1e3 * residual.std(), rel=1e-3)
    assert f["sc_timing_lin_mae"] == pytest.approx(1e3 * np.abs(residual).mean(), rel=1e-3)
    assert f["sc_timing_lin_std"] == pytest.approx(20.0, rel=0.2)  # the jitter's own std
    # The local map follows part of the jitter, so it sees less of it.
    assert 0 < f["sc_timing_local_std"] < f["sc_timing_lin_std"]
    assert f["sc_tempo_ratio"] == pytest.approx(1.0, abs=0.05)


def test_chord_spread_and_melody_lead(tmp_path, score_path):
    # In each chord the notes enter from the bottom, 10 ms apart, so with the
    # melody on top: spread 30 ms (4 notes); lead = mean(0, 10, 20) - 30 = -20 ms.
    notes = []
    for k in range(N_BEATS):
        chord = sorted((n for n in make_score() if n[2] == k * IOI), key=lambda n: n[0])
        for rank, (p, v, s, e) in enumerate(chord):
            delay = 0.010 * rank if len(chord) > 1 else 0.0
            notes.append((p, v, s + delay, e + delay))
    f = run(tmp_path, score_path, notes)
    assert f["sc_match_score_frac"] == 1.0
    assert f["sc_async_spread_mean"] == pytest.approx(30.0, abs=1e-6)
    assert f["sc_async_spread_max"] == pytest.approx(30.0, abs=1e-6)
    assert f["sc_async_melody_lead"] == pytest.approx(-20.0, abs=1e-6)


@pytest.mark.parametrize("tempo", [1.0, 1.25])
@pytest.mark.parametrize(("factor", "legato", "staccato"), [(2.0, 1.0, 0.0), (0.4, 0.0, 1.0)])
def test_articulation_against_notated_length(tmp_path, score_path, tempo, factor, legato, staccato):
    # Held `factor` times the notated length at either tempo: the ratio is
    # taken against the tempo-scaled notated length, so it is `factor`.
    notes = [(p, v, tempo * s, tempo * (s + factor * (e - s))) for p, v, s, e in make_score()]
    f = run(tmp_path, score_path, notes)
    assert f["sc_art_ratio_median"] == pytest.approx(factor, rel=5e-3)
    assert f["sc_art_legato_frac"] == legato
    assert f["sc_art_staccato_frac"] == staccato
    # No pedal: the notes sound exactly as long as they are held.
    assert f["sc_pedal_sound_ratio"] == f["sc_art_ratio_median"]


def test_pedal_extends_sounding_length(tmp_path, score_path):
    # Pedal down over the whole segment: every note sounds to the lift at
    # 17 s, far beyond twice its notated length except near the end.
    notes = make_score()
    f = run(tmp_path, score_path, notes, sustain=[(0.0, 127), (17.0, 0)])
    assert f["sc_art_ratio_median"] == pytest.approx(1.0, abs=1e-2)
    assert f["sc_pedal_sound_ratio"] > 2.0
    assert f["sc_pedal_overhang_frac"] > 0.9


def test_rubato_shows_in_the_tempo_curve(tmp_path, score_path):
    # First half at the score's tempo, second half 1.5x slower: the global
    # ratio (first to last anchor) is 1.25, the curve steps from
    # log2(1 / 1.25) to log2(1.5 / 1.25), a range of log2(1.5).
    half = N_BEATS // 2 * IOI

    def warp(x):
        return x if x <= half else half + 1.5 * (x - half)

    notes = [(p, v, warp(s), warp(s) + (e - s)) for p, v, s, e in make_score()]
    f = run(tmp_path, score_path, notes)
    expected_ratio = (warp((N_BEATS - 1) * IOI)) / ((N_BEATS - 1) * IOI)
    assert f["sc_tempo_ratio"] == pytest.approx(expected_ratio, abs=1e-3)
    assert f["sc_tempo_local_range"] == pytest.approx(math.log2(1.5), abs=1e-2)
    assert f["sc_tempo_slope"] > 0.3  # slowing down
    assert f["sc_tempo_ioi_acf1"] > 0.5  # one smooth step, not jitter
    assert f["sc_timing_local_std"] < f["sc_timing_lin_std"]


def test_missing_and_extra_notes_set_the_match_rates(tmp_path, score_path):
    # Drop every 8th score note, add 12 notes of pitches the score never uses.
    score = make_score()
    kept = [n for k, n in enumerate(score) if k % 8 != 0]
    extra = [(100 + k % 5, 50, 0.3 + k * 1.3, 0.5 + k * 1.3) for k in range(12)]
    f = run(tmp_path, score_path, kept + extra)
    assert f["sc_match_score_frac"] == pytest.approx(len(kept) / len(score))
    assert f["sc_match_perf_frac"] == pytest.approx(len(kept) / (len(kept) + len(extra)))
    assert f["sc_tempo_ratio"] == pytest.approx(1.0, abs=1e-3)
    assert f["sc_timing_lin_std"] < 1.0


def test_matching_is_correct_under_perturbation(tmp_path, score_path):
    # Jitter, a 1.6x tempo, dropped and added notes: the pairs must be the
    # true ones (perf note k comes from score note truth[k]).
    rng = np.random.default_rng(11)
    score = make_score()
    keep = rng.random(len(score)) > 0.1
    notes, truth = [], []
    for k, (p, v, s, e) in enumerate(score):
        if keep[k]:
            j = rng.normal(0, 0.015)
            notes.append((p, v, 0.1 + 1.6 * s + j, 0.1 + 1.6 * e + j))
            truth.append(k)
    for t in rng.uniform(0, 25, 8):
        notes.append((int(rng.integers(40, 90)), 40, t, t + 0.1))
        truth.append(-1)
    perf = read_performance(write_midi(tmp_path / "perf.mid", notes))
    score_read = read_performance(score_path)
    al = align(perf, score_read)
    # read_performance sorts notes by (onset, pitch); index both sides that way.
    score_pos = {
        (round(float(o), 3), int(p)): i for i, (o, p) in enumerate(zip(score_read.onset, score_read.pitch, strict=True))
    }
    origin = {(round(n[2], 3), n[0]): truth[i] for i, n in enumerate(notes)}
    true_score = []
    for o, p in zip(perf.onset, perf.pitch, strict=True):
        k = origin[(round(float(o), 3), int(p))]
        true_score.append(score_pos[(round(score[k][2], 3), score[k][0])] if k >= 0 else -1)
    assert np.mean(np.array(true_score)[al.perf_idx] == al.score_idx) >= 0.98
    assert al.score_match_frac >= 0.95 * keep.mean()


def test_unrelated_performance_is_flagged_not_aligned(tmp_path, score_path, caplog):
    rng = np.random.default_rng(5)
    onsets = np.sort(rng.uniform(0, 16, 80))
    notes = [(int(p), 70, t, t + 0.3) for p, t in zip(rng.integers(30, 96, 80), onsets, strict=True)]
    with caplog.at_level(logging.WARNING, logger="features.score"):
        f = run(tmp_path, score_path, notes)
    assert f["sc_match_score_frac"] < MIN_SCORE_MATCH
    assert np.isfinite(f["sc_match_perf_frac"])
    assert all(math.isnan(f[k]) for k in FEATURES if k not in MATCH_KEYS)
    assert "matches only" in caplog.text


def test_missing_score_gives_nan_and_warns(tmp_path, caplog):
    perf = write_midi(tmp_path / "perf.mid", make_score())
    with caplog.at_level(logging.WARNING, logger="features.score"):
        f = extract(perf, None)
    assert list(f) == list(FEATURES) and all(math.isnan(v) for v in f.values())
    assert "no score MIDI" in caplog.text


def test_unreadable_score_gives_nan_and_warns(tmp_path, caplog):
    perf = write_midi(tmp_path / "perf.mid", make_score())
    bad = tmp_path / "score.mid"
    bad.write_bytes(b"not a midi file")
    with caplog.at_level(logging.WARNING, logger="features.score"):
        f = extract(perf, bad)
    assert all(math.isnan(v) for v in f.values())
    assert "cannot read the score" in caplog.text


@pytest.mark.parametrize("with_score", [True, False])
def test_bad_performance_raises(tmp_path, score_path, with_score):
    bad = tmp_path / "perf.mid"
    bad.write_bytes(b"MThd garbage")
    with pytest.raises(DataError, match="perf.mid"):
        extract(bad, score_path if with_score else None)
    with pytest.raises(DataError, match="not found"):
        extract(tmp_path / "absent.mid", score_path if with_score else None)


def test_score_midi_for_naming_rules(tmp_path):
    for name in (
        "Schubert_D960_mv2_8bars_Score_01",  # two-digit segment numbers
        "Beethoven_WoO80_var3_8bars_Score_2",
        "Beethoven_WoO80_var3_8bars_Score2_2",
        "Beethoven_WoO80_var4_8bars_Score2_3",  # only Score2
        "beethoven_woo80",  # a whole-piece rendering: ignored
    ):
        (tmp_path / f"{name}.mid").write_bytes(b"")
    row = {"piece": "Schubert_D960_mv2", "bars": 8, "segment": 1}
    assert score_midi_for(row, tmp_path).name == "Schubert_D960_mv2_8bars_Score_01.mid"
    row = {"piece": "Beethoven_WoO80_var3", "bars": 8, "segment": 2}
    assert score_midi_for(row, tmp_path).name == "Beethoven_WoO80_var3_8bars_Score_2.mid"
    row = {"piece": "Beethoven_WoO80_var4", "bars": 8, "segment": 3}
    assert score_midi_for(row, tmp_path).name == "Beethoven_WoO80_var4_8bars_Score2_3.mid"
    assert score_midi_for({"piece": "Schubert_D960_mv2", "bars": 16, "segment": 1}, tmp_path) is None
    assert score_midi_for(row, tmp_path / "absent") is None
    # Without a folder: score_midi beside the performance's folder (upstream layout).
    perf_dir = tmp_path / "all_2rounds"
    row = {"piece": "Beethoven_WoO80_var3", "bars": 8, "segment": 2, "midi_path": str(perf_dir / "x.mid")}
    (tmp_path / "score_midi").mkdir()
    (tmp_path / "score_midi" / "Beethoven_WoO80_var3_8bars_Score2_2.mid").write_bytes(b"")
    assert score_midi_for(row).name == "Beethoven_WoO80_var3_8bars_Score2_2.mid"
    with pytest.raises(DataError, match="needs piece, bars, segment"):
        score_midi_for({"piece": "Beethoven_WoO80_var3", "bars": 8, "segment": 2})


def test_score_midi_for_real_rows(real_dataset):
    meta = real_dataset.meta
    score_dir = real_dataset.root / "virtuoso" / "data" / "score_midi"
    found = [score_midi_for(row, score_dir) for _, row in meta.iterrows()]
    assert found == [score_midi_for(row) for _, row in meta.iterrows()]  # the default folder
    assert all(p is not None for p in found), "every labelled segment has a score rendering"
    for (_, row), path in zip(meta.iterrows(), found, strict=True):
        piece, bars, segment = re.fullmatch(r"(.+)_(\d+)bars_Score2?_(\d+)", path.stem).groups()
        assert (piece, int(bars), int(segment)) == (row["piece"], row["bars"], row["segment"])
    # The rows the loader's exact-name lookup misses: D960, zero-padded.
    d960 = meta[meta["sample_id"] == "Schubert_D960_mv3_8bars_1_01"].iloc[0]
    assert score_midi_for(d960, score_dir).name == "Schubert_D960_mv3_8bars_Score_01.mid"


def test_real_segments(real_dataset, caplog):
    meta = real_dataset.meta.set_index("sample_id")
    score_dir = real_dataset.root / "virtuoso" / "data" / "score_midi"
    start = time.perf_counter()
    for sid in ("Schubert_D960_mv2_8bars_1_01", "Beethoven_WoO80_var9_8bars_1_7", "Schubert_D935_no.3_4bars_2_1"):
        row = meta.loc[sid]
        f = extract(row["midi_path"], score_midi_for(row, score_dir))
        assert f["sc_match_score_frac"] > 0.9, sid
        assert all(np.isfinite(v) for k, v in f.items() if k != "sc_tempo_ioi_acf1"), sid
    assert time.perf_counter() - start < 5.0
    # The rendering itself: identical file, nothing to deviate.
    row = meta.loc["Schubert_D960_mv2_8bars_Score_01"]
    f = extract(row["midi_path"], score_midi_for(row, score_dir))
    assert f["sc_match_score_frac"] == 1.0 and f["sc_timing_lin_std"] < 1e-6
    # Upstream holds another variation under this name: flagged, not a crash.
    row = meta.loc["Beethoven_WoO80_var25_8bars_19_14"]
    with caplog.at_level(logging.WARNING, logger="features.score"):
        f = extract(row["midi_path"], score_midi_for(row, score_dir))
    assert f["sc_match_score_frac"] < MIN_SCORE_MATCH and math.isnan(f["sc_tempo_ratio"])
