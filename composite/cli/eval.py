"""``composite eval matte``: compare predicted mattes with ground truth (alphamatting.com metrics).

Patterns are single files or frame sequences (``alpha.####.png``, ``alpha.%04d.exr``,
``alpha.1001-1010#.png``). The matte of a file is its only channel, else its A channel when that is not
constant 1, else its first channel (grey RGB ground truths). Integer files count as 0..1.
"""

from __future__ import annotations

import json
import sys

import numpy as np

from ..core.errors import InputError
from ..matte import metrics


def register(sub) -> None:
    p = sub.add_parser("eval", help="evaluate results against ground truth",
                       description="Evaluate results against ground truth.")
    what = p.add_subparsers(dest="what", metavar="WHAT")
    what.required = True
    m = what.add_parser("matte", help="SAD, MSE, gradient, connectivity, MAD and dtSSD of predicted mattes",
                        description="Compare predicted alpha mattes with true ones. SAD, Grad and Conn are "
                                    "reported divided by 1000 (alphamatting.com convention); with --trimap "
                                    "errors are taken over its unknown region only.")
    m.add_argument("--pred", required=True, help="predicted matte file or sequence pattern")
    m.add_argument("--truth", required=True, help="true matte file or sequence pattern")
    m.add_argument("--trimap", help="trimap file or sequence pattern (0 / 0.5 / 1)")
    m.add_argument("--frames", help="frames to compare, e.g. 1001-1010 (default: those present for --pred)")
    m.add_argument("--no-connectivity", action="store_true", help="skip the (slower) connectivity error")
    m.add_argument("--json", action="store_true", help="print JSON on stdout")
    m.set_defaults(func=cmd_eval_matte)


def read_matte(path: str) -> np.ndarray:
    """(H, W) float32 matte of an image file (see the module docstring for the channel rule)."""
    from ..io.images import read_image

    img = read_image(path)
    px = img.pixels
    if px.shape[2] == 1:
        return px[..., 0]
    if "A" in img.channels:
        a = img.channel("A")
        if not np.all(a == 1.0):
            return a
    return px[..., 0]


def _frames(pred, truth, frames_arg: str | None) -> list[int | None]:
    if frames_arg:
        import fileseq

        try:
            return [int(f) for f in fileseq.FrameSet(frames_arg)]
        except Exception:
            raise InputError(f"--frames: bad frame range {frames_arg!r}") from None
    if not pred.is_sequence:
        return [None]
    found = pred.frames or pred.scan()
    if not found:
        raise InputError(f"--pred {pred}: no frames found on disk")
    return list(found)


def evaluate_files(pred_pattern: str, truth_pattern: str, trimap_pattern: str | None = None, *,
                   frames: str | None = None, connectivity: bool = True) -> dict:
    """Metrics per frame, their mean and (for sequences) dtSSD, as a JSON-ready dict."""
    from ..io.sequence import SequencePattern

    pred = SequencePattern.parse(pred_pattern)
    truth = SequencePattern.parse(truth_pattern)
    tri = SequencePattern.parse(trimap_pattern) if trimap_pattern else None
    rows = []
    preds, truths = [], []
    for f in _frames(pred, truth, frames):
        p_path = pred.path(f) if f is not None else pred.path(0)
        t_path = truth.path(f) if (f is not None and truth.is_sequence) else truth.path(0)
        a = read_matte(p_path)
        g = read_matte(t_path)
        trimap = None
        if tri is not None:
            trimap = read_matte(tri.path(f) if (f is not None and tri.is_sequence) else tri.path(0))
        try:
            values = metrics.evaluate_matte(a, g, trimap, connectivity=connectivity)
        except InputError as exc:
            raise InputError(f"frame {f if f is not None else '-'} ({p_path} vs {t_path}): {exc}") from None
        rows.append({"frame": f, "pred": p_path, "truth": t_path, **values})
        preds.append(a)
        truths.append(g)
    keys = [k for k in ("SAD", "MSE", "Grad", "Conn", "MAD") if k in rows[0]]
    mean = {k: float(np.mean([r[k] for r in rows])) for k in keys}
    out = {"frames": rows, "mean": mean, "count": len(rows)}
    if len(rows) > 1:
        out["dtSSD"] = metrics.dtssd(preds, truths)
    return out


def cmd_eval_matte(args) -> int:
    result = evaluate_files(args.pred, args.truth, args.trimap, frames=args.frames,
                            connectivity=not args.no_connectivity)
    if args.json:
        json.dump(result, sys.stdout, indent=2)
        sys.stdout.write("\n")
        return 0
    keys = list(result["mean"])
    head = f"{'frame':>8} " + " ".join(f"{k:>10}" for k in keys)
    print(head)
    for r in result["frames"]:
        label = "-" if r["frame"] is None else str(r["frame"])
        print(f"{label:>8} " + " ".join(f"{r[k]:>10.4f}" for k in keys))
    if result["count"] > 1:
        print(f"{'mean':>8} " + " ".join(f"{result['mean'][k]:>10.4f}" for k in keys))
        print(f"dtSSD {result['dtSSD']:.5f}")
    print("(SAD, Grad and Conn divided by 1000)")
    return 0
