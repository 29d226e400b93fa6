"""``composite render``, ``composite validate`` and ``composite stages``."""

from __future__ import annotations

import argparse
import json
import os
import sys

from ..graph.recipe import load_recipe, parse_overrides


def register(sub) -> None:
    p = sub.add_parser("render", help="render a recipe over a frame range",
                       description="Render RECIPE (a file or the name of a shipped recipe) over a frame range. "
                                   "Frames whose outputs exist with the same fingerprint are skipped.")
    p.add_argument("recipe", help="recipe file, or the name of a recipe in pipelines/")
    p.add_argument("--frames", help="frame range, e.g. 1001-1100 (default: the recipe's 'frames')")
    p.add_argument("--chunk-size", type=int, default=None, help="frames per chunk (each chunk renders independently)")
    p.add_argument("--workers", type=int, default=1, help="worker processes rendering chunks in parallel")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="STAGE.PARAM=VALUE",
                   help="override a stage parameter (repeatable), e.g. --set plate.path=plates/a.####.exr")
    p.add_argument("--force", action="store_true", help="re-render frames that are up to date")
    p.add_argument("--progress", choices=("auto", "bar", "log"), default="auto",
                   help="progress bar on a terminal (auto), always a bar, or plain log lines")
    p.add_argument("--json", action="store_true", help="print the render report as JSON on stdout")
    p.add_argument("--executor", choices=("local", "ray"), default="local",
                   help="where chunks render: local worker processes, or a Ray cluster (one actor per worker)")
    p.add_argument("--address", default=None,
                   help="Ray cluster address (auto, HOST:PORT); default: start a local Ray instance")
    p.add_argument("--device", default=None, metavar="DEVICE",
                   help="where stages with torch implementations run: cpu (NumPy, the default), cuda, cuda:N, auto "
                        "or torch-cpu (default: $COMPOSITE_DEVICE); see docs/gpu.md")
    t = p.add_argument_group("timelines", "render the recipe for every shot of an edit")
    t.add_argument("--timeline", metavar="EDIT", help="timeline (.otio, .edl): render every shot, retargeting the "
                   "plate path, frames and output paths; write a timeline referencing the comp renders")
    t.add_argument("--timeline-out", metavar="OTIO", help="conformed timeline (default: <edit>_comp.otio here)")
    t.add_argument("--handles", type=int, default=0, help="frames added before and after each shot")
    t.add_argument("--edl-rate", type=float, default=None, help="frame rate of an EDL (default: inferred)")
    t.add_argument("--plate-node", help="the recipe's plate reader (default: its only ReadImage)")
    t.add_argument("--shot", dest="shots", action="append", default=None, help="render only this shot (repeatable)")
    p.set_defaults(func=cmd_render)

    v = sub.add_parser("validate", help="check a recipe without rendering")
    v.add_argument("recipe")
    v.add_argument("--set", dest="overrides", action="append", default=[], metavar="STAGE.PARAM=VALUE")
    v.add_argument("--print", dest="print_recipe", action="store_true", help="print the resolved recipe")
    v.set_defaults(func=cmd_validate)

    s = sub.add_parser("stages", help="list stage types, or describe one")
    s.add_argument("name", nargs="?")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_stages)


def cmd_render(args: argparse.Namespace) -> int:
    device = getattr(args, "device", None)
    if not device:
        return _cmd_render(args)
    from ..gpu.device import check_name

    check_name(device)
    # Pipelines built by this command, here and in its worker processes, read $COMPOSITE_DEVICE.
    previous = os.environ.get("COMPOSITE_DEVICE")
    os.environ["COMPOSITE_DEVICE"] = device
    try:
        return _cmd_render(args)
    finally:
        if previous is None:
            os.environ.pop("COMPOSITE_DEVICE", None)
        else:
            os.environ["COMPOSITE_DEVICE"] = previous


