"""Log-mel spectrograms for the audio models, and their length policy.

:func:`logmel` gives a ``(n_mels, n_frames)`` float16 spectrogram in dB with a
fixed reference (``ref=1.0``, never ``ref=np.max``), so a louder performance
stays louder in the input. Its floor, :data:`DB_FLOOR` (-100 dB, from
``amin=1e-10``), is the value of digital silence and is also the padding value.
The default hop is 10 ms, the frame shift of the AST/PANNs family of models.

Length policy
-------------
PercePiano segments last from a few seconds to about a minute, while a model
takes a fixed number of frames ``n_frames``:

* Shorter than ``n_frames``: pad at the end with :data:`DB_FLOOR`, i.e. with
  silence, in training and in testing alike.
* Longer, training (``fit_length(..., mode="train", rng=...)``): one random
  crop per call, so each epoch sees a different part of the segment. The
  crop comes only from the ``rng`` passed in (seeded), never a global state.
* Longer, testing (``mode="test"``): a deterministic centre crop, or, to use
  the whole segment, :func:`sliding_windows` followed by averaging the model's
  predictions over the windows. The windows start every ``hop`` frames and a
  last window is aligned to the end, so every frame is seen at least once.
"""

from __future__ import annotations

import logging

import numpy as np

from benchmark.errors import ConfigError, DataError

logger = logging.getLogger(__name__)

VERSION = "1"

_AMIN = 1e-10
#: dB value of silence (``10 * log10(amin)``); used for padding.
DB_FLOOR = float(10.0 * np.log10(_AMIN))
_MODES = ("train", "test")


def logmel(
    y: np.ndarray,
    sr: int,
    *,
    n_mels: int = 128,
    n_fft: int = 1024,
    hop_length: int | None = None,
    fmin: float = 20.0,
    fmax: float | None = None,
) -> tuple[np.ndarray, float]:
    """Compute a log-mel spectrogram in dB with a fixed reference.

    Parameters
    ----------
    y : np.ndarray, shape (n_samples,)
        Mono audio, full scale = 1, not normalised.
    sr : int
        Sample rate in Hz.
    n_mels : int, default 128
        Number of mel bands.
    n_fft : int, default 1024
        FFT (and window) length in samples.
    hop_length : int, optional
        Frame shift in samples; default ``round(sr / 100)`` (10 ms).
    fmin, fmax : float
        Lowest and highest band edges in Hz; ``fmax=None`` means ``sr / 2``.

    Returns
    -------
    mel : np.ndarray, shape (n_mels, n_frames), float16
        Power in dB re 1.0, floored at :data:`DB_FLOOR`;
        ``n_frames = 1 + n_samples // hop_length`` (centred frames).
    frame_rate : float
        Frames per second, ``sr / hop_length``.

    Raises
    ------
    ConfigError
        If a parameter is out of range.
    DataError
        If ``y`` is not 1-D, is empty, or is not finite.
    """
    from features.numba_guard import claim_numba_cache

    claim_numba_cache()  # before librosa: its kernels' numba cache must be this process's own
    import librosa

    if not isinstance(sr, int | np.integer) or sr <= 0:
        raise ConfigError(f"sr={sr!r} must be a positive integer sample rate, e.g. 22050")
    hop_length = round(sr / 100) if hop_length is None else hop_length
    if hop_length <= 0 or n_fft <= 0 or n_mels <= 0:
        raise ConfigError(f"hop_length={hop_length}, n_fft={n_fft} and n_mels={n_mels} must be positive")
    nyquist = sr / 2
    if not 0 <= fmin < (nyquist if fmax is None else min(fmax, nyquist)):
        raise ConfigError(f"fmin={fmin} must be >= 0 and below fmax={fmax} and the Nyquist frequency {nyquist} Hz")
    y = np.asarray(y)
    if y.ndim != 1 or y.size == 0:
        raise DataError(f"audio must be non-empty mono, shape (n_samples,); got shape {y.shape}")
    y = np.ascontiguousarray(y, dtype=np.float32)
    if not np.all(np.isfinite(y)):
        raise DataError("audio contains NaN or infinite samples")

    power = librosa.feature.melspectrogram(
        y=y, sr=sr, n_fft=n_fft, hop_length=hop_length, n_mels=n_mels, fmin=fmin, fmax=fmax, power=2.0
    )
    mel_db = librosa.power_to_db(power, ref=1.0, amin=_AMIN, top_db=None)
    # float16 halves the cache; its step is at most 0.0625 dB for |dB| < 128, far below audibility.
    return mel_db.astype(np.float16), sr / hop_length


