"""Extension benchmark: crowds, external-clip retiming, set extension and camera-matched layers, ms/frame.

Timed cases (``cases(config)``, one process per case, on synthetic footage from :mod:`composite.synth`):

* ``crowd.N1000`` / ``crowd.N10000``: the ``Crowd`` stage through ``Pipeline.evaluate`` (a new frame each
  call; agents placed once and cached, as in a render), sprites from ``sample_footage/crowd/crowd_tile.exr``.
  ``us_per_unit`` is microseconds per agent. ``derive`` reports how time grows with the agent count.
* ``clip.retime.blend`` / ``clip.retime.flow``: making an in-between frame of an external clip at the
  size (frame blending; optical-flow interpolation, DIS ``medium``).
* ``clip.stage``: the ``ExternalClip`` stage, a 960x540 12 fps EXR clip on a 24 fps plate of the size
  (read, blend, reformat, coverage, record).
* ``set_extend.telea`` / ``set_extend.patch``: extending a plate by 10 % left and right and 5 % top and
  bottom (exemplar fill: fewer frames, it takes seconds); ``set_extend.carry``: the per-frame cost of the
  reference-frame mode (warp the extension, colour-match, blend).
* ``camera_match.plane``: moving an RGBA layer (with ``ai_coverage``) by a homography;
  ``camera_match.crowd_slices8``: moving a crowd layer (depth, id) in 8 depth slices with parallax.

The diffusion backend is not timed here: it needs a real model folder (and a GPU to be usable at 4K).

Run by hand::

    .venv/bin/python -m benchmarks --suite extend [--quick]
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.harness import Case, Config  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
CROWD_TILE = ROOT / "sample_footage" / "crowd" / "crowd_tile.exr"


def setup_crowd(width, height, count):
    from composite.extend.stages import Crowd
    from composite.graph import Pipeline
    from composite.graph.builtin import Constant

    p = Pipeline("bench")
    plate = p.add("plate", Constant(width=width, height=height))
    p.add("crowd", Crowd(library=str(CROWD_TILE), count=count, horizon_y=height * 0.37, focal_px=width * 0.78,
                         seed=1), plate=plate)

    def step(i):
        p.evaluate("crowd", 1001 + i)

    return step


def _textured(width, height, seed=0):
    import cv2
    import numpy as np

    rng = np.random.default_rng(seed)
    small = rng.random((max(8, height // 4), max(8, width // 4), 3)).astype(np.float32)
    base = cv2.resize(cv2.GaussianBlur(small, (0, 0), 1.5), (width, height), interpolation=cv2.INTER_CUBIC)
    return np.ascontiguousarray(np.abs(base) * 0.5, np.float32)


def setup_retime(width, height, method):
    import numpy as np

    from composite.extend.clips import retime

    a = _textured(width, height)
    b = np.roll(a, max(2, width // 200), axis=1)

    def step(i):
        retime(a, b, 0.5, method=method)

    return step


def setup_clip_stage(width, height):
    import tempfile

    import numpy as np

    from composite.core import Image
    from composite.extend.gen_stages import ExternalClip
    from composite.graph import Pipeline
    from composite.graph.builtin import Constant
    from composite.io.exr import write_exr

    folder = Path(tempfile.mkdtemp(prefix="bench_clip_"))
    for k in range(8):
        px = np.roll(_textured(960, 540, seed=3), 4 * k, axis=1)
        write_exr(folder / f"gen.{k + 1:04d}.exr", Image(px, ("R", "G", "B")), compression="zip")
    p = Pipeline("bench", rate=24.0)
    plate = p.add("plate", Constant(width=width, height=height))
    p.add("clip", ExternalClip(path=str(folder / "gen.####.exr"), clip_rate=12, beyond="loop", checksum=False),
          plate=plate)

    def step(i):
        p.evaluate("clip", 1001 + i)

    return step


def setup_set_extend(width, height, method):
    from composite.extend import set_extension as se
    from composite.synth import generated_background_sequence

    bg = generated_background_sequence(width, height, 1, camera_move=0.0).frame(1001).image
    mx, my = width // 10, height // 20
    plate = bg[my:height - my, mx:width - mx]
    if method == "carry":
        import numpy as np

        ext = se.extend_plate(plate, left=mx, right=mx, top=my, bottom=my,
                              filler=se.ClassicalInpaint(method="telea")).pixels
        m = np.array([[1.0, 0.0, 3.0], [0.0, 1.0, -1.0], [0.0, 0.0, 1.0]])

        def step(i):
            se.carry_extension(ext, plate, m, left=mx, right=mx, top=my, bottom=my)

        return step
    filler = se.ClassicalInpaint(method=method)

    def step(i):
        se.extend_plate(plate, left=mx, right=mx, top=my, bottom=my, filler=filler)

    return step


def setup_camera_match(width, height, layer):
    import numpy as np

    from composite.core import Image
    from composite.core.coverage import mark_generated
    from composite.core.image import RGBA
    from composite.extend.camera_match import apply_layer_motion

    m = np.array([[1.002, 0.001, 4.0], [-0.001, 1.002, -2.0], [1e-6, 0.0, 1.0]])
    if layer == "plane":
        rgb = _textured(width, height)
        img = mark_generated(Image(np.concatenate([rgb, np.ones_like(rgb[..., :1])], -1), RGBA))

        def step(i):
            apply_layer_motion(img, m, depth=None)

        return step
    from composite.extend.stages import Crowd
    from composite.graph import Pipeline
    from composite.graph.builtin import Constant

    p = Pipeline("bench")
    plate = p.add("plate", Constant(width=width, height=height))
    p.add("crowd", Crowd(library=str(CROWD_TILE), count=2000, horizon_y=height * 0.37, focal_px=width * 0.78,
                         seed=1), plate=plate)
    crowd = p.evaluate("crowd", 1001)

    def step(i):
        apply_layer_motion(crowd, m, ref_depth=20.0, slices=8)

    return step


def cases(config: Config) -> list[Case]:
    out: list[Case] = []
    patch_frames = 1 if config.quick else 2
    for (w, h) in config.sizes:
        size = f"{w}x{h}"
        for n in (1000, 10000):
            out.append(Case(f"crowd.N{n}@{size}", setup_crowd, dict(width=w, height=h, count=n), group="crowd",
                            size=(w, h), units=n, note="Crowd stage, agents cached, new frame per call"))
        for method in ("blend", "flow"):
            out.append(Case(f"clip.retime.{method}@{size}", setup_retime, dict(width=w, height=h, method=method),
                            group="clip", size=(w, h)))
        out.append(Case(f"clip.stage@{size}", setup_clip_stage, dict(width=w, height=h), group="clip", size=(w, h),
                        note="960x540 12 fps EXR clip on a 24 fps plate: read, blend, reformat"))
        for method in ("telea", "patch", "carry"):
            out.append(Case(f"set_extend.{method}@{size}", setup_set_extend, dict(width=w, height=h, method=method),
                            group="set_extend", size=(w, h), frames=patch_frames if method == "patch" else None,
                            note="10 % left/right and 5 % top/bottom of the frame filled"))
        for layer in ("plane", "crowd_slices8"):
            out.append(Case(f"camera_match.{layer}@{size}", setup_camera_match, dict(width=w, height=h, layer=layer),
                            group="camera_match", size=(w, h)))
    return out


def derive(results: list[dict], config: Config) -> list[dict]:
    """How crowd time grows with the agent count, per size (median ms of 10k agents over 1k)."""
    ms = {r["case"]: r["ms_per_frame"] for r in results if "ms_per_frame" in r}
    rows = []
    for (w, h) in config.sizes:
        a, b = ms.get(f"crowd.N1000@{w}x{h}"), ms.get(f"crowd.N10000@{w}x{h}")
        if a and b:
            rows.append({"name": f"crowd time, 10,000 / 1,000 agents, {w}x{h}", "value": b / a, "unit": "x",
                         "from": f"crowd.N10000@{w}x{h} / crowd.N1000@{w}x{h}"})
            rows.append({"name": f"crowd marginal cost per agent, {w}x{h}", "value": (b - a) * 1e3 / 9000,
                         "unit": "us", "from": "(N10000 - N1000) / 9000"})
    return rows
