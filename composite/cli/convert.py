"""``composite convert``: convert files, sequences and movies (colour, alpha, format, compression)."""

from __future__ import annotations

import argparse
import sys


def register(sub) -> None:
    from ..io.exr import COMPRESSIONS

    p = sub.add_parser(
        "convert", help="convert an image, sequence or movie (colour space, format, compression)",
        description="Convert IN to OUT, like a small oiiotool: files, sequences (plate.####.exr) and movies. "
                    "Colour goes through OCIO; alpha is premultiplied for EXR and straight for other formats. "
                    "Nothing is written unless every frame converts.")
    p.add_argument("input", metavar="IN")
    p.add_argument("output", metavar="OUT")
    p.add_argument("--from-colorspace", dest="from_space", help="colour space of IN (default: from the file)")
    p.add_argument("--to-colorspace", dest="to_space", help="colour space of OUT (default: IN's; sRGB for "
                   "scene-linear input written to PNG/JPEG/TIFF)")
    p.add_argument("--display", help="apply this OCIO display (with --view) instead of --to-colorspace")
    p.add_argument("--view", help="OCIO view with --display")
    p.add_argument("--compression", default="zip", choices=tuple(COMPRESSIONS), help="EXR compression (default zip)")
    p.add_argument("--pixel-type", choices=("half", "float"), help="EXR pixel type (default: as IN)")
    p.add_argument("--bits", choices=("uint8", "uint10", "uint12", "uint16", "half", "float"),
                   help="bit depth of non-EXR output (default: as IN)")
    p.add_argument("--alpha", choices=("premultiplied", "straight"), help="alpha association of OUT")
    p.add_argument("--frames", help="frames of a sequence to convert (default: all on disk)")
    p.add_argument("--missing", choices=("error", "hold", "black"), default="error",
                   help="what a missing frame of a sequence does (default: error)")
    p.add_argument("--start-frame", type=int, default=1001, help="frame number of a movie's first frame")
    p.add_argument("--part", help="EXR part (index or name)")
    p.add_argument("--exr-view", help="EXR view (stereo files)")
    p.add_argument("--rate", type=float, help="frame rate of an output movie (default 24)")
    p.add_argument("--codec", choices=("h264", "prores"), default="h264", help="codec of an output movie")
    p.add_argument("--deep", choices=("error", "flatten"), default="error", help="deep EXR input: refuse or flatten")
    p.add_argument("--no-check", action="store_true", help="do not stop when the format changes mid-sequence")
    p.add_argument("--ocio", help="OCIO config file (default: $OCIO, else the built-in ACES studio config)")
    p.set_defaults(func=cmd_convert)


def cmd_convert(args: argparse.Namespace) -> int:
    from ..io.convert import convert_path

    report = convert_path(args.input, args.output, from_space=args.from_space, to_space=args.to_space,
                          display=args.display, view=args.view, compression=args.compression,
                          pixel_type=args.pixel_type, bits=args.bits, alpha=args.alpha, frames=args.frames,
                          missing=args.missing, start_frame=args.start_frame, part=args.part,
                          exr_view=args.exr_view, check_format=not args.no_check, rate=args.rate,
                          config=args.ocio, codec=args.codec, deep=args.deep)
    n = len(report.frames)
    print(f"composite: converted {n} frame(s) {args.input} -> {args.output} "
          f"({report.source_space} -> {report.target_space})", file=sys.stderr)
    return 0
