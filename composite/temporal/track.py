"""2D point tracking, planar (homography/affine) tracking, camera tracks, and their smoothing.

Coordinates are pixels with the origin at the centre of the top-left pixel, x to the right and y
downwards (OpenCV's convention). A transform is a 3x3 matrix ``M`` mapping pixel ``p`` of one frame to
``M p`` (homogeneous) in another.

Building blocks
    :func:`detect_features` (``cv2.goodFeaturesToTrack``) and :func:`track_features`
    (``cv2.calcOpticalFlowPyrLK`` forwards, then backwards: a point is kept only when it comes back to
    within ``fb_threshold`` pixels of where it started), both on an 8-bit log-luminance guide so that
    flicker does not disturb them.
Pairwise
    :func:`estimate_transform` fits a ``translation``, ``similarity``, ``affine`` or ``homography``
    between two frames with RANSAC (``cv2.estimateAffinePartial2D``, ``cv2.estimateAffine2D``,
    ``cv2.findHomography``).
Sequences
    :func:`track_points` follows points through a sequence; :func:`track_sequence` tracks the camera (or a
    planar region) through a whole shot into a :class:`Track` — frame-to-frame against a keyframe that
    is renewed when too few points survive — which is saved as a JSON file and read by stages frame by
    frame. A track is a pre-pass over a shot, like a tracker's baked data in other compositing tools;
    the stages that read it stay chunk-independent.
Smoothing
    :func:`smooth_transforms` smooths a sequence of transforms through the trajectories of the frame
    (or region) corners they move, with :mod:`composite.temporal.smooth` (Savitzky–Golay, Kalman, average)
    over a bounded window, then fits the transform back to the smoothed corners.

Failures (a textureless or black frame, too few points surviving) raise :class:`TrackingError`
(an :class:`~composite.core.errors.InputError`) naming the frames and what to try.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from ..core.errors import InputError
from ..io.atomic import write_text_atomic
from ._common import ArrayCache, as_planes
from .flow import flow_guide
from .smooth import SMOOTHING_METHODS, smooth_window

#: Transform models, fewest degrees of freedom first.
MODELS = ("translation", "similarity", "affine", "homography")
#: Schema of track files.
TRACK_SCHEMA = "composite.track/1"

_LK_CRITERIA = (cv2.TERM_CRITERIA_COUNT | cv2.TERM_CRITERIA_EPS, 30, 0.01)
_FEATURES = ArrayCache(capacity=64)


class TrackingError(InputError):
    """Tracking failed: no features (a flat, black or textureless frame), or too few survived."""


def _guide(pixels: np.ndarray) -> np.ndarray:
    if isinstance(pixels, np.ndarray) and pixels.dtype == np.uint8 and pixels.ndim == 2:
        return pixels
    as_planes(pixels, "tracking frame")
    return flow_guide(pixels, encoding="log")


def _check_model(model: str) -> str:
    if model not in MODELS:
        raise InputError(f"unknown transform model {model!r}; allowed: {', '.join(MODELS)}")
    return model


def detect_features(pixels: np.ndarray, *, max_points: int = 400, quality: float = 0.01, min_distance: float = 8.0,
                    mask: np.ndarray | None = None) -> np.ndarray:
    """Corners worth tracking (Shi–Tomasi, ``cv2.goodFeaturesToTrack``).

    Parameters
    ----------
    pixels : np.ndarray
        ``(H, W, C)`` float32 scene-linear frame (or an 8-bit guide).
    mask : np.ndarray or None
        ``(H, W)`` bool or uint8: where to look.

    Returns
    -------
    np.ndarray
        ``(N, 2)`` float32 ``(x, y)`` positions; ``N`` may be 0 on a flat frame.
    """
    g = _guide(pixels)

    def make():
        # goodFeaturesToTrack's quality level is relative to the strongest corner, so a flat frame would
        # still return its quantisation noise: refuse frames without contrast first.
        if float(g.std()) < 0.5:
            return np.zeros((0, 2), np.float32)
        m = None if mask is None else (np.asarray(mask) > 0).astype(np.uint8)
        pts = cv2.goodFeaturesToTrack(g, maxCorners=int(max_points), qualityLevel=float(quality),
                                      minDistance=float(min_distance), mask=m, blockSize=7)
        if pts is None:
            return np.zeros((0, 2), np.float32)
        return pts.reshape(-1, 2).astype(np.float32)

    if mask is not None:
        return make()
    # The same frame is often the reference of several pairs (a stabilisation window): detect once.
    return _FEATURES.get((g,), (int(max_points), float(quality), float(min_distance)), make).copy()


def track_features(a: np.ndarray, b: np.ndarray, points: np.ndarray, *, window: int = 21, levels: int = 3,
                   fb_threshold: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Follow ``points`` from frame ``a`` to frame ``b`` (pyramidal Lucas–Kanade, forward-backward checked).

    Returns ``(positions in b, ok)``: ``(N, 2)`` float32 and ``(N,)`` bool. A point is ok when LK
    converged both ways and the backward track returns within ``fb_threshold`` pixels.
    """
    pts = np.asarray(points, np.float32).reshape(-1, 1, 2)
    if len(pts) == 0:
        return np.zeros((0, 2), np.float32), np.zeros(0, bool)
    ga, gb = _guide(a), _guide(b)
    if ga.shape != gb.shape:
        raise InputError(f"tracking needs frames of one size, got {ga.shape[1]}x{ga.shape[0]} and "
                         f"{gb.shape[1]}x{gb.shape[0]}")
    lk = {"winSize": (int(window), int(window)), "maxLevel": int(levels), "criteria": _LK_CRITERIA}
    fwd, st1, _ = cv2.calcOpticalFlowPyrLK(ga, gb, pts, None, **lk)
    back, st2, _ = cv2.calcOpticalFlowPyrLK(gb, ga, fwd, None, **lk)
    err = np.linalg.norm((back - pts).reshape(-1, 2), axis=1)
    h, w = ga.shape
    fb = fwd.reshape(-1, 2)
    inside = (fb[:, 0] >= 0) & (fb[:, 0] <= w - 1) & (fb[:, 1] >= 0) & (fb[:, 1] <= h - 1)
    ok = (st1.ravel() == 1) & (st2.ravel() == 1) & (err < fb_threshold) & inside & np.isfinite(fb).all(1)
    return fb.astype(np.float32), ok


