"""Torch networks of the neural families: an AST with a multi-task head, and the hybrid.

* :class:`ASTNet`: :class:`models.ast.ASTEncoder`, its tokens pooled (mean of
  the patch tokens, or the CLS token), dropout, one linear head over the 19
  targets.
* :class:`HybridNet`: the same AST branch plus a dense branch over the
  handcrafted features, fused by ``concat`` (both vectors side by side),
  ``gate`` (a learnt sigmoid gate mixes the two per channel) or ``cross``
  (the features, embedded as one query token, attend over the AST's patch
  tokens; the attended vector joins the feature vector).

This module imports torch; :mod:`models.neural` imports it only inside ``fit``.
:func:`models.neural.count_net_params` gives the same parameter counts
without torch (a test checks them).
"""

from __future__ import annotations

import torch
from torch import nn

from models.ast import ASTConfig, ASTEncoder

FUSIONS = ("concat", "gate", "cross")


class ASTNet(nn.Module):
    """AST encoder + pooled multi-task linear head.

    Parameters
    ----------
    cfg : ASTConfig
    n_targets : int or None
        None leaves the head out (the hybrid's AST branch).
    pool : {"mean", "cls"}
    """

    def __init__(self, cfg: ASTConfig, n_targets: int | None, pool: str = "mean") -> None:
        super().__init__()
        self.encoder = ASTEncoder(cfg)
        self.pool = pool
        self.drop = nn.Dropout(cfg.dropout)
        self.head = nn.Linear(cfg.dim, n_targets) if n_targets else None

    def embed(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(pooled (B, D), tokens (B, 1 + N, D))."""
        tokens = self.encoder(x)
        pooled = tokens[:, 1:].mean(dim=1) if self.pool == "mean" else tokens[:, 0]
        return pooled, tokens

    def forward(self, x: torch.Tensor, table: torch.Tensor | None = None) -> torch.Tensor:
        pooled, _ = self.embed(x)
        return self.head(self.drop(pooled))


class HybridNet(nn.Module):
    """AST branch + dense branch over handcrafted features, fused.

    Parameters
    ----------
    cfg : ASTConfig
    n_features : int
        Width of the (imputed, standardised) feature vector.
    n_targets : int
    fusion : {"concat", "gate", "cross"}
    hidden : int
        Hidden width of the dense branch.
    feature_dropout : float
        Dropout on the input features (a strong regulariser for ~1000 samples).
    pool : {"mean", "cls"}
    """

    def __init__(self, cfg: ASTConfig, n_features: int, n_targets: int, fusion: str = "concat", hidden: int = 128,
                 feature_dropout: float = 0.1, pool: str = "mean") -> None:
        super().__init__()
        if fusion not in FUSIONS:
            raise ValueError(f"fusion={fusion!r}; use one of {FUSIONS}")
        d = cfg.dim
        self.fusion = fusion
        self.ast = ASTNet(cfg, None, pool)
        self.dense = nn.Sequential(nn.Dropout(feature_dropout), nn.Linear(n_features, hidden), nn.GELU(),
                                   nn.Dropout(cfg.dropout), nn.Linear(hidden, d), nn.LayerNorm(d))
        if fusion == "gate":
            self.gate = nn.Linear(2 * d, d)
            width = d
        elif fusion == "cross":
            self.cross = nn.MultiheadAttention(d, cfg.heads, dropout=cfg.dropout, batch_first=True)
            width = 2 * d
        else:
            width = 2 * d
        self.drop = nn.Dropout(cfg.dropout)
        self.head = nn.Linear(width, n_targets)

    def forward(self, x: torch.Tensor, table: torch.Tensor | None = None,
                return_attention: bool = False):
        pooled, tokens = self.ast.embed(x)
        t = self.dense(table)
        attn = None
        if self.fusion == "gate":
            g = torch.sigmoid(self.gate(torch.cat([pooled, t], dim=1)))
            z = g * pooled + (1 - g) * t
        elif self.fusion == "cross":
            att, attn = self.cross(t[:, None, :], tokens[:, 1:], tokens[:, 1:], need_weights=return_attention)
            z = torch.cat([t, att[:, 0]], dim=1)
        else:
            z = torch.cat([pooled, t], dim=1)
        out = self.head(self.drop(z))
        return (out, attn) if return_attention else out
