"""Flow-guided temporal filtering of mattes: calm boiling edges without lag or ghosting.

For frame ``t`` and each neighbour ``k`` of a bounded window (``t - r .. t + r``), the neighbour's matte
is warped onto frame t along optical flow and averaged with the current matte, pixel by pixel.

Flow comes from the plate when one is given (else from premultiplied colour, else from the matte
itself). A matte edge moves with its object, but at the edge the plate's flow is a mixture of the
object's and the background's motion; so within ``edge_reach`` pixels outside the object's solid core
(alpha > 0.9) the flow is replaced, progressively as alpha falls from 0.95 to 0.5, by the core's flow
extended outwards (normalised Gaussian convolution). Each neighbour pixel then gets the weight

``w_k(p) = temporal(k) · reliable_k(p) · exp(-(Δα/alpha_tolerance)²)``

* ``temporal``: a Gaussian of ``|k - t|`` with ``temporal_sigma`` frames (the current frame weighs 1);
* ``reliable``: 0 where the forward/backward flow check fails (occlusions, pixels leaving the frame),
  times ``exp(-(Δguide/guide_tolerance)²)`` with Δguide the local mean difference of the plate's log
  luminance after warping, in stops (flow that does not match the picture), carried outwards with the
  flow near edges;
* ``Δα``: difference of the warped and current mattes, so that a neighbour whose flow went wrong
  cannot paint a ghost.

A neighbour whose flow is unreliable over more than ``1 - min_reliability`` of the object (alpha > 0.5)
around a pixel — fast motion that the flow could not follow — is not used there at all. Where every
neighbour is rejected, the result is the current frame's matte, unchanged. The filter is a convex
combination, so values stay within the inputs' range; premultiplied RGBA is filtered as a whole (colour
and alpha with the same weights), which keeps it premultiplied.

Example
-------
>>> import numpy as np
>>> from composite.temporal.matte_smooth import smooth_matte_temporal
>>> from composite.temporal.synthetic import matte_sequence
>>> plates, truth, keyed = matte_sequence(5, seed=3)
>>> out = smooth_matte_temporal(dict(enumerate(keyed)), 2, guides=dict(enumerate(plates)))
>>> bool(np.abs(out - truth[2]).mean() < np.abs(keyed[2] - truth[2]).mean())
True
"""

from __future__ import annotations

from collections.abc import Mapping

import cv2
import numpy as np

from ..core.errors import InputError
from ._common import GUIDE_STOPS_ABOVE, GUIDE_STOPS_BELOW, as_planes
from .flow import estimate_flow, flow_guide, flow_occlusion
from .warp import warp

#: The reliability of a neighbour's flow is judged over boxes of 1/LOCAL_FRACTION of the frame's short side.
LOCAL_FRACTION = 4


def _window_checked(frames: Mapping[int, np.ndarray], t: int, what: str) -> dict[int, np.ndarray]:
    if t not in frames:
        raise InputError(f"{what}: frame {t} is not in the window ({sorted(frames)})")
    ref = as_planes(frames[t], f"{what} frame {t}")
    out = {}
    for k, v in frames.items():
        px = as_planes(v, f"{what} frame {k}")
        if px.shape != ref.shape:
            raise InputError(f"{what}: frame {k} has shape {px.shape} but frame {t} has {ref.shape}; "
                             "frames of a window must share one size and channel count")
        out[k] = v
    return out


def _normalized_blur(values: np.ndarray, weights: np.ndarray, sigma: float) -> tuple[np.ndarray, np.ndarray]:
    """Normalised Gaussian convolution: ``(G*(v·w) / G*w, G*w)``; ``values`` (H, W) or (H, W, k)."""
    den = cv2.GaussianBlur(weights, (0, 0), sigma)
    vw = values * (weights[:, :, None] if values.ndim == 3 else weights)
    num = cv2.GaussianBlur(vw, (0, 0), sigma)
    if num.ndim == 2 and values.ndim == 3:
        num = num[:, :, None]
    inv = 1.0 / np.maximum(den, 1e-6)
    return num * (inv[:, :, None] if values.ndim == 3 else inv), den


