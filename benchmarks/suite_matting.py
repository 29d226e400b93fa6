"""Matting benchmark: alpha from trimaps on the 27 alphamatting.com training triples, composite's refinement
next to pymatting's closed-form matting run in the same process.

Data: ``$COMPOSITE_EVAL_DATA/matting/alphamatting_lowres`` (input, trimap1, trimap2, gt_alpha; the ground
truths are grey RGB PNGs, one channel is read). Never copied into the project.

* **pymatting closed form** (the peer): ``pymatting.estimate_alpha_cf`` on the 8-bit sRGB PNG divided by 255,
  exactly as a pymatting user calls it.
* **composite**: the PNG is first ingested the way composite ingests any sRGB file — sRGB decoded to linear
  light and converted from Rec.709 to ACEScg primaries (the working space) — and then refined with
  :func:`composite.matte.refine.estimate_alpha` (``closed_form``, ``closed_form_fast``, ``large_kernel``,
  ``knn``; the solver sees the default ``srgb`` encoding of the working-space values) or, as the video path,
  :func:`composite.matte.guided.refine_alpha_guided` fed the trimap itself (known pixels pinned). Ingest and
  encoding are inside the timed region.

Metrics (:mod:`composite.matte.metrics`, alphamatting.com definitions, over each trimap's unknown region):
SAD/1000, MSE, gradient/1000, connectivity/1000, per image and mean, with seconds per image.

Through the harness (``python -m benchmarks --suite matting``) the quality table is the suite's
``report`` (skipped when ``COMPOSITE_EVAL_DATA`` is unset) and ``cases`` time the per-frame video path on
synthetic green-screen frames at the configured sizes: trimap from a mask, the guided-filter refinement
(exact and subsampled by 4) and the foreground estimation. By hand (not part of the test suite)::

    COMPOSITE_EVAL_DATA=../shared/data .venv/bin/python benchmarks/suite_matting.py [--quick] [--json out.json]
        [--methods closed_form,guided] [--previews DIR]

``--previews DIR`` writes one PNG contact sheet per image and trimap (input, trimap, each method's alpha,
ground truth, composite's foreground over a grey checkerboard).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import sys
import time
import warnings
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from composite.matte import refine  # noqa: E402
from composite.matte.guided import refine_alpha_guided  # noqa: E402
from composite.matte.metrics import evaluate_matte  # noqa: E402
from composite.matte.trimap import normalize_trimap  # noqa: E402

# Linear Rec.709 → ACEScg (AP1), Bradford D65 → D60.
REC709_TO_AP1 = np.array([[0.6130974, 0.3395231, 0.0473795],
                          [0.0701937, 0.9163539, 0.0134524],
                          [0.0206156, 0.1095698, 0.8698147]], np.float32)
METHODS = ("closed_form", "closed_form_fast", "large_kernel", "knn", "guided")
QUICK_IMAGES = (1, 5, 8, 13, 20, 26)
GUIDED = {"radius": 8, "eps": 1e-3}
METRICS = ("SAD", "MSE", "Grad", "Conn")


class NoData(Exception):
    """The evaluation data is not available."""


def data_dir() -> Path:
    value = os.environ.get("COMPOSITE_EVAL_DATA")
    if not value:
        raise NoData("COMPOSITE_EVAL_DATA is not set (the evaluation-data folder, e.g. ../shared/data)")
    d = Path(value) / "matting" / "alphamatting_lowres"
    if not d.is_dir():
        raise NoData(f"{d} does not exist")
    return d


def load_case(d: Path, index: int, trimap: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(image sRGB float64 [0, 1], trimap float64 [0, 1], ground truth float64 [0, 1])``."""
    name = f"GT{index:02d}.png"
    img = cv2.imread(str(d / "input" / name), cv2.IMREAD_COLOR)[..., ::-1].astype(np.float64) / 255.0
    tri = cv2.imread(str(d / trimap / name), cv2.IMREAD_UNCHANGED)
    tri = (tri[..., 0] if tri.ndim == 3 else tri).astype(np.float64) / 255.0
    gt = cv2.imread(str(d / "gt_alpha" / name), cv2.IMREAD_UNCHANGED)
    gt = (gt[..., 0] if gt.ndim == 3 else gt).astype(np.float64) / 255.0
    return img, tri, gt


def to_working(srgb: np.ndarray) -> np.ndarray:
    """sRGB-encoded Rec.709 [0, 1] → scene-linear ACEScg float32 (what composite's ingest produces)."""
    x = srgb.astype(np.float32)
    lin = np.where(x <= 0.04045, x / np.float32(12.92), ((x + np.float32(0.055)) / np.float32(1.055)) ** np.float32(2.4))
    return (lin @ REC709_TO_AP1.T).astype(np.float32)


def _quiet(fn, *args, **kwargs):
    """Call fn with pymatting's stdout notices and warnings silenced."""
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        return fn(*args, **kwargs)


