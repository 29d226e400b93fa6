"""Guided-filter matte refinement (He, Sun, Tang: "Guided Image Filtering", 2010/2013).

The filter fits, in every ``(2r+1)^2`` window, a linear model ``q = a . I + b`` from the guide ``I`` (the
plate) to the input ``p`` (a coarse matte), then averages the models of all windows covering a pixel.
Edges of the output follow the plate's edges, so a hard SAM mask or a blocky keyer matte gains the soft,
hair-following transitions of the picture — at a cost of a dozen box filters, fast enough for video.
With ``subsample = s > 1`` the models are fitted on an ``s``-times smaller image and their averaged
coefficients are upsampled bilinearly (He & Sun, "Fast Guided Filter", 2015).

OpenCV's ``cv2.ximgproc.guidedFilter`` lives in opencv-contrib, which composite does not depend on; the
filter is a few vectorised lines over ``cv2.boxFilter``. Windows are truncated at the image border and
normalised by the number of pixels inside (the reference implementation's behaviour).

Example
-------
>>> import numpy as np
>>> from composite.matte.guided import guided_filter
>>> guide = np.zeros((6, 8), np.float32); guide[:, 4:] = 1.0
>>> p = np.full((6, 8), 0.5, np.float32)
>>> float(np.abs(guided_filter(guide, p, radius=2, eps=1e-3) - 0.5).max()) < 1e-5   # constants pass through
True
"""

from __future__ import annotations

import cv2
import numpy as np

from ..core.errors import InputError


def _box_sum(x: np.ndarray, r: int) -> np.ndarray:
    return cv2.boxFilter(x, -1, (2 * r + 1, 2 * r + 1), normalize=False, borderType=cv2.BORDER_CONSTANT)


def solve_symmetric(cov: dict, rhs: list) -> list:
    """Solve ``Sigma a = rhs`` per pixel for a symmetric 1x1, 2x2 or 3x3 ``Sigma`` (closed form; cofactors
    for 3x3). ``cov[i, j]`` (i <= j) and the ``rhs`` entries are arrays (NumPy or torch) that broadcast
    together; returns the list of ``a`` entries. Only arithmetic operators are used, so the torch path
    shares it."""
    c = len(rhs)
    if c == 1:
        return [rhs[0] / cov[0, 0]]
    if c == 2:
        inv_det = 1.0 / (cov[0, 0] * cov[1, 1] - cov[0, 1] * cov[0, 1])
        return [(cov[1, 1] * rhs[0] - cov[0, 1] * rhs[1]) * inv_det,
                (cov[0, 0] * rhs[1] - cov[0, 1] * rhs[0]) * inv_det]
    s00, s01, s02, s11, s12, s22 = (cov[0, 0], cov[0, 1], cov[0, 2], cov[1, 1], cov[1, 2], cov[2, 2])
    i00 = s11 * s22 - s12 * s12
    i01 = s02 * s12 - s01 * s22
    i02 = s01 * s12 - s02 * s11
    i11 = s00 * s22 - s02 * s02
    i12 = s01 * s02 - s00 * s12
    i22 = s00 * s11 - s01 * s01
    inv_det = 1.0 / (s00 * i00 + s01 * i01 + s02 * i02)
    return [(i00 * rhs[0] + i01 * rhs[1] + i02 * rhs[2]) * inv_det,
            (i01 * rhs[0] + i11 * rhs[1] + i12 * rhs[2]) * inv_det,
            (i02 * rhs[0] + i12 * rhs[1] + i22 * rhs[2]) * inv_det]


