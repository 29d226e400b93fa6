"""Defocus: kernel areas, energy, agreement with SciPy's FFT convolution, premultiplied edges, depth layers."""

import math

import numpy as np
import pytest
from scipy.signal import fftconvolve

from composite.core.errors import InputError
from composite.integrate.defocus import (
    circle_of_confusion,
    coc_levels,
    defocus,
    depth_defocus,
    disc_kernel,
)


@pytest.mark.parametrize("radius", [2.0, 5.5, 12.0])
def test_disc_and_polygon_kernels_have_the_analytic_area(radius):
    k = disc_kernel(radius)
    assert k.dtype == np.float32 and abs(float(k.sum()) - 1.0) < 1e-6
    # interior pixels are fully covered, so 1 / max is the shape's area in pixels
    np.testing.assert_allclose(1.0 / k.max(), math.pi * radius ** 2, rtol=0.01)
    hexagon = disc_kernel(radius, blades=6)
    np.testing.assert_allclose(1.0 / hexagon.max(), 1.5 * math.sqrt(3) * radius ** 2, rtol=0.015)
    oval = disc_kernel(radius, aspect=0.5)
    np.testing.assert_allclose(1.0 / oval.max(), math.pi * radius ** 2 * 0.5, rtol=0.02)


def test_small_radius_is_identity():
    img = np.random.default_rng(0).random((8, 8, 4)).astype(np.float32)
    np.testing.assert_array_equal(defocus(img, radius=0.2), img)


def test_defocus_matches_scipy_fft_convolution_and_keeps_energy():
    rng = np.random.default_rng(1)
    img = np.zeros((64, 64, 4), np.float32)
    img[20:44, 20:44] = rng.random((24, 24, 4)).astype(np.float32)
    img[32, 32, :3] = 500.0                                                   # an HDR highlight
    out = defocus(img, radius=6.0, border="black", blades=5, rotation=10.0)
    k = disc_kernel(6.0, blades=5, rotation=10.0)
    ref = np.stack([fftconvolve(img[..., c].astype(np.float64), k.astype(np.float64), mode="same")
                    for c in range(4)], -1)
    np.testing.assert_allclose(out, ref, atol=2e-4, rtol=1e-5)
    np.testing.assert_allclose(out.sum(axis=(0, 1)), img.sum(axis=(0, 1)), rtol=1e-4)


def test_premultiplied_defocus_keeps_edge_colour():
    img = np.zeros((48, 48, 4), np.float32)
    img[16:32, 16:32] = (0.9, 0.3, 0.1, 1.0)
    out = defocus(img, radius=5.0, border="black")
    a = out[..., 3]
    covered = a > 1e-4
    straight = out[..., :3][covered] / a[covered][:, None]
    np.testing.assert_allclose(straight, np.broadcast_to([0.9, 0.3, 0.1], straight.shape), atol=1e-4)


def test_extend_border_keeps_a_flat_plate_flat():
    img = np.full((20, 30, 3), 0.18, np.float32)
    np.testing.assert_allclose(defocus(img, radius=4.0), 0.18, atol=1e-6)
    assert defocus(img, radius=4.0, border="black")[0, 0, 0] < 0.18


def test_circle_of_confusion_is_thin_lens():
    d = np.array([[1.0, 2.0, 4.0, np.inf, 0.0]], np.float32)
    coc = circle_of_confusion(d, focus=2.0, size=8.0, max_radius=20.0)
    np.testing.assert_allclose(coc, [[-8.0, 0.0, 4.0, 8.0, -20.0]])
    inv = circle_of_confusion(1.0 / np.array([[1.0, 2.0, 4.0]], np.float32), focus=2.0, size=8.0,
                              max_radius=20.0, depth_mode="inverse")
    np.testing.assert_allclose(inv, [[-8.0, 0.0, 4.0]])
    levels = coc_levels(8.0, 16.0, 7)
    np.testing.assert_allclose(levels, [-16, -12, -8, -4, 0, 4, 8])