def solve(method: str, srgb: np.ndarray, tri: np.ndarray) -> tuple[np.ndarray, float]:
    """One method's alpha and its seconds (ingest included for composite's methods)."""
    t0 = time.perf_counter()
    if method == "pymatting_cf":
        from pymatting import estimate_alpha_cf

        alpha = _quiet(estimate_alpha_cf, srgb, tri)
    elif method == "guided":
        work = to_working(srgb)
        t = normalize_trimap(tri.astype(np.float32))
        alpha = refine_alpha_guided(work, t, trimap=t, **GUIDED)
    else:
        alpha = _quiet(refine.estimate_alpha, to_working(srgb), tri, method=method)
    return np.asarray(alpha, np.float64), time.perf_counter() - t0


def run(quick: bool = False, *, methods: tuple[str, ...] = METHODS, images: tuple[int, ...] | None = None,
        previews: str | None = None) -> dict:
    """Run the benchmark. ``quick``: six images; closed form, its fast variant and the guided filter only
    (unless ``methods`` says otherwise)."""
    d = data_dir()
    if images is None:
        images = QUICK_IMAGES if quick else tuple(range(1, 28))
    if quick and methods == METHODS:
        methods = ("closed_form", "closed_form_fast", "guided")
    all_methods = ("pymatting_cf",) + tuple(m for m in methods if m != "pymatting_cf")
    rows = []
    for i in images:
        for trimap in ("trimap1", "trimap2"):
            img, tri, gt = load_case(d, i, trimap)
            row = {"image": f"GT{i:02d}", "trimap": trimap, "methods": {}}
            alphas = {}
            for m in all_methods:
                alpha, secs = solve(m, img, tri)
                scores = evaluate_matte(alpha, gt, tri)
                row["methods"][m] = {k: float(scores[k]) for k in METRICS} | {"seconds": secs}
                alphas[m] = alpha
            rows.append(row)
            print(f"{row['image']} {trimap}: " + "  ".join(
                f"{m} SAD {v['SAD']:.2f} ({v['seconds']:.2f}s)" for m, v in row["methods"].items()), flush=True)
            if previews:
                write_contact_sheet(Path(previews) / f"{row['image']}_{trimap}.png", img, tri, gt, alphas)
    summary = {}
    for trimap in ("trimap1", "trimap2"):
        sel = [r for r in rows if r["trimap"] == trimap]
        summary[trimap] = {m: {k: float(np.mean([r["methods"][m][k] for r in sel])) for k in METRICS + ("seconds",)}
                           for m in all_methods}
    return {"images": len(images), "methods": list(all_methods), "rows": rows, "summary": summary}


def format_table(r: dict) -> str:
    lines = [f"alpha from trimap, {r['images']} alphamatting.com images, means over images "
             "(SAD, Grad, Conn / 1000; MSE over the unknown region)"]
    for trimap, by_method in r["summary"].items():
        lines += ["", f"{trimap}:", "| method | SAD | MSE | Grad | Conn | s/image |", "|---|---:|---:|---:|---:|---:|"]
        for m, v in by_method.items():
            name = "pymatting estimate_alpha_cf (peer)" if m == "pymatting_cf" else f"composite {m}"
            lines.append(f"| {name} | {v['SAD']:.2f} | {v['MSE']:.4f} | {v['Grad']:.2f} | {v['Conn']:.2f} "
                         f"| {v['seconds']:.2f} |")
        if "closed_form" in by_method:
            c, p = by_method["closed_form"]["SAD"], by_method["pymatting_cf"]["SAD"]
            lines.append(f"goal: composite closed_form SAD no worse than pymatting closed form (within 0.1 %): "
                         f"{c <= p * 1.001} ({c:.4f} vs {p:.4f}, ratio {c / max(p, 1e-12):.4f})")
    return "\n".join(lines)


def format_rows(r: dict) -> str:
    ms = r["methods"]
    head = "| image | trimap | " + " | ".join(f"{m} SAD" for m in ms) + " |"
    lines = [head, "|" + "---|" * (2 + len(ms))]
    for row in r["rows"]:
        lines.append(f"| {row['image']} | {row['trimap']} | " +
                     " | ".join(f"{row['methods'][m]['SAD']:.2f}" for m in ms) + " |")
    return "\n".join(lines)


