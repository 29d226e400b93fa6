"""Torch merges against composite.core.merge (tolerance 1e-6 absolute on values up to 3: float32
arithmetic in the same order; CUDA may fuse multiply-adds)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from composite.core import merge as M
from composite.gpu.ops import merge as T

from .conftest import n, smooth_rgba, t

TOL = 1e-6


@pytest.mark.parametrize("op", sorted(M.OPERATIONS))
@pytest.mark.parametrize("mix", [1.0, 0.35])
def test_every_merge_matches_numpy(op, mix, device, gen):
    a, b = smooth_rgba(gen), smooth_rgba(gen)
    b[10:20, 10:20, :3] = 2.5                            # both bright: screen's HDR rule
    a[10:20, 10:20, :3] = 1.5
    ref = M.OPERATIONS[op](a, b, mix=mix)
    out = n(T.OPERATIONS[op](t(a, device), t(b, device), mix=mix))
    np.testing.assert_allclose(out, ref, atol=TOL, rtol=0)


def test_over_pins_the_porter_duff_numbers(device):
    a = torch.tensor([[[0.5, 0.0, 0.0, 0.5]]], device=device)
    b = torch.tensor([[[0.1, 0.2, 0.3, 1.0]]], device=device)
    np.testing.assert_allclose(n(T.over(a, b))[0, 0], [0.55, 0.1, 0.15, 1.0], atol=1e-7)


def test_premultiply_round_trip_and_alpha_zero(device, gen):
    straight = smooth_rgba(gen, premultiplied=False)
    np.testing.assert_allclose(n(T.premultiply(t(straight, device))), M.premultiply(straight), atol=TOL)
    pre = M.premultiply(straight)
    out = n(T.unpremultiply(t(pre, device)))
    np.testing.assert_allclose(out, M.unpremultiply(pre), atol=1e-5, rtol=1e-6)
    assert np.isfinite(out).all()
    np.testing.assert_array_equal(out[:3, :3], pre[:3, :3])   # alpha 0: colour kept, no division


def test_leading_batch_dimension_is_per_frame(device, gen):
    a = np.stack([smooth_rgba(gen) for _ in range(3)])
    b = np.stack([smooth_rgba(gen) for _ in range(3)])
    out = n(T.over(t(a, device), t(b, device)))
    for i in range(3):
        np.testing.assert_allclose(out[i], M.over(a[i], b[i]), atol=TOL)


def test_shape_and_dtype_errors(device):
    from composite.core.errors import InputError, StateError

    with pytest.raises(InputError, match="A is"):
        T.over(torch.zeros(2, 2, 4, device=device), torch.zeros(2, 3, 4, device=device))
    with pytest.raises(StateError, match="float32"):
        T.over(torch.zeros(2, 2, 4, dtype=torch.float64), torch.zeros(2, 2, 4, dtype=torch.float64))
