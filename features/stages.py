"""Cached intermediate stages shared by feature sets and models: an item's audio, log-mel, piano roll.

Each stage is a content-addressed cache entry (see :mod:`features.cache`) keyed
by its input files' bytes, the stage version and its parameters. An item's
audio (:func:`item_audio`) is its own recording when it has an audio file
(``audio_path``: decoded and resampled by :mod:`features.decode`, stage
``decode``, keyed by the file's bytes, stored as float32), else its MIDI
rendered with a SoundFont (stage ``render``, keyed by the MIDI's and the
SoundFont's bytes, stored as float16: about 1e-3 relative precision, far below
the synth's own noise; halves the disk use). The audio features and the
log-mel read :func:`item_audio`, so everything built on them follows the
item's source; a rendered item's keys are those they always were. Mel
spectrograms are stored as float16 in dB with their frame rate, piano rolls as
uint8 (see :mod:`features.roll`). Every stage goes through
:meth:`Cache.fetch`, so a miss returns exactly what a hit returns (the stored
representation).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from features import decode, render
from features import mel as mel_mod
from features import roll as roll_mod
from features.cache import Cache, make_key
from features.soundfonts import split_soundfonts

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class AudioParams:
    """How a segment is rendered; every field is part of the cache key."""

    soundfont: str | None = None
    sr: int = 22050
    tail_s: float = 1.0
    preset: int = 0

    def resolved_soundfont(self) -> Path:
        sf = self.soundfont or os.environ.get("PERCEPIANO_SOUNDFONT")
        return render.check_soundfont(sf) if sf else render.default_soundfont()

    def key_params(self) -> dict[str, Any]:
        # The SoundFont enters the key by content (as an input file), not by path.
        return {k: v for k, v in asdict(self).items() if k != "soundfont"}


#: Feature sets that read rendered audio (and therefore a SoundFont).
AUDIO_SETS = ("audio", "mel")


def check_soundfont_use(soundfont: str | None, feature_sets) -> None:
    """Check a SoundFont given by the user; warn when nothing will use it (it is not silently dropped).

    Raises
    ------
    ConfigError
        ``soundfont`` is missing or not a SoundFont (also when no feature set uses it).
    """
    if soundfont is None:
        return
    split_soundfonts(soundfont)  # one path, or several separated by commas
    if not any(fs in AUDIO_SETS for fs in feature_sets):
        logger.warning("--soundfont %s is ignored: no feature set here renders audio (only %s do)", soundfont,
                       ", ".join(AUDIO_SETS))


def render_inputs(row: Mapping[str, Any], params: AudioParams) -> list:
    return [row["midi_path"], params.resolved_soundfont()]


def has_audio_file(row: Mapping[str, Any]) -> bool:
    """Whether the item is a recording (an ``audio_path``) rather than MIDI to render."""
    path = row.get("audio_path")
    return isinstance(path, str) and bool(path)


def audio_inputs(row: Mapping[str, Any], params: AudioParams) -> list:
    """The files an item's audio comes from: its recording, or its MIDI and the SoundFont that renders it."""
    return [row["audio_path"]] if has_audio_file(row) else render_inputs(row, params)


def audio_key_params(row: Mapping[str, Any]) -> dict[str, Any]:
    """Key parameters that depend on the item's audio source: the decoder's for a recording; none for a
    rendering (so a rendered item's keys are unchanged)."""
    return {"source": "file", "decode_version": decode.VERSION} if has_audio_file(row) else {}


def decoded_audio(row: Mapping[str, Any], cache: Cache, params: AudioParams) -> np.ndarray:
    """The item's recording decoded to mono float32 at ``params.sr`` (cached by the file's bytes).

    Raises
    ------
    DataError
        The file is unreadable, empty, silent, not finite or over the limits of :mod:`features.decode`.
    """
    key = make_key("decode", decode.VERSION, {"sr": params.sr}, [row["audio_path"]])
    return cache.fetch("decode", key, lambda: {"audio": decode.load(row["audio_path"], params.sr)})["audio"]


