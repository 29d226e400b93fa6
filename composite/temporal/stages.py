"""Temporal pipeline stages: optical flow, matte smoothing, deflicker, stabilisation, applying a track.

Temporal stages read a bounded window of frames around ``t`` (their ``radius`` parameter; the pipeline
clamps it to the source's frame range), never the whole history, so a shot rendered in one process
or as farm chunks gives bit-identical pixels. Within its window a stage only uses the frames of the
same shot as ``t``: the window stops at a scene cut (:mod:`composite.temporal.cuts`; ``cut_threshold``
0 disables detection) and at a frame whose size differs from frame t's. A window of one frame (a
one-frame sequence, a frame between two cuts) passes the frame through unchanged (stabilisation:
identity transform).
"""

from __future__ import annotations

import hashlib
import logging
import threading
from pathlib import Path

import numpy as np

from ..core.coverage import COVERAGE_LAYER, coverage, reassociate, with_coverage
from ..core.errors import InputError, RecipeError, StateError
from ..core.image import Image
from ..core.merge import as_rgba, to_window
from ..core.state import AlphaState
from ..graph.params import Param
from ..graph.registry import register
from ..graph.stage import ANY_ALPHA, PREMULTIPLIED_OR_OPAQUE, Input, Stage
from .cuts import CUT_THRESHOLD, shot_frames
from .deflicker import MODES, apply_gains, estimate_flicker_gains
from .flow import FLOW_PRESETS, estimate_flow, flow_occlusion
from .matte_smooth import smooth_matte_temporal
from .smooth import SMOOTHING_METHODS
from .track import MODELS, Track, TrackingError, stabilize_matrix
from .warp import WARP_FILTERS, warp_to

log = logging.getLogger(__name__)

_CUT = Param(float, CUT_THRESHOLD, range=(0.0, 10.0),
             doc="scene-cut threshold (composite.temporal.cuts.cut_score); windows stop at cuts; 0 disables")


def _same_shot(frames: dict[int, Image], t: int, cut_threshold: float, who: str) -> dict[int, Image]:
    """Frames of the window in t's shot, conformed to frame t's data window."""
    ref = frames[t]
    size = (ref.display_window.width, ref.display_window.height)
    usable: dict[int, Image] = {}
    for k, img in frames.items():
        if (img.display_window.width, img.display_window.height) != size:
            log.warning("%s: frame %d is %dx%d but frame %d is %dx%d; the window stops there (treated as a cut)",
                        who, k, img.display_window.width, img.display_window.height, t, *size)
            continue
        usable[k] = img if img.data_window == ref.data_window else to_window(img, ref.data_window)
    # Keep only the run of consecutive frames around t (a size change also ends the window).
    run = {t: usable[t]}
    for step in (-1, 1):
        k = t + step
        while k in usable:
            run[k] = usable[k]
            k += step
    pixels = {k: v.pixels for k, v in run.items()}
    keep = shot_frames(pixels, t, threshold=cut_threshold if cut_threshold > 0 else None)
    return {k: run[k] for k in keep}


def _who(stage: Stage) -> str:
    return f"{stage.node_name} ({stage.type_name})"


class _FileDigest:
    """sha256 of a file, cached per (path, size, mtime)."""

    _cache: dict[tuple[str, int, int], str] = {}
    _lock = threading.Lock()

    @classmethod
    def of(cls, path: str) -> str:
        p = Path(path)
        try:
            st = p.stat()
        except OSError:
            return "missing"
        key = (str(p.resolve()), st.st_size, st.st_mtime_ns)
        with cls._lock:
            hit = cls._cache.get(key)
        if hit is None:
            hit = hashlib.sha256(p.read_bytes()).hexdigest()
            with cls._lock:
                cls._cache[key] = hit
        return hit


# -- optical flow ------------------------------------------------------------------------------------

