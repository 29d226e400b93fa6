"""Built-in stages around the core operations: constants, merges, (un)premultiply, reformat, transform,
channel copies and a no-op (used to measure the graph's own overhead)."""

from __future__ import annotations

import numpy as np

from ..core import geometry
from ..core.errors import RecipeError, StateError
from ..core.image import RGBA, Image, Window
from ..core.merge import OPERATIONS, merge_images, premultiply, unpremultiply
from ..core.state import RAW_SPACE, AlphaState
from .params import Param
from .registry import register
from .stage import ANY_ALPHA, Input, Stage


@register
class Constant(Stage):
    """A constant RGBA frame (premultiplied, working space) of the given size; a source with no frame limit."""

    is_source = True
    params = {
        "color": Param(list, [0.0, 0.0, 0.0, 1.0], item=float, length=4, doc="premultiplied RGBA"),
        "width": Param(int, 1920, range=(1, 65536)),
        "height": Param(int, 1080, range=(1, 65536)),
        "first": Param(int, None, optional=True, doc="first frame (None: unbounded)"),
        "last": Param(int, None, optional=True, doc="last frame (None: unbounded)"),
    }

    def frame_range(self):
        if self.p.first is None or self.p.last is None:
            return None
        return (self.p.first, self.p.last)

    def process(self, t, **_):
        px = np.empty((self.p.height, self.p.width, 4), np.float32)
        px[...] = np.asarray(self.p.color, np.float32)
        return Image(px, RGBA, time=self.time(t))


@register
class NoOp(Stage):
    """Passes its input through unchanged (an identity stage). Used to measure per-stage graph overhead."""

    inputs = {"image": Input("any image", alpha=None)}

    def process(self, t, image):
        return image


@register
class Noise(Stage):
    """Add seeded Gaussian noise to the colour channels (per-frame seed: chunked renders stay identical)."""

    inputs = {"image": Input("image", alpha=(AlphaState.PREMULTIPLIED, AlphaState.OPAQUE))}
    params = {
        "amount": Param(float, 0.01, range=(0.0, None), doc="standard deviation (scene-linear)"),
        "seed": Param(int, 0, range=(0, 2**31 - 1)),
    }

    def identity(self, t):
        return "image" if self.p.amount == 0.0 else None

    def process(self, t, image):
        rng = self.rng(t)
        noise = rng.standard_normal(image.pixels.shape[:2] + (3,), dtype=np.float32) * np.float32(self.p.amount)
        px = image.pixels.copy()
        px[..., :3] += noise * (image.a[..., None] if image.has_alpha else np.float32(1))
        return image.with_pixels(px)


@register
class Merge(Stage):
    """Merge A onto B (Porter–Duff and arithmetic operations; see :mod:`composite.core.merge`)."""

    inputs = {
        "a": Input("foreground (A), premultiplied or opaque"),
        "b": Input("background (B), premultiplied or opaque"),
    }
    params = {
        "operation": Param(str, "over", choices=tuple(OPERATIONS)),
        "mix": Param(float, 1.0, range=(0.0, 1.0)),
    }

    def identity(self, t):
        return "b" if self.p.mix == 0.0 else None

    def process(self, t, a, b):
        return merge_images(self.p.operation, a, b, mix=self.p.mix)


@register
class Premultiply(Stage):
    """Straight RGBA → premultiplied."""

    inputs = {"image": Input("straight RGBA", alpha=(AlphaState.STRAIGHT,))}

    def process(self, t, image):
        image.require(channels=RGBA, who=self.node_name)
        return image.with_pixels(premultiply(image.pixels), alpha=AlphaState.PREMULTIPLIED)


@register
class Unpremultiply(Stage):
    """Premultiplied RGBA → straight (alpha 0 leaves colour untouched)."""

    inputs = {"image": Input("premultiplied RGBA", alpha=(AlphaState.PREMULTIPLIED,))}

    def process(self, t, image):
        image.require(channels=RGBA, who=self.node_name)
        return image.with_pixels(unpremultiply(image.pixels), alpha=AlphaState.STRAIGHT)


@register
class Reformat(Stage):
    """Resize to a new format (distort, fit, fill, or none = crop/pad around the centre)."""

    inputs = {"image": Input("image", alpha=(AlphaState.PREMULTIPLIED, AlphaState.OPAQUE))}
    params = {
        "width": Param(int, 1920, range=(1, 65536)),
        "height": Param(int, 1080, range=(1, 65536)),
        "mode": Param(str, "fit", choices=geometry.REFORMAT_MODES),
        "filter": Param(str, "cubic", choices=tuple(geometry.FILTERS)),
        "pixel_aspect": Param(float, 1.0, range=(0.01, 100.0)),
    }

    def process(self, t, image):
        return geometry.reformat_image(image, self.p.width, self.p.height, mode=self.p.mode,
                                       filter=self.p.filter, pixel_aspect=self.p.pixel_aspect)


