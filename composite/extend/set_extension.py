"""Set extension: extend a plate beyond its frame edges and fill regions left by removed objects.

Filling (:func:`inpaint`)
    ``telea`` / ``ns``
        OpenCV's diffusion inpainting (``cv2.inpaint``: Telea's fast marching, or Navier–Stokes). Right for
        small holes — wire and rig removal, dust, a few pixels of border — where it is seamless and fast.
        Over large regions it smears: everything becomes a smooth gradient.
    ``patch``
        Exemplar (patch-based) completion for large regions: the hole is filled with texture copied from
        the rest of the plate. The method is Wexler, Shechtman and Irani's ("Space-Time Completion of
        Video", PAMI 2007) expectation–maximisation over a coarse-to-fine image pyramid, with the
        nearest-neighbour field between hole patches and plate patches found by PatchMatch (Barnes et al.,
        SIGGRAPH 2009: propagation from neighbours plus a random search at shrinking radii). At the
        coarsest level the hole is a few pixels thick and is initialised by Telea; each finer level starts
        from the coarser field and refines it, so large structures come from the coarse levels and
        texture from the fine ones. Patch distances are measured in ACEScct (log), so HDR highlights do not
        dominate them, and only known pixels are ever copied. Chosen over a greedy exemplar fill
        (Criminisi et al. 2004) because it vectorises — every hole patch is updated at once in NumPy — and
        because the global optimisation does not grow visible seams from the fill order. Deterministic
        for a seed.
    ``auto``
        ``telea`` when the hole is at most ``small_hole`` pixels from its nearest known pixel everywhere,
        else ``patch``.

Extension (:func:`extend_plate`)
    The plate is placed on a larger canvas (``left``, ``top``, ``right``, ``bottom`` pixels) and the
    border — plus any removed region (``remove`` matte) — is filled by a classical method or a generator
    (the :class:`~composite.extend.generator.Generator` protocol, e.g. the diffusion backend). A generator
    is asked to repaint an ``overlap`` band inside the plate too; across that band the result crossfades
    from the plate to the fill (a feathered seam), and the fill's colour is matched to the plate's on the
    band (:mod:`composite.color.transfer`). Pixels a generator made are returned as ``generated`` (for the
    ``ai_coverage`` layer); classical fills are not AI-generated.
Shots (:func:`carry_extension`)
    Filling every frame independently makes the texture boil. The production approach is to build the
    extension once on a reference frame and move it with the camera: the reference extension is warped by
    the plate's motion (reference pixels → frame t), the current plate goes on top with a feathered seam,
    the extension's colour is matched to the current frame on the seam band (exposure changes, flicker),
    and whatever the warp cannot cover is filled by Telea.

Pixels: ``(H, W, C)`` float32 scene-linear working space; opaque RGB or premultiplied RGBA (colour is
unpremultiplied around the fill and premultiplied again).

Example
-------
>>> import numpy as np
>>> from composite.extend.set_extension import extend_plate
>>> plate = np.full((20, 30, 3), 0.18, np.float32)
>>> res = extend_plate(plate, left=5, right=5)
>>> res.pixels.shape, bool(abs(res.pixels - 0.18).max() < 1e-4), float(res.generated.max())
((20, 40, 3), True, 0.0)
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np

from ..core.errors import InputError

__all__ = [
    "CLASSICAL_METHODS", "COLOR_MATCH", "ClassicalInpaint", "ExtensionResult", "carry_extension", "extend_plate",
    "hole_thickness", "inpaint", "inpaint_patch", "inpaint_telea", "place_on_canvas", "seam_weight",
]

CLASSICAL_METHODS = ("auto", "telea", "ns", "patch")
COLOR_MATCH = ("none", "reinhard", "mkl", "histogram")


# -- encodings ----------------------------------------------------------------------------------------

def _encode(pixels: np.ndarray) -> tuple[np.ndarray, bool]:
    """Colour → ACEScct (unpremultiplied when there is alpha); alpha and further planes as they are."""
    from ..color.transfer import acescct_encode

    px = np.asarray(pixels, np.float32)
    c = px.shape[2]
    out = px.copy()
    has_alpha = c >= 4
    rgb = px[..., :3]
    if has_alpha:
        a = px[..., 3:4]
        rgb = np.where(a > 1e-6, rgb / np.maximum(a, 1e-6), 0.0)
    if c >= 3:
        out[..., :3] = acescct_encode(rgb)
    return out.astype(np.float32), has_alpha


def _decode(encoded: np.ndarray, has_alpha: bool) -> np.ndarray:
    from ..color.transfer import acescct_decode

    out = encoded.astype(np.float32).copy()
    if out.shape[2] >= 3:
        out[..., :3] = acescct_decode(encoded[..., :3])
    if has_alpha:
        a = np.clip(out[..., 3:4], 0.0, 1.0)
        out[..., 3:4] = a
        out[..., :3] *= a
    return out.astype(np.float32)


def _check(pixels: np.ndarray, hole: np.ndarray, who: str) -> tuple[np.ndarray, np.ndarray]:
    px = np.asarray(pixels)
    if px.ndim == 2:
        px = px[..., None]
    if px.ndim != 3 or px.dtype != np.float32:
        raise InputError(f"{who}: expects (H, W, C) float32 pixels, got {px.shape} {px.dtype}")
    h = np.asarray(hole)
    if h.ndim == 3:
        h = h[..., 0]
    if h.shape != px.shape[:2]:
        raise InputError(f"{who}: the hole mask is {h.shape[1]}x{h.shape[0]} but the image is "
                         f"{px.shape[1]}x{px.shape[0]}")
    if not np.isfinite(px).all():
        raise InputError(f"{who}: the image has NaN/Inf pixels; repair them first")
    return px, h > 0.5 if h.dtype != bool else h


def hole_thickness(hole: np.ndarray) -> float:
    """The largest distance (pixels) from a hole pixel to the nearest known pixel (0 for no hole)."""
    h = np.asarray(hole, bool)
    if not h.any():
        return 0.0
    if h.all():
        return float("inf")
    return float(cv2.distanceTransform((h).astype(np.uint8), cv2.DIST_L2, 5).max())


# -- diffusion inpainting ------------------------------------------------------------------------------

def _inpaint_planes(planes: np.ndarray, hole: np.ndarray, *, radius: float, method: str = "telea",
                    context: np.ndarray | None = None) -> np.ndarray:
    """``cv2.inpaint`` of each plane, through 16-bit integers.

    OpenCV's float32 path is unstable (its gradient extrapolation overshoots into oscillations, e.g. values
    from -0.5 to 2.2 inside a small hole of a [0, 1] image) while the 8/16-bit paths saturate and stay
    smooth; each plane's known range is therefore mapped onto 0..65535 (steps of range/65535, far below
    visibility in ACEScct) and back. ``context``: the known pixels that matter (those near the hole), for
    the range; all known pixels by default.
    """
    flag = cv2.INPAINT_TELEA if method == "telea" else cv2.INPAINT_NS
    m8 = hole.astype(np.uint8)
    known = ~hole if context is None else (context & ~hole)
    out = np.empty_like(planes)
    for c in range(planes.shape[2]):
        p = planes[..., c]
        lo, hi = float(p[known].min()), float(p[known].max())
        span = hi - lo
        if span <= 0:
            out[..., c] = np.where(hole, np.float32(lo), p)
            continue
        q = np.round((np.clip(p, lo, hi) - lo) * (65535.0 / span)).astype(np.uint16)
        r = cv2.inpaint(q, m8, float(radius), flag).astype(np.float32)
        out[..., c] = np.where(hole, r * np.float32(span / 65535.0) + np.float32(lo), p)
    return out


def inpaint_telea(pixels: np.ndarray, hole: np.ndarray, *, radius: float = 5.0, method: str = "telea") -> np.ndarray:
    """Fill ``hole`` by OpenCV's inpainting (``telea``: Telea 2004; ``ns``: Navier–Stokes, Bertalmio 2001).

    Parameters
    ----------
    pixels : np.ndarray
        ``(H, W, C)`` float32, scene-linear (opaque RGB or premultiplied RGBA; further planes are filled
        as data). Colour is filled in ACEScct, so the result is smooth in log, as light is seen.
    hole : np.ndarray
        ``(H, W)`` bool or [0, 1] float (> 0.5 is the hole).
    radius : float
        Neighbourhood radius of the algorithms, pixels.

    Returns
    -------
    np.ndarray
        ``(H, W, C)`` float32; known pixels are returned unchanged (bit for bit).
    """
    px, h = _check(pixels, hole, "inpaint")
    if method not in ("telea", "ns"):
        raise InputError(f"unknown inpainting method {method!r}; allowed: telea, ns")
    if not h.any():
        return px.copy()
    if h.all():
        raise InputError("inpaint: the whole image is a hole; nothing to fill it from")
    # only pixels within reach of the hole matter to the algorithms: encode and decode just those
    k = 2 * int(np.ceil(radius)) + 5
    near = cv2.dilate(h.astype(np.uint8), cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k))) > 0
    band, has_alpha = _encode(px[near][:, None, :])
    enc = np.zeros(px.shape, np.float32)
    enc[near] = band[:, 0, :]
    filled = _inpaint_planes(enc, h, radius=radius, method=method, context=near)
    out = px.copy()
    out[h] = _decode(filled[h][:, None, :], has_alpha)[:, 0, :]
    return out


# -- exemplar inpainting (multi-scale PatchMatch, Wexler EM) ------------------------------------------------

@dataclass
class _Level:
    img: np.ndarray      # (Hp, Wp, C) padded estimate (encoded)
    inside: np.ndarray   # (Hp, Wp) bool: inside the image
    hole: np.ndarray     # (Hp, Wp) bool
    pad: int
    h: int
    w: int
    valid_src: np.ndarray = field(default=None)  # (Hp*Wp,) bool
    src_list: np.ndarray = field(default=None)   # flat indices of valid sources
    targets: np.ndarray = field(default=None)    # flat indices of patch centres overlapping the hole
    tmap: np.ndarray = field(default=None)       # (Hp*Wp,) target index or -1
    conf: np.ndarray = field(default=None)       # (Hp*Wp,) float32 confidence weight of each pixel

    @property
    def wp(self) -> int:
        return self.w + 2 * self.pad


#: Per-pixel decay of the confidence of filled pixels with their distance to the known region.
_CONFIDENCE_DECAY = 0.75


def _make_level(img: np.ndarray, hole: np.ndarray, r: int) -> _Level:
    h, w, c = img.shape
    pad = r
    imgp = np.zeros((h + 2 * pad, w + 2 * pad, c), np.float32)
    imgp[pad:pad + h, pad:pad + w] = img
    inside = np.zeros(imgp.shape[:2], bool)
    inside[pad:pad + h, pad:pad + w] = True
    holep = np.zeros(imgp.shape[:2], bool)
    holep[pad:pad + h, pad:pad + w] = hole
    known = inside & ~holep
    k = 2 * r + 1
    full = cv2.erode(known.astype(np.uint8), np.ones((k, k), np.uint8), borderType=cv2.BORDER_CONSTANT,
                     borderValue=0).astype(bool)
    lv = _Level(imgp, inside, holep, pad, h, w)
    lv.valid_src = full.ravel()
    lv.src_list = np.flatnonzero(lv.valid_src)
    near = cv2.dilate(holep.astype(np.uint8), np.ones((k, k), np.uint8)).astype(bool) & inside
    lv.targets = np.flatnonzero(near.ravel())
    tmap = np.full(imgp.shape[0] * imgp.shape[1], -1, np.int64)
    tmap[lv.targets] = np.arange(len(lv.targets))
    lv.tmap = tmap
    # Confidence (Wexler et al.): known pixels 1, filled ones decaying with their distance to the known
    # region, outside the image 0. Matches then continue what the plate shows at the hole's edge.
    dist = cv2.distanceTransform((~known).astype(np.uint8), cv2.DIST_L2, 3)
    conf = np.where(holep, np.power(np.float32(_CONFIDENCE_DECAY), dist), np.float32(1)) * inside
    lv.conf = conf.astype(np.float32).ravel()
    return lv


def _offsets(r: int, wp: int, step: int = 1) -> np.ndarray:
    """Flat offsets of a patch's pixels (every ``step``-th row and column: sparse taps for distances)."""
    dy, dx = np.mgrid[-r:r + 1:step, -r:r + 1:step]
    return (dy * wp + dx).ravel().astype(np.int64)


