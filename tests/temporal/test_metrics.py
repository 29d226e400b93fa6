"""Temporal metrics against analytic values and the matte package's own implementation."""

from __future__ import annotations

import numpy as np
import pytest

from composite.core.errors import InputError
from composite.temporal.metrics import dtssd, flicker_index, flicker_series, flow_warping_error, mad, mse
from composite.temporal.synthetic import textured_plate


def zero_flows(n, h, w):
    z = np.zeros((h, w, 2), np.float32)
    return [(z, z)] * (n - 1)


def test_flicker_index_of_known_gains():
    base = textured_plate(48, 64, seed=3)
    gains = np.array([0.0, 0.1, -0.05, 0.2, 0.2, 0.0])
    frames = [base * np.float32(2.0 ** g) for g in gains]
    # Pure gain changes: every tile's median log2 ratio is exactly the step.
    expected = np.sqrt(np.mean(np.diff(gains) ** 2))
    assert flicker_index(frames, flows=zero_flows(6, 48, 64)) == pytest.approx(expected, abs=1e-4)
    series = flicker_series(frames, flows=zero_flows(6, 48, 64), grid=(2, 2))
    assert series.shape == (5, 2, 2)
    assert np.allclose(series, np.diff(gains)[:, None, None], atol=1e-4)
    # With estimated flow on a static shot the index is the same (the flow is ~zero).
    assert flicker_index(frames) == pytest.approx(expected, abs=2e-3)


def test_flicker_index_regional_and_outliers():
    base = textured_plate(48, 64, seed=4)
    b = base.copy()
    b[:, 32:] *= np.float32(2.0 ** 0.3)          # right half brighter by 0.3 stop
    s = flicker_series([base, b], flows=zero_flows(2, 48, 64), grid=(2, 1))
    assert s[0, 0, 0] == pytest.approx(0.0, abs=1e-5) and s[0, 0, 1] == pytest.approx(0.3, abs=1e-4)
    c = base.copy()
    c[:10, :10] *= 8.0                            # a 3-stop change: content, not flicker, ignored
    assert flicker_index([base, c], flows=zero_flows(2, 48, 64)) == pytest.approx(0.0, abs=1e-6)


def test_flow_warping_error_analytic():
    base = textured_plate(32, 40, seed=2)
    frames = [base, base + np.float32(0.1)]
    # Every channel differs by 0.1: squared norm 3 * 0.01 per pixel.
    assert flow_warping_error(frames, flows=zero_flows(2, 32, 40)) == pytest.approx(0.03, rel=1e-5)
    assert flow_warping_error([base, base, base], flows=zero_flows(3, 32, 40)) == 0.0


def test_matte_metrics_by_hand_and_against_matte_package(rng):
    a = [np.array([[0.0, 0.5], [1.0, 1.0]], np.float32), np.array([[0.2, 0.5], [1.0, 0.0]], np.float32)]
    g = [np.array([[0.0, 1.0], [1.0, 0.0]], np.float32), np.array([[0.0, 1.0], [1.0, 0.0]], np.float32)]
    # Frame-to-frame change of the error: (0.2, 0, 0, -1) -> sqrt(mean(0.04 + 1) / ...) = sqrt(1.04 / 4)
    assert dtssd(a, g) == pytest.approx(np.sqrt(1.04 / 4))
    assert mad(a, g) == pytest.approx((0.5 + 1.0 + 0.2 + 0.5) / 8)
    assert mse(a, g) == pytest.approx((0.25 + 1.0 + 0.04 + 0.25) / 8)
    from composite.matte import metrics as mm

    alphas = [rng.random((12, 10), dtype=np.float32) for _ in range(5)]
    truths = [rng.random((12, 10), dtype=np.float32) for _ in range(5)]
    assert dtssd(alphas, truths) == pytest.approx(mm.dtssd(alphas, truths), rel=1e-6)
    assert mad(alphas[0:1], truths[0:1]) == pytest.approx(mm.mad(alphas[0], truths[0]), rel=1e-6)


def test_metric_errors():
    base = textured_plate(16, 16, seed=1)
    with pytest.raises(InputError, match="at least 2"):
        flicker_index([base])
    with pytest.raises(InputError, match="one size"):
        flow_warping_error([base, base[:8]])
    with pytest.raises(InputError, match="true mattes"):
        dtssd([base[..., 0]] * 2, [base[..., 0]] * 3)
