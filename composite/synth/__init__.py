"""Synthetic footage with ground truth: screen plates, generated-looking backgrounds, crowd tiles.

Pure NumPy/OpenCV, deterministic for a seed, any resolution and length. Each frame is generated on its
own from the seed and its frame number, so chunked or parallel generation gives identical pixels.

* :func:`greenscreen_sequence`: an actor-like subject on a green or blue screen with the true alpha,
  unspilled foreground, clean screen, spill, grain and camera matrices.
* :func:`generated_background_sequence`: a procedural battlefield landscape with injected per-frame flicker
  (known global and regional gains) and an optional exposure ramp.
* :func:`crowd_tile`: a sprite sheet of small people-like figures (premultiplied RGBA, foot points).

``python -m composite.synth OUTDIR --kind greenscreen`` writes sequences as EXR files plus ``truth.json``
(see :mod:`composite.synth.write`).
"""

from .background import BackgroundFrame, BackgroundSequence, flicker_gain_field, generated_background_sequence
from .crowd import CrowdTile, Sprite, crowd_tile
from .greenscreen import GreenscreenFrame, GreenscreenSequence, greenscreen_sequence

__all__ = [
    "BackgroundFrame", "BackgroundSequence", "CrowdTile", "GreenscreenFrame", "GreenscreenSequence", "Sprite",
    "crowd_tile", "flicker_gain_field", "generated_background_sequence", "greenscreen_sequence",
]
