"""The generator protocol: one interface for every backend that makes pixels for a plate.

A generator receives a :class:`PlateContext` (frame, format, camera or track, the region to fill,
prompt and seed) and returns an RGBA element — premultiplied, in the working colour space — with an
``ai_coverage`` layer saying which pixels it made, and a ``depth`` layer when it has depth. Its
:meth:`Generator.describe` record (backend, model card, checksum, prompt, seed, parameters) goes into
the element's metadata under ``composite:generators`` and from there into the render's provenance.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np
import opentimelineio as otio

from ..core.coverage import GENERATORS_KEY, mark_generated
from ..core.image import Image

__all__ = ["GENERATORS_KEY", "Generator", "GeneratorRecord", "PlateContext", "attach_record", "generator_records"]


@dataclass(frozen=True)
class PlateContext:
    """What a generator knows about the plate it fills.

    ``mask``: ``(H, W)`` float32 in [0, 1], 1 where pixels are wanted (None: the whole frame).
    ``camera``: a :class:`~composite.extend.camera.GroundCamera` or None; ``track``: a 3x3 matrix mapping
    the reference frame's pixels to this frame's (the plate's camera motion), or None.
    """

    frame: int
    width: int
    height: int
    rate: float = 24.0
    mask: np.ndarray | None = None
    camera: Any = None
    track: np.ndarray | None = None
    prompt: str = ""
    seed: int = 0
    plate: Image | None = None

    @property
    def time(self) -> otio.opentime.RationalTime:
        return otio.opentime.RationalTime(self.frame, self.rate)


@runtime_checkable
class Generator(Protocol):
    """A backend that generates an element for a plate context."""

    backend: str

    def describe(self) -> dict[str, Any]:
        """Provenance record: backend, model (card name, sha256), prompt, seed, parameters."""

    def generate(self, ctx: PlateContext) -> Image:
        """RGBA premultiplied working-space element with an ``ai_coverage`` layer (and ``depth`` if known)."""


@dataclass
class GeneratorRecord:
    """One generator's contribution, as stored in image metadata and provenance manifests."""

    backend: str
    generated: bool
    model: dict[str, Any] = field(default_factory=dict)
    prompt: str = ""
    seed: int | None = None
    params: dict[str, Any] = field(default_factory=dict)
    sources: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"backend": self.backend, "generated": self.generated, "model": self.model, "prompt": self.prompt,
                "seed": self.seed, "params": self.params, "sources": self.sources}


def attach_record(image: Image, record: GeneratorRecord | dict[str, Any], *, generated_fraction: float | None = None) -> Image:
    """Add a generator record to ``image.metadata[GENERATORS_KEY]`` (a JSON list) and, when
    ``generated_fraction`` is given, set the coverage layer to alpha × fraction."""
    rec = record.as_dict() if isinstance(record, GeneratorRecord) else dict(record)
    records = generator_records(image)
    if rec not in records:
        records.append(rec)
    out = image.with_metadata(**{GENERATORS_KEY: json.dumps(records, sort_keys=True)})
    if generated_fraction is not None:
        out = mark_generated(out, generated_fraction)
    return out


def generator_records(image: Image) -> list[dict[str, Any]]:
    """The generator records carried by an image (merged images carry both inputs' records)."""
    raw = image.metadata.get(GENERATORS_KEY)
    if not raw:
        return []
    return list(json.loads(raw)) if isinstance(raw, str) else list(raw)
