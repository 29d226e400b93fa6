"""Light wrap against an independent SciPy implementation of its formula, and its edge-only behaviour."""

import numpy as np
import pytest
from scipy import ndimage

from composite.core.errors import InputError, StateError
from composite.integrate.lightwrap import light_wrap


def scene(h=48, w=64):
    fg = np.zeros((h, w, 4), np.float32)
    fg[:, 32:] = (0.1, 0.2, 0.3, 1.0)
    fg[:, 31] = (0.05, 0.1, 0.15, 0.5)                    # one soft edge column
    yy, xx = np.mgrid[0:h, 0:w]
    bg = np.stack([0.5 + xx / w, 0.3 + 0 * xx, 2.0 + yy / h, np.ones_like(xx, float)], -1).astype(np.float32)
    return fg, bg


def reference(fg, bg, size, intensity):
    a = fg[..., 3]
    light = bg[..., :3] * (1 - a)[..., None]
    blurred = np.stack([ndimage.gaussian_filter(light[..., c].astype(np.float64), size, mode="reflect",
                                                truncate=4.0) for c in range(3)], -1)
    return intensity * a[..., None] * blurred


def test_wrap_matches_independent_formula():
    fg, bg = scene()
    out = light_wrap(fg, bg, size=3.0, intensity=0.7)
    np.testing.assert_allclose(out[..., :3] - fg[..., :3], reference(fg, bg, 3.0, 0.7), atol=2e-6)
    np.testing.assert_array_equal(out[..., 3], fg[..., 3])


def test_wrap_only_touches_the_foreground_edge():
    fg, bg = scene()
    out = light_wrap(fg, bg, size=2.0, intensity=1.0)
    np.testing.assert_array_equal(out[:, :31], fg[:, :31])          # outside the foreground: untouched
    assert out[20, 32, 0] - fg[20, 32, 0] > 0.2                      # at the edge: lit
    np.testing.assert_allclose(out[:, 48:], fg[:, 48:], atol=1e-6)   # 8 sigma inside: untouched
    # light decays into the foreground
    gains = out[20, 32:40, 2] - fg[20, 32:40, 2]
    assert np.all(np.diff(gains) < 0)


def test_highlights_threshold_and_outputs():
    fg, bg = scene()
    dim = light_wrap(fg, bg, size=3.0, threshold=100.0)
    np.testing.assert_array_equal(dim, fg)                           # nothing that bright behind
    keyed = light_wrap(fg, bg, size=3.0, threshold=0.6, softness=1.0)
    full = light_wrap(fg, bg, size=3.0)
    assert 0 < (keyed - fg)[20, 32, 2] < (full - fg)[20, 32, 2]
    wrap = light_wrap(fg, bg, size=3.0, output="wrap")
    np.testing.assert_array_equal(wrap[..., 3], 0.0)
    np.testing.assert_allclose(wrap[..., :3] + fg[..., :3], full[..., :3], atol=1e-6)
    comp = light_wrap(fg, bg, size=3.0, output="comp")
    np.testing.assert_allclose(comp, full + bg * (1 - fg[..., 3:4]), atol=1e-6)
    grey = light_wrap(fg, bg, size=3.0, saturation=0.0) - fg
    np.testing.assert_allclose(grey[..., 0], grey[..., 2], atol=1e-6)


def test_hdr_background_is_not_clipped_and_opaque_bg_works():
    fg, bg = scene()
    out = light_wrap(fg, bg[..., :3] * 1000.0, size=2.0)
    # 0.5 intensity x ~0.3 of the blurred visible background x 2400
    assert np.isfinite(out).all() and out[20, 32, 2] > 300.0


def test_bad_inputs():
    fg, bg = scene()
    with pytest.raises(StateError, match="R, G, B, A"):
        light_wrap(fg[..., :3], bg)
    with pytest.raises(InputError, match="reformat"):
        light_wrap(fg, bg[:10])
    bad = bg.copy()
    bad[0, 0, 0] = np.nan
    with pytest.raises(InputError, match="NaN"):
        light_wrap(fg, bad)
    with pytest.raises(InputError, match="mask"):
        light_wrap(fg, bg, mask=np.ones((3, 3), np.float32))
    with pytest.raises(InputError, match="output"):
        light_wrap(fg, bg, output="plus")


def test_wide_wrap_reduced_resolution_blur_stays_within_one_percent():
    fg, bg = scene(96, 128)
    out = light_wrap(fg, bg, size=12.0, intensity=0.7)
    ref = reference(fg, bg, 12.0, 0.7)
    assert np.abs(out[..., :3] - fg[..., :3] - ref).max() < 0.01 * ref.max()
