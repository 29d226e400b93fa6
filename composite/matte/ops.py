"""Matte operations: erode/dilate (sub-pixel), blur, edge-only blur, clamp, combine, edge extend.

Mattes are ``(H, W)`` float32 arrays, raw data (no colour space), usually in [0, 1]. Functions take the
matte positionally and options keyword-only, and return a new float32 array; none modifies its input.

:func:`fill_from_weights` (a push–pull pyramid, i.e. masked diffusion) is the building block behind
:func:`edge_extend` and the clean screen plate of :mod:`composite.matte.screen`.

Example
-------
>>> import numpy as np
>>> from composite.matte.ops import erode, combine
>>> m = np.zeros((9, 9), np.float32); m[2:7, 2:7] = 1
>>> float(erode(m, amount=1.0).sum()), float(erode(m, amount=-1.0).sum())
(9.0, 49.0)
>>> float(combine(m, np.full_like(m, 0.5), op="multiply").max())
0.5
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from ..core.errors import InputError, StateError

COMBINE_OPS = ("max", "min", "multiply", "subtract", "add", "screen")


def as_matte(array: np.ndarray, what: str = "matte") -> np.ndarray:
    """Check and return a ``(H, W)`` float32 matte (a trailing single plane is squeezed)."""
    if not isinstance(array, np.ndarray):
        raise InputError(f"{what}: expected a NumPy array, got {type(array).__name__}")
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    if array.ndim != 2:
        raise InputError(f"{what}: expected an (H, W) matte, got shape {array.shape}")
    if array.dtype != np.float32:
        raise StateError(f"{what}: mattes must be float32, got {array.dtype}; convert explicitly")
    return array


def _same_shape(a: np.ndarray, b: np.ndarray, what: str) -> None:
    if a.shape[:2] != b.shape[:2]:
        raise InputError(f"{what}: sizes differ, {a.shape[1]}x{a.shape[0]} vs {b.shape[1]}x{b.shape[0]}; "
                         "reformat one of them first")


def _disc(radius: int) -> np.ndarray:
    d = 2 * radius + 1
    yy, xx = np.mgrid[-radius:radius + 1, -radius:radius + 1]
    return (xx * xx + yy * yy <= radius * radius + radius).astype(np.uint8).reshape(d, d)


def _morph(matte: np.ndarray, radius: int, grow: bool) -> np.ndarray:
    if radius <= 0:
        return matte.copy()
    op = cv2.dilate if grow else cv2.erode
    border = cv2.BORDER_REPLICATE
    return op(matte, _disc(radius), borderType=border)


def erode(matte: np.ndarray, *, amount: float) -> np.ndarray:
    """Shrink (``amount > 0``) or grow (``amount < 0``) a matte by ``|amount|`` pixels.

    Grey-scale morphology (min/max over a disc). Fractional amounts blend the two neighbouring integer
    radii linearly, so ``amount=0.5`` moves a hard edge by half a pixel on average and animating
    ``amount`` changes the matte smoothly.

    Parameters
    ----------
    matte : (H, W) float32
    amount : float
        Pixels; positive erodes, negative dilates.
    """
    m = as_matte(matte)
    r = abs(float(amount))
    lo = int(math.floor(r))
    frac = np.float32(r - lo)
    grow = amount < 0
    a = _morph(m, lo, grow)
    if frac == 0:
        return a
    b = _morph(m, lo + 1, grow)
    a += frac * (b - a)
    return a


def dilate(matte: np.ndarray, *, amount: float) -> np.ndarray:
    """Grow a matte by ``amount`` pixels (same as ``erode(matte, amount=-amount)``)."""
    return erode(matte, amount=-float(amount))


def blur(matte: np.ndarray, *, size: float) -> np.ndarray:
    """Gaussian blur with standard deviation ``size`` pixels (0: a copy). Edges replicate."""
    m = as_matte(matte)
    if size <= 0:
        return m.copy()
    return cv2.GaussianBlur(m, (0, 0), float(size), borderType=cv2.BORDER_REPLICATE)


def edge_band(matte: np.ndarray, *, width: float, low: float = 0.02, high: float = 0.98) -> np.ndarray:
    """A soft ``(H, W)`` weight, 1 within ``width`` pixels of the matte's transitions and 0 far from them.

    Transitions are pixels with ``low < matte < high``, or where the matte changes within the band.
    """
    m = as_matte(matte)
    r = max(1, int(math.ceil(width)))
    grown = _morph(m, r, True)
    shrunk = _morph(m, r, False)
    band = ((grown - shrunk) > (high - low) * 0.5) | ((m > low) & (m < high))
    band = band.astype(np.float32)
    return cv2.GaussianBlur(band, (0, 0), max(0.5, width / 3.0), borderType=cv2.BORDER_REPLICATE)


def edge_blur(matte: np.ndarray, *, size: float, width: float | None = None) -> np.ndarray:
    """Blur only around the matte's edges (``width`` pixels each side, default ``2 * size``).

    Solid cores and clean background keep their values; the edge band takes the blurred matte, with a
    soft transition between the two.
    """
    m = as_matte(matte)
    if size <= 0:
        return m.copy()
    w = edge_band(m, width=float(width) if width is not None else 2.0 * size)
    out = blur(m, size=size)
    out -= m
    out *= w
    out += m
    return out


def clamp(matte: np.ndarray, *, low: float = 0.0, high: float = 1.0) -> np.ndarray:
    """Clip to ``[low, high]`` (a matte operation: mattes are not HDR data)."""
    m = as_matte(matte)
    if low > high:
        raise InputError(f"clamp: low {low} is above high {high}")
    return np.clip(m, np.float32(low), np.float32(high))


def combine(a: np.ndarray, b: np.ndarray, *, op: str = "max") -> np.ndarray:
    """Combine two mattes: ``max`` (union), ``min`` (intersection), ``multiply``, ``subtract`` (a - b,
    floored at 0), ``add`` (a + b, capped at 1) or ``screen`` (a + b - ab)."""
    a = as_matte(a, "matte a")
    b = as_matte(b, "matte b")
    _same_shape(a, b, f"combine {op}")
    if op == "max":
        return np.maximum(a, b)
    if op == "min":
        return np.minimum(a, b)
    if op == "multiply":
        return a * b
    if op == "subtract":
        return np.maximum(a - b, np.float32(0))
    if op == "add":
        return np.minimum(a + b, np.float32(1))
    if op == "screen":
        return a + b - a * b
    raise InputError(f"combine: unknown operation {op!r}; allowed: {', '.join(COMBINE_OPS)}")


def remove_small_regions(matte: np.ndarray, *, min_area: int, threshold: float = 0.05,
                         holes: bool = False) -> np.ndarray:
    """Despeckle: drop the matte's isolated regions smaller than ``min_area`` pixels.

    Regions are the 8-connected components of ``matte > threshold``; a removed region goes to 0 with
    its soft edge, a kept one is untouched (so hair attached to a head stays, tracking markers and
    dust keyed as foreground go). With ``holes`` the same is done to the inverted matte (small holes
    in the foreground are filled to 1). ``matte``: ``(H, W)`` float32 in [0, 1].
    """
    m = as_matte(matte)
    if min_area <= 0:
        return m.copy()
    out = m.copy()
    n, labels, stats, _ = cv2.connectedComponentsWithStats((m > threshold).astype(np.uint8), connectivity=8)
    small = np.zeros(n, bool)
    small[1:] = stats[1:, cv2.CC_STAT_AREA] < min_area
    if small.any():
        out[small[labels]] = 0.0
    if holes:
        n, labels, stats, _ = cv2.connectedComponentsWithStats((m < 1.0 - threshold).astype(np.uint8), connectivity=4)
        small = np.zeros(n, bool)
        small[1:] = stats[1:, cv2.CC_STAT_AREA] < min_area
        if small.any():
            out[small[labels]] = 1.0
    return out


def invert(matte: np.ndarray) -> np.ndarray:
    """``1 - matte``."""
    return np.float32(1) - as_matte(matte)


def fill_from_weights(values: np.ndarray, weights: np.ndarray, *, levels: int | None = None) -> np.ndarray:
    """Fill an image where ``weights`` is low from where it is high (push–pull / masked diffusion).

    Parameters
    ----------
    values : (H, W, C) or (H, W) float32
        Values to spread (not multiplied by the weights).
    weights : (H, W) float32 in [0, 1]
        Confidence of each value; 0 means unknown.
    levels : int, optional
        Pyramid depth (default: until the coarsest level is a few pixels).

    Returns
    -------
    (H, W, C) or (H, W) float32
        Where the weight is 1 the value is kept; elsewhere it blends towards the weighted average of the
        neighbourhood at the finest scale that has data. If all weights are 0 the result is 0.
    """
    v = np.asarray(values, np.float32)
    w = as_matte(np.asarray(weights, np.float32), "weights")
    squeeze = v.ndim == 2
    if squeeze:
        v = v[:, :, None]
    _same_shape(v, w, "fill_from_weights")
    w = np.clip(w, 0, 1)
    pyr_v = [v * w[:, :, None]]
    pyr_w = [w]
    max_levels = levels if levels is not None else 64
    while min(pyr_w[-1].shape) > 2 and len(pyr_w) <= max_levels:
        pv = cv2.pyrDown(pyr_v[-1], borderType=cv2.BORDER_REPLICATE)
        if pv.ndim == 2:
            pv = pv[:, :, None]
        pyr_v.append(pv)
        pyr_w.append(cv2.pyrDown(pyr_w[-1], borderType=cv2.BORDER_REPLICATE))
    eps = np.float32(1e-6)
    top_w = pyr_w[-1]
    top_v = pyr_v[-1]
    total_w = float(top_w.sum())
    if total_w <= 0:
        out = np.zeros_like(v)
        return out[:, :, 0] if squeeze else out
    cur = top_v.sum(axis=(0, 1)) / np.float32(total_w)
    cur = np.broadcast_to(cur, top_v.shape).astype(np.float32)
    for lv in range(len(pyr_w) - 1, -1, -1):
        pv, pw = pyr_v[lv], pyr_w[lv]
        if cur.shape[:2] != pw.shape:
            up = cv2.resize(cur, (pw.shape[1], pw.shape[0]), interpolation=cv2.INTER_LINEAR) \
                if lv == len(pyr_w) - 1 else cv2.pyrUp(cur, dstsize=(pw.shape[1], pw.shape[0]))
            if up.ndim == 2:
                up = up[:, :, None]
            cur = up
        # Normalised value where there is data; blend with the coarser estimate by coverage.
        own = pv / np.maximum(pw, eps)[:, :, None]
        k = np.clip(pw * 2.0, 0, 1)[:, :, None].astype(np.float32)
        cur = (own * k + cur * (1 - k)).astype(np.float32)
    return cur[:, :, 0] if squeeze else cur


def edge_extend(rgba: np.ndarray, *, threshold: float = 0.95) -> np.ndarray:
    """Bleed foreground colour outward: straight (unpremultiplied) RGBA with colour defined everywhere.

    Pixels whose alpha is at least ``threshold`` keep their straight colour; partially transparent and
    empty pixels take colour diffused from the nearby solid foreground (weighted by alpha), so
    unpremultiplying never divides noise by a tiny alpha and growing a matte finds a plausible colour.

    Parameters
    ----------
    rgba : (H, W, 4) float32, premultiplied, any colour space
    threshold : float
        Alpha above which a pixel's own colour is trusted fully.

    Returns
    -------
    (H, W, 4) float32, straight alpha (alpha unchanged). With an all-zero alpha the colour is 0.
    """
    if rgba.ndim != 3 or rgba.shape[2] != 4:
        raise InputError(f"edge_extend: expected (H, W, 4) premultiplied RGBA, got {rgba.shape}")
    a = rgba[..., 3]
    safe = np.maximum(a, np.float32(1e-6))
    straight = rgba[..., :3] / safe[..., None]
    trust = np.clip(a / np.float32(max(threshold, 1e-3)), 0, 1).astype(np.float32)
    trust = trust * trust  # favour near-solid pixels when spreading colour
    filled = fill_from_weights(np.where(a[..., None] > 0, straight, 0).astype(np.float32), trust)
    k = trust[..., None]
    out = np.empty_like(rgba)
    out[..., :3] = straight * k + filled * (1 - k)
    out[..., 3] = a
    return out
