"""Light wrap: background light bleeding over the foreground's edge.

A bright background seen beside an actor spills light over the actor's silhouette: in a photographed
plate the lens and the atmosphere scatter it there. A composite lacks it, and the foreground then looks
cut out. :func:`light_wrap` puts it back:

``wrap = intensity * a * G_size * (key(B) * (1 - a))``

``a`` is the foreground's alpha, ``B`` the background's colour, ``G_size`` a Gaussian blur of standard
deviation ``size`` pixels and ``key`` an optional highlight key on the background's luminance. The blur
spreads only the *visible* background (``B (1 - a)``), so light comes from around the silhouette and
decays into the foreground over a few ``size``; multiplying by ``a`` keeps it inside the foreground's
coverage, so the result stays premultiplied and nothing changes outside the foreground.

Example
-------
>>> import numpy as np
>>> from composite.integrate.lightwrap import light_wrap
>>> fg = np.zeros((32, 32, 4), np.float32); fg[:, 16:] = (0.1, 0.1, 0.1, 1.0)
>>> bg = np.ones((32, 32, 4), np.float32)
>>> out = light_wrap(fg, bg, size=2.0, intensity=1.0)
>>> bool(out[16, 16, 0] > 0.3), bool(np.allclose(out[16, 28], fg[16, 28])), bool((out[:, :16] == 0).all())
(True, True, True)
"""

from __future__ import annotations

import numpy as np

from ..core.errors import InputError
from ._util import finite, gaussian_smooth, luminance, plane, require_rgba, same_size, to_rgba

#: What :func:`light_wrap` returns.
OUTPUTS = ("foreground", "wrap", "comp")


def light_wrap(fg: np.ndarray, bg: np.ndarray, *, size: float = 12.0, intensity: float = 0.5,
               threshold: float | None = None, softness: float = 0.5, saturation: float = 1.0,
               output: str = "foreground", mask: np.ndarray | None = None) -> np.ndarray:
    """Wrap background light over the foreground's edge.

    Parameters
    ----------
    fg : np.ndarray
        ``(H, W, 4)`` float32 RGBA, premultiplied, scene-linear (the keyed element).
    bg : np.ndarray
        ``(H, W, 3)`` or ``(H, W, 4)`` float32, premultiplied or opaque, same colour space and size.
    size : float
        Standard deviation in pixels of the blur that spreads the background light (how far it reaches
        into the foreground). From 6 px on the blur is computed at reduced resolution
        (:func:`~composite.integrate._util.gaussian_smooth`), which is indistinguishable for light.
    intensity : float
        Gain of the wrapped light.
    threshold : float, optional
        Highlights only: background luminance (linear) from which light wraps; below it nothing wraps.
    softness : float
        Width of the highlight key in stops above ``threshold`` (full weight at ``threshold * 2**softness``).
    saturation : float
        Saturation of the wrapped light (1: as the background; 0: grey).
    output : {"foreground", "wrap", "comp"}
        ``foreground``: the foreground with the wrap added (premultiplied, same alpha) to merge over the
        background; ``wrap``: the light alone (RGB, alpha 0: add it with a plus merge);
        ``comp``: the foreground with wrap merged over the background.
    mask : np.ndarray, optional
        ``(H, W)`` weights limiting where light wraps.

    Returns
    -------
    np.ndarray
        ``(H, W, 4)`` float32, premultiplied. HDR values are kept; nothing is clipped.
    """
    who = "light wrap"
    fg = finite(require_rgba(fg, who), who, "foreground")
    bg = finite(to_rgba(bg, who, "background"), who, "background")
    same_size(fg, bg, who, ("foreground", "background"))
    if output not in OUTPUTS:
        raise InputError(f"{who}: unknown output {output!r}; allowed: {', '.join(OUTPUTS)}")
    m = plane(mask, fg.shape[:2], who)
    alpha = np.clip(fg[:, :, 3], 0.0, 1.0)
    inv = np.float32(1.0) - alpha
    light = bg[:, :, :3] * inv[:, :, None]
    if threshold is not None and threshold > 0:
        lum = luminance(bg[:, :, :3])
        stops = np.log2(np.maximum(lum, np.float32(1e-12)) / np.float32(threshold))
        key = np.clip(stops / np.float32(max(softness, 1e-6)), 0.0, 1.0)
        light *= key[:, :, None]
    wrap = gaussian_smooth(light, size) * np.float32(intensity)
    if saturation != 1.0:
        lw = luminance(wrap)[:, :, None]
        wrap = lw + np.float32(saturation) * (wrap - lw)
    weight = alpha if m is None else alpha * m
    wrap *= weight[:, :, None]
    out = fg.copy()
    if output == "wrap":
        out[:, :, :3] = wrap
        out[:, :, 3] = 0.0
        return out
    out[:, :, :3] += wrap
    if output == "comp":
        out += bg * (np.float32(1.0) - fg[:, :, 3:4])
    return out
