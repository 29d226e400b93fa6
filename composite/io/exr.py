"""OpenEXR reading and writing through OpenEXR's own Python bindings.

Reading (:func:`read_exr`) gives an :class:`~composite.core.Image`:

* the main channels (``R, G, B, A``; ``Y`` for luminance images; luminance/chroma ``Y, RY, BY`` files
  converted to RGB exactly as OpenEXR's RgbaInputFile does) as float32;
* every prefixed channel group (``diffuse.R``, ``forward.u``, Cryptomatte ranks ``uCryptoAsset00.red``)
  as a named layer, and an unprefixed ``Z`` as the ``depth`` layer;
* for multi-part files, one part (by index or name) with the layers of the other parts of the same
  view pasted into its data window; for multi-view files, the default view or the one asked for;
* scanline, tiled and mip-mapped files (the top level by default, another level on request), every
  compression OpenEXR supports, half / float / uint channels (uint converts exactly up to 2**24);
* the data and display windows, pixel aspect ratio and header attributes (``timeCode`` as
  ``"HH:MM:SS:FF"``, ``framesPerSecond`` as ``"24000/1001"``, ``chromaticities``, ``owner``, custom
  attributes) in ``metadata``, with the colour space taken from the file where it is reliable
  (``composite:colorspace``, or chromaticities that match a known gamut such as ACES AP0).

Deep files are refused with a clear message, or flattened through OpenImageIO's ``flatten`` on request.

Writing (:func:`write_exr`) puts the main channels and layers into one part (or one part per layer)
with the chosen compression, half or float per layer, the data window preserved and metadata kept
(including ``composite:fingerprint`` and ``composite:colorspace``), atomically.
"""

from __future__ import annotations

import contextlib
import fractions
import json
import logging
import os
import re
import sys
import tempfile
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import OpenEXR

from ..core.errors import InputError
from ..core.image import Image, Layer, Window
from ..core.state import RAW_SPACE, WORKING_SPACE, AlphaState
from .atomic import atomic_output, final_path
from .yca import yca_to_rgb

log = logging.getLogger(__name__)

FINGERPRINT_KEY = "composite:fingerprint"
COLORSPACE_KEY = "composite:colorspace"
ALPHA_KEY = "composite:alpha"

COMPRESSIONS = {
    "none": OpenEXR.NO_COMPRESSION, "rle": OpenEXR.RLE_COMPRESSION, "zips": OpenEXR.ZIPS_COMPRESSION,
    "zip": OpenEXR.ZIP_COMPRESSION, "piz": OpenEXR.PIZ_COMPRESSION, "pxr24": OpenEXR.PXR24_COMPRESSION,
    "b44": OpenEXR.B44_COMPRESSION, "b44a": OpenEXR.B44A_COMPRESSION, "dwaa": OpenEXR.DWAA_COMPRESSION,
    "dwab": OpenEXR.DWAB_COMPRESSION,
}
for _name in ("HTJ2K256", "HTJ2K32", "ZSTD"):
    if hasattr(OpenEXR, f"{_name}_COMPRESSION"):
        COMPRESSIONS[_name.lower()] = getattr(OpenEXR, f"{_name}_COMPRESSION")
_COMPRESSION_NAMES = {v: k for k, v in COMPRESSIONS.items()}
#: Compressions that lose information (pixels differ from what was written).
LOSSY_COMPRESSIONS = frozenset({"pxr24", "b44", "b44a", "dwaa", "dwab"})

_MAIN_ORDER = ("R", "G", "B", "A")
_STRUCTURAL = {"channels", "dataWindow", "displayWindow", "pixelAspectRatio", "compression", "lineOrder",
               "screenWindowCenter", "screenWindowWidth", "type", "name", "tiles", "version", "chunkCount",
               "view", "multiView", "preview"}
_DTYPE_NAMES = {np.dtype(np.float16): "half", np.dtype(np.float32): "float", np.dtype(np.uint32): "uint"}
_WRITE_TYPES = {"half": np.float16, "float": np.float32}
_HALF_MAX = 65504.0
_TIMECODE = re.compile(r"^(\d{1,2}):(\d{2}):(\d{2})[:;](\d{2})$")


def default_threads() -> int:
    """Threads OpenEXR uses to (de)compress: ``$COMPOSITE_IO_THREADS``, else the process's CPU share."""
    for var in ("COMPOSITE_IO_THREADS", "OMP_NUM_THREADS"):
        value = os.environ.get(var)
        if value and value.isdigit() and int(value) > 0:
            return int(value)
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


# -- header helpers ------------------------------------------------------------------------------

