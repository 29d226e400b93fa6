"""External generated clips: footage made by any video model elsewhere, fitted to the plate.

A clip generated outside composite (a text-to-video or image-to-video model, a stock element) has its
own frame rate, resolution and length. :class:`ClipReader` reads it (a movie through PyAV, or an image
sequence) into the working state; the functions below fit it to a plate:

Timing
    :func:`clip_position` maps plate frame ``t`` to a (fractional) clip frame: the clip's frame 0 plays at
    plate frame ``start_frame``, ``speed`` scales playback, ``clip_offset`` slips it by clip frames.
    :func:`resolve_position` applies the policy for times beyond the clip (``loop``, ``hold``, ``pingpong``,
    ``black``, ``error``) and says which two clip frames to mix.
Retiming
    ``nearest`` (the nearest clip frame: no new pixels, steps when the rates differ), ``blend`` (frame
    blending: a cross-dissolve between the two neighbours, ghosting on motion) or ``flow`` (optical-flow
    interpolation, :func:`interpolate_flow`: both neighbours are warped to the intermediate time along
    dense flow and mixed, with the forward/backward consistency check deciding which neighbour to trust
    where something is occluded).
Format and alignment
    :func:`composite.core.geometry.reformat_image` fits the clip into the plate's format (``fit``,
    ``fill``, ``distort``, ``none``); :func:`alignment_matrix` places it (offset, scale, rotation about
    the frame centre) and a plate track (reference-frame pixels → frame t) moves it with the camera.

Pixels are scene-linear, premultiplied float32 throughout; retiming mixes premultiplied colour with its
alpha, so edges stay clean. Every frame made from the clip is generated: its ``ai_coverage`` is its alpha,
and :func:`clip_record` describes it (backend ``external_clip``, the model, prompt and seed the user
reports — they come from elsewhere — and the clip file's sha256).

Example
-------
>>> from composite.extend.clips import clip_position, resolve_position
>>> pos = clip_position(1003, plate_rate=24.0, clip_rate=30.0, start_frame=1001)   # 2 plate frames in
>>> pos
2.5
>>> resolve_position(pos, 10, policy="loop", method="blend")
(2, 3, 0.5)
>>> resolve_position(11.0, 10, policy="pingpong", method="nearest")
(7, 7, 0.0)
"""

from __future__ import annotations

import hashlib
import math
import os
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..core.errors import InputError
from ..core.geometry import affine_matrix, reformat_image, transform_image
from ..core.image import RGBA, Image
from ..core.merge import as_rgba
from ..core.state import AlphaState
from .generator import GeneratorRecord

__all__ = [
    "BEYOND_POLICIES", "FIT_MODES", "RETIME_METHODS", "ClipGenerator", "ClipReader", "alignment_matrix", "blend_frames",
    "clip_position", "clip_record", "fit_clip_frame", "interpolate_flow", "resolve_position", "retime",
]

RETIME_METHODS = ("nearest", "blend", "flow")
BEYOND_POLICIES = ("loop", "hold", "pingpong", "black", "error")
FIT_MODES = ("fit", "fill", "distort", "none")

_EPS = 1e-6


# -- timing ------------------------------------------------------------------------------------------

def clip_position(t: int | float, *, plate_rate: float, clip_rate: float, start_frame: int | float,
                  clip_offset: float = 0.0, speed: float = 1.0) -> float:
    """Clip frame position (0-based, fractional) shown at plate frame ``t``.

    ``(t - start_frame) / plate_rate`` seconds into the shot, times ``speed``, at ``clip_rate`` frames per
    second, plus ``clip_offset`` clip frames. Rates must be positive.
    """
    if plate_rate <= 0 or clip_rate <= 0:
        raise InputError(f"frame rates must be positive, got plate {plate_rate} and clip {clip_rate} fps")
    return (float(t) - float(start_frame)) * (float(clip_rate) / float(plate_rate)) * float(speed) + float(clip_offset)


