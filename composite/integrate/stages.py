"""Pipeline stages for plate integration: LightWrap, EdgeBlend, Defocus, DepthDefocus, Haze, LensDistort.

Each wraps the pure function of the same module (see :mod:`composite.integrate`). Two-input stages
(``fg``, ``bg``) work over the union of both data windows; depth comes from a connected ``depth`` input
or from a layer of the image (``depth_channel``, ``depth.Z`` by default).

Recipe example::

    stages:
      wrap:  {type: LightWrap, inputs: {fg: actor, bg: world}, params: {size: 16, intensity: 0.4}}
      comp:  {type: Merge, inputs: {a: wrap, b: world}}
      lens:  {type: LensDistort, inputs: {image: comp}, params: {direction: apply, k1: -0.05}}
"""

from __future__ import annotations

import numpy as np

from ..core.coverage import COVERAGE_LAYER, coverage, reassociate, with_coverage
from ..core.errors import InputError, StateError
from ..core.image import RGBA, Image, Window
from ..core.merge import as_rgba, merge_images, to_window
from ..core.state import AlphaState
from ..graph.params import Param
from ..graph.registry import register
from ..graph.stage import Input, Stage
from . import defocus as dfm
from . import lens as lensm
from .edge_blend import edge_blend
from .haze import haze
from .lightwrap import OUTPUTS, light_wrap

_PREMULTIPLIED = (AlphaState.PREMULTIPLIED,)


def _pair(fg: Image, bg: Image, who: str) -> tuple[Image, Image, Window]:
    """Both inputs as RGBA premultiplied over the union of their data windows."""
    if fg.colorspace != bg.colorspace:
        raise StateError(f"{who}: fg is in colour space {fg.colorspace}, bg in {bg.colorspace}; convert one first")
    if not fg.has_alpha:
        raise StateError(f"{who}: fg has no alpha (channels {fg.channels}); it needs the element's matte")
    fg = as_rgba(fg, who=f"{who} (fg)")
    bg = as_rgba(bg, who=f"{who} (bg)")
    window = fg.data_window.union(bg.data_window)
    return to_window(fg, window), to_window(bg, window), window


def _rgba_pixels(image: Image, who: str, *, filter_coverage: bool = True) -> tuple[np.ndarray, list[int]]:
    """The colour (+alpha) planes of an image and their indices; with ``filter_coverage`` (spatial filters
    that move alpha) the ai_coverage plane follows as a last plane."""
    try:
        idx = [image.channels.index(c) for c in ("R", "G", "B")]
    except ValueError:
        raise StateError(f"{who}: expects R, G, B channels, got {image.channels}") from None
    if image.alpha is AlphaState.PREMULTIPLIED and "A" in image.channels:
        idx.append(image.channels.index("A"))
        if filter_coverage and COVERAGE_LAYER in image.layers:
            # ai_coverage is associated with alpha: it is filtered as one more plane after A
            planes = np.concatenate([image.pixels[:, :, idx], coverage(image)[..., None]], axis=2)
            return np.ascontiguousarray(planes), idx + [_COVERAGE_PLANE]
    return np.ascontiguousarray(image.pixels[:, :, idx]), idx


_COVERAGE_PLANE = -1


def _put(image: Image, idx: list[int], result: np.ndarray) -> Image:
    pixels = image.pixels.copy()
    if idx and idx[-1] == _COVERAGE_PLANE:
        pixels[:, :, idx[:-1]] = result[..., :-1]
        return with_coverage(image.with_pixels(pixels), result[..., -1])
    pixels[:, :, idx] = result
    return image.with_pixels(pixels)


def _depth_plane(image: Image, depth: Image | None, channel: str, who: str) -> np.ndarray:
    """``(H, W)`` depth over the image's data window, from the depth input or a layer of the image."""
    if depth is not None:
        if depth.data_window != image.data_window:
            if depth.data_window.intersect(image.data_window) != image.data_window:
                raise InputError(f"{who}: the depth input's data window {depth.data_window} does not cover the "
                                 f"image's {image.data_window}; reformat or crop the depth to the image")
            depth = to_window(depth, image.data_window)
        names = depth.all_channel_names()
        if channel in names:
            return depth.channel(channel)
        short = channel.rsplit(".", 1)[-1]
        if short in depth.channels:
            return depth.channel(short)
        if len(depth.channels) == 1:
            return depth.pixels[:, :, 0]
        raise InputError(f"{who}: the depth input has no channel {channel!r}; channels: {names}")
    try:
        return image.channel(channel)
    except InputError:
        raise InputError(f"{who}: no depth: the image has no channel {channel!r} (layers: {sorted(image.layers)}); "
                         "connect a depth input or set depth_channel") from None