def _cost(lv: _Level, feat: int, offs: np.ndarray, tidx: np.ndarray, sidx: np.ndarray,
          chunk: int = 8192) -> np.ndarray:
    """Mean squared difference (over the first ``feat`` planes, inside-image pixels) of target and source patches."""
    flat = lv.img.reshape(-1, lv.img.shape[2])[:, :feat]
    conf = lv.conf
    out = np.empty(len(tidx), np.float32)
    for i in range(0, len(tidx), chunk):
        t = tidx[i:i + chunk, None] + offs[None, :]
        s = sidx[i:i + chunk, None] + offs[None, :]
        d = flat[t] - flat[s]
        d = np.einsum("npc,npc->np", d, d)
        wt = conf[t]
        out[i:i + chunk] = (d * wt).sum(1) / np.maximum(wt.sum(1), 1e-12)
    return out


def _improve(lv: _Level, feat: int, offs: np.ndarray, nnf: np.ndarray, cost: np.ndarray, sel: np.ndarray,
             cand: np.ndarray) -> None:
    """Replace nnf[sel] by cand where cand is a valid source with a lower cost."""
    ok = lv.valid_src[cand]
    if not ok.any():
        return
    sel, cand = sel[ok], cand[ok]
    c = _cost(lv, feat, offs, lv.targets[sel], cand)
    better = c < cost[sel]
    nnf[sel[better]] = cand[better]
    cost[sel[better]] = c[better]


