"""Deflicker gain application on torch tensors (:func:`composite.temporal.deflicker.apply_gains`).

The gains are estimated on small analysis proxies (host); applying them is per-pixel work: tile gains
interpolated bilinearly to every pixel (OpenCV's ``INTER_LINEAR`` resize, as a matrix product) and
``2 ** gain`` multiplied into R, G, B. Alpha and other planes are untouched.

Example
-------
>>> import numpy as np, torch
>>> from composite.gpu.ops.deflicker import apply_gains
>>> out = apply_gains(torch.ones(4, 6, 4), np.full((1, 1, 3), 1.0, np.float32))
>>> out[0, 0].tolist()
[2.0, 2.0, 2.0, 1.0]
"""

from __future__ import annotations

import numpy as np
import torch

from ...core.errors import InputError
from ..tensor import is_tensor
from ._common import check_image, resize


def apply_gains(pixels, log_gains, *, strength: float = 1.0):
    """Multiply R, G, B by ``2 ** (strength * log_gains)`` interpolated over the frame.

    ``pixels``: ``(H, W, C)`` float32 tensor, R, G, B first; ``log_gains``: ``(rows, columns, 3)`` stops
    (NumPy array or tensor).
    """
    px = pixels[..., None] if pixels.dim() == 2 else pixels
    check_image(px, "deflicker frame")
    if px.shape[-1] < 3:
        raise InputError(f"apply_gains: expected R, G, B planes, got {px.shape[-1]} channel(s)")
    if is_tensor(log_gains):
        g = log_gains.to(device=px.device, dtype=torch.float32) * float(np.float32(strength))
    else:
        g = np.asarray(log_gains, np.float32) * np.float32(strength)
        if g.ndim != 3 or g.shape[2] != 3:
            raise InputError(f"apply_gains: expected (rows, columns, 3) gains, got {g.shape}")
        g = torch.as_tensor(np.ascontiguousarray(g), device=px.device)
    if g.dim() != 3 or g.shape[2] != 3:
        raise InputError(f"apply_gains: expected (rows, columns, 3) gains, got {tuple(g.shape)}")
    h, w = px.shape[:2]
    field = torch.exp2(g[0, 0]) if tuple(g.shape[:2]) == (1, 1) else torch.exp2(resize(g, w, h, interp="linear"))
    return torch.cat([px[..., :3] * field, px[..., 3:]], dim=-1)
