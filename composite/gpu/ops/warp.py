"""Warps on torch tensors: by optical flow (``cv2.remap``) and by 2x3 / 3x3 matrices (``cv2.warpAffine`` /
``cv2.warpPerspective``), with OpenCV's conventions.

* pixel centres at integer coordinates;
* source coordinates quantised as OpenCV quantises them (1/32 pixel: ``INTER_BITS = 5``; for affine
  warps through its 1/1024 fixed-point row and column terms), so the bilinear weights are OpenCV's
  and only float32 rounding differs;
* ``nearest``: OpenCV's rounding (half to even for remap and perspective warps);
* ``cubic``: Keys' kernel with a = -0.75, as OpenCV;
* borders: ``constant`` (transparent black: taps outside the source read 0) or ``replicate``.

Sampling is :func:`torch.nn.functional.grid_sample` (``align_corners=False`` with coordinates mapped
from pixel centres). Lanczos has no torch counterpart here; stages that use it stay on the NumPy path.

Example
-------
>>> import torch
>>> from composite.gpu.ops.warp import warp
>>> b = torch.arange(20.0).reshape(4, 5, 1)
>>> flow = torch.zeros(4, 5, 2); flow[..., 0] = 1.0
>>> warp(b, flow)[0, :, 0].tolist()
[1.0, 2.0, 3.0, 4.0, 4.0]
"""

from __future__ import annotations

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from ...core.errors import InputError
from ._common import check_image

FILTERS = {"nearest": "nearest", "bilinear": "bilinear", "cubic": "bicubic"}
BORDERS = {"replicate": "border", "constant": "zeros"}
INTER_TAB = 32.0


def _grid_sample(x, gx, gy, filter: str, border: str):
    """Sample ``(H, W, C)`` (or ``(N, H, W, C)``) at pixel coordinates ``gx``, ``gy`` (``(Ho, Wo)`` or batched)."""
    if filter not in FILTERS or border not in BORDERS:
        raise InputError(f"warp: filter must be one of {', '.join(FILTERS)} and border one of "
                         f"{', '.join(BORDERS)}; got {filter!r}, {border!r}")
    batched = x.dim() == 4
    xb = x if batched else x[None]
    n, h, w, _ = xb.shape
    if gx.dim() == 2:
        gx, gy = gx.expand(n, *gx.shape), gy.expand(n, *gy.shape)
    grid = torch.stack([(2 * gx + 1) / w - 1, (2 * gy + 1) / h - 1], dim=-1).to(xb.dtype)
    out = F.grid_sample(xb.permute(0, 3, 1, 2), grid, mode=FILTERS[filter], padding_mode=BORDERS[border],
                        align_corners=False)
    out = out.permute(0, 2, 3, 1).contiguous()
    return out if batched else out[0]


def _opencv_quantises() -> bool:
    """Whether this OpenCV samples float images at 1/32-pixel positions (OpenCV 4) or exactly (OpenCV 5)."""
    img = np.array([[0.0, 1.0], [0.0, 1.0]], np.float32)
    x = np.full((1, 1), 0.3, np.float32)
    v = float(cv2.remap(img, x, np.zeros((1, 1), np.float32), cv2.INTER_LINEAR)[0, 0])
    return abs(v - 0.3125) < 1e-6


#: True when the installed OpenCV quantises sampling positions to 1/32 pixel (``INTER_BITS``), which the
#: torch warps then reproduce; False (OpenCV 5) when it samples at the exact float positions.
QUANTISED = _opencv_quantises()


def _quantise(v, filter: str):
    """OpenCV's sampling position of a float map value: rint(v * 32) / 32 (OpenCV 4) or v; rint(v) for nearest."""
    if filter == "nearest":
        return torch.round(v)
    return torch.round(v * INTER_TAB) / INTER_TAB if QUANTISED else v


def remap(x, map_x, map_y, *, filter: str = "bilinear", border: str = "replicate"):
    """``cv2.remap(x, map_x, map_y, ...)`` of an ``(H, W, C)`` tensor (absolute float maps)."""
    check_image(x, "remap input")
    mx = _quantise(map_x.double() if map_x.dtype != torch.float64 else map_x, filter)
    my = _quantise(map_y.double() if map_y.dtype != torch.float64 else map_y, filter)
    return _grid_sample(x, mx, my, filter, border)


def _pixel_grid(h: int, w: int, device):
    ys = torch.arange(h, dtype=torch.float32, device=device)
    xs = torch.arange(w, dtype=torch.float32, device=device)
    return xs[None, :].expand(h, w), ys[:, None].expand(h, w)


def warp(pixels, flow, *, filter: str = "bilinear", border: str = "replicate"):
    """Backward warp ``out[p] = pixels[p + flow[p]]`` (see :func:`composite.temporal.warp.warp`).

    ``pixels``: ``(H, W)`` or ``(H, W, C)`` float32 tensor; ``flow``: ``(H, W, 2)`` pixels.
    """
    two_d = pixels.dim() == 2
    px = pixels[..., None] if two_d else pixels
    check_image(px, "warp input")
    if tuple(px.shape[:2]) != tuple(flow.shape[:2]):
        raise InputError(f"warp: image is {px.shape[1]}x{px.shape[0]} but flow is {flow.shape[1]}x{flow.shape[0]}")
    if flow.dim() != 3 or flow.shape[2] != 2:
        raise InputError(f"expected an (H, W, 2) flow, got shape {tuple(flow.shape)}")
    h, w = flow.shape[:2]
    gx, gy = _pixel_grid(h, w, flow.device)
    fl = flow.float()
    # The map is built in float32, as flow_to_maps builds it for cv2.remap.
    out = remap(px, gx + fl[..., 0], gy + fl[..., 1], filter=filter, border=border)
    return out[..., 0] if two_d else out


