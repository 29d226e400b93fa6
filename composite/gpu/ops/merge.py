"""Porter–Duff and arithmetic merges and premultiplication on torch tensors.

The same functions, names and formulas as :mod:`composite.core.merge` (see its table), on
``(..., H, W, C)`` float32 tensors, premultiplied, alpha in the last plane; any leading dimensions are
a batch of frames. ``mix`` blends the result with B. Nothing is clipped.

Example
-------
>>> import torch
>>> from composite.gpu.ops.merge import over
>>> a = torch.tensor([[[0.5, 0.0, 0.0, 0.5]]]); b = torch.tensor([[[0.1, 0.2, 0.3, 1.0]]])
>>> [round(v, 3) for v in over(a, b)[0, 0].tolist()]
[0.55, 0.1, 0.15, 1.0]
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from ._common import check_image, f32, same_shape


def _pair(a, b, what: str):
    check_image(a, f"{what} (A)")
    check_image(b, f"{what} (B)")
    same_shape(a, b, what)


def _mix(result, b, mix: float):
    if mix == 1.0:
        return result
    return (result - b) * f32(mix, b) + b


def premultiply(rgba):
    """Straight ``(..., 4)`` RGBA → premultiplied."""
    check_image(rgba, "premultiply")
    return torch.cat([rgba[..., :-1] * rgba[..., -1:], rgba[..., -1:]], dim=-1)


def unpremultiply(rgba):
    """Premultiplied → straight; colour is left as it is where alpha is 0 (no division by zero)."""
    check_image(rgba, "unpremultiply")
    alpha = rgba[..., -1:]
    nz = alpha != 0
    colour = torch.where(nz, rgba[..., :-1] / torch.where(nz, alpha, torch.ones_like(alpha)), rgba[..., :-1])
    return torch.cat([colour, alpha], dim=-1)


def over(a, b, *, mix: float = 1.0):
    """``A + B (1 - a)``."""
    _pair(a, b, "over")
    return _mix(a + b * (1 - a[..., -1:]), b, mix)


def under(a, b, *, mix: float = 1.0):
    """``A (1 - b) + B``."""
    _pair(a, b, "under")
    return _mix(a * (1 - b[..., -1:]) + b, b, mix)


def plus(a, b, *, mix: float = 1.0):
    """``A + B``."""
    _pair(a, b, "plus")
    return _mix(a + b, b, mix)


def multiply(a, b, *, mix: float = 1.0):
    """``A B``."""
    _pair(a, b, "multiply")
    return _mix(a * b, b, mix)


def screen(a, b, *, mix: float = 1.0):
    """``A + B - A B``; ``max(A, B)`` where both exceed 1 (HDR safe)."""
    _pair(a, b, "screen")
    out = a + b - a * b
    out = torch.where((a > 1) & (b > 1), torch.maximum(a, b), out)
    return _mix(out, b, mix)


def maximum(a, b, *, mix: float = 1.0):
    _pair(a, b, "max")
    return _mix(torch.maximum(a, b), b, mix)


def minimum(a, b, *, mix: float = 1.0):
    _pair(a, b, "min")
    return _mix(torch.minimum(a, b), b, mix)


def inside(a, b, *, mix: float = 1.0):
    """``A b``."""
    _pair(a, b, "in")
    return _mix(a * b[..., -1:], b, mix)


def outside(a, b, *, mix: float = 1.0):
    """``A (1 - b)``."""
    _pair(a, b, "out")
    return _mix(a * (1 - b[..., -1:]), b, mix)


def mask(a, b, *, mix: float = 1.0):
    """``B a``."""
    _pair(a, b, "mask")
    return _mix(b * a[..., -1:], b, mix)


#: Merge operations by name (the keys of :data:`composite.core.merge.OPERATIONS`).
OPERATIONS: dict[str, Callable] = {
    "over": over, "under": under, "plus": plus, "multiply": multiply, "screen": screen,
    "max": maximum, "min": minimum, "in": inside, "out": outside, "mask": mask,
}
