"""Clip-level audio descriptors of rendered performances (librosa).

:func:`extract` turns one mono signal into a fixed, ordered set of named
scalars, :data:`FEATURES`, grouped in families by name prefix
(:data:`FAMILIES`, :func:`feature_family`), as in :mod:`features.midi`: ``au_mfcc_`` (timbre envelope), ``au_spec_`` (brightness,
spectral shape and noisiness), ``au_rms_`` (loudness and its shape),
``au_chroma_`` (pitch-class profile), ``au_onset_`` (attack density and
regularity), ``au_tempo_`` (pulse and its stability) and ``au_hpss_``
(harmonic versus percussive energy).

Design notes
------------
* One magnitude STFT (``n_fft=2048``, ``hop_length=512``) feeds every spectral
  feature, and its mel power spectrogram feeds the MFCCs, the onset envelope
  and HPSS, so the signal is transformed once.
* Levels are absolute (``ref=1.0``, never ``ref=np.max``) so MFCC 0 and the
  RMS features keep loudness, which several PercePiano ratings describe. The
  log-mel floor sits 80 dB below the clip's peak (``top_db=80``).
* Means of MFCC deltas are left out: over a clip a delta's mean telescopes to
  (last frame - first frame) / n_frames, i.e. close to zero for every file;
  their standard deviations (how fast timbre moves) are kept.
* HPSS (Fitzgerald 2010, median filtering) runs on the 128-band mel power
  spectrogram rather than the 1025-bin STFT: about ten times cheaper, and an
  energy ratio needs no fine frequency resolution.
* A value that is undefined for the clip (fewer than three onsets or beats for
  an interval statistic) is NaN, not a made-up number; impute downstream.
"""

from __future__ import annotations

import logging

import numpy as np

from benchmark.errors import ConfigError, DataError
from features.families import family_of

logger = logging.getLogger(__name__)

VERSION = "2"  # 2: computed from the stored float16 render on a miss too (cache-history independent)

N_FFT = 2048
HOP_LENGTH = 512
N_MELS = 128
N_MFCC = 13
#: Absolute dB floor: silence maps here instead of -inf (-100 dBFS for amplitude).
_AMIN_POWER = 1e-10
_AMIN_AMPLITUDE = 1e-5
_TOP_DB = 80.0
#: The slope fit ignores frames more than this far below the loudest one, so
#: the release tail and rests do not dominate the crescendo estimate.
_SLOPE_RANGE_DB = 60.0
#: spectral_contrast's top band starts at 200 Hz * 2**5 = 6.4 kHz.
_MIN_SR = 12800
_PITCH_CLASSES = ("c", "cs", "d", "ds", "e", "f", "fs", "g", "gs", "a", "as", "b")
_CONTRAST_BANDS = ("0-200", "200-400", "400-800", "800-1600", "1600-3200", "3200-6400", "6400-Nyquist")


def _feature_table() -> dict[str, str]:
    """Build the ordered name -> doc table; the order is the output order."""
    table: dict[str, str] = {}
    for i in range(N_MFCC):
        table[f"au_mfcc_{i:02d}_mean"] = f"Mean of MFCC {i} over frames (MFCC 0 tracks overall level)."
    for i in range(N_MFCC):
        table[f"au_mfcc_{i:02d}_std"] = f"Standard deviation of MFCC {i} over frames."
    for i in range(N_MFCC):
        table[f"au_mfcc_delta_{i:02d}_std"] = f"Standard deviation of the first time-derivative of MFCC {i}."
    table.update(
        {
            "au_spec_centroid_mean": "Mean spectral centroid in Hz (brightness).",
            "au_spec_centroid_std": "Standard deviation of the spectral centroid in Hz.",
            "au_spec_bandwidth_mean": "Mean spectral bandwidth (spread about the centroid) in Hz.",
            "au_spec_bandwidth_std": "Standard deviation of the spectral bandwidth in Hz.",
            "au_spec_rolloff_mean": "Mean frequency in Hz below which 85% of spectral energy lies.",
            "au_spec_rolloff_std": "Standard deviation of the 85% roll-off frequency in Hz.",
            "au_spec_flatness_mean": "Mean spectral flatness (0 tonal .. 1 noise-like).",
            "au_spec_flatness_std": "Standard deviation of spectral flatness.",
        }
    )
    for i, band in enumerate(_CONTRAST_BANDS):
        table[f"au_spec_contrast_{i}_mean"] = f"Mean spectral contrast (peak - valley, dB) in the {band} Hz band."
    table.update(
        {
            "au_spec_zcr_mean": "Mean zero-crossing rate per sample (noisiness/brightness).",
            "au_spec_zcr_std": "Standard deviation of the zero-crossing rate.",
            "au_rms_mean": "Mean frame RMS amplitude (linear, full scale = 1).",
            "au_rms_std": "Standard deviation of frame RMS amplitude (linear).",
            "au_rms_max": "Maximum frame RMS amplitude (linear).",
            "au_rms_db_p10": "10th percentile of frame RMS in dBFS.",
            "au_rms_db_p50": "Median frame RMS in dBFS.",
            "au_rms_db_p90": "90th percentile of frame RMS in dBFS.",
            "au_rms_db_range": "Dynamic range: 95th minus 5th percentile of frame RMS in dB.",
            "au_rms_db_slope": "Least-squares slope of the RMS contour in dB/s (crescendo > 0).",
        }
    )
    for pc in _PITCH_CLASSES:
        name = pc[0].upper() + ("#" if pc.endswith("s") else "")
        table[f"au_chroma_{pc}"] = f"Mean chroma energy of pitch class {name} (frames max-normalised)."
    table.update(
        {
            "au_onset_strength_mean": "Mean onset-strength envelope (spectral flux of the log-mel spectrogram).",
            "au_onset_strength_std": "Standard deviation of the onset-strength envelope.",
            "au_onset_strength_max": "Maximum of the onset-strength envelope.",
            "au_onset_rate": "Detected onsets per second.",
            "au_onset_ioi_cv": "Coefficient of variation of inter-onset intervals (NaN if < 3 onsets).",
            "au_tempo_bpm": "Global tempo estimate in BPM (tempogram with a 120 BPM prior).",
            "au_tempo_local_cv": "Coefficient of variation of the frame-wise tempogram tempo (instability).",
            "au_tempo_beat_cv": "Coefficient of variation of tracked beat intervals (NaN if < 3 beats).",
            "au_hpss_harmonic_ratio": "Harmonic share of mel-spectrogram energy after median-filter HPSS (0..1).",
        }
    )
    return table


