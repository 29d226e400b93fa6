"""Carrying SAM prompts from keyframes to the frames between them.

Each frame takes its prompts from the nearest keyframe (ties: the earlier one) within ``max_distance``
frames, and the chain is walked one frame at a time from that keyframe towards it:

1. **Motion.** With ``propagation="flow"``, dense optical flow both ways between the two frames
   (:func:`composite.temporal.flow.estimate_flow_pair`, DIS) warps the previous frame's mask onto the new
   frame and moves its points; points whose flow fails the forward/backward check (occluded) are dropped,
   and so are positive points that leave the warped mask. With ``"box"``
   (box tracking) the previous mask is used unwarped and only the box is carried.
2. **Prompt.** The box is the warped mask's bounding box grown by ``box_margin``; the carried points ride
   along; optionally the warped mask itself is given as SAM's mask prompt.
3. **Gate.** SAM's answer is kept only near the carried mask (within ``gate`` times the box diagonal), so
   a leak onto the background or a neighbour cannot feed the next box and grow frame after frame.
4. **Quality check.** When SAM's predicted IoU falls below ``iou_threshold``, or its mask agrees with the
   carried one less than ``min_consistency`` (IoU), the frame is re-prompted from the warped mask alone —
   its box, its most interior point (distance-transform peak) and its shape as mask prompt — asking for
   SAM's three candidate masks and keeping the one that best agrees with the warped mask. If no candidate
   passes both checks either, the warped mask itself is kept (``source="fallback"``), for at most
   ``max_fallbacks`` frames in a row: then SAM's most confident candidate is taken again, so a carried
   mask that drifted (or a subject that left) does not linger as a ghost. An empty warped mask, or an empty
   answer at that point, means the subject is gone: the matte stays empty (``source="lost"``) until the
   next keyframe takes over.

Every frame's result is a pure function of the keyframe prompts and the frames between the keyframe and
it, so rendering a range in one go or in farm chunks gives the same mattes; results are memoised so a
sequential render walks each chain once.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass

import cv2
import numpy as np

from ...core.errors import InputError
from .predictor import Prediction, SamSegmenter
from .prompts import Keyframe, read_mask_hint

log = logging.getLogger(__name__)

PROPAGATIONS = ("flow", "box", "none")


@dataclass(frozen=True, eq=False)
class FrameResult:
    """The SAM matte of one frame and how it was obtained.

    ``mask``: ``(H, W)`` float16 mask probability (sigmoid of SAM's logits; 0/1 for fallbacks of hard
    masks). ``iou``: SAM's predicted IoU (0 for lost frames, the last SAM score for fallbacks).
    ``source``: ``keyframe``, ``propagated``, ``reprompted``, ``fallback`` or ``lost``.
    ``streak``: consecutive fallback frames ending here.
    """

    frame: int
    keyframe: int
    mask: np.ndarray
    iou: float
    source: str
    points: np.ndarray
    labels: np.ndarray
    box: np.ndarray | None
    #: consecutive fallback frames up to and including this one
    streak: int = 0


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return (0.5 * (1.0 + np.tanh(0.5 * np.clip(x, -60.0, 60.0)))).astype(np.float32)


def mask_box(mask: np.ndarray, *, margin: float = 0.0) -> np.ndarray | None:
    """``[x0, y0, x1, y1]`` (pixels, x1/y1 exclusive) of ``mask >= 0.5`` grown by ``margin`` times its size
    (at least 2 pixels), clipped to the image; None when the mask is empty."""
    m = np.asarray(mask) >= 0.5
    rows = np.flatnonzero(m.any(axis=1))
    if rows.size == 0:
        return None
    cols = np.flatnonzero(m.any(axis=0))
    x0, x1, y0, y1 = float(cols[0]), float(cols[-1] + 1), float(rows[0]), float(rows[-1] + 1)
    mx = max(2.0, margin * (x1 - x0))
    my = max(2.0, margin * (y1 - y0))
    h, w = m.shape
    return np.array([max(0.0, x0 - mx), max(0.0, y0 - my), min(float(w), x1 + mx), min(float(h), y1 + my)])


def interior_point(mask: np.ndarray) -> np.ndarray | None:
    """``[x, y]`` of the pixel deepest inside ``mask >= 0.5`` (distance transform peak), or None."""
    m = (np.asarray(mask) >= 0.5).astype(np.uint8)
    if not m.any():
        return None
    d = cv2.distanceTransform(np.pad(m, 1), cv2.DIST_L2, 5)[1:-1, 1:-1]
    y, x = np.unravel_index(int(np.argmax(d)), d.shape)
    return np.array([float(x), float(y)])


def _bilinear(field: np.ndarray, points: np.ndarray) -> np.ndarray:
    """``field`` (``(H, W, k)``) sampled bilinearly at ``points`` (``(n, 2)`` x, y), edges clamped."""
    h, w = field.shape[:2]
    x = np.clip(points[:, 0], 0.0, w - 1.0)
    y = np.clip(points[:, 1], 0.0, h - 1.0)
    x0 = np.minimum(np.floor(x).astype(int), w - 2) if w > 1 else np.zeros(len(x), int)
    y0 = np.minimum(np.floor(y).astype(int), h - 2) if h > 1 else np.zeros(len(y), int)
    fx = (x - x0)[:, None] if w > 1 else np.zeros((len(x), 1))
    fy = (y - y0)[:, None] if h > 1 else np.zeros((len(y), 1))
    x1 = np.minimum(x0 + 1, w - 1)
    y1 = np.minimum(y0 + 1, h - 1)
    f = field.astype(np.float64)
    return ((1 - fy) * ((1 - fx) * f[y0, x0] + fx * f[y0, x1]) + fy * ((1 - fx) * f[y1, x0] + fx * f[y1, x1]))


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    inter = np.count_nonzero(a & b)
    union = np.count_nonzero(a | b)
    return 1.0 if union == 0 else inter / union


class SamTracker:
    """Keyframe prompts → SAM mattes on every frame (see the module docstring).

    Parameters
    ----------
    segmenter : SamSegmenter
    keyframes : dict of int to Keyframe
        Prompts in data-window pixel coordinates.
    propagation : {"flow", "box", "none"}
        ``none`` renders keyframes only (other frames raise :class:`InputError`).
    max_distance : int
        Farthest a frame may be from its keyframe.
    iou_threshold : float
        Predicted-IoU level under which a frame is re-prompted.
    box_margin : float
        Growth of carried boxes, as a fraction of their size.
    mask_prompt : bool
        Also give the warped previous mask as SAM's mask prompt when propagating.
    flow_preset, flow_scale : str, float
        DIS preset and the scale flow is estimated at.
    gate : float
        SAM's mask is kept only within this fraction of the carried box's diagonal from the carried mask
        (0: no gate), so a leak onto the background or a neighbour cannot grow frame after frame.
    min_consistency : float
        IoU with the carried mask under which a frame is re-prompted, like a low predicted IoU.
    max_fallbacks : int
        Consecutive frames the flow-carried mask may stand in for SAM; after that SAM's most confident
        candidate is taken even if it disagrees (an empty one means the subject is lost).
    colorspace : str
        OCIO colour space of the frames (SAM sees them sRGB-encoded, see
        :func:`composite.matte.refine.encode_for_matting`).
    source : str
        Name of the prompts (file) for messages.
    """

    def __init__(self, segmenter: SamSegmenter, keyframes: Mapping[int, Keyframe], *, propagation: str = "flow",
                 max_distance: int = 24, iou_threshold: float = 0.75, box_margin: float = 0.05,
                 mask_prompt: bool = False, flow_preset: str = "fast", flow_scale: float = 0.5,
                 gate: float = 0.1, min_consistency: float = 0.5, max_fallbacks: int = 2, colorspace: str = "ACEScg",
                 source: str = "prompts"):
        if propagation not in PROPAGATIONS:
            raise InputError(f"propagation must be one of {', '.join(PROPAGATIONS)}, got {propagation!r}")
        if not keyframes:
            raise InputError(f"{source}: no keyframes")
        self.segmenter = segmenter
        self.keyframes = dict(sorted(keyframes.items()))
        self.propagation = propagation
        self.max_distance = int(max_distance)
        self.iou_threshold = float(iou_threshold)
        self.box_margin = float(box_margin)
        self.mask_prompt = bool(mask_prompt)
        self.flow_preset = flow_preset
        self.flow_scale = float(flow_scale)
        self.gate = float(gate)
        self.min_consistency = float(min_consistency)
        self.max_fallbacks = int(max_fallbacks)
        self.colorspace = colorspace
        self.source = source
        self._memo: OrderedDict[tuple[int, int], FrameResult] = OrderedDict()
        self._memo_size = 2 * self.max_distance + 4

    # -- keyframe choice ------------------------------------------------------------------------------
    def keyframe_for(self, t: int, available: set[int] | range) -> int:
        """The keyframe frame ``t`` is propagated from (nearest, earlier on ties, within reach)."""
        if t in self.keyframes and t in available:
            return t
        if self.propagation == "none":
            raise InputError(f"{self.source}: frame {t} is not a keyframe and propagation is 'none'; keyframes: "
                             f"{_frames_text(self.keyframes)}")
        best = None
        for k in self.keyframes:
            d = abs(k - t)
            if d <= self.max_distance and k in available and (best is None or d < abs(best - t)):
                best = k
        if best is None:
            raise InputError(f"{self.source}: frame {t} is more than {self.max_distance} frames from every keyframe "
                             f"inside the plate's frame range (keyframes: {_frames_text(self.keyframes)}); add a "
                             f"keyframe near it or raise max_distance")
        return best

    # -- results --------------------------------------------------------------------------------------
    def result(self, t: int, frames: Mapping[int, np.ndarray]) -> FrameResult:
        """The matte of frame ``t``. ``frames``: frame → ``(H, W, 3|4)`` float32 scene-linear RGB(A) covering
        at least the frames between ``t`` and its keyframe."""
        k = self.keyframe_for(t, set(frames))
        hit = self._get(k, t)
        if hit is not None:
            return hit
        if t == k:
            return self._put(self._keyframe_result(k, frames[k]))
        step = 1 if t > k else -1
        # resume from the closest memoised frame of this chain
        f = t - step
        while f != k and self._get(k, f) is None:
            f -= step
        prev = self._get(k, f)
        if prev is None:
            prev = self._put(self._keyframe_result(k, frames[k]))
        while f != t:
            g = f + step
            if g not in frames or f not in frames:
                raise InputError(f"{self.source}: frame {g} is needed to carry keyframe {k} to frame {t} but is not "
                                 "available")
            prev = self._put(self._step(prev, frames[f], frames[g], g))
            f = g
        return prev

    def _get(self, k: int, t: int) -> FrameResult | None:
        r = self._memo.get((k, t))
        if r is not None:
            self._memo.move_to_end((k, t))
        return r

    def _put(self, r: FrameResult) -> FrameResult:
        self._memo[(r.keyframe, r.frame)] = r
        self._memo.move_to_end((r.keyframe, r.frame))
        while len(self._memo) > self._memo_size:
            self._memo.popitem(last=False)
        return r

    # -- SAM ------------------------------------------------------------------------------------------
    def _embed(self, pixels: np.ndarray):
        from ..refine import encode_for_matting

        return self.segmenter.embed(encode_for_matting(pixels[:, :, :3], encoding="srgb", colorspace=self.colorspace,
                                                       dtype=np.float32))

    def _keyframe_result(self, k: int, pixels: np.ndarray) -> FrameResult:
        kf = self.keyframes[k]
        h, w = pixels.shape[:2]
        kf.check_bounds(w, h, self.source)
        emb = self._embed(pixels)
        box = None if kf.box is None else np.clip(kf.box, 0.0, [w, h, w, h])
        mask_logits = None
        if kf.mask is not None:
            hint = read_mask_hint(kf, (h, w), source=self.source)
            if not hint.any():
                raise InputError(f"{self.source}: keyframe {k}: mask hint {kf.mask} is empty")
            mask_logits = self.segmenter.mask_to_low_res(emb, hint)
            if box is None and not len(kf.points):
                box = mask_box(hint)
        ambiguous = box is None and len(kf.points) == 1
        pred = self.segmenter.predict(emb, points=kf.points if len(kf.points) else None,
                                      labels=kf.labels if len(kf.points) else None, box=box,
                                      mask_logits=mask_logits, multimask=ambiguous)
        i = pred.best()
        return FrameResult(k, k, _sigmoid(pred.logits[i]).astype(np.float16), float(pred.iou[i]), "keyframe",
                           kf.points.copy(), kf.labels.copy(), box)

    def _step(self, prev: FrameResult, pf: np.ndarray, pg: np.ndarray, g: int) -> FrameResult:
        h, w = pg.shape[:2]
        prev_mask = prev.mask.astype(np.float32)
        points, labels = np.zeros((0, 2)), np.zeros((0,), np.int64)
        if prev.source == "lost":
            return FrameResult(g, prev.keyframe, np.zeros((h, w), np.float16), 0.0, "lost", points, labels, None)
        if self.propagation == "flow":
            from ...temporal.flow import estimate_flow_pair
            from ...temporal.warp import warp_matte

            pair = estimate_flow_pair(pf, pg, preset=self.flow_preset, scale=self.flow_scale)
            # outside the previous frame nothing is known: a subject leaving the frame does not smear along its edge
            warped = np.clip(warp_matte(prev_mask, pair.backward, border="constant"), 0.0, 1.0)
            if len(prev.points):
                xi = np.clip(np.rint(prev.points[:, 0]).astype(int), 0, w - 1)
                yi = np.clip(np.rint(prev.points[:, 1]).astype(int), 0, h - 1)
                moved = prev.points + _bilinear(pair.forward, prev.points)
                inside = (moved[:, 0] >= 0) & (moved[:, 0] < w) & (moved[:, 1] >= 0) & (moved[:, 1] < h)
                mx = np.clip(np.rint(moved[:, 0]).astype(int), 0, w - 1)
                my = np.clip(np.rint(moved[:, 1]).astype(int), 0, h - 1)
                on = warped[my, mx] >= 0.5
                # positive points must stay on the subject; negative ones ride along while the flow holds
                keep = inside & ~pair.occluded_forward[yi, xi] & (on | (prev.labels == 0))
                points, labels = moved[keep], prev.labels[keep]
        else:
            warped = prev_mask
        hard = warped >= 0.5
        box = mask_box(warped, margin=self.box_margin)
        if box is None:
            return FrameResult(g, prev.keyframe, np.zeros((h, w), np.float16), 0.0, "lost", points, labels, None)
        gate = self._gate(hard, box)
        emb = self._embed(pg)
        hint = self.segmenter.mask_to_low_res(emb, warped) if self.mask_prompt else None
        pred = self.segmenter.predict(emb, points=points if len(points) else None,
                                      labels=labels if len(points) else None, box=box, mask_logits=hint)
        prob = _gated(pred.logits[0], gate)
        iou = float(pred.iou[0])
        consistency = _iou(prob >= 0.5, hard)
        if iou >= self.iou_threshold and consistency >= self.min_consistency:
            return FrameResult(g, prev.keyframe, prob.astype(np.float16), iou, "propagated", points, labels, box)
        # re-prompt from the warped mask alone
        centre = interior_point(warped)
        re: Prediction = self.segmenter.predict(
            emb, points=None if centre is None else centre[None], labels=None if centre is None else np.ones(1, np.int64),
            box=box, mask_logits=self.segmenter.mask_to_low_res(emb, warped), multimask=True)
        cands = [_gated(re.logits[i], gate) for i in range(len(re.iou))]
        agreement = np.array([_iou(c >= 0.5, hard) for c in cands])
        i = int(np.argmax(agreement * re.iou))
        if prev.streak >= self.max_fallbacks:
            # the carried mask has not been confirmed for a while: trust SAM's best answer again
            i = int(np.argmax(re.iou))
            if not (cands[i] >= 0.5).any():
                return FrameResult(g, prev.keyframe, np.zeros((h, w), np.float16), float(re.iou[i]), "lost",
                                   np.zeros((0, 2)), np.zeros((0,), np.int64), None)
            return FrameResult(g, prev.keyframe, cands[i].astype(np.float16), float(re.iou[i]), "reprompted",
                               np.zeros((0, 2)) if centre is None else centre[None],
                               np.zeros((0,), np.int64) if centre is None else np.ones(1, np.int64), box)
        if float(re.iou[i]) >= self.iou_threshold and agreement[i] >= self.min_consistency:
            new_points = np.zeros((0, 2)) if centre is None else centre[None]
            new_labels = np.zeros((0,), np.int64) if centre is None else np.ones(1, np.int64)
            log.info("%s: frame %d re-prompted (IoU %.2f -> %.2f, agreement with the carried mask %.2f -> %.2f)",
                     self.source, g, iou, float(re.iou[i]), consistency, agreement[i])
            return FrameResult(g, prev.keyframe, cands[i].astype(np.float16), float(re.iou[i]), "reprompted",
                               new_points, new_labels, box)
        log.info("%s: frame %d kept the flow-carried mask (SAM IoU %.2f, agreement %.2f)", self.source, g,
                 max(iou, float(re.iou[i])), max(consistency, float(agreement[i])))
        return FrameResult(g, prev.keyframe, warped.astype(np.float16), max(iou, float(re.iou[i])), "fallback",
                           points, labels, box, prev.streak + 1)

    def _gate(self, hard: np.ndarray, box: np.ndarray) -> np.ndarray | None:
        """Pixels within ``gate`` x (box diagonal) of the carried mask, or None when gating is off."""
        if self.gate <= 0:
            return None
        radius = max(4.0, self.gate * float(np.hypot(box[2] - box[0], box[3] - box[1])))
        dist = cv2.distanceTransform((~hard).astype(np.uint8), cv2.DIST_L2, 5)
        return dist <= radius


def _gated(logits: np.ndarray, gate: np.ndarray | None) -> np.ndarray:
    prob = _sigmoid(logits)
    if gate is not None:
        prob[~gate] = 0.0
    return prob


def _frames_text(keyframes: Mapping[int, Keyframe]) -> str:
    ks = list(keyframes)
    return ", ".join(map(str, ks[:12])) + (" ..." if len(ks) > 12 else "")
