"""Synthetic performances of a score MIDI, for self-supervised pre-training.

A deadpan score rendering is turned into a plausible, unrated performance by
random, seeded perturbations of its four expressive dimensions:

* **tempo**: a global factor (log-uniform in ``[1 / tempo_range, tempo_range]``)
  times a smooth local tempo curve (a random walk through knots every
  ``knot_s`` seconds, log-sd ``tempo_sd``); score time is warped through the
  integral of the inverse tempo, so notes keep their order;
* **timing**: per-note onset jitter (sd ``timing_sd`` seconds) and an
  articulation factor scaling every duration (legato .. staccato);
* **velocity**: a global level shift, a smooth dynamics curve (sd
  ``dynamics_sd``) and per-note noise (sd ``velocity_sd``), clipped to 1..127;
* **pedal**: the score's own sustain pedal (time-warped), none, or a synthetic
  one that is released just before a note onset and pressed again just after
  it, every ``pedal_every`` seconds or so.

The output is a type-0 MIDI file (480 ticks per beat at 120 bpm, so one tick is
1/960 s) that :func:`features.midi_io.read_performance` reads back with the same
pitches, in the same order, as the source. Everything random comes from
``np.random.default_rng([seed, index, source_digest])``: one (source, index,
seed) always gives the same bytes.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

import mido
import numpy as np

from benchmark.errors import CacheError, ConfigError, DataError
from features.midi_io import Performance, read_performance

VERSION = "1"

_TICKS_PER_BEAT = 480
_TEMPO_US = 500_000
_TICKS_PER_S = _TICKS_PER_BEAT * 1e6 / _TEMPO_US
_MIN_DURATION_S = 0.03
_PEDAL_MODES = ("score", "none", "synthetic")


@dataclass(frozen=True)
class PerturbParams:
    """Sizes of the random perturbations; every field is part of the corpus key."""

    tempo_range: float = 1.25
    tempo_sd: float = 0.12
    knot_s: float = 2.0
    timing_sd: float = 0.015
    articulation: tuple[float, float] = (0.6, 1.3)
    level_range: float = 15.0
    dynamics_sd: float = 8.0
    velocity_sd: float = 5.0
    pedal_every: float = 1.5

    def __post_init__(self) -> None:
        lo, hi = self.articulation
        if self.tempo_range < 1 or min(self.tempo_sd, self.timing_sd, self.level_range, self.dynamics_sd,
                                       self.velocity_sd) < 0:
            raise ConfigError(f"{self}: tempo_range must be >= 1 and the spreads >= 0")
        if not 0 < lo <= hi or self.knot_s <= 0 or self.pedal_every <= 0:
            raise ConfigError(f"{self}: articulation must be 0 < low <= high; knot_s and pedal_every > 0")

    def as_dict(self) -> dict:
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(self).items()}


def _smooth_curve(rng: np.random.Generator, end: float, knot_s: float, sd: float):
    """A random walk through knots every ``knot_s`` seconds, linearly interpolated; returns f(t)."""
    n = max(2, int(np.ceil(end / knot_s)) + 2)
    knots_t = np.arange(n) * knot_s
    steps = rng.normal(0.0, sd / np.sqrt(2.0), n)
    values = np.cumsum(steps)
    values -= values.mean()
    return lambda t: np.interp(t, knots_t, values)


def _time_warp(rng: np.random.Generator, end: float, p: PerturbParams):
    """Score seconds -> performance seconds: global tempo times a smooth local tempo curve."""
    log_tempo = rng.uniform(-np.log(p.tempo_range), np.log(p.tempo_range))
    curve = _smooth_curve(rng, end, p.knot_s, p.tempo_sd)
    grid = np.linspace(0.0, max(end, 1e-3), max(16, int(end * 100)) + 1)
    # Local tempo m(t) > 0; time passes as 1 / m(t).
    inv = np.exp(-(log_tempo + curve(grid)))
    warped = np.concatenate(([0.0], np.cumsum(0.5 * (inv[1:] + inv[:-1]) * np.diff(grid))))
    slope_end = inv[-1]

    def warp(t: np.ndarray) -> np.ndarray:
        t = np.asarray(t, dtype=float)
        inside = np.interp(t, grid, warped)
        return np.where(t > grid[-1], warped[-1] + (t - grid[-1]) * slope_end, inside)

    return warp


def _synthetic_pedal(rng: np.random.Generator, onsets: np.ndarray, end: float, every: float):
    """(times, values): pedal changes just around note onsets, about every ``every`` seconds."""
    times, values = [0.0], [int(rng.integers(64, 128))]
    t = 0.0
    starts = np.unique(onsets)
    while True:
        t += rng.uniform(0.5 * every, 1.5 * every)
        if t >= end or starts.size == 0:
            break
        k = int(np.clip(np.searchsorted(starts, t), 0, starts.size - 1))
        change = float(starts[k])
        lift = max(times[-1] + 0.01, change - 0.02)
        times += [lift, change + rng.uniform(0.03, 0.12)]
        values += [0, int(rng.integers(64, 128))]
        t = max(t, change)
    times.append(end)
    values.append(0)
    order = np.argsort(times, kind="stable")
    return np.asarray(times)[order], np.asarray(values)[order]


def perturb(perf: Performance, rng: np.random.Generator, params: PerturbParams = PerturbParams()) -> Performance:
    """A random performance of ``perf`` (see the module docstring); notes keep their pitches and order.

    Parameters
    ----------
    perf : Performance
        The source (a score MIDI), from :func:`features.midi_io.read_performance`.
    rng : np.random.Generator
    params : PerturbParams

    Returns
    -------
    Performance
        Same ``path``; onsets >= 0; durations >= 30 ms unless the key is struck again sooner (a key is
    released before its next strike); velocities 1..127.
    """
    end = float(max(perf.offset.max(), perf.onset.max()))
    warp = _time_warp(rng, end, params)
    onset = warp(perf.onset) + rng.normal(0.0, params.timing_sd, perf.n_notes)
    onset = np.maximum(onset, 0.0)
    artic = rng.uniform(*params.articulation)
    duration = np.maximum((warp(perf.offset) - warp(perf.onset)) * artic, _MIN_DURATION_S)
    offset = onset + duration
    level = rng.uniform(-params.level_range, params.level_range)
    dyn = _smooth_curve(rng, end, params.knot_s, params.dynamics_sd)
    velocity = perf.velocity + level + dyn(perf.onset) + rng.normal(0.0, params.velocity_sd, perf.n_notes)
    velocity = np.clip(np.round(velocity), 1, 127).astype(np.int64)
    mode = _PEDAL_MODES[int(rng.integers(len(_PEDAL_MODES)))]
    if mode == "score" and perf.sustain_times.size:
        sus_t, sus_v = warp(perf.sustain_times), perf.sustain_values
    elif mode == "synthetic" or (mode == "score" and not perf.sustain_times.size):
        sus_t, sus_v = _synthetic_pedal(rng, onset, float(offset.max()), params.pedal_every)
    else:
        sus_t, sus_v = np.empty(0), np.empty(0, dtype=np.int64)
    order = np.lexsort((perf.pitch, onset))
    onset, offset = onset[order], offset[order]
    # A key is released before it is struck again: a note-off closes every open note of its key.
    for p in np.unique(perf.pitch):
        idx = np.flatnonzero(perf.pitch[order] == p)
        offset[idx[:-1]] = np.minimum(offset[idx[:-1]], onset[idx[1:]])
    return Performance(path=perf.path, onset=onset, offset=offset, pitch=perf.pitch[order],
                       velocity=velocity[order], sustain_times=np.asarray(sus_t, float),
                       sustain_values=np.asarray(sus_v, np.int64), soft_times=warp(perf.soft_times),
                       soft_values=perf.soft_values)


def _ticks(t: np.ndarray) -> np.ndarray:
    return np.round(np.asarray(t, dtype=float) * _TICKS_PER_S).astype(np.int64)


def write_performance(perf: Performance, path: str | os.PathLike) -> Path:
    """Write ``perf`` as a type-0 MIDI file (atomically: a temporary file renamed into place).

    Notes shorter than one tick are lengthened to one tick; at one tick,
    note-offs come before note-ons, so a repeated key is never closed early.
    """
    on, off = _ticks(perf.onset), _ticks(perf.offset)
    off = np.maximum(off, on + 1)
    # (tick, order, message): order 0 = controllers, 1 = note-off, 2 = note-on.
    events = [(int(t), 1, mido.Message("note_off", note=int(p), velocity=0)) for t, p in zip(off, perf.pitch, strict=True)]
    events += [(int(t), 2, mido.Message("note_on", note=int(p), velocity=int(v)))
               for t, p, v in zip(on, perf.pitch, perf.velocity, strict=True)]
    for cc, times, values in ((64, perf.sustain_times, perf.sustain_values), (67, perf.soft_times, perf.soft_values)):
        events += [(int(t), 0, mido.Message("control_change", control=cc, value=int(np.clip(v, 0, 127))))
                   for t, v in zip(_ticks(times), values, strict=True)]
    events.sort(key=lambda e: (e[0], e[1]))
    track = mido.MidiTrack([mido.MetaMessage("set_tempo", tempo=_TEMPO_US, time=0)])
    last = 0
    for tick, _, msg in events:
        track.append(msg.copy(time=tick - last))
        last = tick
    track.append(mido.MetaMessage("end_of_track", time=0))
    mid = mido.MidiFile(type=0, ticks_per_beat=_TICKS_PER_BEAT)
    mid.tracks.append(track)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".mid")
    try:
        with os.fdopen(fd, "wb") as fh:
            mid.save(file=fh)
        os.replace(tmp, path)
    except OSError as exc:  # a full disk or a read-only cache: the path and what to do, no half-written file
        raise CacheError(f"cannot write {str(path)!r}: {exc.strerror or exc}; free space (or make it writable) "
                         "in the cache and run the same command again: what is written stays") from None
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def synthetic_performance(source: str | os.PathLike, out: str | os.PathLike, *, index: int, seed: int,
                          source_digest: str, params: PerturbParams = PerturbParams()) -> Path:
    """Write performance number ``index`` of the score MIDI ``source`` to ``out``.

    Parameters
    ----------
    source : path
        Score MIDI.
    out : path
        MIDI file to write.
    index, seed : int
        Which performance; with ``source_digest``, they seed the generator.
    source_digest : str
        sha256 (hex) of the source file's bytes.

    Raises
    ------
    DataError
        The source is unreadable or holds no notes.
    """
    if index < 0:
        raise ConfigError(f"index={index} must be >= 0")
    perf = read_performance(source)
    if perf.n_notes == 0:
        raise DataError(f"score MIDI {source} holds no notes")
    rng = np.random.default_rng([int(seed), int(index), int(source_digest[:15], 16)])
    return write_performance(perturb(perf, rng, params), out)
