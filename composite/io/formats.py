"""Non-EXR image files through OpenImageIO: DPX, TIFF, PNG, JPEG and the other formats it reads.

Integer files are normalised to float32 in [0, 1] (``code / (2**bits - 1)``, 10-bit DPX included)
explicitly; the stored bit depth is recorded in ``metadata["oiio:BitsPerSample"]``. PNG/TIFF alpha is
straight (unassociated): the reader returns it as ``AlphaState.STRAIGHT`` (the reader stage
premultiplies after colour conversion).

Colour space when the caller does not give one:

* the file's own ``oiio:ColorSpace`` when it names a colour space of the OCIO config;
* DPX: log transfer (printing density, logarithmic, or unstated) → ``ADX10`` / ``ADX16`` (ACES film
  scans), ``Linear`` → the scene-linear working space, Rec.709 → ``Camera Rec.709``;
* float and half files → the scene-linear working space;
* integer files → ``sRGB Encoded Rec.709 (sRGB)``.

Example
-------
>>> img = read_oiio("scan.0001.dpx")  # doctest: +SKIP
>>> img.colorspace, img.metadata["oiio:BitsPerSample"]  # doctest: +SKIP
('ADX10', 10)
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import OpenImageIO as oiio

from ..core.errors import InputError
from ..core.image import Image, Window
from ..core.state import WORKING_SPACE, AlphaState
from .atomic import atomic_output, final_path

log = logging.getLogger(__name__)

FINGERPRINT_KEY = "composite:fingerprint"
COLORSPACE_KEY = "composite:colorspace"
#: Default colour space of display-referred integer files that do not say.
DISPLAY_FILE_SPACE = "sRGB Encoded Rec.709 (sRGB)"
#: Formats whose alpha is straight by definition (TIFF says so per file, through oiio:UnassociatedAlpha).
_STRAIGHT_ALPHA_FORMATS = (".png", ".jpg", ".jpeg", ".dpx", ".tga", ".webp", ".gif", ".bmp")
_BASETYPE_BITS = {oiio.UINT8: 8, oiio.UINT16: 16, oiio.HALF: 16, oiio.FLOAT: 32, oiio.UINT32: 32, oiio.INT16: 16,
                  oiio.INT8: 8, oiio.DOUBLE: 64}


def _basetype(fmt) -> Any:
    return getattr(fmt, "basetype", fmt)


def _bits(spec) -> int:
    return spec.get_int_attribute("oiio:BitsPerSample", 0) or _BASETYPE_BITS.get(_basetype(spec.format), 0)


def _is_float(spec) -> bool:
    return _basetype(spec.format) in (oiio.HALF, oiio.FLOAT, oiio.DOUBLE)


def default_colorspace(path: str, spec) -> tuple[str, str]:
    """The colour space a file's metadata implies, and where that came from (see the module doc)."""
    from ..color import ocio

    cfg = ocio.get_config()
    stated = spec.get_string_attribute(COLORSPACE_KEY) or _description_fields(spec).get(COLORSPACE_KEY)
    if stated and cfg.getColorSpace(stated) is not None:
        return cfg.getColorSpace(stated).getName(), f"file attribute {COLORSPACE_KEY}"
    ext = os.path.splitext(path)[1].lower()
    if ext == ".dpx":
        transfer = (spec.get_string_attribute("dpx:Transfer") or "").lower()
        bits = _bits(spec)
        if "linear" in transfer:
            return WORKING_SPACE, "DPX transfer Linear"
        if "709" in transfer:
            return "Camera Rec.709", "DPX transfer Rec.709"
        name = "ADX16" if bits >= 16 else "ADX10"
        why = f"DPX transfer {transfer or 'unstated'} (log film scan)"
        return name, why
    stated = spec.get_string_attribute("oiio:ColorSpace")
    if stated and not _is_float(spec) and cfg.getColorSpace(stated) is not None:
        return cfg.getColorSpace(stated).getName(), "file colour space (oiio:ColorSpace)"
    if _is_float(spec):
        if stated and cfg.getColorSpace(stated) is not None and "lin" in stated.lower():
            return cfg.getColorSpace(stated).getName(), "file colour space (oiio:ColorSpace)"
        return WORKING_SPACE, "default for float files (scene-linear working space)"
    return DISPLAY_FILE_SPACE, "default for integer files (sRGB)"