@dataclass(frozen=True)
class TransformEstimate:
    """A transform between two frames: ``matrix`` (3x3, a → b), RANSAC ``inliers`` among ``tracked`` points,
    and the ``rms`` reprojection error of the inliers in pixels."""

    matrix: np.ndarray
    inliers: int
    tracked: int
    rms: float


def fit_transform(src: np.ndarray, dst: np.ndarray, *, model: str = "homography", ransac_threshold: float = 1.5,
                  robust: bool = True) -> tuple[np.ndarray | None, np.ndarray]:
    """Fit a 3x3 ``model`` transform taking ``src`` points (``(N, 2)``) to ``dst``; RANSAC when ``robust``.

    Returns ``(matrix or None, inlier mask (N,) bool)``.
    """
    _check_model(model)
    src = np.asarray(src, np.float64).reshape(-1, 2)
    dst = np.asarray(dst, np.float64).reshape(-1, 2)
    n = len(src)
    need = {"translation": 1, "similarity": 2, "affine": 3, "homography": 4}[model]
    if n < need:
        return None, np.zeros(n, bool)
    if model == "translation":
        d = dst - src
        shift = np.median(d, axis=0)
        inl = np.linalg.norm(d - shift, axis=1) <= ransac_threshold if robust else np.ones(n, bool)
        if inl.any():
            shift = d[inl].mean(axis=0)
        m = np.eye(3)
        m[:2, 2] = shift
        return m, inl
    method = cv2.RANSAC if robust else 0
    if model == "homography":
        h, inl = cv2.findHomography(src, dst, method, ransac_threshold)
        if h is None:
            return None, np.zeros(n, bool)
        return h / h[2, 2], inl.ravel().astype(bool)
    fn = cv2.estimateAffinePartial2D if model == "similarity" else cv2.estimateAffine2D
    if robust:
        a, inl = fn(src, dst, method=cv2.RANSAC, ransacReprojThreshold=ransac_threshold, maxIters=2000,
                    confidence=0.995, refineIters=10)
    else:
        a, inl = fn(src, dst, method=cv2.LMEDS)
        inl = np.ones((n, 1), np.uint8) if a is not None else None
    if a is None:
        return None, np.zeros(n, bool)
    return np.vstack([a, [0.0, 0.0, 1.0]]), inl.ravel().astype(bool)


