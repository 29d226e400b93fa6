"""Lens defocus: uniform (one bokeh kernel) and depth-driven (layered by circle of confusion).

Defocus is a convolution of scene-linear light with the lens aperture's shape (the bokeh): a disc, or a
polygon for an iris with straight blades. Working on scene-linear, unclipped values is what makes bright
highlights bloom into crisp discs as they do through a lens. Images are convolved premultiplied (colour
and alpha together), which keeps edges free of dark or bright fringes.

Depth-driven defocus (:func:`depth_defocus`) uses a thin-lens circle of confusion. For a lens focused at
distance ``focus``, a point at distance ``d`` is blurred into a disc of radius

``c(d) = size * (1 - focus / d)``   (pixels; clamped to ``[-max_radius, max_radius]``)

``size`` is the radius at infinity (it grows with the aperture); ``c`` is negative in front of the focal
plane. The image is split into ``layers`` slices of equal ``c`` spacing that include ``c = 0`` (so
in-focus pixels stay sharp); a pixel between two slices' radii is shared between them linearly. Each
slice (premultiplied colour and alpha times its weight) is convolved with its bokeh and the slices are
merged back to front with ``over``, so near, blurred objects spill over what lies behind them and sharp
near objects occlude blurred far ones. A slice lacks what nearer objects hide; before it is blurred it
is continued behind them with its own colours from around (a normalised Gaussian average as wide as its
bokeh), so its blurred edge does not fade toward transparency next to a sharp object, and a blurred
near object turns semi-transparent over plausible background rather than over nothing. Outside the
image's own coverage nothing is added: an element's silhouette stays. At the end the result is
renormalised to the expected coverage (1 for an opaque image; the summed blurred coverage, at most 1,
for an element with alpha).

Example
-------
>>> import numpy as np
>>> from composite.integrate.defocus import defocus, disc_kernel
>>> k = disc_kernel(3.0)
>>> k.shape, round(float(k.sum()), 6)
((7, 7), 1.0)
>>> img = np.zeros((21, 21, 4), np.float32); img[10, 10] = 1.0
>>> out = defocus(img, radius=3.0)
>>> round(float(out[..., 3].sum()), 5), round(float(out[10, 10, 3] / k[3, 3]), 5)
(1.0, 1.0)
"""

from __future__ import annotations

import functools
import math

import cv2
import numpy as np

from ..core.errors import InputError
from ._util import DEPTH_MODES, as_array, checked_depth, finite, gaussian_smooth, to_rgba

#: Border handling of the uniform defocus: extend edge pixels, or transparent black outside.
BORDERS = {"extend": cv2.BORDER_REPLICATE, "black": cv2.BORDER_CONSTANT}



@functools.lru_cache(maxsize=64)
def _kernel_cached(radius: float, blades: int, rotation: float, aspect: float, supersample: int) -> np.ndarray:
    half = int(math.ceil(radius * max(1.0, aspect)))
    n = 2 * half + 1
    s = supersample
    sub = (np.arange(n * s) + 0.5) / s - 0.5 - half           # sub-sample centres, pixel units
    y, x = np.meshgrid(sub, sub, indexing="ij")
    x = x / aspect
    rho = np.hypot(x, y)
    if blades >= 3:
        theta = np.arctan2(y, x) - math.radians(rotation)
        sector = 2 * math.pi / blades
        local = np.mod(theta, sector) - sector / 2
        inside = rho * np.cos(local) <= radius * math.cos(math.pi / blades)
    else:
        inside = rho <= radius
    k = inside.reshape(n, s, n, s).mean(axis=(1, 3))
    k = (k / k.sum()).astype(np.float32)
    k.setflags(write=False)
    return k