def _window(box) -> Window:
    (x0, y0), (x1, y1) = box
    return Window(int(x0), int(y0), int(x1), int(y1))


def _box(w: Window):
    return (np.array([w.xmin, w.ymin], np.int32), np.array([w.xmax, w.ymax], np.int32))


def _timecode_str(tc) -> str:
    sep = ";" if getattr(tc, "dropFrame", False) else ":"
    return f"{tc.hours:02d}:{tc.minutes:02d}:{tc.seconds:02d}{sep}{tc.frame:02d}"


def _jsonable(value: Any) -> Any:
    if isinstance(value, (str, bool)) or value is None:
        return value
    if isinstance(value, (int, float)):
        return value
    if isinstance(value, fractions.Fraction):
        return f"{value.numerator}/{value.denominator}"
    if isinstance(value, OpenEXR.TimeCode):
        return _timecode_str(value)
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (tuple, list)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


def _header_value(key: str, value: Any) -> Any:
    """A metadata value → an OpenEXR attribute value (strings, numbers, timecode, rational, chromaticities)."""
    if isinstance(value, bool):
        return int(value)
    if key == "timeCode" and isinstance(value, str) and _TIMECODE.match(value):
        h, m, s, f = (int(v) for v in _TIMECODE.match(value).groups())
        tc = OpenEXR.TimeCode()
        tc.hours, tc.minutes, tc.seconds, tc.frame = h, m, s, f
        tc.dropFrame = ";" in value
        return tc
    if key == "framesPerSecond":
        try:
            return fractions.Fraction(str(value)).limit_denominator(100000)
        except (ValueError, ZeroDivisionError):
            raise InputError(f"metadata framesPerSecond {value!r} is not a rate like 24 or 24000/1001") from None
    if key == "chromaticities":
        vals = tuple(float(v) for v in value)
        if len(vals) != 8:
            raise InputError(f"metadata chromaticities needs 8 numbers, got {len(vals)}")
        return vals
    if isinstance(value, (str, int, float)):
        return value
    if isinstance(value, (fractions.Fraction, OpenEXR.TimeCode)):
        return value
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray) and value.dtype.kind in "fi" and value.ndim in (1, 2):
        return value
    if isinstance(value, (list, tuple)) and value:
        if all(isinstance(v, str) for v in value):
            return list(value)
        flat = np.asarray(value, dtype=object)
        if flat.dtype != object or all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in flat.ravel()):
            arr = np.asarray(value)
            ints = arr.dtype.kind in "iu"
            if arr.ndim == 1 and len(arr) in (2, 3):  # V2f/V3f (V2i/V3i)
                return arr.astype(np.int32 if ints else np.float32)
            if arr.shape in ((3, 3), (4, 4)):  # M33f/M44f
                return arr.astype(np.float32)
            if arr.ndim == 1:  # FloatVector
                return [float(v) for v in arr]
    return json.dumps(_jsonable(value), sort_keys=True)


def _pixel_type_name(arr) -> str:
    if arr is None:
        return "unknown"
    if arr.dtype == object:
        return "deep"
    return _DTYPE_NAMES.get(arr.dtype, str(arr.dtype))


# -- views (OpenEXR's ImfMultiView rules) --------------------------------------------------------

def view_of_channel(name: str, views: Sequence[str]) -> str:
    """The view a channel of a single-part multi-view file belongs to ("" = every view).

    An unprefixed channel belongs to the default (first) view; otherwise the penultimate
    dot-separated component names the view when it is one of ``views``.
    """
    parts = name.split(".")
    if len(parts) == 1:
        return views[0] if views else ""
    return parts[-2] if parts[-2] in views else ""


def strip_view(name: str, view: str) -> str:
    """Remove the view component (the penultimate one) from a channel name: ``forward.left.u`` → ``forward.u``."""
    parts = name.split(".")
    if len(parts) >= 2 and parts[-2] == view:
        del parts[-2]
    return ".".join(parts)


# -- file description (for `composite info`) -----------------------------------------------------

@dataclass(frozen=True)
class ChannelInfo:
    name: str
    pixel_type: str
    x_sampling: int = 1
    y_sampling: int = 1


