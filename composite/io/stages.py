"""Reader and writer stages: ``ReadImage`` (files and sequences) and ``WriteImage``."""

from __future__ import annotations

import os

import numpy as np

from ..core.errors import InputError, MissingFrameError, RecipeError
from ..core.image import Image
from ..graph.params import Param
from ..graph.registry import register
from ..graph.stage import ANY_ALPHA, Input, OutputStage, Stage
from . import images
from .sequence import SequencePattern, format_frame_list

MISSING_POLICIES = ("error", "hold", "black")


@register
class ReadImage(Stage):
    """Read an image file or sequence and convert it to the working state (colour space, premultiplied).

    ``path`` is a file or a pattern (``plate.####.exr``, ``plate.%04d.exr``, ``plate.1001-1100#.exr``).
    ``colorspace`` is the file's colour space (empty: the file's own metadata, else scene-linear for EXR
    and sRGB for display-referred formats). ``missing`` says what a missing frame does: ``error``,
    ``hold`` (the nearest earlier frame, else the nearest later one) or ``black``.
    """

    is_source = True
    version = 1
    params = {
        "path": Param(str, "", path=True, doc="file or sequence pattern"),
        "colorspace": Param(str, "", doc="colour space of the file (empty: from the file)"),
        "alpha": Param(str, "auto", choices=("auto", "straight", "premultiplied", "ignore"),
                       doc="how to interpret the file's A channel"),
        "missing": Param(str, "error", choices=MISSING_POLICIES, doc="missing-frame policy"),
        "first": Param(int, None, optional=True, doc="first frame (default: from the pattern or disk)"),
        "last": Param(int, None, optional=True, doc="last frame (default: from the pattern or disk)"),
    }

    def check_params(self):
        if not self.p.path:
            raise RecipeError("a path is required (e.g. --set plate.path=plates/sh010.####.exr)", key="params.path")
        self.pattern = SequencePattern.parse(self.p.path)
        self._disk: list[int] | None = None

    def _frames_on_disk(self) -> list[int]:
        if self._disk is None:
            self._disk = self.pattern.scan()
        return self._disk

    def frame_range(self):
        if not self.pattern.is_sequence:
            return None
        if self.p.first is not None and self.p.last is not None:
            return (self.p.first, self.p.last)
        rng = self.pattern.frame_range()
        if rng is None:
            raise InputError(f"{self.pattern}: no frames of this sequence exist on disk")
        first = self.p.first if self.p.first is not None else rng[0]
        last = self.p.last if self.p.last is not None else rng[1]
        return (first, last)

    def _resolve(self, t: int) -> str | None:
        path = self.pattern.path(t)
        if os.path.exists(path):
            return path
        if self.p.missing == "error":
            gaps = self.pattern.gaps()
            hint = f" (gaps in the sequence: {format_frame_list(gaps)})" if gaps else ""
            raise MissingFrameError(f"{path}: frame {t} is missing{hint}; set {self.node_name}.missing to "
                                    "hold or black to render through gaps")
        if self.p.missing == "hold":
            frames = self._frames_on_disk()
            if not frames:
                raise MissingFrameError(f"{self.pattern}: no frames on disk to hold")
            earlier = [f for f in frames if f < t]
            return self.pattern.path(earlier[-1] if earlier else frames[0])
        return None

    def source_identity(self, t: int) -> str:
        try:
            path = self._resolve(t)
        except MissingFrameError:
            return f"missing:{self.pattern.path(t)}"
        if path is None:
            return f"black:{self.pattern.path(t)}"
        st = os.stat(path)
        return f"{os.path.abspath(path)}|{st.st_size}|{st.st_mtime_ns}"

    def process(self, t, **_):
        path = self._resolve(t)
        if path is None:  # black frame: size of the nearest existing frame
            frames = self._frames_on_disk()
            if not frames:
                raise MissingFrameError(f"{self.pattern}: no frames on disk")
            ref = images.read_image(self.pattern.path(frames[0]))
            img = ref.replace(pixels=np.zeros_like(ref.pixels), layers={})
        else:
            img = images.read_image(path, colorspace=self.p.colorspace or None)
        img = images.to_working(img, self.working_space, alpha=self.p.alpha)
        return img.replace(time=self.time(t))


@register
class WriteImage(OutputStage):
    """Write frames to a file or sequence (EXR, PNG, TIFF, JPEG, DPX ...), atomically, with the fingerprint.

    ``colorspace``: output colour space (empty: the working space for EXR, sRGB for other formats).
    ``display``/``view``: apply an OCIO display view instead (previews, review media).
    ``alpha``: ``premultiplied`` (EXR default) or ``straight`` (PNG/TIFF default: ``auto``).
    """

    inputs = {"image": Input("image to write", alpha=ANY_ALPHA)}
    params = {
        "path": Param(str, "", path=True, doc="output file or sequence pattern"),
        "colorspace": Param(str, "", doc="output colour space (empty: working space for EXR, sRGB otherwise)"),
        "display": Param(str, "", doc="OCIO display for a display-referred output (empty: none)"),
        "view": Param(str, "ACES 2.0 - SDR 100 nits (Rec.709)", doc="OCIO view with display"),
        "alpha": Param(str, "auto", choices=("auto", "premultiplied", "straight")),
        "compression": Param(str, "zip", choices=("none", "rle", "zips", "zip", "piz", "pxr24", "b44", "b44a",
                                                  "dwaa", "dwab")),
        "pixel_type": Param(str, "half", choices=("half", "float")),
        "bits": Param(str, "uint8", choices=("uint8", "uint16", "half", "float"), doc="non-EXR bit depth"),
        "metadata": Param(dict, {}, doc="extra header attributes"),
    }

    def check_params(self):
        if not self.p.path:
            raise RecipeError("a path is required (e.g. --set write.path=renders/sh010.####.exr)", key="params.path")
        self.pattern = SequencePattern.parse(self.p.path)

    def output_paths(self, t):
        return [self.pattern.path(t)]

    def existing_fingerprint(self, t):
        return images.read_fingerprint(self.pattern.path(t))

    def prepare(self, image: Image) -> Image:
        exr = images.is_exr(self.p.path)
        cs = self.p.colorspace or (image.colorspace if exr else images.DISPLAY_FILE_SPACE)
        alpha = self.p.alpha if self.p.alpha != "auto" else ("premultiplied" if exr else "straight")
        return images.from_working(image, cs, alpha=alpha, display=self.p.display or None, view=self.p.view)

    def write(self, t, *, fingerprint, image):
        path = self.pattern.path(t)
        out = self.prepare(image)
        meta = {k: v for k, v in self.p.metadata.items()}
        images.write_image(path, out, fingerprint=fingerprint, metadata=meta, compression=self.p.compression,
                           pixel_type=self.p.pixel_type, bits=self.p.bits)
        return [path]
