"""``benchmark validate-model``: a model's estimator protocol, checked on a small part of the real data.

HEAR ships a validator for its model API; this is the harness's. :func:`validate_model` takes a registered
model or a class path, builds its input on a few performers' segments exactly as a run would (the
model's feature sets through the cache, :class:`benchmark.assembly.Assembly`; an ensemble's members'
predictions and an imported model's file are stood in for by noisy copies of the ratings), trains on all
but one performer and tests on that one, and runs each check of :data:`CHECKS`. A failing check says
what is wrong; the others still run.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from benchmark.assembly import Assembly
from benchmark.dataset import Dataset, load_dataset
from benchmark.errors import ConfigError
from benchmark.execute import model_params
from benchmark.jobs import is_ensemble, is_imported
from features.build import build_features
from features.cache import Cache, resolve_cache_dir
from features.sets import FEATURE_SETS
from models import MODELS
from splits import performer_units

#: The checks, in the order they run.
CHECKS = (
    "fit returns self",
    "predict gives (n_samples, n_targets), finite",
    "predict before fit raises",
    "get_params rebuilds an equal model",
    "same random_state, same predictions",
    "a refit carries no state from an earlier fit",
    "the test fold never reaches the fitted model",
)
#: Segments used by default: four performers' worth, a few seconds of fitting for a tabular model.
N_SEGMENTS = 96
#: Performers taken (three to train on, one to test).
N_UNITS = 4
#: What a poisoned test input is set to.
POISON = 1e6


@dataclass
class Check:
    name: str
    ok: bool
    detail: str = ""


@dataclass
class ValidationReport:
    """What :func:`validate_model` found: one :class:`Check` per entry of :data:`CHECKS`."""

    model: str
    source: str
    n_train: int
    n_test: int
    inputs: str
    checks: list[Check] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)

    def describe(self) -> str:
        return (f"{self.source} model, fitted on {self.n_train} segments of {N_UNITS - 1} performers and tested "
                f"on {self.n_test} of another ({self.inputs})")


def _subset(ds: Dataset, n_segments: int) -> tuple[Dataset, np.ndarray, np.ndarray, np.ndarray]:
    """The first :data:`N_UNITS` performer units (sorted) with at least two segments, ``n_segments`` in all:
    (dataset, train positions, test positions, group labels)."""
    units = performer_units(ds.meta)
    names = sorted(u for u in set(units) if int(np.sum(units == u)) >= 2)[:N_UNITS]
    if len(names) < 3:
        raise ConfigError(f"the data holds {len(names)} performers with two segments or more; validate-model needs 3")
    per = max(2, n_segments // len(names))
    keep = np.zeros(len(units), dtype=bool)
    for u in names:
        keep[np.flatnonzero(units == u)[:per]] = True
    sub = ds.subset(keep)
    groups = performer_units(sub.meta)
    test = np.flatnonzero(groups == names[-1])
    train = np.flatnonzero(groups != names[-1])
    return sub, train, test, groups


def _stand_in(y: np.ndarray, members: int | None, seed: int = 0) -> np.ndarray:
    """Noisy copies of the ratings: what an ensemble's members or an imported file would give."""
    rng = np.random.default_rng(seed)
    if members is None:
        return y + rng.normal(0, 0.05, y.shape)
    return np.stack([y + rng.normal(0, s, y.shape) for s in np.linspace(0.05, 0.3, members)], axis=1)


def _input(spec, name: str, ds: Dataset, features: list[str] | None, cache_dir) -> tuple[Any, str]:
    """The model's input for every segment of ``ds``, and a description of it."""
    if is_ensemble(spec):
        return _stand_in(ds.y, 3), "three members' predictions, stood in for by noisy ratings"
    if is_imported(spec):
        return _stand_in(ds.y, None), "a file's predictions, stood in for by noisy ratings"
    sets = list(features) if features else [i for i in spec.inputs]
    for fs in sets:
        FEATURE_SETS.get(fs)
    cache = Cache(resolve_cache_dir(cache_dir))
    fm = build_features(ds.meta, sets, cache, progress=False, on_bad_input="error")
    assembly = Assembly(ds, fm, {}, None, None, str(cache.root.resolve()), lambda _m: sets, {name: {"model": name}})
    return assembly.matrix(name), f"features {','.join(sets)}"


def _poisoned(X, rows: np.ndarray):
    """``X`` with the inputs of ``rows`` replaced by :data:`POISON` (a lazy view: its table)."""
    if isinstance(X, np.ndarray):
        P = X.copy()
        P[rows] = POISON
        return P
    P = X[np.arange(len(X))]
    P.table[rows] = POISON
    return P


def _plain(v: Any) -> Any:
    return json.loads(json.dumps(v, default=str))


def _same(a: np.ndarray, b: np.ndarray) -> str | None:
    """None when equal to rounding (1e-9 relative), else how far apart."""
    if a.shape != b.shape:
        return f"shapes {a.shape} and {b.shape}"
    if np.allclose(a, b, rtol=1e-9, atol=1e-12, equal_nan=True):
        return None
    return f"predictions differ by up to {float(np.nanmax(np.abs(a - b))):.3g}"