@dataclass(frozen=True)
class PartInfo:
    """One part of an EXR file, described from its header."""

    index: int
    name: str
    view: str
    storage: str
    compression: str
    data_window: Window
    display_window: Window
    pixel_aspect: float
    channels: tuple[ChannelInfo, ...]
    tiles: dict | None = None
    views: tuple[str, ...] = ()
    attributes: dict = field(default_factory=dict)

    @property
    def is_deep(self) -> bool:
        return self.storage.startswith("deep")

    @property
    def layers(self) -> dict[str, list[str]]:
        """Channel names grouped by layer prefix ("" for the unprefixed channels)."""
        out: dict[str, list[str]] = {}
        for ch in self.channels:
            layer, _, short = ch.name.rpartition(".")
            out.setdefault(layer, []).append(short)
        return out

    def as_dict(self) -> dict:
        return {
            "index": self.index, "name": self.name, "view": self.view, "storage": self.storage,
            "compression": self.compression, "data_window": list(self.data_window.as_tuple()),
            "display_window": list(self.display_window.as_tuple()), "pixel_aspect": self.pixel_aspect,
            "channels": [{"name": c.name, "type": c.pixel_type, "sampling": [c.x_sampling, c.y_sampling]}
                         for c in self.channels],
            "layers": self.layers, "tiles": self.tiles, "views": list(self.views),
            "attributes": self.attributes,
        }


def _storage_name(value) -> str:
    return str(getattr(value, "name", value)).split(".")[-1]


def _tiles_dict(tiles) -> dict | None:
    if tiles is None:
        return None
    mode = _storage_name(getattr(tiles, "mode", ""))
    return {"x_size": int(tiles.xSize), "y_size": int(tiles.ySize), "level_mode": mode,
            "rounding": _storage_name(getattr(tiles, "roundingMode", ""))}


def describe_exr(path: str | os.PathLike) -> list[PartInfo]:
    """Describe every part of an EXR file (header, channel types, layers, views).

    Channel pixel types come from the pixel data (the bindings report them only after reading), so
    this reads the file once.
    """
    path = os.fspath(path)
    f = _open(path, separate_channels=True, header_only=False)
    out = []
    for i, prt in enumerate(f.parts):
        header = dict(prt.header)
        chans = []
        for name, ch in prt.channels.items():
            chans.append(ChannelInfo(name, _pixel_type_name(ch.pixels), int(ch.xSampling), int(ch.ySampling)))
        attrs = {k: _jsonable(v) for k, v in header.items() if k not in _STRUCTURAL}
        out.append(PartInfo(
            index=i, name=str(header.get("name", "")), view=str(header.get("view", "")),
            storage=_storage_name(header.get("type", "scanlineimage")),
            compression=_COMPRESSION_NAMES.get(header.get("compression"), str(header.get("compression"))),
            data_window=_window(header["dataWindow"]), display_window=_window(header["displayWindow"]),
            pixel_aspect=float(header.get("pixelAspectRatio", 1.0)), channels=tuple(chans),
            tiles=_tiles_dict(header.get("tiles")), views=tuple(header.get("multiView", ()) or ()),
            attributes=attrs))
    return out


def read_header(path: str | os.PathLike, part: int = 0) -> dict[str, Any]:
    """One part's header attributes (no pixels read)."""
    f = _open(os.fspath(path), header_only=True)
    if part >= len(f.parts):
        raise InputError(f"{path}: has {len(f.parts)} part(s); part {part} does not exist")
    return dict(f.parts[part].header)


_native_lock = threading.Lock()


@contextlib.contextmanager
def _native_output_captured():
    """Collect what OpenEXR's C/C++ code prints on stdout/stderr (a corrupt file makes it print one line
    per damaged chunk) so the caller can report it in one error message; replayed to stderr otherwise."""
    result = {"text": ""}
    with _native_lock:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
            saved = (os.dup(1), os.dup(2))
        except (OSError, ValueError):
            yield result
            return
        with tempfile.TemporaryFile() as cap:
            os.dup2(cap.fileno(), 1)
            os.dup2(cap.fileno(), 2)
            try:
                yield result
            finally:
                os.dup2(saved[0], 1)
                os.dup2(saved[1], 2)
                os.close(saved[0])
                os.close(saved[1])
                cap.seek(0)
                result["text"] = cap.read().decode("utf-8", "replace")


def _first_problem(text: str, path: str) -> str:
    for line in text.splitlines():
        line = line.strip()
        if line:
            head, sep, rest = line.partition(": ")
            return rest if sep and head.endswith(os.path.basename(path)) else line
    return ""


def _open(path: str, *, separate_channels: bool = True, header_only: bool = False, threads: int | None = None):
    if not os.path.isfile(path):
        raise InputError(f"{path}: file not found" if not os.path.exists(path) else f"{path}: not a file")
    error = None
    with _native_output_captured() as native:
        try:
            f = OpenEXR.File(path, separate_channels=separate_channels, header_only=header_only,
                             num_threads=threads if threads is not None else default_threads())
            if not f.parts:
                error = "no readable part"
        except Exception as exc:
            error = str(exc)
    if error is None:
        if native["text"].strip():
            sys.stderr.write(native["text"])
        return f
    try:
        is_exr = OpenEXR.isOpenExrFile(path)
    except Exception:
        is_exr = False
    if not is_exr:
        raise InputError(f"{path}: not an OpenEXR file (bad magic number)")
    detail = _first_problem(native["text"], path) or error
    raise InputError(f"{path}: cannot read OpenEXR file ({detail}); the file may be truncated or corrupt")


