"""Synthetic performances: seeded, valid MIDI, same notes, perturbed as asked."""

from __future__ import annotations

import numpy as np
import pytest

from benchmark.errors import ConfigError
from benchmark.hashing import file_sha256
from features.midi_io import read_performance
from features.perturb import PerturbParams, synthetic_performance
from tests.conftest import write_midi


@pytest.fixture()
def score(tmp_path):
    path = tmp_path / "score.mid"
    write_midi(path, velocity=64, ioi=0.3, n_notes=24, pedal=True)
    return path


def _make(score, out, index=0, seed=0, params=None):
    return synthetic_performance(score, out, index=index, seed=seed, source_digest=file_sha256(score),
                                 params=params or PerturbParams())


def test_same_seed_same_bytes_other_index_other_bytes(score, tmp_path):
    a = _make(score, tmp_path / "a.mid")
    b = _make(score, tmp_path / "b.mid")
    c = _make(score, tmp_path / "c.mid", index=1)
    d = _make(score, tmp_path / "d.mid", seed=1)
    assert a.read_bytes() == b.read_bytes()
    assert a.read_bytes() != c.read_bytes()
    assert a.read_bytes() != d.read_bytes()


@pytest.mark.parametrize("index", range(6))
def test_output_is_valid_midi_with_the_same_notes(score, tmp_path, index):
    src = read_performance(score)
    perf = read_performance(_make(score, tmp_path / "p.mid", index=index))
    assert perf.n_notes == src.n_notes
    assert sorted(perf.pitch.tolist()) == sorted(src.pitch.tolist())
    assert perf.onset.min() >= 0
    assert np.all(perf.offset > perf.onset)
    # Durations: at least 30 ms (less only when the same key is struck again sooner).
    assert np.median(perf.offset - perf.onset) >= 0.03
    assert perf.velocity.min() >= 1 and perf.velocity.max() <= 127
    assert np.all(np.diff(perf.sustain_times) >= 0)


def test_performances_differ_from_the_score_in_tempo_and_velocity(score, tmp_path):
    src = read_performance(score)
    durations, velocities = [], []
    for k in range(8):
        perf = read_performance(_make(score, tmp_path / f"p{k}.mid", index=k))
        durations.append(perf.offset.max())
        velocities.append(perf.velocity.mean())
        assert not np.allclose(perf.onset, src.onset, atol=1e-3)
    assert np.std(durations) > 0.05 * src.offset.max()
    assert np.std(velocities) > 1.0


def test_zero_perturbation_keeps_the_score(score, tmp_path):
    none = PerturbParams(tempo_range=1.0, tempo_sd=0.0, timing_sd=0.0, articulation=(1.0, 1.0), level_range=0.0,
                         dynamics_sd=0.0, velocity_sd=0.0)
    src = read_performance(score)
    perf = read_performance(_make(score, tmp_path / "p.mid", params=none))
    np.testing.assert_allclose(perf.onset, src.onset, atol=2e-3)
    np.testing.assert_allclose(perf.offset, src.offset, atol=2e-3)
    np.testing.assert_array_equal(perf.velocity, src.velocity)


def test_bad_params_raise():
    with pytest.raises(ConfigError, match="tempo_range"):
        PerturbParams(tempo_range=0.5)
    with pytest.raises(ConfigError, match="articulation"):
        PerturbParams(articulation=(1.2, 1.0))
