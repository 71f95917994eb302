"""What defines a run: :class:`RunConfig`, checked in full before anything slow starts.

A run's config is saved in its manifest and reused by ``--resume``. Checking
it (:meth:`RunConfig.validate`) resolves every model name, the split, seeds,
workers and backend options, and every model's parameter values and what they
need (a pre-trained checkpoint, a GPU) through the registry
(:meth:`benchmark.registry.Spec.check_params`), so a bad value fails in one
line before the data is read. :func:`model_definitions` says what each model
name of a finished run meant (base model, parameters, feature sets,
checkpoint), for ``benchmark compare``.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

from benchmark.backends import BACKENDS, check_backend_options, check_jobs
from benchmark.errors import ConfigError
from benchmark.execute import model_params
from benchmark.jobs import MEMBER_PREDICTIONS, ModelRef, ensemble_members, is_ensemble, is_imported, resolve_model
from benchmark.store import RunStore
from features.cache import resolve_cache_dir
from features.sets import FEATURE_SETS, is_array_stage, media_read, unavailable_sets
from features.soundfonts import split_soundfonts
from features.stages import check_soundfont_use
from models import MODELS
from splits import get_split, split_problem

__all__ = ["DEVICES", "ERROR_SCORES", "EXECUTION_OPTIONS", "RunConfig", "load_config", "model_definitions"]

ERROR_SCORES = ("nan", "raise")
#: Where neural models train (``--device``); ``auto`` takes a GPU when torch sees one.
DEVICES = ("auto", "cpu", "cuda")
#: Options that change how a run executes, never its results: ``--resume`` may change them.
EXECUTION_OPTIONS = ("jobs", "backend", "scheduler", "cache_dir")


@dataclass
class RunConfig:
    """Everything that defines a run; saved in the manifest and reused by ``--resume``.

    ``variants`` maps a study's model names to a registered model and its
    parameters; ``members`` overrides the member list of every ensemble that
    takes one (``--members``). ``study`` is the resolved study file, if any.
    """

    models: list[str]
    split: str = "lopo"
    seeds: list[int] = field(default_factory=lambda: [0])
    features: list[str] | None = None
    n_splits: int | None = None
    data_dir: str | None = None
    include_score: bool = True
    on_bad_input: str = "skip"
    error_score: str = "nan"
    jobs: int = 1
    cache_dir: str | None = None
    soundfont: str | None = None
    variants: dict = field(default_factory=dict)
    members: list[str] | None = None
    backend: str = "joblib"
    scheduler: str | None = None
    study: dict | None = None
    device: str = "auto"
    dataset: str | None = None

    @property
    def refs(self) -> dict[str, ModelRef]:
        """Every model name of the run resolved once to its base model and parameters, in report order.

        An ensemble's members (those under the split seed's model seed) come before it: they run and are
        reported too. Resolved once per set of models, variants and members; the config is not changed.
        """
        memo = self.__dict__.setdefault("_memo", {})
        key = ("refs", repr((self.models, self.variants, self.members, self.seeds[:1])))
        if key not in memo:
            refs: dict[str, ModelRef] = {}
            for m in self.models:
                ref = resolve_model(m, self.variants, self.members)
                spec = MODELS.get(ref.base)
                if is_ensemble(spec) and self.seeds:
                    s = self.seeds[0]
                    for name, mseed in ensemble_members(spec, ref.params, s):
                        if mseed == s and name not in refs:
                            refs[name] = resolve_model(name, self.variants, self.members)
                if m not in refs:
                    refs[m] = ref
            memo[key] = refs
        return memo[key]

    @property
    def run_models(self) -> list[str]:
        """The run's model names: ``models`` with each ensemble's members listed before it."""
        return list(self.refs)

    def validate(self) -> None:
        """Check every option, and every model's parameters and needs, before anything slow starts.

        The checks run once: a second call on an unchanged config returns at once (the CLI checks a config
        before it makes the run directory, and the runner receives it checked). Nothing is changed.

        Raises
        ------
        ConfigError
            One line naming the option or model and what it may be.
        """
        memo = self.__dict__.setdefault("_memo", {})
        state = repr(asdict(self))
        if memo.get("validated") == state:
            return
        MODELS.check_plugins()  # a plugin that failed to load: one line naming its entry point
        refs = self.refs  # every name resolved (an unknown one raises with close matches)
        get_split(self.split)
        if self.dataset is not None and self.data_dir is not None:
            raise ConfigError(f"--dataset {self.dataset!r} and --data-dir {self.data_dir!r} both name the data; "
                              "--data-dir is PercePiano's folder, --dataset any described dataset: pass one")
        if not self.seeds:
            raise ConfigError("no seeds given; pass e.g. --seeds 0,1,2")
        repeated = sorted({s for s in self.seeds if self.seeds.count(s) > 1})
        if repeated:
            raise ConfigError(f"--seeds repeats {', '.join(map(str, repeated))}; every job would run twice; "
                              "list each seed once")
        check_jobs(self.jobs)
        if self.n_splits is not None and (isinstance(self.n_splits, bool) or int(self.n_splits) < 2):
            raise ConfigError(f"--n-splits {self.n_splits!r}: use at least 2 folds")
        if self.error_score not in ERROR_SCORES:
            raise ConfigError(f"error_score={self.error_score!r}; use one of {ERROR_SCORES}")
        if self.backend not in BACKENDS or self.scheduler or self.backend == "dask":
            # An unknown name (with a close match), dask without a scheduler, a malformed address.
            check_backend_options(self.backend, self.scheduler)
        if self.device not in DEVICES:
            raise ConfigError(f"device={self.device!r}; use one of {', '.join(DEVICES)}")
        check_soundfont_use(self.soundfont, {fs for m in refs for fs in self.feature_sets(m)})
        self.check_models()
        self.check_ensembles_of_imported()
        memo["validated"] = state

    def check_models(self) -> None:
        """Check every model's parameter values and what they need (a checkpoint, a GPU) before the run starts.

        Each registered family declares its parameters (:meth:`benchmark.registry.Spec.check_params`);
        feature sets made from a cached artefact (a pre-trained encoder) are resolved too.

        Raises
        ------
        ConfigError
            One line naming the model, the parameter, its value and what it may be.
        """
        context = {"cache_dir": self.cache_dir}
        for m, ref in self.refs.items():
            spec = MODELS.get(ref.base)
            where = f"model {m!r}" + (f" (a variant of {ref.base!r})" if ref.base != m else "")
            spec.check_params(model_params(spec, ref.params, self.device), where=where, context=context)
        sets = sorted({fs for m in self.refs for fs in self.feature_sets(m)})
        for fs in sets:
            if FEATURE_SETS.get(fs).extra.get("needs_cache"):
                # Built from a cached artefact (a pre-trained encoder): resolving it now finds a missing one.
                try:
                    FEATURE_SETS.build(fs, cache_root=str(resolve_cache_dir(self.cache_dir)))
                except ConfigError as exc:
                    users = ", ".join(m for m in self.refs if fs in self.feature_sets(m))
                    raise ConfigError(f"feature set {fs!r} (read by {users}): {exc}") from None

    def check_dataset(self, dataset) -> None:
        """Check that the run fits the dataset, right after it is read and before any feature is built.

        The split must find its group column (``lopo`` the performer, ``group:COLUMN`` a declared group
        column), and every model must read only media every item has: the MIDI-only families (feature
        sets that read the notes: midi, score, roll) are unavailable when some item is audio only.

        Parameters
        ----------
        dataset : benchmark.dataset.Dataset

        Raises
        ------
        ConfigError
            One line: the split and why, or the models that cannot run and which can.
        """
        problem = split_problem(self.split, dataset.meta, dataset.group_columns)
        if problem is not None:
            raise ConfigError(f"{problem} (dataset {dataset.name!r})")
        no_midi = int((~dataset.has_media("midi")).sum())
        if no_midi:
            blocked = {m: unavailable_sets(self.feature_sets(m), {"audio"}) for m in self.run_models}
            blocked = {m: sets for m, sets in blocked.items() if sets}
            if blocked:
                sets = sorted({fs for v in blocked.values() for fs in v})
                raise ConfigError(
                    f"model(s) {', '.join(blocked)} read MIDI (feature sets {', '.join(sets)}), and {no_midi} of "
                    f"{dataset.n_samples} items of dataset {dataset.name!r} have audio only; choose models that read "
                    f"audio ({', '.join(audio_models()[:6])}, ...; 'benchmark list models --dataset "
                    f"{dataset.description or dataset.root}' marks the rest)")
        recorded = int(dataset.has_media("audio").sum())
        if recorded and self.soundfont and len(split_soundfonts(self.soundfont)) > 1:
            raise ConfigError(f"--soundfont {self.soundfont!r} compares renderings, and {recorded} items of dataset "
                              f"{dataset.name!r} are recordings (they are never rendered); pass one SoundFont or none")

    def check_ensembles_of_imported(self) -> None:
        """Refuse an ensemble that needs what an imported model cannot give.

        A stacker trains on its members' inner out-of-fold predictions of the training fold, which a file of
        test-fold predictions does not hold; a seed bag refits its member under other model seeds.

        Raises
        ------
        ConfigError
            One line naming the ensemble, the imported member and what to use instead.
        """
        for m, ref in self.refs.items():
            spec = MODELS.get(ref.base)
            if not is_ensemble(spec):
                continue
            for member, mseed in ensemble_members(spec, ref.params, self.seeds[0]):
                mref = self.refs.get(member) or resolve_model(member, self.variants)
                if not is_imported(MODELS.get(mref.base)):
                    continue
                if spec.extra.get("train_on") == "inner":
                    raise ConfigError(f"ensemble {m!r} trains on its members' inner out-of-fold predictions; "
                                      f"{member!r} is imported (a file of test-fold predictions) and has none: "
                                      "use ensemble_mean, or import a model that is refitted here")
                if mseed != self.seeds[0]:
                    raise ConfigError(f"ensemble {m!r} refits its member under other model seeds; {member!r} is "
                                      "imported and cannot be refitted: bag a registered model")

    def feature_sets(self, model: str) -> list[str]:
        """The feature sets ``model`` consumes: its registered inputs, ``--features`` overriding them.

        ``--features`` replaces the model's tabular sets, and its array stages
        when it names any; a model that takes no table (an AST on ``mel``)
        keeps its own inputs when ``--features`` names only tables.

        Raises
        ------
        ConfigError
            ``--features`` names an array stage for a model that reads only a table.
        """
        ref = self.refs.get(model) or resolve_model(model, self.variants)
        spec = MODELS.get(ref.base)
        if is_ensemble(spec) or is_imported(spec):
            return []
        own = [i for i in spec.inputs if i != MEMBER_PREDICTIONS]
        if not self.features:
            return own
        own_arrays = [i for i in own if is_array_stage(i)]
        asked_arrays = [f for f in self.features if is_array_stage(f)]
        asked_tables = [f for f in self.features if not is_array_stage(f)]
        if asked_arrays and not own_arrays:
            raise ConfigError(f"--features {','.join(asked_arrays)}: model {model!r} reads a table, not array "
                              f"stages; give it tabular sets (e.g. midi,audio,score)")
        takes_table = len(own_arrays) < len(own)
        tables = asked_tables if (takes_table or not own_arrays) else []
        return (asked_arrays or own_arrays) + tables

    def results_key(self) -> dict:
        """The options that shape results: everything but :data:`EXECUTION_OPTIONS` and a study's report options."""
        key = {k: v for k, v in asdict(self).items() if k not in EXECUTION_OPTIONS}
        # With the ensembles' members: a manifest written before validate() stopped adding them to
        # ``models`` names the same run.
        key["models"] = self.run_models
        if key.get("study"):
            key["study"] = {k: v for k, v in key["study"].items() if k != "report"}
        return key


