"""Camera-matched layers: move background and crowd layers with the plate's camera, with 2.5D parallax.

The plate's camera motion comes as 3x3 matrices mapping the pixels of a reference frame to frame t —
from composite's tracker (:func:`composite.temporal.track.track_sequence`, a ``composite.track/1`` file),
from given per-frame matrices (a JSON file: see :func:`load_camera_path`), or estimated per frame
between the reference frame and frame t (:func:`estimate_plate_motion`, chunk-independent).

A tracked matrix describes how a surface at one depth moves (the *reference depth*, e.g. the
background the tracker locked on). For a pinhole camera with intrinsics ``K`` (focal length ``f`` pixels,
principal point ``(cx, cy)``) looking at a plane facing it at depth ``d_ref``, the matrix is
``H = K (R + t e3ᵀ / d_ref) K⁻¹``: a rotation part that moves every depth alike and a translation part
inversely proportional to depth. :func:`decompose_plane_motion` splits ``H`` into ``R`` and
``t / d_ref``; :func:`layer_homography` rebuilds the motion of a layer at depth ``d`` with the
translation scaled by ``d_ref / d`` — full homography for rotation, proportionate parallax for
translation (a layer at infinity only rotates). A pure 2D track (no parallax) is ``parallax=False``.

A layer with a per-pixel ``depth`` layer (a crowd) is cut into depth slices (log-spaced), each moved with
its own matrix and merged far to near (:func:`apply_layer_motion`).

Limitation, inherent to a single tracked plane: a focal-length change (zoom) and a camera push along the
axis (dolly) look alike on that plane; the decomposition reads both as a dolly, so on a zoom shot layers
at other depths scale less than the plate. Use ``parallax=False`` for zooms.

Coordinates are display-window pixels, x right, y down, pixel centres at integers (OpenCV's convention).
Layers may carry overscan (a data window larger than the display window): the pixels outside the frame
are moved in, so camera moves do not reveal empty borders.

Example
-------
>>> import numpy as np
>>> from composite.extend.camera_match import layer_homography
>>> H = np.array([[1.0, 0.0, 12.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]])  # the plate moved 12 px right
>>> far = layer_homography(H, 40.0, ref_depth=10.0, focal_px=1000.0, cx=960.0, cy=540.0)
>>> round(float(far[0, 2]), 6)  # a layer 4 times farther moves 4 times less
3.0
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from ..core.errors import InputError
from ..core.image import RGBA, Image, Layer
from ..core.merge import as_rgba

__all__ = [
    "CameraPath", "apply_layer_motion", "decompose_plane_motion", "estimate_plate_motion", "intrinsics",
    "layer_homography", "load_camera_path", "motion_residual", "track_plate", "warp_layer",
]

#: Layers holding data that is carried, not mixed: warped with the nearest sample, replaced (not merged).
NEAREST_LAYERS = frozenset({"depth", "crowd_id"})


# -- camera paths --------------------------------------------------------------------------------------

@dataclass
class CameraPath:
    """Per-frame 3x3 matrices mapping the pixels of frame ``reference`` to each frame's pixels."""

    matrices: dict[int, np.ndarray]
    reference: int
    width: int | None = None
    height: int | None = None
    source: str = "<matrices>"

    def __post_init__(self):
        mats = {}
        for f, m in self.matrices.items():
            a = np.asarray(m, np.float64)
            if a.shape != (3, 3) or not np.isfinite(a).all() or abs(a[2, 2]) < 1e-12:
                raise InputError(f"{self.source}: the matrix of frame {f} is not a finite 3x3 homography")
            mats[int(f)] = a / a[2, 2]
        self.matrices = mats
        if not mats:
            raise InputError(f"{self.source}: no camera matrices")

    @property
    def frames(self) -> list[int]:
        return sorted(self.matrices)

    def matrix(self, t: int, reference: int | None = None) -> np.ndarray:
        """3x3 matrix taking pixels of ``reference`` (the path's by default) to frame ``t``."""
        ref = self.reference if reference is None else int(reference)
        for f in (int(t), ref):
            if f not in self.matrices:
                fr = self.frames
                raise InputError(f"{self.source}: no camera matrix for frame {f} (it covers {fr[0]}-{fr[-1]}); "
                                 "track or export the whole frame range")
        m = self.matrices[int(t)] @ np.linalg.inv(self.matrices[ref])
        return m / m[2, 2]