@register
class LightWrap(Stage):
    """Background light bleeding over the foreground's edge (see :mod:`composite.integrate.lightwrap`)."""

    inputs = {"fg": Input("keyed element, premultiplied RGBA", alpha=_PREMULTIPLIED),
              "bg": Input("background, premultiplied or opaque")}
    params = {
        "size": Param(float, 12.0, range=(0.0, 1000.0), doc="spread of the light (Gaussian sigma, px)"),
        "intensity": Param(float, 0.5, range=(0.0, 100.0)),
        "threshold": Param(float, None, optional=True, range=(0.0, None),
                           doc="highlights only: background luminance from which light wraps"),
        "softness": Param(float, 0.5, range=(0.0, 16.0), doc="highlight key width in stops"),
        "saturation": Param(float, 1.0, range=(0.0, 4.0)),
        "output": Param(str, "foreground", choices=OUTPUTS,
                        doc="foreground (to merge over bg), wrap (light only, alpha 0) or comp (merged)"),
    }

    def identity(self, t):
        return "fg" if self.p.output == "foreground" and (self.p.intensity == 0.0 or self.p.size == 0.0) else None

    def process(self, t, fg, bg):
        fa, ba, window = _pair(fg, bg, self.node_name)
        out = "foreground" if self.p.output == "comp" else self.p.output
        px = light_wrap(fa.pixels, ba.pixels, size=self.p.size, intensity=self.p.intensity,
                        threshold=self.p.threshold, softness=self.p.softness, saturation=self.p.saturation,
                        output=out)
        wrapped = to_window(fa.with_pixels(px), fg.data_window)
        if self.p.output == "comp":
            return merge_images("over", wrapped, bg)
        return wrapped


@register
class EdgeBlend(Stage):
    """``fg over bg`` with colours blended across a thin band along the fg's matte edge."""

    inputs = {"fg": Input("keyed element, premultiplied RGBA", alpha=_PREMULTIPLIED),
              "bg": Input("background, premultiplied or opaque")}
    params = {
        "size": Param(float, 2.0, range=(0.0, 200.0), doc="half-width of the edge band (px)"),
        "blur": Param(float, None, optional=True, range=(0.0, 200.0), doc="blend blur sigma (default: size)"),
        "amount": Param(float, 1.0, range=(0.0, 1.0)),
    }

    def process(self, t, fg, bg):
        fa, ba, window = _pair(fg, bg, self.node_name)
        px = edge_blend(fa.pixels, ba.pixels, size=self.p.size, blur=self.p.blur, amount=self.p.amount)
        layers = {k: v for k, v in to_window(bg, window).layers.items()}
        return ba.replace(pixels=px, channels=RGBA, alpha=AlphaState.PREMULTIPLIED, layers=layers,
                          metadata={**fg.metadata, **bg.metadata})


def _bokeh_params() -> dict[str, Param]:
    return {
        "blades": Param(int, 0, range=(0, 16), doc="iris blades (0: round bokeh; 3 or more: polygon)"),
        "rotation": Param(float, 0.0, range=(-360.0, 360.0), doc="polygon rotation (degrees)"),
        "aspect": Param(float, 1.0, range=(0.1, 10.0), doc="bokeh width over height"),
    }


@register
class Defocus(Stage):
    """Uniform lens defocus with a disc or polygonal bokeh (premultiplied; HDR highlights bloom).

    ``border: auto`` extends the edge pixels of opaque plates and, for elements with alpha, grows the
    data window by the bokeh radius so the blur is not cut at the element's bounding box.
    """

    inputs = {"image": Input("image, premultiplied or opaque")}
    params = {
        "radius": Param(float, 4.0, range=(0.0, 500.0), doc="bokeh radius (px)"),
        **_bokeh_params(),
        "border": Param(str, "auto", choices=("auto", "extend", "black")),
    }

    def identity(self, t):
        return "image" if self.p.radius < 0.5 else None

    def process(self, t, image):
        border = self.p.border
        if border == "auto":
            border = "black" if image.alpha is AlphaState.PREMULTIPLIED else "extend"
        if border == "black":
            r = int(np.ceil(self.p.radius * max(1.0, self.p.aspect)))
            dw = image.data_window
            image = to_window(image, Window(dw.xmin - r, dw.ymin - r, dw.xmax + r, dw.ymax + r))
        px, idx = _rgba_pixels(image, self.node_name)
        out = dfm.defocus(px, radius=self.p.radius, blades=self.p.blades, rotation=self.p.rotation,
                          aspect=self.p.aspect, border=border)
        return _put(image, idx, out)


