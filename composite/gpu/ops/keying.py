"""Green- and blue-screen keyers on torch tensors.

:func:`key_color_difference` and :func:`key_screen_subtract` follow :mod:`composite.matte.keyers` step
for step (the same screen-colour estimate, clean plate, alpha levels, screen subtraction and despill), on
``(H, W, 3)`` float32 tensors. The clean plate (``clean_plate="auto"``) is built as
:func:`composite.matte.screen.estimate_clean_plate` builds it: the screen mask and its area-average
down to the fitting grid are computed on the device, the small push–pull fill (a few thousand pixels)
runs on the host with the NumPy code, and its colour difference is brought back up on the device.

Example
-------
>>> import torch
>>> from composite.gpu.ops.keying import key_color_difference
>>> S = torch.tensor([0.05, 0.5, 0.08]); F = torch.tensor([0.3, 0.3, 0.3])
>>> plate = S.expand(4, 4, 3).clone(); plate[1:3, 1:3] = 0.5 * F + 0.5 * S
>>> res = key_color_difference(plate, screen_color=S.tolist(), despill=None)
>>> round(float(res.alpha[1, 1]), 3), round(float(res.alpha[0, 0]), 3)
(0.5, 0.0)
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import torch

from ...core.errors import InputError
from ...matte.keyers import MIN_SCREEN_SHARE, levels_plan
from ...matte.ops import fill_from_weights
from ...matte.screen import MIN_SCREEN_FRACTION, check_screen, screen_channels, screen_difference
from ..tensor import to_device, to_host
from ._common import check_image, check_matte, f32, gaussian_blur_plane, morph, resize, resize_plane
from .despill import despill as _despill
from .guided import guided_filter


@dataclass(frozen=True)
class KeyResult:
    """A keyer's outputs on the device: ``fg`` ``(H, W, 3)`` premultiplied, ``alpha`` ``(H, W)``,
    ``screen_color`` ``(3,)`` NumPy float32, ``clean_plate`` ``(H, W, 3)`` tensor or None."""

    fg: torch.Tensor
    alpha: torch.Tensor
    screen_color: np.ndarray
    clean_plate: torch.Tensor | None = None

    def __iter__(self):
        return iter((self.fg, self.alpha))

    def rgba(self):
        return torch.cat([self.fg, self.alpha[..., None]], dim=-1)


def median_np(x, dim: int = 0):
    """``np.median`` along ``dim`` (the mean of the two middle values for even counts), in x's dtype."""
    n = x.shape[dim]
    s = torch.sort(x, dim=dim).values
    k = (n - 1) // 2
    lo = s.narrow(dim, k, 1)
    if n % 2:
        return lo.squeeze(dim)
    hi = s.narrow(dim, k + 1, 1)
    return ((lo + hi) / 2).squeeze(dim)


def _subsample(rgb, target: int = 25_000):
    h, w = rgb.shape[:2]
    step = max(1, int(np.sqrt(h * w / target)))
    return rgb[::step, ::step].reshape(-1, 3)


def estimate_screen_color(rgb, *, screen: str = "green", min_fraction: float = MIN_SCREEN_FRACTION) -> np.ndarray:
    """:func:`composite.matte.screen.estimate_screen_color` on the device; returns ``(3,)`` NumPy float32."""
    check_image(rgb, "plate")
    rgb = rgb[..., :3]
    px = _subsample(rgb)
    px = px[torch.isfinite(px).all(dim=1)]
    p, o1, o2 = screen_channels(screen)
    excess = px[:, p] - torch.maximum(px[:, o1], px[:, o2])
    cand = (excess > 0.35 * torch.abs(px[:, p])) & (excess > 1e-4)
    frac = float(cand.float().mean()) if px.numel() else 0.0
    if frac < min_fraction:
        raise InputError(
            f"no visible {screen} screen: only {frac:.2%} of the plate looks like {screen} screen "
            f"(need {min_fraction:.2%}); check the screen setting ('green' or 'blue'), give screen_color "
            "explicitly, or key a frame where the screen is visible")
    ex = excess[cand]
    sel = px[cand][ex >= median_np(ex)]
    return median_np(sel, 0).cpu().numpy().astype(np.float32)