def _wrap(k: int, length: int, policy: str) -> int:
    if policy == "loop":
        return k % length
    if policy == "pingpong":
        if length == 1:
            return 0
        period = 2 * (length - 1)
        m = k % period
        return m if m < length else period - m
    return min(max(k, 0), length - 1)  # hold (and clamping inside the clip for black/error)


def resolve_position(position: float, length: int, *, policy: str = "hold",
                     method: str = "blend") -> tuple[int, int, float] | None:
    """The clip frames to mix at ``position``: ``(i0, i1, w)`` meaning ``(1 - w) * frame[i0] + w * frame[i1]``.

    ``length``: frames in the clip. ``policy`` for positions beyond the clip: ``loop`` (wraps; the last
    frame is followed by the first), ``hold`` (first/last frame), ``pingpong`` (plays back and forth,
    ends not repeated), ``black`` (returns None: nothing there) or ``error`` (raises :class:`InputError`).
    A clip covers positions ``[-0.5, length - 0.5)`` (each frame shows for one frame period); inside that
    span ``black`` and ``error`` clamp to the clip's frames. ``method``: ``nearest`` gives ``w = 0``.
    """
    if policy not in BEYOND_POLICIES:
        raise InputError(f"unknown policy {policy!r} for times beyond the clip; allowed: {', '.join(BEYOND_POLICIES)}")
    if method not in RETIME_METHODS:
        raise InputError(f"unknown retime method {method!r}; allowed: {', '.join(RETIME_METHODS)}")
    length = int(length)
    if length < 1:
        raise InputError("the clip has no frames")
    if not math.isfinite(position):
        raise InputError(f"clip position {position!r} is not finite")
    if policy in ("black", "error") and not (-0.5 - _EPS <= position < length - 0.5 - _EPS):
        if policy == "black":
            return None
        raise InputError(f"position {position:.3f} is outside the clip's {length} frames")
    if method == "nearest":
        k = _wrap(int(math.floor(position + 0.5 + _EPS)), length, policy)
        return (k, k, 0.0)
    i0 = int(math.floor(position + _EPS))
    w = position - i0
    if w < _EPS:
        w = 0.0
    a, b = _wrap(i0, length, policy), _wrap(i0 + 1, length, policy)
    if w == 0.0 or a == b:
        return (a, a, 0.0)
    return (a, b, float(w))


# -- retiming ----------------------------------------------------------------------------------------

def blend_frames(a: np.ndarray, b: np.ndarray, weight: float) -> np.ndarray:
    """Frame blending: ``(1 - weight) * a + weight * b``.

    ``a``, ``b``: ``(H, W, C)`` float32 of one shape (premultiplied colour and alpha are mixed alike).
    """
    if a.shape != b.shape:
        raise InputError(f"frame blending needs frames of one shape, got {a.shape} and {b.shape}")
    w = np.float32(weight)
    return (a * (np.float32(1) - w) + b * w).astype(np.float32, copy=False)


