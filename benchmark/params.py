"""Declared model parameters: what each value may be, checked before a run starts.

A registered model family declares its parameters once, next to its factory,
as a mapping ``name -> constraint`` (the class attribute ``PARAMS``, or the
``params=`` argument of :meth:`benchmark.registry.Registry.register`); a
family with checks that need more than one value or the machine (a patch
that must fit the input, a GPU that must exist, a checkpoint that must be in
the cache) adds a ``check_params(params, context)`` callable. The runner
calls :meth:`benchmark.registry.Spec.check_params` for every model of a run
when the run is configured, so ``n_estimators = "many"`` fails in one line
before the data is read, never inside every job.

Constraints are small objects with ``problem(value) -> str | None`` (what is
wrong, or None) and ``convert(value)`` (the value in canonical form, e.g. a
comma-separated list of model names as a list).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from numbers import Integral, Real
from typing import Any

from benchmark.errors import ConfigError


class FrozenDict(tuple):
    """A dict frozen into a job's parameters (:func:`benchmark.jobs.freeze`): its (key, value) pairs sorted.

    Hashable and ordered like the tuple it is, equal to that tuple, written to JSON as a list of pairs; a
    model built from a class path gets it back as a dict (:func:`models.adapters.decode_value`), so a
    ``param_grid = {C = [1, 10]}`` reaches ``GridSearchCV`` as the dict it was.
    """

    __slots__ = ()


class Constraint:
    """What one parameter's value may be."""

    def problem(self, value: Any) -> str | None:  # pragma: no cover - interface
        raise NotImplementedError

    def convert(self, value: Any) -> Any:
        return value


def _is_int(v: Any) -> bool:
    return isinstance(v, Integral) and not isinstance(v, bool)


def _is_real(v: Any) -> bool:
    return isinstance(v, Real) and not isinstance(v, bool)


@dataclass(frozen=True)
class Int(Constraint):
    """An integer in ``[low, high]`` (either bound optional); ``also`` lists extra allowed values (e.g. -1)."""

    low: int | None = None
    high: int | None = None
    also: tuple = ()

    def problem(self, value: Any) -> str | None:
        if value in self.also and _is_int(value):
            return None
        if not _is_int(value) or (self.low is not None and value < self.low) or (
                self.high is not None and value > self.high):
            return f"expected {self.describe()}"
        return None

    def describe(self) -> str:
        if self.low is not None and self.high is not None:
            text = f"an integer in [{self.low}, {self.high}]"
        elif self.low is not None:
            text = f"an integer >= {self.low}"
        elif self.high is not None:
            text = f"an integer <= {self.high}"
        else:
            text = "an integer"
        return text + "".join(f" or {a}" for a in self.also)


@dataclass(frozen=True)
class Float(Constraint):
    """A finite number between ``low`` and ``high``; ``low_open`` / ``high_open`` exclude the bound."""

    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False

    def problem(self, value: Any) -> str | None:
        if not _is_real(value) or not math.isfinite(float(value)):
            return f"expected {self.describe()}"
        v = float(value)
        if self.low is not None and (v < self.low or (self.low_open and v == self.low)):
            return f"expected {self.describe()}"
        if self.high is not None and (v > self.high or (self.high_open and v == self.high)):
            return f"expected {self.describe()}"
        return None

    def describe(self) -> str:
        if self.low is not None and self.high is not None:
            return (f"a number in {'(' if self.low_open else '['}{self.low:g}, {self.high:g}"
                    f"{')' if self.high_open else ']'}")
        if self.low is not None:
            return f"a number {'>' if self.low_open else '>='} {self.low:g}"
        if self.high is not None:
            return f"a number {'<' if self.high_open else '<='} {self.high:g}"
        return "a finite number"


@dataclass(frozen=True)
class Choice(Constraint):
    """One of ``values``."""

    values: tuple

    def __init__(self, *values: Any) -> None:
        object.__setattr__(self, "values", tuple(values))

    def problem(self, value: Any) -> str | None:
        # bool is an int: True must not pass for 1.
        if any(value == v and type(value) is type(v) for v in self.values):
            return None
        return f"expected {self.describe()}"

    def describe(self) -> str:
        return "one of " + ", ".join(repr(v) for v in self.values)


