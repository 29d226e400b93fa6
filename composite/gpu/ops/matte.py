"""Matte operations on torch tensors: :mod:`composite.matte.ops` with the same signatures and results.

Erode/dilate are grey-scale morphology over the same disc, built from separable max-pools (the disc is
cut into centred rectangles), with the same sub-pixel blend of the two neighbouring radii; blurs use
OpenCV's Gaussian kernel with replicated edges; :func:`fill_from_weights` reproduces OpenCV's
``pyrDown``/``pyrUp`` pyramid (including ``pyrUp``'s borders: mirrored at the top/left, repeated at the
bottom/right).

Mattes are ``(..., H, W)`` float32 tensors (leading dimensions: a batch).

Example
-------
>>> import torch
>>> from composite.gpu.ops.matte import erode
>>> m = torch.zeros(9, 9); m[2:7, 2:7] = 1
>>> float(erode(m, amount=1.0).sum()), float(erode(m, amount=-1.0).sum())
(9.0, 49.0)
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from ...core.errors import InputError
from ...matte.ops import COMBINE_OPS
from ._common import (
    check_image,
    check_matte,
    disc,
    gaussian_blur,
    gaussian_blur_plane,
    ieee_fp32,
    morph,
    pad_nchw,
    resize,
)


def _same(a, b, what: str) -> None:
    if tuple(a.shape[-2:]) != tuple(b.shape[-2:]):
        raise InputError(f"{what}: sizes differ, {a.shape[-1]}x{a.shape[-2]} vs {b.shape[-1]}x{b.shape[-2]}; "
                         "reformat one of them first")


def _morph(m, radius: int, grow: bool):
    if radius <= 0:
        return m.clone()
    return morph(m, disc(radius), grow=grow, border="replicate")


def erode(matte, *, amount: float):
    """Shrink (``amount > 0``) or grow (``amount < 0``) by ``|amount|`` pixels, fractional amounts blending
    the neighbouring integer radii (see :func:`composite.matte.ops.erode`)."""
    m = check_matte(matte)
    r = abs(float(amount))
    lo = int(math.floor(r))
    frac = r - lo
    grow = amount < 0
    a = _morph(m, lo, grow)
    if frac == 0:
        return a
    b = _morph(m, lo + 1, grow)
    return a + torch.tensor(frac, dtype=torch.float32, device=m.device) * (b - a)


def dilate(matte, *, amount: float):
    """Grow by ``amount`` pixels."""
    return erode(matte, amount=-float(amount))


def blur(matte, *, size: float):
    """Gaussian blur, standard deviation ``size`` pixels, edges replicated."""
    m = check_matte(matte)
    return gaussian_blur_plane(m, float(size), border="replicate")


def edge_band(matte, *, width: float, low: float = 0.02, high: float = 0.98):
    """Soft weight, 1 within ``width`` pixels of the matte's transitions (see :func:`composite.matte.ops.edge_band`)."""
    m = check_matte(matte)
    r = max(1, int(math.ceil(width)))
    grown = _morph(m, r, True)
    shrunk = _morph(m, r, False)
    band = ((grown - shrunk) > (high - low) * 0.5) | ((m > low) & (m < high))
    return gaussian_blur_plane(band.float(), max(0.5, width / 3.0), border="replicate")


def edge_blur(matte, *, size: float, width: float | None = None):
    """Blur only around the matte's edges (see :func:`composite.matte.ops.edge_blur`)."""
    m = check_matte(matte)
    if size <= 0:
        return m.clone()
    w = edge_band(m, width=float(width) if width is not None else 2.0 * size)
    return (blur(m, size=size) - m) * w + m


def clamp(matte, *, low: float = 0.0, high: float = 1.0):
    m = check_matte(matte)
    if low > high:
        raise InputError(f"clamp: low {low} is above high {high}")
    return torch.clamp(m, float(low), float(high))


def combine(a, b, *, op: str = "max"):
    """``max``, ``min``, ``multiply``, ``subtract`` (floored at 0), ``add`` (capped at 1) or ``screen``."""
    a = check_matte(a, "matte a")
    b = check_matte(b, "matte b")
    _same(a, b, f"combine {op}")
    if op == "max":
        return torch.maximum(a, b)
    if op == "min":
        return torch.minimum(a, b)
    if op == "multiply":
        return a * b
    if op == "subtract":
        return torch.clamp_min(a - b, 0.0)
    if op == "add":
        return torch.clamp_max(a + b, 1.0)
    if op == "screen":
        return a + b - a * b
    raise InputError(f"combine: unknown operation {op!r}; allowed: {', '.join(COMBINE_OPS)}")


def invert(matte):
    return 1 - check_matte(matte)


# -- pyramids (OpenCV's pyrDown / pyrUp) ----------------------------------------------------------

_PYR = None


def _pyr_kernel(device):
    global _PYR
    if _PYR is None or _PYR.device != device:
        _PYR = torch.tensor([1.0, 4.0, 6.0, 4.0, 1.0], dtype=torch.float32, device=device) / 16.0
    return _PYR


