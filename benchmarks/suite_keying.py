"""Keying benchmark: composite's keyer + despill against ffmpeg's ``chromakey`` + ``despill``.

Both tools key the same synthetic green-screen frames (``composite.synth.greenscreen_sequence``: hair,
motion blur, spill, grain, uneven screen, tracking markers) given as the same 16-bit sRGB-encoded RGB
frames in memory, the format a user would hand ffmpeg. composite decodes them to ACEScg (inside the timed
region), keys with :func:`composite.matte.keyers.key_color_difference` (a clean plate built per frame,
``clean_plate="auto"``) and despills in the same call; ffmpeg gets the frames through a pipe
(``-f rawvideo -pix_fmt rgb48le``) and returns RGBA64.

Fair tuning: both tools get the same screen colour, the one composite's estimator finds on the first
tuning frame (ffmpeg as an sRGB hex colour). Each tool's parameters are then chosen by a grid search on a
separate tuning sequence (another seed), minimising whole-frame plus edge-band alpha error: for ffmpeg
its ``similarity`` and ``blend`` (8 x 7 values), for composite the clip levels, balance and grain denoise
(6 x 5 x 2 x 2 values).

Reported per tool, over the evaluation frames: mean absolute alpha error in the edge band (pixels within
3 px of a true transition: 0.01 < alpha < 0.99 grown by 3 px, plus the rims of solid regions), over the
whole frame, SAD/1000 per frame, and frames per second. ffmpeg's frames/s is given both as measured
(whole process, pipes included) and net of a pass-through run with the same pipes and formats; the goal
compares composite with the net figure (the stricter comparison).

Run by hand (not part of the test suite)::

    .venv/bin/python benchmarks/suite_keying.py --width 960 --height 540 --frames 8 [--json out.json]
"""

from __future__ import annotations

import argparse
import itertools
import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from composite.color import ocio  # noqa: E402
from composite.matte.keyers import key_color_difference  # noqa: E402
from composite.matte.screen import estimate_screen_color  # noqa: E402
from composite.synth import greenscreen_sequence  # noqa: E402

SRGB = "sRGB Encoded Rec.709 (sRGB)"
# Linear Rec.709 → ACEScg (AP1), Bradford D65 → D60.
REC709_TO_AP1 = np.array([[0.6130974, 0.3395231, 0.0473795],
                          [0.0701937, 0.9163539, 0.0134524],
                          [0.0206156, 0.1095698, 0.8698147]], np.float32)


def _srgb_eotf_lut() -> np.ndarray:
    v = np.arange(65536, dtype=np.float64) / 65535.0
    lin = np.where(v <= 0.04045, v / 12.92, ((v + 0.055) / 1.055) ** 2.4)
    return lin.astype(np.float32)


LUT16 = _srgb_eotf_lut()


def make_frames(width: int, height: int, frames: int, seed: int):
    """(uint16 sRGB frames, true alphas) for a synthetic sequence."""
    seq = greenscreen_sequence(width, height, frames, seed=seed)
    plates, alphas = [], []
    for i in range(frames):
        fr = seq[i]
        srgb = ocio.convert(np.ascontiguousarray(fr.plate), "ACEScg", SRGB)
        plates.append((np.clip(srgb, 0, 1) * 65535 + 0.5).astype(np.uint16))
        alphas.append(fr.alpha[..., 0].astype(np.float32))
    return plates, alphas


def ingest(frame16: np.ndarray) -> np.ndarray:
    """16-bit sRGB-encoded RGB → ACEScg float32 (sRGB EOTF by table, then the primaries matrix)."""
    lin = LUT16[frame16]
    return cv2.transform(lin, REC709_TO_AP1)


def composite_key(frame16: np.ndarray, params: dict) -> tuple[np.ndarray, np.ndarray]:
    """Decode, key against a per-frame clean plate, despill: (premultiplied fg, alpha)."""
    rgb = ingest(frame16)
    res = key_color_difference(rgb, clean_plate="auto", despill="average", **params)
    return res.fg, res.alpha


def edge_band(alpha: np.ndarray, radius: int = 3) -> np.ndarray:
    k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
    soft = ((alpha > 0.01) & (alpha < 0.99)).astype(np.uint8)
    inside = (alpha >= 0.99).astype(np.uint8)
    rim = cv2.dilate(inside, k) - cv2.erode(inside, k)
    return (cv2.dilate(soft, k) > 0) | (rim > 0)