def _checker(h: int, w: int, size: int = 16) -> np.ndarray:
    y, x = np.mgrid[0:h, 0:w]
    return np.where(((x // size) + (y // size)) % 2 == 0, 0.35, 0.6).astype(np.float64)


def write_contact_sheet(path: Path, srgb: np.ndarray, tri: np.ndarray, gt: np.ndarray | None,
                        alphas: dict[str, np.ndarray], *, width: int = 360) -> None:
    """Input | trimap | alphas | ground truth | composite foreground over a checkerboard, labelled, as PNG."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tiles = [("input", srgb), ("trimap", tri)]
    tiles += [(m, a) for m, a in alphas.items()]
    if gt is not None:
        tiles.append(("ground truth", gt))
    main = alphas.get("closed_form", next(iter(alphas.values())))
    work = to_working(srgb)
    fg_lin = refine.estimate_foreground(work, main.astype(np.float32))
    # back to sRGB-ish for viewing: AP1 → Rec.709 then the sRGB curve, composited over a grey checker
    fg709 = np.clip(fg_lin @ np.linalg.inv(REC709_TO_AP1).T, 0, 1)
    checker = _checker(*srgb.shape[:2])[..., None]
    over = main[..., None] * fg709 + (1 - main[..., None]) * checker ** 2.2
    tiles.append(("foreground over checker", np.where(over <= 0.0031308, 12.92 * over,
                                                      1.055 * np.clip(over, 0, 1) ** (1 / 2.4) - 0.055)))
    h, w = srgb.shape[:2]
    th = int(round(h * width / w))
    out = []
    for label, t in tiles:
        t = np.clip(t, 0, 1)
        t = np.repeat(t[..., None], 3, axis=2) if t.ndim == 2 else t
        t = cv2.resize((t * 255).astype(np.uint8), (width, th), interpolation=cv2.INTER_AREA)
        t = np.ascontiguousarray(t[..., ::-1])
        cv2.rectangle(t, (0, 0), (width, 18), (0, 0, 0), -1)
        cv2.putText(t, label, (4, 13), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (255, 255, 255), 1, cv2.LINE_AA)
        out.append(t)
    cols = 4
    while len(out) % cols:
        out.append(np.zeros_like(out[0]))
    grid = np.vstack([np.hstack(out[r:r + cols]) for r in range(0, len(out), cols)])
    cv2.imwrite(str(path), grid)


# -- harness contract (benchmarks/README.md) ---------------------------------------------------------

def _synthetic(width: int, height: int):
    from composite.synth import greenscreen_sequence

    f = greenscreen_sequence(width, height, 1).frame(1001)
    plate = np.ascontiguousarray(f.plate[..., :3], np.float32)
    return plate, np.asarray(f.alpha, np.float32).reshape(height, width)


def setup_trimap(width: int, height: int):
    from composite.matte.trimap import trimap_from_mask

    _, alpha = _synthetic(width, height)
    mask = (alpha >= 0.5).astype(np.float32)

    def step(i):
        trimap_from_mask(mask, erode=8, dilate=8)

    return step


def setup_guided(width: int, height: int, subsample: int):
    plate, alpha = _synthetic(width, height)
    mask = (alpha >= 0.5).astype(np.float32)
    radius = max(4, width // 240)

    def step(i):
        refine_alpha_guided(plate, mask, radius=radius, eps=1e-3, subsample=subsample)

    return step


def setup_foreground(width: int, height: int):
    plate, alpha = _synthetic(width, height)

    def step(i):
        refine.estimate_foreground(plate, alpha)

    return step


def cases(config) -> list:
    from benchmarks.harness import Case

    out = []
    for (w, h) in config.sizes:
        out.append(Case(f"matte.trimap_from_mask@{w}x{h}", setup_trimap, dict(width=w, height=h), group="refine",
                        kind="stage"))
        for sub in (1, 4):
            out.append(Case(f"matte.guided_refine.sub{sub}@{w}x{h}", setup_guided, dict(width=w, height=h, subsample=sub),
                            group="refine", kind="stage",
                            note=f"radius {max(4, w // 240)} px, eps 1e-3, fitted at 1/{sub} resolution"))
        out.append(Case(f"matte.estimate_foreground@{w}x{h}", setup_foreground, dict(width=w, height=h),
                        group="refine", kind="stage", frames=2, note="pymatting multilevel, scene-linear"))
    return out


def report(config) -> dict:
    """The alphamatting.com quality table (six images with --quick, all 27 otherwise)."""
    try:
        data_dir()
    except NoData as exc:
        return {"skipped": str(exc)}
    r = run(bool(getattr(config, "quick", False)))
    r["markdown"] = format_table(r) + "\n\n" + format_rows(r)
    return r


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="six images; closed form (full and fast) and guided filter")
    ap.add_argument("--methods", default=",".join(METHODS), help=f"comma-separated subset of {', '.join(METHODS)}")
    ap.add_argument("--images", default="", help="comma-separated image numbers (default: all 27)")
    ap.add_argument("--json", help="also write the results as JSON here")
    ap.add_argument("--previews", help="write PNG contact sheets into this folder")
    args = ap.parse_args(argv)
    methods = tuple(m for m in args.methods.split(",") if m)
    bad = [m for m in methods if m not in METHODS]
    if bad:
        raise SystemExit(f"unknown method {bad[0]!r}; choose from {', '.join(METHODS)}")
    images = tuple(int(v) for v in args.images.split(",") if v) or None
    try:
        r = run(args.quick, methods=methods, images=images, previews=args.previews)
    except NoData as exc:
        raise SystemExit(str(exc)) from None
    print()
    print(format_rows(r))
    print()
    print(format_table(r))
    if args.json:
        Path(args.json).write_text(json.dumps(r, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
