"""Building blocks of the torch operations: checks, OpenCV-compatible borders, separable filters,
resampling matrices and morphology.

Layout: images are ``(..., H, W, C)`` tensors (channels last, as the NumPy arrays); filters run on
``(N, C, H, W)`` views. Borders follow OpenCV's ``borderInterpolate`` exactly (``replicate``,
``reflect`` = ``BORDER_REFLECT`` "fedcba|abcdefgh", ``reflect101`` = ``BORDER_REFLECT_101``
"gfedcb|abcdefgh", ``constant`` zeros), so a filter here reads the same neighbours as the OpenCV call it
replaces; kernels come from OpenCV itself (``cv2.getGaussianKernel``), and resampling matrices are
obtained by resampling identity images with ``cv2.resize`` (every OpenCV resize filter is linear and
separable), which makes them agree with OpenCV by construction.
"""

from __future__ import annotations

import contextlib
import functools
import math

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from ...core.errors import InputError, StateError

BORDERS = ("replicate", "reflect", "reflect101", "constant")
#: OpenCV border flags by name.
CV_BORDERS = {"replicate": cv2.BORDER_REPLICATE, "reflect": cv2.BORDER_REFLECT,
              "reflect101": cv2.BORDER_REFLECT_101, "constant": cv2.BORDER_CONSTANT}


def check_image(x, what: str = "image", *, channels: tuple[int, ...] | None = None, min_dim: int = 3):
    """A float32 ``(..., H, W, C)`` tensor, or a clear error (no silent dtype conversion)."""
    if not isinstance(x, torch.Tensor):
        raise InputError(f"{what}: expected a torch tensor, got {type(x).__name__} (use composite.gpu.dispatch "
                         "for NumPy arrays)")
    if x.dim() < min_dim:
        raise InputError(f"{what}: expected shape (H, W, C), got {tuple(x.shape)}")
    if x.dtype != torch.float32:
        raise StateError(f"{what}: pixels must be float32, got {x.dtype}; convert explicitly")
    if channels is not None and x.shape[-1] not in channels:
        raise InputError(f"{what}: expected {' or '.join(map(str, channels))} channels, got shape {tuple(x.shape)}")
    return x


def check_matte(x, what: str = "matte"):
    """A float32 ``(..., H, W)`` matte tensor (a trailing single plane is squeezed)."""
    if not isinstance(x, torch.Tensor):
        raise InputError(f"{what}: expected a torch tensor, got {type(x).__name__}")
    if x.dim() == 3 and x.shape[-1] == 1:
        x = x[..., 0]
    if x.dim() < 2:
        raise InputError(f"{what}: expected an (H, W) matte, got shape {tuple(x.shape)}")
    if x.dtype != torch.float32:
        raise StateError(f"{what}: mattes must be float32, got {x.dtype}; convert explicitly")
    return x


def same_shape(a, b, what: str) -> None:
    if tuple(a.shape) != tuple(b.shape):
        raise InputError(f"{what}: A is {tuple(a.shape)} but B is {tuple(b.shape)}; reformat or align data windows first")


def f32(value: float, like):
    """A float32 scalar tensor on ``like``'s device (keeps float32 arithmetic in float32)."""
    return torch.tensor(float(value), dtype=torch.float32, device=like.device)


@contextlib.contextmanager
def ieee_fp32(device):
    """Full float32 precision for cuDNN convolutions and matrix products on CUDA.

    torch lets cuDNN convolutions use TF32 (a 10-bit mantissa) by default on recent GPUs, which would
    put errors of 1e-3 into every blur. The default is restored on exit; on the CPU this does nothing.
    """
    if getattr(device, "type", None) != "cuda":
        yield
        return
    saved = []
    for obj in (getattr(torch.backends.cudnn, "conv", None), getattr(torch.backends.cuda, "matmul", None)):
        if obj is not None and hasattr(obj, "fp32_precision"):
            saved.append((obj, obj.fp32_precision))
            obj.fp32_precision = "ieee"
    legacy = None
    if not saved:  # torch before the fp32_precision settings
        legacy = torch.backends.cudnn.allow_tf32
        torch.backends.cudnn.allow_tf32 = False
    try:
        yield
    finally:
        for obj, value in saved:
            obj.fp32_precision = value
        if legacy is not None:
            torch.backends.cudnn.allow_tf32 = legacy


# -- borders -------------------------------------------------------------------------------------

