"""Guided filter: against a direct per-window implementation, limits, the fast variant, the stage."""

import numpy as np
import pytest

from composite.core import Image
from composite.core.errors import InputError
from composite.graph import Pipeline
from composite.graph.builtin import Constant
from composite.matte.guided import guided_filter, refine_alpha_guided
from composite.matte.refine import encode_for_matting
from composite.matte.refine_stages import GuidedFilterRefine
from composite.matte.stages import matte_image


def _direct(G, p, r, eps):
    """He et al.'s definition written out window by window (float64, windows truncated at the border)."""
    G = G.astype(np.float64).reshape(G.shape[0], G.shape[1], -1)
    p = p.astype(np.float64)
    h, w, c = G.shape
    A = np.zeros((h, w, c))
    B = np.zeros((h, w))
    for y in range(h):
        for x in range(w):
            ys, xs = slice(max(0, y - r), y + r + 1), slice(max(0, x - r), x + r + 1)
            Iw, pw = G[ys, xs].reshape(-1, c), p[ys, xs].ravel()
            mu = Iw.mean(0)
            cov = (Iw - mu).T @ (Iw - mu) / len(pw)
            cip = ((Iw - mu) * (pw - pw.mean())[:, None]).mean(0)
            A[y, x] = np.linalg.solve(cov + eps * np.eye(c), cip)
            B[y, x] = pw.mean() - A[y, x] @ mu
    q = np.zeros((h, w))
    for y in range(h):
        for x in range(w):
            ys, xs = slice(max(0, y - r), y + r + 1), slice(max(0, x - r), x + r + 1)
            q[y, x] = A[ys, xs].reshape(-1, c).mean(0) @ G[y, x] + B[ys, xs].mean()
    return q


@pytest.mark.parametrize("channels", [1, 2, 3])
def test_matches_direct_definition(rng, channels):
    G = rng.random((13, 17, 3)).astype(np.float32)[..., :channels]
    p = (rng.random((13, 17)) > 0.5).astype(np.float32)
    guide = G[..., 0] if channels == 1 else G
    np.testing.assert_allclose(guided_filter(guide, p, radius=2, eps=1e-2), _direct(G, p, 2, 1e-2), atol=2e-6)


@pytest.mark.parametrize("subsample", [1, 3])
def test_planes_equal_stacked_guide_and_non_finite_values_are_zero(rng, subsample):
    G = rng.random((31, 45, 2)).astype(np.float32)
    p = rng.random((31, 45)).astype(np.float32)
    stacked = guided_filter(G, p, radius=3, eps=1e-3, subsample=subsample)
    planes = guided_filter([G[..., 0], G[..., 1]], p, radius=3, eps=1e-3, subsample=subsample)
    np.testing.assert_allclose(planes, stacked, atol=1e-6)
    bad_g, bad_p = G.copy(), p.copy()
    bad_g[5, 7, 1] = np.nan
    bad_p[20, 30] = np.inf
    clean_g, clean_p = bad_g.copy(), bad_p.copy()
    clean_g[5, 7, 1] = 0.0
    clean_p[20, 30] = 0.0
    out = guided_filter([bad_g[..., 0], bad_g[..., 1]], bad_p, radius=3, eps=1e-3, subsample=subsample)
    np.testing.assert_allclose(out, guided_filter(clean_g, clean_p, radius=3, eps=1e-3, subsample=subsample),
                               atol=1e-6)
    with pytest.raises(InputError, match="planes"):
        guided_filter([G[..., 0], G[:10, :, 1]], p, radius=2)


def test_near_grey_guide_with_small_eps(rng):
    # nearly equal channels make Sigma + eps U nearly singular: the inverse must stay accurate
    base = rng.random((13, 17, 1))
    G = (np.clip(base + 0.01 * rng.random((13, 17, 3)), 0, 1) * 0.8 + 0.1).astype(np.float32)
    p = (rng.random((13, 17)) > 0.5).astype(np.float32)
    for eps in (1e-4, 1e-6):
        np.testing.assert_allclose(guided_filter(G, p, radius=2, eps=eps), _direct(G, p, 2, eps), atol=5e-4)


def test_limits(rng):
    G = rng.random((20, 24, 3)).astype(np.float32)
    const = np.full((20, 24), 0.3, np.float32)
    np.testing.assert_allclose(guided_filter(G, const, radius=3, eps=1e-3), 0.3, atol=1e-6)
    # a huge eps flattens the model (a -> 0): q is the mean over windows of the window means of p
    p = rng.random((20, 24)).astype(np.float32)
    q = guided_filter(G, p, radius=2, eps=1e6)
    np.testing.assert_allclose(q, _direct(np.zeros_like(G), p, 2, 1.0), atol=1e-5)
    # the guide itself (grey) with tiny eps is reproduced
    g = G[..., 0]
    np.testing.assert_allclose(guided_filter(g, g, radius=2, eps=1e-8), g, atol=2e-3)


