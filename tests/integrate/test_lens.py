"""Lens distortion against OpenCV's model, and the apply/remove round trip."""

import cv2
import numpy as np
import pytest

from composite.core.errors import InputError
from composite.integrate.lens import (
    apply_distortion,
    distort_points,
    lens_maps,
    remove_distortion,
    undistort_points,
)

W, H = 320, 180
COEFFS = dict(k1=-0.12, k2=0.02, k3=0.003, p1=0.001, p2=-0.0007)


def camera(focal=None):
    f = 0.5 * np.hypot(W, H) if focal is None else focal
    k = np.array([[f, 0, (W - 1) / 2], [0, f, (H - 1) / 2], [0, 0, 1]], np.float64)
    d = np.array([COEFFS["k1"], COEFFS["k2"], COEFFS["p1"], COEFFS["p2"], COEFFS["k3"]])
    return k, d


def smooth_image():
    yy, xx = np.mgrid[0:H, 0:W].astype(np.float32)
    return np.stack([np.sin(xx / 9) * np.cos(yy / 7) + 1, xx / W, yy / H, np.ones_like(xx)], -1).astype(np.float32)


def test_remove_maps_equal_opencv_undistort_maps():
    k, d = camera()
    mx, my = lens_maps(W, H, direction="remove", **COEFFS)
    rx, ry = cv2.initUndistortRectifyMap(k, d, None, k, (W, H), cv2.CV_32FC1)
    np.testing.assert_allclose(mx, rx, atol=1e-3)
    np.testing.assert_allclose(my, ry, atol=1e-3)
    img = smooth_image()
    # cv2.undistort resamples with fixed-point maps (1/32 px), hence the looser tolerance
    np.testing.assert_allclose(remove_distortion(img, **COEFFS), cv2.undistort(img, k, d), atol=3e-3)


def test_custom_focal_and_centre_follow_opencv():
    f = 400.0
    k, d = camera(f)
    k[0, 2], k[1, 2] = 150.0, 95.0
    mx, my = lens_maps(W, H, direction="remove", focal=(f, f), center=(150.0, 95.0), **COEFFS)
    rx, ry = cv2.initUndistortRectifyMap(k, d, None, k, (W, H), cv2.CV_32FC1)
    np.testing.assert_allclose(mx, rx, atol=1e-3)
    np.testing.assert_allclose(my, ry, atol=1e-3)


def test_point_inverse_matches_opencv_and_round_trips():
    k, d = camera()
    pts = np.random.default_rng(0).uniform([0, 0], [W, H], (500, 2))
    distorted = distort_points(pts, W, H, **COEFFS)
    ours = undistort_points(distorted, W, H, **COEFFS)
    np.testing.assert_allclose(ours, pts, atol=1e-6)
    theirs = cv2.undistortPoints(distorted.reshape(-1, 1, 2), k, d, P=k).reshape(-1, 2)
    np.testing.assert_allclose(ours, theirs, atol=0.02)      # OpenCV stops after 5 iterations


def test_apply_after_remove_returns_the_image():
    img = smooth_image()
    back = apply_distortion(remove_distortion(img, filter="cubic", **COEFFS), filter="cubic", **COEFFS)
    inner = (slice(20, -20), slice(20, -20))
    assert np.abs(back - img)[inner].max() < 0.01
    assert np.abs(back - img)[inner].mean() < 5e-4


def test_zero_coefficients_are_identity_and_folds_are_transparent():
    img = smooth_image()
    np.testing.assert_allclose(apply_distortion(img), img, atol=1e-6)
    folded = apply_distortion(img, k1=-0.6)
    assert np.isfinite(folded).all()
    assert folded[0, 0, 3] == 0.0 and folded[H // 2, W // 2, 3] == 1.0


def test_bad_parameters():
    img = smooth_image()
    with pytest.raises(InputError, match="filter"):
        remove_distortion(img, k1=0.1, filter="sinc")
    with pytest.raises(InputError, match="focal"):
        remove_distortion(img, k1=0.1, focal=-1.0)
    with pytest.raises(InputError, match="direction"):
        lens_maps(W, H, direction="both")
