"""EXR throughput benchmark: composite's reader + writer against ``oiiotool`` on the same files.

For each resolution (HD 1920x1080, 4K UHD 3840x2160) and compression (ZIP, PIZ) a sequence of RGBA half
frames is written (smooth gradients, texture and film-like grain, so the codecs see plate-like data).
Both tools then read every frame and write it back as half with the same compression:

* composite: :func:`composite.io.exr.read_exr` (to float32, as a render does) then
  :func:`composite.io.exr.write_exr` (back to half), OpenEXR's own thread pool with the same number
  of threads as oiiotool;
* oiiotool: one process over the whole sequence (``--frames``), ``--threads N``, ``-d half``.

The two tools alternate ``repeats`` times and the best time of each counts (the machine may be shared).
oiiotool's frames/s is given as measured and net of its start-up (a one-frame 16x16 run), and the goal
(composite ≥ 0.9 × oiiotool) is judged against the net figure, the stricter comparison.

Run by hand (not part of the test suite)::

    .venv/bin/python benchmarks/suite_io.py [--quick] [--frames 6] [--threads N] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import OpenEXR  # noqa: E402

from composite.io import exr  # noqa: E402

GOAL = 0.9
RESOLUTIONS = {"HD": (1920, 1080), "4K": (3840, 2160)}
COMPRESSIONS = ("zip", "piz")


def oiiotool_path() -> str:
    here = Path(sys.executable).parent / "oiiotool"
    return str(here) if here.exists() else (shutil.which("oiiotool") or "oiiotool")


def plate_like(width: int, height: int, seed: int) -> np.ndarray:
    """``(H, W, 4)`` float16: gradients, a soft texture and grain, alpha with a soft edge."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    u, v = x / width, y / height
    base = np.stack([0.18 + 0.5 * u, 0.12 + 0.4 * v, 0.08 + 0.3 * (1 - u) * v], axis=-1)
    texture = 0.05 * np.sin(u * 40 + seed)[..., None] * np.cos(v * 27)[..., None]
    grain = rng.normal(0.0, 0.01, (height, width, 3)).astype(np.float32)
    rgb = np.clip(base + texture + grain, 0, None) * (1.0 + 3.0 * (u > 0.8)[..., None])
    alpha = np.clip((0.9 - np.hypot(u - 0.5, v - 0.5)) * 4, 0, 1)[..., None]
    return np.concatenate([rgb * alpha, alpha], axis=-1).astype(np.float16)


def make_sequence(folder: Path, width: int, height: int, compression: str, frames: int) -> list[Path]:
    paths = []
    header = {"compression": exr.COMPRESSIONS[compression], "type": OpenEXR.scanlineimage}
    for i in range(1, frames + 1):
        px = plate_like(width, height, i)
        path = folder / f"in.{i:04d}.exr"
        OpenEXR.File(header, {c: np.ascontiguousarray(px[..., k]) for k, c in enumerate("RGBA")}).write(str(path))
        paths.append(path)
    return paths


def time_composite(paths: list[Path], out: Path, compression: str, threads: int) -> float:
    t0 = time.perf_counter()
    for i, p in enumerate(paths, 1):
        img = exr.read_exr(p, threads=threads)
        exr.write_exr(out / f"c.{i:04d}.exr", img, compression=compression, pixel_type="half", threads=threads)
    return time.perf_counter() - t0


def time_oiiotool(folder: Path, out: Path, frames: int, compression: str, threads: int) -> float:
    cmd = [oiiotool_path(), "--threads", str(threads), "--frames", f"1-{frames}", str(folder / "in.#.exr"),
           "-d", "half", "--compression", compression, "-o", str(out / "o.#.exr")]
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True)
    return time.perf_counter() - t0


def oiiotool_startup(folder: Path, threads: int, repeats: int = 5) -> float:
    tiny = folder / "tiny.exr"
    OpenEXR.File({"compression": OpenEXR.ZIP_COMPRESSION, "type": OpenEXR.scanlineimage},
                 {"R": np.zeros((16, 16), np.float16)}).write(str(tiny))
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        subprocess.run([oiiotool_path(), "--threads", str(threads), str(tiny), "-o", str(folder / "tiny_o.exr")],
                       check=True, capture_output=True)
        best = min(best, time.perf_counter() - t0)
    return best


