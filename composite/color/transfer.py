"""Statistical colour transfer: make an element's colour statistics match a reference's.

Three methods, each estimated on samples (a :class:`ColorTransform` you can store, serialise and apply to
every frame of a shot) and applied to whole frames:

``reinhard``
    Per-channel mean and standard deviation matching (Reinhard, Ashikhmin, Gooch and Shirley, "Color
    Transfer between Images", IEEE CG&A 2001). Default space ``lalphabeta``.
``mkl``
    Pitié's linear Monge–Kantorovich transfer (Pitié and Kokaram, "The linear Monge-Kantorovitch linear
    colour mapping for example-based colour transfer", CVMP 2007): the affine map
    ``x -> (x - mu_s) T + mu_r`` with T the symmetric solution of ``T S_s T = S_r`` that moves pixels
    least. Matches the full 3x3 covariance, so correlated channels (a hazy blue sky) transfer as a whole.
    Default space ``acescct``.
``histogram``
    Per-channel CDF (histogram) matching through a monotone look-up table with linear interpolation
    within bins. Default space ``lalphabeta``: its decorrelated channels keep hues together where
    per-channel matching of RGB tints shadows and highlights independently. Matching a narrow element
    distribution onto a wide one stretches quantisation steps and noise (visible on smooth 8-bit skies).

Spaces in which the statistics are computed (all are exactly invertible for every real value, so
scene-linear HDR and negative values round-trip without clipping):

``linear``
    The values as given. For scene-linear data this lets highlights dominate the statistics; it is the
    right choice for data that is already display-encoded (8-bit pictures divided by 255), e.g. to
    reproduce published results computed on display values.
``acescct``
    ACEScct (S-2016-001): log2 above 0.0078125 with its linear toe below (and below zero), on the ACEScg
    primaries. Unlike the specification the decode is not clamped at 65504, so HDR values round-trip
    (it is limited at ACEScct 7.5, about 4.6e36).
``lab``
    CIELAB of ACEScg via CIE XYZ D65 (Bradford), ACES white → L* = 100; cube root above the CIE
    threshold, linear below it (negative values included). See :mod:`composite.color.delta_e`.
``lalphabeta``
    Ruderman's lαβ as Reinhard used it: ACEScg → XYZ D65 → LMS (Hunt–Pointer–Estévez, rows normalised
    so the white maps to L = M = S = 1) → log (the ACEScct curve, whose log2 branch differs from
    Reinhard's log10 by a scale and an offset that the transfer is invariant to, and whose linear toe
    keeps zero and negative values finite) → the decorrelating lαβ rotation.

Alpha: 4-channel input is premultiplied RGBA (alpha last). Statistics use the unpremultiplied colour
weighted by alpha (times any matte); the transfer is applied to the unpremultiplied colour where
alpha > 0, which is then premultiplied again. Pixels with alpha 0 are returned unchanged. 3-channel
input is opaque.

Degenerate input: an empty reference region (matte or alpha zero everywhere) raises
:class:`~composite.core.errors.InputError`; a constant channel (standard deviation below 1e-6 in the
transfer space) in the reference or the element gives a mean-only transfer for that channel (recorded in
``ColorTransform.notes``); non-finite input raises. The output is always finite: magnitudes beyond 1e36
(far outside any scene-linear light) are limited to 1e36 on the way in and results to the float32 range.
Statistics are plain moments, so a few extreme pixels (fireflies) pull them: matte them out, or use the
histogram method, whose mapping they barely move.

Frames are transformed in float32 (3x3 products through OpenCV), statistics in float64 on at most
``max_samples`` pixels (every k-th).

Example
-------
>>> import numpy as np
>>> from composite.color.transfer import color_transfer
>>> rng = np.random.default_rng(0)
>>> element = rng.uniform(0.05, 0.5, (32, 32, 3)).astype(np.float32)
>>> plate = (rng.uniform(0.05, 0.5, (32, 32, 3)) * [1.5, 1.0, 0.6]).astype(np.float32)
>>> out = color_transfer(element, plate, method="mkl")
>>> out.shape, out.dtype
((32, 32, 3), dtype('float32'))
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..core.errors import InputError
from .delta_e import AP1_TO_XYZ_D65, acescg_to_lab, lab_to_acescg, mat3

log = logging.getLogger("composite.color")

METHODS = ("reinhard", "mkl", "histogram")
SPACES = ("linear", "acescct", "lab", "lalphabeta")
DEFAULT_SPACE = {"reinhard": "lalphabeta", "mkl": "acescct", "histogram": "lalphabeta"}

#: Standard deviation (in transfer-space units) below which a channel counts as constant.
STD_FLOOR = 1e-6
_F32_MAX = float(np.finfo(np.float32).max)
_CHUNK = 1 << 19

# ACEScct (S-2016-001) constants.
_CCT_A = 10.5402377416545
_CCT_B = 0.0729055341958355
_CCT_X_BRK = 0.0078125
_CCT_Y_BRK = 0.155251141552511
_CCT_MAX = 7.5  # decodes to 2^121.7 = 4.6e36: float32 stays finite through the matrices that follow
#: Input magnitudes are limited to this before a transfer is applied (float32 headroom for the maths).
INPUT_LIMIT = 1e36

# XYZ (D65) → LMS (Hunt–Pointer–Estévez as in Reinhard et al. 2001), rows scaled so D65 white → (1, 1, 1).
_HPE = np.array([[0.3897, 0.6890, -0.0787], [-0.2298, 1.1834, 0.0464], [0.0, 0.0, 1.0]])
_HPE = _HPE / (_HPE @ AP1_TO_XYZ_D65.sum(axis=1))[:, None]
_AP1_TO_LMS = _HPE @ AP1_TO_XYZ_D65
_LMS_TO_AP1 = np.linalg.inv(_AP1_TO_LMS)
_LAB_ROT = np.array([[1 / math.sqrt(3)] * 3,
                     [1 / math.sqrt(6), 1 / math.sqrt(6), -2 / math.sqrt(6)],
                     [1 / math.sqrt(2), -1 / math.sqrt(2), 0.0]])
_LAB_ROT_INV = _LAB_ROT.T  # orthonormal rows


# -- encodings -----------------------------------------------------------------------------------
def _float(x) -> np.ndarray:
    """float32 stays float32 (the fast path for whole frames), anything else becomes float64."""
    x = np.asarray(x)
    return x if x.dtype in (np.float32, np.float64) else x.astype(np.float64)


def acescct_encode(lin) -> np.ndarray:
    """Scene-linear → ACEScct for every real value (the linear toe continues below zero).

    float32 input is computed in float32, anything else in float64.
    """
    lin = _float(lin)
    with np.errstate(divide="ignore", invalid="ignore"):
        logv = (np.log2(np.maximum(lin, _CCT_X_BRK)) + 9.72) / 17.52
    return np.where(lin <= _CCT_X_BRK, _CCT_A * lin + _CCT_B, logv)


def acescct_decode(cct) -> np.ndarray:
    """ACEScct → scene-linear; the inverse of :func:`acescct_encode`, not clamped at 65504.

    Results are limited to about 4.6e36 (ACEScct 7.5), which keeps float32 arithmetic finite.
    """
    cct = _float(cct)
    expv = np.exp2(np.minimum(cct, _CCT_MAX) * 17.52 - 9.72)
    return np.where(cct <= _CCT_Y_BRK, (cct - _CCT_B) / _CCT_A, expv)


def encode(rgb, space: str) -> np.ndarray:
    """Scene-linear ACEScg ``(..., 3)`` (straight colour) → transfer space ``space`` (float32 stays float32)."""
    rgb = _float(rgb)
    if space == "linear":
        return rgb
    if space == "acescct":
        return acescct_encode(rgb)
    if space == "lab":
        return acescg_to_lab(rgb)
    if space == "lalphabeta":
        return mat3(acescct_encode(mat3(rgb, _AP1_TO_LMS)), _LAB_ROT)
    raise InputError(f"unknown colour-transfer space {space!r}; allowed: {', '.join(SPACES)}")


def decode(values, space: str) -> np.ndarray:
    """Transfer space ``space`` → scene-linear ACEScg; the inverse of :func:`encode`."""
    values = _float(values)
    if space == "linear":
        return values
    if space == "acescct":
        return acescct_decode(values)
    if space == "lab":
        return lab_to_acescg(values)
    if space == "lalphabeta":
        return mat3(acescct_decode(mat3(values, _LAB_ROT_INV)), _LMS_TO_AP1)
    raise InputError(f"unknown colour-transfer space {space!r}; allowed: {', '.join(SPACES)}")


# -- samples -------------------------------------------------------------------------------------
def _check_pixels(pixels: np.ndarray, what: str) -> np.ndarray:
    if not isinstance(pixels, np.ndarray):
        raise InputError(f"{what}: expected a NumPy array, got {type(pixels).__name__}")
    if pixels.ndim != 3 or pixels.shape[2] not in (3, 4):
        raise InputError(f"{what}: expected (H, W, 3) RGB or (H, W, 4) premultiplied RGBA, got shape {pixels.shape}")
    if pixels.dtype != np.float32:
        raise InputError(f"{what}: expected float32 pixels, got {pixels.dtype}; convert explicitly")
    return pixels


def _check_weights(weights, shape: tuple[int, int], what: str) -> np.ndarray | None:
    if weights is None:
        return None
    w = np.asarray(weights)
    if w.ndim == 3 and w.shape[2] == 1:
        w = w[:, :, 0]
    if w.shape != shape:
        raise InputError(f"{what}: matte is {w.shape[1] if w.ndim > 1 else '?'}x{w.shape[0]} "
                         f"(shape {w.shape}) but the image is {shape[1]}x{shape[0]}; "
                         "reformat the matte to the image's size")
    w = w.astype(np.float64, copy=False)
    if not np.all(np.isfinite(w)):
        raise InputError(f"{what}: matte has NaN/Inf values")
    return np.maximum(w, 0.0)


def _check_finite(pixels: np.ndarray, what: str) -> None:
    if not np.all(np.isfinite(pixels)):
        bad = int(pixels.size - np.count_nonzero(np.isfinite(pixels)))
        raise InputError(f"{what}: {bad} NaN/Inf values; repair them first (a Pipeline with nonfinite: repair)")


def straight_colour(pixels: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """Split ``(H, W, 3|4)`` pixels into straight colour ``(H, W, 3)`` and alpha ``(H, W)`` (None if opaque).

    Colour is unpremultiplied where alpha > 0 and left as is where alpha is 0.
    """
    if pixels.shape[2] == 3:
        return pixels, None
    alpha = pixels[:, :, 3]
    rgb = pixels[:, :, :3].copy()
    np.divide(rgb, alpha[:, :, None], out=rgb, where=alpha[:, :, None] > 0)
    return rgb, alpha


def apply_unpremultiplied(pixels: np.ndarray, fn, *, strip_pixels: int = 1 << 16) -> np.ndarray:
    """Apply ``fn`` (straight ``(..., 3)`` float32 → float32) to ``(H, W, 3|4)`` pixels, respecting alpha.

    For premultiplied RGBA, colour is unpremultiplied where alpha > 0, passed through ``fn`` and
    premultiplied again; pixels with alpha 0 (and the alpha channel) are returned unchanged. The frame is
    processed in strips of rows (about ``strip_pixels`` pixels each) so the intermediate arrays stay in
    cache; ``fn`` must therefore be a per-pixel operation.
    """
    h, w, c = pixels.shape
    out = np.empty_like(pixels)
    rows = max(1, strip_pixels // max(w, 1))
    for y0 in range(0, h, rows):
        block = pixels[y0:y0 + rows]
        dst = out[y0:y0 + rows]
        if c == 3:
            dst[...] = fn(block)
            continue
        alpha = block[:, :, 3:4]
        covered = alpha > 0
        if not covered.any():
            dst[...] = block
            continue
        rgb = np.divide(block[:, :, :3], alpha, out=block[:, :, :3].copy(), where=covered)
        np.multiply(fn(rgb), alpha, out=dst[:, :, :3])
        dst[:, :, 3:] = block[:, :, 3:]
        if not covered.all():
            np.copyto(dst, block, where=~covered)
    return out


def collect_samples(pixels: np.ndarray, weights=None, *, what: str = "image",
                    max_samples: int | None = 1 << 18) -> tuple[np.ndarray, np.ndarray]:
    """Straight colour samples ``(N, 3)`` float64 and their weights ``(N,)`` from an image region.

    ``pixels``: ``(H, W, 3)`` or premultiplied ``(H, W, 4)`` float32; the weight of a pixel is its alpha
    times ``weights`` (``(H, W)``, optional). Pixels of weight 0 are left out; when more than
    ``max_samples`` remain, every k-th is kept (deterministic). Raises InputError when the region is empty.
    """
    pixels = _check_pixels(pixels, what)
    w = _check_weights(weights, pixels.shape[:2], what)
    flat_px = pixels.reshape(-1, pixels.shape[2])
    if pixels.shape[2] == 4:
        a = np.maximum(flat_px[:, 3].astype(np.float64), 0.0)
        w = a if w is None else w.reshape(-1) * a
    if w is None:
        idx = None
        n = flat_px.shape[0]
    else:
        w = w.reshape(-1)
        idx = np.flatnonzero(w > 0)
        n = idx.size
    if n == 0:
        raise InputError(f"{what}: the region is empty (its matte/alpha is zero everywhere); "
                         "give a matte that covers part of the image")
    step = -(-n // max_samples) if max_samples and n > max_samples else 1
    if idx is None:
        sel = flat_px[::step]
        wflat = np.ones(sel.shape[0])
    else:
        idx = idx[::step]
        sel = flat_px[idx]
        wflat = w[idx]
    flat = sel[:, :3].astype(np.float64)
    if pixels.shape[2] == 4:  # unpremultiply the samples (their alpha is > 0)
        flat /= sel[:, 3:4].astype(np.float64)
    _check_finite(flat, what)
    return flat, wflat


def weighted_stats(x: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Weighted mean ``(3,)`` and covariance ``(3, 3)`` of samples ``x (N, 3)`` with weights ``w (N,)``."""
    wsum = w.sum()
    mean = (x * w[:, None]).sum(axis=0) / wsum
    d = x - mean
    cov = (d * w[:, None]).T @ d / wsum
    return mean, cov