def audio_models() -> list[str]:
    """Registered models that read no MIDI (every input an audio feature set or array stage): tabular ones
    first, then array models, then those that need a pre-trained artefact; by name within each."""
    out = []
    for spec in MODELS:
        sets = [i for i in spec.inputs if i in FEATURE_SETS]  # not member or imported predictions
        if sets and all(set(media_read(fs)) <= {"audio"} for fs in sets):
            specs = [FEATURE_SETS.get(fs) for fs in sets]
            rank = (any(s.extra.get("needs_cache") for s in specs), any(is_array_stage(fs) for fs in sets))
            out.append((rank, spec.name))
    return [name for _, name in sorted(out)]


def results_key(config: dict) -> dict:
    """The result-shaping options of a manifest's config (see :meth:`RunConfig.results_key`)."""
    try:
        return RunConfig(**config).results_key()
    except TypeError:
        return dict(config)


def load_config(run_dir: str | os.PathLike) -> RunConfig:
    """Read the config of an existing run (for ``--resume``).

    Raises
    ------
    ConfigError
        Not a run directory, or an unreadable manifest.
    """
    manifest = RunStore(run_dir).read_manifest()
    try:
        return RunConfig(**manifest["config"])
    except (KeyError, TypeError) as exc:
        raise ConfigError(f"{Path(run_dir) / 'manifest.json'} is unreadable ({exc}); start a new run") from None