def warp_matte(matte, flow, *, border: str = "replicate"):
    """Bilinear warp of an ``(H, W)`` matte along a flow."""
    return warp(matte, flow, filter="bilinear", border=border)


def _affine_coords(minv: np.ndarray, w: int, h: int, filter: str, device):
    """cv2.warpAffine's source coordinates: exact (OpenCV 5), or 1/1024 fixed-point row and column terms
    then 1/32 (OpenCV 4); nearest rounds."""
    ab = 1024.0
    xs = torch.arange(w, dtype=torch.float64, device=device)
    ys = torch.arange(h, dtype=torch.float64, device=device)
    if not QUANTISED:
        gx = (ys[:, None] * minv[0, 1] + minv[0, 2]) + xs[None, :] * minv[0, 0]
        gy = (ys[:, None] * minv[1, 1] + minv[1, 2]) + xs[None, :] * minv[1, 0]
        return (torch.round(gx), torch.round(gy)) if filter == "nearest" else (gx, gy)
    adelta = torch.round(xs * minv[0, 0] * ab)
    bdelta = torch.round(xs * minv[1, 0] * ab)
    x0 = torch.round((ys * minv[0, 1] + minv[0, 2]) * ab)
    y0 = torch.round((ys * minv[1, 1] + minv[1, 2]) * ab)
    if filter == "nearest":
        rd, shift = ab / 2, ab
        gx = torch.floor((x0[:, None] + adelta[None, :] + rd) / shift)
        gy = torch.floor((y0[:, None] + bdelta[None, :] + rd) / shift)
        return gx, gy
    rd, shift = ab / INTER_TAB / 2, ab / INTER_TAB
    gx = torch.floor((x0[:, None] + adelta[None, :] + rd) / shift) / INTER_TAB
    gy = torch.floor((y0[:, None] + bdelta[None, :] + rd) / shift) / INTER_TAB
    return gx, gy


def _perspective_coords(minv: np.ndarray, w: int, h: int, filter: str, device):
    xs = torch.arange(w, dtype=torch.float64, device=device)[None, :]
    ys = torch.arange(h, dtype=torch.float64, device=device)[:, None]
    # Row terms first, then the column term (OpenCV's order of additions).
    ww = (ys * minv[2, 1] + minv[2, 2]) + xs * minv[2, 0]
    scale = 1.0 if (filter == "nearest" or not QUANTISED) else INTER_TAB
    ww = torch.where(ww != 0, scale / torch.where(ww != 0, ww, torch.ones_like(ww)), torch.zeros_like(ww))
    lim = float(2 ** 31 - 1)
    fx = torch.clamp(((ys * minv[0, 1] + minv[0, 2]) + xs * minv[0, 0]) * ww, -lim - 1, lim)
    fy = torch.clamp(((ys * minv[1, 1] + minv[1, 2]) + xs * minv[1, 0]) * ww, -lim - 1, lim)
    if filter != "nearest" and not QUANTISED:
        return fx, fy
    return torch.round(fx) / scale, torch.round(fy) / scale


def _invert_affine(m: np.ndarray) -> np.ndarray:
    """OpenCV's ``invertAffineTransform`` (as warpAffine does it), as a 3x3 matrix."""
    d = m[0, 0] * m[1, 1] - m[0, 1] * m[1, 0]
    d = 1.0 / d if d != 0 else 0.0
    a11, a22 = m[1, 1] * d, m[0, 0] * d
    a12, a21 = -m[0, 1] * d, -m[1, 0] * d
    b1 = -a11 * m[0, 2] - a12 * m[1, 2]
    b2 = -a21 * m[0, 2] - a22 * m[1, 2]
    return np.array([[a11, a12, b1], [a21, a22, b2], [0.0, 0.0, 1.0]])


def transform(pixels, matrix, *, size: tuple[int, int] | None = None, filter: str = "bilinear",
              border: str = "constant"):
    """Warp ``(H, W, C)`` by a 2x3 affine or 3x3 projective matrix mapping source to destination pixels
    (see :func:`composite.core.geometry.transform`); ``size`` is the output ``(width, height)``."""
    check_image(pixels, "transform input")
    m = np.asarray(matrix, np.float64)
    if m.shape not in ((2, 3), (3, 3)):
        raise InputError(f"transform: matrix must be 2x3 or 3x3, got {m.shape}")
    if filter == "area":
        filter = "bilinear"
    if filter not in FILTERS:
        raise InputError(f"transform: filter {filter!r} has no torch implementation; use one of {', '.join(FILTERS)}")
    w, h = size or (pixels.shape[1], pixels.shape[0])
    if m.shape == (2, 3):
        minv = _invert_affine(m)
    else:
        try:
            minv = np.linalg.inv(m)
        except np.linalg.LinAlgError:
            minv = np.zeros((3, 3))
    if m.shape == (2, 3):
        gx, gy = _affine_coords(minv, w, h, filter, pixels.device)
    else:
        gx, gy = _perspective_coords(minv, w, h, filter, pixels.device)
    return _grid_sample(pixels, gx, gy, filter, border)


def warp_to(reference_shape: tuple[int, int], pixels, matrix, *, filter: str = "bilinear", border: str = "constant"):
    """Warp by a 3x3 matrix into ``(H, W)`` of the reference (see :func:`composite.temporal.warp.warp_to`)."""
    px = pixels[..., None] if pixels.dim() == 2 else pixels
    m = np.asarray(matrix, np.float64)
    if m.shape != (3, 3):
        raise InputError(f"warp_to: expects a 3x3 matrix, got {m.shape}")
    h, w = reference_shape
    return transform(px, m, size=(w, h), filter=filter, border=border)
