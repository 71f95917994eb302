"""Models from outside the registry: a class named by its import path, any scikit-learn regressor, an object.

A model may come as a *class path* (``my_pkg.models:MyModel``: ``--models``, a study's ``class_path``,
``benchmark validate-model``), as a class a plugin registers, or as an estimator object passed to
:func:`benchmark.evaluate`. :func:`resolve_class_path` turns a class path into a registry
:class:`benchmark.registry.Spec` (the model registry resolves such names through it), whose factory
takes the class's own parameters, so a study's parameters are checked against the class's signature.

A class that follows the harness's estimator protocol (:class:`models.base.Estimator`) is built as it
is. Any other scikit-learn regressor is wrapped in :class:`SklearnRegressor`, which

* clones a fresh estimator on every ``fit`` (a refit carries nothing from an earlier fold);
* passes ``groups`` only to a ``fit`` that takes them, and ``validation`` never;
* gives a search's integer ``cv`` (``GridSearchCV(SVR(), grid)``) the harness's grouped inner CV of
  the training fold (:func:`splits.inner.inner_cv`), so inner validation is grouped like the outer split;
* fills missing feature values with the training fold's median when the estimator refuses NaN (its
  ``allow_nan`` tag), as the built-in models do;
* fits one copy per rating (``MultiOutputRegressor``) when the estimator is single-output;
* sets every ``random_state`` it has to the job's model seed.

An estimator object's parameters are recorded in the manifest as JSON (:func:`encode_params`: a nested
estimator as its class path and its own parameters), so the run can be resumed and compared.
"""

from __future__ import annotations

import importlib
import inspect
import re
from typing import Any

import numpy as np
from sklearn.exceptions import NotFittedError

from benchmark.errors import ConfigError
from benchmark.params import FrozenDict
from benchmark.registry import Spec
from splits.inner import inner_cv

#: ``package.module:Qualified.Name``: the form of a class path.
CLASS_PATH = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$")
#: Key under which :func:`encode_params` records a nested estimator.
NESTED = "__class_path__"
#: Feature sets a class-path model reads unless its class says (``INPUTS``) or ``--features`` overrides.
DEFAULT_INPUTS = ("midi",)
#: Folds of the grouped inner CV given to a search whose ``cv`` is None.
INNER_SPLITS = 5


def class_path_of(obj: Any) -> str:
    """``module:QualName`` of a class or of an object's class."""
    cls = obj if inspect.isclass(obj) else type(obj)
    return f"{cls.__module__}:{cls.__qualname__}"


def import_class(path: str, *, where: str | None = None) -> type:
    """The class a class path names.

    Raises
    ------
    ConfigError
        Not of the form ``module:Class``, a module that does not import, a missing attribute, not a class.
    """
    where = f"{where}: " if where else ""
    if not isinstance(path, str) or not CLASS_PATH.match(path):
        raise ConfigError(f"{where}class path {path!r} is not of the form 'package.module:ClassName'")
    module_name, qualname = path.split(":", 1)
    try:
        obj: Any = importlib.import_module(module_name)
    except Exception as exc:  # ImportError, or whatever the module raises while importing
        raise ConfigError(f"{where}cannot import module {module_name!r} of class path {path!r} "
                          f"({type(exc).__name__}: {exc}); install it or put it on PYTHONPATH") from None
    for part in qualname.split("."):
        if not hasattr(obj, part):
            raise ConfigError(f"{where}module {module_name!r} has no {qualname!r} (class path {path!r})")
        obj = getattr(obj, part)
    if not inspect.isclass(obj):
        raise ConfigError(f"{where}{path!r} is a {type(obj).__name__}, not a class; name the model's class")
    return obj


def _takes(fn, name: str) -> bool:
    try:
        return name in inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False


def _is_sklearn(cls: type) -> bool:
    from sklearn.base import BaseEstimator

    return issubclass(cls, BaseEstimator)


def is_native(cls: type) -> bool:
    """True for a class that follows the harness's protocol itself: its ``fit`` takes ``groups`` by name, it
    has ``get_params``, and it is not a scikit-learn estimator (those are wrapped, whatever their ``fit``
    takes)."""
    return (not _is_sklearn(cls) and _takes(getattr(cls, "fit", None), "groups")
            and callable(getattr(cls, "get_params", None)))


def _init_parameters(cls: type) -> list[inspect.Parameter]:
    try:
        sig = inspect.signature(cls)
    except (TypeError, ValueError):
        return []
    return [p for p in sig.parameters.values() if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]