def errors(pred: np.ndarray, truth: np.ndarray) -> dict:
    err = np.abs(pred.astype(np.float64) - truth)
    band = edge_band(truth)
    return {"band": float(err[band].mean()), "frame": float(err.mean()), "sad": float(err.sum() / 1000.0)}


def _ffmpeg_exe() -> str:
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


def ffmpeg_run(frames16: list[np.ndarray], vf: str | None) -> tuple[list[np.ndarray], float]:
    """Pipe frames through ffmpeg with filter graph ``vf``; returns (RGBA float frames, seconds)."""
    h, w = frames16[0].shape[:2]
    cmd = [_ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-f", "rawvideo", "-pix_fmt", "rgb48le",
           "-s", f"{w}x{h}", "-r", "24", "-i", "-"]
    if vf:
        cmd += ["-vf", vf]
    cmd += ["-f", "rawvideo", "-pix_fmt", "rgba64le", "-"]
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)

    def feed():
        for f in frames16:
            proc.stdin.write(np.ascontiguousarray(f, "<u2").tobytes())
        proc.stdin.close()

    th = threading.Thread(target=feed)
    th.start()
    data = proc.stdout.read()
    th.join()
    proc.wait()
    dt = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"ffmpeg failed: {proc.stderr.read().decode(errors='replace')}")
    out = np.frombuffer(data, "<u2").reshape(len(frames16), h, w, 4).astype(np.float32) / 65535.0
    return list(out), dt


def ffmpeg_graph(color_hex: str, similarity: float, blend: float) -> str:
    return (f"chromakey=color=0x{color_hex}:similarity={similarity}:blend={blend},"
            "despill=type=green:mix=0.5:expand=0")


def screen_of(frame16: np.ndarray) -> np.ndarray:
    """The screen colour composite's estimator finds on a frame: linear ACEScg, (3,) float32."""
    return estimate_screen_color(ingest(frame16))


def screen_hex(s: np.ndarray) -> str:
    srgb = ocio.convert(s.reshape(1, 1, 3).astype(np.float32), "ACEScg", SRGB).reshape(3)
    r, g, b = (int(round(float(np.clip(c, 0, 1)) * 255)) for c in srgb)
    return f"{r:02X}{g:02X}{b:02X}"


def tune_composite(frames16, alphas, screen_color):
    grid = {"screen_color": [screen_color.tolist()], "clip_black": [0.0, 0.01, 0.02, 0.03, 0.05, 0.08], "clip_white": [0.8, 0.85, 0.9, 0.95, 1.0],
            "balance": [0.5, 1.0], "denoise_radius": [0, 8]}
    best = None
    for values in itertools.product(*grid.values()):
        params = dict(zip(grid, values, strict=True))
        score = 0.0
        for f, a in zip(frames16, alphas, strict=True):
            e = errors(composite_key(f, params)[1], a)
            score += e["band"] + e["frame"]
        if best is None or score < best[0]:
            best = (score, params)
    return best[1]


def tune_ffmpeg(frames16, alphas, color_hex):
    best = None
    for sim, blend in itertools.product([0.05, 0.08, 0.1, 0.13, 0.16, 0.2, 0.25, 0.3],
                                        [0.0, 0.02, 0.05, 0.1, 0.15, 0.2, 0.3]):
        outs, _ = ffmpeg_run(frames16, ffmpeg_graph(color_hex, sim, blend))
        score = sum(errors(o[..., 3], a)["band"] + errors(o[..., 3], a)["frame"]
                    for o, a in zip(outs, alphas, strict=True))
        if best is None or score < best[0]:
            best = (score, {"similarity": sim, "blend": blend})
    return best[1]


