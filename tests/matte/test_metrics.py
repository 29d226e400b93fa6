"""Matte metrics pinned against hand-computed values (alphamatting.com definitions)."""

import math

import numpy as np
import pytest

from composite.core.errors import InputError
from composite.matte import metrics


def test_sad_mse_mad_by_hand():
    a = np.array([[0.0, 0.5], [1.0, 1.0]])
    g = np.array([[0.0, 1.0], [1.0, 0.0]])
    assert metrics.sad(a, g) == pytest.approx(1.5 / 1000)
    assert metrics.mse(a, g) == pytest.approx((0.25 + 1.0) / 4)
    assert metrics.mad(a, g) == pytest.approx(1.5 / 4)


def test_trimap_restricts_to_unknown_region_and_accepts_8bit():
    a = np.array([[0.0, 0.5], [1.0, 1.0]])
    g = np.array([[0.0, 1.0], [1.0, 0.0]])
    trimap = np.array([[0, 128], [255, 128]], np.uint8)  # unknown: (0,1) and (1,1)
    assert metrics.sad(a, g, trimap) == pytest.approx(1.5 / 1000)
    assert metrics.mse(a, g, trimap) == pytest.approx((0.25 + 1.0) / 2)
    # 8-bit mattes count as value / 255; RGB ground truth uses its first channel.
    a8 = np.array([[0, 255], [51, 0]], np.uint8)
    g_rgb = np.zeros((2, 2, 3), np.uint8)
    assert metrics.sad(a8, g_rgb) == pytest.approx(1.2 / 1000)
    # An empty unknown region gives 0, not a division by zero.
    assert metrics.mse(a, g, np.zeros((2, 2))) == 0.0


def test_size_mismatch_is_a_clear_error():
    with pytest.raises(InputError, match="same size"):
        metrics.sad(np.zeros((2, 3)), np.zeros((3, 2)))
    with pytest.raises(InputError, match="trimap is 3x2"):
        metrics.sad(np.zeros((2, 2)), np.zeros((2, 2)), np.zeros((2, 3)))


def test_gradient_kernel_matches_the_reference_construction():
    h = metrics.gaussian_derivative_kernel(1.4)
    # halfsize = ceil(1.4 * sqrt(-2 ln(sqrt(2 pi) 1.4 0.01))) = ceil(3.623) = 4 -> 9x9
    assert h.shape == (9, 9)
    assert float((h * h).sum()) == pytest.approx(1.0)
    # Element (i, j) = gauss(i - 5) * dgauss(j - 5) (1-based, as in the MATLAB code), then normalised.
    def gauss(x):
        return math.exp(-x * x / (2 * 1.4 ** 2)) / (1.4 * math.sqrt(2 * math.pi))

    raw = np.array([[gauss(i - 5) * (-(j - 5) * gauss(j - 5) / 1.4 ** 2) for j in range(1, 10)] for i in range(1, 10)])
    np.testing.assert_allclose(h, raw / np.sqrt((raw ** 2).sum()), rtol=1e-12)


def test_gradient_error_on_ramps():
    x = np.arange(32, dtype=np.float64)
    ramp = np.tile(x / 64.0, (32, 1))  # slope 1/64 along x
    h = metrics.gaussian_derivative_kernel(1.4)
    u = np.arange(-4, 5)
    slope_gain = abs(float((h * u[None, :]).sum()))  # response of the filter to a unit ramp
    mag = metrics.gradient_magnitude(ramp)
    assert mag[16, 16] == pytest.approx(slope_gain / 64.0)
    # Adding a constant changes nothing; doubling the slope gives (g)^2 per pixel in the interior.
    assert metrics.gradient_error(ramp + 0.1, ramp) == pytest.approx(0.0, abs=1e-12)
    tri = np.zeros((32, 32))
    tri[8:24, 8:24] = 0.5
    expected = 16 * 16 * (slope_gain / 64.0) ** 2 / 1000
    assert metrics.gradient_error(2 * ramp, ramp, tri) == pytest.approx(expected, rel=1e-9)


def test_connectivity_error_by_hand():
    # 1x5 strips (4-connectivity). pred=[1,1,1,0,0.5], truth all 1:
    # both>=0.1 -> [1,1,1,0,1]: largest component {0,1,2}; pixels 3, 4 get l = 0.
    # d_pred = [0,0,0,0,0.5] -> phi = [1,1,1,1,0.5]; d_true = [0,0,0,1,1] -> phi = [1,1,1,0,0]. Sum 1.5.
    pred = np.array([[1, 1, 1, 0, 0.5]])
    truth = np.ones((1, 5))
    assert metrics.connectivity_error(pred, truth) == pytest.approx(1.5 / 1000)
    # pred=[1,0.45,0.95,1,1]: at 0.5 pixels 0,1 are cut off (l=0.4); at 1.0 pixel 2 (l=0.9).
    # d_pred=[0.6,0.05,0.05,0,0] -> phi=[0.4,1,1,1,1]; d_true=[0.6,0.6,0.1,0,0] -> phi=[0.4,0.4,1,1,1].
    pred = np.array([[1, 0.45, 0.95, 1, 1]])
    np.testing.assert_allclose(metrics.connectivity_levels(pred, truth)[0], [0.4, 0.4, 0.9, 1, 1])
    assert metrics.connectivity_error(pred, truth) == pytest.approx(0.6 / 1000)
    # Identical mattes have no error; a trimap excluding pixel 1 removes it.
    assert metrics.connectivity_error(truth, truth) == 0.0
    assert metrics.connectivity_error(pred, truth, np.array([[0.5, 1, 0.5, 0.5, 0.5]])) == 0.0


def test_dtssd_by_hand():
    zero = np.zeros((2, 2))
    moved = np.array([[0.5, 0.0], [0.0, 0.0]])
    # frame 1 - frame 0 differs by 0.5 at one of 4 pixels: sqrt(0.25 / 4) = 0.25
    assert metrics.dtssd([zero, moved], [zero, zero]) == pytest.approx(0.25)
    assert metrics.dtssd([zero, moved, moved], [zero, zero, zero]) == pytest.approx(0.125)
    assert metrics.dtssd([zero], [zero]) == 0.0


def test_evaluate_matte_keys_and_nan_refused():
    a = np.zeros((8, 8))
    out = metrics.evaluate_matte(a, a)
    assert set(out) == {"SAD", "MSE", "Grad", "Conn", "MAD"} and all(v == 0 for v in out.values())
    with pytest.raises(InputError, match="NaN"):
        metrics.sad(np.full((2, 2), np.nan), a[:2, :2])
