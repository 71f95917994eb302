"""Training of the neural families, made for ~1000 labelled segments on a CPU.

The recipe (one function, :func:`train`):

* targets standardised with the mean and sd of the samples being fitted
  (the training fold minus its validation part); predictions are mapped back;
* AdamW, linear warm-up then cosine decay of the learning rate per step,
  dropout (in the networks), gradient-norm clipping;
* early stopping on the validation part's mean Pearson r over the targets,
  restoring the best epoch's weights at the end;
* losses ``mse``, ``pearson`` (1 - mean per-target Pearson r over the batch,
  differentiable) or ``mse+pearson`` (``loss_weight`` * mse + (1 - weight) *
  pearson);
* augmentation on the fly: a random crop every time a segment is drawn, then
  SpecAugment (time and frequency masks, Park et al. 2019) on the log-mel, or
  a small tempo stretch, velocity jitter and a transposition of a semitone or
  two on the piano roll;
* test-time averaging: every segment is cut into windows
  (:func:`features.mel.sliding_windows`, half-overlapping) and the model's
  predictions are averaged over them.

Inputs are pooled when loaded (``freq_pool`` bands and ``time_pool`` frames
averaged into one; the onset channel of a roll keeps the maximum), which is
what makes a fold train in about a minute on one CPU thread. Everything random
comes from one seed: ``torch.manual_seed`` and a numpy Generator; on a CPU two
fits with the same seed and thread count give the same weights.

This module imports torch; only :mod:`models` imports it, inside ``fit``.
"""

from __future__ import annotations

import copy
import hashlib
import logging
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from benchmark.errors import ConfigError
from features.mel import DB_FLOOR, fit_length, sliding_windows

logger = logging.getLogger(__name__)

LOSSES = ("mse", "pearson", "mse+pearson")
DEVICES = ("auto", "cpu", "cuda")


# --- runtime -------------------------------------------------------------------
def resolve_device(device: str) -> torch.device:
    """``auto`` -> cuda when torch sees a GPU, else cpu.

    Raises
    ------
    ConfigError
        Unknown name, or ``cuda`` asked for without a GPU.
    """
    if device not in DEVICES:
        raise ConfigError(f"device={device!r}; use one of {', '.join(DEVICES)}")
    if device == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device='cuda' but torch sees no GPU (a CPU build of torch, or no driver); "
                          "use --device cpu or auto")
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(device)


def set_threads() -> int:
    """Use the threads the runner gave this worker (``OMP_NUM_THREADS``), so ``--jobs`` never oversubscribes."""
    n = os.environ.get("OMP_NUM_THREADS")
    if n and n.isdigit() and int(n) > 0 and torch.get_num_threads() != int(n):
        torch.set_num_threads(int(n))
    return torch.get_num_threads()


def provenance(device: str) -> dict:
    """What the manifest records about torch: version, the device ``device`` resolves to, threads."""
    out = {"torch": torch.__version__, "device_requested": device,
           "cuda_available": bool(torch.cuda.is_available())}
    try:
        dev = resolve_device(device)
        out["device"] = dev.type
        if dev.type == "cuda":
            out["gpu"] = torch.cuda.get_device_name(dev)
    except ConfigError as exc:
        out["device"] = f"unavailable: {exc}"
    return out


def seed_everything(seed: int) -> None:
    """Seed torch's generators (initial weights, dropout); numpy randomness uses its own Generator."""
    torch.manual_seed(seed)


