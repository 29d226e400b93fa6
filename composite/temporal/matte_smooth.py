"""Flow-guided temporal filtering of mattes: calm boiling edges without lag or ghosting.

For frame ``t`` and each neighbour ``k`` of a bounded window (``t - r .. t + r``), the neighbour's matte
is warped onto frame t along optical flow and averaged with the current matte, pixel by pixel.

Flow comes from the plate when one is given (else from premultiplied colour, else from the matte
itself). For a neighbour more than one frame away there are two candidates: the direct estimate and the
chain of the flows between consecutive frames (:func:`~composite.temporal.flow.compose_flows`), which
follows motion too large for one direct estimate; each pixel takes the one after which the warped
guide (log luminance) matches the current frame's better (5x5 mean difference). A matte edge moves with its object, but near the edge the plate's flow mixes the object's
motion with the background's (the estimator's patches straddle the edge). So the object's flow is taken
from its interior only (alpha > 0.9, eroded by ``FLOW_PATCH_REACH`` pixels) and extended outwards by
normalised Gaussian convolution; it replaces the plate's flow everywhere within ``edge_reach`` pixels of
the object (alpha > 0.02) outside that interior — except where the plate's own flow registers the
neighbour's matte with half the error (9x9 mean), as on a spinning ball or a motion-blurred edge, whose
texture moves unlike its outline. Each neighbour pixel then gets the weight

``w_k(p) = temporal(k) · reliable_k(p) · exp(-(Δα/alpha_tolerance)²)``

* ``temporal``: a Gaussian of ``|k - t|`` with ``temporal_sigma`` frames (the current frame weighs 1);
* ``reliable``: 0 where the forward/backward flow check fails (occlusions, pixels leaving the frame),
  times ``exp(-(Δguide/guide_tolerance)²)`` with Δguide the local mean difference of the plate's log
  luminance after warping, in stops (flow that does not match the picture), carried outwards with the
  flow near edges;
* ``Δα``: difference of the warped and current mattes, so that a neighbour whose flow went wrong
  cannot paint a ghost.

With a plate, ``reliable`` also holds a picture check (``picture_check``): the neighbour's plate, moved
as the matte is moved (its object layer along the matte's flow, its background along the plate's own
flow, mixed by alpha), must predict the current plate within the plate's noise, the uncertainty where
the two motions differ, and a fraction of a pixel of misregistration. Fine detail such as hair over a
screen is registered to a fraction of its width or not averaged at all; a clean key is then left nearly
as it is.

A neighbour whose flow is unreliable over more than ``1 - min_reliability`` of the object (alpha > 0.5)
around a pixel — fast motion that the flow could not follow — is not used there at all. Where every
neighbour is rejected, the result is the current frame's matte, unchanged. A single matte plane is
resampled with a cubic filter (which smears sub-pixel strands of hair less than bilinear interpolation)
clipped to that frame's range, so the weighted mean stays within the inputs' range. Premultiplied RGBA
is resampled bilinearly and filtered as a whole (colour and alpha with the same convex weights), which
keeps it premultiplied.

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
from ._common import GUIDE_STOPS_ABOVE, GUIDE_STOPS_BELOW, ArrayCache, as_planes
from .flow import compose_flows, estimate_flow, flow_guide, flow_occlusion
from .warp import WARP_FILTERS, warp

#: The reliability of a neighbour's flow is judged over boxes of 1/LOCAL_FRACTION of the frame's short side.
LOCAL_FRACTION = 4
#: Pixels (at the flow's resolution) inside an object's edge whose estimated flow still mixes in the
#: background's motion: DIS matches 8-pixel patches. The object's own flow is taken from further inside.
FLOW_PATCH_REACH = 5
#: Picture check (see the module docstring): the allowed prediction error, per 3x3 mean, is
#: ``NOISE · n + LAYERS · |A - B| + SUBPIXEL · |∇P|`` — n the plate's frame-to-frame noise (median over
#: the background), |A - B| the difference of the neighbour warped along the matte's and the plate's flow
#: (where the two motions differ, which of them a pixel follows is uncertain), and |∇P| the current
#: plate's gradient (misregistration below SUBPIXEL pixels is tolerated).
PICTURE_NOISE, PICTURE_LAYERS, PICTURE_SUBPIXEL = 2.0, 1.5, 0.07


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


#: Flows to neighbours two or more frames away, shared by the frames of a sequential render.
_FAR_FLOWS = ArrayCache(capacity=16, max_bytes=512 << 20)


def _far_flow(frames: list[np.ndarray], preset: str, scale: float, encoding: str) -> np.ndarray:
    """Flow from ``frames[0]`` to ``frames[-1]``: per pixel the direct estimate or the chain through the
    frames between, whichever leaves the smaller 5x5 mean guide difference after warping."""
    a, b = frames[0], frames[-1]
    direct = estimate_flow(a, b, preset=preset, scale=scale, encoding=encoding)
    chained = compose_flows(*(estimate_flow(i, j, preset=preset, scale=scale, encoding=encoding)
                              for i, j in zip(frames, frames[1:])))
    ga = flow_guide(a, encoding=encoding).astype(np.float32)
    gb = flow_guide(b, encoding=encoding).astype(np.float32)
    e_d = cv2.blur(np.abs(warp(gb, direct) - ga), (5, 5))
    e_c = cv2.blur(np.abs(warp(gb, chained) - ga), (5, 5))
    return np.where((e_c <= e_d)[:, :, None], chained, direct)


def _channel_sum(v: np.ndarray) -> np.ndarray:
    """``(H, W, 3)`` → ``(H, W)`` float32 sum over the planes (OpenCV, faster than ``sum(axis=2)``)."""
    return cv2.transform(v, np.ones((1, 3), np.float32))


class _PictureCheck:
    """The current plate's colour and gradient magnitude, for :func:`_picture_agreement`."""

    def __init__(self, plate: np.ndarray):
        self.rgb = np.ascontiguousarray(plate[:, :, :3], np.float32)
        gx = cv2.Sobel(self.rgb, cv2.CV_32F, 1, 0, ksize=3)
        gy = cv2.Sobel(self.rgb, cv2.CV_32F, 0, 1, ksize=3)
        self.gradient = ((np.abs(gx) + np.abs(gy)) * np.float32(0.125)).sum(axis=2)