# -- the transform -------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class ColorTransform:
    """A fitted colour transfer, applicable to any frame.

    Affine methods (``reinhard``, ``mkl``) store ``center``, ``matrix`` (3x3) and ``offset`` in ``space``:
    ``y = (x - center) @ matrix + offset`` (row vectors; center is the element's mean, offset the
    reference's, which keeps the arithmetic exact for nearly constant elements); ``histogram`` stores per-channel monotone
    look-up tables ``lut_x``/``lut_y`` (each ``(3, K)``). ``strength`` blends the result with the input in
    ``space`` (0: unchanged, 1: full transfer). ``stats`` holds the statistics used (means and standard
    deviations in ``space``, sample counts); ``notes`` any degenerate cases met.
    """

    method: str
    space: str
    strength: float = 1.0
    matrix: np.ndarray | None = None
    offset: np.ndarray | None = None
    center: np.ndarray | None = None
    lut_x: np.ndarray | None = None
    lut_y: np.ndarray | None = None
    stats: Mapping[str, Any] = field(default_factory=dict)
    notes: tuple[str, ...] = ()

    def __post_init__(self):
        if self.method not in METHODS:
            raise InputError(f"unknown colour-transfer method {self.method!r}; allowed: {', '.join(METHODS)}")
        if self.space not in SPACES:
            raise InputError(f"unknown colour-transfer space {self.space!r}; allowed: {', '.join(SPACES)}")
        if not (0.0 <= float(self.strength) <= 1.0):
            raise InputError(f"colour-transfer strength must be in [0, 1], got {self.strength}")
        object.__setattr__(self, "strength", float(self.strength))
        if self.method == "histogram":
            if self.lut_x is None or self.lut_y is None:
                raise InputError("a histogram transform needs lut_x and lut_y")
            lx = np.asarray(self.lut_x, np.float64)
            ly = np.asarray(self.lut_y, np.float64)
            if lx.ndim != 2 or lx.shape[0] != 3 or lx.shape != ly.shape or lx.shape[1] < 2:
                raise InputError(f"histogram look-up tables must be (3, K) with K >= 2, got {lx.shape} and {ly.shape}")
            if np.any(np.diff(lx, axis=1) <= 0):
                raise InputError("histogram look-up table inputs (lut_x) must increase strictly")
            object.__setattr__(self, "lut_x", lx)
            object.__setattr__(self, "lut_y", ly)
        else:
            m = np.asarray(self.matrix if self.matrix is not None else np.eye(3), np.float64)
            o = np.asarray(self.offset if self.offset is not None else np.zeros(3), np.float64)
            c = np.asarray(self.center if self.center is not None else np.zeros(3), np.float64)
            if m.shape != (3, 3) or o.shape != (3,) or c.shape != (3,):
                raise InputError(f"an affine transform needs a 3x3 matrix, 3 offsets and 3 centre values, got "
                                 f"{m.shape}, {o.shape} and {c.shape}")
            if not (np.all(np.isfinite(m)) and np.all(np.isfinite(o)) and np.all(np.isfinite(c))):
                raise InputError("colour-transfer matrix/offset/center must be finite")
            object.__setattr__(self, "matrix", m)
            object.__setattr__(self, "offset", o)
            object.__setattr__(self, "center", c)
        object.__setattr__(self, "notes", tuple(self.notes))

    # -- application -----------------------------------------------------------------------------
    @property
    def is_identity(self) -> bool:
        if self.strength == 0.0:
            return True
        if self.method == "histogram":
            return bool(np.array_equal(self.lut_x, self.lut_y))
        return bool(np.array_equal(self.matrix, np.eye(3)) and np.array_equal(self.offset, self.center))

    def apply_encoded(self, x: np.ndarray) -> np.ndarray:
        """Apply to ``(N, 3)`` values already in ``space`` (strength included), in x's float dtype."""
        if self.method == "histogram":
            y = np.empty_like(x)
            for c in range(3):
                xc = x[:, c]
                lx, ly = self.lut_x[c], self.lut_y[c]
                lo, hi = lx[0], lx[-1]
                d = np.diff(lx)
                if np.allclose(d, d[0], rtol=1e-9, atol=0):  # evenly spaced knots: direct indexing
                    t = (xc - xc.dtype.type(lo)) * xc.dtype.type(1.0 / d[0])
                    np.clip(t, 0, lx.size - 1, out=t)
                    i = np.minimum(t.astype(np.int32), lx.size - 2)
                    t -= i
                    lyc = ly.astype(xc.dtype)
                    y[:, c] = lyc[i] + t * (lyc[i + 1] - lyc[i])
                else:
                    y[:, c] = np.interp(xc, lx, ly)
                # beyond the table the mapping continues with unit slope (values outside the fit range)
                below, above = xc < lo, xc > hi
                y[below, c] = ly[0] + (xc[below] - lo)
                y[above, c] = ly[-1] + (xc[above] - hi)
        else:
            y = mat3(x - self.center.astype(x.dtype), self.matrix.T)
            y += self.offset.astype(y.dtype)
        if self.strength != 1.0:
            y -= x
            y *= y.dtype.type(self.strength)
            y += x
        return y

    def apply_straight(self, rgb: np.ndarray) -> np.ndarray:
        """Apply to straight scene-linear colour ``(..., 3)``; returns float32 of the same shape.

        Computed in float32 (float64 input in float64), in chunks; magnitudes beyond
        :data:`INPUT_LIMIT` are limited to it first.
        """
        shape = rgb.shape
        flat = _float(rgb).reshape(-1, 3)
        out = np.empty(flat.shape, np.float32)
        for s in range(0, flat.shape[0], _CHUNK):
            x = np.clip(flat[s:s + _CHUNK], -INPUT_LIMIT, INPUT_LIMIT)
            y = decode(self.apply_encoded(encode(x, self.space)), self.space)
            np.clip(y, -_F32_MAX, _F32_MAX, out=y)
            if np.isnan(y).any():  # last resort; the encodings above are built not to produce NaN
                log.warning("colour transfer produced %d NaN values; set to 0", int(np.isnan(y).sum()))
                y = np.nan_to_num(y, nan=0.0)
            out[s:s + _CHUNK] = y
        return out.reshape(shape)

    def apply(self, pixels: np.ndarray) -> np.ndarray:
        """Apply to ``(H, W, 3)`` or premultiplied ``(H, W, 4)`` float32 scene-linear pixels.

        Colour is unpremultiplied where alpha > 0, transformed, and premultiplied again; pixels with
        alpha 0 and the alpha channel itself are unchanged. Returns a new float32 array.
        """
        pixels = _check_pixels(pixels, "color transfer input")
        _check_finite(pixels, "color transfer input")
        if self.is_identity:
            return pixels.copy()
        return apply_unpremultiplied(pixels, self.apply_straight)

    def with_strength(self, strength: float) -> ColorTransform:
        return ColorTransform(self.method, self.space, strength, self.matrix, self.offset, self.center,
                              self.lut_x, self.lut_y, self.stats, self.notes)

    # -- serialisation ---------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """Plain JSON/YAML-serialisable form (the inverse of :meth:`from_dict`)."""
        d: dict[str, Any] = {"method": self.method, "space": self.space, "strength": self.strength}
        if self.method == "histogram":
            d["lut_x"] = [[float(v) for v in row] for row in self.lut_x]
            d["lut_y"] = [[float(v) for v in row] for row in self.lut_y]
        else:
            d["center"] = [float(v) for v in self.center]
            d["matrix"] = [[float(v) for v in row] for row in self.matrix]
            d["offset"] = [float(v) for v in self.offset]
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ColorTransform:
        if not isinstance(d, Mapping) or "method" not in d or "space" not in d:
            raise InputError(f"a stored colour transform needs 'method' and 'space' keys, got {d!r:.200}")
        known = {"method", "space", "strength", "center", "matrix", "offset", "lut_x", "lut_y"}
        unknown = sorted(set(d) - known)
        if unknown:
            raise InputError(f"stored colour transform: unknown key {unknown[0]!r}; keys: {', '.join(sorted(known))}")
        return cls(d["method"], d["space"], float(d.get("strength", 1.0)),
                   matrix=d.get("matrix"), offset=d.get("offset"), center=d.get("center"), lut_x=d.get("lut_x"),
                   lut_y=d.get("lut_y"))


