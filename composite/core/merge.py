"""Porter–Duff and arithmetic merges, premultiplication, channel copies.

Array functions come first: they take ``(H, W, 4)`` float32 RGBA arrays, premultiplied, in one colour
space, alpha in the last plane, and return a new float32 array of the same shape. Naming follows
Nuke's Merge node with ``a`` the foreground (A input) and ``b`` the background (B input):

=========  ===========================  =========  ===========================
operation  result                       operation  result
=========  ===========================  =========  ===========================
over       A + B(1 - a)                 in         A b
under      A(1 - b) + B                 out        A (1 - b)
plus       A + B                        mask       B a
multiply   A B                          max / min  per channel
screen     A + B - AB (max(A, B) where both > 1, so HDR values are not folded)
=========  ===========================  =========  ===========================

``mix`` blends the result with B: ``B + mix (result - B)``. No function clips values.

:func:`merge_images` applies an operation to :class:`~composite.core.Image` values: it checks both are
premultiplied (or opaque) in the same colour space, aligns their data windows (union, or B's for mask
and in), merges alpha-associated layers (``ai_coverage``) with the same arithmetic and passes the other
layers through from B.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .coverage import GENERATORS_KEY, union_generator_records
from .errors import InputError, StateError
from .image import ALPHA_ASSOCIATED_LAYERS, RGBA, Image, Layer, Window
from .state import AlphaState


def _check_pair(a: np.ndarray, b: np.ndarray, what: str) -> None:
    if a.shape != b.shape:
        raise InputError(f"{what}: A is {a.shape} but B is {b.shape}; reformat or align data windows first")
    if a.dtype != np.float32 or b.dtype != np.float32:
        raise StateError(f"{what}: expects float32 arrays, got {a.dtype} and {b.dtype}")


def _mix(result: np.ndarray, b: np.ndarray, mix: float) -> np.ndarray:
    if mix == 1.0:
        return result
    result -= b
    result *= np.float32(mix)
    result += b
    return result


def premultiply(rgba: np.ndarray) -> np.ndarray:
    """Straight ``(H, W, 4)`` float32 RGBA → premultiplied (colour times alpha)."""
    out = np.empty_like(rgba)
    np.multiply(rgba[..., :-1], rgba[..., -1:], out=out[..., :-1])
    out[..., -1:] = rgba[..., -1:]
    return out


def unpremultiply(rgba: np.ndarray) -> np.ndarray:
    """Premultiplied ``(H, W, 4)`` float32 RGBA → straight.

    Where alpha is 0 the colour is left as it is (emissive pixels with A == 0 keep their light),
    matching Nuke's Unpremult; no division by zero happens.
    """
    alpha = rgba[..., -1:]
    safe = np.where(alpha != 0, alpha, np.float32(1))  # dividing by 1 keeps colour where alpha is 0
    out = np.empty_like(rgba)
    np.divide(rgba[..., :-1], safe, out=out[..., :-1])
    out[..., -1:] = alpha
    return out


def over(a: np.ndarray, b: np.ndarray, *, mix: float = 1.0) -> np.ndarray:
    """Porter–Duff over: ``A + B (1 - a)``. a, b: ``(H, W, C)`` float32 premultiplied, alpha last."""
    _check_pair(a, b, "over")
    out = b * (np.float32(1) - a[..., -1:])
    out += a
    return _mix(out, b, mix)


def under(a: np.ndarray, b: np.ndarray, *, mix: float = 1.0) -> np.ndarray:
    """``A (1 - b) + B``: A placed behind B."""
    _check_pair(a, b, "under")
    out = a * (np.float32(1) - b[..., -1:])
    out += b
    return _mix(out, b, mix)


def plus(a: np.ndarray, b: np.ndarray, *, mix: float = 1.0) -> np.ndarray:
    """``A + B`` on every channel, alpha included (no clamp)."""
    _check_pair(a, b, "plus")
    return _mix(a + b, b, mix)


def multiply(a: np.ndarray, b: np.ndarray, *, mix: float = 1.0) -> np.ndarray:
    """``A B`` on every channel."""
    _check_pair(a, b, "multiply")
    return _mix(a * b, b, mix)


def screen(a: np.ndarray, b: np.ndarray, *, mix: float = 1.0) -> np.ndarray:
    """``A + B - A B``; where both values exceed 1 the result is ``max(A, B)`` (HDR safe)."""
    _check_pair(a, b, "screen")
    out = a + b - a * b
    both_bright = (a > 1) & (b > 1)
    if both_bright.any():
        out[both_bright] = np.maximum(a, b)[both_bright]
    return _mix(out, b, mix)


def maximum(a: np.ndarray, b: np.ndarray, *, mix: float = 1.0) -> np.ndarray:
    """Per-channel ``max(A, B)``."""
    _check_pair(a, b, "max")
    return _mix(np.maximum(a, b), b, mix)


def minimum(a: np.ndarray, b: np.ndarray, *, mix: float = 1.0) -> np.ndarray:
    """Per-channel ``min(A, B)``."""
    _check_pair(a, b, "min")
    return _mix(np.minimum(a, b), b, mix)


def inside(a: np.ndarray, b: np.ndarray, *, mix: float = 1.0) -> np.ndarray:
    """Porter–Duff in: ``A b`` (A where B is)."""
    _check_pair(a, b, "in")
    return _mix(a * b[..., -1:], b, mix)


def outside(a: np.ndarray, b: np.ndarray, *, mix: float = 1.0) -> np.ndarray:
    """Porter–Duff out: ``A (1 - b)`` (A where B is not)."""
    _check_pair(a, b, "out")
    return _mix(a * (np.float32(1) - b[..., -1:]), b, mix)


def mask(a: np.ndarray, b: np.ndarray, *, mix: float = 1.0) -> np.ndarray:
    """``B a``: B kept where A is (Nuke's mask)."""
    _check_pair(a, b, "mask")
    return _mix(b * a[..., -1:], b, mix)


#: Merge operations by name, as recipes and the Merge stage spell them.
OPERATIONS: dict[str, Callable[..., np.ndarray]] = {
    "over": over, "under": under, "plus": plus, "multiply": multiply, "screen": screen,
    "max": maximum, "min": minimum, "in": inside, "out": outside, "mask": mask,
}

#: Output data window per operation: union of A and B, or B's alone (Nuke's behaviour).
_B_WINDOW_OPS = {"mask", "in"}


def copy_channels(src: np.ndarray, dst: np.ndarray, src_index: Sequence[int], dst_index: Sequence[int]) -> np.ndarray:
    """Copy planes ``src[..., src_index[i]]`` into ``dst[..., dst_index[i]]``; returns a new array."""
    if src.shape[:2] != dst.shape[:2]:
        raise InputError(f"copy channels: source is {src.shape[:2]} but destination is {dst.shape[:2]}")
    if len(src_index) != len(dst_index):
        raise InputError("copy channels: source and destination channel lists differ in length")
    out = dst.copy()
    out[..., list(dst_index)] = src[..., list(src_index)]
    return out


# -- Image level ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class ArrayKit:
    """The few array operations the image-level helpers below need, so that one implementation serves
    :class:`~composite.core.Image` (NumPy, :data:`NUMPY_KIT`) and the device images of
    :mod:`composite.gpu` (torch tensors, ``composite.gpu.frames.TORCH_KIT``)."""

    zeros: Callable[[Any, tuple[int, ...]], Any]      # (like, shape) -> float32 zeros beside ``like``
    ones: Callable[[Any, tuple[int, ...]], Any]
    cat: Callable[[list, int], Any]                   # (arrays, axis) -> joined array
    contiguous: Callable[[Any], Any]
    layer: Callable[[Any, tuple[str, ...]], Any]      # (pixels, channels) -> a layer of that image type
    operations: Mapping[str, Callable[..., Any]]      # merge operations by name


NUMPY_KIT = ArrayKit(zeros=lambda like, shape: np.zeros(shape, np.float32),
                     ones=lambda like, shape: np.ones(shape, np.float32),
                     cat=lambda arrays, axis: np.concatenate(arrays, axis), contiguous=np.ascontiguousarray,
                     layer=Layer, operations=OPERATIONS)


def place(pixels, src: Window, dst: Window, *, kit: ArrayKit = NUMPY_KIT):
    """Place an array covering ``src`` into a zero array covering ``dst`` (cropping what falls outside)."""
    if src == dst:
        return pixels
    out = kit.zeros(pixels, (dst.height, dst.width, pixels.shape[2]))
    where = dst.slices_from(src)
    if where is not None:
        out[where[0]] = pixels[where[1]]
    return out


def to_window(image: Image, window: Window, *, kit: ArrayKit = NUMPY_KIT) -> Image:
    """The image with its data window changed to ``window``: padded with zeros (transparent) or cropped."""
    if image.data_window == window:
        return image
    layers = {n: kit.layer(place(lay.pixels, image.data_window, window, kit=kit), lay.channels)
              for n, lay in image.layers.items()}
    return image.replace(pixels=place(image.pixels, image.data_window, window, kit=kit), data_window=window,
                         layers=layers)


def needs_rgba(channels: tuple[str, ...], alpha: AlphaState, who: str) -> bool:
    """Whether an image of this state must gain an RGBA layout to be merged (False: already premultiplied
    RGBA); raises StateError for straight alpha or images without R, G, B."""
    if channels == RGBA and alpha is AlphaState.PREMULTIPLIED:
        return False
    if alpha is AlphaState.STRAIGHT:
        raise StateError(f"{who}: expects alpha premultiplied or opaque, got straight; premultiply first")
    if channels[:3] != ("R", "G", "B"):
        raise StateError(f"{who}: expects R, G, B channels, got {channels}")
    return True


def as_rgba(image: Image, *, who: str = "merge", kit: ArrayKit = NUMPY_KIT) -> Image:
    """An RGBA premultiplied view of ``image``: opaque RGB gains A = 1 over its data window."""
    if not needs_rgba(image.channels, image.alpha, who):
        return image
    alpha = image.a[..., None] if image.has_alpha else kit.ones(image.pixels, (*image.pixels.shape[:2], 1))
    pixels = kit.cat([image.pixels[..., :3], alpha], 2)
    return image.replace(pixels=pixels, channels=RGBA, alpha=AlphaState.PREMULTIPLIED)


def prepare_merge(operation: str, a: Image, b: Image, *, kit: ArrayKit = NUMPY_KIT) -> tuple[Image, Image]:
    """Check A and B for ``operation`` and align them: premultiplied RGBA on the common data window (the
    union, or B's for mask and in)."""
    if operation not in kit.operations:
        raise InputError(f"unknown merge operation {operation!r}; allowed: {', '.join(kit.operations)}")
    if a.colorspace != b.colorspace:
        raise StateError(f"merge {operation}: A is in colour space {a.colorspace}, B in {b.colorspace}; "
                         "convert one of them first")
    a = as_rgba(a, who=f"merge {operation} (A)", kit=kit)
    b = as_rgba(b, who=f"merge {operation} (B)", kit=kit)
    window = b.data_window if operation in _B_WINDOW_OPS else a.data_window.union(b.data_window)
    return to_window(a, window, kit=kit), to_window(b, window, kit=kit)


def finish_merge(operation: str, a: Image, b: Image, pixels, *, mix: float, kit: ArrayKit = NUMPY_KIT) -> Image:
    """B's state with the merged ``pixels`` of aligned A and B: alpha-associated layers merged with the same
    arithmetic, other layers passed through from B (else A), A's metadata keys added where B lacks them."""
    fn = kit.operations[operation]
    layers = {}
    alpha_a = a.pixels[..., 3:4]
    alpha_b = b.pixels[..., 3:4]
    for name in sorted(set(a.layers) | set(b.layers)):
        la, lb = a.layers.get(name), b.layers.get(name)
        if name in ALPHA_ASSOCIATED_LAYERS:
            # Associated layers behave like an extra colour channel: pad with the partner's alpha.
            channels = (la or lb).channels
            pa = la.pixels if la is not None else kit.zeros(pixels, (*pixels.shape[:2], len(channels)))
            pb = lb.pixels if lb is not None else kit.zeros(pixels, (*pixels.shape[:2], len(channels)))
            merged = fn(kit.cat([pa, alpha_a], 2), kit.cat([pb, alpha_b], 2), mix=mix)
            layers[name] = kit.layer(kit.contiguous(merged[..., :-1]), channels)
        else:
            layers[name] = lb if lb is not None else la
    metadata = {**a.metadata, **b.metadata}
    records = union_generator_records(a.metadata, b.metadata)
    if records:
        metadata[GENERATORS_KEY] = records
    return b.replace(pixels=pixels, layers=layers, metadata=metadata)


def merge_images(operation: str, a: Image, b: Image, *, mix: float = 1.0, kit: ArrayKit = NUMPY_KIT) -> Image:
    """Merge image A onto image B with ``operation`` (a key of :data:`OPERATIONS`).

    Both must be premultiplied or opaque and in the same colour space. The result carries B's state
    (time, display window, metadata) with A's metadata keys added where B lacks them.
    """
    a, b = prepare_merge(operation, a, b, kit=kit)
    return finish_merge(operation, a, b, kit.operations[operation](a.pixels, b.pixels, mix=mix), mix=mix, kit=kit)