# --- parameters as JSON ---------------------------------------------------------------------------
def encode_params(params: dict[str, Any], *, where: str = "model") -> dict[str, Any]:
    """Parameters as plain JSON: a nested estimator becomes ``{"__class_path__": ..., "params": {...}}``.

    Raises
    ------
    ConfigError
        A value that is neither JSON-plain nor an estimator with ``get_params`` (e.g. a splitter object as
        ``cv``): the manifest could not record it, nor a resume rebuild it.
    """
    def enc(v: Any, key: str) -> Any:
        if v is None or isinstance(v, bool | int | float | str):
            return v
        if isinstance(v, np.generic):
            return v.item()
        if isinstance(v, list | tuple):
            return [enc(x, key) for x in v]
        if isinstance(v, dict):
            return {str(k): enc(x, key) for k, x in v.items()}
        if hasattr(v, "get_params") and not inspect.isclass(v):
            return {NESTED: class_path_of(v), "params": {k: enc(x, f"{key}__{k}")
                                                         for k, x in v.get_params(deep=False).items()}}
        raise ConfigError(f"{where}: parameter {key}={v!r} can be recorded neither in the manifest nor rebuilt on "
                          "resume; give a number, string, list or estimator (an integer cv: the harness groups "
                          "the inner CV itself)")

    return {k: enc(v, k) for k, v in params.items()}


def decode_value(v: Any) -> Any:
    """The object :func:`encode_params` recorded (nested estimators rebuilt), also from a job's frozen
    parameters (a :class:`benchmark.params.FrozenDict` is a dict again, a tuple a list)."""
    if isinstance(v, FrozenDict):
        v = {k: x for k, x in v}
    if isinstance(v, tuple):
        v = list(v)
    if isinstance(v, dict) and NESTED in v:
        cls = import_class(v[NESTED])
        return cls(**decode_value(v.get("params") or {}))
    if isinstance(v, dict):
        return {k: decode_value(x) for k, x in v.items()}
    if isinstance(v, list):
        return [decode_value(x) for x in v]
    return v


# --- the wrapper ------------------------------------------------------------------------------------
class SklearnRegressor:
    """A scikit-learn regressor under the harness's estimator protocol.

    Parameters
    ----------
    cls : type
        The regressor's class.
    params : dict
        Its parameters (JSON form, :func:`encode_params`; nested estimators are rebuilt on each fit).
    random_state : int, optional
        The job's model seed, set on every ``random_state`` the estimator (or one it nests) has.
    """

    def __init__(self, cls: type, params: dict[str, Any] | None = None, random_state: int | None = None) -> None:
        self.cls = cls
        self.params = dict(params or {})
        self.random_state = random_state

    def get_params(self) -> dict[str, Any]:
        """The model's parameters (those of its class) and ``random_state``: they rebuild an equal model."""
        return {**self.params, "random_state": self.random_state}

    def _fresh(self, groups: np.ndarray | None):
        est = self.cls(**{k: decode_value(v) for k, v in self.params.items()})
        if not hasattr(est, "get_params"):
            return est
        deep = est.get_params(deep=True)
        seeds = {k: self.random_state for k in deep if k == "random_state" or k.endswith("__random_state")}
        if seeds:
            est.set_params(**seeds)
        # A search with an integer (or default) cv: the harness's inner CV, grouped like the outer split.
        for key in [k for k in deep if k == "cv" or k.endswith("__cv")]:
            cv = deep[key]
            if cv is None or (isinstance(cv, int | np.integer) and not isinstance(cv, bool)):
                est.set_params(**{key: inner_cv(groups, int(cv or INNER_SPLITS), self.random_state)})
        return est

    @staticmethod
    def _allows_nan(est) -> bool:
        try:
            return bool(est.__sklearn_tags__().input_tags.allow_nan)
        except AttributeError:
            return False

    def _single_output(self, est) -> bool:
        try:
            return not est.__sklearn_tags__().target_tags.multi_output
        except AttributeError:
            return False

    def fit(self, X, y, *, groups: np.ndarray | None = None, validation: tuple | None = None) -> SklearnRegressor:
        # ``validation`` is not passed on: a scikit-learn regressor has no use for the split's validation fold.
        X = np.asarray(X, dtype=float)
        y = np.asarray(y, dtype=float)
        if y.ndim != 2 or len(X) != len(y):
            raise ValueError(f"expected X (n, p) and y (n, t) with the same n; got {X.shape} and {y.shape}")
        est = self._fresh(groups)
        # The harness's feature sets hold NaN where a feature is undefined for a segment; an estimator that
        # refuses NaN gets the training fold's median, as the built-in models do (fitted on the training
        # fold only, so no test value reaches it).
        self.imputer_ = None
        if not self._allows_nan(est):
            from sklearn.impute import SimpleImputer

            self.imputer_ = SimpleImputer(strategy="median", keep_empty_features=True).fit(X)
            X = self.imputer_.transform(X)
        takes_groups = groups is not None and (_takes(est.fit, "groups") or hasattr(est, "cv"))
        kwargs = {"groups": groups} if takes_groups else {}
        if y.shape[1] > 1 and self._single_output(est):
            from sklearn.multioutput import MultiOutputRegressor

            est = MultiOutputRegressor(est)
        self.estimator_ = est.fit(X, y if y.shape[1] > 1 else y[:, 0], **kwargs)
        self.n_targets_ = y.shape[1]
        return self

    def predict(self, X) -> np.ndarray:
        if not hasattr(self, "estimator_"):
            raise NotFittedError(f"{self.cls.__name__} is not fitted; call fit(X, y) first")
        X = np.asarray(X, dtype=float)
        if self.imputer_ is not None:
            X = self.imputer_.transform(X)
        pred = np.asarray(self.estimator_.predict(X), dtype=float)
        return pred.reshape(len(X), self.n_targets_)

    def __repr__(self) -> str:
        return f"{self.cls.__name__}({', '.join(f'{k}={v!r}' for k, v in self.params.items())})"


