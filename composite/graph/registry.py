"""Registry of stage types: built-in modules plus the ``composite.stages`` entry-point group.

A package extends composite by declaring, in its ``pyproject.toml``::

    [project.entry-points."composite.stages"]
    my_stages = "my_package.stages"

Importing that module registers its stages (with :func:`register`). An entry point may also point at a
Stage subclass directly.
"""

from __future__ import annotations

import importlib
import logging
from importlib.metadata import entry_points

from ..core.errors import RecipeError
from .stage import Stage

log = logging.getLogger(__name__)

#: Modules of composite that define stages; imported when the registry is first read.
BUILTIN_MODULES = (
    "composite.graph.builtin",
    "composite.io.stages",
    "composite.io.contact_sheet",
    "composite.extend.stages",
    "composite.extend.gen_stages",
    "composite.matte.stages",
    "composite.matte.refine_stages",
    "composite.color.match_stages",
    "composite.color.ocio_stages",
    "composite.color.grain_stages",
    "composite.integrate.stages",
    "composite.temporal.stages",
)

_REGISTRY: dict[str, type[Stage]] = {}
_loaded = False


def register(cls: type[Stage]) -> type[Stage]:
    """Class decorator adding a Stage subclass to the registry under its ``type_name``."""
    if not (isinstance(cls, type) and issubclass(cls, Stage)):
        raise TypeError(f"register expects a Stage subclass, got {cls!r}")
    existing = _REGISTRY.get(cls.type_name)
    if existing is not None and existing is not cls and \
            (existing.__module__, existing.__qualname__) != (cls.__module__, cls.__qualname__):
        raise ValueError(f"stage type {cls.type_name!r} is already registered by {existing.__module__}")
    _REGISTRY[cls.type_name] = cls
    return cls


def _load() -> None:
    global _loaded
    if _loaded:
        return
    _loaded = True
    for module in BUILTIN_MODULES:
        importlib.import_module(module)
    for ep in entry_points(group="composite.stages"):
        try:
            obj = ep.load()
        except Exception as exc:  # a broken plugin must not break composite
            log.warning("stage plugin %s could not be loaded: %s", ep.name, exc)
            continue
        if isinstance(obj, type) and issubclass(obj, Stage):
            register(obj)


def stage_types() -> dict[str, type[Stage]]:
    """All registered stage types by name."""
    _load()
    return dict(sorted(_REGISTRY.items()))


def get_stage_type(name: str, *, key: str | None = None, source: str | None = None) -> type[Stage]:
    """The Stage subclass registered as ``name`` or a RecipeError listing close names."""
    _load()
    try:
        return _REGISTRY[name]
    except KeyError:
        import difflib

        close = difflib.get_close_matches(name, _REGISTRY, n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else "; run `composite stages` for the list"
        raise RecipeError(f"unknown stage type {name!r}{hint}", key=key, source=source) from None
