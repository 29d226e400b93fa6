"""The ``ai_coverage`` layer: the fraction of each pixel that a generator produced.

The layer has one channel (``Y``) and is *associated with alpha*, like premultiplied colour: a
generated element of alpha ``a`` that is fully generated carries coverage ``a``. Merges therefore apply
the same arithmetic to it as to colour (``over``: ``cA + cB (1 - aA)``), transforms resample it like
colour, and colour operations leave it untouched. On a final opaque frame the layer's value is the
fraction of the pixel that came from a generator.
"""

from __future__ import annotations

import numpy as np

from .image import Image

COVERAGE_LAYER = "ai_coverage"
COVERAGE_CHANNELS = ("Y",)
#: Image metadata key holding the JSON list of generator records (backend, model, prompt, seed, ...).
GENERATORS_KEY = "composite:generators"


def union_generator_records(*metadatas) -> str | None:
    """The JSON union (in first-seen order) of the generator records of several metadata mappings."""
    import json

    merged: list = []
    for meta in metadatas:
        raw = meta.get(GENERATORS_KEY)
        if not raw:
            continue
        for rec in (json.loads(raw) if isinstance(raw, str) else raw):
            if rec not in merged:
                merged.append(rec)
    return json.dumps(merged, sort_keys=True) if merged else None


def coverage(image: Image) -> np.ndarray:
    """``(H, W)`` float32 coverage (associated with alpha); zeros when the image has no layer."""
    layer = image.layers.get(COVERAGE_LAYER)
    if layer is None:
        return np.zeros(image.pixels.shape[:2], np.float32)
    return layer.pixels[..., 0]


def with_coverage(image: Image, values: np.ndarray) -> Image:
    """The image with its coverage layer set to ``values`` (``(H, W)``, associated with alpha)."""
    return image.with_layer(COVERAGE_LAYER, np.ascontiguousarray(values, np.float32)[..., None], COVERAGE_CHANNELS)


def mark_generated(image: Image, fraction: float | np.ndarray = 1.0) -> Image:
    """Mark an element as generated: coverage = alpha × fraction (fraction 1: every pixel generated)."""
    return with_coverage(image, image.a * np.asarray(fraction, np.float32))


def coverage_fraction(image: Image) -> np.ndarray:
    """Coverage divided by alpha (unassociated fraction in [0, 1]); 0 where alpha is 0."""
    cov = coverage(image)
    a = image.a
    out = np.zeros_like(cov)
    np.divide(cov, a, out=out, where=a > 1e-6)
    return np.clip(out, 0.0, 1.0)


def reassociate(image: Image, before: Image) -> Image:
    """After an operation changed alpha without touching layers, keep each pixel's generated *fraction*
    from ``before`` and re-associate it with the new alpha (coverage = fraction × new alpha)."""
    if COVERAGE_LAYER not in before.layers:
        return image
    return with_coverage(image, coverage_fraction(before) * image.a)
