"""Temporal tools: optical flow, stable mattes, deflicker, tracking and track smoothing, scene cuts.

Everything reads a bounded window of neighbouring frames, never a whole history, so chunked renders
are bit-identical to whole ones.

* :mod:`~composite.temporal.flow`: DIS optical flow, forward/backward consistency, occlusion masks;
  :mod:`~composite.temporal.warp`: warping images and mattes along flow;
  :mod:`~composite.temporal.learned_flow`: a hook for learned flow models (model card + checkpoint).
* :mod:`~composite.temporal.matte_smooth`: flow-guided temporal filtering of mattes.
* :mod:`~composite.temporal.deflicker`: global and per-tile deflicker that keeps real changes.
* :mod:`~composite.temporal.track`: point and planar tracking, camera tracks, stabilisation;
  :mod:`~composite.temporal.smooth`: Savitzky–Golay and Kalman smoothing over bounded windows.
* :mod:`~composite.temporal.cuts`: scene-cut detection.
* :mod:`~composite.temporal.metrics`: flicker index, flow-warping error, dtSSD, MAD.
* :mod:`~composite.temporal.stages`: the pipeline stages (OpticalFlow, TemporalMatteSmooth, Deflicker,
  Stabilize, ApplyTrack).
"""

from .cuts import cut_score, is_cut, shot_frames
from .deflicker import apply_gains, deflicker, estimate_flicker_gains
from .flow import FLOW_PRESETS, FlowPair, compose_flows, estimate_flow, estimate_flow_pair, flow_occlusion
from .matte_smooth import smooth_matte_temporal
from .metrics import dtssd, flicker_index, flow_warping_error, mad, mse
from .smooth import kalman_window, savgol_window, smooth_kalman, smooth_savgol
from .track import (
    Track,
    TrackingError,
    estimate_transform,
    smooth_transforms,
    stabilize_matrix,
    track_points,
    track_sequence,
)
from .warp import warp, warp_matte

__all__ = [
    "FLOW_PRESETS", "FlowPair", "Track", "TrackingError", "apply_gains", "compose_flows", "cut_score", "deflicker", "dtssd",
    "estimate_flicker_gains", "estimate_flow", "estimate_flow_pair", "estimate_transform", "flicker_index",
    "flow_occlusion", "flow_warping_error", "is_cut", "kalman_window", "mad", "mse", "savgol_window",
    "shot_frames", "smooth_kalman", "smooth_matte_temporal", "smooth_savgol", "smooth_transforms",
    "stabilize_matrix", "track_points", "track_sequence", "warp", "warp_matte",
]