#: Ordered feature name -> one-line description; :func:`extract` returns these keys in this order.
FEATURES: dict[str, str] = _feature_table()

#: Family prefix -> what it describes; every name in :data:`FEATURES` starts with one
#: plus an underscore (the ``au_`` keeps them apart from the MIDI families).
FAMILIES: dict[str, str] = {
    "au_mfcc": "timbre envelope: MFCC levels, spread and rate of change",
    "au_spec": "spectral shape: brightness, spread, roll-off, flatness, contrast, zero crossings",
    "au_rms": "loudness: frame RMS level, spread, percentiles, dynamic range and contour slope",
    "au_chroma": "pitch-class energy profile",
    "au_onset": "attack strength, onset density and regularity",
    "au_tempo": "global tempo and its stability",
    "au_hpss": "harmonic versus percussive energy",
}


def feature_family(name: str) -> str:
    """Return the family prefix of a feature name.

    Parameters
    ----------
    name : str
        A key of :data:`FEATURES` (or any name that starts with a family
        prefix and an underscore).

    Returns
    -------
    str
        A key of :data:`FAMILIES`.

    Raises
    ------
    UnknownNameError
        The name starts with no known family prefix.
    """
    return family_of(name, FAMILIES, FEATURES)


def _cv(x: np.ndarray) -> float:
    """Coefficient of variation std/mean, NaN for fewer than two values or zero mean."""
    if x.size < 2 or not np.mean(x) > 0:
        return float("nan")
    return float(np.std(x) / np.mean(x))


def _interval_cv(times: np.ndarray) -> float:
    """CV of the gaps between event times; needs three events for two gaps."""
    return _cv(np.diff(times)) if times.size >= 3 else float("nan")


def _check_input(y: np.ndarray, sr: int) -> np.ndarray:
    if not isinstance(sr, int | np.integer) or sr < _MIN_SR:
        raise ConfigError(f"sr={sr!r} must be an integer sample rate >= {_MIN_SR} Hz, e.g. 22050")
    y = np.asarray(y)
    if y.ndim != 1:
        raise DataError(f"audio must be mono, shape (n_samples,); got shape {y.shape}")
    if y.size < N_FFT:
        raise DataError(f"audio has {y.size} samples, fewer than one {N_FFT}-sample frame")
    y = np.ascontiguousarray(y, dtype=np.float32)
    if not np.all(np.isfinite(y)):
        raise DataError("audio contains NaN or infinite samples")
    return y


