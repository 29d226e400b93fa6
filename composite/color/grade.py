"""A grade with the parameters compositors use (Nuke's Grade), and a black/white-point solver.

:func:`grade` follows Nuke's Grade node per channel::

    A = multiply * (gain - lift) / (whitepoint - blackpoint)
    B = offset + lift - A * blackpoint
    out = pow(A * in + B, 1 / gamma)   where A * in + B > 0, else A * in + B (negatives stay linear)

then, an addition to Nuke's Grade, a saturation around ACEScg luminance (:data:`AP1_LUMA`). Optional
clamps: ``black_clamp`` (Nuke's default is on; here it is off so the working space's legitimate negative
values survive) and ``white_clamp``. ``reverse`` applies the exact inverse (Nuke's ``reverse``).

:func:`solve_grade` fits the black and white points (and lift and gain, to map them onto a reference)
from picked or automatically found dark and bright references: with ``blackpoint``/``whitepoint`` set to
the element's dark/bright colour and ``lift``/``gain`` to the reference's, the grade maps the element's
dark colour exactly onto the reference's dark colour and the bright onto the bright. Automatic
references are robust percentiles: the mean colour of the pixels whose luminance lies in a narrow band
(±0.5 percentile) around the ``dark_percentile`` (``bright_percentile``) of luminance (``mode="luma"``,
keeps hue, ignores the dead pixels and fireflies beyond the band), or per-channel percentiles
(``mode="channel"``, neutralises a colour cast in blacks and whites).

Colour is graded unpremultiplied where alpha > 0 (Nuke's ``(un)premult by rgba.alpha``) and premultiplied
again; pixels with alpha 0 and the alpha channel are unchanged.

Example
-------
>>> import numpy as np
>>> from composite.color.grade import grade
>>> px = np.array([[[0.1, 0.2, 0.5]]], np.float32)
>>> out = grade(px, blackpoint=0.1, whitepoint=0.5, lift=0.0, gain=1.0)
>>> [round(float(v), 4) for v in out[0, 0]]
[0.0, 0.25, 1.0]
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..core.errors import InputError
from .delta_e import AP1_LUMA
from .transfer import _check_finite, _check_pixels, apply_unpremultiplied, collect_samples

GRADE_KEYS = ("blackpoint", "whitepoint", "lift", "gain", "multiply", "offset", "gamma")
GRADE_DEFAULTS = {"blackpoint": 0.0, "whitepoint": 1.0, "lift": 0.0, "gain": 1.0, "multiply": 1.0,
                  "offset": 0.0, "gamma": 1.0}
SOLVE_MODES = ("luma", "channel")
#: Smallest |whitepoint - blackpoint| accepted (a flat grade would divide by ~0).
MIN_RANGE = 1e-6
_F32_MAX = float(np.finfo(np.float32).max)


def _triplet(value: Any, name: str) -> np.ndarray:
    arr = np.asarray(value, np.float64)
    if arr.ndim == 0:
        arr = np.repeat(arr, 3)
    if arr.shape != (3,):
        raise InputError(f"grade {name}: expected a number or 3 numbers (R, G, B), got {value!r}")
    if not np.all(np.isfinite(arr)):
        raise InputError(f"grade {name}: values must be finite, got {value!r}")
    return arr


@dataclass(frozen=True)
class GradeParams:
    """Grade parameters, each an (R, G, B) triple, plus saturation. ``to_dict`` gives plain lists."""

    blackpoint: tuple[float, float, float] = (0.0, 0.0, 0.0)
    whitepoint: tuple[float, float, float] = (1.0, 1.0, 1.0)
    lift: tuple[float, float, float] = (0.0, 0.0, 0.0)
    gain: tuple[float, float, float] = (1.0, 1.0, 1.0)
    multiply: tuple[float, float, float] = (1.0, 1.0, 1.0)
    offset: tuple[float, float, float] = (0.0, 0.0, 0.0)
    gamma: tuple[float, float, float] = (1.0, 1.0, 1.0)
    saturation: float = 1.0

    def __post_init__(self):
        for k in GRADE_KEYS:
            object.__setattr__(self, k, tuple(float(v) for v in _triplet(getattr(self, k), k)))
        object.__setattr__(self, "saturation", float(self.saturation))

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {k: list(getattr(self, k)) for k in GRADE_KEYS}
        d["saturation"] = self.saturation
        return d

    @property
    def is_identity(self) -> bool:
        return all(getattr(self, k) == (GRADE_DEFAULTS[k],) * 3 for k in GRADE_KEYS) and self.saturation == 1.0


def grade_coefficients(*, blackpoint=0.0, whitepoint=1.0, lift=0.0, gain=1.0, multiply=1.0,
                       offset=0.0) -> tuple[np.ndarray, np.ndarray]:
    """Nuke Grade's per-channel slope A and intercept B (float64, shape (3,))."""
    bp, wp = _triplet(blackpoint, "blackpoint"), _triplet(whitepoint, "whitepoint")
    lift, gain = _triplet(lift, "lift"), _triplet(gain, "gain")
    mul, off = _triplet(multiply, "multiply"), _triplet(offset, "offset")
    rng = wp - bp
    if np.any(np.abs(rng) < MIN_RANGE):
        c = "RGB"[int(np.argmin(np.abs(rng)))]
        raise InputError(f"grade: whitepoint equals blackpoint in {c} ({wp.tolist()} vs {bp.tolist()}); "
                         "they must differ")
    a = mul * (gain - lift) / rng
    b = off + lift - a * bp
    return a, b


