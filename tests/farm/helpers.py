"""Plates, recipes and stages shared by the farm tests.

The stages here are registered when this module is imported; worker processes and Ray actors import it
through ``ChunkTask.modules`` (the executor lists the modules of non-composite stage types).
"""

from __future__ import annotations

import os
from collections import OrderedDict
from pathlib import Path

import numpy as np
import yaml

from composite.core import Image
from composite.graph import Input, Param, Stage, register
from composite.io.exr import write_exr

#: Environment variable naming a folder where TestFarmModel records each model load (one file per load).
LOADS_ENV = "COMPOSITE_TEST_MODEL_LOADS"


def make_plates(folder: Path, first: int = 1001, last: int = 1006, size=(24, 16), seed: int = 7,
                name: str = "plate") -> str:
    """Premultiplied RGBA EXR frames with random content; returns the ``####`` pattern."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for t in range(first, last + 1):
        px = rng.random((size[1], size[0], 4), dtype=np.float32)
        px[..., :3] *= px[..., 3:]
        write_exr(folder / f"{name}.{t:04d}.exr", Image(px))
    return str(folder / f"{name}.####.exr")


def comp_recipe(plate: str, out: str, *, frames: str | None = "1001-1006", size=(24, 16), name="sh010") -> dict:
    """Plate → seeded noise → transform → over a constant → EXR (builtin stages only)."""
    stages = {
        "plate": {"type": "ReadImage", "params": {"path": plate}},
        "noise": {"type": "Noise", "inputs": {"image": "plate"}, "params": {"amount": 0.05, "seed": 11}},
        "move": {"type": "Transform", "inputs": {"image": "noise"},
                 "params": {"translate": [1.5, -0.5], "rotate": 3.0, "filter": "cubic"}},
        "bg": {"type": "Constant", "params": {"color": [0.2, 0.3, 0.4, 1.0], "width": size[0], "height": size[1]}},
        "comp": {"type": "Merge", "inputs": {"a": "move", "b": "bg"}},
        "write": {"type": "WriteImage", "inputs": {"image": "comp"}, "params": {"path": out, "pixel_type": "float"}},
    }
    data = {"schema": "composite.pipeline/1", "name": name, "stages": stages}
    if frames:
        data["frames"] = frames
    return data


def prep_recipe(out: str) -> dict:
    """Plate prep: plate → seeded noise → EXR."""
    return {"schema": "composite.pipeline/1", "name": "prep", "stages": {
        "plate": {"type": "ReadImage", "params": {"path": "unset.####.exr"}},
        "clean": {"type": "Noise", "inputs": {"image": "plate"}, "params": {"amount": 0.02, "seed": 5}},
        "write": {"type": "WriteImage", "inputs": {"image": "clean"}, "params": {"path": out, "pixel_type": "float"}},
    }}


def comp_after_prep_recipe(prepped: str, out: str, size=(24, 16)) -> dict:
    """Comp reading the prep step's output."""
    return {"schema": "composite.pipeline/1", "name": "comp", "stages": {
        "prepped": {"type": "ReadImage", "params": {"path": prepped}},
        "move": {"type": "Transform", "inputs": {"image": "prepped"}, "params": {"translate": [0.5, 0.25]}},
        "bg": {"type": "Constant", "params": {"color": [0.1, 0.1, 0.1, 1.0], "width": size[0], "height": size[1]}},
        "comp": {"type": "Merge", "inputs": {"a": "move", "b": "bg"}},
        "write": {"type": "WriteImage", "inputs": {"image": "comp"}, "params": {"path": out, "pixel_type": "float"}},
    }}


def save(path: Path, data: dict) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def read_tree(folder: Path) -> dict[str, bytes]:
    """Relative path → bytes of every rendered frame under ``folder`` (provenance sidecar folders, which
    record when and where each render ran, and hidden temporary files are left out)."""
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file() and not p.name.startswith(".")
            and not any(part.endswith(".provenance") for part in p.relative_to(folder).parts)}


@register
class FarmModel(Stage):
    """Multiplies colour by a weight from a 'model' loaded lazily, once per stage instance.

    Each load leaves a file in ``$COMPOSITE_TEST_MODEL_LOADS`` named after the process, so a test can
    count loads across worker processes.
    """

    type_name = "TestFarmModel"
    inputs = {"image": Input("image")}
    params = {"weights": Param(str, "tiny", doc="model name")}

    def _model(self) -> float:
        if not hasattr(self, "_weight"):
            folder = os.environ.get(LOADS_ENV)
            if folder:
                fd, _ = __import__("tempfile").mkstemp(prefix=f"load-{os.getpid()}-", dir=folder)
                os.close(fd)
            self._weight = np.float32(0.75)
        return self._weight

    def process(self, t, image):
        px = image.pixels.copy()
        px[..., :3] *= self._model()
        return image.with_pixels(px)


@register
class Recurrent(Stage):
    """A stateful stage: output = mean of the inputs it has seen at frames t-2..t (kept between calls).

    With ``warmup_frames = 2`` a chunk that starts at frame t first shows it t-2 and t-1, so chunked
    renders equal a continuous one; without warm-up the first frames of a chunk would differ.
    """

    type_name = "TestRecurrent"
    warmup_frames = 2
    inputs = {"image": Input("image")}

    def __init__(self, **params):
        super().__init__(**params)
        self.seen: OrderedDict[int, np.ndarray] = OrderedDict()
        self.calls: list[int] = []

    def process(self, t, image):
        self.calls.append(t)
        self.seen[t] = image.pixels
        for f in [f for f in self.seen if f < t - self.warmup_frames or f > t]:
            del self.seen[f]
        mean = np.mean([self.seen[f] for f in sorted(self.seen)], axis=0).astype(np.float32)
        return image.with_pixels(mean)


def cli(argv: list[str]) -> int:
    """Run the ``composite`` command in this process; returns its exit code.

    ``composite.cli.app`` (the module) is imported only when called: importing it while tests are being
    collected would replace the ``composite.cli.main`` function other test modules import.
    """
    from composite.cli.app import run

    return run(argv)


@register
class DieOnce(Stage):
    """Passes its input through, but the first process to reach ``frame`` SIGKILLs itself there (a worker
    dying mid-frame); ``marker`` records that it happened, so the retry survives."""

    type_name = "TestDieOnce"
    inputs = {"image": Input("image")}
    params = {"frame": Param(int, 1003), "marker": Param(str, "")}

    def process(self, t, image):
        if t == self.p.frame and self.p.marker and not os.path.exists(self.p.marker):
            Path(self.p.marker).write_text(str(os.getpid()))
            os.kill(os.getpid(), __import__("signal").SIGKILL)
        return image.with_pixels(image.pixels.copy())