def extract(y: np.ndarray, sr: int) -> dict[str, float]:
    """Compute the clip-level audio descriptors of one signal.

    Parameters
    ----------
    y : np.ndarray, shape (n_samples,)
        Mono audio, float, full scale = 1. Not normalised here: level matters.
    sr : int
        Sample rate in Hz (>= 12800 for the spectral-contrast bands).

    Returns
    -------
    dict of str to float
        One value per :data:`FEATURES` key, in that order. NaN marks a value
        undefined for this clip (see the feature's description).

    Raises
    ------
    ConfigError
        If ``sr`` is not an integer >= 12800.
    DataError
        If ``y`` is not 1-D, is shorter than one frame, or is not finite.
    """
    from features.numba_guard import claim_numba_cache

    claim_numba_cache()  # before librosa: its kernels' numba cache must be this process's own
    import librosa

    y = _check_input(y, sr)
    sr = int(sr)
    duration = y.size / sr
    frame_s = HOP_LENGTH / sr
    out: dict[str, float] = {}

    S = np.abs(librosa.stft(y, n_fft=N_FFT, hop_length=HOP_LENGTH))
    power = S**2
    mel = librosa.feature.melspectrogram(S=power, sr=sr, n_mels=N_MELS)
    # Floor 80 dB below the clip's peak: with an absolute floor, the step out of
    # the synth's digital silence before the first note is a ~100 dB onset that
    # swamps the onset envelope and derails beat tracking.
    log_mel = librosa.power_to_db(mel, ref=1.0, amin=_AMIN_POWER, top_db=_TOP_DB)

    mfcc = librosa.feature.mfcc(S=log_mel, n_mfcc=N_MFCC)
    # Savitzky-Golay delta needs width <= n_frames; short clips get a narrower odd window.
    width = min(9, mfcc.shape[1] if mfcc.shape[1] % 2 else mfcc.shape[1] - 1)
    delta = librosa.feature.delta(mfcc, width=width) if width >= 3 else np.zeros_like(mfcc)
    for i in range(N_MFCC):
        out[f"au_mfcc_{i:02d}_mean"] = mfcc[i].mean()
    for i in range(N_MFCC):
        out[f"au_mfcc_{i:02d}_std"] = mfcc[i].std()
    for i in range(N_MFCC):
        out[f"au_mfcc_delta_{i:02d}_std"] = delta[i].std()

    spectral = {
        "centroid": librosa.feature.spectral_centroid(S=S, sr=sr)[0],
        "bandwidth": librosa.feature.spectral_bandwidth(S=S, sr=sr)[0],
        "rolloff": librosa.feature.spectral_rolloff(S=S, sr=sr, roll_percent=0.85)[0],
        "flatness": librosa.feature.spectral_flatness(S=S, amin=_AMIN_POWER)[0],
    }
    for name, values in spectral.items():
        out[f"au_spec_{name}_mean"] = values.mean()
        out[f"au_spec_{name}_std"] = values.std()
    contrast = librosa.feature.spectral_contrast(S=S, sr=sr)
    for i in range(len(_CONTRAST_BANDS)):
        out[f"au_spec_contrast_{i}_mean"] = contrast[i].mean()
    zcr = librosa.feature.zero_crossing_rate(y, frame_length=N_FFT, hop_length=HOP_LENGTH)[0]
    out["au_spec_zcr_mean"] = zcr.mean()
    out["au_spec_zcr_std"] = zcr.std()

    # Time-domain RMS: the STFT route would fold the Hann window's energy loss in.
    rms = librosa.feature.rms(y=y, frame_length=N_FFT, hop_length=HOP_LENGTH)[0]
    rms_db = 20.0 * np.log10(np.maximum(rms, _AMIN_AMPLITUDE))
    p5, p10, p50, p90, p95 = np.percentile(rms_db, [5, 10, 50, 90, 95])
    contour = np.maximum(rms_db, rms_db.max() - _SLOPE_RANGE_DB)
    times = np.arange(rms.size) * frame_s
    out.update(
        au_rms_mean=rms.mean(),
        au_rms_std=rms.std(),
        au_rms_max=rms.max(),
        au_rms_db_p10=p10,
        au_rms_db_p50=p50,
        au_rms_db_p90=p90,
        au_rms_db_range=p95 - p5,
        au_rms_db_slope=np.polyfit(times, contour, 1)[0] if rms.size >= 2 else np.nan,
    )

    # The synth is tuned to A440, so skip librosa's (costly, noisy) tuning estimate.
    chroma = librosa.feature.chroma_stft(S=power, sr=sr, tuning=0.0)
    for i, pc in enumerate(_PITCH_CLASSES):
        out[f"au_chroma_{pc}"] = chroma[i].mean()

    onset_env = librosa.onset.onset_strength(S=log_mel, sr=sr, hop_length=HOP_LENGTH)
    onsets = librosa.onset.onset_detect(onset_envelope=onset_env, sr=sr, hop_length=HOP_LENGTH, units="time")
    out.update(
        au_onset_strength_mean=onset_env.mean(),
        au_onset_strength_std=onset_env.std(),
        au_onset_strength_max=onset_env.max(),
        au_onset_rate=onsets.size / duration,
        au_onset_ioi_cv=_interval_cv(onsets),
    )

    tempo_kw = {"onset_envelope": onset_env, "sr": sr, "hop_length": HOP_LENGTH}
    local_tempo = librosa.feature.tempo(**tempo_kw, aggregate=None)
    _, beats = librosa.beat.beat_track(**tempo_kw, units="time")
    out.update(
        au_tempo_bpm=librosa.feature.tempo(**tempo_kw)[0],
        au_tempo_local_cv=_cv(local_tempo),
        au_tempo_beat_cv=_interval_cv(beats),
    )

    harmonic, _ = librosa.decompose.hpss(mel)
    total = mel.sum()
    out["au_hpss_harmonic_ratio"] = harmonic.sum() / total if total > 0 else np.nan

    return {name: float(out[name]) for name in FEATURES}
