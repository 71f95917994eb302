"""Neural families in the registry: ASTs on log-mel or piano roll, and the hybrid AST + features.

Registered (``benchmark list models`` prints each one's parameter count and input):

* ``ast_ultratiny``, ``ast_tiny``, ``ast_small``, ``ast_medium``, ``ast_base``
  on the log-mel spectrogram (``mel``), and the same sizes on the piano roll
  (``ast_tiny_roll``...). ``ast_base`` is the original AST width and depth
  (12 x 768, ~86M parameters): its forward pass runs on a CPU, training it
  wants a GPU (``--device cuda``).
* ``hybrid`` / ``hybrid_roll``: a tiny AST branch plus a dense branch over the
  handcrafted MIDI + score-aligned + audio features, fused by ``concat``,
  ``gate`` or ``cross`` attention (parameter ``fusion``).

Defaults are sized for the budget of this project's 2-core CPU (one ``lopo``
fold of ``ast_tiny`` in about a minute on one thread; measured in
``docs/benchmarks.md``): the 100 frames/s stages are pooled 8x in time
(12.5 frames/s) and the log-mel 2x in frequency (64 bands); a crop is 128
pooled frames (~10 s), patches 16 bands (22 pitches) x 16 frames, so 32 tokens.

This module does not import torch: registering, listing and counting
parameters are torch-free; ``fit`` imports :mod:`models.training` and
:mod:`models.nets`. Inputs come through :class:`features.inputs.SegmentInputs`
(the registry's ``inputs`` name the array stage and, for the hybrid, the
tabular sets), never from paths or cache keys.
"""

from __future__ import annotations

import inspect
import logging
import time
import warnings
from typing import Any

import numpy as np
from sklearn.exceptions import NotFittedError

from benchmark.errors import ConfigError
from benchmark.params import Bool, Choice, Float, Int, List, Optional, Text
from features.sets import FEATURE_SETS
from models.ast_config import SIZES, ASTConfig, count_params
from models.checkpoints import resolve_checkpoint
from models.registry import MODELS
from splits.inner import holdout

logger = logging.getLogger(__name__)

N_TARGETS = 19
#: Per input kind: stage, channels, bands before pooling, default pooling and patch.
INPUT_KINDS: dict[str, dict[str, Any]] = {
    "mel": {"stage": "mel", "in_chans": 1, "bands": 128, "freq_pool": 2, "patch": (16, 16)},
    "roll": {"stage": "roll", "in_chans": 4, "bands": 88, "freq_pool": 1, "patch": (22, 16)},
}
#: Handcrafted feature sets of the hybrid's dense branch.
HYBRID_TABLES = ("midi", "score", "audio")
#: Training losses (:data:`models.training.LOSSES`, named here where no torch is imported; a test keeps them equal).
LOSSES = ("mse", "pearson", "mse+pearson")
#: Where a model trains (``--device``).
DEVICES = ("auto", "cpu", "cuda")
_PAIR = Optional(List(Int(1), length=2))
_SHARE_OPEN = Float(0.0, 1.0, high_open=True)


def _provenance(device: str) -> dict:
    from models.training import provenance

    return provenance(device)


