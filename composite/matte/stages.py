"""Pipeline stages around the keyers, despill, clean plates, roto shapes and matte operations.

Keyers take an opaque plate in the working space (ACEScg) and output a premultiplied RGBA image (the
unspilled foreground with its alpha) plus, on the ``matte`` output, the alpha alone. Mattes travel as
single-channel ``("A",)`` raw images; stages that read a matte take the ``A`` channel of any image (or the
only channel of a one-channel image). Matte operations on a premultiplied RGBA image change its alpha and
re-premultiply colour that was first bled outward (:func:`~composite.matte.ops.edge_extend`), so eroding or
growing a keyed element never divides by a tiny alpha and never leaves colour without alpha.
"""

from __future__ import annotations

import hashlib
import os

import numpy as np

from ..core.errors import InputError, RecipeError, StateError
from ..core.image import RGBA, Image
from ..core.state import RAW_SPACE, AlphaState
from ..graph.params import Param, thaw
from ..graph.registry import register
from ..graph.stage import ANY_ALPHA, PREMULTIPLIED_OR_OPAQUE, Input, Stage
from . import ops
from .despill import METHODS as DESPILL_METHODS
from .despill import despill
from .keyers import key_color_difference, key_screen_subtract
from .roto import Shape, load_shapes, rasterize, shapes_from_data
from .screen import SCREENS, estimate_clean_plate

SCREEN_COLOR_KEY = "composite:screen_color"
_DESPILL_CHOICES = ("none",) + DESPILL_METHODS


def matte_of(image: Image, who: str) -> np.ndarray:
    """(H, W) float32 matte from an image: its A channel, or its only channel."""
    if "A" in image.channels:
        return image.channel("A")
    if len(image.channels) == 1:
        return image.pixels[..., 0]
    raise StateError(f"{who}: expects a matte (an A channel or a single channel), got channels {image.channels}")


def matte_image(matte: np.ndarray, like: Image | None = None, **changes) -> Image:
    """A one-channel ``("A",)`` raw matte image (data window and time from ``like`` when given)."""
    px = np.ascontiguousarray(matte, np.float32)[..., None]
    if like is None:
        return Image(px, ("A",), colorspace=RAW_SPACE, alpha=AlphaState.OPAQUE, **changes)
    return like.replace(pixels=px, channels=("A",), colorspace=RAW_SPACE, alpha=AlphaState.OPAQUE,
                        layers={}, **changes)


def _same_size(image: Image, other: Image, what: str, who: str) -> None:
    if other.pixels.shape[:2] != image.pixels.shape[:2]:
        raise InputError(f"{who}: {what} is {other.width}x{other.height} but the image is "
                         f"{image.width}x{image.height}; reformat it to the same size")


def _plate_rgb(image: Image, who: str) -> np.ndarray:
    if image.channels[:3] != ("R", "G", "B"):
        raise StateError(f"{who}: expects an RGB plate, got channels {image.channels}")
    return np.ascontiguousarray(image.pixels[..., :3])


_SCREEN_PARAMS = {
    "screen": Param(str, "green", choices=SCREENS, doc="screen colour"),
    "screen_color": Param(list, None, item=float, length=3, optional=True,
                          doc="linear screen colour in the working space; estimated from the plate when null"),
    "clean_plate": Param(str, "none", choices=("none", "auto"),
                         doc="'auto' keys against a clean screen plate built from the plate (uneven screens); "
                             "a connected clean_plate input takes precedence"),
    "clip_black": Param(float, 0.0, range=(0.0, 1.0), doc="alpha at or below this becomes 0"),
    "clip_white": Param(float, 1.0, range=(0.0, 1.0), doc="alpha at or above this becomes 1"),
    "despill": Param(str, "average", choices=_DESPILL_CHOICES, doc="despill applied to the foreground"),
    "spill_strength": Param(float, 1.0, range=(0.0, 2.0)),
    "replace_color": Param(list, None, item=float, length=3, optional=True,
                           doc="colour replacing removed spill (despill: replace)"),
    "denoise_radius": Param(float, 0.0, range=(0.0, 64.0),
                            doc="grain denoise of the matte: guided-filter radius in pixels (0: off; 8 suits "
                                "film grain at HD)"),
    "denoise_eps": Param(float, 1e-4, range=(1e-8, 1.0),
                         doc="denoise regularisation in squared linear units: finer structure is smoothed"),
}

