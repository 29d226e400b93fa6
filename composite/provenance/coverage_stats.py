"""Per-frame and per-shot statistics of the ``ai_coverage`` layer.

A frame's coverage is measured over its *display window* (pixels of the display window outside the
data window count as 0): ``mean`` is the generated share of the frame's area (for an opaque frame, the
fraction of the picture that came from a generator), ``max`` the largest per-pixel value and ``area``
the share of display pixels with any generated contribution (coverage > 1e-6). Sums run in float64 and
values are rounded to 6 decimals, so the same pixels always give the same numbers (and the same text
in EXR headers and manifests), whichever chunk rendered them.

Example
-------
>>> import numpy as np
>>> from composite.core import Image
>>> from composite.core.coverage import with_coverage
>>> img = with_coverage(Image(np.ones((2, 4, 4), np.float32)), np.array([[1, 1, 0, 0], [0.5, 0, 0, 0]], np.float32))
>>> coverage_summary(img)
{'mean': 0.3125, 'max': 1.0, 'area': 0.375}
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from ..core.coverage import COVERAGE_LAYER
from ..core.image import Image

#: Coverage above this counts as "generated" for ``area`` and for classification.
AREA_THRESHOLD = 1e-6
_DECIMALS = 6


def _round(value: float) -> float:
    value = float(value)
    return 0.0 if value == 0.0 else round(value, _DECIMALS)


def coverage_summary_array(coverage: np.ndarray, *, display_pixels: int | None = None) -> dict[str, float]:
    """Summary of a ``(H, W)`` float32 coverage array (associated with alpha, scene-independent data).

    ``display_pixels``: the number of pixels the mean and area are taken over (default: the array's
    size); pixels beyond the array count as 0. Non-finite values are an error of the caller's pipeline
    and count as 0 here rather than poisoning the statistics.
    """
    cov = np.asarray(coverage, np.float32)
    n = int(display_pixels if display_pixels is not None else cov.size)
    if n <= 0 or cov.size == 0:
        return {"mean": 0.0, "max": 0.0, "area": 0.0}
    finite = np.where(np.isfinite(cov), cov, np.float32(0))
    total = float(finite.sum(dtype=np.float64))
    area = int(np.count_nonzero(finite > AREA_THRESHOLD))
    peak = float(finite.max()) if finite.size else 0.0
    return {"mean": _round(total / n), "max": _round(max(peak, 0.0)), "area": _round(area / n)}


def coverage_summary(image: Image) -> dict[str, float]:
    """``{"mean", "max", "area"}`` of an image's ``ai_coverage`` over its display window (zeros when the
    image has no coverage layer)."""
    layer = image.layers.get(COVERAGE_LAYER)
    disp = image.display_window
    n = disp.width * disp.height
    if layer is None:
        return {"mean": 0.0, "max": 0.0, "area": 0.0}
    inter = image.data_window.intersect(disp)
    if inter.empty:
        return {"mean": 0.0, "max": 0.0, "area": 0.0}
    dw = image.data_window
    cov = layer.pixels[inter.ymin - dw.ymin: inter.ymax - dw.ymin + 1,
                       inter.xmin - dw.xmin: inter.xmax - dw.xmin + 1, 0]
    return coverage_summary_array(cov, display_pixels=n)


def shot_coverage(frames: Mapping[Any, Mapping[str, Any]] | Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """Shot statistics from per-frame summaries: mean of the frames' means, peak of their maxima,
    the number of frames and of frames with generated pixels (``max > 0``)."""
    items = list(frames.values()) if isinstance(frames, Mapping) else list(frames)
    covs = [f.get("ai_coverage") or {} for f in items]
    if not covs:
        return {"frames": 0, "generated_frames": 0, "mean": 0.0, "peak": 0.0}
    means = [float(c.get("mean", 0.0)) for c in covs]
    peaks = [float(c.get("max", 0.0)) for c in covs]
    return {"frames": len(covs), "generated_frames": sum(1 for p in peaks if p > 0.0),
            "mean": _round(float(np.mean(np.asarray(means, np.float64)))), "peak": _round(max(peaks))}
