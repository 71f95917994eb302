"""Frozen SSAST encoders as tabular feature sets, and the cheap models that read them.

``ssast`` (log-mel) and ``ssast_roll`` (piano roll) embed every segment with
the default pre-trained encoder of that input (``benchmark pretrain --input
mel|roll``), frozen: the segment's pooled input is cut into the fine-tuning
model's test windows, each window is encoded without masking, and the mean
patch token and the CLS token (``dim`` values each) are averaged over the
windows. The embeddings are cached like any feature set (stages ``ssast_emb``
and ``ssast_roll_emb``, apart from the checkpoints' ``ssast_ckpt``), keyed by the
segment's MIDI, the SoundFont and the checkpoint file's bytes, so they are
computed once and any tabular model can use them (``--features ssast``);
``ridge_ssast`` and ``lgbm_ssast`` are registered. Nothing is fitted on
PercePiano's ratings before the folds: the encoder saw no label.

The feature sets are registered here, in :mod:`models`, because computing them
needs the encoder; :mod:`features` never imports :mod:`models`. Registering
and listing import no torch.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import partial
from typing import Any

import numpy as np

from features.cache import Cache
from features.roll import assemble
from features.sets import FEATURE_SETS, FeatureSet
from features.stages import (
    AudioParams,
    MelParams,
    RollParams,
    audio_inputs,
    audio_key_params,
    logmel_for,
    pianoroll_for,
)
from models.checkpoints import CHECKPOINT_STAGE, resolve_checkpoint
from models.classical import LGBMModel, RidgeModel
from models.registry import MODELS

VERSION = "1"
#: Cache stage of each embedding set: never the checkpoints' stage, so neither can overwrite or clear the other.
EMBEDDING_STAGES = {"ssast": "ssast_emb", "ssast_roll": "ssast_roll_emb"}
_ENCODERS: dict[str, Any] = {}


def _encoder(path: str):
    """The frozen encoder and settings of a checkpoint, loaded once per process."""
    if path not in _ENCODERS:
        import torch

        from models.ast import ASTConfig, ASTEncoder
        from models.ssast import read_checkpoint

        state, norm, manifest = read_checkpoint(path)
        enc = manifest["encoder"]
        cfg = ASTConfig(**{k: (tuple(v) if isinstance(v, list) else v) for k, v in enc["config"].items()},
                        dropout=0.0)
        model = ASTEncoder(cfg)
        model.load_state_dict(state)
        model.eval()
        torch.set_num_threads(1)
        _ENCODERS[path] = (model, (float(norm[0]), float(norm[1])), enc)
    return _ENCODERS[path]


def _inputs(row: Mapping[str, Any], checkpoint: str, audio: AudioParams, kind: str) -> list:
    # The log-mel's source: the item's recording, or its MIDI and SoundFont (audio_inputs); the roll's: its MIDI.
    return [*(audio_inputs(row, audio) if kind == "mel" else [row["midi_path"]]), checkpoint]


def _compute(row: Mapping[str, Any], cache: Cache, checkpoint: str, audio: AudioParams, kind: str) -> np.ndarray:
    import torch

    from models.training import pool_mel, pool_roll, windows

    model, norm, enc = _encoder(checkpoint)
    if kind == "mel":
        a = pool_mel(logmel_for(row, cache, audio, MelParams())[0], enc["freq_pool"], enc["time_pool"])
    else:

        a = pool_roll(assemble(pianoroll_for(row, cache, RollParams.like(audio, MelParams()))), enc["time_pool"])
    w = windows(a, enc["crop"], max(1, enc["crop"] // 2), kind).astype(np.float32)
    with torch.no_grad():
        tokens = model(torch.from_numpy((w - norm[0]) / norm[1]))
    vec = torch.cat([tokens[:, 1:].mean(dim=1), tokens[:, 0]], dim=1).mean(dim=0)
    return vec.numpy().astype(float)


def _feature_set(name: str, kind: str, cache_root: str | None, soundfont: str | None, init: str) -> FeatureSet:
    path = str(resolve_checkpoint(init, kind, cache_root))
    dim = _checkpoint_dim(path)
    names = [f"{name}_mean_{i:03d}" for i in range(dim)] + [f"{name}_cls_{i:03d}" for i in range(dim)]
    docs = {n: f"frozen SSAST encoder ({kind}): {'mean patch token' if '_mean_' in n else 'CLS token'} "
               f"channel {n[-3:]}, averaged over test windows" for n in names}
    audio = AudioParams(soundfont=soundfont)
    return FeatureSet(name=name, version=VERSION, feature_names=tuple(names), docs=docs,
                      compute=partial(_compute, checkpoint=path, audio=audio, kind=kind),
                      inputs=partial(_inputs, checkpoint=path, audio=audio, kind=kind),
                      params={"audio": audio.key_params(), "kind": kind}, stage=EMBEDDING_STAGES[name],
                      key_params=audio_key_params if kind == "mel" else None)


def _checkpoint_dim(path: str) -> int:
    import json

    with np.load(path, allow_pickle=False) as npz:
        return int(json.loads(str(npz["manifest"]))["encoder"]["config"]["dim"])


@FEATURE_SETS.register("ssast", description="frozen SSAST encoder on the log-mel (default 'benchmark pretrain' "
                                            "checkpoint): mean patch token + CLS, averaged over windows",
                       needs_cache=True, stages=(EMBEDDING_STAGES["ssast"], CHECKPOINT_STAGE), reads=("audio",))
def ssast_feature_set(cache_root: str | None = None, soundfont: str | None = None, init: str = "default"):
    return _feature_set("ssast", "mel", cache_root, soundfont, init)


@FEATURE_SETS.register("ssast_roll", description="frozen SSAST encoder on the piano roll (default 'benchmark "
                                                 "pretrain --input roll' checkpoint)", needs_cache=True,
                       stages=(EMBEDDING_STAGES["ssast_roll"], CHECKPOINT_STAGE), reads=("midi",))
def ssast_roll_feature_set(cache_root: str | None = None, soundfont: str | None = None, init: str = "default"):
    return _feature_set("ssast_roll", "roll", cache_root, soundfont, init)


MODELS.register("ridge_ssast", inputs=("ssast",), tags=("linear", "ssast"),
                description="ridge on the frozen SSAST embedding of the log-mel")(RidgeModel)
MODELS.register("lgbm_ssast", inputs=("ssast",), tags=("trees", "boosting", "ssast"),
                description="LightGBM on the frozen SSAST embedding of the log-mel")(LGBMModel)
