"""Shared checks and small helpers of the integration operations."""

from __future__ import annotations

import cv2
import numpy as np

from ..core.errors import InputError, StateError
from ..core.image import as_pixel_planes
from ..core.state import AP1_LUMINANCE  # noqa: F401  (re-exported: integration and device ops use it from here)


def as_array(pixels: np.ndarray, who: str, what: str = "image") -> np.ndarray:
    """Check a float32 ``(H, W, C)`` array (a 2D array gains a channel axis)."""
    return as_pixel_planes(pixels, f"{who}: {what}")


def require_rgba(pixels: np.ndarray, who: str, what: str = "foreground") -> np.ndarray:
    """A ``(H, W, 4)`` premultiplied RGBA array, or a clear error for elements without alpha."""
    pixels = as_array(pixels, who, what)
    if pixels.shape[2] != 4:
        raise StateError(f"{who}: {what} has {pixels.shape[2]} channel(s) but needs R, G, B, A "
                         "(premultiplied): the operation follows the element's matte; key or "
                         "premultiply the element first")
    return pixels


def to_rgba(pixels: np.ndarray, who: str, what: str = "image") -> np.ndarray:
    """``(H, W, 3)`` opaque RGB gains A = 1; ``(H, W, 4)`` passes; others are refused."""
    pixels = as_array(pixels, who, what)
    c = pixels.shape[2]
    if c == 4:
        return pixels
    if c == 3:
        return np.concatenate([pixels, np.ones((*pixels.shape[:2], 1), np.float32)], axis=2)
    raise StateError(f"{who}: {what} must be RGB or RGBA, got {c} channel(s)")


def same_size(a: np.ndarray, b: np.ndarray, who: str, names: tuple[str, str]) -> None:
    if a.shape[:2] != b.shape[:2]:
        raise InputError(f"{who}: {names[0]} is {a.shape[1]}x{a.shape[0]} but {names[1]} is "
                         f"{b.shape[1]}x{b.shape[0]}; reformat one of them (or align data windows) first")


def plane(mask: np.ndarray | None, shape: tuple[int, int], who: str, what: str = "mask") -> np.ndarray | None:
    """A ``(H, W)`` float32 weight plane from a mask array (last channel used), NaNs as 0."""
    if mask is None:
        return None
    m = np.asarray(mask)
    if m.ndim == 3:
        m = m[:, :, -1]
    if m.ndim != 2 or m.shape != shape:
        raise InputError(f"{who}: {what} has shape {m.shape} but the image is {shape[1]}x{shape[0]}; "
                         f"reformat the {what} to the image's size")
    return np.nan_to_num(m.astype(np.float32, copy=False), nan=0.0, posinf=1.0, neginf=0.0)


def luminance(rgb: np.ndarray) -> np.ndarray:
    w = AP1_LUMINANCE
    return (rgb[:, :, 0] * np.float32(w[0]) + rgb[:, :, 1] * np.float32(w[1])
            + rgb[:, :, 2] * np.float32(w[2])).astype(np.float32)


def gaussian(pixels: np.ndarray, sigma: float, *, border: int = cv2.BORDER_REFLECT) -> np.ndarray:
    """Gaussian blur of ``(H, W)`` or ``(H, W, C)`` float32 (C up to 4 at once); sigma 0 copies."""
    if sigma <= 0:
        return pixels.copy()
    if pixels.ndim == 3 and pixels.shape[2] > 4:
        return np.concatenate([gaussian(pixels[:, :, i:i + 4], sigma, border=border)
                               for i in range(0, pixels.shape[2], 4)], axis=2)
    out = cv2.GaussianBlur(np.ascontiguousarray(pixels), (0, 0), float(sigma), borderType=border)
    if pixels.ndim == 3 and out.ndim == 2:
        out = out[:, :, None]
    return out


def gaussian_smooth(pixels: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur for wide, smooth spreads: from sigma 6 on, computed at 1/2 .. 1/8 resolution.

    The image is reduced (area average) so the blur keeps a sigma of at least 3 pixels, blurred, and
    enlarged back (bilinear). For a light spread or a fill this is indistinguishable from the full blur
    (the reduced sigma still spans several pixels) at a fraction of the cost. Borders reflect.
    """
    factor = 1
    while sigma / (factor * 2) >= 3.0 and factor < 8:
        factor *= 2
    if factor == 1:
        return gaussian(pixels, sigma)
    h, w = pixels.shape[:2]
    small = cv2.resize(np.ascontiguousarray(pixels), (max(1, -(-w // factor)), max(1, -(-h // factor))),
                       interpolation=cv2.INTER_AREA)
    if pixels.ndim == 3 and small.ndim == 2:
        small = small[:, :, None]
    blurred = gaussian(small, sigma / factor)
    up = cv2.resize(blurred, (w, h), interpolation=cv2.INTER_LINEAR)
    return up[:, :, None] if pixels.ndim == 3 and up.ndim == 2 else up


def finite(pixels: np.ndarray, who: str, what: str = "image") -> np.ndarray:
    """Refuse NaN (a NaN would spread through every blur); infinities are refused too."""
    if not np.all(np.isfinite(pixels)):
        bad = int(pixels.size - np.count_nonzero(np.isfinite(pixels)))
        raise InputError(f"{who}: {what} holds {bad} NaN/infinite value(s); repair them first "
                         "(recipes: `nonfinite: repair`)")
    return pixels


#: How depth values read: distance from the camera, or its inverse (1/z, as some renderers write).
DEPTH_MODES = ("distance", "inverse")


def checked_depth(depth: np.ndarray, depth_mode: str, who: str) -> np.ndarray:
    """A depth pass as float32, as given (distances or inverse distances per ``depth_mode``).

    Refuses an unknown ``depth_mode``, NaN values and negative values, naming ``who`` and what to do.
    """
    if depth_mode not in DEPTH_MODES:
        raise InputError(f"{who}: unknown depth_mode {depth_mode!r}; allowed: {', '.join(DEPTH_MODES)}")
    d = np.asarray(depth, np.float32)
    if np.isnan(d).any():
        raise InputError(f"{who}: depth holds {int(np.isnan(d).sum())} NaN value(s); repair the depth pass")
    if (d < 0).any():
        raise InputError(f"{who}: depth holds {int((d < 0).sum())} negative value(s); expected "
                         f"{'distances' if depth_mode == 'distance' else 'inverse distances'} >= 0 "
                         "(check depth_mode)")
    return d
