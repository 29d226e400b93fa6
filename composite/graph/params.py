"""Typed, validated stage parameters.

A stage declares its parameters as data::

    params = {
        "screen": Param(str, "green", choices=("green", "blue"), doc="screen colour"),
        "gain": Param(float, 1.0, range=(0.0, 4.0), doc="screen gain"),
    }

Values given in Python, in a recipe or on the command line (``--set key.gain=1.2``) pass through
:meth:`Param.validate`, which returns the canonical value or raises :class:`RecipeError` naming the key
and the allowed values.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from ..core.errors import RecipeError

_TYPE_NAMES = {bool: "bool", int: "int", float: "float", str: "str", list: "list", dict: "dict"}


@dataclass(frozen=True)
class Param:
    """One parameter's declaration.

    ``type``: ``bool``, ``int``, ``float``, ``str``, ``list`` or ``dict``. ``range``: inclusive
    ``(low, high)`` for numbers (either may be None). ``choices``: allowed values. ``optional``: None is
    allowed. ``length``: required list length. ``item``: type of list items (numbers are coerced).
    ``path``: the string is a file path or pattern (the CLI resolves it against the working directory).
    """

    type: type
    default: Any = None
    doc: str = ""
    range: tuple[float | None, float | None] | None = None
    choices: tuple[Any, ...] | None = None
    optional: bool = False
    length: int | None = None
    item: type | None = None
    path: bool = False
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def type_name(self) -> str:
        name = _TYPE_NAMES.get(self.type, getattr(self.type, "__name__", str(self.type)))
        if self.type is list and self.item is not None:
            name = f"list[{_TYPE_NAMES.get(self.item, self.item.__name__)}]"
        if self.path:
            name = "path"
        return name + (" or null" if self.optional else "")

    def describe(self) -> str:
        bits = [self.type_name, f"default {self.default!r}"]
        if self.range:
            lo, hi = self.range
            bits.append(f"range [{'-inf' if lo is None else lo}, {'inf' if hi is None else hi}]")
        if self.choices:
            bits.append("one of " + ", ".join(map(str, self.choices)))
        return "; ".join(bits)

    def _coerce_scalar(self, t: type, value: Any, key: str) -> Any:
        if t is float:
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise RecipeError(f"expected a number, got {value!r}", key=key)
            value = float(value)
            if not math.isfinite(value):
                raise RecipeError(f"expected a finite number, got {value!r}", key=key)
            return value
        if t is int:
            if isinstance(value, bool) or not (isinstance(value, int) or (isinstance(value, float) and value.is_integer())):
                raise RecipeError(f"expected an integer, got {value!r}", key=key)
            return int(value)
        if t is bool:
            if not isinstance(value, bool):
                raise RecipeError(f"expected true or false, got {value!r}", key=key)
            return value
        if t is str:
            if not isinstance(value, str):
                raise RecipeError(f"expected a string, got {value!r}", key=key)
            return value
        if t is dict:
            if not isinstance(value, Mapping):
                raise RecipeError(f"expected a mapping, got {value!r}", key=key)
            return _freeze(dict(value))
        if t is list:
            if not isinstance(value, (list, tuple)):
                raise RecipeError(f"expected a list, got {value!r}", key=key)
            return tuple(_freeze(v) for v in value)
        raise RecipeError(f"unsupported parameter type {t!r}", key=key)

    def validate(self, value: Any, *, key: str = "param") -> Any:
        """Return the canonical value or raise :class:`RecipeError`."""
        if value is None:
            if self.optional:
                return None
            raise RecipeError(f"a value is required ({self.describe()})", key=key)
        value = self._coerce_scalar(self.type, value, key)
        if self.type is list:
            if self.length is not None and len(value) != self.length:
                raise RecipeError(f"expected {self.length} items, got {len(value)}", key=key)
            if self.item is not None:
                value = tuple(self._coerce_scalar(self.item, v, f"{key}[{i}]") for i, v in enumerate(value))
        if self.range is not None and self.type in (int, float):
            lo, hi = self.range
            if (lo is not None and value < lo) or (hi is not None and value > hi):
                raise RecipeError(f"{value!r} is out of range [{lo}, {hi}]", key=key)
        if self.range is not None and self.type is list and self.item in (int, float):
            lo, hi = self.range
            for v in value:
                if (lo is not None and v < lo) or (hi is not None and v > hi):
                    raise RecipeError(f"item {v!r} is out of range [{lo}, {hi}]", key=key)
        if self.choices is not None and value not in self.choices:
            raise RecipeError(f"{value!r} is not allowed; allowed: {', '.join(map(str, self.choices))}", key=key)
        return value


def _freeze(value: Any) -> Any:
    if isinstance(value, Mapping):
        return MappingProxyType({k: _freeze(v) for k, v in value.items()})
    if isinstance(value, (list, tuple)):
        return tuple(_freeze(v) for v in value)
    return value


def thaw(value: Any) -> Any:
    """Frozen parameter value → plain JSON/YAML-serialisable Python (dicts and lists)."""
    if isinstance(value, Mapping):
        return {k: thaw(v) for k, v in value.items()}
    if isinstance(value, tuple):
        return [thaw(v) for v in value]
    return value


class ParamValues(Mapping):
    """Read-only validated parameter values with attribute access (``stage.p.gain``)."""

    __slots__ = ("_values",)

    def __init__(self, values: dict[str, Any]):
        object.__setattr__(self, "_values", dict(values))

    def __getattr__(self, name: str) -> Any:
        try:
            return self._values[name]
        except KeyError:
            raise AttributeError(name) from None

    def __setattr__(self, name, value):
        raise AttributeError("stage parameters are frozen; build a new stage with stage.with_params(...)")

    def __getitem__(self, key: str) -> Any:
        return self._values[key]

    def __iter__(self):
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __repr__(self) -> str:
        return f"ParamValues({self._values!r})"
