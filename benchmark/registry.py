"""One small generic registry for models, splits and feature sets (timm/MTEB style).

A registry maps a short CLI name to a frozen :class:`Spec`. Registering never
builds anything and never imports heavy libraries: factories import them when
called, so ``benchmark list`` and ``--models rf`` stay light.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from benchmark.errors import ConfigError, UnknownNameError
from benchmark.params import check_values


@dataclass(frozen=True)
class Spec:
    """What a registry knows about one entry, without building it."""

    name: str
    factory: Callable[..., Any]
    description: str = ""
    inputs: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    defaults: Mapping[str, Any] = field(default_factory=dict)
    extra: Mapping[str, Any] = field(default_factory=dict)
    params: Mapping[str, Any] = field(default_factory=dict)
    check: Callable[..., None] | None = None

    def parameter_names(self) -> list[str]:
        """Keyword parameters the factory takes (``random_state`` is the runner's)."""
        import inspect

        return [p for p in inspect.signature(self.factory).parameters if p not in ("self", "random_state")]

    def check_params(self, params: Mapping[str, Any], *, where: str | None = None,
                     context: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Check parameters given for this entry before anything is built; return them in canonical form.

        Names are checked against the factory's signature, each value (the
        entry's defaults overridden by ``params``) against the declared
        constraints (:mod:`benchmark.params`); given a ``context`` (the
        runner gives the run's: ``cache_dir``), the entry's own ``check``
        (values that depend on each other or on the machine) runs on the
        merged values too.

        Raises
        ------
        ConfigError
            An unknown name (with close matches) or a value out of its range, in one line.
        """
        where = where or f"{self.name!r}"
        known = self.parameter_names()
        for p in params:
            if p not in known:
                close = difflib.get_close_matches(p, known, n=2, cutoff=0.5)
                hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
                raise ConfigError(f"{where}: model {self.name!r} has no parameter {p!r}{hint} "
                                  f"(it takes: {', '.join(known) or 'none'})")
        given = {k: v for k, v in params.items() if v is not None}
        merged = check_values(self.params, {**{k: v for k, v in self.defaults.items() if v is not None}, **given},
                              where)
        if self.check is not None and context is not None:
            self.check(merged, dict(context), where)
        return {k: (merged[k] if k in given else v) for k, v in params.items()}

    def build(self, **params: Any) -> Any:
        """Call the factory with the defaults overridden by ``params``.

        Parameters whose value is ``None`` are dropped first, so an unset CLI
        option never overrides an entry's own default.
        """
        kwargs = dict(self.defaults)
        kwargs.update({k: v for k, v in params.items() if v is not None})
        return self.factory(**kwargs)


class Registry:
    """Name -> :class:`Spec`, with helpful errors.

    Parameters
    ----------
    kind : str
        What the entries are ("model", "split", "feature set"); used in messages.
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._specs: dict[str, Spec] = {}

    def register(
        self,
        name: str,
        *,
        description: str = "",
        inputs: tuple[str, ...] = (),
        tags: tuple[str, ...] = (),
        defaults: Mapping[str, Any] | None = None,
        params: Mapping[str, Any] | None = None,
        check: Callable[..., None] | None = None,
        **extra: Any,
    ) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        """Decorator registering ``factory`` under ``name``.

        ``params`` (default: the factory's ``PARAMS`` attribute) declares what
        each parameter may be (:mod:`benchmark.params`); ``check`` (default:
        the factory's ``check_params``) checks values against each other and
        the machine, ``check(params, context, where)``, raising ``ConfigError``.

        Raises
        ------
        ConfigError
            If ``name`` is already registered.
        """

        def decorator(factory: Callable[..., Any]) -> Callable[..., Any]:
            if name in self._specs:
                raise ConfigError(f"{self.kind} {name!r} is registered twice")
            doc = description or (factory.__doc__ or "").strip().split("\n")[0]
            self._specs[name] = Spec(
                name=name,
                factory=factory,
                description=doc,
                inputs=tuple(inputs),
                tags=tuple(tags),
                defaults=dict(defaults or {}),
                extra=dict(extra),
                params=dict(params if params is not None else getattr(factory, "PARAMS", {})),
                check=check if check is not None else getattr(factory, "check_params", None),
            )
            return factory

        return decorator

    def get(self, name: str) -> Spec:
        """Return the spec for ``name``.

        Raises
        ------
        UnknownNameError
            If ``name`` is not registered; the message suggests close matches.
        """
        try:
            return self._specs[name]
        except KeyError:
            close = difflib.get_close_matches(name, list(self._specs), n=3, cutoff=0.5)
            hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
            known = ", ".join(sorted(self._specs))
            raise UnknownNameError(
                f"unknown {self.kind} {name!r}{hint} (known: {known})"
            ) from None

    def build(self, name: str, **params: Any) -> Any:
        """Build the entry ``name``; see :meth:`Spec.build`."""
        return self.get(name).build(**params)

    def parse_list(self, text: str) -> list[str]:
        """Split a comma-separated CLI list and check every name exists."""
        names = [n.strip() for n in text.split(",") if n.strip()]
        if not names:
            raise ConfigError(f"no {self.kind} given; pass a comma-separated list")
        for n in names:
            self.get(n)
        return list(dict.fromkeys(names))

    def names(self) -> list[str]:
        return sorted(self._specs)

    def __contains__(self, name: object) -> bool:
        return name in self._specs

    def __iter__(self) -> Iterator[Spec]:
        return iter(self._specs[n] for n in self.names())

    def __len__(self) -> int:
        return len(self._specs)
