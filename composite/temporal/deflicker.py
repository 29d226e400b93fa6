"""Deflicker: remove frame-to-frame brightness and colour flicker, keep real changes.

Generated footage (and old film, and some LED-lit plates) pulses in brightness and colour from frame
to frame, globally or region by region. The correction for frame ``t`` reads only a bounded window of
neighbours (``t - r .. t + r``, one shot) and works in scene-linear light:

1. **Measure.** Every frame of the window is reduced to an analysis proxy (long side
   ``analysis_size`` pixels) and, with ``motion_compensate``, warped onto frame t along optical flow
   (flicker-robust log-luminance guide). For each tile of a ``grid`` (``(1, 1)``: global) and each colour
   channel (``mode="rgb"``) or for luminance (``mode="luminance"``), the median per-pixel
   ``log2(neighbour / current)`` over measurable pixels (not too dark, inside both frames, not changed by
   more than ``outlier_stops``: moving or changing content) gives a series ``y_k`` with ``y_t = 0``.
2. **Keep real changes.** Within the window, a level shift between the medians of up to five frames
   before and after a frame boundary (at least two each side) that is larger than ``preserve_changes``
   stops and than four times the scatter such medians have under the series' own flicker (a light
   turning on, an exposure step, a cut missed by the cut detector) splits the series; only the segment
   containing t is used. On that segment a robust line (Theil–Sen; ``order=1``, so exposure ramps are kept) or a
   robust level (median; ``order=0``) is the long-window trend.
3. **Remove the residual.** Frame t's residual from its trend (the short-window part) is removed:
   frame t is multiplied by ``2 ** (strength · trend(t))`` per tile and channel. Tile gains are
   interpolated bilinearly between tile centres (constant beyond the outer centres) to every pixel. Alpha is untouched (premultiplied
   colour scales with its alpha unchanged); no value is clipped.

Example
-------
>>> import numpy as np
>>> from composite.temporal.deflicker import deflicker
>>> from composite.temporal.synthetic import textured_plate
>>> base = textured_plate(72, 128, seed=1)
>>> gains = [0.0, 0.2, -0.15, 0.1, 0.0]                      # stops of flicker per frame
>>> frames = {k: (base * np.float32(2 ** g)) for k, g in enumerate(gains)}
>>> out = deflicker(frames, 2, order=0, motion_compensate=False)    # robust level of the window
>>> round(float(np.log2(np.median(out / base))), 3)          # frame 2 back on its neighbours' level
0.0
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping

import cv2
import numpy as np

from ..core.errors import InputError
from ._common import ArrayCache, as_planes, luminance
from .flow import estimate_flow
from .warp import warp

#: Measurement modes.
MODES = ("rgb", "luminance")
#: Frames on each side of a boundary whose medians are compared to find a real level change.
STEP_GROUP = 5
_PROXIES = ArrayCache(capacity=128)


def _proxy(pixels: np.ndarray, size: tuple[int, int], mode: str) -> np.ndarray:
    """(h, w, C) float32 analysis proxy: RGB (rgb mode) or luminance (1 plane), area-downscaled."""

    def make():
        px = as_planes(pixels, "deflicker frame")
        if px.shape[2] < 3:
            raise InputError(f"deflicker expects colour frames with R, G, B first, got {px.shape[2]} plane(s)")
        rgb = np.ascontiguousarray(px[:, :, :3])
        small = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA) if (px.shape[1], px.shape[0]) != size else rgb
        if mode == "luminance":
            return luminance(small)[:, :, None]
        return small

    return _PROXIES.get((pixels,), (size, mode), make)


def _analysis_size(width: int, height: int, grid: tuple[int, int], analysis_size: int) -> tuple[int, int]:
    """Proxy size: long side about ``analysis_size``, a whole number of pixels per tile."""
    gx, gy = grid
    s = min(1.0, analysis_size / max(width, height))
    cw = max(2, int(round(width * s / gx)))
    ch = max(2, int(round(height * s / gy)))
    return gx * cw, gy * ch


def _tile_medians(d: np.ndarray, grid: tuple[int, int], min_fraction: float) -> np.ndarray:
    """(gy, gx, C) NaN-median of ``d`` (h, w, C, NaN = unmeasured) over each tile."""
    gx, gy = grid
    h, w, c = d.shape
    tiles = d.reshape(gy, h // gy, gx, w // gx, c).transpose(0, 2, 1, 3, 4).reshape(gy, gx, -1, c)
    counts = np.isfinite(tiles).sum(axis=2)
    with warnings.catch_warnings():  # all-NaN tiles are expected (unmeasurable)
        warnings.simplefilter("ignore", RuntimeWarning)
        med = np.nanmedian(tiles, axis=2)
    med[counts < max(8, min_fraction * tiles.shape[2])] = np.nan
    return med


def _theil_sen_slope(y: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Median of pairwise slopes of each series (S, n) over offsets x (n,), NaN skipped; 0 when undefined."""
    n = len(x)
    dx = x[None, :] - x[:, None]
    pair = np.triu(np.ones((n, n), bool), 1)
    slopes = (y[:, None, :] - y[:, :, None]) / np.where(pair, dx, 1.0)[None]
    slopes = np.where(pair[None], slopes, np.nan).reshape(len(y), -1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        slope = np.nanmedian(slopes, axis=1)
    return np.where(np.isfinite(slope), slope, 0.0)


def _robust_trend(y: np.ndarray, x: np.ndarray, *, order: int, preserve: float | None) -> np.ndarray:
    """Trend at offset 0 of each series. y: (S, n) with NaN gaps; x: (n,) sorted offsets containing 0."""
    s_count, n = y.shape
    i0 = int(np.flatnonzero(x == 0)[0])
    use = np.isfinite(y)
    if preserve is not None and n >= 4:
        lo_edge = np.zeros(s_count, int)
        hi_edge = np.full(s_count, n, int)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            # Robust per-series flicker level from first differences (a step is one large difference).
            sigma = 1.4826 * np.nanmedian(np.abs(np.diff(y, axis=1)), axis=1) / np.sqrt(2.0)
            sigma = np.where(np.isfinite(sigma), sigma, 0.0)
            # Compare levels after removing the window's robust slope, so a ramp is not read as a step.
            level = y - _theil_sen_slope(y, x)[:, None] * x[None, :] if order == 1 else y
            for j in range(1, n - 2):  # boundary between samples j and j + 1, two or more on each side
                left = level[:, max(0, j + 1 - STEP_GROUP):j + 1]
                right = level[:, j + 1:j + 1 + STEP_GROUP]
                m = min(left.shape[1], right.shape[1])
                shift = np.abs(np.nanmedian(right, axis=1) - np.nanmedian(left, axis=1))
                # Medians of m samples scatter by about 1.25 sigma / sqrt(m): ask for 4 of those.
                threshold = np.maximum(preserve, 4.0 * 1.25 * sigma * np.sqrt(2.0 / m))
                step = np.isfinite(shift) & (shift > threshold)
                if j < i0:
                    lo_edge = np.where(step, j + 1, lo_edge)
                else:
                    hi_edge = np.where(step & (hi_edge == n), j + 1, hi_edge)
        idx = np.arange(n)[None, :]
        use &= (idx >= lo_edge[:, None]) & (idx < hi_edge[:, None])
    yy = np.where(use, y, np.nan)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        if order == 0:
            trend = np.nanmedian(yy, axis=1)
        else:
            slope = _theil_sen_slope(yy, x)
            trend = np.nanmedian(yy - slope[:, None] * x[None, :], axis=1)
    return np.where(np.isfinite(trend), trend, 0.0)


def estimate_flicker_gains(frames: Mapping[int, np.ndarray], t: int, *, grid: tuple[int, int] = (1, 1),
                           mode: str = "rgb", order: int = 1, preserve_changes: float | None = 0.4,
                           motion_compensate: bool = True, analysis_size: int = 320, preset: str = "fast",
                           outlier_stops: float = 1.0, floor: float = 0.01) -> np.ndarray:
    """Log2 gains that put frame ``t`` on its window's trend: ``(rows, columns, 3)`` float64.

    Parameters
    ----------
    frames : mapping of int to np.ndarray
        The window (one shot): frame number → ``(H, W, C)`` float32 scene-linear, R, G, B first,
        premultiplied or opaque; all the same size. Frame numbers may have gaps.
    t : int
        The frame to correct.
    grid : (columns, rows)
        Tiles of the regional correction; ``(1, 1)`` for a global one.
    mode : {"rgb", "luminance"}
        Correct each channel (colour flicker too) or luminance only (same gain on R, G, B).
    order : {0, 1}
        Trend model: robust level (0) or robust line (1, keeps exposure ramps).
    preserve_changes : float or None
        Stops; larger level shifts in the window are real changes and are kept (None: never split).
    motion_compensate : bool
        Warp neighbours onto frame t along optical flow before measuring (moving camera or content).
    analysis_size : int
        Long side of the analysis proxies, pixels.
    preset : str
        Flow preset for the motion compensation (on the proxies).
    outlier_stops : float
        Per-pixel changes larger than this are content changes, not flicker, and are ignored.
    floor : float
        Pixels darker than ``floor`` times the frame's mean are too dark to measure.
    """
    if t not in frames:
        raise InputError(f"deflicker: frame {t} is not in the window {sorted(frames)}")
    if mode not in MODES:
        raise InputError(f"deflicker: mode must be one of {', '.join(MODES)}, got {mode!r}")
    if order not in (0, 1):
        raise InputError(f"deflicker: order must be 0 or 1, got {order}")
    gx, gy = int(grid[0]), int(grid[1])
    if gx < 1 or gy < 1:
        raise InputError(f"deflicker: grid must be at least 1x1, got {grid}")
    ref = as_planes(frames[t], f"deflicker frame {t}")
    h, w = ref.shape[:2]
    for k, v in frames.items():
        if v.shape[:2] != (h, w):
            raise InputError(f"deflicker: frame {k} is {v.shape[1]}x{v.shape[0]} but frame {t} is {w}x{h}; "
                             "frames of a window must share one size")
    size = _analysis_size(w, h, (gx, gy), analysis_size)
    cur = _proxy(frames[t], size, mode)
    eps = np.float32(1e-12)
    level = max(float(np.mean(luminance(cur) if cur.shape[2] >= 3 else cur)), 1e-9)
    lo = np.float32(floor * level)
    log_cur = np.log2(np.maximum(cur, eps))
    ok_cur = cur > lo
    offsets = sorted(frames)
    x = np.array([k - t for k in offsets], np.float64)
    n_ch = cur.shape[2]
    series = np.full((gy, gx, n_ch, len(offsets)), np.nan)
    for i, k in enumerate(offsets):
        if k == t:
            series[..., i] = 0.0
            continue
        other = _proxy(frames[k], size, mode)
        valid = np.ones(cur.shape[:2], bool)
        if motion_compensate:
            fw = estimate_flow(cur, other, preset=preset, encoding="log")
            other = warp(other, fw)
            gxs, gys = np.meshgrid(np.arange(size[0], dtype=np.float32), np.arange(size[1], dtype=np.float32))
            tx, ty = gxs + fw[..., 0], gys + fw[..., 1]
            valid = (tx >= 0) & (tx <= size[0] - 1) & (ty >= 0) & (ty <= size[1] - 1)
        if other.ndim == 2:
            other = other[:, :, None]
        d = np.log2(np.maximum(other, eps)) - log_cur
        good = ok_cur & (other > lo) & valid[:, :, None] & (np.abs(d) <= outlier_stops)
        d = np.where(good, d, np.nan)
        series[..., i] = _tile_medians(d, (gx, gy), 0.1)
    trend = _robust_trend(series.reshape(-1, len(offsets)), x, order=order, preserve=preserve_changes)
    gains = trend.reshape(gy, gx, n_ch)
    # Tiles that could not be measured take the median gain of the others.
    measured = np.isfinite(series[..., [i for i, k in enumerate(offsets) if k != t]]).any(axis=-1) \
        if len(offsets) > 1 else np.zeros((gy, gx, n_ch), bool)
    for c in range(n_ch):
        m = measured[..., c]
        fill = float(np.median(gains[..., c][m])) if m.any() else 0.0
        gains[..., c] = np.where(m, gains[..., c], fill)
    if n_ch == 1:
        gains = np.repeat(gains, 3, axis=2)
    return gains


def apply_gains(pixels: np.ndarray, log_gains: np.ndarray, *, strength: float = 1.0) -> np.ndarray:
    """Multiply R, G, B of ``pixels`` by ``2 ** (strength · log_gains)``, interpolated over the frame.

    Parameters
    ----------
    pixels : np.ndarray
        ``(H, W, C)`` float32, R, G, B first (premultiplied or opaque); other planes (alpha) untouched.
    log_gains : np.ndarray
        ``(rows, columns, 3)`` stops per tile, interpolated bilinearly between tile centres (no overshoot).

    Returns
    -------
    np.ndarray
        A new ``(H, W, C)`` float32 array; values are not clipped.
    """
    px = as_planes(pixels, "deflicker frame")
    g = np.asarray(log_gains, np.float32) * np.float32(strength)
    if g.ndim != 3 or g.shape[2] != 3:
        raise InputError(f"apply_gains: expected (rows, columns, 3) gains, got {g.shape}")
    h, w = px.shape[:2]
    out = px.copy()
    if g.shape[:2] == (1, 1):
        out[:, :, :3] *= np.exp2(g[0, 0])
        return out
    field = cv2.resize(g, (w, h), interpolation=cv2.INTER_LINEAR)
    out[:, :, :3] *= np.exp2(field)
    return out


def deflicker(frames: Mapping[int, np.ndarray], t: int, *, strength: float = 1.0, **options) -> np.ndarray:
    """Frame ``t`` of the window with its flicker removed (see the module docstring).

    ``options`` are those of :func:`estimate_flicker_gains`. Returns ``(H, W, C)`` float32.
    """
    gains = estimate_flicker_gains(frames, t, **options)
    return apply_gains(frames[t], gains, strength=strength)