def _patchmatch(lv: _Level, feat: int, offs: np.ndarray, nnf: np.ndarray, rng: np.random.Generator,
                iterations: int, radii: list[int]) -> np.ndarray:
    wp = lv.wp
    cost = _cost(lv, feat, offs, lv.targets, nnf)
    n = len(nnf)
    all_idx = np.arange(n)
    for it in range(iterations):
        steps = ((0, 1), (1, 0)) if it % 2 == 0 else ((0, -1), (-1, 0))
        for dy, dx in steps:
            step = dy * wp + dx
            nb = lv.tmap[lv.targets - step]
            has = nb >= 0
            sel = all_idx[has]
            _improve(lv, feat, offs, nnf, cost, sel, nnf[nb[has]] + step)
        sy, sx = np.divmod(nnf, wp)
        for rad in radii:
            ry = sy + rng.integers(-rad, rad + 1, n)
            rx = sx + rng.integers(-rad, rad + 1, n)
            ry = np.clip(ry, 0, lv.img.shape[0] - 1)
            rx = np.clip(rx, 0, wp - 1)
            _improve(lv, feat, offs, nnf, cost, all_idx, ry * wp + rx)
            sy, sx = np.divmod(nnf, wp)
    return cost


def _vote(lv: _Level, offs: np.ndarray, nnf: np.ndarray, cost: np.ndarray | None = None,
          percentile: float = 75.0) -> None:
    """Set every hole pixel to the weighted mean of the source pixels the patches covering it propose.

    Weights (Wexler et al.): the similarity ``exp(-cost / (2 sigma²))`` of each patch's match, with
    ``sigma²`` the 75th percentile of the costs, so good matches outvote poor ones (less blur).
    """
    c = lv.img.shape[2]
    flat = lv.img.reshape(-1, c)
    acc = np.zeros_like(flat)
    wsum = np.zeros(flat.shape[0], np.float32)
    if cost is None or len(cost) == 0:
        wt = np.ones(len(nnf), np.float32)
    else:
        sigma2 = max(float(np.percentile(cost, percentile)), 1e-8)
        wt = np.exp(-cost / (2.0 * sigma2)).astype(np.float32)
    for d in offs:
        q = lv.targets + d
        acc[q] += flat[nnf + d] * wt[:, None]
        wsum[q] += wt
    hole = lv.hole.ravel() & (wsum > 1e-12)
    flat[hole] = acc[hole] / wsum[hole, None]


