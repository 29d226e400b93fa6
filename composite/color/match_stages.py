"""Pipeline stages for colour matching: ColorTransfer, Grade, CDL, ApplyCDLFile and MatchToReference.

Each wraps a pure function of :mod:`composite.color.transfer`, :mod:`~composite.color.grade` or
:mod:`~composite.color.cdl`. Images are scene-linear, premultiplied (or opaque); colour is processed
unpremultiplied where alpha > 0 and premultiplied again. Mattes (``*_matte`` inputs) are read from their
``A`` channel, else their first channel; they must have the image's format (display window) and are
padded with zeros or cropped to its data window.

Statistics-driven stages (ColorTransfer, MatchToReference) can pool their statistics over
``stats_radius`` frames either side of the current one, which steadies the match over time (each
frame still sees a bounded window, so chunked renders stay identical). For a match that must not move
at all over a shot, fit it once (:func:`composite.color.consistency.match_shots`) and give the stored
transform to ColorTransfer's ``transform`` parameter.

Recipe example::

    stages:
      match: {type: ColorTransfer, inputs: {image: cg, reference: plate, reference_matte: sky},
              params: {method: mkl, strength: 0.8, stats_radius: 2}}
      look:  {type: CDL, inputs: {image: match}, params: {file: looks/sh010.cc, encoding: acescct}}
"""

from __future__ import annotations

import numpy as np

from ..core.errors import InputError, RecipeError
from ..core.image import Image
from ..core.merge import to_window
from ..core.state import AlphaState
from ..graph.params import Param, thaw
from ..graph.registry import register
from ..graph.stage import Input, Stage
from . import cdl as cdl_mod
from .grade import GRADE_DEFAULTS, GRADE_KEYS, SOLVE_MODES, grade, solve_grade
from .transfer import METHODS, SPACES, ColorTransform, fit_color_transfer


def _rgb_pixels(image: Image, who: str) -> np.ndarray:
    """The (H, W, 3|4) float32 array the colour functions take: RGB, or RGBA when premultiplied."""
    ch = image.channels
    if ch[:3] != ("R", "G", "B"):
        raise InputError(f"{who}: expects R, G, B channels first, got {ch}")
    premult = image.alpha is AlphaState.PREMULTIPLIED and "A" in ch
    if premult:
        return image.pixels if ch == ("R", "G", "B", "A") else image.pixels[..., [0, 1, 2, ch.index("A")]]
    return image.pixels if len(ch) == 3 else np.ascontiguousarray(image.pixels[..., :3])


def _put_rgb(image: Image, out: np.ndarray) -> Image:
    """Write the colour of ``out`` (RGB[A]) back into ``image``'s channels (other channels untouched)."""
    if out.shape[2] == image.pixels.shape[2] and (image.channels == ("R", "G", "B", "A")
                                                   or image.channels == ("R", "G", "B")):
        return image.with_pixels(np.ascontiguousarray(out, dtype=np.float32))
    px = image.pixels.copy()
    px[..., :3] = out[..., :3]
    return image.with_pixels(px)


def _matte_plane(matte: Image | None, image: Image, who: str) -> np.ndarray | None:
    if matte is None:
        return None
    if matte.display_window != image.display_window:
        dm, di = matte.display_window, image.display_window
        raise InputError(f"{who}: matte format is {dm.width}x{dm.height} but the image's is {di.width}x{di.height}; "
                         "reformat the matte to the image's format")
    if matte.data_window != image.data_window:  # same format, different bounding box: pad/crop
        matte = to_window(matte, image.data_window)
    plane = matte.channel("A") if "A" in matte.channels else matte.pixels[..., 0]
    if plane.shape != image.pixels.shape[:2]:
        raise InputError(f"{who}: matte is {plane.shape[1]}x{plane.shape[0]} but the image is "
                         f"{image.width}x{image.height}; reformat the matte")
    return plane