def _picture_agreement(check: _PictureCheck, neighbour: np.ndarray, flow: np.ndarray, plate_flow: np.ndarray,
                       alpha: np.ndarray, reliable: np.ndarray) -> np.ndarray:
    """``(H, W)`` float32 weight in [0, 1]: how well the neighbour's plate, moved as the matte is moved,
    predicts the current plate.

    ``neighbour``: its plate ``(H, W, 3)`` float32 scene-linear; ``flow``: the flow used for the matte;
    ``plate_flow``: the plate's own flow; ``alpha``: the current matte; ``reliable``: the weights so far
    (the noise is measured where they exceed 0.5). The prediction mixes the neighbour warped along both
    flows by alpha (the object's layer along the matte's flow, the background along the plate's):
    ``alpha · A + (1 - alpha) · B``. Its 3x3 mean absolute error, summed over R, G, B, is compared with
    the allowance of :data:`PICTURE_NOISE`; the weight is 1 up to the allowance and falls to 1/e at 1.5
    times it. This rejects sub-pixel misregistration of fine detail (hair over a screen) that the
    luminance guide check averages away, while a soft edge over a textured background, whose pixels mix
    two motions, keeps its neighbours.
    """
    # Few full-size passes, in place where possible: these arrays are (H, W, 3) float32.
    b = warp(neighbour, plate_flow)
    a = None if flow is plate_flow else warp(neighbour, flow)
    if a is not None:
        layers = _channel_sum(cv2.absdiff(a, b))                          # |A - B|
        d_ab = cv2.subtract(a, b, dst=a)                                  # A - B
    residual = _channel_sum(cv2.absdiff(b, check.rgb))                    # |B - P|
    if a is None:
        layers = np.zeros_like(residual)
        error = residual
    else:
        d_b = cv2.subtract(b, check.rgb, dst=b)                           # B - P
        np.multiply(d_ab, alpha[:, :, None], out=d_ab)
        error = _channel_sum(np.abs(cv2.add(d_b, d_ab, dst=d_b), out=d_b))  # |alpha A + (1 - alpha) B - P|
    # The plate's frame-to-frame noise: median residual over the background, on every 4th row and column.
    sub = (slice(None, None, 4), slice(None, None, 4))
    background = (alpha[sub] < 0.01) & (reliable[sub] > 0.5)
    if background.sum() < 100:
        background = reliable[sub] > 0.5
    noise = float(np.median(residual[sub][background])) if background.any() else 0.0
    allowed = cv2.scaleAdd(check.gradient, PICTURE_SUBPIXEL, layers * np.float32(PICTURE_LAYERS))
    allowed += np.float32(PICTURE_NOISE * noise + 1e-6)
    q = cv2.blur(error, (3, 3)) / cv2.blur(allowed, (3, 3))
    excess = np.maximum(q - np.float32(1.0), np.float32(0.0))
    return np.exp(-4.0 * excess * excess).astype(np.float32)