_KEY_INPUTS = {
    "image": Input("the plate: opaque RGB in the working space", alpha=PREMULTIPLIED_OR_OPAQUE,
                   colorspace="working"),
    "clean_plate": Input("a clean screen plate (RGB, working space)", alpha=PREMULTIPLIED_OR_OPAQUE,
                         colorspace="working", optional=True),
    "garbage": Input("garbage matte: alpha is multiplied by it", alpha=ANY_ALPHA, optional=True),
    "core": Input("core matte: alpha is at least this", alpha=ANY_ALPHA, optional=True),
}


class _KeyStage(Stage):
    inputs = _KEY_INPUTS
    outputs = ("image", "matte")

    def check_params(self):
        if self.p.clip_white <= self.p.clip_black:
            raise RecipeError(f"clip_white ({self.p.clip_white}) must be above clip_black ({self.p.clip_black})",
                              key="params.clip_white")
        if self.p.despill == "replace" and self.p.replace_color is None:
            raise RecipeError("despill 'replace' needs replace_color", key="params.replace_color")

    def _key(self, rgb, **kw):
        raise NotImplementedError

    def process(self, t, image, clean_plate=None, garbage=None, core=None):
        who = f"{self.node_name} ({self.type_name})"
        rgb = _plate_rgb(image, who)
        cp = self.p.clean_plate if self.p.clean_plate == "auto" else None
        if clean_plate is not None:
            _same_size(image, clean_plate, "clean plate", who)
            cp = _plate_rgb(clean_plate, who)
        mattes = {}
        for name, m in (("garbage", garbage), ("core", core)):
            if m is not None:
                _same_size(image, m, f"{name} matte", who)
                mattes[name] = np.ascontiguousarray(matte_of(m, who))
        try:
            res = self._key(rgb, screen=self.p.screen, screen_color=self.p.screen_color, clean_plate=cp,
                            clip_black=self.p.clip_black, clip_white=self.p.clip_white,
                            despill=None if self.p.despill == "none" else self.p.despill,
                            spill_strength=self.p.spill_strength, replace_color=self.p.replace_color,
                            denoise_radius=self.p.denoise_radius, denoise_eps=self.p.denoise_eps, **mattes)
        except InputError as exc:
            raise InputError(f"{who} frame {t}: {exc}") from None
        meta = {SCREEN_COLOR_KEY: [round(float(c), 6) for c in res.screen_color]}
        out = image.replace(pixels=res.rgba(), channels=RGBA, alpha=AlphaState.PREMULTIPLIED, layers={},
                            metadata={**image.metadata, **meta})
        return {"image": out, "matte": matte_image(res.alpha, image)}


@register
class ColorDifferenceKey(_KeyStage):
    """IBK-like colour-difference keyer (see :func:`composite.matte.keyers.key_color_difference`).

    Outputs ``image``: premultiplied, unspilled RGBA; ``matte``: the alpha as a one-channel matte.
    """

    version = 2
    params = {
        **_SCREEN_PARAMS,
        "red_weight": Param(float, 0.5, range=(0.0, 2.0)),
        "blue_green_weight": Param(float, 0.5, range=(0.0, 2.0)),
        "balance": Param(float, 0.5, range=(0.0, 1.0),
                         doc="secondary from weighted average (0) towards max of the other channels (1)"),
    }

    def _key(self, rgb, **kw):
        return key_color_difference(rgb, red_weight=self.p.red_weight, blue_green_weight=self.p.blue_green_weight,
                                    balance=self.p.balance, **kw)


@register
class ScreenSubtractKey(_KeyStage):
    """Keylight-like screen-subtraction keyer (see :func:`composite.matte.keyers.key_screen_subtract`)."""

    version = 2
    params = {
        **_SCREEN_PARAMS,
        "despill": Param(str, "screen_subtract", choices=_DESPILL_CHOICES),
        "screen_gain": Param(float, 1.05, range=(0.01, 4.0)),
        "screen_balance": Param(float, 0.5, range=(0.0, 1.0)),
        "softness": Param(float, 0.0, range=(0.0, 100.0), doc="screen-matte blur in pixels"),
    }

    def _key(self, rgb, **kw):
        return key_screen_subtract(rgb, screen_gain=self.p.screen_gain, screen_balance=self.p.screen_balance,
                                   softness=self.p.softness, **kw)


