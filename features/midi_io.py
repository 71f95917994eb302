"""Read a performance MIDI file into flat note and pedal arrays.

The reader walks mido's parsed tracks itself instead of building a
``pretty_midi.PrettyMIDI``: it skips pretty_midi's per-tick time table and
object-per-note overhead, keeps controller events that sit on a track without
notes (pretty_midi drops them), and gives the feature code plain numpy arrays. Notes are paired the way pretty_midi pairs them (a note-off
closes every open note of that key that began on an earlier tick), so both
readers agree note for note on the dataset.
"""

from __future__ import annotations

import logging
import os
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import mido
import numpy as np

from benchmark.errors import DataError
from benchmark.hashing import regular_stat

logger = logging.getLogger(__name__)

SUSTAIN_CC = 64
SOFT_CC = 67
#: MIDI's default tempo (120 bpm) until the first set_tempo event.
DEFAULT_TEMPO_US = 500_000

# Limits on hostile input: a valid MIDI file can ask for an hour-long render or
# a note 4.5e9 s late (a MemoryError in the renderer and the statistics). The
# longest PercePiano file lasts under 10 minutes with 7311 notes in 74 kB, so
# these limits leave ample headroom and still bound memory and time.
#: Longest accepted performance (last note, pedal or message), in seconds.
MAX_DURATION_S = 1800.0
#: Most notes accepted in one file.
MAX_NOTES = 100_000
#: Largest accepted MIDI file, in bytes.
MAX_FILE_BYTES = 4 * 2**20


def check_file_size(path: str | os.PathLike) -> None:
    """Refuse a MIDI file over :data:`MAX_FILE_BYTES`, or anything but a regular file, before opening it.

    Raises
    ------
    DataError
        The file is missing, unreadable, not a regular file (a FIFO, device, socket, directory) or too large.
    """
    try:
        size = regular_stat(path).st_size  # a FIFO named *.mid would block the reader forever
    except FileNotFoundError as exc:
        raise DataError(f"MIDI file not found: '{path}'") from exc
    except OSError as exc:
        raise DataError(f"cannot read MIDI file '{path}': {exc.strerror or exc}") from exc
    if size > MAX_FILE_BYTES:
        raise DataError(f"MIDI file '{path}' is {size / 2**20:.1f} MiB, over the limit MAX_FILE_BYTES="
                        f"{MAX_FILE_BYTES // 2**20} MiB for one segment")


def check_limits(path: str | os.PathLike, end_s: float, n_notes: int) -> None:
    """Refuse a performance longer than :data:`MAX_DURATION_S` or with more than :data:`MAX_NOTES` notes.

    Raises
    ------
    DataError
        Naming the limit that was exceeded.
    """
    if not end_s <= MAX_DURATION_S:  # also NaN
        raise DataError(f"MIDI file '{path}' lasts {end_s:.4g} s, over the limit MAX_DURATION_S="
                        f"{MAX_DURATION_S:g} s for one segment")
    if n_notes > MAX_NOTES:
        raise DataError(f"MIDI file '{path}' holds {n_notes} notes, over the limit MAX_NOTES={MAX_NOTES}")


@dataclass(frozen=True)
class Performance:
    """Notes and pedal controllers of one performance, times in seconds.

    Attributes
    ----------
    path : Path
    onset, offset : ndarray of float, shape (n_notes,)
        Key press and key release times, sorted by onset then pitch.
    pitch, velocity : ndarray of int, shape (n_notes,)
    sustain_times, sustain_values : ndarray, shape (n_sustain,)
        CC64 events in time order, one per tick; the pedal is up (0) before
        the first.
    soft_times, soft_values : ndarray, shape (n_soft,)
        CC67 (una corda) events, same convention.
    """

    path: Path
    onset: np.ndarray
    offset: np.ndarray
    pitch: np.ndarray
    velocity: np.ndarray
    sustain_times: np.ndarray
    sustain_values: np.ndarray
    soft_times: np.ndarray
    soft_values: np.ndarray

    @property
    def n_notes(self) -> int:
        return int(self.onset.size)