def load_camera_path(path: str | os.PathLike) -> CameraPath:
    """Read per-frame camera matrices from a JSON file.

    Accepted: a ``composite.track/1`` track file (:class:`composite.temporal.track.Track`), the
    ``truth.json`` of :mod:`composite.synth` footage (``frames: {"1001": {"camera": [[...]]}}``), or
    ``{"reference": 1001, "frames": {"1001": [[...], [...], [...]], ...}}`` (also a list of
    ``{"frame": n, "matrix": [[...]]}``). Matrices map reference-frame pixels to the frame's pixels.
    """
    p = Path(path)
    if not p.is_file():
        raise InputError(f"camera file {str(p)!r} does not exist; make one with `composite track` "
                         "(composite.temporal.track.track_sequence(...).save(path)) or export the matrices")
    try:
        data = json.loads(p.read_text())
    except (OSError, ValueError) as exc:
        raise InputError(f"camera file {str(p)!r} cannot be read as JSON: {exc}") from None
    if not isinstance(data, Mapping):
        raise InputError(f"{p}: a camera file must hold a JSON object")
    from ..temporal.track import TRACK_SCHEMA, Track

    if data.get("schema") == TRACK_SCHEMA:
        tr = Track.from_dict(data, source=str(p))
        return CameraPath({f: m for f, m in zip(tr.frames, tr.matrices)}, int(tr.reference), tr.width, tr.height,
                          str(p))
    frames = data.get("frames")
    mats: dict[int, Any] = {}
    try:
        if isinstance(frames, Mapping):
            for k, v in frames.items():
                mats[int(k)] = v["camera"] if isinstance(v, Mapping) else v
        elif isinstance(frames, list):
            for row in frames:
                mats[int(row["frame"])] = row.get("matrix", row.get("camera"))
        else:
            raise KeyError("frames")
    except (KeyError, TypeError, ValueError) as exc:
        raise InputError(f"{p}: not a camera file ({type(exc).__name__}: {exc}); expected a composite.track/1 "
                         "file, a composite.synth truth.json or {\"frames\": {frame: 3x3 matrix}}") from None
    params = data.get("params") if isinstance(data.get("params"), Mapping) else {}
    ref = data.get("reference", min(mats) if mats else 0)
    return CameraPath(mats, int(ref), params.get("width"), params.get("height"), str(p))


def track_plate(frames, *, model: str = "homography", exclude=None, max_points: int = 400, min_inliers: int = 10,
                on_failure: str = "error"):
    """Track the plate's camera through a shot (a pre-pass): :func:`composite.temporal.track.track_sequence`.

    ``frames``: consecutive ``(frame, (H, W, C) float32)`` pairs or a mapping; ``exclude``: per-frame masks
    of things moving on their own (the actor's matte). Returns a :class:`~composite.temporal.track.Track`
    (save it with ``.save(path)`` and give the path to the ``CameraMatch`` stage).
    """
    from ..temporal.track import track_sequence

    return track_sequence(frames, model=model, exclude=exclude, max_points=max_points, min_inliers=min_inliers,
                          on_failure=on_failure)


