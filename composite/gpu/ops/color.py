"""Colour operations on torch tensors: colour-transfer application and fitting, Grade and ASC CDL.

Same maths, encodings and alpha handling as :mod:`composite.color.transfer`, :mod:`~composite.color.grade`
and :mod:`~composite.color.cdl`:

* a fitted :class:`~composite.color.transfer.ColorTransform` is applied in the encoding it was fitted in
  (``linear``, ``acescct``, ``lab``, ``lalphabeta``): encode, ``(x - center) @ matrix + offset`` (or the
  per-channel look-up tables of the histogram method), ``strength`` blend, decode;
* :func:`fit_color_transfer` gathers the same samples as the NumPy version (every k-th pixel of weight
  > 0) and takes their statistics on the device in float64; only the 3x3 solve (MKL) or the 2048-bin
  CDF inversion (histogram) runs on the host, on a few numbers;
* colour is processed unpremultiplied where alpha > 0 and premultiplied again; alpha-0 pixels are
  returned unchanged.

Pixels are ``(..., H, W, 3|4)`` float32 tensors; ``float32`` arithmetic stays ``float32`` as in NumPy
(values beyond 1e30 switch Grade and CDL to float64, as there).

Example
-------
>>> import torch
>>> from composite.gpu.ops.color import grade
>>> [round(v, 4) for v in grade(torch.tensor([[[0.1, 0.2, 0.5]]]), blackpoint=0.1, whitepoint=0.5)[0, 0].tolist()]
[0.0, 0.25, 1.0]
"""

from __future__ import annotations

import logging
import math

import numpy as np
import torch

from ...color import grade as gr
from ...color import transfer as tr
from ...color.cdl import CDL, ENCODINGS, STYLES
from ...color.delta_e import (
    _EPS,
    _KAPPA,
    AP1_LUMA,
    AP1_TO_XYZ_D65,
    D65_WHITE_XYZ,
    REC709_LUMA,
    XYZ_D65_TO_AP1,
)
from ...core.errors import InputError
from ._common import check_image

log = logging.getLogger("composite.color")

_F32_MAX = float(np.finfo(np.float32).max)


# -- checks ------------------------------------------------------------------------------------------

def check_pixels(pixels, what: str):
    return check_image(pixels, what, channels=(3, 4))


def check_finite(pixels, what: str) -> float:
    """Raise :class:`InputError` when ``pixels`` hold NaN/Inf; returns the largest magnitude (one device sync)."""
    amax = float(pixels.abs().amax()) if pixels.numel() else 0.0
    if not math.isfinite(amax):
        bad = int((~torch.isfinite(pixels)).sum())
        raise InputError(f"{what}: {bad} NaN/Inf values; repair them first (a Pipeline with nonfinite: repair)")
    return amax


def mat3(x, m: np.ndarray):
    """``x @ m.T`` for ``(..., 3)`` values, in x's dtype (elementwise, no TF32 matmul)."""
    m = np.asarray(m, np.float64)
    c = [x[..., i] for i in range(3)]
    rows = [c[0] * float(m[j, 0]) + c[1] * float(m[j, 1]) + c[2] * float(m[j, 2]) for j in range(3)]
    return torch.stack(rows, dim=-1)


def apply_unpremultiplied(pixels, fn):
    """Apply ``fn`` (straight ``(..., 3)`` → same) to ``(..., 3|4)`` pixels, respecting premultiplied alpha."""
    if pixels.shape[-1] == 3:
        return fn(pixels)
    alpha = pixels[..., 3:4]
    covered = alpha > 0
    rgb = torch.where(covered, pixels[..., :3] / torch.where(covered, alpha, torch.ones_like(alpha)),
                      pixels[..., :3])
    out = torch.cat([fn(rgb) * alpha, alpha], dim=-1)
    return torch.where(covered, out, pixels)


# -- encodings (composite.color.transfer) -----------------------------------------------------------

def acescct_encode(lin):
    logv = (torch.log2(torch.clamp_min(lin, tr._CCT_X_BRK)) + 9.72) / 17.52
    return torch.where(lin <= tr._CCT_X_BRK, lin * tr._CCT_A + tr._CCT_B, logv)


