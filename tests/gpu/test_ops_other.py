"""Torch grain, light wrap, defocus, warps, deflicker gains and crowd drawing against the NumPy path.

Tolerances: 1e-5 absolute for filters and warps on values up to ~3 (same kernels, taps and sampling
positions; float32 summation order differs), 1e-6 for per-pixel gains and merges.
"""

from __future__ import annotations

import importlib

import cv2
import numpy as np
import pytest
import torch

from composite.core import geometry
from composite.gpu.ops import crowd as TCR
from composite.gpu.ops import deflicker as TDL
from composite.gpu.ops import defocus as TDF
from composite.gpu.ops import grain as TG
from composite.gpu.ops import lightwrap as TL
from composite.gpu.ops import warp as TW

from .conftest import n, smooth_rgba, t

grain = importlib.import_module("composite.color.grain")
defocus = importlib.import_module("composite.integrate.defocus")
lightwrap = importlib.import_module("composite.integrate.lightwrap")
twarp = importlib.import_module("composite.temporal.warp")
deflicker = importlib.import_module("composite.temporal.deflicker")


@pytest.fixture(scope="module")
def profile():
    rng = np.random.default_rng(11)
    plate = cv2.GaussianBlur(rng.normal(0, 0.02, (96, 96, 3)).astype(np.float32), (0, 0), 0.8) + np.float32(0.2)
    return grain.measure_grain(plate, bands=2)


def test_regrain_with_numpy_noise_is_the_numpy_grain(profile, gen, device):
    rgba = smooth_rgba(gen)
    for img in (np.ascontiguousarray(rgba[..., :3]), rgba):
        ref = grain.regrain(img, profile, rng=np.random.default_rng(5), amount=0.8)
        out = n(TG.regrain(t(img, device), profile, rng=np.random.default_rng(5), amount=0.8))
        np.testing.assert_allclose(out, ref, atol=1e-6)
    mask = np.zeros(rgba.shape[:2], np.float32)
    mask[10:30] = 1.0
    ref = grain.regrain(rgba[..., :3].copy(), profile, seed=3, mask=mask)
    out = n(TG.regrain(t(rgba[..., :3].copy(), device), profile, seed=3, mask=t(mask, device)))
    np.testing.assert_allclose(out, ref, atol=1e-6)


def test_regrain_with_device_noise_has_the_profiles_level(profile, device):
    flat = torch.full((96, 96, 3), 0.2, device=device)
    out = TG.regrain(flat, profile, rng=np.random.default_rng(1), noise="device")
    std = n(out - flat).std(axis=(0, 1))
    expect = profile.std_at(np.full(1, 0.2, np.float32))[0]
    np.testing.assert_allclose(std, expect, rtol=0.15)
    again = TG.regrain(flat, profile, rng=np.random.default_rng(1), noise="device")
    assert torch.equal(out, again)                          # seeded: the same frame twice


@pytest.mark.parametrize("output", lightwrap.OUTPUTS)
@pytest.mark.parametrize("size", [4.0, 14.0])           # 14: the NumPy version blurs at half resolution
def test_light_wrap_matches_numpy(output, size, gen, device):
    fg, bg = smooth_rgba(gen), smooth_rgba(gen)[..., :3].copy()
    kw = dict(size=size, intensity=0.7, threshold=0.5, saturation=0.6, output=output)
    np.testing.assert_allclose(n(TL.light_wrap(t(fg, device), t(bg, device), **kw)),
                               lightwrap.light_wrap(fg, bg, **kw), atol=1e-5)


@pytest.mark.parametrize("radius,blades", [(3.0, 0), (7.5, 6), (20.0, 0)])
@pytest.mark.parametrize("border", ["extend", "black"])
def test_defocus_matches_numpy_direct_and_fft(radius, blades, border, gen, device):
    img = smooth_rgba(gen)
    ref = defocus.defocus(img, radius=radius, blades=blades, rotation=10.0, border=border)
    out = n(TDF.defocus(t(img, device), radius=radius, blades=blades, rotation=10.0, border=border))
    np.testing.assert_allclose(out, ref, atol=1e-5)   # radius 20: a 41 px kernel, through the FFT


