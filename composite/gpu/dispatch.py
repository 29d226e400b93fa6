"""The hot pixel operations with a ``device=`` keyword: NumPy in, NumPy out, computed where you choose.

Each function has the signature of the NumPy function it names plus ``device``:

* ``device=None`` / ``"cpu"``: the NumPy function itself is called (no torch import);
* ``device="cuda"``, ``"cuda:N"``, ``"torch-cpu"`` (or ``"auto"`` with a GPU present): image arguments
  are uploaded, the torch implementation of :mod:`composite.gpu.ops` runs, results come back as NumPy
  arrays (and :class:`~composite.matte.keyers.KeyResult` / :class:`~composite.extend.crowd.CrowdFrame`
  values as the NumPy functions return them);
* torch tensors passed in (any device) run the torch implementation on their device and come back as
  tensors.

Example
-------
>>> import numpy as np
>>> from composite.gpu.dispatch import over
>>> a = np.array([[[0.5, 0.0, 0.0, 0.5]]], np.float32); b = np.array([[[0.1, 0.2, 0.3, 1.0]]], np.float32)
>>> [round(float(v), 3) for v in over(a, b, device="torch-cpu")[0, 0]]
[0.55, 0.1, 0.15, 1.0]
>>> [round(float(v), 3) for v in over(a, b)[0, 0]]
[0.55, 0.1, 0.15, 1.0]
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from .device import NUMPY_NAMES, check_name, resolve_device
from .tensor import is_tensor, to_device, to_host


def _numpy_fn(path: str) -> Callable:
    module, name = path.rsplit(".", 1)
    return getattr(importlib.import_module(module), name)


def _convert_out(value, back_to_numpy: bool):
    if not back_to_numpy:
        return value
    if is_tensor(value):
        return to_host(value, what="result")
    name = type(value).__name__
    if name == "KeyResult" and type(value).__module__.endswith("gpu.ops.keying"):
        from ..matte.keyers import KeyResult

        return KeyResult(to_host(value.fg), to_host(value.alpha), value.screen_color,
                         None if value.clean_plate is None else to_host(value.clean_plate))
    if name == "CrowdFrame" and type(value).__module__.endswith("gpu.ops.crowd"):
        from ..extend.crowd import CrowdFrame

        return CrowdFrame(to_host(value.rgba), to_host(value.depth), to_host(value.ident))
    if isinstance(value, tuple):
        return tuple(_convert_out(v, True) for v in value)
    return value


def dispatched(numpy_path: str, torch_path: str, *, arrays: Sequence[int] = (0,), array_kw: Sequence[str] = (),
               device_kw: bool = False):
    """Build a ``device=``-selecting function from a NumPy and a torch implementation.

    ``arrays``: positions of image arguments (uploaded); ``array_kw``: image keyword arguments (uploaded
    when they are NumPy arrays); ``device_kw``: the torch function takes ``device=`` itself.
    """
    def fn(*args: Any, device: Any = None, **kwargs: Any):
        check_name(device)
        tensors_in = any(is_tensor(a) for a in args) or any(is_tensor(v) for v in kwargs.values())
        if device in NUMPY_NAMES and not tensors_in:
            return _numpy_fn(numpy_path)(*args, **kwargs)
        dev = resolve_device(device) if device not in NUMPY_NAMES else None
        if dev is None and not tensors_in:  # "auto" without a GPU
            return _numpy_fn(numpy_path)(*args, **kwargs)
        if dev is None:
            dev = next(a.device for a in list(args) + list(kwargs.values()) if is_tensor(a))
        args = list(args)
        for i in arrays:
            if i < len(args) and isinstance(args[i], np.ndarray):
                args[i] = to_device(args[i], dev, what="argument")
            elif i < len(args) and is_tensor(args[i]):
                args[i] = args[i].to(dev)
        for k in array_kw:
            v = kwargs.get(k)
            if isinstance(v, np.ndarray):
                kwargs[k] = to_device(np.ascontiguousarray(v, np.float32), dev, what=k)
            elif is_tensor(v):
                kwargs[k] = v.to(dev)
        if device_kw:
            kwargs["device"] = dev
        out = _numpy_fn(torch_path)(*args, **kwargs)
        return _convert_out(out, back_to_numpy=not tensors_in)

    numpy_fn_name = numpy_path.rsplit(".", 1)[1]
    fn.__name__ = fn.__qualname__ = numpy_fn_name
    fn.__doc__ = (f"``{numpy_path}`` with ``device=`` (see :mod:`composite.gpu.dispatch`); torch "
                  f"implementation ``{torch_path}``.")
    return fn


_M = "composite.core.merge"
_T = "composite.gpu.ops.merge"
over = dispatched(f"{_M}.over", f"{_T}.over", arrays=(0, 1))
under = dispatched(f"{_M}.under", f"{_T}.under", arrays=(0, 1))
plus = dispatched(f"{_M}.plus", f"{_T}.plus", arrays=(0, 1))
multiply = dispatched(f"{_M}.multiply", f"{_T}.multiply", arrays=(0, 1))
screen = dispatched(f"{_M}.screen", f"{_T}.screen", arrays=(0, 1))
maximum = dispatched(f"{_M}.maximum", f"{_T}.maximum", arrays=(0, 1))
minimum = dispatched(f"{_M}.minimum", f"{_T}.minimum", arrays=(0, 1))
inside = dispatched(f"{_M}.inside", f"{_T}.inside", arrays=(0, 1))
outside = dispatched(f"{_M}.outside", f"{_T}.outside", arrays=(0, 1))
mask = dispatched(f"{_M}.mask", f"{_T}.mask", arrays=(0, 1))
premultiply = dispatched(f"{_M}.premultiply", f"{_T}.premultiply")
unpremultiply = dispatched(f"{_M}.unpremultiply", f"{_T}.unpremultiply")

#: Merge operations by name, as :data:`composite.core.merge.OPERATIONS`.
OPERATIONS = {"over": over, "under": under, "plus": plus, "multiply": multiply, "screen": screen, "max": maximum,
              "min": minimum, "in": inside, "out": outside, "mask": mask}

_KEY_KW = ("clean_plate", "garbage", "core")
key_color_difference = dispatched("composite.matte.keyers.key_color_difference",
                                  "composite.gpu.ops.keying.key_color_difference", array_kw=_KEY_KW)
key_screen_subtract = dispatched("composite.matte.keyers.key_screen_subtract",
                                 "composite.gpu.ops.keying.key_screen_subtract", array_kw=_KEY_KW)
despill = dispatched("composite.matte.despill.despill", "composite.gpu.ops.despill.despill")

_MO = "composite.matte.ops"
_TM = "composite.gpu.ops.matte"
erode = dispatched(f"{_MO}.erode", f"{_TM}.erode")
dilate = dispatched(f"{_MO}.dilate", f"{_TM}.dilate")
blur = dispatched(f"{_MO}.blur", f"{_TM}.blur")
edge_band = dispatched(f"{_MO}.edge_band", f"{_TM}.edge_band")
edge_blur = dispatched(f"{_MO}.edge_blur", f"{_TM}.edge_blur")
clamp = dispatched(f"{_MO}.clamp", f"{_TM}.clamp")
combine = dispatched(f"{_MO}.combine", f"{_TM}.combine", arrays=(0, 1))
invert = dispatched(f"{_MO}.invert", f"{_TM}.invert")
fill_from_weights = dispatched(f"{_MO}.fill_from_weights", f"{_TM}.fill_from_weights", arrays=(0, 1))
edge_extend = dispatched(f"{_MO}.edge_extend", f"{_TM}.edge_extend")

grade = dispatched("composite.color.grade.grade", "composite.gpu.ops.color.grade")
apply_cdl = dispatched("composite.color.cdl.apply_cdl", "composite.gpu.ops.color.apply_cdl")
color_transfer = dispatched("composite.color.transfer.color_transfer", "composite.gpu.ops.color.color_transfer",
                            arrays=(0, 1), array_kw=("image_weights", "reference_weights"))
fit_color_transfer = dispatched("composite.color.transfer.fit_color_transfer",
                                "composite.gpu.ops.color.fit_color_transfer", arrays=(0, 1),
                                array_kw=("image_weights", "reference_weights"))


def apply_transfer(pixels, transform, *, device: Any = None):
    """``transform.apply(pixels)`` (:meth:`composite.color.transfer.ColorTransform.apply`) with ``device=``."""
    check_name(device)
    dev = resolve_device(device) if device not in NUMPY_NAMES else None
    if not is_tensor(pixels):
        if dev is None:
            return transform.apply(pixels)
        from .ops.color import apply_transfer as torch_apply

        return to_host(torch_apply(to_device(pixels, dev, what="argument"), transform), what="result")
    from .ops.color import apply_transfer as torch_apply

    return torch_apply(pixels if dev is None else pixels.to(dev), transform)


regrain = dispatched("composite.color.grain.regrain", "composite.gpu.ops.grain.regrain", array_kw=("mask",))
light_wrap = dispatched("composite.integrate.lightwrap.light_wrap", "composite.gpu.ops.lightwrap.light_wrap",
                        arrays=(0, 1), array_kw=("mask",))
defocus = dispatched("composite.integrate.defocus.defocus", "composite.gpu.ops.defocus.defocus")
warp = dispatched("composite.temporal.warp.warp", "composite.gpu.ops.warp.warp", arrays=(0, 1))
warp_matte = dispatched("composite.temporal.warp.warp_matte", "composite.gpu.ops.warp.warp_matte", arrays=(0, 1))
transform = dispatched("composite.core.geometry.transform", "composite.gpu.ops.warp.transform")
apply_gains = dispatched("composite.temporal.deflicker.apply_gains", "composite.gpu.ops.deflicker.apply_gains")
render_crowd = dispatched("composite.extend.crowd.render_crowd", "composite.gpu.ops.crowd.render_crowd", arrays=(),
                          device_kw=True)


@functools.cache
def names() -> tuple[str, ...]:
    """The dispatched operations."""
    return tuple(sorted(n for n, v in globals().items() if callable(v) and getattr(v, "__doc__", "")
                        and "(see :mod:`composite.gpu.dispatch`)" in (v.__doc__ or "")))


def merge(operation: str, a, b, *, mix: float = 1.0, device: Any = None):
    """A merge by name (a key of :data:`OPERATIONS`) with ``device=``."""
    from ..core.errors import InputError

    if operation not in OPERATIONS:
        raise InputError(f"unknown merge operation {operation!r}; allowed: {', '.join(OPERATIONS)}")
    return OPERATIONS[operation](a, b, mix=mix, device=device)