# -- colour space from metadata ------------------------------------------------------------------

def colorspace_from_metadata(metadata: Mapping[str, Any]) -> tuple[str | None, str]:
    """The colour space an EXR header states reliably, and where it came from.

    ``composite:colorspace`` first; then ``acesImageContainerFlag`` (ACES2065-1); then chromaticities
    matching a known gamut (see :func:`composite.color.ocio.colorspace_from_chromaticities`).
    Returns ``(None, "default")`` when the file says nothing reliable.
    """
    from ..color import ocio

    cs = metadata.get(COLORSPACE_KEY)
    if cs:
        return str(cs), f"file attribute {COLORSPACE_KEY}"
    if metadata.get("acesImageContainerFlag") in (1, "1", True):
        return "ACES2065-1", "file attribute acesImageContainerFlag"
    chroma = metadata.get("chromaticities")
    if chroma is not None:
        found = ocio.colorspace_from_chromaticities(chroma)
        if found:
            return found, "file chromaticities"
    return None, "default"


# -- reading -------------------------------------------------------------------------------------

def _part_index(f, part: int | str | None, path: str) -> int | None:
    if part is None or part == "":
        return None
    if isinstance(part, str) and part.lstrip("-").isdigit():
        part = int(part)
    if isinstance(part, int):
        if not 0 <= part < len(f.parts):
            raise InputError(f"{path}: has {len(f.parts)} part(s); part {part} does not exist")
        return part
    names = [str(p.header.get("name", "")) for p in f.parts]
    if part in names:
        return names.index(part)
    raise InputError(f"{path}: no part named {part!r}; parts: {', '.join(repr(n) for n in names)}")


def _is_colour_part(prt) -> bool:
    names = {n.rpartition(".")[2] for n in prt.channels}
    return bool(names & {"R", "G", "B", "Y"})


def _paste(arr: np.ndarray, src: Window, dst: Window) -> np.ndarray:
    """Place ``arr`` (covering ``src``) into a zero array covering ``dst``."""
    if src == dst:
        return arr
    out = np.zeros((dst.height, dst.width) + arr.shape[2:], arr.dtype)
    inter = src.intersect(dst)
    if inter.empty:
        return out
    out[inter.ymin - dst.ymin:inter.ymax - dst.ymin + 1, inter.xmin - dst.xmin:inter.xmax - dst.xmin + 1] = \
        arr[inter.ymin - src.ymin:inter.ymax - src.ymin + 1, inter.xmin - src.xmin:inter.xmax - src.xmin + 1]
    return out


def _channel_key(c: str):
    order = {"R": 0, "G": 1, "B": 2, "A": 3, "X": 0, "Y": 1, "Z": 2, "u": 0, "v": 1, "red": 0, "green": 1,
             "blue": 2, "alpha": 3, "x": 0, "y": 1, "z": 2, "w": 3}
    return (order.get(c, 10), c)


def _upsample(arr: np.ndarray, xs: int, ys: int, shape: tuple[int, int]) -> np.ndarray:
    up = np.repeat(np.repeat(arr, ys, axis=0), xs, axis=1)
    return up[:shape[0], :shape[1]]