@register
class OpticalFlow(Stage):
    """Dense optical flow to the previous and next frames, as layers of the image.

    The output is the input image with three layers added (pixels, x right, y down):
    ``forward`` (``u``, ``v``): displacement to frame t+1; ``backward`` (``u``, ``v``): to frame t-1;
    ``occlusion`` (``forward``, ``backward``): 1 where the forward/backward check fails (occluded, leaving
    the frame). At the ends of the range, and across a cut, the vectors are 0 and the occlusion is 1.
    """

    version = 1
    # The window is fixed (previous and next frame): ``window()`` is overridden, the name is descriptive.
    inputs = {"image": Input("the plate (scene-linear colour or a matte)", alpha=ANY_ALPHA, window="fixed: 1")}
    params = {
        "method": Param(str, "dis", choices=("dis", "learned"), doc="DIS (OpenCV) or a learned model"),
        "preset": Param(str, "medium", choices=FLOW_PRESETS, doc="DIS quality preset"),
        "scale": Param(float, 1.0, range=(0.05, 1.0), doc="estimate at this fraction of the resolution"),
        "encoding": Param(str, "log", choices=("log", "linear"),
                          doc="guide encoding: log luminance (colour) or linear (mattes)"),
        "model": Param(str, None, optional=True, path=True, doc="model card (.json) of a learned flow model"),
        "checkpoint": Param(str, None, optional=True, path=True,
                            doc="checkpoint file or folder ($COMPOSITE_MODELS when null)"),
        "alpha1": Param(float, 0.01, range=(0.0, 1.0), doc="consistency check: relative tolerance"),
        "alpha2": Param(float, 0.5, range=(0.0, 100.0), doc="consistency check: absolute tolerance (px²)"),
        "cut_threshold": _CUT,
    }

    def __init__(self, **params):
        super().__init__(**params)
        self._model = None

    def check_params(self):
        if self.p.method == "learned" and not self.p.model:
            raise RecipeError("method 'learned' needs a model card in 'model'", key="params.model")

    def window(self, name):
        return (1, 1)

    def _flow_model(self):
        if self.p.method != "learned":
            return None
        if self._model is None:
            from .learned_flow import load_flow_model

            self._model = load_flow_model(self.p.model, self.p.checkpoint)
        return self._model

    def fingerprint_extra(self) -> str:
        if self.p.method != "learned":
            return ""
        return self._flow_model().sha256 or ""

    def process(self, t, image):
        shot = _same_shot(image, t, self.p.cut_threshold, _who(self))
        cur = shot[t]
        h, w = cur.pixels.shape[:2]
        model = self._flow_model()
        kw = {"preset": self.p.preset, "scale": self.p.scale, "encoding": self.p.encoding, "model": model}
        out = cur
        occ = np.ones((h, w, 2), np.float32)
        for name, k, col in (("forward", t + 1, 0), ("backward", t - 1, 1)):
            flow = np.zeros((h, w, 2), np.float32)
            if k in shot:
                flow = estimate_flow(cur.pixels, shot[k].pixels, **kw)
                back = estimate_flow(shot[k].pixels, cur.pixels, **kw)
                occ[..., col] = flow_occlusion(flow, back, alpha1=self.p.alpha1, alpha2=self.p.alpha2)
            out = out.with_layer(name, np.ascontiguousarray(flow), ("u", "v"))
        return out.with_layer("occlusion", occ, ("forward", "backward"))


# -- matte smoothing ---------------------------------------------------------------------------------

