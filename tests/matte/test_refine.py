"""Alpha from trimaps and foreground colour: against pymatting itself, against analytic composites, and the
pipeline stages."""

import warnings

import cv2
import numpy as np
import pytest

from composite.color import ocio
from composite.core import Image
from composite.core.errors import InputError
from composite.graph import Pipeline
from composite.graph.builtin import Constant
from composite.matte import refine
from composite.matte.refine import (
    encode_for_matting,
    estimate_alpha,
    estimate_alpha_closed_form,
    estimate_foreground,
    foreground_premultiplied,
)
from composite.matte.refine_stages import EstimateForeground, RefineAlpha
from composite.matte.stages import matte_image


def _scene(h=40, w=48, seed=3):
    """A two-colour composite with a soft diagonal edge: I = a F + (1 - a) B in linear light."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    alpha = np.clip((x - 0.4 * y - 14.0) / 10.0, 0.0, 1.0)
    F = np.array([0.8, 0.35, 0.1], np.float32)
    B = np.array([0.05, 0.3, 0.6], np.float32)
    img = alpha[..., None] * F + (1 - alpha[..., None]) * B
    tri = np.full((h, w), 0.5, np.float32)
    tri[alpha <= 0.0] = 0.0
    tri[alpha >= 1.0] = 1.0
    # shrink the known regions so there is something to solve
    known_bg = cv2.erode((alpha <= 0).astype(np.uint8), np.ones((5, 5), np.uint8)) > 0
    known_fg = cv2.erode((alpha >= 1).astype(np.uint8), np.ones((5, 5), np.uint8)) > 0
    tri = np.full((h, w), 0.5, np.float32)
    tri[known_bg] = 0.0
    tri[known_fg] = 1.0
    return img.astype(np.float32), alpha.astype(np.float32), tri, rng


def test_encodings_pinned():
    x = np.array([[[0.18, 1.0, 4.0]]], np.float32)
    np.testing.assert_allclose(encode_for_matting(x, encoding="srgb", colorspace="Raw")[0, 0],
                               [1.055 * 0.18 ** (1 / 2.4) - 0.055, 1.0, 1.0], rtol=1e-6)
    cct = (np.log2([0.18, 1.0, 4.0]) + 9.72) / 17.52
    np.testing.assert_allclose(encode_for_matting(x, encoding="acescct")[0, 0],
                               (cct - 0.0729055341958355) / (1 - 0.0729055341958355), rtol=1e-6)
    np.testing.assert_allclose(encode_for_matting(x, encoding="linear")[0, 0], [0.18, 1.0, 1.0])
    with pytest.raises(InputError, match="encoding"):
        encode_for_matting(x, encoding="gamma22")
    # an sRGB picture ingested into ACEScg encodes back to its own values
    srgb = np.random.default_rng(5).random((6, 7, 3)).astype(np.float32)
    acescg = ocio.convert(srgb, "sRGB Encoded Rec.709 (sRGB)", "ACEScg")
    assert np.abs(acescg - srgb).max() > 0.05
    np.testing.assert_allclose(encode_for_matting(acescg), srgb, atol=2e-4)


def test_closed_form_equals_pymatting():
    from pymatting import estimate_alpha_cf

    img, _, tri, rng = _scene()
    photo = np.clip(img + rng.normal(0, 0.02, img.shape).astype(np.float32), 0, 1)   # an sRGB picture
    acescg = ocio.convert(photo, "sRGB Encoded Rec.709 (sRGB)", "ACEScg")            # as ingest makes it
    ours = estimate_alpha_closed_form(acescg, tri)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = estimate_alpha_cf(photo.astype(np.float64), tri.astype(np.float64))
    assert np.abs(ours - theirs).max() < 2e-3
    linear709 = ocio.convert(photo, "sRGB Encoded Rec.709 (sRGB)", "Linear Rec.709 (sRGB)")
    np.testing.assert_allclose(estimate_alpha_closed_form(linear709, tri, colorspace="Linear Rec.709 (sRGB)"),
                               theirs, atol=5e-5)   # float32 round trip through linear light
    # solving only over the unknown region's box gives the same alpha
    np.testing.assert_allclose(estimate_alpha_closed_form(acescg, tri, crop=False), ours, atol=1e-6)


@pytest.mark.parametrize("method, tol", [("closed_form", 1e-4), ("closed_form_fast", 0.01), ("large_kernel", 1e-4),
                                         ("knn", 0.06)])
def test_recovers_analytic_alpha(method, tol):
    img, alpha, tri, _ = _scene()
    est = estimate_alpha(img, tri, method=method, encoding="linear")
    unknown = tri == 0.5
    err = np.abs(est - alpha)[unknown].mean()
    assert err < tol, f"{method}: mean error {err:.4f}"
    assert est.dtype == np.float32 and est.min() >= 0 and est.max() <= 1


def test_srgb_encoding_on_linear_composite_is_close():
    # the compositing equation holds in linear light; the default sRGB encoding bends it slightly
    img, alpha, tri, _ = _scene()
    err = np.abs(estimate_alpha_closed_form(img, tri, colorspace="Linear Rec.709 (sRGB)") - alpha)[tri == 0.5].mean()
    assert 0.02 < err < 0.05


def test_degenerate_trimaps():
    img = np.random.default_rng(0).random((10, 12, 3)).astype(np.float32)
    binary = np.zeros((10, 12), np.float32)
    binary[:, 6:] = 1
    np.testing.assert_array_equal(estimate_alpha_closed_form(img, binary), binary)   # nothing unknown
    no_fg = np.full((10, 12), 0.5, np.float32)
    no_fg[:, :3] = 0
    np.testing.assert_array_equal(estimate_alpha_closed_form(img, no_fg), np.zeros((10, 12)))
    np.testing.assert_array_equal(estimate_alpha(img, 1 - no_fg, method="knn"), np.ones((10, 12)))
    with pytest.raises(InputError, match="no known pixel"):
        estimate_alpha_closed_form(img, np.full((10, 12), 0.5, np.float32))
    with pytest.raises(InputError, match="12x10"):
        estimate_alpha_closed_form(img, binary[:, :8])
    with pytest.raises(InputError, match="method"):
        estimate_alpha(img, binary, method="bayesian")


def test_fast_closed_form_falls_back_when_known_regions_are_thin():
    img, alpha, tri, _ = _scene()
    thin = np.full(tri.shape, 0.5, np.float32)
    thin[:, 0] = 0.0       # one-pixel known columns vanish at half resolution
    thin[:, -1] = 1.0
    fast = estimate_alpha(img, thin, method="closed_form_fast", encoding="linear")
    np.testing.assert_array_equal(fast, estimate_alpha_closed_form(img, thin, encoding="linear"))
    with pytest.raises(InputError, match="scale"):
        estimate_alpha(img, tri, method="closed_form_fast", scale=2.0)


def test_rgb_uint8_trimap_with_antialiased_levels():
    img, _, tri, _ = _scene()
    tri8 = np.rint(tri * 255).astype(np.uint8)
    tri8[tri8 == 0] = 7          # compression noise near black
    tri8[tri8 == 255] = 240      # and near white
    rgb = np.dstack([tri8] * 3)
    np.testing.assert_array_equal(estimate_alpha_closed_form(img, rgb), estimate_alpha_closed_form(img, tri))


def test_unconverged_solve_returns_last_iterate(caplog):
    img, alpha, tri, _ = _scene()
    with caplog.at_level("WARNING"):
        a = estimate_alpha(img, tri, method="large_kernel", max_iterations=3)
    assert "stopped after 3 iterations" in caplog.text
    assert np.all(np.isfinite(a)) and a.min() >= 0 and a.max() <= 1


def test_foreground_matches_pymatting_and_scales_exactly():
    from pymatting import estimate_foreground_ml

    img, alpha, _, _ = _scene()
    fg = estimate_foreground(img, alpha)
    ref = estimate_foreground_ml(img, alpha)
    solid = alpha >= 1
    np.testing.assert_allclose(fg[~solid], ref[~solid], atol=1e-6)
    np.testing.assert_array_equal(fg[solid], img[solid])
    # under the soft edge the estimate is the true foreground colour, not the plate's mix
    edge = (alpha > 0.2) & (alpha < 0.8)
    F = np.array([0.8, 0.35, 0.1], np.float32)
    assert np.abs(fg[edge] - F).max() < 0.02 < np.abs(img[edge] - F).max()
    # HDR: the solver sees the plate scaled into [0, 1]; the answer scales back exactly
    hdr = estimate_foreground(img * np.float32(6.0), alpha)
    np.testing.assert_allclose(hdr, fg * 6.0, rtol=1e-5, atol=1e-6)
    rgba = foreground_premultiplied(img, alpha)
    np.testing.assert_allclose(rgba[..., :3], fg * alpha[..., None], atol=1e-7)
    np.testing.assert_array_equal(rgba[..., 3], alpha)


def _plate(img):
    class _Plate(Constant):
        def process(self, t, **_):
            return Image(img.copy(), ("R", "G", "B"))

    return _Plate(width=img.shape[1], height=img.shape[0])


def _tri_source(tri):
    class _Tri(Constant):
        def process(self, t, **_):
            return matte_image(tri)

    return _Tri(width=tri.shape[1], height=tri.shape[0])


def test_refine_stages_numbers_fingerprints_roundtrip():
    img, alpha, tri, _ = _scene()
    p = Pipeline("r")
    plate = p.add("plate", _plate(img))
    t = p.add("tri", _tri_source(tri))
    r = p.add("refine", RefineAlpha(encoding="linear"), image=plate, trimap=t)
    p.add("fg", EstimateForeground(), image=plate, matte=r)
    out = p.evaluate("refine", 1001, "matte")
    assert out.channels == ("A",) and out.colorspace == "Raw"
    np.testing.assert_array_equal(out.pixels[..., 0], estimate_alpha_closed_form(img, tri, encoding="linear"))
    fg = p.evaluate("fg", 1001)
    assert fg.channels == ("R", "G", "B", "A") and fg.alpha.value == "premultiplied"
    np.testing.assert_array_equal(fg.pixels, foreground_premultiplied(img, out.pixels[..., 0]))
    fp_r, fp_fg = p.fingerprint("refine", 1001), p.fingerprint("fg", 1001)
    p.set_param("fg", "regularization", 1e-4)
    fp_fg2 = p.fingerprint("fg", 1001)
    assert fp_fg2 != fp_fg and p.fingerprint("refine", 1001) == fp_r
    p.set_param("refine", "method", "knn")
    assert p.fingerprint("refine", 1001) != fp_r and p.fingerprint("fg", 1001) != fp_fg2

    q = Pipeline("rt")
    c = q.add("c", Constant(width=8, height=8))
    r = q.add("refine", RefineAlpha(method="large_kernel", epsilon=1e-6, size_mismatch="resize"), image=c, trimap=c)
    q.add("fg", EstimateForeground(regularization=1e-4), image=c, matte=r)
    assert Pipeline.from_recipe(q.to_recipe()).to_recipe() == q.to_recipe()


def test_refine_stage_size_mismatch_and_rgb_trimap():
    img, _, tri, _ = _scene()
    stage = RefineAlpha()
    plate = Image(img, ("R", "G", "B"))
    small = matte_image(tri[::2, ::2])
    with pytest.raises(InputError, match="24x20 but the image is 48x40"):
        stage.process(1001, plate, small)
    resized = RefineAlpha(size_mismatch="resize").process(1001, plate, small)
    assert resized.pixels.shape == (40, 48, 1)
    grey_rgb = Image(np.dstack([tri] * 3).astype(np.float32), ("R", "G", "B"), colorspace="Raw")
    np.testing.assert_array_equal(stage.process(1001, plate, grey_rgb).pixels,
                                  stage.process(1001, plate, matte_image(tri)).pixels)


def test_foreground_stage_empty_and_full_mattes():
    img, _, _, _ = _scene()
    plate = Image(img, ("R", "G", "B"))
    empty = EstimateForeground().process(1001, plate, matte_image(np.zeros(img.shape[:2], np.float32)))
    assert np.all(empty.pixels == 0)
    full = EstimateForeground().process(1001, plate, matte_image(np.ones(img.shape[:2], np.float32)))
    np.testing.assert_array_equal(full.pixels[..., :3], img)
    assert refine.METHODS == ("closed_form", "closed_form_fast", "large_kernel", "knn")