@functools.lru_cache(maxsize=256)
def _border_index_np(n: int, before: int, after: int, mode: str) -> np.ndarray:
    p = np.arange(-before, n + after, dtype=np.int64)
    if mode == "replicate":
        return np.clip(p, 0, n - 1)
    if mode in ("reflect", "reflect101"):
        if n == 1:
            return np.zeros_like(p)
        if mode == "reflect":  # fedcba|abcdefgh|hgfedcb
            r = np.mod(p, 2 * n)
            return np.where(r >= n, 2 * n - 1 - r, r)
        r = np.mod(p, 2 * n - 2)  # gfedcb|abcdefgh|gfedcba
        return np.where(r >= n, 2 * n - 2 - r, r)
    if mode == "constant":
        return np.where((p >= 0) & (p < n), p, -1)
    raise InputError(f"unknown border {mode!r}; allowed: {', '.join(BORDERS)}")


def border_index(n: int, before: int, after: int, mode: str, device) -> torch.Tensor:
    """Indices (into ``range(n)``) of the padded positions ``-before .. n + after - 1``, as OpenCV's
    ``borderInterpolate``; -1 marks a constant (zero) position."""
    return torch.as_tensor(_border_index_np(int(n), int(before), int(after), mode), device=device)


def pad_nchw(x, top: int, bottom: int, left: int, right: int, mode: str):
    """Pad the last two dims of ``(N, C, H, W)`` with OpenCV border semantics."""
    if top == bottom == left == right == 0:
        return x
    if mode == "constant":
        return F.pad(x, (left, right, top, bottom), mode="constant", value=0.0)
    h, w = x.shape[-2:]
    iy = border_index(h, top, bottom, mode, x.device)
    ix = border_index(w, left, right, mode, x.device)
    return x.index_select(-2, iy).index_select(-1, ix)


def to_nchw(x):
    """``(..., H, W, C)`` → ``(N, C, H, W)`` (a view) and a function that undoes it."""
    lead = x.shape[:-3]
    h, w, c = x.shape[-3:]
    y = x.reshape(-1, h, w, c).permute(0, 3, 1, 2)

    def back(z):
        return z.permute(0, 2, 3, 1).reshape(*lead, z.shape[-2], z.shape[-1], z.shape[1])

    return y, back


def plane_nchw(m):
    """``(..., H, W)`` → ``(N, 1, H, W)`` and the inverse."""
    lead = m.shape[:-2]
    h, w = m.shape[-2:]
    y = m.reshape(-1, 1, h, w)

    def back(z):
        return z.reshape(*lead, z.shape[-2], z.shape[-1])

    return y, back


# -- separable filters ---------------------------------------------------------------------------

def gaussian_ksize(sigma: float) -> int:
    """OpenCV's kernel size for a float image and ``ksize=(0, 0)``: ``round(sigma * 8 + 1) | 1``."""
    return int(round(sigma * 4 * 2 + 1)) | 1


@functools.lru_cache(maxsize=128)
def gaussian_kernel_np(sigma: float) -> np.ndarray:
    """The 1D kernel ``cv2.GaussianBlur(..., (0, 0), sigma)`` uses on float32 images."""
    return cv2.getGaussianKernel(gaussian_ksize(sigma), float(sigma), cv2.CV_32F).reshape(-1).astype(np.float32)


_KERNELS: dict = {}


def kernel_tensor(k: np.ndarray, device):
    key = (k.tobytes(), k.shape, str(device))
    t = _KERNELS.get(key)
    if t is None:
        if len(_KERNELS) > 256:
            _KERNELS.clear()
        t = _KERNELS[key] = torch.as_tensor(np.ascontiguousarray(k, np.float32), device=device)
    return t


def conv_sep_nchw(x, kx, ky, border: str):
    """Separable correlation of ``(N, C, H, W)`` with 1D kernels (odd lengths, centred), OpenCV borders."""
    n, c, h, w = x.shape
    with ieee_fp32(x.device):
        if kx is not None and kx.numel() > 1:
            r = kx.numel() // 2
            xp = pad_nchw(x, 0, 0, r, r, border)
            x = F.conv2d(xp, kx.view(1, 1, 1, -1).expand(c, 1, 1, kx.numel()), groups=c)
        if ky is not None and ky.numel() > 1:
            r = ky.numel() // 2
            xp = pad_nchw(x, r, r, 0, 0, border)
            x = F.conv2d(xp, ky.view(1, 1, -1, 1).expand(c, 1, ky.numel(), 1), groups=c)
    return x


def gaussian_blur(x, sigma: float, *, border: str = "replicate"):
    """``cv2.GaussianBlur(x, (0, 0), sigma, borderType=border)`` of a ``(..., H, W, C)`` tensor.

    sigma 0 returns a copy. Agrees with OpenCV to float32 rounding (same kernel, same border taps).
    """
    if sigma <= 0:
        return x.clone()
    k = kernel_tensor(gaussian_kernel_np(float(sigma)), x.device)
    y, back = to_nchw(x)
    return back(conv_sep_nchw(y, k, k, border)).contiguous()