def interpolate_flow(a: np.ndarray, b: np.ndarray, weight: float, *, preset: str = "medium",
                     scale: float = 1.0) -> np.ndarray:
    """A frame between ``a`` (weight 0) and ``b`` (weight 1) by optical-flow interpolation.

    Flows both ways are estimated (:func:`composite.temporal.flow.estimate_flow_pair`, OpenCV DIS). The
    flows from the intermediate time back to each neighbour are approximated from them as Jiang et al.
    ("Super SloMo", CVPR 2018) do for linear motion — ``F_t0 = -(1 - w) w F_01 + w² F_10`` and
    ``F_t1 = (1 - w)² F_01 - w (1 - w) F_10`` — both neighbours are backward-warped there
    (:func:`composite.temporal.warp.warp`) and mixed with weights ``1 - w`` and ``w``. Where the
    consistency check says a neighbour's sample has no counterpart in the other frame (occlusion), the
    other neighbour's sample is trusted instead.

    Parameters
    ----------
    a, b : np.ndarray
        ``(H, W, C)`` float32 of one shape, scene-linear; premultiplied RGBA or opaque RGB (flow is
        estimated on the colour, every plane is warped).
    weight : float
        Position between the frames, in [0, 1].
    preset, scale : flow quality preset and analysis scale (see :func:`composite.temporal.flow.estimate_flow`).

    Returns
    -------
    np.ndarray
        ``(H, W, C)`` float32.
    """
    from ..temporal.flow import estimate_flow_pair
    from ..temporal.warp import warp

    if a.shape != b.shape:
        raise InputError(f"flow interpolation needs frames of one shape, got {a.shape} and {b.shape}")
    w = float(weight)
    if not 0.0 <= w <= 1.0:
        raise InputError(f"interpolation weight must be in [0, 1], got {weight}")
    if w == 0.0:
        return a.astype(np.float32, copy=True)
    if w == 1.0:
        return b.astype(np.float32, copy=True)
    colour_a = a[..., :3] if a.shape[2] >= 3 else a
    colour_b = b[..., :3] if b.shape[2] >= 3 else b
    pair = estimate_flow_pair(np.ascontiguousarray(colour_a), np.ascontiguousarray(colour_b), preset=preset,
                              scale=scale)
    f01, f10 = pair.forward, pair.backward
    ft0 = (-(1 - w) * w) * f01 + (w * w) * f10
    ft1 = ((1 - w) ** 2) * f01 - (w * (1 - w)) * f10
    ft0 = ft0.astype(np.float32)
    ft1 = ft1.astype(np.float32)
    wa = warp(a, ft0)
    wb = warp(b, ft1)
    # a's sample is doubtful where b's sample point has no counterpart in a, and vice versa
    occ_b = warp(pair.occluded_backward.astype(np.float32), ft1)
    occ_a = warp(pair.occluded_forward.astype(np.float32), ft0)
    ka = np.float32(1 - w) * (np.float32(1) - occ_b)
    kb = np.float32(w) * (np.float32(1) - occ_a)
    den = ka + kb
    flat = den < 1e-3
    ka = np.where(flat, np.float32(1 - w), ka)
    kb = np.where(flat, np.float32(w), kb)
    den = ka + kb
    out = (wa * ka[..., None] + wb * kb[..., None]) / den[..., None]
    return out.astype(np.float32, copy=False)


def retime(frame_a: np.ndarray, frame_b: np.ndarray, weight: float, *, method: str = "blend",
           preset: str = "medium", scale: float = 1.0) -> np.ndarray:
    """Mix two neighbouring clip frames at ``weight`` by ``method`` (``nearest``, ``blend``, ``flow``)."""
    if method not in RETIME_METHODS:
        raise InputError(f"unknown retime method {method!r}; allowed: {', '.join(RETIME_METHODS)}")
    if weight == 0.0:
        return frame_a
    if method == "nearest":
        return frame_a if weight < 0.5 else frame_b
    if method == "blend":
        return blend_frames(frame_a, frame_b, weight)
    return interpolate_flow(frame_a, frame_b, weight, preset=preset, scale=scale)


# -- format and alignment ----------------------------------------------------------------------------

def alignment_matrix(width: int, height: int, *, offset: tuple[float, float] = (0.0, 0.0), scale: float = 1.0,
                     rotate: float = 0.0) -> np.ndarray:
    """3x3 matrix placing a reformatted clip on the plate: scale and rotate (degrees, counter-clockwise on
    screen) about the frame centre, then move by ``offset`` pixels (x right, y down)."""
    if scale <= 0:
        raise InputError(f"alignment scale must be positive, got {scale}")
    centre = ((width - 1) / 2.0, (height - 1) / 2.0)
    m = affine_matrix(translate=tuple(offset), rotate=float(rotate), scale=(float(scale), float(scale)),
                      center=centre)
    return np.vstack([m, [0.0, 0.0, 1.0]])