def item_audio(row: Mapping[str, Any], cache: Cache, params: AudioParams) -> np.ndarray:
    """The item's audio (mono float32 at ``params.sr``): its decoded recording, else its rendered MIDI.

    Raises
    ------
    DataError
        Bad audio file or bad MIDI.
    ConfigError
        A rendering's SoundFont is missing or not a SoundFont.
    """
    if has_audio_file(row):
        return decoded_audio(row, cache, params)
    return rendered_audio(row, cache, params)


def rendered_audio(row: Mapping[str, Any], cache: Cache, params: AudioParams) -> np.ndarray:
    """The segment's rendered audio (mono, ``params.sr``): the stored float16 samples widened to float32,
    whether they come from the cache or were rendered now.

    Raises
    ------
    DataError
        The MIDI is unreadable or renders to silence.
    ConfigError
        The SoundFont is missing or not a SoundFont.
    """
    sf = params.resolved_soundfont()
    key = make_key("render", render.VERSION, params.key_params(), [row["midi_path"], sf])

    def compute() -> dict[str, np.ndarray]:
        y = render.render(row["midi_path"], soundfont=sf, sr=params.sr, tail_s=params.tail_s, preset=params.preset)
        return {"audio": y.astype(np.float16)}

    return cache.fetch("render", key, compute)["audio"].astype(np.float32)


@dataclass(frozen=True)
class MelParams:
    """Log-mel parameters; part of the cache key."""

    n_mels: int = 128
    n_fft: int = 1024
    hop_length: int | None = None
    fmin: float = 20.0
    fmax: float | None = None


def mel_key(row: Mapping[str, Any], audio: AudioParams, mel: MelParams) -> str:
    """Cache key of a segment's log-mel entry (its audio's source files, the audio and mel parameters)."""
    params = {"audio": audio.key_params(), "render_version": render.VERSION, **asdict(mel), **audio_key_params(row)}
    return make_key("mel", mel_mod.VERSION, params, audio_inputs(row, audio))


def logmel_for(row: Mapping[str, Any], cache: Cache, audio: AudioParams, mel: MelParams) -> tuple[np.ndarray, float]:
    """The segment's log-mel spectrogram (float16, (n_mels, n_frames)) of its audio (:func:`item_audio`) and its
    frame rate."""

    key = mel_key(row, audio, mel)

    def compute() -> dict[str, np.ndarray]:
        spec, frame_rate = mel_mod.logmel(item_audio(row, cache, audio), audio.sr, **asdict(mel))
        return {"mel": spec, "frame_rate": np.asarray(frame_rate)}

    got = cache.fetch("mel", key, compute)
    return got["mel"], float(got["frame_rate"])


@dataclass(frozen=True)
class RollParams:
    """Piano-roll grid: the mel stage's frame rate (``sr / hop_length``) and the renderer's tail."""

    sr: int = 22050
    hop_length: int | None = None
    tail_s: float = 1.0

    @property
    def frame_rate(self) -> float:
        hop = round(self.sr / 100) if self.hop_length is None else self.hop_length
        return self.sr / hop

    @classmethod
    def like(cls, audio: AudioParams, mel: MelParams) -> RollParams:
        """The grid of the log-mel stage made with ``audio`` and ``mel``."""
        return cls(sr=audio.sr, hop_length=mel.hop_length, tail_s=audio.tail_s)


def roll_key(row: Mapping[str, Any], roll: RollParams) -> str:
    """Cache key of a segment's piano-roll entry (the MIDI's bytes, the roll version, the grid)."""

    return make_key("roll", roll_mod.VERSION, asdict(roll), [row["midi_path"]])


def pianoroll_for(row: Mapping[str, Any], cache: Cache, roll: RollParams) -> dict[str, np.ndarray]:
    """The segment's stored piano roll (``notes`` uint8 (2, 88, T), ``pedal`` uint8 (2, T)), cached.

    Raises
    ------
    DataError
        The MIDI is unreadable or holds no notes.
    """

    return cache.fetch("roll", roll_key(row, roll),
                       lambda: roll_mod.pianoroll(row["midi_path"], roll.frame_rate, tail_s=roll.tail_s))