def _fit(guide: np.ndarray, src: np.ndarray, r: int, eps: float) -> tuple[np.ndarray, np.ndarray]:
    """Per-pixel window-averaged coefficients ``(mean_a, mean_b)``: ``mean_a`` is ``(H, W, c, k)``,
    ``mean_b`` ``(H, W, k)`` for a ``c``-channel guide (1, 2 or 3, centred near 0) and ``k``-channel input.

    Covariances are formed in float32 for 1- and 2-channel guides (the guide is centred, so
    ``E[x^2] - E[x]^2`` loses nothing that matters next to ``eps``) and in float64 for 3-channel guides,
    whose cofactor inverse amplifies cancellation on near-grey plates."""
    h, w, c = guide.shape
    k = src.shape[2]
    work = np.float64 if c == 3 else np.float32
    n = _box_sum(np.ones((h, w), np.float32), r)[:, :, None]
    pairs = [(i, j) for i in range(c) for j in range(i, c)]
    planes = [guide, src] + [(guide[:, :, i] * guide[:, :, j])[:, :, None] for i, j in pairs] + \
        [guide[:, :, i:i + 1] * src for i in range(c)]
    # one box filter over all planes (cv2 takes up to 512 channels; a 3-channel guide needs 3 + 4k + 6)
    means = _box_sum(np.ascontiguousarray(np.concatenate(planes, axis=2)), r)
    means /= n
    mean_i = means[:, :, :c]
    mean_p = means[:, :, c:c + k]
    o = c + k
    cov = {}
    for idx, (i, j) in enumerate(pairs):
        cov[i, j] = means[:, :, o + idx].astype(work, copy=False) - mean_i[:, :, i].astype(work, copy=False) * mean_i[:, :, j]
        if i == j:
            cov[i, j] += work(eps)
    o += len(pairs)
    cip = [means[:, :, o + i * k:o + (i + 1) * k].astype(work, copy=False) - mean_i[:, :, i:i + 1] * mean_p
           for i in range(c)]
    a = solve_symmetric({ij: v[:, :, None] for ij, v in cov.items()}, cip)
    b = mean_p - sum(a[i] * mean_i[:, :, i:i + 1] for i in range(c))
    coeff = np.concatenate([ai.astype(np.float32, copy=False) for ai in a] + [b.astype(np.float32, copy=False)], axis=2)
    mean_coeff = _box_sum(np.ascontiguousarray(coeff), r).reshape(h, w, (c + 1) * k)
    mean_coeff /= n
    return mean_coeff[:, :, :c * k].reshape(h, w, c, k), mean_coeff[:, :, c * k:]


def _is_finite(x: np.ndarray) -> bool:
    # a sum is non-finite when any element is (or when finite values overflow, a harmless false alarm)
    total = cv2.sumElems(x) if x.ndim == 2 or x.shape[2] <= 4 else (x.sum(dtype=np.float64),)
    return bool(np.isfinite(total).all())


def _finite(x: np.ndarray) -> np.ndarray:
    return x if _is_finite(x) else np.nan_to_num(x, nan=0.0, posinf=0.0, neginf=0.0)


def guided_filter(guide: np.ndarray, src: np.ndarray, *, radius: int = 8, eps: float = 1e-4,
                  subsample: int = 1) -> np.ndarray:
    """Guided filter of ``src`` by ``guide``.

    Parameters
    ----------
    guide : np.ndarray or sequence of np.ndarray
        ``(H, W)`` or ``(H, W, c)`` float guide with c = 1, 2 or 3 (values of order 1, e.g. an encoded
        plate), or a list of c ``(H, W)`` planes (such as a keyer's screen primary and secondary).
    src : np.ndarray
        ``(H, W)`` or ``(H, W, k)`` float input to filter (a matte).
    radius : int
        Window radius r (window ``2r+1`` square), at full resolution.
    eps : float
        Regularisation: edges with guide variance well below ``eps`` are smoothed away.
    subsample : int
        Fit the models on a ``subsample``-times smaller image (fast guided filter); 1 is exact.

    Returns
    -------
    np.ndarray
        float32 of ``src``'s shape.
    """
    if isinstance(guide, (list, tuple)):
        # separate planes (e.g. a keyer's split channels): no interleaved copy at full resolution
        gplanes = [np.ascontiguousarray(x, np.float32) for x in guide]
        if not gplanes or any(x.ndim != 2 or x.shape != gplanes[0].shape for x in gplanes):
            raise InputError(f"guided filter: guide planes must be (H, W) arrays of one size, "
                             f"got {[np.shape(x) for x in guide]}")
        g = None
        c = len(gplanes)
        gshape = gplanes[0].shape
    else:
        g = np.asarray(guide, np.float32)
        if g.ndim == 2:
            g = g[:, :, None]
        if g.ndim != 3:
            raise InputError(f"guided filter: guide {np.shape(guide)} must be (H, W) or (H, W, c)")
        c = g.shape[2]
        gshape = g.shape[:2]
    p = np.asarray(src, np.float32)
    squeeze = p.ndim == 2
    if squeeze:
        p = p[:, :, None]
    if p.ndim != 3 or gshape != p.shape[:2]:
        raise InputError(f"guided filter: guide {gshape} and input {np.shape(src)} must share (H, W)")
    if c not in (1, 2, 3):
        raise InputError(f"guided filter: guide must have 1, 2 or 3 channels, got {c}")
    if radius < 1 or eps <= 0 or subsample < 1:
        raise InputError(f"guided filter: need radius >= 1, eps > 0, subsample >= 1 "
                         f"(got radius={radius}, eps={eps}, subsample={subsample})")
    if g is not None:
        gplanes = None
    p = np.ascontiguousarray(p)
    h, w = p.shape[:2]

    def sanitise():
        nonlocal p, g, gplanes
        p = _finite(p)
        if g is not None:
            g = _finite(g)
        else:
            gplanes = [_finite(x) for x in gplanes]

    if subsample > 1:
        hs, ws = max(1, round(h / subsample)), max(1, round(w / subsample))

        def down(x):
            return cv2.resize(x, (ws, hs), interpolation=cv2.INTER_AREA).reshape(hs, ws, -1)

        def small():
            return (down(g) if g is not None else np.concatenate([down(x) for x in gplanes], axis=2)), down(p)

        gs, ps = small()
        # non-finite values spread through the area average: only then are the full arrays cleaned (to 0)
        if not (_is_finite(gs) and _is_finite(ps)):
            sanitise()
            gs, ps = small()
        r = max(1, round(radius / subsample))
    else:
        sanitise()
        gs = g if g is not None else np.dstack(gplanes)
        ps, r = p, radius
    # centring reduces float32 cancellation in E[x^2] - E[x]^2; the model is refolded onto the raw guide
    centre = gs.reshape(-1, c).mean(axis=0, dtype=np.float64).astype(np.float32)
    a, b = _fit(gs - centre, ps, r, eps)
    b = b - np.einsum("hwck,c->hwk", a, centre)
    k = p.shape[2]
    if k == 1:
        # one output plane: a sum of per-plane products (OpenCV, threaded), coefficients brought up
        # plane by plane (bilinear) when they were fitted on the smaller grid
        def full(x):
            x = np.ascontiguousarray(x)
            return cv2.resize(x, (w, h), interpolation=cv2.INTER_LINEAR) if subsample > 1 else x

        if gplanes is None:
            gplanes = [g[:, :, 0]] if c == 1 else cv2.split(g)
        q = full(b[:, :, 0])
        q = q.copy() if subsample == 1 else q
        for i in range(c):
            cv2.accumulateProduct(full(a[:, :, i, 0]), gplanes[i], q)
        return q if squeeze else q[:, :, None]
    if g is None:
        g = np.dstack(gplanes)
    if subsample > 1:
        a = cv2.resize(np.ascontiguousarray(a.reshape(hs, ws, -1)), (w, h),
                       interpolation=cv2.INTER_LINEAR).reshape(h, w, c, k)
        b = cv2.resize(np.ascontiguousarray(b), (w, h), interpolation=cv2.INTER_LINEAR).reshape(h, w, k)
    q = np.einsum("hwck,hwc->hwk", a, g) + b
    return q[:, :, 0] if squeeze else q