def pyr_down(x):
    """``cv2.pyrDown(x, borderType=cv2.BORDER_REPLICATE)`` of ``(N, C, H, W)``: 5-tap binomial, even samples."""
    h, w = x.shape[-2:]
    k = _pyr_kernel(x.device)
    c = x.shape[1]
    xp = pad_nchw(x, 2, 2, 2, 2, "replicate")
    with ieee_fp32(x.device):
        y = F.conv2d(xp, k.view(1, 1, 1, 5).expand(c, 1, 1, 5), groups=c)
        y = F.conv2d(y, k.view(1, 1, 5, 1).expand(c, 1, 5, 1), groups=c)
    return y[..., ::2, ::2][..., :(h + 1) // 2, :(w + 1) // 2]


def _pyr_up_axis(x, dim: int, out_len: int):
    """One axis of ``cv2.pyrUp``: even outputs ``(s[i-1] + 6 s[i] + s[i+1]) / 8``, odd ``(s[i] + s[i+1]) / 2``,
    mirrored before the start and repeated after the end."""
    n = x.shape[dim]
    if out_len not in (2 * n, 2 * n - 1):
        raise InputError(f"pyr_up: output size {out_len} must be {2 * n} or {2 * n - 1} for input size {n}")
    if n == 1:
        rep = x.repeat_interleave(2, dim=dim)
        return rep.narrow(dim, 0, out_len)
    prev = torch.cat([x.narrow(dim, 1, 1), x.narrow(dim, 0, n - 1)], dim=dim)
    nxt = torch.cat([x.narrow(dim, 1, n - 1), x.narrow(dim, n - 1, 1)], dim=dim)
    even = (prev + 6 * x + nxt) / 8
    odd = (x + nxt) / 2
    out = torch.stack([even, odd], dim=dim + 1).flatten(dim, dim + 1)
    return out.narrow(dim, 0, out_len)


def pyr_up(x, size: tuple[int, int]):
    """``cv2.pyrUp(x, dstsize=(w, h))`` of ``(N, C, h0, w0)`` with ``w`` = ``2 w0`` or ``2 w0 - 1`` (idem h)."""
    w, h = size
    y = _pyr_up_axis(x, x.dim() - 1, w)
    return _pyr_up_axis(y, x.dim() - 2, h)


def fill_from_weights(values, weights, *, levels: int | None = None):
    """Push–pull fill (see :func:`composite.matte.ops.fill_from_weights`): ``values`` ``(H, W, C)`` or
    ``(H, W)``, ``weights`` ``(H, W)`` in [0, 1]; returns the same shape as ``values``."""
    squeeze = values.dim() == 2
    v = values[..., None] if squeeze else values
    check_image(v, "values")
    w = check_matte(weights, "weights")
    if tuple(v.shape[:2]) != tuple(w.shape):
        raise InputError(f"fill_from_weights: sizes differ, {v.shape[1]}x{v.shape[0]} vs {w.shape[1]}x{w.shape[0]}; "
                         "reformat one of them first")
    w = torch.clamp(w, 0, 1)
    cur_v = (v * w[..., None]).permute(2, 0, 1)[None]
    cur_w = w[None, None]
    pyr_v, pyr_w = [cur_v], [cur_w]
    max_levels = levels if levels is not None else 64
    while min(pyr_w[-1].shape[-2:]) > 2 and len(pyr_w) <= max_levels:
        pyr_v.append(pyr_down(pyr_v[-1]))
        pyr_w.append(pyr_down(pyr_w[-1]))
    top_w, top_v = pyr_w[-1], pyr_v[-1]
    total = float(top_w.sum())
    if total <= 0:
        out = torch.zeros_like(v)
        return out[..., 0] if squeeze else out
    cur = (top_v.sum(dim=(0, 2, 3)) / torch.tensor(total, dtype=torch.float32, device=v.device))
    cur = cur.view(1, -1, 1, 1).expand_as(top_v)
    eps = 1e-6
    for lv in range(len(pyr_w) - 1, -1, -1):
        pv, pw = pyr_v[lv], pyr_w[lv]
        if tuple(cur.shape[-2:]) != tuple(pw.shape[-2:]):
            if lv == len(pyr_w) - 1:
                cur = resize(cur[0].permute(1, 2, 0), pw.shape[-1], pw.shape[-2], interp="linear").permute(2, 0, 1)[None]
            else:
                cur = pyr_up(cur, (pw.shape[-1], pw.shape[-2]))
        own = pv / torch.clamp_min(pw, eps)
        k = torch.clamp(pw * 2.0, 0, 1)
        cur = own * k + cur * (1 - k)
    out = cur[0].permute(1, 2, 0).contiguous()
    return out[..., 0] if squeeze else out


def edge_extend(rgba, *, threshold: float = 0.95):
    """Straight RGBA with colour bled outward from the solid foreground (see
    :func:`composite.matte.ops.edge_extend`). ``rgba``: ``(H, W, 4)`` premultiplied."""
    check_image(rgba, "edge_extend", channels=(4,))
    a = rgba[..., 3]
    safe = torch.clamp_min(a, 1e-6)
    straight = rgba[..., :3] / safe[..., None]
    trust = torch.clamp(a / max(threshold, 1e-3), 0, 1)
    trust = trust * trust
    filled = fill_from_weights(torch.where(a[..., None] > 0, straight, torch.zeros_like(straight)), trust)
    k = trust[..., None]
    return torch.cat([straight * k + filled * (1 - k), a[..., None]], dim=-1)


__all__ = ["blur", "clamp", "combine", "dilate", "edge_band", "edge_blur", "edge_extend", "erode",
           "fill_from_weights", "gaussian_blur", "invert", "pyr_down", "pyr_up"]