def estimate_transform(a: np.ndarray, b: np.ndarray, *, model: str = "homography", max_points: int = 400,
                       min_inliers: int = 10, ransac_threshold: float = 1.5, mask: np.ndarray | None = None,
                       fb_threshold: float = 1.0, labels: tuple[str, str] = ("a", "b")) -> TransformEstimate:
    """The ``model`` transform taking pixels of frame ``a`` to frame ``b`` (features + LK + RANSAC).

    Parameters
    ----------
    a, b : np.ndarray
        ``(H, W, C)`` float32 scene-linear frames of one size.
    model : {"translation", "similarity", "affine", "homography"}
    mask : np.ndarray or None
        ``(H, W)`` region of ``a`` to track (a planar surface); the whole frame by default.
    labels : tuple of str
        Names of the frames in error messages (``("frame 1001", "frame 1003")``).

    Raises
    ------
    TrackingError
        When ``a`` has no features or fewer than ``min_inliers`` points agree on a transform.
    """
    _check_model(model)
    pa, pb = as_planes(a, f"tracking {labels[0]}"), as_planes(b, f"tracking {labels[1]}")
    if pa.shape[:2] != pb.shape[:2]:
        raise InputError(f"tracking needs frames of one size: {labels[0]} is {pa.shape[1]}x{pa.shape[0]}, "
                         f"{labels[1]} is {pb.shape[1]}x{pb.shape[0]}; reformat first")
    pts = detect_features(a, max_points=max_points, mask=mask)
    if len(pts) < min_inliers:
        raise TrackingError(f"{labels[0]}: only {len(pts)} trackable features (flat, black or textureless "
                            f"image; {min_inliers} needed); track a textured region or lower min_inliers")
    moved, ok = track_features(a, b, pts, fb_threshold=fb_threshold)
    if ok.sum() < min_inliers:
        raise TrackingError(f"{labels[0]} -> {labels[1]}: only {int(ok.sum())} of {len(pts)} features could be "
                            f"followed ({min_inliers} needed); the frames may differ too much (a cut, a flash, "
                            "very fast motion)")
    m, inl = fit_transform(pts[ok], moved[ok], model=model, ransac_threshold=ransac_threshold)
    if m is None or inl.sum() < min_inliers:
        raise TrackingError(f"{labels[0]} -> {labels[1]}: only {int(inl.sum())} features agree on a {model} "
                            f"({min_inliers} needed); the motion may not be a single {model} (parallax, several "
                            "moving objects): track a planar region or use a simpler model")
    src, dst = pts[ok][inl].astype(np.float64), moved[ok][inl].astype(np.float64)
    proj = apply_matrix(m, src)
    rms = float(np.sqrt(np.mean(np.sum((proj - dst) ** 2, axis=1))))
    return TransformEstimate(m, int(inl.sum()), int(ok.sum()), rms)


