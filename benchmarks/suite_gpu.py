"""GPU path benchmarks: per-stage and whole-pipeline ms/frame on NumPy, CPU torch and CUDA, with the
host⇄device transfer share and the file I/O share shown separately.

Run::

    python -m benchmarks --suite gpu                        # NumPy and CPU torch (+ CUDA if /dev/nvidia0)
    python -m benchmarks.suite_gpu --device cuda            # NumPy and CUDA (harness options follow)
    python -m benchmarks.suite_gpu --device cuda --sizes 1920x1080 --frames 32
    COMPOSITE_BENCH_DEVICES=numpy,cuda python -m benchmarks --suite gpu

Devices are variants of each case, timed interleaved frame by frame in one process (load affects them
alike): ``numpy`` (the NumPy/OpenCV functions), ``torch-cpu``, ``cuda``. CUDA steps end with
``torch.cuda.synchronize()`` so the GPU's work is inside the timed region.

Cases, at each size:

* ``stage.<op>``: one operation on frames already where it runs (NumPy arrays, device tensors): keyer with
  a given screen colour, keyer with estimated screen colour and ``clean_plate: auto``, despill, colour
  transfer application (a stored MKL transform, ACEScct), Grade, ASC CDL (ACEScct), over, erode 2.5 px,
  matte blur 4 px, defocus radius 8, light wrap, flow warp, regrain.
* ``transfer.h2d`` / ``transfer.d2h``: one RGB plate up (through pinned buffers), one RGBA result down.
* ``chain.key_despill_match_over``: the goal chain through ``Pipeline.evaluate`` — ColorDifferenceKey
  (screen colour estimated per frame), Despill, ColorTransfer (stored MKL transform, the per-shot match
  composite recommends), Merge over a background plate — with the plate and background coming from memory
  and the result returned as a NumPy Image (transfers included, no file I/O): ``[numpy]``, ``[torch-cpu]``,
  ``[cuda]``; ``[cuda_resident]``: frames already on the GPU and the result left there (compute only);
  ``[cuda_batch8]``: resident, 8 frames per call where stages allow (a batch is computed every eighth
  frame: its ``ms_mean``, not its median, is the cost per frame — the derived figures use it; time a
  multiple of 8 frames, e.g. ``--frames 32``).
* ``io.exr_read`` / ``io.exr_write``: reading a half-float ZIP RGB plate, writing a half ZIP RGBA result
  (OpenEXR, NumPy side) — the file I/O share.
* ``recipe.key_greenscreen``: the shipped ``key_greenscreen`` recipe's graph (ReadImage → ColorDifferenceKey
  with ``clean_plate: auto`` → Despill → GarbageMatte → WriteImage EXR) rendered frame by frame with the
  executor's ``render_frames`` (read-ahead and compute-ahead on), on each device.

Goal on an H100 (stated in the report): ``chain.key_despill_match_over`` at 1920x1080 above 200 frames/s
excluding file I/O, and ``recipe.key_greenscreen`` limited by EXR I/O rather than by compute (its ms/frame
close to ``io.exr_read`` + ``io.exr_write``).
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np

from benchmarks.harness import Case, Config

# Measuring processes import this module before torch: OpenMP threads that spin while they wait make small
# CPU-torch operations up to ~100x slower on a loaded machine (set OMP_WAIT_POLICY yourself to override).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

GOAL_FPS = 200.0
SCREEN = [0.1233827, 0.31481808, 0.06847869]
_CACHE: dict = {}


def devices() -> list[str]:
    """Devices to measure: ``$COMPOSITE_BENCH_DEVICES`` (comma-separated), else NumPy and CPU torch, plus
    CUDA where the machine shows an NVIDIA device."""
    env = os.environ.get("COMPOSITE_BENCH_DEVICES")
    if env:
        return [d.strip() for d in env.split(",") if d.strip()]
    out = ["numpy", "torch-cpu"]
    if os.path.exists("/dev/nvidia0"):
        out.append("cuda")
    return out


def _torch_devices() -> list[str]:
    return [d for d in devices() if d != "numpy"]


# -- inputs ----------------------------------------------------------------------------------------

def _plate(width: int, height: int, k: int = 0) -> np.ndarray:
    key = ("plate", width, height, k)
    if key not in _CACHE:
        from composite.synth import greenscreen_sequence

        _CACHE[key] = greenscreen_sequence(width, height, 2, seed=7).frame(1001 + k).plate
    return _CACHE[key]


def _background(width: int, height: int) -> np.ndarray:
    key = ("bg", width, height)
    if key not in _CACHE:
        import cv2

        rng = np.random.default_rng(3)
        small = rng.random((max(2, height // 16), max(2, width // 16), 3), dtype=np.float32) * np.float32(2.0)
        rgb = cv2.resize(small, (width, height), interpolation=cv2.INTER_CUBIC)
        _CACHE[key] = np.concatenate([rgb, np.ones((height, width, 1), np.float32)], axis=2)
    return _CACHE[key]


def _transform():
    from composite.color.transfer import ColorTransform

    m = np.array([[1.05, 0.02, -0.01], [0.01, 0.97, 0.02], [-0.02, 0.03, 1.08]])
    return ColorTransform("mkl", "acescct", 1.0, m, np.array([0.40, 0.38, 0.36]), np.array([0.41, 0.40, 0.35]))


def _sync(device) -> None:
    if device is not None and device.type == "cuda":
        import torch

        torch.cuda.synchronize(device)


def _resolve(name: str):
    from composite.gpu.device import resolve_device

    return resolve_device(name)


# -- per-stage cases -------------------------------------------------------------------------------

STAGES = ("key", "key_clean_plate", "despill", "transfer", "grade", "cdl", "over", "erode", "blur", "defocus",
          "lightwrap", "warp", "regrain")


def _inputs(width: int, height: int):
    import cv2

    plate = _plate(width, height)
    from composite.matte.keyers import key_color_difference

    fg = key_color_difference(plate, screen_color=SCREEN, despill=None).rgba()
    flow = cv2.resize(np.random.default_rng(1).normal(0, 4, (16, 16, 2)).astype(np.float32), (width, height))
    return plate, fg, _background(width, height), flow


def _profile():
    if "profile" not in _CACHE:
        import cv2

        from composite.color.grain import measure_grain

        rng = np.random.default_rng(4)
        flat = cv2.GaussianBlur(rng.normal(0, 0.02, (256, 256, 3)).astype(np.float32), (0, 0), 0.8) + np.float32(0.2)
        _CACHE["profile"] = measure_grain(flat, bands=2)
    return _CACHE["profile"]


def _stage_fn(stage: str, mod: str):
    """The operation as a function of (plate, fg, bg, flow) for the NumPy (``mod="numpy"``) or torch ops."""
    from composite.color.cdl import CDL

    cdl = CDL(slope=(1.1, 1.0, 0.9), offset=(0.01, 0.0, -0.01), power=(1.0, 1.1, 1.2), saturation=0.9)
    tr = _transform()
    if mod == "numpy":
        from composite.color.cdl import apply_cdl
        from composite.color.grade import grade
        from composite.color.grain import regrain
        from composite.core.merge import over
        from composite.integrate.defocus import defocus
        from composite.integrate.lightwrap import light_wrap
        from composite.matte.despill import despill
        from composite.matte.keyers import key_color_difference
        from composite.matte.ops import blur, erode
        from composite.temporal.warp import warp

        apply_tr = tr.apply
        alpha = lambda fg: np.ascontiguousarray(fg[..., 3])  # noqa: E731
    else:
        from composite.gpu.ops.color import apply_cdl, grade
        from composite.gpu.ops.color import apply_transfer as _apply
        from composite.gpu.ops.defocus import defocus
        from composite.gpu.ops.despill import despill
        from composite.gpu.ops.grain import regrain
        from composite.gpu.ops.keying import key_color_difference
        from composite.gpu.ops.lightwrap import light_wrap
        from composite.gpu.ops.matte import blur, erode
        from composite.gpu.ops.merge import over
        from composite.gpu.ops.warp import warp

        def apply_tr(px):
            return _apply(px, tr)
        alpha = lambda fg: fg[..., 3].contiguous()  # noqa: E731
    profile = _profile()
    return {
        "key": lambda p, fg, bg, fl: key_color_difference(p, screen_color=SCREEN, despill="average"),
        "key_clean_plate": lambda p, fg, bg, fl: key_color_difference(p, clean_plate="auto", despill="average"),
        "despill": lambda p, fg, bg, fl: despill(fg, method="average"),
        "transfer": lambda p, fg, bg, fl: apply_tr(fg),
        "grade": lambda p, fg, bg, fl: grade(fg, gain=[1.1, 1.0, 0.9], gamma=[1.1, 1.0, 1.0], saturation=0.9),
        "cdl": lambda p, fg, bg, fl: apply_cdl(fg, cdl, encoding="acescct"),
        "over": lambda p, fg, bg, fl: over(fg, bg),
        "erode": lambda p, fg, bg, fl: erode(alpha(fg), amount=2.5),
        "blur": lambda p, fg, bg, fl: blur(alpha(fg), size=4.0),
        "defocus": lambda p, fg, bg, fl: defocus(fg, radius=8.0),
        "lightwrap": lambda p, fg, bg, fl: light_wrap(fg, bg, size=12.0, intensity=0.5),
        "warp": lambda p, fg, bg, fl: warp(fg, fl),
        "regrain": lambda p, fg, bg, fl: regrain(fg, profile, seed=1),
    }[stage]


def setup_stage(width: int, height: int, stage: str, devices: list[str]):
    """Variants per device: the operation on inputs already on that device."""
    args = _inputs(width, height)
    steps = {}
    for name in devices:
        if name == "numpy":
            fn = _stage_fn(stage, "numpy")
            steps[name] = lambda i, fn=fn: fn(*args)
            continue
        from composite.gpu.tensor import to_device

        dev = _resolve(name)
        targs = [to_device(a, dev) for a in args]
        fn = _stage_fn(stage, "torch")

        def step(i, fn=fn, targs=targs, dev=dev):
            fn(*targs)
            _sync(dev)
        steps[name] = step
    return steps


def setup_transfer(width: int, height: int, direction: str, devices: list[str]):
    """One RGB plate up (pinned staging on CUDA) or one RGBA frame down."""
    from composite.gpu.tensor import to_device, to_host

    steps = {}
    for name in devices:
        dev = _resolve(name)
        if direction == "h2d":
            plate = _plate(width, height)

            def step(i, dev=dev, plate=plate):
                to_device(plate, dev)
                _sync(dev)
        else:
            frame = to_device(_background(width, height), dev)

            def step(i, frame=frame):
                to_host(frame)
        steps[name] = step
    return steps


# -- the goal chain --------------------------------------------------------------------------------

def _chain(width: int, height: int, device: str | None, resident: bool = False):
    from composite.color.match_stages import ColorTransfer
    from composite.core import RGBA, Image
    from composite.graph import Pipeline, Stage
    from composite.graph.builtin import Merge
    from composite.matte.stages import ColorDifferenceKey, Despill

    plates = [_plate(width, height, k) for k in (0, 1)]
    bg = _background(width, height)

    class MemoryPlate(Stage):
        is_source = True

        def process(self, t, **_):
            return Image(plates[t % 2], ("R", "G", "B"), time=self.time(t))

    class MemoryBackground(Stage):
        is_source = True

        def process(self, t, **_):
            return Image(bg, RGBA, time=self.time(t))

    if resident:
        from composite.gpu.image import DeviceImage
        from composite.gpu.stages import torch_stage

        dev = _resolve(device)
        on_dev = [DeviceImage.from_image(Image(p, ("R", "G", "B")), dev) for p in plates]
        bg_dev = DeviceImage.from_image(Image(bg, RGBA), dev)
        torch_stage(MemoryPlate)(lambda stage, t, **_: on_dev[t % 2].replace(time=stage.time(t)))
        torch_stage(MemoryBackground)(lambda stage, t, **_: bg_dev.replace(time=stage.time(t)))
    p = Pipeline("bench", device=device)
    plate = p.add("plate", MemoryPlate())
    key = p.add("key", ColorDifferenceKey(despill="none"), image=plate)
    ds = p.add("despill", Despill(), image=key)
    match = p.add("match", ColorTransfer(transform=_transform().to_dict()), image=ds)
    back = p.add("bg", MemoryBackground())
    p.add("comp", Merge(), a=match, b=back)
    return p


def setup_chain(width: int, height: int, devices: list[str]):
    steps = {}
    for name in devices:
        if name == "numpy":
            p = _chain(width, height, None)
            steps[name] = lambda i, p=p: p.evaluate("comp", 1001 + i)
            continue
        from composite.gpu.graph import configure

        p = _chain(width, height, name)
        configure(p, prefetch=0)
        steps[name] = lambda i, p=p: p.evaluate("comp", 1001 + i)
        if name.startswith("cuda"):
            dev = _resolve(name)
            for label, batch in (("resident", 1), ("batch8", 8)):
                q = _chain(width, height, name, resident=True)
                configure(q, prefetch=0, batch=batch)

                def step(i, q=q, dev=dev):
                    q.evaluate_outputs("comp", 1001 + i)
                    _sync(dev)
                steps[f"{name}_{label}"] = step
    return steps


# -- files -----------------------------------------------------------------------------------------

def _temp_dir(prefix: str) -> Path:
    """A temporary folder removed when the measuring process exits."""
    import atexit

    folder = Path(tempfile.mkdtemp(prefix=prefix))
    atexit.register(shutil.rmtree, folder, True)
    return folder


def _plates_on_disk(width: int, height: int, count: int = 6) -> Path:
    key = ("disk", width, height)
    if key not in _CACHE:
        from composite.core import Image
        from composite.io.exr import write_exr

        folder = _temp_dir("composite-bench-gpu-")
        for k in range(count):
            write_exr(folder / f"plate.{1001 + k}.exr", Image(_plate(width, height, k % 2), ("R", "G", "B")),
                      pixel_type="half", compression="zip")
        _CACHE[key] = folder
    return _CACHE[key]


def setup_exr_io(width: int, height: int, op: str):
    from composite.core import RGBA, Image
    from composite.io.exr import read_exr, write_exr

    folder = _plates_on_disk(width, height)
    if op == "read":
        return lambda i: read_exr(folder / f"plate.{1001 + i % 6}.exr")
    out = _temp_dir("composite-bench-gpu-out-")
    img = Image(_background(width, height), RGBA)
    return lambda i: write_exr(out / f"o.{i}.exr", img, pixel_type="half", compression="zip")


def setup_recipe(width: int, height: int, devices: list[str]):
    """The key_greenscreen recipe's graph rendered one frame per step (read-ahead, compute-ahead on)."""
    from composite.graph import Pipeline
    from composite.graph.executor import render_frames
    from composite.io.stages import ReadImage, WriteImage
    from composite.matte.stages import ColorDifferenceKey, Despill, GarbageMatte

    folder = _plates_on_disk(width, height)
    steps = {}
    for name in devices:
        out = _temp_dir(f"composite-bench-gpu-{name}-")
        p = Pipeline("key_greenscreen", device=None if name == "numpy" else name)
        plate = p.add("plate", ReadImage(path=str(folder / "plate.####.exr"), colorspace="ACEScg", alpha="ignore"))
        key = p.add("key", ColorDifferenceKey(clean_plate="auto", despill="none"), image=plate)
        ds = p.add("despill", Despill(method="average"), image=key)
        gm = p.add("garbage", GarbageMatte(), image=ds)
        p.add("write", WriteImage(path=str(out / "key.####.exr"), alpha="premultiplied"), image=gm)
        if name != "numpy":
            from composite.gpu.graph import configure

            configure(p, prefetch=2)
        steps[name] = lambda i, p=p: render_frames(p, [1001 + i % 6], force=True)
    return steps