def _build_image(path: str, channels: dict[str, np.ndarray], sampling: dict[str, tuple[int, int]],
                 header: Mapping[str, Any], *, colorspace: str | None, extra_layers: dict[str, Layer],
                 metadata_extra: dict[str, Any]) -> Image:
    dw = _window(header["dataWindow"])
    disp = _window(header["displayWindow"])
    h, w = dw.height, dw.width
    metadata = {k: _jsonable(v) for k, v in header.items() if k not in _STRUCTURAL}
    chroma = metadata.get("chromaticities")

    pixel_types = {name: _pixel_type_name(arr) for name, arr in channels.items()}
    groups: dict[str, dict[str, np.ndarray]] = {}
    yc = False
    main_names = {n for n in channels if "." not in n}
    if {"Y", "RY", "BY"} <= main_names and sampling.get("RY", (1, 1)) != (1, 1):
        rgb = yca_to_rgb(channels["Y"], channels["RY"], channels["BY"], chromaticities=chroma,
                         origin=(dw.xmin, dw.ymin))
        groups[""] = {"R": rgb[..., 0], "G": rgb[..., 1], "B": rgb[..., 2]}
        if "A" in channels:
            groups[""]["A"] = channels["A"]
        skip = {"Y", "RY", "BY", "A"}
        yc = True
    else:
        skip = set()
    for name, arr in channels.items():
        if name in skip:
            continue
        xs, ys = sampling.get(name, (1, 1))
        if (xs, ys) != (1, 1):
            arr = _upsample(arr, xs, ys, (h, w))
        layer, _, short = name.rpartition(".")
        groups.setdefault(layer, {})[short] = arr

    main = groups.pop("", {})
    layers: dict[str, Layer] = {}
    if "Z" in main and len(main) > 1 and "depth" not in groups:
        groups["depth"] = {"Z": main.pop("Z")}
    if not main and len(groups) == 1:
        _, main = groups.popitem()
    order = [c for c in _MAIN_ORDER if c in main] + sorted((c for c in main if c not in _MAIN_ORDER), key=_channel_key)
    pixels = np.empty((h, w, len(order)), np.float32)
    for i, c in enumerate(order):
        pixels[..., i] = main[c]
    for name, chs in groups.items():
        names = sorted(chs, key=_channel_key)
        arr = np.empty((h, w, len(names)), np.float32)
        for i, c in enumerate(names):
            arr[..., i] = chs[c]
        layers[name] = Layer(arr, tuple(names))
    for name, layer in extra_layers.items():
        key = name
        while key in layers:
            key = f"{key}_"
        layers[key] = layer

    metadata["exr:compression"] = _COMPRESSION_NAMES.get(header.get("compression"), str(header.get("compression")))
    metadata["exr:storage"] = _storage_name(header.get("type", "scanlineimage"))
    metadata["exr:pixel_types"] = pixel_types
    if yc:
        metadata["exr:luminance_chroma"] = True
    metadata.update(metadata_extra)
    metadata["file"] = path

    colour_main = {"R", "G", "B"} <= set(order) or "Y" in order
    if colorspace:
        cs, source = colorspace, "given"
    else:
        cs, source = colorspace_from_metadata(metadata)
        if cs is None:
            cs = WORKING_SPACE if colour_main else RAW_SPACE
            source = "default (scene-linear working space)" if colour_main else "default (data)"
    metadata["colorspace_source"] = source
    alpha_state = metadata.get(ALPHA_KEY)
    if alpha_state not in ("premultiplied", "straight", "opaque"):
        alpha_state = AlphaState.PREMULTIPLIED if "A" in order and len(order) > 1 else AlphaState.OPAQUE
    return Image(pixels, tuple(order), colorspace=cs, alpha=alpha_state, data_window=dw, display_window=disp,
                 pixel_aspect=float(header.get("pixelAspectRatio", 1.0)), layers=layers, metadata=metadata)


def _part_layer_name(prt_name: str, view: str, channel: str, n_channels: int) -> str:
    layer, _, short = channel.rpartition(".")
    if layer:
        return layer
    if short == "Z" and n_channels == 1:
        return "depth"
    name = prt_name or "part"
    if view:
        for sep in ("_", ".", "-"):
            if name.endswith(sep + view):
                name = name[: -len(view) - 1]
            elif name.startswith(view + sep):
                name = name[len(view) + 1:]
    return name


