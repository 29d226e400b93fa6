"""Image-level helpers for :class:`~composite.gpu.image.DeviceImage`: data windows, RGBA views, merges.

:func:`composite.core.merge.to_window`, :func:`~composite.core.merge.as_rgba` and
:func:`~composite.core.merge.merge_images` themselves, given torch's array operations (:data:`TORCH_KIT`):
one implementation of the windows, state checks, messages and layer and metadata rules.
"""

from __future__ import annotations

import torch

from ..core import merge
from ..core.image import Window
from ..core.merge import ArrayKit
from .image import DeviceImage, DeviceLayer
from .ops import merge as tmerge

#: torch's array operations for the shared image-level helpers of :mod:`composite.core.merge`.
TORCH_KIT = ArrayKit(zeros=lambda like, shape: like.new_zeros(shape), ones=lambda like, shape: like.new_ones(shape),
                     cat=lambda arrays, axis: torch.cat(arrays, dim=axis), contiguous=lambda x: x.contiguous(),
                     layer=DeviceLayer, operations=tmerge.OPERATIONS)


def place(pixels, src: Window, dst: Window):
    """Place a tensor covering ``src`` into zeros covering ``dst`` (cropping what falls outside)."""
    return merge.place(pixels, src, dst, kit=TORCH_KIT)


def to_window(image: DeviceImage, window: Window) -> DeviceImage:
    """The image with its data window changed to ``window``: padded with zeros or cropped."""
    return merge.to_window(image, window, kit=TORCH_KIT)


def as_rgba(image: DeviceImage, *, who: str = "merge") -> DeviceImage:
    """An RGBA premultiplied view: opaque RGB gains A = 1 over its data window."""
    return merge.as_rgba(image, who=who, kit=TORCH_KIT)


def prepare_merge(operation: str, a: DeviceImage, b: DeviceImage) -> tuple[DeviceImage, DeviceImage]:
    """Check and align A and B as :func:`composite.core.merge.merge_images` does (RGBA, common window)."""
    return merge.prepare_merge(operation, a, b, kit=TORCH_KIT)


def finish_merge(operation: str, a: DeviceImage, b: DeviceImage, pixels, *, mix: float) -> DeviceImage:
    """B's state with the merged pixels, the layers merged as :func:`~composite.core.merge.merge_images`."""
    return merge.finish_merge(operation, a, b, pixels, mix=mix, kit=TORCH_KIT)


def merge_images(operation: str, a: DeviceImage, b: DeviceImage, *, mix: float = 1.0) -> DeviceImage:
    """Merge image A onto image B on the device (see :func:`composite.core.merge.merge_images`)."""
    return merge.merge_images(operation, a, b, mix=mix, kit=TORCH_KIT)