def apply_matrix(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    """``(N, 2)`` points mapped by a 3x3 matrix (homogeneous division included)."""
    p = np.asarray(points, np.float64).reshape(-1, 2)
    h = np.hstack([p, np.ones((len(p), 1))]) @ np.asarray(matrix, np.float64).T
    return h[:, :2] / h[:, 2:3]


def track_points(frames: Sequence[np.ndarray], points: np.ndarray | None = None, *, max_points: int = 200,
                 fb_threshold: float = 1.0, window: int = 21) -> np.ndarray:
    """Follow points through a sequence, frame to frame.

    Parameters
    ----------
    frames : sequence of np.ndarray
        ``(H, W, C)`` float32 frames of one size.
    points : np.ndarray or None
        ``(N, 2)`` start positions in the first frame; detected with :func:`detect_features` when None.

    Returns
    -------
    np.ndarray
        ``(T, N, 2)`` float64 positions; NaN from the frame a point was lost (failed the forward-backward
        check or left the frame).
    """
    if len(frames) == 0:
        raise InputError("track_points: no frames")
    if points is None:
        points = detect_features(frames[0], max_points=max_points)
        if len(points) == 0:
            raise TrackingError("track_points: the first frame has no trackable features (flat, black or "
                                "textureless); pass points explicitly or start on a textured frame")
    pts = np.asarray(points, np.float32).reshape(-1, 2)
    out = np.full((len(frames), len(pts), 2), np.nan)
    out[0] = pts
    alive = np.ones(len(pts), bool)
    cur = pts.copy()
    for i in range(1, len(frames)):
        if frames[i].shape[:2] != frames[i - 1].shape[:2]:
            raise InputError(f"track_points: frame {i} is {frames[i].shape[1]}x{frames[i].shape[0]}, frame {i - 1} "
                             f"is {frames[i - 1].shape[1]}x{frames[i - 1].shape[0]}; frames must share one size")
        if not alive.any():
            break
        idx = np.flatnonzero(alive)
        moved, ok = track_features(frames[i - 1], frames[i], cur[idx], fb_threshold=fb_threshold, window=window)
        alive[idx[~ok]] = False
        cur[idx[ok]] = moved[ok]
        out[i, idx[ok]] = moved[ok]
    return out


# -- transforms as corner trajectories -----------------------------------------------------------

def frame_corners(width: int, height: int) -> np.ndarray:
    """``(4, 2)`` pixel positions of the outer corners of a ``width x height`` frame."""
    return np.array([[-0.5, -0.5], [width - 0.5, -0.5], [width - 0.5, height - 0.5], [-0.5, height - 0.5]])


def matrix_from_corners(src: np.ndarray, dst: np.ndarray, *, model: str = "homography") -> np.ndarray:
    """The ``model`` transform best taking corner points ``src`` to ``dst`` (least squares, no RANSAC)."""
    _check_model(model)
    src = np.asarray(src, np.float64).reshape(-1, 2)
    dst = np.asarray(dst, np.float64).reshape(-1, 2)
    if model == "homography" and len(src) == 4:
        m = cv2.getPerspectiveTransform(src.astype(np.float32), dst.astype(np.float32)).astype(np.float64)
        return m / m[2, 2]
    if model == "translation":
        m = np.eye(3)
        m[:2, 2] = (dst - src).mean(axis=0)
        return m
    n = len(src)
    if model == "similarity":
        # [x', y'] = [[a, -b], [b, a]] [x, y] + [tx, ty]
        a_mat = np.zeros((2 * n, 4))
        a_mat[0::2] = np.column_stack([src[:, 0], -src[:, 1], np.ones(n), np.zeros(n)])
        a_mat[1::2] = np.column_stack([src[:, 1], src[:, 0], np.zeros(n), np.ones(n)])
        sol = np.linalg.lstsq(a_mat, dst.reshape(-1), rcond=None)[0]
        a, b, tx, ty = sol
        return np.array([[a, -b, tx], [b, a, ty], [0.0, 0.0, 1.0]])
    if model == "affine":
        a_mat = np.column_stack([src, np.ones(n)])
        sol = np.linalg.lstsq(a_mat, dst, rcond=None)[0]
        return np.vstack([sol.T, [0.0, 0.0, 1.0]])
    m, _ = cv2.findHomography(src, dst, 0)
    return m / m[2, 2]


def smooth_transforms(matrices: np.ndarray, *, width: int, height: int, model: str = "homography",
                      method: str = "savgol", radius: int = 8, order: int = 2, measurement_sigma: float = 1.0,
                      acceleration_sigma: float = 0.1, corners: np.ndarray | None = None) -> np.ndarray:
    """Smooth a sequence of transforms over a bounded window.

    Parameters
    ----------
    matrices : np.ndarray
        ``(T, 3, 3)`` transforms (one per frame; NaN matrices are missing frames).
    width, height : int
        Frame size: the frame's corners are the points whose trajectories are smoothed.
    method : {"savgol", "kalman", "average"}
        See :mod:`composite.temporal.smooth`; each frame uses frames ``t - radius .. t + radius`` only.
    corners : np.ndarray or None
        ``(K, 2)`` points to smooth instead of the frame corners (the corners of a tracked region).

    Returns
    -------
    np.ndarray
        ``(T, 3, 3)`` smoothed transforms of the same ``model``.
    """
    m = np.asarray(matrices, np.float64)
    if m.ndim != 3 or m.shape[1:] != (3, 3):
        raise InputError(f"smooth_transforms: expected (T, 3, 3) matrices, got {m.shape}")
    if method not in SMOOTHING_METHODS:
        raise InputError(f"unknown smoothing method {method!r}; allowed: {', '.join(SMOOTHING_METHODS)}")
    base = frame_corners(width, height) if corners is None else np.asarray(corners, np.float64).reshape(-1, 2)
    traj = np.stack([apply_matrix(x, base).ravel() if np.isfinite(x).all() else np.full(base.size, np.nan)
                     for x in m])
    out = np.empty_like(m)
    t_count = len(m)
    for t in range(t_count):
        lo, hi = max(0, t - radius), min(t_count, t + radius + 1)
        sm = smooth_window(traj[lo:hi], np.arange(lo, hi) - t, method=method, order=order,
                           measurement_sigma=measurement_sigma, acceleration_sigma=acceleration_sigma)
        out[t] = matrix_from_corners(base, sm.reshape(-1, 2), model=model) if np.isfinite(sm).all() else np.nan
    return out


# -- camera / planar tracks over a shot ----------------------------------------------------------

@dataclass
class Track:
    """Transforms of a shot relative to its reference frame.

    ``matrices[i]`` maps pixels of the reference frame to ``frames[i]`` (the camera's, or a planar
    region's, 2D motion). ``inliers[i]`` is the number of points that supported it (0: held over a
    failure). Saved as JSON (:data:`TRACK_SCHEMA`).
    """

    frames: list[int]
    matrices: np.ndarray
    width: int
    height: int
    model: str = "homography"
    reference: int | None = None
    region: tuple[float, float, float, float] | None = None
    inliers: list[int] = field(default_factory=list)

    def __post_init__(self):
        self.frames = [int(f) for f in self.frames]
        self.matrices = np.asarray(self.matrices, np.float64).reshape(-1, 3, 3)
        if len(self.frames) != len(self.matrices):
            raise InputError(f"track: {len(self.frames)} frames but {len(self.matrices)} matrices")
        if len(set(self.frames)) != len(self.frames) or self.frames != sorted(self.frames):
            raise InputError("track: frames must be unique and increasing")
        if self.reference is None and self.frames:
            self.reference = self.frames[0]
        if not self.inliers:
            self.inliers = [0] * len(self.frames)
        self._index = {f: i for i, f in enumerate(self.frames)}

    def matrix(self, t: int, reference: int | None = None) -> np.ndarray:
        """3x3 matrix taking pixels of frame ``reference`` (the track's by default) to frame ``t``."""
        ref = self.reference if reference is None else int(reference)
        for f in (t, ref):
            if f not in self._index:
                raise InputError(f"track has no frame {f}; it covers {self.frames[0]}-{self.frames[-1]}"
                                 if self.frames else "track is empty")
        mt = self.matrices[self._index[t]]
        mr = self.matrices[self._index[ref]]
        out = mt @ np.linalg.inv(mr)
        return out / out[2, 2]

    def smoothed(self, *, method: str = "savgol", radius: int = 8, order: int = 2, measurement_sigma: float = 1.0,
                 acceleration_sigma: float = 0.1) -> Track:
        """The track with its transforms smoothed over a bounded window (frames must be contiguous)."""
        if self.frames and self.frames[-1] - self.frames[0] + 1 != len(self.frames):
            raise InputError("track.smoothed: the track has gaps in its frames; smoothing needs contiguous frames")
        corners = None
        if self.region is not None:
            x, y, w, h = self.region
            corners = np.array([[x, y], [x + w, y], [x + w, y + h], [x, y + h]], np.float64)
        m = smooth_transforms(self.matrices, width=self.width, height=self.height, model=self.model, method=method,
                              radius=radius, order=order, measurement_sigma=measurement_sigma,
                              acceleration_sigma=acceleration_sigma, corners=corners)
        return Track(list(self.frames), m, self.width, self.height, self.model, self.reference, self.region,
                     list(self.inliers))

    def to_dict(self) -> dict[str, Any]:
        return {"schema": TRACK_SCHEMA, "model": self.model, "width": self.width, "height": self.height,
                "reference": self.reference, "region": None if self.region is None else list(self.region),
                "frames": [{"frame": f, "matrix": m.tolist(), "inliers": int(n)}
                           for f, m, n in zip(self.frames, self.matrices, self.inliers)]}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, source: str = "<track>") -> Track:
        if not isinstance(data, Mapping) or data.get("schema") != TRACK_SCHEMA:
            got = data.get("schema") if isinstance(data, Mapping) else type(data).__name__
            raise InputError(f"{source}: not a track file (schema {got!r}, expected {TRACK_SCHEMA!r})")
        try:
            rows = list(data["frames"])
            return cls([r["frame"] for r in rows], np.array([r["matrix"] for r in rows], np.float64),
                       int(data["width"]), int(data["height"]), _check_model(str(data.get("model", "homography"))),
                       data.get("reference"), None if data.get("region") is None else tuple(data["region"]),
                       [int(r.get("inliers", 0)) for r in rows])
        except (KeyError, TypeError, ValueError) as exc:
            raise InputError(f"{source}: malformed track file ({type(exc).__name__}: {exc})") from None

    def save(self, path: str | os.PathLike) -> Path:
        """Write the track as JSON, atomically (temporary file, then rename)."""
        return write_text_atomic(path, json.dumps(self.to_dict(), indent=1))

    @classmethod
    def load(cls, path: str | os.PathLike) -> Track:
        path = Path(path)
        if not path.is_file():
            raise InputError(f"track file {str(path)!r} does not exist; create it with "
                             "composite.temporal.track.track_sequence(...).save(path) or `composite track`")
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise InputError(f"track file {str(path)!r} cannot be read: {exc}") from None
        return cls.from_dict(data, source=str(path))


