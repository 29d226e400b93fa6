"""Matte operations pinned on small arrays."""

import numpy as np
import pytest

from composite.core.errors import InputError, StateError
from composite.matte import ops


def square(n=11, lo=3, hi=8):
    m = np.zeros((n, n), np.float32)
    m[lo:hi, lo:hi] = 1
    return m


def test_erode_dilate_integer_and_subpixel():
    m = square()  # 5x5
    assert float(ops.erode(m, amount=1.0).sum()) == 9.0
    assert float(ops.dilate(m, amount=1.0).sum()) == 49.0  # disc of radius 1 is the full 3x3
    assert float(ops.erode(m, amount=0.5).sum()) == pytest.approx((25 + 9) / 2)
    assert float(ops.erode(m, amount=-0.25).sum()) == pytest.approx(25 + 0.25 * 24)
    np.testing.assert_array_equal(ops.erode(m, amount=0.0), m)
    # Radius 2 uses a disc, not a square: corners of a 5x5 grow are cut.
    grown = ops.dilate(np.pad(np.ones((1, 1), np.float32), 4), amount=2.0)
    assert float(grown.sum()) == 21.0


def test_blur_edge_blur_clamp():
    m = square(41, 10, 31)
    b = ops.blur(m, size=1.5)
    assert float(b.sum()) == pytest.approx(441.0, rel=1e-4)
    e = ops.edge_blur(m, size=1.5)
    assert e[20, 20] == 1.0 and e[0, 0] == 0.0  # core and far background untouched
    assert e[20, 10] == pytest.approx(b[20, 10], abs=0.02)  # the edge takes the blur
    c = ops.clamp(np.array([[-0.5, 0.5, 1.5]], np.float32), low=0.0, high=1.0)
    np.testing.assert_array_equal(c, [[0.0, 0.5, 1.0]])
    with pytest.raises(InputError):
        ops.clamp(m, low=0.8, high=0.2)


def test_combine_operations():
    a = np.array([[0.2, 0.8]], np.float32)
    b = np.array([[0.5, 0.5]], np.float32)
    np.testing.assert_allclose(ops.combine(a, b, op="max"), [[0.5, 0.8]])
    np.testing.assert_allclose(ops.combine(a, b, op="min"), [[0.2, 0.5]])
    np.testing.assert_allclose(ops.combine(a, b, op="multiply"), [[0.1, 0.4]])
    np.testing.assert_allclose(ops.combine(a, b, op="subtract"), [[0.0, 0.3]], atol=1e-7)
    np.testing.assert_allclose(ops.combine(a, b, op="add"), [[0.7, 1.0]])
    np.testing.assert_allclose(ops.combine(a, b, op="screen"), [[0.6, 0.9]])
    with pytest.raises(InputError, match="sizes differ"):
        ops.combine(a, np.zeros((2, 2), np.float32))
    with pytest.raises(StateError, match="float32"):
        ops.blur(np.zeros((2, 2)), size=1)


def test_fill_and_edge_extend():
    vals = np.zeros((16, 16, 3), np.float32)
    vals[...] = (0.2, 0.4, 0.6)
    w = np.zeros((16, 16), np.float32)
    w[4:8, 4:8] = 1
    np.testing.assert_allclose(ops.fill_from_weights(vals, w), vals, atol=1e-6)
    assert float(ops.fill_from_weights(vals, np.zeros_like(w)).max()) == 0.0
    # A red solid square with a half-transparent rim: colour bleeds outward, alpha is kept.
    rgba = np.zeros((16, 16, 4), np.float32)
    rgba[4:12, 4:12] = (0.8, 0.1, 0.1, 1.0)
    rgba[3, 4:12] = (0.4, 0.05, 0.05, 0.5)
    out = ops.edge_extend(rgba)
    np.testing.assert_allclose(out[8, 8, :3], [0.8, 0.1, 0.1], atol=1e-6)
    np.testing.assert_allclose(out[3, 8, :3], [0.8, 0.1, 0.1], atol=1e-5)  # straight colour of the rim
    np.testing.assert_allclose(out[0, 0, :3], [0.8, 0.1, 0.1], atol=1e-3)  # far away: same colour spread
    np.testing.assert_array_equal(out[..., 3], rgba[..., 3])
    assert float(ops.edge_extend(np.zeros((4, 4, 4), np.float32)).max()) == 0.0


def test_remove_small_regions_drops_specks_and_keeps_attached_detail():
    from composite.matte.ops import remove_small_regions

    m = np.zeros((60, 60), np.float32)
    m[20:50, 20:40] = 1.0            # a body (600 px)
    m[5:20, 30] = 0.4                # a thin strand attached to it (15 px, part of the body's region)
    m[5:8, 5:8] = 1.0                # a 9 px speck
    m[50:52, 50:52] = 0.5            # a 4 px speck
    out = remove_small_regions(m, min_area=50)
    np.testing.assert_array_equal(out[20:50, 20:40], 1.0)
    np.testing.assert_array_equal(out[5:20, 30], np.float32(0.4))
    assert out[5:8, 5:8].max() == 0 and out[50:52, 50:52].max() == 0
    hole = m.copy()
    hole[30:32, 25:27] = 0.0          # a 4 px hole in the body
    filled = remove_small_regions(hole, min_area=50, holes=True)
    np.testing.assert_array_equal(filled[30:32, 25:27], 1.0)
    np.testing.assert_array_equal(remove_small_regions(m, min_area=0), m)