# -- the suite contract ------------------------------------------------------------------------------

def cases(config: Config) -> list[Case]:
    devs = devices()
    tdevs = _torch_devices()
    out: list[Case] = []
    for (w, h) in config.sizes:
        size = f"{w}x{h}"
        for stage in STAGES:
            out.append(Case(f"stage.{stage}@{size}", setup_stage, dict(width=w, height=h, stage=stage, devices=devs),
                            group="stage", note="inputs already on the device; CUDA synchronised per frame"))
        if tdevs:
            for direction in ("h2d", "d2h"):
                out.append(Case(f"transfer.{direction}@{size}", setup_transfer,
                                dict(width=w, height=h, direction=direction, devices=tdevs), group="transfer",
                                note="RGB plate up" if direction == "h2d" else "RGBA result down"))
        out.append(Case(f"chain.key_despill_match_over@{size}", setup_chain, dict(width=w, height=h, devices=devs),
                        kind="pipeline", group="chain", units=4,
                        note="frames from memory, result as a NumPy Image (transfers in, no file I/O)"))
        for op in ("read", "write"):
            out.append(Case(f"io.exr_{op}@{size}", setup_exr_io, dict(width=w, height=h, op=op), group="io",
                            note="half-float ZIP, OpenEXR"))
        out.append(Case(f"recipe.key_greenscreen@{size}", setup_recipe, dict(width=w, height=h, devices=devs),
                        kind="pipeline", group="recipe", note="EXR in and out, render_frames per frame"))
    return out


