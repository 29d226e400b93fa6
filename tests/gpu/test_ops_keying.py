"""Torch keyers and despill against composite.matte (tolerance 1e-5 absolute: alpha is a ratio of
differences and float32 rounding of the folded scale differs by a few ulp)."""

from __future__ import annotations

import importlib

import numpy as np
import pytest
import torch

from composite.core.errors import InputError
from composite.gpu.ops import despill as TD
from composite.gpu.ops import keying as TK

from .conftest import n, t

D = importlib.import_module("composite.matte.despill")
K = importlib.import_module("composite.matte.keyers")

TOL = 1e-5


@pytest.fixture(scope="module")
def frame():
    from composite.synth import greenscreen_sequence

    return greenscreen_sequence(64, 48, 1, seed=3).frame(1001)


CASES = [
    {},
    {"screen_color": [0.05, 0.4, 0.08]},
    {"clean_plate": "auto"},
    {"clean_plate": "given"},
    {"despill": "screen_subtract", "clip_black": 0.05, "clip_white": 0.9},
    {"despill": "replace", "replace_color": (0.3, 0.2, 0.1), "spill_strength": 0.7},
    {"mattes": True, "despill": "limit"},
    {"clean_plate": "auto", "denoise_radius": 4, "clip_black": 0.02, "clip_white": 0.9},
    {"screen_color": [0.05, 0.4, 0.08], "denoise_radius": 1, "denoise_eps": 1e-3},
]


def _kwargs(case, plate, dev):
    kw = dict(case)
    np_kw, t_kw = {}, {}
    if kw.pop("clean_plate", None) == "given":
        cp = (plate * np.float32(0.95) + np.float32(0.01)).astype(np.float32)
        np_kw["clean_plate"], t_kw["clean_plate"] = cp, t(cp, dev)
    elif "clean_plate" in case:
        np_kw["clean_plate"] = t_kw["clean_plate"] = "auto"
    if kw.pop("mattes", False):
        h, w = plate.shape[:2]
        g = np.ones((h, w), np.float32)
        g[:, :6] = 0.0
        c = np.zeros((h, w), np.float32)
        c[20:28, 28:36] = 1.0
        np_kw.update(garbage=g, core=c)
        t_kw.update(garbage=t(g, dev), core=t(c, dev))
    return {**kw, **np_kw}, {**kw, **t_kw}


@pytest.mark.parametrize("case", CASES, ids=[",".join(c) or "estimated" for c in CASES])
@pytest.mark.parametrize("keyer", ["color_difference", "screen_subtract"])
def test_keyers_match_numpy(case, keyer, frame, device):
    plate = frame.plate
    np_kw, t_kw = _kwargs(case, plate, device)
    if keyer == "screen_subtract":
        np_kw["softness"] = t_kw["softness"] = 1.5
    ref = getattr(K, f"key_{keyer}")(plate, **np_kw)
    out = getattr(TK, f"key_{keyer}")(t(plate, device), **t_kw)
    np.testing.assert_allclose(out.screen_color, ref.screen_color, atol=1e-7)
    np.testing.assert_allclose(n(out.alpha), ref.alpha, atol=TOL, rtol=0)
    np.testing.assert_allclose(n(out.fg), ref.fg, atol=TOL, rtol=0)
    assert (ref.clean_plate is None) == (out.clean_plate is None)
    if ref.clean_plate is not None:
        np.testing.assert_allclose(n(out.clean_plate), ref.clean_plate, atol=TOL)


def test_key_pins_half_transparent_pixel(device):
    s = torch.tensor([0.05, 0.5, 0.08], device=device)
    f = torch.tensor([0.3, 0.3, 0.3], device=device)
    plate = s.expand(4, 4, 3).clone()
    plate[1:3, 1:3] = 0.5 * f + 0.5 * s
    res = TK.key_color_difference(plate, screen_color=s.tolist(), despill=None)
    assert float(res.alpha[1, 1]) == pytest.approx(0.5, abs=1e-6) and float(res.alpha[0, 0]) == 0.0
    np.testing.assert_allclose(n(res.fg[1, 1]), [0.15, 0.15, 0.15], atol=1e-6)


def test_no_visible_screen_is_an_input_error(device):
    grey = torch.full((16, 16, 3), 0.3, device=device)
    with pytest.raises(InputError, match="no visible green screen"):
        TK.key_color_difference(grey)


@pytest.mark.parametrize("method", D.METHODS)
@pytest.mark.parametrize("channels", [3, 4])
def test_despill_matches_numpy(method, channels, frame, device):
    px = frame.plate if channels == 3 else np.concatenate([frame.plate, frame.alpha.reshape(*frame.plate.shape[:2], 1)], 2)
    px = np.ascontiguousarray(px, np.float32)
    kw = {"method": method, "strength": 0.8, "screen_color": (0.05, 0.45, 0.1)}
    if method == "replace":
        kw["replace_color"] = (0.4, 0.3, 0.2)
    ref = D.despill(px, **kw)
    out = n(TD.despill(t(px, device), **kw))
    np.testing.assert_allclose(out, ref, atol=1e-6)
    assert abs(float(TD.despill(torch.tensor([[[0.2, 0.5, 0.1]]]), method="average")[0, 0, 1]) - 0.15) < 1e-7


def test_clean_plate_on_the_mask_grid_matches_numpy(frame, device):
    # resolution 8 on a 64x48 plate: the screen mask is found on a 32x24 area-averaged copy
    from composite.matte.screen import estimate_clean_plate

    ref = estimate_clean_plate(frame.plate, resolution=8, full_size=False)
    out = TK.estimate_clean_plate_small(t(frame.plate, device), resolution=8)
    assert ref.shape == out.shape == (6, 8, 3)
    np.testing.assert_allclose(out, ref, atol=TOL)


@pytest.mark.parametrize("channels", [1, 2, 3])
@pytest.mark.parametrize("subsample", [1, 2, 3])
def test_guided_filter_matches_numpy(channels, subsample, gen, device):
    from composite.gpu.ops.guided import guided_filter as tgf
    from composite.matte.guided import guided_filter

    guide = [gen.random((37, 53)).astype(np.float32) for _ in range(channels)]
    src = (gen.random((37, 53)) > 0.5).astype(np.float32)
    ref = guided_filter(guide, src, radius=4, eps=1e-3, subsample=subsample)
    out = n(tgf([t(g, device) for g in guide], t(src, device), radius=4, eps=1e-3, subsample=subsample))
    np.testing.assert_allclose(out, ref, atol=2e-5)
