"""Trimaps: build them from coarse masks, read them from files, check them against plates.

A trimap is an ``(H, W)`` float32 array in ``{0, 0.5, 1}``: 0 known background, 1 known foreground,
0.5 unknown (the band the refinement solves for). It is data, not colour (colour space ``Raw``).

Rules for trimaps that arrive in other shapes (:func:`normalize_trimap`):

* **Channels.** ``(H, W)`` and ``(H, W, 1)`` are used as they are. For ``(H, W, 3)`` / ``(H, W, 4)``
  (trimaps saved as RGB or RGBA) the mean of R, G and B is used — a grey trimap has equal channels, so
  this is exact for it. When R, G and B are constant over the image but the fourth channel varies, the
  trimap was painted into the alpha channel and that channel is used. Two channels (grey + alpha): the
  first is used.
* **Levels.** Integer data is scaled by its type's maximum (uint8 / 255, uint16 / 65535). Float data
  must already lie in [0, 1] (a float trimap with values above 1 is refused rather than rescaled).
* **Anti-aliased or compressed levels** are thresholded conservatively: values ``<= low`` (default 0.1)
  are background, ``>= high`` (default 0.9) foreground, everything between is unknown. A soft edge
  painted between foreground and unknown therefore widens the unknown band instead of inventing
  foreground. These are pymatting's own thresholds.

Example
-------
>>> import numpy as np
>>> from composite.matte.trimap import trimap_from_mask
>>> mask = np.zeros((9, 9), np.float32); mask[2:7, 2:7] = 1
>>> tri = trimap_from_mask(mask, erode=1, dilate=1)
>>> [float(v) for v in tri[4, :]]
[0.0, 0.5, 0.5, 1.0, 1.0, 1.0, 0.5, 0.5, 0.0]
"""

from __future__ import annotations

import cv2
import numpy as np

from ..core.errors import InputError

#: Value of unknown pixels in a normalised trimap.
UNKNOWN = 0.5
#: Default thresholds for known background / foreground (pymatting's).
LOW, HIGH = 0.1, 0.9


def _disk(radius: int) -> np.ndarray:
    """Euclidean disk structuring element: offsets with ``x^2 + y^2 <= radius^2``."""
    y, x = np.mgrid[-radius:radius + 1, -radius:radius + 1]
    return (x * x + y * y <= radius * radius).astype(np.uint8)


def _as_plane(array: np.ndarray, what: str) -> np.ndarray:
    """``(H, W)`` float32 from ``(H, W)`` / ``(H, W, 1)``; integers scaled by their type's maximum."""
    a = np.asarray(array)
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[:, :, 0]
    if a.ndim != 2:
        raise InputError(f"{what}: expected shape (H, W) or (H, W, 1), got {a.shape}")
    if a.size == 0:
        raise InputError(f"{what}: empty array {a.shape}")
    if a.dtype == bool:
        return a.astype(np.float32)
    if np.issubdtype(a.dtype, np.integer):
        return (a.astype(np.float64) / np.iinfo(a.dtype).max).astype(np.float32)
    a = a.astype(np.float32, copy=False)
    if not np.all(np.isfinite(a)):
        raise InputError(f"{what}: contains NaN or Inf values")
    return a


def trimap_from_mask(mask: np.ndarray, *, erode: int = 8, dilate: int = 8, threshold: float = 0.5) -> np.ndarray:
    """Trimap from a coarse mask by eroding (core) and dilating (outer limit) with Euclidean disks
    (offsets with ``x^2 + y^2 <= r^2``); pixels outside the image count as the mask's edge value.

    Parameters
    ----------
    mask : np.ndarray
        ``(H, W)`` or ``(H, W, 1)`` coverage (float in [0, 1], bool or integer), e.g. a SAM mask or a
        keyer's alpha. Pixels ``>= threshold`` are inside.
    erode, dilate : int
        Width in pixels of the unknown band inside and outside the mask edge (0: none on that side).
    threshold : float
        Level at which the mask is binarised.

    Returns
    -------
    np.ndarray
        ``(H, W)`` float32 trimap in {0, 0.5, 1}. An empty mask gives all background (0), a full mask
        all foreground (1) — the refinement then returns the trimap itself.
    """
    m = _as_plane(mask, "mask") >= np.float32(threshold)
    if erode < 0 or dilate < 0:
        raise InputError(f"erode and dilate must be >= 0, got erode={erode}, dilate={dilate}")
    m8 = m.astype(np.uint8)
    fg = cv2.erode(m8, _disk(erode), borderType=cv2.BORDER_REPLICATE) if erode else m8
    outer = cv2.dilate(m8, _disk(dilate), borderType=cv2.BORDER_REPLICATE) if dilate else m8
    tri = np.where(outer > 0, np.float32(UNKNOWN), np.float32(0.0)).astype(np.float32)
    tri[fg > 0] = 1.0
    return tri