def validate_model(model: str, *, params: dict | None = None, features: list[str] | None = None, data_dir=None,
                   cache_dir=None, n_segments: int | None = None, dataset: Dataset | None = None) -> ValidationReport:
    """Run every check of :data:`CHECKS` on ``model``.

    Parameters
    ----------
    model : str
        A registered model or a class path (``my_pkg.models:MyModel``).
    params : dict, optional
        Parameters of the model (checked as a study's are).
    features : list of str, optional
        Feature sets to fit on instead of the model's own (``--features``).
    data_dir, cache_dir : path, optional
    n_segments : int, optional
        Segments used (default :data:`N_SEGMENTS`).
    dataset : Dataset, optional
        Instead of loading ``data_dir``.

    Returns
    -------
    ValidationReport

    Raises
    ------
    ConfigError
        An unknown model, a class path that does not import, a bad parameter: before anything is fitted.
    """
    MODELS.check_plugins()
    spec = MODELS.get(model)
    params = dict(params or {})
    if is_imported(spec):
        # The protocol of the imported family, checked without a file: its input is stood in for (see _input).
        params.setdefault("path", "(stand-in: noisy ratings)")
    params = spec.check_params(params, where=f"model {model!r}", context={"cache_dir": cache_dir})
    ds = dataset if dataset is not None else load_dataset(data_dir)
    sub, tr, te, groups = _subset(ds, n_segments or N_SEGMENTS)
    X, described = _input(spec, model, sub, features, cache_dir)
    y, n_targets = sub.y, sub.y.shape[1]
    kwargs = model_params(spec, params, "cpu")

    def make(seed: int):
        return spec.build(**kwargs, random_state=seed)

    def fit(est, rows=tr, X_=X):
        return est.fit(X_[rows], y[rows], groups=groups[rows])

    report = ValidationReport(model, spec.source, len(tr), len(te), described)
    checks: list[tuple[str, Callable[[], str | None]]] = []
    state: dict[str, Any] = {}

    def fit_returns_self():
        est = make(0)
        state["est"] = est
        out = fit(est)
        return None if out is est else f"fit returned {type(out).__name__}, not the estimator itself"

    def predict_shape():
        est = state.get("est") or fit(make(0))
        pred = np.asarray(est.predict(X[te]))
        state["pred0"] = pred
        if pred.shape != (len(te), n_targets):
            return f"predict gave shape {pred.shape} for {len(te)} segments; expected ({len(te)}, {n_targets})"
        if not np.isfinite(pred).all():
            return f"{int((~np.isfinite(pred)).sum())} predictions are NaN or inf"
        return None

    def before_fit():
        try:
            out = make(0).predict(X[te])
        except Exception:
            return None
        return f"predict before fit returned {type(out).__name__} of shape {np.shape(out)} instead of raising"

    def rebuilds():
        est = fit(make(0))
        p = est.get_params()
        if not isinstance(p, dict):
            return f"get_params returned {type(p).__name__}, not a dict"
        seed = p.get("random_state", 0)
        again = spec.build(**{k: v for k, v in p.items() if k != "random_state"}, random_state=seed)
        if _plain(again.get_params()) != _plain(p):
            diff = sorted(k for k in set(p) | set(again.get_params()) if _plain(p.get(k)) != _plain(again.get_params().get(k)))
            return f"the rebuilt model's get_params differ in {', '.join(diff)}"
        return _same(np.asarray(fit(again).predict(X[te]), dtype=float), np.asarray(est.predict(X[te]), dtype=float))

    def seeded():
        a = np.asarray(fit(make(1)).predict(X[te]), dtype=float)
        b = np.asarray(fit(make(1)).predict(X[te]), dtype=float)
        state["seed1"] = a
        why = _same(a, b)
        return None if why is None else f"two fits with random_state=1 disagree: {why}"

    def no_state():
        est = make(1)
        other = tr[::-1][: max(2, math.ceil(len(tr) / 2))]
        fit(est, rows=np.sort(other), X_=_poisoned(X, np.sort(other)[:1]))
        fit(est)
        ref = state.get("seed1")
        if ref is None:
            ref = np.asarray(fit(make(1)).predict(X[te]), dtype=float)
        why = _same(np.asarray(est.predict(X[te]), dtype=float), ref)
        return None if why is None else f"fitted after an earlier fit, it predicts otherwise than a fresh one: {why}"

    def test_fold():
        P = _poisoned(X, te)
        est = fit(make(1), X_=P)
        clean = np.asarray(est.predict(X[te]), dtype=float)
        ref = state.get("seed1")
        if ref is not None and (why := _same(clean, ref)) is not None:
            return f"fitted with the test fold's inputs poisoned, it predicts otherwise: {why}"
        est.predict(P[te])
        if (why := _same(np.asarray(est.predict(X[te]), dtype=float), clean)) is not None:
            return f"predicting the poisoned test fold changed the fitted model: {why}"
        mixed = np.concatenate([te[:1], te[1:]])
        first_poisoned = _poisoned(X, te[:1])
        out = np.asarray(est.predict(first_poisoned[mixed]), dtype=float)
        if len(te) > 1 and (why := _same(out[1:], clean[1:])) is not None:
            return f"one poisoned test segment changed the predictions of the others: {why}"
        return None

    checks = list(zip(CHECKS, (fit_returns_self, predict_shape, before_fit, rebuilds, seeded, no_state, test_fold),
                      strict=True))
    for name, fn in checks:
        try:
            why = fn()
        except Exception as exc:  # a check that raises fails, saying what was raised
            why = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
        report.checks.append(Check(name, why is None, why or ""))
    return report