def _object_flow_regions(alpha: np.ndarray, reach: float, patch_reach: float) -> tuple[np.ndarray, np.ndarray]:
    """Where the object's own flow is measured and where the plate's flow is kept.

    ``alpha``: ``(H, W)`` float32 matte of the current frame. Returns ``(interior, plate_weight)``, both
    ``(H, W)`` float32: ``interior`` is 1 on the object's solid core (alpha > 0.9) eroded by
    ``patch_reach`` pixels (the uneroded core when erosion would leave nothing: thin objects);
    ``plate_weight`` is 0 (use the object's extended flow) within ``reach`` pixels of the object
    (alpha > 0.02) outside the interior, 1 elsewhere, with a one-pixel soft transition.
    """
    core = (alpha > 0.9).astype(np.uint8)
    e = int(round(patch_reach))
    interior = core
    if e > 0:
        eroded = cv2.erode(core, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * e + 1, 2 * e + 1)))
        if eroded.any():
            interior = eroded
    d = max(1, int(round(reach)))
    near = cv2.dilate((alpha > 0.02).astype(np.uint8), cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * d + 1, 2 * d + 1)))
    object_weight = cv2.GaussianBlur((near & (1 - interior)).astype(np.float32), (0, 0), 1.0)
    return interior.astype(np.float32), (1.0 - object_weight).astype(np.float32)


