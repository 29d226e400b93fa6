"""Despill methods pinned against hand-computed values."""

import numpy as np
import pytest

from composite.core.errors import InputError
from composite.matte.despill import AP1_LUMA, despill

PX = np.array([[[0.2, 0.5, 0.1]]], np.float32)
S = np.array([0.1, 0.6, 0.1], np.float32)


def test_average_and_limit():
    np.testing.assert_allclose(despill(PX, method="average")[0, 0], [0.2, 0.15, 0.1], atol=1e-7)
    np.testing.assert_allclose(despill(PX, method="limit")[0, 0], [0.2, 0.2, 0.1], atol=1e-7)
    # Pixels without spill are untouched; HDR values are not clipped.
    clean = np.array([[[4.0, 1.0, 3.0]]], np.float32)
    np.testing.assert_array_equal(despill(clean, method="average"), clean)


def test_screen_subtract_restores_luminance():
    # k = (0.5 - 0.15) / (0.6 - 0.1) = 0.7; P - kS = (0.13, 0.08, 0.03); + k * Y(S) on every channel.
    y_s = float(AP1_LUMA @ S)
    out = despill(PX, method="screen_subtract", screen_color=S)[0, 0]
    np.testing.assert_allclose(out, np.array([0.13, 0.08, 0.03]) + 0.7 * y_s, atol=1e-6)
    assert out[1] == pytest.approx((out[0] + out[2]) / 2, abs=1e-6)  # exactly at the limit
    # Luminance change equals the screen light removed minus the grey added back: zero.
    assert float(AP1_LUMA @ out) == pytest.approx(float(AP1_LUMA @ PX[0, 0]), abs=1e-6)


def test_replace_colour_scaled_to_the_removed_luminance():
    c = np.array([1.0, 0.5, 0.25], np.float32)
    out = despill(PX, method="replace", screen_color=S, replace_color=c)[0, 0]
    y_s, y_c = float(AP1_LUMA @ S), float(AP1_LUMA @ c)
    np.testing.assert_allclose(out, np.array([0.13, 0.08, 0.03]) + 0.7 * y_s / y_c * c, atol=1e-6)


def test_homogeneous_alpha_passthrough_strength_and_blue():
    rng = np.random.default_rng(0)
    rgba = rng.uniform(0, 1, (4, 5, 4)).astype(np.float32)
    for method in ("average", "limit", "screen_subtract"):
        one = despill(rgba, method=method, screen_color=S)
        half = despill(rgba * np.float32(0.5), method=method, screen_color=S)
        np.testing.assert_allclose(half[..., :3], 0.5 * one[..., :3], atol=1e-6)  # premultiplied == straight
        np.testing.assert_array_equal(one[..., 3], rgba[..., 3])
    np.testing.assert_array_equal(despill(rgba, strength=0.0), rgba)
    np.testing.assert_allclose(despill(PX, strength=0.5)[0, 0], [0.2, 0.325, 0.1], atol=1e-7)
    blue = np.array([[[0.2, 0.1, 0.5]]], np.float32)
    np.testing.assert_allclose(despill(blue, screen="blue")[0, 0], [0.2, 0.1, 0.15], atol=1e-7)


def test_bad_input():
    with pytest.raises(InputError, match="unknown despill method"):
        despill(PX, method="magic")
    with pytest.raises(InputError, match="not a green screen colour"):
        despill(PX, method="screen_subtract", screen_color=[0.5, 0.1, 0.5])
    with pytest.raises(InputError, match="expected"):
        despill(np.zeros((2, 2), np.float32))
