"""Non-EXR image files through OpenImageIO: PNG, TIFF, JPEG, DPX and others.

Integer files are normalised to float32 in [0, 1] (``value / max``), explicitly: the bit depth is
recorded in ``metadata["oiio:BitsPerSample"]``. PNG/TIFF alpha is straight (unassociated); the reader
returns it as ``AlphaState.STRAIGHT`` and the reader stage premultiplies after colour conversion.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import OpenImageIO as oiio

from ..core.errors import InputError
from ..core.image import Image, Window
from ..core.state import AlphaState
from .atomic import atomic_output

FINGERPRINT_KEY = "composite:fingerprint"


def read_oiio(path: str | os.PathLike, *, colorspace: str | None = None, subimage: int = 0) -> Image:
    """Read an image file with OpenImageIO as float32 (colour space default: the file's, else sRGB)."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise InputError(f"{path}: file not found")
    config = oiio.ImageSpec()
    config.attribute("oiio:UnassociatedAlpha", 1)  # keep straight alpha as stored; we premultiply explicitly
    inp = oiio.ImageInput.open(path, config)
    if inp is None:
        raise InputError(f"{path}: cannot open image ({oiio.geterror()})")
    try:
        if subimage and not inp.seek_subimage(subimage, 0):
            raise InputError(f"{path}: no subimage {subimage}")
        spec = inp.spec()
        data = inp.read_image(0, 0, 0, spec.nchannels, oiio.FLOAT)
        if data is None:
            raise InputError(f"{path}: cannot read pixels ({inp.geterror()}); the file may be truncated")
    finally:
        inp.close()
    data = np.asarray(data, np.float32)
    if data.ndim == 2:
        data = data[:, :, None]
    names = tuple(spec.channelnames)
    # Normalise channel names: OIIO names grey PNGs 'Y', RGBA 'R','G','B','A'.
    alpha = AlphaState.OPAQUE
    if "A" in names:
        unassoc = spec.get_int_attribute("oiio:UnassociatedAlpha", 0)
        fmt = os.path.splitext(path)[1].lower()
        alpha = AlphaState.STRAIGHT if (unassoc or fmt in (".png", ".tif", ".tiff", ".jpg", ".jpeg", ".dpx")) \
            else AlphaState.PREMULTIPLIED
    meta: dict[str, Any] = {}
    for attr in spec.extra_attribs:
        try:
            meta[attr.name] = attr.value if isinstance(attr.value, (str, int, float)) else str(attr.value)
        except Exception:  # pragma: no cover - exotic attribute types
            continue
    meta["oiio:BitsPerSample"] = spec.get_int_attribute("oiio:BitsPerSample", 0) or \
        {oiio.UINT8: 8, oiio.UINT16: 16, oiio.HALF: 16, oiio.FLOAT: 32}.get(spec.format.basetype, 0)
    meta["file"] = path
    cs = colorspace or spec.get_string_attribute("oiio:ColorSpace") or "sRGB Encoded Rec.709 (sRGB)"
    if cs in ("sRGB", "srgb_rec709_scene"):
        cs = "sRGB Encoded Rec.709 (sRGB)"
    dw = Window.from_size(spec.width, spec.height, spec.x, spec.y)
    disp = Window.from_size(spec.full_width or spec.width, spec.full_height or spec.height, spec.full_x, spec.full_y)
    return Image(np.ascontiguousarray(data), names, colorspace=cs, alpha=alpha, data_window=dw,
                 display_window=disp, pixel_aspect=float(spec.get_float_attribute("PixelAspectRatio", 1.0)),
                 metadata=meta)


_BITS = {"uint8": oiio.UINT8, "uint16": oiio.UINT16, "half": oiio.HALF, "float": oiio.FLOAT}


def write_oiio(path: str | os.PathLike, image: Image, *, bits: str = "uint8", metadata: Mapping[str, Any] | None = None,
               fingerprint: str | None = None, quality: int = 95) -> Path:
    """Write ``image`` pixels as they are (no colour or alpha conversion here) with OpenImageIO, atomically.

    Integer formats quantise ``clip(value, 0, 1) * max`` — the caller converts to a display encoding first.
    """
    if bits not in _BITS:
        raise InputError(f"bits must be one of {', '.join(_BITS)}, got {bits!r}")
    h, w, c = image.pixels.shape
    spec = oiio.ImageSpec(w, h, c, _BITS[bits])
    spec.channelnames = image.channels
    if "A" in image.channels:
        spec.alpha_channel = image.channels.index("A")
    for k, v in (metadata or {}).items():
        spec.attribute(k, v if isinstance(v, (int, float, str)) else str(v))
    if fingerprint:
        spec.attribute(FINGERPRINT_KEY, fingerprint)
    spec.attribute("oiio:ColorSpace", image.colorspace)
    if image.alpha is AlphaState.STRAIGHT:
        spec.attribute("oiio:UnassociatedAlpha", 1)
    ext = os.path.splitext(os.fspath(path))[1].lower()
    if ext in (".jpg", ".jpeg"):
        spec.attribute("Compression", f"jpeg:{quality}")
    pixels = image.pixels
    if bits in ("uint8", "uint16"):
        pixels = np.clip(pixels, 0.0, 1.0)
    with atomic_output(path) as tmp:
        out = oiio.ImageOutput.create(str(tmp))
        if out is None:
            raise InputError(f"{path}: no writer for this file type ({oiio.geterror()})")
        try:
            if not out.open(str(tmp), spec):
                raise InputError(f"{path}: cannot open for writing ({out.geterror()})")
            if not out.write_image(np.ascontiguousarray(pixels, np.float32)):
                raise InputError(f"{path}: write failed ({out.geterror()})")
        finally:
            out.close()
    return Path(path)


def read_oiio_fingerprint(path: str | os.PathLike) -> str | None:
    """The recorded ``composite:fingerprint`` of an image file, or None."""
    path = os.fspath(path)
    if not os.path.exists(path):
        return None
    inp = oiio.ImageInput.open(path)
    if inp is None:
        return None
    try:
        value = inp.spec().get_string_attribute(FINGERPRINT_KEY)
        return value or None
    finally:
        inp.close()
