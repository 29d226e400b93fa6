"""Matting: keyers, despill, clean screen plates, roto shapes, matte operations and metrics.

Pure array functions live in the submodules (:mod:`~composite.matte.keyers`, :mod:`~composite.matte.despill`,
:mod:`~composite.matte.screen`, :mod:`~composite.matte.roto`, :mod:`~composite.matte.ops`,
:mod:`~composite.matte.metrics`); their pipeline stages in :mod:`composite.matte.stages`.
"""

from .despill import despill
from .keyers import KeyResult, key_color_difference, key_screen_subtract
from .metrics import connectivity_error, dtssd, evaluate_matte, gradient_error, mad, mse, sad
from .roto import Shape, load_shapes, rasterize
from .screen import estimate_clean_plate, estimate_screen_color

__all__ = [
    "KeyResult", "Shape", "connectivity_error", "despill", "dtssd", "estimate_clean_plate", "estimate_screen_color",
    "evaluate_matte", "gradient_error", "key_color_difference", "key_screen_subtract", "load_shapes", "mad", "mse",
    "rasterize", "sad",
]
