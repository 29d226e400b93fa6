"""Frame model, state, errors and the core pixel operations."""

from .errors import (
    ChecksumError,
    CompositeError,
    InputError,
    MissingFrameError,
    NonFiniteError,
    RecipeError,
    RenderError,
    StateError,
)
from .image import ALPHA_ASSOCIATED_LAYERS, RGB, RGBA, Image, Layer, Window
from .state import RAW_SPACE, WORKING_SPACE, AlphaState

__all__ = [
    "ALPHA_ASSOCIATED_LAYERS", "RAW_SPACE", "RGB", "RGBA", "WORKING_SPACE", "AlphaState", "ChecksumError",
    "CompositeError", "Image", "InputError", "Layer", "MissingFrameError", "NonFiniteError", "RecipeError",
    "RenderError", "StateError", "Window",
]
