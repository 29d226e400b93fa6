"""``composite track``: track the camera (or a planar region) of a plate into a track file.

The plate is a stage of a recipe (a reader, or anything downstream of one). Frames are read in order,
once each; the track file (``composite.track/1`` JSON) is written atomically and is then read, frame by
frame, by the ``ApplyTrack`` stage (move a generated background with the plate's camera, or stabilise
the plate onto a reference frame)::

    composite track shot.yaml --node plate --frames 1001-1100 --out sh010.track.json \\
        --exclude key.matte --model homography
"""

from __future__ import annotations

import argparse
import logging

import numpy as np

from ..core.errors import InputError

log = logging.getLogger("composite.track")


def register(sub) -> None:
    p = sub.add_parser("track", help="track a plate's camera or a planar region into a track file",
                       description="Track the 2D camera motion of a plate (or of a planar region) through a "
                                   "frame range and write a composite.track/1 JSON file for ApplyTrack.")
    p.add_argument("recipe", help="recipe file (or shipped recipe name) holding the plate")
    p.add_argument("--node", required=True, help="stage whose output is the plate, e.g. plate or grade.image")
    p.add_argument("--frames", help="frame range, e.g. 1001-1100 (default: the recipe's frames)")
    p.add_argument("--out", required=True, help="track file to write (.json)")
    p.add_argument("--model", default="homography", choices=("translation", "similarity", "affine", "homography"))
    p.add_argument("--region", help="x,y,w,h of a planar region in the first frame (default: whole frame)")
    p.add_argument("--exclude", help="stage output that is non-zero where not to track, e.g. key.matte "
                                     "(the actor in front of a screen)")
    p.add_argument("--grow", type=int, default=4, help="pixels to grow the exclusion by (default 4)")
    p.add_argument("--max-points", type=int, default=400)
    p.add_argument("--on-failure", default="error", choices=("error", "hold"),
                   help="a frame that cannot be tracked: stop (default) or hold the previous transform")
    p.add_argument("--set", action="append", default=[], metavar="NODE.PARAM=VALUE",
                   help="override a recipe parameter (repeatable)")
    p.set_defaults(func=cmd_track)


def _ref(text: str) -> tuple[str, str | None]:
    node, _, output = text.partition(".")
    return node, (output or None)


def cmd_track(args: argparse.Namespace) -> int:
    import cv2

    from ..graph.executor import parse_frames
    from ..graph.recipe import load_recipe, parse_overrides
    from .track import track_sequence

    pipeline = load_recipe(args.recipe, overrides=parse_overrides(args.set))
    frames = parse_frames(args.frames, default=pipeline.frames)
    if frames != list(range(frames[0], frames[-1] + 1)):
        raise InputError(f"--frames must be a contiguous range for tracking, got {args.frames}")
    node, output = _ref(args.node)
    region = None
    if args.region:
        try:
            region = tuple(float(v) for v in args.region.split(","))
        except ValueError:
            region = ()
        if len(region) != 4:
            raise InputError(f"--region must be x,y,w,h, got {args.region!r}")
    exclude = None
    if args.exclude:
        ex_node, ex_output = _ref(args.exclude)
        kernel = np.ones((2 * args.grow + 1, 2 * args.grow + 1), np.uint8) if args.grow > 0 else None

        def exclude(t):
            m = pipeline.evaluate(ex_node, t, ex_output)
            a = m.channel("A") if "A" in m.channels else m.pixels[..., 0]
            mask = (a > 0.01).astype(np.uint8)
            return cv2.dilate(mask, kernel) if kernel is not None else mask

    def plate():
        for t in frames:
            img = pipeline.evaluate(node, t, output)
            log.info("composite: track frame %d", t)
            yield t, img.pixels

    track = track_sequence(plate(), model=args.model, region=region, max_points=args.max_points,
                           on_failure=args.on_failure, exclude=exclude)
    path = track.save(args.out)
    held = sum(1 for n in track.inliers[1:] if n == 0)
    print(f"composite: wrote {path} ({len(track.frames)} frames, {args.model}"
          f"{f', {held} held over failures' if held else ''})")
    return 0