def smooth_matte_temporal(mattes: Mapping[int, np.ndarray], t: int, *, guides: Mapping[int, np.ndarray] | None = None,
                          temporal_sigma: float = 2.0, alpha_tolerance: float = 0.8, guide_tolerance: float = 0.25,
                          edge_reach: float = 6.0, min_reliability: float = 0.5, preset: str = "medium",
                          scale: float = 1.0, consistency: bool = True, alpha_channel: int = -1) -> np.ndarray:
    """Temporally filtered matte of frame ``t`` (see the module docstring).

    Parameters
    ----------
    mattes : mapping of int to np.ndarray
        The window: frame number → ``(H, W)`` or ``(H, W, C)`` float32. One plane: a matte in [0, 1]
        (raw data). Several planes: premultiplied colour with alpha in plane ``alpha_channel``.
    t : int
        The frame to produce.
    guides : mapping of int to np.ndarray or None
        The plate, frame → ``(H, W, 3+)`` float32 scene-linear, same frames and size as ``mattes``: flow
        and the guide check come from it. Without it, flow is estimated on the premultiplied colour
        (several planes) or on the matte itself (one plane; no guide check, no edge extension).
    temporal_sigma : float
        Frames; the Gaussian temporal weight.
    alpha_tolerance : float
        Matte difference at which a neighbour's weight falls to 1/e.
    guide_tolerance : float
        Stops of local log-luminance difference at which the flow's reliability falls to 1/e.
    edge_reach : float
        Pixels over which the object's core flow is extended to its edges (0: use the plate's flow as is).
    min_reliability : float
        A neighbour is not used where less than this fraction of the nearby object has reliable flow.
    preset, scale : str, float
        Optical-flow quality preset and resolution factor (:func:`~composite.temporal.flow.estimate_flow`).
    consistency : bool
        Reject pixels failing the forward/backward flow check (occlusions).

    Returns
    -------
    np.ndarray
        Same shape as ``mattes[t]``, float32.
    """
    mattes = _window_checked(mattes, t, "temporal matte smoothing")
    if guides is not None:
        missing = sorted(set(mattes) - set(guides))
        if missing:
            raise InputError(f"temporal matte smoothing: the plate has no frame {missing[0]} (mattes have "
                             f"{sorted(mattes)})")
        guides = _window_checked({k: guides[k] for k in mattes}, t, "temporal matte smoothing plate")
        if as_planes(guides[t]).shape[:2] != as_planes(mattes[t]).shape[:2]:
            raise InputError(f"temporal matte smoothing: plate frame {t} is {guides[t].shape[1]}x{guides[t].shape[0]} "
                             f"but the matte is {mattes[t].shape[1]}x{mattes[t].shape[0]}")
    for name, value in (("temporal_sigma", temporal_sigma), ("alpha_tolerance", alpha_tolerance),
                        ("guide_tolerance", guide_tolerance)):
        if not value > 0:
            raise InputError(f"temporal matte smoothing: {name} must be > 0, got {value}")
    if edge_reach < 0 or not 0 <= min_reliability <= 1:
        raise InputError(f"temporal matte smoothing: edge_reach must be >= 0 and min_reliability in [0, 1], "
                         f"got {edge_reach}, {min_reliability}")
    cur = mattes[t]
    two_d = cur.ndim == 2
    cur3 = as_planes(cur)
    if len(mattes) == 1:
        return cur.copy()
    alpha_c = np.ascontiguousarray(cur3[:, :, alpha_channel])
    # Flow source: the plate; else premultiplied colour (log encoded); else the matte itself (linear).
    src = guides if guides is not None else mattes
    encoding = "log" if (guides is not None or cur3.shape[2] >= 3) else "linear"
    per_stop = 255.0 / (GUIDE_STOPS_BELOW + GUIDE_STOPS_ABOVE)
    g_c = flow_guide(src[t], encoding=encoding).astype(np.float32) if encoding == "log" else None
    h, w = alpha_c.shape
    core = (alpha_c > 0.9).astype(np.float32)
    obj = (alpha_c > 0.5).astype(np.float32)
    extend = encoding == "log" and edge_reach > 0 and core.any()
    if extend:
        blend = np.clip((alpha_c - 0.5) / 0.45, 0.0, 1.0)
    local = max(9, (min(h, w) // LOCAL_FRACTION) | 1)
    acc = cur3.astype(np.float32).copy()
    wsum = np.ones((h, w), np.float32)
    inv_gt = np.float32(1.0 / (guide_tolerance * per_stop))
    inv_at = np.float32(1.0 / alpha_tolerance)
    for k in sorted(mattes):
        if k == t:
            continue
        fw = estimate_flow(src[t], src[k], preset=preset, scale=scale, encoding=encoding)
        rel = np.ones((h, w), np.float32)
        if consistency:
            bw = estimate_flow(src[k], src[t], preset=preset, scale=scale, encoding=encoding)
            rel[flow_occlusion(fw, bw)] = 0.0
        if g_c is not None:
            g_k = flow_guide(src[k], encoding=encoding).astype(np.float32)
            dg = cv2.blur(np.abs(warp(g_k, fw) - g_c), (5, 5)) * inv_gt
            rel *= np.exp(-(dg * dg))
        if min_reliability > 0:
            # Fraction of the nearby object (in this frame or, warped, in the neighbour) whose flow is
            # reliable; where it is below min_reliability the neighbour is not used.
            obj_k = np.maximum(obj, (warp(as_planes(mattes[k])[:, :, alpha_channel], fw) > 0.5).astype(np.float32))
            if obj_k.any():
                density = cv2.blur(obj_k, (local, local))
                frac = cv2.blur(rel * obj_k, (local, local)) / np.maximum(density, 1e-6)
                frac = np.where(density > 1e-6, frac, 1.0)
                rel *= np.clip((frac - min_reliability) / (0.25 * min_reliability), 0.0, 1.0)
        flow = fw
        if extend:
            core_flow, den = _normalized_blur(fw, core * rel + 1e-4 * core, edge_reach)
            core_rel, _ = _normalized_blur(rel, core, edge_reach)
            have = den > 1e-3
            b = np.where(have, blend, 1.0)
            flow = fw * b[:, :, None] + core_flow * (1.0 - b)[:, :, None]
            rel = rel * b + core_rel * (1.0 - b)
        warped = warp(as_planes(mattes[k]), flow)
        da = (warped[:, :, alpha_channel] - alpha_c) * inv_at
        wk = np.exp(-(da * da)) * rel * np.float32(np.exp(-0.5 * ((k - t) / temporal_sigma) ** 2))
        acc += warped * wk[:, :, None]
        wsum += wk
    out = acc / wsum[:, :, None]
    return out[:, :, 0] if two_d else out
