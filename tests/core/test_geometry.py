"""Reformat and transform, checked against exact shifts and SciPy's independent resampler."""

import numpy as np
import pytest
from scipy import ndimage

from composite.core import Image, InputError, Window
from composite.core import geometry as g


def ramp(h=8, w=10, c=4):
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    return np.stack([x, y, x + y, np.ones_like(x)][:c], axis=2)


def test_integer_translation_is_exact():
    src = ramp()
    out = g.transform(src, g.affine_matrix(translate=(2, 1)), filter="bilinear")
    np.testing.assert_array_equal(out[1:, 2:], src[:-1, :-2])
    np.testing.assert_array_equal(out[0], 0)  # transparent outside


def test_subpixel_bilinear_matches_scipy():
    rng = np.random.default_rng(0)
    src = rng.random((16, 16, 1)).astype(np.float32)
    m = g.affine_matrix(translate=(0.25, -0.5), rotate=10, scale=(1.1, 0.9), center=(8, 8))
    ours = g.transform(src, m, filter="bilinear")[..., 0]
    full = np.vstack([m, [0, 0, 1]])
    inv = np.linalg.inv(full)
    # scipy maps output (row, col) -> input (row, col); swap x/y of the inverse affine
    mat = np.array([[inv[1, 1], inv[1, 0]], [inv[0, 1], inv[0, 0]]])
    off = np.array([inv[1, 2], inv[0, 2]])
    ref = ndimage.affine_transform(src[..., 0], mat, offset=off, order=1, mode="constant", cval=0.0)
    inner = (slice(3, 13), slice(3, 13))
    np.testing.assert_allclose(ours[inner], ref[inner], atol=2e-3)


def test_resize_many_channels_and_no_clipping():
    src = ramp(c=4)
    src = np.concatenate([src, src * 100], axis=2)  # 8 channels, HDR values
    out = g.resize(src, 20, 16, filter="bilinear")
    assert out.shape == (16, 20, 8)
    assert out[..., 4:].max() > 100
    np.testing.assert_allclose(out[..., 4:], out[..., :4] * 100, rtol=1e-5, atol=1e-3)


def test_crop_and_pad():
    src = ramp()
    np.testing.assert_array_equal(g.crop(src, 2, 3, 4, 2), src[3:5, 2:6])
    padded = g.pad(src, 1, 2, 3, 4)
    assert padded.shape == (8 + 6, 10 + 4, 4)
    np.testing.assert_array_equal(padded[2:10, 1:11], src)
    assert padded[0].sum() == 0


@pytest.mark.parametrize("mode, expect_window", [("fit", (0, 0, 19, 9)), ("fill", (0, 0, 19, 9))])
def test_reformat_modes(mode, expect_window):
    img = Image(np.ones((10, 10, 4), np.float32))
    out = g.reformat_image(img, 20, 10, mode=mode, filter="bilinear")
    assert out.data_window.as_tuple() == expect_window == out.display_window.as_tuple()
    if mode == "fit":  # 10x10 into 20x10: pillarbox, transparent sides
        assert out.pixels[5, 0, 3] == 0 and out.pixels[5, 10, 3] == pytest.approx(1)
    else:  # fill: covers the frame
        assert out.pixels[..., 3].min() == pytest.approx(1, abs=1e-5)


def test_reformat_none_centres_without_resampling():
    src = ramp()
    out = g.reformat_image(Image(src), 14, 10, mode="none")
    np.testing.assert_array_equal(out.pixels[1:9, 2:12], src)


def test_reformat_layers_follow_and_display_window_honoured():
    img = Image(np.ones((4, 4, 4), np.float32), data_window=Window(2, 2, 5, 5), display_window=Window(0, 0, 7, 7))
    img = img.with_layer("depth", np.full((4, 4, 1), 3, np.float32), ("Z",))
    out = g.reformat_image(img, 16, 16, mode="distort", filter="nearest")
    assert out.layers["depth"].pixels.shape == (16, 16, 1)
    assert out.pixels[0, 0, 3] == 0 and out.pixels[8, 8, 3] == 1
    assert out.layers["depth"].pixels[8, 8, 0] == 3


def test_bad_filter_and_matrix():
    with pytest.raises(InputError, match="unknown filter"):
        g.resize(ramp(), 4, 4, filter="mitchell")
    with pytest.raises(InputError, match="2x3 or 3x3"):
        g.transform(ramp(), np.eye(2))


def test_downscale_does_not_alias_fine_detail():
    stripes = np.zeros((64, 64, 1), np.float32)
    stripes[:, ::2] = 1.0  # detail far above the Nyquist limit of a 3.2x smaller grid
    for flt in ("bilinear", "cubic", "lanczos"):
        small = g.resize(stripes, 20, 20, filter=flt)[3:-3, 3:-3]
        assert abs(float(small.mean()) - 0.5) < 1e-3
        assert float(small.std()) < 1e-3, flt  # no moire left
        aliased = g.resize(stripes, 20, 20, filter=flt, antialias=False)[3:-3, 3:-3]
        assert float(aliased.std()) > 0.2  # what the prefilter prevents
