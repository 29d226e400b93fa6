"""Bounded-window smoothers against SciPy, NumPy polynomial fits and a batch least-squares Kalman smoother."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.signal import savgol_filter

from composite.core.errors import InputError
from composite.temporal.smooth import (
    average_window,
    kalman_window,
    savgol_window,
    smooth_kalman,
    smooth_savgol,
)


def test_savgol_interior_equals_scipy_and_edges_equal_polyfit(rng):
    v = rng.normal(size=(40, 3))
    out = smooth_savgol(v, radius=4, order=2)
    ref = savgol_filter(v, 9, 2, axis=0)
    assert np.allclose(out[4:-4], ref[4:-4], atol=1e-12)
    for t in (0, 2, 37, 39):                  # clamped windows, polynomial evaluated off-centre
        lo, hi = max(0, t - 4), min(40, t + 5)
        x = np.arange(lo, hi) - t
        for c in range(3):
            expected = np.polyval(np.polyfit(x, v[lo:hi, c], 2), 0.0)
            assert out[t, c] == pytest.approx(expected, abs=1e-10)


def test_savgol_missing_samples_and_low_counts():
    x = np.arange(-3, 4)
    y = 0.5 * x ** 2 - x + 2.0
    y_missing = y.astype(float).copy()
    y_missing[[1, 5]] = np.nan
    assert savgol_window(y_missing, x, order=2) == pytest.approx(2.0, abs=1e-9)   # a quadratic is exact
    assert savgol_window(np.array([7.0, np.nan]), np.array([0, 1]), order=2) == pytest.approx(7.0)
    assert np.isnan(savgol_window(np.array([np.nan]), np.array([0])))
    ramp = np.arange(10.0) * 3 - 4
    assert np.allclose(smooth_savgol(ramp, radius=3, order=1), ramp)


def _batch_rts(y, q, r):
    """The constant-velocity model solved as one least-squares problem (what RTS computes, independently).

    States follow s_{k+1} = F s_k + G a_k exactly, G = (1/2, 1), with white accelerations a_k of
    variance q and a free (diffuse) initial state; minimise sum (y_k - x_k)^2 / r + sum a_k^2 / q.
    """
    n = len(y)
    f = np.array([[1.0, 1.0], [0.0, 1.0]])
    g = np.array([0.5, 1.0])
    # State k as a linear function of theta = (s0, a_0 .. a_{n-2}).
    m = np.zeros((2, 1 + n))
    m[:, :2] = np.eye(2)
    positions = []
    for k in range(n):
        positions.append(m[0].copy())
        m = f @ m
        if k < n - 1:
            m[:, 2 + k] += g
    a_rows = np.array(positions)
    rows, rhs = [], []
    for k in range(n):
        if np.isfinite(y[k]):
            rows.append(a_rows[k] / np.sqrt(r))
            rhs.append(y[k] / np.sqrt(r))
    for k in range(n - 1):
        row = np.zeros(1 + n)
        row[2 + k] = 1.0 / np.sqrt(q)
        rows.append(row)
        rhs.append(0.0)
    theta = np.linalg.lstsq(np.array(rows), np.array(rhs), rcond=None)[0]
    return a_rows @ theta


@pytest.mark.parametrize("q,r", [(0.01, 1.0), (1.0, 0.25), (0.1, 4.0)])
def test_kalman_rts_equals_batch_least_squares(rng, q, r):
    y = np.cumsum(rng.normal(size=11)) + rng.normal(scale=np.sqrt(r), size=11)
    y[3] = np.nan
    ref = _batch_rts(y, q, r)
    x = np.arange(11) - 5
    for at in (-5, -1, 0, 4, 5):
        got = kalman_window(y, x, measurement_sigma=np.sqrt(r), acceleration_sigma=np.sqrt(q), at=at)
        assert got == pytest.approx(ref[at + 5], abs=1e-6)


def test_kalman_limits_and_series():
    ramp = 2.0 * np.arange(12) + 1.0
    assert np.allclose(smooth_kalman(ramp, radius=3, measurement_sigma=1.0, acceleration_sigma=0.01), ramp,
                       atol=1e-4)       # a constant velocity is the model's own motion
    noisy = ramp + np.array([0.5, -0.5] * 6)
    tight = smooth_kalman(noisy, radius=3, measurement_sigma=1e-4, acceleration_sigma=1.0)
    assert np.allclose(tight, noisy, atol=1e-3)   # trusting the samples returns them


def test_average_and_errors():
    assert np.allclose(average_window(np.array([[1.0, np.nan], [3.0, 4.0]])), [2.0, 4.0])
    with pytest.raises(InputError, match="radius"):
        smooth_savgol(np.zeros(5), radius=-1)
    with pytest.raises(InputError, match="outside"):
        kalman_window(np.zeros(3), np.arange(3), at=5)
