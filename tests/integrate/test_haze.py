"""Haze: Koschmieder's model pinned to closed-form numbers."""

import math

import numpy as np
import pytest

from composite.core.errors import InputError
from composite.integrate.haze import haze, transmittance


def test_closed_form_values():
    img = np.zeros((2, 3, 4), np.float32)
    img[0] = (1.0, 0.5, 0.25, 1.0)
    img[1] = (0.2, 0.2, 0.2, 0.5)                     # half-covered pixel
    depth = np.array([[0.0, 10.0, np.inf], [10.0, 10.0, 10.0]], np.float32)
    color = (0.5, 0.6, 2.0)
    out = haze(img, depth, density=math.log(2) / 10, color=color)
    np.testing.assert_allclose(out[0, 0], img[0, 0])                                       # T = 1
    np.testing.assert_allclose(out[0, 1, :3], 0.5 * img[0, 1, :3] + 0.5 * np.array(color), rtol=1e-6)
    np.testing.assert_allclose(out[0, 2, :3], color, rtol=1e-6)                             # infinitely far
    np.testing.assert_allclose(out[1, 0, :3], 0.5 * 0.2 + 0.5 * np.array(color) * 0.5, rtol=1e-6)
    np.testing.assert_array_equal(out[..., 3], img[..., 3])


def test_start_cap_inverse_depth_scalar_distance_and_transparent_pixels():
    img = np.zeros((1, 2, 4), np.float32)
    img[0, 0] = (1, 1, 1, 1)
    d = np.array([[30.0, 30.0]], np.float32)
    t = transmittance(d, density=0.1, start=20.0)
    np.testing.assert_allclose(t, math.exp(-1.0), rtol=1e-6)
    out = haze(img, d, density=0.1, start=20.0, max_amount=0.5, color=(0, 0, 0))
    np.testing.assert_allclose(out[0, 0, 0], 1 - 0.5 * (1 - math.exp(-1.0)), rtol=1e-6)
    np.testing.assert_array_equal(out[0, 1], 0.0)                           # transparent stays transparent
    inv = haze(img, 1.0 / d, density=0.1, depth_mode="inverse", color=(0, 0, 0))
    np.testing.assert_allclose(inv[0, 0, 0], math.exp(-3.0), rtol=1e-5)
    scalar = haze(img[..., :3], 30.0, density=0.1, color=(1, 1, 1))
    np.testing.assert_allclose(scalar[0, 1], 1 - math.exp(-3.0), rtol=1e-5)
    assert scalar.shape == (1, 2, 3)


def test_hdr_values_and_bad_inputs():
    img = np.full((4, 4, 3), 5000.0, np.float32)
    out = haze(img, np.full((4, 4), 1.0, np.float32), density=0.5, color=(20.0, 20.0, 20.0))
    np.testing.assert_allclose(out, 5000 * math.exp(-0.5) + 20 * (1 - math.exp(-0.5)), rtol=1e-5)
    with pytest.raises(InputError, match="reformat"):
        haze(img, np.ones((2, 2), np.float32), density=0.1)
    with pytest.raises(InputError, match="NaN"):
        haze(img, np.full((4, 4), np.nan, np.float32), density=0.1)
    with pytest.raises(InputError, match="negative"):
        haze(img, np.full((4, 4), -1.0, np.float32), density=0.1)
    with pytest.raises(InputError, match="color"):
        haze(img, 1.0, density=0.1, color=(1.0, 2.0))
    np.testing.assert_array_equal(haze(img, 1.0, density=0.0), img)


def test_enormous_values_give_no_nan_anywhere():
    from composite.integrate.defocus import defocus, depth_defocus
    from composite.integrate.edge_blend import edge_blend
    from composite.integrate.lens import apply_distortion
    from composite.integrate.lightwrap import light_wrap

    img = np.zeros((24, 24, 4), np.float32)
    img[8:16, 8:16] = (1e20, -1e3, 3.0, 1.0)
    bg = np.full((24, 24, 3), 1e20, np.float32)
    depth = np.full((24, 24), 5.0, np.float32)
    depth[8:16, 8:16] = 0.0
    for out in (haze(img, depth, density=0.1, color=(1e6, 0, 0)), defocus(img, radius=3.0),
                depth_defocus(img, depth, focus=5.0, size=4.0, max_radius=6.0, layers=4),
                light_wrap(img, bg, size=2.0), edge_blend(img, bg), apply_distortion(img, k1=-0.1)):
        assert np.isfinite(out).all()
