"""Reformat (resize, crop, pad) and 2D transforms with a choice of filter.

Array functions take ``(H, W, C)`` float32 arrays of any channel count. Premultiplied images are
resampled as they are (filtering premultiplied colour is what keeps edges free of dark or bright halos);
pixels outside the source are transparent black. Filters that ring (cubic, lanczos) may produce values
below 0 or above the source's range: they are kept, not clipped.
"""

from __future__ import annotations

import cv2
import numpy as np

from .errors import InputError
from .image import Image, Layer, Window

#: Resampling filters by name.
FILTERS = {
    "nearest": cv2.INTER_NEAREST,
    "bilinear": cv2.INTER_LINEAR,
    "cubic": cv2.INTER_CUBIC,
    "lanczos": cv2.INTER_LANCZOS4,
    "area": cv2.INTER_AREA,
}

#: How :func:`reformat_image` fits a source into a new size.
REFORMAT_MODES = ("distort", "fit", "fill", "none")


def _filter(name: str) -> int:
    try:
        return FILTERS[name]
    except KeyError:
        raise InputError(f"unknown filter {name!r}; allowed: {', '.join(FILTERS)}") from None


def _per_chunk(pixels: np.ndarray, fn) -> np.ndarray:
    """Apply an OpenCV function in chunks of at most 4 planes (some OpenCV warps cap channels at 4)."""
    c = pixels.shape[2]
    if c <= 4:
        out = fn(np.ascontiguousarray(pixels))
        return out[:, :, None] if out.ndim == 2 else out
    parts = [_per_chunk(pixels[:, :, i:i + 4], fn) for i in range(0, c, 4)]
    return np.concatenate(parts, axis=2)


def resize(pixels: np.ndarray, width: int, height: int, *, filter: str = "cubic",
           antialias: bool = True) -> np.ndarray:
    """Resample ``(H, W, C)`` float32 to ``(height, width, C)``.

    When shrinking with an interpolating filter (bilinear, cubic, lanczos), ``antialias`` first low-passes
    the source with a Gaussian of sigma ``0.5 * sqrt(f**2 - 1)`` per axis (f = shrink factor), so detail
    finer than the new pixel grid does not alias; ``area`` averages and needs no prefilter.
    """
    if width <= 0 or height <= 0:
        raise InputError(f"resize: size must be positive, got {width}x{height}")
    flag = _filter(filter)
    if (pixels.shape[1], pixels.shape[0]) == (width, height):
        return pixels.copy()
    fx, fy = pixels.shape[1] / width, pixels.shape[0] / height
    if antialias and flag in (cv2.INTER_LINEAR, cv2.INTER_CUBIC, cv2.INTER_LANCZOS4) and (fx > 1 or fy > 1):
        sx = 0.5 * np.sqrt(max(fx * fx - 1, 0.0))
        sy = 0.5 * np.sqrt(max(fy * fy - 1, 0.0))
        pixels = _per_chunk(pixels, lambda p: cv2.GaussianBlur(p, (0, 0), sigmaX=max(sx, 1e-3), sigmaY=max(sy, 1e-3),
                                                               borderType=cv2.BORDER_REPLICATE))
    return _per_chunk(pixels, lambda p: cv2.resize(p, (int(width), int(height)), interpolation=flag))


def crop(pixels: np.ndarray, x: int, y: int, width: int, height: int) -> np.ndarray:
    """Cut the rectangle at ``(x, y)`` of size ``width x height``; parts outside are zero (transparent)."""
    h, w, c = pixels.shape
    out = np.zeros((height, width, c), np.float32)
    x0, y0 = max(x, 0), max(y, 0)
    x1, y1 = min(x + width, w), min(y + height, h)
    if x1 > x0 and y1 > y0:
        out[y0 - y:y1 - y, x0 - x:x1 - x] = pixels[y0:y1, x0:x1]
    return out


def pad(pixels: np.ndarray, left: int, top: int, right: int, bottom: int) -> np.ndarray:
    """Grow the array by zero (transparent) borders; negative amounts crop."""
    h, w, _ = pixels.shape
    return crop(pixels, -left, -top, w + left + right, h + top + bottom)


