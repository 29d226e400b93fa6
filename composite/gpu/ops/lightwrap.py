"""Light wrap on torch tensors: :func:`composite.integrate.lightwrap.light_wrap`, same formula and blur.

``wrap = intensity * a * G_size * (key(B) * (1 - a))`` with OpenCV's Gaussian kernel and mirrored
borders (``BORDER_REFLECT``); from ``size`` 6 on the blur runs at reduced resolution, as the NumPy
version's ``gaussian_smooth``.

Example
-------
>>> import torch
>>> from composite.gpu.ops.lightwrap import light_wrap
>>> fg = torch.zeros(32, 32, 4); fg[:, 16:] = torch.tensor([0.1, 0.1, 0.1, 1.0])
>>> out = light_wrap(fg, torch.ones(32, 32, 4), size=2.0, intensity=1.0)
>>> bool(out[16, 16, 0] > 0.3), bool((out[:, :16] == 0).all())
(True, True)
"""

from __future__ import annotations

import numpy as np
import torch

from ...core.errors import InputError, StateError
from ...integrate._util import AP1_LUMINANCE
from ...integrate.lightwrap import OUTPUTS
from ._common import check_image, gaussian_smooth


def _luminance(rgb):
    w = AP1_LUMINANCE
    return rgb[..., 0] * float(np.float32(w[0])) + rgb[..., 1] * float(np.float32(w[1])) + \
        rgb[..., 2] * float(np.float32(w[2]))


def _finite(x, who: str, what: str):
    bad = int((~torch.isfinite(x)).sum())
    if bad:
        raise InputError(f"{who}: {what} holds {bad} NaN/infinite value(s); repair them first "
                         "(recipes: `nonfinite: repair`)")
    return x


def to_rgba(x, who: str, what: str):
    check_image(x, f"{who}: {what}")
    c = x.shape[-1]
    if c == 4:
        return x
    if c == 3:
        return torch.cat([x, torch.ones_like(x[..., :1])], dim=-1)
    raise StateError(f"{who}: {what} must be RGB or RGBA, got {c} channel(s)")


def light_wrap(fg, bg, *, size: float = 12.0, intensity: float = 0.5, threshold: float | None = None,
               softness: float = 0.5, saturation: float = 1.0, output: str = "foreground", mask=None):
    """Wrap background light over the foreground's edge (see :func:`composite.integrate.lightwrap.light_wrap`).

    ``fg``: ``(H, W, 4)`` premultiplied tensor; ``bg``: ``(H, W, 3|4)``; ``mask``: ``(H, W)`` or None.
    """
    who = "light wrap"
    check_image(fg, f"{who}: foreground")
    if fg.shape[-1] != 4:
        raise StateError(f"{who}: foreground has {fg.shape[-1]} channel(s) but needs R, G, B, A "
                         "(premultiplied): the operation follows the element's matte; key or "
                         "premultiply the element first")
    fg = _finite(fg, who, "foreground")
    bg = _finite(to_rgba(bg, who, "background"), who, "background")
    if tuple(fg.shape[:2]) != tuple(bg.shape[:2]):
        raise InputError(f"{who}: foreground is {fg.shape[1]}x{fg.shape[0]} but background is "
                         f"{bg.shape[1]}x{bg.shape[0]}; reformat one of them (or align data windows) first")
    if output not in OUTPUTS:
        raise InputError(f"{who}: unknown output {output!r}; allowed: {', '.join(OUTPUTS)}")
    m = None
    if mask is not None:
        m = mask[..., -1] if mask.dim() == 3 else mask
        if tuple(m.shape) != tuple(fg.shape[:2]):
            raise InputError(f"{who}: mask has shape {tuple(m.shape)} but the image is {fg.shape[1]}x{fg.shape[0]}; "
                             "reformat the mask to the image's size")
        m = torch.nan_to_num(m.float(), nan=0.0, posinf=1.0, neginf=0.0)
    alpha = torch.clamp(fg[..., 3], 0.0, 1.0)
    light = bg[..., :3] * (1 - alpha)[..., None]
    if threshold is not None and threshold > 0:
        lum = _luminance(bg[..., :3])
        stops = torch.log2(torch.clamp_min(lum, float(np.float32(1e-12))) / float(np.float32(threshold)))
        key = torch.clamp(stops / float(np.float32(max(softness, 1e-6))), 0.0, 1.0)
        light = light * key[..., None]
    wrap = gaussian_smooth(light, size, border="reflect") * float(np.float32(intensity))
    if saturation != 1.0:
        lw = _luminance(wrap)[..., None]
        wrap = lw + float(np.float32(saturation)) * (wrap - lw)
    weight = alpha if m is None else alpha * m
    wrap = wrap * weight[..., None]
    if output == "wrap":
        return torch.cat([wrap, torch.zeros_like(fg[..., 3:])], dim=-1)
    out = torch.cat([fg[..., :3] + wrap, fg[..., 3:]], dim=-1)
    if output == "comp":
        out = out + bg * (1 - fg[..., 3:4])
    return out
