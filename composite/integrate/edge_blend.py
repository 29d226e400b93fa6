"""Edge blend: soften a composite along the foreground's matte edge.

A keyed element's edge is often harder than the plate's optics would make it. :func:`edge_blend`
merges the foreground over the background and, in a thin band around the foreground's alpha edge, mixes
the composite with a blurred copy of itself, so foreground and background colours blend across the
edge. Outside the band the composite is exactly ``fg over bg``.

The band is the morphological gradient of the alpha (dilation minus erosion with a disc of radius
``size``), feathered with a Gaussian of ``size / 2``: it covers the soft part of the matte and ``size``
pixels on either side of a hard edge.

Example
-------
>>> import numpy as np
>>> from composite.integrate.edge_blend import edge_blend
>>> fg = np.zeros((32, 32, 4), np.float32); fg[:, 16:] = (1.0, 0.0, 0.0, 1.0)
>>> bg = np.zeros((32, 32, 4), np.float32); bg[...] = (0.0, 0.0, 1.0, 1.0)
>>> out = edge_blend(fg, bg, size=2.0)
>>> bool(0 < out[8, 16, 2] < 1), out[8, 2].tolist(), out[8, 30].tolist()
(True, [0.0, 0.0, 1.0, 1.0], [1.0, 0.0, 0.0, 1.0])
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from ._util import finite, gaussian, plane, require_rgba, same_size, to_rgba


def edge_band(alpha: np.ndarray, size: float) -> np.ndarray:
    """``(H, W)`` float32 weights in [0, 1]: 1 along the alpha edge (within ``size`` px), 0 away from it."""
    r = max(1, int(math.ceil(size)))
    disc = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1))
    a = np.clip(alpha, 0.0, 1.0).astype(np.float32)
    band = cv2.dilate(a, disc, borderType=cv2.BORDER_REPLICATE) - cv2.erode(a, disc, borderType=cv2.BORDER_REPLICATE)
    band = gaussian(band, size / 2.0)
    return np.clip(band, 0.0, 1.0)


def edge_blend(fg: np.ndarray, bg: np.ndarray, *, size: float = 2.0, blur: float | None = None,
               amount: float = 1.0, mask: np.ndarray | None = None) -> np.ndarray:
    """``fg over bg`` with the composite blended across the foreground's edge.

    Parameters
    ----------
    fg : np.ndarray
        ``(H, W, 4)`` float32 RGBA, premultiplied, scene-linear.
    bg : np.ndarray
        ``(H, W, 3)`` (opaque) or ``(H, W, 4)`` premultiplied float32, same colour space and size.
    size : float
        Half-width in pixels of the band around the alpha edge.
    blur : float, optional
        Standard deviation in pixels of the blur mixed in along the band (``size`` by default).
    amount : float
        0: plain ``over``; 1: full blend along the band.
    mask : np.ndarray, optional
        ``(H, W)`` weights limiting the blend.

    Returns
    -------
    np.ndarray
        ``(H, W, 4)`` float32, premultiplied composite (all four channels are blended, so it stays
        premultiplied); HDR values kept.
    """
    who = "edge blend"
    fg = finite(require_rgba(fg, who), who, "foreground")
    bg = finite(to_rgba(bg, who, "background"), who, "background")
    same_size(fg, bg, who, ("foreground", "background"))
    m = plane(mask, fg.shape[:2], who)
    comp = bg * (np.float32(1.0) - fg[:, :, 3:4])
    comp += fg
    if amount == 0 or size <= 0:
        return comp
    band = edge_band(fg[:, :, 3], size) * np.float32(amount)
    if m is not None:
        band *= m
    soft = gaussian(comp, size if blur is None else blur)
    comp += band[:, :, None] * (soft - comp)
    return comp
