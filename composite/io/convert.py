"""File and sequence conversion, like a small oiiotool: what ``composite convert`` does.

:func:`convert_path` reads a file, sequence or movie, converts colour (OCIO, or a display view) and
alpha association for the output format, and writes a file, sequence or review movie. Every output file
is first written under a temporary name; only when every frame has converted are they renamed into
place, so a failure (a corrupt frame, a gap, a format change mid-sequence) leaves no partial output.

Defaults: the output colour space is the input's, except scene-linear input written to an integer
display format (PNG, JPEG, 8/16-bit TIFF), which gets ``sRGB Encoded Rec.709 (sRGB)``; movies get the
``Rec.1886 Rec.709 - Display`` display with the ACES SDR view. EXR output keeps the input's layers and
header metadata, as half unless the input had float channels.
"""

from __future__ import annotations

import contextlib
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..color import ocio
from ..core.errors import InputError, MissingFrameError
from ..core.image import Image
from ..core.state import RAW_SPACE
from . import images, video
from .atomic import temp_path_for
from .sequence import SequencePattern, format_frame_list

log = logging.getLogger(__name__)

MOVIE_DISPLAY = "Rec.1886 Rec.709 - Display"
_INTEGER_FORMATS = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".dpx", ".tga", ".bmp", ".webp")


@dataclass
class ConvertReport:
    frames: list[int] = field(default_factory=list)
    written: list[str] = field(default_factory=list)
    source_space: str = ""
    target_space: str = ""


def _expand_grey(img: Image) -> Image:
    if img.channels in (("Y",), ("Y", "A")):
        y = img.pixels[..., :1]
        px = np.concatenate([y, y, y] + ([img.pixels[..., 1:2]] if len(img.channels) == 2 else []), axis=2)
        return img.replace(pixels=np.ascontiguousarray(px), channels=("R", "G", "B") + img.channels[1:])
    return img


def _default_target(src: str, out: str, config: str | None) -> str:
    if images.is_exr(out):
        return src
    ext = os.path.splitext(out)[1].lower()
    if ext in _INTEGER_FORMATS and ext != ".dpx":
        cs = ocio.get_config(config).getColorSpace(src)
        if cs is not None and str(cs.getEncoding()) == "scene-linear":
            return images.DISPLAY_FILE_SPACE
    return src


def convert_image(img: Image, out_path: str, *, to_space: str | None = None, display: str | None = None,
                  view: str | None = None, alpha: str | None = None, config: str | None = None) -> Image:
    """Convert one image for ``out_path``'s format: colour (``to_space`` or a display view) and alpha
    (premultiplied for EXR, straight for the others unless ``alpha`` says)."""
    exr_out = images.is_exr(out_path)
    out_alpha = alpha or ("premultiplied" if exr_out else "straight")
    if img.colorspace == RAW_SPACE and not display:
        return img
    target = to_space or _default_target(img.colorspace, out_path, config)
    needs_colour = display or ocio.resolve_colorspace(target, config) != ocio.resolve_colorspace(img.colorspace, config)
    if needs_colour:
        img = _expand_grey(img)
    if img.channels[:3] != ("R", "G", "B"):
        if needs_colour:
            raise InputError(f"{img.metadata.get('file', 'image')}: channels {img.channels} are not R, G, B; "
                             "cannot convert colour")
        return img
    return images.from_working(img, target, alpha=out_alpha, display=display, view=view, config=config)


def _inputs(src: str, frames: str | None, missing: str, start_frame: int) -> tuple[list[int], Any]:
    """Frames to convert and a function frame → Image (None for black)."""
    if video.is_movie(src):
        reader = video.movie_reader(src)
        all_frames = list(range(start_frame, start_frame + reader.frame_count))
        return all_frames, lambda f: ("movie", f - start_frame)
    pattern = SequencePattern.parse(src)
    if not pattern.is_sequence:
        if not os.path.exists(src):
            raise InputError(f"{src}: file not found")
        return [None], lambda f: ("file", src)
    on_disk = pattern.scan()
    if not on_disk:
        raise InputError(f"{pattern}: no frames of this sequence exist on disk")
    if frames:
        from ..graph.executor import parse_frames

        wanted = parse_frames(frames)
    else:
        wanted = list(range(on_disk[0], on_disk[-1] + 1)) if pattern.frames is None else sorted(pattern.frames)
    present = set(on_disk)
    gaps = [f for f in wanted if f not in present]
    if gaps and missing == "error":
        raise MissingFrameError(f"{pattern}: frame(s) {format_frame_list(gaps)} missing; pass --missing hold or "
                                "--missing black to convert through gaps")

    def source(f):
        if f in present:
            return ("file", pattern.path(f))
        if missing == "hold":
            earlier = [g for g in on_disk if g < f]
            return ("file", pattern.path(earlier[-1] if earlier else on_disk[0]))
        return ("black", pattern.path(on_disk[0]))

    return wanted, source