def _description_fields(spec) -> dict[str, str]:
    """``key=value`` pairs composite records in ImageDescription (formats without free attributes)."""
    text = "; ".join(spec.get_string_attribute(k) or "" for k in ("ImageDescription", "DocumentName"))
    out = {}
    if "composite:" in text:
        for item in text.split(";"):
            key, sep, value = item.strip().partition("=")
            if sep and key.startswith("composite:"):
                out[key] = value
    return out


def _attr_value(value: Any) -> Any:
    if isinstance(value, (str, int, float)):
        return value
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (tuple, list)):
        return [_attr_value(v) for v in value]
    return str(value)


def read_oiio(path: str | os.PathLike, *, colorspace: str | None = None, subimage: int = 0) -> Image:
    """Read an image file with OpenImageIO as float32.

    Parameters
    ----------
    path : path
    colorspace : str or None
        The file's colour space (default: from the file, see the module doc).
    subimage : int
        Subimage of multi-image files (TIFF pages).

    Returns
    -------
    Image
        ``(H, W, C)`` float32, integer codes normalised to [0, 1]; alpha straight for PNG/TIFF/DPX/JPEG.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise InputError(f"{path}: file not found" if not os.path.exists(path) else f"{path}: not a file")
    config = oiio.ImageSpec()
    config.attribute("oiio:UnassociatedAlpha", 1)  # keep straight alpha as stored; we premultiply explicitly
    inp = oiio.ImageInput.open(path, config)
    if inp is None:
        raise InputError(f"{path}: cannot open image ({oiio.geterror() or 'unknown format'})")
    try:
        if subimage and not inp.seek_subimage(subimage, 0):
            raise InputError(f"{path}: no subimage {subimage}")
        spec = inp.spec()
        if spec.deep:
            raise InputError(f"{path}: deep image data is not supported; flatten it first")
        nbits = _bits(spec)
        packed = _basetype(spec.format) == oiio.UINT16 and nbits in (10, 12)
        data = inp.read_image(subimage, 0, 0, spec.nchannels, oiio.UINT16 if packed else oiio.FLOAT)
        err = inp.geterror()
        if data is None or err:
            raise InputError(f"{path}: cannot read pixels ({err or 'read failed'}); the file may be truncated or corrupt")
    finally:
        inp.close()
    if packed:  # 10/12-bit codes arrive bit-replicated to 16 bits: normalise the code itself, code / (2**n - 1)
        codes = np.asarray(data, np.uint16) >> np.uint16(16 - nbits)
        data = codes.astype(np.float32) * np.float32(1.0 / ((1 << nbits) - 1))
    data = np.asarray(data, np.float32).reshape(spec.height, spec.width, spec.nchannels)
    names = tuple(spec.channelnames)
    alpha = AlphaState.OPAQUE
    if "A" in names and len(names) > 1:
        unassoc = spec.get_int_attribute("oiio:UnassociatedAlpha", 0)
        fmt = os.path.splitext(path)[1].lower()
        alpha = AlphaState.STRAIGHT if (unassoc or fmt in _STRAIGHT_ALPHA_FORMATS) else AlphaState.PREMULTIPLIED
    meta: dict[str, Any] = {}
    for attr in spec.extra_attribs:
        try:
            meta[attr.name] = _attr_value(attr.value)
        except Exception:  # pragma: no cover - exotic attribute types
            continue
    meta["oiio:BitsPerSample"] = _bits(spec)
    meta["oiio:format"] = str(spec.format)
    meta["file"] = path
    if colorspace:
        cs, source = colorspace, "given"
    else:
        cs, source = default_colorspace(path, spec)
    meta["colorspace_source"] = source
    dw = Window.from_size(spec.width, spec.height, spec.x, spec.y)
    disp = Window.from_size(spec.full_width or spec.width, spec.full_height or spec.height, spec.full_x, spec.full_y)
    return Image(np.ascontiguousarray(data), names, colorspace=cs, alpha=alpha, data_window=dw,
                 display_window=disp, pixel_aspect=float(spec.get_float_attribute("PixelAspectRatio", 1.0)),
                 metadata=meta)


#: Storage choices for non-EXR files: name → (OIIO type, bits per sample recorded).
BITS = {"uint8": (oiio.UINT8, 8), "uint10": (oiio.UINT16, 10), "uint12": (oiio.UINT16, 12),
        "uint16": (oiio.UINT16, 16), "half": (oiio.HALF, 16), "float": (oiio.FLOAT, 32)}
#: DPX transfer characteristic written for known colour spaces.
_DPX_TRANSFER = {"ADX10": "Printing density", "ADX16": "Printing density", "Camera Rec.709": "ITU-R 709-4"}


def _short_name(colorspace: str) -> str:
    """The shortest name OCIO knows a colour space by (DPX text fields are short)."""
    from ..color import ocio

    cs = ocio.get_config().getColorSpace(colorspace)
    if cs is None:
        return colorspace
    return min([cs.getName(), *cs.getAliases()], key=len)


def write_oiio(path: str | os.PathLike, image: Image, *, bits: str = "uint8", metadata: Mapping[str, Any] | None = None,
               fingerprint: str | None = None, quality: int = 95, compression: str | None = None) -> Path:
    """Write ``image`` pixels as they are (no colour or alpha conversion here) with OpenImageIO, atomically.

    Integer formats store ``round(clip(value, 0, 1) * (2**bits - 1))`` — the caller converts to the file's
    encoding first; values outside [0, 1] are reported in a warning (integer files cannot hold them).
    ``bits``: one of :data:`BITS` (``uint10`` for DPX). ``compression``: OpenImageIO compression name
    for TIFF (``zip`` default), ignored elsewhere.
    """
    if bits not in BITS:
        raise InputError(f"bits must be one of {', '.join(BITS)}, got {bits!r}")
    ext = os.path.splitext(os.fspath(path))[1].lower()
    fmt, nbits = BITS[bits]
    if bits in ("uint10", "uint12") and ext != ".dpx":
        raise InputError(f"{path}: {bits} is only available for DPX files")
    h, w, c = image.pixels.shape
    spec = oiio.ImageSpec(w, h, c, fmt)
    spec.channelnames = image.channels
    spec.x, spec.y = image.data_window.xmin, image.data_window.ymin
    spec.full_x, spec.full_y = image.display_window.xmin, image.display_window.ymin
    spec.full_width, spec.full_height = image.display_window.width, image.display_window.height
    if nbits in (10, 12):
        spec.attribute("oiio:BitsPerSample", nbits)
    if "A" in image.channels:
        spec.alpha_channel = image.channels.index("A")
    for k, v in (metadata or {}).items():
        spec.attribute(k, v if isinstance(v, (int, float, str)) and not isinstance(v, bool) else str(v))
    if fingerprint:
        spec.attribute(FINGERPRINT_KEY, fingerprint)
    spec.attribute(COLORSPACE_KEY, image.colorspace)
    if ext != ".dpx":  # DPX: the transfer characteristic is written below, not guessed by OpenImageIO
        spec.attribute("oiio:ColorSpace", image.colorspace)
    # TIFF, DPX and JPEG keep no free attributes: record colour space and fingerprint in text fields too
    # (DPX: its 32-character description holds the colour space, its 100-character file-name field the
    # fingerprint)
    cs_field = f"{COLORSPACE_KEY}={_short_name(image.colorspace) if ext == '.dpx' else image.colorspace}"
    fp_field = f"{FINGERPRINT_KEY}={fingerprint}" if fingerprint else ""
    if ext == ".dpx":
        if len(cs_field) < 32 and "ImageDescription" not in (metadata or {}):
            spec.attribute("ImageDescription", cs_field)
        if fp_field and "DocumentName" not in (metadata or {}):
            spec.attribute("DocumentName", fp_field)
    elif "ImageDescription" not in (metadata or {}):
        spec.attribute("ImageDescription", "; ".join(f for f in (cs_field, fp_field) if f))
    if image.pixel_aspect != 1.0:
        spec.attribute("PixelAspectRatio", float(image.pixel_aspect))
    if image.alpha is AlphaState.STRAIGHT:
        spec.attribute("oiio:UnassociatedAlpha", 1)
    if ext == ".dpx" and image.colorspace in _DPX_TRANSFER:
        spec.attribute("dpx:Transfer", _DPX_TRANSFER[image.colorspace])
    if ext in (".jpg", ".jpeg"):
        spec.attribute("Compression", f"jpeg:{int(quality)}")
    elif ext in (".tif", ".tiff"):
        spec.attribute("Compression", compression or "zip")
    pixels = image.pixels
    if fmt in (oiio.UINT8, oiio.UINT16):
        outside = int(np.count_nonzero((pixels < 0) | (pixels > 1)))
        if outside:
            log.warning("%s: %d value(s) outside [0, 1] are clipped by the %s file format; convert to a display "
                        "encoding first or write EXR to keep them", final_path(path), outside, bits)
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


def describe_oiio(path: str | os.PathLike) -> list[dict[str, Any]]:
    """Header facts of every subimage (format, size, windows, channels and their types, attributes)."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise InputError(f"{path}: file not found")
    inp = oiio.ImageInput.open(path)
    if inp is None:
        raise InputError(f"{path}: cannot open image ({oiio.geterror() or 'unknown format'})")
    out = []
    try:
        k = 0
        while inp.seek_subimage(k, 0):
            spec = inp.spec()
            types = [str(f) for f in spec.channelformats] or [str(spec.format)] * spec.nchannels
            levels = 1
            while inp.seek_subimage(k, levels):
                levels += 1
            inp.seek_subimage(k, 0)
            cs, source = default_colorspace(path, spec)
            out.append({
                "subimage": k, "format": inp.format_name(), "width": spec.width, "height": spec.height,
                "data_window": [spec.x, spec.y, spec.x + spec.width - 1, spec.y + spec.height - 1],
                "display_window": [spec.full_x, spec.full_y, spec.full_x + (spec.full_width or spec.width) - 1,
                                   spec.full_y + (spec.full_height or spec.height) - 1],
                "pixel_aspect": spec.get_float_attribute("PixelAspectRatio", 1.0),
                "channels": [{"name": n, "type": t} for n, t in zip(spec.channelnames, types)],
                "bits_per_sample": _bits(spec), "deep": bool(spec.deep), "mip_levels": levels,
                "tile": [spec.tile_width, spec.tile_height] if spec.tile_width else None,
                "colorspace": cs, "colorspace_source": source,
                "attributes": {a.name: _attr_value(a.value) for a in spec.extra_attribs},
            })
            k += 1
    finally:
        inp.close()
    return out


def read_oiio_fingerprint(path: str | os.PathLike) -> str | None:
    """The recorded ``composite:fingerprint`` of an image file, or None."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        return None
    inp = oiio.ImageInput.open(path)
    if inp is None:
        oiio.geterror()
        return None
    try:
        spec = inp.spec()
        value = spec.get_string_attribute(FINGERPRINT_KEY) or _description_fields(spec).get(FINGERPRINT_KEY)
        return value or None
    finally:
        inp.close()