def derive(results: list[dict], config: Config) -> list[dict]:
    """Frames/s of the goal chain per device, transfer and I/O shares, and the goal checks."""
    # Batched variants compute a batch every few frames: their mean, not their median, is the cost per frame.
    ms = {r["case"]: (r["ms_mean"] if r.get("variant", "").endswith("batch8") else r["ms_per_frame"])
          for r in results if "ms_per_frame" in r}
    rows: list[dict] = []
    for (w, h) in config.sizes:
        size = f"{w}x{h}"
        chain = f"chain.key_despill_match_over@{size}"
        for dev in devices() + [f"{d}_{x}" for d in devices() if d.startswith("cuda") for x in ("resident", "batch8")]:
            v = ms.get(f"{chain}[{dev}]")
            if v:
                rows.append({"name": f"{size} key+despill+match+over on {dev}", "value": 1000.0 / v,
                             "unit": "frames/s", "from": f"{chain}[{dev}]"})
        for dev in _torch_devices():
            up, down, total = ms.get(f"transfer.h2d@{size}[{dev}]"), ms.get(f"transfer.d2h@{size}[{dev}]"), \
                ms.get(f"{chain}[{dev}]")
            if up is not None and down is not None and total:
                # the chain uploads a plate and a background and downloads one result
                rows.append({"name": f"{size} transfer share of the chain on {dev}", "value": 100.0 * (2 * up + down) / total,
                             "unit": "%", "from": "2 x transfer.h2d + transfer.d2h over chain"})
        read, write = ms.get(f"io.exr_read@{size}"), ms.get(f"io.exr_write@{size}")
        for dev in devices():
            rec = ms.get(f"recipe.key_greenscreen@{size}[{dev}]")
            if rec and read is not None and write is not None:
                rows.append({"name": f"{size} EXR I/O share of the key_greenscreen recipe on {dev}",
                             "value": 100.0 * min(1.0, (read + write) / rec), "unit": "%",
                             "from": "(io.exr_read + io.exr_write) / recipe"})
                rows.append({"name": f"{size} key_greenscreen recipe on {dev}", "value": 1000.0 / rec,
                             "unit": "frames/s", "from": f"recipe.key_greenscreen@{size}[{dev}]"})
        goal = ms.get(f"{chain}[cuda_resident]") if size == "1920x1080" else None
        if goal:
            rows.append({"name": f"goal: HD chain on CUDA above {GOAL_FPS:.0f} frames/s (1 = met)",
                         "value": float(1000.0 / goal > GOAL_FPS), "unit": "", "from": f"{chain}[cuda_resident]"})
    return rows