def fit_clip_frame(image: Image, width: int, height: int, *, fit: str = "fit", filter: str = "cubic",
                   matrix: np.ndarray | None = None) -> Image:
    """Reformat a clip frame to ``width x height`` (``fit``/``fill``/``distort``/``none``), then warp it by
    ``matrix`` (3x3, plate pixels; None or identity: no warp). Returns premultiplied RGBA."""
    if fit not in FIT_MODES:
        raise InputError(f"unknown fit mode {fit!r}; allowed: {', '.join(FIT_MODES)}")
    img = as_rgba(image, who="external clip")
    img = reformat_image(img, int(width), int(height), mode=fit, filter=filter)
    if matrix is not None and not np.allclose(matrix, np.eye(3), atol=1e-12):
        img = transform_image(img, np.asarray(matrix, np.float64),
                              filter="bilinear" if filter in ("area", "bilinear") else filter)
    return img


# -- reading -----------------------------------------------------------------------------------------

def _sha256_file(path: str) -> str:
    from ..models import file_sha256

    return file_sha256(path)


@dataclass(frozen=True)
class ClipInfo:
    path: str
    length: int
    rate: float
    width: int
    height: int
    is_movie: bool


class ClipReader:
    """Reads the frames of an external clip — a movie (PyAV) or an image sequence — by 0-based index,
    converted to the working state (``working_space``, premultiplied RGBA).

    Parameters
    ----------
    path : str
        A movie (``.mp4``, ``.mov``, ``.webm`` ...) or a sequence pattern (``gen.####.exr``).
    rate : float or None
        The clip's frame rate; a movie's own rate when None. Image sequences need it.
    colorspace : str
        The file's colour space (empty: the file's own metadata, or the reader's default — BT.1886 Rec.709
        for movies, sRGB for 8-bit pictures, scene-linear for EXR).
    alpha : str
        How to interpret the file's A channel (``auto``, ``straight``, ``premultiplied``, ``ignore``).
    working_space : str
        Working colour space of the pipeline.
    cache_frames : int
        Decoded frames kept in memory (neighbours are read again for the next plate frame).
    """

    def __init__(self, path: str, *, rate: float | None = None, colorspace: str = "", alpha: str = "auto",
                 working_space: str = "ACEScg", ocio_config: str | None = None, cache_frames: int = 6):
        from ..io import images
        from ..io.sequence import SequencePattern

        self.path = os.fspath(path)
        self.colorspace = colorspace
        self.alpha_mode = alpha
        self.working_space = working_space
        self.ocio_config = ocio_config
        self._lock = threading.Lock()
        self._cache: OrderedDict[int, Image] = OrderedDict()
        self._cache_frames = max(2, int(cache_frames))
        self.is_movie = images.is_movie(self.path)
        if self.is_movie:
            from ..io.video import movie_reader

            reader = movie_reader(self.path)
            self.length = reader.frame_count
            self.rate = float(rate) if rate else float(reader.rate)
            self.width, self.height = reader.width, reader.height
            self.frame_numbers: list[int] = []
        else:
            pattern = SequencePattern.parse(self.path)
            if not pattern.is_sequence:
                if not os.path.isfile(self.path):
                    raise InputError(f"{self.path}: clip not found")
                self.frame_numbers = []
                self.length = 1
            else:
                self.frame_numbers = pattern.scan()
                if not self.frame_numbers:
                    raise InputError(f"{self.path}: no frames of this clip exist on disk")
                gaps = pattern.gaps()
                if gaps:
                    from ..io.sequence import format_frame_list

                    raise InputError(f"{self.path}: the clip has gaps (missing frames {format_frame_list(gaps)}); "
                                     "render or fill them first")
                self.length = len(self.frame_numbers)
            self._pattern = pattern
            if not rate:
                raise InputError(f"{self.path}: an image-sequence clip has no frame rate of its own; give the "
                                 "rate it was generated at (clip_rate)")
            self.rate = float(rate)
            first = self._read_file(0)
            self.width, self.height = first.width, first.height
        if self.rate <= 0:
            raise InputError(f"{self.path}: clip frame rate must be positive, got {self.rate}")

    def info(self) -> ClipInfo:
        return ClipInfo(self.path, self.length, self.rate, self.width, self.height, self.is_movie)

    def files(self) -> list[str]:
        """The files making up the clip."""
        if self.is_movie or not self.frame_numbers:
            return [self.path]
        return [self._pattern.path(f) for f in self.frame_numbers]

    def identity(self, indices: tuple[int, ...] = ()) -> str:
        """A cheap identity (path, size, mtime) of the files holding ``indices`` (all files when empty)."""
        files = self.files()
        if not self.is_movie and self.frame_numbers and indices:
            files = [files[i] for i in sorted(set(indices))]
        parts = []
        for f in files:
            try:
                st = os.stat(f)
                parts.append(f"{os.path.abspath(f)}|{st.st_size}|{st.st_mtime_ns}")
            except OSError:
                parts.append(f"missing:{f}")
        return "|".join(parts) + ("|" + ",".join(map(str, indices)) if self.is_movie and indices else "")

    def sha256(self) -> str:
        """sha256 of the movie file, or of the concatenated sha256 digests of the sequence's files in order."""
        files = self.files()
        if len(files) == 1:
            return _sha256_file(files[0])
        h = hashlib.sha256()
        for f in files:
            h.update(_sha256_file(f).encode())
        return h.hexdigest()

    def _read_file(self, index: int) -> Image:
        from ..io import images

        if self.is_movie:
            img = images.read_image(self.path, colorspace=self.colorspace or None, frame_index=index)
        else:
            path = self._pattern.path(self.frame_numbers[index]) if self.frame_numbers else self.path
            img = images.read_image(path, colorspace=self.colorspace or None)
        return img

    def read(self, index: int) -> Image:
        """Clip frame ``index`` (0-based) as premultiplied RGBA in the working space."""
        from ..io import images

        if not 0 <= index < self.length:
            raise InputError(f"{self.path}: clip frame {index} does not exist (the clip has {self.length} frames)")
        with self._lock:
            hit = self._cache.get(index)
            if hit is not None:
                self._cache.move_to_end(index)
                return hit
        img = self._read_file(index)
        img = images.to_working(img, self.working_space, alpha=self.alpha_mode, config=self.ocio_config)
        img = as_rgba(img, who=f"external clip {self.path}")
        img = img.replace(metadata={}, layers={}, time=None)
        with self._lock:
            self._cache[index] = img
            while len(self._cache) > self._cache_frames:
                self._cache.popitem(last=False)
        return img