def weights_digest(net: torch.nn.Module) -> str:
    """sha256 of every parameter and buffer, in order (tests compare fitted weights through it)."""
    h = hashlib.sha256()
    for name, t in net.state_dict().items():
        h.update(name.encode())
        h.update(t.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


# --- losses ----------------------------------------------------------------------
def pearson_r(pred: torch.Tensor, target: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Per-column Pearson correlation of (n, t) tensors, shape (t,); differentiable."""
    pc = pred - pred.mean(dim=0, keepdim=True)
    tc = target - target.mean(dim=0, keepdim=True)
    num = (pc * tc).sum(dim=0)
    den = torch.sqrt((pc * pc).sum(dim=0) * (tc * tc).sum(dim=0) + eps)
    return num / den


def make_loss(name: str, weight: float = 0.5) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """The training loss ``name`` (see :data:`LOSSES`).

    Raises
    ------
    ConfigError
        Unknown name or a weight outside [0, 1].
    """
    if name not in LOSSES:
        raise ConfigError(f"loss={name!r}; use one of {', '.join(LOSSES)}")
    if not 0 <= weight <= 1:
        raise ConfigError(f"loss_weight={weight} must be in [0, 1]")

    def mse(p, t):
        return torch.mean((p - t) ** 2)

    def pearson(p, t):
        return 1.0 - pearson_r(p, t).mean()

    if name == "mse":
        return mse
    if name == "pearson":
        return pearson
    return lambda p, t: weight * mse(p, t) + (1 - weight) * pearson(p, t)


def mean_pearson(pred: np.ndarray, target: np.ndarray) -> float:
    """Mean over targets of Pearson r (a constant column counts as r = 0)."""
    pc = pred - pred.mean(axis=0)
    tc = target - target.mean(axis=0)
    den = np.sqrt((pc ** 2).sum(axis=0) * (tc ** 2).sum(axis=0))
    r = np.divide((pc * tc).sum(axis=0), den, out=np.zeros(pred.shape[1]), where=den > 0)
    return float(r.mean())


# --- inputs ----------------------------------------------------------------------
def _pool_time(a: np.ndarray, k: int, how: str) -> np.ndarray:
    """Pool the last axis by ``k`` (mean or max); a remainder shorter than ``k`` is dropped."""
    if k == 1:
        return a
    t = a.shape[-1]
    if t < k:
        return a.mean(axis=-1, keepdims=True) if how == "mean" else a.max(axis=-1, keepdims=True)
    a = a[..., : t - t % k].reshape(*a.shape[:-1], t // k, k)
    return a.mean(axis=-1) if how == "mean" else a.max(axis=-1)


def pool_mel(mel: np.ndarray, freq_pool: int, time_pool: int) -> np.ndarray:
    """float16 (n_mels, T) dB -> float32 (1, n_mels / freq_pool, T / time_pool), means of dB values."""
    m = mel.astype(np.float32)
    if freq_pool > 1:
        m = m[: m.shape[0] - m.shape[0] % freq_pool].reshape(-1, freq_pool, m.shape[1]).mean(axis=1)
    return _pool_time(m, time_pool, "mean")[None]


def pool_roll(roll: np.ndarray, time_pool: int) -> np.ndarray:
    """uint8 (4, 88, T) -> float32 (4, 88, T / time_pool) in [0, 1]: onsets max-pooled, the rest averaged."""
    r = roll.astype(np.float32)
    r[0] /= 127.0
    r[2:] /= 127.0
    return np.concatenate([_pool_time(r[:1], time_pool, "max"), _pool_time(r[1:], time_pool, "mean")], axis=0)


def load_inputs(X, kind: str, freq_pool: int, time_pool: int) -> list[np.ndarray]:
    """Every segment's pooled array from the input view ``X`` (read from the cache, once per fit)."""
    if kind == "mel":
        return [pool_mel(X.mel(i), freq_pool, time_pool) for i in range(len(X))]
    return [pool_roll(X.pianoroll(i), time_pool) for i in range(len(X))]


# --- augmentation -----------------------------------------------------------------
@dataclass(frozen=True)
class Augment:
    """On-the-fly augmentation of one pooled training array (C, F, T).

    Attributes
    ----------
    kind : {"mel", "roll"}
    time_masks, freq_masks : int
        SpecAugment masks per crop (mel), each up to ``max_time`` frames /
        ``max_freq`` bands wide, filled with the crop's mean.
    tempo : float
        Roll: time stretched by a factor drawn from [1 - tempo, 1 + tempo].
    velocity : float
        Roll: onset velocities scaled by a factor from [1 - velocity, 1 + velocity].
    transpose : int
        Roll: shifted by up to this many semitones either way (empty rows enter).
    """

    kind: str
    time_masks: int = 2
    freq_masks: int = 2
    max_time: int = 12
    max_freq: int = 8
    tempo: float = 0.1
    velocity: float = 0.15
    transpose: int = 2

    def before_crop(self, a: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        if self.kind != "roll" or self.tempo <= 0:
            return a
        s = rng.uniform(1 - self.tempo, 1 + self.tempo)
        n = max(1, int(round(a.shape[-1] * s)))
        idx = np.minimum((np.arange(n) / s).astype(np.int64), a.shape[-1] - 1)
        return a[..., idx]

    def after_crop(self, a: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        a = a.copy()
        if self.kind == "mel":
            fill = float(a.mean())
            for _ in range(self.time_masks):
                w = int(rng.integers(0, self.max_time + 1))
                t0 = int(rng.integers(0, max(1, a.shape[-1] - w + 1)))
                a[..., t0:t0 + w] = fill
            for _ in range(self.freq_masks):
                w = int(rng.integers(0, self.max_freq + 1))
                f0 = int(rng.integers(0, max(1, a.shape[-2] - w + 1)))
                a[..., f0:f0 + w, :] = fill
            return a
        if self.velocity > 0:
            a[0] = np.clip(a[0] * rng.uniform(1 - self.velocity, 1 + self.velocity), 0.0, 1.0)
        k = int(rng.integers(-self.transpose, self.transpose + 1)) if self.transpose > 0 else 0
        if k:
            a[:2] = np.roll(a[:2], k, axis=1)
            if k > 0:
                a[:2, :k] = 0.0
            else:
                a[:2, k:] = 0.0
        return a


def pad_value(kind: str) -> float:
    """Padding of a short segment: silence (DB_FLOOR) for the log-mel, nothing (0) for the roll."""
    return DB_FLOOR if kind == "mel" else 0.0


def crop(a: np.ndarray, n_frames: int, kind: str, rng: np.random.Generator | None) -> np.ndarray:
    """Random crop (``rng`` given) or centre crop of (C, F, T) to ``n_frames``; short inputs padded at the end."""
    c, f, _ = a.shape
    out = fit_length(a.reshape(c * f, -1), n_frames, mode="train" if rng is not None else "test", rng=rng,
                     pad_value=pad_value(kind))
    return out.reshape(c, f, n_frames)


def windows(a: np.ndarray, n_frames: int, hop: int, kind: str) -> np.ndarray:
    """Test-time windows of (C, F, T): (n_windows, C, F, n_frames) (see :func:`features.mel.sliding_windows`)."""
    c, f, _ = a.shape
    w = sliding_windows(a.reshape(c * f, -1), n_frames, hop, pad_value=pad_value(kind))
    return w.reshape(len(w), c, f, n_frames)


# --- training ---------------------------------------------------------------------
@dataclass(frozen=True)
class TrainConfig:
    """Optimisation settings (every field is a model parameter of the same name)."""

    epochs: int = 24
    batch_size: int = 32
    lr: float = 1e-3
    weight_decay: float = 0.05
    warmup: float = 0.1
    clip: float = 1.0
    patience: int = 6
    loss: str = "mse+pearson"
    loss_weight: float = 0.5
    crop: int = 128
    hop: int = 64
    eval_batch: int = 128

    def check(self) -> None:
        if self.epochs < 1 or self.batch_size < 2 or self.crop < 1 or self.hop < 1 or self.patience < 1:
            raise ConfigError(f"{self}: epochs, patience, crop and hop must be >= 1 and batch_size >= 2")
        if not 0 <= self.warmup < 1:
            raise ConfigError(f"warmup={self.warmup} must be a fraction of training in [0, 1)")
        make_loss(self.loss, self.loss_weight)


@dataclass
class Data:
    """A set of segments as the network sees them: pooled arrays, optional table, optional targets."""

    arrays: list[np.ndarray]
    table: np.ndarray | None = None
    y: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.arrays)


def _lr_lambda(total: int, warmup: float, min_warmup_steps: int = 0) -> Callable[[int], float]:
    n_warm = max(min_warmup_steps, int(round(warmup * total)))

    def f(step: int) -> float:
        if step < n_warm:
            return (step + 1) / n_warm
        progress = (step - n_warm) / max(1, total - n_warm)
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))

    return f


def make_optimiser(net: torch.nn.Module, *, lr: float, weight_decay: float, total_steps: int, warmup: float,
                   min_warmup_steps: int = 0) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LambdaLR]:
    """AdamW (no weight decay on biases, norms and positional embeddings) and its per-step schedule:
    linear warm-up over ``warmup`` of ``total_steps`` (at least ``min_warmup_steps``), then cosine decay."""
    decay = [p for n, p in net.named_parameters() if p.ndim > 1 and "pos_embed" not in n]
    no_decay = [p for n, p in net.named_parameters() if not (p.ndim > 1 and "pos_embed" not in n)]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": weight_decay},
                             {"params": no_decay, "weight_decay": 0.0}], lr=lr)
    return opt, torch.optim.lr_scheduler.LambdaLR(opt, _lr_lambda(total_steps, warmup, min_warmup_steps))


