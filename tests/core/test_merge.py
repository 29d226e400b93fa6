"""Merge operations pinned against hand-computed values (Nuke Merge definitions)."""

import numpy as np
import pytest

from composite.core import Image, InputError, StateError, Window
from composite.core import merge as m

A = np.array([[[0.4, 0.2, 0.0, 0.5]]], np.float32)   # premultiplied, alpha 0.5
B = np.array([[[0.1, 0.6, 0.8, 1.0]]], np.float32)   # opaque


@pytest.mark.parametrize("op, expected", [
    ("over", [0.4 + 0.1 * 0.5, 0.2 + 0.6 * 0.5, 0.0 + 0.8 * 0.5, 0.5 + 1.0 * 0.5]),
    ("under", [0.4 * 0.0 + 0.1, 0.2 * 0.0 + 0.6, 0.8, 1.0]),
    ("plus", [0.5, 0.8, 0.8, 1.5]),
    ("multiply", [0.04, 0.12, 0.0, 0.5]),
    ("screen", [0.4 + 0.1 - 0.04, 0.2 + 0.6 - 0.12, 0.8, 1.0]),
    ("max", [0.4, 0.6, 0.8, 1.0]),
    ("min", [0.1, 0.2, 0.0, 0.5]),
    ("in", [0.4, 0.2, 0.0, 0.5]),
    ("out", [0.0, 0.0, 0.0, 0.0]),
    ("mask", [0.05, 0.3, 0.4, 0.5]),
])
def test_operations(op, expected):
    out = m.OPERATIONS[op](A, B)
    np.testing.assert_allclose(out[0, 0], expected, rtol=0, atol=1e-7)
    assert out.dtype == np.float32


def test_mix_blends_towards_b():
    out = m.over(A, B, mix=0.25)
    full = m.over(A, B)
    np.testing.assert_allclose(out, B + 0.25 * (full - B), atol=1e-7)


def test_screen_keeps_hdr():
    a = np.array([[[4.0, 0.5, 2.0, 1.0]]], np.float32)
    b = np.array([[[3.0, 0.5, 0.5, 1.0]]], np.float32)
    np.testing.assert_allclose(m.screen(a, b)[0, 0], [4.0, 0.75, 2.0 + 0.5 - 1.0, 1.0])


def test_no_clipping_of_hdr_values():
    a = np.array([[[20.0, -0.1, 3.0, 0.25]]], np.float32)
    out = m.over(a, B)
    assert out[0, 0, 0] == pytest.approx(20.0 + 0.1 * 0.75)
    assert out[0, 0, 1] == pytest.approx(-0.1 + 0.6 * 0.75)


def test_premultiply_roundtrip_and_zero_alpha():
    rgba = np.array([[[0.5, 1.0, 2.0, 0.5], [0.3, 0.2, 0.1, 0.0]]], np.float32)
    pre = m.premultiply(rgba)
    np.testing.assert_allclose(pre[0, 0], [0.25, 0.5, 1.0, 0.5])
    np.testing.assert_allclose(pre[0, 1], [0.0, 0.0, 0.0, 0.0])
    back = m.unpremultiply(pre)
    np.testing.assert_allclose(back[0, 0], rgba[0, 0])
    emissive = np.array([[[0.3, 0.2, 0.1, 0.0]]], np.float32)  # A == 0 with colour: kept, no NaN
    np.testing.assert_array_equal(m.unpremultiply(emissive), emissive)


def test_shape_mismatch_is_a_clear_error():
    with pytest.raises(InputError, match="reformat or align"):
        m.over(A, np.zeros((2, 2, 4), np.float32))


def test_copy_channels():
    out = m.copy_channels(A, B, [3], [3])
    np.testing.assert_allclose(out[0, 0], [0.1, 0.6, 0.8, 0.5])


def test_merge_images_aligns_data_windows():
    fg = Image(np.full((2, 2, 4), 0.5, np.float32), data_window=Window(1, 1, 2, 2),
               display_window=Window(0, 0, 3, 3))
    bg = Image(np.ones((4, 4, 3), np.float32), channels=("R", "G", "B"))
    out = m.merge_images("over", fg, bg)
    assert out.data_window == Window(0, 0, 3, 3)
    np.testing.assert_allclose(out.pixels[0, 0], [1, 1, 1, 1])
    np.testing.assert_allclose(out.pixels[1, 1], [1.0, 1.0, 1.0, 1.0])  # 0.5 + 1*(1-0.5)
    mask_out = m.merge_images("mask", fg, bg)  # B's window for mask
    assert mask_out.data_window == bg.data_window
    np.testing.assert_allclose(mask_out.pixels[0, 0], [0, 0, 0, 0])
    np.testing.assert_allclose(mask_out.pixels[2, 2], [0.5, 0.5, 0.5, 0.5])


def test_merge_images_checks_state():
    a = Image(np.zeros((2, 2, 4), np.float32), alpha="straight")
    b = Image(np.zeros((2, 2, 4), np.float32))
    with pytest.raises(StateError, match="got straight"):
        m.merge_images("over", a, b)
    with pytest.raises(StateError, match="colour space"):
        m.merge_images("over", b.replace(colorspace="Raw"), b)
    with pytest.raises(InputError, match="unknown merge operation"):
        m.merge_images("overlay", b, b)


def test_ai_coverage_follows_over_arithmetic():
    # Generated element (coverage 1) at alpha 0.5 over a live-action plate (coverage 0):
    # half of the result came from the generator.
    fg = Image(np.array([[[0.2, 0.2, 0.2, 0.5]]], np.float32)).with_layer(
        "ai_coverage", np.array([[[0.5]]], np.float32), ("Y",))  # associated: coverage * alpha
    bg = Image(np.array([[[1.0, 1.0, 1.0, 1.0]]], np.float32))
    out = m.merge_images("over", fg, bg)
    assert out.layers["ai_coverage"].pixels[0, 0, 0] == pytest.approx(0.5)
    # and a generated background under a live-action actor of alpha 0.75 keeps 25% coverage
    actor = Image(np.array([[[0.3, 0.3, 0.3, 0.75]]], np.float32))
    gen_bg = bg.with_layer("ai_coverage", np.array([[[1.0]]], np.float32), ("Y",))
    assert m.merge_images("over", actor, gen_bg).layers["ai_coverage"].pixels[0, 0, 0] == pytest.approx(0.25)
