"""Pipeline stages for matte refinement and SAM roto.

* :class:`TrimapFromMask` — coarse matte → trimap (``("A",)`` raw image with levels 0, 0.5, 1).
* :class:`RefineAlpha` — plate + trimap → alpha (closed-form, large-kernel or KNN matting).
* :class:`EstimateForeground` — plate + alpha → premultiplied RGBA whose edges carry the subject's colour.
* :class:`GuidedFilterRefine` — plate + coarse matte → edge-following matte, fast (video).
* :class:`SamRoto` — plate + prompts file → SAM matte, propagated from keyframes.

Mattes travel as single-channel ``("A",)`` raw images (see :mod:`composite.matte.stages`). A trimap input
may also be an RGB(A) image (a trimap file read with ``colorspace: Raw``); it is reduced to one plane with
the rules of :func:`composite.matte.trimap.normalize_trimap`.
"""

from __future__ import annotations

import threading

import numpy as np

from ..core.errors import InputError, RecipeError, StateError
from ..core.image import RGBA, Image
from ..core.state import AlphaState
from ..graph.params import Param
from ..graph.registry import register
from ..graph.stage import ANY_ALPHA, PREMULTIPLIED_OR_OPAQUE, Input, Stage
from . import guided, refine, trimap
from .stages import matte_image, matte_of

_SIZE_POLICIES = ("error", "resize")


def _plate_rgb(image: Image, who: str) -> np.ndarray:
    if image.channels[:3] != ("R", "G", "B"):
        raise StateError(f"{who}: expects an RGB plate, got channels {image.channels}")
    return image.pixels[..., :3]


def _trimap_plane(image: Image, who: str) -> np.ndarray:
    """Normalised (H, W) trimap from an ("A",) matte, a one-channel image or an RGB(A) image."""
    if image.channels == ("A",) or len(image.channels) == 1:
        plane = image.pixels[..., 0]
    elif image.channels[:3] == ("R", "G", "B"):
        plane = image.pixels[..., :4] if len(image.channels) >= 4 else image.pixels[..., :3]
    elif "A" in image.channels:
        plane = image.channel("A")
    else:
        raise StateError(f"{who}: expects a trimap (an A channel, one channel, or grey RGB), got {image.channels}")
    return trimap.normalize_trimap(plane)


def _matched(plane: np.ndarray, image: Image, policy: str, what: str, who: str) -> np.ndarray:
    try:
        return trimap.check_trimap_size(plane, image.pixels.shape, on_mismatch=policy, what=what)
    except InputError as exc:
        raise InputError(f"{who}: {exc}") from None


@register
class TrimapFromMask(Stage):
    """Trimap from a coarse matte: an unknown band ``erode`` pixels inside and ``dilate`` pixels outside
    its edge (``mode: mask``), or, for soft mattes, unknown wherever alpha is neither near 0 nor near 1,
    grown by ``band`` pixels (``mode: alpha``). Empty mattes give an all-background trimap, full ones
    all-foreground."""

    inputs = {"matte": Input("coarse matte (A channel or single channel)", alpha=ANY_ALPHA)}
    outputs = ("trimap",)
    params = {
        "mode": Param(str, "mask", choices=("mask", "alpha")),
        "erode": Param(int, 8, range=(0, 512), doc="unknown band inside the edge, pixels (mode mask)"),
        "dilate": Param(int, 8, range=(0, 512), doc="unknown band outside the edge, pixels (mode mask)"),
        "threshold": Param(float, 0.5, range=(0.0, 1.0), doc="level binarising the matte (mode mask)"),
        "band": Param(int, 2, range=(0, 512), doc="growth of the soft region, pixels (mode alpha)"),
    }

    def process(self, t, matte):
        m = matte_of(matte, self.node_name)
        if self.p.mode == "mask":
            tri = trimap.trimap_from_mask(m, erode=self.p.erode, dilate=self.p.dilate, threshold=self.p.threshold)
        else:
            tri = trimap.trimap_from_alpha(m, band=self.p.band)
        return matte_image(tri, like=matte)