@register
class DepthDefocus(Stage):
    """Depth-driven lens defocus (thin-lens circle of confusion, layered; see :mod:`composite.integrate.defocus`)."""

    inputs = {"image": Input("image, premultiplied or opaque"),
              "depth": Input("depth pass (raw data)", alpha=None, optional=True)}
    params = {
        "focus": Param(float, 10.0, range=(1e-6, None), doc="focus distance (depth units)"),
        "size": Param(float, 8.0, range=(0.0, 500.0), doc="bokeh radius at infinity (px)"),
        "max_radius": Param(float, 24.0, range=(0.0, 500.0), doc="largest bokeh radius (px)"),
        "layers": Param(int, 12, range=(2, 64), doc="depth slices"),
        "depth_mode": Param(str, "distance", choices=dfm.DEPTH_MODES),
        "depth_channel": Param(str, "depth.Z", doc="channel read from the depth input or the image's layers"),
        **_bokeh_params(),
    }

    def identity(self, t):
        return "image" if self.p.size == 0.0 and self.p.max_radius == 0.0 else None

    def process(self, t, image, depth=None):
        d = _depth_plane(image, depth, self.p.depth_channel, self.node_name)
        # depth_defocus takes RGB(A) only: coverage keeps each pixel's generated fraction (reassociated)
        px, idx = _rgba_pixels(image, self.node_name, filter_coverage=False)
        out = dfm.depth_defocus(px, d, focus=self.p.focus, size=self.p.size, max_radius=self.p.max_radius,
                                layers=self.p.layers, depth_mode=self.p.depth_mode, blades=self.p.blades,
                                rotation=self.p.rotation, aspect=self.p.aspect)
        return reassociate(_put(image, idx, out), image)


@register
class Haze(Stage):
    """Atmospheric haze toward a colour by depth: ``C T + haze (1 - T) a``, ``T = exp(-density d)``.

    Depth comes from ``distance`` when set (one distance for the whole element), else the ``depth``
    input, else the image's ``depth_channel`` layer.
    """

    inputs = {"image": Input("image, premultiplied or opaque"),
              "depth": Input("depth pass (raw data)", alpha=None, optional=True)}
    params = {
        "density": Param(float, 0.02, range=(0.0, None), doc="extinction per depth unit"),
        "color": Param(list, [0.7, 0.75, 0.8], item=float, length=3, doc="haze colour, scene-linear"),
        "start": Param(float, 0.0, range=(0.0, None), doc="distance where haze begins"),
        "max_amount": Param(float, 1.0, range=(0.0, 1.0)),
        "distance": Param(float, None, optional=True, range=(0.0, None),
                          doc="one distance for every pixel (no depth pass needed)"),
        "depth_mode": Param(str, "distance", choices=("distance", "inverse")),
        "depth_channel": Param(str, "depth.Z"),
    }

    def identity(self, t):
        return "image" if self.p.density == 0.0 or self.p.max_amount == 0.0 else None

    def process(self, t, image, depth=None):
        if self.p.distance is not None:
            d = float(self.p.distance)
            mode = "distance"
        else:
            d = _depth_plane(image, depth, self.p.depth_channel, self.node_name)
            mode = self.p.depth_mode
        px, idx = _rgba_pixels(image, self.node_name, filter_coverage=False)
        out = haze(px, d, density=self.p.density, color=self.p.color, start=self.p.start,
                   max_amount=self.p.max_amount, depth_mode=mode)
        return _put(image, idx, out)


@register
class LensDistort(Stage):
    """Apply or remove Brown–Conrady lens distortion (OpenCV's model; see :mod:`composite.integrate.lens`).

    Works over the display window; ``center`` is in display-window pixels (default: its centre) and
    ``focal`` is ``[fx, fy]`` in pixels (default: half the diagonal, so r = 1 at the corners).
    """

    inputs = {"image": Input("image, premultiplied or opaque")}
    params = {
        "direction": Param(str, "remove", choices=("remove", "apply")),
        "k1": Param(float, 0.0, range=(-10.0, 10.0)),
        "k2": Param(float, 0.0, range=(-10.0, 10.0)),
        "k3": Param(float, 0.0, range=(-10.0, 10.0)),
        "p1": Param(float, 0.0, range=(-1.0, 1.0)),
        "p2": Param(float, 0.0, range=(-1.0, 1.0)),
        "center": Param(list, None, item=float, length=2, optional=True),
        "focal": Param(list, None, item=float, length=2, optional=True, range=(1e-6, None)),
        "filter": Param(str, "bilinear", choices=tuple(lensm.FILTERS)),
        "border": Param(str, "black", choices=tuple(lensm.BORDERS)),
    }

    def identity(self, t):
        p = self.p
        return "image" if (p.k1, p.k2, p.k3, p.p1, p.p2) == (0.0, 0.0, 0.0, 0.0, 0.0) else None

    def process(self, t, image):
        if image.alpha is AlphaState.OPAQUE and self.p.border == "black":
            image = as_rgba(image, who=self.node_name)          # uncovered pixels become transparent
        src = to_window(image, image.display_window)
        p = self.p
        kw = dict(k1=p.k1, k2=p.k2, k3=p.k3, p1=p.p1, p2=p.p2, center=p.center, focal=p.focal)
        maps = lensm.lens_maps(src.width, src.height, direction=p.direction, **kw)

        def warp(px: np.ndarray) -> np.ndarray:
            return lensm.remap(px, maps, p.filter, p.border)

        layers = {n: type(layer)(warp(layer.pixels), layer.channels) for n, layer in src.layers.items()}
        return src.replace(pixels=warp(src.pixels), layers=layers)