@register
class TemporalMatteSmooth(Stage):
    """Flow-guided temporal filtering of a matte over ±radius frames (calms edge boiling).

    ``matte``: a one-channel matte (``A``) or a premultiplied RGBA element (colour and alpha are filtered
    together). ``plate`` (optional): the picture the matte was pulled from; flow comes from it. See
    :mod:`composite.temporal.matte_smooth`. Radius 0 passes the matte through.
    """

    version = 2
    inputs = {
        "matte": Input("matte (A) or premultiplied RGBA element", alpha=PREMULTIPLIED_OR_OPAQUE, window="radius"),
        "plate": Input("the plate the matte comes from (guides the flow)", alpha=PREMULTIPLIED_OR_OPAQUE,
                       colorspace="working", optional=True, window="radius"),
    }
    params = {
        "radius": Param(int, 2, range=(0, 8), doc="frames either side"),
        "temporal_sigma": Param(float, 2.0, range=(0.1, 16.0), doc="Gaussian temporal weight, frames"),
        "alpha_tolerance": Param(float, 0.8, range=(0.01, 4.0), doc="matte difference where weight falls to 1/e"),
        "guide_tolerance": Param(float, 0.25, range=(0.01, 8.0), doc="plate difference (stops) for flow trust"),
        "edge_reach": Param(float, 6.0, range=(0.0, 64.0), doc="pixels the object's core flow reaches its edge"),
        "min_reliability": Param(float, 0.5, range=(0.0, 1.0), doc="neighbour unused where less of the "
                                 "nearby object has reliable flow"),
        "preset": Param(str, "medium", choices=FLOW_PRESETS),
        "scale": Param(float, 1.0, range=(0.05, 1.0)),
        "consistency": Param(bool, True, doc="forward/backward flow check (occlusions fall back to frame t)"),
        "picture_check": Param(bool, True, doc="with a plate: neighbours must predict the plate as the matte "
                               "moves (rejects sub-pixel misregistration of fine detail)"),
        "filter": Param(str, "auto", choices=("auto", "cubic", "bilinear", "nearest"),
                        doc="resampling along the flow (auto: cubic for a matte, bilinear for RGBA)"),
        "cut_threshold": _CUT,
    }

    def identity(self, t):
        return "matte" if self.p.radius == 0 else None

    def process(self, t, matte, plate=None):
        who = _who(self)
        cur = matte[t]
        if "A" in cur.channels:
            ach = cur.channels.index("A")
        elif len(cur.channels) == 1:
            ach = 0
        else:
            raise StateError(f"{who}: the matte input needs an A channel or a single channel, got {cur.channels}")
        guides = None
        if plate is None:
            shot = _same_shot(matte, t, self.p.cut_threshold, who)
        else:
            for k in matte:
                if k not in plate:
                    raise InputError(f"{who}: the plate has no frame {k} (the matte does); give both inputs the "
                                     "same frame range")
            if plate[t].channels[:3] != ("R", "G", "B"):
                raise StateError(f"{who}: the plate must start with R, G, B, got {plate[t].channels}")
            if (plate[t].display_window.width, plate[t].display_window.height) != \
                    (cur.display_window.width, cur.display_window.height):
                raise InputError(f"{who}: at frame {t} the plate is {plate[t].display_window.width}x"
                                 f"{plate[t].display_window.height} but the matte is {cur.display_window.width}x"
                                 f"{cur.display_window.height}; reformat one of them")
            # Cuts are found on the plate (a picture), frames of another size left out of both.
            plate_shot = _same_shot(plate, t, self.p.cut_threshold, who)
            matte_shot = _same_shot(matte, t, 0.0, who)
            keys = sorted(set(plate_shot) & set(matte_shot))
            run = [k for k in keys if all(j in keys for j in range(min(k, t), max(k, t) + 1))]
            shot = {k: matte_shot[k] for k in run}
            guides = {k: (plate_shot[k] if plate_shot[k].data_window == cur.data_window
                          else to_window(plate_shot[k], cur.data_window)).pixels for k in run}
        cur = shot[t]
        if len(shot) == 1:
            return cur
        # the ai_coverage layer is associated with alpha like colour: filter it as one more plane
        with_cov = COVERAGE_LAYER in cur.layers and len(cur.channels) > 1
        planes = {k: (np.concatenate([v.pixels, coverage(v)[..., None]], axis=2) if with_cov else v.pixels)
                  for k, v in shot.items()}
        out = smooth_matte_temporal(planes, t, guides=guides,
                                    temporal_sigma=self.p.temporal_sigma, alpha_tolerance=self.p.alpha_tolerance,
                                    guide_tolerance=self.p.guide_tolerance, edge_reach=self.p.edge_reach,
                                    min_reliability=self.p.min_reliability, preset=self.p.preset,
                                    scale=self.p.scale, consistency=self.p.consistency,
                                    picture_check=self.p.picture_check, filter=self.p.filter,
                                    alpha_channel=ach)
        if with_cov:
            return with_coverage(cur.with_pixels(np.ascontiguousarray(out[..., :-1], np.float32)), out[..., -1])
        if COVERAGE_LAYER in cur.layers:  # a one-plane matte: keep the generated fraction with the new alpha
            return reassociate(cur.with_pixels(np.ascontiguousarray(out, np.float32)), cur)
        return cur.with_pixels(np.ascontiguousarray(out, np.float32))