def gaussian_blur_xy(x, sigma_x: float, sigma_y: float, *, border: str = "replicate"):
    """``cv2.GaussianBlur(x, (0, 0), sigmaX=sigma_x, sigmaY=sigma_y, borderType=border)`` of ``(..., H, W, C)``."""
    kx = kernel_tensor(gaussian_kernel_np(float(sigma_x)), x.device)
    ky = kernel_tensor(gaussian_kernel_np(float(sigma_y)), x.device)
    y, back = to_nchw(x)
    return back(conv_sep_nchw(y, kx, ky, border)).contiguous()


def resize_antialiased(x, width: int, height: int, *, filter: str = "cubic"):
    """:func:`composite.core.geometry.resize` (``antialias=True``): when shrinking with bilinear, cubic or
    lanczos, a Gaussian of sigma ``0.5 sqrt(f^2 - 1)`` per axis (f: the shrink factor, replicated edges)
    first, then OpenCV's resize. ``filter`` takes geometry's names (``bilinear``, ``cubic``, ...)."""
    interp = {"bilinear": "linear"}.get(filter, filter)
    h, w = x.shape[-3], x.shape[-2]
    if (w, h) == (width, height):
        return x.clone()
    fx, fy = w / width, h / height
    if interp in ("linear", "cubic", "lanczos") and (fx > 1 or fy > 1):
        sx = 0.5 * math.sqrt(max(fx * fx - 1, 0.0))
        sy = 0.5 * math.sqrt(max(fy * fy - 1, 0.0))
        x = gaussian_blur_xy(x, max(sx, 1e-3), max(sy, 1e-3), border="replicate")
    return resize(x, int(width), int(height), interp=interp)


