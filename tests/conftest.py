"""Shared fixtures: the real PercePiano data, skipped when absent except on CI."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import numpy as np
import pretty_midi
import pytest

ROOT = Path(__file__).resolve().parents[1]
#: The shared copy next to the repository; $PERCEPIANO_DIR takes precedence.
REAL_DATA_DIR = ROOT.parent / "shared" / "percepiano"

# pytest's default import mode puts tests/ on sys.path, and the editable install's
# finder runs after the path finder, so tests/splits (etc.) would shadow the real
# packages as empty namespace packages. The repo root on sys.path prevents that.
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def _on_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in {"true", "1", "yes"}


@pytest.fixture(scope="session")
def real_dataset():
    """The labelled PercePiano segments from ``load_dataset``.

    Skips when the data folder is absent, but fails under ``CI=true``, where a
    missing dataset must never pass silently.
    """
    data_dir = Path(os.environ.get("PERCEPIANO_DIR") or REAL_DATA_DIR)
    if not data_dir.is_dir():
        message = f"PercePiano data not found at {str(data_dir)!r} (set $PERCEPIANO_DIR)"
        if _on_ci():
            pytest.fail(f"{message}; CI=true, so the real-data tests may not be skipped")
        pytest.skip(message)
    from benchmark.dataset import load_dataset

    return load_dataset(data_dir)


@pytest.fixture()
def fake_data_dir(tmp_path):
    """A fresh synthetic PercePiano folder (24 labelled segments, 4 players, 2 pieces)."""
    return make_fake_percepiano(tmp_path / "percepiano")


# --- a tiny synthetic dataset in PercePiano's on-disk layout ----------------
# Ratings depend on the MIDI (loudness and tempo), so a model that reads the
# features can beat the mean baseline.
PIECES = (("Schubert_D960_mv2", 4), ("Beethoven_WoO80_var3", 8))
PLAYERS = ("1", "2", "3", "Score")


def write_midi(
    path: Path, *, velocity: int, ioi: float, n_notes: int = 12, pitch0: int = 60, pedal: bool = False
) -> None:
    pm = pretty_midi.PrettyMIDI()
    inst = pretty_midi.Instrument(program=0)
    for i in range(n_notes):
        start = i * ioi
        inst.notes.append(
            pretty_midi.Note(velocity=int(velocity), pitch=pitch0 + (i % 7), start=start, end=start + 0.8 * ioi)
        )
        if i % 3 == 0:
            inst.notes.append(
                pretty_midi.Note(velocity=int(velocity * 0.8), pitch=pitch0 - 12, start=start, end=start + 2.5 * ioi)
            )
    if pedal:
        inst.control_changes.append(pretty_midi.ControlChange(64, 100, 0.0))
        inst.control_changes.append(pretty_midi.ControlChange(64, 0, n_notes * ioi * 0.5))
    pm.instruments.append(inst)
    pm.write(str(path))


def make_fake_percepiano(root: Path, *, n_segments: int = 3, seed: int = 0, players=PLAYERS,
                         pitch_step: int = 0) -> Path:
    """Write labels and MIDI for len(PIECES) x len(players) x n_segments segments.

    ``pitch_step``: the i-th player plays ``pitch_step * i`` semitones higher, so no two players' segments are
    near-duplicates (every performance its own group); 0, the default, gives all players one pitch pattern.
    """
    rng = np.random.default_rng(seed)
    midi_dir = root / "virtuoso" / "data" / "all_2rounds"
    score_dir = root / "virtuoso" / "data" / "score_midi"
    labels = root / "labels"
    for d in (midi_dir, score_dir, labels):
        d.mkdir(parents=True, exist_ok=True)
    mean, std = {}, {}
    for piece, bars in PIECES:
        for p_idx, player in enumerate(players):
            for seg in range(1, n_segments + 1):
                name = f"{piece}_{bars}bars_{player}_{seg}"
                velocity = int(rng.integers(30, 120))
                ioi = float(rng.uniform(0.15, 0.6))
                write_midi(midi_dir / f"{name}.mid", velocity=velocity, ioi=ioi, pedal=bool(seg % 2),
                           pitch0=60 + pitch_step * p_idx)
                loud = (velocity - 30) / 90
                slow = (ioi - 0.15) / 0.45
                y = np.clip(
                    0.5 + 0.3 * (loud - 0.5) * np.linspace(1, -1, 19) + 0.2 * (slow - 0.5) + rng.normal(0, 0.03, 19),
                    0,
                    1,
                )
                mean[name] = [float(v) for v in y] + [p_idx]
                std[name] = [float(v) for v in rng.uniform(0.05, 0.2, 19)]
            write_midi(score_dir / f"{piece}_{bars}bars_Score_{seg}.mid", velocity=64, ioi=0.3)
    (labels / "label_2round_mean_reg_19_with0_rm_highstd0.json").write_text(json.dumps(mean))
    (labels / "label_2round_std_reg_19_with0_rm_highstd0.json").write_text(json.dumps(std))
    # One unlabelled file, as upstream has 13.
    write_midi(midi_dir / f"{PIECES[0][0]}_4bars_9_1.mid", velocity=50, ioi=0.3)
    return root


def write_fake_raters(root: Path, *, n_raters: int = 5, seed: int = 0) -> Path:
    """Add a per-rater answer sheet file (``labels/total_2rounds.csv``) to a fake PercePiano folder.

    Every labelled segment gets ``n_raters`` sheets of 1..7 answers around its mean label (the mean labels
    are not rewritten: only the raters' spread is read from these sheets); one answer is left blank.
    """
    import pandas as pd

    rng = np.random.default_rng(seed)
    labels = json.loads((root / "labels" / "label_2round_mean_reg_19_with0_rm_highstd0.json").read_text())
    questions = [f"Question_{j}_1_1" for j in range(19)]
    rows = []
    for name in sorted(labels):
        for user in range(n_raters):
            answers = np.clip(np.round(7 * np.asarray(labels[name][:19]) + rng.normal(0, 1.2, 19)), 1, 7)
            rows.append([f"u{user}", len(rows), f"{name}.wav", *answers])
    rows[0][3] = np.nan  # an unanswered question
    pd.DataFrame(rows, columns=["user", "dataID", "filename", *questions]).to_csv(
        root / "labels" / "total_2rounds.csv", index=False)
    return root


def unrated_score_midis(root: Path) -> Path:
    """Rewrite a fake dataset's score MIDIs and unlabelled segment at tempos no fake player plays.

    The fake players all play one pitch pattern at an IOI of 0.15-0.6 s, so a player whose IOI falls
    within 5 ms of the score MIDIs' 0.3 s holds the same notes at the same times: a near-copy by the onset
    bigrams (:func:`features.bigrams.near_copies`), which the SSAST corpus leaves out. Tests that need a
    corpus of unrated items call this (IOIs 0.11-0.13 s).
    """
    data = root / "virtuoso" / "data"
    for k, path in enumerate(sorted((data / "score_midi").glob("*.mid"))):
        write_midi(path, velocity=64, ioi=0.11 + 0.007 * k)
    write_midi(data / "all_2rounds" / f"{PIECES[0][0]}_4bars_9_1.mid", velocity=50, ioi=0.13)
    return root
