"""Alpha from a trimap and edge-true foreground colour, through pymatting.

Alpha estimators over pymatting's building blocks (matting Laplacians, preconditioners, conjugate
gradients):

* :func:`estimate_alpha_closed_form` — Levin et al.'s closed-form matting (3x3 windows, incomplete-Cholesky
  preconditioned CG): the reference quality.
* :func:`estimate_alpha_closed_form_fast` — the same solve at half resolution, brought back to full
  resolution with a guided filter: on the alphamatting.com set about 3-4x faster, for 18 % (small trimaps)
  to 6 % (large trimaps) more SAD.
* :func:`estimate_alpha_large_kernel` — He et al.'s large-kernel matting Laplacian applied matrix-free with
  box filters (Jacobi preconditioner): no sparse matrix to build, so memory stays flat on large unknown
  regions; on CPU it converges more slowly than the closed-form solve.
* :func:`estimate_alpha_knn` — KNN matting (nonlocal neighbours in colour + position).

and :func:`estimate_foreground` (pymatting's multilevel foreground estimation, Germer et al.) so the
semi-transparent edge carries the subject's own colour instead of the screen's or the background's.

Colour encodings
----------------
Plates arrive scene-linear (ACEScg, possibly above 1.0). The two steps treat that differently:

* **Alpha is solved in a display-like encoding.** The matting Laplacians assume [0, 1] data, and their
  regularisation ``epsilon`` is an absolute variance: in linear light the shadows are compressed into a
  sliver near 0 where ``epsilon`` swamps the local colour variance and the matte goes soft, while
  highlights above 1.0 break the [0, 1] assumption (on alphamatting.com images tried, solving in linear
  light raised the closed-form SAD by 30-60 %). By default (``encoding="srgb"``) the plate is converted with
  OpenColorIO from its colour space to linear Rec.709 primaries, clipped to [0, 1] and passed through the
  sRGB curve — an sRGB photograph ingested into ACEScg is solved on exactly its own pixel values, as every
  matting method was tuned on. For HDR plates with important detail above 1.0, ``encoding="acescct"``
  uses the ACEScct log curve on the working-space values, normalised to [0, 1] (0 → 0, 222.9 → 1).
  ``"linear"`` clips to [0, 1] and solves in linear light. The alpha is a coverage fraction and needs no
  conversion back.
* **Foreground colour is solved in scene-linear light**, where the compositing equation
  ``I = alpha F + (1 - alpha) B`` actually holds, so ``alpha * F`` comped over the original background
  gives the plate back. pymatting's solver clamps colours to [0, 1], so the plate is divided by its
  maximum (at least 1) before and multiplied back after — the equations are linear, so this is exact and
  HDR values survive. Negative working-space values (out-of-gamut) are clamped to 0 in the edge band only;
  where alpha is 1 the plate's own colour is kept exactly.

Bad or degenerate input (documented behaviour, never a crash): a trimap without unknown pixels is
returned as the alpha; without any foreground the alpha is 0, without any background 1; a trimap with no
known pixel at all raises :class:`~composite.core.errors.InputError`. A solve that does not reach the
tolerance within ``max_iterations`` returns its last iterate (logged as a warning).

Example
-------
>>> import numpy as np
>>> from composite.matte.refine import estimate_alpha_closed_form
>>> img = np.zeros((8, 12, 3), np.float32); img[:, 6:] = 0.8            # a hard edge at column 6
>>> tri = np.full((8, 12), 0.5, np.float32); tri[:, :3] = 0; tri[:, 9:] = 1
>>> a = estimate_alpha_closed_form(img, tri)
>>> [round(float(v), 2) for v in a[4, 2:10]]                           # flat unknown pixels stay near 0/1
[0.0, 0.02, 0.03, 0.04, 0.96, 0.97, 0.98, 1.0]
"""

from __future__ import annotations

import contextlib
import io
import logging

import cv2
import numpy as np

from ..core.errors import InputError
from .trimap import normalize_trimap

