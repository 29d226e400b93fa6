"""The ``composite`` command line."""

from __future__ import annotations

#: Subcommand modules; each exposes ``register(subparsers)``.
COMMAND_MODULES = (
    "composite.cli.render",
    "composite.cli.info",
    "composite.cli.convert",
    "composite.cli.eval",
    "composite.cli.farm",
    "composite.cli.bench",
    "composite.cli.provenance",
    "composite.temporal.cli",
)


def main(argv: list[str] | None = None) -> int:
    from .app import run

    return run(argv)