def test_fast_variant_close_on_smooth_input(rng):
    y, x = np.mgrid[0:64, 0:80].astype(np.float32)
    G = np.dstack([np.sin(x / 9), np.cos(y / 7), (x + y) / 150]).astype(np.float32)
    p = np.clip((x - 40) / 10 + 0.5, 0, 1).astype(np.float32)
    exact = guided_filter(G, p, radius=8, eps=1e-3)
    fast = guided_filter(G, p, radius=8, eps=1e-3, subsample=4)
    assert np.abs(fast - exact).mean() < 0.01
    with pytest.raises(InputError, match="radius"):
        guided_filter(G, p, radius=0)
    with pytest.raises(InputError, match="share"):
        guided_filter(G, p[:10], radius=2)


def test_refine_feathers_a_hard_mask_along_the_plate():
    # a disk with thin strands (alpha 0.8) a hard SAM-like mask misses; the plate shows them
    y, x = np.mgrid[0:64, 0:64].astype(np.float32)
    r = np.hypot(x - 32, y - 32)
    truth = np.clip(16.5 - r, 0, 1).astype(np.float32)
    strands = np.zeros_like(truth, bool)
    for ang in np.linspace(0, 2 * np.pi, 12, endpoint=False):
        t = np.arange(16, 28, 0.25)
        strands[np.rint(32 + t * np.sin(ang)).astype(int), np.rint(32 + t * np.cos(ang)).astype(int)] = True
    truth[strands] = np.maximum(truth[strands], 0.8)
    plate = truth[..., None] * np.array([0.7, 0.6, 0.5]) + (1 - truth[..., None]) * np.array([0.02, 0.2, 0.03])
    coarse = (r < 16).astype(np.float32)
    refined = refine_alpha_guided(plate.astype(np.float32), coarse, radius=6, eps=1e-3)
    before = np.abs(coarse - truth).sum()
    after = np.abs(refined - truth).sum()
    assert after < 0.87 * before                      # measured 140.0 vs 164.7
    near = strands & (r > 17) & (r < 20)              # strand pieces just outside the mask edge gain alpha
    assert refined[near].mean() > 0.3 > coarse[near].mean()
    assert refined.min() >= 0 and refined.max() <= 1 and refined.dtype == np.float32


def _src(arr, channels):
    class _S(Constant):
        def process(self, t, **_):
            return Image(arr.copy(), channels, colorspace="Raw" if channels == ("A",) else "ACEScg")

    return _S(width=arr.shape[1], height=arr.shape[0])


def test_stage_numbers_fingerprint_roundtrip(rng):
    plate = rng.random((24, 30, 3)).astype(np.float32)
    matte = (rng.random((24, 30)) > 0.5).astype(np.float32)
    tri = np.full((24, 30), 0.5, np.float32)
    tri[:4] = 1.0
    tri[-4:] = 0.0
    p = Pipeline("g")
    a = p.add("plate", _src(plate, ("R", "G", "B")))
    m = p.add("matte", _src(matte[..., None], ("A",)))
    t = p.add("tri", _src(tri[..., None], ("A",)))
    p.add("gf", GuidedFilterRefine(radius=3, eps=1e-3), image=a, matte=m, trimap=t)
    out = p.evaluate("gf", 1001, "matte").pixels[..., 0]
    want = np.clip(guided_filter(encode_for_matting(plate).astype(np.float32), matte, radius=3, eps=1e-3), 0, 1)
    want[tri == 1.0] = 1.0
    want[tri == 0.0] = 0.0
    np.testing.assert_allclose(out, want, atol=1e-6)
    fp = p.fingerprint("gf", 1001)
    p.set_param("gf", "subsample", 2)
    assert p.fingerprint("gf", 1001) != fp
    q = Pipeline("rt")
    c = q.add("c", Constant(width=8, height=8))
    q.add("gf", GuidedFilterRefine(radius=4, eps=1e-2, subsample=2, encoding="acescct"), image=c, matte=c)
    assert Pipeline.from_recipe(q.to_recipe()).to_recipe() == q.to_recipe()


def test_stage_size_mismatch():
    plate = Image(np.zeros((10, 12, 3), np.float32), ("R", "G", "B"))
    with pytest.raises(InputError, match="matte is 6x5 but the image is 12x10"):
        GuidedFilterRefine().process(1001, plate, matte_image(np.zeros((5, 6), np.float32)))
    out = GuidedFilterRefine(size_mismatch="resize", radius=2).process(1001, plate, matte_image(np.ones((5, 6), np.float32)))
    np.testing.assert_allclose(out.pixels, 1.0, atol=1e-6)