log = logging.getLogger(__name__)

ENCODINGS = ("srgb", "acescct", "linear")
METHODS = ("closed_form", "closed_form_fast", "large_kernel", "knn")

# ACEScct constants (S-2016-001)
_CCT_X_BRK = 0.0078125
_CCT_A = 10.5402377416545
_CCT_B = 0.0729055341958355
_CCT_MAX = 222.86094420380761  # linear value that encodes to 1.0
_LINEAR_709 = "Linear Rec.709 (sRGB)"


def encode_for_matting(rgb: np.ndarray, *, encoding: str = "srgb", colorspace: str = "ACEScg",
                       dtype: type = np.float64) -> np.ndarray:
    """Scene-linear RGB → [0, 1] encoded RGB for the matting solvers and SAM (see the module docstring).

    Parameters
    ----------
    rgb : np.ndarray
        ``(H, W, 3)`` float32 scene-linear colour in ``colorspace``, any alpha state (colour used as is).
    encoding : {"srgb", "acescct", "linear"}
        ``srgb``: converted to linear Rec.709 primaries (OpenColorIO), clipped to [0, 1], sRGB curve — an
        sRGB file ingested into the working space encodes back to its own values. ``acescct``: the ACEScct
        curve on the working-space channels, normalised to [0, 1]. ``linear``: clipped to [0, 1].
    colorspace : str
        OCIO name of ``rgb``'s colour space (``Raw`` or ``""``: no primaries conversion).
    dtype : np.float64 or np.float32
        Output type: float64 for pymatting's solvers, float32 for the guided filter and SAM.

    Returns
    -------
    np.ndarray
        ``(H, W, 3)`` in [0, 1].
    """
    if encoding not in ENCODINGS:
        raise InputError(f"unknown matting encoding {encoding!r}; allowed: {', '.join(ENCODINGS)}")
    x = np.nan_to_num(np.asarray(rgb, np.float32), nan=0.0, posinf=_CCT_MAX, neginf=0.0)
    if encoding == "srgb" and colorspace and colorspace != "Raw":
        from ..color import ocio

        x = ocio.convert(np.ascontiguousarray(x), colorspace, _LINEAR_709)
    x = x.astype(dtype, copy=False)
    if encoding == "linear":
        return np.clip(x, 0.0, 1.0)
    if encoding == "srgb":
        x = np.clip(x, 0.0, 1.0)
        lo = x <= 0.0031308
        out = np.power(x, dtype(1.0 / 2.4))
        out *= dtype(1.055)
        out -= dtype(0.055)
        out[lo] = x[lo] * dtype(12.92)
        return out
    x = np.clip(x, 0.0, _CCT_MAX)
    cct = np.where(x <= _CCT_X_BRK, _CCT_A * x + _CCT_B, (np.log2(np.maximum(x, _CCT_X_BRK)) + 9.72) / 17.52)
    return np.clip((cct - _CCT_B) / (1.0 - _CCT_B), 0.0, 1.0).astype(dtype, copy=False)


def _rgb_of(image: np.ndarray, what: str = "image") -> np.ndarray:
    a = np.asarray(image)
    if a.ndim != 3 or a.shape[2] < 3:
        raise InputError(f"{what}: expected (H, W, 3) or (H, W, 4) colour, got shape {a.shape}")
    return a[:, :, :3]


def _prepare(image: np.ndarray, trimap: np.ndarray):
    rgb = _rgb_of(image)
    tri = normalize_trimap(trimap)
    if tri.shape != rgb.shape[:2]:
        raise InputError(f"trimap is {tri.shape[1]}x{tri.shape[0]} but the image is {rgb.shape[1]}x{rgb.shape[0]}")
    return rgb, tri


