"""What a fitted neural model looked at: attention rollout and gradient x input (``benchmark explain``).

Model-side computations only (torch): the command that finds the job in a run
directory and draws the figure is :mod:`benchmark.explain`.

* **Attention rollout** (Abnar & Zuidema, ACL 2020): in every block the
  head-averaged attention plus the identity (the residual path), rows
  renormalised, multiplied from the first block to the last. The relevance of
  each patch is the row of the pooled output: the CLS row when the model pools
  CLS, else the mean of the patch rows (``pool="mean"``, the default). Each
  test window gives an ``(n_f, n_t)`` patch grid; the grids are spread back
  over the frames they cover and averaged where windows overlap.
* **Hybrid**: gradient x input of the (standardised) handcrafted features,
  averaged over the windows and over the 19 outputs, or for one output
  (``target``): which features that prediction leans on, with sign.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import torch

from models.training import windows

logger = logging.getLogger(__name__)


def rollout(maps: list[torch.Tensor], pool: str = "mean") -> torch.Tensor:
    """Attention rollout of one forward pass.

    Parameters
    ----------
    maps : list of Tensor (B, heads, 1 + N, 1 + N)
        Each block's attention (:meth:`models.ast.ASTEncoder.encode` with ``return_attention``).
    pool : {"mean", "cls"}
        How the model pools its tokens: the rollout is read from the matching rows.

    Returns
    -------
    Tensor (B, N)
        Relevance of each patch, summing to at most 1 (the CLS column is left out).
    """
    b, _, n, _ = maps[0].shape
    eye = torch.eye(n).expand(b, n, n)
    r = eye.clone()
    for a in maps:
        a = 0.5 * a.mean(dim=1) + 0.5 * eye
        a = a / a.sum(dim=-1, keepdim=True)
        r = a @ r
    rows = r[:, 0] if pool == "cls" else r[:, 1:].mean(dim=1)
    return rows[:, 1:]


def spread(weights: np.ndarray, cfg, n_frames_total: int, starts: list[int]) -> np.ndarray:
    """Window patch grids (W, n_f, n_t) -> a (bands, frames) map, averaged where windows overlap."""
    pf, pt = cfg.patch
    sf, st = cfg.stride
    acc = np.zeros((cfg.n_bands, max(n_frames_total, cfg.n_frames)))
    cover = np.zeros_like(acc)
    n_f, n_t = cfg.grid
    for w, s in zip(weights, starts, strict=True):
        for i in range(n_f):
            for j in range(n_t):
                acc[i * sf:i * sf + pf, s + j * st:s + j * st + pt] += w[i, j]
                cover[i * sf:i * sf + pf, s + j * st:s + j * st + pt] += 1
    return np.divide(acc, cover, out=np.zeros_like(acc), where=cover > 0)[:, :max(n_frames_total, 1)]


def window_starts(total: int, n_frames: int, hop: int) -> list[int]:
    if total <= n_frames:
        return [0]
    starts = list(range(0, total - n_frames + 1, hop))
    if starts[-1] != total - n_frames:
        starts.append(total - n_frames)
    return starts


def explain_input(est, X, target: int | None = None) -> dict[str, Any]:
    """Rollout (and hybrid attributions) of a fitted neural model on the first segment of ``X``.

    Parameters
    ----------
    est : NeuralRegressor
        Fitted (or restored with ``load_state``).
    X : SegmentInputs
        At least one segment; the first is explained.
    target : int, optional
        The output (rating) whose gradient x input the hybrid's features get; default: the mean of all outputs.

    Returns
    -------
    dict
        ``input`` (pooled array (C, F, T)), ``grid`` (n_f, n_t), ``rollout`` (W, n_f, n_t) per window,
        ``map`` (F, T) spread over the input, ``features`` [(name, attribution)] sorted by |value|
        (hybrid only), ``prediction`` (n_targets,).
    """
    net = est.net_.cpu().eval()
    cfg = est.ast_config()
    a = est._load(X[[0]])[0]
    hop = max(1, int(est.crop) // 2)
    w = windows(a, int(est.crop), hop, est.input).astype(np.float32)
    x = torch.from_numpy((w - est.norm_[0]) / est.norm_[1])
    encoder = net.encoder if hasattr(net, "encoder") else net.ast.encoder
    with torch.no_grad():
        _, maps = encoder.encode(encoder.patch_tokens(x), return_attention=True)
    rel = rollout(maps, est.pool).reshape(len(w), *cfg.grid).numpy()
    out: dict[str, Any] = {"input": a, "grid": cfg.grid, "rollout": rel,
                           "map": spread(rel, cfg, a.shape[-1], window_starts(a.shape[-1], int(est.crop), hop))}
    table = est._table(X[[0]])
    tb = None
    if table is not None:
        tb = torch.from_numpy(np.repeat(table.astype(np.float32), len(w), axis=0)).requires_grad_(True)
        pred = net(x, tb)
        (pred.mean(dim=1) if target is None else pred[:, int(target)]).sum().backward()
        attr = (tb.grad * tb).mean(dim=0).detach().numpy()
        names = list(X.columns)
        order = np.argsort(-np.abs(attr))
        out["features"] = [(names[i], float(attr[i])) for i in order]
        out["prediction"] = pred.detach().mean(dim=0).numpy() * est.y_sd_ + est.y_mean_
    else:
        with torch.no_grad():
            out["prediction"] = net(x, None).mean(dim=0).numpy() * est.y_sd_ + est.y_mean_
    return out