# -- deflicker ---------------------------------------------------------------------------------------

@register
class Deflicker(Stage):
    """Remove brightness and colour flicker, globally or per tile, keeping real changes.

    Fits a robust long-window trend of each tile's brightness (``radius`` frames either side, one shot)
    and removes only frame t's residual from it; level shifts above ``preserve_changes`` stops (a light
    turning on) and ramps (``order`` 1) are kept. See :mod:`composite.temporal.deflicker`.
    """

    version = 1
    inputs = {"image": Input("scene-linear colour, R, G, B first", colorspace="working", window="radius")}
    params = {
        "radius": Param(int, 12, range=(1, 48), doc="frames either side for the trend"),
        "grid": Param(list, [1, 1], item=int, length=2, range=(1, 64), doc="tiles: columns, rows ([1, 1]: global)"),
        "mode": Param(str, "rgb", choices=MODES, doc="per channel (colour flicker too) or luminance only"),
        "order": Param(int, 1, range=(0, 1), doc="trend: robust level (0) or robust line (1, keeps ramps)"),
        "preserve_changes": Param(float, 0.4, range=(0.0, 10.0), optional=True,
                                  doc="stops; larger level shifts are real changes (null: never split)"),
        "strength": Param(float, 1.0, range=(0.0, 1.0), doc="fraction of the correction applied"),
        "motion_compensate": Param(bool, True, doc="align neighbours with optical flow before measuring"),
        "analysis_size": Param(int, 320, range=(32, 4096), doc="long side of the analysis proxies, px"),
        "preset": Param(str, "fast", choices=FLOW_PRESETS, doc="flow preset for motion compensation"),
        "cut_threshold": _CUT,
    }

    def identity(self, t):
        return "image" if self.p.strength == 0.0 else None

    def process(self, t, image):
        cur = image[t]
        if cur.channels[:3] != ("R", "G", "B"):
            raise StateError(f"{_who(self)}: expects R, G, B channels first, got {cur.channels}")
        shot = _same_shot(image, t, self.p.cut_threshold, _who(self))
        if len(shot) == 1:
            return cur
        gains = estimate_flicker_gains({k: v.pixels for k, v in shot.items()}, t, grid=tuple(self.p.grid),
                                       mode=self.p.mode, order=self.p.order, preserve_changes=self.p.preserve_changes,
                                       motion_compensate=self.p.motion_compensate,
                                       analysis_size=self.p.analysis_size, preset=self.p.preset)
        out = cur.with_pixels(apply_gains(cur.pixels, gains, strength=self.p.strength))
        return out.with_metadata(**{"composite:deflicker_gain_stops": [round(float(v), 6) for v in
                                                                       gains.mean(axis=(0, 1))]})


# -- stabilise / tracks --------------------------------------------------------------------------------

def _as_rgba_or_matte(image: Image, who: str) -> Image:
    if image.alpha is AlphaState.STRAIGHT:
        raise StateError(f"{who}: expects premultiplied or opaque images, got straight; premultiply first")
    if image.channels[:3] == ("R", "G", "B") and image.alpha is AlphaState.OPAQUE:
        return as_rgba(image, who=who)
    return image


