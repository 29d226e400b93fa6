"""A synthetic source used only by the temporal tests: every frame from (seed, frame number) alone."""

from __future__ import annotations

import numpy as np

from composite.core import Image
from composite.core.state import RAW_SPACE, AlphaState
from composite.graph import Param, Stage, register
from composite.temporal import synthetic


@register
class TemporalTestSource(Stage):
    """Frames ``first..last`` of a synthetic shot.

    kind ``matte``: a moving soft blob over texture (``image``: plate, ``matte``: keyed alpha with edge
    noise, ``truth``: true alpha). kind ``camera``: a shaking, panning textured plate. kind ``flicker``:
    a static texture with per-frame global flicker. ``cut_at``: from this frame on the texture changes
    (a scene cut). ``size_change_at``: from this frame on the frame is 8 pixels narrower.
    """

    type_name = "TestTemporalSource"
    is_source = True
    outputs = ("image", "matte", "truth")
    params = {
        "first": Param(int, 1001), "last": Param(int, 1012),
        "kind": Param(str, "matte", choices=("matte", "camera", "flicker")),
        "width": Param(int, 96), "height": Param(int, 64), "seed": Param(int, 0),
        "cut_at": Param(int, None, optional=True), "size_change_at": Param(int, None, optional=True),
    }

    def frame_range(self):
        return (self.p.first, self.p.last)

    def source_identity(self, t):
        return f"synthetic:{self.p.kind}:{self.p.seed}:{t}"

    def process(self, t, **_):
        k = t - self.p.first
        seed = self.p.seed + (1000 if self.p.cut_at is not None and t >= self.p.cut_at else 0)
        w = self.p.width - (8 if self.p.size_change_at is not None and t >= self.p.size_change_at else 0)
        h = self.p.height
        if self.p.kind == "matte":
            plate, truth, keyed = synthetic.matte_frame(k, height=h, width=w, seed=seed, radius=min(h, w) / 4.5)
        elif self.p.kind == "camera":
            plate, _ = synthetic.camera_frame(k, height=h, width=w, seed=seed, shake=2.0, pan=(1.0, 0.3))
            truth = keyed = np.ones((h, w), np.float32)
        else:
            base = synthetic.textured_plate(h, w, seed=seed)
            plate = synthetic.apply_flicker(base, synthetic.flicker_gains(k, seed=seed, amplitude=0.2))
            truth = keyed = np.ones((h, w), np.float32)
        time = self.time(t)
        return {
            "image": Image(np.ascontiguousarray(plate, np.float32), ("R", "G", "B"), time=time),
            "matte": Image(keyed[..., None].astype(np.float32), ("A",), colorspace=RAW_SPACE,
                           alpha=AlphaState.OPAQUE, time=time),
            "truth": Image(truth[..., None].astype(np.float32), ("A",), colorspace=RAW_SPACE,
                           alpha=AlphaState.OPAQUE, time=time),
        }
