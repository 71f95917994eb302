"""Note-level families in the registry: Bi-LSTM, HAN and transformer over the score-aligned notes, and a hybrid.

Registered (``benchmark list models`` prints each one's parameter count):

* ``note_bilstm``: a Bi-LSTM over the notes, attention pooled (the dataset
  paper's Bi-LSTM baseline, on our note features);
* ``note_han``: a Bi-LSTM with hierarchical attention over notes, beats and
  bars (the paper's best configuration, Bi-LSTM + score alignment + HAN, as
  far as our inputs allow; see ``docs/note_features.md``);
* ``note_transformer``: a small transformer encoder over the notes with
  sinusoidal encodings of the score position in beats;
* ``note_hybrid``: the note encoder (``encoder``, default the transformer, the
  best of the three on the validation fold of ``percepiano_performer4``'s
  first fold: mean r 0.721 against 0.704 for the HAN and 0.701 for the
  Bi-LSTM) plus a dense branch over the handcrafted MIDI + score + audio
  features, as ``hybrid`` does for the AST.

Inputs come from the ``notes`` array stage (:mod:`features.notes`) through
:class:`features.inputs.SegmentInputs`. **Sequences and windows.** A segment
is the sequence of its performed notes in time order (51 to 413 notes in
PercePiano, median 106). Training draws one window of at most ``crop``
consecutive notes (default 128, so 65% of the segments whole) per segment
per step at a random start; prediction averages windows of ``crop`` notes
with a hop of ``crop / 2`` covering the whole segment (one window for a
segment of at most ``crop`` notes). Shorter windows are padded and the
padding masked (packed away by the LSTMs).

The training loop is :func:`models.training.train`, shared with the AST
families (early stopping on the split's validation folds or a grouped
hold-out, AdamW with warm-up and cosine decay, losses including ``rank`` and
``learned``, ``tta``). Augmentation (:class:`NoteAugment`) stretches the
tempo, scales velocities and transposes, the note-level counterpart of the
piano roll's. This module does not import torch.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Any

import numpy as np

from benchmark.errors import ConfigError
from benchmark.params import Choice, Int
from features.notes import COLUMN_INDEX
from models.neural import (
    _SHARE_OPEN,
    HYBRID_TABLES,
    N_TARGETS,
    HybridRegressor,
    NeuralRegressor,
    _check_cuda,
    _provenance,
)
from models.registry import MODELS

#: Note-stage columns the networks read (standardised with the fitted notes' means and sds), by ``note_features``:
#: ``aligned`` (default) every column, ``performance`` only what the performance MIDI holds by itself (the
#: dataset paper's MIDI-only Bi-LSTM reads pitch, velocity, onset and offset of each note).
NOTE_FEATURES = {
    "aligned": ("pitch", "log_duration", "velocity", "log_ioi", "tempo", "tempo_dev", "onset_dev", "articulation",
                "sustain_onset", "sustain_release", "soft_onset", "beat_in_bar", "score_duration", "matched"),
    "performance": ("pitch", "log_duration", "velocity", "log_ioi", "sustain_onset", "sustain_release",
                    "soft_onset"),
}
FEATURES = NOTE_FEATURES["aligned"]
#: Raw columns after the features: the HAN's beat and bar runs, the transformer's score position.
KEYS = ("beat", "bar", "score_beat")


def rows(features: tuple[str, ...] = FEATURES) -> dict[str, int]:
    """Row of each input in a window of ``features`` (row 0 marks real notes)."""
    return {name: 1 + i for i, name in enumerate(features + KEYS)}


ROW = rows()
ENCODER_NAMES = ("bilstm", "han", "transformer")
POOLS = ("attention", "mean")


@dataclass(frozen=True)
class NoteConfig:
    """The note network's shape (torch-free)."""

    encoder: str
    n_features: int
    hidden: int
    layers: int
    heads: int
    pool: str
    dropout: float


