"""composite: hybrid live-action/AI compositing.

Images are ``(H, W, C)`` float32 arrays in a scene-linear working space (ACEScg) with premultiplied
alpha, carried with explicit state (:class:`composite.core.Image`). Stages wrap pure array functions;
pipelines chain them into DAGs built in Python or from YAML recipes and render frame ranges
deterministically, in chunks, on one machine or a farm.
"""

__version__ = "0.1.0"

from .core import AlphaState, Image, Layer, Window  # noqa: E402
from .graph import Pipeline, Stage  # noqa: E402

__all__ = ["AlphaState", "Image", "Layer", "Pipeline", "Stage", "Window", "__version__"]
