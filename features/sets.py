"""Registry of feature sets: what each model family consumes.

A feature set turns one dataset row (a segment) into a fixed-length vector of
named features. Its definition names the cache stage, the extractor version and
parameters, and which files are the row's inputs, so the builder can key the
cache by content. Extractors are imported inside the functions, so listing
feature sets never imports librosa or torch.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from benchmark.registry import Registry

FEATURE_SETS = Registry("feature set")


@dataclass(frozen=True)
class FeatureSet:
    """How to compute, name and cache one tabular feature set.

    Attributes
    ----------
    name : str
        Registry name (``midi``, ``audio``...), also the cache stage.
    version : str
        Extractor version; part of the cache key.
    feature_names : tuple of str
    docs : mapping
        Feature name -> one-line documentation.
    compute : callable
        ``compute(row, **params) -> ndarray (n_features,)``; raises DataError on bad input.
    inputs : callable
        ``inputs(row, **params) -> list of paths`` whose bytes key the cache entry.
    params : mapping
        Parameters passed to ``compute`` and ``inputs``; part of the cache key.
    """

    name: str
    version: str
    feature_names: tuple[str, ...]
    docs: Mapping[str, str]
    compute: Callable[..., np.ndarray]
    inputs: Callable[..., list]
    params: Mapping[str, Any] = field(default_factory=dict)


def _midi_inputs(row: Mapping[str, Any]) -> list:
    return [row["midi_path"]]


def _midi_compute(row: Mapping[str, Any]) -> np.ndarray:
    from features import midi

    values = midi.extract(row["midi_path"])
    return np.array([values[k] for k in midi.FEATURES], dtype=float)


@FEATURE_SETS.register("midi", description="handcrafted symbolic features of the performance MIDI")
def midi_feature_set() -> FeatureSet:
    from features import midi

    return FeatureSet(
        name="midi",
        version=midi.VERSION,
        feature_names=tuple(midi.FEATURES),
        docs=dict(midi.FEATURES),
        compute=_midi_compute,
        inputs=_midi_inputs,
    )
