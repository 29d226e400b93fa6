"""OCIO stages: colour-space conversion and LUT/CDL files applied through OpenColorIO processors."""

from __future__ import annotations

import hashlib
import os

import numpy as np

from ..core.errors import InputError, RecipeError
from ..core.image import Image
from ..core.merge import premultiply, unpremultiply
from ..core.state import AlphaState
from ..graph.params import Param
from ..graph.registry import register
from ..graph.stage import Input, Stage
from . import ocio


def _straight_rgb(image: Image, who: str) -> tuple[np.ndarray, bool]:
    if image.channels[:3] != ("R", "G", "B"):
        raise InputError(f"{who}: expects R, G, B channels first, got {image.channels}")
    premult = image.alpha is AlphaState.PREMULTIPLIED and image.channels[:4] == ("R", "G", "B", "A")
    rgba = image.pixels[..., :4] if premult else image.pixels[..., :3]
    return (unpremultiply(np.ascontiguousarray(rgba)) if premult else np.ascontiguousarray(rgba)), premult


def _put(image: Image, out: np.ndarray, premult: bool) -> Image:
    if premult:
        out = premultiply(out)
    px = image.pixels.copy()
    px[..., :out.shape[2]] = out
    return image.with_pixels(px)


@register
class OCIOFileTransform(Stage):
    """Apply a LUT or CDL file (.cube, .3dl, .clf/.ctf, .spi1d/.spi3d, .csp, .cc/.ccc/.cdl ...) through an
    OCIO FileTransform, as Nuke's OCIOFileTransform does. Colour is unpremultiplied around the LUT;
    ``space`` converts into the colour space the LUT expects (e.g. ACEScct for grading LUTs) and back."""

    version = 1
    inputs = {"image": Input("image (premultiplied or opaque)", colorspace="working")}
    params = {
        "file": Param(str, "", path=True, doc="LUT or CDL file"),
        "space": Param(str, "", doc="colour space the LUT expects (empty: the working space)"),
        "direction": Param(str, "forward", choices=("forward", "inverse")),
        "interpolation": Param(str, "linear", choices=ocio.LUT_INTERPOLATIONS),
        "cccid": Param(str, "", doc="correction id or index in a .ccc/.cdl collection"),
        "mix": Param(float, 1.0, range=(0.0, 1.0)),
    }

    def check_params(self):
        if not self.p.file:
            raise RecipeError("a LUT file is required (e.g. --set lut.file=show/look.cube)", key="params.file")

    def identity(self, t):
        return "image" if self.p.mix == 0.0 else None

    def fingerprint_extra(self) -> str:
        path = self.p.file
        if not os.path.isfile(path):
            return f"missing:{path}"
        with open(path, "rb") as fh:
            digest = hashlib.sha256(fh.read()).hexdigest()
        return f"lut-sha256:{digest}|config:{ocio.config_id()}"

    def process(self, t, image):
        who = f"{self.node_name} (OCIOFileTransform) frame {t}"
        if not os.path.isfile(self.p.file):
            raise InputError(f"{who}: LUT file {self.p.file} not found")
        rgb, premult = _straight_rgb(image, who)
        try:
            out = ocio.apply_file_transform(rgb, self.p.file, direction=self.p.direction,
                                            interpolation=self.p.interpolation, cccid=self.p.cccid,
                                            space=self.p.space or None, working_space=image.colorspace)
        except InputError as exc:
            raise InputError(f"{who}: {exc}") from None
        if self.p.mix != 1.0:
            out[..., :3] = rgb[..., :3] + np.float32(self.p.mix) * (out[..., :3] - rgb[..., :3])
        return _put(image, out, premult)


@register
class ColorSpaceConvert(Stage):
    """Convert colour between two OCIO colour spaces (e.g. into a log space for a grade and back).

    The image's recorded colour space becomes ``dst``; colour is unpremultiplied around non-linear
    conversions."""

    version = 1
    inputs = {"image": Input("image (premultiplied or opaque)")}
    params = {"src": Param(str, "", doc="source colour space (empty: the image's)"),
              "dst": Param(str, "ACEScct", doc="destination colour space")}

    def check_params(self):
        for key in ("src", "dst"):
            value = self.p[key]
            if value:
                try:
                    ocio.resolve_colorspace(value)
                except InputError as exc:
                    raise RecipeError(str(exc), key=f"params.{key}") from None

    def process(self, t, image):
        src = self.p.src or image.colorspace
        who = f"{self.node_name} (ColorSpaceConvert) frame {t}"
        rgb, premult = _straight_rgb(image, who)
        out = ocio.convert(rgb, src, self.p.dst)
        return _put(image, out, premult).replace(colorspace=ocio.resolve_colorspace(self.p.dst))