def _downsample(img: np.ndarray, hole: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    h, w = hole.shape
    nh, nw = max(1, (h + 1) // 2), max(1, (w + 1) // 2)
    known = (~hole).astype(np.float32)
    num = cv2.resize(img * known[..., None], (nw, nh), interpolation=cv2.INTER_AREA)
    if num.ndim == 2:
        num = num[..., None]
    den = cv2.resize(known, (nw, nh), interpolation=cv2.INTER_AREA)
    small_hole = den < 0.999
    out = np.where(den[..., None] > 1e-6, num / np.maximum(den, 1e-6)[..., None], 0.0).astype(np.float32)
    return out, small_hole


def _onion_fill(lv: _Level, feat: int, dist_offs: np.ndarray, rng: np.random.Generator, radii: list[int],
                iterations: int = 3, ring: float = 1.5) -> np.ndarray:
    """Fill the level's hole from its edge inwards, one ring (``ring`` pixels wide) at a time.

    Each ring's patches are matched (PatchMatch) against known and already-filled pixels only — the
    unfilled rest of the hole has no say — and each ring pixel copies the centre of its match. Structure
    at the hole's edge therefore continues outwards (trees above trees, wall beside wall). Returns the
    source of every filled pixel (flat padded index, -1 elsewhere); ``lv.img`` is filled in place.
    """
    wp = lv.wp
    known = lv.inside & ~lv.hole
    dist = cv2.distanceTransform((~known).astype(np.uint8), cv2.DIST_L2, 3).ravel()
    hole = lv.hole.ravel()
    flat = lv.img.reshape(-1, lv.img.shape[2])
    src_of = np.full(hole.size, -1, np.int64)
    filled = known.ravel().astype(np.float32)
    saved = (lv.targets, lv.tmap, lv.conf)
    neighbours = [dy * wp + dx for dy in (-1, 0, 1) for dx in (-1, 0, 1) if dy or dx]
    try:
        lo = 0.0
        top = float(dist[hole].max()) if hole.any() else 0.0
        while lo < top:
            hi = lo + ring
            ring_idx = np.flatnonzero(hole & (dist > lo) & (dist <= hi))
            lo = hi
            if len(ring_idx) == 0:
                continue
            tmap = np.full(hole.size, -1, np.int64)
            tmap[ring_idx] = np.arange(len(ring_idx))
            lv.targets, lv.tmap, lv.conf = ring_idx, tmap, filled
            nnf = lv.src_list[rng.integers(0, len(lv.src_list), len(ring_idx))]
            cost = _cost(lv, feat, dist_offs, ring_idx, nnf)
            all_idx = np.arange(len(ring_idx))
            for step in neighbours:  # continue the matches of filled neighbours
                q = src_of[ring_idx - step]
                has = q >= 0
                if has.any():
                    _improve(lv, feat, dist_offs, nnf, cost, all_idx[has], q[has] + step)
            _patchmatch(lv, feat, dist_offs, nnf, rng, iterations, radii)
            flat[ring_idx] = flat[nnf]
            src_of[ring_idx] = nnf
            filled[ring_idx] = 1.0
    finally:
        lv.targets, lv.tmap, lv.conf = saved
    return src_of


def inpaint_patch(pixels: np.ndarray, hole: np.ndarray, *, patch_size: int = 7, seed: int = 0,
                  coarse_size: int = 64, em_iterations: int = 3, pm_iterations: int = 2,
                  search_budget: int = 160_000, features: int | None = None, seam: float = 2.0,
                  levels: bool = True) -> np.ndarray:
    """Exemplar-based completion of ``hole``: multi-scale PatchMatch with EM voting (see module docstring).

    Parameters
    ----------
    pixels : np.ndarray
        ``(H, W, C)`` float32 scene-linear (opaque RGB or premultiplied RGBA; further planes are carried
        along with the copied patches).
    hole : np.ndarray
        ``(H, W)`` bool or [0, 1] float (> 0.5: fill).
    patch_size : int
        Odd patch width in pixels (7 by default).
    seed : int
        Seed of the random search (the result is deterministic for a seed).
    coarse_size : int
        The pyramid stops when the hole is at most about a patch thick or the image this small.
    em_iterations, pm_iterations : int
        EM (search + vote) rounds per level and PatchMatch rounds per EM round. Levels with more than
        ``search_budget`` hole patches get a single round (their field comes from the coarser level).
    features : int or None
        Planes compared in patch distances (default: colour and alpha, at most 4).
    seam : float
        Width in pixels of a crossfade, at the hole's edge, from the plate's smooth continuation to the
        copied texture (0: off): copied texture never continues the plate's finest detail exactly.
    levels : bool
        Bring the fill's local level to the plate's along the hole's edge (see :func:`_match_levels`);
        halves the soft step a copied sky or gradient leaves, at a small cost on fine periodic textures.

    Returns
    -------
    np.ndarray
        ``(H, W, C)`` float32; known pixels unchanged (bit for bit).
    """
    px, h = _check(pixels, hole, "inpaint_patch")
    if patch_size < 3 or patch_size % 2 == 0:
        raise InputError(f"patch_size must be an odd number >= 3, got {patch_size}")
    if not h.any():
        return px.copy()
    r = patch_size // 2
    k = patch_size
    known_full = cv2.erode((~h).astype(np.uint8), np.ones((k, k), np.uint8), borderType=cv2.BORDER_CONSTANT,
                           borderValue=0)
    if not known_full.any():
        raise InputError(f"inpaint_patch: no {patch_size}x{patch_size} patch of the image is free of the hole; "
                         "there is nothing to copy from (use telea, or a smaller patch_size)")
    feat = min(px.shape[2], 4) if features is None else int(features)
    enc, has_alpha = _encode(px)
    rng = np.random.default_rng(seed)
    # pyramid (finest first)
    pyr = [(enc, h)]
    while True:
        img_l, hole_l = pyr[-1]
        if hole_thickness(hole_l) <= 2 * r or min(img_l.shape[:2]) // 2 < coarse_size:
            break
        nxt = _downsample(img_l, hole_l)
        if not cv2.erode((~nxt[1]).astype(np.uint8), np.ones((k, k), np.uint8), borderType=cv2.BORDER_CONSTANT,
                         borderValue=0).any():
            break
        pyr.append(nxt)
    nnf_prev = None
    prev = None
    for li in range(len(pyr) - 1, -1, -1):
        img_l, hole_l = pyr[li]
        start = img_l.copy()
        if prev is None:
            start[hole_l] = 0.0  # filled ring by ring below
        else:
            up = cv2.resize(prev, (img_l.shape[1], img_l.shape[0]), interpolation=cv2.INTER_LINEAR)
            if up.ndim == 2:
                up = up[..., None]
            start[hole_l] = up[hole_l]
        lv = _make_level(start, hole_l, r)
        if len(lv.src_list) == 0:
            raise InputError("inpaint_patch: no source patches at some pyramid level; use telea")
        wp = lv.wp
        offs = _offsets(r, wp)
        dist_offs = _offsets(r, wp, step=2)
        ty, tx = np.divmod(lv.targets, wp)
        size = max(lv.h, lv.w)
        radii = [max(1, int(size / 2 ** j)) for j in range(1, int(math.log2(max(size, 2))) + 1, 2)]
        if nnf_prev is None:
            # coarsest level: fill ring by ring from the hole's edge (structure), no EM voting
            src_of = _onion_fill(lv, feat, dist_offs, rng, radii, iterations=4 * pm_iterations)
            nnf = lv.src_list[rng.integers(0, len(lv.src_list), len(lv.targets))]
            mapped = src_of[lv.targets]
            nnf[mapped >= 0] = mapped[mapped >= 0]
        else:
            pl, pnnf = nnf_prev
            ky, kx = pl.h / lv.h, pl.w / lv.w
            cy = np.clip(((ty - lv.pad) * ky).astype(np.int64), 0, pl.h - 1) + pl.pad
            cx = np.clip(((tx - lv.pad) * kx).astype(np.int64), 0, pl.w - 1) + pl.pad
            ct = pl.tmap[cy * pl.wp + cx]
            nnf = lv.src_list[rng.integers(0, len(lv.src_list), len(lv.targets))]
            has = ct >= 0
            sy, sx = np.divmod(pnnf[ct[has]], pl.wp)
            ny = ty[has] + np.round((sy - cy[has]) / ky).astype(np.int64)
            nx = tx[has] + np.round((sx - cx[has]) / kx).astype(np.int64)
            ny = np.clip(ny, 0, lv.img.shape[0] - 1)
            nx = np.clip(nx, 0, wp - 1)
            cand = ny * wp + nx
            good = lv.valid_src[cand]
            idx = np.flatnonzero(has)
            nnf[idx[good]] = cand[good]
            _vote(lv, offs, nnf)
        n_t = len(lv.targets)
        if n_t > search_budget:  # the finest levels refine the field the coarser ones found
            em, pm = 1, 1
        elif n_t > search_budget // 8:
            em, pm = max(1, em_iterations - 1), 1
        else:
            em, pm = em_iterations, pm_iterations
        if li < len(pyr) - 1:
            radii = [rad for rad in (8, 2) if rad <= size]  # local refinement of the coarser level's field
        for _ in range(em):
            cost = _patchmatch(lv, feat, dist_offs, nnf, rng, pm, radii)
            _vote(lv, offs, nnf, cost)
        if li == 0:
            # finest level: each hole pixel takes the centre of its own patch's match (averaging the
            # overlapping patches' proposals would blur wherever the field is not coherent)
            flat = lv.img.reshape(-1, lv.img.shape[2])
            inh = lv.hole.ravel()[lv.targets]
            flat[lv.targets[inh]] = flat[nnf[inh]]
        prev = lv.img[lv.pad:lv.pad + lv.h, lv.pad:lv.pad + lv.w].copy()
        nnf_prev = (lv, nnf)
    if levels:
        prev = _match_levels(prev, enc, h, 2.0 * patch_size)
    if seam > 0:
        prev = _soften_seam(prev, enc, h, float(seam))
    out = _decode(prev, has_alpha)
    out[~h] = px[~h]
    return out


def _blur_within(values: np.ndarray, mask: np.ndarray, sigma: float) -> tuple[np.ndarray, np.ndarray]:
    """Gaussian low-pass of ``values`` over the pixels of ``mask`` only (normalised convolution), and the
    mask's own blurred weight (how much of the window the mask covered)."""
    m = mask.astype(np.float32)
    num = cv2.GaussianBlur(values * m[..., None], (0, 0), sigma)
    if num.ndim == 2:
        num = num[..., None]
    den = cv2.GaussianBlur(m, (0, 0), sigma)
    return (num / np.maximum(den, 1e-6)[..., None]).astype(np.float32), den


def _match_levels(fill: np.ndarray, known: np.ndarray, hole: np.ndarray, band: float) -> np.ndarray:
    """Bring the fill's local level to the plate's along the hole's edge.

    Copied patches come from places whose local mean differs (a sky gradient, a vignette), which shows
    as a soft step along the edge. The plate's mean over a ``band`` pixels wide strip outside the edge and
    the fill's over the same strip inside are compared (low-passed along the edge, so texture averages
    out); the difference is spread into the hole (Telea) and added with a weight decaying over 3 bands.
    """
    d_in = cv2.distanceTransform(hole.astype(np.uint8), cv2.DIST_L2, 5)
    d_out = cv2.distanceTransform((~hole).astype(np.uint8), cv2.DIST_L2, 5)
    sigma = 1.5 * band
    mk, wk = _blur_within(known, (~hole) & (d_out <= band), sigma)
    mf, wf = _blur_within(fill, hole & (d_in <= band), sigma)
    ring = hole & (d_in <= 1.5) & (wk > 0.05) & (wf > 0.05)
    if not ring.any():
        return fill
    corr = np.where(ring[..., None], mk - mf, 0.0).astype(np.float32)
    todo = hole & ~ring
    if todo.any() and ring.any():
        corr = _inpaint_planes(corr, todo, radius=3.0)
    w = np.exp(-np.maximum(d_in - 1.0, 0.0) / (3.0 * band)).astype(np.float32)
    out = fill.copy()
    out[hole] += (w[..., None] * corr)[hole]
    return out


def _soften_seam(fill: np.ndarray, known: np.ndarray, hole: np.ndarray, width: float) -> np.ndarray:
    """Crossfade the first ``width`` pixels of the hole from the smooth (Telea) continuation of the plate to
    the copied texture, so the plate's last pixels and the fill's first ones do not step."""
    smooth = _inpaint_planes(np.where(hole[..., None], 0.0, known).astype(np.float32), hole, radius=3.0)
    dist = cv2.distanceTransform(hole.astype(np.uint8), cv2.DIST_L2, 3)
    w = np.clip(1.0 - (dist - 0.5) / float(width), 0.0, 1.0).astype(np.float32)
    out = fill.copy()
    out[hole] = (smooth * w[..., None] + fill * (1.0 - w[..., None]))[hole]
    return out


def inpaint(pixels: np.ndarray, hole: np.ndarray, *, method: str = "auto", radius: float = 5.0,
            small_hole: float = 6.0, patch_size: int = 7, seed: int = 0) -> tuple[np.ndarray, str]:
    """Fill ``hole`` classically; returns ``(pixels, method used)``. See the module docstring for methods."""
    if method not in CLASSICAL_METHODS:
        raise InputError(f"unknown inpainting method {method!r}; allowed: {', '.join(CLASSICAL_METHODS)}")
    _, h = _check(pixels, hole, "inpaint")
    if method == "auto":
        method = "telea" if hole_thickness(h) <= small_hole else "patch"
    if method in ("telea", "ns"):
        return inpaint_telea(pixels, h, radius=radius, method=method), method
    return inpaint_patch(pixels, h, patch_size=patch_size, seed=seed), method


class ClassicalInpaint:
    """The classical filler as a :class:`~composite.extend.generator.Generator` (not AI: ``generated`` False)."""

    backend = "classical_inpaint"

    def __init__(self, *, method: str = "auto", radius: float = 5.0, small_hole: float = 6.0, patch_size: int = 7,
                 seed: int = 0):
        if method not in CLASSICAL_METHODS:
            raise InputError(f"unknown inpainting method {method!r}; allowed: {', '.join(CLASSICAL_METHODS)}")
        self.method, self.radius, self.small_hole, self.patch_size, self.seed = method, radius, small_hole, \
            patch_size, seed
        self.last_method = method

    @property
    def generated(self) -> bool:
        return False

    def describe(self) -> dict[str, Any]:
        return {"backend": self.backend, "generated": False, "model": {}, "prompt": "", "seed": self.seed,
                "params": {"method": self.method, "patch_size": self.patch_size, "trained": False}, "sources": []}

    def fill(self, pixels: np.ndarray, mask: np.ndarray) -> np.ndarray:
        out, used = inpaint(pixels, mask, method=self.method, radius=self.radius, small_hole=self.small_hole,
                            patch_size=self.patch_size, seed=self.seed)
        self.last_method = used
        return out

    def generate(self, ctx):
        """The protocol call: fill ``ctx.mask`` of ``ctx.plate`` (an Image); coverage is left as it was."""
        if ctx.plate is None or ctx.mask is None:
            raise InputError("classical inpainting needs the plate and the mask of the region to fill")
        from .generator import attach_record

        out = self.fill(ctx.plate.pixels, ctx.mask > 0.5)
        return attach_record(ctx.plate.with_pixels(out), self.describe())


# -- extension ------------------------------------------------------------------------------------------

def place_on_canvas(pixels: np.ndarray, *, left: int, top: int, right: int, bottom: int) -> tuple[np.ndarray, np.ndarray]:
    """The plate on a canvas grown by the given margins (zeros outside) and the ``(H', W')`` bool mask of
    where the plate is. Negative margins crop."""
    from ..core.geometry import pad

    px = np.asarray(pixels, np.float32)
    if px.ndim == 2:
        px = px[..., None]
    canvas = pad(px, int(left), int(top), int(right), int(bottom))
    inside = pad(np.ones(px.shape[:2] + (1,), np.float32), int(left), int(top), int(right), int(bottom))[..., 0] > 0.5
    if canvas.shape[0] < 1 or canvas.shape[1] < 1:
        raise InputError(f"the margins ({left}, {top}, {right}, {bottom}) leave no picture")
    return canvas, inside


def seam_weight(plate_region: np.ndarray, feather: float) -> np.ndarray:
    """Weight of the plate across a feathered seam: 0 outside ``plate_region``, rising smoothly (smoothstep of
    the distance to the region's edge) to 1 at ``feather`` pixels inside. ``feather`` 0: a hard edge."""
    reg = np.asarray(plate_region, bool)
    if feather <= 0 or reg.all() or not reg.any():
        return reg.astype(np.float32)
    d = cv2.distanceTransform(reg.astype(np.uint8), cv2.DIST_L2, 5)
    x = np.clip(d / float(feather), 0.0, 1.0)
    return (x * x * (3 - 2 * x)).astype(np.float32)


def _match_colour(fill: np.ndarray, plate: np.ndarray, band: np.ndarray, method: str) -> tuple[np.ndarray, dict]:
    """Colour-match ``fill`` to ``plate`` using the pixels of ``band`` (where both show the same place)."""
    if method == "none" or band.sum() < 16:
        return fill, {"color_match": "none" if method == "none" else "skipped (seam band too small)"}
    from ..color.transfer import fit_color_transfer

    wts = band.astype(np.float32)
    tr = fit_color_transfer(fill[..., :3] if fill.shape[2] != 4 else fill, plate[..., :3] if plate.shape[2] != 4 else plate,
                            method=method, image_weights=wts, reference_weights=wts)
    out = fill.copy()
    if fill.shape[2] == 4:
        out = tr.apply(fill)
    else:
        out[..., :3] = tr.apply(np.ascontiguousarray(fill[..., :3]))
    return out.astype(np.float32), {"color_match": method}


@dataclass
class ExtensionResult:
    """What :func:`extend_plate` / :func:`carry_extension` made.

    ``pixels``: the extended frame ``(H', W', C)``; ``fill``: the filler's pixels over the canvas;
    ``plate_weight``: ``(H', W')`` share of the plate in each pixel; ``generated``: ``(H', W')`` share made
    by an AI generator (0 for classical fills); ``info``: what was done (method, colour match ...).
    """

    pixels: np.ndarray
    fill: np.ndarray
    plate_weight: np.ndarray
    generated: np.ndarray
    info: dict = field(default_factory=dict)


def extend_plate(pixels: np.ndarray, *, left: int = 0, top: int = 0, right: int = 0, bottom: int = 0,
                 remove: np.ndarray | None = None, filler: Any = None, overlap: int = 0, feather: float = 0.0,
                 color_match: str = "mkl", context: Any = None) -> ExtensionResult:
    """Extend a plate beyond its edges and fill removed regions.

    Parameters
    ----------
    pixels : np.ndarray
        ``(H, W, C)`` float32 plate, scene-linear working space (opaque RGB or premultiplied RGBA).
    left, top, right, bottom : int
        Pixels added on each side (the canvas is ``W + left + right`` by ``H + top + bottom``).
    remove : np.ndarray or None
        ``(H, W)`` matte of regions to remove and fill (> 0.5), in plate pixels.
    filler : ClassicalInpaint, generator or None
        What fills: a :class:`ClassicalInpaint` (default ``auto``) or any object with ``fill(pixels, mask)
        -> pixels`` and a ``generated`` flag (e.g. :class:`composite.extend.diffusion.DiffusionInpainter`).
    overlap : int
        Pixels of the plate, along the fill's edge, that the filler repaints too (a seam band). Useful
        with generators, whose fill does not continue the plate exactly.
    feather : float
        Width of the crossfade from plate to fill across the band (at most ``overlap``; default: all of it).
    color_match : {"none", "reinhard", "mkl", "histogram"}
        Colour-match the fill to the plate on the band (:mod:`composite.color.transfer`); needs ``overlap``.

    Returns
    -------
    ExtensionResult
    """
    if color_match not in COLOR_MATCH:
        raise InputError(f"unknown colour match {color_match!r}; allowed: {', '.join(COLOR_MATCH)}")
    if overlap < 0 or feather < 0:
        raise InputError(f"overlap and feather must be >= 0, got {overlap} and {feather}")
    filler = filler if filler is not None else ClassicalInpaint()
    canvas, inside = place_on_canvas(pixels, left=left, top=top, right=right, bottom=bottom)
    hole = ~inside
    if remove is not None:
        rm = np.asarray(remove, np.float32)
        if rm.ndim == 3:
            rm = rm[..., 0]
        if rm.shape != np.asarray(pixels).shape[:2]:
            raise InputError(f"the removal matte is {rm.shape[1]}x{rm.shape[0]} but the plate is "
                             f"{pixels.shape[1]}x{pixels.shape[0]}")
        rmc, _ = place_on_canvas(rm[..., None], left=left, top=top, right=right, bottom=bottom)
        hole |= rmc[..., 0] > 0.5
    if not hole.any():
        return ExtensionResult(canvas, np.zeros_like(canvas), np.ones(hole.shape, np.float32),
                               np.zeros(hole.shape, np.float32), {"method": "none"})
    region = hole
    if overlap > 0:
        k = 2 * int(overlap) + 1
        region = cv2.dilate(hole.astype(np.uint8), cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k))).astype(bool)
    fill = filler.fill(canvas, region)
    fill = np.asarray(fill, np.float32)
    if fill.shape != canvas.shape:
        raise InputError(f"the filler returned {fill.shape}, expected {canvas.shape}")
    info: dict[str, Any] = {"method": getattr(filler, "last_method", getattr(filler, "backend", "filler"))}
    band = region & ~hole
    if overlap > 0:
        fill, cm = _match_colour(fill, canvas, band, color_match)
        info.update(cm)
    w = seam_weight(~hole, min(float(feather) if feather else float(overlap), float(overlap)) if overlap else 0.0)
    w[~region] = 1.0
    out = canvas * w[..., None] + fill * (1.0 - w)[..., None]
    out[~region] = canvas[~region]
    gen = (1.0 - w) if getattr(filler, "generated", False) else np.zeros_like(w)
    return ExtensionResult(out.astype(np.float32), fill, w, gen.astype(np.float32), info)


