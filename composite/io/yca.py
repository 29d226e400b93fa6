"""Luminance/chroma OpenEXR images (channels ``Y``, ``RY``, ``BY``) to RGB, following OpenEXR's rules.

OpenEXR stores such images with full-resolution luminance ``Y`` and chroma ``RY = (R - Y) / Y``,
``BY = (B - Y) / Y`` subsampled 2x2 (samples at even x and y). OpenEXR's ``RgbaInputFile`` converts them
back to RGB by

1. reconstructing the missing chroma samples horizontally, then vertically, with its 27-tap filter
   (edges padded by repeating the first sample and the next-to-last pixel, as ``padTmpBuf`` does);
2. ``YCAtoRGBA`` with the luminance weights of the file's chromaticities (Rec.709 by default);
3. ``fixSaturation``: pixels much more saturated than their diagonal neighbours are desaturated,
   keeping their luminance.

Every intermediate is rounded to half precision where OpenEXR stores it in an ``Rgba`` (half) buffer,
and float arithmetic follows the same order, so the result matches OpenEXR's own reader. OpenImageIO
does not read subsampled channels, which is why this module exists.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..core.errors import InputError

#: Chroma reconstruction filter taps (OpenEXR ``reconstructChromaHoriz``/``Vert``) at offsets ±1, ±3 ... ±13.
_TAPS = np.array([0.002128, -0.007540, 0.019597, -0.043159, 0.087929, -0.186077, 0.627123,
                  0.627123, -0.186077, 0.087929, -0.043159, 0.019597, -0.007540, 0.002128], np.float32)
_OFFSETS = tuple(range(-13, 14, 2))

#: OpenEXR's default chromaticities (Rec.709 primaries, D65 white).
REC709_CHROMATICITIES = (0.64, 0.33, 0.30, 0.60, 0.15, 0.06, 0.3127, 0.3290)


def luminance_weights(chromaticities: Sequence[float] | None = None) -> np.ndarray:
    """The Y row of the RGB→XYZ matrix, normalised to sum 1 (OpenEXR ``RgbaYca::computeYw``)."""
    rx, ry, gx, gy, bx, by, wx, wy = (float(v) for v in (chromaticities or REC709_CHROMATICITIES))
    xyz = np.array([[rx / ry, gx / gy, bx / by], [1.0, 1.0, 1.0],
                    [(1 - rx - ry) / ry, (1 - gx - gy) / gy, (1 - bx - by) / by]])
    white = np.array([wx / wy, 1.0, (1 - wx - wy) / wy])
    scale = np.linalg.solve(xyz, white)
    yrow = xyz[1] * scale
    return (yrow / yrow.sum()).astype(np.float32)


def _weighted_sum(planes: list[np.ndarray]) -> np.ndarray:
    """Σ planes[k] * taps[k] in float32, accumulated left to right as the C++ expression is."""
    acc = planes[0].astype(np.float32) * _TAPS[0]
    for plane, tap in zip(planes[1:], _TAPS[1:]):
        acc = acc + plane.astype(np.float32) * tap
    return acc


def _reconstruct_horizontal(samples: np.ndarray, width: int) -> np.ndarray:
    """Chroma rows sampled at even x ``(rows, ceil(W/2))`` half → full rows ``(rows, W)`` half."""
    rows = samples.shape[0]
    full = np.zeros((rows, width), np.float16)
    full[:, 0::2] = samples[:, : (width + 1) // 2]
    # padded buffer: 13 pixels each side; left repeats pixel 0, right repeats the last even pixel
    # (pixel W-2 for even widths, as OpenEXR's padTmpBuf does)
    last_even = width - 1 if (width - 1) % 2 == 0 else width - 2
    pad = np.empty((rows, width + 26), np.float16)
    pad[:, 13:13 + width] = full
    pad[:, :13] = full[:, :1]
    pad[:, 13 + width:] = full[:, last_even:last_even + 1]
    odd = np.arange(1, width, 2)
    if odd.size:
        planes = [pad[:, 13 + odd + off] for off in _OFFSETS]
        full[:, 1::2] = _weighted_sum(planes).astype(np.float16)
    return full


def yca_to_rgb(y: np.ndarray, ry: np.ndarray, by: np.ndarray, *, chromaticities: Sequence[float] | None = None,
               origin: tuple[int, int] = (0, 0)) -> np.ndarray:
    """Convert OpenEXR luminance/chroma planes to RGB exactly as OpenEXR's RgbaInputFile does.

    Parameters
    ----------
    y : np.ndarray
        ``(H, W)`` float16 luminance.
    ry, by : np.ndarray
        ``(ceil(H/2), ceil(W/2))`` float16 chroma sampled at even x and y.
    chromaticities : sequence of 8 floats or None
        The file's chromaticities (Rec.709 when None) for the luminance weights.
    origin : (int, int)
        Data window origin (x, y); must be even (where OpenEXR places the chroma samples).

    Returns
    -------
    np.ndarray
        ``(H, W, 3)`` float16 RGB in the file's (linear) colour space.
    """
    if origin[0] % 2 or origin[1] % 2:
        raise InputError(f"luminance/chroma image with an odd data-window origin {origin} is not supported")
    y = np.asarray(y, np.float16)
    ry = np.asarray(ry, np.float16)
    by = np.asarray(by, np.float16)
    h, w = y.shape
    hc, wc = (h + 1) // 2, (w + 1) // 2
    if ry.shape != (hc, wc) or by.shape != (hc, wc):
        raise InputError(f"chroma planes are {ry.shape}/{by.shape}, expected {(hc, wc)} for a {w}x{h} image")
    yw = luminance_weights(chromaticities)
    ywx, ywy, ywz = (np.float32(v) for v in yw)

    # 1. horizontal reconstruction of the even rows
    ry_h = _reconstruct_horizontal(ry, w)
    by_h = _reconstruct_horizontal(by, w)

    # 2. line positions -1 .. H (the rows plus one neighbour above and below for fixSaturation)
    last_even_row = h - 1 if (h - 1) % 2 == 0 else h - 2

    def clamp_row(p: np.ndarray) -> np.ndarray:  # readYCAScanLine's clamp
        return np.where(p < 0, 0, np.where(p > h - 1, max(h - 2, 0), p))

    positions = np.arange(-1, h + 1)
    ylines = y[clamp_row(positions)]
    ry_lines = np.empty((h + 2, w), np.float16)
    by_lines = np.empty((h + 2, w), np.float16)
    even = positions % 2 == 0
    even_rows = clamp_row(positions[even])
    even_rows = np.where(even_rows % 2 == 1, last_even_row, even_rows)
    ry_lines[even] = ry_h[even_rows // 2]
    by_lines[even] = by_h[even_rows // 2]
    odd_pos = positions[~even]
    if odd_pos.size:
        def even_chroma(plane: np.ndarray, pos: np.ndarray) -> np.ndarray:
            rows = clamp_row(pos)
            rows = np.where(rows % 2 == 1, last_even_row, rows)
            return plane[rows // 2]

        ry_lines[~even] = _weighted_sum([even_chroma(ry_h, odd_pos + off) for off in _OFFSETS]).astype(np.float16)
        by_lines[~even] = _weighted_sum([even_chroma(by_h, odd_pos + off) for off in _OFFSETS]).astype(np.float16)

    # 3. YCAtoRGBA
    yf = ylines.astype(np.float32)
    r = (ry_lines.astype(np.float32) + np.float32(1)) * yf
    b = (by_lines.astype(np.float32) + np.float32(1)) * yf
    g = (yf - r * ywx - b * ywz) / ywy
    grey = (ry_lines == 0) & (by_lines == 0)
    rgb = np.stack([np.where(grey, yf, r), np.where(grey, yf, g), np.where(grey, yf, b)], axis=-1)
    rgb = rgb.astype(np.float16)

    # 4. fixSaturation of rows 0 .. H-1 (lines 1 .. H in the buffer)
    rgb32 = rgb.astype(np.float32)
    cmax = rgb32.max(axis=-1)
    cmin = rgb32.min(axis=-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        sat = np.where(cmax > 0, np.float32(1) - cmin / np.where(cmax > 0, cmax, 1), np.float32(0)).astype(np.float32)
    left = np.concatenate([sat[:, :1], sat[:, :-1]], axis=1)
    right = np.concatenate([sat[:, 1:], sat[:, -1:]], axis=1)
    a0, a2 = left[:-2], right[:-2]
    b0, b2 = left[2:], right[2:]
    s_mean = np.minimum(np.float32(1), np.float32(0.25) * (((a0 + a2) + b0) + b2))
    s = sat[1:-1]
    s_max = np.minimum(np.float32(1), np.float32(1) - (np.float32(1) - s_mean) * np.float32(0.25))
    fix = (s > s_mean) & (s > s_max)
    out = rgb[1:-1].copy()
    if np.any(fix):
        px = rgb32[1:-1][fix]
        f = (s_max[fix] / s[fix]).astype(np.float32)
        pmax = px.max(axis=-1, keepdims=True)
        des = np.maximum(pmax - (pmax - px) * f[:, None], np.float32(0)).astype(np.float16)
        des32 = des.astype(np.float32)
        y_in = (px[:, 0] * ywx + px[:, 1] * ywy) + px[:, 2] * ywz
        y_out = (des32[:, 0] * ywx + des32[:, 1] * ywy) + des32[:, 2] * ywz
        pos = y_out > 0
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = np.where(pos, y_in / np.where(pos, y_out, 1), np.float32(1)).astype(np.float32)
        scaled = (des32 * ratio[:, None]).astype(np.float16)
        out[fix] = np.where(pos[:, None], scaled, des)
    return out