def gaussian_smooth(x, sigma: float, *, border: str = "reflect"):
    """:func:`composite.integrate._util.gaussian_smooth`: from sigma 6 on, the blur is computed at 1/2 .. 1/8
    resolution (area reduction, blur, bilinear enlargement) as the NumPy version does."""
    factor = 1
    while sigma / (factor * 2) >= 3.0 and factor < 8:
        factor *= 2
    if factor == 1:
        return gaussian_blur(x, sigma, border=border)
    h, w = x.shape[-3], x.shape[-2]
    small = resize(x, max(1, -(-w // factor)), max(1, -(-h // factor)), interp="area")
    return resize(gaussian_blur(small, sigma / factor, border=border), w, h, interp="linear")


def gaussian_blur_plane(m, sigma: float, *, border: str = "replicate"):
    """:func:`gaussian_blur` of an ``(..., H, W)`` plane."""
    if sigma <= 0:
        return m.clone()
    k = kernel_tensor(gaussian_kernel_np(float(sigma)), m.device)
    y, back = plane_nchw(m)
    return back(conv_sep_nchw(y, k, k, border)).contiguous()


def filter2d(x, kernel: np.ndarray, *, border: str):
    """``cv2.filter2D(x, -1, kernel, borderType=border)`` (correlation, anchor at the centre) of
    ``(..., H, W, C)``; odd square kernels."""
    kh, kw = kernel.shape
    if kh % 2 == 0 or kw % 2 == 0:
        raise InputError(f"filter2d: kernel must have odd sides, got {kernel.shape}")
    if (kh, kw) == (1, 1):
        return x * f32(float(kernel[0, 0]), x)
    y, back = to_nchw(x)
    c = y.shape[1]
    k = kernel_tensor(kernel, x.device)
    yp = pad_nchw(y, kh // 2, kh // 2, kw // 2, kw // 2, border)
    with ieee_fp32(x.device):
        out = F.conv2d(yp, k.view(1, 1, kh, kw).expand(c, 1, kh, kw), groups=c)
    return back(out).contiguous()


# -- resampling ----------------------------------------------------------------------------------

_INTERP = {"linear": cv2.INTER_LINEAR, "area": cv2.INTER_AREA, "cubic": cv2.INTER_CUBIC,
           "nearest": cv2.INTER_NEAREST, "lanczos": cv2.INTER_LANCZOS4}


@functools.lru_cache(maxsize=64)
def resize_matrix_np(n: int, m: int, interp: str) -> np.ndarray:
    """``(m, n)`` matrix R with ``cv2.resize`` along one axis from n to m samples equal to ``R @ x``."""
    eye = np.eye(n, dtype=np.float32)
    out = cv2.resize(eye, (m, n), interpolation=_INTERP[interp])  # row i: e_i resized horizontally
    return np.ascontiguousarray(out.reshape(n, m).T)


_MATS: dict = {}


def resize_matrix(n: int, m: int, interp: str, device):
    key = (n, m, interp, str(device))
    t = _MATS.get(key)
    if t is None:
        if len(_MATS) > 64:
            _MATS.clear()
        t = _MATS[key] = torch.as_tensor(resize_matrix_np(n, m, interp), device=device)
    return t


def resize(x, width: int, height: int, *, interp: str = "linear"):
    """``cv2.resize(x, (width, height), interpolation=interp)`` of ``(..., H, W, C)`` as two matrix products."""
    h, w = x.shape[-3], x.shape[-2]
    if (w, h) == (width, height):
        return x.clone()
    ry = resize_matrix(h, height, interp, x.device)
    rx = resize_matrix(w, width, interp, x.device)
    # The axis that shrinks more first: fewer multiply-adds.
    with ieee_fp32(x.device):
        if height / h <= width / w:
            y = torch.einsum("yh,...hwc->...ywc", ry, x)
            return torch.einsum("xw,...ywc->...yxc", rx, y).contiguous()
        y = torch.einsum("xw,...hwc->...hxc", rx, x)
        return torch.einsum("yh,...hxc->...yxc", ry, y).contiguous()


def resize_plane(m, width: int, height: int, *, interp: str = "linear"):
    """:func:`resize` of an ``(..., H, W)`` plane."""
    return resize(m[..., None], width, height, interp=interp)[..., 0]


# -- morphology ----------------------------------------------------------------------------------

def disc(radius: int) -> np.ndarray:
    """The disc composite's matte operations use (``composite.matte.ops._disc``)."""
    d = 2 * radius + 1
    yy, xx = np.mgrid[-radius:radius + 1, -radius:radius + 1]
    return (xx * xx + yy * yy <= radius * radius + radius).astype(np.uint8).reshape(d, d)


@functools.lru_cache(maxsize=128)
def _rectangles(se_bytes: bytes, shape: tuple[int, int]) -> tuple[tuple[int, int], ...] | None:
    """Decompose a centred structuring element into centred rectangles ``(half_width, half_height)``.

    Works when every row of the element is one run centred on the middle column and runs do not widen
    away from the middle row (discs, OpenCV's ellipses, rectangles); None otherwise.
    """
    se = np.frombuffer(se_bytes, np.uint8).reshape(shape).astype(bool)
    kh, kw = shape
    cy, cx = kh // 2, kw // 2
    half = {}
    for dy in range(-cy, kh - cy):
        row = se[dy + cy]
        cols = np.flatnonzero(row)
        if cols.size == 0:
            continue
        lo, hi = cols[0] - cx, cols[-1] - cx
        if lo != -hi or cols.size != hi - lo + 1:
            return None
        half[dy] = int(hi)
    if not half or 0 not in half:
        return None
    rects = {}
    for dy, wx in half.items():
        rects[wx] = max(rects.get(wx, 0), abs(dy))
    # Check: the union of the rectangles reproduces the element.
    rebuilt = np.zeros_like(se)
    for wx, hy in rects.items():
        rebuilt[cy - hy:cy + hy + 1, cx - wx:cx + wx + 1] = True
    if not np.array_equal(rebuilt, se):
        return None
    return tuple(sorted(rects.items()))


def morph(m, se: np.ndarray, *, grow: bool, border: str = "replicate"):
    """Grey-scale dilation (``grow``) or erosion of an ``(..., H, W)`` plane by a structuring element,
    as ``cv2.dilate``/``cv2.erode(..., borderType=border)``.

    The element is split into centred rectangles (a disc of radius r into about r of them), each a
    separable max filter, so the cost grows linearly with the radius.
    """
    kh, kw = se.shape
    y, back = plane_nchw(m)
    if not grow:
        y = -y
    rects = _rectangles(np.ascontiguousarray(se, np.uint8).tobytes(), (kh, kw))
    pad_y, pad_x = kh // 2, kw // 2
    # Constant borders of erode/dilate are +inf/-inf in OpenCV (they never win); replicate otherwise.
    if border == "constant":
        yp = F.pad(y, (pad_x, pad_x, pad_y, pad_y), mode="constant", value=-math.inf)
    else:
        yp = pad_nchw(y, pad_y, pad_y, pad_x, pad_x, border)
    h, w = y.shape[-2:]
    out = None
    if rects is None:
        ys, xs = np.nonzero(se)
        for dy, dx in zip(ys.tolist(), xs.tolist()):
            v = yp[..., dy:dy + h, dx:dx + w]
            out = v if out is None else torch.maximum(out, v)
    else:
        for wx, hy in rects:
            v = yp[..., pad_y - hy:pad_y + hy + h, pad_x - wx:pad_x + wx + w]
            if wx > 0:
                v = F.max_pool2d(v, (1, 2 * wx + 1), stride=1)
            if hy > 0:
                v = F.max_pool2d(v, (2 * hy + 1, 1), stride=1)
            out = v if out is None else torch.maximum(out, v)
    if not grow:
        out = -out
    return back(out).contiguous()
