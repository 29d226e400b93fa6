"""Despill on torch tensors: :func:`composite.matte.despill.despill` with the same methods and maths.

Example
-------
>>> import torch
>>> from composite.gpu.ops.despill import despill
>>> [round(v, 3) for v in despill(torch.tensor([[[0.2, 0.5, 0.1]]]), method="average")[0, 0].tolist()]
[0.2, 0.15, 0.1]
"""

from __future__ import annotations

import numpy as np
import torch

from ...core.errors import InputError
from ...matte.despill import AP1_LUMA, METHODS, replacement_terms
from ...matte.screen import screen_channels
from ._common import check_image, f32


def spill_amount(rgb, *, screen: str = "green", weights: tuple[float, float] = (0.5, 0.5), strength: float = 1.0):
    """``(..., H, W)`` spill: how far the primary exceeds ``w1 o1 + w2 o2`` (never below 0)."""
    p, o1, o2 = screen_channels(screen)
    lim = rgb[..., o1] * f32(weights[0], rgb) + rgb[..., o2] * f32(weights[1], rgb)
    s = torch.clamp_min(rgb[..., p] - lim, 0.0)
    if strength != 1.0:
        s = s * f32(strength, rgb)
    return s


def despill(rgb, *, method: str = "average", screen: str = "green", screen_color=None, replace_color=None,
            weights: tuple[float, float] = (0.5, 0.5), strength: float = 1.0, luma=AP1_LUMA):
    """Remove screen spill from ``(..., H, W, 3|4)`` float32 colour (premultiplied or straight; a fourth
    plane is passed through). Returns a new tensor (see :func:`composite.matte.despill.despill`)."""
    if method not in METHODS:
        raise InputError(f"unknown despill method {method!r}; allowed: {', '.join(METHODS)}")
    check_image(rgb, "despill input", channels=(3, 4))
    if strength == 0.0:
        return rgb.clone()
    p, o1, o2 = screen_channels(screen)
    colour = rgb[..., :3]
    if method == "limit":
        excess = torch.clamp_min(colour[..., p] - torch.maximum(colour[..., o1], colour[..., o2]), 0.0)
        delta = -f32(strength, rgb) * excess
        return _add_to_channel(rgb, p, delta)
    spill = spill_amount(colour, screen=screen, weights=weights, strength=strength)
    if method == "average":
        return _add_to_channel(rgb, p, -spill)
    s, s_spill, add = replacement_terms(method, screen=screen, screen_color=screen_color,
                                        replace_color=replace_color, weights=weights, luma=luma)
    k = spill / f32(np.float32(s_spill), rgb)
    coef = torch.as_tensor((add - s).astype(np.float32), device=rgb.device)
    delta = k[..., None] * coef
    if rgb.shape[-1] == 4:
        return torch.cat([rgb[..., :3] + delta, rgb[..., 3:]], dim=-1)
    return rgb + delta


def _add_to_channel(rgb, channel: int, delta):
    parts = list(rgb.unbind(-1))
    parts[channel] = parts[channel] + delta
    return torch.stack(parts, dim=-1)
