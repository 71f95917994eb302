"""Models from other packages: the entry point group ``percepiano_bench.models`` (lm-evaluation-harness style).

A package registers models by declaring entry points in its ``pyproject.toml``::

    [project.entry-points."percepiano_bench.models"]
    my_models = "my_pkg.bench:register"      # a callable: register(registry) registers what it likes
    my_module = "my_pkg.bench_models"         # a module whose import registers (MODELS.register(...))
    my_svr = "my_pkg.models:TunedSVR"         # a class: registered under the entry point's name

:func:`load_plugins` (called when :mod:`models` is imported) loads every entry point of the group once,
inside :meth:`benchmark.registry.Registry.sourced`, so each entry it adds says where it came from
(``plugin:<distribution>``) and a name already taken (a built-in one) stays what it was, with a warning.
An entry point that fails to load is recorded, one line naming it, and raised by
:meth:`~benchmark.registry.Registry.check_plugins` where models are resolved (``benchmark run``, ``list
models``, ``validate-model``); the engine never imports a model module by name.
"""

from __future__ import annotations

import inspect
import logging
from importlib import metadata

from benchmark.registry import Registry
from models.adapters import class_spec

logger = logging.getLogger(__name__)

#: The entry point group plugins declare their models under.
GROUP = "percepiano_bench.models"

_loaded: set[tuple[str, str, str]] = set()


def _dist_name(ep) -> str:
    dist = getattr(ep, "dist", None)
    return getattr(dist, "name", None) or "an unknown distribution"


def load_plugins(registry: Registry, entry_points=None) -> list[str]:
    """Load every entry point of :data:`GROUP` not loaded yet; return the names of those loaded now.

    Parameters
    ----------
    registry : Registry
        The model registry (``models.MODELS``); a callable entry point receives it.
    entry_points : iterable of importlib.metadata.EntryPoint, optional
        Default: the installed ones.
    """
    eps = metadata.entry_points(group=GROUP) if entry_points is None else entry_points
    loaded = []
    for ep in eps:
        dist = _dist_name(ep)
        key = (dist, ep.name, ep.value)
        if key in _loaded:
            continue
        _loaded.add(key)
        source = f"plugin:{dist}"
        try:
            with registry.sourced(source):
                obj = ep.load()
                if inspect.isclass(obj):
                    _register_class(registry, ep.name, obj, source)
                elif not inspect.ismodule(obj):
                    if not callable(obj):
                        raise TypeError(f"{ep.value} is a {type(obj).__name__}; an entry point of {GROUP} names a "
                                        "module, a model class or a callable that receives the registry")
                    obj(registry)
        except Exception as exc:  # anything a plugin raises while importing or registering
            message = str(exc).splitlines()[0] if str(exc) else ""
            registry.plugin_failures[f"{dist}:{ep.name}"] = (
                f"plugin entry point {ep.name!r} = {ep.value!r} (group {GROUP}, from {dist}) failed to load: "
                f"{type(exc).__name__}: {message}; fix it or uninstall {dist}")
            logger.debug("plugin %s failed", ep.name, exc_info=True)
            continue
        loaded.append(ep.name)
    return loaded


def _register_class(registry: Registry, name: str, cls: type, source: str) -> None:
    """Register a model class an entry point names, under the entry point's name (a taken name yields)."""
    if name in registry:
        registry.register(name)(cls)  # warns and skips: the name is taken
        return
    spec = class_spec(cls, name=name, source=source)
    registry.register(name, description=spec.description, inputs=spec.inputs, tags=spec.tags,
                      params=spec.params, check=spec.check)(spec.factory)
