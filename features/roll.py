"""Piano roll of a performance MIDI, for the transformer families' symbolic input.

The roll is computed from the MIDI directly (no audio), on the time grid of
the log-mel stage, so the same transformer can read audio or symbols and a
table can tell which is better. Frame ``j`` covers the times
``[j / frame_rate, (j + 1) / frame_rate)`` with ``frame_rate = sr / hop_length``
of the mel stage (22050 / 220, about 100.2 frames per second by default).

Stored entry (uint8, a cache hit returns these exact arrays):

* ``notes`` (2, 88, n_frames): channel 0 is the velocity-weighted onset
  (the MIDI velocity 1..127 of a note starting in the frame, the largest if
  several; 0 elsewhere); channel 1 the sustained (sounding) notes, 1 from
  the onset frame to the release frame inclusive.
* ``pedal`` (2, n_frames): the sustain (CC64) and soft (CC67) pedal values
  0..127 in force during the frame (the value at the frame's start).

:func:`assemble` broadcasts the two pedal rows over the 88 pitches, giving
the model's input ``(4, 88, n_frames)``: onsets, notes, sustain, soft.
``n_frames = 1 + floor((end + tail_s) * frame_rate)`` where ``end`` is the
last note release, as the renderer adds ``tail_s`` of release after it.
Pitches outside the piano's range (MIDI 21..108) are dropped.
"""

from __future__ import annotations

import os

import numpy as np

from features.midi_io import read_performance

VERSION = "1"

#: MIDI pitch of the lowest piano key (A0) and the number of keys.
LOWEST_PITCH = 21
N_PITCHES = 88
#: Channels of the assembled roll, in order.
CHANNELS = ("onset_velocity", "note", "sustain_pedal", "soft_pedal")


_NOTE_NAMES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")


def pitch_name(pitch: int) -> str:
    """Scientific pitch name of a MIDI pitch (60 -> ``C4``, 21 -> ``A0``)."""
    return f"{_NOTE_NAMES[int(pitch) % 12]}{int(pitch) // 12 - 1}"


def _pedal_row(times: np.ndarray, values: np.ndarray, n_frames: int, frame_rate: float) -> np.ndarray:
    """Controller value in force at each frame start (0 before the first event)."""
    row = np.zeros(n_frames, dtype=np.uint8)
    if times.size == 0:
        return row
    starts = np.arange(n_frames) / frame_rate
    idx = np.searchsorted(times, starts, side="right") - 1
    have = idx >= 0
    row[have] = np.clip(values[idx[have]], 0, 127).astype(np.uint8)
    return row


def pianoroll(midi_path: str | os.PathLike, frame_rate: float, *, tail_s: float = 1.0) -> dict[str, np.ndarray]:
    """Compute the piano roll of one performance.

    Parameters
    ----------
    midi_path : path
        Performance MIDI file.
    frame_rate : float
        Frames per second (the mel stage's ``sr / hop_length``).
    tail_s : float, default 1.0
        Seconds kept after the last note release (the renderer's tail).

    Returns
    -------
    dict
        ``notes``: uint8 (2, 88, n_frames); ``pedal``: uint8 (2, n_frames).

    Raises
    ------
    DataError
        The MIDI is missing, unreadable or holds no notes.
    """

    perf = read_performance(midi_path)
    end = float(max(perf.offset.max(), perf.onset.max()))
    n_frames = 1 + int(np.floor((end + tail_s) * frame_rate))
    notes = np.zeros((2, N_PITCHES, n_frames), dtype=np.uint8)
    keep = (perf.pitch >= LOWEST_PITCH) & (perf.pitch < LOWEST_PITCH + N_PITCHES)
    rows = perf.pitch[keep] - LOWEST_PITCH
    on = np.minimum((perf.onset[keep] * frame_rate).astype(np.int64), n_frames - 1)
    off = np.minimum((perf.offset[keep] * frame_rate).astype(np.int64), n_frames - 1)
    vel = np.clip(perf.velocity[keep], 0, 127).astype(np.uint8)
    np.maximum.at(notes[0], (rows, on), vel)
    for r, a, b in zip(rows, on, off, strict=True):
        notes[1, r, a:b + 1] = 1
    pedal = np.stack([_pedal_row(perf.sustain_times, perf.sustain_values, n_frames, frame_rate),
                      _pedal_row(perf.soft_times, perf.soft_values, n_frames, frame_rate)])
    return {"notes": notes, "pedal": pedal}


def assemble(entry: dict[str, np.ndarray]) -> np.ndarray:
    """The model's roll input from a stored entry: uint8 (4, 88, n_frames), pedals broadcast over pitch."""
    notes, pedal = entry["notes"], entry["pedal"]
    n_frames = notes.shape[-1]
    return np.concatenate([notes, np.broadcast_to(pedal[:, None, :], (2, N_PITCHES, n_frames))], axis=0)