def transform(pixels: np.ndarray, matrix: np.ndarray, *, size: tuple[int, int] | None = None,
              filter: str = "bilinear") -> np.ndarray:
    """Warp by a 2x3 affine or 3x3 projective matrix mapping source to destination pixel coordinates.

    ``size`` is the output ``(width, height)``, the input's by default. Pixel centres are at integer
    coordinates (OpenCV's convention).
    """
    m = np.asarray(matrix, np.float64)
    if m.shape not in ((2, 3), (3, 3)):
        raise InputError(f"transform: matrix must be 2x3 or 3x3, got {m.shape}")
    w, h = size or (pixels.shape[1], pixels.shape[0])
    flag = _filter(filter)
    if flag == cv2.INTER_AREA:
        flag = cv2.INTER_LINEAR
    if m.shape == (2, 3):
        return _per_chunk(pixels, lambda p: cv2.warpAffine(p, m, (w, h), flags=flag,
                                                             borderMode=cv2.BORDER_CONSTANT, borderValue=0))
    return _per_chunk(pixels, lambda p: cv2.warpPerspective(p, m, (w, h), flags=flag,
                                                              borderMode=cv2.BORDER_CONSTANT, borderValue=0))


def affine_matrix(*, translate: tuple[float, float] = (0.0, 0.0), rotate: float = 0.0,
                  scale: tuple[float, float] = (1.0, 1.0), center: tuple[float, float] = (0.0, 0.0)) -> np.ndarray:
    """2x3 matrix: scale and rotate (degrees, counter-clockwise on screen) about ``center``, then translate."""
    cx, cy = center
    t = np.radians(rotate)
    c, s = np.cos(t), np.sin(t)
    sx, sy = scale
    lin = np.array([[c * sx, s * sy], [-s * sx, c * sy]])
    offset = np.array([cx, cy]) - lin @ np.array([cx, cy]) + np.asarray(translate, float)
    return np.hstack([lin, offset[:, None]])


def _map_image(image: Image, fn, window: Window) -> Image:
    layers = {n: Layer(fn(lay.pixels), lay.channels) for n, lay in image.layers.items()}
    return image.replace(pixels=fn(image.pixels), layers=layers, data_window=window)


def reformat_image(image: Image, width: int, height: int, *, mode: str = "fit", filter: str = "cubic",
                   pixel_aspect: float = 1.0) -> Image:
    """Reformat to a ``width x height`` display window.

    ``mode``: ``distort`` stretches to the new size; ``fit`` scales uniformly so the whole source is
    inside (letterbox/pillarbox with transparent borders); ``fill`` scales uniformly to cover the frame,
    cropping the overflow; ``none`` keeps the scale and centres (crop or pad). The source's data window
    is first padded or cropped to its display window. Layers follow the same resampling.
    """
    if mode not in REFORMAT_MODES:
        raise InputError(f"reformat: unknown mode {mode!r}; allowed: {', '.join(REFORMAT_MODES)}")
    from .merge import to_window

    src = to_window(image, image.display_window)
    sw, sh = src.width * src.pixel_aspect, src.height
    dw, dh = width * pixel_aspect, height
    if mode == "distort":
        fn = lambda p: resize(p, width, height, filter=filter)  # noqa: E731
    else:
        sx = dw / sw
        sy = dh / sh
        k = {"fit": min(sx, sy), "fill": max(sx, sy), "none": 1.0}[mode]
        scale_x = k * src.pixel_aspect / pixel_aspect
        scale_y = k
        # Resample to the scaled size (edges replicate inside the source, no bleed of the transparent
        # outside), then place centred: pad with transparent black (fit) or crop the overflow (fill).
        nw, nh = max(1, round(src.width * scale_x)), max(1, round(src.height * scale_y))
        ox, oy = (width - nw) // 2, (height - nh) // 2
        down = nw < src.width or nh < src.height
        flt = "area" if down and filter in ("bilinear", "area") else filter

        def fn(p, nw=nw, nh=nh, ox=ox, oy=oy, flt=flt):
            scaled = p if (nw, nh) == (p.shape[1], p.shape[0]) else resize(p, nw, nh, filter=flt)
            return crop(scaled, -ox, -oy, width, height)
    window = Window.from_size(width, height)
    out = _map_image(src, fn, window)
    return out.replace(display_window=window, pixel_aspect=pixel_aspect)


def transform_image(image: Image, matrix: np.ndarray, *, filter: str = "bilinear") -> Image:
    """Warp an image (and its layers) by a matrix in display-window pixel coordinates.

    The output's data window is the display window.
    """
    from .merge import to_window

    src = to_window(image, image.display_window)
    size = (src.width, src.height)
    m = np.asarray(matrix, np.float64)
    # The array origin is the display window's corner.
    ox, oy = image.display_window.xmin, image.display_window.ymin
    shift = np.array([[1, 0, -ox], [0, 1, -oy], [0, 0, 1]], np.float64)
    unshift = np.array([[1, 0, ox], [0, 1, oy], [0, 0, 1]], np.float64)
    full = np.vstack([m, [0, 0, 1]]) if m.shape == (2, 3) else m
    local = shift @ full @ unshift
    local = local[:2] if m.shape == (2, 3) else local
    return _map_image(src, lambda p: transform(p, local, size=size, filter=filter), src.data_window)