@register
class RefineAlpha(Stage):
    """Alpha from the plate and a trimap by matting (pymatting): ``closed_form`` (reference quality),
    ``closed_form_fast`` (solved at ``scale`` resolution and guided-filtered back up: 3-4x faster),
    ``large_kernel`` or ``knn``. The solver sees the plate in ``encoding`` (sRGB curve by default; see
    :mod:`composite.matte.refine`). ``size_mismatch: resize`` scales a trimap of another size with
    nearest-neighbour sampling instead of stopping."""

    inputs = {
        "image": Input("the plate: RGB in the working space", alpha=PREMULTIPLIED_OR_OPAQUE),
        "trimap": Input("trimap: A channel, one channel or grey RGB(A) (0 bg, 0.5 unknown, 1 fg)", alpha=ANY_ALPHA),
    }
    outputs = ("matte",)
    params = {
        "method": Param(str, "closed_form", choices=refine.METHODS),
        "encoding": Param(str, "srgb", choices=refine.ENCODINGS),
        "epsilon": Param(float, 1e-7, range=(1e-12, 1.0), doc="Laplacian regularisation (closed_form, large_kernel)"),
        "radius": Param(int, 1, range=(1, 50), doc="window radius (closed_form; large_kernel uses 10 x this)"),
        "neighbors": Param(list, [20, 10], item=int, length=2, range=(1, 200), doc="KNN neighbours (knn)"),
        "scale": Param(float, 0.5, range=(0.05, 1.0), doc="solve resolution (closed_form_fast)"),
        "max_iterations": Param(int, 10000, range=(1, 1000000)),
        "tolerance": Param(float, 1e-7, range=(1e-15, 1.0), doc="relative residual of the solve"),
        "size_mismatch": Param(str, "error", choices=_SIZE_POLICIES),
    }

    def process(self, t, image, trimap):
        who = self.node_name
        rgb = _plate_rgb(image, who)
        tri = _matched(_trimap_plane(trimap, who), image, self.p.size_mismatch, "trimap", who)
        opts = {"encoding": self.p.encoding, "colorspace": image.colorspace, "max_iterations": self.p.max_iterations,
                "tolerance": self.p.tolerance}
        if self.p.method == "closed_form":
            opts.update(epsilon=self.p.epsilon, radius=self.p.radius)
        elif self.p.method == "closed_form_fast":
            opts.update(epsilon=self.p.epsilon, radius=self.p.radius, scale=self.p.scale)
        elif self.p.method == "large_kernel":
            opts.update(epsilon=self.p.epsilon, radius=10 * self.p.radius)
        else:
            opts.update(neighbors=tuple(self.p.neighbors))
        alpha = refine.estimate_alpha(rgb, tri, method=self.p.method, **opts)
        return matte_image(alpha, like=image)


@register
class EstimateForeground(Stage):
    """Premultiplied RGBA from the plate and an alpha, with the foreground colour re-estimated under the
    semi-transparent edge (pymatting's multilevel method, in scene-linear light): hair and motion blur carry
    the subject's colour instead of the screen's or the old background's. Where alpha is 1 the plate is
    kept exactly; where it is 0 the result is 0."""

    inputs = {
        "image": Input("the plate: RGB in the working space", alpha=PREMULTIPLIED_OR_OPAQUE),
        "matte": Input("alpha (A channel or single channel)", alpha=ANY_ALPHA),
    }
    params = {
        "regularization": Param(float, 1e-5, range=(0.0, 1.0), doc="smoothness of the colour estimate"),
        "gradient_weight": Param(float, 1.0, range=(0.0, 100.0), doc="extra smoothness along alpha edges"),
        "size_mismatch": Param(str, "error", choices=_SIZE_POLICIES),
    }

    def process(self, t, image, matte):
        who = self.node_name
        rgb = _plate_rgb(image, who)
        a = _matched(matte_of(matte, who), image, self.p.size_mismatch, "matte", who)
        px = refine.foreground_premultiplied(rgb, a, regularization=self.p.regularization,
                                             gradient_weight=self.p.gradient_weight)
        return image.replace(pixels=px, channels=RGBA, alpha=AlphaState.PREMULTIPLIED)


