"""What a run tells its user while it works: the plan, an estimate, and an ETA from finished work.

* :func:`job_costs` reads ``benchmark/costs.json``: seconds of one job per
  model (one core, a ``lopo``-sized training fold) and of one segment per
  feature set, measured by ``scripts/job_costs.py`` from real run
  directories; ``docs/benchmarks.md`` shows the same file.
* :func:`estimate_seconds` turns planned jobs into an estimate before
  anything runs (costs scaled by each job's training-fold size, divided by
  the workers).
* :class:`FamilyETA` is the ETA while the jobs run: per model, the mean
  duration of its finished jobs times its remaining jobs, summed over
  models and divided by the workers; a model with no finished job yet
  counts at its measured cost. One slow family (a neural network) then
  weighs what it should, and a burst of fast jobs (``mean``) does not
  make the rest look quick, as tqdm's global rate did.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from functools import lru_cache
from pathlib import Path

from tqdm.auto import tqdm

#: The measured costs (written by ``scripts/job_costs.py``).
COSTS_PATH = Path(__file__).with_name("costs.json")
#: A stacker's member also fits its inner CV: about this many times its plain job.
INNER_FACTOR = 5.0


@lru_cache(maxsize=4)
def job_costs(path: str | None = None) -> dict:
    """The measured costs: ``{"jobs": {model: {"seconds", "n_train"}}, "tags": {...}, "features": {...}}``.

    A missing or damaged file gives empty costs (no estimate), never an error: the run does not depend on it.
    """
    try:
        data = json.loads(Path(path or COSTS_PATH).read_text())
    except (OSError, ValueError):
        return {"jobs": {}, "tags": {}, "features": {}}
    return {"jobs": data.get("jobs", {}), "tags": data.get("tags", {}), "features": data.get("features", {}),
            "machine": data.get("machine", "")}


def job_cost(base: str, tags: Iterable[str], n_train: int, costs: dict) -> float | None:
    """Seconds one job of the registered model ``base`` takes on one core, or None when nothing was measured.

    A model measured itself gives its cost; otherwise the first of its tags
    with a cost (``neural``, ``trees``...). The cost scales linearly with the
    training fold's size.
    """
    entry = costs["jobs"].get(base)
    if entry is None:
        entry = next((costs["tags"][t] for t in tags if t in costs["tags"]), None)
    if entry is None:
        return None
    scale = n_train / entry["n_train"] if entry.get("n_train") else 1.0
    return float(entry["seconds"]) * scale


#: Tags of models whose jobs fit nothing worth timing: ensembles of members' predictions, imported predictions.
FREE_TAGS = frozenset({"ensemble", "imported"})


def estimate_seconds(jobs, specs: dict, n_train: dict, workers: int, costs: dict | None = None
                     ) -> tuple[float, list[str]]:
    """Seconds the ``jobs`` should take on ``workers`` cores, and the models nothing was measured for.

    Parameters
    ----------
    jobs : list of benchmark.jobs.Job
    specs : dict base name -> registry spec
    n_train : dict (seed, fold) -> training-fold size
    workers : int
    costs : dict, optional
        :func:`job_costs` (default: the measured file).
    """
    costs = job_costs() if costs is None else costs
    total, unknown = 0.0, []
    for j in jobs:
        spec = specs[j.base]
        if FREE_TAGS & set(spec.tags):
            continue  # averages of members' predictions, or a file's predictions: no fit worth counting
        c = job_cost(j.base, spec.tags, n_train[(j.seed, j.fold)], costs)
        if c is None:
            if j.model not in unknown:
                unknown.append(j.model)
            continue
        total += c * (INNER_FACTOR if j.inner else 1.0)
    return total / max(1, workers), unknown


def format_duration(seconds: float) -> str:
    """``0 s``, ``42 s``, ``7 min``, ``2.3 h``."""
    if not math.isfinite(seconds):
        return "?"
    if seconds < 90:
        return f"{round(seconds)} s"
    if seconds < 5400:
        return f"{round(seconds / 60)} min"
    return f"{seconds / 3600:.1f} h"


class FamilyETA:
    """Remaining time from finished work, per model.

    Parameters
    ----------
    remaining : dict model -> number of jobs still to run
    workers : int
    prior : dict model -> seconds of one job, optional
        Used for a model until one of its jobs finishes (the measured costs).
    """

    def __init__(self, remaining: dict[str, int], workers: int, prior: dict[str, float] | None = None) -> None:
        self.remaining = dict(remaining)
        self.workers = max(1, int(workers))
        self.prior = dict(prior or {})
        self.durations: dict[str, list[float]] = {}

    def finished(self, model: str, seconds: float) -> None:
        """One job of ``model`` finished after ``seconds`` (its own time, as a worker measured it)."""
        self.durations.setdefault(model, []).append(float(seconds))
        self.remaining[model] = max(0, self.remaining.get(model, 0) - 1)

    def per_job(self, model: str) -> float | None:
        done = self.durations.get(model)
        if done:
            return sum(done) / len(done)
        return self.prior.get(model)

    def seconds(self) -> float | None:
        """Estimated seconds left, or None while a model with jobs left has neither a finished job nor a cost."""
        total = 0.0
        for model, n in self.remaining.items():
            if n == 0:
                continue
            per = self.per_job(model)
            if per is None:
                return None
            total += per * n
        return total / self.workers


class GridProgress:
    """One progress bar for the whole grid: done/total (resumed jobs count as done), failures, per-model ETA."""

    def __init__(self, total: int, done: int, eta: FamilyETA, *, desc: str, disable: bool) -> None:
        self.failed = 0
        self.eta = eta
        # tqdm's own remaining time extrapolates its global rate: left out, the per-model ETA replaces it.
        self.bar = tqdm(total=total, initial=done, desc=desc, disable=disable, unit="job",
                        bar_format="{l_bar}{bar}| {n_fmt}/{total_fmt} [{elapsed}{postfix}]")
        self._postfix()
        self.bar.refresh()

    def _postfix(self) -> None:
        left = self.eta.seconds()
        parts = [f"eta {format_duration(left)}" if left is not None else "eta ?"]
        if self.failed:
            parts.append(f"failed {self.failed}")
        self.bar.set_postfix_str(", ".join(parts), refresh=False)

    def update(self, model: str, seconds: float, ok: bool) -> None:
        if not ok:
            self.failed += 1
        self.eta.finished(model, seconds)
        self._postfix()
        self.bar.update(1)

    def close(self) -> None:
        self.bar.close()