@dataclass(frozen=True)
class Bool(Constraint):
    """``true`` or ``false``."""

    def problem(self, value: Any) -> str | None:
        return None if isinstance(value, bool) else f"expected {self.describe()}"

    def describe(self) -> str:
        return "true or false"


@dataclass(frozen=True)
class Text(Constraint):
    """A non-empty string."""

    def problem(self, value: Any) -> str | None:
        return None if isinstance(value, str) and value.strip() else f"expected {self.describe()}"

    def describe(self) -> str:
        return "a non-empty string"


@dataclass(frozen=True)
class AnyOf(Constraint):
    """A value that meets any of ``options`` (the first that accepts it converts it)."""

    options: tuple

    def __init__(self, *options: Constraint) -> None:
        object.__setattr__(self, "options", tuple(options))

    def problem(self, value: Any) -> str | None:
        if any(o.problem(value) is None for o in self.options):
            return None
        return f"expected {self.describe()}"

    def convert(self, value: Any) -> Any:
        for o in self.options:
            if o.problem(value) is None:
                return o.convert(value)
        return value

    def describe(self) -> str:
        return " or ".join(o.describe() for o in self.options)


@dataclass(frozen=True)
class Nothing(Constraint):
    """``None`` (in a study file: leave the parameter out)."""

    def problem(self, value: Any) -> str | None:
        return None if value is None else "expected nothing"

    def describe(self) -> str:
        return "unset"


def Optional(inner: Constraint) -> Constraint:  # noqa: N802  (reads like a type)
    """``inner`` or None."""
    return AnyOf(inner, Nothing())


@dataclass(frozen=True)
class List(Constraint):
    """A list (or tuple) of ``min_len`` or more items, each meeting ``item``; converted to a list."""

    item: Constraint
    min_len: int = 1
    length: int | None = None

    def problem(self, value: Any) -> str | None:
        if isinstance(value, str | bytes) or not isinstance(value, Sequence):
            return f"expected {self.describe()}"
        if len(value) < self.min_len or (self.length is not None and len(value) != self.length):
            return f"expected {self.describe()}"
        for v in value:
            if self.item.problem(v) is not None:
                return f"expected {self.describe()}"
        return None

    def convert(self, value: Any) -> Any:
        return [self.item.convert(v) for v in value]

    def describe(self) -> str:
        n = f"{self.length}" if self.length is not None else f"{self.min_len} or more"
        return f"a list of {n} items, each {self.item.describe()}"


@dataclass(frozen=True)
class ModelNames(Constraint):
    """Registered model names (or a study's variants): a list, or one comma-separated string."""

    min_len: int = 1

    @staticmethod
    def split(value: Any) -> list | None:
        if isinstance(value, str):
            return [v.strip() for v in value.split(",") if v.strip()]
        if isinstance(value, Sequence) and not isinstance(value, bytes):
            return list(value)
        return None

    def problem(self, value: Any) -> str | None:
        names = self.split(value)
        if names is None or len(names) < self.min_len or not all(isinstance(n, str) and n.strip() for n in names):
            return f"expected {self.describe()}"
        return None

    def convert(self, value: Any) -> Any:
        return self.split(value)

    def describe(self) -> str:
        return "a list of model names (or one comma-separated string)"


def check_values(schema: Mapping[str, Constraint], params: Mapping[str, Any], where: str) -> dict[str, Any]:
    """Check every value of ``params`` that ``schema`` declares; return them converted.

    Parameters
    ----------
    schema : mapping name -> Constraint
    params : mapping name -> value
    where : str
        How the message names the model, e.g. ``"model 'rf'"``.

    Raises
    ------
    ConfigError
        The first value that breaks its constraint: its name, the value and what was expected.
    """
    out = dict(params)
    for name, value in params.items():
        constraint = schema.get(name)
        if constraint is None:
            continue
        problem = constraint.problem(value)
        if problem is not None:
            raise ConfigError(f"{where}: {name} = {value!r}: {problem}")
        out[name] = constraint.convert(value)
    return out