def read_performance(path: str | os.PathLike) -> Performance:
    """Parse a MIDI file into a :class:`Performance`.

    Parameters
    ----------
    path : str or PathLike

    Returns
    -------
    Performance

    Raises
    ------
    DataError
        The file is missing, empty, truncated, not a MIDI file, uses SMPTE
        time division, holds no complete note, or exceeds a limit
        (:data:`MAX_FILE_BYTES`, :data:`MAX_DURATION_S`, :data:`MAX_NOTES`).
    """
    path = Path(path)
    check_file_size(path)
    try:
        midi = mido.MidiFile(path)
    except FileNotFoundError as exc:
        raise DataError(f"MIDI file not found: '{path}'") from exc
    except EOFError as exc:
        raise DataError(f"MIDI file '{path}' is empty or truncated (unexpected end of file)") from exc
    # mido documents no exception contract; anything else it raises while
    # parsing (OSError for a missing header, ValueError/KeyError/IndexError for
    # bad bytes) means the file is malformed, and callers want one error type.
    except Exception as exc:
        raise DataError(f"cannot parse MIDI file '{path}': {type(exc).__name__}: {exc}") from exc

    if midi.ticks_per_beat <= 0:
        raise DataError(f"MIDI file '{path}' uses SMPTE time division, which is not supported")

    notes, controls, tempos = _collect_events(midi)
    if not notes:
        raise DataError(f"MIDI file '{path}' holds no notes (no note-on with a matching note-off)")
    check_limits(path, 0.0, len(notes))

    tick_to_seconds = _tempo_map(tempos, midi.ticks_per_beat)
    note_ticks = np.array(notes, dtype=np.int64)
    onset = tick_to_seconds(note_ticks[:, 0])
    offset = tick_to_seconds(note_ticks[:, 1])
    last_control = max((t for events in controls.values() for t, _ in events), default=0)
    check_limits(path, float(max(offset.max(), tick_to_seconds(np.array([last_control]))[0])), len(notes))
    pitch, velocity = note_ticks[:, 2], note_ticks[:, 3]
    order = np.lexsort((pitch, onset))

    sustain_times, sustain_values = _controller(controls, SUSTAIN_CC, tick_to_seconds)
    soft_times, soft_values = _controller(controls, SOFT_CC, tick_to_seconds)
    return Performance(
        path=path,
        onset=onset[order],
        offset=offset[order],
        pitch=pitch[order],
        velocity=velocity[order],
        sustain_times=sustain_times,
        sustain_values=sustain_values,
        soft_times=soft_times,
        soft_values=soft_values,
    )


def _collect_events(midi: mido.MidiFile) -> tuple[list, dict, list]:
    """Pair note-ons with note-offs and gather controllers and tempi in ticks.

    Returns
    -------
    notes : list of (on_tick, off_tick, pitch, velocity)
    controls : dict of int to list of (tick, value)
    tempos : list of (tick, microseconds_per_beat)
    """
    notes: list[tuple[int, int, int, int]] = []
    controls: dict[int, list[tuple[int, int]]] = defaultdict(list)
    tempos: list[tuple[int, int]] = []
    n_dropped = 0
    for track in midi.tracks:
        tick = 0
        open_notes: dict[tuple[int, int], list[tuple[int, int]]] = {}
        for msg in track:
            tick += msg.time
            kind = msg.type
            if kind == "note_on" and msg.velocity > 0:
                open_notes.setdefault((msg.channel, msg.note), []).append((tick, msg.velocity))
            elif kind == "note_off" or kind == "note_on":
                pending = open_notes.get((msg.channel, msg.note))
                if not pending:
                    continue  # a stray note-off: nothing to close
                closed = [(t, tick, msg.note, v) for t, v in pending if t != tick]
                if closed:
                    # A note-on on this very tick is a new note written before
                    # the note-off of the old one; it stays open.
                    notes.extend(closed)
                    open_notes[(msg.channel, msg.note)] = [(t, v) for t, v in pending if t == tick]
                else:
                    # Zero-length notes are dropped, as pretty_midi drops them.
                    n_dropped += len(pending)
                    del open_notes[(msg.channel, msg.note)]
            elif kind == "control_change" and msg.control in (SUSTAIN_CC, SOFT_CC):
                controls[msg.control].append((tick, msg.value))
            elif kind == "set_tempo":
                tempos.append((tick, msg.tempo))
        n_dropped += sum(len(v) for v in open_notes.values())
    if n_dropped:
        logger.debug("dropped %d note(s) of zero length or without a note-off", n_dropped)
    return notes, controls, tempos


def _tempo_map(tempos: list[tuple[int, int]], ticks_per_beat: int):
    """Build a vectorised tick -> seconds function from set_tempo events.

    Tempo events from every track are merged, as type-1 files keep them on the
    conductor track but nothing stops a writer from putting them elsewhere.
    """
    tempos = sorted(tempos)
    if not tempos or tempos[0][0] > 0:
        tempos.insert(0, (0, DEFAULT_TEMPO_US))
    change_ticks = np.array([t for t, _ in tempos], dtype=np.float64)
    sec_per_tick = np.array([u for _, u in tempos], dtype=np.float64) / (1e6 * ticks_per_beat)
    # Seconds elapsed at each tempo change; a later event at the same tick
    # overrides an earlier one because its segment has zero length.
    change_seconds = np.concatenate(([0.0], np.cumsum(np.diff(change_ticks) * sec_per_tick[:-1])))

    def tick_to_seconds(ticks: np.ndarray) -> np.ndarray:
        idx = np.searchsorted(change_ticks, ticks, side="right") - 1
        return change_seconds[idx] + (ticks - change_ticks[idx]) * sec_per_tick[idx]

    return tick_to_seconds


def _controller(controls: dict, number: int, tick_to_seconds) -> tuple[np.ndarray, np.ndarray]:
    """Time-ordered (times, values) arrays of one controller, empty when absent.

    Of several events on one tick only the last is kept: it is the value in
    force, and a same-tick lift and press is no pedal change.
    """
    events = sorted(controls.get(number, ()), key=lambda e: e[0])  # stable: same-tick order kept
    if not events:
        return np.empty(0), np.empty(0, dtype=np.int64)
    ticks, values = np.array(events, dtype=np.int64).T
    last_on_tick = np.append(ticks[1:] != ticks[:-1], True)
    return tick_to_seconds(ticks[last_on_tick]), values[last_on_tick]