@register
class Despill(Stage):
    """Remove screen spill (see :func:`composite.matte.despill.despill`).

    The screen colour for ``screen_subtract``/``replace`` is the parameter, else the one a keyer recorded
    in the image's metadata, else the pure primary.
    """

    version = 1
    inputs = {"image": Input("RGB(A), premultiplied or opaque, working space", colorspace="working")}
    params = {
        "method": Param(str, "average", choices=DESPILL_METHODS),
        "screen": Param(str, "green", choices=SCREENS),
        "screen_color": Param(list, None, item=float, length=3, optional=True),
        "replace_color": Param(list, None, item=float, length=3, optional=True),
        "weights": Param(list, [0.5, 0.5], item=float, length=2, range=(0.0, 2.0),
                         doc="weights of the other two channels in the limit"),
        "strength": Param(float, 1.0, range=(0.0, 2.0)),
    }

    def check_params(self):
        if self.p.method == "replace" and self.p.replace_color is None:
            raise RecipeError("method 'replace' needs replace_color", key="params.replace_color")

    def identity(self, t):
        return "image" if self.p.strength == 0.0 else None

    def process(self, t, image):
        who = f"{self.node_name} (Despill)"
        if image.channels[:3] != ("R", "G", "B"):
            raise StateError(f"{who}: expects RGB(A), got channels {image.channels}")
        sc = self.p.screen_color or image.metadata.get(SCREEN_COLOR_KEY)
        px = despill(image.pixels if image.pixels.shape[2] in (3, 4) else image.pixels[..., :4],
                     method=self.p.method, screen=self.p.screen, screen_color=sc,
                     replace_color=self.p.replace_color, weights=tuple(self.p.weights), strength=self.p.strength)
        if image.pixels.shape[2] > 4:
            px = np.concatenate([px, image.pixels[..., 4:]], axis=2)
        return image.with_pixels(px)


@register
class CleanPlate(Stage):
    """A clean screen plate built from the plate (see :func:`composite.matte.screen.estimate_clean_plate`)."""

    version = 2
    inputs = {"image": Input("the plate: opaque RGB, working space", colorspace="working")}
    params = {
        "screen": Param(str, "green", choices=SCREENS),
        "screen_color": Param(list, None, item=float, length=3, optional=True),
        "resolution": Param(int, 160, range=(8, 4096), doc="long side of the fitting grid"),
        "tolerance": Param(float, 0.75, range=(0.0, 1.0), doc="chromaticity tolerance of screen pixels"),
        "shrink": Param(int, 3, range=(0, 100), doc="pixels the screen mask is shrunk by"),
    }

    def process(self, t, image):
        who = f"{self.node_name} (CleanPlate)"
        try:
            plate = estimate_clean_plate(_plate_rgb(image, who), screen=self.p.screen,
                                         screen_color=self.p.screen_color, resolution=self.p.resolution,
                                         tolerance=self.p.tolerance, shrink=self.p.shrink)
        except InputError as exc:
            raise InputError(f"{who} frame {t}: {exc}") from None
        return image.replace(pixels=plate, channels=("R", "G", "B"), alpha=AlphaState.OPAQUE, layers={})


class _ShapesMixin:
    """Shapes from the ``shapes`` list parameter and/or a JSON/YAML ``path``."""

    def _shapes(self):
        cached = getattr(self, "_shape_cache", None)
        if cached is not None:
            return cached
        shapes: list[Shape] = []
        invert = False
        if self.p.path:
            s, invert = load_shapes(self.p.path)
            shapes += s
        if self.p.shapes:
            s, _ = shapes_from_data(thaw(self.p.shapes), source=f"{self.type_name}.params.shapes")
            shapes += s
        self._shape_cache = (shapes, invert)
        return self._shape_cache

    def check_params(self):
        if self.p.shapes:
            try:
                shapes_from_data(thaw(self.p.shapes), source="params.shapes")
            except InputError as exc:
                raise RecipeError(str(exc), key="params.shapes") from None

    def matte_for(self, image: Image, t: int) -> np.ndarray:
        """The shapes rasterised over ``image``'s display window, cut to its data window."""
        shapes, file_invert = self._shapes()
        disp, dw = image.display_window, image.data_window
        m = rasterize(shapes, disp.width, disp.height, frame=t, invert=self.p.invert != file_invert)
        if dw == disp:
            return m
        full = np.zeros((image.height, image.width), np.float32)
        x0, y0 = dw.xmin - disp.xmin, dw.ymin - disp.ymin
        ys = slice(max(0, -y0), min(image.height, disp.height - y0))
        xs = slice(max(0, -x0), min(image.width, disp.width - x0))
        if ys.stop > ys.start and xs.stop > xs.start:
            full[ys, xs] = m[ys.start + y0:ys.stop + y0, xs.start + x0:xs.stop + x0]
        return full

    def fingerprint_extra(self) -> str:
        if not self.p.path:
            return ""
        try:
            with open(self.p.path, "rb") as fh:
                return "roto:" + hashlib.sha256(fh.read()).hexdigest()
        except OSError:
            return f"roto:missing:{os.fspath(self.p.path)}"