def _region_mask(shape: tuple[int, int], quad: np.ndarray | None) -> np.ndarray | None:
    if quad is None:
        return None
    mask = np.zeros(shape, np.uint8)
    cv2.fillConvexPoly(mask, np.round(quad).astype(np.int32), 1)
    return mask


def track_sequence(frames: Iterable[tuple[int, np.ndarray]] | Mapping[int, np.ndarray], *,
                   model: str = "homography", region: tuple[float, float, float, float] | None = None,
                   max_points: int = 400, min_inliers: int = 10, rekey_fraction: float = 0.5,
                   on_failure: str = "error",
                   exclude: Mapping[int, np.ndarray] | Callable[[int], np.ndarray | None] | None = None) -> Track:
    """Track the camera (or a planar ``region``) through a shot, frame to frame against keyframes.

    Parameters
    ----------
    frames : iterable of (frame number, np.ndarray) or mapping
        Consecutive ``(H, W, C)`` float32 scene-linear frames of one shot, in order. Frames are read once,
        so a generator over a long plate keeps only two in memory.
    region : (x, y, w, h) or None
        Rectangle in the first frame's pixels holding the planar surface to track; whole frame when None.
    rekey_fraction : float
        When fewer than this fraction of a keyframe's points survive, the current frame becomes the new
        keyframe (features are detected again inside the region's tracked outline).
    on_failure : {"error", "hold"}
        A frame that cannot be tracked raises :class:`TrackingError` naming it, or holds the previous
        transform (with ``inliers = 0``) and re-keys on the next frame.
    exclude : mapping or callable, optional
        Per frame, an ``(H, W)`` array that is non-zero where nothing should be tracked: things that
        move on their own, such as the actor in front of a green screen (its keyed alpha, grown a
        little). No features are detected there, and points that move into it are dropped.

    Returns
    -------
    Track
        Matrices mapping the first frame's pixels to each frame's.
    """
    _check_model(model)
    if on_failure not in ("error", "hold"):
        raise InputError(f"on_failure must be 'error' or 'hold', got {on_failure!r}")
    items = frames.items() if isinstance(frames, Mapping) else frames
    out_frames: list[int] = []
    mats: list[np.ndarray] = []
    inliers: list[int] = []
    key_pts = cur_pts = alive = None
    key_m = np.eye(3)
    prev = None
    size = None
    base_quad = None
    for t, px in items:
        t = int(t)
        px = as_planes(px, f"tracking frame {t}")
        if size is None:
            size = px.shape[:2]
            if region is not None:
                x, y, w, h = region
                base_quad = np.array([[x, y], [x + w, y], [x + w, y + h], [x, y + h]], np.float64)
        elif px.shape[:2] != size:
            raise InputError(f"tracking frame {t} is {px.shape[1]}x{px.shape[0]} but the shot is "
                             f"{size[1]}x{size[0]}; frames of a track must share one size")
        excl = None
        if exclude is not None:
            e = exclude(t) if callable(exclude) else exclude.get(t)
            if e is not None:
                e = np.asarray(e)
                if e.shape[:2] != size:
                    raise InputError(f"tracking: the exclusion mask of frame {t} is {e.shape[1]}x{e.shape[0]}, "
                                     f"the frame is {size[1]}x{size[0]}")
                excl = (e.reshape(size[0], size[1], -1)[:, :, 0] > 0)
        if out_frames and t != out_frames[-1] + 1:
            raise InputError(f"tracking: frame {t} follows frame {out_frames[-1]}; frames must be consecutive")
        if prev is None:
            m_t, n_in = np.eye(3), 0
        else:
            m_t, n_in = None, 0
            if key_pts is not None and alive.any():
                idx = np.flatnonzero(alive)
                moved, ok = track_features(prev[1], px, cur_pts[idx])
                if excl is not None:
                    xi = np.clip(np.round(moved[:, 0]).astype(int), 0, size[1] - 1)
                    yi = np.clip(np.round(moved[:, 1]).astype(int), 0, size[0] - 1)
                    ok &= ~excl[yi, xi]
                alive[idx[~ok]] = False
                cur_pts[idx[ok]] = moved[ok]
                if alive.sum() >= min_inliers:
                    h_key, inl = fit_transform(key_pts[alive], cur_pts[alive], model=model)
                    if h_key is not None and inl.sum() >= min_inliers:
                        m_t, n_in = h_key @ key_m, int(inl.sum())
                        bad = np.flatnonzero(alive)[~inl]
                        alive[bad] = False
            if m_t is None:
                if on_failure == "error":
                    raise TrackingError(f"tracking lost at frame {t} (after frame {prev[0]}): fewer than "
                                        f"{min_inliers} points agree on a {model}; the frame may be flat, black, "
                                        "blurred or across a cut. Split the shot there, track a textured region, "
                                        "or pass on_failure='hold'")
                m_t, n_in = mats[-1], 0
                key_pts = None  # re-key on this frame
        out_frames.append(t)
        mats.append(m_t)
        inliers.append(n_in)
        need_key = key_pts is None or alive.sum() < max(min_inliers, rekey_fraction * len(key_pts))
        if need_key:
            quad = None if base_quad is None else apply_matrix(m_t, base_quad)
            mask = _region_mask(size, quad)
            if excl is not None:
                keep = (~excl).astype(np.uint8)
                mask = keep if mask is None else mask * keep
            pts = detect_features(px, max_points=max_points, mask=mask)
            if len(pts) < min_inliers:
                if on_failure == "error":
                    raise TrackingError(f"tracking frame {t}: only {len(pts)} trackable features (flat, black or "
                                        f"textureless{' region' if region else ''}; {min_inliers} needed); start "
                                        "the track on a textured frame or pass on_failure='hold'")
                key_pts = None
            else:
                key_pts, cur_pts, alive, key_m = pts.astype(np.float64), pts.copy(), np.ones(len(pts), bool), m_t
        prev = (t, px)
    if not out_frames:
        raise InputError("track_sequence: no frames")
    return Track(out_frames, np.array(mats), int(size[1]), int(size[0]), model, out_frames[0], region, inliers)


