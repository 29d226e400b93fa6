"""Torch matte operations and their building blocks against OpenCV and composite.matte.ops.

Tolerances: morphology is exact (max/min of the same values); blurs 1e-5 absolute on [0, 1] mattes
(the same OpenCV kernel and border taps; summation order differs); the push-pull fill 1e-5.
"""

from __future__ import annotations

import importlib

import cv2
import numpy as np
import pytest

from composite.gpu.ops import _common as C
from composite.gpu.ops import matte as T

from .conftest import n, smooth_rgba, t

ops = importlib.import_module("composite.matte.ops")


@pytest.mark.parametrize("mode", ["replicate", "reflect", "reflect101"])
@pytest.mark.parametrize("size", [1, 2, 5])
def test_border_indices_are_opencvs(mode, size):
    row = np.arange(size, dtype=np.float32)[None]
    ref = cv2.copyMakeBorder(row, 0, 0, 7, 9, C.CV_BORDERS[mode])[0]
    np.testing.assert_array_equal(row[0][C._border_index_np(size, 7, 9, mode)], ref)


@pytest.mark.parametrize("sigma", [0.8, 3.0, 12.0])
@pytest.mark.parametrize("border", ["replicate", "reflect", "reflect101"])
def test_gaussian_blur_is_opencvs(sigma, border, gen, device):
    img = gen.random((37, 53, 3), dtype=np.float32)
    ref = cv2.GaussianBlur(img, (0, 0), sigma, borderType=C.CV_BORDERS[border])
    np.testing.assert_allclose(n(C.gaussian_blur(t(img, device), sigma, border=border)), ref, atol=1e-6)


@pytest.mark.parametrize("interp", ["linear", "area", "cubic", "nearest"])
@pytest.mark.parametrize("size", [(20, 11), (106, 74), (53, 37)])
def test_resize_matrices_are_cv2_resize(interp, size, gen, device):
    img = gen.random((37, 53, 3), dtype=np.float32)
    ref = cv2.resize(img, size, interpolation=C._INTERP[interp])
    np.testing.assert_allclose(n(C.resize(t(img, device), *size, interp=interp)), ref, atol=1e-6)


@pytest.mark.parametrize("filter", ["bilinear", "cubic", "lanczos", "area", "nearest"])
def test_antialiased_resize_is_geometry_resize(filter, gen, device):
    from composite.core.geometry import resize as np_resize

    img = gen.random((37, 53, 4), dtype=np.float32)
    for size in ((20, 11), (40, 30), (90, 60)):          # shrink both axes, one axis, enlarge
        np.testing.assert_allclose(n(C.resize_antialiased(t(img, device), *size, filter=filter)),
                                   np_resize(img, *size, filter=filter), atol=1e-5)


@pytest.mark.parametrize("amount", [0.0, 1.0, 2.5, -3.25, 9.0])
def test_erode_dilate_match_numpy_exactly(amount, gen, device):
    m = cv2.GaussianBlur((gen.random((48, 64)) > 0.6).astype(np.float32), (0, 0), 1.5)
    np.testing.assert_array_equal(n(T.erode(t(m, device), amount=amount)), ops.erode(m, amount=amount))
    np.testing.assert_array_equal(n(T.dilate(t(m, device), amount=amount)), ops.dilate(m, amount=amount))


def test_erode_pins_the_square(device):
    import torch

    m = torch.zeros(9, 9, device=device)
    m[2:7, 2:7] = 1
    assert float(T.erode(m, amount=1.0).sum()) == 9.0 and float(T.erode(m, amount=-1.0).sum()) == 49.0
    assert float(T.erode(m, amount=0.5).sum()) == pytest.approx(17.0)   # halfway between 25 and 9


def test_ellipse_structuring_element_decomposes():
    se = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (7, 7))
    assert C._rectangles(np.ascontiguousarray(se).tobytes(), se.shape) == ((0, 3), (2, 2), (3, 1))
    cross = cv2.getStructuringElement(cv2.MORPH_CROSS, (5, 5))
    m = np.random.default_rng(1).random((20, 20)).astype(np.float32)
    import torch

    np.testing.assert_array_equal(n(C.morph(torch.from_numpy(m), cross, grow=True)),
                                  cv2.dilate(m, cross, borderType=cv2.BORDER_REPLICATE))


def test_blurs_clamp_combine_match_numpy(gen, device):
    m = cv2.GaussianBlur((gen.random((48, 64)) > 0.5).astype(np.float32), (0, 0), 2.0)
    b = gen.random((48, 64), dtype=np.float32)
    tm, tb = t(m, device), t(b, device)
    np.testing.assert_allclose(n(T.blur(tm, size=2.2)), ops.blur(m, size=2.2), atol=1e-5)
    np.testing.assert_allclose(n(T.edge_blur(tm, size=1.7)), ops.edge_blur(m, size=1.7), atol=1e-5)
    np.testing.assert_allclose(n(T.edge_band(tm, width=3.0)), ops.edge_band(m, width=3.0), atol=1e-5)
    np.testing.assert_array_equal(n(T.clamp(tm, low=0.2, high=0.7)), ops.clamp(m, low=0.2, high=0.7))
    np.testing.assert_array_equal(n(T.invert(tm)), ops.invert(m))
    for op in ops.COMBINE_OPS:
        np.testing.assert_allclose(n(T.combine(tm, tb, op=op)), ops.combine(m, b, op=op), atol=1e-7)


@pytest.mark.parametrize("shape", [(37, 53), (36, 52), (5, 3), (1, 4)])
def test_pyramids_are_opencvs(shape, gen, device):
    import torch

    a = gen.random((*shape, 3), dtype=np.float32)
    x = t(a, device).permute(2, 0, 1)[None]
    down = cv2.pyrDown(a, borderType=cv2.BORDER_REPLICATE)
    np.testing.assert_allclose(n(T.pyr_down(x)[0].permute(1, 2, 0)), down.reshape(*down.shape[:2], -1), atol=1e-6)
    h, w = shape
    for size in ((2 * w, 2 * h), (2 * w - 1, 2 * h - 1)):
        up = cv2.pyrUp(a, dstsize=size)
        np.testing.assert_allclose(n(T.pyr_up(x, size)[0].permute(1, 2, 0)), up.reshape(*up.shape[:2], -1), atol=1e-6)
    with pytest.raises(Exception, match="must be"):
        T.pyr_up(x, (2 * w + 3, 2 * h))
    assert torch.is_tensor(x)


def test_fill_and_edge_extend_match_numpy(gen, device):
    w = (gen.random((48, 64)) > 0.6).astype(np.float32) * gen.random((48, 64), dtype=np.float32)
    v = gen.random((48, 64, 3), dtype=np.float32)
    np.testing.assert_allclose(n(T.fill_from_weights(t(v, device), t(w, device))), ops.fill_from_weights(v, w),
                               atol=1e-5)
    np.testing.assert_allclose(n(T.fill_from_weights(t(v[..., 0], device), t(w, device))),
                               ops.fill_from_weights(v[..., 0], w), atol=1e-5)
    rgba = smooth_rgba(gen)
    np.testing.assert_allclose(n(T.edge_extend(t(rgba, device))), ops.edge_extend(rgba), atol=1e-5, rtol=1e-5)
    zero = np.zeros((8, 8), np.float32)
    assert float(T.fill_from_weights(t(v[:8, :8], device), t(zero, device)).abs().sum()) == 0.0