def carry_extension(extension: np.ndarray, plate: np.ndarray, matrix: np.ndarray, *, left: int = 0, top: int = 0,
                    right: int = 0, bottom: int = 0, generated: np.ndarray | None = None, feather: float = 8.0,
                    color_match: str = "mkl", band: int = 24) -> ExtensionResult:
    """Move a reference frame's extension with the camera and put frame t's plate in it.

    Parameters
    ----------
    extension : np.ndarray
        ``(H', W', C)`` float32 extended reference frame (the ``pixels`` of :func:`extend_plate`).
    plate : np.ndarray
        ``(H, W, C)`` float32 plate at frame t (same channels).
    matrix : np.ndarray
        3x3 plate motion, reference-frame pixels → frame t pixels (plate coordinates).
    generated : np.ndarray or None
        ``(H', W')`` generated share of the reference extension (moved with it).
    feather : float
        Crossfade width (pixels inside the plate's edge) from the plate to the carried extension.
    color_match : str
        Match the carried extension to frame t on a ``band`` pixels wide strip inside the plate's edge.

    Returns
    -------
    ExtensionResult
        Pixels the carried extension cannot cover (the camera moved past it) are filled by Telea and
        reported in ``info["uncovered_pixels"]``.
    """
    if color_match not in COLOR_MATCH:
        raise InputError(f"unknown colour match {color_match!r}; allowed: {', '.join(COLOR_MATCH)}")
    ext = np.asarray(extension, np.float32)
    canvas, inside = place_on_canvas(plate, left=left, top=top, right=right, bottom=bottom)
    if ext.shape != canvas.shape:
        raise InputError(f"the reference extension is {ext.shape[1]}x{ext.shape[0]}x{ext.shape[2]} but frame t on "
                         f"the canvas is {canvas.shape[1]}x{canvas.shape[0]}x{canvas.shape[2]}")
    shift = np.array([[1, 0, left], [0, 1, top], [0, 0, 1]], np.float64)
    c = shift @ np.asarray(matrix, np.float64) @ np.linalg.inv(shift)
    size = (canvas.shape[1], canvas.shape[0])
    planes = np.concatenate([ext, np.ones(ext.shape[:2] + (1,), np.float32),
                             (generated if generated is not None else np.zeros(ext.shape[:2], np.float32))[..., None]],
                            axis=2)
    parts = [cv2.warpPerspective(np.ascontiguousarray(planes[..., i:i + 4]), c, size, flags=cv2.INTER_LINEAR,
                                 borderMode=cv2.BORDER_CONSTANT, borderValue=0) for i in range(0, planes.shape[2], 4)]
    parts = [p[..., None] if p.ndim == 2 else p for p in parts]
    warped = np.concatenate(parts, axis=2)
    cover = warped[..., ext.shape[2]]
    gen_w = warped[..., ext.shape[2] + 1]
    carried = warped[..., :ext.shape[2]]
    ok = cover > 0.999
    uncovered = ~ok & ~inside
    info: dict[str, Any] = {"uncovered_pixels": int(uncovered.sum())}
    carried = np.where(ok[..., None], carried / np.maximum(cover, 1e-6)[..., None], 0.0).astype(np.float32)
    strip = inside & ok & (seam_weight(inside, float(band)) < 1.0)
    carried, cm = _match_colour(carried, canvas, strip, color_match)
    info.update(cm)
    w = seam_weight(inside, float(feather))
    w = np.where(inside & ~ok, np.float32(1), w).astype(np.float32)
    out = canvas * w[..., None] + carried * (1.0 - w)[..., None]
    if uncovered.any():
        out = inpaint_telea(out.astype(np.float32), uncovered)
    gen = (1.0 - w) * np.where(ok, gen_w / np.maximum(cover, 1e-6), 0.0)
    return ExtensionResult(out.astype(np.float32), carried, w, gen.astype(np.float32), info)
