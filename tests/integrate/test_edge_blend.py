"""Edge blend: exact over away from the edge, a band matching an independent morphology, premultiplied."""

import numpy as np
import pytest
from scipy import ndimage

from composite.core.errors import InputError, StateError
from composite.integrate.edge_blend import edge_band, edge_blend


def scene(h=40, w=40):
    fg = np.zeros((h, w, 4), np.float32)
    fg[10:30, 10:30] = (1.0, 0.2, 0.0, 1.0)
    bg = np.zeros((h, w, 3), np.float32)
    bg[...] = (0.0, 0.1, 2.0)
    return fg, bg


def over(fg, bg):
    return fg + np.concatenate([bg, np.ones_like(bg[..., :1])], -1) * (1 - fg[..., 3:4])


def test_band_matches_scipy_morphology_and_gaussian():
    fg, _ = scene()
    a = fg[..., 3]
    # OpenCV's 5x5 ellipse element: the disc of radius 2 on the pixel grid
    disc = np.array([[0, 0, 1, 0, 0], [1, 1, 1, 1, 1], [1, 1, 1, 1, 1], [1, 1, 1, 1, 1], [0, 0, 1, 0, 0]], bool)
    grad = ndimage.grey_dilation(a, footprint=disc, mode="nearest") - ndimage.grey_erosion(a, footprint=disc,
                                                                                            mode="nearest")
    ref = np.clip(ndimage.gaussian_filter(grad.astype(np.float64), 1.0, mode="reflect", truncate=4.0), 0, 1)
    np.testing.assert_allclose(edge_band(a, 2.0), ref, atol=1e-5)


def test_blend_is_over_away_from_the_edge_and_mixes_along_it():
    fg, bg = scene()
    out = edge_blend(fg, bg, size=2.0)
    plain = over(fg, bg)
    np.testing.assert_array_equal(out[18:22, 18:22], plain[18:22, 18:22])     # deep inside
    np.testing.assert_array_equal(out[:2, :2], plain[:2, :2])                  # far outside
    edge = out[20, 10]
    assert 0.1 < edge[0] < 0.9 and 0.2 < edge[2] < 1.8                        # fg and bg mixed
    np.testing.assert_allclose(out[..., 3], 1.0, atol=1e-6)                   # opaque bg stays opaque
    np.testing.assert_array_equal(edge_blend(fg, bg, size=2.0, amount=0.0), plain)


def test_transparent_background_stays_premultiplied():
    fg, _ = scene()
    bg = np.zeros((40, 40, 4), np.float32)
    out = edge_blend(fg, bg, size=2.0)
    a = out[..., 3]
    straight = np.divide(out[..., :3], a[..., None], out=np.zeros_like(out[..., :3]), where=a[..., None] > 1e-4)
    covered = a > 1e-3
    np.testing.assert_allclose(straight[covered], np.broadcast_to([1.0, 0.2, 0.0], straight[covered].shape),
                               atol=1e-4)


def test_bad_inputs():
    fg, bg = scene()
    with pytest.raises(StateError):
        edge_blend(fg[..., :3], bg)
    with pytest.raises(InputError):
        edge_blend(fg, bg[:5])
