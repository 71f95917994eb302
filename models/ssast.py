"""Self-supervised AST pre-training: masked patch modelling (SSAST, Gong et al., AAAI 2022).

A share ``mask_ratio`` of each crop's patches is replaced by the encoder's
learned mask token (:meth:`models.ast.ASTEncoder.patch_tokens`); the encoder
then has two jobs on the masked positions only, with two small heads on its
output tokens:

* **generative**: reconstruct each masked patch's values
  (:meth:`~models.ast.ASTEncoder.patchify` of the normalised input); mean
  squared error;
* **discriminative**: pick each masked patch's true values among all the
  masked patches of the same crop (InfoNCE: a softmax over the dot products
  of the prediction with every candidate, cross-entropy on the true one).

The loss is ``disc + gen_weight * gen`` (SSAST weights the generative term by
10). Masks are drawn uniformly with exactly ``round(mask_ratio * n_patches)``
masked patches per crop. The input goes through the fine-tuning model's own
pooling, crop and normalisation (:mod:`models.training`), so a checkpoint
loads into the registered model it was made for (``ast_tiny``,
``ast_tiny_roll``...) and into the hybrid's AST branch.

Checkpoints live in the feature cache (stage ``ssast_ckpt``), one ``.npz`` entry
keyed by the corpus fingerprint and every setting (:func:`checkpoint_key`),
holding the encoder's weights, the input normalisation and a JSON manifest
(corpus summary: counts per source, transductive or not; settings; per-epoch
losses and seconds; torch version). ``benchmark pretrain`` with default
settings also writes ``ssast_ckpt/default-<input>.json`` naming its key: that is
the checkpoint ``init="default"`` (``ast_tiny_ssast``) loads.

This module imports torch.
"""

from __future__ import annotations

import json
import logging
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from benchmark.errors import ConfigError
from features.cache import Cache, make_key
from models.ast import ASTConfig, ASTEncoder
from models.checkpoints import (
    CHECKPOINT_STAGE,
    PARAM_PREFIX,
    default_pointer,
    read_checkpoint_arrays,
    resolve_checkpoint,
)
from models.registry import MODELS

__all__ = ["default_pointer", "resolve_checkpoint", "read_checkpoint", "load_pretrained", "save_checkpoint"]

logger = logging.getLogger(__name__)

VERSION = "1"
STAGE = CHECKPOINT_STAGE  # "ssast_ckpt": apart from the frozen-encoder embeddings (ssast_emb, ssast_roll_emb)
_PARAM = PARAM_PREFIX