@register
class GuidedFilterRefine(Stage):
    """Guided-filter refinement of a coarse matte by the plate (He et al.): edges snap to the plate's edges
    at the cost of a few box filters; ``subsample`` > 1 fits the filter on a smaller image (fast guided
    filter) for 2K/4K video. An optional trimap pins its known pixels."""

    inputs = {
        "image": Input("the plate: RGB in the working space", alpha=PREMULTIPLIED_OR_OPAQUE),
        "matte": Input("coarse matte (A channel or single channel)", alpha=ANY_ALPHA),
        "trimap": Input("optional trimap whose known pixels are kept", alpha=ANY_ALPHA, optional=True),
    }
    outputs = ("matte",)
    params = {
        "radius": Param(int, 8, range=(1, 512), doc="window radius, pixels"),
        "eps": Param(float, 1e-3, range=(1e-8, 10.0), doc="regularisation (larger: smoother)"),
        "subsample": Param(int, 1, range=(1, 16)),
        "encoding": Param(str, "srgb", choices=refine.ENCODINGS),
        "size_mismatch": Param(str, "error", choices=_SIZE_POLICIES),
    }

    def process(self, t, image, matte, trimap=None):
        who = self.node_name
        rgb = _plate_rgb(image, who)
        m = _matched(matte_of(matte, who), image, self.p.size_mismatch, "matte", who)
        tri = None
        if trimap is not None:
            tri = _matched(_trimap_plane(trimap, who), image, self.p.size_mismatch, "trimap", who)
        out = guided.refine_alpha_guided(rgb, m, radius=self.p.radius, eps=self.p.eps, subsample=self.p.subsample,
                                         encoding=self.p.encoding, colorspace=image.colorspace, trimap=tri)
        return matte_image(out, like=image)