# -- provenance --------------------------------------------------------------------------------------

def clip_record(reader: ClipReader, *, model: str = "", model_card: str = "", prompt: str = "",
                seed: int | None = None, checksum: bool = True, params: dict[str, Any] | None = None) -> GeneratorRecord:
    """The generator record of an external clip.

    The model, prompt and seed are what the user reports (the clip was made elsewhere). ``model_card``
    names a card in ``models/`` when the generating model has one. ``checksum``: record the clip's sha256
    (hashes every file once per process).
    """
    info = reader.info()
    model_info: dict[str, Any] = {}
    if model:
        model_info["external_model"] = model
    if model_card:
        model_info["card"] = model_card
    rec_params: dict[str, Any] = {"clip": os.path.basename(info.path), "clip_frames": info.length,
                                  "clip_rate": round(info.rate, 6), "clip_size": [info.width, info.height]}
    if checksum:
        rec_params["clip_sha256"] = reader.sha256()
    rec_params.update(params or {})
    return GeneratorRecord("external_clip", generated=True, model=model_info, prompt=prompt, seed=seed,
                           params=rec_params, sources=[os.path.abspath(info.path)])


def clip_frame_at(reader: ClipReader, position: float, *, policy: str = "hold", method: str = "blend",
                  preset: str = "medium", scale: float = 1.0) -> Image | None:
    """The retimed clip frame at ``position`` (premultiplied RGBA, clip resolution), or None (``black``)."""
    try:
        sel = resolve_position(position, reader.length, policy=policy, method=method)
    except InputError as exc:
        raise InputError(f"{reader.path}: {exc}") from None
    if sel is None:
        return None
    i0, i1, w = sel
    a = reader.read(i0)
    if w == 0.0 or i0 == i1:
        return a
    b = reader.read(i1)
    return a.with_pixels(retime(a.pixels, b.pixels, w, method=method, preset=preset, scale=scale))