def _warp_image(image: Image, matrix: np.ndarray, filter: str, who: str) -> Image:
    """Warp an image (and layers) by a 3x3 matrix in display-window pixels; outside is transparent."""
    img = _as_rgba_or_matte(image, who)
    dw = img.display_window
    src = to_window(img, dw)
    h, w = src.height, src.width
    ox, oy = dw.xmin, dw.ymin
    shift = np.array([[1, 0, -ox], [0, 1, -oy], [0, 0, 1]], np.float64)
    local = shift @ matrix @ np.linalg.inv(shift)
    pixels = warp_to((h, w), src.pixels, local, filter=filter)
    layers = {n: type(lay)(warp_to((h, w), lay.pixels, local, filter=filter), lay.channels)
              for n, lay in src.layers.items()}
    return src.replace(pixels=np.ascontiguousarray(pixels, np.float32), layers=layers)


@register
class Stabilize(Stage):
    """Remove camera shake: smooth the camera path over ±radius frames and move frame t onto it.

    For each frame k of the window the 2D motion from frame t to frame k is tracked (features, LK,
    RANSAC); the trajectories of the frame's corners are smoothed (Savitzky–Golay, Kalman or a plain
    average) and frame t is warped to the smoothed position. Intended moves slower than the smoother
    are kept. Uncovered borders are transparent (alpha 0). Tracking failures: ``on_failure`` "error"
    stops with the frame numbers, "skip" leaves the failing neighbour out.
    """

    version = 1
    inputs = {"image": Input("the plate", alpha=PREMULTIPLIED_OR_OPAQUE, window="radius")}
    params = {
        "radius": Param(int, 8, range=(0, 48), doc="frames either side"),
        "model": Param(str, "similarity", choices=MODELS, doc="camera motion model"),
        "method": Param(str, "savgol", choices=SMOOTHING_METHODS, doc="path smoother"),
        "order": Param(int, 2, range=(0, 5), doc="Savitzky–Golay polynomial order"),
        "measurement_sigma": Param(float, 1.0, range=(1e-3, 1e4), doc="Kalman: tracking noise, px"),
        "acceleration_sigma": Param(float, 0.05, range=(0.0, 1e4), doc="Kalman: path acceleration, px/frame²"),
        "max_points": Param(int, 400, range=(10, 10000)),
        "min_inliers": Param(int, 10, range=(4, 10000)),
        "on_failure": Param(str, "error", choices=("error", "skip")),
        "filter": Param(str, "bilinear", choices=tuple(WARP_FILTERS)),
        "cut_threshold": _CUT,
    }

    def identity(self, t):
        return "image" if self.p.radius == 0 else None

    def process(self, t, image):
        who = _who(self)
        shot = _same_shot(image, t, self.p.cut_threshold, who)
        if len(shot) == 1:
            return _warp_image(shot[t], np.eye(3), self.p.filter, who)
        try:
            m, used = stabilize_matrix({k: v.pixels for k, v in shot.items()}, t, model=self.p.model,
                                       method=self.p.method, order=self.p.order,
                                       measurement_sigma=self.p.measurement_sigma,
                                       acceleration_sigma=self.p.acceleration_sigma, max_points=self.p.max_points,
                                       min_inliers=self.p.min_inliers, on_failure=self.p.on_failure)
        except TrackingError as exc:
            raise TrackingError(f"{who} at frame {t}: {exc}; set on_failure: skip to leave such frames out") from None
        out = _warp_image(shot[t], m, self.p.filter, who)
        return out.with_metadata(**{"composite:stabilize_matrix": np.round(m, 9).tolist(),
                                    "composite:stabilize_frames": used})


