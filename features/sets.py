"""Registry of feature sets: what each model family consumes.

A tabular feature set turns one dataset row (a segment) into a fixed-length
vector of named features. Its definition names the extractor version, the
parameters and the input files that key its cache entries, so the builder can
key the cache by content. ``mel``, ``roll`` and ``notes`` are array stages
(:class:`ArrayStage`: spectrograms, piano rolls and note arrays for the neural
families), built through the same cache but not joined into the feature table;
models read them through :class:`features.inputs.SegmentInputs`. Extractors are imported inside the functions, so listing
feature sets never imports librosa or torch.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import numpy as np

from benchmark.registry import Registry
from features.cache import Cache
from features.stages import (
    AudioParams,
    MelParams,
    RollParams,
    audio_inputs,
    audio_key_params,
    item_audio,
    logmel_for,
    mel_key,
    pianoroll_for,
    roll_key,
)

FEATURE_SETS = Registry("feature set")


@dataclass(frozen=True)
class FeatureSet:
    """How to compute, name and cache one tabular feature set.

    Attributes
    ----------
    name : str
        Registry name (``midi``, ``audio``...), also the cache stage unless ``stage`` names another.
    version : str
        Extractor version; part of the cache key.
    feature_names : tuple of str
    docs : mapping
        Feature name -> one-line documentation.
    compute : callable
        ``compute(row, cache) -> ndarray (n_features,)``; raises DataError on bad input.
    inputs : callable
        ``inputs(row) -> list of paths`` whose bytes key the cache entry.
    params : mapping
        JSON-able parameters that change the output; part of the cache key.
    stage : str
        Cache stage of its entries when it differs from ``name`` (``ssast`` embeddings go to ``ssast_emb``,
        apart from the ``ssast_ckpt`` checkpoints they are computed with); empty: ``name``.
    key_params : callable, optional
        ``key_params(row) -> dict``: key parameters that depend on the row (an audio set's decoder version
        for a recording); merged into ``params`` for that row's key.
    """

    name: str
    version: str
    feature_names: tuple[str, ...]
    docs: Mapping[str, str]
    compute: Callable[..., np.ndarray]
    inputs: Callable[..., list]
    params: Mapping[str, Any] = field(default_factory=dict)
    stage: str = ""
    key_params: Callable[..., Mapping[str, Any]] | None = None

    @property
    def cache_stage(self) -> str:
        """The cache stage its entries are keyed and stored under."""
        return self.stage or self.name

    def row_params(self, row: Mapping[str, Any]) -> Mapping[str, Any]:
        """The key parameters of ``row``'s entry: ``params`` and the row's own (``key_params``)."""
        return {**self.params, **self.key_params(row)} if self.key_params is not None else self.params


#: What an item needs for a feature set to be computed (registry metadata ``reads``): ``midi`` (the notes),
#: or ``audio`` (a recording, or MIDI to render). A set that declares nothing is taken to need MIDI.
MEDIA = ("midi", "audio")


def media_read(name: str) -> tuple[str, ...]:
    """The media the feature set ``name`` reads (registry metadata ``reads``; MIDI when undeclared)."""
    return tuple(FEATURE_SETS.get(name).extra.get("reads", ("midi",)))


def unavailable_sets(names, media: set[str]) -> list[str]:
    """The feature sets among ``names`` that need a medium outside ``media`` (what every item has)."""
    return [n for n in names if not set(media_read(n)) <= set(media)]


def _midi_inputs(row: Mapping[str, Any]) -> list:
    return [row["midi_path"]]


def _vector(values: Mapping[str, float], names) -> np.ndarray:
    return np.array([values[k] for k in names], dtype=float)


def _midi_compute(row: Mapping[str, Any], cache: Cache) -> np.ndarray:
    from features import midi

    return _vector(midi.extract(row["midi_path"]), midi.FEATURES)


@FEATURE_SETS.register("midi", description="handcrafted symbolic features of the performance MIDI (83)",
                       reads=("midi",))
def midi_feature_set() -> FeatureSet:
    from features import midi

    return FeatureSet(name="midi", version=midi.VERSION, feature_names=tuple(midi.FEATURES),
                      docs=dict(midi.FEATURES), compute=_midi_compute, inputs=_midi_inputs)


def _audio_compute(row: Mapping[str, Any], cache: Cache, params: AudioParams) -> np.ndarray:
    from features import audio

    y = item_audio(row, cache, params)
    return _vector(audio.extract(y, params.sr), audio.FEATURES)


@FEATURE_SETS.register("audio", description="librosa features of the item's audio (85): MFCC, spectral, RMS, "
                                            "chroma, onsets, tempo, HPSS (its recording, or its MIDI rendered)",
                       reads=("audio",))
def audio_feature_set(soundfont: str | None = None, sr: int = 22050) -> FeatureSet:
    from features import audio, render

    params = AudioParams(soundfont=soundfont, sr=sr)
    return FeatureSet(name="audio", version=f"{audio.VERSION}+render{render.VERSION}",
                      feature_names=tuple(audio.FEATURES), docs=dict(audio.FEATURES),
                      compute=partial(_audio_compute, params=params), inputs=partial(audio_inputs, params=params),
                      params=params.key_params(), key_params=audio_key_params)


def _score_path(row: Mapping[str, Any]) -> str | None:
    # A segment without a score reads as None, or as NaN once pandas has stored the column.
    sp = row.get("score_midi_path")
    return sp if isinstance(sp, str) and sp else None


def _score_inputs(row: Mapping[str, Any]) -> list:
    sp = _score_path(row)
    return [row["midi_path"]] + ([sp] if sp else [])


def _score_compute(row: Mapping[str, Any], cache: Cache) -> np.ndarray:
    from features import score

    return _vector(score.extract(row["midi_path"], _score_path(row)), score.FEATURES)


@FEATURE_SETS.register("score", description="score-aligned performance features (tempo, timing, velocity and "
                                            "articulation deviations from the score MIDI)", reads=("midi",))
def score_feature_set() -> FeatureSet:
    from features import score

    return FeatureSet(name="score", version=score.VERSION, feature_names=tuple(score.FEATURES),
                      docs=dict(score.FEATURES), compute=_score_compute, inputs=_score_inputs)


@dataclass(frozen=True)
class ArrayStage:
    """An array stage: one array per segment (spectrogram, piano roll), cached, never joined into a table.

    Attributes
    ----------
    name : str
        Registry name, also the cache stage.
    accessor : str
        Name of the :class:`features.inputs.SegmentInputs` method that returns
        one segment's array (``mel``, ``pianoroll``).
    key : callable
        ``key(row) -> str``, the segment's cache key (content of its input files).
    ensure : callable
        ``ensure(row, cache) -> None``: compute and cache the entry if absent;
        raises DataError on bad input.
    load : callable
        ``load(entry) -> ndarray``: the segment's array from its cache entry
        (a module-level function, so a view that holds it pickles).
    """

    name: str
    accessor: str
    key: Callable[..., str]
    ensure: Callable[..., None]
    load: Callable[[dict], np.ndarray]


def is_array_stage(name: str) -> bool:
    """True if the registered feature set ``name`` is an array stage (registry metadata ``kind="array"``)."""
    return FEATURE_SETS.get(name).extra.get("kind") == "array"


def _mel_ensure(row: Mapping[str, Any], cache: Cache, audio: AudioParams, mel: MelParams) -> None:
    logmel_for(row, cache, audio, mel)


def load_mel(entry: dict) -> np.ndarray:
    """The stored log-mel spectrogram, float16 (n_mels, n_frames) in dB."""
    return entry["mel"]


def load_roll(entry: dict) -> np.ndarray:
    """The assembled piano roll, uint8 (4, 88, n_frames); see :func:`features.roll.assemble`."""
    from features.roll import assemble

    return assemble(entry)


def _roll_ensure(row: Mapping[str, Any], cache: Cache, roll: RollParams) -> None:
    pianoroll_for(row, cache, roll)


@FEATURE_SETS.register("mel", description="log-mel spectrograms of the item's audio (array stage, 128 bands, "
                                          "float16 dB, ~100 frames/s) for the transformer families", kind="array",
                       reads=("audio",))
def mel_stage(soundfont: str | None = None) -> ArrayStage:
    audio, mel = AudioParams(soundfont=soundfont), MelParams()
    return ArrayStage(name="mel", accessor="mel", key=partial(mel_key, audio=audio, mel=mel),
                      ensure=partial(_mel_ensure, audio=audio, mel=mel), load=load_mel)


@FEATURE_SETS.register("roll", description="piano roll from the MIDI (array stage, 4 x 88 pitches, uint8, the mel "
                                           "stage's frame rate): velocity-weighted onsets, sounding notes, sustain "
                                           "and soft pedal", kind="array", reads=("midi",))
def roll_stage() -> ArrayStage:
    roll = RollParams.like(AudioParams(), MelParams())
    return ArrayStage(name="roll", accessor="pianoroll", key=partial(roll_key, roll=roll),
                      ensure=partial(_roll_ensure, roll=roll), load=load_roll)


@FEATURE_SETS.register("notes", description="performed notes aligned to the score (array stage, one row per note: "
                                            "pitch, timing, velocity, local tempo and onset deviation against the "
                                            "score, articulation, pedal, beat and bar) for the note-level networks",
                       kind="array")
def notes_stage() -> ArrayStage:
    from features import notes

    return ArrayStage(name="notes", accessor="notes", key=notes.stage_key, ensure=notes.ensure,
                      load=notes.load_notes)


def _resolve(name: str):
    # ``file:PATH``: a features file of the user's own (features.external), resolved by name like a class path.
    from features.external import resolve_file_set

    return resolve_file_set(name)


FEATURE_SETS.set_resolver(_resolve)