# -- windowed stabilisation ----------------------------------------------------------------------

def stabilize_matrix(frames: Mapping[int, np.ndarray], t: int, *, model: str = "similarity", method: str = "savgol",
                     order: int = 2, measurement_sigma: float = 1.0, acceleration_sigma: float = 0.1,
                     max_points: int = 400, min_inliers: int = 10, on_failure: str = "error") -> tuple[np.ndarray, int]:
    """The transform that moves frame ``t`` onto the smoothed camera path of its window.

    For each other frame ``k`` of the window, the motion ``M_k`` from frame t to frame k is estimated; the
    trajectories of frame t's corners under ``M_k`` are smoothed and evaluated at t, and the transform from
    the corners to their smoothed position is returned. Warping frame t by it removes shake (motion
    faster than the smoother keeps) while keeping the intended camera move.

    Parameters
    ----------
    frames : mapping of int to np.ndarray
        The window: frame number → ``(H, W, C)`` float32, one shot, one size (see
        :func:`composite.temporal.cuts.shot_frames`).
    on_failure : {"error", "skip"}
        A neighbour that cannot be tracked raises :class:`TrackingError` or is left out of the smoothing.

    Returns
    -------
    (np.ndarray, int)
        The 3x3 matrix (frame t pixels → stabilised pixels) and the number of frames it used.
    """
    if on_failure not in ("error", "skip"):
        raise InputError(f"on_failure must be 'error' or 'skip', got {on_failure!r}")
    ref = frames[t]
    h, w = ref.shape[:2]
    corners = frame_corners(w, h)
    offsets, traj = [], []
    for k in sorted(frames):
        if k == t:
            m = np.eye(3)
        else:
            try:
                m = estimate_transform(ref, frames[k], model=model, max_points=max_points, min_inliers=min_inliers,
                                       labels=(f"frame {t}", f"frame {k}")).matrix
            except TrackingError:
                if on_failure == "error":
                    raise
                continue
        offsets.append(k - t)
        traj.append(apply_matrix(m, corners).ravel())
    if len(offsets) == 1:
        return np.eye(3), 1
    sm = smooth_window(np.array(traj), np.array(offsets), method=method, order=order,
                       measurement_sigma=measurement_sigma, acceleration_sigma=acceleration_sigma)
    return matrix_from_corners(corners, sm.reshape(-1, 2), model=model), len(offsets)