def run(width: int = 960, height: int = 540, frames: int = 8, seed: int = 7, tune_seed: int = 101,
        repeats: int = 3) -> dict:
    tune16, tune_a = make_frames(width, height, 2, tune_seed)
    eval16, eval_a = make_frames(width, height, frames, seed)
    screen = screen_of(tune16[0])
    color_hex = screen_hex(screen)
    cparams = tune_composite(tune16, tune_a, screen)
    fparams = tune_ffmpeg(tune16, tune_a, color_hex)

    # Quality.
    comp = [composite_key(f, cparams) for f in eval16]
    comp_err = [errors(a, t) for (_, a), t in zip(comp, eval_a, strict=True)]
    ff_out, _ = ffmpeg_run(eval16, ffmpeg_graph(color_hex, **fparams))
    ff_err = [errors(o[..., 3], t) for o, t in zip(ff_out, eval_a, strict=True)]

    # Speed: best of `repeats` runs over all frames, the tools interleaved so machine load hits both alike.
    comp_ts, ff_ts, null_ts = [], [], []
    for _ in range(repeats):
        comp_ts.append(_time(lambda: _stream(eval16, cparams)))
        ff_ts.append(ffmpeg_run(eval16, ffmpeg_graph(color_hex, **fparams))[1])
        null_ts.append(ffmpeg_run(eval16, "null")[1])
    comp_t, ff_t, null_t = min(comp_ts), min(ff_ts), min(null_ts)

    def mean(rows, k):
        return float(np.mean([r[k] for r in rows]))

    return {
        "size": f"{width}x{height}", "frames": frames, "seed": seed, "screen_hex": color_hex,
        "composite": {"params": cparams, "band_mad": mean(comp_err, "band"), "frame_mad": mean(comp_err, "frame"),
                      "sad": mean(comp_err, "sad"), "fps": frames / comp_t},
        "ffmpeg": {"params": fparams, "band_mad": mean(ff_err, "band"), "frame_mad": mean(ff_err, "frame"),
                   "sad": mean(ff_err, "sad"), "fps": frames / ff_t,
                   "fps_net": frames / max(ff_t - null_t, 1e-9), "passthrough_fps": frames / null_t},
    }


def _stream(frames16, params) -> None:
    """Key the frames one after another, each result dropped once made (a writer would take it), as the
    frames stream through ffmpeg."""
    for f in frames16:
        composite_key(f, params)


def _time(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def _shown(params: dict) -> dict:
    return {k: v for k, v in params.items() if k != "screen_color"}


def format_table(r: dict) -> str:
    c, f = r["composite"], r["ffmpeg"]
    lines = [
        f"keying {r['size']}, {r['frames']} frames (seed {r['seed']}), screen #{r['screen_hex']}",
        "| tool | alpha MAD edge band | alpha MAD frame | SAD/1000 per frame | frames/s |",
        "|---|---:|---:|---:|---:|",
        f"| composite ColorDifferenceKey + Despill {_shown(c['params'])} | {c['band_mad']:.4f} | {c['frame_mad']:.4f} "
        f"| {c['sad']:.2f} | {c['fps']:.1f} |",
        f"| ffmpeg chromakey + despill {f['params']} | {f['band_mad']:.4f} | {f['frame_mad']:.4f} | {f['sad']:.2f} "
        f"| {f['fps']:.1f} (net of pipes {f['fps_net']:.1f}) |",
        "",
        f"goals: band <= 0.5 x ffmpeg: {c['band_mad'] <= 0.5 * f['band_mad']} "
        f"({c['band_mad'] / max(f['band_mad'], 1e-12):.2f}x); frame <= ffmpeg: {c['frame_mad'] <= f['frame_mad']}; "
        f"fps >= ffmpeg net: {c['fps'] >= f['fps_net']}",
    ]
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--width", type=int, default=960)
    ap.add_argument("--height", type=int, default=540)
    ap.add_argument("--frames", type=int, default=8)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--json", help="also write the results as JSON here")
    args = ap.parse_args(argv)
    r = run(args.width, args.height, args.frames, args.seed, repeats=args.repeats)
    print(format_table(r))
    if args.json:
        Path(args.json).write_text(json.dumps(r, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())


def report(config) -> dict:
    """The harness entry (benchmarks/README.md): keying quality and speed next to ffmpeg, in one table.

    Quick runs key 4 frames at 640x360; full runs 8 frames at 960x540 and 4 at 1920x1080."""
    sizes = [(640, 360, 4)] if config.quick else [(960, 540, 8), (1920, 1080, 4)]
    results = [run(width=w, height=h, frames=n) for w, h, n in sizes]
    return {"markdown": "\n\n".join(format_table(r) for r in results), "results": results}
