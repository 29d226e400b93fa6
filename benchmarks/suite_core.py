"""Core benchmarks: merges, premultiplication, reformat, transform, a small pipeline, the graph's own
overhead, and EXR read/merge/write and resize side by side with oiiotool.

Graph overhead is measured on tiny (16x16) images so that pixel work is negligible:

* ``graph.noop_chain.N64`` vs ``graph.noop_chain.N0``: a source followed by 64 ``NoOp`` stages evaluated
  with ``Pipeline.evaluate`` at a new frame each time (so no cache hits); ``graph.direct_call.*`` calls
  the same stages' ``process`` directly. The derived figure is the difference per stage per frame.
* ``graph.cheap_chain.*``: 64 alternating ``Unpremultiply``/``Premultiply`` stages through ``Pipeline``,
  through their ``process`` methods, and as the pure array functions ``unpremultiply``/``premultiply``.
* ``graph.fingerprint.*`` and ``graph.render_frames.*``: fingerprinting a chain, and the executor's
  per-frame path (fingerprints, skip check, evaluation) into a null output stage.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from benchmarks.harness import Case, Config, tool_path

OPS = ("over", "under", "plus", "multiply", "screen", "max", "min", "in", "out", "mask")
TINY = (16, 16)
CHAIN = 64


def _rgba(width: int, height: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    px = rng.random((height, width, 4), dtype=np.float32)
    px[..., :3] *= np.float32(1.5)  # some HDR values
    px[..., :3] *= px[..., 3:4]
    return px


def _image(width: int, height: int, seed: int):
    from composite.core import RGBA, Image

    return Image(_rgba(width, height, seed), RGBA)


# -- pixel operations ----------------------------------------------------------------------------

def setup_merge(width: int, height: int, op: str):
    from composite.core.merge import OPERATIONS

    fn = OPERATIONS[op]
    a, b = _rgba(width, height, 1), _rgba(width, height, 2)
    return lambda i: fn(a, b)


def setup_premultiply(width: int, height: int, inverse: bool):
    from composite.core.merge import premultiply, unpremultiply

    px = _rgba(width, height, 3)
    fn = unpremultiply if inverse else premultiply
    return lambda i: fn(px)


def setup_merge_images(width: int, height: int):
    """Image-level over with A's data window a smaller, offset box inside B (window alignment included)."""
    from composite.core import RGBA, Image, Window
    from composite.core.merge import merge_images

    aw, ah = width // 2, height // 2
    a = Image(_rgba(aw, ah, 4), RGBA, data_window=Window.from_size(aw, ah, width // 5, height // 7),
              display_window=Window.from_size(width, height))
    b = _image(width, height, 5)
    return lambda i: merge_images("over", a, b)


def setup_reformat(width: int, height: int, to_width: int, to_height: int, filter: str):
    from composite.core.geometry import reformat_image

    img = _image(width, height, 6)
    return lambda i: reformat_image(img, to_width, to_height, mode="fit", filter=filter)


def setup_transform(width: int, height: int, filter: str):
    from composite.core.geometry import affine_matrix, transform_image

    img = _image(width, height, 7)
    m = affine_matrix(rotate=5.0, scale=(1.1, 1.1), translate=(12.5, -7.25), center=(width / 2, height / 2))
    return lambda i: transform_image(img, m, filter=filter)


# -- pipelines and the graph ---------------------------------------------------------------------

def _hold_classes():
    from composite.graph import Input, OutputStage, Stage

    class Hold(Stage):
        """Returns the same image at every frame (no file reading, no finite check)."""

        image = None

        def process(self, t):
            return type(self).image

    class HoldSource(Hold):
        """As Hold, but a source: the pipeline checks its output for NaN/Inf as it does for readers."""

        is_source = True

    class NullOutput(OutputStage):
        """An output stage that writes nothing (measures the executor's own per-frame path)."""

        inputs = {"image": Input("image", alpha=None)}

        def output_paths(self, t):
            return []

        def existing_fingerprint(self, t):
            return None

        def write(self, t, *, fingerprint, **inputs):
            return []

    return Hold, HoldSource, NullOutput


def _noop_chain(n: int, width: int, height: int, output: bool = False):
    from composite.graph import Pipeline
    from composite.graph.builtin import NoOp

    Hold, _, NullOutput = _hold_classes()
    Hold.image = _image(width, height, 8)
    p = Pipeline("bench")
    ref = p.add("src", Hold())
    for k in range(n):
        ref = p.add(f"n{k}", NoOp(), image=ref)
    last = ref.node
    if output:
        p.add("out", NullOutput(), image=ref)
    return p, last


def setup_noop_pipeline(n: int, width: int, height: int):
    p, last = _noop_chain(n, width, height)
    return lambda i: p.evaluate(last, 1001 + i)


def setup_noop_direct(n: int, width: int, height: int):
    from composite.graph.builtin import NoOp

    img = _image(width, height, 8)
    stages = [NoOp() for _ in range(n)]

    def step(i):
        x = img
        for s in stages:
            x = s.process(1001 + i, image=x)
        return x

    return step


def setup_fingerprint(n: int, width: int, height: int):
    p, last = _noop_chain(n, width, height)
    return lambda i: p.fingerprint(last, 1001 + i)


def setup_render_frames(n: int, width: int, height: int):
    from composite.graph.executor import render_frames

    p, _ = _noop_chain(n, width, height, output=True)
    return lambda i: render_frames(p, [1001 + i], force=True)


def setup_graph_chain(n: int, width: int, height: int):
    """Variants (timed interleaved): a NoOp chain of n and of 0 stages through Pipeline.evaluate, called
    directly, fingerprinted, and rendered by the executor into a null output stage."""
    steps = {}
    for k in (n, 0):
        steps[f"pipeline_N{k}"] = setup_noop_pipeline(k, width, height)
        steps[f"direct_N{k}"] = setup_noop_direct(k, width, height)
        steps[f"fingerprint_N{k}"] = setup_fingerprint(k, width, height)
        steps[f"render_frames_N{k}"] = setup_render_frames(k, width, height)
    return steps


def setup_cheap_chain(n: int, width: int, height: int):
    """Variants: n alternating Unpremultiply/Premultiply stages through Pipeline, through stage.process,
    and as the pure array functions."""
    return {"pipeline": setup_cheap_pipeline(n, width, height), "process": setup_cheap_process(n, width, height),
            "direct": setup_cheap_direct(n, width, height)}


def setup_comp(width: int, height: int):
    """Variants: the small comp through Pipeline and through the functions directly."""
    return {"pipeline": setup_comp_pipeline(width, height), "direct": setup_comp_direct(width, height)}


def _cheap_stages(n: int):
    from composite.graph.builtin import Premultiply, Unpremultiply

    return [Unpremultiply() if k % 2 == 0 else Premultiply() for k in range(n)]


def setup_cheap_pipeline(n: int, width: int, height: int):
    from composite.graph import Pipeline

    Hold, _, _ = _hold_classes()
    Hold.image = _image(width, height, 9)
    p = Pipeline("bench")
    ref = p.add("src", Hold())
    for k, st in enumerate(_cheap_stages(n)):
        ref = p.add(f"s{k}", st, image=ref)
    last = ref.node
    return lambda i: p.evaluate(last, 1001 + i)


def setup_cheap_process(n: int, width: int, height: int):
    img = _image(width, height, 9)
    stages = _cheap_stages(n)

    def step(i):
        x = img
        for s in stages:
            x = s.process(1001 + i, image=x)
        return x

    return step


def setup_cheap_direct(n: int, width: int, height: int):
    from composite.core.merge import premultiply, unpremultiply

    px = _rgba(width, height, 9)
    fns = [unpremultiply if k % 2 == 0 else premultiply for k in range(n)]

    def step(i):
        x = px
        for f in fns:
            x = f(x)
        return x

    return step


def setup_comp_pipeline(width: int, height: int):
    """fg → Transform → Merge over bg → Reformat to half size, through Pipeline (sources checked for NaN)."""
    from composite.graph import Pipeline
    from composite.graph.builtin import Merge, Reformat, Transform

    _, HoldSource, _ = _hold_classes()

    class Fg(HoldSource):
        pass

    class Bg(HoldSource):
        pass

    Fg.image, Bg.image = _image(width, height, 10), _image(width, height, 11)
    p = Pipeline("bench")
    fg = p.add("fg", Fg())
    bg = p.add("bg", Bg())
    moved = p.add("move", Transform(rotate=3.0, translate=[10.0, 4.0]), image=fg)
    comp = p.add("comp", Merge(operation="over"), a=moved, b=bg)
    p.add("proxy", Reformat(width=width // 2, height=height // 2, filter="cubic"), image=comp)
    return lambda i: p.evaluate("proxy", 1001 + i)


def setup_comp_direct(width: int, height: int):
    """The same work as ``setup_comp_pipeline`` through the Image-level functions directly."""
    from composite.core.geometry import affine_matrix, reformat_image, transform_image
    from composite.core.merge import merge_images

    fg, bg = _image(width, height, 10), _image(width, height, 11)
    m = affine_matrix(rotate=3.0, translate=(10.0, 4.0), center=((width - 1) / 2, (height - 1) / 2))

    def step(i):
        for img in (fg, bg):  # the pipeline checks sources for NaN/Inf; do the same work here
            np.count_nonzero(np.isfinite(img.pixels))
        moved = transform_image(fg, m, filter="bilinear")
        comp = merge_images("over", moved, bg)
        return reformat_image(comp, width // 2, height // 2, mode="fit", filter="cubic")

    return step


# -- file I/O side by side with oiiotool ---------------------------------------------------------

def _exr_inputs(width: int, height: int, frames: int) -> Path:
    """Write ``frames`` copies of a synthetic foreground (RGBA) and background (RGBA, opaque) as half ZIP EXR."""
    from composite.core import RGBA, Image
    from composite.io.exr import write_exr
    from composite.synth import generated_background_sequence, greenscreen_sequence

    d = Path(tempfile.mkdtemp(prefix="composite-bench-"))
    g = greenscreen_sequence(width, height, 1, seed=1, grain=0.5).frame(1001)
    b = generated_background_sequence(width, height, 1, seed=1).frame(1001)
    fg = Image(g.fg_rgba(), RGBA)
    bg = Image(np.concatenate([b.image, np.ones_like(b.image[..., :1])], 2), RGBA)
    write_exr(d / "fg.0001.exr", fg, compression="zip")
    write_exr(d / "bg.0001.exr", bg, compression="zip")
    for k in range(2, frames + 1):
        shutil.copyfile(d / "fg.0001.exr", d / f"fg.{k:04d}.exr")
        shutil.copyfile(d / "bg.0001.exr", d / f"bg.{k:04d}.exr")
    return d


def setup_exr_over(width: int, height: int, frames: int):
    from composite.core.merge import merge_images
    from composite.io.exr import read_exr, write_exr

    d = _exr_inputs(width, height, frames)

    def step(i):
        k = i % frames + 1
        a = read_exr(d / f"fg.{k:04d}.exr")
        b = read_exr(d / f"bg.{k:04d}.exr")
        write_exr(d / f"out.{k:04d}.exr", merge_images("over", a, b), compression="zip", pixel_type="half")

    return step


def _oiiotool(args: list[str], threads: int | None) -> None:
    cmd = [tool_path("oiiotool")] + (["--threads", str(threads)] if threads else []) + args
    subprocess.run(cmd, check=True, capture_output=True)


def setup_oiiotool_over(width: int, height: int, frames: int, threads: int | None = None):
    d = _exr_inputs(width, height, frames)

    def step(i):  # the whole sequence in one process: per-frame time = step / frames
        _oiiotool(["--frames", f"1-{frames}", str(d / "fg.#.exr"), str(d / "bg.#.exr"), "--over",
                   "-d", "half", "--compression", "zip", "-o", str(d / "out.#.exr")], threads)

    return step


def setup_exr_resize(width: int, height: int, frames: int):
    from composite.core.geometry import reformat_image
    from composite.io.exr import read_exr, write_exr

    d = _exr_inputs(width, height, frames)

    def step(i):
        k = i % frames + 1
        img = read_exr(d / f"bg.{k:04d}.exr")
        out = reformat_image(img, width // 2, height // 2, mode="distort", filter="lanczos")
        write_exr(d / f"small.{k:04d}.exr", out, compression="zip", pixel_type="half")

    return step


def setup_oiiotool_resize(width: int, height: int, frames: int, threads: int | None = None):
    d = _exr_inputs(width, height, frames)

    def step(i):
        _oiiotool(["--frames", f"1-{frames}", str(d / "bg.#.exr"), "--resize:filter=lanczos3",
                   f"{width // 2}x{height // 2}", "-d", "half", "--compression", "zip",
                   "-o", str(d / "small.#.exr")], threads)

    return step


# -- the suite -----------------------------------------------------------------------------------

def cases(config: Config) -> list[Case]:
    out: list[Case] = []
    sizes = list(config.sizes)
    largest = max(sizes, key=lambda s: s[0] * s[1])
    for (w, h) in sizes:
        tag = f"@{w}x{h}"
        for op in OPS:
            out.append(Case(f"merge.{op}{tag}", setup_merge, dict(width=w, height=h, op=op), group="merge"))
        out.append(Case(f"premultiply{tag}", setup_premultiply, dict(width=w, height=h, inverse=False), group="merge"))
        out.append(Case(f"unpremultiply{tag}", setup_premultiply, dict(width=w, height=h, inverse=True),
                        group="merge"))
        out.append(Case(f"merge_images.over.windows{tag}", setup_merge_images, dict(width=w, height=h),
                        group="merge", note="A is a half-size offset box: window alignment included"))
        for flt in ("cubic", "lanczos"):
            out.append(Case(f"reformat.half.{flt}{tag}", setup_reformat,
                            dict(width=w, height=h, to_width=w // 2, to_height=h // 2, filter=flt),
                            group="geometry", note=f"to {w // 2}x{h // 2}"))
            if (w, h) != largest:
                out.append(Case(f"reformat.double.{flt}{tag}", setup_reformat,
                                dict(width=w, height=h, to_width=2 * w, to_height=2 * h, filter=flt),
                                group="geometry", note=f"to {2 * w}x{2 * h}"))
        for flt in ("bilinear", "cubic", "lanczos"):
            out.append(Case(f"transform.rotate_scale.{flt}{tag}", setup_transform, dict(width=w, height=h, filter=flt),
                            group="geometry", note="rotate 5 deg, scale 1.1, translate"))
        out.append(Case(f"pipeline.comp{tag}", setup_comp, dict(width=w, height=h), group="pipeline",
                        kind="pipeline", note="Transform -> Merge over -> Reformat half; [direct]: the same "
                                              "calls without the graph (differences here are allocator noise)"))
        seq = config.frames
        out.append(Case(f"io.exr_over{tag}", setup_exr_over, dict(width=w, height=h, frames=seq), group="io",
                        note="read 2 half ZIP EXRs, over, write half ZIP"))
        out.append(Case(f"io.exr_over.oiiotool{tag}", setup_oiiotool_over,
                        dict(width=w, height=h, frames=seq, threads=config.threads), group="io", kind="peer",
                        tool="oiiotool", frames=2, batch=seq,
                        compare=f"io.exr_over{tag}", requires=("oiiotool",),
                        note=f"one process for {seq} frames"))
        out.append(Case(f"io.exr_resize_half{tag}", setup_exr_resize, dict(width=w, height=h, frames=seq),
                        group="io", note="read, Lanczos-4 to half size after a Gaussian anti-alias "
                                     "prefilter, write"))
        out.append(Case(f"io.exr_resize_half.oiiotool{tag}", setup_oiiotool_resize,
                        dict(width=w, height=h, frames=seq, threads=config.threads), group="io", kind="peer",
                        tool="oiiotool", frames=2, batch=seq,
                        compare=f"io.exr_resize_half{tag}", requires=("oiiotool",),
                        note=f"lanczos3 widened to the downscale (more taps, no aliasing); one process "
                             f"for {seq} frames"))
    tw, th = TINY
    many = 100 if config.quick else 500
    out.append(Case(f"graph.noop_chain.N{CHAIN}", setup_graph_chain, dict(n=CHAIN, width=tw, height=th),
                    group="graph", kind="overhead", frames=many, units=CHAIN,
                    note=f"{tw}x{th} images; variants interleaved"))
    out.append(Case(f"graph.cheap_chain.N{CHAIN}", setup_cheap_chain, dict(n=CHAIN, width=tw, height=th),
                    group="graph", kind="overhead", frames=many, units=CHAIN,
                    note=f"{tw}x{th} images; variants interleaved"))
    return out


def derive(results: list[dict], config: Config) -> list[dict]:
    """Per-stage-per-frame overheads (microseconds) from the graph cases.

    Differences of microsecond-scale times use each case's fastest frame (``ms_min``, as ``timeit`` does),
    which machine load disturbs far less than the median.
    """
    ms = {r["case"]: r["ms_min"] for r in results if "ms_min" in r}
    rows: list[dict] = []

    def per_stage(a: str, b: str, n: int) -> float | None:
        if a in ms and b in ms:
            return (ms[a] - ms[b]) * 1e3 / n
        return None

    n = CHAIN
    c = f"graph.noop_chain.N{n}"
    pipe = per_stage(f"{c}[pipeline_N{n}]", f"{c}[pipeline_N0]", n)
    direct = per_stage(f"{c}[direct_N{n}]", f"{c}[direct_N0]", n)
    src = f"{c}[...N{n}] - [...N0], / {n}, fastest frames"
    if pipe is not None:
        rows.append({"name": "NoOp stage through Pipeline.evaluate, per stage per frame", "value": pipe, "unit": "us",
                     "from": src})
    if direct is not None:
        rows.append({"name": "NoOp stage.process called directly, per stage per frame", "value": direct, "unit": "us",
                     "from": src})
    if pipe is not None and direct is not None:
        rows.append({"name": "graph overhead per stage per frame (NoOp: Pipeline - direct call)",
                     "value": pipe - direct, "unit": "us", "from": "the two rows above"})
    fp = per_stage(f"{c}[fingerprint_N{n}]", f"{c}[fingerprint_N0]", n)
    if fp is not None:
        rows.append({"name": "fingerprint per stage per frame", "value": fp, "unit": "us", "from": src})
    rf = per_stage(f"{c}[render_frames_N{n}]", f"{c}[render_frames_N0]", n)
    if rf is not None:
        rows.append({"name": "executor render_frames per stage per frame (fingerprint + evaluate + skip check)",
                     "value": rf, "unit": "us", "from": src})
    c = f"graph.cheap_chain.N{n}"
    for other, label in (("process", "stage.process"), ("direct", "pure array functions")):
        v = per_stage(f"{c}[pipeline]", f"{c}[{other}]", n)
        if v is not None:
            rows.append({"name": f"cheap-stage overhead per stage per frame, {TINY[0]}x{TINY[1]} (Pipeline - {label})",
                         "value": v, "unit": "us", "from": f"({c}[pipeline] - [{other}]) / {n}, fastest frames"})
    # At frame sizes the graph's cost (microseconds per stage) is far below the run-to-run and allocator
    # variation of the pixel work (milliseconds), so the [pipeline] - [direct] difference of pipeline.comp
    # is not a measure of it; the share is estimated from the per-stage figure instead.
    per_stage_cost = per_stage(f"{c}[pipeline]", f"{c}[process]", n)
    for (w, h) in config.sizes:
        a = f"pipeline.comp@{w}x{h}[pipeline]"
        if a in ms and per_stage_cost is not None:
            rows.append({"name": f"estimated graph share of pipeline.comp at {w}x{h} (5 stages)",
                         "value": 100.0 * 5 * per_stage_cost / (ms[a] * 1e3), "unit": "%",
                         "from": f"5 x cheap-stage overhead (Pipeline - stage.process) / {a}"})
    return rows
