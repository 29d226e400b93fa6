"""Colour-matching benchmark: ms/frame of each operation at HD and 4K, and quality on the evaluation pairs.

Timed cases (``cases(config)``, measured by :mod:`benchmarks.harness`, one process per case), on a
synthetic scene-linear RGBA element (soft alpha, HDR highlights) and an RGB plate of the same size:

* ``transfer_<method>``: a live colour transfer (fit on the frame + apply), Reinhard, MKL, histogram;
* ``transfer_apply_mkl``: applying a stored MKL transform (the fixed per-shot match);
* ``grade``: the Nuke-style grade; ``match_black_white``: the black/white-point solver + grade;
* ``cdl_numpy`` / ``cdl_numpy_acescct`` / ``cdl_ocio_file``: the ASC CDL in NumPy (linear, ACEScct) and a
  .cc through an OpenColorIO processor;
* ``delta_e_image``: per-pixel ΔE2000 statistics of two frames (sRGB display).

Quality figures (``report(config)``), on ``$COMPOSITE_EVAL_DATA/color_transfer``:

* Pitié's pair: our MKL against his published ``result_MKL.png`` (8-bit differences, PSNR, ΔE2000);
* every pair and method: the look distance to the palette image in ΔE2000 (mean of the quantile ΔE, see
  :mod:`composite.color.consistency`) before and after, sRGB display;
* a synthetic sequence (three shots with known CDL looks) matched to its hero: ΔE before/after per shot,
  and how closely a fitted CDL reproduces each match;
* Tears of Steel frames of one shot given off looks (known CDLs) and matched back to the shot's hero frame:
  per-pixel ΔE2000 to the frames' own look before and after;
* the NumPy CDL against OpenColorIO's CDLTransform (largest difference).

Run by hand::

    .venv/bin/python -m benchmarks --suite color [--quick]
    .venv/bin/python benchmarks/suite_color.py [--quick] [--json out.json]   # standalone
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from composite.color import cdl as cdl_mod  # noqa: E402
from composite.color.consistency import look_distance, match_shots  # noqa: E402
from composite.color.delta_e import delta_e_2000, image_delta_e, srgb_to_acescg, srgb_to_lab, summarize  # noqa: E402
from composite.color.grade import grade, match_black_white  # noqa: E402
from composite.color.transfer import fit_color_transfer  # noqa: E402

PAIRS = {  # element to recolour → palette image
    "pitie_house": ("pitie_scotland/scotland_house.png", "pitie_scotland/scotland_plain.png"),
    "fallingwater_autumn": ("reinhard_pairs/fallingwater.jpg", "reinhard_pairs/autumn.jpg"),
    "ocean_day_sunset": ("reinhard_pairs/ocean_day.jpg", "reinhard_pairs/ocean_sunset.jpg"),
    "storm_woods": ("reinhard_pairs/storm.jpg", "reinhard_pairs/woods.jpg"),
}
LOOK = cdl_mod.CDL(slope=(1.1, 1.0, 0.9), offset=(0.01, 0.0, -0.01), power=(1.0, 1.1, 0.95), saturation=0.85,
                   id="bench")


def synthetic_frames(width: int, height: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(element RGBA premultiplied, plate RGB), float32 ACEScg, with gradients, texture and HDR highlights."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    yy /= height
    xx /= width
    tex = (0.5 + 0.5 * np.sin(40 * xx) * np.cos(25 * yy)).astype(np.float32)
    elem = np.empty((height, width, 4), np.float32)
    elem[..., 0] = 0.05 + 0.6 * xx * tex
    elem[..., 1] = 0.04 + 0.4 * yy
    elem[..., 2] = 0.03 + 0.3 * tex
    elem[..., :3] += rng.normal(0, 0.01, (height, width, 3)).astype(np.float32)
    elem[: height // 20, : width // 20, :3] = 12.0  # a highlight
    r = np.hypot(xx - 0.5, yy - 0.5)
    alpha = np.clip((0.45 - r) * 20.0, 0.0, 1.0).astype(np.float32)
    elem[..., :3] *= alpha[..., None]
    elem[..., 3] = alpha
    plate = np.empty((height, width, 3), np.float32)
    plate[..., 0] = 0.02 + 0.3 * yy
    plate[..., 1] = 0.03 + 0.35 * tex * (1 - yy)
    plate[..., 2] = 0.06 + 0.5 * xx
    plate += rng.normal(0, 0.01, (height, width, 3)).astype(np.float32)
    return elem, np.abs(plate)


# -- timed cases ---------------------------------------------------------------------------------
def _setup(op: str, width: int, height: int):
    elem, plate = synthetic_frames(width, height)
    if op.startswith("transfer_apply_"):
        tr = fit_color_transfer(elem, plate, method=op.rsplit("_", 1)[1])
        return lambda i: tr.apply(elem)
    if op.startswith("transfer_"):
        method = op.split("_", 1)[1]
        return lambda i: fit_color_transfer(elem, plate, method=method).apply(elem)
    if op == "grade":
        kw = dict(blackpoint=0.01, whitepoint=[0.9, 1.0, 1.1], lift=0.02, gain=1.1, gamma=[1.0, 1.1, 0.9],
                  saturation=0.9)
        return lambda i: grade(elem, **kw)
    if op == "match_black_white":
        return lambda i: match_black_white(elem, plate)
    if op == "cdl_numpy":
        return lambda i: cdl_mod.apply_cdl(elem, LOOK)
    if op == "cdl_numpy_acescct":
        return lambda i: cdl_mod.apply_cdl(elem, LOOK, encoding="acescct")
    if op == "cdl_ocio_file":
        path = os.path.join(tempfile.mkdtemp(prefix="bench-cdl-"), "look.cc")
        cdl_mod.write_cdl_file(path, LOOK)
        return lambda i: cdl_mod.apply_cdl_file(elem, path)
    if op == "delta_e_image":
        other = elem[..., :3] * np.float32(1.05)
        return lambda i: image_delta_e(elem[..., :3], other)
    raise KeyError(op)


OPS = ("transfer_reinhard", "transfer_mkl", "transfer_histogram", "transfer_apply_mkl", "grade",
       "match_black_white", "cdl_numpy", "cdl_numpy_acescct", "cdl_ocio_file", "delta_e_image")


def cases(config):
    from benchmarks.harness import op_cases

    return op_cases(OPS, _setup, config.sizes, kind="stage")


# -- quality -------------------------------------------------------------------------------------
def _read_srgb(path: Path, width: int | None = None) -> np.ndarray:
    import cv2

    im = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if im is None:
        raise FileNotFoundError(path)
    im = im[:, :, ::-1]
    if width and im.shape[1] > width:
        im = cv2.resize(im, (width, int(round(im.shape[0] * width / im.shape[1]))), interpolation=cv2.INTER_AREA)
    return im.astype(np.float32) / 255.0


def pitie_figures(folder: Path) -> dict:
    """Our MKL (on 8-bit display values, as Pitié's code) against his published result."""
    d = folder / "pitie_scotland"
    src, pal, pub = (_read_srgb(d / n) for n in ("scotland_house.png", "scotland_plain.png", "result_MKL.png"))
    out = fit_color_transfer(src, pal, method="mkl", space="linear", max_samples=None).apply(src)
    ours = np.round(np.clip(out, 0, 1) * 255)
    theirs = pub * 255
    diff = np.abs(ours - theirs)
    mse = float(np.mean(diff ** 2))
    de = summarize(delta_e_2000(srgb_to_lab(ours / 255), srgb_to_lab(theirs / 255)))
    return {"mad_8bit": float(diff.mean()), "max_8bit": float(diff.max()),
            "values_differing": int(np.count_nonzero(diff)), "values": int(diff.size),
            "psnr_db": float(10 * np.log10(255 ** 2 / mse)) if mse > 0 else float("inf"),
            "delta_e2000_srgb": {k: round(v, 4) for k, v in de.items()}}


def pair_figures(folder: Path, width: int) -> dict:
    """Look distance (quantile ΔE2000, sRGB display) before/after for every pair, method and default space."""
    rows = {}
    for name, (elem_f, pal_f) in PAIRS.items():
        elem = srgb_to_acescg(_read_srgb(folder / elem_f, width))
        pal = srgb_to_acescg(_read_srgb(folder / pal_f, width))
        row = {"before": look_distance(elem, pal)["quantile_de"]}
        for method in ("reinhard", "mkl", "histogram"):
            t0 = time.perf_counter()
            out = fit_color_transfer(elem, pal, method=method).apply(elem)
            dt = time.perf_counter() - t0
            row[method] = {**look_distance(out, pal)["quantile_de"], "ms": round(dt * 1e3, 1)}
        rows[name] = row
    return rows


def sequence_figures(width: int = 320, height: int = 180) -> dict:
    """Three synthetic shots with known CDL looks matched to the hero frame."""
    hero_elem, hero_plate = synthetic_frames(width, height, seed=1)
    hero = hero_plate
    looks = {"sh010": cdl_mod.CDL(slope=(1.15, 1.0, 0.8), offset=(0.02, 0.0, -0.02)),
             "sh020": cdl_mod.CDL(slope=0.85, offset=(-0.03, 0.01, 0.05), saturation=0.6),
             "sh030": cdl_mod.CDL(power=(1.2, 1.1, 0.9), saturation=1.3)}
    shots = {}
    for i, (name, look) in enumerate(looks.items()):
        _, plate = synthetic_frames(width, height, seed=10 + i)
        shots[name] = cdl_mod.apply_cdl(np.ascontiguousarray(plate[:, ::-1] if i % 2 else plate), look,
                                        encoding="acescct")
    out = {}
    for method in ("reinhard", "mkl", "histogram"):
        res = match_shots(shots, hero, method=method, fit_cdl_per_shot=True, keep_images=False)
        out[method] = {k: {"before": m.before["quantile_de"], "after": m.after["quantile_de"],
                           "cdl_after": m.cdl_after["quantile_de"],
                           "cdl_vs_transfer_median": m.cdl_after["cdl_vs_transfer"]["median"]}
                       for k, m in res.matches.items()}
    return out


def look_recovery_figures(video: Path) -> dict:
    """Tears of Steel frames 40 and 60 (hero frame 25's shot) given off looks and matched back to the hero.

    Ground truth is each frame's own look: per-pixel ΔE2000 (sRGB display) before and after, per method.
    """
    import av

    wanted = {25, 40, 60}
    frames = {}
    with av.open(str(video)) as container:
        for i, frame in enumerate(container.decode(video=0)):
            if i in wanted:
                frames[i] = srgb_to_acescg(frame.to_ndarray(format="rgb24").astype(np.float32) / 255.0)
            if i >= max(wanted):
                break
    looks = {40: cdl_mod.CDL(slope=(1.25, 1.0, 0.75), offset=(0.03, 0.0, -0.02)),
             60: cdl_mod.CDL(power=(1.3, 1.1, 0.85), saturation=1.4)}
    shots = {f"frame{i}": cdl_mod.apply_cdl(frames[i], look, encoding="acescct") for i, look in looks.items()}
    out: dict = {}
    for method in ("reinhard", "mkl", "histogram"):
        res = match_shots(shots, frames[25], method=method)
        out[method] = {k: {"before": round(image_delta_e(shots[k], frames[int(k[5:])])["mean"], 3),
                           "after": round(image_delta_e(res.images[k], frames[int(k[5:])])["mean"], 3)}
                       for k in shots}
    return out


def cdl_vs_ocio() -> dict:
    import PyOpenColorIO as ocio

    rng = np.random.default_rng(3)
    x = np.concatenate([rng.uniform(-0.2, 1.2, (20000, 3)), rng.uniform(1, 50, (2000, 3))]).astype(np.float32)
    x = x.reshape(-1, 1, 3)
    res = {}
    for style in cdl_mod.STYLES:
        ours = cdl_mod.apply_cdl(x, LOOK, style=style)
        cpu = ocio.Config.CreateRaw().getProcessor(LOOK.to_ocio(style=style)).getDefaultCPUProcessor()
        theirs = x.copy()
        cpu.applyRGB(theirs)
        scale = 1 + np.abs(theirs).max(-1, keepdims=True)
        res[style] = {"max_abs": float(np.abs(ours - theirs).max()),
                      "max_rel_to_pixel": float((np.abs(ours - theirs) / scale).max())}
    return res


def _markdown(out: dict) -> str:
    lines = []
    p = out.get("pitie_mkl")
    if isinstance(p, dict):
        lines += ["Pitié's MKL reproduced (8-bit display values, his `result_MKL.png`): "
                  f"{p['values_differing']} of {p['values']} values differ (by at most {p['max_8bit']:.0f} level), "
                  f"MAD {p['mad_8bit']:.4f} levels, PSNR {p['psnr_db']:.1f} dB, "
                  f"ΔE2000 mean {p['delta_e2000_srgb']['mean']:.4f}.", ""]
    pairs = out.get("eval_pairs")
    if isinstance(pairs, dict):
        lines += ["Look distance to the palette image (quantile ΔE2000 mean, sRGB display):", "",
                  "| pair | before | reinhard | mkl | histogram |", "|---|---|---|---|---|"]
        for name, row in pairs.items():
            lines.append(f"| {name} | {row['before']['mean']:.2f} | {row['reinhard']['mean']:.2f} | "
                         f"{row['mkl']['mean']:.2f} | {row['histogram']['mean']:.2f} |")
        lines.append("")
    rec = out.get("look_recovery_tears_of_steel")
    if isinstance(rec, dict):
        lines += ["Tears of Steel shots given off looks, matched back to their hero frame (per-pixel ΔE2000 "
                  "mean to their own look, before → after):", "", "| method | " + " | ".join(rec["mkl"]) + " |",
                  "|---|" + "---|" * len(rec["mkl"])]
        for method, row in rec.items():
            lines.append(f"| {method} | " + " | ".join(f"{v['before']:.2f} → {v['after']:.2f}"
                                                      for v in row.values()) + " |")
        lines.append("")
    seq = out.get("sequence", {})
    if seq:
        lines += ["Synthetic sequence matched to its hero (quantile ΔE2000 mean before → after; fitted CDL):", "",
                  "| method | shot | before | after | CDL after | CDL vs transfer (median ΔE) |",
                  "|---|---|---|---|---|---|"]
        for method, rows in seq.items():
            for shot, r in rows.items():
                lines.append(f"| {method} | {shot} | {r['before']['mean']:.2f} | {r['after']['mean']:.2f} | "
                             f"{r['cdl_after']['mean']:.2f} | {r['cdl_vs_transfer_median']:.2f} |")
        lines.append("")
    c = out.get("cdl_vs_ocio", {})
    if c:
        lines.append("NumPy CDL vs OpenColorIO CDLTransform, largest difference relative to the pixel's magnitude: "
                     + ", ".join(f"{k} {v['max_rel_to_pixel']:.1e}" for k, v in c.items()) + ".")
    return "\n".join(lines)


def report(config) -> dict:
    out: dict = {"cdl_vs_ocio": cdl_vs_ocio(), "sequence": sequence_figures()}
    root = os.environ.get("COMPOSITE_EVAL_DATA")
    if not root or not (Path(root) / "color_transfer").is_dir():
        out["eval_pairs"] = "skipped: COMPOSITE_EVAL_DATA is not set"
        out["markdown"] = _markdown(out)
        return out
    folder = Path(root) / "color_transfer"
    out["pitie_mkl"] = pitie_figures(folder)
    video = Path(root) / "video" / "tears_of_steel_10s_640x360.mp4"
    if video.is_file():
        out["look_recovery_tears_of_steel"] = look_recovery_figures(video)
    out["eval_pairs"] = pair_figures(folder, 240 if config.quick else 480)
    out["eval_pairs_note"] = ("quantile ΔE2000 mean/median/p95 of the recoloured element against the palette "
                              "image, sRGB display; elements resized to "
                              f"{240 if config.quick else 480} px wide; default space per method")
    out["markdown"] = _markdown(out)
    return out


# -- standalone ----------------------------------------------------------------------------------
def run(quick: bool = False, *, threads: int | None = None, frames: int | None = None) -> dict:
    """Time every op at HD and 4K (quick: 640x360 and 1280x720) in this process and gather the quality figures.

    Reports the median wall time and the median CPU time of this process (``time.process_time``, all
    threads) per frame; on a shared machine the CPU time is the steadier figure.
    """
    from benchmarks.harness import Config, limit_threads, time_in_process

    limit_threads(threads)
    config = Config.make(quick=quick, frames=frames)
    times = time_in_process(cases(config), config.frames)
    wall = {name: round(w, 1) for name, (w, _) in times.items()}
    cpu = {name: round(c, 1) for name, (_, c) in times.items()}
    return {"threads": threads, "load_average": list(os.getloadavg()), "ms_per_frame_wall": wall,
            "ms_per_frame_cpu": cpu, "quality": report(config)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--threads", type=int, help="cap OpenCV/BLAS threads")
    ap.add_argument("--frames", type=int, help="timed frames per op (default 8, quick 3)")
    ap.add_argument("--json", help="write the results here")
    args = ap.parse_args(argv)
    res = run(quick=args.quick, threads=args.threads, frames=args.frames)
    text = json.dumps(res, indent=2)
    if args.json:
        Path(args.json).write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