class ClassFactory:
    """The registry factory of a model class: builds it with the job's seed, wrapped if it needs to be.

    Its signature is the class's, so :meth:`benchmark.registry.Spec.check_params` checks a study's
    parameter names against the class. Picklable (it holds the class), so workers receive it.
    """

    def __init__(self, cls: type) -> None:
        self.cls = cls
        self.native = is_native(cls)
        params = _init_parameters(cls)
        self.takes_seed = any(p.name == "random_state" for p in params)
        keep = [p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in params if p.name != "random_state"]
        keep.append(inspect.Parameter("random_state", inspect.Parameter.KEYWORD_ONLY, default=None))
        self.__signature__ = inspect.Signature(keep)
        self.__doc__ = cls.__doc__

    def __call__(self, random_state: int | None = None, **params: Any):
        if not self.native:
            return SklearnRegressor(self.cls, params, random_state=random_state)
        seed = {"random_state": random_state} if self.takes_seed else {}
        return self.cls(**{k: decode_value(v) for k, v in params.items()}, **seed)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ClassFactory) and other.cls is self.cls

    def __hash__(self) -> int:
        return hash(self.cls)


def class_spec(cls: type, *, name: str, source: str, description: str = "") -> Spec:
    """A registry spec for a model class (see :class:`ClassFactory`).

    The class may declare what it reads (``INPUTS``, feature-set names; default ``midi``; ``--features``
    overrides it), its parameters' constraints (``PARAMS``, :mod:`benchmark.params`) and tags (``TAGS``).
    """
    doc = description or (cls.__doc__ or "").strip().split("\n")[0] or f"{cls.__name__} ({class_path_of(cls)})"
    inputs = tuple(getattr(cls, "INPUTS", DEFAULT_INPUTS))
    return Spec(name=name, factory=ClassFactory(cls), description=doc, inputs=inputs,
                tags=tuple(getattr(cls, "TAGS", ())), params=dict(getattr(cls, "PARAMS", {}) or {}),
                check=getattr(cls, "check_params", None), source=source)


def resolve_class_path(name: str) -> Spec | None:
    """The model registry's resolver: a spec for a class path, None for a name of another form.

    Raises
    ------
    ConfigError
        The class does not import, or is not a regressor the harness can fit.
    """
    if not isinstance(name, str) or not CLASS_PATH.match(name):
        return None
    cls = import_class(name, where=f"model {name!r}")
    problem = _not_a_regressor(cls)
    if problem:
        raise ConfigError(f"model {name!r}: {problem}; name a regressor (a scikit-learn one, or a class with "
                          "fit(X, y, *, groups=None), predict(X) and get_params())")
    return class_spec(cls, name=name, source="class_path")


def _not_a_regressor(cls: type) -> str | None:
    """What keeps ``cls`` from being fitted as a model, or None."""
    missing = [m for m in ("fit", "predict") if not callable(getattr(cls, m, None))]
    if missing:
        return f"{cls.__name__} has no {' or '.join(missing)} method"
    if _is_sklearn(cls) and not any(p.default is inspect.Parameter.empty for p in _init_parameters(cls)):
        from sklearn.base import is_regressor

        try:
            kind_ok = is_regressor(cls())
        except Exception:  # a class that cannot be built without its parameters: judged when fitted
            kind_ok = True
        if not kind_ok:
            return f"{cls.__name__} is a scikit-learn estimator but not a regressor"
    return None