def _cmd_render(args: argparse.Namespace) -> int:
    progress = {"auto": None, "bar": True, "log": False}[args.progress]
    if args.timeline:
        from ..io.conform import render_timeline

        result = render_timeline(args.recipe, args.timeline, output=args.timeline_out, handles=args.handles,
                                 rate=args.edl_rate, plate_node=args.plate_node, shots=args.shots,
                                 overrides=parse_overrides(args.overrides), chunk_size=args.chunk_size,
                                 workers=args.workers, force=args.force, progress=progress,
                                 executor=args.executor, address=args.address)
        if args.json:
            json.dump(result.as_dict(), sys.stdout, indent=2, default=str)
            print()
        else:
            print(result.summary(), file=sys.stderr)
        return 0
    pipeline = load_recipe(args.recipe, overrides=parse_overrides(args.overrides))
    report = pipeline.render(args.frames, chunk_size=args.chunk_size, workers=args.workers, force=args.force,
                             progress=progress, executor=getattr(args, "executor", "local"),
                             address=getattr(args, "address", None))
    if args.json:
        json.dump({"frames": report.frames, "rendered": report.rendered, "skipped": report.skipped,
                   "written": sorted(set(report.written)), "elapsed_s": round(report.elapsed, 4),
                   "fps": round(report.fps, 3)}, sys.stdout, indent=2)
        print()
    else:
        print(f"composite: {report.summary()}", file=sys.stderr)
    return 0


def cmd_validate(args: argparse.Namespace) -> int:
    from ..graph.recipe import dump_recipe

    pipeline = load_recipe(args.recipe, overrides=parse_overrides(args.overrides))
    for name in pipeline.topological_order():
        node = pipeline.nodes[name]
        if node.stage.is_source:
            node.stage.frame_range()  # sequences exist and have frames
    if args.print_recipe:
        print(dump_recipe(pipeline), end="")
    outs = pipeline.output_nodes()
    print(f"{pipeline.source}: valid ({len(pipeline.nodes)} stages, outputs: {', '.join(outs) or 'none'})")
    return 0


def _describe(cls) -> dict:
    doc = (cls.__doc__ or "").strip()
    return {
        "type": cls.type_name,
        "version": cls.version,
        "doc": doc.splitlines()[0] if doc else "",
        "inputs": {k: {"doc": v.doc, "optional": v.optional, "temporal_window": v.window,
                       "alpha": [str(a) for a in v.alpha] if v.alpha else "any"} for k, v in cls.inputs.items()},
        "outputs": list(cls.outputs),
        "params": {k: {"type": v.type_name, "default": v.default, "range": v.range,
                       "choices": list(v.choices) if v.choices else None, "doc": v.doc}
                   for k, v in cls.params.items()},
    }


def cmd_stages(args: argparse.Namespace) -> int:
    from ..graph.registry import get_stage_type, stage_types

    if args.name:
        cls = get_stage_type(args.name)
        info = _describe(cls)
        if args.json:
            print(json.dumps(info, indent=2, default=str))
            return 0
        print(f"{info['type']} (version {info['version']})")
        doc = (cls.__doc__ or "").strip()
        if doc:
            print("\n".join("  " + line.strip() for line in doc.splitlines()))
        print("inputs:")
        for k, v in info["inputs"].items():
            extra = " (optional)" if v["optional"] else ""
            extra += f" (temporal window: {v['temporal_window']})" if v["temporal_window"] else ""
            print(f"  {k}{extra}: {v['doc']}")
        print("outputs: " + (", ".join(info["outputs"]) or "(files)"))
        print("params:")
        for k, spec in cls.params.items():
            print(f"  {k}: {spec.describe()}" + (f" — {spec.doc}" if spec.doc else ""))
        return 0
    types = stage_types()
    if args.json:
        print(json.dumps({k: _describe(v) for k, v in types.items()}, indent=2, default=str))
        return 0
    width = max(len(k) for k in types)
    for name, cls in types.items():
        doc = (cls.__doc__ or "").strip().splitlines()
        print(f"{name:<{width}}  {doc[0] if doc else ''}")
    return 0
