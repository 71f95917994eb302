"""``benchmark explain RUN_DIR SEGMENT_ID``: what a fitted neural model looked at.

Nothing is refitted: the run store keeps every neural job's fitted weights
(``jobs/<job>.state.npz``). For the segment asked about, the job whose test
fold held it out is found in ``folds.parquet`` (so the model never saw its
ratings), the model is rebuilt from the job's parameters and weights, and the
segment's input is read through the same cache and input view as in the run.

* **Attention rollout** (Abnar & Zuidema, ACL 2020): in every block the
  head-averaged attention plus the identity (the residual path), rows
  renormalised, multiplied from the first block to the last. The relevance of
  each patch is the row of the pooled output: the CLS row when the model pools
  CLS, else the mean of the patch rows (``pool="mean"``, the default). Each
  test window gives an ``(n_f, n_t)`` patch grid; the grids are spread back
  over the frames they cover and averaged where windows overlap.
* **Hybrid**: gradient x input of the (standardised) handcrafted features,
  averaged over the 19 outputs and the windows: which features the
  prediction leans on, with sign.

The figure (PNG): the pooled spectrogram or piano roll (the sounding-notes
channel) with the rollout over it, and for the hybrid the features with the
largest attributions.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch

from benchmark.errors import ConfigError

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


def _spread(weights: np.ndarray, cfg, n_frames_total: int, starts: list[int]) -> np.ndarray:
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


def _window_starts(total: int, n_frames: int, hop: int) -> list[int]:
    if total <= n_frames:
        return [0]
    starts = list(range(0, total - n_frames + 1, hop))
    if starts[-1] != total - n_frames:
        starts.append(total - n_frames)
    return starts


def explain_input(est, X) -> dict[str, Any]:
    """Rollout (and hybrid attributions) of a fitted neural model on the first segment of ``X``.

    Parameters
    ----------
    est : NeuralRegressor
        Fitted (or restored with ``load_state``).
    X : SegmentInputs
        At least one segment; the first is explained.

    Returns
    -------
    dict
        ``input`` (pooled array (C, F, T)), ``grid`` (n_f, n_t), ``rollout`` (W, n_f, n_t) per window,
        ``map`` (F, T) spread over the input, ``features`` [(name, attribution)] sorted by |value|
        (hybrid only), ``prediction`` (n_targets,).
    """
    from models.training import windows

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
                           "map": _spread(rel, cfg, a.shape[-1], _window_starts(a.shape[-1], int(est.crop), hop))}
    table = est._table(X[[0]])
    tb = None
    if table is not None:
        tb = torch.from_numpy(np.repeat(table.astype(np.float32), len(w), axis=0)).requires_grad_(True)
        pred = net(x, tb)
        pred.mean(dim=1).sum().backward()
        attr = (tb.grad * tb).mean(dim=0).detach().numpy()
        names = list(X.columns)
        order = np.argsort(-np.abs(attr))
        out["features"] = [(names[i], float(attr[i])) for i in order]
        out["prediction"] = pred.detach().mean(dim=0).numpy() * est.y_sd_ + est.y_mean_
    else:
        with torch.no_grad():
            out["prediction"] = net(x, None).mean(dim=0).numpy() * est.y_sd_ + est.y_mean_
    return out


def plot(result: dict, path: Path, title: str, top: int = 15) -> Path:
    """Write the rollout figure (and the hybrid's top features) as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    a = result["input"]
    img = a[0] if a.shape[0] == 1 else a[1]  # log-mel, or the roll's sounding-notes channel
    feats = result.get("features")
    fig, axes = plt.subplots(2 if feats else 1, 1, figsize=(10, 7 if feats else 3.8), squeeze=False)
    ax = axes[0, 0]
    ax.imshow(img, origin="lower", aspect="auto", cmap="gray_r" if a.shape[0] > 1 else "magma")
    m = result["map"]
    ax.imshow(m / (m.max() or 1.0), origin="lower", aspect="auto", cmap="viridis", alpha=0.45,
              extent=(-0.5, m.shape[1] - 0.5, -0.5, m.shape[0] - 0.5))
    ax.set_xlabel("pooled frame")
    ax.set_ylabel("mel band" if a.shape[0] == 1 else "pitch (A0 = 0)")
    ax.set_title(title, fontsize=9)
    if feats:
        names, vals = zip(*feats[:top], strict=True)
        bx = axes[1, 0]
        bx.barh(range(len(vals))[::-1], vals, color=["tab:red" if v < 0 else "tab:blue" for v in vals])
        bx.set_yticks(range(len(vals))[::-1], names, fontsize=7)
        bx.set_xlabel("gradient x input (mean over targets)")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def explain_segment(run_dir, segment_id: str, *, model: str | None = None, seed: int | None = None,
                    output=None, top: int = 15) -> dict[str, Any]:
    """``benchmark explain``: rollout PNG of the job that held ``segment_id`` out.

    Raises
    ------
    ConfigError
        No neural model in the run, an unknown segment, or a job without stored weights.
    """
    from benchmark.dataset import load_dataset
    from benchmark.jobs import resolve_model
    from benchmark.runner import load_config
    from benchmark.store import JobKey, RunStore
    from features.build import build_features
    from features.cache import Cache, resolve_cache_dir
    from models.registry import MODELS

    store = RunStore(run_dir)
    manifest = store.read_manifest()
    cfg = load_config(run_dir)
    neural = [m for m in cfg.models if "neural" in MODELS.get(resolve_model(m, cfg.variants).base).tags]
    if not neural:
        raise ConfigError(f"run {Path(run_dir).name!r} has no neural model to explain (models: "
                          f"{', '.join(cfg.models)})")
    model = model or neural[0]
    if model not in neural:
        raise ConfigError(f"--model {model!r} is not a neural model of this run; use one of {', '.join(neural)}")
    seed = cfg.seeds[0] if seed is None else seed
    folds = store.read_folds().frame
    hit = folds[(folds["sample_id"] == segment_id) & (folds["seed"] == seed) & (folds["role"] == "test")]
    if hit.empty:
        import difflib

        close = difflib.get_close_matches(segment_id, folds["sample_id"].unique().tolist(), n=3)
        raise ConfigError(f"segment {segment_id!r} is in no test fold of seed {seed} of this run"
                          + (f"; did you mean {', '.join(close)}?" if close else ""))
    fold = int(hit["fold"].iloc[0])
    key = JobKey(model, seed, fold)
    params = store.read_job_params(key)
    if params is None:
        raise ConfigError(f"job {key.name} has not finished; finish the run with 'benchmark run --resume'")
    est = MODELS.build(params["base"], **params["params"])
    est.load_state(store.read_state(key))
    ds = load_dataset(manifest["data_dir"], include_score=cfg.include_score)
    meta = ds.meta[ds.meta["sample_id"] == segment_id]
    cache = Cache(resolve_cache_dir(cfg.cache_dir))
    names = cfg.feature_sets(model)
    fm = build_features(meta, names, cache, progress=False, soundfont=cfg.soundfont)
    X = fm.inputs(meta["sample_id"].to_numpy(), names, str(cache.root.resolve()))
    result = explain_input(est, X)
    out = Path(output) if output else Path(run_dir) / "explain" / f"{model}__{segment_id}.png"
    plot(result, out, f"{model} (seed {seed}, fold {fold}) on {segment_id}: attention rollout", top)
    return {"model": model, "seed": seed, "fold": fold, "segment_id": segment_id, "grid": result["grid"],
            "input": est.input, "png": str(out), "features": result.get("features", []),
            "rollout": result["rollout"]}
