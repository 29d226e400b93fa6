"""Atmospheric haze and fog by depth.

Light from a distant object is attenuated by the air and replaced by light the air scatters toward the
camera (Koschmieder's model). With transmittance ``T = exp(-density * max(d - start, 0))`` for distance
``d``, a premultiplied pixel ``(C, a)`` becomes

``C' = C T + haze_color (1 - T) a``   (alpha unchanged)

so a transparent pixel stays transparent and an element's edge keeps its matte. ``max_amount`` caps
``1 - T`` (fog that never fully hides the far distance). Depth is a distance per pixel (``inf`` for the
sky: fully hazed) or its inverse; without a depth pass, one ``distance`` for the whole element (a card
placed at a known distance).

Example
-------
>>> import numpy as np
>>> from composite.integrate.haze import haze
>>> img = np.zeros((1, 2, 4), np.float32); img[0, 0] = (1.0, 1.0, 1.0, 1.0)
>>> depth = np.array([[10.0, 10.0]], np.float32)
>>> out = haze(img, depth, density=np.log(2) / 10, color=(0.5, 0.6, 0.7))
>>> [round(float(v), 4) for v in out[0, 0]], out[0, 1].tolist()
([0.75, 0.8, 0.85, 1.0], [0.0, 0.0, 0.0, 0.0])
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from ..core.errors import InputError
from ._util import DEPTH_MODES, as_array, checked_depth, finite


def transmittance(depth: np.ndarray, *, density: float, start: float = 0.0,
                  depth_mode: str = "distance") -> np.ndarray:
    """``exp(-density * max(d - start, 0))`` as float32, for distances (or inverse distances) ``depth``.

    NaN or negative depth values raise :class:`InputError`; ``inf`` distance (or inverse 0) gives 0.
    """
    who = "haze"
    if depth_mode not in DEPTH_MODES:
        raise InputError(f"{who}: unknown depth_mode {depth_mode!r}; allowed: {', '.join(DEPTH_MODES)}")
    if not (density >= 0 and math.isfinite(density)):
        raise InputError(f"{who}: density must be a finite number >= 0, got {density}")
    d = checked_depth(depth, depth_mode, who)
    if depth_mode == "inverse":
        with np.errstate(divide="ignore"):
            d = np.float32(1.0) / d                                   # 0 → inf
    path = np.maximum(d - np.float32(start), np.float32(0.0))
    if density == 0:
        return np.ones_like(path)
    with np.errstate(invalid="ignore", over="ignore"):
        t = np.exp(-np.float32(density) * path)
    return np.nan_to_num(t, nan=0.0).astype(np.float32)


def haze(image: np.ndarray, depth: np.ndarray | float, *, density: float, color: Sequence[float] = (1.0, 1.0, 1.0),
         start: float = 0.0, max_amount: float = 1.0, depth_mode: str = "distance",
         mask: np.ndarray | None = None) -> np.ndarray:
    """Add atmospheric haze toward ``color`` by depth.

    Parameters
    ----------
    image : np.ndarray
        ``(H, W, 3)`` opaque or ``(H, W, 4)`` premultiplied float32, scene-linear.
    depth : np.ndarray or float
        ``(H, W)`` distances (or inverse distances with ``depth_mode="inverse"``); a number applies one
        distance to every pixel.
    density : float
        Extinction per unit of distance (``ln 2 / d`` halves the light at distance ``d``).
    color : sequence of 3 floats
        Haze colour, scene-linear (may exceed 1).
    start : float
        Distance before which there is no haze.
    max_amount : float
        Cap on the haze amount ``1 - T`` (0..1).
    mask : np.ndarray, optional
        ``(H, W)`` weights on the haze amount.

    Returns
    -------
    np.ndarray
        Same shape, float32, still premultiplied (haze scaled by alpha).
    """
    who = "haze"
    image = finite(as_array(image, who), who)
    nc = image.shape[2]
    if nc not in (3, 4):
        raise InputError(f"{who}: image must be RGB or RGBA, got {nc} channel(s)")
    color = np.asarray(color, np.float32).ravel()
    if color.size != 3 or not np.all(np.isfinite(color)):
        raise InputError(f"{who}: color must be 3 finite numbers, got {color.tolist()}")
    if not (0.0 <= max_amount <= 1.0):
        raise InputError(f"{who}: max_amount must be in [0, 1], got {max_amount}")
    h, w = image.shape[:2]
    if np.isscalar(depth) or (isinstance(depth, np.ndarray) and depth.ndim == 0):
        depth = np.full((1, 1), float(depth), np.float32)
    else:
        depth = np.asarray(depth)
        if depth.ndim == 3:
            depth = depth[:, :, 0]
        if depth.shape != (h, w):
            raise InputError(f"{who}: depth has shape {depth.shape} but the image is {w}x{h}; reformat the "
                             "depth to the image")
    amount = np.float32(1.0) - transmittance(depth, density=density, start=start, depth_mode=depth_mode)
    amount *= np.float32(max_amount)
    if mask is not None:
        m = np.asarray(mask, np.float32)
        if m.ndim == 3:
            m = m[:, :, -1]
        if m.shape != (h, w):
            raise InputError(f"{who}: mask has shape {m.shape} but the image is {w}x{h}")
        amount = amount * np.nan_to_num(m)
    amount = np.broadcast_to(amount, (h, w))
    alpha = image[:, :, 3] if nc == 4 else np.float32(1.0)
    out = image.copy()
    out[:, :, :3] *= (np.float32(1.0) - amount)[:, :, None]
    out[:, :, :3] += (amount * alpha)[:, :, None] * color[None, None, :]
    return out
