"""Matte quality metrics with the alphamatting.com definitions (Rhemann et al., CVPR 2009).

All functions take alpha mattes as ``(H, W)`` float32/float64 arrays in [0, 1] (8-bit files are divided by
255 by the caller; :func:`as_alpha` does it for integer arrays) and an optional trimap. With a trimap the
errors are summed over its unknown region only — pixels that are neither 0 nor 1 (alphamatting.com trimaps
use 0, 128 and 255; anti-aliased levels count as unknown). Without one, over the whole frame.

===================  ======================================================================  =========
metric               definition                                                              reported
===================  ======================================================================  =========
SAD                  ``sum |a - g|``                                                         / 1000
MSE                  ``sum (a - g)^2 / n`` (n = pixels in the region)                        as is
gradient             ``sum (|grad a| - |grad g|)^2``, gradients by first-order Gaussian      / 1000
                     derivative filters with sigma 1.4 (kernel 9x9, unit L2 norm, replicated
                     borders)
connectivity         ``sum |phi(a) - phi(g)|`` with ``phi = 1 - d [d >= 0.15]``,             / 1000
                     ``d = alpha - l``, l the highest threshold (step 0.1) at which the pixel
                     is still 4-connected to the largest region where both mattes are >= it
MAD                  ``mean |a - g|``                                                        as is
dtSSD                ``mean_t sqrt(mean_px ((a_t - a_t-1) - (g_t - g_t-1))^2)``              as is
===================  ======================================================================  =========

The /1000 scaling of SAD, gradient and connectivity is the convention of the alphamatting.com tables and
the papers that follow them. MAD and dtSSD are often quoted times 1e3 and 1e2 in video-matting papers;
they are returned unscaled here.

Example
-------
>>> import numpy as np
>>> from composite.matte.metrics import sad, mse
>>> a = np.array([[0.0, 0.5], [1.0, 1.0]]); g = np.array([[0.0, 1.0], [1.0, 0.0]])
>>> sad(a, g) * 1000, mse(a, g)
(1.5, 0.3125)
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from scipy import ndimage

from ..core.errors import InputError

GRADIENT_SIGMA = 1.4
CONNECTIVITY_THETA = 0.15
CONNECTIVITY_STEP = 0.1


def as_alpha(array: np.ndarray, what: str = "alpha") -> np.ndarray:
    """(H, W) float64 alpha in [0, 1] from an (H, W) or (H, W, C) array.

    Integer arrays are divided by their type's maximum (255 for 8-bit, 65535 for 16-bit); floats are taken
    as they are. For (H, W, C), the first channel is used (alphamatting.com ground truths are grey RGB).
    """
    a = np.asarray(array)
    if a.ndim == 3:
        a = a[..., 0]
    if a.ndim != 2:
        raise InputError(f"{what}: expected an (H, W) matte, got shape {a.shape}")
    if np.issubdtype(a.dtype, np.integer):
        a = a.astype(np.float64) / float(np.iinfo(a.dtype).max)
    else:
        a = a.astype(np.float64)
    if not np.isfinite(a).all():
        raise InputError(f"{what}: contains NaN or Inf values")
    return a


def unknown_region(trimap: np.ndarray | None, shape: tuple[int, int], *, tolerance: float = 1e-3) -> np.ndarray:
    """Boolean (H, W) region to evaluate: the trimap's unknown pixels, or everything when trimap is None."""
    if trimap is None:
        return np.ones(shape, bool)
    t = as_alpha(trimap, "trimap")
    if t.shape != shape:
        raise InputError(f"trimap is {t.shape[1]}x{t.shape[0]} but the matte is {shape[1]}x{shape[0]}; "
                         "they must be the same size")
    return (t > tolerance) & (t < 1.0 - tolerance)


def _pair(pred, truth, trimap):
    a = as_alpha(pred, "predicted alpha")
    g = as_alpha(truth, "true alpha")
    if a.shape != g.shape:
        raise InputError(f"predicted alpha is {a.shape[1]}x{a.shape[0]} but the true alpha is "
                         f"{g.shape[1]}x{g.shape[0]}; they must be the same size")
    return a, g, unknown_region(trimap, a.shape)


def sad(pred: np.ndarray, truth: np.ndarray, trimap: np.ndarray | None = None) -> float:
    """Sum of absolute differences over the region, divided by 1000."""
    a, g, r = _pair(pred, truth, trimap)
    return float(np.abs(a - g)[r].sum() / 1000.0)


def mse(pred: np.ndarray, truth: np.ndarray, trimap: np.ndarray | None = None) -> float:
    """Mean squared error over the region (0 when the region is empty)."""
    a, g, r = _pair(pred, truth, trimap)
    n = int(r.sum())
    return float(((a - g) ** 2)[r].sum() / n) if n else 0.0


def mad(pred: np.ndarray, truth: np.ndarray, trimap: np.ndarray | None = None) -> float:
    """Mean absolute difference over the region (0 when the region is empty)."""
    a, g, r = _pair(pred, truth, trimap)
    n = int(r.sum())
    return float(np.abs(a - g)[r].sum() / n) if n else 0.0


