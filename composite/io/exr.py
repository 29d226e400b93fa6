"""OpenEXR reading and writing through OpenEXR's own Python bindings.

Reading gives an :class:`~composite.core.Image`: the main channels (R, G, B, A — or Y, or whatever the
file's unprefixed channels are) as float32, every prefixed channel group (``depth.Z``, ``diffuse.R``) as a
layer, the data and display windows, pixel aspect and header attributes in ``metadata``. Half and float
channels convert to float32 exactly; uint channels convert to float32 (exact up to 2**24).

Writing puts the main channels and layers into one part with the chosen compression, half or float per
layer, the data window preserved and metadata kept (including ``composite:fingerprint`` and
``composite:colorspace``), atomically.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import OpenEXR

from ..core.errors import InputError
from ..core.image import Image, Layer, Window
from ..core.state import RAW_SPACE, WORKING_SPACE, AlphaState
from .atomic import atomic_output

FINGERPRINT_KEY = "composite:fingerprint"
COLORSPACE_KEY = "composite:colorspace"
ALPHA_KEY = "composite:alpha"

COMPRESSIONS = {
    "none": OpenEXR.NO_COMPRESSION, "rle": OpenEXR.RLE_COMPRESSION, "zips": OpenEXR.ZIPS_COMPRESSION,
    "zip": OpenEXR.ZIP_COMPRESSION, "piz": OpenEXR.PIZ_COMPRESSION, "pxr24": OpenEXR.PXR24_COMPRESSION,
    "b44": OpenEXR.B44_COMPRESSION, "b44a": OpenEXR.B44A_COMPRESSION, "dwaa": OpenEXR.DWAA_COMPRESSION,
    "dwab": OpenEXR.DWAB_COMPRESSION,
}
_COMPRESSION_NAMES = {v: k for k, v in COMPRESSIONS.items()}
_MAIN_ORDER = ("R", "G", "B", "A")
_STRUCTURAL = {"channels", "dataWindow", "displayWindow", "pixelAspectRatio", "compression", "lineOrder",
               "screenWindowCenter", "screenWindowWidth", "type", "name", "tiles", "version", "chunkCount"}


def _window(box) -> Window:
    (x0, y0), (x1, y1) = box
    return Window(int(x0), int(y0), int(x1), int(y1))


def _jsonable(value: Any) -> Any:
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (tuple, list)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return str(value)


def read_header(path: str | os.PathLike) -> dict[str, Any]:
    """The first part's header attributes (no pixels read)."""
    path = os.fspath(path)
    _check_file(path)
    try:
        f = OpenEXR.File(path, header_only=True)
    except Exception as exc:
        raise InputError(f"{path}: not a readable OpenEXR file ({exc})") from None
    return dict(f.header())


def _check_file(path: str) -> None:
    if not os.path.exists(path):
        raise InputError(f"{path}: file not found")
    if not OpenEXR.isOpenExrFile(path):
        raise InputError(f"{path}: not an OpenEXR file (bad magic number)")


def read_exr(path: str | os.PathLike, *, part: int = 0, colorspace: str | None = None) -> Image:
    """Read one part of an EXR file into an Image.

    Parameters
    ----------
    path : path
    part : int
        Part index for multi-part files.
    colorspace : str or None
        Colour space of the colour channels; default: the file's ``composite:colorspace`` attribute,
        else the working space (EXR is scene-linear by convention).
    """
    path = os.fspath(path)
    _check_file(path)
    try:
        f = OpenEXR.File(path, separate_channels=True)
    except Exception as exc:
        raise InputError(f"{path}: cannot read OpenEXR file ({exc}); the file may be truncated or corrupt") from None
    if part >= len(f.parts):
        raise InputError(f"{path}: has {len(f.parts)} part(s); part {part} does not exist")
    prt = f.parts[part]
    header = dict(prt.header)
    ptype = str(header.get("type", ""))
    if "deep" in ptype.lower():
        raise InputError(f"{path}: deep OpenEXR data is not supported; flatten it first (e.g. oiiotool --flatten)")
    dw = _window(header["dataWindow"])
    disp = _window(header["displayWindow"])
    groups: dict[str, dict[str, np.ndarray]] = {}
    for name, ch in prt.channels.items():
        px = ch.pixels
        if px is None:
            continue
        if ch.xSampling != 1 or ch.ySampling != 1:
            raise InputError(f"{path}: channel {name} is subsampled ({ch.xSampling}x{ch.ySampling}); "
                             "luminance/chroma files need conversion (composite convert)")
        arr = np.asarray(px)
        arr = arr.astype(np.float32) if arr.dtype != np.float32 else arr
        layer, _, short = name.rpartition(".")
        groups.setdefault(layer, {})[short] = arr
    main = groups.pop("", {})
    if not main:
        if len(groups) == 1:
            layer_name, main = groups.popitem()
        else:
            main = {}
    order = [c for c in _MAIN_ORDER if c in main] + sorted(c for c in main if c not in _MAIN_ORDER)
    h, w = dw.height, dw.width
    pixels = np.stack([main[c] for c in order], axis=2) if order else np.zeros((h, w, 0), np.float32)
    layers = {name: Layer(np.stack([chs[c] for c in sorted(chs, key=_channel_key)], axis=2),
                          tuple(sorted(chs, key=_channel_key)))
              for name, chs in groups.items()}
    metadata = {k: _jsonable(v) for k, v in header.items() if k not in _STRUCTURAL}
    metadata["exr:compression"] = _COMPRESSION_NAMES.get(header.get("compression"), str(header.get("compression")))
    metadata["file"] = path
    cs = colorspace or metadata.get(COLORSPACE_KEY) or (WORKING_SPACE if set(order) & {"R", "G", "B", "Y"} else RAW_SPACE)
    alpha_state = metadata.get(ALPHA_KEY)
    if alpha_state is None:
        alpha_state = AlphaState.PREMULTIPLIED if "A" in order and len(order) > 1 else AlphaState.OPAQUE
    return Image(np.ascontiguousarray(pixels), tuple(order), colorspace=cs, alpha=alpha_state,
                 data_window=dw, display_window=disp, pixel_aspect=float(header.get("pixelAspectRatio", 1.0)),
                 layers=layers, metadata=metadata)