@register
class Crop(Stage):
    """Crop (or pad) to a box in display coordinates; the box becomes the new display window at the origin."""

    inputs = {"image": Input("image", alpha=None)}
    params = {
        "box": Param(list, [0, 0, 1920, 1080], item=int, length=4, doc="x, y, width, height"),
    }

    def process(self, t, image):
        from ..core.merge import to_window

        x, y, w, h = self.p.box
        if w <= 0 or h <= 0:
            raise RecipeError(f"crop box width and height must be positive, got {w}x{h}", key="params.box")
        src = image.display_window
        win = Window.from_size(w, h, src.xmin + x, src.ymin + y)
        out = to_window(image, win)
        new = Window.from_size(w, h)
        return out.replace(data_window=new, display_window=new)


@register
class Transform(Stage):
    """2D affine transform: translate, rotate (degrees), scale about a centre, with a filter."""

    inputs = {"image": Input("image", alpha=(AlphaState.PREMULTIPLIED, AlphaState.OPAQUE))}
    params = {
        "translate": Param(list, [0.0, 0.0], item=float, length=2),
        "rotate": Param(float, 0.0, range=(-3600.0, 3600.0)),
        "scale": Param(list, [1.0, 1.0], item=float, length=2),
        "center": Param(list, None, item=float, length=2, optional=True, doc="default: display window centre"),
        "filter": Param(str, "bilinear", choices=tuple(k for k in geometry.FILTERS if k != "area")),
    }

    def identity(self, t):
        p = self.p
        return "image" if p.translate == (0.0, 0.0) and p.rotate == 0.0 and p.scale == (1.0, 1.0) else None

    def process(self, t, image):
        dw = image.display_window
        center = self.p.center or ((dw.xmin + dw.xmax) / 2, (dw.ymin + dw.ymax) / 2)
        m = geometry.affine_matrix(translate=self.p.translate, rotate=self.p.rotate, scale=self.p.scale,
                                   center=center)
        if image.alpha is AlphaState.OPAQUE:
            from ..core.merge import as_rgba

            image = as_rgba(image, who=self.node_name)
        return geometry.transform_image(image, m, filter=self.p.filter)


@register
class CopyChannels(Stage):
    """Copy channels from A into B: ``copy: [[from, to], ...]`` with names like ``A``, ``R`` or ``depth.Z``."""

    inputs = {"a": Input("source", alpha=ANY_ALPHA), "b": Input("destination", alpha=ANY_ALPHA)}
    params = {"copy": Param(list, [["A", "A"]], doc="pairs of channel names [from, to]")}

    def check_params(self):
        for i, pair in enumerate(self.p.copy):
            if not (isinstance(pair, tuple) and len(pair) == 2 and all(isinstance(c, str) for c in pair)):
                raise RecipeError(f"each entry must be [from, to] channel names, got {pair!r}", key=f"params.copy[{i}]")

    def process(self, t, a, b):
        if a.data_window != b.data_window:
            from ..core.merge import to_window

            a = to_window(a, b.data_window)
        out = b
        for src, dst in self.p.copy:
            plane = a.channel(src)
            if dst in out.channels:
                px = out.pixels.copy()
                px[..., out.channels.index(dst)] = plane
                out = out.with_pixels(px)
            elif "." in dst:
                layer, ch = dst.rsplit(".", 1)
                if layer in out.layers:
                    lay = out.layers[layer]
                    if ch in lay.channels:
                        px = lay.pixels.copy()
                        px[..., lay.channels.index(ch)] = plane
                        out = out.with_layer(layer, px, lay.channels)
                    else:
                        out = out.with_layer(layer, np.concatenate([lay.pixels, plane[..., None]], 2),
                                             lay.channels + (ch,))
                else:
                    out = out.with_layer(layer, np.ascontiguousarray(plane[..., None]), (ch,))
            else:
                px = np.concatenate([out.pixels, plane[..., None]], 2)
                alpha = out.alpha
                if dst == "A" and alpha is AlphaState.OPAQUE:
                    raise StateError(f"{self.node_name}: copying into A of an opaque image makes its state "
                                     "ambiguous; premultiply explicitly (Premultiply) after setting alpha")
                out = out.with_pixels(px, out.channels + (dst,), alpha=alpha)
        return out


@register
class Shuffle(Stage):
    """Bring a layer to the main channels (e.g. ``depth`` → ``Z``) as raw data, or keep only some channels."""

    inputs = {"image": Input("image", alpha=None)}
    params = {"layer": Param(str, "", doc="layer to bring forward ('' keeps the main channels)"),
              "channels": Param(list, None, item=str, optional=True, doc="channels to keep")}

    def identity(self, t):
        return "image" if not self.p.layer and not self.p.channels else None

    def process(self, t, image):
        if self.p.layer:
            lay = image.layer(self.p.layer)
            image = image.replace(pixels=lay.pixels, channels=lay.channels, colorspace=RAW_SPACE,
                                  alpha=AlphaState.OPAQUE, layers={})
        if self.p.channels:
            idx = [image.channels.index(c) if c in image.channels else None for c in self.p.channels]
            if None in idx:
                raise StateError(f"{self.node_name}: image has channels {image.channels}, asked for {self.p.channels}")
            alpha = image.alpha if "A" in self.p.channels else AlphaState.OPAQUE
            image = image.with_pixels(np.ascontiguousarray(image.pixels[..., idx]), self.p.channels, alpha=alpha)
        return image