def estimate_screen_mask(rgb, screen_color, *, screen: str = "green", tolerance: float = 0.75, shrink: int = 3):
    """:func:`composite.matte.screen.estimate_screen_mask` on the device: ``(H, W)`` bool tensor."""
    s = np.asarray(screen_color, np.float32).reshape(3)
    p, o1, o2 = screen_channels(screen)
    ex = rgb[..., p] - torch.maximum(rgb[..., o1], rgb[..., o2])
    s_ex = float(s[p] - max(s[o1], s[o2]))
    if s_ex <= 0:
        raise InputError(f"screen colour {s.tolist()} is not a {screen} screen colour "
                         f"(its {screen} does not exceed the other channels)")
    s_ratio = s_ex / max(float(s[p]), 1e-6)
    ratio = ex / torch.clamp_min(rgb[..., p], 1e-6)
    mask = (ratio >= tolerance * s_ratio) & (ex >= 0.15 * s_ex)
    if shrink > 0:
        k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * shrink + 1, 2 * shrink + 1))
        mask = morph(mask.float(), k, grow=False, border="replicate") > 0.5
    return mask


def estimate_clean_plate_small(rgb, *, screen: str = "green", screen_color=None, resolution: int = 160,
                               tolerance: float = 0.75, shrink: int = 3) -> np.ndarray:
    """The clean screen plate on its fitting grid (``full_size=False`` of
    :func:`composite.matte.screen.estimate_clean_plate`): ``(lh, lw, 3)`` NumPy float32."""
    check_image(rgb, "plate")
    rgb = rgb[..., :3]
    h, w = rgb.shape[:2]
    s = estimate_screen_color(rgb, screen=screen) if screen_color is None else \
        np.asarray(screen_color, np.float32).reshape(3)
    scale = min(1.0, float(resolution) / max(h, w))
    lw, lh = max(1, round(w * scale)), max(1, round(h * scale))
    work = 4.0 * max(lw, lh) / max(h, w)
    if work < 0.67:
        rgb = resize(rgb.contiguous(), max(1, round(w * work)), max(1, round(h * work)), interp="area")
        shrink = max(1, round(shrink * work)) if shrink > 0 else 0
    m = estimate_screen_mask(rgb, s, screen=screen, tolerance=tolerance, shrink=shrink).float()
    if float(m.sum()) < 1:
        out = np.empty((lh, lw, 3), np.float32)
        out[...] = s
        return out
    small_v = resize(rgb * m[..., None], lw, lh, interp="area")
    small_m = resize_plane(m, lw, lh, interp="area")
    own = small_v / torch.clamp_min(small_m, 1e-6)[..., None]
    weight = torch.clamp((small_m - 0.25) / 0.5, 0, 1)
    own_h = to_host(own, what="clean plate grid").astype(np.float32)
    weight_h = to_host(weight, what="clean plate weights").astype(np.float32)
    filled = fill_from_weights(own_h, weight_h)
    filled = cv2.GaussianBlur(filled, (0, 0), 1.0, borderType=cv2.BORDER_REPLICATE)
    return filled.astype(np.float32)


class _LowResPlate:
    """A clean plate on its coarse grid, uploaded once; differences are taken there and scaled up."""

    def __init__(self, small: np.ndarray, shape: tuple[int, int], device):
        self.small = to_device(small, device, what="clean plate grid")
        self.shape = shape
        self._full = None

    def up(self, t):
        h, w = self.shape
        if tuple(t.shape[:2]) == (h, w):
            return t
        if t.dim() == 2:
            return resize_plane(t, w, h, interp="linear")
        return resize(t, w, h, interp="linear")

    def full(self):
        if self._full is None:
            self._full = self.up(self.small)
        return self._full