def read_exr(path: str | os.PathLike, *, part: int | str | None = None, view: str | None = None,
             colorspace: str | None = None, other_parts: bool = True, level: int = 0, deep: str = "error",
             threads: int | None = None) -> Image:
    """Read an EXR file (one part, one view) into an Image.

    Parameters
    ----------
    path : path
    part : int, str or None
        Part index or name for multi-part files; default: the first part of ``view`` (or part 0).
    view : str or None
        View of a multi-view file (single-part ``multiView`` or multi-part ``view`` attributes);
        default: the file's default (first) view.
    colorspace : str or None
        Colour space of the colour channels; default: from the file where reliable
        (:func:`colorspace_from_metadata`), else the scene-linear working space (ACEScg), as Nuke does
        with the ACES config's ``scene_linear`` role.
    other_parts : bool
        Bring the channels of the other parts of the same view (depth, motion, masks ...) in as layers,
        pasted into this part's data window.
    level : int
        Mip-map level of tiled mip-mapped files (0: full resolution).
    deep : {"error", "flatten"}
        Deep files: refuse (default) or composite the samples front to back (OpenImageIO ``flatten``).
    threads : int or None
        OpenEXR decoding threads (default :func:`default_threads`).

    Returns
    -------
    Image
        ``(H, W, C)`` float32 over the data window; alpha as stored (EXR is premultiplied by convention);
        ``metadata`` holds the header attributes plus ``exr:*`` facts and ``colorspace_source``.

    Example
    -------
    >>> img = read_exr("beauty.exr", view="left")  # doctest: +SKIP
    """
    path = os.fspath(path)
    if deep not in ("error", "flatten"):
        raise InputError(f"deep must be 'error' or 'flatten', got {deep!r}")
    if level:
        return _read_with_oiio(path, part=part, level=level, colorspace=colorspace, flatten=False)
    f = _open(path, separate_channels=True, threads=threads)
    parts = f.parts
    index = _part_index(f, part, path)
    part_views = [str(p.header.get("view", "")) for p in parts]
    if index is None:
        index = 0
        if view and any(part_views):
            candidates = [i for i, v in enumerate(part_views) if v == view]
            if not candidates:
                raise InputError(f"{path}: no part of view {view!r}; views: {sorted(set(v for v in part_views if v))}")
            colour = [i for i in candidates if _is_colour_part(parts[i])]
            index = (colour or candidates)[0]
    prt = parts[index]
    header = dict(prt.header)
    storage = _storage_name(header.get("type", ""))
    if storage.startswith("deep"):
        if deep == "flatten":
            return _read_with_oiio(path, part=index, level=0, colorspace=colorspace, flatten=True)
        raise InputError(f"{path}: part {index} holds deep data ({storage}), which composite does not read; "
                         "flatten it first (composite convert IN OUT --deep flatten, or oiiotool IN --flatten -o OUT) "
                         "or read with deep='flatten'")

    views = list(header.get("multiView", ()) or ())
    chosen_view = str(header.get("view", "")) or (view if view else (views[0] if views else ""))
    if view and views and view not in views:
        raise InputError(f"{path}: no view {view!r}; views: {', '.join(views)}")
    if view and not views and header.get("view") and view != header.get("view"):
        raise InputError(f"{path}: part {index} is view {header.get('view')!r}, not {view!r}")

    channels: dict[str, np.ndarray] = {}
    sampling: dict[str, tuple[int, int]] = {}
    for name, ch in prt.channels.items():
        px = ch.pixels
        if px is None:
            raise InputError(f"{path}: channel {name!r} of part {index} has no pixel data (truncated file?)")
        if views:
            v = view_of_channel(name, views)
            if v and v != chosen_view:
                continue
            name = strip_view(name, chosen_view) if v else name
        channels[name] = px
        sampling[name] = (int(ch.xSampling), int(ch.ySampling))

    extra: dict[str, Layer] = {}
    if other_parts and len(parts) > 1:
        dw = _window(header["dataWindow"])
        for j, other in enumerate(parts):
            if j == index:
                continue
            oh = other.header
            oview = str(oh.get("view", ""))
            if oview and oview != chosen_view:
                continue
            if _storage_name(oh.get("type", "")).startswith("deep"):
                continue
            odw = _window(oh["dataWindow"])
            pname = str(oh.get("name", f"part{j}"))
            grouped: dict[str, dict[str, np.ndarray]] = {}
            for cname, ch in other.channels.items():
                if ch.pixels is None or ch.xSampling != 1 or ch.ySampling != 1:
                    continue
                lname = _part_layer_name(pname, oview, cname, len(other.channels))
                grouped.setdefault(lname, {})[cname.rpartition(".")[2]] = ch.pixels
            for lname, chs in grouped.items():
                names = sorted(chs, key=_channel_key)
                arr = np.empty((odw.height, odw.width, len(names)), np.float32)
                for i, c in enumerate(names):
                    arr[..., i] = chs[c]
                extra[lname] = Layer(np.ascontiguousarray(_paste(arr, odw, dw)), tuple(names))

    meta_extra: dict[str, Any] = {"exr:part": index, "exr:parts": len(parts)}
    if header.get("name"):
        meta_extra["exr:part_name"] = str(header["name"])
    if chosen_view:
        meta_extra["exr:view"] = chosen_view
    all_views = views or sorted({v for v in part_views if v})
    if all_views:
        meta_extra["exr:views"] = list(all_views)
    if header.get("tiles") is not None:
        meta_extra["exr:tiles"] = _tiles_dict(header["tiles"])
    return _build_image(path, channels, sampling, header, colorspace=colorspace, extra_layers=extra,
                        metadata_extra=meta_extra)


