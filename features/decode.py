"""Real recordings as input: an audio file decoded to the mono signal the audio stages read.

:func:`load` decodes a file with ``soundfile`` (libsndfile: WAV, FLAC, OGG,
MP3, AIFF...), averages its channels to mono and resamples it with
``librosa.resample`` (soxr, high quality) to the rate the audio features and
the log-mel stage use. The signal is not normalised: level matters to
several ratings, as for rendered audio. A file that is unreadable, empty,
silent, not finite or over the limits below raises :class:`DataError`
naming the file, so the item is skipped by name like bad MIDI
(``--on-bad-input skip``) or stops the run (``error``).

Limits (checked from the header, before decoding): :data:`MAX_DURATION_S`
(the same 30 minutes as a MIDI file), :data:`MAX_FILE_BYTES`; silence is a
peak below :data:`SILENCE_PEAK` (-80 dBFS, as for renderings).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np

from benchmark.errors import DataError
from benchmark.hashing import NotRegularFileError, regular_stat

logger = logging.getLogger(__name__)

#: Decoder version: part of every key built from a decoded file (a change decodes every file again).
VERSION = "1"
#: Longest accepted recording, in seconds (a MIDI file's limit too, ``features.midi_io.MAX_DURATION_S``).
MAX_DURATION_S = 1800.0
#: Largest accepted audio file: 30 minutes of 24-bit 96 kHz stereo WAV is about 1 GiB.
MAX_FILE_BYTES = 2 * 2**30
#: A recording whose peak stays below -80 dBFS is silence (a rendering's threshold too).
SILENCE_PEAK = 1e-4


def _describe(path: Path, exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return f"audio file {str(path)!r} cannot be decoded ({text[:160]})"


def check_file(path: str | os.PathLike) -> tuple[int, int, float]:
    """Check an audio file from its header: a regular file within the limits.

    Returns
    -------
    sr, frames, duration_s

    Raises
    ------
    DataError
        Missing, not a regular file, over :data:`MAX_FILE_BYTES` or :data:`MAX_DURATION_S`, unreadable,
        or holding no samples.
    """
    import soundfile

    p = Path(path)
    try:
        st = regular_stat(p)  # a FIFO would block libsndfile's open forever
    except NotRegularFileError as exc:
        raise DataError(f"audio file {str(p)!r} is not a regular file ({exc.strerror.split(',')[0]})") from None
    except OSError as exc:
        raise DataError(f"audio file {str(p)!r} cannot be read: {exc.strerror or exc}") from None
    if st.st_size > MAX_FILE_BYTES:
        raise DataError(f"audio file {str(p)!r} is {st.st_size / 2**30:.1f} GiB, over the limit "
                        f"MAX_FILE_BYTES = {MAX_FILE_BYTES / 2**30:g} GiB")
    try:
        info = soundfile.info(str(p))
    except Exception as exc:  # libsndfile's own error type differs across soundfile versions
        raise DataError(_describe(p, exc)) from None
    if info.frames <= 0 or info.samplerate <= 0:
        raise DataError(f"audio file {str(p)!r} is empty (no samples)")
    duration = info.frames / info.samplerate
    if duration > MAX_DURATION_S:
        raise DataError(f"audio file {str(p)!r} lasts {duration:.0f} s, over the limit MAX_DURATION_S = "
                        f"{MAX_DURATION_S:.0f} s")
    return int(info.samplerate), int(info.frames), float(duration)


def load(path: str | os.PathLike, sr: int) -> np.ndarray:
    """Decode an audio file to mono float32 at ``sr`` Hz.

    Parameters
    ----------
    path : path
    sr : int
        Target sample rate (the audio stages' ``AudioParams.sr``).

    Returns
    -------
    ndarray of float32, shape (n_samples,)
        The channels' mean, resampled when the file's rate differs (a file at ``sr`` keeps its
        samples exactly).

    Raises
    ------
    DataError
        As :func:`check_file`; silent or not finite.
    """
    import soundfile

    p = Path(path)
    file_sr, _, _ = check_file(p)
    try:
        y, _ = soundfile.read(str(p), dtype="float32", always_2d=True)
    except Exception as exc:
        raise DataError(_describe(p, exc)) from None
    if y.size == 0:
        raise DataError(f"audio file {str(p)!r} is empty (no samples)")
    # One channel is taken as it is (a mean over one channel could not change it, but say so).
    mono = y[:, 0] if y.shape[1] == 1 else y.mean(axis=1, dtype=np.float64).astype(np.float32)
    if not np.all(np.isfinite(mono)):
        raise DataError(f"audio file {str(p)!r} holds NaN or infinite samples")
    peak = float(np.max(np.abs(mono)))
    if not peak >= SILENCE_PEAK:
        raise DataError(f"audio file {str(p)!r} is silent (peak {peak:.2g}, below -80 dBFS)")
    if file_sr != sr:
        from features.numba_guard import claim_numba_cache

        claim_numba_cache()  # before librosa: its kernels' numba cache must be this process's own
        import librosa

        mono = librosa.resample(mono, orig_sr=file_sr, target_sr=sr, res_type="soxr_hq").astype(np.float32)
    return np.ascontiguousarray(mono, dtype=np.float32)
