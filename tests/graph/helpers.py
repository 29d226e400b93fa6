"""Stages used only by the graph tests."""

import numpy as np

from composite.core import Image
from composite.graph import Input, OutputStage, Param, Stage, register

CALLS: dict[str, list[int]] = {}


@register
class CountingSource(Stage):
    """A source that records each frame it computes; value = frame number."""

    type_name = "TestCountingSource"
    is_source = True
    params = {"first": Param(int, 1001), "last": Param(int, 1010), "value": Param(float, 0.0)}

    def frame_range(self):
        return (self.p.first, self.p.last)

    def source_identity(self, t):
        return f"counting:{t}"

    def process(self, t, **_):
        CALLS.setdefault(self.node_name, []).append(t)
        px = np.full((2, 3, 4), float(t) + self.p.value, np.float32)
        px[..., 3] = 1
        return Image(px, time=self.time(t))


@register
class TemporalMean(Stage):
    """Mean of the R channel over +-radius frames."""

    type_name = "TestTemporalMean"
    inputs = {"image": Input("image", window="radius")}
    params = {"radius": Param(int, 1, range=(0, 10))}

    def identity(self, t):
        return "image" if self.p.radius == 0 else None

    def process(self, t, image):
        frames = sorted(image)
        mean = np.mean([image[f].pixels for f in frames], axis=0).astype(np.float32)
        return image[t].with_pixels(mean)


@register
class Exploding(Stage):
    """Raises a plain exception in process (to test error wrapping); fingerprints never call it."""

    type_name = "TestExploding"
    inputs = {"image": Input("image")}

    def process(self, t, image):
        raise ZeroDivisionError("boom")


@register
class RangeFileRecorder(OutputStage):
    """A whole-range output (like a review movie): finish() records the frames written in this render."""

    type_name = "TestRangeFileRecorder"
    whole_range = True
    inputs = {"image": Input("image", alpha=None)}
    params = {"path": Param(str, "")}

    def output_paths(self, t):
        return [self.p.path]

    def existing_fingerprint(self, t):
        return None

    def begin(self, frames):
        self._frames = []

    def write(self, t, *, fingerprint, image):
        self._frames.append(t)
        return []

    def finish(self, frames):
        import json
        import os

        tmp = f"{self.p.path}.{os.getpid()}"
        with open(tmp, "w") as fh:
            json.dump(sorted(self._frames), fh)
        os.replace(tmp, self.p.path)
        return [self.p.path]