def _read_with_oiio(path: str, *, part: int | str | None, level: int, colorspace: str | None,
                    flatten: bool) -> Image:
    """Mip-map levels and flattened deep parts, read through OpenImageIO."""
    import OpenImageIO as oiio

    header_file = _open(path, header_only=True)
    index = _part_index(header_file, part, path) or 0
    buf = oiio.ImageBuf(path, index, level)
    if not buf.init_spec(path, index, level) or buf.has_error:
        raise InputError(f"{path}: part {index} has no mip-map level {level} ({buf.geterror() or 'not mip-mapped'})")
    if flatten:
        buf = oiio.ImageBufAlgo.flatten(buf)
        if buf.has_error:
            raise InputError(f"{path}: cannot flatten deep part {index} ({buf.geterror()})")
    data = buf.get_pixels(oiio.FLOAT)
    if data is None or buf.has_error:
        raise InputError(f"{path}: cannot read part {index} level {level} ({buf.geterror()})")
    spec = buf.spec()
    data = np.asarray(data, np.float32).reshape(spec.height, spec.width, spec.nchannels)
    channels = {name: data[..., i] for i, name in enumerate(spec.channelnames)}
    header = dict(header_file.parts[index].header)
    header["dataWindow"] = ((spec.x, spec.y), (spec.x + spec.width - 1, spec.y + spec.height - 1))
    header["displayWindow"] = ((spec.full_x, spec.full_y),
                               (spec.full_x + spec.full_width - 1, spec.full_y + spec.full_height - 1))
    extra = {"exr:part": index, "exr:parts": len(header_file.parts), "exr:level": level}
    if flatten:
        extra["exr:flattened_deep"] = True
    return _build_image(path, channels, {}, header, colorspace=colorspace, extra_layers={}, metadata_extra=extra)


# -- writing -------------------------------------------------------------------------------------

#: Image metadata keys that describe the file a frame came from, never copied into a new file.
_NOT_COPIED_PREFIXES = ("exr:", "oiio:", "composite:", "video:", "dpx:", "tiff:", "png:", "jpeg:", "Exif:",
                        "openexr:")
_NOT_COPIED = {"file", "colorspace_source", "chromaticities", "acesImageContainerFlag"}


def copyable_metadata(metadata: Mapping[str, Any]) -> dict[str, Any]:
    """The part of an image's metadata that describes the picture (owner, timecode, custom attributes)
    rather than the file it was read from."""
    return {k: v for k, v in metadata.items()
            if k not in _NOT_COPIED and not k.startswith(_NOT_COPIED_PREFIXES) and isinstance(k, str)}


def _as_stored(arr: np.ndarray, kind: str, what: str) -> np.ndarray:
    if kind not in _WRITE_TYPES:
        raise InputError(f"{what}: pixel type must be 'half' or 'float', got {kind!r}")
    if kind == "half":
        finite = np.isfinite(arr)
        over = int(np.count_nonzero(np.abs(arr[finite]) > _HALF_MAX)) if arr.size else 0
        if over:
            log.warning("%s: %d value(s) exceed the half-float range (65504) and become +-inf; "
                        "write pixel_type='float' to keep them", what, over)
    with np.errstate(over="ignore"):  # reported above
        return np.ascontiguousarray(arr, dtype=_WRITE_TYPES[kind])


#: Layers that always need float storage: data whose values half cannot hold (depth, motion,
#: coverage) and Cryptomatte ranks (32-bit float ID hashes).
FLOAT_LAYERS = ("depth", "motion", "ai_coverage")


def _default_layer_type(name: str, layer: Layer, source_types: Mapping[str, str], pixel_type: str) -> str:
    """Storage of a layer nobody chose one for: float for data layers and Cryptomatte, float when the file
    it came from stored it as float (or uint), else the main channels' type."""
    if name in FLOAT_LAYERS or "crypto" in name.lower():
        return "float"
    stored = [source_types.get(f"{name}.{c}") for c in layer.channels]
    if any(t in ("float", "uint") for t in stored):
        return "float"
    return pixel_type