def smooth_matte_temporal(mattes: Mapping[int, np.ndarray], t: int, *, guides: Mapping[int, np.ndarray] | None = None,
                          temporal_sigma: float = 2.0, alpha_tolerance: float = 0.8, guide_tolerance: float = 0.25,
                          edge_reach: float = 6.0, min_reliability: float = 0.5, preset: str = "medium",
                          scale: float = 1.0, consistency: bool = True, picture_check: bool = True, filter: str = "auto",
                          alpha_channel: int = -1) -> np.ndarray:
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
    picture_check : bool
        With a plate: also weigh each neighbour by how well its plate, moved as the matte is moved,
        predicts the current plate (:func:`_picture_agreement`).
    filter : {"auto", "cubic", "bilinear", "nearest"}
        How neighbours are resampled along the flow (cubic results are clipped to the frame's range).
        ``auto``: cubic for a single matte plane, bilinear for premultiplied colour (bilinear weights are
        convex, so colour never exceeds its alpha).

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
    if filter not in WARP_FILTERS and filter != "auto":
        raise InputError(f"temporal matte smoothing: filter must be auto or one of {', '.join(WARP_FILTERS)}, "
                         f"got {filter!r}")
    cur = mattes[t]
    two_d = cur.ndim == 2
    cur3 = as_planes(cur)
    if filter == "auto":
        filter = "cubic" if cur3.shape[2] == 1 else "bilinear"
    if len(mattes) == 1:
        return cur.copy()
    alpha_c = np.ascontiguousarray(cur3[:, :, alpha_channel])
    # Flow source: the plate; else premultiplied colour (log encoded); else the matte itself (linear).
    src = guides if guides is not None else mattes
    encoding = "log" if (guides is not None or cur3.shape[2] >= 3) else "linear"

    def flow(a: int, b: int) -> np.ndarray:
        step = 1 if b > a else -1
        path = list(range(a, b + step, step))
        if len(path) <= 2 or any(k not in src for k in path):
            return estimate_flow(src[a], src[b], preset=preset, scale=scale, encoding=encoding)
        return _FAR_FLOWS.get(tuple(src[k] for k in path), (preset, scale, encoding),
                              lambda: _far_flow([src[k] for k in path], preset, scale, encoding))

    per_stop = 255.0 / (GUIDE_STOPS_BELOW + GUIDE_STOPS_ABOVE)
    g_c = flow_guide(src[t], encoding=encoding).astype(np.float32) if encoding == "log" else None
    h, w = alpha_c.shape
    obj = (alpha_c > 0.5).astype(np.float32)
    extend = encoding == "log" and edge_reach > 0 and bool((alpha_c > 0.9).any())
    if extend:
        interior, plate_flow_weight = _object_flow_regions(alpha_c, edge_reach, FLOW_PATCH_REACH / scale)
    local = max(9, (min(h, w) // LOCAL_FRACTION) | 1)
    check = _PictureCheck(guides[t]) if (picture_check and guides is not None) else None
    acc = cur3.astype(np.float32).copy()
    wsum = np.ones((h, w), np.float32)
    inv_gt = np.float32(1.0 / (guide_tolerance * per_stop))
    inv_at = np.float32(1.0 / alpha_tolerance)
    for k in sorted(mattes):
        if k == t:
            continue
        fw = flow(t, k)
        rel = np.ones((h, w), np.float32)
        if consistency:
            rel[flow_occlusion(fw, flow(k, t))] = 0.0
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
        used = fw
        src_k = as_planes(mattes[k])
        if extend:
            object_flow, den = _normalized_blur(fw, interior * rel + 1e-4 * interior, edge_reach)
            object_rel, _ = _normalized_blur(rel, interior, edge_reach)
            b = np.where(den > 1e-3, plate_flow_weight, np.float32(1.0))
            # The interior's texture can move unlike the outline (a spinning ball, motion blur): where the
            # plate's own flow registers the neighbour's matte with half the error, it is kept.
            alpha_k = np.ascontiguousarray(src_k[:, :, alpha_channel])
            along_object = cv2.blur(np.abs(warp(alpha_k, object_flow) - alpha_c), (9, 9))
            along_plate = cv2.blur(np.abs(warp(alpha_k, fw) - alpha_c), (9, 9))
            b = np.where(along_plate < 0.5 * along_object, np.float32(1.0), b)
            used = fw * b[:, :, None] + object_flow * (1.0 - b)[:, :, None]
            rel = rel * b + object_rel * (1.0 - b)
        if check is not None:
            rel *= _picture_agreement(check, np.ascontiguousarray(guides[k][:, :, :3]), used, fw, alpha_c, rel)
        warped = warp(src_k, used, filter=filter)
        if filter == "cubic":
            lo = src_k.min(axis=(0, 1))
            hi = src_k.max(axis=(0, 1))
            warped = np.clip(warped, lo, hi, out=warped)
        da = (warped[:, :, alpha_channel] - alpha_c) * inv_at
        wk = np.exp(-(da * da)) * rel * np.float32(np.exp(-0.5 * ((k - t) / temporal_sigma) ** 2))
        acc += warped * wk[:, :, None]
        wsum += wk
    out = acc / wsum[:, :, None]
    return out[:, :, 0] if two_d else out
