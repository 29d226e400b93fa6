"""Contact sheets: one PNG with a thumbnail of every rendered frame, through an OCIO display view.

Each frame's thumbnail is written (atomically, with the frame's fingerprint) into a hidden folder beside
the sheet, ``.<sheet name>.frames/``; the sheet is assembled from every thumbnail present when a render
or chunk finishes. Chunked or repeated renders therefore give the same sheet once all frames exist.
"""

from __future__ import annotations

import math
import os
import re
from pathlib import Path

import cv2
import numpy as np

from ..color import ocio
from ..core.errors import RecipeError
from ..core.image import Image
from ..core.merge import unpremultiply
from ..graph.params import Param
from ..graph.registry import register
from ..graph.stage import ANY_ALPHA, Input, OutputStage
from . import formats


def contact_sheet(thumbnails: list[np.ndarray], *, columns: int = 6, gap: int = 4,
                  labels: list[str] | None = None, background: float = 0.1) -> np.ndarray:
    """Lay out display-referred ``(h, w, 3)`` thumbnails (same size) in a grid; returns ``(H, W, 3)`` float32."""
    if not thumbnails:
        raise ValueError("no thumbnails")
    h, w = thumbnails[0].shape[:2]
    cols = max(1, min(columns, len(thumbnails)))
    rows = math.ceil(len(thumbnails) / cols)
    label_h = 14 if labels else 0
    sheet = np.full((rows * (h + gap + label_h) + gap, cols * (w + gap) + gap, 3), background, np.float32)
    for i, th in enumerate(thumbnails):
        r, c = divmod(i, cols)
        y = gap + r * (h + gap + label_h)
        x = gap + c * (w + gap)
        sheet[y + label_h:y + label_h + h, x:x + w] = th[..., :3]
    if labels:  # OpenCV draws text on 8-bit images only: draw into a mask and blend it in
        ink = np.zeros(sheet.shape[:2], np.uint8)
        for i in range(len(thumbnails)):
            r, c = divmod(i, cols)
            cv2.putText(ink, labels[i], (gap + c * (w + gap), gap + r * (h + gap + label_h) + 11),
                        cv2.FONT_HERSHEY_SIMPLEX, 0.4, 255, 1, cv2.LINE_AA)
        a = (ink.astype(np.float32) / 255)[..., None]
        sheet = sheet * (1 - a) + np.float32(0.9) * a
    return sheet.astype(np.float32)


@register
class WriteContactSheet(OutputStage):
    """A PNG contact sheet of the rendered frames (display view, thumbnails ``width`` pixels wide)."""

    inputs = {"image": Input("image", alpha=ANY_ALPHA)}
    params = {
        "path": Param(str, "", path=True, doc="contact sheet PNG"),
        "width": Param(int, 320, range=(16, 4096), doc="thumbnail width"),
        "columns": Param(int, 4, range=(1, 64)),
        "display": Param(str, ocio.DEFAULT_DISPLAY),
        "view": Param(str, ocio.DEFAULT_VIEW),
        "layer": Param(str, "", doc="show this layer (e.g. ai_coverage) instead of the colour channels"),
    }

    def check_params(self):
        if not self.p.path:
            raise RecipeError("a path is required (e.g. --set sheet.path=renders/sh010_sheet.png)", key="params.path")
        if not self.p.path.lower().endswith(".png"):
            raise RecipeError(f"{self.p.path}: contact sheets are PNG files", key="params.path")

    @property
    def _frames_dir(self) -> Path:
        p = Path(self.p.path)
        return p.with_name(f".{p.name}.frames")

    def _thumb_path(self, t: int) -> Path:
        return self._frames_dir / f"{t:06d}.png"

    def output_paths(self, t):
        return [str(self._thumb_path(t))]

    def existing_fingerprint(self, t):
        return formats.read_oiio_fingerprint(self._thumb_path(t))

    def _display(self, image: Image) -> np.ndarray:
        if self.p.layer:
            plane = image.layer(self.p.layer).pixels[..., :1]
            return np.repeat(np.clip(plane, 0, 1), 3, axis=2)
        px = image.pixels
        if image.channels[:3] != ("R", "G", "B"):
            return np.repeat(np.clip(px[..., :1], 0, 1), 3, axis=2)
        rgb = unpremultiply(px)[..., :3] if image.has_alpha else px[..., :3]
        return np.clip(ocio.to_display(np.ascontiguousarray(rgb), image.colorspace, display=self.p.display,
                                       view=self.p.view), 0, 1)

    def write(self, t, *, fingerprint, image):
        disp = self._display(image)
        h = max(1, round(disp.shape[0] * self.p.width / disp.shape[1] / image.pixel_aspect))
        thumb = cv2.resize(disp, (self.p.width, h), interpolation=cv2.INTER_AREA)
        path = self._thumb_path(t)
        formats.write_oiio(path, Image(np.ascontiguousarray(thumb, np.float32), ("R", "G", "B"),
                                       colorspace="display"), fingerprint=fingerprint)
        return [str(path)]

    def finish(self, frames):
        folder = self._frames_dir
        if not folder.is_dir():
            return []
        names = sorted(n for n in os.listdir(folder) if re.fullmatch(r"-?\d+\.png", n))
        if not names:
            return []
        thumbs = [formats.read_oiio(folder / n).pixels[..., :3] for n in names]
        size = thumbs[0].shape
        thumbs = [t if t.shape == size else cv2.resize(t, (size[1], size[0])) for t in thumbs]
        sheet = contact_sheet(thumbs, columns=self.p.columns, labels=[str(int(n[:-4])) for n in names])
        formats.write_oiio(self.p.path, Image(sheet, ("R", "G", "B"), colorspace="display"))
        return [self.p.path]