def black_frame(width: int, height: int) -> Image:
    return Image(np.zeros((int(height), int(width), 4), np.float32), RGBA, alpha=AlphaState.PREMULTIPLIED)


class ClipGenerator:
    """An external clip as a :class:`~composite.extend.generator.Generator` (backend ``external_clip``).

    ``generate(ctx)`` returns the clip at plate frame ``ctx.frame`` (rate ``ctx.rate``), fitted to
    ``ctx.width x ctx.height``, placed by ``offset``/``scale``/``rotate`` and moved by ``ctx.track`` (a 3x3
    matrix, reference pixels → this frame) when given: premultiplied RGBA with ``ai_coverage`` = alpha and
    the generator record in its metadata. Options as the ``ExternalClip`` stage.

    Example
    -------
    >>> from composite.extend.generator import PlateContext
    >>> gen = ClipGenerator("gen.####.exr", rate=12, model="SomeVideoModel", prompt="a burning village")  # doctest: +SKIP
    >>> element = gen.generate(PlateContext(frame=1003, width=1920, height=1080, rate=24))         # doctest: +SKIP
    """

    backend = "external_clip"

    def __init__(self, path: str, *, rate: float | None = None, colorspace: str = "", alpha: str = "auto",
                 start_frame: int = 1001, clip_offset: float = 0.0, speed: float = 1.0, retime: str = "blend",
                 beyond: str = "hold", fit: str = "fill", filter: str = "cubic", offset: tuple[float, float] = (0.0, 0.0),
                 scale: float = 1.0, rotate: float = 0.0, model: str = "", model_card: str = "", prompt: str = "",
                 seed: int | None = None, checksum: bool = True, working_space: str = "ACEScg"):
        if retime not in RETIME_METHODS:
            raise InputError(f"unknown retime method {retime!r}; allowed: {', '.join(RETIME_METHODS)}")
        if beyond not in BEYOND_POLICIES:
            raise InputError(f"unknown policy {beyond!r}; allowed: {', '.join(BEYOND_POLICIES)}")
        self.reader = ClipReader(path, rate=rate, colorspace=colorspace, alpha=alpha, working_space=working_space)
        self.start_frame, self.clip_offset, self.speed = start_frame, clip_offset, speed
        self.retime, self.beyond, self.fit, self.filter = retime, beyond, fit, filter
        self.offset, self.scale, self.rotate = tuple(offset), scale, rotate
        self._record = clip_record(self.reader, model=model, model_card=model_card, prompt=prompt, seed=seed,
                                   checksum=checksum, params={"retime": retime, "beyond": beyond, "fit": fit})

    def describe(self) -> dict[str, Any]:
        return self._record.as_dict()

    def generate(self, ctx) -> Image:
        from ..core.coverage import mark_generated
        from .generator import attach_record

        pos = clip_position(ctx.frame, plate_rate=ctx.rate, clip_rate=self.reader.rate, start_frame=self.start_frame,
                            clip_offset=self.clip_offset, speed=self.speed)
        frame = clip_frame_at(self.reader, pos, policy=self.beyond, method=self.retime)
        if frame is None:
            img = black_frame(ctx.width, ctx.height)
        else:
            m = alignment_matrix(ctx.width, ctx.height, offset=self.offset, scale=self.scale, rotate=self.rotate)
            if ctx.track is not None:
                m = np.asarray(ctx.track, np.float64) @ m
            img = fit_clip_frame(frame, ctx.width, ctx.height, fit=self.fit, filter=self.filter, matrix=m)
        img = img.replace(time=ctx.time)
        return attach_record(mark_generated(img), self._record)