def band_frequencies(sr: int, n_mels: int = 128, fmin: float = 20.0, fmax: float | None = None,
                     pool: int = 1) -> np.ndarray:
    """Centre frequency (Hz) of every band of :func:`logmel`'s spectrogram, after pooling ``pool`` bands.

    The mel filters' centres (Slaney's mel scale, librosa's default), each
    pooled band at the mean of its bands' centres (``n_mels // pool`` bands).
    """
    import librosa

    centres = librosa.mel_frequencies(n_mels=n_mels + 2, fmin=fmin, fmax=sr / 2 if fmax is None else fmax)[1:-1]
    n = n_mels - n_mels % pool
    return centres[:n].reshape(-1, pool).mean(axis=1)


def _check_mel(mel: np.ndarray, n_frames: int) -> np.ndarray:
    mel = np.asarray(mel)
    if mel.ndim != 2:
        raise DataError(f"mel must have shape (n_mels, n_frames); got shape {mel.shape}")
    if isinstance(n_frames, bool) or not isinstance(n_frames, int | np.integer) or n_frames < 1:
        raise ConfigError(f"n_frames={n_frames!r} must be a positive integer")
    return mel


def _pad(mel: np.ndarray, n_frames: int, pad_value: float = DB_FLOOR) -> np.ndarray:
    return np.pad(mel, ((0, 0), (0, n_frames - mel.shape[1])), constant_values=pad_value)


def fit_length(
    mel: np.ndarray,
    n_frames: int,
    *,
    mode: str = "test",
    rng: np.random.Generator | int | None = None,
    pad_value: float = DB_FLOOR,
) -> np.ndarray:
    """Pad or crop a spectrogram to exactly ``n_frames`` frames.

    Parameters
    ----------
    mel : np.ndarray, shape (n_mels, n_frames_in)
        Spectrogram from :func:`logmel`.
    n_frames : int
        Frames wanted.
    mode : {"train", "test"}, default "test"
        When the input is longer: random crop ("train") or centre crop ("test").
    rng : np.random.Generator or int, optional
        Source of the random crop; required in train mode (an int seeds a new
        generator). Ignored in test mode.
    pad_value : float, default DB_FLOOR
        Value of the padding (silence in dB; 0 for a piano roll, whose
        channels are flattened to rows by the caller).

    Returns
    -------
    np.ndarray, shape (n_mels, n_frames)
        Same dtype as ``mel``; padded at the end with :data:`DB_FLOOR` when the
        input is shorter. A view when cropped, a new array when padded.

    Raises
    ------
    ConfigError
        If ``mode`` is unknown, ``n_frames`` is not a positive integer, or train
        mode is used without ``rng``.
    DataError
        If ``mel`` is not 2-D.
    """
    mel = _check_mel(mel, n_frames)
    if mode not in _MODES:
        raise ConfigError(f"mode={mode!r} is not one of {_MODES}")
    if mode == "train" and rng is None:
        raise ConfigError("mode='train' needs rng (a seeded np.random.Generator or int) for a reproducible random crop")
    excess = mel.shape[1] - n_frames
    if excess < 0:
        return _pad(mel, n_frames, pad_value)
    if mode == "train":
        start = int(np.random.default_rng(rng).integers(0, excess + 1))
    else:
        start = excess // 2
    return mel[:, start : start + n_frames]


def sliding_windows(mel: np.ndarray, n_frames: int, hop: int, *, pad_value: float = DB_FLOOR) -> np.ndarray:
    """Cut a spectrogram into overlapping fixed-length windows for test-time averaging.

    Parameters
    ----------
    mel : np.ndarray, shape (n_mels, n_frames_in)
        Spectrogram from :func:`logmel`.
    n_frames : int
        Frames per window.
    hop : int
        Frames between window starts.
    pad_value : float, default DB_FLOOR
        Padding of an input shorter than ``n_frames``.

    Returns
    -------
    np.ndarray, shape (n_windows, n_mels, n_frames)
        Windows starting at ``0, hop, 2 * hop, ...``, plus one aligned to the
        end if the last regular window stops short of it. An input shorter than
        ``n_frames`` gives one window padded with :data:`DB_FLOOR`.

    Raises
    ------
    ConfigError
        If ``n_frames`` or ``hop`` is not a positive integer.
    DataError
        If ``mel`` is not 2-D.
    """
    mel = _check_mel(mel, n_frames)
    if isinstance(hop, bool) or not isinstance(hop, int | np.integer) or hop < 1:
        raise ConfigError(f"hop={hop!r} must be a positive integer number of frames")
    total = mel.shape[1]
    if total <= n_frames:
        return _pad(mel, n_frames, pad_value)[np.newaxis]
    starts = list(range(0, total - n_frames + 1, hop))
    if starts[-1] != total - n_frames:
        starts.append(total - n_frames)
    return np.stack([mel[:, s : s + n_frames] for s in starts])
