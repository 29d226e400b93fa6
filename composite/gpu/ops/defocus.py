"""Uniform lens defocus on torch tensors: :func:`composite.integrate.defocus.defocus`, same bokeh kernel.

The kernel is the NumPy version's (:func:`~composite.integrate.defocus.disc_kernel`), flipped for a
true convolution, with the same borders (``extend``: edge pixels repeated; ``black``: zeros). Kernels up
to :data:`DIRECT_MAX` pixels wide are applied directly; larger ones by FFT over the explicitly padded
frame (the same border values, so only float32 rounding differs: about 1e-6 of the frame's largest value).

Depth-driven defocus (:func:`~composite.integrate.defocus.depth_defocus`) stays on the NumPy path.

Example
-------
>>> import torch
>>> from composite.gpu.ops.defocus import defocus
>>> img = torch.zeros(21, 21, 4); img[10, 10] = 1.0
>>> round(float(defocus(img, radius=3.0)[..., 3].sum()), 5)
1.0
"""

from __future__ import annotations

import numpy as np
import torch

from ...core.errors import InputError
from ...integrate.defocus import BORDERS, disc_kernel
from ._common import check_image, filter2d, pad_nchw, to_nchw

#: Widest kernel (pixels) convolved directly; wider ones go through the FFT.
DIRECT_MAX = 31
_BORDER_NAMES = {"extend": "replicate", "black": "constant"}


def _fft_convolve(x, kernel: np.ndarray, border: str):
    kh, kw = kernel.shape
    y, back = to_nchw(x)
    h, w = y.shape[-2:]
    ry, rx = kh // 2, kw // 2
    yp = pad_nchw(y, ry, ry, rx, rx, border)
    ph, pw = yp.shape[-2:]
    fh, fw = ph + kh - 1, pw + kw - 1
    k = torch.as_tensor(np.array(kernel, np.float32, order="C", copy=True), device=x.device)
    spec = torch.fft.rfft2(yp, s=(fh, fw)) * torch.fft.rfft2(k, s=(fh, fw))
    full = torch.fft.irfft2(spec, s=(fh, fw))
    # Full linear convolution of the padded frame; the valid part starts at (kh - 1, kw - 1).
    out = full[..., kh - 1:kh - 1 + h, kw - 1:kw - 1 + w]
    return back(out).contiguous()


def convolve(x, kernel: np.ndarray, *, border: str):
    """True convolution (kernel flipped) of ``(..., H, W, C)`` with an odd square kernel."""
    if kernel.shape == (1, 1):
        return x.clone()
    if max(kernel.shape) <= DIRECT_MAX:
        return filter2d(x, np.ascontiguousarray(kernel[::-1, ::-1]), border=border)
    return _fft_convolve(x, kernel, border)


def defocus(image, *, radius: float, blades: int = 0, rotation: float = 0.0, aspect: float = 1.0,
            border: str = "extend"):
    """Uniform defocus of ``(H, W, C)`` float32 (premultiplied if it has alpha); see
    :func:`composite.integrate.defocus.defocus`."""
    who = "defocus"
    if image.dim() == 2:
        image = image[..., None]
    check_image(image, who)
    bad = int((~torch.isfinite(image)).sum())
    if bad:
        raise InputError(f"{who}: image holds {bad} NaN/infinite value(s); repair them first "
                         "(recipes: `nonfinite: repair`)")
    if border not in BORDERS:
        raise InputError(f"{who}: unknown border {border!r}; allowed: {', '.join(BORDERS)}")
    k = disc_kernel(radius, blades=blades, rotation=rotation, aspect=aspect)
    return convolve(image, k, border=_BORDER_NAMES[border])
