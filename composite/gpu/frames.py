"""Image-level helpers for :class:`~composite.gpu.image.DeviceImage`: data windows, RGBA views, merges.

The device counterparts of :func:`composite.core.merge.to_window`, :func:`~composite.core.merge.as_rgba`
and :func:`~composite.core.merge.merge_images` (same windows, same state checks and messages, same
layer and metadata rules).
"""

from __future__ import annotations

import torch

from ..core.coverage import GENERATORS_KEY, union_generator_records
from ..core.errors import InputError, StateError
from ..core.image import ALPHA_ASSOCIATED_LAYERS, RGBA, Window
from ..core.merge import _B_WINDOW_OPS, needs_rgba
from ..core.state import AlphaState
from .image import DeviceImage, DeviceLayer
from .ops import merge as tmerge


def place(pixels, src: Window, dst: Window):
    """Place a tensor covering ``src`` into zeros covering ``dst`` (cropping what falls outside)."""
    if src == dst:
        return pixels
    out = pixels.new_zeros((dst.height, dst.width, pixels.shape[2]))
    where = dst.slices_from(src)
    if where is not None:
        out[where[0]] = pixels[where[1]]
    return out


def to_window(image: DeviceImage, window: Window) -> DeviceImage:
    """The image with its data window changed to ``window``: padded with zeros or cropped."""
    if image.data_window == window:
        return image
    layers = {n: DeviceLayer(place(lay.pixels, image.data_window, window), lay.channels)
              for n, lay in image.layers.items()}
    return image.replace(pixels=place(image.pixels, image.data_window, window), data_window=window, layers=layers)


def as_rgba(image: DeviceImage, *, who: str = "merge") -> DeviceImage:
    """An RGBA premultiplied view: opaque RGB gains A = 1 over its data window."""
    if not needs_rgba(image.channels, image.alpha, who):
        return image
    alpha = image.a[..., None] if image.has_alpha else image.pixels.new_ones((*image.pixels.shape[:2], 1))
    pixels = torch.cat([image.pixels[..., :3], alpha], dim=2)
    return image.replace(pixels=pixels, channels=RGBA, alpha=AlphaState.PREMULTIPLIED)


def prepare_merge(operation: str, a: DeviceImage, b: DeviceImage) -> tuple[DeviceImage, DeviceImage]:
    """Check and align A and B as :func:`composite.core.merge.merge_images` does (RGBA, common window)."""
    if operation not in tmerge.OPERATIONS:
        raise InputError(f"unknown merge operation {operation!r}; allowed: {', '.join(tmerge.OPERATIONS)}")
    if a.colorspace != b.colorspace:
        raise StateError(f"merge {operation}: A is in colour space {a.colorspace}, B in {b.colorspace}; "
                         "convert one of them first")
    a = as_rgba(a, who=f"merge {operation} (A)")
    b = as_rgba(b, who=f"merge {operation} (B)")
    window = b.data_window if operation in _B_WINDOW_OPS else a.data_window.union(b.data_window)
    return to_window(a, window), to_window(b, window)


def finish_merge(operation: str, a: DeviceImage, b: DeviceImage, pixels, *, mix: float) -> DeviceImage:
    """B's state with the merged pixels, the layers merged as :func:`~composite.core.merge.merge_images`."""
    fn = tmerge.OPERATIONS[operation]
    layers: dict[str, DeviceLayer] = {}
    alpha_a = a.pixels[..., 3:4]
    alpha_b = b.pixels[..., 3:4]
    for name in sorted(set(a.layers) | set(b.layers)):
        la, lb = a.layers.get(name), b.layers.get(name)
        if name in ALPHA_ASSOCIATED_LAYERS:
            channels = (la or lb).channels
            pa = la.pixels if la is not None else pixels.new_zeros((*pixels.shape[:2], len(channels)))
            pb = lb.pixels if lb is not None else pixels.new_zeros((*pixels.shape[:2], len(channels)))
            merged = fn(torch.cat([pa, alpha_a], 2), torch.cat([pb, alpha_b], 2), mix=mix)
            layers[name] = DeviceLayer(merged[..., :-1].contiguous(), channels)
        else:
            layers[name] = lb if lb is not None else la
    metadata = {**a.metadata, **b.metadata}
    records = union_generator_records(a.metadata, b.metadata)
    if records:
        metadata[GENERATORS_KEY] = records
    return b.replace(pixels=pixels, layers=layers, metadata=metadata)


def merge_images(operation: str, a: DeviceImage, b: DeviceImage, *, mix: float = 1.0) -> DeviceImage:
    """Merge image A onto image B on the device (see :func:`composite.core.merge.merge_images`)."""
    a, b = prepare_merge(operation, a, b)
    pixels = tmerge.OPERATIONS[operation](a.pixels, b.pixels, mix=mix)
    return finish_merge(operation, a, b, pixels, mix=mix)
