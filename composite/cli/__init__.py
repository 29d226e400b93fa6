"""The ``composite`` command line."""

from __future__ import annotations

#: Subcommand modules; each exposes ``register(subparsers)``.
COMMAND_MODULES = (
    "composite.cli.render",
    "composite.cli.eval",
    "composite.cli.bench",
    "composite.temporal.cli",
)


def main(argv: list[str] | None = None) -> int:
    from .app import run

    return run(argv)
