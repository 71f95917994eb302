"""Torch networks of the note-level families: Bi-LSTM, hierarchical attention (HAN), transformer, hybrid.

Every network reads a batch of note windows ``x`` of shape ``(B, 1, C, N)``
(the layout of :mod:`models.note_models`: row 0 marks real notes (1) against
padding (0), rows ``1..F`` are the note features in their stage units, and the
last three rows are the raw beat number, bar number and score position in
beats). The first layer standardises the features with the fitted notes'
means and sds, kept as buffers so a saved state restores them.

* :class:`BiLSTMEncoder`: a linear embedding, a bidirectional LSTM over the
  notes (padding packed away), attention or mean pooling.
* :class:`HANEncoder`: the hierarchy of VirtuosoNet's HAN (Jeong et al.
  2019) as far as our inputs allow: a note Bi-LSTM; attention pooling of the
  notes of each beat; a beat Bi-LSTM; attention pooling of the beats of each
  bar; a bar Bi-LSTM; attention pooling over the bars. A *beat* is a run of
  consecutive notes (in performance order) with the same score beat and bar,
  a *bar* a run with the same score bar, so a note played out of order starts
  a run of its own instead of reordering the performance.
* :class:`TransformerEncoder`: a linear embedding plus a sinusoidal encoding
  of the score position in beats (relative to the window's first note), a
  pre-norm transformer encoder with the padding masked, attention or mean pooling.
* :class:`NoteNet` puts a linear head on an encoder; :class:`NoteHybridNet`
  fuses the encoder's vector with a dense branch over the handcrafted
  features (``concat`` or ``gate``), as :class:`models.nets.HybridNet` does
  for the AST.

This module imports torch; :mod:`models.note_models` imports it only inside ``fit``.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

#: Score-position encodings: periods from half a beat to this many beats.
MAX_PERIOD_BEATS = 256.0
#: Score of padding (and of empty groups) before the softmax: finite, so no NaN reaches a gradient.
_MASKED = -1e4


class NoteInput(nn.Module):
    """Split a note window into mask, standardised features and the raw keys.

    Parameters
    ----------
    n_features : int
        Feature rows ``F`` (rows ``1..F`` of the window).
    """

    def __init__(self, n_features: int) -> None:
        super().__init__()
        self.n_features = n_features
        self.register_buffer("mean", torch.zeros(n_features))
        self.register_buffer("sd", torch.ones(n_features))

    def set_scale(self, mean, sd) -> None:
        self.mean.copy_(torch.as_tensor(mean, dtype=torch.float32))
        self.sd.copy_(torch.as_tensor(sd, dtype=torch.float32))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(mask (B, N) bool, features (B, N, F), keys (B, N, 3): beat, bar, score position)."""
        x = x[:, 0].transpose(1, 2)
        mask = x[..., 0] > 0.5
        f = self.n_features
        feats = (x[..., 1:1 + f] - self.mean) / self.sd * mask[..., None]
        return mask, feats, x[..., 1 + f:4 + f]


