"""Torch colour operations against composite.color.

Tolerances (relative to max(1, |value|)): 1e-6 for linear-space affine transfers, Grade and linear CDLs;
3e-5 where values go through log/exp encodings and 3x3 matrices in float32 (ACEScct, CIELAB, lαβ).
"""

from __future__ import annotations

import numpy as np
import pytest

from composite.color import cdl as CDLm
from composite.color import grade as G
from composite.color import transfer as T
from composite.core.errors import InputError
from composite.gpu.ops import color as TC

from .conftest import n, t


def _rel(out, ref):
    return float(np.max(np.abs(out - ref) / np.maximum(1.0, np.abs(ref))))


@pytest.fixture(scope="module")
def images():
    rng = np.random.default_rng(7)
    el = rng.uniform(0.01, 2.0, (24, 32, 3)).astype(np.float32)
    el[0, 0] = [-0.01, 0.0, 40.0]                              # negative and HDR values survive
    ref = (rng.uniform(0.02, 1.5, (20, 28, 3)) * [1.3, 1.0, 0.6]).astype(np.float32)
    a = rng.uniform(0, 1, (24, 32, 1)).astype(np.float32)
    a[:4] = 0.0
    el4 = np.concatenate([el * a, a], 2).astype(np.float32)
    return el, el4, ref


@pytest.mark.parametrize("method", T.METHODS)
@pytest.mark.parametrize("space", T.SPACES)
def test_transfer_apply_and_fit_match_numpy(method, space, images, device):
    el, el4, ref = images
    tol = 1e-6 if space == "linear" else 3e-5
    for img in (el, el4):
        fitted = T.fit_color_transfer(img, ref, method=method, space=space, strength=0.8)
        expect = fitted.apply(img)
        assert _rel(n(TC.apply_transfer(t(img, device), fitted)), expect) < tol
        on_device = TC.fit_color_transfer(t(img, device), t(ref, device), method=method, space=space, strength=0.8)
        if method != "histogram":
            np.testing.assert_allclose(on_device.matrix, fitted.matrix, rtol=1e-9, atol=1e-12)
            np.testing.assert_allclose(on_device.offset, fitted.offset, rtol=1e-9, atol=1e-12)
        assert _rel(n(TC.apply_transfer(t(img, device), on_device)), expect) < tol
        if img.shape[2] == 4:        # alpha-0 pixels are returned unchanged
            np.testing.assert_array_equal(n(TC.apply_transfer(t(img, device), fitted))[:4], img[:4])


def test_transfer_fit_respects_mattes(images, device):
    el, _, ref = images
    w = np.zeros(el.shape[:2], np.float32)
    w[5:15, 5:20] = 1.0
    fitted = T.fit_color_transfer(el, ref, method="reinhard", image_weights=w)
    mine = TC.fit_color_transfer(t(el, device), t(ref, device), method="reinhard", image_weights=t(w, device))
    np.testing.assert_allclose(mine.matrix, fitted.matrix, rtol=1e-9)
    with pytest.raises(InputError, match="region is empty"):
        TC.fit_color_transfer(t(el, device), t(ref, device), image_weights=t(w * 0, device))


@pytest.mark.parametrize("reverse", [False, True])
def test_grade_matches_numpy(reverse, images, device):
    el, el4, _ = images
    kw = dict(blackpoint=[0.05, 0.0, 0.02], whitepoint=0.9, lift=0.01, gain=[1.1, 1.0, 0.9], gamma=[1.2, 1.0, 0.8],
              saturation=0.7, offset=0.01, multiply=1.05, reverse=reverse)
    for img in (el, el4):
        assert _rel(n(TC.grade(t(img, device), **kw)), G.grade(img, **kw)) < 1e-6
    clamped = n(TC.grade(t(el, device), gain=3.0, black_clamp=True, white_clamp=True))
    assert clamped.min() >= 0.0 and clamped.max() <= 1.0
    out = n(TC.grade(t(np.array([[[0.1, 0.2, 0.5]]], np.float32), device), blackpoint=0.1, whitepoint=0.5))
    np.testing.assert_allclose(out[0, 0], [0.0, 0.25, 1.0], atol=1e-6)


@pytest.mark.parametrize("style", CDLm.STYLES)
@pytest.mark.parametrize("encoding", CDLm.ENCODINGS)
def test_cdl_matches_numpy(style, encoding, images, device):
    el, el4, _ = images
    cdl = CDLm.CDL(slope=(1.1, 1.0, 0.9), offset=(0.01, 0.0, -0.01), power=(1.0, 1.1, 1.2), saturation=0.9)
    tol = 1e-6 if encoding == "linear" else 3e-5
    for img in (el, el4):
        assert _rel(n(TC.apply_cdl(t(img, device), cdl, style=style, encoding=encoding)),
                    CDLm.apply_cdl(img, cdl, style=style, encoding=encoding)) < tol


def test_non_finite_input_is_refused(device):
    bad = np.full((4, 4, 3), np.nan, np.float32)
    with pytest.raises(InputError, match="NaN/Inf"):
        TC.grade(t(bad, device), gain=2.0)