def run(quick: bool = False, *, frames: int | None = None, threads: int | None = None,
        repeats: int | None = None) -> dict:
    """Run the suite; returns ``{"cases": [...], "goal": 0.9, ...}`` (see the module doc)."""
    frames = frames or (3 if quick else 8)
    repeats = repeats or (2 if quick else 3)
    threads = threads or exr.default_threads()
    resolutions = {"HD": RESOLUTIONS["HD"]} if quick else RESOLUTIONS
    results = []
    with tempfile.TemporaryDirectory(prefix="composite-bench-io-") as tmp:
        root = Path(tmp)
        startup = oiiotool_startup(root, threads)
        for res_name, (w, h) in resolutions.items():
            for comp in COMPRESSIONS:
                folder = root / f"{res_name}_{comp}"
                out_c, out_o = folder / "c", folder / "o"
                for d in (folder, out_c, out_o):
                    d.mkdir(parents=True, exist_ok=True)
                paths = make_sequence(folder, w, h, comp, frames)
                tc, to = [], []
                for _ in range(repeats):
                    tc.append(time_composite(paths, out_c, comp, threads))
                    to.append(time_oiiotool(folder, out_o, frames, comp, threads))
                best_c, best_o = min(tc), min(to)
                net_o = max(best_o - startup, 1e-6)
                # same output pixels from both tools (lossless compressions)
                a = exr.read_exr(out_c / "c.0001.exr").pixels
                b = exr.read_exr(out_o / "o.0001.exr").pixels
                same = bool(np.array_equal(a, b, equal_nan=True))
                case = {
                    "resolution": res_name, "size": f"{w}x{h}", "compression": comp, "frames": frames,
                    "threads": threads, "composite_fps": frames / best_c, "oiiotool_fps": frames / best_o,
                    "oiiotool_net_fps": frames / net_o, "ratio": (frames / best_c) / (frames / best_o),
                    "ratio_net": (frames / best_c) / (frames / net_o), "outputs_identical": same,
                    "input_mb_per_frame": sum(p.stat().st_size for p in paths) / len(paths) / 1e6,
                }
                case["meets_goal"] = case["ratio_net"] >= GOAL
                results.append(case)
    return {"suite": "io", "goal": GOAL, "oiiotool_startup_s": startup, "threads": threads,
            "cpu_count": os.cpu_count(), "cases": results}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="HD only, 3 frames, 2 repeats")
    ap.add_argument("--frames", type=int)
    ap.add_argument("--threads", type=int)
    ap.add_argument("--repeats", type=int)
    ap.add_argument("--json", help="write the results here")
    args = ap.parse_args(argv)
    res = run(args.quick, frames=args.frames, threads=args.threads, repeats=args.repeats)
    print(f"EXR read+write, {res['threads']} thread(s), oiiotool start-up {res['oiiotool_startup_s'] * 1000:.0f} ms")
    print(f"{'case':<10} {'MB/frame':>8} {'composite':>10} {'oiiotool':>10} {'net':>8} {'ratio':>6} {'net':>6}  same")
    for c in res["cases"]:
        print(f"{c['resolution'] + ' ' + c['compression']:<10} {c['input_mb_per_frame']:8.1f} "
              f"{c['composite_fps']:8.2f}/s {c['oiiotool_fps']:8.2f}/s {c['oiiotool_net_fps']:6.2f}/s "
              f"{c['ratio']:6.2f} {c['ratio_net']:6.2f}  {'yes' if c['outputs_identical'] else 'NO'}"
              f"{'' if c['meets_goal'] else '  (below goal ' + str(GOAL) + ')'}")
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())


def report(config) -> dict:
    """The harness entry (benchmarks/README.md): EXR read+write frames/s next to oiiotool."""
    r = run(config.quick, threads=config.threads)
    lines = ["| size | compression | composite frames/s | oiiotool frames/s (net of start-up) | ratio (net) | "
             "identical output |", "|---|---|---:|---:|---:|---|"]
    for c in r["cases"]:
        lines.append(f"| {c['size']} | {c['compression']} | {c['composite_fps']:.2f} | {c['oiiotool_fps']:.2f} "
                     f"({c['oiiotool_net_fps']:.2f}) | {c['ratio']:.2f} ({c['ratio_net']:.2f}) | "
                     f"{c['outputs_identical']} |")
    lines.append(f"\ngoal: composite >= {r['goal']} x oiiotool's frames/s (net); threads {r['threads']}")
    return {"markdown": "\n".join(lines), **r}
