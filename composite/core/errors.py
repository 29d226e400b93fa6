"""Errors raised by composite.

Two families matter to callers and to the CLI's exit codes:

* :class:`InputError` (exit code 2): the user's input is wrong — a recipe key, a missing frame, a
  corrupt file, an unknown colour space, a wrong image state. The message names the file, frame or
  key and says what to do.
* :class:`RenderError` (exit code 1): the input was valid but rendering failed.
"""

from __future__ import annotations


class CompositeError(Exception):
    """Base class of every error composite raises on purpose."""

    exit_code = 1


class InputError(CompositeError, ValueError):
    """Bad input: recipe, file, frame, parameter or image state. CLI exit code 2."""

    exit_code = 2


class RecipeError(InputError):
    """A recipe (file or Python-built pipeline) is invalid.

    ``source`` is the recipe file (or ``"<python>"``), ``key`` the dotted key path inside it, e.g.
    ``stages.key.params.screen``.
    """

    def __init__(self, message: str, *, source: str | None = None, key: str | None = None):
        self.source = source
        self.key = key
        where = ", ".join(part for part in (source, f"key {key}" if key else None) if part)
        super().__init__(f"{where}: {message}" if where else message)


class StateError(InputError):
    """An image arrived in a state (alpha, colour space, channels) a stage does not accept."""


class MissingFrameError(InputError):
    """A frame of a sequence does not exist on disk and the missing-frame policy is ``error``."""


class NonFiniteError(InputError):
    """NaN or Inf pixels were found and the policy is ``error``."""


class ChecksumError(InputError):
    """A file (model checkpoint, manifest entry) does not match its recorded sha256."""


class RenderError(CompositeError, RuntimeError):
    """Rendering failed for a reason other than bad input. CLI exit code 1."""