def acescct_decode(cct):
    expv = torch.exp2(torch.clamp_max(cct, tr._CCT_MAX) * 17.52 - 9.72)
    return torch.where(cct <= tr._CCT_Y_BRK, (cct - tr._CCT_B) / tr._CCT_A, expv)


def _lab_f(t):
    pos = t > _EPS
    return torch.where(pos, torch.where(pos, t, torch.ones_like(t)).pow(1.0 / 3.0), t / _KAPPA + 4.0 / 29.0)


def _lab_finv(f):
    f = torch.clamp(f, -1e12, 1e12)
    return torch.where(f > 6.0 / 29.0, f * f * f, _KAPPA * (f - 4.0 / 29.0))


def acescg_to_lab(rgb):
    xyz = mat3(rgb, AP1_TO_XYZ_D65)
    white = torch.as_tensor(np.asarray(D65_WHITE_XYZ), dtype=rgb.dtype, device=rgb.device)
    f = _lab_f(xyz / white)
    return torch.stack([116.0 * f[..., 1] - 16.0, 500.0 * (f[..., 0] - f[..., 1]), 200.0 * (f[..., 1] - f[..., 2])],
                       dim=-1)


def lab_to_acescg(lab):
    fy = (lab[..., 0] + 16.0) / 116.0
    f = torch.stack([fy + lab[..., 1] / 500.0, fy, fy - lab[..., 2] / 200.0], dim=-1)
    white = torch.as_tensor(np.asarray(D65_WHITE_XYZ), dtype=lab.dtype, device=lab.device)
    return mat3(_lab_finv(f) * white, XYZ_D65_TO_AP1)


def encode(rgb, space: str):
    """Scene-linear ACEScg ``(..., 3)`` → transfer space (see :func:`composite.color.transfer.encode`)."""
    if space == "linear":
        return rgb
    if space == "acescct":
        return acescct_encode(rgb)
    if space == "lab":
        return acescg_to_lab(rgb)
    if space == "lalphabeta":
        return mat3(acescct_encode(mat3(rgb, tr._AP1_TO_LMS)), tr._LAB_ROT)
    raise InputError(f"unknown colour-transfer space {space!r}; allowed: {', '.join(tr.SPACES)}")


def decode(values, space: str):
    """Transfer space → scene-linear ACEScg; the inverse of :func:`encode`."""
    if space == "linear":
        return values
    if space == "acescct":
        return acescct_decode(values)
    if space == "lab":
        return lab_to_acescg(values)
    if space == "lalphabeta":
        return mat3(acescct_decode(mat3(values, tr._LAB_ROT_INV)), tr._LMS_TO_AP1)
    raise InputError(f"unknown colour-transfer space {space!r}; allowed: {', '.join(tr.SPACES)}")


# -- colour transfer: application ----------------------------------------------------------------

def _lut_channel(xc, lx: np.ndarray, ly: np.ndarray):
    lo, hi = float(lx[0]), float(lx[-1])
    d = np.diff(lx)
    if np.allclose(d, d[0], rtol=1e-9, atol=0):
        t = (xc - float(np.float32(lo))) * float(np.float32(1.0 / d[0]))
        t = torch.clamp(t, 0, lx.size - 1)
        i = torch.clamp_max(t.to(torch.int64), lx.size - 2)
        t = t - i.to(t.dtype)
        lyc = torch.as_tensor(ly.astype(np.float32) if xc.dtype == torch.float32 else ly, device=xc.device)
        y0 = lyc[i]
        y = y0 + t * (lyc[i + 1] - y0)
    else:
        lxt = torch.as_tensor(lx, device=xc.device)
        lyt = torch.as_tensor(ly, device=xc.device)
        xd = xc.double()
        j = torch.clamp(torch.searchsorted(lxt, xd, right=True) - 1, 0, lx.size - 2)
        x0, x1 = lxt[j], lxt[j + 1]
        y = (lyt[j] + (xd - x0) / (x1 - x0) * (lyt[j + 1] - lyt[j])).to(xc.dtype)
        y = torch.where(xd <= lo, torch.full_like(y, float(ly[0])), y)
        y = torch.where(xd >= hi, torch.full_like(y, float(ly[-1])), y)
    xd = xc.double()
    y = torch.where(xc < lo, (float(ly[0]) + (xd - lo)).to(y.dtype), y)
    return torch.where(xc > hi, (float(ly[-1]) + (xd - hi)).to(y.dtype), y)


