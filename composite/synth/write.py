"""Write synthetic footage to disk: EXR sequences plus ``truth.json``.

Layout of an output folder (``####`` is the 4-digit frame number)::

    greenscreen:  plate.####.exr   RGB   the camera's picture (grain included)
                  alpha.####.exr   A     true coverage (Raw)
                  fg.####.exr      RGBA  true unspilled foreground, premultiplied
                  screen.####.exr  RGB   clean screen plate
                  spill.####.exr   RGB   (optional pass) screen light added to the subject
                  grain.####.exr   RGB   (optional pass) the grain that was added
                  truth.json             parameters, camera matrices, marker positions, file patterns
    background:   bg.####.exr      RGB   the generated clip, with flicker
                  bg_clean.####.exr RGB  (optional pass) without flicker: what a deflicker should give
                  gain.####.exr    Y     (optional pass) the flicker gain, bg = bg_clean * gain
                  truth.json             parameters, per-frame gains, exposure, camera matrices
    crowd:        crowd_tile.exr   RGBA  premultiplied sprite sheet
                  crowd_tile.json        sprite boxes, foot points, heights

Colour is scene-linear ACEScg (recorded in each file's ``composite:colorspace`` attribute). Every file is
written to a temporary name and renamed into place.

Command line::

    python -m composite.synth OUTDIR --kind greenscreen --width 960 --height 540 --frames 24
    python -m composite.synth sample_footage --preset sample     # the footage shipped in the repository
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..core.errors import CompositeError, InputError
from .background import BackgroundSequence, generated_background_sequence
from .crowd import CrowdTile, crowd_tile
from .greenscreen import GreenscreenSequence, greenscreen_sequence

log = logging.getLogger("composite.synth")

GREENSCREEN_PASSES = ("plate", "alpha", "fg", "screen", "spill", "grain")
BACKGROUND_PASSES = ("bg", "bg_clean", "gain")
DEFAULT_GREENSCREEN_PASSES = ("plate", "alpha", "fg", "screen")
DEFAULT_BACKGROUND_PASSES = ("bg", "bg_clean")

#: Settings of the footage shipped in ``sample_footage/`` (``--preset sample``).
SAMPLE_PRESET: dict[str, Any] = {
    "width": 640, "height": 360, "frames": 12, "seed": 0, "pixel_type": "half", "grain": 0.25,
    "greenscreen_passes": ("plate", "alpha"), "background_passes": ("bg",),
    "plate_compression": "dwab", "truth_compression": "zip",
    "crowd_count": 12, "sprite_height": 96,
}


def _pattern(name: str) -> str:
    return f"{name}.####.exr"


def _path(outdir: Path, name: str, frame: int) -> Path:
    return outdir / f"{name}.{frame:04d}.exr"


def _write_json(path: Path, data: dict[str, Any]) -> None:
    from ..io.atomic import write_text_atomic

    write_text_atomic(path, json.dumps(data, indent=1, sort_keys=True) + "\n")


def _exr(path: Path, image, *, pixel_type: str, compression: str, metadata: dict[str, Any]) -> None:
    from ..io.exr import write_exr

    write_exr(path, image, pixel_type=pixel_type, compression=compression, metadata=metadata)


def _write_truth(seq, out: Path, passes: Sequence[str], *, pixel_type: str, compression: str,
                 plate_compression: str | None, command: str | None) -> Path:
    """``truth.json`` beside the passes: the sequence's truth, its file patterns and storage."""
    truth = seq.truth()
    truth["files"] = {name: _pattern(name) for name in passes}
    truth["storage"] = {"pixel_type": pixel_type, "compression": compression,
                        "plate_compression": plate_compression or compression}
    if command:
        truth["command"] = command
    _write_json(out / "truth.json", truth)
    return out / "truth.json"


def write_greenscreen(seq: GreenscreenSequence, outdir: str | os.PathLike, *,
                      passes: Sequence[str] = DEFAULT_GREENSCREEN_PASSES, pixel_type: str = "half",
                      compression: str = "zip", plate_compression: str | None = None,
                      command: str | None = None) -> list[Path]:
    """Write the passes of every frame of ``seq`` and ``truth.json`` into ``outdir``; returns the paths.

    ``plate_compression`` (default: ``compression``) lets the plate use a lossy codec (``dwab``) while the
    truth passes stay lossless.
    """
    unknown = [p for p in passes if p not in GREENSCREEN_PASSES]
    if unknown:
        raise InputError(f"unknown greenscreen pass {unknown[0]!r}; passes: {', '.join(GREENSCREEN_PASSES)}")
    out = Path(outdir)
    written: list[Path] = []
    meta = {"composite:synth": json.dumps({"kind": "greenscreen", "seed": seq.seed}),
            "composite:generator": "composite.synth"}
    for f in seq:
        imgs = f.images()
        imgs["grain"] = imgs["spill"].with_pixels(f.grain)
        for name in passes:
            comp = plate_compression if (name == "plate" and plate_compression) else compression
            path = _path(out, name, f.frame)
            _exr(path, imgs[name], pixel_type=pixel_type, compression=comp, metadata=meta)
            written.append(path)
        log.debug("greenscreen frame %d written", f.frame)
    written.append(_write_truth(seq, out, passes, pixel_type=pixel_type, compression=compression,
                                plate_compression=plate_compression, command=command))
    return written


