"""Render PercePiano MIDI to mono audio with a sampled-piano SoundFont synth.

PercePiano ships MIDI only, so every audio model sees audio rendered here. The
renderer is TinySoundFont (``tinysoundfont``), driven offline: MIDI events are
applied at their exact sample positions and the audio between two events is
rendered in one call into a preallocated buffer, so no audio device is used
and event timing is sample-accurate.

Rendering policy
----------------
* Every channel plays the same piano preset (``preset``, default 0 = acoustic
  grand in General MIDI); program changes, volume (CC7), expression and soft
  pedal (CC67) are ignored, so loudness comes from note velocities alone and
  every file is rendered with the same instrument.
* The sustain pedal (CC64) is honoured. TinySoundFont ignores CC64, so the
  driver implements it: while the pedal is down (value >= 64, the MIDI 1.0
  switch threshold) a note-off is deferred, and the deferred note-offs are sent
  when the pedal goes up. Half-pedalling is therefore binary.
* Loudness is not normalised: the output is the synth's float32 mix at 0 dB
  gain, so velocity shows in level. TinySoundFont maps velocity to gain alone
  (amplitude proportional to velocity); with TimGM6mb a note's timbre does not
  change with velocity (same spectral centroid at velocities 30, 70 and 120).
  Pass a SoundFont with velocity layers to get that. Dense chords may exceed 1.0 in magnitude;
  keep the audio as float (not 16-bit PCM) to avoid clipping.
* Output length is ``ceil((end_time + tail_s) * sr)`` samples, where
  ``end_time`` is the time of the last channel message (note or controller),
  so the releases after the last note-off are kept.
"""

from __future__ import annotations

import functools
import logging
import math
from collections import defaultdict
from importlib import resources
from pathlib import Path

import numpy as np

from benchmark.errors import ConfigError, DataError
from features.midi_io import check_file_size, check_limits

logger = logging.getLogger(__name__)

VERSION = "1"

#: MIDI 1.0: controller values 0-63 mean "off" and 64-127 mean "on" for switches.
_PEDAL_THRESHOLD = 64
_SUSTAIN_CC = 64
_N_CHANNELS = 16
#: Peak below -80 dBFS counts as silence: one velocity-1 note still peaks near -66 dBFS.
_SILENCE_PEAK = 1e-4
#: Voices are preallocated and a full pool cuts or drops notes, so leave headroom
#: (256 already renders the longest, densest pedalled PercePiano files unchanged).
_MAX_VOICES = 1024

_PEDAL, _NOTE_OFF, _NOTE_ON = 0, 1, 2


def default_soundfont() -> Path:
    """Return the General MIDI SoundFont bundled with ``pretty_midi``.

    Returns
    -------
    Path
        Path of ``TimGM6mb.sf2`` inside the installed ``pretty_midi`` package.

    Raises
    ------
    ConfigError
        If the installed ``pretty_midi`` does not ship the SoundFont.
    """
    path = Path(str(resources.files("pretty_midi").joinpath("TimGM6mb.sf2")))
    return check_soundfont(path)