def _degenerate(tri: np.ndarray) -> np.ndarray | None:
    """The alpha when the trimap leaves nothing to solve, else None."""
    fg = tri >= 1.0
    bg = tri <= 0.0
    unknown = ~(fg | bg)
    if not unknown.any():
        return tri.astype(np.float32)
    if not fg.any() and not bg.any():
        raise InputError("trimap has no known pixel (everything is unknown): mark some foreground (white) "
                         "and background (black), or build the trimap from a mask (TrimapFromMask)")
    if not fg.any():
        return np.zeros(tri.shape, np.float32)
    if not bg.any():
        return np.ones(tri.shape, np.float32)
    return None


def _crop_box(unknown: np.ndarray, margin: int) -> tuple[slice, slice]:
    ys = np.flatnonzero(unknown.any(axis=1))
    xs = np.flatnonzero(unknown.any(axis=0))
    h, w = unknown.shape
    return (slice(max(0, ys[0] - margin), min(h, ys[-1] + margin + 1)),
            slice(max(0, xs[0] - margin), min(w, xs[-1] + margin + 1)))


def _cg(A, b, M, *, max_iterations: int, tolerance: float, what: str) -> np.ndarray:
    from pymatting.solver.cg import cg

    last = {}

    def keep(A_, x, b_, norm_b, r, norm_r):
        last["x"] = x
        last["rel"] = norm_r / max(norm_b, 1e-300)

    try:
        return cg(A, b, M=M, rtol=tolerance, maxiter=max_iterations, callback=keep)
    except ValueError:
        if "x" not in last:
            raise
        log.warning("%s: conjugate gradients stopped after %d iterations at relative residual %.2e "
                    "(tolerance %.1e); using the last iterate", what, max_iterations, last["rel"], tolerance)
        return last["x"]


def _finish(x: np.ndarray, tri_crop: np.ndarray) -> np.ndarray:
    x = np.clip(np.nan_to_num(x, nan=0.0), 0.0, 1.0).reshape(tri_crop.shape)
    fg, bg = tri_crop >= 1.0, tri_crop <= 0.0
    x[fg] = 1.0
    x[bg] = 0.0
    return x


def _solve(image: np.ndarray, trimap: np.ndarray, *, encoding: str, colorspace: str, margin: int, crop: bool,
           solver) -> np.ndarray:
    rgb, tri = _prepare(image, trimap)
    early = _degenerate(tri)
    if early is not None:
        return early
    unknown = (tri > 0.0) & (tri < 1.0)
    sy, sx = _crop_box(unknown, margin) if crop else (slice(None), slice(None))
    enc = encode_for_matting(rgb[sy, sx], encoding=encoding, colorspace=colorspace)
    tri_c = tri[sy, sx]
    alpha = tri.astype(np.float32).copy()
    alpha[unknown] = 0.0
    alpha[tri >= 1.0] = 1.0
    if tri_c.min() > 0.0 or tri_c.max() < 1.0:
        # the crop sees only one kind of known pixel: solve on the full frame instead
        sy, sx = slice(None), slice(None)
        enc = encode_for_matting(rgb, encoding=encoding, colorspace=colorspace)
        tri_c = tri
    alpha[sy, sx] = solver(enc, tri_c).astype(np.float32)
    return alpha


