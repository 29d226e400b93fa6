"""The :class:`Stage` base class: declared inputs, outputs, parameters, temporal window and version.

A stage is the pipeline wrapper around a pure array function. Subclasses declare, as class data:

* ``inputs``: ``{name: Input(...)}`` with the image state each accepts and whether it is temporal;
* ``outputs``: output names (``("image",)`` by default);
* ``params``: ``{name: Param(...)}``;
* ``version``: bumped whenever the stage's output for the same inputs and parameters changes;

and implement :meth:`Stage.process`. Example::

    @register
    class Gain(Stage):
        \"\"\"Multiply colour by a constant.\"\"\"
        inputs = {"image": Input("image to scale", alpha=PREMULTIPLIED_OR_OPAQUE)}
        params = {"gain": Param(float, 1.0, range=(0, None))}

        def identity(self, t):
            return "image" if self.p.gain == 1.0 else None

        def process(self, t, image):
            return image.with_pixels(image.pixels * np.float32(self.p.gain))
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from ..core.errors import RecipeError, StateError
from ..core.image import Image
from ..core.state import WORKING_SPACE, AlphaState
from .params import Param, ParamValues, thaw

PREMULTIPLIED_OR_OPAQUE = (AlphaState.PREMULTIPLIED, AlphaState.OPAQUE)
ANY_ALPHA = tuple(AlphaState)


@dataclass(frozen=True)
class Input:
    """Declaration of a stage input.

    ``alpha``: accepted alpha states (None: any). ``colorspace``: ``"working"`` (the pipeline's working
    space), ``"any"`` or ``"raw"`` (data: mattes, depth). ``optional``: the stage runs without it.
    ``window``: name of an int parameter giving the temporal radius r; the input is then delivered as a
    ``dict`` frame → Image covering ``t - r .. t + r`` (clamped to the source's frame range).
    """

    doc: str = ""
    alpha: tuple[AlphaState, ...] | None = PREMULTIPLIED_OR_OPAQUE
    colorspace: str = "any"
    optional: bool = False
    window: str | None = None


class Stage:
    """Base class of every pipeline stage. See the module docstring."""

    type_name: ClassVar[str] = ""
    version: ClassVar[int] = 1
    inputs: ClassVar[dict[str, Input]] = {}
    outputs: ClassVar[tuple[str, ...]] = ("image",)
    params: ClassVar[dict[str, Param]] = {}
    #: Reads files or generates frames; its outputs are checked for NaN/Inf.
    is_source: ClassVar[bool] = False
    #: Writes files; the executor renders a pipeline by pulling its output stages.
    is_output: ClassVar[bool] = False
    #: Frames before the first rendered one that a stateful stage must see (rendered, not written).
    warmup_frames: ClassVar[int] = 0

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if "type_name" not in cls.__dict__ or not cls.__dict__["type_name"]:
            cls.type_name = cls.__name__

    def __init__(self, **params: Any):
        values = {}
        unknown = sorted(set(params) - set(self.params))
        if unknown:
            allowed = ", ".join(sorted(self.params)) or "(none)"
            raise RecipeError(f"{self.type_name} has no parameter {unknown[0]!r}; parameters: {allowed}",
                              key=f"params.{unknown[0]}")
        for name, spec in self.params.items():
            values[name] = spec.validate(params.get(name, spec.default), key=f"params.{name}")
        self.p = ParamValues(values)
        self.node_name: str = self.type_name
        #: Frame rate of the pipeline the stage belongs to (set by Pipeline.add).
        self.rate: float = 24.0
        #: Working colour space of the pipeline (set by Pipeline.add).
        self.working_space: str = WORKING_SPACE
        self.check_params()

    # -- hooks for subclasses ------------------------------------------------------------------
    def check_params(self) -> None:
        """Cross-parameter validation; raise :class:`RecipeError` with the key."""

    def process(self, t: int, **inputs: Any) -> Image | Mapping[str, Image]:
        """Compute the outputs at frame ``t``. Inputs are Images (dicts of frame → Image for windows)."""
        raise NotImplementedError(f"{self.type_name}.process")

    def identity(self, t: int) -> str | None:
        """Name of the input passed through unchanged at ``t`` with these parameters, or None."""
        return None

    def window(self, name: str) -> tuple[int, int]:
        """Temporal extent ``(before, after)`` in frames that input ``name`` needs around t."""
        spec = self.inputs[name]
        if spec.window is None:
            return (0, 0)
        r = int(self.p[spec.window])
        return (r, r)

    def frame_range(self) -> tuple[int, int] | None:
        """For sources: the first and last frame available (inclusive), or None when unbounded."""
        return None

    def source_identity(self, t: int) -> str:
        """For sources: a cheap identity of frame t's data (path, size, mtime), without reading pixels."""
        return ""

    def fingerprint_extra(self) -> str:
        """Anything else the output depends on: model weights' sha256, an OCIO processor cache id."""
        return ""

    # -- helpers ------------------------------------------------------------------------------
    def with_params(self, **changes: Any) -> Stage:
        return type(self)(**{**thaw(dict(self.p)), **changes})

    def param_dict(self) -> dict[str, Any]:
        """Parameters as plain values (for recipes)."""
        return {k: thaw(v) for k, v in self.p.items()}

    def canonical_params(self) -> str:
        return json.dumps(self.param_dict(), sort_keys=True, separators=(",", ":"), default=str)

    def time(self, t: int):
        """OpenTimelineIO RationalTime of frame ``t`` at the pipeline's rate."""
        import opentimelineio as otio

        return otio.opentime.RationalTime(t, self.rate)

    def rng(self, t: int, salt: str = "") -> np.random.Generator:
        """A random generator seeded by (stage type, node name, seed parameter, frame, salt).

        The same frame gets the same numbers in any process or chunk.
        """
        seed = self.p.get("seed", 0) if "seed" in self.params else 0
        h = hashlib.sha256(f"{self.type_name}|{self.node_name}|{seed}|{int(t)}|{salt}".encode()).digest()
        return np.random.default_rng(np.frombuffer(h[:16], dtype=np.uint32))

    def check_input(self, name: str, image: Image, working_space: str) -> None:
        """Raise :class:`StateError` naming both states when ``image`` is not what input ``name`` accepts."""
        spec = self.inputs[name]
        who = f"{self.node_name} ({self.type_name}) input {name!r}"
        if spec.alpha is not None and image.alpha not in spec.alpha:
            want = " or ".join(str(a) for a in spec.alpha)
            raise StateError(f"{who}: expects alpha {want}, got {image.alpha}")
        if spec.colorspace == "working" and image.colorspace != working_space:
            raise StateError(f"{who}: expects colour space {working_space}, got {image.colorspace}")

    def __repr__(self) -> str:
        return f"{self.type_name}({', '.join(f'{k}={v!r}' for k, v in self.param_dict().items())})"


class OutputStage(Stage):
    """A stage that writes files. The executor pulls a pipeline through its output stages.

    Subclasses implement :meth:`output_paths`, :meth:`existing_fingerprint` and :meth:`write`; ``write``
    must put each file in place atomically (temporary name, then rename) and record ``fingerprint`` in it.
    """

    is_output = True
    outputs = ()
    #: One file holds every frame (a review movie): after concurrent chunks, the executor completes it
    #: in a single pass.
    whole_range: ClassVar[bool] = False

    def output_paths(self, t: int) -> list[str]:
        raise NotImplementedError

    def existing_fingerprint(self, t: int) -> str | None:
        """The fingerprint recorded in the finished output of frame t, or None when absent/unreadable."""
        raise NotImplementedError

    def write(self, t: int, *, fingerprint: str, **inputs: Any) -> list[str]:
        raise NotImplementedError

    def begin(self, frames: list[int]) -> None:
        """Called once before a render (or chunk) writes its frames."""

    def finish(self, frames: list[int]) -> list[str]:
        """Called once after a render (or chunk); may write per-render files (a review movie). Returns paths."""
        return []