@pytest.mark.parametrize("filter", ["nearest", "bilinear", "cubic"])
@pytest.mark.parametrize("border", ["replicate", "constant"])
def test_flow_warp_matches_remap(filter, border, gen, device):
    img = smooth_rgba(gen)
    flow = gen.normal(0, 3, (48, 64, 2)).astype(np.float32)
    ref = twarp.warp(img, flow, filter=filter, border=border)
    np.testing.assert_allclose(n(TW.warp(t(img, device), t(flow, device), filter=filter, border=border)), ref,
                               atol=1e-5)


def test_flow_warp_pins_a_shift(device):
    b = torch.arange(20.0, device=device).reshape(4, 5, 1)
    flow = torch.zeros(4, 5, 2, device=device)
    flow[..., 0] = 1.0
    assert n(TW.warp(b, flow))[0, :, 0].tolist() == [1.0, 2.0, 3.0, 4.0, 4.0]
    assert n(TW.warp(b, flow, border="constant"))[0, :, 0].tolist() == [1.0, 2.0, 3.0, 4.0, 0.0]


@pytest.mark.parametrize("filter", ["nearest", "bilinear", "cubic"])
def test_matrix_warps_match_warp_affine_and_perspective(filter, gen, device):
    img = smooth_rgba(gen)
    affine = geometry.affine_matrix(translate=(3.3, -2.1), rotate=12.5, scale=(1.1, 0.9), center=(30, 20))
    persp = np.array([[1.02, 0.05, -2.0], [-0.03, 0.98, 1.5], [1e-4, -2e-4, 1.0]])
    for m in (affine, persp):
        ref = geometry.transform(img, m, filter=filter, size=(70, 40))
        out = n(TW.transform(t(img, device), m, filter=filter, size=(70, 40)))
        # Sampling positions agree to ~1e-5 px (OpenCV computes them in its own precision); next to the
        # transparent border a value moves by that fraction of its step to 0: 5e-5 absolute there.
        np.testing.assert_allclose(out, ref, atol=5e-5)
        assert np.mean(np.abs(out - ref)) < 1e-6
    if not TW.QUANTISED:        # OpenCV 5 samples at exact positions: a half-pixel shift averages
        row = torch.tensor([[[0.0], [1.0], [2.0], [3.0]]], device=device).permute(1, 0, 2).reshape(1, 4, 1)
        shifted = TW.transform(row, np.array([[1, 0, 0.5], [0, 1, 0]], float), filter="bilinear")
        np.testing.assert_allclose(n(shifted)[0, :, 0], [0.0, 0.5, 1.5, 2.5], atol=1e-6)


@pytest.mark.parametrize("grid", [(1, 1), (3, 4)])
def test_deflicker_gains_match_numpy(grid, gen, device):
    img = smooth_rgba(gen)
    gains = gen.normal(0, 0.3, (*grid, 3)).astype(np.float32)
    ref = deflicker.apply_gains(img, gains, strength=0.7)
    np.testing.assert_allclose(n(TDL.apply_gains(t(img, device), gains, strength=0.7)), ref, atol=1e-6, rtol=1e-6)
    np.testing.assert_array_equal(n(TDL.apply_gains(t(img, device), gains))[..., 3], img[..., 3])


@pytest.mark.parametrize("haze", [0.0, 0.01])
def test_crowd_drawing_matches_numpy(haze, device):
    crowd = importlib.import_module("composite.extend.crowd")
    from composite.extend.camera import GroundCamera
    from composite.synth import crowd_tile

    tile = crowd_tile(count=6, sprite_height=32, seed=0)
    lib = crowd.sprites_from_matte(tile.pixels, min_height=16)
    cam = GroundCamera(horizon_y=30.0, height=1.7, focal_px=150.0, cx=80.0)
    agents = crowd.place_agents(cam, 160, 96, 60, n_sprites=len(lib), seed=2)
    ref = crowd.render_crowd(lib, agents, cam, 160, 96, frame=3, haze_density=haze)
    out = TCR.render_crowd(lib, agents, cam, 160, 96, frame=3, haze_density=haze, device=device)
    assert ref.rgba[..., 3].max() == pytest.approx(1.0)
    np.testing.assert_allclose(n(out.rgba), ref.rgba, atol=1e-6)
    np.testing.assert_array_equal(n(out.depth), ref.depth)
    np.testing.assert_array_equal(n(out.ident), ref.ident)
