"""Registry of feature sets: what each model family consumes.

A tabular feature set turns one dataset row (a segment) into a fixed-length
vector of named features. Its definition names the extractor version, the
parameters and the input files that key its cache entries, so the builder can
key the cache by content. ``mel`` and ``roll`` are array stages
(:class:`ArrayStage`: spectrograms and piano rolls for the transformer
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
    logmel_for,
    mel_key,
    pianoroll_for,
    rendered_audio,
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
    """

    name: str
    version: str
    feature_names: tuple[str, ...]
    docs: Mapping[str, str]
    compute: Callable[..., np.ndarray]
    inputs: Callable[..., list]
    params: Mapping[str, Any] = field(default_factory=dict)
    stage: str = ""

    @property
    def cache_stage(self) -> str:
        """The cache stage its entries are keyed and stored under."""
        return self.stage or self.name


def _midi_inputs(row: Mapping[str, Any]) -> list:
    return [row["midi_path"]]


def _vector(values: Mapping[str, float], names) -> np.ndarray:
    return np.array([values[k] for k in names], dtype=float)


def _midi_compute(row: Mapping[str, Any], cache: Cache) -> np.ndarray:
    from features import midi

    return _vector(midi.extract(row["midi_path"]), midi.FEATURES)


@FEATURE_SETS.register("midi", description="handcrafted symbolic features of the performance MIDI (83)")
def midi_feature_set() -> FeatureSet:
    from features import midi

    return FeatureSet(name="midi", version=midi.VERSION, feature_names=tuple(midi.FEATURES),
                      docs=dict(midi.FEATURES), compute=_midi_compute, inputs=_midi_inputs)


def _audio_inputs(row: Mapping[str, Any], params: AudioParams) -> list:
    return [row["midi_path"], params.resolved_soundfont()]


def _audio_compute(row: Mapping[str, Any], cache: Cache, params: AudioParams) -> np.ndarray:
    from features import audio

    y = rendered_audio(row, cache, params)
    return _vector(audio.extract(y, params.sr), audio.FEATURES)


@FEATURE_SETS.register("audio", description="librosa features of the rendered audio (85): MFCC, spectral, RMS, "
                                            "chroma, onsets, tempo, HPSS")
def audio_feature_set(soundfont: str | None = None, sr: int = 22050) -> FeatureSet:
    from features import audio, render

    params = AudioParams(soundfont=soundfont, sr=sr)
    return FeatureSet(name="audio", version=f"{audio.VERSION}+render{render.VERSION}",
                      feature_names=tuple(audio.FEATURES), docs=dict(audio.FEATURES),
                      compute=partial(_audio_compute, params=params), inputs=partial(_audio_inputs, params=params),
                      params=params.key_params())


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
                                            "articulation deviations from the score MIDI)")
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


@FEATURE_SETS.register("mel", description="log-mel spectrograms of the rendered audio (array stage, 128 bands, "
                                          "float16 dB, ~100 frames/s) for the transformer families", kind="array")
def mel_stage(soundfont: str | None = None) -> ArrayStage:
    audio, mel = AudioParams(soundfont=soundfont), MelParams()
    return ArrayStage(name="mel", accessor="mel", key=partial(mel_key, audio=audio, mel=mel),
                      ensure=partial(_mel_ensure, audio=audio, mel=mel), load=load_mel)


@FEATURE_SETS.register("roll", description="piano roll from the MIDI (array stage, 4 x 88 pitches, uint8, the mel "
                                           "stage's frame rate): velocity-weighted onsets, sounding notes, sustain "
                                           "and soft pedal", kind="array")
def roll_stage() -> ArrayStage:
    roll = RollParams.like(AudioParams(), MelParams())
    return ArrayStage(name="roll", accessor="pianoroll", key=partial(roll_key, roll=roll),
                      ensure=partial(_roll_ensure, roll=roll), load=load_roll)


def _resolve(name: str):
    # ``file:PATH``: a features file of the user's own (features.external), resolved by name like a class path.
    from features.external import resolve_file_set

    return resolve_file_set(name)


FEATURE_SETS.set_resolver(_resolve)