def gaussian_derivative_kernel(sigma: float = GRADIENT_SIGMA, epsilon: float = 1e-2) -> np.ndarray:
    """The x-derivative kernel of the reference evaluation code: ``g(y) g'(x)``, unit L2 norm.

    Half size ``ceil(sigma sqrt(-2 ln(sqrt(2 pi) sigma epsilon)))`` (4 for sigma 1.4, a 9x9 kernel).
    """
    half = int(math.ceil(sigma * math.sqrt(-2.0 * math.log(math.sqrt(2.0 * math.pi) * sigma * epsilon))))
    u = np.arange(-half, half + 1, dtype=np.float64)
    g = np.exp(-u * u / (2 * sigma * sigma)) / (sigma * math.sqrt(2 * math.pi))
    dg = -u * g / (sigma * sigma)
    h = g[:, None] * dg[None, :]
    return h / math.sqrt(float((h * h).sum()))


def gradient_magnitude(alpha: np.ndarray, sigma: float = GRADIENT_SIGMA) -> np.ndarray:
    """|grad alpha| by Gaussian derivative filters (replicated borders), (H, W) float64."""
    h = gaussian_derivative_kernel(sigma)
    gx = ndimage.convolve(alpha, h, mode="nearest")
    gy = ndimage.convolve(alpha, h.T, mode="nearest")
    return np.sqrt(gx * gx + gy * gy)


def gradient_error(pred: np.ndarray, truth: np.ndarray, trimap: np.ndarray | None = None, *,
                   sigma: float = GRADIENT_SIGMA) -> float:
    """Sum over the region of the squared difference of gradient magnitudes, divided by 1000."""
    a, g, r = _pair(pred, truth, trimap)
    diff = (gradient_magnitude(a, sigma) - gradient_magnitude(g, sigma)) ** 2
    return float(diff[r].sum() / 1000.0)


_FOUR = ndimage.generate_binary_structure(2, 1)


def connectivity_levels(pred: np.ndarray, truth: np.ndarray, *, step: float = CONNECTIVITY_STEP) -> np.ndarray:
    """Per pixel, the highest threshold level l (a multiple of ``step``) before the pixel stops being
    4-connected to the largest component of ``pred >= l and truth >= l``; 1 for pixels never lost."""
    n = int(round(1.0 / step))
    levels = np.arange(n + 1) / n  # exact decimals (0.9, not 0.9000000000000001)
    lmap = np.full(pred.shape, -1.0)
    for i in range(1, n + 1):
        both = (pred >= levels[i]) & (truth >= levels[i])
        labels, count = ndimage.label(both, structure=_FOUR)
        if count:
            sizes = np.bincount(labels.ravel())
            sizes[0] = 0
            omega = labels == int(np.argmax(sizes))
        else:
            omega = np.zeros(pred.shape, bool)
        lmap[(lmap == -1) & ~omega] = levels[i - 1]
    lmap[lmap == -1] = 1.0
    return lmap


def connectivity_error(pred: np.ndarray, truth: np.ndarray, trimap: np.ndarray | None = None, *,
                       step: float = CONNECTIVITY_STEP, theta: float = CONNECTIVITY_THETA) -> float:
    """Connectivity error over the region, divided by 1000 (see the module table)."""
    a, g, r = _pair(pred, truth, trimap)
    lmap = connectivity_levels(a, g, step=step)
    da = a - lmap
    dg = g - lmap
    phi_a = 1.0 - da * (da >= theta)
    phi_g = 1.0 - dg * (dg >= theta)
    return float(np.abs(phi_a - phi_g)[r].sum() / 1000.0)


def dtssd(preds: Sequence[np.ndarray], truths: Sequence[np.ndarray]) -> float:
    """Temporal coherence error (Erofeev et al. 2015) over a sequence of mattes (0 for fewer than 2)."""
    if len(preds) != len(truths):
        raise InputError(f"dtSSD: {len(preds)} predicted frames but {len(truths)} true frames")
    if len(preds) < 2:
        return 0.0
    total = 0.0
    prev_a = prev_g = None
    for i, (p, t) in enumerate(zip(preds, truths, strict=True)):
        a, g, _ = _pair(p, t, None)
        if prev_a is not None:
            if a.shape != prev_a.shape:
                raise InputError(f"dtSSD: frame {i} is {a.shape[1]}x{a.shape[0]}, the previous one "
                                 f"{prev_a.shape[1]}x{prev_a.shape[0]}")
            d = (a - prev_a) - (g - prev_g)
            total += math.sqrt(float((d * d).mean()))
        prev_a, prev_g = a, g
    return total / (len(preds) - 1)


def evaluate_matte(pred: np.ndarray, truth: np.ndarray, trimap: np.ndarray | None = None, *,
                   connectivity: bool = True) -> dict[str, float]:
    """All per-frame metrics as a dict: SAD, MSE, Grad, Conn (unless ``connectivity=False``), MAD."""
    out = {"SAD": sad(pred, truth, trimap), "MSE": mse(pred, truth, trimap),
           "Grad": gradient_error(pred, truth, trimap)}
    if connectivity:
        out["Conn"] = connectivity_error(pred, truth, trimap)
    out["MAD"] = mad(pred, truth, trimap)
    return out