#: Parameters that are not part of what a model is: the seed is the job's, set by the runner.
_NOT_DEFINITION = ("random_state",)


def model_definitions(run_dir: str | os.PathLike) -> dict[str, dict]:
    """What each model name of a run meant: base model, parameters, feature sets, checkpoint.

    The parameters are the fitted estimator's resolved ones (``get_params()``,
    stored with each job) where a job finished, else the registered defaults
    overridden by the run's variant; the checkpoint is the key a neural job
    started from (``init`` resolved), else the ``init`` asked for.

    Returns
    -------
    dict model -> {"base", "params", "features", "checkpoint", "source"}
        ``source`` is ``"jobs"`` or ``"manifest"``; a value the run does not record is None.

    Raises
    ------
    ConfigError
        Not a run directory.
    """
    store = RunStore(run_dir)
    manifest = store.read_manifest()
    try:
        cfg = RunConfig(**manifest["config"])
    except (KeyError, TypeError):
        cfg = None
    stored: dict[str, dict] = {}
    for key in store.job_keys():
        if key.model in stored:
            continue
        try:
            p = store.read_job_params(key)
        except (OSError, ValueError):
            p = None
        if isinstance(p, dict) and (store.read_job_rows(key)["status"] == "ok").all():
            stored[key.model] = p
    out = {}
    for model in manifest.get("models") or (cfg.models if cfg else []):
        d = {"base": None, "params": None, "features": None, "checkpoint": None, "source": "manifest"}
        if cfg is not None:
            try:
                ref = resolve_model(model, cfg.variants, cfg.members)
                spec = MODELS.get(ref.base)
                d["base"] = ref.base
                est = spec.build(**model_params(spec, ref.params, cfg.device))  # __init__ only stores them
                d["params"] = est.get_params() if hasattr(est, "get_params") else dict(ref.params)
                d["features"] = cfg.feature_sets(model)
            except ConfigError:
                pass  # a name this version no longer resolves (or a SoundFont condition): the jobs may say
        job = stored.get(model)
        if job is not None:
            d["source"] = "jobs"
            d["base"] = job.get("base") or d["base"]
            d["params"] = dict(job.get("params") or {})
        # JSON-plain (tuples as lists), as params.json stores them, so both sources compare equal.
        params = json.loads(json.dumps({k: v for k, v in (d["params"] or {}).items() if k not in _NOT_DEFINITION},
                                       default=str))
        d["params"] = params if d["params"] is not None else None
        fitted = (job or {}).get("fitted") or {}
        d["checkpoint"] = fitted.get("init_key") or params.get("init")
        out[model] = d
    return out