def disc_kernel(radius: float, *, blades: int = 0, rotation: float = 0.0, aspect: float = 1.0,
                supersample: int = 8) -> np.ndarray:
    """Anti-aliased bokeh kernel: a disc, or a regular polygon with ``blades`` sides.

    ``radius``: circumradius in pixels (below 0.5 the kernel is the identity, ``[[1]]``). ``rotation``:
    degrees. ``aspect``: bokeh width over height (below 1 for an anamorphic lens's tall ovals).
    Returns a ``(2h + 1, 2h + 1)`` float32 array summing to 1, ``h = ceil(radius * max(1, aspect))``;
    read-only (cached).
    """
    if not math.isfinite(radius) or radius < 0:
        raise InputError(f"defocus: radius must be a finite number >= 0, got {radius}")
    if aspect <= 0 or not math.isfinite(aspect):
        raise InputError(f"defocus: aspect must be positive, got {aspect}")
    if radius < 0.5:
        return np.ones((1, 1), np.float32)
    return _kernel_cached(float(radius), int(blades), float(rotation), float(aspect), int(supersample))


def _convolve(pixels: np.ndarray, kernel: np.ndarray, border: int) -> np.ndarray:
    """True convolution (kernel flipped for OpenCV's correlation) of up to any number of channels."""
    if kernel.shape == (1, 1):
        return pixels.copy()
    k = np.ascontiguousarray(kernel[::-1, ::-1])
    parts = []
    for i in range(0, pixels.shape[2], 4):
        chunk = np.ascontiguousarray(pixels[:, :, i:i + 4])
        out = cv2.filter2D(chunk, -1, k, borderType=border)
        parts.append(out[:, :, None] if out.ndim == 2 else out)
    return parts[0] if len(parts) == 1 else np.concatenate(parts, axis=2)


def defocus(image: np.ndarray, *, radius: float, blades: int = 0, rotation: float = 0.0, aspect: float = 1.0,
            border: str = "extend") -> np.ndarray:
    """Uniform lens defocus.

    Parameters
    ----------
    image : np.ndarray
        ``(H, W, C)`` float32, scene-linear; premultiplied if it carries alpha (all channels are
        convolved alike, which is what keeps premultiplied images correct).
    radius : float
        Bokeh radius in pixels (0: unchanged copy).
    blades, rotation, aspect
        Bokeh shape (see :func:`disc_kernel`).
    border : {"extend", "black"}
        Outside the frame: repeat the edge pixels, or transparent black.

    Returns
    -------
    np.ndarray
        Same shape, float32; HDR values kept (a bright point becomes a disc of the same total energy).
    """
    who = "defocus"
    image = finite(as_array(image, who), who)
    if border not in BORDERS:
        raise InputError(f"{who}: unknown border {border!r}; allowed: {', '.join(BORDERS)}")
    return _convolve(image, disc_kernel(radius, blades=blades, rotation=rotation, aspect=aspect),
                     BORDERS[border])


def circle_of_confusion(depth: np.ndarray, *, focus: float, size: float, max_radius: float,
                        depth_mode: str = "distance") -> np.ndarray:
    """Signed circle-of-confusion radius in pixels, ``size (1 - focus / d)`` clamped to ``±max_radius``.

    ``depth``: ``(H, W)`` float32 distances (``inf`` allowed: the sky) or, with ``depth_mode="inverse"``,
    inverse distances (0 is infinitely far). Negative distances or NaN raise :class:`InputError`.
    """
    who = "depth defocus"
    if depth_mode not in DEPTH_MODES:
        raise InputError(f"{who}: unknown depth_mode {depth_mode!r}; allowed: {', '.join(DEPTH_MODES)}")
    if not (focus > 0 and math.isfinite(focus)):
        raise InputError(f"{who}: focus distance must be positive and finite, got {focus}")
    depth = checked_depth(depth, depth_mode, who)
    with np.errstate(divide="ignore", invalid="ignore"):
        inv = depth if depth_mode == "inverse" else np.float32(1.0) / depth    # 1/d; d = 0 → inf
    coc = np.float32(size) * (np.float32(1.0) - np.float32(focus) * inv)
    coc = np.nan_to_num(coc, nan=0.0, posinf=max_radius, neginf=-max_radius)
    return np.clip(coc, -max_radius, max_radius).astype(np.float32)


