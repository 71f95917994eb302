"""Attention rollout and the explain figure."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from models.ast import ASTConfig, ASTEncoder  # noqa: E402
from models.explain import _spread, plot, rollout  # noqa: E402


def test_rollout_of_self_attention_is_uniform_over_patches():
    n = 1 + 6
    maps = [torch.eye(n).expand(2, 3, n, n).clone() for _ in range(4)]
    rel = rollout(maps, "mean")
    assert rel.shape == (2, 6)
    torch.testing.assert_close(rel, torch.full((2, 6), 1 / 6))
    torch.testing.assert_close(rollout(maps, "cls"), torch.zeros(2, 6))  # CLS attends to itself only


def test_rollout_follows_attention_to_one_patch():
    n = 1 + 4
    a = torch.zeros(1, 2, n, n)
    a[..., 3] = 1.0  # every token attends to patch 2 (token 3)
    rel = rollout([a], "cls")
    # 0.5 * attention + 0.5 * identity: CLS keeps half on itself, gives half to patch 2.
    torch.testing.assert_close(rel, torch.tensor([[0.0, 0.0, 0.5, 0.0]]))


def test_rollout_of_an_encoder_has_the_grid_shape():
    cfg = ASTConfig(n_bands=64, n_frames=128, patch=(16, 8), stride=(16, 8), dim=32, depth=2, heads=2)
    enc = ASTEncoder(cfg).eval()
    with torch.no_grad():
        _, maps = enc.encode(enc.patch_tokens(torch.randn(3, 1, 64, 128)), return_attention=True)
    rel = rollout(maps).reshape(3, *cfg.grid)
    assert rel.shape == (3, 4, 16)
    assert torch.all(rel >= 0) and torch.all(rel.sum(dim=(1, 2)) <= 1 + 1e-5)
    spread = _spread(rel.numpy(), cfg, 200, [0, 64, 72])
    assert spread.shape == (64, 200)


def test_spread_puts_each_patch_weight_on_its_frames():
    cfg = ASTConfig(n_bands=4, n_frames=4, patch=(2, 2), stride=(2, 2), dim=8, depth=1, heads=1)
    w = np.arange(4, dtype=float).reshape(1, 2, 2)
    m = _spread(w, cfg, 4, [0])
    np.testing.assert_array_equal(m, [[0, 0, 1, 1], [0, 0, 1, 1], [2, 2, 3, 3], [2, 2, 3, 3]])


def test_plot_writes_a_png(tmp_path):
    result = {"input": np.random.default_rng(0).normal(size=(1, 64, 40)), "map": np.ones((64, 40)),
              "features": [("au_rms_mean", 0.2), ("mi_velocity_mean", -0.1)]}
    out = plot(result, tmp_path / "x" / "a.png", "title")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