def write_background(seq: BackgroundSequence, outdir: str | os.PathLike, *,
                     passes: Sequence[str] = DEFAULT_BACKGROUND_PASSES, pixel_type: str = "half",
                     compression: str = "zip", plate_compression: str | None = None,
                     command: str | None = None) -> list[Path]:
    """Write the background passes of every frame of ``seq`` and ``truth.json`` into ``outdir``."""
    unknown = [p for p in passes if p not in BACKGROUND_PASSES]
    if unknown:
        raise InputError(f"unknown background pass {unknown[0]!r}; passes: {', '.join(BACKGROUND_PASSES)}")
    out = Path(outdir)
    written: list[Path] = []
    meta = {"composite:synth": json.dumps({"kind": "background", "seed": seq.seed}),
            "composite:generator": "composite.synth"}
    for f in seq:
        imgs = f.images()
        for name in passes:
            comp = plate_compression if (name == "bg" and plate_compression) else compression
            path = _path(out, name, f.frame)
            pt = "float" if name == "gain" else pixel_type
            _exr(path, imgs[name], pixel_type=pt, compression=comp, metadata=meta)
            written.append(path)
        log.debug("background frame %d written", f.frame)
    written.append(_write_truth(seq, out, passes, pixel_type=pixel_type, compression=compression,
                                plate_compression=plate_compression, command=command))
    return written


def write_crowd_tile(tile: CrowdTile, outdir: str | os.PathLike, *, pixel_type: str = "half",
                     compression: str = "zip", command: str | None = None) -> list[Path]:
    """Write ``crowd_tile.exr`` (premultiplied RGBA) and ``crowd_tile.json`` (sprites) into ``outdir``."""
    out = Path(outdir)
    path = out / "crowd_tile.exr"
    _exr(path, tile.image(), pixel_type=pixel_type, compression=compression,
         metadata={"composite:synth": json.dumps({"kind": "crowd", "seed": tile.params["seed"]}),
                   "composite:generator": "composite.synth"})
    meta = tile.to_json()
    meta["file"] = "crowd_tile.exr"
    if command:
        meta["command"] = command
    _write_json(out / "crowd_tile.json", meta)
    return [path, out / "crowd_tile.json"]