def coc_levels(size: float, max_radius: float, layers: int) -> np.ndarray:
    """Signed radii of the slices: equal steps over ``[-max_radius, min(size, max_radius)]`` including 0."""
    hi = min(size, max_radius)
    span = max_radius + hi
    if layers < 2 or span <= 0:
        return np.zeros(1, np.float32)
    step = span / (layers - 1)
    near = np.arange(0.0, max_radius + 1e-9, step)[1:]
    far = np.arange(0.0, hi + 1e-9, step)
    levels = np.concatenate([-near[::-1], far])
    if levels[0] > -max_radius + 1e-6:
        levels = np.concatenate([[-max_radius], levels])
    if levels[-1] < hi - 1e-6:
        levels = np.concatenate([levels, [hi]])
    return levels.astype(np.float32)


def _extend_behind(layer: np.ndarray, hidden: np.ndarray, radius: float) -> np.ndarray:
    """Continue a slice behind the nearer content that hides it, with its own nearby colour.

    ``layer``: premultiplied RGBA of the slice; ``hidden``: coverage of nearer slices (unblurred). What
    lies behind a nearer object is unknown; the slice's colour averaged over ``radius`` (normalised by its
    coverage) is assumed to continue there, up to ``radius`` pixels from the slice, so blurring the
    slice does not pull its edge toward transparency where an object stands in front of it.
    """
    num = gaussian_smooth(layer, max(radius, 1.0))
    den = num[:, :, 3]
    ok = den > 1e-3
    fill = np.zeros_like(layer)
    np.divide(num, den[:, :, None], out=fill, where=ok[:, :, None])      # alpha 1 where reached
    # Only within ``radius`` of the slice's own pixels: it is not invented far behind an object.
    empty = (layer[:, :, 3] <= 0).astype(np.uint8)
    near = cv2.distanceTransform(empty, cv2.DIST_L2, 5) <= radius if empty.all() == 0 else np.zeros_like(ok)
    room = np.clip(hidden, 0.0, 1.0) * (np.float32(1.0) - np.clip(layer[:, :, 3], 0.0, 1.0)) * near
    return layer + room[:, :, None] * fill


#: Slices blurred by this radius or more are convolved at reduced resolution (see :func:`_blur_slice`).
_REDUCE_FROM = 10.0


