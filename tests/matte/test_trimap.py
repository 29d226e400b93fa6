"""Trimaps: from masks (against scipy morphology), from soft alphas, normalising odd files, size checks."""

import numpy as np
import pytest
from scipy import ndimage

from composite.core import Image
from composite.core.errors import InputError
from composite.graph import Pipeline
from composite.graph.builtin import Constant
from composite.matte.refine_stages import TrimapFromMask
from composite.matte.stages import matte_image
from composite.matte.trimap import (
    check_trimap_size,
    normalize_trimap,
    trimap_from_alpha,
    trimap_from_mask,
    trimap_regions,
)


def _disk(r):
    y, x = np.mgrid[-r:r + 1, -r:r + 1]
    return (x * x + y * y) <= r * r


def test_trimap_from_mask_matches_scipy_morphology(rng):
    mask = np.zeros((40, 50), np.float32)
    mask[8:30, 10:41] = 1.0
    mask[15:20, 20:25] = 0.0  # a hole
    tri = trimap_from_mask(mask, erode=3, dilate=5)
    core = ndimage.binary_erosion(mask > 0.5, _disk(3), border_value=1)
    outer = ndimage.binary_dilation(mask > 0.5, _disk(5))
    np.testing.assert_array_equal(tri == 1.0, core)
    np.testing.assert_array_equal(tri == 0.0, ~outer)
    assert set(np.unique(tri)) == {0.0, 0.5, 1.0}
    # a square eroded by a disk is the square shrunk by the radius
    sq = np.zeros((30, 30), bool)
    sq[5:25, 5:25] = True
    assert int((trimap_from_mask(sq, erode=4, dilate=0) == 1).sum()) == (20 - 8) ** 2
    assert int((trimap_from_mask(sq, erode=0, dilate=0) == 0.5).sum()) == 0


def test_empty_and_full_masks():
    assert np.all(trimap_from_mask(np.zeros((6, 7), np.float32)) == 0.0)
    assert np.all(trimap_from_mask(np.ones((6, 7), np.float32)) == 1.0)
    with pytest.raises(InputError, match=">= 0"):
        trimap_from_mask(np.ones((4, 4)), erode=-1)


def test_trimap_from_alpha():
    a = np.zeros((5, 12), np.float32)
    a[:, 6:] = 1.0
    a[:, 5] = 0.5
    tri = trimap_from_alpha(a, band=1)
    np.testing.assert_array_equal(tri[2], [0, 0, 0, 0, 0.5, 0.5, 0.5, 1, 1, 1, 1, 1])


def test_normalize_grey_rgb_rgba_and_antialiased():
    levels = np.array([[0, 5, 25, 26, 128, 200, 229, 230, 255]], np.uint8)
    want = np.array([[0, 0, 0, 0.5, 0.5, 0.5, 0.5, 1, 1]], np.float32)  # <= 0.1 bg, >= 0.9 fg
    np.testing.assert_array_equal(normalize_trimap(levels), want)
    np.testing.assert_array_equal(normalize_trimap(np.dstack([levels] * 3)), want)
    rgba = np.dstack([levels] * 3 + [np.full_like(levels, 255)])
    np.testing.assert_array_equal(normalize_trimap(rgba), want)
    painted_in_alpha = np.dstack([np.zeros_like(levels)] * 3 + [levels])
    np.testing.assert_array_equal(normalize_trimap(painted_in_alpha), want)
    np.testing.assert_array_equal(normalize_trimap(levels.astype(np.uint16) * 257), want)
    np.testing.assert_array_equal(normalize_trimap(levels[..., None] / np.float32(255)), want)


def test_normalize_refuses_unscaled_floats_and_odd_shapes():
    with pytest.raises(InputError, match="divided by 255"):
        normalize_trimap(np.array([[0.0, 128.0, 255.0]], np.float32))
    with pytest.raises(InputError, match="channels"):
        normalize_trimap(np.zeros((3, 3, 5), np.float32))
    with pytest.raises(InputError, match="NaN"):
        normalize_trimap(np.array([[0.0, np.nan]], np.float32))


def test_size_checks():
    tri = np.zeros((4, 6), np.float32)
    tri[:, 3:] = 1.0
    tri[1, 2] = 0.5
    with pytest.raises(InputError, match="6x4 but the image is 12x8"):
        check_trimap_size(tri, (8, 12, 3))
    up = check_trimap_size(tri, (8, 12, 3), on_mismatch="resize")
    assert up.shape == (8, 12) and set(np.unique(up)) == {0.0, 0.5, 1.0}
    np.testing.assert_array_equal(up[::2, ::2], tri)
    fg, bg, unknown = trimap_regions(up)
    assert fg.sum() + bg.sum() + unknown.sum() == up.size


def _pipeline(mask, **params):
    p = Pipeline("t")

    class _Mask(Constant):
        def process(self, t, **_):
            return matte_image(mask)

    src = p.add("mask", _Mask(width=mask.shape[1], height=mask.shape[0]))
    p.add("trimap", TrimapFromMask(**params), matte=src)
    return p


def test_stage_numbers_fingerprint_roundtrip():
    mask = np.zeros((20, 24), np.float32)
    mask[4:16, 6:18] = 1.0
    p = _pipeline(mask, erode=2, dilate=3)
    out = p.evaluate("trimap", 1001, "trimap")
    assert out.channels == ("A",) and out.colorspace == "Raw"
    np.testing.assert_array_equal(out.pixels[..., 0], trimap_from_mask(mask, erode=2, dilate=3))
    fp = p.fingerprint("trimap", 1001)
    p.set_param("trimap", "dilate", 4)
    assert p.fingerprint("trimap", 1001) != fp
    q = Pipeline("t")
    q.add("c", Constant(width=8, height=8))
    q.add("trimap", TrimapFromMask(mode="alpha", band=3), matte="c")
    assert Pipeline.from_recipe(q.to_recipe()).to_recipe() == q.to_recipe()


def test_stage_reads_rgba_alpha():
    img = Image(np.zeros((6, 6, 4), np.float32))
    img.pixels[2:4, 2:4, 3] = 1.0
    out = TrimapFromMask(erode=0, dilate=1).process(1001, img)
    np.testing.assert_array_equal(out.pixels[1:5, 1:5, 0], [[0, 0.5, 0.5, 0], [0.5, 1, 1, 0.5],
                                                            [0.5, 1, 1, 0.5], [0, 0.5, 0.5, 0]])