def check_soundfont(path: str | Path) -> Path:
    """Check that ``path`` is a readable SoundFont 2 file.

    Parameters
    ----------
    path : str or Path
        Candidate SoundFont file.

    Returns
    -------
    Path
        The same path, as a ``Path``.

    Raises
    ------
    ConfigError
        If the file does not exist, cannot be read, or lacks the ``RIFF....sfbk``
        header of a SoundFont.
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"SoundFont not found: {path}; pass the path of an existing .sf2 file")
    try:
        st = path.stat()
    except OSError as exc:
        raise ConfigError(f"cannot read SoundFont {path}: {exc}") from exc
    # Every segment's cache key names the font: its header is read once per file version, not per segment.
    _check_header(str(path), st.st_mtime_ns, st.st_size)
    return path


@functools.lru_cache(maxsize=64)
def _check_header(path: str, mtime_ns: int, size: int) -> None:
    try:
        with open(path, "rb") as fh:
            header = fh.read(12)
    except OSError as exc:
        raise ConfigError(f"cannot read SoundFont {path}: {exc}") from exc
    if len(header) < 12 or header[:4] != b"RIFF" or header[8:12] != b"sfbk":
        raise ConfigError(f"{path} is not a SoundFont (no RIFF/sfbk header); pass an .sf2 file")


def _read_events(midi_path: Path) -> tuple[list[tuple[float, int, int, int, int]], float]:
    """Read note and sustain-pedal events from a MIDI file.

    Returns
    -------
    events : list of (time_s, kind, channel, key_or_value, velocity)
        In file order (``mido`` merges tracks by time, keeping order at ties).
    end_time : float
        Time in seconds of the last channel message.

    Raises
    ------
    DataError
        If the file is missing, empty, truncated or not a playable MIDI file.
    """
    import mido


    check_file_size(midi_path)
    try:
        midi = mido.MidiFile(midi_path)
        messages = list(midi)  # merges tracks and converts ticks to seconds via the tempo map
    except Exception as exc:  # mido documents no exception contract: any parse failure is bad input
        raise DataError(f"cannot read MIDI file {midi_path}: {type(exc).__name__}: {exc}") from exc

    events: list[tuple[float, int, int, int, int]] = []
    now = end_time = 0.0
    for msg in messages:
        now += msg.time
        if msg.is_meta:
            continue
        end_time = now
        if msg.type == "note_on" and msg.velocity > 0:
            events.append((now, _NOTE_ON, msg.channel, msg.note, msg.velocity))
        elif msg.type in ("note_on", "note_off"):
            events.append((now, _NOTE_OFF, msg.channel, msg.note, 0))
        elif msg.type == "control_change" and msg.control == _SUSTAIN_CC:
            events.append((now, _PEDAL, msg.channel, msg.value, 0))
    check_limits(midi_path, end_time, sum(1 for e in events if e[1] == _NOTE_ON))
    return events, end_time


def _new_synth(soundfont: Path, sr: int, preset: int):
    """Build a synth with ``preset`` on every channel."""
    try:
        import tinysoundfont
    except ImportError:
        raise ConfigError(
            "rendering audio needs tinysoundfont; install it with 'pip install --no-deps tinysoundfont' "
            "(its optional pyaudio dependency does not build here; make install does this for you)"
        ) from None

    synth = tinysoundfont.Synth(gain=0.0, samplerate=sr)
    try:
        sfid = synth.sfload(str(soundfont), max_voices=_MAX_VOICES)
    except Exception as exc:  # the C++ binding raises bare RuntimeError/Exception
        raise ConfigError(f"TinySoundFont cannot load {soundfont}: {exc}") from exc
    if synth.sfpreset_name(sfid, 0, preset) is None:
        raise ConfigError(f"SoundFont {soundfont} has no preset {preset} in bank 0")
    for chan in range(_N_CHANNELS):
        # is_drums=False even on channel 10: a piano segment must never turn into drums.
        synth.program_select(chan, sfid, 0, preset, is_drums=False)
    return synth


def render(
    midi_path: str | Path,
    *,
    soundfont: str | Path | None = None,
    sr: int = 22050,
    tail_s: float = 1.0,
    preset: int = 0,
) -> np.ndarray:
    """Render a MIDI file to mono audio with a SoundFont piano.

    Parameters
    ----------
    midi_path : str or Path
        MIDI file to render.
    soundfont : str or Path, optional
        SoundFont 2 file; default :func:`default_soundfont` (TimGM6mb).
    sr : int, default 22050
        Output sample rate in Hz.
    tail_s : float, default 1.0
        Seconds rendered after the last MIDI message so releases are not cut.
    preset : int, default 0
        Bank-0 preset used on every channel (0 = acoustic grand piano).

    Returns
    -------
    y : np.ndarray, shape (n_samples,), float32
        Mono audio (mean of the synth's two channels), not normalised;
        ``n_samples = ceil((end_time + tail_s) * sr)``.

    Raises
    ------
    ConfigError
        If the SoundFont is missing or invalid, or ``sr``, ``tail_s`` or
        ``preset`` is out of range.
    DataError
        If the MIDI file cannot be read, has no notes, or renders to silence.
    """
    if not isinstance(sr, int | np.integer) or sr <= 0:
        raise ConfigError(f"sr={sr!r} must be a positive integer sample rate, e.g. 22050")
    if not math.isfinite(tail_s) or tail_s < 0:
        raise ConfigError(f"tail_s={tail_s!r} must be a finite number of seconds >= 0")
    if not 0 <= preset <= 127:
        raise ConfigError(f"preset={preset!r} must be a General MIDI preset in 0..127")
    soundfont = default_soundfont() if soundfont is None else check_soundfont(soundfont)
    midi_path = Path(midi_path)

    events, end_time = _read_events(midi_path)
    if not any(kind == _NOTE_ON for _, kind, *_ in events):
        raise DataError(f"MIDI file {midi_path} contains no notes; nothing to render")

    synth = _new_synth(soundfont, int(sr), preset)
    n_samples = math.ceil((end_time + tail_s) * sr)
    # The synth writes interleaved stereo float32 straight into this buffer.
    stereo = np.zeros((n_samples, 2), dtype=np.float32)
    buffer = memoryview(stereo).cast("B")
    bytes_per_frame = stereo.itemsize * 2

    pedal_down = [False] * _N_CHANNELS
    # Deferred note-offs per (channel, key): a count, because a key re-struck
    # under the pedal starts a new voice and each note-off ends the oldest one.
    held: defaultdict[tuple[int, int], int] = defaultdict(int)
    position = 0
    # File order is kept at equal times: it is the order the performance was recorded in.
    for time_s, kind, chan, value, velocity in events:
        target = min(round(time_s * sr), n_samples)
        if target > position:
            synth.generate_simple(
                target - position, buffer=buffer[position * bytes_per_frame : target * bytes_per_frame]
            )
            position = target
        if kind == _NOTE_ON:
            synth.noteon(chan, value, velocity)
        elif kind == _NOTE_OFF:
            if pedal_down[chan]:
                held[chan, value] += 1
            else:
                synth.noteoff(chan, value)
        else:
            down = value >= _PEDAL_THRESHOLD
            if pedal_down[chan] and not down:
                for (held_chan, key), count in list(held.items()):
                    if held_chan == chan:
                        for _ in range(count):
                            synth.noteoff(chan, key)
                        del held[held_chan, key]
            pedal_down[chan] = down
    if position < n_samples:
        synth.generate_simple(n_samples - position, buffer=buffer[position * bytes_per_frame :])

    y = stereo.mean(axis=1, dtype=np.float32)
    peak = float(np.max(np.abs(y))) if y.size else 0.0
    if not peak >= _SILENCE_PEAK:  # also catches NaN
        raise DataError(f"MIDI file {midi_path} renders to silence (peak {peak:.2g}); check its notes and velocities")
    logger.debug("rendered %s: %.2f s, peak %.3f", midi_path, n_samples / sr, peak)
    return y
