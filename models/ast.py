"""Audio Spectrogram Transformer encoder (Gong, Chung & Glass, Interspeech 2021), in torch.

The same encoder reads a log-mel spectrogram (1 channel, mel bands x frames) or
a piano roll (4 channels, pitches x frames): a convolutional patch embedding
(patch size and stride configurable, overlap allowed), a learned mask token for
masked-patch pre-training (SSAST, Gong et al. AAAI 2022), a learned 2-D
positional embedding initialised with 2-D sine-cosine values, a CLS token,
pre-norm transformer blocks and a final LayerNorm.

This module imports torch; the registry imports it only inside factories.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from models.ast_config import SIZES, ASTConfig, count_params

__all__ = ["SIZES", "ASTConfig", "ASTEncoder", "count_params", "sincos_2d"]


def sincos_2d(n_f: int, n_t: int, dim: int) -> torch.Tensor:
    """2-D sine-cosine positional values, shape ``(n_f * n_t, dim)`` (MAE, He et al. 2022).

    Half the channels encode the frequency index, half the time index; an odd
    remainder is left at zero.
    """
    quarter = dim // 4
    out = torch.zeros(n_f, n_t, dim)
    if quarter == 0:
        return out.reshape(n_f * n_t, dim)
    omega = 1.0 / (10000 ** (torch.arange(quarter, dtype=torch.float64) / quarter))
    f = torch.arange(n_f, dtype=torch.float64)[:, None] * omega[None]
    t = torch.arange(n_t, dtype=torch.float64)[:, None] * omega[None]
    out[:, :, 0:quarter] = torch.sin(f)[:, None, :].float()
    out[:, :, quarter:2 * quarter] = torch.cos(f)[:, None, :].float()
    out[:, :, 2 * quarter:3 * quarter] = torch.sin(t)[None, :, :].float()
    out[:, :, 3 * quarter:4 * quarter] = torch.cos(t)[None, :, :].float()
    return out.reshape(n_f * n_t, dim)


class Attention(nn.Module):
    """Multi-head self-attention that can also return its attention weights."""

    def __init__(self, dim: int, heads: int, dropout: float) -> None:
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.drop = dropout

    def forward(self, x: torch.Tensor, return_attention: bool = False):
        b, n, d = x.shape
        qkv = self.qkv(x).reshape(b, n, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        p = self.drop if self.training else 0.0
        if return_attention:
            attn = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(q.shape[-1]))
            attn = attn.softmax(dim=-1)
            out = F.dropout(attn, p) @ v
        else:
            attn = None
            out = F.scaled_dot_product_attention(q, k, v, dropout_p=p)
        out = self.proj(out.transpose(1, 2).reshape(b, n, d))
        return out, attn


class Block(nn.Module):
    """Pre-norm transformer block: x + Attn(LN(x)); x + MLP(LN(x))."""

    def __init__(self, dim: int, heads: int, mlp_dim: int, dropout: float) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = Attention(dim, heads, dropout)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, mlp_dim), nn.GELU(), nn.Dropout(dropout),
                                 nn.Linear(mlp_dim, dim), nn.Dropout(dropout))

    def forward(self, x: torch.Tensor, return_attention: bool = False):
        a, attn = self.attn(self.norm1(x), return_attention)
        x = x + a
        x = x + self.mlp(self.norm2(x))
        return x, attn


class ASTEncoder(nn.Module):
    """Patch embedding + positional embedding + CLS + pre-norm transformer.

    Parameters
    ----------
    cfg : ASTConfig
    """

    def __init__(self, cfg: ASTConfig) -> None:
        super().__init__()
        self.cfg = cfg
        d = cfg.dim
        self.patch_embed = nn.Conv2d(cfg.in_chans, d, kernel_size=cfg.patch, stride=cfg.stride)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, d))
        self.cls_token = nn.Parameter(torch.zeros(1, 1, d))
        n_f, n_t = cfg.grid
        self.pos_embed = nn.Parameter(sincos_2d(n_f, n_t, d)[None].clone())
        self.drop = nn.Dropout(cfg.dropout)
        self.blocks = nn.ModuleList(Block(d, cfg.heads, cfg.mlp_dim, cfg.dropout) for _ in range(cfg.depth))
        self.norm = nn.LayerNorm(d)
        nn.init.trunc_normal_(self.cls_token, std=0.02)
        nn.init.trunc_normal_(self.mask_token, std=0.02)
        self.apply(self._init)

    @staticmethod
    def _init(m: nn.Module) -> None:
        if isinstance(m, nn.Linear):
            nn.init.trunc_normal_(m.weight, std=0.02)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.LayerNorm):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)

    @property
    def grid(self) -> tuple[int, int]:
        """Patches along frequency and time, ``(n_f, n_t)``."""
        return self.cfg.grid

    @property
    def n_patches(self) -> int:
        return self.cfg.n_patches

    def _check(self, x: torch.Tensor) -> None:
        c = self.cfg
        if x.ndim != 4 or tuple(x.shape[1:]) != (c.in_chans, c.n_bands, c.n_frames):
            raise ValueError(f"expected input (B, {c.in_chans}, {c.n_bands}, {c.n_frames}); got {tuple(x.shape)}")

    def patch_tokens(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """Embed patches; masked positions become the mask token; add positions.

        Parameters
        ----------
        x : Tensor, shape (B, C, F, T)
        mask : bool Tensor, shape (B, N), optional
            True where a patch is hidden (replaced by the learned mask token).

        Returns
        -------
        Tensor, shape (B, N, D)
        """
        self._check(x)
        tok = self.patch_embed(x).flatten(2).transpose(1, 2)
        if mask is not None:
            if mask.shape != tok.shape[:2]:
                raise ValueError(f"mask must have shape {tuple(tok.shape[:2])}; got {tuple(mask.shape)}")
            tok = torch.where(mask[..., None], self.mask_token.to(tok.dtype).expand_as(tok), tok)
        return tok + self.pos_embed

    def encode(self, tokens: torch.Tensor, return_attention: bool = False):
        """Prepend CLS and run the transformer.

        Parameters
        ----------
        tokens : Tensor, shape (B, N, D)
            From :meth:`patch_tokens`.
        return_attention : bool
            Also return each block's attention weights (for attention rollout).

        Returns
        -------
        Tensor, shape (B, 1 + N, D)
            Final-LayerNorm'd tokens; index 0 is CLS.
        list of Tensor, shape (B, heads, 1 + N, 1 + N)
            Only when ``return_attention``.
        """
        cls = self.cls_token.expand(tokens.shape[0], -1, -1)
        x = self.drop(torch.cat([cls, tokens], dim=1))
        maps = []
        for blk in self.blocks:
            x, attn = blk(x, return_attention)
            if return_attention:
                maps.append(attn)
        x = self.norm(x)
        return (x, maps) if return_attention else x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``encode(patch_tokens(x))``: (B, C, F, T) -> (B, 1 + N, D)."""
        return self.encode(self.patch_tokens(x))

    def patchify(self, x: torch.Tensor) -> torch.Tensor:
        """The raw values under each patch, the masked-reconstruction target.

        Returns
        -------
        Tensor, shape (B, N, C * pf * pt)
            Patch ``i`` in the same (frequency-major) order as :meth:`patch_tokens`.
        """
        self._check(x)
        return F.unfold(x, kernel_size=self.cfg.patch, stride=self.cfg.stride).transpose(1, 2)

    def n_params(self) -> int:
        return sum(p.numel() for p in self.parameters())