def refine_alpha_guided(image: np.ndarray, alpha: np.ndarray, *, radius: int = 8, eps: float = 1e-4,
                        subsample: int = 1, encoding: str = "srgb", colorspace: str = "ACEScg",
                        trimap: np.ndarray | None = None) -> np.ndarray:
    """Refine a coarse matte so its edges follow the plate.

    Parameters
    ----------
    image : np.ndarray
        ``(H, W, 3|4)`` float32 scene-linear plate (colour used as is); encoded with
        :func:`composite.matte.refine.encode_for_matting` (``encoding``, ``colorspace``: the image's OCIO
        colour space) to serve as the guide.
    alpha : np.ndarray
        ``(H, W)`` or ``(H, W, 1)`` coarse matte in [0, 1] (binary masks welcome).
    trimap : np.ndarray, optional
        Normalised trimap of the same size: its known pixels keep their value.

    Returns
    -------
    np.ndarray
        ``(H, W)`` float32 alpha in [0, 1].
    """
    from .refine import encode_for_matting

    a = np.asarray(alpha, np.float32)
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[:, :, 0]
    rgb = np.asarray(image)
    if rgb.ndim != 3 or rgb.shape[2] < 3:
        raise InputError(f"image: expected (H, W, 3|4) colour, got shape {rgb.shape}")
    if a.shape != rgb.shape[:2]:
        raise InputError(f"matte is {a.shape[-1]}x{a.shape[0]} but the image is {rgb.shape[1]}x{rgb.shape[0]}")
    guide = encode_for_matting(rgb[:, :, :3], encoding=encoding, colorspace=colorspace, dtype=np.float32)
    out = np.clip(guided_filter(guide, a, radius=radius, eps=eps, subsample=subsample), 0.0, 1.0)
    if trimap is not None:
        t = np.asarray(trimap, np.float32)
        if t.shape != a.shape:
            raise InputError(f"trimap is {t.shape[-1]}x{t.shape[0]} but the matte is {a.shape[1]}x{a.shape[0]}")
        out[t >= 1.0] = 1.0
        out[t <= 0.0] = 0.0
    return out.astype(np.float32)