def estimate_plate_motion(reference: np.ndarray, frame: np.ndarray, *, model: str = "homography",
                          exclude: np.ndarray | None = None, max_points: int = 600, min_inliers: int = 12,
                          ransac_threshold: float = 1.5, labels: tuple[str, str] = ("reference", "frame")) -> np.ndarray:
    """The 3x3 motion from the ``reference`` plate frame to ``frame`` (features, LK, RANSAC).

    Estimated directly between the two frames (no accumulation over the frames between), so each frame
    is independent of the others — chunked renders agree — as long as the frames overlap enough.
    ``exclude``: ``(H, W)`` mask, non-zero where the reference frame has things moving on their own.
    Raises :class:`~composite.temporal.track.TrackingError` when too few features agree.
    """
    from ..temporal.track import estimate_transform

    mask = None
    if exclude is not None:
        ex = np.asarray(exclude)
        if ex.ndim == 3:
            ex = ex[..., 0]
        if ex.shape != reference.shape[:2]:
            raise InputError(f"the exclusion mask is {ex.shape[1]}x{ex.shape[0]} but the plate is "
                             f"{reference.shape[1]}x{reference.shape[0]}")
        mask = (ex <= 0).astype(np.uint8)
    est = estimate_transform(reference, frame, model=model, max_points=max_points, min_inliers=min_inliers,
                             ransac_threshold=ransac_threshold, mask=mask, labels=labels)
    return est.matrix / est.matrix[2, 2]


# -- parallax ------------------------------------------------------------------------------------------

def intrinsics(focal_px: float, cx: float, cy: float) -> np.ndarray:
    """The pinhole intrinsics matrix ``K``."""
    if not focal_px > 0:
        raise InputError(f"focal length must be positive (pixels), got {focal_px}")
    return np.array([[focal_px, 0.0, cx], [0.0, focal_px, cy], [0.0, 0.0, 1.0]])


def decompose_plane_motion(matrix: np.ndarray, *, focal_px: float, cx: float, cy: float) -> tuple[np.ndarray, np.ndarray]:
    """Split the motion of a fronto-parallel plane into rotation ``R`` and translation over depth ``t / d_ref``.

    Solves ``s K⁻¹ H K = R + t' e3ᵀ`` for a scale ``s``, a rotation ``R`` and ``t' = t / d_ref``: the first two
    columns of ``s K⁻¹ H K`` are those of ``R`` (orthonormalised by the polar decomposition, so small
    tracking noise does not break it), the third is ``R e3 + t'``.

    Returns
    -------
    (np.ndarray, np.ndarray)
        ``R`` (3x3 rotation) and ``t'`` (3,).
    """
    k = intrinsics(focal_px, cx, cy)
    h = np.asarray(matrix, np.float64)
    if h.shape != (3, 3) or not np.isfinite(h).all():
        raise InputError(f"expected a finite 3x3 matrix, got shape {h.shape}")
    g = np.linalg.inv(k) @ h @ k
    n0, n1 = np.linalg.norm(g[:, 0]), np.linalg.norm(g[:, 1])
    if n0 < 1e-12 or n1 < 1e-12:
        raise InputError("degenerate camera matrix (it collapses the image)")
    s = 2.0 / (n0 + n1)
    if np.linalg.det(g) < 0:
        raise InputError("the camera matrix mirrors the image; a camera cannot do that")
    cols = s * g[:, :2]
    u, _, vt = np.linalg.svd(cols, full_matrices=False)
    r12 = u @ vt
    r3 = np.cross(r12[:, 0], r12[:, 1])
    r = np.column_stack([r12, r3])
    tp = s * g[:, 2] - r3
    return r, tp


def layer_homography(matrix: np.ndarray, depth: float, *, ref_depth: float, focal_px: float, cx: float,
                     cy: float) -> np.ndarray:
    """The motion of a layer at ``depth`` given the plate motion ``matrix`` of a plane at ``ref_depth``.

    ``K (R + (ref_depth / depth) t' e3ᵀ) K⁻¹`` (see :func:`decompose_plane_motion`); ``depth = inf``
    gives the rotation alone, ``depth = ref_depth`` gives back ``matrix`` (up to the orthonormalisation
    of its rotation).
    """
    if not depth > 0:
        raise InputError(f"layer depth must be positive, got {depth}")
    if not ref_depth > 0:
        raise InputError(f"reference depth must be positive, got {ref_depth}")
    r, tp = decompose_plane_motion(matrix, focal_px=focal_px, cx=cx, cy=cy)
    k = intrinsics(focal_px, cx, cy)
    ratio = 0.0 if np.isinf(depth) else float(ref_depth) / float(depth)
    g = r.copy()
    g[:, 2] += ratio * tp
    out = k @ g @ np.linalg.inv(k)
    return out / out[2, 2]


