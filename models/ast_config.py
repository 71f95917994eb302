"""Audio Spectrogram Transformer configurations, without importing torch.

:class:`ASTConfig` describes an encoder; :data:`SIZES` holds the registered
widths and depths; :func:`count_params` gives an encoder's parameter count
from its configuration alone, so ``benchmark list models`` prints it without
building anything (a test checks it against the torch module).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from benchmark.errors import ConfigError


@dataclass(frozen=True)
class ASTConfig:
    """Shape of an AST encoder (Gong et al. 2021), patch grid included.

    Attributes
    ----------
    in_chans : int
        Input channels (1 for log-mel, 4 for the piano roll).
    n_bands : int
        Input height: mel bands or pitches.
    n_frames : int
        Input width: frames of one crop.
    patch : (int, int)
        Patch size (frequency, time).
    stride : (int, int)
        Patch stride (frequency, time); smaller than ``patch`` means overlapping patches.
    dim, depth, heads : int
        Token width, transformer blocks, attention heads (``dim % heads == 0``).
    mlp_ratio : float
        Hidden width of each block's MLP, as a multiple of ``dim``.
    dropout : float
        Dropout on attention weights, MLP and the token sequence.
    """

    in_chans: int = 1
    n_bands: int = 64
    n_frames: int = 256
    patch: tuple[int, int] = (16, 16)
    stride: tuple[int, int] = (16, 16)
    dim: int = 64
    depth: int = 4
    heads: int = 4
    mlp_ratio: float = 2.0
    dropout: float = 0.1

    def __post_init__(self) -> None:
        pf, pt = self.patch
        sf, st = self.stride
        if min(pf, pt, sf, st, self.in_chans, self.dim, self.depth, self.heads) < 1:
            raise ConfigError(f"{self}: sizes, patch and stride must be positive")
        if pf > self.n_bands or pt > self.n_frames:
            raise ConfigError(f"patch {self.patch} is larger than the input ({self.n_bands} x {self.n_frames}); "
                              "use a smaller patch or a longer crop")
        if self.dim % self.heads:
            raise ConfigError(f"dim={self.dim} is not divisible by heads={self.heads}")
        if not 0 <= self.dropout < 1:
            raise ConfigError(f"dropout={self.dropout} must be in [0, 1)")

    @property
    def grid(self) -> tuple[int, int]:
        """Patches along frequency and time, ``(n_f, n_t)``."""
        return ((self.n_bands - self.patch[0]) // self.stride[0] + 1,
                (self.n_frames - self.patch[1]) // self.stride[1] + 1)

    @property
    def n_patches(self) -> int:
        n_f, n_t = self.grid
        return n_f * n_t

    @property
    def mlp_dim(self) -> int:
        return int(self.dim * self.mlp_ratio)

    def with_input(self, **changes: Any) -> ASTConfig:
        """A copy with other input settings (channels, bands, frames, patch, stride)."""
        return replace(self, **changes)


#: Registered widths and depths, from ~0.1M to the original AST-Base (86M).
SIZES: dict[str, dict[str, Any]] = {
    "ultratiny": {"dim": 48, "depth": 3, "heads": 3, "mlp_ratio": 2.0},
    "tiny": {"dim": 96, "depth": 4, "heads": 4, "mlp_ratio": 2.0},
    "small": {"dim": 192, "depth": 6, "heads": 4, "mlp_ratio": 4.0},
    "medium": {"dim": 384, "depth": 8, "heads": 6, "mlp_ratio": 4.0},
    "base": {"dim": 768, "depth": 12, "heads": 12, "mlp_ratio": 4.0},
}


def count_params(cfg: ASTConfig) -> int:
    """Trainable parameters of :class:`models.ast.ASTEncoder` built from ``cfg``.

    Counts the patch embedding, mask and CLS tokens, the 2-D positional
    embedding, every pre-norm block and the final LayerNorm; equal to
    ``sum(p.numel() for p in ASTEncoder(cfg).parameters())``.
    """
    d, h = cfg.dim, cfg.mlp_dim
    embed = cfg.in_chans * cfg.patch[0] * cfg.patch[1] * d + d
    tokens = 2 * d  # mask token, CLS token
    pos = cfg.n_patches * d
    block = 2 * d + (3 * d * d + 3 * d) + (d * d + d) + 2 * d + (d * h + h) + (h * d + d)
    return embed + tokens + pos + cfg.depth * block + 2 * d
