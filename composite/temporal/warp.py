"""Warping images and mattes along optical flow (backward warping with ``cv2.remap``).

``warp(b, flow_ab)`` returns ``out[p] = b[p + flow_ab[p]]``: frame ``b`` brought into alignment with
frame ``a`` (see :mod:`composite.temporal.flow` for the flow convention). Premultiplied colour is warped
as it is, together with its alpha, which keeps edges free of halos; values are never clipped, except by
:func:`warp_matte`, whose bilinear result of a [0, 1] matte already stays in [0, 1].

Example
-------
>>> import numpy as np
>>> from composite.temporal.warp import warp
>>> b = np.arange(20, dtype=np.float32).reshape(4, 5, 1)
>>> flow = np.zeros((4, 5, 2), np.float32); flow[..., 0] = 1.0   # a[p] = b[p + (1, 0)]
>>> warp(b, flow)[0, :, 0].tolist()
[1.0, 2.0, 3.0, 4.0, 4.0]
"""

from __future__ import annotations

import cv2
import numpy as np

from ..core.errors import InputError
from ._common import as_planes
from .flow import _grid

#: Border handling: ``replicate`` repeats the edge pixel, ``constant`` brings in zeros (transparent).
BORDERS = {"replicate": cv2.BORDER_REPLICATE, "constant": cv2.BORDER_CONSTANT}
#: Interpolation filters.
WARP_FILTERS = {"nearest": cv2.INTER_NEAREST, "bilinear": cv2.INTER_LINEAR, "cubic": cv2.INTER_CUBIC}


def flow_to_maps(flow: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Absolute sampling maps ``(map_x, map_y)`` (``(H, W)`` float32 each) of a flow for ``cv2.remap``."""
    if flow.ndim != 3 or flow.shape[2] != 2:
        raise InputError(f"expected an (H, W, 2) flow, got shape {flow.shape}")
    h, w = flow.shape[:2]
    gx, gy = _grid(w, h)
    return gx + flow[..., 0], gy + flow[..., 1]


def warp(pixels: np.ndarray, flow: np.ndarray, *, filter: str = "bilinear", border: str = "replicate") -> np.ndarray:
    """Backward-warp an image along a flow: ``out[p] = pixels[p + flow[p]]``.

    Parameters
    ----------
    pixels : np.ndarray
        ``(H, W)`` or ``(H, W, C)`` float32, any colour space and alpha state (premultiplied colour and its
        alpha are warped together, so premultiplication is preserved).
    flow : np.ndarray
        ``(H, W, 2)`` float32 flow from the output frame to ``pixels``' frame.
    filter : {"nearest", "bilinear", "cubic"}
        Interpolation (OpenCV's fixed-point bilinear is exact to 1/32 pixel). Cubic may ring; values are
        kept, not clipped.
    border : {"replicate", "constant"}
        What is sampled outside the source: its edge pixel, or zero.

    Returns
    -------
    np.ndarray
        Same shape and dtype as ``pixels``.
    """
    two_d = pixels.ndim == 2
    px = as_planes(pixels, "warp input")
    if px.shape[:2] != flow.shape[:2]:
        raise InputError(f"warp: image is {px.shape[1]}x{px.shape[0]} but flow is {flow.shape[1]}x{flow.shape[0]}")
    try:
        interp = WARP_FILTERS[filter]
        mode = BORDERS[border]
    except KeyError:
        raise InputError(f"warp: filter must be one of {', '.join(WARP_FILTERS)} and border one of "
                         f"{', '.join(BORDERS)}; got {filter!r}, {border!r}") from None
    mx, my = flow_to_maps(flow.astype(np.float32, copy=False))
    parts = []
    for i in range(0, px.shape[2], 4):
        chunk = np.ascontiguousarray(px[:, :, i:i + 4])
        out = cv2.remap(chunk, mx, my, interp, borderMode=mode, borderValue=0)
        parts.append(out[:, :, None] if out.ndim == 2 else out)
    out = parts[0] if len(parts) == 1 else np.concatenate(parts, axis=2)
    return out[:, :, 0] if two_d else out


def warp_matte(matte: np.ndarray, flow: np.ndarray, *, border: str = "replicate") -> np.ndarray:
    """Warp a matte (``(H, W)`` or ``(H, W, 1)`` float32 in [0, 1]) along a flow, bilinearly.

    The result stays in the input's range (bilinear interpolation is a convex combination).
    """
    return warp(matte, flow, filter="bilinear", border=border)


def warp_to(reference_shape: tuple[int, int], pixels: np.ndarray, matrix: np.ndarray, *,
            filter: str = "bilinear", border: str = "constant") -> np.ndarray:
    """Warp ``pixels`` by a 3x3 matrix mapping source to destination pixels, into ``(H, W)`` of the reference.

    A thin wrapper over ``cv2.warpPerspective`` that keeps channel counts above 4 and never clips.
    """
    px = as_planes(pixels, "warp input")
    h, w = reference_shape
    m = np.asarray(matrix, np.float64)
    if m.shape != (3, 3):
        raise InputError(f"warp_to: expects a 3x3 matrix, got {m.shape}")
    interp = WARP_FILTERS.get(filter)
    if interp is None:
        raise InputError(f"warp_to: filter must be one of {', '.join(WARP_FILTERS)}, got {filter!r}")
    parts = []
    for i in range(0, px.shape[2], 4):
        chunk = np.ascontiguousarray(px[:, :, i:i + 4])
        out = cv2.warpPerspective(chunk, m, (w, h), flags=interp, borderMode=BORDERS[border], borderValue=0)
        parts.append(out[:, :, None] if out.ndim == 2 else out)
    return parts[0] if len(parts) == 1 else np.concatenate(parts, axis=2)