def motion_residual(estimated: np.ndarray, truth: np.ndarray, width: int, height: int) -> float:
    """Mean distance in pixels between where two matrices send the frame's corners and centre."""
    pts = np.array([[0, 0], [width - 1, 0], [width - 1, height - 1], [0, height - 1],
                    [(width - 1) / 2, (height - 1) / 2]], np.float64)
    h = np.hstack([pts, np.ones((len(pts), 1))])

    def go(m):
        q = h @ np.asarray(m, np.float64).T
        return q[:, :2] / q[:, 2:3]

    return float(np.mean(np.linalg.norm(go(estimated) - go(truth), axis=1)))


# -- warping ----------------------------------------------------------------------------------------------

_CV_FILTERS = {"nearest": cv2.INTER_NEAREST, "bilinear": cv2.INTER_LINEAR, "cubic": cv2.INTER_CUBIC}
#: What a warp shows where it uncovers the outside of the source: nothing, or the source's edge.
BORDERS = ("transparent", "extend")


def _warp_planes(pixels: np.ndarray, local: np.ndarray, size: tuple[int, int], flag: int,
                 border: str = "transparent") -> np.ndarray:
    w, h = size
    mode = cv2.BORDER_REPLICATE if border == "extend" else cv2.BORDER_CONSTANT
    parts = []
    for i in range(0, pixels.shape[2], 4):
        chunk = np.ascontiguousarray(pixels[:, :, i:i + 4])
        out = cv2.warpPerspective(chunk, local, (w, h), flags=flag, borderMode=mode, borderValue=0)
        parts.append(out[:, :, None] if out.ndim == 2 else out)
    return parts[0] if len(parts) == 1 else np.concatenate(parts, axis=2)


def _local_matrix(image: Image, matrix: np.ndarray) -> np.ndarray:
    """The matrix from the image's data-window array to its display-window array."""
    dw, dd = image.data_window, image.display_window
    src = np.array([[1, 0, dw.xmin], [0, 1, dw.ymin], [0, 0, 1]], np.float64)  # array → display coords
    dst = np.array([[1, 0, -dd.xmin], [0, 1, -dd.ymin], [0, 0, 1]], np.float64)  # display coords → array
    return dst @ np.asarray(matrix, np.float64) @ src


def warp_layer(image: Image, matrix: np.ndarray, *, filter: str = "bilinear", border: str = "transparent") -> Image:
    """Warp an image and its layers by a 3x3 matrix in display-window pixels into its display window.

    Colour and alpha-associated layers use ``filter``; ``depth`` and ``crowd_id`` the nearest sample. What
    falls outside the source (data window) is transparent, or with ``border="extend"`` repeats the
    source's edge pixels (an opaque background then never shows a gap). Pixels are never clipped.
    """
    if border not in BORDERS:
        raise InputError(f"unknown border {border!r}; allowed: {', '.join(BORDERS)}")
    if filter not in _CV_FILTERS:
        raise InputError(f"unknown filter {filter!r}; allowed: {', '.join(_CV_FILTERS)}")
    img = as_rgba(image, who="camera match") if image.channels[:3] == ("R", "G", "B") else image
    local = _local_matrix(img, matrix)
    dd = img.display_window
    size = (dd.width, dd.height)
    flag = _CV_FILTERS[filter]
    pixels = _warp_planes(img.pixels, local, size, flag, border)
    layers = {}
    for name, lay in img.layers.items():
        f = cv2.INTER_NEAREST if name in NEAREST_LAYERS else flag
        layers[name] = Layer(np.ascontiguousarray(_warp_planes(lay.pixels, local, size, f, border), np.float32),
                             lay.channels)
    return img.replace(pixels=np.ascontiguousarray(pixels, np.float32), layers=layers, data_window=dd)