@dataclass(frozen=True)
class NoteAugment:
    """On-the-fly augmentation of a note window (1, C, N), in the stage's units.

    Attributes
    ----------
    features : tuple of str
        The window's feature rows (:data:`NOTE_FEATURES`); a row it lacks is left alone.
    tempo : float
        Time stretched by a factor s from [1 - tempo, 1 + tempo]: log2 s is
        added to the log durations, log intervals and local tempo, onset
        deviations are multiplied by s (articulation and score position stay).
    velocity : float
        Velocities scaled by a factor from [1 - velocity, 1 + velocity], kept in 1..127.
    transpose : int
        Pitches shifted by up to this many semitones either way.
    """

    features: tuple[str, ...] = FEATURES
    tempo: float = 0.1
    velocity: float = 0.15
    transpose: int = 2

    def before_crop(self, a: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        return a

    def after_crop(self, a: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        a = a.copy()
        real = a[0, 0] > 0.5
        s = rng.uniform(1 - self.tempo, 1 + self.tempo) if self.tempo > 0 else 1.0
        v = rng.uniform(1 - self.velocity, 1 + self.velocity) if self.velocity > 0 else 1.0
        k = int(rng.integers(-self.transpose, self.transpose + 1)) if self.transpose > 0 else 0
        row = rows(self.features)
        for name in ("log_duration", "log_ioi", "tempo"):
            if name in row:
                a[0, row[name], real] += np.log2(s)
        if "onset_dev" in row:
            a[0, row["onset_dev"], real] *= s
        a[0, row["velocity"], real] = np.clip(a[0, row["velocity"], real] * v, 1.0, 127.0)
        a[0, row["pitch"], real] += k
        return a


def to_window_layout(notes: np.ndarray, features: tuple[str, ...] = FEATURES) -> np.ndarray:
    """A note-stage array (n_notes, n_columns) -> the networks' layout (1, 1 + len(features) + 3, n_notes) float32."""
    cols = [COLUMN_INDEX[c] for c in features + KEYS]
    out = np.empty((1, 1 + len(cols), len(notes)), dtype=np.float32)
    out[0, 0] = 1.0
    out[0, 1:] = np.asarray(notes, dtype=np.float32)[:, cols].T
    return out


class NoteRegressor(NeuralRegressor):
    """A note encoder (``bilstm``, ``han`` or ``transformer``) regressing the 19 ratings.

    Parameters
    ----------
    encoder : {"bilstm", "han", "transformer"}
    hidden : int
        Width of the note vectors (each LSTM direction has ``hidden / 2``).
    layers : int
        Layers of the note Bi-LSTM or of the transformer.
    heads : int
        Attention heads of the transformer.
    pool : {"attention", "mean"}
        How the last level's vectors become one.
    note_features : {"aligned", "performance"}
        Which note columns the network reads (:data:`NOTE_FEATURES`); ``performance``
        leaves out everything the score alignment adds (the HAN still groups by the score's beats and bars).
    crop : int
        Notes per window (see the module docstring).
    dropout : float
    epochs, batch_size, lr, weight_decay, warmup, clip, patience : training settings
        See :class:`models.training.TrainConfig`.
    loss, loss_weight, augment, tta, val_fraction, device, random_state
        As for :class:`models.neural.NeuralRegressor`.
    """

    input = "notes"
    init = None  # no pre-trained checkpoint for note encoders

    #: The AST's training settings, and the note encoder's shape instead of the AST's (no patch, no checkpoint).
    PARAMS = {**{k: v for k, v in NeuralRegressor.PARAMS.items()
                 if k not in ("input", "size", "time_pool", "freq_pool", "patch", "stride", "pool", "init")},
              "encoder": Choice(*ENCODER_NAMES), "hidden": Int(2), "layers": Int(1), "heads": Int(1),
              "pool": Choice(*POOLS), "note_features": Choice(*NOTE_FEATURES)}

    @classmethod
    def check_params(cls, params: dict[str, Any], context: dict[str, Any], where: str) -> None:
        """What the declared ranges cannot say: the widths fit the encoder (even, divisible by the heads), the
        device exists.

        Raises
        ------
        ConfigError
        """
        est = cls(**params)
        try:
            est.net_config()
            if est.device == "cuda":
                _check_cuda()
        except ConfigError as exc:
            raise ConfigError(f"{where}: {exc}") from None

    def __init__(self, encoder: str = "bilstm", hidden: int = 64, layers: int = 2, heads: int = 4,
                 pool: str = "attention", note_features: str = "aligned", crop: int = 128, dropout: float = 0.1,
                 epochs: int = 24,
                 batch_size: int = 32, lr: float = 2e-3, weight_decay: float = 0.01, warmup: float = 0.1,
                 clip: float = 1.0, patience: int = 6, loss: str = "mse+pearson", loss_weight: float = 0.5,
                 augment: bool = True, tta: int = 0, val_fraction: float = 0.2, device: str = "auto",
                 random_state: int | None = None) -> None:
        self.encoder = encoder
        self.hidden = hidden
        self.layers = layers
        self.heads = heads
        self.pool = pool
        self.note_features = note_features
        self.crop = crop
        self.dropout = dropout
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.weight_decay = weight_decay
        self.warmup = warmup
        self.clip = clip
        self.patience = patience
        self.loss = loss
        self.loss_weight = loss_weight
        self.augment = augment
        self.tta = tta
        self.val_fraction = val_fraction
        self.device = device
        self.random_state = random_state

    def get_params(self) -> dict[str, Any]:
        return {n: getattr(self, n) for n in inspect.signature(type(self).__init__).parameters if n != "self"}

    def net_config(self) -> NoteConfig:
        """The network's shape from the parameters (no torch).

        Raises
        ------
        ConfigError
            Unknown encoder or pool, or widths that do not fit.
        """
        if self.encoder not in ENCODER_NAMES:
            raise ConfigError(f"encoder={self.encoder!r}; use one of {', '.join(ENCODER_NAMES)}")
        if self.pool not in POOLS:
            raise ConfigError(f"pool={self.pool!r}; use one of {', '.join(POOLS)}")
        hidden, layers, heads = int(self.hidden), int(self.layers), int(self.heads)
        if hidden < 2 or hidden % 2 or layers < 1 or heads < 1:
            raise ConfigError(f"hidden={self.hidden!r} must be an even number >= 2, layers={self.layers!r} and "
                              f"heads={self.heads!r} >= 1")
        if self.encoder == "transformer" and hidden % heads:
            raise ConfigError(f"hidden={hidden} must be divisible by heads={heads} for the transformer")
        if not 0 <= float(self.dropout) < 1:
            raise ConfigError(f"dropout={self.dropout!r} must be in [0, 1)")
        return NoteConfig(self.encoder, len(self._features()), hidden, layers, heads, self.pool, float(self.dropout))

    def _features(self) -> tuple[str, ...]:
        if self.note_features not in NOTE_FEATURES:
            raise ConfigError(f"note_features={self.note_features!r}; use one of {', '.join(NOTE_FEATURES)}")
        return NOTE_FEATURES[self.note_features]

    def ast_config(self):
        raise ConfigError(f"{type(self).__name__} reads notes, not a spectrogram: it has no AST configuration "
                          "(attention maps of 'benchmark explain' exist for the AST families only)")

    def _check_X(self, X) -> None:
        if not hasattr(X, "kinds") or "notes" not in X.kinds:
            raise ConfigError(f"{type(self).__name__} needs segment inputs with 'notes' arrays; got "
                              f"{type(X).__name__} (register the model with the 'notes' stage among its inputs)")

    def _augment(self) -> NoteAugment:
        return NoteAugment(self._features())

    def _load(self, X) -> list[np.ndarray]:
        features = self._features()
        return [to_window_layout(X.notes(i), features) for i in range(len(X))]

    def _fit_load(self, X) -> list[np.ndarray]:
        arrays = self._load(X)
        # The feature scale comes from the fitted part's notes alone (the network keeps it as buffers).
        n = len(self._features())
        feats = np.concatenate([a[0, 1:1 + n] for a in arrays], axis=1).astype(np.float64)
        self.note_mean_ = feats.mean(axis=1)
        sd = feats.std(axis=1)
        self.note_sd_ = np.where(sd > 0, sd, 1.0)
        return arrays

    def _build_net(self, cfg: NoteConfig, n_features: int, n_targets: int = N_TARGETS):
        from models.note_nets import NoteNet

        return self._scaled(NoteNet(cfg, n_targets))

    def _scaled(self, net):
        if hasattr(self, "note_mean_"):
            net.encoder.inp.set_scale(self.note_mean_, self.note_sd_)
        return net


class NoteHybridRegressor(NoteRegressor):
    """Note encoder + dense branch over handcrafted features (imputed and scaled on the fitted part).

    Extra parameters: ``fusion`` ({"concat", "gate"}), ``dense_hidden``
    (dense branch width), ``feature_dropout`` (dropout on the input features).
    """

    PARAMS = {**NoteRegressor.PARAMS, "fusion": Choice("concat", "gate"), "dense_hidden": Int(1),
              "feature_dropout": _SHARE_OPEN}

    def __init__(self, encoder: str = "transformer", fusion: str = "concat", dense_hidden: int = 128,
                 feature_dropout: float = 0.1, hidden: int = 64, layers: int = 2, heads: int = 4,
                 pool: str = "attention", note_features: str = "aligned", crop: int = 128, dropout: float = 0.1,
                 epochs: int = 24,
                 batch_size: int = 32, lr: float = 2e-3, weight_decay: float = 0.01, warmup: float = 0.1,
                 clip: float = 1.0, patience: int = 6, loss: str = "mse+pearson", loss_weight: float = 0.5,
                 augment: bool = True, tta: int = 0, val_fraction: float = 0.2, device: str = "auto",
                 random_state: int | None = None) -> None:
        super().__init__(encoder=encoder, hidden=hidden, layers=layers, heads=heads, pool=pool,
                         note_features=note_features, crop=crop,
                         dropout=dropout, epochs=epochs, batch_size=batch_size, lr=lr, weight_decay=weight_decay,
                         warmup=warmup, clip=clip, patience=patience, loss=loss, loss_weight=loss_weight,
                         augment=augment, tta=tta, val_fraction=val_fraction, device=device,
                         random_state=random_state)
        self.fusion = fusion
        self.dense_hidden = dense_hidden
        self.feature_dropout = feature_dropout

    # The table is handled exactly as the AST hybrid handles it.
    _fit_table = HybridRegressor._fit_table
    _table = HybridRegressor._table

    def _build_net(self, cfg: NoteConfig, n_features: int, n_targets: int = N_TARGETS):
        from models.note_nets import NoteHybridNet

        if self.fusion not in ("concat", "gate"):
            raise ConfigError(f"fusion={self.fusion!r}; use 'concat' or 'gate'")
        return self._scaled(NoteHybridNet(cfg, n_features, n_targets, fusion=self.fusion,
                                          dense_hidden=int(self.dense_hidden),
                                          feature_dropout=float(self.feature_dropout)))


# --- parameter counts without torch ---------------------------------------------------------------------------
def _linear(a: int, b: int) -> int:
    return a * b + b


def _bilstm(d_in: int, d: int, layers: int) -> int:
    h = d // 2
    total = 0
    for k in range(layers):
        i = d_in if k == 0 else d
        total += 2 * (4 * h * (i + h) + 8 * h)
    return total


def count_note_params(model: NoteRegressor, n_table: int = 0) -> int:
    """Trainable parameters of the network ``model`` builds (equal to torch's count; buffers excluded)."""
    cfg = model.net_config()
    f, d = cfg.n_features, cfg.hidden
    pool = _linear(d, 1) if cfg.pool == "attention" else 0
    if cfg.encoder == "bilstm":
        enc = _linear(f, d) + _bilstm(d, d, cfg.layers) + pool
    elif cfg.encoder == "han":
        enc = _linear(f, d) + _bilstm(d, d, cfg.layers) + 2 * _linear(d, 1) + 2 * _bilstm(d, d, 1) + pool
    else:
        layer = (3 * d * d + 3 * d) + _linear(d, d) + _linear(d, 2 * d) + _linear(2 * d, d) + 4 * d
        enc = _linear(f, d) + cfg.layers * layer + 2 * d + pool
    if not isinstance(model, NoteHybridRegressor):
        return enc + _linear(d, N_TARGETS)
    h = int(model.dense_hidden)
    dense = _linear(n_table, h) + _linear(h, d) + 2 * d
    fusion = _linear(2 * d, d) + _linear(d, N_TARGETS) if model.fusion == "gate" else _linear(2 * d, N_TARGETS)
    return enc + dense + fusion


def describe(spec) -> str:
    """``benchmark list models``'s note for a note entry: parameter count and input (no torch)."""
    from models.neural import _n_table_features

    model = spec.build()
    tables = [i for i in spec.inputs if i != "notes"]
    n = count_note_params(model, _n_table_features(tables) if tables else 0)
    return (f"{n / 1e6:.3f}M params, notes ({len(model._features())} features, windows of {model.crop})"
            + (f" + {'+'.join(tables)} features" if tables else ""))


# --- registration -------------------------------------------------------------------------------------------
_NOTE = {"provenance": _provenance, "describe": describe}
MODELS.register("note_bilstm", inputs=("notes",), tags=("neural", "notes"), defaults={"encoder": "bilstm"},
                description="Bi-LSTM over the score-aligned notes, attention pooled (the dataset paper's Bi-LSTM)",
                **_NOTE)(NoteRegressor)
MODELS.register("note_han", inputs=("notes",), tags=("neural", "notes"), defaults={"encoder": "han", "layers": 1},
                description="Bi-LSTM + hierarchical attention over notes, beats and bars (the paper's HAN)",
                **_NOTE)(NoteRegressor)
MODELS.register("note_transformer", inputs=("notes",), tags=("neural", "notes"), defaults={"encoder": "transformer"},
                description="transformer encoder over the score-aligned notes with score-position encodings",
                **_NOTE)(NoteRegressor)
MODELS.register("note_hybrid", inputs=("notes", *HYBRID_TABLES), tags=("neural", "notes", "note_hybrid"),
                defaults={"encoder": "transformer"},
                description="note encoder (transformer) + dense branch over MIDI + score + audio features",
                **_NOTE)(NoteHybridRegressor)
