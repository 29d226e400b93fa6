"""Format-independent image file access: read any supported file, write by extension.

EXR goes through OpenEXR's bindings (:mod:`composite.io.exr`); everything else through OpenImageIO
(:mod:`composite.io.formats`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from ..color import ocio
from ..core.errors import InputError
from ..core.image import Image
from ..core.merge import premultiply, unpremultiply
from ..core.state import RAW_SPACE, AlphaState
from . import exr, formats

EXR_EXTENSIONS = (".exr", ".sxr", ".mxr")
#: Default colour space of display-referred formats when the file does not say.
DISPLAY_FILE_SPACE = "sRGB Encoded Rec.709 (sRGB)"


def is_exr(path: str | os.PathLike) -> bool:
    return os.path.splitext(os.fspath(path))[1].lower() in EXR_EXTENSIONS


def read_image(path: str | os.PathLike, *, colorspace: str | None = None) -> Image:
    """Read a file as stored (its own colour space and alpha state)."""
    return exr.read_exr(path, colorspace=colorspace) if is_exr(path) else formats.read_oiio(path, colorspace=colorspace)


def read_fingerprint(path: str | os.PathLike) -> str | None:
    return exr.read_fingerprint(path) if is_exr(path) else formats.read_oiio_fingerprint(path)


def to_working(image: Image, working_space: str, *, source_space: str | None = None,
               alpha: str = "auto") -> Image:
    """Convert a file image to the working state: ``working_space`` colour, premultiplied alpha.

    ``alpha``: how to interpret the file's A channel: ``auto`` (as the reader reported), ``straight``,
    ``premultiplied`` or ``ignore`` (drop A; the image becomes opaque).
    """
    src = source_space or image.colorspace
    state = image.alpha
    pixels = image.pixels
    channels = image.channels
    if alpha == "ignore" and "A" in channels:
        keep = [i for i, c in enumerate(channels) if c != "A"]
        pixels = np.ascontiguousarray(pixels[..., keep])
        channels = tuple(c for c in channels if c != "A")
        state = AlphaState.OPAQUE
    elif alpha in ("straight", "premultiplied") and "A" in channels:
        state = AlphaState(alpha)
    if channels in (("Y",), ("Y", "A")):  # greyscale: expand to RGB
        y = pixels[..., :1]
        pixels = np.concatenate([y, y, y] + ([pixels[..., 1:2]] if len(channels) == 2 else []), axis=2)
        channels = ("R", "G", "B") + (("A",) if len(channels) == 2 else ())
    is_colour = channels[:3] == ("R", "G", "B")
    if not is_colour or src == RAW_SPACE:
        return image.replace(pixels=pixels, channels=channels, alpha=state,
                             colorspace=src if not is_colour else src)
    has_a = "A" in channels and channels.index("A") == 3 and len(channels) == 4
    if state is AlphaState.PREMULTIPLIED and has_a and ocio.resolve_colorspace(src) != ocio.resolve_colorspace(working_space):
        pixels = unpremultiply(pixels)
        state = AlphaState.STRAIGHT
    rgb_a = pixels if has_a else pixels[..., :3]
    converted = ocio.convert(np.ascontiguousarray(rgb_a), src, working_space)
    if has_a and state is AlphaState.STRAIGHT:
        converted = premultiply(converted)
        state = AlphaState.PREMULTIPLIED
    if not has_a and len(channels) > 3:
        converted = np.concatenate([converted, pixels[..., 3:]], axis=2)
    return image.replace(pixels=np.ascontiguousarray(converted, np.float32), channels=channels, alpha=state,
                         colorspace=ocio.resolve_colorspace(working_space))


def from_working(image: Image, colorspace: str, *, alpha: str = "premultiplied", display: str | None = None,
                 view: str | None = None) -> Image:
    """Convert a working-state image for a file: colour space (or display/view) and alpha association."""
    pixels = image.pixels
    state = image.alpha
    if image.channels[:3] != ("R", "G", "B"):
        return image
    has_a = image.channels[3:4] == ("A",)
    if has_a and state is AlphaState.PREMULTIPLIED:
        pixels = unpremultiply(pixels)
        state = AlphaState.STRAIGHT
    if display:
        out = ocio.to_display(np.ascontiguousarray(pixels), image.colorspace, display=display,
                              view=view or "ACES 2.0 - SDR 100 nits (Rec.709)")
        cs = f"{display} / {view}"
    else:
        out = ocio.convert(np.ascontiguousarray(pixels), image.colorspace, colorspace)
        cs = ocio.resolve_colorspace(colorspace)
    if has_a and alpha == "premultiplied":
        out = premultiply(out)
        state = AlphaState.PREMULTIPLIED
    return image.replace(pixels=np.ascontiguousarray(out, np.float32), alpha=state, colorspace=cs)


def write_image(path: str | os.PathLike, image: Image, *, fingerprint: str | None = None,
                metadata: Mapping[str, Any] | None = None, compression: str = "zip", pixel_type: str = "half",
                bits: str = "uint8") -> Path:
    """Write pixels as they are (no conversion) choosing the writer by extension, atomically."""
    if is_exr(path):
        return exr.write_exr(path, image, compression=compression, pixel_type=pixel_type, metadata=metadata,
                             fingerprint=fingerprint)
    if image.pixels.shape[2] not in (1, 2, 3, 4):
        raise InputError(f"{path}: {image.pixels.shape[2]} channels cannot be stored in this format; use EXR")
    return formats.write_oiio(path, image, bits=bits, metadata=metadata, fingerprint=fingerprint)