def _resolve_screen(rgb, screen, screen_color, clean_plate):
    check_screen(screen)
    if isinstance(clean_plate, str):
        if clean_plate != "auto":
            raise InputError(f"clean_plate must be an array, 'auto' or None, got {clean_plate!r}")
        s = estimate_screen_color(rgb, screen=screen) if screen_color is None else \
            np.asarray(screen_color, np.float32).reshape(3)
        small = estimate_clean_plate_small(rgb, screen=screen, screen_color=s)
        return s, _LowResPlate(small, tuple(rgb.shape[:2]), rgb.device)
    if clean_plate is not None:
        plate = check_image(clean_plate, "clean plate")[..., :3]
        if tuple(plate.shape[:2]) != tuple(rgb.shape[:2]):
            raise InputError(f"clean plate is {plate.shape[1]}x{plate.shape[0]} but the plate is "
                             f"{rgb.shape[1]}x{rgb.shape[0]}; reformat it to the plate's size")
        if screen_color is not None:
            s = np.asarray(screen_color, np.float32).reshape(3)
        else:
            s = median_np(plate[::4, ::4].reshape(-1, 3), 0).cpu().numpy().astype(np.float32)
        return s, plate
    if screen_color is None:
        return estimate_screen_color(rgb, screen=screen), None
    return np.asarray(screen_color, np.float32).reshape(3), None


def _alpha_from_difference(d_plate, d_screen, *, gain, clip_black, clip_white, guide=None,
                           denoise_radius: float = 0, denoise_eps: float = 1e-4):
    plan = levels_plan(gain, clip_black, clip_white, denoise_radius, denoise_eps, guided=guide is not None)
    if not isinstance(d_screen, torch.Tensor):
        a = d_plate * f32(plan.scale / float(d_screen), d_plate) + f32(plan.offset, d_plate)
    else:
        a = d_plate / d_screen * f32(plan.scale, d_plate) + f32(plan.offset, d_plate)
    if plan.radius:
        a = guided_filter(list(guide), a, radius=plan.radius, eps=float(denoise_eps), subsample=plan.subsample)
        a = a * f32(1.0 / plan.span, a) + f32(-float(clip_black) / plan.span, a)
    a = torch.where(a > 1e-6, a, torch.zeros_like(a))
    return torch.clamp_max(a, 1.0)


def _planar_secondary(rgb, screen, weights, balance):
    p, o1, o2 = screen_channels(screen)
    a, b = rgb[..., o1], rgb[..., o2]
    keep = 1.0 - float(balance)
    sec = a * f32(float(weights[0]) * keep, rgb) + b * f32(float(weights[1]) * keep, rgb)
    if balance:
        sec = torch.maximum(a, b) * f32(float(balance), rgb) + sec
    return rgb[..., p], sec


def _planar_difference(rgb, screen, weights, balance):
    primary, sec = _planar_secondary(rgb, screen, weights, balance)
    return primary - sec


def _screen_diff(s, plate, screen, weights, balance):
    d_const = float(screen_difference(s[None, :], screen=screen, weights=weights, balance=balance)[0])
    if d_const <= 1e-6:
        raise InputError(f"screen colour {np.round(s, 4).tolist()} is not a {screen} screen: its colour "
                         f"difference is {d_const:.4g}; check `screen` or give the screen colour")
    if plate is None:
        return np.float32(d_const)
    if isinstance(plate, _LowResPlate):
        d = plate.up(_planar_difference(plate.small, screen, weights, balance))
    else:
        d = _planar_difference(plate, screen, weights, balance)
    return torch.clamp_min(d, float(np.float32(MIN_SCREEN_SHARE * d_const)))


def _finish(rgb, alpha, s, plate, *, garbage, core, despill, despill_kw, screen):
    h, w = alpha.shape
    mats = {}
    for name, m in (("garbage", garbage), ("core", core)):
        if m is not None:
            m = check_matte(m, f"{name} matte")
            if tuple(m.shape) != (h, w):
                raise InputError(f"{name} matte is {m.shape[1]}x{m.shape[0]} but the plate is {w}x{h}")
            mats[name] = m
    if "core" in mats:
        alpha = torch.maximum(alpha, torch.clamp(mats["core"], 0, 1))
    if "garbage" in mats:
        alpha = alpha * torch.clamp(mats["garbage"], 0, 1)
    inv = 1 - alpha
    if plate is None:
        fg = rgb - inv[..., None] * torch.as_tensor(s, device=rgb.device)
    else:
        full = plate.full() if isinstance(plate, _LowResPlate) else plate
        fg = rgb - full * inv[..., None]
    fg = torch.clamp_min(fg, 0.0) * (alpha > 0)[..., None]
    if despill:
        fg = torch.clamp_min(_despill(fg, method=despill, screen=screen, screen_color=s, **despill_kw), 0.0)
    return fg, alpha


