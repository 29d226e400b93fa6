"""Despill: remove the screen's light from foreground colour.

Spill is screen-coloured light on the foreground (bounce from the screen, screen seen through hair or
glass). Every method first measures how far the screen primary exceeds a *limit* made from the other two
channels (``L = w1 * o1 + w2 * o2``; red and blue for a green screen, the average by default) and then:

=================  ==================================================================================
method             result
=================  ==================================================================================
``average``        primary clamped to the average of the other two: ``G' = min(G, (R + B) / 2)``
``limit``          primary clamped to the larger of the other two: ``G' = min(G, max(R, B))`` (gentler)
``screen_subtract`` the screen colour S is subtracted in the amount ``k = (G - L(P)) / (G_S - L(S))`` that
                   brings G to the limit, and the luminance it carried (``k * Y(S)``) is restored as grey
``replace``        as ``screen_subtract``, but the removed light is replaced by ``replace_color`` scaled
                   to the same luminance (e.g. the new background's colour)
=================  ==================================================================================

All methods are homogeneous of degree one in the pixel colour, so they give the same result on
premultiplied and on straight colour: despill premultiplied foreground directly. No method clips values
above 1; luminance is taken with ACEScg (AP1) weights.

Example
-------
>>> import numpy as np
>>> from composite.matte.despill import despill
>>> px = np.array([[[0.2, 0.5, 0.1]]], np.float32)
>>> [round(float(c), 3) for c in despill(px, method="average")[0, 0]]
[0.2, 0.15, 0.1]
"""

from __future__ import annotations

import cv2
import numpy as np

from ..core.errors import InputError
from ..core.state import AP1_LUMINANCE
from .screen import check_rgb, screen_channels

METHODS = ("average", "limit", "screen_subtract", "replace")

#: Luminance weights of ACEScg (AP1 primaries, the Y row of AP1 → XYZ).
AP1_LUMA = np.array(AP1_LUMINANCE, np.float32)

#: Default screen colours used when the screen colour is not known (pure primaries).
DEFAULT_SCREEN = {"green": (0.0, 1.0, 0.0), "blue": (0.0, 0.0, 1.0)}


def spill_amount(rgb: np.ndarray, *, screen: str = "green", weights: tuple[float, float] = (0.5, 0.5),
                 strength: float = 1.0) -> np.ndarray:
    """``(H, W)`` float32 spill: how far the primary exceeds the limit ``w1 o1 + w2 o2`` (never below 0)."""
    p, o1, o2 = screen_channels(screen)
    lim = np.float32(weights[0]) * rgb[..., o1] + np.float32(weights[1]) * rgb[..., o2]
    s = rgb[..., p] - lim
    np.maximum(s, 0, out=s)
    if strength != 1.0:
        s *= np.float32(strength)
    return s


def despill(rgb: np.ndarray, *, method: str = "average", screen: str = "green",
            screen_color: np.ndarray | None = None, replace_color: tuple[float, float, float] | None = None,
            weights: tuple[float, float] = (0.5, 0.5), strength: float = 1.0,
            luma: np.ndarray = AP1_LUMA) -> np.ndarray:
    """Remove screen spill from colour.

    Parameters
    ----------
    rgb : (H, W, 3) or (H, W, 4) float32
        Scene-linear colour (ACEScg), premultiplied or straight (the result matches either way). A fourth
        (alpha) plane is passed through unchanged.
    method : {"average", "limit", "screen_subtract", "replace"}
        See the module docstring.
    screen : {"green", "blue"}
    screen_color : (3,) array, optional
        Screen colour for ``screen_subtract`` and ``replace`` (default: the pure primary).
    replace_color : (3,) floats, optional
        Colour that replaces the removed light for ``replace`` (default: grey, i.e. luminance restore).
    weights : (w1, w2)
        Weights of the two other channels in the limit (``average``, ``screen_subtract``, ``replace``).
    strength : float
        0 leaves the colour unchanged, 1 removes all spill above the limit.

    Returns
    -------
    ndarray, same shape, float32.
    """
    if method not in METHODS:
        raise InputError(f"unknown despill method {method!r}; allowed: {', '.join(METHODS)}")
    if not isinstance(rgb, np.ndarray) or rgb.ndim != 3 or rgb.shape[2] not in (3, 4):
        shape = getattr(rgb, "shape", None)
        raise InputError(f"despill: expected (H, W, 3) or (H, W, 4) float32 colour, got shape {shape}")
    check_rgb(rgb, "despill input")
    if strength == 0.0:
        return rgb.copy()
    planes = list(cv2.split(rgb))
    out = despill_planes(planes[:3], method=method, screen=screen, screen_color=screen_color,
                         replace_color=replace_color, weights=weights, strength=strength, luma=luma)
    return cv2.merge(out + planes[3:])


