"""Helpers shared by the temporal modules: luminance, 8-bit flow guides, analysis proxies and a cache of
values derived from pixel arrays that lives exactly as long as the arrays do."""

from __future__ import annotations

import threading
import weakref
from collections import OrderedDict
from collections.abc import Callable, Hashable

import cv2
import numpy as np

from ..core.errors import InputError
from ..core.image import as_pixel_planes
from ..core.state import AP1_LUMINANCE

#: Luminance weights of ACEScg (:data:`composite.core.state.AP1_LUMINANCE`) as float32.
ACESCG_LUMINANCE = np.array(AP1_LUMINANCE, np.float32)

#: Stops below the frame's bright reference that the 8-bit log guide still resolves.
GUIDE_STOPS_BELOW = 9.0
#: Stops above the bright reference that the guide resolves (specular highlights).
GUIDE_STOPS_ABOVE = 2.0


def as_planes(pixels: np.ndarray, what: str = "image") -> np.ndarray:
    """``(H, W)`` or ``(H, W, C)`` float32 → ``(H, W, C)``, not empty (:func:`~composite.core.image.as_pixel_planes`)."""
    pixels = as_pixel_planes(pixels, what)
    if pixels.shape[0] < 1 or pixels.shape[1] < 1:
        raise InputError(f"{what}: empty image {pixels.shape}")
    return pixels


def luminance(pixels: np.ndarray) -> np.ndarray:
    """``(H, W)`` float32 luminance of scene-linear ACEScg pixels.

    Three or more planes: the first three are R, G, B (premultiplied colour is fine: luminance of
    premultiplied colour is premultiplied luminance). One or two planes: the first plane is used as is
    (a matte or a grey image).
    """
    px = as_planes(pixels)
    if px.shape[2] >= 3:
        return np.dot(px[:, :, :3], ACESCG_LUMINANCE).astype(np.float32, copy=False)
    return np.ascontiguousarray(px[:, :, 0])


def bright_reference(y: np.ndarray) -> float:
    """A robust "white" of a luminance plane: the 99th percentile of a subsample, at least 1e-6."""
    step = max(1, int(np.sqrt(y.size / 65536.0)))
    sample = y[::step, ::step]
    ref = float(np.percentile(sample, 99.0)) if sample.size else 1.0
    return ref if np.isfinite(ref) and ref > 1e-6 else 1e-6


def log_guide(y: np.ndarray, reference: float) -> np.ndarray:
    """8-bit log-luminance guide for flow and tracking.

    Maps ``log2(Y / reference)`` from ``-GUIDE_STOPS_BELOW`` to ``+GUIDE_STOPS_ABOVE`` onto 0..255. A gain
    (flicker, exposure) becomes an offset, which DIS's patch mean normalisation and Lucas–Kanade's
    gradients ignore. Both frames of a pair must use the same ``reference``.
    """
    floor = np.float32(2.0 ** -GUIDE_STOPS_BELOW)
    span = GUIDE_STOPS_BELOW + GUIDE_STOPS_ABOVE
    v = np.log2(np.maximum(y, 0.0) * np.float32(1.0 / reference) + floor)
    v = (v + np.float32(GUIDE_STOPS_BELOW)) * np.float32(255.0 / span)
    return np.clip(v + 0.5, 0, 255).astype(np.uint8)


def linear_guide(y: np.ndarray) -> np.ndarray:
    """8-bit guide of data in [0, 1] (mattes): values scaled by 255, clipped for the guide only."""
    return np.clip(y * np.float32(255.0) + 0.5, 0, 255).astype(np.uint8)


def _nbytes(value: object) -> int:
    if isinstance(value, np.ndarray):
        return int(value.nbytes)
    if isinstance(value, (tuple, list)):
        return sum(_nbytes(v) for v in value)
    return 64


class ArrayCache:
    """A small LRU of values derived from NumPy arrays, keyed by the arrays' identities.

    An entry is valid while every array it was derived from is alive (checked with weak references), so
    a reused ``id`` never returns a stale value. Values are pure functions of the arrays' contents (which
    composite never mutates in place), so caching cannot change results. The cache holds at most
    ``capacity`` entries and ``max_bytes`` bytes of values (a value larger than that is not cached);
    entries whose arrays are gone are dropped whenever a new value is stored, so a render that lets go of
    its old frames lets go of what was derived from them too.
    """

    def __init__(self, capacity: int = 64, max_bytes: int = 256 << 20):
        self.capacity = capacity
        self.max_bytes = max_bytes
        self._items: OrderedDict[Hashable, tuple[tuple[weakref.ref, ...], object, int]] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def get(self, arrays: tuple, extra: Hashable, make: Callable[[], object]):
        key = (tuple(id(a) for a in arrays), extra)
        with self._lock:
            hit = self._items.get(key)
            if hit is not None:
                refs, value, _ = hit
                if all(r() is a for r, a in zip(refs, arrays)):
                    self._items.move_to_end(key)
                    return value
                self._drop(key)
        value = make()
        size = _nbytes(value)
        if size > self.max_bytes:
            return value
        try:
            refs = tuple(weakref.ref(a) for a in arrays)
        except TypeError:  # not weak-referenceable: do not cache
            return value
        with self._lock:
            for stale in [k for k, (rs, _, _) in self._items.items() if any(r() is None for r in rs)]:
                self._drop(stale)
            if key in self._items:
                self._drop(key)
            self._items[key] = (refs, value, size)
            self._bytes += size
            while len(self._items) > self.capacity or self._bytes > self.max_bytes:
                self._drop(next(iter(self._items)))
        return value

    def _drop(self, key: Hashable) -> None:
        _, _, size = self._items.pop(key)
        self._bytes -= size

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
            self._bytes = 0


def proxy_size(width: int, height: int, long_side: int) -> tuple[int, int]:
    """``(w, h)`` scaled so the long side is at most ``long_side`` (never upscaled)."""
    s = min(1.0, float(long_side) / max(width, height))
    return max(1, int(round(width * s))), max(1, int(round(height * s)))


def resize_area(pixels: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Area-average downscale of ``(H, W)`` or ``(H, W, C)`` float32 to ``size = (w, h)``."""
    if (pixels.shape[1], pixels.shape[0]) == tuple(size):
        return pixels
    if pixels.ndim == 3 and pixels.shape[2] > 4:
        return np.concatenate([resize_area(pixels[:, :, i:i + 4], size) for i in range(0, pixels.shape[2], 4)], 2)
    out = cv2.resize(np.ascontiguousarray(pixels), size, interpolation=cv2.INTER_AREA)
    if pixels.ndim == 3 and out.ndim == 2:
        out = out[:, :, None]
    return out