_SHAPE_PARAMS = {
    "shapes": Param(list, [], doc="shapes as in composite.matte.roto (list of mappings)"),
    "path": Param(str, None, optional=True, path=True, doc="JSON/YAML roto file (composite.roto/1)"),
    "invert": Param(bool, False, doc="invert the combined shapes"),
}


@register
class Roto(_ShapesMixin, Stage):
    """Rasterise roto shapes at frame t into a one-channel matte (size of the ``image`` input, else
    ``width`` x ``height``)."""

    version = 1
    inputs = {"image": Input("optional image giving the size and time", alpha=ANY_ALPHA, optional=True)}
    outputs = ("matte",)
    params = {
        **_SHAPE_PARAMS,
        "width": Param(int, 1920, range=(1, 65536)),
        "height": Param(int, 1080, range=(1, 65536)),
    }

    def process(self, t, image=None):
        if image is not None:
            return {"matte": matte_image(self.matte_for(image, t), image)}
        shapes, file_invert = self._shapes()
        m = rasterize(shapes, self.p.width, self.p.height, frame=t, invert=self.p.invert != file_invert)
        return {"matte": matte_image(m, time=self.time(t))}


@register
class GarbageMatte(_ShapesMixin, Stage):
    """Multiply an image (all channels, alpha included) by roto shapes; with no shapes it passes through.

    Use it after a keyer to remove rigs and the screen's edges (``invert: true`` holds out the shapes).
    """

    version = 1
    inputs = {"image": Input("premultiplied RGBA or a matte", alpha=ANY_ALPHA)}
    params = dict(_SHAPE_PARAMS)

    def identity(self, t):
        return "image" if not self.p.shapes and not self.p.path else None

    def process(self, t, image):
        if image.alpha is AlphaState.STRAIGHT:
            raise StateError(f"{self.node_name} (GarbageMatte): expects premultiplied or a matte, got straight")
        if image.alpha is AlphaState.OPAQUE and len(image.channels) > 1:
            raise StateError(f"{self.node_name} (GarbageMatte): an opaque colour image has no alpha to cut; "
                             "key it first or apply the matte to a matte")
        full = self.matte_for(image, t)
        return image.with_pixels(image.pixels * full[..., None])


def _apply_to_alpha(image: Image, fn, who: str) -> Image:
    """Apply a matte function to a matte image, or to the alpha of premultiplied RGBA (re-premultiplied)."""
    if image.channels == ("A",) or len(image.channels) == 1:
        return image.with_pixels(np.ascontiguousarray(fn(image.pixels[..., 0]))[..., None])
    if image.channels[:4] != RGBA or image.alpha is not AlphaState.PREMULTIPLIED:
        raise StateError(f"{who}: expects a matte or premultiplied RGBA, got {''.join(image.channels)} "
                         f"{image.alpha}")
    rgba = np.ascontiguousarray(image.pixels[..., :4])
    a = rgba[..., 3]
    new_a = fn(np.ascontiguousarray(a)).astype(np.float32)
    straight = ops.edge_extend(rgba)
    out = image.pixels.copy()
    out[..., :3] = straight[..., :3] * new_a[..., None]
    out[..., 3] = new_a
    return image.with_pixels(out)


@register
class MatteErode(Stage):
    """Erode (amount > 0) or dilate (amount < 0) a matte by sub-pixel amounts."""

    version = 1
    inputs = {"image": Input("matte or premultiplied RGBA", alpha=ANY_ALPHA)}
    params = {"amount": Param(float, 0.0, range=(-500.0, 500.0), doc="pixels; negative grows")}

    def identity(self, t):
        return "image" if self.p.amount == 0.0 else None

    def process(self, t, image):
        return _apply_to_alpha(image, lambda m: ops.erode(m, amount=self.p.amount), f"{self.node_name} (MatteErode)")