def report(config: Config) -> dict:
    try:
        import torch

        cuda = torch.cuda.is_available()
        name = torch.cuda.get_device_name(0) if cuda else None
        version = torch.__version__
    except Exception:  # pragma: no cover - torch missing
        cuda, name, version = False, None, None
    lines = [
        f"Devices measured: {', '.join(devices())}. torch {version}; CUDA "
        + (f"present ({name})." if cuda else "not present on this machine: CUDA rows are missing."),
        "",
        f"Goal on an NVIDIA H100: `chain.key_despill_match_over` at 1920x1080 above {GOAL_FPS:.0f} frames/s "
        "excluding file I/O (`[cuda_resident]`, and `[cuda_batch8]` with batching), and `recipe.key_greenscreen` "
        "limited by EXR I/O: its ms/frame close to `io.exr_read` + `io.exr_write` (the derived 'EXR I/O share' "
        "near 100 %).",
        "",
        "To measure on a machine with an NVIDIA GPU: `python -m benchmarks.suite_gpu --device cuda` "
        "(or `COMPOSITE_BENCH_DEVICES=numpy,cuda python -m benchmarks --suite gpu`).",
    ]
    return {"cuda": cuda, "cuda_device": name, "torch": version, "devices": devices(), "goal_fps": GOAL_FPS,
            "markdown": "\n".join(lines)}


def main(argv: list[str] | None = None) -> int:
    """``python -m benchmarks.suite_gpu [--device DEV] [harness options]``: this suite on NumPy and DEV."""
    from benchmarks.harness import main as harness_main

    args = list(sys.argv[1:] if argv is None else argv)
    if "--device" in args:
        i = args.index("--device")
        if i + 1 >= len(args):
            print("--device needs a value (cuda, cuda:N, torch-cpu)", file=sys.stderr)
            return 2
        os.environ["COMPOSITE_BENCH_DEVICES"] = f"numpy,{args[i + 1]}"
        del args[i:i + 2]
    if "--suite" not in args:
        args = ["--suite", "gpu"] + args
    return harness_main(args)


if __name__ == "__main__":
    sys.exit(main())
