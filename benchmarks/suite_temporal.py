"""Temporal benchmark: optical flow, matte smoothing, deflicker and stabilisation speed and quality.

Timed cases (per frame, at each configured size):

* ``flow.<preset>``: DIS flow between two consecutive frames of a generated background plate
  (``composite.synth.generated_background_sequence``), guides included; ``flow.medium.half`` estimates
  at half resolution. Caches are cleared every frame, so each frame pays the full cost.
* ``matte_smooth.r2``: :func:`~composite.temporal.matte_smooth.smooth_matte_temporal` of one frame of a
  keyed green-screen shot over ±2 frames (5 frames in the window), frames in render order so that the
  flows shared by neighbouring frames come from the cache, as in a sequential render.
* ``deflicker.r8`` (global) and ``deflicker.r8.grid4x3``: one frame over ±8 frames, in render order.
* ``stabilize.r4``: windowed stabilisation (similarity, Savitzky–Golay) of one frame over ±4 frames.

Quality (``report``), on sequences with known truth and on the real clips in ``$COMPOSITE_EVAL_DATA/video``:

* deflicker: flicker index (stops) and flow-warping error (scene-linear, squared) before and after, and of
  the clean plate, on a generated background with injected global and regional flicker and an exposure
  ramp, and on real clips as they are (which should be left alone) and with injected flicker;
* matte smoothing: dtSSD and MAD before and after on synthetic sequences with ground truth (a moving soft
  blob whose keyed edge boils, at three speeds, and the green-screen shot keyed per frame with
  :func:`composite.matte.keyers.key_color_difference` at three grain levels, 0 being a clean key that
  smoothing should leave alone), and the bound a perfect ±2-frame filter could reach on grain 1.

Run by hand (not part of the test suite)::

    .venv/bin/python -m benchmarks --suite temporal [--quick]
    .venv/bin/python benchmarks/suite_temporal.py [--quick] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.harness import Case  # noqa: E402


def _background(width, height, n, **kw):
    from composite.synth import generated_background_sequence

    return generated_background_sequence(width, height, n, seed=3, **kw)


# -- timed cases -------------------------------------------------------------------------------------

def setup_flow(width, height, preset, scale=1.0):
    from composite.temporal.flow import clear_caches, estimate_flow

    seq = _background(width, height, 2)
    a, b = seq[0].image, seq[1].image

    def step(i):
        clear_caches()
        estimate_flow(a, b, preset=preset, scale=scale)

    return step


def _keyed_shot(width, height, n, grain=1.0):
    from composite.matte.keyers import key_color_difference
    from composite.synth import greenscreen_sequence

    seq = greenscreen_sequence(width, height, n, seed=5, grain=grain)
    plates, truth, keyed = [], [], []
    for f in seq:
        plates.append(f.plate)
        truth.append(f.alpha[..., 0])
        keyed.append(key_color_difference(f.plate, screen="green", clean_plate="auto", clip_black=0.05,
                                          clip_white=0.95).alpha)
    return plates, truth, keyed


def setup_matte_smooth(width, height, radius=2, count=8):
    from composite.temporal.matte_smooth import smooth_matte_temporal

    plates, _, keyed = _keyed_shot(width, height, count + 2 * radius)

    def step(i):
        t = radius + i % count
        ks = range(t - radius, t + radius + 1)
        smooth_matte_temporal({k: keyed[k] for k in ks}, t, guides={k: plates[k] for k in ks})

    return step


def setup_deflicker(width, height, radius=8, grid=(1, 1), count=8):
    from composite.temporal.deflicker import deflicker

    seq = _background(width, height, count + 2 * radius)
    frames = [f.image for f in seq]

    def step(i):
        t = radius + i % count
        deflicker({k: frames[k] for k in range(t - radius, t + radius + 1)}, t, grid=grid)

    return step


def setup_stabilize(width, height, radius=4, count=8):
    from composite.synth import greenscreen_sequence
    from composite.temporal.track import stabilize_matrix
    from composite.temporal.warp import warp_to

    seq = greenscreen_sequence(width, height, count + 2 * radius, seed=2, camera_move=1.5)
    frames = [f.plate for f in seq]

    def step(i):
        t = radius + i % count
        m, _ = stabilize_matrix({k: frames[k] for k in range(t - radius, t + radius + 1)}, t)
        warp_to((height, width), frames[t], m)

    return step


def cases(config):
    out = []
    for w, h in config.sizes:
        size = f"{w}x{h}"
        presets = ("ultrafast", "fast", "medium") + (("fine",) if w <= 1920 else ())
        for p in presets:
            out.append(Case(f"flow.{p}@{size}", setup_flow, {"width": w, "height": h, "preset": p}, group="flow"))
        out.append(Case(f"flow.medium.half@{size}", setup_flow, {"width": w, "height": h, "preset": "medium",
                                                                  "scale": 0.5}, group="flow"))
        out.append(Case(f"matte_smooth.r2@{size}", setup_matte_smooth, {"width": w, "height": h}, group="smoothing"))
        out.append(Case(f"deflicker.r8@{size}", setup_deflicker, {"width": w, "height": h}, group="smoothing"))
        out.append(Case(f"deflicker.r8.grid4x3@{size}", setup_deflicker, {"width": w, "height": h, "grid": [4, 3]},
                        group="smoothing"))
        out.append(Case(f"stabilize.r4@{size}", setup_stabilize, {"width": w, "height": h}, group="smoothing"))
    return out


# -- quality -----------------------------------------------------------------------------------------

def _deflicker_sequence(frames, radius, **kw):
    """What the Deflicker stage does over a sequence: each frame from its window, cut at scene cuts."""
    from composite.temporal.cuts import shot_frames
    from composite.temporal.deflicker import deflicker

    n = len(frames)
    out = []
    for t in range(n):
        window = {k: frames[k] for k in range(max(0, t - radius), min(n, t + radius + 1))}
        out.append(deflicker({k: window[k] for k in shot_frames(window, t)}, t, **kw))
    return out


def _flicker_figures(before, after, clean=None, grid=(4, 3)):
    from composite.temporal.metrics import flicker_index, flow_warping_error, sequence_flows

    flows = sequence_flows(clean if clean is not None else before, preset="medium")
    row = {"flicker_index_before": flicker_index(before, flows=flows, grid=grid),
           "flicker_index_after": flicker_index(after, flows=flows, grid=grid),
           "warp_error_before": flow_warping_error(before, flows=flows),
           "warp_error_after": flow_warping_error(after, flows=flows)}
    if clean is not None:
        row["flicker_index_clean"] = flicker_index(clean, flows=flows, grid=grid)
        row["warp_error_clean"] = flow_warping_error(clean, flows=flows)
        # Accuracy against the truth: per-frame median log2(out / clean), its drift removed.
        dev = np.array([np.log2(np.median(np.maximum(a[..., 1], 1e-6) / np.maximum(c[..., 1], 1e-6)))
                        for a, c in zip(after, clean)])
        row["level_error_rms_stops"] = float(np.sqrt(np.mean((dev - np.median(dev)) ** 2)))
        row["level_jump_rms_stops"] = float(np.sqrt(np.mean(np.diff(dev) ** 2)))
    return {k: round(float(v), 5) for k, v in row.items()}


def deflicker_synthetic(width, height, n=36):
    out = {}
    for name, kw, grid in (("global 4% + regional 3%, ramp 1 stop, grid 4x3", {"exposure_ramp": 1.0}, (4, 3)),
                           ("global 8%, no regional", {"flicker": 0.08, "regional_flicker": 0.0}, (1, 1))):
        seq = _background(width, height, n, **kw)
        frames = [f.image for f in seq]
        clean = [f.clean for f in seq]
        t0 = time.perf_counter()
        after = _deflicker_sequence(frames, 8, grid=grid)
        ms = (time.perf_counter() - t0) / n * 1000
        row = _flicker_figures(frames, after, clean)
        row["grid"] = list(grid)
        row["ms_per_frame"] = round(ms, 1)
        out[name] = row
    return out


def _decode(path, limit, step=1, width=None):
    import av
    import cv2

    frames = []
    with av.open(str(path)) as container:
        for i, frame in enumerate(container.decode(video=0)):
            if i % step:
                continue
            v = frame.to_ndarray(format="rgb24").astype(np.float32) / np.float32(255.0)
            if width and v.shape[1] > width:
                v = cv2.resize(v, (width, int(round(v.shape[0] * width / v.shape[1]))), interpolation=cv2.INTER_AREA)
            frames.append(np.ascontiguousarray(v ** np.float32(2.4)))   # BT.1886 display encoding → linear
            if len(frames) >= limit:
                break
    return frames


def deflicker_real(root: Path, quick: bool):
    from composite.temporal.synthetic import apply_flicker, flicker_gains

    out = {}
    n = 24 if quick else 48
    for name in ("tears_of_steel_10s_640x360.mp4", "moviepy_chaplin.mp4", "sam2_juggle.mp4", "sam2_bedroom.mp4"):
        path = root / "video" / name
        if not path.is_file():
            continue
        frames = _decode(path, n, width=480)
        as_is = _deflicker_sequence(frames, 8, grid=(4, 3))
        injected = [apply_flicker(f, flicker_gains(k, seed=11, amplitude=0.08, grid=(4, 3), colour=0.02))
                    for k, f in enumerate(frames)]
        fixed = _deflicker_sequence(injected, 8, grid=(4, 3))
        out[name] = {"as_is": _flicker_figures(frames, as_is), "injected": _flicker_figures(injected, fixed, frames)}
    return out


def matte_quality(quick: bool):
    from composite.temporal.matte_smooth import smooth_matte_temporal
    from composite.temporal.metrics import dtssd, mad
    from composite.temporal.synthetic import matte_sequence

    def smooth(plates, keyed, **kw):
        n = len(keyed)
        out = []
        for t in range(n):
            ks = range(max(0, t - 2), min(n, t + 3))
            out.append(smooth_matte_temporal({k: keyed[k] for k in ks}, t, guides={k: plates[k] for k in ks}, **kw))
        return out

    rows = {}
    sets = {
        "blob, 2 px/frame, boiling edge": matte_sequence(16, seed=3, velocity=(2, 0.5), width=160, height=96),
        "blob, 8 px/frame, boiling edge": matte_sequence(16, seed=3, velocity=(8, 3), width=256, height=96,
                                                         start=(30, 48)),
        "blob, 20 px/frame (flow fails)": matte_sequence(12, seed=4, velocity=(20, 0), width=320, height=96,
                                                         start=(30, 48), boil=0.3),
    }
    w, h = (320, 180) if quick else (640, 360)
    shots = {grain: _keyed_shot(w, h, 10, grain) for grain in (0.0, 1.0, 3.0)}
    for grain, shot in shots.items():
        sets[f"greenscreen {w}x{h} keyed per frame, grain {grain:g}"] = shot
    for name, (plates, truth, keyed) in sets.items():
        for preset in ("medium", "fine"):
            t0 = time.perf_counter()
            out = smooth(plates, keyed, preset=preset)
            ms = (time.perf_counter() - t0) / len(keyed) * 1000
            d0, d1 = dtssd(keyed, truth), dtssd(out, truth)
            rows[f"{name} [{preset}]"] = {
                "dtssd_before": round(d0, 5), "dtssd_after": round(d1, 5),
                "dtssd_change_pct": round(100 * (d1 / d0 - 1), 1),
                "mad_before": round(mad(keyed, truth), 5), "mad_after": round(mad(out, truth), 5),
                "mad_change_pct": round(100 * (mad(out, truth) / mad(keyed, truth) - 1), 1),
                "ms_per_frame": round(ms, 1)}
    rows[f"greenscreen {w}x{h}, grain 1: ideal ±2-frame average of the grain's effect"] = _grain_bound(shots[0.0],
                                                                                                      shots[1.0])
    return rows


def _grain_bound(clean, grainy, radius=2, sigma=2.0):
    """What a perfect temporal filter could reach on the grainy key: the grain-free key plus the grain's
    effect on the matte (grainy key minus grain-free key, same truth) averaged over ±radius frames with the
    smoother's Gaussian weights. Errors of the grain-free key move with the picture; no temporal filter
    removes them, so this bounds what smoothing can do on this shot."""
    from composite.temporal.metrics import dtssd, mad

    _, truth, k0 = clean
    _, truth1, k1 = grainy
    assert all(np.array_equal(a, b) for a, b in zip(truth, truth1))
    n = len(k1)
    effect = [b - a for a, b in zip(k0, k1)]
    ideal = []
    for t in range(n):
        ks = range(max(0, t - radius), min(n, t + radius + 1))
        wts = np.array([np.exp(-0.5 * ((k - t) / sigma) ** 2) for k in ks])
        wts /= wts.sum()
        ideal.append((k0[t] + sum(np.float32(c) * effect[k] for c, k in zip(wts, ks))).astype(np.float32))
    d0, d1, m0, m1 = dtssd(k1, truth), dtssd(ideal, truth), mad(k1, truth), mad(ideal, truth)
    return {"dtssd_before": round(d0, 5), "dtssd_after": round(d1, 5), "dtssd_change_pct": round(100 * (d1 / d0 - 1), 1),
            "mad_before": round(m0, 5), "mad_after": round(m1, 5), "mad_change_pct": round(100 * (m1 / m0 - 1), 1),
            "ms_per_frame": None}


def _markdown(rep) -> str:
    lines = ["### Matte smoothing (±2 frames): dtSSD and MAD against ground truth", "",
             "| sequence | dtSSD before | after | change | MAD before | after | change | ms/frame |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for name, r in rep["matte"].items():
        lines.append(f"| {name} | {r['dtssd_before']:.4f} | {r['dtssd_after']:.4f} | {r['dtssd_change_pct']:+.1f}% | "
                     f"{r['mad_before']:.5f} | {r['mad_after']:.5f} | {r['mad_change_pct']:+.1f}% | "
                     f"{'–' if r['ms_per_frame'] is None else r['ms_per_frame']} |")
    lines += ["", "### Deflicker: flicker index (stops, 4x3 tiles) and flow-warping error (scene-linear)", "",
              "| sequence | FI before | FI after | FI clean | warp err before | after | clean | level err rms |",
              "|---|---:|---:|---:|---:|---:|---:|---:|"]

    def row(name, r):
        return (f"| {name} | {r['flicker_index_before']:.4f} | {r['flicker_index_after']:.4f} | "
                f"{r.get('flicker_index_clean', float('nan')):.4f} | {r['warp_error_before']:.5f} | "
                f"{r['warp_error_after']:.5f} | {r.get('warp_error_clean', float('nan')):.5f} | "
                f"{r.get('level_error_rms_stops', float('nan')):.4f} |")

    for name, r in rep["deflicker_synthetic"].items():
        lines.append(row(f"generated background: {name}", r))
    if isinstance(rep.get("deflicker_real"), dict):
        for name, r in rep["deflicker_real"].items():
            lines.append(row(f"{name} as is", r["as_is"]))
            lines.append(row(f"{name} + injected flicker", r["injected"]))
    else:
        lines.append(f"\nReal clips: {rep.get('deflicker_real')}")
    return "\n".join(lines)


def report(config) -> dict:
    w, h = (320, 180) if config.quick else (640, 360)
    rep = {"matte": matte_quality(config.quick), "deflicker_synthetic": deflicker_synthetic(w, h)}
    root = os.environ.get("COMPOSITE_EVAL_DATA")
    if root and (Path(root) / "video").is_dir():
        rep["deflicker_real"] = deflicker_real(Path(root), config.quick)
    else:
        rep["deflicker_real"] = "skipped: COMPOSITE_EVAL_DATA is not set"
    rep["markdown"] = _markdown(rep)
    return rep


# -- standalone ----------------------------------------------------------------------------------------

def run(quick: bool = False, *, frames: int | None = None, timing: bool = True) -> dict:
    """Time every case in this process (median wall ms/frame) and gather the quality figures."""
    from benchmarks.harness import Config

    config = Config.make(quick=quick, frames=frames)
    timings = {}
    if timing:
        for case in cases(config):
            step = case.setup(**case.params)
            step(0)
            times = []
            for i in range(1, config.frames + 1):
                t0 = time.perf_counter()
                step(i)
                times.append((time.perf_counter() - t0) * 1000)
            timings[case.name] = round(float(np.median(times)), 1)
    return {"load_average": list(os.getloadavg()), "cpu_count": os.cpu_count(), "ms_per_frame": timings,
            **report(config)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--frames", type=int, default=None)
    ap.add_argument("--no-timing", action="store_true", help="quality figures only")
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)
    res = run(args.quick, frames=args.frames, timing=not args.no_timing)
    text = json.dumps({k: v for k, v in res.items() if k != "markdown"}, indent=1)
    if args.json:
        Path(args.json).write_text(text)
    print(res.get("markdown", ""))
    print(json.dumps(res["ms_per_frame"], indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