def estimate_alpha_closed_form(image: np.ndarray, trimap: np.ndarray, *, encoding: str = "srgb",
                               colorspace: str = "ACEScg", epsilon: float = 1e-7, radius: int = 1, max_iterations: int = 10000,
                               tolerance: float = 1e-7, crop: bool = True) -> np.ndarray:
    """Closed-form matting (Levin, Lischinski, Weiss 2008) through pymatting.

    Parameters
    ----------
    image : np.ndarray
        ``(H, W, 3|4)`` float32 scene-linear working-space colour (premultiplied or opaque; the colour
        channels are used as they are).
    trimap : np.ndarray
        Any trimap :func:`~composite.matte.trimap.normalize_trimap` accepts, of the image's size.
    encoding : {"srgb", "acescct", "linear"}
        Encoding the solver sees (module docstring, :func:`encode_for_matting`).
    colorspace : str
        OCIO colour space of ``image`` (for the ``srgb`` encoding's primaries).
    epsilon : float
        Laplacian regularisation (larger: smoother alpha, faster convergence).
    radius : int
        Local window radius (window ``2r+1`` square).
    max_iterations, tolerance : int, float
        Conjugate-gradient limits (relative residual).
    crop : bool
        Solve only over the unknown region's bounding box plus a margin of ``2 * radius + 1`` pixels
        (the Laplacian rows of unknown pixels never reach farther), which gives the same alpha faster.

    Returns
    -------
    np.ndarray
        ``(H, W)`` float32 alpha in [0, 1]; known pixels keep their trimap value.
    """
    from pymatting.laplacian.cf_laplacian import cf_laplacian
    from pymatting.preconditioner.ichol import ichol

    def solver(enc, tri):
        fg = (tri >= 1.0).ravel()
        known = fg | (tri <= 0.0).ravel()
        unknown = ~known
        L = cf_laplacian(enc, epsilon=epsilon, radius=radius, is_known=known)
        L_U = L[unknown, :][:, unknown]
        R = L[unknown, :][:, known]
        x = tri.astype(np.float64).ravel().copy()
        notes = io.StringIO()
        with contextlib.redirect_stdout(notes):  # ichol prints its retries with a larger shift
            M = ichol(L_U)
        if notes.getvalue().strip():
            log.debug("closed-form matting preconditioner: %s", " ".join(notes.getvalue().split()))
        x[unknown] = _cg(L_U, -R.dot(fg[known].astype(np.float64)), M, max_iterations=max_iterations,
                         tolerance=tolerance, what="closed-form matting")
        return _finish(x, tri)

    return _solve(image, trimap, encoding=encoding, colorspace=colorspace, margin=2 * radius + 1, crop=crop,
                  solver=solver)


