"""Frames on a torch device: :class:`DeviceImage`.

A :class:`DeviceImage` is what travels between stages that have torch implementations when a pipeline
runs on a device. It pairs the pixels — an ``(H, W, C)`` float32 tensor on the device, the same layout
and values as :attr:`composite.core.Image.pixels` — with a *header*: an ordinary
:class:`~composite.core.Image` holding every piece of state (channels, colour space, alpha state,
data and display windows, pixel aspect, time, metadata) whose own ``pixels`` is a zero-stride
placeholder of the right shape, so the header is validated by :class:`Image` itself. Auxiliary layers
(``ai_coverage``, ``depth``, flow) travel as device tensors too.

:class:`Image` is not changed: it still requires NumPy float32 pixels, and every NumPy stage receives
one (:meth:`DeviceImage.to_image` downloads it). Attribute names follow :class:`Image`, so state checks
(:meth:`Stage.check_input`, :meth:`require`) read a DeviceImage as they read an Image.

Example
-------
>>> import numpy as np
>>> from composite.core import Image
>>> from composite.gpu.device import resolve_device
>>> from composite.gpu.image import DeviceImage
>>> img = Image(np.full((4, 6, 4), 0.5, np.float32))
>>> d = DeviceImage.from_image(img, resolve_device("torch-cpu"))
>>> d.width, d.height, d.alpha.value, d.to_image().pixels[0, 0].tolist()
(6, 4, 'premultiplied', [0.5, 0.5, 0.5, 0.5])
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..core.errors import InputError, StateError
from ..core.image import RGB, Image, Layer
from .tensor import is_tensor, to_device, to_host


def placeholder(shape: tuple[int, ...]) -> np.ndarray:
    """A read-only float32 array of ``shape`` that occupies no memory (all strides 0)."""
    return np.broadcast_to(np.float32(0.0), tuple(int(s) for s in shape))


@dataclass(frozen=True, eq=False)
class DeviceLayer:
    """An auxiliary plane on the device: ``(H, W, k)`` float32 tensor and its k channel names."""

    pixels: Any
    channels: tuple[str, ...]

    def __post_init__(self):
        object.__setattr__(self, "channels", tuple(self.channels))
        p = self.pixels
        if not is_tensor(p) or p.dim() != 3 or p.shape[2] != len(self.channels):
            raise InputError(f"device layer: expected an (H, W, {len(self.channels)}) tensor for channels "
                             f"{self.channels}, got {getattr(p, 'shape', type(p).__name__)}")


@dataclass(frozen=True, eq=False)
class DeviceImage:
    """One frame with its pixels on a torch device (see the module docstring).

    Parameters
    ----------
    pixels : torch.Tensor
        ``(H, W, C)`` float32 covering the header's data window.
    header : Image
        The frame's state; its pixels are a placeholder of the same shape (see :func:`placeholder`).
    layers : mapping of str to DeviceLayer
    """

    pixels: Any
    header: Image
    layers: Mapping[str, DeviceLayer] = dataclasses.field(default_factory=dict)

    def __post_init__(self):
        torch = _torch()
        p = self.pixels
        if not isinstance(p, torch.Tensor):
            raise InputError(f"device image: pixels must be a torch tensor, got {type(p).__name__}")
        if p.dim() != 3:
            raise InputError(f"device image: expected (H, W, C) pixels, got {tuple(p.shape)}")
        if p.dtype != torch.float32:
            raise StateError(f"device image: pixels must be float32, got {p.dtype}; convert explicitly")
        if tuple(self.header.pixels.shape) != tuple(p.shape):
            raise InputError(f"device image: header is {tuple(self.header.pixels.shape)} but pixels are "
                             f"{tuple(p.shape)}")
        layers = {}
        for name, layer in dict(self.layers).items():
            if not isinstance(layer, DeviceLayer):
                layer = DeviceLayer(*layer) if isinstance(layer, tuple) else layer
            if not isinstance(layer, DeviceLayer):
                raise InputError(f"device image: layer {name!r} must be a DeviceLayer")
            if tuple(layer.pixels.shape[:2]) != tuple(p.shape[:2]):
                raise InputError(f"device image: layer {name!r} is {tuple(layer.pixels.shape[:2])}, "
                                 f"image is {tuple(p.shape[:2])}")
            layers[name] = layer
        object.__setattr__(self, "layers", layers)

    # -- conversion --------------------------------------------------------------------------
    @classmethod
    def from_image(cls, image: Image, device) -> DeviceImage:
        """Upload an :class:`Image` (pixels and layers; one counted transfer per array)."""
        pixels = to_device(image.pixels, device, what="pixels")
        layers = {n: DeviceLayer(to_device(lay.pixels, device, what=f"layer {n}"), lay.channels)
                  for n, lay in image.layers.items()}
        header = dataclasses.replace(image, pixels=placeholder(image.pixels.shape), layers={})
        return cls(pixels, header, layers)

    @classmethod
    def wrap(cls, pixels, like: Image | DeviceImage, *, layers: Mapping | None = None, **changes: Any) -> DeviceImage:
        """A DeviceImage with ``pixels`` and the state of ``like`` (``changes`` replace state fields)."""
        base = like.header if isinstance(like, DeviceImage) else like
        header = dataclasses.replace(base, pixels=placeholder(pixels.shape), layers={}, **changes)
        if layers is None:
            layers = like.layers if isinstance(like, DeviceImage) else {}
        return cls(pixels, header, dict(layers))

    def to_image(self) -> Image:
        """Download to an :class:`Image` (pixels and layers; one counted transfer per array)."""
        layers = {n: Layer(_f32(to_host(lay.pixels, what=f"layer {n}")), lay.channels) for n, lay in self.layers.items()}
        return dataclasses.replace(self.header, pixels=_f32(to_host(self.pixels, what="pixels")), layers=layers)

    @property
    def device(self):
        return self.pixels.device

    # -- state (as Image) ----------------------------------------------------------------------
    channels = property(lambda self: self.header.channels)
    colorspace = property(lambda self: self.header.colorspace)
    alpha = property(lambda self: self.header.alpha)
    data_window = property(lambda self: self.header.data_window)
    display_window = property(lambda self: self.header.display_window)
    pixel_aspect = property(lambda self: self.header.pixel_aspect)
    time = property(lambda self: self.header.time)
    metadata = property(lambda self: self.header.metadata)
    frame = property(lambda self: self.header.frame)
    has_alpha = property(lambda self: self.header.has_alpha)

    @property
    def height(self) -> int:
        return int(self.pixels.shape[0])

    @property
    def width(self) -> int:
        return int(self.pixels.shape[1])

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(int(s) for s in self.pixels.shape)

    def channel(self, name: str):
        """``(H, W)`` tensor view of one channel; ``layer.channel`` names reach into layers."""
        if name in self.channels:
            return self.pixels[:, :, self.channels.index(name)]
        if "." in name:
            lname, ch = name.rsplit(".", 1)
            if lname in self.layers and ch in self.layers[lname].channels:
                return self.layers[lname].pixels[:, :, self.layers[lname].channels.index(ch)]
        names = list(self.channels) + [f"{n}.{c}" for n, lay in self.layers.items() for c in lay.channels]
        raise InputError(f"image has no channel {name!r}; channels: {names}")

    @property
    def rgb(self):
        if self.channels[:3] != RGB:
            raise StateError(f"image channels {self.channels} do not start with R, G, B")
        return self.pixels[:, :, :3]

    @property
    def a(self):
        if "A" in self.channels:
            return self.pixels[:, :, self.channels.index("A")]
        return self.pixels.new_ones(self.pixels.shape[:2])

    def layer(self, name: str) -> DeviceLayer:
        try:
            return self.layers[name]
        except KeyError:
            raise InputError(f"image has no layer {name!r}; layers: {sorted(self.layers)}") from None

    # -- derivation ----------------------------------------------------------------------------
    def replace(self, **changes: Any) -> DeviceImage:
        """A copy with fields replaced: ``pixels`` (a tensor), ``layers`` and any state field of Image."""
        pixels = changes.pop("pixels", self.pixels)
        layers = changes.pop("layers", self.layers)
        header = dataclasses.replace(self.header, pixels=placeholder(pixels.shape), layers={}, **changes)
        return DeviceImage(pixels, header, dict(layers))

    def with_pixels(self, pixels, channels: Iterable[str] | None = None, **changes: Any) -> DeviceImage:
        if channels is not None:
            changes["channels"] = tuple(channels)
        return self.replace(pixels=pixels, **changes)

    def with_layer(self, name: str, pixels, channels: Iterable[str]) -> DeviceImage:
        layers = dict(self.layers)
        layers[name] = DeviceLayer(pixels, tuple(channels))
        return self.replace(layers=layers)

    def with_metadata(self, **items: Any) -> DeviceImage:
        meta = dict(self.metadata)
        meta.update(items)
        return self.replace(metadata=meta)

    def require(self, **kwargs: Any) -> DeviceImage:
        self.header.require(**kwargs)
        return self

    def __repr__(self) -> str:
        return (f"DeviceImage({self.width}x{self.height} {''.join(self.channels)} {self.colorspace} {self.alpha}, "
                f"frame={self.frame}, device={self.device}, layers={sorted(self.layers)})")


def _f32(array: np.ndarray) -> np.ndarray:
    return array if array.dtype == np.float32 else array.astype(np.float32)


def _torch():
    from .device import torch_module

    return torch_module()


def to_image(value):
    """``value`` as host data: DeviceImages downloaded, dicts of frames converted, anything else as is."""
    if isinstance(value, DeviceImage):
        return value.to_image()
    if isinstance(value, dict):
        return {k: to_image(v) for k, v in value.items()}
    return value


def to_device_image(value, device):
    """``value`` on ``device``: Images uploaded (DeviceImages on another device moved), dicts converted."""
    if isinstance(value, Image):
        return DeviceImage.from_image(value, device)
    if isinstance(value, DeviceImage):
        if value.pixels.device == device or (device.type == value.pixels.device.type and device.index is None):
            return value
        layers = {n: DeviceLayer(lay.pixels.to(device), lay.channels) for n, lay in value.layers.items()}
        return DeviceImage(value.pixels.to(device), value.header, layers)
    if isinstance(value, dict):
        return {k: to_device_image(v, device) for k, v in value.items()}
    return value