def convert_path(src: str | os.PathLike, dst: str | os.PathLike, *, from_space: str | None = None,
                 to_space: str | None = None, display: str | None = None, view: str | None = None,
                 compression: str = "zip", pixel_type: str | None = None, bits: str | None = None,
                 alpha: str | None = None, frames: str | None = None, missing: str = "error",
                 start_frame: int = 1001, part: str | None = None, exr_view: str | None = None,
                 check_format: bool = True, rate: float | None = None, config: str | None = None,
                 codec: str = "h264", deep: str = "error") -> ConvertReport:
    """Convert a file, sequence or movie ``src`` into ``dst`` (file, sequence pattern or movie).

    Parameters
    ----------
    from_space, to_space : str or None
        Input and output colour spaces (defaults: the input's own, see the module doc).
    display, view : str or None
        Apply an OCIO display view instead of ``to_space`` (default for movie output).
    compression, pixel_type : str
        EXR output (``pixel_type`` default: float when the input had float channels, else half).
    bits : str or None
        Non-EXR output depth (uint8, uint10 (DPX), uint16, half, float; default from the input).
    alpha : {"premultiplied", "straight"} or None
        Output alpha association (default: premultiplied for EXR, straight otherwise).
    frames : str or None
        Frame range of a sequence (default: what is on disk).
    missing : {"error", "hold", "black"}
        Missing frames of a sequence.
    start_frame : int
        Frame number of a movie's first frame.
    part, exr_view : str or None
        EXR part and view to read.
    check_format : bool
        Stop when resolution, channels or bit depth change mid-sequence.
    deep : {"error", "flatten"}
        Deep EXR input: refuse, or flatten (OpenImageIO).
    """
    src, dst = os.fspath(src), os.fspath(dst)
    if missing not in ("error", "hold", "black"):
        raise InputError(f"missing must be error, hold or black, got {missing!r}")
    if from_space:
        ocio.resolve_colorspace(from_space, config)
    if to_space:
        ocio.resolve_colorspace(to_space, config)
    frame_list, source = _inputs(src, frames, missing, start_frame)
    out_pattern = SequencePattern.parse(dst)
    movie_out = video.is_movie(dst)
    if len(frame_list) > 1 and not (out_pattern.is_sequence or movie_out):
        raise InputError(f"{dst}: {len(frame_list)} frames need an output sequence pattern (e.g. out.####.exr) "
                         "or a movie")
    if movie_out and not display and not to_space:
        display = MOVIE_DISPLAY
    if display and not view:
        view = ocio.DEFAULT_VIEW

    report = ConvertReport()
    temps: list[tuple[Path, Path]] = []
    writer = None
    reference = None
    black = None
    try:
        if movie_out:
            writer = video.MovieWriter(dst, rate=rate or 24, codec=codec)
        for f in frame_list:
            kind, where = source(f)
            if kind == "movie":
                img = video.read_movie_frame(src, where, colorspace=from_space)
            elif kind == "black":
                if black is None:
                    ref = images.read_image(where, colorspace=from_space, part=part, view=exr_view, deep=deep)
                    black = ref.replace(pixels=np.zeros_like(ref.pixels), layers={})
                img = black
            else:
                img = images.read_image(where, colorspace=from_space, part=part, view=exr_view, deep=deep)
                if check_format and len(frame_list) > 1:
                    sig = images.image_signature(img)
                    if reference is None:
                        reference = (f, sig)
                    else:
                        change = images.signature_change(reference[1], sig)
                        if change:
                            raise InputError(f"{where}: frame {f} differs from frame {reference[0]}: {change}")
            if not report.source_space:
                report.source_space = img.colorspace
            out = convert_image(img, dst, to_space=to_space, display=display, view=view, alpha=alpha, config=config)
            report.target_space = out.colorspace
            if movie_out:
                px = out.pixels
                if out.channels[:3] != ("R", "G", "B"):
                    raise InputError(f"{src}: a movie needs R, G, B channels, got {out.channels}")
                n = 4 if out.channels[3:4] == ("A",) and codec == "prores" else 3
                writer.add(px[..., :n])
                report.frames.append(f)
                continue
            final = Path(out_pattern.path(f) if f is not None and out_pattern.is_sequence else dst)
            final.parent.mkdir(parents=True, exist_ok=True)
            tmp = temp_path_for(final)
            temps.append((tmp, final))
            images.write_image(tmp, out, compression=compression, pixel_type=pixel_type or _pixel_type(img),
                               bits=bits or _bits(img, dst), keep_metadata=True)
            report.frames.append(f)
        if movie_out:
            writer.close()
            report.written.append(dst)
        else:
            for tmp, final in temps:
                os.replace(tmp, final)
                report.written.append(str(final))
    except BaseException:
        if writer is not None:
            writer.abort()
        for tmp, _ in temps:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
        raise
    return report


def _pixel_type(img: Image) -> str:
    types = img.metadata.get("exr:pixel_types") or {}
    main = [types.get(c) for c in img.channels if c in types]
    if any(t in ("float", "uint") for t in main):
        return "float"
    if not types and img.metadata.get("oiio:BitsPerSample", 0) >= 32:
        return "float"
    return "half"


def _bits(img: Image, dst: str) -> str:
    ext = os.path.splitext(dst)[1].lower()
    depth = int(img.metadata.get("oiio:BitsPerSample", 0) or 0)
    if ext in (".jpg", ".jpeg"):
        return "uint8"
    if ext == ".dpx":
        return {8: "uint8", 12: "uint12", 16: "uint16"}.get(depth, "uint10")
    if ext == ".png":
        return "uint16" if depth >= 16 or not depth else "uint8"
    if ext in (".tif", ".tiff"):
        if depth >= 32 or (not depth and img.metadata.get("exr:pixel_types")):
            return "float" if _pixel_type(img) == "float" else "uint16"
        return "uint16" if depth > 8 else "uint8"
    return "uint8" if depth <= 8 and depth else "uint16"