def write_previews(outdir: str | os.PathLike, *, greenscreen: GreenscreenSequence | None = None,
                   background: BackgroundSequence | None = None, tile: CrowdTile | None = None,
                   frame: int | None = None) -> list[Path]:
    """PNG previews (display-referred, for viewing only) of one frame of each kind into ``outdir``."""
    import cv2

    from ..io.atomic import atomic_output
    from ._common import preview_matte, preview_srgb

    out = Path(outdir)
    out.mkdir(parents=True, exist_ok=True)
    paths = []

    def save(name, img):
        path = out / name
        with atomic_output(path) as tmp:
            if not cv2.imwrite(str(tmp), img):
                raise InputError(f"{path}: PNG could not be written")
        paths.append(path)

    if greenscreen is not None:
        f = greenscreen.frame(frame if frame is not None else greenscreen.frames[len(greenscreen) // 2])
        top = np.concatenate([preview_srgb(f.plate), preview_matte(f.alpha)], 1)
        grey = np.float32(0.18)
        bottom = np.concatenate([preview_srgb(f.fg + (1 - f.alpha) * grey), preview_srgb(f.screen)], 1)
        save("greenscreen_preview.png", np.concatenate([top, bottom], 0))
    if background is not None:
        f = background.frame(frame if frame is not None else background.frames[len(background) // 2])
        save("background_preview.png", np.concatenate([preview_srgb(f.image), preview_srgb(f.clean)], 1))
    if tile is not None:
        px = tile.pixels
        save("crowd_preview.png", preview_srgb(px[..., :3] + (1 - px[..., 3:]) * np.float32(0.18)))
    return paths


def _split(value: str) -> tuple[str, ...]:
    return tuple(v.strip() for v in value.split(",") if v.strip())


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="python -m composite.synth",
        description="Write synthetic footage with ground truth (EXR sequences plus truth.json).")
    ap.add_argument("outdir", help="output folder (created); with --kind all, subfolders greenscreen/, "
                                   "background/ and crowd/")
    ap.add_argument("--kind", choices=("greenscreen", "background", "crowd", "all"), default="greenscreen")
    ap.add_argument("--preset", choices=("sample",), help="the settings of the footage shipped in "
                                                          "sample_footage/ (implies --kind all)")
    ap.add_argument("--width", type=int, default=960)
    ap.add_argument("--height", type=int, default=540)
    ap.add_argument("--frames", type=int, default=24, help="number of frames (default 24)")
    ap.add_argument("--first-frame", type=int, default=1001)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--rate", type=float, default=24.0)
    ap.add_argument("--screen", choices=("green", "blue"), default="green")
    ap.add_argument("--camera-move", type=float, default=None, help="camera movement scale 0..2")
    ap.add_argument("--spill", type=float, default=0.3)
    ap.add_argument("--grain", type=float, default=1.0)
    ap.add_argument("--no-motion-blur", action="store_true")
    ap.add_argument("--hair-strands", type=int, default=300)
    ap.add_argument("--flicker", type=float, default=0.04)
    ap.add_argument("--regional-flicker", type=float, default=0.03)
    ap.add_argument("--exposure-ramp", type=float, default=0.0, help="stops over the background clip")
    ap.add_argument("--crowd-count", type=int, default=12)
    ap.add_argument("--sprite-height", type=int, default=96)
    ap.add_argument("--passes", default=None,
                    help=f"comma-separated passes; greenscreen: {','.join(GREENSCREEN_PASSES)} (default "
                         f"{','.join(DEFAULT_GREENSCREEN_PASSES)}); background: {','.join(BACKGROUND_PASSES)} "
                         f"(default {','.join(DEFAULT_BACKGROUND_PASSES)})")
    ap.add_argument("--pixel-type", choices=("half", "float"), default="half")
    ap.add_argument("--compression", default="zip", help="EXR compression of the truth passes (default zip)")
    ap.add_argument("--plate-compression", default=None,
                    help="EXR compression of plate/bg (default: --compression); e.g. dwab for small files")
    ap.add_argument("--preview", action="store_true", help="also write PNG previews of the middle frame")
    return ap


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    command = "python -m composite.synth " + " ".join(sys.argv[1:] if argv is None else list(argv))
    try:
        return _run(args, command)
    except CompositeError as exc:
        print(f"composite.synth: error: {exc}", file=sys.stderr)
        return exc.exit_code


def _run(args: argparse.Namespace, command: str) -> int:
    out = Path(args.outdir)
    t0 = time.perf_counter()
    gs_passes = bg_passes = None
    plate_comp = args.plate_compression
    if args.preset == "sample":
        p = SAMPLE_PRESET
        args.kind = "all"
        args.width, args.height, args.frames, args.seed = p["width"], p["height"], p["frames"], p["seed"]
        args.pixel_type, args.compression, args.grain = p["pixel_type"], p["truth_compression"], p["grain"]
        plate_comp = p["plate_compression"]
        gs_passes, bg_passes = p["greenscreen_passes"], p["background_passes"]
        args.crowd_count, args.sprite_height = p["crowd_count"], p["sprite_height"]
    elif args.passes:
        chosen = _split(args.passes)
        gs_passes = tuple(c for c in chosen if c in GREENSCREEN_PASSES) or None
        bg_passes = tuple(c for c in chosen if c in BACKGROUND_PASSES) or None
        unknown = [c for c in chosen if c not in GREENSCREEN_PASSES + BACKGROUND_PASSES]
        if unknown:
            raise InputError(f"--passes: unknown pass {unknown[0]!r}; passes: "
                             f"{', '.join(GREENSCREEN_PASSES + BACKGROUND_PASSES)}")
    kinds = ("greenscreen", "background", "crowd") if args.kind == "all" else (args.kind,)
    written: list[Path] = []
    gs = bg = tile = None
    for kind in kinds:
        sub = out / kind if args.kind == "all" else out
        if kind == "greenscreen":
            gs = greenscreen_sequence(args.width, args.height, args.frames, seed=args.seed, screen=args.screen,
                                      first_frame=args.first_frame, rate=args.rate,
                                      camera_move=1.0 if args.camera_move is None else args.camera_move,
                                      spill=args.spill, grain=args.grain, motion_blur=not args.no_motion_blur,
                                      hair_strands=args.hair_strands)
            written += write_greenscreen(gs, sub, passes=gs_passes or DEFAULT_GREENSCREEN_PASSES,
                                         pixel_type=args.pixel_type, compression=args.compression,
                                         plate_compression=plate_comp, command=command)
        elif kind == "background":
            bg = generated_background_sequence(args.width, args.height, args.frames, seed=args.seed,
                                               first_frame=args.first_frame, rate=args.rate,
                                               flicker=args.flicker, regional_flicker=args.regional_flicker,
                                               exposure_ramp=args.exposure_ramp,
                                               camera_move=0.6 if args.camera_move is None else args.camera_move)
            written += write_background(bg, sub, passes=bg_passes or DEFAULT_BACKGROUND_PASSES,
                                        pixel_type=args.pixel_type, compression=args.compression,
                                        plate_compression=plate_comp, command=command)
        else:
            tile = crowd_tile(count=args.crowd_count, sprite_height=args.sprite_height, seed=args.seed)
            written += write_crowd_tile(tile, sub, pixel_type=args.pixel_type, compression=args.compression,
                                        command=command)
        if args.preview:
            written += write_previews(sub, greenscreen=gs if kind == "greenscreen" else None,
                                      background=bg if kind == "background" else None,
                                      tile=tile if kind == "crowd" else None)
    size = sum(p.stat().st_size for p in written if p.exists())
    print(f"wrote {len(written)} files ({size / 1e6:.2f} MB) to {out} in {time.perf_counter() - t0:.1f} s")
    return 0
