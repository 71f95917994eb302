"""Synthetic segment inputs for the neural families: a tiny cache of fake spectrograms, piano rolls and notes."""

from __future__ import annotations

import hashlib

import numpy as np

from features.cache import Cache
from features.inputs import ArrayRef, SegmentInputs
from features.notes import COLUMN_INDEX, COLUMNS, load_notes
from features.sets import load_mel, load_roll

#: Settings that make a neural model fit in a second or two on tiny inputs (tests only).
QUICK = {"epochs": 2, "patience": 2, "crop": 16, "time_pool": 2, "batch_size": 32}
#: The same for the note families (windows of 24 notes, 16-wide vectors).
QUICK_NOTES = {"epochs": 2, "patience": 2, "crop": 24, "batch_size": 32, "hidden": 16}
#: Sizes too large to train in a unit test; their forward shapes are tested on their own.
LARGE = ("small", "medium", "base")


def _key(name: str) -> str:
    return hashlib.sha256(name.encode()).hexdigest()


def make_segment_inputs(root, y: np.ndarray, table: np.ndarray | None = None, *, seed: int = 0,
                        n_frames=(40, 90)) -> SegmentInputs:
    """Fake log-mel, roll and note entries, one per row of ``y``, whose level follows ``y[:, 0]`` (learnable).

    The mel is -60 dB + 20 dB * y0 plus noise; the roll's onset velocities and
    note density grow with y0; the notes' velocities and onset deviations grow
    with y0. Entries live in a real :class:`Cache` at ``root``.
    """
    rng = np.random.default_rng(seed)
    cache = Cache(root)
    n = len(y)
    mel_keys, roll_keys, note_keys = [], [], []
    z = (y[:, 0] - y[:, 0].mean()) / (y[:, 0].std() or 1.0)
    for i in range(n):
        t = int(rng.integers(*n_frames))
        mel = (-60 + 20 * z[i] + 5 * rng.normal(size=(128, t))).astype(np.float16)
        key = _key(f"{seed:02d}mel{i:05d}")
        cache.put("mel", key, {"mel": mel, "frame_rate": np.asarray(100.0)})
        mel_keys.append(key)
        notes = np.zeros((2, 88, t), dtype=np.uint8)
        density = np.clip(0.05 + 0.03 * z[i], 0.0, 0.2)
        on = rng.random((88, t)) < density
        notes[0][on] = np.clip(64 + 25 * z[i], 1, 127).astype(np.uint8)
        notes[1][on] = 1
        pedal = np.zeros((2, t), dtype=np.uint8)
        pedal[0, : t // 2] = 100
        key = _key(f"{seed:02d}roll{i:05d}")
        cache.put("roll", key, {"notes": notes, "pedal": pedal})
        roll_keys.append(key)
        key = _key(f"{seed:02d}notes{i:05d}")
        cache.put("notes", key, {"notes": fake_notes(rng, int(rng.integers(20, 60)), z[i]),
                                 "match": np.array([1.0, 1.0])})
        note_keys.append(key)
    table = np.zeros((n, 0)) if table is None else np.asarray(table, dtype=float)
    arrays = {"mel": ArrayRef(str(root), "mel", np.asarray(mel_keys), load_mel),
              "pianoroll": ArrayRef(str(root), "roll", np.asarray(roll_keys), load_roll),
              "notes": ArrayRef(str(root), "notes", np.asarray(note_keys), load_notes)}
    return SegmentInputs([f"seg{i}" for i in range(n)], table, [f"f{j}" for j in range(table.shape[1])], arrays)


def fake_notes(rng: np.random.Generator, n: int, z: float) -> np.ndarray:
    """A plausible note-stage array (n, n_columns), float32: 3 notes per beat, 3 beats per bar; level z."""
    out = np.zeros((n, len(COLUMNS)), dtype=np.float32)
    c = COLUMN_INDEX
    k = np.arange(n)
    out[:, c["pitch"]] = rng.integers(40, 90, n)
    out[:, c["onset"]] = 0.2 * k
    out[:, c["log_duration"]] = np.log2(0.15 + 0.05 * rng.random(n))
    out[:, c["velocity"]] = np.clip(64 + 20 * z + 5 * rng.normal(size=n), 1, 127)
    out[:, c["log_ioi"]] = np.log2(0.2)
    out[:, c["tempo"]] = 0.1 * z + 0.02 * rng.normal(size=n)
    out[:, c["onset_dev"]] = 0.02 * (1 + z) * rng.normal(size=n)
    out[:, c["sustain_onset"]] = (k // 6) % 2
    out[:, c["score_beat"]] = k / 3
    out[:, c["beat"]] = k // 3
    out[:, c["bar"]] = k // 9
    out[:, c["beat_in_bar"]] = (k // 3) % 3 + (k % 3) / 3
    out[:, c["score_duration"]] = 1 / 3
    out[:, c["matched"]] = rng.random(n) > 0.05
    return out


def quick_params(spec) -> dict:
    """Test-sized parameters for a neural registry entry (its own size unless too large to train here)."""
    if "notes" in spec.tags:
        return dict(QUICK_NOTES)
    params = dict(QUICK)
    if spec.defaults.get("size") in LARGE:
        params["size"] = "ultratiny"
    if spec.defaults.get("init"):
        # The test-sized encoder matches no pre-trained checkpoint: start from scratch here (an empty init).
        # Loading checkpoints is tested in tests/models/test_ssast.py and end to end in test_cli_ssast.py.
        params["init"] = ""
    return params