class NeuralRegressor:
    """Shared parameters, fitting and prediction of the AST and hybrid regressors.

    Parameters
    ----------
    input : {"mel", "roll"}
    size : {"ultratiny", "tiny", "small", "medium", "base"}
        Width and depth of the encoder (:data:`models.ast_config.SIZES`).
    crop : int
        Frames of one crop, after time pooling (128 = ~10 s).
    time_pool : int
        Frames of the 100 frames/s stage averaged into one.
    freq_pool : int, optional
        Mel bands averaged into one (default 2 for mel; the roll is not pooled).
    patch, stride : (int, int), optional
        Patch size and stride (bands or pitches, frames); stride < patch overlaps.
    pool : {"mean", "cls"}
        How the encoder's tokens become one vector.
    dropout : float
    epochs, batch_size, lr, weight_decay, warmup, clip, patience : training settings
        See :class:`models.training.TrainConfig`.
    loss : {"mse", "pearson", "mse+pearson"}
    loss_weight : float
        Weight of mse in ``mse+pearson``.
    augment : bool
        SpecAugment (mel) or tempo / velocity / transposition (roll), on top of random crops.
    val_fraction : float
        Share of the training fold held out (grouped like the outer split) for
        early stopping when the split gives no validation fold.
    device : {"auto", "cpu", "cuda"}
    init : str, optional
        Start the encoder from a pre-trained SSAST checkpoint: ``default`` (the
        one ``benchmark pretrain --input INPUT`` made with default settings), a
        checkpoint file or its cache key (see :mod:`models.ssast`).
    random_state : int, optional
    """

    PARAMS = {"input": Choice(*INPUT_KINDS), "size": Choice(*SIZES), "crop": Int(1), "time_pool": Int(1),
              "freq_pool": Optional(Int(1)), "patch": _PAIR, "stride": _PAIR, "pool": Choice("mean", "cls"),
              "dropout": _SHARE_OPEN, "epochs": Int(1), "batch_size": Int(2), "lr": Float(0.0, low_open=True),
              "weight_decay": Float(0.0), "warmup": _SHARE_OPEN, "clip": Float(0.0), "patience": Int(1),
              "loss": Choice(*LOSSES), "loss_weight": Float(0.0, 1.0), "augment": Bool(),
              "val_fraction": Float(0.0, 1.0, low_open=True, high_open=True), "device": Choice(*DEVICES),
              "init": Optional(Text())}

    @classmethod
    def check_params(cls, params: dict[str, Any], context: dict[str, Any], where: str) -> None:
        """What the declared ranges cannot say: the patch fits the input, the device exists, the checkpoint too.

        ``context["cache_dir"]`` is the run's feature cache, where ``init`` checkpoints live.

        Raises
        ------
        ConfigError
        """
        est = cls(**params)
        try:
            est.ast_config()
            if est.device == "cuda":
                _check_cuda()
            if est.init:

                resolve_checkpoint(est.init, est.input, context.get("cache_dir"))
        except ConfigError as exc:
            raise ConfigError(f"{where}: {exc}") from None

    def __init__(self, input: str = "mel", size: str = "tiny", crop: int = 128, time_pool: int = 8,
                 freq_pool: int | None = None, patch: tuple[int, int] | None = None,
                 stride: tuple[int, int] | None = None, pool: str = "mean", dropout: float = 0.1,
                 epochs: int = 24, batch_size: int = 32, lr: float = 1e-3, weight_decay: float = 0.05,
                 warmup: float = 0.1, clip: float = 1.0, patience: int = 6, loss: str = "mse+pearson",
                 loss_weight: float = 0.5, augment: bool = True, val_fraction: float = 0.2, device: str = "auto",
                 init: str | None = None, random_state: int | None = None) -> None:
        self.input = input
        self.size = size
        self.crop = crop
        self.time_pool = time_pool
        self.freq_pool = freq_pool
        self.patch = patch
        self.stride = stride
        self.pool = pool
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
        self.val_fraction = val_fraction
        self.device = device
        self.init = init
        self.random_state = random_state

    # --- parameters ----------------------------------------------------------
    def get_params(self) -> dict[str, Any]:
        names = [p for p in inspect.signature(type(self).__init__).parameters if p != "self"]
        return {n: (list(v) if isinstance(v, tuple) else v) for n in names for v in [getattr(self, n)]}

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in self.get_params().items())})"

    def _kind(self) -> dict[str, Any]:
        if self.input not in INPUT_KINDS:
            raise ConfigError(f"input={self.input!r}; use one of {', '.join(INPUT_KINDS)}")
        return INPUT_KINDS[self.input]

    def _freq_pool(self) -> int:
        return int(self.freq_pool or self._kind()["freq_pool"]) if self.input == "mel" else 1

    def ast_config(self) -> ASTConfig:
        """The encoder's configuration from the parameters (no torch).

        Raises
        ------
        ConfigError
            Unknown size or input, or a patch that does not fit the input.
        """
        kind = self._kind()
        if self.size not in SIZES:
            raise ConfigError(f"size={self.size!r}; use one of {', '.join(SIZES)}")
        patch = tuple(self.patch or kind["patch"])
        return ASTConfig(in_chans=kind["in_chans"], n_bands=kind["bands"] // self._freq_pool(),
                         n_frames=int(self.crop), patch=patch, stride=tuple(self.stride or patch),
                         dropout=float(self.dropout), **SIZES[self.size])

    def _train_config(self):
        from models.training import TrainConfig

        return TrainConfig(epochs=int(self.epochs), batch_size=int(self.batch_size), lr=float(self.lr),
                           weight_decay=float(self.weight_decay), warmup=float(self.warmup), clip=float(self.clip),
                           patience=int(self.patience), loss=self.loss, loss_weight=float(self.loss_weight),
                           crop=int(self.crop), hop=max(1, int(self.crop) // 2))

    # --- fit / predict -------------------------------------------------------
    def _check_X(self, X) -> None:
        accessor = "mel" if self.input == "mel" else "pianoroll"
        if not hasattr(X, "kinds") or accessor not in X.kinds:
            raise ConfigError(f"{type(self).__name__}(input={self.input!r}) needs segment inputs with "
                              f"{accessor!r} arrays; got {type(X).__name__} (register the model with the "
                              f"{self._kind()['stage']!r} stage among its inputs)")

    def _table(self, X) -> np.ndarray | None:
        return None

    def _build_net(self, cfg: ASTConfig, n_features: int):
        from models.nets import ASTNet

        return ASTNet(cfg, N_TARGETS, pool=self.pool)

    def fit(self, X, y, *, groups=None, validation=None) -> NeuralRegressor:
        """Train on the training fold ``X``; early-stop on ``validation`` or on a grouped hold-out of ``X``.

        Parameters
        ----------
        X : SegmentInputs, n_samples
        y : ndarray (n_samples, n_targets)
        groups : ndarray (n_samples,), optional
            The outer split's groups of the training samples: the hold-out takes whole groups.
        validation : (SegmentInputs, ndarray), optional
            The split's own validation fold; used instead of a hold-out.

        Raises
        ------
        ConfigError
            Bad parameters or inputs without the needed arrays.
        """
        from models import training

        cpu0 = time.process_time()  # the fold's CPU budget is checked on it: wall time depends on the load
        self._check_X(X)
        y = np.asarray(y, dtype=float)
        if y.ndim != 2 or len(y) != len(X):
            raise ValueError(f"expected y of shape ({len(X)}, n_targets); got {y.shape}")
        seed = int(self.random_state or 0)
        cfg, tcfg = self.ast_config(), self._train_config()
        tcfg.check()
        threads = training.set_threads()
        device = training.resolve_device(self.device)
        if validation is not None:
            X_fit, y_fit = X, y
            X_val, y_val = validation[0], np.asarray(validation[1], dtype=float)
        else:
            fit_idx, val_idx = holdout(len(X), groups, fraction=self.val_fraction, random_state=seed)
            X_fit, y_fit, X_val, y_val = X[fit_idx], y[fit_idx], X[val_idx], y[val_idx]
        # Everything learnt from data (target scale, input scale, feature imputation) comes from the fitted part.
        self.y_mean_ = y_fit.mean(axis=0)
        self.y_sd_ = np.where(y_fit.std(axis=0) > 0, y_fit.std(axis=0), 1.0)
        fit = training.Data(self._load(X_fit), self._fit_table(X_fit), (y_fit - self.y_mean_) / self.y_sd_)
        val = training.Data(self._load(X_val), self._table(X_val), (y_val - self.y_mean_) / self.y_sd_)
        n_features = 0 if fit.table is None else fit.table.shape[1]
        training.seed_everything(seed)  # the initial weights come from the seed too
        net = self._build_net(cfg, n_features)
        init_info = {}
        if self.init:
            from models.ssast import load_pretrained

            init_info = load_pretrained(net, self.init, self, X.cache_root)
            # Keep the input scale the encoder was pre-trained on (computed on its corpus, no rated segment).
            self.norm_ = tuple(init_info["init_norm"])
        elif self.input == "mel":
            n = sum(a.size for a in fit.arrays)
            mean = sum(float(a.sum(dtype=np.float64)) for a in fit.arrays) / n
            var = sum(float(((a - mean) ** 2).sum(dtype=np.float64)) for a in fit.arrays) / n
            self.norm_ = (mean, float(np.sqrt(var)) or 1.0)
        else:
            self.norm_ = (0.0, 1.0)  # the roll is already in [0, 1]
        augment = training.Augment(self.input) if self.augment else None
        info = training.train(net, fit, val, tcfg, kind=self.input, augment=augment, norm=self.norm_, seed=seed,
                              device=device)
        self.net_ = net
        self.device_ = device
        self.info_ = {**info, **init_info, "device": device.type, "threads": threads, "n_params": sum(
            p.numel() for p in net.parameters()), "n_fit": len(fit), "n_val": len(val),
            "validation": "split" if validation is not None else "holdout",
            "weights_sha256": training.weights_digest(net), "cpu_seconds": round(time.process_time() - cpu0, 2)}
        return self

    def _load(self, X) -> list[np.ndarray]:
        from models.training import load_inputs

        return load_inputs(X, self.input, self._freq_pool(), int(self.time_pool))

    def _fit_table(self, X) -> np.ndarray | None:
        return self._table(X)

    def predict(self, X) -> np.ndarray:
        """Window-averaged predictions, (n_samples, n_targets), in the targets' units.

        Raises
        ------
        NotFittedError
            Before ``fit``.
        """
        if not hasattr(self, "net_"):
            raise NotFittedError(f"{type(self).__name__} is not fitted; call fit(X, y) first")
        from models import training

        self._check_X(X)
        training.set_threads()
        data = training.Data(self._load(X), self._table(X))
        out = training.predict(self.net_, data, self._train_config(), self.input, self.norm_, self.device_)
        return out * self.y_sd_ + self.y_mean_

    _STATE = ("y_mean_", "y_sd_", "norm_", "median_", "mean_", "scale_")

    def export_state(self) -> dict[str, np.ndarray]:
        """The fitted network's weights and the scalers, as arrays (the run store keeps them per job).

        Raises
        ------
        NotFittedError
            Before ``fit``.
        """
        if not hasattr(self, "net_"):
            raise NotFittedError(f"{type(self).__name__} is not fitted; call fit(X, y) first")
        out = {f"net/{k}": v.detach().cpu().numpy() for k, v in self.net_.state_dict().items()}
        out.update({n: np.asarray(getattr(self, n), dtype=float) for n in self._STATE if hasattr(self, n)})
        return out

    def load_state(self, state: dict[str, np.ndarray]) -> NeuralRegressor:
        """Restore a model fitted elsewhere from :meth:`export_state`'s arrays (built with the same parameters)."""
        import torch

        for n in self._STATE:
            if n in state:
                setattr(self, n, tuple(float(v) for v in state[n]) if n == "norm_" else np.asarray(state[n]))
        n_features = len(state["mean_"]) if "mean_" in state else 0
        net = self._build_net(self.ast_config(), n_features)
        net.load_state_dict({k[4:]: torch.from_numpy(np.array(v)) for k, v in state.items() if k.startswith("net/")})
        net.eval()
        self.net_, self.device_ = net, torch.device("cpu")
        return self

    def fitted_summary(self) -> dict[str, Any]:
        """Device, epochs, validation r, parameter count and a digest of the fitted weights (kept per job)."""
        return dict(getattr(self, "info_", {}))


class ASTRegressor(NeuralRegressor):
    """Audio Spectrogram Transformer (Gong et al. 2021) regressing the 19 ratings, on log-mel or piano roll."""


class HybridRegressor(NeuralRegressor):
    """AST branch + dense branch over handcrafted features, fused by concat, gate or cross-attention.

    Extra parameters: ``fusion`` ({"concat", "gate", "cross"}), ``hidden``
    (dense branch width), ``feature_dropout`` (dropout on the input features).
    The features are imputed with the fitted part's medians and standardised
    with its means and sds.
    """

    PARAMS = {**NeuralRegressor.PARAMS, "fusion": Choice("concat", "gate", "cross"), "hidden": Int(1),
              "feature_dropout": _SHARE_OPEN}

    def __init__(self, input: str = "mel", size: str = "tiny", fusion: str = "concat", hidden: int = 128,
                 feature_dropout: float = 0.1, crop: int = 128, time_pool: int = 8, freq_pool: int | None = None,
                 patch: tuple[int, int] | None = None, stride: tuple[int, int] | None = None, pool: str = "mean",
                 dropout: float = 0.1, epochs: int = 24, batch_size: int = 32, lr: float = 1e-3,
                 weight_decay: float = 0.05, warmup: float = 0.1, clip: float = 1.0, patience: int = 6,
                 loss: str = "mse+pearson", loss_weight: float = 0.5, augment: bool = True,
                 val_fraction: float = 0.2, device: str = "auto", init: str | None = None,
                 random_state: int | None = None) -> None:
        super().__init__(input=input, size=size, crop=crop, time_pool=time_pool, freq_pool=freq_pool, patch=patch,
                         stride=stride, pool=pool, dropout=dropout, epochs=epochs, batch_size=batch_size, lr=lr,
                         weight_decay=weight_decay, warmup=warmup, clip=clip, patience=patience, loss=loss,
                         loss_weight=loss_weight, augment=augment, val_fraction=val_fraction, device=device,
                         init=init, random_state=random_state)
        self.fusion = fusion
        self.hidden = hidden
        self.feature_dropout = feature_dropout

    def _fit_table(self, X) -> np.ndarray:
        t = np.asarray(X.table, dtype=float)
        if t.shape[1] == 0:
            raise ConfigError("the hybrid needs handcrafted features; register or run it with tabular sets "
                              "(e.g. --features midi,score,audio)")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # an all-NaN column gets median 0 below
            med = np.nanmedian(t, axis=0)
        self.median_ = np.where(np.isfinite(med), med, 0.0)
        filled = np.where(np.isfinite(t), t, self.median_)
        self.mean_ = filled.mean(axis=0)
        sd = filled.std(axis=0)
        self.scale_ = np.where(sd > 0, sd, 1.0)
        return self._table(X)

    def _table(self, X) -> np.ndarray:
        t = np.asarray(X.table, dtype=float)
        filled = np.where(np.isfinite(t), t, self.median_)
        return np.clip((filled - self.mean_) / self.scale_, -10, 10)

    def _build_net(self, cfg: ASTConfig, n_features: int):
        from models.nets import HybridNet

        return HybridNet(cfg, n_features, N_TARGETS, fusion=self.fusion, hidden=int(self.hidden),
                         feature_dropout=float(self.feature_dropout), pool=self.pool)


def _check_cuda() -> None:
    """Refuse ``device="cuda"`` where torch sees no GPU (imports torch: only a model asking for cuda gets here)."""
    import importlib.util

    if importlib.util.find_spec("torch") is None:
        raise ConfigError("device='cuda' but torch is not installed; install it (see README, GPU) or use --device cpu")
    import torch

    if not torch.cuda.is_available():
        raise ConfigError("device='cuda' but torch sees no GPU (a CPU build of torch, or no driver); "
                          "use --device cpu or auto")


# --- parameter counts without torch ---------------------------------------------------
def _linear(a: int, b: int) -> int:
    return a * b + b


def count_net_params(model: NeuralRegressor, n_features: int = 0) -> int:
    """Parameters of the network ``model`` builds, from its configuration alone (equal to torch's count)."""
    cfg = model.ast_config()
    d = cfg.dim
    enc = count_params(cfg)
    if not isinstance(model, HybridRegressor):
        return enc + _linear(d, N_TARGETS)
    h = int(model.hidden)
    dense = _linear(n_features, h) + _linear(h, d) + 2 * d
    fusion = {"gate": _linear(2 * d, d) + _linear(d, N_TARGETS),
              "cross": 4 * d * d + 4 * d + _linear(2 * d, N_TARGETS),
              "concat": _linear(2 * d, N_TARGETS)}
    if model.fusion not in fusion:
        raise ConfigError(f"fusion={model.fusion!r}; use one of {', '.join(fusion)}")
    return enc + dense + fusion[model.fusion]


def _n_table_features(names) -> int:

    return sum(len(FEATURE_SETS.build(n).feature_names) for n in names)


def describe(spec) -> str:
    """``benchmark list models``'s note for a neural entry: parameter count and input (no torch)."""
    model = spec.build()
    tables = [i for i in spec.inputs if i not in INPUT_KINDS]
    n = count_net_params(model, _n_table_features(tables) if tables else 0)
    cfg = model.ast_config()
    shape = f"{cfg.in_chans}x{cfg.n_bands}x{cfg.n_frames} {model.input}"
    return f"{n / 1e6:.2f}M params, input {shape}" + (f" + {'+'.join(tables)} features" if tables else "")


# --- registration ------------------------------------------------------------------------
_SIZE_NOTES = {"ultratiny": "3 x 48", "tiny": "4 x 96", "small": "6 x 192", "medium": "8 x 384",
               "base": "12 x 768, the original AST-Base; train it on a GPU"}
_NEURAL = {"provenance": _provenance, "describe": describe}

for _size, _note in _SIZE_NOTES.items():
    for _input, _suffix in (("mel", ""), ("roll", "_roll")):
        MODELS.register(f"ast_{_size}{_suffix}", inputs=(INPUT_KINDS[_input]["stage"],), tags=("neural", "ast"),
                        defaults={"input": _input, "size": _size},
                        description=f"AST {_note} (depth x width) on the {'log-mel' if _input == 'mel' else 'piano roll'}",
                        **_NEURAL)(ASTRegressor)

for _input, _suffix in (("mel", ""), ("roll", "_roll")):
    MODELS.register(f"hybrid{_suffix}", inputs=(INPUT_KINDS[_input]["stage"], *HYBRID_TABLES),
                    tags=("neural", "hybrid"), defaults={"input": _input, "size": "tiny", "fusion": "concat"},
                    description=f"tiny AST on the {'log-mel' if _input == 'mel' else 'piano roll'} + dense branch "
                                f"over MIDI + score + audio features (fusion: concat | gate | cross)",
                    **_NEURAL)(HybridRegressor)

for _input, _suffix in (("mel", ""), ("roll", "_roll")):
    MODELS.register(f"ast_tiny{_suffix}_ssast", inputs=(INPUT_KINDS[_input]["stage"],), tags=("neural", "ast", "ssast"),
                    defaults={"input": _input, "size": "tiny", "init": "default", "lr": 5e-4},
                    description=f"ast_tiny{_suffix} fine-tuned from the default SSAST checkpoint (run 'benchmark "
                                f"pretrain --input {_input}' first)",
                    **_NEURAL)(ASTRegressor)
