"""``benchmark explain RUN_DIR SEGMENT_ID``: what a fitted neural model of a run looked at.

Nothing is refitted: the run store keeps every neural job's fitted weights
(``jobs/<job>.state.npz``). For the segment asked about, the job whose test
fold held it out is found in ``folds.parquet`` (so the model never saw its
ratings), the model is rebuilt from the job's stored parameters and weights,
and the segment's input is read through the same cache and input view as in
the run. The attribution itself (attention rollout, the hybrid's gradient x
input) is :mod:`models.attribution`; the figure is
:func:`reports.plots.plot_explanation`: the input with the rollout over it
(time in seconds, frequency in Hz or pitch names, colour bars), the
prediction against the rating for every target, and for the hybrid the
features with the largest attributions, for the mean of the ratings or for
one (``target``).
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any

import numpy as np

from benchmark.config import load_config
from benchmark.errors import ConfigError, DataError
from benchmark.refit import open_run, stored_job
from benchmark.store import JobKey, RunStore
from features.mel import band_frequencies
from features.roll import LOWEST_PITCH, N_PITCHES
from features.stages import AudioParams, MelParams, RollParams
from models import MODELS


def _axes(est) -> tuple[float, np.ndarray]:
    """(pooled frames per second, centre frequency in Hz or MIDI pitch of each band) of a model's input."""
    audio, mel = AudioParams(), MelParams()
    rate = RollParams.like(audio, mel).frame_rate / int(est.time_pool)
    if est.input == "roll":
        return rate, np.arange(LOWEST_PITCH, LOWEST_PITCH + N_PITCHES)
    return rate, band_frequencies(audio.sr, mel.n_mels, mel.fmin, mel.fmax, pool=est._freq_pool())


def _estimator(store: RunStore, key: JobKey):
    """The fitted model of a neural job, rebuilt from its stored parameters and weights.

    Raises
    ------
    ConfigError
        The job has not finished.
    DataError
        Its params.json or state.npz is damaged or does not fit the model.
    """
    job = stored_job(store, key)  # a damaged params.json is a DataError
    resume = f"recompute the job with: benchmark run --resume {store.root}"
    try:
        est = MODELS.build(job.base, **job.param_dict, random_state=job.model_seed)
    except (TypeError, ValueError) as exc:
        raise DataError(f"job {key.name}: its params.json does not build model {job.base!r} ({exc}); "
                        f"{resume}") from None
    try:
        state = store.read_state(key)
    except DataError:
        raise
    except Exception as exc:  # zipfile, numpy's format reader and OSError each raise their own types
        raise DataError(f"job {key.name}: its fitted weights (state.npz) are damaged ({type(exc).__name__}: "
                        f"{str(exc)[:120]}); {resume}") from None
    try:
        est.load_state(state)
    except (KeyError, ValueError, TypeError, RuntimeError) as exc:  # torch: RuntimeError on shape mismatches
        raise DataError(f"job {key.name}: its fitted weights do not fit the model "
                        f"({type(exc).__name__}: {str(exc).splitlines()[0][:120]}); {resume}") from None
    return est


def explain_segment(run_dir, segment_id: str, *, model: str | None = None, seed: int | None = None,
                    output=None, top: int = 15, target: str | None = None) -> dict[str, Any]:
    """``benchmark explain``: the figure (PNG) of the job that held ``segment_id`` out.

    Parameters
    ----------
    run_dir : path
    segment_id : str
    model : str, optional
        A neural model of the run (default: the first).
    seed : int, optional
        Split seed (default: the run's first).
    output : path, optional
        The PNG (default ``RUN_DIR/explain/MODEL__SEGMENT.png``).
    top : int
        Features shown for the hybrid.
    target : str, optional
        A rating: the hybrid's attributions are of that output (default: the mean of all).

    Returns
    -------
    dict
        ``model``, ``seed``, ``fold``, ``segment_id``, ``grid``, ``input``, ``png``, ``features``,
        ``rollout``, ``prediction``, ``rating``, ``targets``, ``target``.

    Raises
    ------
    ConfigError
        No neural model in the run, an unknown segment or rating, or an unfinished job.
    DataError
        The job's stored parameters or weights are damaged.
    """
    from models.attribution import explain_input  # torch
    from reports.plots import plot_explanation, save_figures  # matplotlib

    store = RunStore(run_dir)
    manifest = store.read_manifest()
    cfg = load_config(run_dir)
    neural = [m for m, ref in cfg.refs.items() if "neural" in MODELS.get(ref.base).tags]
    if not neural:
        raise ConfigError(f"run {Path(run_dir).name!r} has no neural model to explain (models: "
                          f"{', '.join(cfg.run_models)})")
    model = model or neural[0]
    if model not in neural:
        raise ConfigError(f"--model {model!r} is not a neural model of this run; use one of {', '.join(neural)}")
    targets = list(manifest.get("target_names") or [])
    if target is not None and target not in targets:
        close = difflib.get_close_matches(target, targets, n=3)
        raise ConfigError(f"--target {target!r} is not a rating of this run" + (
            f"; did you mean {', '.join(close)}?" if close else f" (ratings: {', '.join(targets)})"))
    seed = cfg.seeds[0] if seed is None else seed
    folds = store.read_folds().frame
    hit = folds[(folds["sample_id"] == segment_id) & (folds["seed"] == seed) & (folds["role"] == "test")]
    if hit.empty:
        close = difflib.get_close_matches(segment_id, folds["sample_id"].unique().tolist(), n=3)
        raise ConfigError(f"segment {segment_id!r} is in no test fold of seed {seed} of this run"
                          + (f"; did you mean {', '.join(close)}?" if close else ""))
    fold = int(hit["fold"].iloc[0])
    key = JobKey(model, seed, fold)
    est = _estimator(store, key)
    # The segment's input as the run assembled it (its feature sets, cache, SoundFont).
    assembly, _ = open_run(run_dir, [model], segments=[segment_id])
    X = assembly.matrix(model)
    result = explain_input(est, X, None if target is None else targets.index(target))
    rating = assembly.dataset.y[0]
    frame_rate, bands = _axes(est)
    shown = dict(result, kind=est.input, frame_rate=frame_rate, bands=bands, targets=targets, rating=rating,
                 target=target, attribution_of=f"rating: {target}" if target else "mean over the ratings")
    out = Path(output) if output else Path(run_dir) / "explain" / f"{model}__{segment_id}.png"
    out.parent.mkdir(parents=True, exist_ok=True)
    fig = plot_explanation(shown, title=f"{model} (seed {seed}, fold {fold}) on {segment_id}: attention rollout",
                           top=top)
    out.write_bytes(save_figures({"explain": (fig, "")})[1]["explain"])
    return {"model": model, "seed": seed, "fold": fold, "segment_id": segment_id, "grid": result["grid"],
            "input": est.input, "png": str(out), "features": result.get("features", []),
            "rollout": result["rollout"], "prediction": result["prediction"], "rating": rating,
            "targets": targets, "target": target}
