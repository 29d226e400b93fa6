"""Optical flow, consistency/occlusion masks and warping, against analytic motion and a second warper."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from scipy import ndimage

from composite.core.errors import InputError, StateError
from composite.temporal.flow import (
    MIN_FLOW_SIZE,
    clear_caches,
    compose_flows,
    estimate_flow,
    estimate_flow_pair,
    flow_guide,
    flow_occlusion,
)
from composite.temporal.synthetic import textured_plate
from composite.temporal.warp import warp, warp_matte


def shifted(img: np.ndarray, dx: float, dy: float) -> np.ndarray:
    """Content moved by (dx, dy): out[p] = img[p - (dx, dy)] (reflect border)."""
    m = np.float32([[1, 0, dx], [0, 1, dy]])
    return cv2.warpAffine(img, m, (img.shape[1], img.shape[0]), flags=cv2.INTER_CUBIC,
                          borderMode=cv2.BORDER_REFLECT)


@pytest.fixture(scope="module")
def plate():
    return textured_plate(96, 128, seed=5)


@pytest.mark.parametrize("preset", ["fast", "medium", "fine"])
def test_dis_recovers_subpixel_translation(plate, preset):
    b = shifted(plate, 2.5, -1.25)
    flow = estimate_flow(plate, b, preset=preset)
    core = flow[16:-16, 16:-16]
    # a[p] = b[p + (2.5, -1.25)]
    tol = 0.15 if preset == "fast" else 0.05     # fast stops at quarter resolution
    assert np.median(core[..., 0]) == pytest.approx(2.5, abs=tol)
    assert np.median(core[..., 1]) == pytest.approx(-1.25, abs=tol)
    assert np.mean(np.linalg.norm(core - [2.5, -1.25], axis=2)) < (0.3 if preset == "fast" else 0.15)


def test_flow_ignores_gain_and_scale_option(plate):
    b = shifted(plate, -3.0, 2.0) * np.float32(1.8)     # 0.85 stop brighter as well as moved
    flow = estimate_flow(plate, b, preset="medium")
    assert np.median(flow[16:-16, 16:-16, 0]) == pytest.approx(-3.0, abs=0.06)
    half = estimate_flow(plate, b, preset="medium", scale=0.5)
    assert half.shape == flow.shape
    assert np.median(half[16:-16, 16:-16, 1]) == pytest.approx(2.0, abs=0.15)


def test_flow_is_deterministic_across_thread_counts(plate):
    b = shifted(plate, 1.5, 0.5)
    before = cv2.getNumThreads()
    try:
        results = []
        for n in (1, 2):
            cv2.setNumThreads(n)
            clear_caches()
            results.append(estimate_flow(plate, b, preset="medium"))
    finally:
        cv2.setNumThreads(before)
    assert np.array_equal(results[0], results[1])


def test_occlusion_marks_disoccluded_band():
    """A square moving right over a static background uncovers a band on its left."""
    bg = textured_plate(96, 128, seed=1)
    fg = textured_plate(96, 128, seed=2) * np.float32(3.0)
    a, b = bg.copy(), bg.copy()
    a[30:62, 30:62] = fg[30:62, 30:62]
    b[30:62, 38:70] = fg[30:62, 30:62]                   # moved 8 px right
    pair = estimate_flow_pair(a, b, preset="medium")
    occ_b = pair.occluded_backward   # pixels of b whose content is not in a: the band the square covers
    occ_a = pair.occluded_forward    # pixels of a hidden in b: background at x 62..69, under the square in b
    hidden = np.zeros_like(occ_a)
    hidden[34:58, 64:70] = True
    assert occ_a[hidden].mean() > 0.6      # DIS smears flow over ~2 px at the motion boundary
    far = np.ones_like(occ_a)
    far[22:70, 22:78] = False
    assert occ_a[far].mean() < 0.02 and occ_b[far].mean() < 0.02
    # Inside the square the flow is the motion, and it is consistent.
    assert np.median(pair.forward[36:56, 36:56, 0]) == pytest.approx(8.0, abs=0.2)
    assert occ_a[36:56, 40:56].mean() < 0.1


def test_occlusion_flags_pixels_leaving_the_frame():
    fw = np.zeros((10, 12, 2), np.float32)
    fw[..., 0] = 3.0
    bw = -fw
    occ = flow_occlusion(fw, bw)
    # Pixels whose target x + 3 is beyond the last column (11) leave the frame.
    assert occ[:, 9:].all() and not occ[:, :9].any()


def test_warp_matches_scipy_map_coordinates(rng):
    img = rng.random((20, 24, 3), dtype=np.float32)
    flow = rng.uniform(-3, 3, (20, 24, 2)).astype(np.float32)
    out = warp(img, flow)
    yy, xx = np.mgrid[0:20, 0:24].astype(np.float64)
    coords = [np.clip(yy + flow[..., 1], 0, 19), np.clip(xx + flow[..., 0], 0, 23)]
    ref = np.stack([ndimage.map_coordinates(img[..., c].astype(np.float64), coords, order=1) for c in range(3)], 2)
    # OpenCV's bilinear remap quantises positions to 1/32 pixel.
    assert np.abs(out - ref).max() < 1.0 / 32 + 1e-6


def test_warp_integer_shift_is_exact_and_channels_beyond_four(rng):
    img = rng.random((8, 9, 6), dtype=np.float32)
    flow = np.zeros((8, 9, 2), np.float32)
    flow[..., 1] = 2.0
    out = warp(img, flow, border="constant")
    assert np.array_equal(out[:6], img[2:]) and not out[6:].any()


def test_compose_flows_follows_the_first_flow_into_the_second():
    h, w = 12, 16
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    first = np.zeros((h, w, 2), np.float32)
    first[..., 0] = 2.0                                   # a → b: everything 2 px to the right
    second = np.stack([0.25 * xx, np.full_like(xx, -1.0)], axis=2)  # b → c: depends on where b's pixel is
    out = compose_flows(first, second)
    # p + first lands at x + 2 in b, where the second flow is (0.25 (x + 2), -1); the border replicates.
    expect_x = 2.0 + 0.25 * np.minimum(xx + 2.0, w - 1)
    assert np.allclose(out[..., 0], expect_x, atol=1e-4) and np.allclose(out[..., 1], -1.0)
    assert np.array_equal(compose_flows(first), first)
    with pytest.raises(InputError, match="cannot be chained"):
        compose_flows(first, second[:, :8])
    with pytest.raises(InputError, match="at least one"):
        compose_flows()


def test_chained_flow_matches_two_frame_motion(plate):
    """Two 6 px steps: the chain of the consecutive flows recovers the 12 px motion at the centre."""
    a, b, c = plate, shifted(plate, 6.0, 0.0), shifted(plate, 12.0, 0.0)
    chained = compose_flows(estimate_flow(a, b), estimate_flow(b, c))
    centre = chained[24:72, 32:96]
    assert np.median(centre[..., 0]) == pytest.approx(12.0, abs=0.1)
    assert np.median(np.abs(centre[..., 1])) < 0.1


def test_warp_matte_stays_in_range(rng):
    m = (rng.random((16, 16)) > 0.5).astype(np.float32)
    out = warp_matte(m, rng.uniform(-2, 2, (16, 16, 2)).astype(np.float32))
    assert out.shape == m.shape and out.min() >= 0.0 and out.max() <= 1.0


def test_bad_inputs_have_clear_errors(plate):
    with pytest.raises(InputError, match="one size"):
        estimate_flow(plate, plate[:, :100])
    with pytest.raises(StateError, match="float32"):
        estimate_flow(plate.astype(np.float64), plate)
    with pytest.raises(InputError, match="preset"):
        estimate_flow(plate, plate, preset="best")
    with pytest.raises(InputError, match="scale"):
        estimate_flow(plate, plate, scale=2.0)
    tiny = plate[:MIN_FLOW_SIZE - 1, :20]
    assert not estimate_flow(tiny, tiny).any()          # defined: too small for DIS, zero flow


def test_guide_normalises_gain(plate):
    g1 = flow_guide(plate)
    g2 = flow_guide(plate * np.float32(4.0))
    assert np.abs(g1.astype(int) - g2.astype(int)).max() <= 1