def key_color_difference(rgb, *, screen: str = "green", screen_color=None, clean_plate=None,
                         red_weight: float = 0.5, blue_green_weight: float = 0.5, balance: float = 0.5,
                         clip_black: float = 0.0, clip_white: float = 1.0, garbage=None, core=None,
                         despill: str | None = "average", spill_strength: float = 1.0,
                         replace_color=None, denoise_radius: float = 0, denoise_eps: float = 1e-4) -> KeyResult:
    """IBK-like colour-difference keyer (see :func:`composite.matte.keyers.key_color_difference`).

    ``rgb``: ``(H, W, 3)`` float32 tensor, scene-linear, opaque; ``clean_plate`` a tensor, ``"auto"`` or
    None; ``garbage``/``core`` ``(H, W)`` tensors. Returns a :class:`KeyResult` of tensors.
    """
    check_image(rgb, "plate")
    if rgb.shape[0] == 0 or rgb.shape[1] == 0:
        raise InputError(f"plate: the image is empty ({rgb.shape[1]}x{rgb.shape[0]})")
    rgb = rgb[..., :3]
    s, plate = _resolve_screen(rgb, screen, screen_color, clean_plate)
    weights = (red_weight, blue_green_weight)
    if not 0.0 <= balance <= 1.0:
        raise InputError(f"balance must be within [0, 1], got {balance}")
    d_s = _screen_diff(s, plate, screen, weights, balance)
    primary, sec = _planar_secondary(rgb, screen, weights, balance)
    d_p = primary - sec
    alpha = _alpha_from_difference(d_p, d_s, gain=1.0, clip_black=clip_black, clip_white=clip_white,
                                   guide=(primary, sec), denoise_radius=denoise_radius, denoise_eps=denoise_eps)
    sw = red_weight + blue_green_weight
    dkw = {"strength": spill_strength, "replace_color": replace_color,
           "weights": (red_weight / sw, blue_green_weight / sw) if sw > 0 else (0.5, 0.5)}
    fg, alpha = _finish(rgb, alpha, s, plate, garbage=garbage, core=core, despill=despill, despill_kw=dkw,
                        screen=screen)
    return KeyResult(fg, alpha, s, plate.full() if isinstance(plate, _LowResPlate) else plate)


def key_screen_subtract(rgb, *, screen: str = "green", screen_color=None, clean_plate=None,
                        screen_gain: float = 1.05, screen_balance: float = 0.5, clip_black: float = 0.0,
                        clip_white: float = 1.0, softness: float = 0.0, garbage=None, core=None,
                        despill: str | None = "screen_subtract", spill_strength: float = 1.0,
                        replace_color=None, denoise_radius: float = 0, denoise_eps: float = 1e-4) -> KeyResult:
    """Keylight-like screen-subtraction keyer (see :func:`composite.matte.keyers.key_screen_subtract`)."""
    check_image(rgb, "plate")
    rgb = rgb[..., :3]
    if not 0.0 <= screen_balance <= 1.0:
        raise InputError(f"screen_balance must be within [0, 1], got {screen_balance}")
    if screen_gain <= 0:
        raise InputError(f"screen_gain must be positive, got {screen_gain}")
    s, plate = _resolve_screen(rgb, screen, screen_color, clean_plate)
    weights = (screen_balance, 1.0 - screen_balance)
    d_s = _screen_diff(s, plate, screen, weights, 0.0)
    primary, sec = _planar_secondary(rgb, screen, weights, 0.0)
    d_p = primary - sec
    if softness > 0:
        d_p = d_p / (d_s if isinstance(d_s, torch.Tensor) else f32(float(d_s), d_p))
        d_p = gaussian_blur_plane(d_p, float(softness), border="replicate")
        d_s = np.float32(1.0)
    alpha = _alpha_from_difference(d_p, d_s, gain=screen_gain, clip_black=clip_black, clip_white=clip_white,
                                   guide=(primary, sec), denoise_radius=denoise_radius, denoise_eps=denoise_eps)
    dkw = {"strength": spill_strength, "replace_color": replace_color, "weights": weights}
    fg, alpha = _finish(rgb, alpha, s, plate, garbage=garbage, core=core, despill=despill, despill_kw=dkw,
                        screen=screen)
    return KeyResult(fg, alpha, s, plate.full() if isinstance(plate, _LowResPlate) else plate)
