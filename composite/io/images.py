"""Format-independent image file access: read any supported file, write by extension, and the
conversions between a file's state and the working state.

EXR goes through OpenEXR's bindings (:mod:`composite.io.exr`), movies through PyAV
(:mod:`composite.io.video`), everything else through OpenImageIO (:mod:`composite.io.formats`).

Example
-------
>>> img = read_image("plate.1001.dpx")  # doctest: +SKIP
>>> work = to_working(img, "ACEScg")    # ADX10 → ACEScg, premultiplied  # doctest: +SKIP
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from ..color import ocio
from ..core.errors import InputError, StateError
from ..core.image import Image
from ..core.merge import premultiply, unpremultiply
from ..core.state import RAW_SPACE, AlphaState
from . import exr, formats, video

EXR_EXTENSIONS = (".exr", ".sxr", ".mxr")
#: Default colour space of display-referred formats when the file does not say.
DISPLAY_FILE_SPACE = formats.DISPLAY_FILE_SPACE
ALPHA_MODES = ("auto", "straight", "premultiplied", "ignore")


def is_exr(path: str | os.PathLike) -> bool:
    return os.path.splitext(os.fspath(path))[1].lower() in EXR_EXTENSIONS


def is_movie(path: str | os.PathLike) -> bool:
    return video.is_movie(path)


def read_image(path: str | os.PathLike, *, colorspace: str | None = None, part: int | str | None = None,
               view: str | None = None, frame_index: int | None = None, deep: str = "error") -> Image:
    """Read a file as stored (its own colour space and alpha state).

    ``part``/``view``/``deep``: EXR part, view and deep handling (:func:`composite.io.exr.read_exr`).
    ``frame_index``: 0-based frame of a movie (required for movies).
    """
    if is_exr(path):
        return exr.read_exr(path, colorspace=colorspace, part=part, view=view, deep=deep)
    if is_movie(path):
        if frame_index is None:
            raise InputError(f"{path}: a movie needs a frame index")
        return video.read_movie_frame(path, frame_index, colorspace=colorspace)
    return formats.read_oiio(path, colorspace=colorspace)


def read_fingerprint(path: str | os.PathLike) -> str | None:
    return exr.read_fingerprint(path) if is_exr(path) else formats.read_oiio_fingerprint(path)


def image_signature(image: Image) -> dict[str, Any]:
    """What must stay the same from frame to frame of a sequence: resolution (display window size),
    channels (main and layers) and storage bit depth."""
    types = image.metadata.get("exr:pixel_types")
    if types is None:
        depth = image.metadata.get("oiio:BitsPerSample")
        types = {c: f"{depth}-bit" for c in image.all_channel_names()} if depth else {}
    disp = image.display_window
    return {"resolution": f"{disp.width}x{disp.height}", "channels": ",".join(image.all_channel_names()),
            "bit_depth": ",".join(f"{k}:{v}" for k, v in sorted(types.items()))}


def signature_change(reference: Mapping[str, Any], current: Mapping[str, Any]) -> str | None:
    """A sentence naming what differs between two signatures, or None."""
    diffs = [f"{key} {reference[key]} → {current[key]}" for key in ("resolution", "channels", "bit_depth")
             if reference.get(key) != current.get(key)]
    return "; ".join(diffs) if diffs else None


def _colour_channels(channels: tuple[str, ...]) -> bool:
    return channels[:3] == ("R", "G", "B")


def to_working(image: Image, working_space: str, *, source_space: str | None = None,
               alpha: str = "auto", config: str | None = None) -> Image:
    """Convert a file image to the working state: ``working_space`` colour, premultiplied alpha.

    Parameters
    ----------
    image : Image
        As read: ``(H, W, C)`` float32 in its file colour space and alpha state.
    working_space : str
        OCIO name of the working space (ACEScg by default in pipelines).
    source_space : str or None
        Overrides ``image.colorspace``.
    alpha : {"auto", "straight", "premultiplied", "ignore"}
        How to interpret the file's A channel: as the reader reported, straight, premultiplied, or drop
        it (the image becomes opaque).

    Greyscale ``Y``/``YA`` images are expanded to RGB. Pure-matrix conversions act on premultiplied
    colour directly (so emissive pixels with A == 0 keep their light); other conversions unpremultiply
    around the conversion. Layers (depth, motion, Cryptomatte ...) are data and pass through.
    """
    if alpha not in ALPHA_MODES:
        raise InputError(f"alpha must be one of {', '.join(ALPHA_MODES)}, got {alpha!r}")
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
    if not _colour_channels(channels):
        return image.replace(pixels=pixels, channels=channels, alpha=state, colorspace=RAW_SPACE)
    if src == RAW_SPACE or ocio.is_data(src, config):
        return image.replace(pixels=pixels, channels=channels, alpha=state, colorspace=RAW_SPACE)
    dst = ocio.resolve_colorspace(working_space, ocio.get_config(config))
    src = ocio.resolve_colorspace(src, ocio.get_config(config))
    has_a = len(channels) >= 4 and channels[3] == "A"
    linear = ocio.is_linear_conversion(src, dst, config=config)
    rgba = pixels[..., :4] if has_a else pixels[..., :3]
    if has_a and state is AlphaState.PREMULTIPLIED and not linear:
        rgba = unpremultiply(rgba)
        state = AlphaState.STRAIGHT
    converted = ocio.convert(np.ascontiguousarray(rgba), src, dst, config=config)
    if has_a and state is AlphaState.STRAIGHT:
        converted = premultiply(converted)
        state = AlphaState.PREMULTIPLIED
    rest = pixels[..., converted.shape[2]:]
    if rest.shape[2]:
        converted = np.concatenate([converted, rest], axis=2)
    return image.replace(pixels=np.ascontiguousarray(converted, np.float32), channels=channels, alpha=state,
                         colorspace=dst)


def from_working(image: Image, colorspace: str, *, alpha: str = "premultiplied", display: str | None = None,
                 view: str | None = None, config: str | None = None) -> Image:
    """Convert a working-state image for a file: colour space (or display/view) and alpha association.

    ``alpha``: ``premultiplied`` (EXR) or ``straight`` (PNG, TIFF, DPX, JPEG, movies).
    ``display``/``view``: apply an OCIO display view (previews, review media) instead of ``colorspace``.
    """
    if alpha not in ("premultiplied", "straight"):
        raise InputError(f"alpha must be 'premultiplied' or 'straight', got {alpha!r}")
    if not _colour_channels(image.channels) or image.colorspace == RAW_SPACE:
        return image
    pixels = image.pixels
    state = image.alpha
    has_a = len(image.channels) >= 4 and image.channels[3] == "A"
    rgba = pixels[..., :4] if has_a else pixels[..., :3]
    if display:
        view = view or ocio.DEFAULT_VIEW
        if has_a and state is AlphaState.PREMULTIPLIED:
            rgba = unpremultiply(rgba)
            state = AlphaState.STRAIGHT
        out = ocio.to_display(np.ascontiguousarray(rgba), image.colorspace, display=display, view=view, config=config)
        cs = f"{display} / {view}"
    else:
        cs = ocio.resolve_colorspace(colorspace, ocio.get_config(config))
        linear = ocio.is_linear_conversion(image.colorspace, cs, config=config)
        if has_a and state is AlphaState.PREMULTIPLIED and not (linear and alpha == "premultiplied"):
            rgba = unpremultiply(rgba)
            state = AlphaState.STRAIGHT
        out = ocio.convert(np.ascontiguousarray(rgba), image.colorspace, cs, config=config)
    if has_a and alpha == "premultiplied" and state is AlphaState.STRAIGHT:
        out = premultiply(out)
        state = AlphaState.PREMULTIPLIED
    elif has_a and alpha == "straight" and state is AlphaState.PREMULTIPLIED:
        out = unpremultiply(out)
        state = AlphaState.STRAIGHT
    rest = pixels[..., out.shape[2]:]
    if rest.shape[2]:
        out = np.concatenate([out, rest], axis=2)
    return image.replace(pixels=np.ascontiguousarray(out, np.float32), alpha=state, colorspace=cs)


def write_image(path: str | os.PathLike, image: Image, *, fingerprint: str | None = None,
                metadata: Mapping[str, Any] | None = None, compression: str = "zip", pixel_type: str = "half",
                bits: str = "uint8", layer_types: Mapping[str, str] | None = None, keep_metadata: bool = False,
                quality: int = 95) -> Path:
    """Write pixels as they are (no conversion) choosing the writer by extension, atomically.

    EXR keeps every layer; other formats take 1-4 channels (layers are not written).
    """
    if is_exr(path):
        return exr.write_exr(path, image, compression=compression, pixel_type=pixel_type, metadata=metadata,
                             fingerprint=fingerprint, layer_types=layer_types, keep_metadata=keep_metadata)
    if is_movie(path):
        raise InputError(f"{path}: movies are written by WriteMovie (a whole range at once), not frame by frame")
    if image.pixels.shape[2] not in (1, 2, 3, 4):
        raise StateError(f"{path}: {image.pixels.shape[2]} channels cannot be stored in this format; use EXR")
    meta = dict(exr.copyable_metadata(image.metadata)) if keep_metadata else {}
    meta = {k: v for k, v in meta.items() if isinstance(v, (str, int, float))}
    meta.update(metadata or {})
    return formats.write_oiio(path, image, bits=bits, metadata=meta, fingerprint=fingerprint, quality=quality)
