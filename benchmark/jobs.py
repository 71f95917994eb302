"""Jobs as data: every fit of a run planned up front, with its dependencies.

A :class:`Job` is one (model, split seed, model seed, fold) with the model's
parameters and the jobs whose predictions it consumes. The split seed picks
the folds; the model seed is the estimator's ``random_state``. They are equal
by default; a seed bag plans one member job per model seed under the same
folds. A model whose registry entry lists the input kind
``member_predictions`` is an ensemble: its entry says which member jobs it
reads (``plan_members``) and whether it trains on their inner out-of-fold
predictions (``train_on="inner"``); the planner never looks at model names. A
model whose entry lists ``imported_predictions`` scores a file of predictions
made elsewhere (:mod:`benchmark.imported`): it is planned like any other.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from benchmark.errors import ConfigError
from benchmark.params import FrozenDict
from benchmark.store import JobKey
from models import MODELS

#: Input kind of a model that consumes other models' predictions (registry metadata).
MEMBER_PREDICTIONS = "member_predictions"
#: Input kind of a model whose predictions come from a file (registry metadata; ``models.imported``).
IMPORTED_PREDICTIONS = "imported_predictions"


def freeze(v: Any) -> Any:
    """A hashable, ordered form of a parameter value (lists -> tuples, dicts -> sorted pairs, a FrozenDict)."""
    if isinstance(v, list | tuple):
        return tuple(freeze(x) for x in v)
    if isinstance(v, dict):
        return FrozenDict(sorted((k, freeze(x)) for k, x in v.items()))
    return v


@dataclass(frozen=True)
class Job:
    """One planned fit.

    Attributes
    ----------
    key : JobKey
        Model name (as the run calls it), split seed, fold, model seed.
    base : str
        The registered model the name resolves to (a study's variant names a base model).
    params : tuple of (name, value)
        Parameters passed to the base model's factory (besides ``random_state``).
    deps : tuple of JobKey
        Jobs whose predictions this job consumes (ensembles), in member order.
    inner : bool
        Also compute inner out-of-fold predictions of the training fold (a stacker reads them).
    """

    key: JobKey
    base: str
    params: tuple = ()
    deps: tuple[JobKey, ...] = ()
    inner: bool = False

    @property
    def model(self) -> str:
        return self.key.model

    @property
    def seed(self) -> int:
        return self.key.seed

    @property
    def fold(self) -> int:
        return self.key.fold

    @property
    def model_seed(self) -> int:
        return self.key.mseed

    @property
    def param_dict(self) -> dict[str, Any]:
        # A frozen dict stays a dict's pairs (FrozenDict): a class-path model's decode_value makes it a dict again.
        return {k: list(v) if isinstance(v, tuple) and not isinstance(v, FrozenDict) else v for k, v in self.params}


@dataclass
class ModelRef:
    """A run's model name resolved to a registered model and its parameters."""

    name: str
    base: str
    params: dict[str, Any] = field(default_factory=dict)


def resolve_model(name: str, variants: dict[str, dict] | None, members: list[str] | None = None) -> ModelRef:
    """Resolve ``name`` (a registered model or a study's named variant) to its base and params.

    ``members`` (``--members``) overrides the member list of an ensemble that takes one.

    Raises
    ------
    UnknownNameError
        Neither a variant nor a registered model.
    """
    variants = variants or {}
    if name in variants:
        v = variants[name]
        ref = ModelRef(name, v["model"], dict(v.get("params", {})))
    else:
        MODELS.get(name)
        ref = ModelRef(name, name, {})
    spec = MODELS.get(ref.base)
    if members and MEMBER_PREDICTIONS in spec.inputs and "members" in _factory_params(spec):
        ref.params["members"] = list(members)  # the command line overrides a study's member list
    return ref


def _factory_params(spec) -> set[str]:
    return {p for p in inspect.signature(spec.factory).parameters if p != "self"}


def is_ensemble(spec) -> bool:
    return MEMBER_PREDICTIONS in spec.inputs


def is_imported(spec) -> bool:
    """True for a model whose predictions come from a file (nothing is fitted)."""
    return IMPORTED_PREDICTIONS in spec.inputs


def ensemble_members(spec, params: dict[str, Any], seed: int) -> list[tuple[str, int]]:
    """(member model, model seed) pairs an ensemble reads in split seed ``seed``."""
    merged = {**dict(spec.defaults), **params}
    return list(spec.extra["plan_members"](merged, seed))


def plan(models: Iterable[str], seeds: Iterable[int], n_folds: dict[int, int],
         variants: dict[str, dict] | None = None, members: list[str] | None = None) -> list[Job]:
    """Every job of the grid, members before the ensembles that read them.

    Parameters
    ----------
    models : names (registered or variants)
    seeds : split seeds
    n_folds : folds per split seed
    variants : name -> {"model": base, "params": {...}}
    members : ``--members`` override for ensembles

    Returns
    -------
    list of Job
        Ordered so that every job comes after its dependencies.

    Raises
    ------
    ConfigError
        An ensemble lists itself or another ensemble as a member.
    """
    refs = {m: resolve_model(m, variants, members) for m in models}
    jobs: dict[JobKey, Job] = {}
    inner: set[JobKey] = set()
    order: list[JobKey] = []

    def add(key: JobKey, ref: ModelRef, deps=()) -> None:
        if key not in jobs:
            order.append(key)
        jobs[key] = Job(key, ref.base, freeze(ref.params), tuple(deps))

    for s in seeds:
        for k in range(n_folds[s]):
            for m, ref in refs.items():
                spec = MODELS.get(ref.base)
                if not is_ensemble(spec):
                    add(JobKey(m, s, k), ref)
                    continue
                deps = []
                for member, mseed in ensemble_members(spec, ref.params, s):
                    mref = refs.get(member) or resolve_model(member, variants)
                    if is_ensemble(MODELS.get(mref.base)):
                        raise ConfigError(f"ensemble {m!r} lists {member!r}, itself an ensemble, as a member; "
                                          "list base models only")
                    dkey = JobKey(member, s, k, None if mseed == s else mseed)
                    if dkey not in jobs:
                        add(dkey, mref)
                    deps.append(dkey)
                    if spec.extra.get("train_on") == "inner":
                        inner.add(dkey)
                add(JobKey(m, s, k), ref, deps)
    # Ensembles after their members: members were added first, an ensemble last.
    planned = [jobs[key] for key in order]
    out = [Job(j.key, j.base, j.params, j.deps, j.key in inner) for j in planned]
    return sorted(out, key=lambda j: (bool(j.deps), j.key.seed, j.key.fold))


def waves(jobs: list[Job]) -> list[list[Job]]:
    """Split ``jobs`` into dependency waves: a job's dependencies are all in earlier waves (or not in ``jobs``)."""
    todo = {j.key: j for j in jobs}
    level: dict[JobKey, int] = {}

    def depth(key: JobKey) -> int:
        if key not in todo:
            return -1
        if key not in level:
            level[key] = 1 + max((depth(d) for d in todo[key].deps), default=-1)
        return level[key]

    out: dict[int, list[Job]] = {}
    for j in jobs:
        out.setdefault(depth(j.key), []).append(j)
    return [out[i] for i in sorted(out)]
