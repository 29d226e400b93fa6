"""The frame model: :class:`Image`, :class:`Layer` and :class:`Window`.

An :class:`Image` is one frame of one stream: an ``(H, W, C)`` float32 NumPy array covering the data
window, with its state carried explicitly — colour space, alpha state, channel names, data and display
windows, pixel aspect, time, auxiliary layers (depth, motion, ai_coverage, ...) and free metadata.
Images are immutable values; operations return new images.

Example
-------
>>> import numpy as np
>>> from composite.core import Image
>>> img = Image(np.zeros((4, 6, 4), np.float32), channels=("R", "G", "B", "A"))
>>> img.alpha.value, img.width, img.height, img.colorspace
('premultiplied', 6, 4, 'ACEScg')
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import numpy as np
import opentimelineio as otio

from .errors import InputError, StateError
from .state import RAW_SPACE, WORKING_SPACE, AlphaState

RGBA = ("R", "G", "B", "A")
RGB = ("R", "G", "B")

#: Layers merged with the same arithmetic as colour (they are associated with alpha): the fraction
#: of each pixel that a generator produced. Other layers pass through from the background input.
ALPHA_ASSOCIATED_LAYERS = frozenset({"ai_coverage"})


@dataclass(frozen=True)
class Window:
    """An integer pixel rectangle with inclusive bounds, as OpenEXR's ``Box2i``.

    ``Window(0, 0, 1919, 1079)`` is a 1920x1080 window. y grows downwards.
    """

    xmin: int
    ymin: int
    xmax: int
    ymax: int

    def __post_init__(self):
        for name in ("xmin", "ymin", "xmax", "ymax"):
            object.__setattr__(self, name, int(getattr(self, name)))

    @classmethod
    def from_size(cls, width: int, height: int, x: int = 0, y: int = 0) -> Window:
        return cls(x, y, x + int(width) - 1, y + int(height) - 1)

    @property
    def width(self) -> int:
        return self.xmax - self.xmin + 1

    @property
    def height(self) -> int:
        return self.ymax - self.ymin + 1

    @property
    def empty(self) -> bool:
        return self.width <= 0 or self.height <= 0

    def offset(self, dx: int, dy: int) -> Window:
        return Window(self.xmin + dx, self.ymin + dy, self.xmax + dx, self.ymax + dy)

    def intersect(self, other: Window) -> Window:
        return Window(max(self.xmin, other.xmin), max(self.ymin, other.ymin),
                      min(self.xmax, other.xmax), min(self.ymax, other.ymax))

    def union(self, other: Window) -> Window:
        return Window(min(self.xmin, other.xmin), min(self.ymin, other.ymin),
                      max(self.xmax, other.xmax), max(self.ymax, other.ymax))

    def slices_from(self, src: Window) -> tuple[tuple[slice, slice], tuple[slice, slice]] | None:
        """Where an array covering ``src`` lands in an array covering this window: ``(dst, src)`` pairs of
        (row, column) slices of the overlap, or None when the windows do not overlap."""
        inter = src.intersect(self)
        if inter.empty:
            return None
        dst = (slice(inter.ymin - self.ymin, inter.ymax - self.ymin + 1),
               slice(inter.xmin - self.xmin, inter.xmax - self.xmin + 1))
        own = (slice(inter.ymin - src.ymin, inter.ymax - src.ymin + 1),
               slice(inter.xmin - src.xmin, inter.xmax - src.xmin + 1))
        return dst, own

    def as_tuple(self) -> tuple[int, int, int, int]:
        return (self.xmin, self.ymin, self.xmax, self.ymax)

    def __str__(self) -> str:
        return f"({self.xmin},{self.ymin})-({self.xmax},{self.ymax})"


def as_pixel_planes(array: np.ndarray, what: str) -> np.ndarray:
    """Check pixels given as an array: ``(H, W)`` or ``(H, W, C)`` float32 → ``(H, W, C)`` (a view).

    Other dtypes are refused, never rescaled silently; ``what`` names the array in the messages.
    """
    if not isinstance(array, np.ndarray):
        raise InputError(f"{what}: expected a NumPy array, got {type(array).__name__}")
    if array.ndim == 2:
        array = array[:, :, None]
    if array.ndim != 3:
        raise InputError(f"{what}: expected shape (H, W) or (H, W, C), got {array.shape}")
    if array.dtype != np.float32:
        raise StateError(
            f"{what}: pixels must be float32, got {array.dtype}; convert explicitly "
            "(composite.io readers normalise integer files; use array.astype(np.float32) for floats)"
        )
    return array


@dataclass(frozen=True, eq=False)
class Layer:
    """An auxiliary plane of an image (depth, motion, ai_coverage, a Cryptomatte rank, ...).

    ``pixels``: ``(H, W, k)`` float32 covering the owning image's data window.
    ``channels``: k channel names, e.g. ``("Z",)`` or ``("u", "v")``.
    """

    pixels: np.ndarray
    channels: tuple[str, ...]

    def __post_init__(self):
        pixels = as_pixel_planes(self.pixels, "layer")
        object.__setattr__(self, "pixels", pixels)
        object.__setattr__(self, "channels", tuple(self.channels))
        if len(self.channels) != pixels.shape[2]:
            raise InputError(f"layer: {pixels.shape[2]} planes but channel names {self.channels}")


@dataclass(frozen=True, eq=False)
class Image:
    """One frame: pixels plus explicit state.

    Parameters
    ----------
    pixels : np.ndarray
        ``(H, W, C)`` float32 covering ``data_window``. For colour images the working state is
        scene-linear (``colorspace``, ACEScg by default) with premultiplied alpha.
    channels : tuple of str
        One name per plane, OpenEXR style: ``("R", "G", "B", "A")``, ``("R", "G", "B")``, ``("A",)``.
    colorspace : str
        OCIO colour-space name of the colour channels (``"Raw"`` for data).
    alpha : AlphaState
        Defaults to premultiplied when an ``A`` channel is present, else opaque.
    data_window, display_window : Window
        Default to the pixel array's extent at the origin; the display window defaults to the data window.
    pixel_aspect : float
        Pixel width over height.
    time : opentimelineio.opentime.RationalTime or None
        The frame's time (frame number at the plate's rate).
    layers : mapping of str to Layer
        Auxiliary planes over the same data window.
    metadata : mapping
        Free metadata (file header attributes, fingerprints, provenance).
    """

    pixels: np.ndarray
    channels: tuple[str, ...] = RGBA
    colorspace: str = WORKING_SPACE
    alpha: AlphaState | None = None
    data_window: Window | None = None
    display_window: Window | None = None
    pixel_aspect: float = 1.0
    time: otio.opentime.RationalTime | None = None
    layers: Mapping[str, Layer] = field(default_factory=dict)
    metadata: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self):
        pixels = as_pixel_planes(self.pixels, "image")
        object.__setattr__(self, "pixels", pixels)
        channels = tuple(self.channels)
        if len(channels) != pixels.shape[2]:
            raise InputError(f"image: {pixels.shape[2]} planes but channel names {channels}")
        object.__setattr__(self, "channels", channels)
        alpha = self.alpha
        if alpha is None:
            alpha = AlphaState.PREMULTIPLIED if "A" in channels and len(channels) > 1 else AlphaState.OPAQUE
        object.__setattr__(self, "alpha", AlphaState.parse(alpha))
        h, w = pixels.shape[:2]
        dw = self.data_window or Window.from_size(w, h)
        if (dw.width, dw.height) != (w, h):
            raise InputError(f"image: data window {dw} is {dw.width}x{dw.height} but pixels are {w}x{h}")
        object.__setattr__(self, "data_window", dw)
        object.__setattr__(self, "display_window", self.display_window or dw)
        object.__setattr__(self, "pixel_aspect", float(self.pixel_aspect))
        layers = dict(self.layers)
        for name, layer in layers.items():
            if not isinstance(layer, Layer):
                raise InputError(f"image: layer {name!r} must be a Layer, got {type(layer).__name__}")
            if layer.pixels.shape[:2] != (h, w):
                raise InputError(f"image: layer {name!r} is {layer.pixels.shape[1]}x{layer.pixels.shape[0]}, "
                                 f"image is {w}x{h}")
        object.__setattr__(self, "layers", MappingProxyType(layers))
        object.__setattr__(self, "metadata", MappingProxyType(dict(self.metadata)))

    # -- shape -------------------------------------------------------------------------------
    @property
    def height(self) -> int:
        return self.pixels.shape[0]

    @property
    def width(self) -> int:
        return self.pixels.shape[1]

    @property
    def shape(self) -> tuple[int, int, int]:
        return self.pixels.shape

    @property
    def frame(self) -> int | None:
        """Frame number (integer) of ``time`` or None."""
        return None if self.time is None else int(round(self.time.value))

    # -- channels ----------------------------------------------------------------------------
    @property
    def has_alpha(self) -> bool:
        return "A" in self.channels

    def channel(self, name: str) -> np.ndarray:
        """``(H, W)`` view of one channel; ``layer.channel`` names reach into layers."""
        if name in self.channels:
            return self.pixels[:, :, self.channels.index(name)]
        if "." in name:
            layer, ch = name.rsplit(".", 1)
            if layer in self.layers and ch in self.layers[layer].channels:
                return self.layers[layer].pixels[:, :, self.layers[layer].channels.index(ch)]
        raise InputError(f"image has no channel {name!r}; channels: {self.all_channel_names()}")

    def all_channel_names(self) -> list[str]:
        names = list(self.channels)
        for lname, layer in self.layers.items():
            names += [f"{lname}.{c}" for c in layer.channels]
        return names

    @property
    def rgb(self) -> np.ndarray:
        """``(H, W, 3)`` view of R, G, B (they must be the first three channels)."""
        if self.channels[:3] != RGB:
            raise StateError(f"image channels {self.channels} do not start with R, G, B")
        return self.pixels[:, :, :3]

    @property
    def a(self) -> np.ndarray:
        """``(H, W)`` alpha; ones when the image is opaque without an A channel."""
        if "A" in self.channels:
            return self.pixels[:, :, self.channels.index("A")]
        return np.ones(self.pixels.shape[:2], np.float32)

    def layer(self, name: str) -> Layer:
        try:
            return self.layers[name]
        except KeyError:
            raise InputError(f"image has no layer {name!r}; layers: {sorted(self.layers)}") from None

    # -- derivation --------------------------------------------------------------------------
    def replace(self, **changes: Any) -> Image:
        """A copy with fields replaced (pixels are shared, not copied)."""
        return dataclasses.replace(self, **changes)

    def with_pixels(self, pixels: np.ndarray, channels: Iterable[str] | None = None, **changes: Any) -> Image:
        """Same state, new pixel array (same data window unless given)."""
        channels = tuple(channels) if channels is not None else self.channels
        return dataclasses.replace(self, pixels=pixels, channels=channels, **changes)

    def with_layer(self, name: str, pixels: np.ndarray, channels: Iterable[str]) -> Image:
        layers = dict(self.layers)
        layers[name] = Layer(pixels, tuple(channels))
        return dataclasses.replace(self, layers=layers)

    def without_layer(self, name: str) -> Image:
        layers = {k: v for k, v in self.layers.items() if k != name}
        return dataclasses.replace(self, layers=layers)

    def with_metadata(self, **items: Any) -> Image:
        meta = dict(self.metadata)
        meta.update(items)
        return dataclasses.replace(self, metadata=meta)

    # -- state checks ------------------------------------------------------------------------
    def require(self, *, alpha: AlphaState | Iterable[AlphaState] | None = None,
                colorspace: str | Iterable[str] | None = None,
                channels: Iterable[str] | None = None, who: str = "stage") -> Image:
        """Raise :class:`StateError` naming both states unless the image is in the expected state."""
        if alpha is not None:
            allowed = {AlphaState.parse(alpha)} if isinstance(alpha, (str, AlphaState)) else \
                {AlphaState.parse(a) for a in alpha}
            if self.alpha not in allowed:
                want = " or ".join(sorted(str(a) for a in allowed))
                raise StateError(f"{who}: expects alpha {want}, got {self.alpha}")
        if colorspace is not None:
            allowed_cs = {colorspace} if isinstance(colorspace, str) else set(colorspace)
            if self.colorspace not in allowed_cs and not (RAW_SPACE in allowed_cs and self.colorspace == RAW_SPACE):
                want = " or ".join(sorted(allowed_cs))
                raise StateError(f"{who}: expects colour space {want}, got {self.colorspace}")
        if channels is not None:
            missing = [c for c in channels if c not in self.channels]
            if missing:
                raise StateError(f"{who}: expects channels {tuple(channels)}, got {self.channels}")
        return self

    def __repr__(self) -> str:
        return (f"Image({self.width}x{self.height} {''.join(self.channels)} {self.colorspace} {self.alpha}, "
                f"frame={self.frame}, layers={sorted(self.layers)})")