def _channel_key(c: str):
    order = {"R": 0, "G": 1, "B": 2, "A": 3, "X": 0, "Y": 1, "Z": 2, "u": 0, "v": 1}
    return (order.get(c, 10), c)


def write_exr(path: str | os.PathLike, image: Image, *, compression: str = "zip", pixel_type: str = "half",
              layer_types: Mapping[str, str] | None = None, metadata: Mapping[str, Any] | None = None,
              fingerprint: str | None = None, threads: int = -1) -> Path:
    """Write ``image`` (main channels and layers) to one EXR part, atomically.

    Parameters
    ----------
    compression : str
        One of :data:`COMPRESSIONS` (``zip`` default; ``piz``, ``dwaa``, ``dwab`` ...).
    pixel_type : {"half", "float"}
        Storage of the main channels.
    layer_types : mapping
        Storage per layer name (default: ``float`` for depth, motion and ai_coverage, else ``pixel_type``).
    metadata : mapping
        Extra string/number header attributes.
    fingerprint : str
        Recorded as ``composite:fingerprint`` so re-renders can skip up-to-date frames.
    """
    if compression not in COMPRESSIONS:
        raise InputError(f"unknown EXR compression {compression!r}; allowed: {', '.join(COMPRESSIONS)}")
    types = {"half": np.float16, "float": np.float32}
    if pixel_type not in types:
        raise InputError(f"pixel_type must be 'half' or 'float', got {pixel_type!r}")
    layer_types = dict(layer_types or {})
    channels: dict[str, np.ndarray] = {}
    for i, c in enumerate(image.channels):
        channels[c] = np.ascontiguousarray(image.pixels[:, :, i].astype(types[pixel_type]))
    for lname, layer in image.layers.items():
        default = "float" if lname in ("depth", "motion", "ai_coverage") else pixel_type
        t = layer_types.get(lname, default)
        if t not in types:
            raise InputError(f"layer {lname!r}: pixel type must be 'half' or 'float', got {t!r}")
        for i, c in enumerate(layer.channels):
            channels[f"{lname}.{c}"] = np.ascontiguousarray(layer.pixels[:, :, i].astype(types[t]))
    dw, disp = image.data_window, image.display_window
    header: dict[str, Any] = {
        "compression": COMPRESSIONS[compression],
        "type": OpenEXR.scanlineimage,
        "dataWindow": (np.array([dw.xmin, dw.ymin], np.int32), np.array([dw.xmax, dw.ymax], np.int32)),
        "displayWindow": (np.array([disp.xmin, disp.ymin], np.int32), np.array([disp.xmax, disp.ymax], np.int32)),
        "pixelAspectRatio": float(image.pixel_aspect),
    }
    for k, v in (metadata or {}).items():
        if isinstance(v, (str, int, float)) and not isinstance(v, bool):
            header[k] = v
        elif isinstance(v, bool):
            header[k] = int(v)
        else:
            import json

            header[k] = json.dumps(_jsonable(v), sort_keys=True)
    header[COLORSPACE_KEY] = image.colorspace
    header[ALPHA_KEY] = str(image.alpha)
    if fingerprint:
        header[FINGERPRINT_KEY] = fingerprint
    with atomic_output(path) as tmp:
        OpenEXR.File(header, channels, num_threads=threads).write(str(tmp))
    return Path(path)


def read_fingerprint(path: str | os.PathLike) -> str | None:
    """The ``composite:fingerprint`` recorded in an EXR, or None (missing or unreadable file)."""
    try:
        if not os.path.exists(path) or not OpenEXR.isOpenExrFile(os.fspath(path)):
            return None
        header = OpenEXR.File(os.fspath(path), header_only=True).header()
        value = header.get(FINGERPRINT_KEY)
        return str(value) if value is not None else None
    except Exception:
        return None