def test_depth_defocus_in_focus_is_unchanged_and_constant_depth_equals_uniform():
    rng = np.random.default_rng(2)
    img = rng.random((40, 50, 3)).astype(np.float32)
    focus = np.full((40, 50), 5.0, np.float32)
    np.testing.assert_allclose(depth_defocus(img, focus, focus=5.0, size=8, max_radius=16, layers=7), img,
                               atol=1e-6)
    # c(10) = 8 (1 - 5/10) = 4 = one of the levels: same as a uniform defocus of radius 4
    far = np.full((40, 50), 10.0, np.float32)
    np.testing.assert_allclose(depth_defocus(img, far, focus=5.0, size=8, max_radius=16, layers=7),
                               defocus(img, radius=4.0), atol=1e-5)


def test_blurred_near_object_over_sharp_background():
    img = np.full((64, 64, 3), 0.2, np.float32)
    img[22:42, 22:42] = 1.0
    depth = np.full((64, 64), 10.0, np.float32)
    depth[22:42, 22:42] = 2.0                                     # c = 8 (1 - 10/2) = -32 → clamped -16
    out = depth_defocus(img, depth, focus=10.0, size=8.0, max_radius=16.0, layers=7)
    k = disc_kernel(16.0)
    c = k.shape[0] // 2
    # at the square's centre: the part of the bokeh inside the square sees the object, the rest the
    # (hidden, filled-in) background
    inside = k[c - 10:c + 10, c - 10:c + 10].sum()
    np.testing.assert_allclose(out[32, 32], inside * 1.0 + (1 - inside) * 0.2, atol=0.02)
    np.testing.assert_allclose(out[2:6, 2:6], 0.2, atol=1e-6)          # far from the object: sharp bg
    assert 0.2 < out[32, 46, 0] < 0.6                                  # the object spills over the bg


def test_sharp_near_object_occludes_blurred_background():
    img = np.full((64, 64, 3), 0.2, np.float32)
    img[:, ::8] = 1.0                                                 # background stripes
    img[24:40, 24:40] = 3.0
    depth = np.full((64, 64), 20.0, np.float32)
    depth[24:40, 24:40] = 2.0
    out = depth_defocus(img, depth, focus=2.0, size=8.0, max_radius=8.0, layers=5)
    np.testing.assert_allclose(out[24:40, 24:40], 3.0, atol=1e-5)     # in focus, on top
    assert out[4:20, 4:20].std() < 0.05 * img[4:20, 4:20].std() + 0.02  # stripes blurred away
    assert np.isfinite(out).all()


def test_rgba_element_keeps_its_coverage():
    img = np.zeros((48, 48, 4), np.float32)
    img[16:32, 16:32] = (0.5, 0.5, 0.5, 1.0)
    depth = np.full((48, 48), 4.0, np.float32)
    depth[16:32, 16:24] = 8.0                                        # two depths inside one element
    out = depth_defocus(img, depth, focus=4.0, size=6.0, max_radius=6.0, layers=4)
    assert out[..., 3].max() <= 1.0 + 1e-6
    np.testing.assert_allclose(out[20:28, 26:30, 3], 1.0, atol=1e-5)  # solid, in-focus part stays solid
    # no seam where the blurred far part meets the sharp near part (it continues behind it) ...
    np.testing.assert_allclose(out[20:28, 19:26, 3], 1.0, atol=1e-4)
    # ... the sharp part's outer edge stays sharp, the blurred part's outer edge is soft
    np.testing.assert_allclose(out[18:30, 32:, 3], 0.0, atol=1e-6)
    assert 0.1 < out[24, 14, 3] < 0.5
    np.testing.assert_allclose(out[..., 3].sum(), img[..., 3].sum(), rtol=0.06)


def test_bad_depth_inputs():
    img = np.zeros((8, 8, 3), np.float32)
    with pytest.raises(InputError, match="reformat"):
        depth_defocus(img, np.ones((4, 4), np.float32), focus=1.0)
    bad = np.ones((8, 8), np.float32)
    bad[0, 0] = np.nan
    with pytest.raises(InputError, match="NaN"):
        depth_defocus(img, bad, focus=1.0)
    with pytest.raises(InputError, match="negative"):
        depth_defocus(img, -np.ones((8, 8), np.float32), focus=1.0)
    with pytest.raises(InputError, match="focus"):
        depth_defocus(img, np.ones((8, 8), np.float32), focus=0.0)
    zero = np.zeros((8, 8), np.float32)
    assert np.isfinite(depth_defocus(img + 1, zero, focus=1.0)).all()