@register
class MatteBlur(Stage):
    """Gaussian blur of a matte, everywhere or only along its edges (``edge_only``)."""

    version = 1
    inputs = {"image": Input("matte or premultiplied RGBA", alpha=ANY_ALPHA)}
    params = {
        "size": Param(float, 0.0, range=(0.0, 500.0), doc="Gaussian sigma in pixels"),
        "edge_only": Param(bool, False),
        "edge_width": Param(float, None, optional=True, range=(0.0, 500.0), doc="default 2 x size"),
    }

    def identity(self, t):
        return "image" if self.p.size == 0.0 else None

    def process(self, t, image):
        if self.p.edge_only:
            def fn(m):
                return ops.edge_blur(m, size=self.p.size, width=self.p.edge_width)
        else:
            def fn(m):
                return ops.blur(m, size=self.p.size)
        return _apply_to_alpha(image, fn, f"{self.node_name} (MatteBlur)")


@register
class MatteClamp(Stage):
    """Clamp a matte to [low, high]."""

    version = 1
    inputs = {"image": Input("matte or premultiplied RGBA", alpha=ANY_ALPHA)}
    params = {"low": Param(float, 0.0, range=(0.0, 1.0)), "high": Param(float, 1.0, range=(0.0, 1.0))}

    def check_params(self):
        if self.p.low > self.p.high:
            raise RecipeError(f"low ({self.p.low}) is above high ({self.p.high})", key="params.low")

    def process(self, t, image):
        return _apply_to_alpha(image, lambda m: ops.clamp(m, low=self.p.low, high=self.p.high),
                               f"{self.node_name} (MatteClamp)")


@register
class MatteDespeckle(Stage):
    """Remove isolated matte regions smaller than ``min_area`` pixels (tracking markers, dust); optionally
    fill small holes. See :func:`composite.matte.ops.remove_small_regions`."""

    version = 1
    inputs = {"image": Input("matte or premultiplied RGBA", alpha=ANY_ALPHA)}
    params = {
        "min_area": Param(int, 200, range=(0, 10_000_000), doc="regions smaller than this (pixels) are removed"),
        "threshold": Param(float, 0.05, range=(0.0, 1.0), doc="alpha above which a pixel belongs to a region"),
        "holes": Param(bool, False, doc="also fill holes smaller than min_area"),
    }

    def identity(self, t):
        return "image" if self.p.min_area == 0 else None

    def process(self, t, image):
        return _apply_to_alpha(image, lambda m: ops.remove_small_regions(m, min_area=self.p.min_area,
                                                                        threshold=self.p.threshold,
                                                                        holes=self.p.holes),
                               f"{self.node_name} (MatteDespeckle)")


@register
class MatteCombine(Stage):
    """Combine the matte of ``a`` with the matte of ``b`` (max, min, multiply, subtract, add, screen);
    the result keeps ``a``'s colour (re-premultiplied) when ``a`` is RGBA."""

    version = 1
    inputs = {"a": Input("matte or premultiplied RGBA", alpha=ANY_ALPHA),
              "b": Input("matte (A channel or single channel)", alpha=ANY_ALPHA)}
    params = {"operation": Param(str, "max", choices=ops.COMBINE_OPS)}

    def process(self, t, a, b):
        who = f"{self.node_name} (MatteCombine)"
        _same_size(a, b, "matte b", who)
        mb = np.ascontiguousarray(matte_of(b, who))
        return _apply_to_alpha(a, lambda m: ops.combine(m, mb, op=self.p.operation), who)


@register
class EdgeExtend(Stage):
    """Bleed foreground colour outward (see :func:`composite.matte.ops.edge_extend`); outputs straight RGBA."""

    version = 1
    inputs = {"image": Input("premultiplied RGBA", alpha=(AlphaState.PREMULTIPLIED,))}
    params = {"threshold": Param(float, 0.95, range=(0.01, 1.0))}

    def process(self, t, image):
        image.require(channels=RGBA, who=self.node_name)
        out = image.pixels.copy()
        out[..., :4] = ops.edge_extend(np.ascontiguousarray(image.pixels[..., :4]), threshold=self.p.threshold)
        return image.with_pixels(out, alpha=AlphaState.STRAIGHT)
