"""``composite info``: describe a plate, sequence, movie or timeline."""

from __future__ import annotations

import argparse
import json


def register(sub) -> None:
    p = sub.add_parser(
        "info", help="describe an image, sequence, movie or timeline",
        description="Describe PATH: format, resolution, data/display windows, pixel aspect, channels, layers and "
                    "their types, compression, colour space and metadata; for sequences (plate.####.exr, "
                    "plate.%%04d.exr) the frame range and gaps; for movies codec, rate and frame count; for "
                    "timelines (.otio, .edl) the shots.")
    p.add_argument("path", nargs="?", help="file, sequence pattern, movie or timeline")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.add_argument("--check", action="store_true",
                   help="sequences: read every frame and report resolution/channel/bit-depth changes")
    p.add_argument("--rate", type=float, default=None, help="frame rate of an EDL (default: inferred)")
    p.add_argument("--handles", type=int, default=0, help="timelines: handles added to each shot's frames")
    p.add_argument("--colorspaces", action="store_true",
                   help="list the colour spaces, displays and views of the OCIO config ($OCIO or built-in)")
    p.set_defaults(func=cmd_info)


def cmd_info(args: argparse.Namespace) -> int:
    from ..core.errors import InputError

    if args.colorspaces:
        from ..color import ocio

        cfg = ocio.get_config()
        data = {"config": cfg.getName(), "colorspaces": ocio.colorspace_names(),
                "displays": {d: ocio.view_names(d) for d in ocio.display_names()}}
        if args.json:
            print(json.dumps(data, indent=2))
        else:
            print(f"OCIO config: {data['config']}")
            print("colour spaces:\n" + "\n".join(f"  {n}" for n in data["colorspaces"]))
            print("displays / views:")
            for d, views in data["displays"].items():
                print(f"  {d}: {', '.join(views)}")
        if not args.path:
            return 0
    if not args.path:
        raise InputError("composite info needs a PATH (or --colorspaces)")
    from ..io.info import describe_path, format_description

    info = describe_path(args.path, check=args.check, rate=args.rate, handles=args.handles)
    if args.json:
        print(json.dumps(info, indent=2, default=str))
    else:
        print(format_description(info))
    return 0