def write_exr(path: str | os.PathLike, image: Image, *, compression: str = "zip", pixel_type: str = "half",
              layer_types: Mapping[str, str] | None = None, metadata: Mapping[str, Any] | None = None,
              fingerprint: str | None = None, keep_metadata: bool = False, multipart: bool = False,
              dwa_level: float | None = None, threads: int | None = None) -> Path:
    """Write ``image`` (main channels and layers) to an EXR file, atomically.

    Parameters
    ----------
    image : Image
        Pixels are written as they are (no colour conversion); ``image.colorspace`` and ``image.alpha``
        are recorded as ``composite:colorspace`` / ``composite:alpha`` (and as ``chromaticities`` when
        the colour space is a known linear gamut).
    compression : str
        One of :data:`COMPRESSIONS` (``zip`` default; ``piz``, ``dwaa``, ``dwab`` ...).
    pixel_type : {"half", "float"}
        Storage of the main channels.
    layer_types : mapping
        Storage per layer name (default: ``float`` for depth, motion, ai_coverage and Cryptomatte layers
        and for layers the source file stored as float, else ``pixel_type``).
    metadata : mapping
        Extra header attributes (strings, numbers, ``timeCode`` "HH:MM:SS:FF", ``framesPerSecond``
        "24000/1001"; other values are stored as JSON strings).
    fingerprint : str
        Recorded as ``composite:fingerprint`` so re-renders can skip up-to-date frames.
    keep_metadata : bool
        Also write the image's own picture metadata (see :func:`copyable_metadata`).
    multipart : bool
        One part per layer (named after it) instead of one part with prefixed channels.
    dwa_level : float or None
        DWAA/DWAB compression level (OpenEXR's default 45 when None).
    """
    from ..color import ocio

    if compression not in COMPRESSIONS:
        raise InputError(f"unknown EXR compression {compression!r}; allowed: {', '.join(COMPRESSIONS)}")
    if pixel_type not in _WRITE_TYPES:
        raise InputError(f"pixel_type must be 'half' or 'float', got {pixel_type!r}")
    layer_types = dict(layer_types or {})
    unknown = sorted(set(layer_types) - set(image.layers))
    if unknown:
        raise InputError(f"layer_types names layer {unknown[0]!r}, which the image does not have; "
                         f"layers: {sorted(image.layers)}")
    groups: list[tuple[str, dict[str, np.ndarray]]] = []
    name = final_path(path)
    main = {c: _as_stored(image.pixels[:, :, i], pixel_type, f"{name} channel {c}")
            for i, c in enumerate(image.channels)}
    groups.append(("", main))
    source_types = image.metadata.get("exr:pixel_types") or {}
    for lname, layer in image.layers.items():
        kind = layer_types.get(lname) or _default_layer_type(lname, layer, source_types, pixel_type)
        groups.append((lname, {c: _as_stored(layer.pixels[:, :, i], kind, f"{name} layer {lname}.{c}")
                               for i, c in enumerate(layer.channels)}))

    dw, disp = image.data_window, image.display_window
    header: dict[str, Any] = {
        "compression": COMPRESSIONS[compression],
        "type": OpenEXR.scanlineimage,
        "dataWindow": _box(dw),
        "displayWindow": _box(disp),
        "pixelAspectRatio": float(image.pixel_aspect),
    }
    if dwa_level is not None:
        header["dwaCompressionLevel"] = float(dwa_level)
    attrs: dict[str, Any] = {}
    if keep_metadata:
        attrs.update(copyable_metadata(image.metadata))
    attrs.update(metadata or {})
    chroma = ocio.chromaticities_for(image.colorspace) if image.channels[:3] == ("R", "G", "B") else None
    if chroma is not None and "chromaticities" not in attrs:
        attrs["chromaticities"] = chroma
    for k, v in attrs.items():
        if k in _STRUCTURAL or k in ("dataWindow", "displayWindow"):
            continue
        header[k] = _header_value(k, v)
    header[COLORSPACE_KEY] = image.colorspace
    header[ALPHA_KEY] = str(image.alpha)
    if fingerprint:
        header[FINGERPRINT_KEY] = fingerprint
    nthreads = threads if threads is not None else default_threads()
    with atomic_output(path) as tmp:
        try:
            if multipart and len(groups) > 1:
                parts = []
                for lname, chans in groups:
                    if not chans:
                        continue
                    ph = dict(header)
                    ph["name"] = lname or "rgba"
                    named = {(f"{lname}.{c}" if lname else c): a for c, a in chans.items()}
                    parts.append(OpenEXR.Part(ph, named))
                OpenEXR.File(parts, num_threads=nthreads).write(str(tmp))
            else:
                flat = {}
                for lname, chans in groups:
                    for c, a in chans.items():
                        flat[f"{lname}.{c}" if lname else c] = a
                OpenEXR.File(header, flat, num_threads=nthreads).write(str(tmp))
        except InputError:
            raise
        except Exception as exc:
            raise InputError(f"{name}: cannot write OpenEXR file ({exc})") from None
    return Path(path)


def read_fingerprint(path: str | os.PathLike) -> str | None:
    """The ``composite:fingerprint`` recorded in an EXR, or None (missing or unreadable file)."""
    try:
        path = os.fspath(path)
        if not os.path.isfile(path):
            return None
        with _native_output_captured():
            header = OpenEXR.File(path, header_only=True).parts[0].header
        value = header.get(FINGERPRINT_KEY)
        return str(value) if value is not None else None
    except Exception:
        return None