def _blur_slice(layer: np.ndarray, radius: float, *, blades: int, rotation: float, aspect: float) -> np.ndarray:
    """Convolve a slice with its bokeh; large bokehs at 1/2 or 1/4 resolution (area down, linear up).

    A slice blurred by ``radius`` pixels holds no detail finer than that, so from ``_REDUCE_FROM`` px
    on it is convolved at a resolution where the bokeh keeps a radius of at least 5 px: 4 to 16 times
    less work for a difference that only softens the bokeh's rim by about one pixel.
    """
    factor = 1
    while radius / (factor * 2) >= 5.0 and radius >= _REDUCE_FROM and factor < 4:
        factor *= 2
    kernel = disc_kernel(radius / factor, blades=blades, rotation=rotation, aspect=aspect)
    if factor == 1:
        return _convolve(layer, kernel, cv2.BORDER_REPLICATE)
    h, w = layer.shape[:2]
    small = cv2.resize(layer, (max(1, -(-w // factor)), max(1, -(-h // factor))), interpolation=cv2.INTER_AREA)
    small = small[:, :, None] if small.ndim == 2 else small
    blurred = _convolve(small, kernel, cv2.BORDER_REPLICATE)
    up = cv2.resize(blurred, (w, h), interpolation=cv2.INTER_LINEAR)
    return up[:, :, None] if up.ndim == 2 else up


def depth_defocus(image: np.ndarray, depth: np.ndarray, *, focus: float, size: float = 8.0,
                  max_radius: float = 24.0, layers: int = 12, depth_mode: str = "distance", blades: int = 0,
                  rotation: float = 0.0, aspect: float = 1.0) -> np.ndarray:
    """Depth-driven lens defocus (layered; see the module notes).

    Parameters
    ----------
    image : np.ndarray
        ``(H, W, 3)`` opaque or ``(H, W, 4)`` premultiplied float32, scene-linear.
    depth : np.ndarray
        ``(H, W)`` (or ``(H, W, 1)``) float32 distances in scene units (``inf`` for the sky), or inverse
        distances with ``depth_mode="inverse"``.
    focus : float
        Focus distance, in the depth's units.
    size : float
        Bokeh radius in pixels of a point at infinity.
    max_radius : float
        Largest radius (near objects are clamped to it).
    layers : int
        Number of slices of equal radius spacing (more: smoother transitions, slower).
    blades, rotation, aspect
        Bokeh shape (see :func:`disc_kernel`).

    Returns
    -------
    np.ndarray
        Same shape as ``image``, float32, premultiplied; no NaN.
    """
    who = "depth defocus"
    image = finite(as_array(image, who), who)
    nc = image.shape[2]
    if nc not in (3, 4):
        raise InputError(f"{who}: image must be RGB or RGBA, got {nc} channel(s)")
    depth = np.asarray(depth)
    if depth.ndim == 3:
        depth = depth[:, :, 0]
    if depth.shape != image.shape[:2]:
        raise InputError(f"{who}: depth is {depth.shape[1] if depth.ndim == 2 else '?'}x{depth.shape[0]} but "
                         f"the image is {image.shape[1]}x{image.shape[0]}; reformat the depth to the image")
    if layers < 2:
        raise InputError(f"{who}: layers must be at least 2, got {layers}")
    if max_radius < 0 or size < 0:
        raise InputError(f"{who}: size and max_radius must be >= 0")
    coc = circle_of_confusion(depth, focus=focus, size=size, max_radius=max_radius, depth_mode=depth_mode)
    rgba = to_rgba(image, who)
    opaque = nc == 3 or bool(np.all(rgba[:, :, 3] == 1.0))
    levels = coc_levels(size, max_radius, layers)
    h, w = coc.shape
    # Tent weights between neighbouring levels.
    pos = np.interp(coc, levels, np.arange(levels.size, dtype=np.float64)).astype(np.float32)
    lo = np.floor(pos).astype(np.int32)
    frac = pos - lo
    out = np.zeros((h, w, 4), np.float32)
    plus_alpha = np.zeros((h, w), np.float32)
    alpha = np.clip(rgba[:, :, 3], 0.0, 1.0)
    nearer = alpha.copy()                                          # coverage of this slice and nearer ones
    counts = np.bincount(lo.ravel(), minlength=levels.size + 1)
    present = [bool(counts[k] or (k > 0 and counts[k - 1])) for k in range(levels.size)]
    for k in range(levels.size - 1, -1, -1):                       # far (large c) to near
        if not present[k]:
            continue
        wk = np.where(lo == k, np.float32(1.0) - frac, np.float32(0.0))
        if k > 0:
            wk += np.where(lo == k - 1, frac, np.float32(0.0))
        rows = np.flatnonzero(wk.any(axis=1))
        if rows.size == 0:
            continue
        cols = np.flatnonzero(wk.any(axis=0))
        nearer -= wk * alpha
        np.maximum(nearer, 0.0, out=nearer)
        radius = abs(float(levels[k]))
        kernel = disc_kernel(radius, blades=blades, rotation=rotation, aspect=aspect)
        # Continue the slice behind nearer content as far as that content's bokeh makes it see-through.
        reach = max([radius] + [abs(float(levels[j])) for j in range(k) if present[j]])
        pad = kernel.shape[0] // 2 + int(math.ceil(reach)) + 1
        y0, y1 = max(rows[0] - pad, 0), min(rows[-1] + pad + 1, h)
        x0, x1 = max(cols[0] - pad, 0), min(cols[-1] + pad + 1, w)
        layer = rgba[y0:y1, x0:x1] * wk[y0:y1, x0:x1, None]
        hidden = nearer[y0:y1, x0:x1]
        if reach >= 0.5 and hidden.any():
            layer = _extend_behind(layer, hidden, reach)
        blurred = _blur_slice(layer, radius, blades=blades, rotation=rotation, aspect=aspect)
        region = out[y0:y1, x0:x1]
        region *= np.float32(1.0) - blurred[:, :, 3:4]
        region += blurred
        plus_alpha[y0:y1, x0:x1] += blurred[:, :, 3]
    target = np.ones((h, w), np.float32) if opaque else np.minimum(plus_alpha, np.float32(1.0))
    have = out[:, :, 3]
    scale = np.divide(target, have, out=np.ones_like(target), where=have > 1e-6)
    out *= scale[:, :, None]
    return out[:, :, :3].copy() if nc == 3 else out
