"""Argument parsing and error handling for the ``composite`` command.

Exit codes: 0 success, 1 render failure, 2 bad input (recipe, file, frame, parameter).
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from .. import __version__
from ..core.errors import CompositeError, InputError


def build_parser() -> argparse.ArgumentParser:
    from . import COMMAND_MODULES

    parser = argparse.ArgumentParser(
        prog="composite",
        description="Hybrid live-action/AI compositing: render recipes, inspect and convert plates, "
                    "evaluate mattes, export farm jobs, benchmark.",
    )
    parser.add_argument("--version", action="version", version=f"composite {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    parser.add_argument("-q", "--quiet", action="store_true", help="warnings and errors only")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def run(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    level = logging.DEBUG if args.verbose else logging.WARNING if args.quiet else logging.INFO
    logging.basicConfig(level=level, format="%(message)s", stream=sys.stderr, force=True)
    try:
        return int(args.func(args) or 0)
    except CompositeError as exc:
        print(f"composite: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except (FileNotFoundError, PermissionError, IsADirectoryError) as exc:
        print(f"composite: error: {exc}", file=sys.stderr)
        return InputError.exit_code
    except KeyboardInterrupt:
        print("composite: interrupted", file=sys.stderr)
        return 130