def learner_families(run_dir: str | os.PathLike) -> dict[str, str]:
    """Each model of a run as the calibration knows learners: ``deterministic``, ``tabular`` or ``neural``.

    From the model registry: a family whose entry says ``deterministic=True`` (no
    randomness at all) or ``deterministic="grouped"`` (no randomness when the split
    groups its inner validation, as a grouped split does) is deterministic; one
    tagged ``neural`` is neural; every other model is tabular. An ensemble is neural
    when any member is. The report also counts a model whose predictions are
    identical across seeds as deterministic (reports read the data, not the registry).

    Returns
    -------
    dict model -> family; a model whose base this version does not resolve is left out.
    """
    store = RunStore(run_dir)
    grouped = bool((store.read_manifest().get("split") or {}).get("group_column"))
    out = {}
    for model, d in model_definitions(run_dir).items():
        base = d.get("base")
        if base is None or base not in MODELS:
            continue
        spec = MODELS.get(base)
        det = spec.extra.get("deterministic", False)
        members = (d.get("params") or {}).get("members") or []
        neural = "neural" in spec.tags or any(m in MODELS and "neural" in MODELS.get(m).tags for m in members)
        if det is True or (det == "grouped" and grouped):
            out[model] = "deterministic"
        else:
            out[model] = "neural" if neural else "tabular"
    return out