def optimiser_step(net: torch.nn.Module, loss: torch.Tensor, opt: torch.optim.Optimizer, sched, clip: float) -> None:
    """One step: gradients of ``loss``, clipped to norm ``clip`` (0: no clipping), then optimiser and schedule."""
    opt.zero_grad(set_to_none=True)
    loss.backward()
    if clip > 0:
        torch.nn.utils.clip_grad_norm_(net.parameters(), clip)
    opt.step()
    sched.step()


def _normalise(x: np.ndarray, norm: tuple[float, float]) -> np.ndarray:
    return (x - norm[0]) / norm[1]


def predict(net: torch.nn.Module, data: Data, cfg: TrainConfig, kind: str, norm: tuple[float, float],
            device: torch.device, hop: int | None = None) -> np.ndarray:
    """Window-averaged network outputs for every segment of ``data``, (n, n_targets), in model units.

    ``hop`` (default ``cfg.hop``) spaces the windows; validation during
    training uses ``cfg.crop`` (non-overlapping windows, every frame still seen) to save time.
    """
    net.eval()
    wins, owner = [], []
    for i, a in enumerate(data.arrays):
        w = windows(a, cfg.crop, hop or cfg.hop, kind)
        wins.append(w)
        owner += [i] * len(w)
    allw = np.concatenate(wins).astype(np.float32)
    owner = np.asarray(owner)
    outs = []
    with torch.no_grad():
        for s in range(0, len(allw), cfg.eval_batch):
            xb = torch.from_numpy(_normalise(allw[s:s + cfg.eval_batch], norm)).to(device)
            tb = None
            if data.table is not None:
                tb = torch.from_numpy(data.table[owner[s:s + cfg.eval_batch]].astype(np.float32)).to(device)
            outs.append(net(xb, tb).float().cpu().numpy())
    out = np.concatenate(outs)
    pred = np.zeros((len(data), out.shape[1]))
    np.add.at(pred, owner, out)
    return pred / np.bincount(owner, minlength=len(data))[:, None]