@register
class SamRoto(Stage):
    """Segment Anything roto: prompts (points, boxes, mask hints per keyframe, from a YAML/JSON file; see
    :mod:`composite.matte.sam.prompts`) → a matte on every frame, carried between keyframes by optical flow
    (``propagation: flow``) or box tracking (``box``) and re-prompted where SAM's predicted IoU drops below
    ``iou_threshold`` or its mask stops agreeing with the carried one (``min_consistency``); SAM's answer is
    kept only near the carried mask (``gate``) (:mod:`composite.matte.sam.propagate`).

    The checkpoint comes from the model card ``model`` (``sam_vit_b``, ``sam_vit_l``, ``sam_vit_h`` or a
    card file) and is found at ``checkpoint`` or in ``$COMPOSITE_MODELS``; its sha256 is checked and is part
    of the fingerprint, as are the prompts file and its mask hints. The plate is read over a window of
    ``max_distance`` frames each side (the farthest a frame may be from its keyframe): keep keyframes at most
    ``2 * max_distance`` apart. ``output: probability`` gives SAM's soft mask probability, ``mask`` the
    binary mask.
    """

    version = 1
    inputs = {"image": Input("the plate: RGB in the working space", alpha=PREMULTIPLIED_OR_OPAQUE,
                             window="max_distance")}
    outputs = ("matte",)
    params = {
        "prompts": Param(str, "", path=True, doc="prompts file (YAML or JSON)"),
        "model": Param(str, "sam_vit_b", doc="model card name (sam_vit_b, sam_vit_l, sam_vit_h) or card file"),
        "checkpoint": Param(str, "", path=True, doc="checkpoint file or folder (empty: $COMPOSITE_MODELS)"),
        "device": Param(str, "auto", doc="auto, cpu, cuda or cuda:N"),
        "precision": Param(str, "auto", choices=("auto", "float32", "float16"),
                           doc="auto: float16 on CUDA, float32 on the CPU"),
        "propagation": Param(str, "flow", choices=("flow", "box", "none")),
        "max_distance": Param(int, 24, range=(0, 500), doc="farthest frame from its keyframe"),
        "iou_threshold": Param(float, 0.75, range=(0.0, 1.0), doc="re-prompt below this predicted IoU"),
        "box_margin": Param(float, 0.05, range=(0.0, 2.0), doc="growth of carried boxes (fraction)"),
        "mask_prompt": Param(bool, False, doc="give the carried mask to SAM as a mask prompt too"),
        "gate": Param(float, 0.1, range=(0.0, 10.0),
                      doc="keep SAM's mask within this fraction of the box diagonal from the carried mask (0: off)"),
        "min_consistency": Param(float, 0.5, range=(0.0, 1.0),
                                 doc="re-prompt when SAM's mask overlaps the carried one less than this (IoU)"),
        "max_fallbacks": Param(int, 2, range=(0, 1000),
                               doc="frames in a row the flow-carried mask may stand in for SAM"),
        "flow_preset": Param(str, "fast", choices=("ultrafast", "fast", "medium", "fine")),
        "flow_scale": Param(float, 0.5, range=(0.05, 1.0), doc="resolution flow is estimated at"),
        "output": Param(str, "probability", choices=("probability", "mask")),
    }

    def check_params(self):
        if not self.p.prompts:
            raise RecipeError("a prompts file is required (e.g. --set sam.prompts=shots/sh010/prompts.yaml)",
                              key="params.prompts")
        dev = self.p.device
        if not (dev in ("auto", "cpu", "cuda") or (dev.startswith("cuda:") and dev[5:].isdigit())):
            raise RecipeError(f"device must be auto, cpu, cuda or cuda:N, got {dev!r}", key="params.device")
        if self.p.precision == "float16" and dev == "cpu":
            raise RecipeError("float16 runs on CUDA only; use precision auto or float32 on the CPU",
                              key="params.precision")
        self._lock = threading.Lock()
        self._tracker = None
        self._tracker_key = None

    # -- fingerprints -----------------------------------------------------------------------------------
    def _card(self):
        from ..models import get_card

        return get_card(self.p.model)

    def fingerprint_extra(self) -> str:
        from ..models import checkpoint_path
        from .sam.prompts import prompts_digest

        card = self._card()
        _, digest = checkpoint_path(card, self.p.checkpoint or None)
        return f"sam:{card.name}:{digest}|prompts:{prompts_digest(self.p.prompts)}"

    # -- processing ----------------------------------------------------------------------------------------
    def _tracker_for(self, image: Image):
        from .sam import SamSegmenter, SamTracker, load_prompts, load_sam
        from .sam.prompts import Keyframe, prompts_digest

        offset = (image.display_window.xmin - image.data_window.xmin, image.display_window.ymin - image.data_window.ymin)
        key = (prompts_digest(self.p.prompts), offset, image.colorspace)
        if self._tracker is not None and self._tracker_key == key:
            return self._tracker
        keyframes = load_prompts(self.p.prompts)
        if offset != (0, 0):
            shift = np.array(offset, np.float64)
            keyframes = {f: Keyframe(k.frame, k.points + shift, k.labels, None if k.box is None else
                                     k.box + np.tile(shift, 2), k.mask) for f, k in keyframes.items()}
        sam = load_sam(self._card(), self.p.checkpoint or None, device=self.p.device, precision=self.p.precision)
        seg = SamSegmenter(sam, cache_size=4)
        self._tracker = SamTracker(seg, keyframes, propagation=self.p.propagation, max_distance=self.p.max_distance,
                                   iou_threshold=self.p.iou_threshold, box_margin=self.p.box_margin,
                                   mask_prompt=self.p.mask_prompt, flow_preset=self.p.flow_preset,
                                   gate=self.p.gate, min_consistency=self.p.min_consistency,
                                   max_fallbacks=self.p.max_fallbacks,
                                   flow_scale=self.p.flow_scale, colorspace=image.colorspace,
                                   source=str(self.p.prompts))
        self._tracker_key = key
        return self._tracker

    def process(self, t, image):
        who = self.node_name
        frames = {}
        ref = image[t] if t in image else image[min(image, key=lambda f: abs(f - t))]
        for f, img in image.items():
            if img.pixels.shape[:2] != ref.pixels.shape[:2]:
                raise InputError(f"{who}: frame {f} is {img.width}x{img.height} but frame {t} is "
                                 f"{ref.width}x{ref.height}; SAM propagation needs one resolution")
            _plate_rgb(img, who)
            frames[f] = img.pixels  # R, G, B first; flow and SAM read those planes
        with self._lock:
            res = self._tracker_for(ref).result(t, frames)
        m = res.mask.astype(np.float32)
        if self.p.output == "mask":
            m = (m >= 0.5).astype(np.float32)
        out = matte_image(m, like=ref)
        return out.with_metadata(**{"composite:sam_iou": round(res.iou, 6), "composite:sam_source": res.source,
                                    "composite:sam_keyframe": res.keyframe})
