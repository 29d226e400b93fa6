"""Green- and blue-screen keyers.

Both keyers follow the compositing equation ``P = alpha F + (1 - alpha) S``: the plate P is the foreground F
over the screen S. They measure, per pixel, how much screen colour the plate holds (a colour difference,
``G - secondary(R, B)`` for a green screen) relative to the screen's own, derive alpha from it, and recover
the premultiplied, unspilled foreground by *screen subtraction*: ``alpha F = P - (1 - alpha) S``. The screen
S is a constant colour (given or estimated with :func:`~composite.matte.screen.estimate_screen_color`) or a
per-pixel clean screen plate (given, or built with :func:`~composite.matte.screen.estimate_clean_plate`),
which is how uneven screens are handled. Remaining spill on solid foreground (bounce light) is then
removed with :func:`~composite.matte.despill.despill`.

* :func:`key_color_difference` — IBK-like: red and blue/green weights of the secondary, a ``balance``
  towards ``max(R, B)`` that protects saturated foreground, optional clean plate.
* :func:`key_screen_subtract` — Keylight-like: screen gain and balance, clip black/white and a
  screen-matte softness.

Inputs are ``(H, W, 3)`` float32 scene-linear colour (ACEScg), no alpha (an opaque plate). Outputs are a
``(H, W, 3)`` float32 premultiplied foreground in the same space (never clipped above; negatives from
subtracting grain are set to 0) and an ``(H, W)`` float32 alpha in [0, 1].

Documented behaviour on bad input: an all-screen frame gives alpha 0 and black foreground; a frame with
no visible screen raises :class:`~composite.core.errors.InputError` when the screen colour must be
estimated (give ``screen_color`` to key such frames: the result is then alpha 1 wherever the colour has no
screen excess); a screen colour without screen excess raises; no division by zero can happen.

Example
-------
>>> import numpy as np
>>> from composite.matte.keyers import key_color_difference
>>> S = np.array([0.05, 0.5, 0.08], np.float32); F = np.array([0.3, 0.3, 0.3], np.float32)
>>> plate = np.empty((4, 4, 3), np.float32); plate[...] = S
>>> plate[1:3, 1:3] = 0.5 * F + 0.5 * S                # a half-transparent foreground
>>> fg, alpha = key_color_difference(plate, screen_color=S, despill=None)
>>> round(float(alpha[1, 1]), 3), round(float(alpha[0, 0]), 3)
(0.5, 0.0)
>>> [round(float(c), 3) for c in fg[1, 1]]             # premultiplied: 0.5 * F
[0.15, 0.15, 0.15]
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

import cv2
import numpy as np

from ..core.errors import InputError
from .despill import despill_planes
from .guided import guided_filter
from .ops import as_matte
from .screen import (
    check_rgb,
    check_screen,
    estimate_clean_plate,
    estimate_screen_color,
    screen_channels,
    screen_difference,
)

#: Per-pixel screen differences below this share of the screen colour's are floored (clean plates that
#: dip towards the foreground colour must not make alpha explode).
MIN_SCREEN_SHARE = 0.25


@dataclass(frozen=True)
class KeyResult:
    """A keyer's outputs. ``fg``: (H, W, 3) premultiplied, unspilled; ``alpha``: (H, W) in [0, 1];
    ``screen``: (3,) screen colour used (the clean plate's median when one was used); ``clean_plate``:
    (H, W, 3) or None (an automatic clean plate is brought to full size only when asked for)."""

    fg: np.ndarray
    alpha: np.ndarray
    screen_color: np.ndarray
    plate: object = field(default=None, repr=False)

    @functools.cached_property
    def clean_plate(self) -> np.ndarray | None:
        return self.plate.full() if isinstance(self.plate, _LowResPlate) else self.plate

    def __iter__(self):  # fg, alpha = key_...(...)
        return iter((self.fg, self.alpha))

    def rgba(self) -> np.ndarray:
        """(H, W, 4) float32 premultiplied RGBA."""
        return np.concatenate([self.fg, self.alpha[..., None]], axis=2)


class _LowResPlate:
    """A smooth clean plate kept on its coarse grid; differences are taken there and scaled up."""

    def __init__(self, small: np.ndarray, shape: tuple[int, int]):
        self.small = small
        self.shape = shape
        self._full = None

    def up(self, array: np.ndarray) -> np.ndarray:
        h, w = self.shape
        if array.shape[:2] == (h, w):
            return array
        return cv2.resize(array, (w, h), interpolation=cv2.INTER_LINEAR)

    def full(self) -> np.ndarray:
        if self._full is None:
            self._full = self.up(self.small)
        return self._full


def _resolve_screen(rgb, screen, screen_color, clean_plate):
    check_screen(screen)
    if isinstance(clean_plate, str):
        if clean_plate != "auto":
            raise InputError(f"clean_plate must be an array, 'auto' or None, got {clean_plate!r}")
        s = estimate_screen_color(rgb, screen=screen) if screen_color is None else \
            np.asarray(screen_color, np.float32).reshape(3)
        small = estimate_clean_plate(rgb, screen=screen, screen_color=s, full_size=False)
        return s, _LowResPlate(small, rgb.shape[:2])
    if clean_plate is not None:
        plate = check_rgb(clean_plate, "clean plate")
        if plate.shape[:2] != rgb.shape[:2]:
            raise InputError(f"clean plate is {plate.shape[1]}x{plate.shape[0]} but the plate is "
                             f"{rgb.shape[1]}x{rgb.shape[0]}; reformat it to the plate's size")
        s = np.asarray(screen_color, np.float32).reshape(3) if screen_color is not None else \
            np.median(plate[::4, ::4].reshape(-1, 3), axis=0).astype(np.float32)
        return s, plate
    if screen_color is None:
        return estimate_screen_color(rgb, screen=screen), None
    return np.asarray(screen_color, np.float32).reshape(3), None


@dataclass(frozen=True)
class LevelsPlan:
    """How a keyer turns the screen difference into alpha (shared by the NumPy and torch keyers):
    ``scale * d_plate / d_screen + offset``, then — when ``radius`` > 0 — the grain denoise (guided filter
    of that radius fitted on a grid ``subsample`` times smaller) and the levels ``(a - clip_black) / span``;
    without the denoise the levels are folded into ``scale`` and ``offset``."""

    scale: float
    offset: float
    span: float
    radius: int
    subsample: int


def levels_plan(gain, clip_black, clip_white, denoise_radius, denoise_eps, *, guided: bool) -> LevelsPlan:
    """Check the level and denoise settings and fold them (see :class:`LevelsPlan`)."""
    if clip_white <= clip_black:
        raise InputError(f"clip_white ({clip_white}) must be above clip_black ({clip_black})")
    if denoise_radius < 0 or denoise_eps <= 0:
        raise InputError(f"denoise_radius must be >= 0 and denoise_eps > 0 "
                         f"(got {denoise_radius}, {denoise_eps})")
    span = float(clip_white) - float(clip_black)
    if denoise_radius > 0 and guided:
        radius = max(1, int(round(denoise_radius)))
        # fitted on a grid radius/2 times smaller (5x5 windows there): the cost does not grow with radius
        return LevelsPlan(-float(gain), 1.0, span, radius, max(1, int(round(radius / 2))))
    return LevelsPlan(-float(gain) / span, (1.0 - float(clip_black)) / span, span, 0, 1)


def _alpha_from_difference(d_plate, d_screen, *, gain, clip_black, clip_white, guide=None,
                           denoise_radius: float = 0, denoise_eps: float = 1e-4):
    """alpha = clip(((1 - gain d_plate / d_screen) - clip_black) / (clip_white - clip_black), 0, 1).

    Folded into one scale and offset (``d_screen`` is a positive constant or a floored per-pixel plane,
    so no division by zero happens). With ``denoise_radius > 0`` the unclipped matte
    ``1 - gain d_plate / d_screen`` is first guided-filtered by the ``guide`` planes (the plate's screen
    primary and secondary, whose difference the matte is made of): grain in soft edges is averaged away
    while the transitions of the picture stay, and the levels are applied afterwards so the grain of the
    screen is not folded into the matte by the clip at 0.
    """
    plan = levels_plan(gain, clip_black, clip_white, denoise_radius, denoise_eps, guided=guide is not None)
    if np.ndim(d_screen) == 0:
        a = cv2.addWeighted(d_plate, plan.scale / float(d_screen), d_plate, 0.0, plan.offset)
    else:
        a = cv2.divide(d_plate, d_screen, scale=plan.scale)
        a += np.float32(plan.offset)
    if plan.radius:
        a = guided_filter(list(guide), a, radius=plan.radius, eps=float(denoise_eps), subsample=plan.subsample)
        a = cv2.addWeighted(a, 1.0 / plan.span, a, 0.0, -float(clip_black) / plan.span)
    # Round-off of the folded form leaves ~1e-8 on exact screen pixels: those are 0.
    cv2.threshold(a, 1e-6, 0.0, cv2.THRESH_TOZERO, dst=a)
    np.minimum(a, np.float32(1.0), out=a)
    return a


def _planar_secondary(planes, screen, weights, balance):
    """(primary plane, secondary plane) of (R, G, B) contiguous planes (see screen_difference)."""
    p, o1, o2 = screen_channels(screen)
    a, b = planes[o1], planes[o2]
    keep = 1.0 - float(balance)
    sec = cv2.addWeighted(a, float(weights[0]) * keep, b, float(weights[1]) * keep, 0.0)
    if balance:
        sec = cv2.scaleAdd(cv2.max(a, b), float(balance), sec)
    return planes[p], sec


def _planar_difference(planes, screen, weights, balance):
    """Colour difference of (R, G, B) contiguous planes, computed with OpenCV (see screen_difference)."""
    primary, sec = _planar_secondary(planes, screen, weights, balance)
    return cv2.subtract(primary, sec)


def _screen_diff(s, plate, screen, weights, balance):
    d_const = float(screen_difference(s[None, :], screen=screen, weights=weights, balance=balance)[0])
    if d_const <= 1e-6:
        raise InputError(f"screen colour {np.round(s, 4).tolist()} is not a {screen} screen: its colour "
                         f"difference is {d_const:.4g}; check `screen` or give the screen colour")
    if plate is None:
        return np.float32(d_const)
    if isinstance(plate, _LowResPlate):
        d = plate.up(_planar_difference(cv2.split(plate.small), screen, weights, balance))
    else:
        d = _planar_difference(cv2.split(plate), screen, weights, balance)
    np.maximum(d, np.float32(MIN_SCREEN_SHARE * d_const), out=d)
    return d


def _finish(planes, alpha, s, plate, *, garbage, core, despill, despill_kw, screen):
    h, w = alpha.shape
    for name, m in (("garbage", garbage), ("core", core)):
        if m is not None:
            m = as_matte(m, f"{name} matte")
            if m.shape != (h, w):
                raise InputError(f"{name} matte is {m.shape[1]}x{m.shape[0]} but the plate is {w}x{h}")
    if core is not None:
        np.maximum(alpha, np.clip(core, 0, 1), out=alpha)
    if garbage is not None:
        alpha *= np.clip(garbage, 0, 1)
    # Screen subtraction: alpha F = P - (1 - alpha) S, plane by plane with OpenCV; negatives (grain
    # subtracted from dark foreground) are 0, and so is everything where alpha is 0.
    inv = np.float32(1.0) - alpha
    keep = cv2.threshold(alpha, 0.0, 1.0, cv2.THRESH_BINARY)[1]
    if plate is None:
        out = [cv2.scaleAdd(inv, -float(s[c]), planes[c]) for c in range(3)]
    else:
        screens = [plate.up(x) for x in cv2.split(plate.small)] if isinstance(plate, _LowResPlate) \
            else cv2.split(plate)
        out = [cv2.subtract(planes[c], cv2.multiply(screens[c], inv)) for c in range(3)]
    for x in out:
        cv2.threshold(x, 0.0, 0.0, cv2.THRESH_TOZERO, dst=x)
        cv2.multiply(x, keep, dst=x)
    if despill:
        out = despill_planes(out, method=despill, screen=screen, screen_color=s, **despill_kw)
        for x in out:
            cv2.threshold(x, 0.0, 0.0, cv2.THRESH_TOZERO, dst=x)
    return cv2.merge(out)


def key_color_difference(rgb: np.ndarray, *, screen: str = "green", screen_color=None, clean_plate=None,
                         red_weight: float = 0.5, blue_green_weight: float = 0.5, balance: float = 0.5,
                         clip_black: float = 0.0, clip_white: float = 1.0, garbage: np.ndarray | None = None,
                         core: np.ndarray | None = None, despill: str | None = "average",
                         spill_strength: float = 1.0, replace_color=None, denoise_radius: float = 0,
                         denoise_eps: float = 1e-4) -> KeyResult:
    """IBK-like colour-difference keyer.

    ``d(X) = X_p - [(1 - balance)(red_weight X_r + blue_green_weight X_o) + balance max(X_r, X_o)]`` with
    p the screen primary and o the remaining channel (blue for green screens, green for blue screens);
    ``alpha = 1 - d(P) / d(S)`` where S is the screen colour or, per pixel, the clean plate; then the clip
    levels (after the optional grain denoise); then ``max`` with the core matte and ``times`` the garbage
    matte; then the foreground by screen subtraction and despill.

    Parameters
    ----------
    rgb : (H, W, 3) float32
        The plate, scene-linear working space (ACEScg), opaque.
    screen : {"green", "blue"}
    screen_color : (3,) array, optional
        Linear screen colour; estimated from the plate when not given.
    clean_plate : (H, W, 3) float32 array, "auto" or None
        A clean screen plate to key against per pixel; "auto" builds one from the plate
        (:func:`~composite.matte.screen.estimate_clean_plate`), for uneven screens.
    red_weight, blue_green_weight : float
        Weights of the two other channels in the secondary (IBK's "red weight" and "blue/green weight").
    balance : float in [0, 1]
        Moves the secondary from the weighted average towards ``max(R, B)``: higher values hold
        saturated foreground colours (yellows, cyans) more solid at the cost of softer edges.
    clip_black, clip_white : float
        Alpha levels: values at or below clip_black become 0, at or above clip_white become 1.
    garbage, core : (H, W) float32, optional
        Garbage matte (multiplies alpha: 0 removes) and core matte (alpha at least this).
    despill : {"average", "limit", "screen_subtract", "replace"} or None
        Despill applied to the foreground after screen subtraction (None: off).
    spill_strength, replace_color
        Passed to :func:`~composite.matte.despill.despill`.
    denoise_radius : float
        Grain denoise of the matte: radius in pixels of a guided filter (He et al.) of the unclipped matte
        by the plate's screen primary and secondary channels, fitted on a grid ``radius / 2`` times
        smaller (so its cost does not grow with the radius); 0 (default) is off. Soft edges (hair,
        motion blur) lose the plate's grain but keep their shape; 8 suits film grain at HD.
    denoise_eps : float
        The filter's regularisation, in squared linear units of the plate: structure whose local
        variance is well below it is smoothed away.

    Returns
    -------
    KeyResult
        ``fg`` (H, W, 3) float32 premultiplied, ``alpha`` (H, W) float32; unpacks as ``fg, alpha``.
    """
    rgb = check_rgb(rgb)
    s, plate = _resolve_screen(rgb, screen, screen_color, clean_plate)
    weights = (red_weight, blue_green_weight)
    if not 0.0 <= balance <= 1.0:
        raise InputError(f"balance must be within [0, 1], got {balance}")
    d_s = _screen_diff(s, plate, screen, weights, balance)
    planes = cv2.split(rgb)
    primary, sec = _planar_secondary(planes, screen, weights, balance)
    d_p = cv2.subtract(primary, sec)
    alpha = _alpha_from_difference(d_p, d_s, gain=1.0, clip_black=clip_black, clip_white=clip_white,
                                   guide=(primary, sec), denoise_radius=denoise_radius, denoise_eps=denoise_eps)
    sw = red_weight + blue_green_weight
    dkw = {"strength": spill_strength, "replace_color": replace_color,
           "weights": (red_weight / sw, blue_green_weight / sw) if sw > 0 else (0.5, 0.5)}
    fg = _finish(planes, alpha, s, plate, garbage=garbage, core=core, despill=despill, despill_kw=dkw,
                 screen=screen)
    return KeyResult(fg, alpha, s, plate)


def key_screen_subtract(rgb: np.ndarray, *, screen: str = "green", screen_color=None, clean_plate=None,
                        screen_gain: float = 1.05, screen_balance: float = 0.5, clip_black: float = 0.0,
                        clip_white: float = 1.0, softness: float = 0.0, garbage: np.ndarray | None = None,
                        core: np.ndarray | None = None, despill: str | None = "screen_subtract",
                        spill_strength: float = 1.0, replace_color=None, denoise_radius: float = 0,
                        denoise_eps: float = 1e-4) -> KeyResult:
    """Keylight-like screen-subtraction keyer.

    The screen matte is ``1 - screen_gain * sat(P) / sat(S)`` with
    ``sat(X) = X_p - (screen_balance X_o1 + (1 - screen_balance) X_o2)`` (o1 = red; o2 = blue for green
    screens, green for blue screens); the matte's softness (a Gaussian blur of ``softness`` pixels) is
    applied before the clip levels; the foreground is the plate minus the screen colour times
    ``1 - alpha``, despilled.

    Parameters
    ----------
    rgb : (H, W, 3) float32, scene-linear working space (ACEScg), opaque
    screen : {"green", "blue"}
    screen_color : (3,) array, optional
        Estimated from the plate when not given.
    clean_plate : (H, W, 3) float32, "auto" or None
        Per-pixel screen (for uneven screens).
    screen_gain : float
        How much of the screen is removed: above 1 cleans the background harder, below 1 keeps more
        of the foreground's transparency.
    screen_balance : float in [0, 1]
        Weight of red against the remaining channel in the saturation measure.
    clip_black, clip_white : float
        Screen-matte levels.
    softness : float
        Gaussian blur (pixels) of the screen matte before clipping; 0 is off.
    garbage, core, despill, spill_strength, replace_color, denoise_radius, denoise_eps
        As for :func:`key_color_difference` (the denoise runs after the softness blur).

    Returns
    -------
    KeyResult
    """
    rgb = check_rgb(rgb)
    if not 0.0 <= screen_balance <= 1.0:
        raise InputError(f"screen_balance must be within [0, 1], got {screen_balance}")
    if screen_gain <= 0:
        raise InputError(f"screen_gain must be positive, got {screen_gain}")
    s, plate = _resolve_screen(rgb, screen, screen_color, clean_plate)
    weights = (screen_balance, 1.0 - screen_balance)
    d_s = _screen_diff(s, plate, screen, weights, 0.0)
    planes = cv2.split(rgb)
    primary, sec = _planar_secondary(planes, screen, weights, 0.0)
    d_p = cv2.subtract(primary, sec)
    if softness > 0:
        d_p = d_p / d_s
        d_p = cv2.GaussianBlur(d_p, (0, 0), float(softness), borderType=cv2.BORDER_REPLICATE)
        d_s = np.float32(1.0)
    alpha = _alpha_from_difference(d_p, d_s, gain=screen_gain, clip_black=clip_black, clip_white=clip_white,
                                   guide=(primary, sec), denoise_radius=denoise_radius, denoise_eps=denoise_eps)
    dkw = {"strength": spill_strength, "replace_color": replace_color, "weights": weights}
    fg = _finish(planes, alpha, s, plate, garbage=garbage, core=core, despill=despill, despill_kw=dkw,
                 screen=screen)
    return KeyResult(fg, alpha, s, plate)
