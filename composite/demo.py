"""``python -m composite.demo`` (``make demo``): render the greenscreen_battle recipe on the footage shipped
in ``sample_footage/`` and say where the results are.

Run from a source checkout; the outputs go to ``renders/greenscreen_battle/`` under the current folder.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from .core.errors import CompositeError


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m composite.demo", description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="renders/greenscreen_battle", help="output folder")
    parser.add_argument("--force", action="store_true", help="re-render frames that are up to date")
    args = parser.parse_args(argv)
    import logging

    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    from .graph.recipe import load_recipe, parse_overrides

    out = Path(args.out)
    overrides = parse_overrides([f"write.path={out}/battle.####.exr", f"review.path={out}/battle.mp4",
                                 f"sheet.path={out}/battle_sheet.png"])
    try:
        pipeline = load_recipe("greenscreen_battle", overrides=overrides)
        print(f"composite demo: rendering {pipeline.name} ({len(pipeline.nodes)} stages) on sample_footage/, "
              f"frames {pipeline.frames}", flush=True)
        t0 = time.perf_counter()
        report = pipeline.render(force=args.force, progress=None)
    except CompositeError as exc:
        print(f"composite demo: error: {exc}", file=sys.stderr)
        return exc.exit_code
    elapsed = time.perf_counter() - t0
    print(f"composite demo: {report.summary()}")
    if report.rendered:
        print(f"composite demo: {len(report.rendered) / elapsed:.2f} frames/s including file I/O "
              f"({elapsed / len(report.rendered) * 1000:.0f} ms/frame)")
    print(f"  EXR frames (rgba, alpha, depth, ai_coverage): {out}/battle.####.exr")
    print(f"  review movie:                                 {out}/battle.mp4")
    print(f"  contact sheet:                                {out}/battle_sheet.png")
    print(f"  provenance manifest:                          {out}/battle.exr.provenance/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
