"""Segment Anything (SAM) roto: models from model cards, prompts per keyframe, propagation between them.

* :mod:`~composite.matte.sam.model` — build vit_b / vit_l / vit_h from ``segment_anything.modeling``
  (never the package's top-level import, which needs torchvision) and load verified checkpoints;
* :mod:`~composite.matte.sam.predictor` — pre/post-processing, cached image embeddings, mask decoding;
* :mod:`~composite.matte.sam.prompts` — prompt files (points, boxes, mask hints per keyframe);
* :mod:`~composite.matte.sam.propagate` — carrying prompts between keyframes by optical flow or box
  tracking, re-prompting where SAM's predicted quality drops.

The pipeline stage is :class:`composite.matte.refine_stages.SamRoto`. torch and segment-anything are
imported only when a model is built.
"""

from .model import CONFIGS, LoadedSam, SamConfig, build_sam, load_sam, sam_modeling
from .predictor import Embedding, Prediction, SamSegmenter
from .prompts import Keyframe, load_prompts, parse_prompts
from .propagate import FrameResult, SamTracker

__all__ = ["CONFIGS", "Embedding", "FrameResult", "Keyframe", "LoadedSam", "Prediction", "SamConfig", "SamSegmenter",
           "SamTracker", "build_sam", "load_sam", "load_prompts", "parse_prompts", "sam_modeling"]
