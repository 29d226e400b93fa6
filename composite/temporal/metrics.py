"""Temporal quality metrics: flicker index, flow-warping error, and matte dtSSD / MAD / MSE.

Definitions
-----------
flicker index
    Temporal variation of luminance in static regions after motion compensation, in stops. For each
    pair of consecutive frames, frame t+1 is warped onto frame t along optical flow; pixels that are
    occluded, too dark to measure, or whose log-luminance changed by more than ``outlier_stops`` (moving
    or changing content) are ignored; the median change ``log2(Y[t+1] / Y[t])`` is taken per tile of a
    ``grid``. The index is the root mean square of those tile medians over all pairs and tiles. Pure
    flicker of ``±g`` stops gives about ``g·√2``; a smooth exposure ramp of ``r`` stops per frame gives
    ``r``; a steady shot gives 0.
flow-warping error
    Lai et al. (ECCV 2018): ``mean_t  Σ_p M_t(p) ‖V_t(p) − W(V_{t+1})(p)‖² / Σ_p M_t(p)`` where W warps frame
    t+1 onto t and M excludes occluded pixels. Computed on the arrays as given (scene-linear here).
dtSSD
    Erofeev et al. (2015): ``mean_t sqrt( mean_p ((α_t − α_{t−1}) − (α*_t − α*_{t−1}))² )`` over frames t ≥ 2,
    with α the estimated and α* the true matte in [0, 1] (no scale factor; video-matting papers often
    report it multiplied by 100).
MAD, MSE
    Mean absolute / squared difference of estimated and true mattes over all frames and pixels (often
    reported multiplied by 1000).

Flows may be passed in (``flows[t] = (forward, backward)`` between frames t and t+1) so that "before"
and "after" sequences are compared on the same motion.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..core.errors import InputError
from ._common import as_planes, luminance
from .flow import estimate_flow, flow_occlusion
from .warp import warp

FlowList = Sequence[tuple[np.ndarray, np.ndarray]]


def _check_sequence(frames: Sequence[np.ndarray], what: str, minimum: int = 2) -> list[np.ndarray]:
    frames = [as_planes(f, f"{what} frame {i}") for i, f in enumerate(frames)]
    if len(frames) < minimum:
        raise InputError(f"{what}: needs at least {minimum} frames, got {len(frames)}")
    shape = frames[0].shape
    for i, f in enumerate(frames):
        if f.shape != shape:
            raise InputError(f"{what}: frame {i} has shape {f.shape}, frame 0 has {shape}; "
                             "frames of a sequence must share one size")
    return frames


def sequence_flows(frames: Sequence[np.ndarray], *, preset: str = "medium", scale: float = 1.0) -> list[tuple]:
    """Forward and backward flows between consecutive frames: ``[(flow t→t+1, flow t+1→t), ...]``."""
    frames = _check_sequence(frames, "sequence_flows")
    return [(estimate_flow(frames[i], frames[i + 1], preset=preset, scale=scale),
             estimate_flow(frames[i + 1], frames[i], preset=preset, scale=scale)) for i in range(len(frames) - 1)]


def _pair_masks(frames, flows, preset, scale):
    if flows is None:
        flows = sequence_flows(frames, preset=preset, scale=scale)
    if len(flows) != len(frames) - 1:
        raise InputError(f"expected {len(frames) - 1} flow pairs for {len(frames)} frames, got {len(flows)}")
    for fw, bw in flows:
        yield fw, flow_occlusion(fw, bw)


def flicker_series(frames: Sequence[np.ndarray], *, flows: FlowList | None = None, grid: tuple[int, int] = (4, 4),
                   outlier_stops: float = 1.0, floor: float = 1e-3, preset: str = "medium",
                   scale: float = 1.0) -> np.ndarray:
    """Per-pair, per-tile median luminance change in stops: ``(T-1, gy, gx)`` float64 (NaN: no data).

    ``frames``: ``(H, W, C)`` float32 scene-linear (first three planes RGB) or ``(H, W)`` luminance.
    ``grid``: tiles ``(columns, rows)``. ``floor``: pixels darker than ``floor`` times the frame's mean
    luminance are ignored (their log is noise). See the module docstring for the definition.
    """
    frames = _check_sequence(frames, "flicker index")
    gx, gy = int(grid[0]), int(grid[1])
    if gx < 1 or gy < 1:
        raise InputError(f"flicker index grid must be at least 1x1, got {grid}")
    h, w = frames[0].shape[:2]
    out = np.full((len(frames) - 1, gy, gx), np.nan)
    ys = np.minimum(np.arange(h) * gy // h, gy - 1)
    xs = np.minimum(np.arange(w) * gx // w, gx - 1)
    tile = (ys[:, None] * gx + xs[None, :]).ravel()
    for i, (fw, occ) in enumerate(_pair_masks(frames, flows, preset, scale)):
        y0 = luminance(frames[i]).astype(np.float64)
        y1 = warp(luminance(frames[i + 1]), fw).astype(np.float64)
        lo = floor * max(float(y0.mean()), 1e-12)
        valid = (~occ) & (y0 > lo) & (y1 > lo)
        d = np.zeros_like(y0)
        d[valid] = np.log2(y1[valid] / y0[valid])
        valid &= np.abs(d) <= outlier_stops
        vd, vt = d.ravel()[valid.ravel()], tile[valid.ravel()]
        for k in range(gx * gy):
            sel = vd[vt == k]
            if sel.size >= 16:
                out[i, k // gx, k % gx] = np.median(sel)
    return out


def flicker_index(frames: Sequence[np.ndarray], **kwargs) -> float:
    """Flicker index in stops (see the module docstring); arguments as :func:`flicker_series`."""
    s = flicker_series(frames, **kwargs)
    good = np.isfinite(s)
    if not good.any():
        raise InputError("flicker index: no static, measurable pixels in any pair of frames")
    return float(np.sqrt(np.mean(s[good] ** 2)))


def flow_warping_error(frames: Sequence[np.ndarray], *, flows: FlowList | None = None, preset: str = "medium",
                       scale: float = 1.0) -> float:
    """Flow-warping error (Lai et al. 2018) of a sequence; see the module docstring.

    ``frames``: ``(H, W, C)`` float32 (any colour space; the value is in its units squared).
    """
    frames = _check_sequence(frames, "flow-warping error")
    errs = []
    for i, (fw, occ) in enumerate(_pair_masks(frames, flows, preset, scale)):
        diff = frames[i].astype(np.float64) - warp(frames[i + 1], fw).astype(np.float64)
        sq = np.sum(diff * diff, axis=2)
        m = ~occ
        if m.any():
            errs.append(float(sq[m].mean()))
    if not errs:
        raise InputError("flow-warping error: every pixel of every pair is occluded")
    return float(np.mean(errs))


def _mattes(alphas: Sequence[np.ndarray], truths: Sequence[np.ndarray], what: str, minimum: int = 1):
    a = _check_sequence(alphas, what, minimum)
    g = _check_sequence(truths, f"{what} (truth)", minimum)
    if len(a) != len(g) or a[0].shape != g[0].shape:
        raise InputError(f"{what}: {len(a)} estimated mattes of shape {a[0].shape} but {len(g)} true mattes "
                         f"of shape {g[0].shape}")
    return np.stack([x[..., 0] for x in a]).astype(np.float64), np.stack([x[..., 0] for x in g]).astype(np.float64)


def dtssd(alphas: Sequence[np.ndarray], truths: Sequence[np.ndarray]) -> float:
    """Temporal-gradient SSD (dtSSD) of a matte sequence against the truth (see the module docstring).

    ``alphas``, ``truths``: sequences of ``(H, W)`` or ``(H, W, 1)`` float32 mattes in [0, 1].
    """
    a, g = _mattes(alphas, truths, "dtSSD", 2)
    d = np.diff(a, axis=0) - np.diff(g, axis=0)
    return float(np.mean(np.sqrt(np.mean(d * d, axis=(1, 2)))))


def mad(alphas: Sequence[np.ndarray], truths: Sequence[np.ndarray]) -> float:
    """Mean absolute difference of mattes (see the module docstring)."""
    a, g = _mattes(alphas, truths, "MAD")
    return float(np.mean(np.abs(a - g)))


def mse(alphas: Sequence[np.ndarray], truths: Sequence[np.ndarray]) -> float:
    """Mean squared difference of mattes (see the module docstring)."""
    a, g = _mattes(alphas, truths, "MSE")
    return float(np.mean((a - g) ** 2))
