"""``composite bench``: run the benchmark suites of a source checkout (``benchmarks/``).

Same options as ``python -m benchmarks`` (see benchmarks/README.md)::

    composite bench [--quick] [--suite NAME] [--case TEXT] [--json PATH] [--threads N] [--list]

The benchmarks live beside the package in the repository, not in the installed wheel; the command finds
them from the current directory or from the checkout the package was installed from (editable installs).
"""

from __future__ import annotations

import sys
from pathlib import Path

from ..core.errors import InputError


def _roots() -> list[Path]:
    here = Path(__file__).resolve().parents[2]
    return [Path.cwd(), here]


def _harness():
    """Import ``benchmarks.harness`` from a checkout, or None."""
    try:
        from benchmarks import harness

        return harness
    except ImportError:
        pass
    for root in _roots():
        if (root / "benchmarks" / "harness.py").is_file():
            if str(root) not in sys.path:
                sys.path.insert(0, str(root))
            try:
                from benchmarks import harness

                return harness
            except ImportError:
                continue
    return None


def register(sub) -> None:
    p = sub.add_parser("bench", help="run the throughput, memory and graph-overhead benchmarks",
                       description="Run benchmarks/suite_*.py: ms/frame, frames/s and peak memory per stage and "
                                   "per pipeline, the graph's overhead per stage, peers side by side. Writes JSON "
                                   "and markdown under benchmarks/results/.")
    harness = _harness()
    if harness is not None:
        harness.add_arguments(p)
    else:  # outside a checkout: keep the documented options so --help works, fail clearly on run
        p.add_argument("--quick", action="store_true")
        p.add_argument("--suite", action="append", dest="suites")
        p.add_argument("--json", dest="json_path")
    p.set_defaults(func=cmd_bench)


def cmd_bench(args) -> int:
    harness = _harness()
    if harness is None:
        raise InputError("composite bench: no benchmarks/ folder found; it ships with the source repository, "
                         "not the installed package. Run the command from the repository root "
                         f"(looked in {', '.join(str(r) for r in _roots())}).")
    return harness.main_from_args(args)