def apply_encoded(transform: tr.ColorTransform, x):
    """:meth:`ColorTransform.apply_encoded` on a tensor of encoded values ``(..., 3)``."""
    if transform.method == "histogram":
        y = torch.stack([_lut_channel(x[..., c], transform.lut_x[c], transform.lut_y[c]) for c in range(3)], dim=-1)
    else:
        center = torch.as_tensor(transform.center.astype(np.float32) if x.dtype == torch.float32 else transform.center,
                                 device=x.device)
        y = mat3(x - center, transform.matrix.T)
        offset = transform.offset.astype(np.float32) if x.dtype == torch.float32 else transform.offset
        y = y + torch.as_tensor(offset, device=x.device)
    if transform.strength != 1.0:
        y = (y - x) * float(np.float32(transform.strength)) + x
    return y


def apply_transfer_straight(transform: tr.ColorTransform, rgb):
    """:meth:`ColorTransform.apply_straight` on a ``(..., 3)`` tensor; float32 result."""
    x = torch.clamp(rgb, -tr.INPUT_LIMIT, tr.INPUT_LIMIT)
    y = decode(apply_encoded(transform, encode(x, transform.space)), transform.space)
    # The encodings are built not to produce NaN; as the NumPy path, any that appear become 0 (here without
    # counting them, which would stall the device).
    y = torch.nan_to_num(torch.clamp(y, -_F32_MAX, _F32_MAX), nan=0.0)
    return y.to(torch.float32)


def apply_transfer(pixels, transform: tr.ColorTransform):
    """:meth:`ColorTransform.apply` on ``(..., 3|4)`` float32 tensors (premultiplied RGBA respected)."""
    check_pixels(pixels, "color transfer input")
    check_finite(pixels, "color transfer input")
    if transform.is_identity:
        return pixels.clone()
    return apply_unpremultiplied(pixels, lambda rgb: apply_transfer_straight(transform, rgb))


# -- colour transfer: fitting ---------------------------------------------------------------------

def _weights(weights, shape, what: str):
    if weights is None:
        return None
    w = weights
    if w.dim() == 3 and w.shape[2] == 1:
        w = w[..., 0]
    if tuple(w.shape) != tuple(shape):
        raise InputError(f"{what}: matte is {w.shape[1] if w.dim() > 1 else '?'}x{w.shape[0]} "
                         f"(shape {tuple(w.shape)}) but the image is {shape[1]}x{shape[0]}; "
                         "reformat the matte to the image's size")
    w = w.double()
    if not bool(torch.isfinite(w).all()):
        raise InputError(f"{what}: matte has NaN/Inf values")
    return torch.clamp_min(w, 0.0)