def _pooled(frames: dict[int, Image] | Image | None, mattes: dict[int, Image] | Image | None, t: int,
            who: str) -> tuple[np.ndarray | None, np.ndarray | None]:
    """Stack a window of frames (and their mattes) vertically so one fit sees all their pixels."""
    if frames is None:
        return None, None
    if isinstance(frames, Image):
        frames = {t: frames}
    if isinstance(mattes, Image):
        mattes = {t: mattes}
    keys = sorted(frames)
    widths = {frames[k].width for k in keys}
    if len(widths) > 1:  # frames of different widths: use the current frame only
        keys = [t if t in frames else keys[len(keys) // 2]]
    px, mw = [], []
    for k in keys:
        img = frames[k]
        p = _rgb_pixels(img, who)
        if p.shape[2] == 3 and any(_rgb_pixels(frames[j], who).shape[2] == 4 for j in keys):
            p = np.concatenate([p, np.ones((*p.shape[:2], 1), np.float32)], axis=2)
        px.append(p)
        if mattes is not None:
            m = mattes.get(k) if k in mattes else mattes[min(mattes, key=lambda f: abs(f - k))]
            mw.append(_matte_plane(m, img, who))
    pixels = px[0] if len(px) == 1 else np.concatenate(px, axis=0)
    weights = None if mattes is None else (mw[0] if len(mw) == 1 else np.concatenate(mw, axis=0))
    return pixels, weights


def _current(frames: dict[int, Image] | Image, t: int) -> Image:
    if isinstance(frames, Image):
        return frames
    return frames[t] if t in frames else frames[min(frames, key=lambda f: abs(f - t))]


@register
class ColorTransfer(Stage):
    """Statistical colour transfer of an element onto a reference (Reinhard, MKL or histogram).

    The statistics come from the element (inside ``image_matte`` if connected) and the reference (inside
    ``reference_matte``), pooled over ``stats_radius`` frames either side; ``space`` ``auto`` picks the
    method's default (Reinhard and histogram: lαβ; MKL: ACEScct). With ``transform`` set (a stored
    transform from :func:`composite.color.consistency.match_shots`, ``ColorTransform.to_dict()``), that
    fixed transform is applied and the reference is not needed.
    """

    version = 1
    inputs = {
        "image": Input("element to recolour (scene-linear, premultiplied or opaque)", colorspace="working",
                       window="stats_radius"),
        "reference": Input("plate whose look to match", colorspace="working", optional=True,
                           window="stats_radius"),
        "reference_matte": Input("region of the reference to take statistics from (A or first channel)",
                                 alpha=None, optional=True, window="stats_radius"),
        "image_matte": Input("region of the element to take statistics from (A or first channel)",
                             alpha=None, optional=True, window="stats_radius"),
    }
    params = {
        "method": Param(str, "mkl", choices=METHODS, doc="reinhard, mkl or histogram"),
        "space": Param(str, "auto", choices=("auto",) + SPACES, doc="space of the statistics"),
        "strength": Param(float, 1.0, range=(0.0, 1.0), doc="0: unchanged, 1: full transfer"),
        "stats_radius": Param(int, 0, range=(0, 12), doc="frames either side pooled into the statistics"),
        "max_samples": Param(int, 1 << 18, range=(1000, 1 << 26), doc="pixels sampled per side"),
        "bins": Param(int, 2048, range=(16, 65536), doc="histogram bins (histogram method)"),
        "transform": Param(dict, None, optional=True, doc="stored transform (ColorTransform.to_dict())"),
    }

    def check_params(self):
        self._stored = None
        if self.p.transform is not None:
            try:
                self._stored = ColorTransform.from_dict(thaw(self.p.transform))
            except InputError as exc:
                raise RecipeError(str(exc), key="params.transform") from None

    def identity(self, t):
        if self.p.strength == 0.0:
            return "image"
        if self._stored is not None and self._stored.is_identity:
            return "image"
        return None

    def process(self, t, image, reference=None, reference_matte=None, image_matte=None):
        cur = _current(image, t)
        who = f"{self.node_name} (ColorTransfer) frame {t}"
        if self._stored is not None:
            tr = self._stored.with_strength(self._stored.strength * self.p.strength)
        else:
            if reference is None:
                raise InputError(f"{who}: connect a reference (or set a stored transform)")
            img_px, img_w = _pooled(image, image_matte, t, who + " element")
            ref_px, ref_w = _pooled(reference, reference_matte, t, who + " reference")
            try:
                tr = fit_color_transfer(img_px, ref_px, method=self.p.method,
                                        space=None if self.p.space == "auto" else self.p.space,
                                        strength=self.p.strength, image_weights=img_w, reference_weights=ref_w,
                                        max_samples=self.p.max_samples, bins=self.p.bins)
            except InputError as exc:
                raise InputError(f"{who}: {exc}") from None
        out = tr.apply(_rgb_pixels(cur, who))
        return _put_rgb(cur, out)


def _triplet_param(default: float, doc: str, rng=None) -> Param:
    return Param(list, [default] * 3, item=float, length=3, doc=doc, range=rng)


@register
class Grade(Stage):
    """Nuke-style Grade: blackpoint, whitepoint, lift, gain, multiply, offset, gamma (per R, G, B), then
    saturation around ACEScg luminance. ``A = multiply (gain - lift) / (whitepoint - blackpoint)``,
    ``B = offset + lift - A blackpoint``, ``out = (A in + B) ** (1 / gamma)`` where positive."""

    version = 1
    inputs = {"image": Input("image to grade (premultiplied or opaque)")}
    params = {
        "blackpoint": _triplet_param(0.0, "input level mapped to lift"),
        "whitepoint": _triplet_param(1.0, "input level mapped to gain"),
        "lift": _triplet_param(0.0, "output level of the blackpoint"),
        "gain": _triplet_param(1.0, "output level of the whitepoint"),
        "multiply": _triplet_param(1.0, "multiplies the slope"),
        "offset": _triplet_param(0.0, "added after the slope"),
        "gamma": _triplet_param(1.0, "power 1/gamma on positive values", (1e-3, 1e3)),
        "saturation": Param(float, 1.0, range=(0.0, 10.0)),
        "black_clamp": Param(bool, False, doc="clamp results below 0 (Nuke's default is on)"),
        "white_clamp": Param(bool, False, doc="clamp results above 1"),
        "reverse": Param(bool, False, doc="apply the inverse grade"),
    }

    def check_params(self):
        for i, (b, w) in enumerate(zip(self.p.blackpoint, self.p.whitepoint)):
            if abs(w - b) < 1e-6:
                raise RecipeError(f"whitepoint equals blackpoint in {'RGB'[i]} ({w}); they must differ",
                                  key="params.whitepoint")

    def _kwargs(self):
        kw = {k: list(self.p[k]) for k in GRADE_KEYS}
        kw.update(saturation=self.p.saturation, black_clamp=self.p.black_clamp, white_clamp=self.p.white_clamp,
                  reverse=self.p.reverse)
        return kw

    def identity(self, t):
        if self.p.black_clamp or self.p.white_clamp or self.p.saturation != 1.0:
            return None
        if all(self.p[k] == (GRADE_DEFAULTS[k],) * 3 for k in GRADE_KEYS):
            return "image"
        return None

    def process(self, t, image):
        who = f"{self.node_name} (Grade) frame {t}"
        return _put_rgb(image, grade(_rgb_pixels(image, who), **self._kwargs()))


@register
class CDL(Stage):
    """ASC CDL (slope, offset, power, saturation) from parameters or from a .cc/.ccc/.cdl file, in NumPy.

    ``style``: ``no_clamp`` (OCIO's default) or ``asc`` (v1.2 clamping). ``encoding``: ``linear`` (the
    working space as is) or ``acescct`` (the ACES convention for exchanged CDLs). ``file`` (with
    ``cccid`` for a collection) replaces the slope/offset/power/saturation parameters.
    """

    version = 1
    inputs = {"image": Input("image to grade (premultiplied or opaque)")}
    params = {
        "slope": _triplet_param(1.0, "slope per channel", (0.0, None)),
        "offset": _triplet_param(0.0, "offset per channel"),
        "power": _triplet_param(1.0, "power per channel", (1e-6, None)),
        "saturation": Param(float, 1.0, range=(0.0, 100.0)),
        "file": Param(str, "", path=True, doc=".cc/.ccc/.cdl file ('' uses the parameters)"),
        "cccid": Param(str, "", doc="id (or index) of the correction in a .ccc/.cdl"),
        "style": Param(str, "no_clamp", choices=cdl_mod.STYLES),
        "encoding": Param(str, "linear", choices=cdl_mod.ENCODINGS),
    }

    def check_params(self):
        if self.p.file and (self.p.slope, self.p.offset, self.p.power, self.p.saturation) != \
                ((1.0,) * 3, (0.0,) * 3, (1.0,) * 3, 1.0):
            raise RecipeError("give either a CDL file or slope/offset/power/saturation values, not both",
                              key="params.file")
        self._cache: tuple | None = None

    def cdl(self) -> cdl_mod.CDL:
        """The CDL applied (read from the file with OpenColorIO when ``file`` is set)."""
        if not self.p.file:
            return cdl_mod.CDL(self.p.slope, self.p.offset, self.p.power, self.p.saturation)
        sha = cdl_mod.file_sha256(cdl_mod._check_file(self.p.file))
        if self._cache is None or self._cache[0] != sha:
            self._cache = (sha, cdl_mod.read_cdl_file(self.p.file, self.p.cccid or None))
        return self._cache[1]

    def fingerprint_extra(self):
        if not self.p.file:
            return ""
        try:
            return "cdl-sha256:" + cdl_mod.file_sha256(cdl_mod._check_file(self.p.file))
        except InputError as exc:
            raise InputError(f"{self.node_name} (CDL): {exc}") from None

    def identity(self, t):
        if self.p.file or self.p.style != "no_clamp":
            return None
        return "image" if self.cdl().is_identity else None

    def process(self, t, image):
        who = f"{self.node_name} (CDL) frame {t}"
        try:
            cdl = self.cdl()
        except InputError as exc:
            raise InputError(f"{who}: {exc}") from None
        out = cdl_mod.apply_cdl(_rgb_pixels(image, who), cdl, style=self.p.style, encoding=self.p.encoding)
        return _put_rgb(image, out)


@register
class ApplyCDLFile(Stage):
    """Apply a .cc/.ccc/.cdl file through an OpenColorIO processor (FileTransform), as Nuke's
    OCIOFileTransform does. ``encoding: acescct`` wraps it in OCIO's built-in ACEScct curve."""

    version = 1
    inputs = {"image": Input("image to grade (premultiplied or opaque)")}
    params = {
        "file": Param(str, "", path=True, doc=".cc/.ccc/.cdl file"),
        "cccid": Param(str, "", doc="id (or index) of the correction in a .ccc/.cdl"),
        "style": Param(str, "no_clamp", choices=cdl_mod.STYLES),
        "encoding": Param(str, "linear", choices=cdl_mod.ENCODINGS),
        "inverse": Param(bool, False, doc="apply the inverse"),
    }

    def check_params(self):
        if not self.p.file:
            raise RecipeError("a CDL file is required (.cc, .ccc or .cdl)", key="params.file")

    def fingerprint_extra(self):
        try:
            path = cdl_mod._check_file(self.p.file)
            proc = cdl_mod.cdl_file_processor(path, cccid=self.p.cccid or None, style=self.p.style,
                                              encoding=self.p.encoding, inverse=self.p.inverse)
        except InputError as exc:
            raise InputError(f"{self.node_name} (ApplyCDLFile): {exc}") from None
        return f"cdl-sha256:{cdl_mod.file_sha256(path)}|ocio:{proc.getCacheID()}"

    def process(self, t, image):
        who = f"{self.node_name} (ApplyCDLFile) frame {t}"
        try:
            out = cdl_mod.apply_cdl_file(_rgb_pixels(image, who), self.p.file, cccid=self.p.cccid or None,
                                         style=self.p.style, encoding=self.p.encoding, inverse=self.p.inverse)
        except InputError as exc:
            raise InputError(f"{who}: {exc}") from None
        return _put_rgb(image, out)


_PICK = dict(item=float, length=3, optional=True)


@register
class MatchToReference(Stage):
    """Match an element's black and white levels to a reference: solve a Grade (blackpoint/whitepoint from
    the element's dark and bright colours, lift/gain from the reference's) and apply it.

    Dark and bright colours are found automatically (the mean colour of the darkest/brightest percentile
    by luminance, or per-channel percentiles) inside the optional mattes, pooled over ``stats_radius``
    frames, or given as picks (``element_dark`` etc., straight RGB). The solved grade is recorded in the
    output's metadata under ``composite.match``.
    """

    version = 1
    inputs = {
        "image": Input("element to match (scene-linear, premultiplied or opaque)", colorspace="working",
                       window="stats_radius"),
        "reference": Input("plate whose black and white levels to match", colorspace="working", optional=True,
                           window="stats_radius"),
        "reference_matte": Input("region of the reference to search", alpha=None, optional=True,
                                 window="stats_radius"),
        "image_matte": Input("region of the element to search", alpha=None, optional=True, window="stats_radius"),
    }
    params = {
        "dark_percentile": Param(float, 1.0, range=(0.0, 50.0)),
        "bright_percentile": Param(float, 99.0, range=(50.0, 100.0)),
        "mode": Param(str, "luma", choices=SOLVE_MODES),
        "strength": Param(float, 1.0, range=(0.0, 1.0)),
        "stats_radius": Param(int, 0, range=(0, 12)),
        "element_dark": Param(list, None, doc="picked dark colour of the element", **_PICK),
        "element_bright": Param(list, None, doc="picked bright colour of the element", **_PICK),
        "reference_dark": Param(list, None, doc="picked dark colour of the reference", **_PICK),
        "reference_bright": Param(list, None, doc="picked bright colour of the reference", **_PICK),
    }

    def check_params(self):
        if self.p.dark_percentile >= self.p.bright_percentile:
            raise RecipeError("dark_percentile must be below bright_percentile", key="params.dark_percentile")

    def identity(self, t):
        return "image" if self.p.strength == 0.0 else None

    def process(self, t, image, reference=None, reference_matte=None, image_matte=None):
        cur = _current(image, t)
        who = f"{self.node_name} (MatchToReference) frame {t}"
        img_px, img_w = _pooled(image, image_matte, t, who + " element")
        ref_px, ref_w = _pooled(reference, reference_matte, t, who + " reference")
        if ref_px is None and (self.p.reference_dark is None or self.p.reference_bright is None):
            raise InputError(f"{who}: connect a reference or give reference_dark and reference_bright")
        pick = lambda v: None if v is None else list(v)  # noqa: E731
        try:
            sol = solve_grade(img_px, ref_px, element_weights=img_w, reference_weights=ref_w,
                              element_dark=pick(self.p.element_dark), element_bright=pick(self.p.element_bright),
                              reference_dark=pick(self.p.reference_dark),
                              reference_bright=pick(self.p.reference_bright),
                              dark_percentile=self.p.dark_percentile, bright_percentile=self.p.bright_percentile,
                              mode=self.p.mode)
        except InputError as exc:
            raise InputError(f"{who}: {exc}") from None
        px = _rgb_pixels(cur, who)
        out = grade(px, **sol.params.to_dict())
        if self.p.strength != 1.0:
            out = px + np.float32(self.p.strength) * (out - px)
        return _put_rgb(cur, out).with_metadata(**{"composite.match": sol.to_dict()})


__all__ = ["ApplyCDLFile", "CDL", "ColorTransfer", "Grade",
           "MatchToReference"]
