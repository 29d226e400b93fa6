"""Stages, pipelines (DAGs), recipes, fingerprints and the executor."""

from .params import Param
from .pipeline import Pipeline, Ref
from .registry import get_stage_type, register, stage_types
from .stage import ANY_ALPHA, PREMULTIPLIED_OR_OPAQUE, Input, OutputStage, Stage

__all__ = ["ANY_ALPHA", "PREMULTIPLIED_OR_OPAQUE", "Input", "OutputStage", "Param", "Pipeline", "Ref", "Stage",
           "get_stage_type", "register", "stage_types"]