def random_mask(batch: int, n_patches: int, ratio: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """Boolean masks (batch, n_patches) with exactly ``round(ratio * n_patches)`` True per row (at least 1).

    Raises
    ------
    ConfigError
        ``ratio`` outside (0, 1) or a mask that would hide every patch.
    """
    if not 0 < ratio < 1:
        raise ConfigError(f"mask_ratio={ratio} must be in (0, 1)")
    k = max(1, int(round(ratio * n_patches)))
    if k >= n_patches:
        raise ConfigError(f"mask_ratio={ratio} hides all {n_patches} patches; use a smaller ratio (--mask-ratio)")
    scores = torch.rand(batch, n_patches, generator=generator)
    idx = scores.argsort(dim=1)[:, :k]
    mask = torch.zeros(batch, n_patches, dtype=torch.bool)
    mask.scatter_(1, idx, True)
    return mask


class SSAST(nn.Module):
    """An AST encoder with the generative and discriminative heads of masked patch modelling.

    Parameters
    ----------
    cfg : ASTConfig
    gen_weight : float
        Weight of the generative (MSE) term.
    """

    def __init__(self, cfg: ASTConfig, gen_weight: float = 10.0) -> None:
        super().__init__()
        self.encoder = ASTEncoder(cfg)
        d = cfg.dim
        p = cfg.in_chans * cfg.patch[0] * cfg.patch[1]
        self.gen_head = nn.Sequential(nn.Linear(d, d), nn.GELU(), nn.Linear(d, p))
        self.disc_head = nn.Sequential(nn.Linear(d, d), nn.GELU(), nn.Linear(d, p))
        self.gen_weight = gen_weight

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> dict[str, torch.Tensor]:
        """Losses on one batch.

        Parameters
        ----------
        x : Tensor (B, C, F, T)
            Normalised input crops.
        mask : bool Tensor (B, N)
            Same number of True per row (see :func:`random_mask`).

        Returns
        -------
        dict
            ``loss``, ``gen`` (MSE), ``disc`` (InfoNCE), ``acc`` (share of masked patches
            whose own values score highest).
        """
        counts = mask.sum(dim=1)
        if counts.min() != counts.max() or int(counts[0]) == 0:
            raise ValueError("every row of the mask must hide the same, non-zero number of patches")
        k = int(counts[0])
        tokens = self.encoder.encode(self.encoder.patch_tokens(x, mask))[:, 1:]
        target = self.encoder.patchify(x)
        b, _, d = tokens.shape
        idx = mask.nonzero(as_tuple=False)[:, 1].reshape(b, k)
        tok = torch.gather(tokens, 1, idx[..., None].expand(b, k, d))
        tgt = torch.gather(target, 1, idx[..., None].expand(b, k, target.shape[-1]))
        gen = F.mse_loss(self.gen_head(tok), tgt)
        logits = torch.bmm(self.disc_head(tok), tgt.transpose(1, 2))  # (B, k, k): prediction i vs patch j
        labels = torch.arange(k, device=x.device).expand(b, k)
        disc = F.cross_entropy(logits.reshape(b * k, k), labels.reshape(-1))
        acc = (logits.argmax(dim=-1) == labels).float().mean()
        return {"loss": disc + self.gen_weight * gen, "gen": gen, "disc": disc, "acc": acc}


@dataclass(frozen=True)
class PretrainConfig:
    """Settings of one pre-training; every field is part of the checkpoint key.

    Attributes
    ----------
    input : {"mel", "roll"}
    model : str
        Registered model whose encoder (size, crop, pooling, patches) is pre-trained.
    mask_ratio : float
    epochs, batch_size : int
        One random crop of every corpus item per epoch.
    lr, weight_decay, warmup : float
        AdamW; linear warm-up over ``warmup`` of the steps, then cosine decay.
    gen_weight : float
    seed : int
    """

    input: str = "mel"
    model: str = "ast_tiny"
    mask_ratio: float = 0.4
    epochs: int = 60
    batch_size: int = 32
    lr: float = 1e-3
    weight_decay: float = 0.05
    warmup: float = 0.05
    gen_weight: float = 10.0
    seed: int = 0

    def check(self) -> None:
        """Refuse a setting of the wrong type or out of range (NaN and infinities included).

        Raises
        ------
        ConfigError
            One line naming the setting, its value, the range and the CLI option.
        """
        if self.input not in ("mel", "roll"):
            raise ConfigError(f"input={self.input!r}; use mel or roll")
        for name, (low, option) in _INT_RANGES.items():
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
                raise ConfigError(f"{name}={value!r} must be an integer >= {low} ({option}; default "
                                  f"{getattr(PretrainConfig, name)})")
        for name, (low, high, option) in _FLOAT_RANGES.items():
            value = getattr(self, name)
            ok = isinstance(value, (int, float, np.number)) and not isinstance(value, bool) and math.isfinite(value)
            if not ok or not _in_range(float(value), low, high):
                raise ConfigError(f"{name}={value!r} must be a finite number in {_range_text(low, high)} "
                                  f"({option}; default {getattr(PretrainConfig, name)})")


#: Integer settings: (smallest allowed, CLI option).
_INT_RANGES = {"epochs": (1, "--epochs"), "batch_size": (2, "--batch-size"), "seed": (0, "--seed")}
#: Float settings: ((low, inclusive), (high, inclusive) or None, CLI option or "Python API only").
_FLOAT_RANGES = {"lr": ((0.0, False), None, "--lr"), "mask_ratio": ((0.0, False), (1.0, False), "--mask-ratio"),
                 "weight_decay": ((0.0, True), None, "Python API"), "warmup": ((0.0, True), (1.0, True), "Python API"),
                 "gen_weight": ((0.0, True), None, "Python API")}


def _in_range(value: float, low, high) -> bool:
    (lo, lo_in), hi = low, high
    above = value >= lo if lo_in else value > lo
    return above and (hi is None or (value <= hi[0] if hi[1] else value < hi[0]))


def _range_text(low, high) -> str:
    (lo, lo_in) = low
    left = f"{'[' if lo_in else '('}{lo:g}"
    return f"{left}, {high[0]:g}{']' if high[1] else ')'}" if high else f"{left}, inf)"


def check_mask(pcfg: PretrainConfig, settings: dict) -> None:
    """Refuse a mask ratio that hides every patch of the encoder's crop (:func:`random_mask`'s rule).

    Raises
    ------
    ConfigError
    """
    n = ASTConfig(**{k: (tuple(v) if isinstance(v, list) else v) for k, v in settings["config"].items()}).n_patches
    random_mask(1, n, pcfg.mask_ratio)


def encoder_settings(model: str, kind: str) -> dict[str, Any]:
    """The registered ``model``'s encoder config and input pooling (what a checkpoint must match).

    Raises
    ------
    ConfigError
        The model is not an AST/hybrid on ``kind``.
    """

    est = MODELS.build(model)
    if not hasattr(est, "ast_config") or getattr(est, "input", None) != kind:
        raise ConfigError(f"model {model!r} is not a neural model on {kind!r} input; pass e.g. "
                          f"{'ast_tiny' if kind == 'mel' else 'ast_tiny_roll'}")
    return _settings_of(est)


def _settings_of(est) -> dict[str, Any]:
    cfg = est.ast_config()
    shape = {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(cfg).items() if k != "dropout"}
    return {"config": shape, "freq_pool": est._freq_pool(), "time_pool": int(est.time_pool), "crop": int(est.crop),
            "input": est.input}


def checkpoint_key(corpus_fingerprint: str, settings: dict, pcfg: PretrainConfig) -> str:
    """Cache key of a checkpoint: corpus fingerprint, encoder settings and pre-training settings."""
    return make_key(STAGE, VERSION, {"corpus": corpus_fingerprint, "encoder": settings,
                                     "pretrain": asdict(pcfg)}, [])


def pretrain_arrays(arrays: list[np.ndarray], settings: dict, pcfg: PretrainConfig, *,
                    device: torch.device | None = None, log_every: bool = True) -> tuple[SSAST, dict]:
    """Pre-train an encoder on pooled arrays.

    Parameters
    ----------
    arrays : list of ndarray (C, F, T)
        Pooled inputs (:func:`models.training.pool_mel` / ``pool_roll``), any length.
    settings : dict
        From :func:`encoder_settings`.
    pcfg : PretrainConfig

    Returns
    -------
    model : SSAST
    info : dict
        ``norm`` (mean, sd), ``history`` (per epoch: loss, gen, disc, acc, seconds), ``seconds``.
    """
    from models.training import crop, make_optimiser, optimiser_step

    pcfg.check()
    if len(arrays) < 2:
        raise ConfigError(f"the corpus holds {len(arrays)} usable item(s); pre-training needs at least 2")
    device = device or torch.device("cpu")
    cfg = ASTConfig(**{k: (tuple(v) if isinstance(v, list) else v) for k, v in settings["config"].items()})
    kind, n_frames = pcfg.input, settings["crop"]
    if kind == "mel":
        n = sum(a.size for a in arrays)
        mean = sum(float(a.sum(dtype=np.float64)) for a in arrays) / n
        sd = math.sqrt(sum(float(((a - mean) ** 2).sum(dtype=np.float64)) for a in arrays) / n) or 1.0
    else:
        mean, sd = 0.0, 1.0
    rng = np.random.default_rng(pcfg.seed)
    torch.manual_seed(pcfg.seed)
    gen = torch.Generator().manual_seed(pcfg.seed)
    model = SSAST(cfg, pcfg.gen_weight).to(device)
    steps = max(1, len(arrays) // pcfg.batch_size)
    opt, sched = make_optimiser(model, lr=pcfg.lr, weight_decay=pcfg.weight_decay, total_steps=steps * pcfg.epochs,
                                warmup=pcfg.warmup, min_warmup_steps=1)
    history = []
    t_start = time.perf_counter()
    for epoch in range(pcfg.epochs):
        t0 = time.perf_counter()
        model.train()
        order = rng.permutation(len(arrays))
        sums = {"loss": 0.0, "gen": 0.0, "disc": 0.0, "acc": 0.0}
        for b in range(steps):
            idx = order[b * pcfg.batch_size:(b + 1) * pcfg.batch_size]
            batch = np.stack([crop(arrays[i], n_frames, kind, rng) for i in idx]).astype(np.float32)
            x = torch.from_numpy((batch - mean) / sd).to(device)
            mask = random_mask(len(idx), cfg.n_patches, pcfg.mask_ratio, gen).to(device)
            out = model(x, mask)
            optimiser_step(model, out["loss"], opt, sched, clip=1.0)
            for k in sums:
                sums[k] += float(out[k].detach())
        row = {k: round(v / steps, 5) for k, v in sums.items()}
        row["seconds"] = round(time.perf_counter() - t0, 2)
        history.append(row)
        if log_every:
            logger.info("pretrain epoch %d/%d: %s", epoch + 1, pcfg.epochs, row)
    return model, {"norm": [mean, sd], "history": history, "seconds": round(time.perf_counter() - t_start, 1)}


# --- checkpoints -------------------------------------------------------------------
def save_checkpoint(cache: Cache, key: str, encoder: ASTEncoder, norm, manifest: dict) -> Path:
    """Store the encoder's weights, the input normalisation and the manifest under ``key``."""
    arrays = {_PARAM + k: v.detach().cpu().numpy() for k, v in encoder.state_dict().items()}
    arrays["norm"] = np.asarray(norm, dtype=np.float64)
    arrays["manifest"] = np.asarray(json.dumps(manifest, sort_keys=True, default=str))
    return cache.put(STAGE, key, arrays)


def read_checkpoint(path) -> tuple[dict[str, torch.Tensor], np.ndarray, dict]:
    """(encoder state dict, norm, manifest) of a checkpoint file (:func:`models.checkpoints.read_checkpoint_arrays`).

    Raises
    ------
    ConfigError
        The file is unreadable or fails its checksum.
    """
    weights, norm, manifest = read_checkpoint_arrays(path)
    return {k: torch.from_numpy(v) for k, v in weights.items()}, norm, manifest


def load_pretrained(net: nn.Module, init: str, est, cache_root=None) -> dict:
    """Load a checkpoint's encoder weights into ``net``'s encoder (an ASTNet, or a HybridNet's AST branch).

    Parameters
    ----------
    net : nn.Module
    init : str
        See :func:`resolve_checkpoint`.
    est : NeuralRegressor
        The model being fitted: its encoder config and pooling must equal the checkpoint's.

    Returns
    -------
    dict
        ``init_key``, the corpus summary and the pre-training settings (recorded with the fitted job), and
        ``init_norm``: the (mean, sd) input normalisation the encoder was pre-trained with, which fine-tuning
        keeps (the encoder's patch embedding learnt that input scale).

    Raises
    ------
    ConfigError
        No checkpoint, or one made for another encoder / input pooling.
    """
    path = resolve_checkpoint(init, est.input, cache_root)
    state, norm, manifest = read_checkpoint(path)
    mine = _settings_of(est)
    theirs = manifest["encoder"]
    diff = sorted(k for k in mine if k != "config" and mine[k] != theirs.get(k))
    diff += sorted(f"config.{k}" for k in mine["config"] if mine["config"][k] != theirs["config"].get(k))
    if diff:
        raise ConfigError(f"checkpoint {path.stem[:12]} was pre-trained for another encoder (differs in "
                          f"{', '.join(diff)}); pre-train with --model matching this one")
    encoder = net.encoder if hasattr(net, "encoder") else net.ast.encoder
    encoder.load_state_dict(state)
    return {"init_key": path.stem, "corpus": manifest["corpus"], "pretrain": manifest["pretrain"],
            "init_norm": [float(v) for v in np.asarray(norm).ravel()[:2]]}