def despill_planes(planes, *, method: str = "average", screen: str = "green",
                   screen_color: np.ndarray | None = None, replace_color: tuple[float, float, float] | None = None,
                   weights: tuple[float, float] = (0.5, 0.5), strength: float = 1.0,
                   luma: np.ndarray = AP1_LUMA) -> list[np.ndarray]:
    """:func:`despill` of three contiguous ``(H, W)`` float32 planes (R, G, B), with OpenCV.

    Returns three planes; the inputs are not modified (a plane the method leaves alone is returned as
    is). Keyers call this on their split planes; :func:`despill` splits and merges around it.
    """
    if method not in METHODS:
        raise InputError(f"unknown despill method {method!r}; allowed: {', '.join(METHODS)}")
    out = list(planes)
    if strength == 0.0:
        return out
    p, o1, o2 = screen_channels(screen)
    if method == "limit":
        excess = cv2.subtract(planes[p], cv2.max(planes[o1], planes[o2]))
        cv2.threshold(excess, 0.0, 0.0, cv2.THRESH_TOZERO, dst=excess)
        out[p] = cv2.scaleAdd(excess, -float(strength), planes[p])
        return out
    spill = cv2.subtract(planes[p], cv2.addWeighted(planes[o1], float(weights[0]), planes[o2],
                                                    float(weights[1]), 0.0))
    cv2.threshold(spill, 0.0, 0.0, cv2.THRESH_TOZERO, dst=spill)
    if strength != 1.0:
        spill *= np.float32(strength)
    if method == "average":
        out[p] = cv2.subtract(planes[p], spill)
        return out
    s, s_spill, add = replacement_terms(method, screen=screen, screen_color=screen_color,
                                        replace_color=replace_color, weights=weights, luma=luma)
    # colour += (spill / s_spill) * (add - s), channel by channel
    for ch in range(3):
        out[ch] = cv2.scaleAdd(spill, float(np.float32(add[ch] - s[ch]) / np.float32(s_spill)), planes[ch])
    return out


def replacement_terms(method: str, *, screen: str = "green", screen_color=None, replace_color=None,
                      weights: tuple[float, float] = (0.5, 0.5),
                      luma: np.ndarray = AP1_LUMA) -> tuple[np.ndarray, float, np.ndarray]:
    """Constants of ``screen_subtract`` and ``replace``: ``(s, s_spill, add)`` — the screen colour (3,),
    its own spill (the excess of its primary over the limit) and the colour (3,) that replaces removed
    screen light (grey of the screen's luminance, or ``replace_color`` scaled to it). Shared with the torch
    despill; raises InputError when the screen colour has no excess."""
    p, o1, o2 = screen_channels(screen)
    s = np.asarray(screen_color if screen_color is not None else DEFAULT_SCREEN[screen], np.float32).reshape(3)
    s_spill = float(s[p] - weights[0] * s[o1] - weights[1] * s[o2])
    if s_spill <= 1e-6:
        raise InputError(f"despill: screen colour {s.tolist()} has no {screen} excess; it is not a {screen} "
                         "screen colour (give the screen colour the plate was keyed against)")
    luma = np.asarray(luma, np.float32).reshape(3)
    y_s = float(luma @ s)
    if method == "screen_subtract" or replace_color is None:
        add = np.full(3, y_s, np.float32)
    else:
        c = np.asarray(replace_color, np.float32).reshape(3)
        y_c = float(luma @ c)
        add = c * np.float32(y_s / y_c) if y_c > 1e-6 else c
    return s, s_spill, add