def collect_samples(pixels, weights=None, *, what: str = "image", max_samples: int | None = 1 << 18):
    """:func:`composite.color.transfer.collect_samples` on the device: ``(N, 3)`` and ``(N,)`` float64."""
    check_pixels(pixels, what)
    w = _weights(weights, pixels.shape[:2], what)
    c = pixels.shape[2]
    flat_px = pixels.reshape(-1, c)
    if c == 4:
        a = torch.clamp_min(flat_px[:, 3].double(), 0.0)
        w = a if w is None else w.reshape(-1) * a
    if w is None:
        idx = None
        n = flat_px.shape[0]
    else:
        w = w.reshape(-1)
        idx = torch.nonzero(w > 0).reshape(-1)
        n = int(idx.numel())
    if n == 0:
        raise InputError(f"{what}: the region is empty (its matte/alpha is zero everywhere); "
                         "give a matte that covers part of the image")
    step = -(-n // max_samples) if max_samples and n > max_samples else 1
    if idx is None:
        sel = flat_px[::step]
        wflat = torch.ones(sel.shape[0], dtype=torch.float64, device=pixels.device)
    else:
        idx = idx[::step]
        sel = flat_px[idx]
        wflat = w[idx]
    flat = sel[:, :3].double()
    if c == 4:
        flat = flat / sel[:, 3:4].double()
    bad = int((~torch.isfinite(flat)).sum())
    if bad:
        raise InputError(f"{what}: {bad} NaN/Inf values; repair them first (a Pipeline with nonfinite: repair)")
    return flat, wflat


def weighted_stats(x, w):
    wsum = w.sum()
    mean = (x * w[:, None]).sum(dim=0) / wsum
    d = x - mean
    cov = (d * w[:, None]).T @ d / wsum
    return mean, cov


def _histogram_luts(xs, ws, xr, wr, bins: int):
    lut_x = np.empty((3, bins + 1))
    lut_y = np.empty((3, bins + 1))
    for c in range(3):
        both = torch.cat([xs[:, c], xr[:, c]])
        q = torch.quantile(both, torch.tensor([1e-4, 1.0 - 1e-4], dtype=both.dtype, device=both.device))
        lo, hi = (float(v) for v in q.cpu())
        if hi - lo < 1e-9:
            lo, hi = float(both.min()), float(both.max())
        if hi - lo < 1e-9:
            hi = lo + 1e-9
        edges = np.linspace(lo, hi, bins + 1)
        scale = bins / (hi - lo)
        idx_s = torch.clamp(((xs[:, c] - lo) * scale).to(torch.int64), 0, bins - 1)
        idx_r = torch.clamp(((xr[:, c] - lo) * scale).to(torch.int64), 0, bins - 1)
        hs = torch.bincount(idx_s, weights=ws, minlength=bins).cpu().numpy()
        hr = torch.bincount(idx_r, weights=wr, minlength=bins).cpu().numpy()
        cdf_s = np.concatenate([[0.0], np.cumsum(hs)]) / hs.sum()
        cdf_r = np.concatenate([[0.0], np.cumsum(hr)]) / hr.sum()
        lut_x[c] = edges
        lut_y[c] = tr._inverse_cdf(cdf_s, cdf_r, edges)
    return lut_x, lut_y


def fit_color_transfer(image, reference, *, method: str = "mkl", space: str | None = None, strength: float = 1.0,
                       image_weights=None, reference_weights=None, max_samples: int | None = 1 << 18,
                       bins: int = 2048, regularization: float = 1e-6) -> tr.ColorTransform:
    """:func:`composite.color.transfer.fit_color_transfer` with the statistics taken on the device.

    ``image``, ``reference``: ``(H, W, 3|4)`` float32 tensors; weights ``(H, W)`` tensors or None.
    Returns a host :class:`~composite.color.transfer.ColorTransform` (apply it with :func:`apply_transfer`).
    """
    if method not in tr.METHODS:
        raise InputError(f"unknown colour-transfer method {method!r}; allowed: {', '.join(tr.METHODS)}")
    space = space or tr.DEFAULT_SPACE[method]
    if space not in tr.SPACES:
        raise InputError(f"unknown colour-transfer space {space!r}; allowed: {', '.join(tr.SPACES)}")
    xs, ws = collect_samples(image, image_weights, what="element", max_samples=max_samples)
    xr, wr = collect_samples(reference, reference_weights, what="reference", max_samples=max_samples)
    xs, xr = encode(xs, space), encode(xr, space)
    mu_s_t, cov_s_t = weighted_stats(xs, ws)
    mu_r_t, cov_r_t = weighted_stats(xr, wr)
    mu_s, cov_s = mu_s_t.cpu().numpy(), cov_s_t.cpu().numpy()
    mu_r, cov_r = mu_r_t.cpu().numpy(), cov_r_t.cpu().numpy()
    sd_s = np.sqrt(np.maximum(np.diag(cov_s), 0.0))
    sd_r = np.sqrt(np.maximum(np.diag(cov_r), 0.0))
    stats = {"space": space, "element_mean": mu_s.tolist(), "element_std": sd_s.tolist(),
             "reference_mean": mu_r.tolist(), "reference_std": sd_r.tolist(),
             "element_samples": int(xs.shape[0]), "reference_samples": int(xr.shape[0])}
    notes: list[str] = []
    const_r = sd_r < tr.STD_FLOOR
    const_s = sd_s < tr.STD_FLOOR
    for c in range(3):
        if const_r[c]:
            notes.append(f"reference is constant in {space} channel {c}: mean-only transfer")
        elif const_s[c]:
            notes.append(f"element is constant in {space} channel {c}: mean-only transfer")
    if method == "reinhard":
        scale = np.where(const_r | const_s, 1.0, sd_r / np.where(const_s, 1.0, sd_s))
        out = tr.ColorTransform(method, space, strength, np.diag(scale), mu_r, mu_s, stats=stats, notes=notes)
    elif method == "mkl":
        if np.all(const_r):
            t = np.eye(3)
        else:
            t = tr.mkl_matrix(cov_s, cov_r, regularization=regularization)
            if np.any(const_r):
                t[const_r, :] = 0.0
                t[:, const_r] = 0.0
                t[const_r, const_r] = 1.0
        out = tr.ColorTransform(method, space, strength, t, mu_r, mu_s, stats=stats, notes=notes)
    else:
        lut_x, lut_y = _histogram_luts(xs, ws, xr, wr, int(bins))
        for c in range(3):
            if const_r[c] or const_s[c]:
                lut_y[c] = lut_x[c] + (mu_r[c] - mu_s[c])
        out = tr.ColorTransform(method, space, strength, lut_x=lut_x, lut_y=lut_y, stats=stats, notes=notes)
    for note in notes:
        log.info("colour transfer: %s", note)
    return out


def color_transfer(image, reference, *, method: str = "mkl", space: str | None = None, strength: float = 1.0,
                   image_weights=None, reference_weights=None, max_samples: int | None = 1 << 18, bins: int = 2048):
    """Fit and apply (see :func:`composite.color.transfer.color_transfer`)."""
    t = fit_color_transfer(image, reference, method=method, space=space, strength=strength,
                           image_weights=image_weights, reference_weights=reference_weights,
                           max_samples=max_samples, bins=bins)
    return apply_transfer(image, t)


# -- grade -------------------------------------------------------------------------------------------

def _big(x, amax: float | None = None) -> bool:
    if amax is not None:
        return amax > 1e30
    return x.numel() > 0 and float(torch.abs(x).max()) > 1e30


def grade_straight(rgb, *, blackpoint=0.0, whitepoint=1.0, lift=0.0, gain=1.0, multiply=1.0, offset=0.0, gamma=1.0,
                   saturation: float = 1.0, black_clamp: bool = False, white_clamp: bool = False,
                   reverse: bool = False, amax: float | None = None):
    """:func:`composite.color.grade.grade_straight` on a ``(..., 3)`` tensor (``amax``: the input's largest
    magnitude when known, which spares a device sync)."""
    a, b, g = gr.checked_grade_terms(blackpoint=blackpoint, whitepoint=whitepoint, lift=lift, gain=gain,
                                     multiply=multiply, offset=offset, gamma=gamma, saturation=saturation,
                                     reverse=reverse)
    wide = rgb.dtype != torch.float32 or _big(rgb, amax)
    npdt = np.float64 if wide else np.float32
    x = rgb.double() if wide else rgb
    dev = x.device
    at = torch.as_tensor(a.astype(npdt), device=dev)
    bt = torch.as_tensor(b.astype(npdt), device=dev)
    gt = torch.as_tensor(g.astype(npdt), device=dev)
    l0, l1, l2 = (float(v) for v in AP1_LUMA)

    def luma(v):
        return (v[..., 0] * l0 + v[..., 1] * l1 + v[..., 2] * l2)[..., None]

    gamma_on = bool(np.any(g != 1.0))
    if not reverse:
        y = x * at + bt
        if gamma_on:
            pos = y > 0
            y = torch.where(pos, torch.pow(torch.where(pos, y, torch.ones_like(y)), 1 / gt), y)
        if saturation != 1.0:
            lum = luma(y)
            y = lum + float(npdt(saturation)) * (y - lum)
    else:
        y = x
        if saturation != 1.0:
            if saturation <= 0:
                raise InputError("grade reverse: saturation 0 has no inverse")
            lum = luma(y)
            y = lum + (y - lum) / float(npdt(saturation))
        if gamma_on:
            pos = y > 0
            y = torch.where(pos, torch.pow(torch.where(pos, y, torch.ones_like(y)), gt), y)
        y = (y - bt) / at
    if black_clamp:
        y = torch.clamp_min(y, 0.0)
    if white_clamp:
        y = torch.clamp_max(y, 1.0)
    y = torch.clamp(y, -_F32_MAX, _F32_MAX)
    return y.to(torch.float32)


def grade(pixels, *, blackpoint=0.0, whitepoint=1.0, lift=0.0, gain=1.0, multiply=1.0, offset=0.0, gamma=1.0,
          saturation: float = 1.0, black_clamp: bool = False, white_clamp: bool = False, reverse: bool = False):
    """Nuke-style Grade of ``(..., 3|4)`` float32 tensors (see :func:`composite.color.grade.grade`)."""
    check_pixels(pixels, "grade input")
    amax = check_finite(pixels, "grade input")
    if pixels.shape[-1] == 4:       # unpremultiplied colour can exceed the premultiplied values
        amax = None
    kw = dict(blackpoint=blackpoint, whitepoint=whitepoint, lift=lift, gain=gain, multiply=multiply, offset=offset,
              gamma=gamma, saturation=saturation, black_clamp=black_clamp, white_clamp=white_clamp, reverse=reverse,
              amax=amax)
    return apply_unpremultiplied(pixels, lambda rgb: grade_straight(rgb, **kw))


# -- ASC CDL -----------------------------------------------------------------------------------------

def cdl_values(x, slope, offset, power, saturation, *, style: str = "no_clamp"):
    """SOP + saturation on ``(..., 3)`` values in x's dtype (see :func:`composite.color.cdl.cdl_values`)."""
    npdt = np.float32 if x.dtype == torch.float32 else np.float64
    dev = x.device
    y = x * torch.as_tensor(np.asarray(slope, npdt), device=dev) + torch.as_tensor(np.asarray(offset, npdt), device=dev)
    pw = torch.as_tensor(np.asarray(power, npdt), device=dev)
    if style == "asc":
        y = torch.pow(torch.clamp(y, 0.0, 1.0), pw)
    elif style == "no_clamp":
        pos = y > 0
        y = torch.where(pos, torch.pow(torch.where(pos, y, torch.ones_like(y)), pw), y)
    else:
        raise InputError(f"unknown CDL style {style!r}; allowed: {', '.join(STYLES)}")
    if saturation != 1.0:
        l0, l1, l2 = (float(v) for v in REC709_LUMA)
        luma = (y[..., 0] * l0 + y[..., 1] * l1 + y[..., 2] * l2)[..., None]
        y = luma + float(npdt(saturation)) * (y - luma)
    if style == "asc":
        y = torch.clamp(y, 0.0, 1.0)
    return y


def _cdl_straight(rgb, cdl: CDL, style: str, encoding: str, amax: float | None = None):
    x = rgb.double() if _big(rgb, amax) else rgb
    if encoding == "acescct":
        x = acescct_encode(x)
    y = cdl_values(x, cdl.slope, cdl.offset, cdl.power, cdl.saturation, style=style)
    if encoding == "acescct":
        y = acescct_decode(y)
    return torch.clamp(y, -_F32_MAX, _F32_MAX).to(torch.float32)


def apply_cdl(pixels, cdl: CDL, *, style: str = "no_clamp", encoding: str = "linear"):
    """ASC CDL of ``(..., 3|4)`` float32 tensors (see :func:`composite.color.cdl.apply_cdl`)."""
    if style not in STYLES:
        raise InputError(f"unknown CDL style {style!r}; allowed: {', '.join(STYLES)}")
    if encoding not in ENCODINGS:
        raise InputError(f"unknown CDL encoding {encoding!r}; allowed: {', '.join(ENCODINGS)}")
    check_pixels(pixels, "CDL input")
    amax = check_finite(pixels, "CDL input")
    if cdl.is_identity and style == "no_clamp":
        return pixels.clone()
    amax = amax if pixels.shape[-1] == 3 else None
    return apply_unpremultiplied(pixels, lambda rgb: _cdl_straight(rgb, cdl, style, encoding, amax))


__all__ = ["acescct_decode", "acescct_encode", "apply_cdl", "apply_transfer", "apply_unpremultiplied", "cdl_values",
           "collect_samples", "color_transfer", "decode", "encode", "fit_color_transfer", "grade", "grade_straight",
           "mat3"]