def _downsample_trimap(tri: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """A low-resolution trimap whose known pixels are known at every full-resolution pixel they cover."""
    fg = cv2.resize((tri >= 1.0).astype(np.float32), size, interpolation=cv2.INTER_AREA) >= 0.999
    bg = cv2.resize((tri <= 0.0).astype(np.float32), size, interpolation=cv2.INTER_AREA) >= 0.999
    out = np.full(fg.shape, 0.5, np.float32)
    out[fg] = 1.0
    out[bg] = 0.0
    return out


def estimate_alpha_closed_form_fast(image: np.ndarray, trimap: np.ndarray, *, scale: float = 0.5,
                                    encoding: str = "srgb", colorspace: str = "ACEScg", epsilon: float = 1e-7,
                                    radius: int = 1, guided_radius: int = 2, guided_eps: float = 1e-5,
                                    max_iterations: int = 10000, tolerance: float = 1e-7) -> np.ndarray:
    """Closed-form matting at reduced resolution, brought back to full resolution by a guided filter.

    The plate (area filter) and the trimap (a low-resolution pixel is known only where all the pixels it
    covers are) are scaled by ``scale``, solved with :func:`estimate_alpha_closed_form`, the alpha is
    upsampled bilinearly and guided-filtered with the full-resolution encoded plate (``guided_radius``,
    ``guided_eps``) so edges follow the picture again, and the trimap's known pixels are pinned. On the
    alphamatting.com set at ``scale=0.5``: 3-4x faster than the full solve, SAD 18 % (trimap1) and 6 %
    (trimap2) higher.
    Other parameters as :func:`estimate_alpha_closed_form`. Returns ``(H, W)`` float32.
    """
    from .guided import guided_filter

    if not 0.05 <= scale <= 1.0:
        raise InputError(f"scale must be in [0.05, 1], got {scale}")
    rgb, tri = _prepare(image, trimap)
    early = _degenerate(tri)
    if early is not None:
        return early
    h, w = tri.shape
    size = (max(3, int(round(w * scale))), max(3, int(round(h * scale))))
    if scale == 1.0 or size[0] >= w or size[1] >= h:
        return estimate_alpha_closed_form(rgb, tri, encoding=encoding, colorspace=colorspace, epsilon=epsilon,
                                          radius=radius, max_iterations=max_iterations, tolerance=tolerance)
    small_tri = _downsample_trimap(tri, size)
    if not ((small_tri >= 1.0).any() and (small_tri <= 0.0).any()):
        # thin known regions vanished at low resolution: solve at full resolution instead
        return estimate_alpha_closed_form(rgb, tri, encoding=encoding, colorspace=colorspace, epsilon=epsilon,
                                          radius=radius, max_iterations=max_iterations, tolerance=tolerance)
    small = cv2.resize(np.ascontiguousarray(rgb, np.float32), size, interpolation=cv2.INTER_AREA)
    low = estimate_alpha_closed_form(small, small_tri, encoding=encoding, colorspace=colorspace, epsilon=epsilon,
                                     radius=radius, max_iterations=max_iterations, tolerance=tolerance)
    up = cv2.resize(low, (w, h), interpolation=cv2.INTER_LINEAR)
    guide = encode_for_matting(rgb, encoding=encoding, colorspace=colorspace).astype(np.float32)
    out = np.clip(guided_filter(guide, up, radius=guided_radius, eps=guided_eps), 0.0, 1.0)
    out[tri >= 1.0] = 1.0
    out[tri <= 0.0] = 0.0
    return out.astype(np.float32)


def estimate_alpha_large_kernel(image: np.ndarray, trimap: np.ndarray, *, encoding: str = "srgb",
                                colorspace: str = "ACEScg", epsilon: float = 1e-7, radius: int = 10, max_iterations: int = 10000,
                                tolerance: float = 1e-7, crop: bool = True) -> np.ndarray:
    """Large-kernel matting (He, Sun, Tang 2010): the matting Laplacian of ``(2r+1)^2`` windows applied with
    box filters, no matrix built. Same parameters and return value as :func:`estimate_alpha_closed_form`
    (known pixels are soft constraints with weight 100, as in pymatting). ``radius`` is reduced on images
    (or crops) smaller than ``4 * radius + 1`` pixels."""
    from pymatting.laplacian.lkm_laplacian import lkm_laplacian

    def solver(enc, tri):
        r = min(radius, (min(enc.shape[:2]) - 1) // 4)  # pymatting's box filters need 4r+1 pixels each way
        if r < 1:
            raise InputError(f"large-kernel matting needs an image of at least 5x5 pixels, got "
                             f"{enc.shape[1]}x{enc.shape[0]}")
        L_matvec, diag_L = lkm_laplacian(enc, epsilon=epsilon, radius=r)
        known = ((tri >= 1.0) | (tri <= 0.0)).ravel()
        c = 100.0 * known
        b = 100.0 * (tri >= 1.0).ravel()
        inv_diag = 1.0 / (diag_L + c)
        x = _cg(lambda v: L_matvec(v) + c * v, b, lambda v: inv_diag * v, max_iterations=max_iterations,
                tolerance=tolerance, what="large-kernel matting")
        return _finish(x, tri)

    return _solve(image, trimap, encoding=encoding, colorspace=colorspace, margin=2 * radius + 1, crop=crop,
                  solver=solver)


def estimate_alpha_knn(image: np.ndarray, trimap: np.ndarray, *, encoding: str = "srgb",
                       colorspace: str = "ACEScg", neighbors: tuple[int, int] = (20, 10), max_iterations: int = 10000,
                       tolerance: float = 1e-7, crop: bool = True, margin: int = 32) -> np.ndarray:
    """KNN matting (Chen, Li, Tang 2013) through pymatting's KNN Laplacian (Jacobi-preconditioned CG).

    Neighbours are nonlocal, so ``crop`` keeps ``margin`` pixels of known context around the unknown
    region (a crop changes the result slightly, unlike closed form). Returns ``(H, W)`` float32."""
    from pymatting.laplacian.knn_laplacian import knn_laplacian
    from pymatting.preconditioner.jacobi import jacobi

    def solver(enc, tri):
        import scipy.sparse

        L = knn_laplacian(enc, n_neighbors=list(neighbors))
        known = ((tri >= 1.0) | (tri <= 0.0)).ravel()
        A = (L + scipy.sparse.diags(100.0 * known)).tocsr()
        b = 100.0 * (tri >= 1.0).ravel()
        x = _cg(A, b, jacobi(A), max_iterations=max_iterations, tolerance=tolerance, what="KNN matting")
        return _finish(x, tri)

    return _solve(image, trimap, encoding=encoding, colorspace=colorspace, margin=margin, crop=crop, solver=solver)


def estimate_alpha(image: np.ndarray, trimap: np.ndarray, *, method: str = "closed_form", **options) -> np.ndarray:
    """Dispatch to ``estimate_alpha_<method>``; ``method`` in :data:`METHODS`."""
    funcs = {"closed_form": estimate_alpha_closed_form, "closed_form_fast": estimate_alpha_closed_form_fast,
             "large_kernel": estimate_alpha_large_kernel, "knn": estimate_alpha_knn}
    if method not in funcs:
        raise InputError(f"unknown alpha method {method!r}; allowed: {', '.join(METHODS)}")
    return funcs[method](image, trimap, **options)


def estimate_foreground(image: np.ndarray, alpha: np.ndarray, *, regularization: float = 1e-5,
                        gradient_weight: float = 1.0) -> np.ndarray:
    """Straight (unpremultiplied) foreground colour from a plate and its alpha, in scene-linear light.

    pymatting's multilevel solver (Germer et al. 2020) on the plate scaled into [0, 1] by its maximum
    (exact: the equations are linear), then scaled back; where ``alpha == 1`` the plate's colour is kept.

    Parameters
    ----------
    image : np.ndarray
        ``(H, W, 3|4)`` float32 scene-linear colour (premultiplied or opaque plate).
    alpha : np.ndarray
        ``(H, W)`` or ``(H, W, 1)`` float32 in [0, 1].

    Returns
    -------
    np.ndarray
        ``(H, W, 3)`` float32 straight foreground colour, same colour space as ``image``.
    """
    from pymatting.foreground.estimate_foreground_ml import estimate_foreground_ml

    rgb = _rgb_of(image).astype(np.float32)
    a = np.asarray(alpha, np.float32)
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[:, :, 0]
    if a.shape != rgb.shape[:2]:
        raise InputError(f"alpha is {a.shape[1] if a.ndim > 1 else '?'}x{a.shape[0]} but the image is "
                         f"{rgb.shape[1]}x{rgb.shape[0]}")
    a = np.clip(np.nan_to_num(a, nan=0.0), 0.0, 1.0).astype(np.float32)
    clean = np.nan_to_num(rgb, nan=0.0, posinf=0.0, neginf=0.0)
    scale = max(1.0, float(clean.max()))
    src = np.ascontiguousarray(np.clip(clean / np.float32(scale), 0.0, 1.0), dtype=np.float32)
    fg = estimate_foreground_ml(src, np.ascontiguousarray(a), regularization=regularization,
                                gradient_weight=gradient_weight)
    fg = np.asarray(fg, np.float32) * np.float32(scale)
    solid = a >= 1.0
    fg[solid] = rgb[solid]
    return fg


def foreground_premultiplied(image: np.ndarray, alpha: np.ndarray, **options) -> np.ndarray:
    """``(H, W, 4)`` float32 premultiplied RGBA: :func:`estimate_foreground` times alpha, with alpha."""
    a = np.asarray(alpha, np.float32)
    if a.ndim == 3:
        a = a[:, :, 0]
    fg = estimate_foreground(image, a, **options)
    a = np.clip(np.nan_to_num(a, nan=0.0), 0.0, 1.0)
    return np.concatenate([fg * a[:, :, None], a[:, :, None]], axis=2).astype(np.float32)