def checked_grade_terms(*, blackpoint, whitepoint, lift, gain, multiply, offset, gamma, saturation: float,
                        reverse: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The grade's linear terms ``a``, ``b`` and per-channel gamma, after checking gamma, saturation and,
    for ``reverse``, that the grade can be inverted (shared by the NumPy and torch grades)."""
    a, b = grade_coefficients(blackpoint=blackpoint, whitepoint=whitepoint, lift=lift, gain=gain,
                              multiply=multiply, offset=offset)
    g = _triplet(gamma, "gamma")
    if np.any(g <= 0):
        raise InputError(f"grade gamma must be > 0, got {g.tolist()}")
    if reverse and np.any(np.abs(a) < 1e-12):
        raise InputError("grade reverse: the grade is flat (multiply or gain - lift is 0); it has no inverse")
    if not reverse and saturation < 0:
        raise InputError(f"grade saturation must be >= 0, got {saturation}")
    return a, b, g


def grade_straight(rgb: np.ndarray, *, blackpoint=0.0, whitepoint=1.0, lift=0.0, gain=1.0, multiply=1.0,
                   offset=0.0, gamma=1.0, saturation: float = 1.0, black_clamp: bool = False,
                   white_clamp: bool = False, reverse: bool = False) -> np.ndarray:
    """Grade straight colour ``(..., 3)`` float32; returns float32 (see :func:`grade`)."""
    a, b, g = checked_grade_terms(blackpoint=blackpoint, whitepoint=whitepoint, lift=lift, gain=gain,
                                  multiply=multiply, offset=offset, gamma=gamma, saturation=saturation,
                                  reverse=reverse)
    # float32 for speed; float64 where magnitudes could overflow float32 on the way
    big = rgb.size and float(np.abs(rgb).max()) > 1e30
    dt = np.dtype(np.float32) if rgb.dtype == np.float32 and not big else np.dtype(np.float64)
    x = np.asarray(rgb, dt)
    a, b, g = a.astype(dt), b.astype(dt), g.astype(dt)
    one = dt.type(1.0)

    l0, l1, l2 = (float(v) for v in AP1_LUMA)  # Python floats keep float32 arithmetic in float32

    def luma(v):
        return (v[..., 0] * l0 + v[..., 1] * l1 + v[..., 2] * l2)[..., None]

    if not reverse:
        y = x * a + b
        if np.any(g != 1.0):
            pos = y > 0
            y = np.where(pos, np.power(np.where(pos, y, one), one / g), y)
        if saturation != 1.0:
            lum = luma(y)
            y = lum + dt.type(saturation) * (y - lum)
    else:
        y = x
        if saturation != 1.0:
            if saturation <= 0:
                raise InputError("grade reverse: saturation 0 has no inverse")
            lum = luma(y)
            y = lum + (y - lum) / dt.type(saturation)
        if np.any(g != 1.0):
            pos = y > 0
            y = np.where(pos, np.power(np.where(pos, y, one), g), y)
        y = (y - b) / a
    if black_clamp:
        y = np.maximum(y, 0.0)
    if white_clamp:
        y = np.minimum(y, 1.0)
    y = np.clip(y, -_F32_MAX, _F32_MAX)
    return y.astype(np.float32, copy=False)


def grade(pixels: np.ndarray, *, blackpoint=0.0, whitepoint=1.0, lift=0.0, gain=1.0, multiply=1.0,
          offset=0.0, gamma=1.0, saturation: float = 1.0, black_clamp: bool = False, white_clamp: bool = False,
          reverse: bool = False) -> np.ndarray:
    """Nuke-style Grade of scene-linear pixels.

    Parameters
    ----------
    pixels : np.ndarray
        ``(H, W, 3)`` or premultiplied ``(H, W, 4)`` float32, any linear colour space (ACEScg in the
        working state; saturation uses ACEScg luminance weights).
    blackpoint, whitepoint, lift, gain, multiply, offset, gamma : float or sequence of 3 floats
        Per-channel (R, G, B) parameters as in Nuke's Grade (module docstring for the formula).
    saturation : float
        Saturation around ACEScg luminance after the grade (1: unchanged).
    black_clamp, white_clamp : bool
        Clamp the result below at 0 / above at 1 (both off by default; HDR values are never clipped
        unless asked).
    reverse : bool
        Apply the inverse grade.

    Returns
    -------
    np.ndarray
        Same shape and alpha state, float32.
    """
    pixels = _check_pixels(pixels, "grade input")
    _check_finite(pixels, "grade input")
    kw = dict(blackpoint=blackpoint, whitepoint=whitepoint, lift=lift, gain=gain, multiply=multiply,
              offset=offset, gamma=gamma, saturation=saturation, black_clamp=black_clamp,
              white_clamp=white_clamp, reverse=reverse)
    return apply_unpremultiplied(pixels, lambda rgb: grade_straight(rgb, **kw))


def apply_grade_params(pixels: np.ndarray, params: GradeParams, **kwargs: Any) -> np.ndarray:
    """:func:`grade` with a :class:`GradeParams`."""
    return grade(pixels, **params.to_dict(), **kwargs)


# -- reference finding and solving -------------------------------------------------------------------
def _weighted_quantile(v: np.ndarray, w: np.ndarray, q: float) -> float:
    order = np.argsort(v, kind="stable")
    v, w = v[order], w[order]
    cdf = (np.cumsum(w) - 0.5 * w) / w.sum()
    return float(np.interp(q, cdf, v))


def find_dark_bright(pixels: np.ndarray, *, weights=None, dark_percentile: float = 1.0,
                     bright_percentile: float = 99.0, mode: str = "luma", band: float = 0.5,
                     max_samples: int | None = 1 << 18, what: str = "image") -> tuple[np.ndarray, np.ndarray]:
    """Robust dark and bright reference colours of an image region.

    Parameters
    ----------
    pixels : np.ndarray
        ``(H, W, 3)`` or premultiplied ``(H, W, 4)`` float32 scene-linear ACEScg.
    weights : np.ndarray or None
        ``(H, W)`` matte restricting the region (multiplies alpha).
    dark_percentile, bright_percentile : float
        In [0, 100], dark < bright.
    mode : {"luma", "channel"}
        ``luma``: the mean straight colour of the pixels whose ACEScg luminance lies within ``band``
        percentiles of the dark (bright) percentile — near the black level but not the outliers beyond it
        (dead pixels, fireflies); ``channel``: each channel's own percentile.
    band : float
        Half-width, in percentiles, of the luminance band averaged in ``luma`` mode.

    Returns
    -------
    (dark, bright) : two ``(3,)`` float64 arrays of straight colour.
    """
    if mode not in SOLVE_MODES:
        raise InputError(f"unknown reference mode {mode!r}; allowed: {', '.join(SOLVE_MODES)}")
    if not (0.0 <= dark_percentile < bright_percentile <= 100.0):
        raise InputError(f"percentiles must satisfy 0 <= dark < bright <= 100, got {dark_percentile} "
                         f"and {bright_percentile}")
    x, w = collect_samples(pixels, weights, what=what, max_samples=max_samples)
    if mode == "channel":
        dark = np.array([_weighted_quantile(x[:, c], w, dark_percentile / 100) for c in range(3)])
        bright = np.array([_weighted_quantile(x[:, c], w, bright_percentile / 100) for c in range(3)])
        return dark, bright
    lum = x @ AP1_LUMA
    order = np.argsort(lum, kind="stable")
    cdf = (np.cumsum(w[order]) - 0.5 * w[order]) / w.sum()

    def band_mean(p: float) -> np.ndarray:
        lo, hi = max(p - band, 0.0) / 100, min(p + band, 100.0) / 100
        sel = order[(cdf >= lo) & (cdf <= hi)]
        if sel.size == 0:  # fewer pixels than the band is wide: the nearest one
            sel = order[[int(np.argmin(np.abs(cdf - p / 100)))]]
        return np.average(x[sel], axis=0, weights=w[sel])

    return band_mean(dark_percentile), band_mean(bright_percentile)


def region_mean(pixels: np.ndarray, box: Sequence[int], *, what: str = "image") -> np.ndarray:
    """Mean straight colour ``(3,)`` of a picked box ``(x, y, width, height)`` (alpha-weighted)."""
    pixels = _check_pixels(pixels, what)
    if len(box) != 4:
        raise InputError(f"{what}: a pick box is (x, y, width, height), got {box!r}")
    x, y, bw, bh = (int(v) for v in box)
    h, w = pixels.shape[:2]
    x0, y0, x1, y1 = max(x, 0), max(y, 0), min(x + bw, w), min(y + bh, h)
    if x1 <= x0 or y1 <= y0:
        raise InputError(f"{what}: pick box {tuple(box)} lies outside the {w}x{h} image")
    crop = np.ascontiguousarray(pixels[y0:y1, x0:x1])
    xs, ws = collect_samples(crop, None, what=f"{what} pick {tuple(box)}", max_samples=None)
    return np.average(xs, axis=0, weights=ws)


def _pick(value, pixels, what: str) -> np.ndarray | None:
    """A pick: None, 3 numbers (a colour), a number (grey) or {"box": [x, y, w, h]}."""
    if value is None:
        return None
    if isinstance(value, dict):
        if "box" not in value:
            raise InputError(f"{what}: a pick is a colour or {{'box': [x, y, w, h]}}, got {value!r}")
        if pixels is None:
            raise InputError(f"{what}: a box pick needs the image it is picked from")
        return region_mean(pixels, value["box"], what=what)
    return _triplet(value, what)


@dataclass(frozen=True)
class GradeSolution:
    """A solved grade and the references it was solved from (straight colour, float lists)."""

    params: GradeParams
    references: dict[str, list[float]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"params": self.params.to_dict(), "references": dict(self.references)}


def solve_grade(element: np.ndarray | None, reference: np.ndarray | None = None, *, element_weights=None,
                reference_weights=None, element_dark=None, element_bright=None, reference_dark=None,
                reference_bright=None, dark_percentile: float = 1.0, bright_percentile: float = 99.0,
                mode: str = "luma", max_samples: int | None = 1 << 18) -> GradeSolution:
    """Fit blackpoint/whitepoint (and lift/gain onto a reference) from dark and bright references.

    Parameters
    ----------
    element : np.ndarray or None
        ``(H, W, 3)`` or premultiplied ``(H, W, 4)`` float32 scene-linear element; may be None when both
        element references are given as colours.
    reference : np.ndarray or None
        The plate to match (same conventions); None with no reference picks: lift 0, gain 1 (the element's
        dark and bright colours are mapped to 0 and 1).
    element_weights, reference_weights : np.ndarray or None
        ``(H, W)`` mattes restricting where references are searched.
    element_dark, element_bright, reference_dark, reference_bright
        Picks that replace the automatic search: a colour (3 numbers), a grey level, or
        ``{"box": [x, y, w, h]}`` to average a picked region.
    dark_percentile, bright_percentile, mode
        The automatic search (:func:`find_dark_bright`).

    Returns
    -------
    GradeSolution
        ``params.blackpoint``/``whitepoint`` = element dark/bright, ``params.lift``/``gain`` = reference
        dark/bright; ``references`` records the four colours.

    Raises
    ------
    InputError
        When the element's dark and bright references coincide in a channel (a constant region).
    """
    picks = {"element_dark": _pick(element_dark, element, "element_dark"),
             "element_bright": _pick(element_bright, element, "element_bright"),
             "reference_dark": _pick(reference_dark, reference, "reference_dark"),
             "reference_bright": _pick(reference_bright, reference, "reference_bright")}
    kw = dict(dark_percentile=dark_percentile, bright_percentile=bright_percentile, mode=mode,
              max_samples=max_samples)
    if picks["element_dark"] is None or picks["element_bright"] is None:
        if element is None:
            raise InputError("solve_grade: give the element image or both element_dark and element_bright")
        d, b = find_dark_bright(element, weights=element_weights, what="element", **kw)
        picks["element_dark"] = d if picks["element_dark"] is None else picks["element_dark"]
        picks["element_bright"] = b if picks["element_bright"] is None else picks["element_bright"]
    if picks["reference_dark"] is None or picks["reference_bright"] is None:
        if reference is None:
            picks["reference_dark"] = np.zeros(3) if picks["reference_dark"] is None else picks["reference_dark"]
            picks["reference_bright"] = np.ones(3) if picks["reference_bright"] is None else picks["reference_bright"]
        else:
            d, b = find_dark_bright(reference, weights=reference_weights, what="reference", **kw)
            picks["reference_dark"] = d if picks["reference_dark"] is None else picks["reference_dark"]
            picks["reference_bright"] = b if picks["reference_bright"] is None else picks["reference_bright"]
    rng = picks["element_bright"] - picks["element_dark"]
    if np.any(np.abs(rng) < MIN_RANGE):
        c = "RGB"[int(np.argmin(np.abs(rng)))]
        raise InputError(f"solve_grade: the element's dark and bright references are equal in {c} "
                         f"({picks['element_dark'].tolist()} vs {picks['element_bright'].tolist()}); the region "
                         "is flat — pick regions that differ or widen the percentiles")
    params = GradeParams(blackpoint=picks["element_dark"], whitepoint=picks["element_bright"],
                         lift=picks["reference_dark"], gain=picks["reference_bright"])
    return GradeSolution(params, {k: [float(v) for v in val] for k, val in picks.items()})


def match_black_white(element: np.ndarray, reference: np.ndarray, *, element_weights=None,
                      reference_weights=None, dark_percentile: float = 1.0, bright_percentile: float = 99.0,
                      mode: str = "luma", strength: float = 1.0) -> np.ndarray:
    """Solve (:func:`solve_grade`) and apply a black/white-point match of ``element`` onto ``reference``.

    ``strength`` blends the grade's result with the element (linear mix). Returns float32 pixels in the
    element's shape and alpha state.
    """
    sol = solve_grade(element, reference, element_weights=element_weights, reference_weights=reference_weights,
                      dark_percentile=dark_percentile, bright_percentile=bright_percentile, mode=mode)
    out = apply_grade_params(element, sol.params)
    if strength != 1.0:
        out = element + np.float32(strength) * (out - element)
    return out


__all__ = ["GradeParams", "GradeSolution", "apply_grade_params", "find_dark_bright", "grade",
           "grade_coefficients", "grade_straight", "match_black_white", "region_mean", "solve_grade"]