# -- fitting -------------------------------------------------------------------------------------
def mkl_matrix(cov_source: np.ndarray, cov_reference: np.ndarray, *, regularization: float = 1e-6) -> np.ndarray:
    """Pitié's linear Monge–Kantorovich solution T (symmetric, 3x3) with ``T A T = B``.

    ``A`` is the source covariance, ``B`` the reference's:
    ``T = A^-1/2 (A^1/2 B A^1/2)^1/2 A^-1/2``, computed through two eigendecompositions as in Pitié's
    reference code. Both covariances are first regularised by adding ``regularization`` times their mean
    variance (at least 1e-12) to the diagonal, so near-singular statistics (a grey element) do not blow
    up, and equal statistics still give exactly ``T = I``.
    """
    def reg(m):
        m = 0.5 * (m + m.T)
        lam = max(regularization * float(np.trace(m)) / 3.0, 1e-12)
        return m + lam * np.eye(3)

    a, b = reg(cov_source), reg(cov_reference)
    da2, ua = np.linalg.eigh(a)
    da = np.sqrt(np.maximum(da2, 1e-24))
    c = (da[:, None] * (ua.T @ b @ ua)) * da[None, :]
    dc2, uc = np.linalg.eigh(0.5 * (c + c.T))
    dc = np.sqrt(np.maximum(dc2, 0.0))
    da_inv = 1.0 / da
    inner = (uc * dc[None, :]) @ uc.T
    t = ua @ (da_inv[:, None] * inner * da_inv[None, :]) @ ua.T
    return 0.5 * (t + t.T)


