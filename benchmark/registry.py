"""One small generic registry for models, splits and feature sets (timm/MTEB style).

A registry maps a short CLI name to a frozen :class:`Spec`. Registering never
builds anything and never imports heavy libraries: factories import them when
called, so ``benchmark list`` and ``--models rf`` stay light.

Besides its registered names, a registry may *resolve* names of a form it
knows (timm's ``hf-hub:`` names): a feature set ``file:PATH``, a model given
by its class path ``pkg.module:Class``. Every spec says where it comes from
(``source``: ``built-in``, ``plugin:<distribution>``, ``class_path``), and
entries registered inside :meth:`Registry.sourced` (a plugin's) yield to a
name already taken, with a warning, instead of raising.
"""

from __future__ import annotations

import difflib
import logging
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from benchmark.errors import ConfigError, UnknownNameError
from benchmark.params import check_values

logger = logging.getLogger(__name__)

#: Where an entry comes from when nothing else says so.
BUILT_IN = "built-in"


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
    source: str = BUILT_IN

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
        self._resolved: dict[str, Spec] = {}
        self._resolver: Callable[[str], Spec | None] | None = None
        self._source = BUILT_IN
        self._yield = False
        #: Plugins that failed to load: what each failure says (see :meth:`check_plugins`).
        self.plugin_failures: dict[str, str] = {}

    @contextmanager
    def sourced(self, source: str):
        """Entries registered inside the block come from ``source`` (e.g. ``plugin:my-dist``).

        A name already registered stays what it was: the new entry is skipped with a warning (built-in
        names win over plugins; the first plugin wins over a later one).
        """
        previous = self._source, self._yield
        self._source, self._yield = source, True
        try:
            yield self
        finally:
            self._source, self._yield = previous

    def set_resolver(self, resolver: Callable[[str], Spec | None]) -> None:
        """``resolver(name) -> Spec | None`` resolves names that are not registered (None: not its form)."""
        self._resolver = resolver

    def check_plugins(self) -> None:
        """Raise the first plugin failure, if any.

        Raises
        ------
        ConfigError
            One line naming the entry point that failed, why, and what to do.
        """
        if self.plugin_failures:
            raise ConfigError(next(iter(self.plugin_failures.values())))

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
                if self._yield:
                    logger.warning("%s %r from %s is not registered: the name is taken by the %s entry (%s); "
                                   "the %s one is used", self.kind, name, self._source, self._specs[name].source,
                                   self._specs[name].description or name, self._specs[name].source)
                    return factory
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
                source=self._source,
            )
            return factory

        return decorator

    def get(self, name: str) -> Spec:
        """Return the spec for ``name``.

        Raises
        ------
        UnknownNameError
            If ``name`` is neither registered nor of a form the resolver knows; the message suggests close
            matches.
        ConfigError
            A name of the resolver's form that does not resolve (a class path that does not import).
        """
        try:
            return self._specs[name]
        except (KeyError, TypeError):
            pass
        if isinstance(name, str) and name in self._resolved:
            return self._resolved[name]
        if isinstance(name, str) and self._resolver is not None:
            spec = self._resolver(name)  # a name of a form the resolver knows; it raises on a bad one
            if spec is not None:
                self._resolved[name] = spec
                return spec
        close = difflib.get_close_matches(str(name), list(self._specs), n=3, cutoff=0.5)
        hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
        known = ", ".join(sorted(self._specs))
        # A plugin that failed to load may be where the name should have come from.
        failed = "".join(f"; {why}" for why in self.plugin_failures.values())
        raise UnknownNameError(f"unknown {self.kind} {name!r}{hint} (known: {known}){failed}")

    def build(self, name: str, **params: Any) -> Any:
        """Build the entry ``name``; see :meth:`Spec.build`."""
        return self.get(name).build(**params)

    def parse_list(self, text: str) -> list[str]:
        """Split a comma-separated CLI list and check every name exists."""
        names = [n.strip() for n in text.split(",") if n.strip()]
        if not names:
            raise ConfigError(f"no {self.kind} given; pass a comma-separated list")
        # Each name as its spec records it: a resolved name in its canonical form (``file:`` + absolute path).
        names = [self.get(n).name for n in names]
        return list(dict.fromkeys(names))

    def names(self) -> list[str]:
        return sorted(self._specs)

    def __contains__(self, name: object) -> bool:
        return name in self._specs

    def __iter__(self) -> Iterator[Spec]:
        return iter(self._specs[n] for n in self.names())

    def __len__(self) -> int:
        return len(self._specs)