def train(net: torch.nn.Module, fit: Data, val: Data, cfg: TrainConfig, *, kind: str, augment: Augment | None,
          norm: tuple[float, float], seed: int, device: torch.device) -> dict:
    """Train ``net`` in place on ``fit`` (standardised targets), early-stopping on ``val``.

    Parameters
    ----------
    net : torch module
        ``net(x, table)`` -> (B, n_targets).
    fit, val : Data
        Pooled arrays and standardised targets (and tables, for the hybrid).
    cfg : TrainConfig
    kind : {"mel", "roll"}
    augment : Augment or None
    norm : (mean, sd)
        Input normalisation (from the fitted samples).
    seed : int
    device : torch.device

    Returns
    -------
    dict
        ``best_epoch`` (0-based), ``epochs_run``, ``best_val_r``, ``seconds_per_epoch``,
        ``history`` (val r per epoch), ``train_loss`` (mean training loss per epoch),
        ``hit_epoch_cap`` (stopped by ``cfg.epochs``, not by patience). The best
        epoch's weights are loaded. Every epoch logs one INFO line (:func:`log_epoch`).
    """
    cfg.check()
    rng = np.random.default_rng(seed)
    seed_everything(seed)
    net.to(device)
    loss_fn = make_loss(cfg.loss, cfg.loss_weight)
    steps = max(1, len(fit) // cfg.batch_size)
    opt, sched = make_optimiser(net, lr=cfg.lr, weight_decay=cfg.weight_decay, total_steps=steps * cfg.epochs,
                                warmup=cfg.warmup)
    y_fit = fit.y.astype(np.float32)
    best = (-np.inf, 0, copy.deepcopy(net.state_dict()))
    history: list[float] = []
    losses: list[float] = []
    t0 = time.perf_counter()
    for epoch in range(cfg.epochs):
        net.train()
        order = rng.permutation(len(fit))
        loss_sum = 0.0
        for b in range(steps):
            idx = order[b * cfg.batch_size:(b + 1) * cfg.batch_size]
            batch = []
            for i in idx:
                a = fit.arrays[i]
                if augment is not None:
                    a = augment.before_crop(a, rng)
                a = crop(a, cfg.crop, kind, rng)
                if augment is not None:
                    a = augment.after_crop(a, rng)
                batch.append(a)
            xb = torch.from_numpy(_normalise(np.stack(batch).astype(np.float32), norm)).to(device)
            tb = None if fit.table is None else torch.from_numpy(fit.table[idx].astype(np.float32)).to(device)
            loss = loss_fn(net(xb, tb), torch.from_numpy(y_fit[idx]).to(device))
            optimiser_step(net, loss, opt, sched, cfg.clip)
            loss_sum += float(loss.detach())
        r = mean_pearson(predict(net, val, cfg, kind, norm, device, hop=cfg.crop), val.y)
        history.append(r)
        losses.append(loss_sum / steps)
        if r > best[0]:
            best = (r, epoch, copy.deepcopy(net.state_dict()))
        log_epoch(epoch, cfg.epochs, losses[-1], r, best[0], best[1], time.perf_counter() - t0)
        if epoch - best[1] >= cfg.patience:
            break
    net.load_state_dict(best[2])
    epochs_run = len(history)
    hit_cap = hit_epoch_cap(epochs_run, cfg.epochs, best[1], cfg.patience)
    logger.info("%s; best val r %.4f at epoch %d, weights of that epoch kept",
                stop_reason(epochs_run, cfg.epochs, best[1], cfg.patience), best[0], best[1] + 1)
    return {"best_epoch": best[1], "epochs_run": epochs_run, "best_val_r": float(best[0]),
            "seconds_per_epoch": (time.perf_counter() - t0) / epochs_run, "history": [round(h, 4) for h in history],
            "train_loss": [round(x, 4) for x in losses], "hit_epoch_cap": hit_cap}


def log_epoch(epoch: int, epochs: int, loss: float, r: float, best_r: float, best_epoch: int,
              elapsed: float) -> None:
    """One INFO line per epoch (``benchmark -v run`` shows it): the only sign of life of a long neural fit."""
    logger.info("epoch %d/%d: train loss %.4f, val r %.4f, best %.4f (epoch %d), %.1f s", epoch + 1, epochs, loss,
                r, best_r, best_epoch + 1, elapsed)


def hit_epoch_cap(epochs_run: int, epochs: int, best_epoch: int, patience: int) -> bool:
    """Whether training ran out of epochs rather than patience (``best_epoch`` 0-based)."""
    return epochs_run == epochs and epochs_run - 1 - best_epoch < patience


def stop_reason(epochs_run: int, epochs: int, best_epoch: int, patience: int) -> str:
    """Why training ended, in words (epochs counted from 1; ``best_epoch`` 0-based).

    Early stopping, or the epoch cap; at the cap, how many epochs before it the best one was
    (0: validation r was still rising, so a larger ``epochs`` may help).
    """
    if not hit_epoch_cap(epochs_run, epochs, best_epoch, patience):
        return f"stopped early after epoch {epochs_run} (no gain for {patience} epochs)"
    if best_epoch == epochs - 1:
        return f"hit the epoch cap {epochs} (val r still rising at the last epoch)"
    return f"hit the epoch cap {epochs} (best {epochs_run - 1 - best_epoch} epoch(s) before it)"