class AttentionPool(nn.Module):
    """Softmax attention over the valid positions of each sequence (or of each group, with ``ids``)."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.score = nn.Linear(dim, 1)

    def forward(self, h: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        s = self.score(h).squeeze(-1).masked_fill(~mask, _MASKED)
        w = torch.softmax(s, dim=1) * mask
        return (w[..., None] * h).sum(1) / w.sum(1, keepdim=True).clamp_min(1e-12)

    def groups(self, h: torch.Tensor, ids: torch.Tensor, mask: torch.Tensor, n_groups: int):
        """Pool the positions of each group: ``ids`` (B, N) in [0, n_groups), invalid positions masked.

        Returns (pooled (B, n_groups, D), group mask (B, n_groups)).
        """
        b, n, d = h.shape
        g1 = n_groups + 1  # one spare group per sequence collects the masked positions
        ids = torch.where(mask, ids, torch.full_like(ids, n_groups))
        flat = (ids + torch.arange(b, device=h.device)[:, None] * g1).reshape(-1)
        s = self.score(h).squeeze(-1).masked_fill(~mask, _MASKED).reshape(-1)
        top = torch.full((b * g1,), _MASKED, device=h.device, dtype=s.dtype)
        top = top.scatter_reduce(0, flat, s.detach(), "amax", include_self=True)  # softmax is shift-invariant
        e = torch.exp(s - top[flat]) * mask.reshape(-1)
        den = torch.zeros(b * g1, device=h.device, dtype=e.dtype).index_add(0, flat, e)
        w = e / den[flat].clamp_min(1e-12)
        pooled = torch.zeros(b * g1, d, device=h.device, dtype=h.dtype).index_add(0, flat, w[:, None] * h.reshape(-1, d))
        count = torch.zeros(b * g1, device=h.device).index_add(0, flat, mask.reshape(-1).float())
        return pooled.view(b, g1, d)[:, :n_groups], (count.view(b, g1) > 0)[:, :n_groups]


def _pool(pool: str, dim: int) -> nn.Module | None:
    if pool not in ("attention", "mean"):
        raise ValueError(f"pool={pool!r}; use 'attention' or 'mean'")
    return AttentionPool(dim) if pool == "attention" else None


def _mean_pool(h: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    m = mask[..., None].to(h.dtype)
    return (h * m).sum(1) / m.sum(1).clamp_min(1.0)


class BiLSTM(nn.Module):
    """A bidirectional LSTM over the valid prefix of each sequence; output width ``dim``, padding zero."""

    def __init__(self, dim_in: int, dim: int, layers: int = 1, dropout: float = 0.0) -> None:
        super().__init__()
        if dim % 2:
            raise ValueError(f"hidden={dim} must be even (two directions of hidden / 2)")
        self.lstm = nn.LSTM(dim_in, dim // 2, num_layers=layers, batch_first=True, bidirectional=True,
                            dropout=dropout if layers > 1 else 0.0)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        lengths = mask.sum(1).clamp_min(1).cpu()
        packed = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
        out, _ = self.lstm(packed)
        out, _ = pad_packed_sequence(out, batch_first=True, total_length=x.shape[1])
        return out * mask[..., None]


def run_ids(keys: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, int]:
    """Number the runs of equal ``keys`` rows along each sequence: (ids (B, N), groups of the longest).

    ``keys`` (B, N, K): a new run starts wherever any key differs from the
    previous position's. Padding sits after the valid prefix, so valid ids are
    0..n_runs - 1 of each sequence.
    """
    change = torch.ones(mask.shape, dtype=torch.bool, device=mask.device)
    change[:, 1:] = (keys[:, 1:] != keys[:, :-1]).any(-1)
    ids = change.long().cumsum(1) - 1
    n = int(ids[mask].max().item()) + 1 if bool(mask.any()) else 1
    return ids, n


class BiLSTMEncoder(nn.Module):
    """Note embedding, Bi-LSTM over the notes, attention or mean pooling; output width ``hidden``."""

    def __init__(self, n_features: int, hidden: int = 64, layers: int = 2, dropout: float = 0.1,
                 pool: str = "attention") -> None:
        super().__init__()
        self.inp = NoteInput(n_features)
        self.embed = nn.Sequential(nn.Linear(n_features, hidden), nn.GELU(), nn.Dropout(dropout))
        self.rnn = BiLSTM(hidden, hidden, layers, dropout)
        self.pool = _pool(pool, hidden)
        self.out_dim = hidden

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mask, feats, _ = self.inp(x)
        h = self.rnn(self.embed(feats), mask)
        return self.pool(h, mask) if self.pool is not None else _mean_pool(h, mask)


class HANEncoder(nn.Module):
    """Notes -> beats -> bars, a Bi-LSTM and attention pooling at each level; output width ``hidden``."""

    def __init__(self, n_features: int, hidden: int = 64, layers: int = 1, dropout: float = 0.1,
                 pool: str = "attention") -> None:
        super().__init__()
        self.inp = NoteInput(n_features)
        self.embed = nn.Sequential(nn.Linear(n_features, hidden), nn.GELU(), nn.Dropout(dropout))
        self.note_rnn = BiLSTM(hidden, hidden, layers, dropout)
        self.beat_pool = AttentionPool(hidden)
        self.beat_rnn = BiLSTM(hidden, hidden)
        self.bar_pool = AttentionPool(hidden)
        self.bar_rnn = BiLSTM(hidden, hidden)
        self.pool = _pool(pool, hidden)
        self.drop = nn.Dropout(dropout)
        self.out_dim = hidden

    def forward(self, x: torch.Tensor, return_groups: bool = False):
        mask, feats, keys = self.inp(x)
        h = self.note_rnn(self.embed(feats), mask)
        beat_id, n_beats = run_ids(keys[..., :2], mask)  # a beat run also ends at a bar line
        bar_id, n_bars = run_ids(keys[..., 1:2], mask)
        beats, beat_mask = self.beat_pool.groups(h, beat_id, mask, n_beats)
        beats = self.beat_rnn(self.drop(beats), beat_mask)
        # Each beat run lies in one bar run: its bar is its notes' (all equal) bar run id.
        b = mask.shape[0]
        flat = (torch.where(mask, beat_id, torch.full_like(beat_id, n_beats))
                + torch.arange(b, device=x.device)[:, None] * (n_beats + 1)).reshape(-1)
        bar_of_beat = torch.zeros(b * (n_beats + 1), dtype=torch.long, device=x.device)
        bar_of_beat = bar_of_beat.scatter_reduce(0, flat, bar_id.reshape(-1), "amax", include_self=False)
        bar_of_beat = bar_of_beat.view(b, n_beats + 1)[:, :n_beats]
        bars, bar_mask = self.bar_pool.groups(beats, bar_of_beat, beat_mask, n_bars)
        bars = self.bar_rnn(self.drop(bars), bar_mask)
        out = self.pool(bars, bar_mask) if self.pool is not None else _mean_pool(bars, bar_mask)
        return (out, (beat_id, bar_id, beat_mask, bar_mask)) if return_groups else out


def position_encoding(pos: torch.Tensor, dim: int) -> torch.Tensor:
    """Sinusoids of a score position in beats (B, N) -> (B, N, dim); periods 0.5 to :data:`MAX_PERIOD_BEATS` beats."""
    k = torch.arange(dim // 2, device=pos.device, dtype=pos.dtype)
    period = 0.5 * (MAX_PERIOD_BEATS / 0.5) ** (k / max(1, dim // 2 - 1))
    angle = 2 * math.pi * pos[..., None] / period
    return torch.cat([torch.sin(angle), torch.cos(angle)], dim=-1)


class TransformerEncoder(nn.Module):
    """Note embedding + score-position encoding, a pre-norm transformer encoder, pooling; width ``hidden``."""

    def __init__(self, n_features: int, hidden: int = 64, layers: int = 2, heads: int = 4, dropout: float = 0.1,
                 pool: str = "attention") -> None:
        super().__init__()
        if hidden % heads or hidden % 2:
            raise ValueError(f"hidden={hidden} must be even and divisible by heads={heads}")
        self.inp = NoteInput(n_features)
        self.embed = nn.Linear(n_features, hidden)
        layer = nn.TransformerEncoderLayer(hidden, heads, 2 * hidden, dropout, activation="gelu", batch_first=True,
                                           norm_first=True)
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(hidden)
        self.drop = nn.Dropout(dropout)
        self.pool = _pool(pool, hidden)
        self.out_dim = hidden

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mask, feats, keys = self.inp(x)
        pos = keys[..., 2] - keys[:, :1, 2]  # beats from the window's first note: no absolute position to learn
        h = self.drop(self.embed(feats) + position_encoding(pos * mask, self.out_dim))
        h = self.norm(self.encoder(h, src_key_padding_mask=~mask)) * mask[..., None]
        return self.pool(h, mask) if self.pool is not None else _mean_pool(h, mask)


ENCODERS = {"bilstm": BiLSTMEncoder, "han": HANEncoder, "transformer": TransformerEncoder}


def make_encoder(cfg) -> nn.Module:
    """The encoder of a :class:`models.note_models.NoteConfig`."""
    kw = {"hidden": cfg.hidden, "layers": cfg.layers, "dropout": cfg.dropout, "pool": cfg.pool}
    if cfg.encoder == "transformer":
        kw["heads"] = cfg.heads
    return ENCODERS[cfg.encoder](cfg.n_features, **kw)


class NoteNet(nn.Module):
    """A note encoder and a linear head over the targets."""

    def __init__(self, cfg, n_targets: int) -> None:
        super().__init__()
        self.encoder = make_encoder(cfg)
        self.drop = nn.Dropout(cfg.dropout)
        self.head = nn.Linear(self.encoder.out_dim, n_targets)

    def forward(self, x: torch.Tensor, table: torch.Tensor | None = None) -> torch.Tensor:
        return self.head(self.drop(self.encoder(x)))


class NoteHybridNet(nn.Module):
    """A note encoder + dense branch over handcrafted features, fused by ``concat`` or ``gate``."""

    def __init__(self, cfg, n_table: int, n_targets: int, fusion: str = "concat", dense_hidden: int = 128,
                 feature_dropout: float = 0.1) -> None:
        super().__init__()
        if fusion not in ("concat", "gate"):
            raise ValueError(f"fusion={fusion!r}; use 'concat' or 'gate'")
        self.encoder = make_encoder(cfg)
        d = self.encoder.out_dim
        self.fusion = fusion
        self.dense = nn.Sequential(nn.Dropout(feature_dropout), nn.Linear(n_table, dense_hidden), nn.GELU(),
                                   nn.Dropout(cfg.dropout), nn.Linear(dense_hidden, d), nn.LayerNorm(d))
        self.gate = nn.Linear(2 * d, d) if fusion == "gate" else None
        self.drop = nn.Dropout(cfg.dropout)
        self.head = nn.Linear(d if fusion == "gate" else 2 * d, n_targets)

    def forward(self, x: torch.Tensor, table: torch.Tensor | None = None) -> torch.Tensor:
        z_notes, z_table = self.encoder(x), self.dense(table)
        if self.gate is not None:
            g = torch.sigmoid(self.gate(torch.cat([z_notes, z_table], dim=1)))
            z = g * z_notes + (1 - g) * z_table
        else:
            z = torch.cat([z_notes, z_table], dim=1)
        return self.head(self.drop(z))