def trimap_from_alpha(alpha: np.ndarray, *, low: float = 0.02, high: float = 0.98, band: int = 2) -> np.ndarray:
    """Trimap from a soft alpha (a keyer's matte): certain where alpha is near 0/1, unknown elsewhere,
    with the unknown region grown by ``band`` pixels.

    ``alpha``: ``(H, W)`` or ``(H, W, 1)`` in [0, 1]. Returns ``(H, W)`` float32 in {0, 0.5, 1}.
    """
    a = _as_plane(alpha, "alpha")
    unknown = ((a > low) & (a < high)).astype(np.uint8)
    if band > 0:
        unknown = cv2.dilate(unknown, _disk(band))
    tri = (a >= 0.5).astype(np.float32)
    tri[unknown > 0] = UNKNOWN
    return tri


def normalize_trimap(trimap: np.ndarray, *, low: float = LOW, high: float = HIGH) -> np.ndarray:
    """Any trimap array (grey, RGB, RGBA, uint8/uint16/float, anti-aliased) → ``(H, W)`` float32 in
    {0, 0.5, 1}. See the module docstring for the rules."""
    if not 0.0 <= low < high <= 1.0:
        raise InputError(f"trimap thresholds must satisfy 0 <= low < high <= 1, got low={low}, high={high}")
    a = np.asarray(trimap)
    if a.ndim == 3 and a.shape[2] in (3, 4):
        rgb = a[:, :, :3]
        if a.shape[2] == 4 and np.all(rgb == rgb[:1, :1]) and not np.all(a[:, :, 3] == a[0, 0, 3]):
            a = a[:, :, 3]
        elif np.issubdtype(a.dtype, np.integer):
            a = np.rint(rgb.mean(axis=2)).astype(a.dtype)
        else:
            a = rgb.mean(axis=2, dtype=np.float64).astype(np.float32)
    elif a.ndim == 3 and a.shape[2] == 2:
        a = a[:, :, 0]
    elif a.ndim == 3 and a.shape[2] > 4:
        raise InputError(f"trimap: expected 1, 2, 3 or 4 channels, got {a.shape[2]}")
    t = _as_plane(a, "trimap")
    if float(t.min()) < 0.0 or float(t.max()) > 1.0:
        raise InputError(f"trimap: float values must lie in [0, 1], found [{float(t.min()):g}, {float(t.max()):g}]; "
                         "a trimap stored as 0..255 floats must be divided by 255 first")
    out = np.full(t.shape, UNKNOWN, np.float32)
    out[t <= low] = 0.0
    out[t >= high] = 1.0
    return out


def check_trimap_size(trimap: np.ndarray, shape: tuple[int, ...], *, on_mismatch: str = "error",
                      what: str = "trimap") -> np.ndarray:
    """Make the trimap match an image of ``shape`` (``(H, W, ...)``).

    ``on_mismatch``: ``"error"`` raises :class:`InputError` naming both sizes; ``"resize"`` resizes the
    trimap with nearest-neighbour sampling (keeps the three levels), for trimaps painted on a proxy.
    """
    h, w = int(shape[0]), int(shape[1])
    if trimap.shape[:2] == (h, w):
        return trimap
    th, tw = trimap.shape[:2]
    if on_mismatch == "resize":
        return cv2.resize(trimap, (w, h), interpolation=cv2.INTER_NEAREST)
    if on_mismatch != "error":
        raise InputError(f"on_mismatch must be 'error' or 'resize', got {on_mismatch!r}")
    raise InputError(f"{what} is {tw}x{th} but the image is {w}x{h}; give a {what} of the image's size "
                     "(or allow resizing: size_mismatch=resize scales it with nearest-neighbour sampling)")


def trimap_regions(trimap: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Boolean ``(fg, bg, unknown)`` planes of a normalised trimap."""
    fg = trimap >= 1.0
    bg = trimap <= 0.0
    return fg, bg, ~(fg | bg)