def _inverse_cdf(c: np.ndarray, cdf: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Inverse of the piecewise-linear CDF given at ``edges`` (non-decreasing, 0 → 1)."""
    nz = np.nonzero(np.diff(cdf) > 0)[0]
    lo = edges[nz[0]]          # left edge of the first populated bin
    hi = edges[nz[-1] + 1]     # right edge of the last populated bin
    # keep strictly increasing cdf knots (first edge of each plateau run) for interpolation
    keep = np.concatenate([[True], np.diff(cdf) > 0])
    x = np.interp(c, cdf[keep], edges[keep])
    return np.clip(x, lo, hi)


def _histogram_luts(xs: np.ndarray, ws: np.ndarray, xr: np.ndarray, wr: np.ndarray,
                    bins: int) -> tuple[np.ndarray, np.ndarray]:
    lut_x = np.empty((3, bins + 1))
    lut_y = np.empty((3, bins + 1))
    for c in range(3):
        # bins span the joint range without its most extreme 0.01 % (a firefly must not make every bin
        # coarse); values beyond fall into the end bins, and the mapping continues past them with slope 1
        both = np.concatenate([xs[:, c], xr[:, c]])
        lo, hi = np.quantile(both, [1e-4, 1.0 - 1e-4])
        if hi - lo < 1e-9:
            lo, hi = both.min(), both.max()
        if hi - lo < 1e-9:
            hi = lo + 1e-9
        edges = np.linspace(lo, hi, bins + 1)
        scale = bins / (hi - lo)
        idx_s = np.clip(((xs[:, c] - lo) * scale).astype(np.int64), 0, bins - 1)
        idx_r = np.clip(((xr[:, c] - lo) * scale).astype(np.int64), 0, bins - 1)
        hs = np.bincount(idx_s, weights=ws, minlength=bins)
        hr = np.bincount(idx_r, weights=wr, minlength=bins)
        cdf_s = np.concatenate([[0.0], np.cumsum(hs)]) / hs.sum()
        cdf_r = np.concatenate([[0.0], np.cumsum(hr)]) / hr.sum()
        lut_x[c] = edges
        lut_y[c] = _inverse_cdf(cdf_s, cdf_r, edges)
    return lut_x, lut_y


def fit_color_transfer(image: np.ndarray, reference: np.ndarray, *, method: str = "mkl",
                       space: str | None = None, strength: float = 1.0, image_weights=None,
                       reference_weights=None, max_samples: int | None = 1 << 18, bins: int = 2048,
                       regularization: float = 1e-6) -> ColorTransform:
    """Fit a colour transfer from ``image`` (the element) to ``reference`` (the plate or a region of it).

    Parameters
    ----------
    image, reference : np.ndarray
        ``(H, W, 3)`` or premultiplied ``(H, W, 4)`` float32 scene-linear ACEScg (any sizes).
    method : {"reinhard", "mkl", "histogram"}
    space : {"linear", "acescct", "lab", "lalphabeta"} or None
        Where statistics are computed and matched; None picks the method's default
        (:data:`DEFAULT_SPACE`).
    strength : float
        0 (no change) to 1 (full transfer), blended in ``space``.
    image_weights, reference_weights : np.ndarray or None
        ``(H, W)`` mattes (weights >= 0) restricting where statistics are taken, e.g. the environment part
        of the element and the sky of the plate. They multiply each image's alpha.
    max_samples : int or None
        Statistics use at most this many pixels per image (every k-th; None: all). 2^18 by default:
        the moments of a quarter of a million pixels are as good as the whole frame's.
    bins : int
        Histogram bins per channel (``histogram`` only).
    regularization : float
        Relative diagonal loading of the covariances in the MKL solution (:func:`mkl_matrix`).

    Returns
    -------
    ColorTransform
    """
    if method not in METHODS:
        raise InputError(f"unknown colour-transfer method {method!r}; allowed: {', '.join(METHODS)}")
    space = space or DEFAULT_SPACE[method]
    if space not in SPACES:
        raise InputError(f"unknown colour-transfer space {space!r}; allowed: {', '.join(SPACES)}")
    xs, ws = collect_samples(image, image_weights, what="element", max_samples=max_samples)
    xr, wr = collect_samples(reference, reference_weights, what="reference", max_samples=max_samples)
    xs, xr = encode(xs, space), encode(xr, space)
    mu_s, cov_s = weighted_stats(xs, ws)
    mu_r, cov_r = weighted_stats(xr, wr)
    sd_s = np.sqrt(np.maximum(np.diag(cov_s), 0.0))
    sd_r = np.sqrt(np.maximum(np.diag(cov_r), 0.0))
    stats = {"space": space, "element_mean": mu_s.tolist(), "element_std": sd_s.tolist(),
             "reference_mean": mu_r.tolist(), "reference_std": sd_r.tolist(),
             "element_samples": int(xs.shape[0]), "reference_samples": int(xr.shape[0])}
    notes: list[str] = []
    const_r = sd_r < STD_FLOOR
    const_s = sd_s < STD_FLOOR
    for c in range(3):
        if const_r[c]:
            notes.append(f"reference is constant in {space} channel {c}: mean-only transfer")
        elif const_s[c]:
            notes.append(f"element is constant in {space} channel {c}: mean-only transfer")
    if method == "reinhard":
        scale = np.where(const_r | const_s, 1.0, sd_r / np.where(const_s, 1.0, sd_s))
        tr = ColorTransform(method, space, strength, np.diag(scale), mu_r, mu_s, stats=stats, notes=notes)
    elif method == "mkl":
        if np.all(const_r):
            t = np.eye(3)
        else:
            t = mkl_matrix(cov_s, cov_r, regularization=regularization)
            if np.any(const_r):
                # constant reference channels: keep the element's spread there (mean-only)
                t[const_r, :] = 0.0
                t[:, const_r] = 0.0
                t[const_r, const_r] = 1.0
        tr = ColorTransform(method, space, strength, t, mu_r, mu_s, stats=stats, notes=notes)
    else:
        lut_x, lut_y = _histogram_luts(xs, ws, xr, wr, int(bins))
        for c in range(3):
            if const_r[c] or const_s[c]:
                lut_y[c] = lut_x[c] + (mu_r[c] - mu_s[c])
        tr = ColorTransform(method, space, strength, lut_x=lut_x, lut_y=lut_y, stats=stats, notes=notes)
    for note in notes:
        log.info("colour transfer: %s", note)
    return tr


def color_transfer(image: np.ndarray, reference: np.ndarray, *, method: str = "mkl",
                   space: str | None = None, strength: float = 1.0, image_weights=None,
                   reference_weights=None, max_samples: int | None = 1 << 18, bins: int = 2048) -> np.ndarray:
    """Fit (see :func:`fit_color_transfer`) and apply a colour transfer to ``image``.

    ``image``: ``(H, W, 3)`` or premultiplied ``(H, W, 4)`` float32 scene-linear ACEScg; returns the same
    shape and alpha state, float32, unclipped.
    """
    tr = fit_color_transfer(image, reference, method=method, space=space, strength=strength,
                            image_weights=image_weights, reference_weights=reference_weights,
                            max_samples=max_samples, bins=bins)
    return tr.apply(image)


def transfer_reinhard(image, reference, **kwargs) -> np.ndarray:
    """Reinhard mean/std transfer (default space ``lalphabeta``); keywords as :func:`color_transfer`."""
    return color_transfer(image, reference, method="reinhard", **kwargs)


def transfer_mkl(image, reference, **kwargs) -> np.ndarray:
    """Pitié's linear Monge–Kantorovich transfer (default space ``acescct``); keywords as :func:`color_transfer`."""
    return color_transfer(image, reference, method="mkl", **kwargs)


def transfer_histogram(image, reference, **kwargs) -> np.ndarray:
    """Per-channel histogram (CDF) matching (default space ``acescct``); keywords as :func:`color_transfer`."""
    return color_transfer(image, reference, method="histogram", **kwargs)
