"""Dense optical flow between frames, forward/backward consistency and occlusion masks.

Flow convention (OpenCV's): ``flow_ab`` is an ``(H, W, 2)`` float32 array of pixel displacements
``(dx, dy)`` with x to the right and y downwards, such that pixel ``p`` of frame ``a`` shows the same
point as ``p + flow_ab[p]`` in frame ``b``. Warping ``b`` by ``flow_ab`` (:func:`composite.temporal.warp.warp`)
gives an image aligned with ``a``.

Flow is estimated on an 8-bit guide derived from the frames: log luminance normalised by each frame's
bright reference for scene-linear colour (so flicker and exposure changes do not read as motion), or the
values themselves for mattes (``encoding="linear"``). The default estimator is OpenCV's DIS (Kroeger et
al. 2016) with a quality preset; a learned model (:mod:`composite.temporal.learned_flow`) can replace it.

Example
-------
>>> import numpy as np
>>> from composite.temporal.flow import estimate_flow
>>> rng = np.random.default_rng(0)
>>> a = rng.random((64, 64, 3), dtype=np.float32)
>>> a = np.stack([__import__("cv2").GaussianBlur(a[..., i], (0, 0), 2) for i in range(3)], 2)
>>> b = np.roll(a, 3, axis=1)                      # content moves 3 px to the right
>>> flow = estimate_flow(a, b, preset="medium")
>>> round(float(np.median(flow[16:48, 16:48, 0])), 1), round(float(np.median(flow[16:48, 16:48, 1])), 1)
(3.0, 0.0)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from ..core.errors import InputError
from ._common import ArrayCache, as_planes, bright_reference, linear_guide, log_guide, luminance, resize_area

#: DIS quality presets, fastest first. ``fine`` is ``medium`` refined down to full resolution.
FLOW_PRESETS = ("ultrafast", "fast", "medium", "fine")
#: Guide encodings: ``log`` for scene-linear colour, ``linear`` for data in [0, 1] (mattes).
ENCODINGS = ("log", "linear")

#: Images smaller than this (either side) get zero flow: DIS needs room for its patches.
MIN_FLOW_SIZE = 16

_GUIDES = ArrayCache(capacity=96)
#: Full-size flows: a ±2-frame window at 4K needs about 14 of them (66 MB each) at once.
_FLOWS = ArrayCache(capacity=64, max_bytes=1 << 30)


def _dis(preset: str) -> cv2.DISOpticalFlow:
    if preset not in FLOW_PRESETS:
        raise InputError(f"unknown flow preset {preset!r}; allowed: {', '.join(FLOW_PRESETS)}")
    base = {"ultrafast": cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST, "fast": cv2.DISOPTICAL_FLOW_PRESET_FAST,
            "medium": cv2.DISOPTICAL_FLOW_PRESET_MEDIUM, "fine": cv2.DISOPTICAL_FLOW_PRESET_MEDIUM}[preset]
    dis = cv2.DISOpticalFlow_create(base)
    if preset == "fine":
        dis.setFinestScale(0)
        dis.setPatchStride(3)
        dis.setVariationalRefinementIterations(8)
    return dis


def flow_guide(pixels: np.ndarray, *, encoding: str = "log", scale: float = 1.0) -> np.ndarray:
    """The ``(h, w)`` uint8 guide flow is estimated on (cached while ``pixels`` is alive).

    ``scale`` < 1 estimates on a downscaled guide (area filter); ``h, w`` are the scaled size.
    """
    if encoding not in ENCODINGS:
        raise InputError(f"unknown flow encoding {encoding!r}; allowed: {', '.join(ENCODINGS)}")

    def make():
        px = as_planes(pixels, "flow input")
        y = luminance(px)
        if scale != 1.0:
            h, w = y.shape
            y = resize_area(y, (max(1, int(round(w * scale))), max(1, int(round(h * scale)))))
        return log_guide(y, bright_reference(y)) if encoding == "log" else linear_guide(y)

    return _GUIDES.get((pixels,), (encoding, float(scale)), make)


def _check_scale(scale: float) -> float:
    scale = float(scale)
    if not 0.05 <= scale <= 1.0:
        raise InputError(f"flow scale must be in [0.05, 1], got {scale}")
    return scale


def estimate_flow(a: np.ndarray, b: np.ndarray, *, preset: str = "medium", scale: float = 1.0,
                  encoding: str = "log", model: Any = None) -> np.ndarray:
    """Dense flow from frame ``a`` to frame ``b``.

    Parameters
    ----------
    a, b : np.ndarray
        ``(H, W)`` or ``(H, W, C)`` float32, same size. Colour frames: scene-linear (ACEScg), premultiplied
        or opaque; the first three planes are R, G, B. Mattes: one plane in [0, 1] with ``encoding="linear"``.
    preset : {"ultrafast", "fast", "medium", "fine"}
        DIS quality preset.
    scale : float
        Estimate on frames downscaled by this factor (0.05..1) and upsample the flow: faster at 4K.
    encoding : {"log", "linear"}
        Guide encoding (see the module docstring).
    model : callable or None
        A learned flow model (``model(a, b) -> (H, W, 2)``, e.g. :class:`~composite.temporal.learned_flow.LearnedFlow`)
        used instead of DIS.

    Returns
    -------
    np.ndarray
        ``(H, W, 2)`` float32 displacements in pixels of the full-size frames (see module docstring).
        Frames smaller than :data:`MIN_FLOW_SIZE` on a side get zero flow.
    """
    pa, pb = as_planes(a, "flow frame a"), as_planes(b, "flow frame b")
    if pa.shape[:2] != pb.shape[:2]:
        raise InputError(f"optical flow needs frames of one size, got {pa.shape[1]}x{pa.shape[0]} and "
                         f"{pb.shape[1]}x{pb.shape[0]}; reformat one of them first")
    scale = _check_scale(scale)
    if model is not None:
        return _FLOWS.get((a, b, model), ("model", scale), lambda: _model_flow(model, pa, pb, scale))

    def make():
        h, w = pa.shape[:2]
        ga = flow_guide(a, encoding=encoding, scale=scale)
        gb = flow_guide(b, encoding=encoding, scale=scale)
        if min(ga.shape) < MIN_FLOW_SIZE:
            return np.zeros((h, w, 2), np.float32)
        flow = _dis(preset).calc(ga, gb, None)
        return _upscale_flow(flow, w, h)

    return _FLOWS.get((a, b), ("dis", preset, scale, encoding), make)


def _upscale_flow(flow: np.ndarray, w: int, h: int) -> np.ndarray:
    fh, fw = flow.shape[:2]
    if (fw, fh) == (w, h):
        return flow.astype(np.float32, copy=False)
    up = cv2.resize(flow, (w, h), interpolation=cv2.INTER_LINEAR)
    up[..., 0] *= np.float32(w / fw)
    up[..., 1] *= np.float32(h / fh)
    return up


def _model_flow(model: Any, a: np.ndarray, b: np.ndarray, scale: float) -> np.ndarray:
    h, w = a.shape[:2]
    if scale != 1.0:
        size = (max(1, int(round(w * scale))), max(1, int(round(h * scale))))
        a, b = resize_area(a, size), resize_area(b, size)
    flow = np.asarray(model(a, b), np.float32)
    if flow.shape != (*a.shape[:2], 2):
        raise InputError(f"flow model returned shape {flow.shape}, expected {(*a.shape[:2], 2)}")
    return _upscale_flow(flow, w, h)


def sample_flow(field: np.ndarray, flow: np.ndarray) -> np.ndarray:
    """``field`` (``(H, W, k)``) sampled bilinearly at ``p + flow[p]``, edges replicated."""
    h, w = flow.shape[:2]
    gx, gy = _grid(w, h)
    return cv2.remap(field, gx + flow[..., 0], gy + flow[..., 1], cv2.INTER_LINEAR,
                     borderMode=cv2.BORDER_REPLICATE)


def compose_flows(*flows: np.ndarray) -> np.ndarray:
    """Chain flows ``a → b``, ``b → c``, …: the flow from the first frame to the last.

    Each flow is ``(H, W, 2)`` float32 in the convention above; the result at ``p`` is
    ``f1[p] + f2[p + f1[p]] + …`` (later flows sampled bilinearly where the earlier ones land). Chaining
    the flows of consecutive frames follows motion that is too large for one direct estimate.
    """
    if not flows:
        raise InputError("compose_flows: needs at least one flow")
    out = np.asarray(flows[0], np.float32)
    for f in flows[1:]:
        if f.shape != out.shape:
            raise InputError(f"compose_flows: flows of shapes {out.shape} and {f.shape} cannot be chained")
        out = out + sample_flow(np.asarray(f, np.float32), out)
    return out


_GRIDS: dict[tuple[int, int], tuple[np.ndarray, np.ndarray]] = {}


def _grid(w: int, h: int) -> tuple[np.ndarray, np.ndarray]:
    g = _GRIDS.get((w, h))
    if g is None:
        gx, gy = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
        g = (gx, gy)
        if len(_GRIDS) > 8:
            _GRIDS.clear()
        _GRIDS[(w, h)] = g
    return g


def _squared_length(v: np.ndarray) -> np.ndarray:
    """``|v|²`` of an ``(H, W, 2)`` field, ``(H, W)`` float32 (several times faster than einsum here)."""
    x, y = v[..., 0], v[..., 1]
    return x * x + y * y


def flow_occlusion(forward: np.ndarray, backward: np.ndarray, *, alpha1: float = 0.01,
                   alpha2: float = 0.5) -> np.ndarray:
    """Occlusion mask of ``forward`` by the forward/backward consistency check (Sundaram et al. 2010).

    A pixel ``p`` of frame a is occluded (or its flow unreliable) when the backward flow at its target
    does not bring it back: ``|f(p) + b(p + f(p))|² > alpha1 (|f|² + |b(p + f)|²) + alpha2``, or when its
    target ``p + f(p)`` falls outside frame b.

    Parameters
    ----------
    forward, backward : np.ndarray
        ``(H, W, 2)`` float32 flows a → b and b → a.

    Returns
    -------
    np.ndarray
        ``(H, W)`` bool, True where occluded.
    """
    if forward.shape != backward.shape or forward.ndim != 3 or forward.shape[2] != 2:
        raise InputError(f"flow_occlusion: expects two (H, W, 2) flows of one size, got {forward.shape} "
                         f"and {backward.shape}")
    h, w = forward.shape[:2]
    bw = sample_flow(backward, forward)
    diff = forward + bw
    lhs = _squared_length(diff)
    rhs = np.float32(alpha1) * (_squared_length(forward) + _squared_length(bw)) + np.float32(alpha2)
    gx, gy = _grid(w, h)
    tx = gx + forward[..., 0]
    ty = gy + forward[..., 1]
    outside = (tx < -0.5) | (tx > w - 0.5) | (ty < -0.5) | (ty > h - 0.5)
    return (lhs > rhs) | outside


@dataclass(frozen=True)
class FlowPair:
    """Flows both ways between frames a and b with their occlusion masks (True = occluded)."""

    forward: np.ndarray
    backward: np.ndarray
    occluded_forward: np.ndarray
    occluded_backward: np.ndarray


def estimate_flow_pair(a: np.ndarray, b: np.ndarray, *, preset: str = "medium", scale: float = 1.0,
                       encoding: str = "log", model: Any = None, alpha1: float = 0.01,
                       alpha2: float = 0.5) -> FlowPair:
    """Forward and backward flow between ``a`` and ``b`` with consistency-checked occlusion masks.

    Arguments as :func:`estimate_flow` and :func:`flow_occlusion`.
    """
    fw = estimate_flow(a, b, preset=preset, scale=scale, encoding=encoding, model=model)
    bw = estimate_flow(b, a, preset=preset, scale=scale, encoding=encoding, model=model)
    return FlowPair(fw, bw, flow_occlusion(fw, bw, alpha1=alpha1, alpha2=alpha2),
                    flow_occlusion(bw, fw, alpha1=alpha1, alpha2=alpha2))


def clear_caches() -> None:
    """Forget cached guides and flows (they are also dropped when their frames are freed)."""
    _GUIDES.clear()
    _FLOWS.clear()