def _fill_depth(depth: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """Depth at every pixel with alpha: the nearest pixel's depth where the layer has none (soft edges,
    shadows); 0 where nothing has depth."""
    from scipy import ndimage

    valid = np.isfinite(depth) & (depth > 0)
    if not valid.any():
        return np.zeros_like(depth)
    if valid.all():
        return depth
    idx = ndimage.distance_transform_edt(~valid, return_distances=False, return_indices=True)
    filled = depth[idx[0], idx[1]]
    return np.where(alpha > 0, filled, 0).astype(np.float32)


def apply_layer_motion(image: Image, matrix: np.ndarray, *, depth: float | None = None, ref_depth: float = 10.0,
                       focal_px: float | None = None, parallax: bool = True, slices: int = 8,
                       filter: str = "bilinear", border: str = "transparent") -> Image:
    """Move a layer with the plate camera's motion ``matrix`` (reference-frame pixels → frame t pixels).

    Parameters
    ----------
    image : Image
        The layer: premultiplied RGBA (or opaque RGB) in display-window pixels of the reference frame,
        optionally with a ``depth`` layer (metres, channel Z; 0 or inf where empty) and overscan.
    matrix : np.ndarray
        3x3 motion of the plane at ``ref_depth`` (what the tracker measured).
    depth : float or None
        Depth of the whole layer (metres, ``inf`` for a sky at infinity). None: the image's ``depth``
        layer cuts it into slices; without one the layer moves with the plate (``ref_depth``).
    ref_depth : float
        Depth of the surface the track describes, in the same unit as ``depth``.
    focal_px : float or None
        Focal length in pixels (default: the frame width, a 53° horizontal field of view).
    parallax : bool
        False: every depth moves with ``matrix`` (a 2D match; right for zooms and nodal pans).
    slices : int
        Depth slices for a per-pixel depth layer (log-spaced between its nearest and farthest depth); each
        moves as its pixels' (alpha-weighted) harmonic-mean depth does.
    filter : {"nearest", "bilinear", "cubic"}

    Returns
    -------
    Image
        Premultiplied RGBA over the display window, layers moved with it.
    """
    dd = image.display_window
    f = float(focal_px) if focal_px else float(dd.width)
    cx, cy = dd.xmin + (dd.width - 1) / 2.0, dd.ymin + (dd.height - 1) / 2.0
    m = np.asarray(matrix, np.float64)
    if not parallax:
        return warp_layer(image, m, filter=filter, border=border)
    if depth is not None:
        return warp_layer(image, layer_homography(m, float(depth), ref_depth=ref_depth, focal_px=f, cx=cx, cy=cy),
                          filter=filter, border=border)
    if "depth" not in image.layers:
        return warp_layer(image, m, filter=filter, border=border)
    img = as_rgba(image, who="camera match")
    z = _fill_depth(img.layers["depth"].pixels[..., 0], img.a)
    present = z > 0
    if not present.any():
        return warp_layer(img, m, filter=filter)
    zmin, zmax = float(z[present].min()), float(z[present].max())
    n = max(1, int(slices)) if zmax > zmin * (1 + 1e-6) else 1
    edges = np.geomspace(zmin, zmax, n + 1)
    bins = np.clip(np.searchsorted(edges, z, side="right") - 1, 0, n - 1)
    bins[~present] = -1
    # every plane in one array: colour + alpha, then each layer (linear planes first, nearest ones after)
    names = list(img.layers)
    linear = [nm for nm in names if nm not in NEAREST_LAYERS]
    nearest = [nm for nm in names if nm in NEAREST_LAYERS]
    lin_planes = np.concatenate([img.pixels] + [img.layers[nm].pixels for nm in linear], axis=2)
    near_planes = np.concatenate([img.layers[nm].pixels for nm in nearest], axis=2) if nearest else None
    dd = img.display_window
    H, W = dd.height, dd.width
    out_lin = np.zeros((H, W, lin_planes.shape[2]), np.float32)
    out_near = np.zeros((H, W, near_planes.shape[2]), np.float32) if near_planes is not None else None
    local = _local_matrix(img, np.eye(3))  # data-window array → display-window array
    flag = _CV_FILTERS[filter]
    alpha_index = 3
    for k in range(n - 1, -1, -1):  # far to near
        sel = bins == k
        if not sel.any():
            continue
        # the slice moves as its pixels' harmonic-mean depth does (image motion is proportional to 1/depth)
        wk = np.maximum(img.a[sel], 1e-3)
        rep = float(wk.sum() / (wk / z[sel]).sum())
        hk = layer_homography(m, rep, ref_depth=ref_depth, focal_px=f, cx=cx, cy=cy) @ local
        rows = np.flatnonzero(sel.any(axis=1))
        cols = np.flatnonzero(sel.any(axis=0))
        y0, y1, x0, x1 = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
        box = _warp_box(hk, (y0, y1, x0, x1), (H, W))
        if box is None:
            continue
        oy0, oy1, ox0, ox1 = box
        shift = np.array([[1, 0, -ox0], [0, 1, -oy0], [0, 0, 1]], np.float64) @ hk @ \
            np.array([[1, 0, x0], [0, 1, y0], [0, 0, 1]], np.float64)
        keep = sel[y0:y1, x0:x1].astype(np.float32)[..., None]
        size = (ox1 - ox0, oy1 - oy0)
        part = _warp_planes(np.ascontiguousarray(lin_planes[y0:y1, x0:x1] * keep), shift, size, flag)
        a = part[..., alpha_index:alpha_index + 1]
        region = out_lin[oy0:oy1, ox0:ox1]
        region *= (1 - a)
        region += part
        if out_near is not None:
            pn = _warp_planes(np.ascontiguousarray(near_planes[y0:y1, x0:x1] * keep), shift, size,
                              cv2.INTER_NEAREST)
            np.copyto(out_near[oy0:oy1, ox0:ox1], pn, where=a > 0.5)
    layers = {}
    c = img.pixels.shape[2]
    for nm in linear:
        k = img.layers[nm].pixels.shape[2]
        layers[nm] = Layer(np.ascontiguousarray(out_lin[..., c:c + k]), img.layers[nm].channels)
        c += k
    c = 0
    for nm in nearest:
        k = img.layers[nm].pixels.shape[2]
        layers[nm] = Layer(np.ascontiguousarray(out_near[..., c:c + k]), img.layers[nm].channels)
        c += k
    pixels = np.ascontiguousarray(out_lin[..., :img.pixels.shape[2]])
    return img.replace(pixels=pixels, channels=RGBA, layers=layers, data_window=dd)


def _warp_box(matrix: np.ndarray, box: tuple[int, int, int, int], shape: tuple[int, int]):
    """The output rows/columns ``(y0, y1, x0, x1)`` a source box lands in under ``matrix`` (with a pixel of
    margin for the filter), clipped to ``shape``; None when it falls outside."""
    y0, y1, x0, x1 = box
    pts = np.array([[x0 - 1, y0 - 1, 1], [x1, y0 - 1, 1], [x1, y1, 1], [x0 - 1, y1, 1]], np.float64)
    q = pts @ np.asarray(matrix, np.float64).T
    if np.any(q[:, 2] <= 1e-9):  # the box crosses the vanishing line: take the whole frame
        return (0, shape[0], 0, shape[1])
    xy = q[:, :2] / q[:, 2:3]
    ox0 = int(max(0, np.floor(xy[:, 0].min()) - 1))
    ox1 = int(min(shape[1], np.ceil(xy[:, 0].max()) + 2))
    oy0 = int(max(0, np.floor(xy[:, 1].min()) - 1))
    oy1 = int(min(shape[0], np.ceil(xy[:, 1].max()) + 2))
    if ox0 >= ox1 or oy0 >= oy1:
        return None
    return (oy0, oy1, ox0, ox1)
