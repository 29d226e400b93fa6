"""Guided filter on torch tensors (:func:`composite.matte.guided.guided_filter`, step for step).

Windows are truncated at the border and normalised by the pixels inside (``avg_pool2d`` without padded
pixels, the NumPy version's ``cv2.boxFilter`` sum divided by the count); the smaller fitting grid of the
fast variant uses OpenCV's area reduction and bilinear enlargement (:func:`~._common.resize`).

Example
-------
>>> import torch
>>> from composite.gpu.ops.guided import guided_filter
>>> guide = torch.zeros(6, 8); guide[:, 4:] = 1.0
>>> q = guided_filter([guide], torch.full((6, 8), 0.5), radius=2, eps=1e-3)
>>> float((q - 0.5).abs().max()) < 1e-5
True
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ...core.errors import InputError
from ...matte.guided import solve_symmetric
from ._common import resize


def _box_mean(x, r: int):
    """Mean over the truncated ``(2r+1)^2`` window of each pixel of ``(H, W, C)``."""
    y = x.permute(2, 0, 1)[None]
    m = F.avg_pool2d(y, 2 * r + 1, stride=1, padding=r, count_include_pad=False)
    return m[0].permute(1, 2, 0)


def _fit(guide, src, r: int, eps: float):
    """``(mean_a (H, W, c), mean_b (H, W))`` for a centred ``(H, W, c)`` guide and ``(H, W)`` input."""
    c = guide.shape[2]
    work = torch.float64 if c == 3 else torch.float32
    pairs = [(i, j) for i in range(c) for j in range(i, c)]
    planes = [guide, src[..., None]] + [(guide[..., i] * guide[..., j])[..., None] for i, j in pairs] + \
        [(guide[..., i] * src)[..., None] for i in range(c)]
    means = _box_mean(torch.cat(planes, dim=2), r)
    mean_i = means[..., :c]
    mean_p = means[..., c]
    o = c + 1
    cov = {}
    for idx, (i, j) in enumerate(pairs):
        cov[i, j] = means[..., o + idx].to(work) - mean_i[..., i].to(work) * mean_i[..., j]
        if i == j:
            cov[i, j] = cov[i, j] + eps
    o += len(pairs)
    cip = [means[..., o + i].to(work) - mean_i[..., i] * mean_p for i in range(c)]
    a = solve_symmetric(cov, cip)
    b = mean_p - sum(a[i] * mean_i[..., i] for i in range(c))
    coeff = torch.stack([x.to(torch.float32) for x in a] + [b.to(torch.float32)], dim=2)
    mean_coeff = _box_mean(coeff, r)
    return mean_coeff[..., :c], mean_coeff[..., c]


def guided_filter(guide, src, *, radius: int = 8, eps: float = 1e-4, subsample: int = 1):
    """Guided filter of an ``(H, W)`` tensor ``src`` by a list of 1-3 ``(H, W)`` guide planes (or an
    ``(H, W, c)`` tensor); returns ``(H, W)`` float32. Non-finite values are taken as 0."""
    planes = list(guide) if isinstance(guide, (list, tuple)) else \
        [guide[..., i] for i in range(guide.shape[-1])] if guide.dim() == 3 else [guide]
    c = len(planes)
    if c not in (1, 2, 3) or any(tuple(x.shape) != tuple(src.shape) or x.dim() != 2 for x in planes):
        raise InputError(f"guided filter: need 1-3 guide planes of the input's (H, W) {tuple(src.shape)}")
    if radius < 1 or eps <= 0 or subsample < 1:
        raise InputError(f"guided filter: need radius >= 1, eps > 0, subsample >= 1 "
                         f"(got radius={radius}, eps={eps}, subsample={subsample})")
    planes = [torch.nan_to_num(x.float(), nan=0.0, posinf=0.0, neginf=0.0) for x in planes]
    p = torch.nan_to_num(src.float(), nan=0.0, posinf=0.0, neginf=0.0)
    h, w = p.shape
    g = torch.stack(planes, dim=2)
    if subsample > 1:
        hs, ws = max(1, round(h / subsample)), max(1, round(w / subsample))
        gs = resize(g, ws, hs, interp="area")
        ps = resize(p[..., None], ws, hs, interp="area")[..., 0]
        r = max(1, round(radius / subsample))
    else:
        gs, ps, r = g, p, radius
    centre = gs.reshape(-1, c).to(torch.float64).mean(dim=0).to(torch.float32)
    a, b = _fit(gs - centre, ps, r, eps)
    b = b - (a * centre).sum(dim=2)
    if subsample > 1:
        a = resize(a.contiguous(), w, h, interp="linear")
        b = resize(b[..., None].contiguous(), w, h, interp="linear")[..., 0]
    q = b.clone()
    for i in range(c):
        q = q + a[..., i] * planes[i]
    return q