@register
class ApplyTrack(Stage):
    """Move an image with a tracked camera (or planar) motion read from a track file.

    ``track``: a ``composite.track/1`` JSON file (:func:`composite.temporal.track.track_sequence`,
    ``composite track``). The image is assumed aligned with the plate at ``reference`` (the track's own
    reference frame when null) and is warped by the motion from the reference to frame t — a generated
    background then moves with the plate's camera. ``invert`` applies the inverse motion instead, which
    stabilises the plate itself onto the reference frame. ``smoothing`` smooths the track over ±radius
    frames first (only frames of the track file are read, so chunked renders agree).
    """

    version = 1
    inputs = {"image": Input("the layer to move (or the plate to stabilise)", alpha=PREMULTIPLIED_OR_OPAQUE)}
    params = {
        "track": Param(str, "", path=True, doc="track file (.json)"),
        "reference": Param(int, None, optional=True, doc="frame the image is aligned with (null: track's)"),
        "invert": Param(bool, False, doc="apply the inverse motion (stabilise onto the reference)"),
        "smoothing": Param(str, "none", choices=("none",) + SMOOTHING_METHODS),
        "radius": Param(int, 8, range=(1, 240), doc="smoothing window, frames either side"),
        "order": Param(int, 2, range=(0, 5)),
        "filter": Param(str, "bilinear", choices=tuple(WARP_FILTERS)),
    }

    def __init__(self, **params):
        super().__init__(**params)
        self._loaded: tuple[str, Track] | None = None

    def check_params(self):
        if not self.p.track:
            raise RecipeError("a track file is required", key="params.track")

    def fingerprint_extra(self) -> str:
        return _FileDigest.of(self.p.track)

    def _track(self) -> Track:
        digest = _FileDigest.of(self.p.track)
        if self._loaded is None or self._loaded[0] != digest:
            self._loaded = (digest, Track.load(self.p.track))
        return self._loaded[1]

    def matrix(self, t: int) -> np.ndarray:
        """3x3 motion applied at frame t (reference pixels → frame t pixels, or its inverse)."""
        tr = self._track()
        if t not in tr.frames:
            raise InputError(f"{_who(self)}: track {self.p.track} covers frames {tr.frames[0]}-{tr.frames[-1]}, "
                             f"not {t}; track the whole range first")
        ref = self.p.reference if self.p.reference is not None else tr.reference
        if ref not in tr.frames:
            raise InputError(f"{_who(self)}: reference frame {ref} is not in track {self.p.track} "
                             f"({tr.frames[0]}-{tr.frames[-1]})")
        if self.p.smoothing != "none":
            m = self._smoothed(tr, t) @ np.linalg.inv(self._smoothed(tr, ref))
        else:
            m = tr.matrix(t, ref)
        m = m / m[2, 2]
        return np.linalg.inv(m) if self.p.invert else m

    def _smoothed(self, tr: Track, frame: int) -> np.ndarray:
        """The track's transform at ``frame`` smoothed over the frames within ±radius of it."""
        i = tr.frames.index(frame)
        lo, hi = max(0, i - self.p.radius), min(len(tr.frames), i + self.p.radius + 1)
        sub = Track(tr.frames[lo:hi], tr.matrices[lo:hi], tr.width, tr.height, tr.model, tr.reference, tr.region,
                    tr.inliers[lo:hi])
        return sub.smoothed(method=self.p.smoothing, radius=self.p.radius, order=self.p.order).matrices[i - lo]

    def process(self, t, image):
        tr = self._track()
        if (image.display_window.width, image.display_window.height) != (tr.width, tr.height):
            log.warning("%s: image is %dx%d but the track was made on %dx%d frames; its pixels are used as they are",
                        _who(self), image.display_window.width, image.display_window.height, tr.width, tr.height)
        out = _warp_image(image, self.matrix(t), self.p.filter, _who(self))
        return out


__all__ = ["ApplyTrack", "Deflicker", "OpticalFlow", "Stabilize", "TemporalMatteSmooth"]
