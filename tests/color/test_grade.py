"""Nuke-style Grade and the black/white-point solver."""

import numpy as np
import pytest

from composite.color.delta_e import AP1_LUMA
from composite.color.grade import (
    GradeParams,
    apply_grade_params,
    find_dark_bright,
    grade,
    match_black_white,
    region_mean,
    solve_grade,
)
from composite.core.errors import InputError

PARAMS = dict(blackpoint=[0.02, 0.01, 0.0], whitepoint=[0.9, 1.1, 1.0], lift=[0.05, 0.0, -0.01],
              gain=[1.2, 0.95, 1.05], multiply=[1.1, 1.0, 0.9], offset=[0.01, -0.02, 0.0], gamma=[1.2, 0.8, 1.0])


def _nuke_grade(v, c):
    """Nuke's Grade written out for one value of channel c (independent of the vectorised code)."""
    p = {k: v_[c] for k, v_ in PARAMS.items()}
    a = p["multiply"] * (p["gain"] - p["lift"]) / (p["whitepoint"] - p["blackpoint"])
    b = p["offset"] + p["lift"] - a * p["blackpoint"]
    base = a * v + b
    return base ** (1.0 / p["gamma"]) if base > 0 else base


def test_grade_pins_nukes_formula():
    values = np.array([[[-0.3, -0.3, -0.3], [0.0, 0.0, 0.0], [0.18, 0.18, 0.18], [1.0, 1.0, 1.0], [12.0, 7.0, 3.0]]],
                      np.float32)
    out = grade(values, **PARAMS)
    want = np.array([[_nuke_grade(float(values[0, i, c]), c) for c in range(3)] for i in range(values.shape[1])])
    np.testing.assert_allclose(out[0], want, rtol=2e-6, atol=1e-7)
    # hand-checked: channel G at 0.18: A = 0.95/1.09, B = -0.02 - A*0.01; (A*0.18 + B) ** 1.25
    a = 0.95 / 1.09
    assert out[0, 2, 1] == pytest.approx((a * 0.18 - 0.02 - a * 0.01) ** 1.25, rel=1e-6)
    assert out[0, 4, 0] > 10.0  # HDR is not clipped


def test_negative_base_stays_linear_and_clamps_are_opt_in():
    px = np.array([[[-0.5, 0.25, 2.0]]], np.float32)
    out = grade(px, gamma=2.0)
    np.testing.assert_allclose(out[0, 0], [-0.5, 0.5, np.sqrt(2.0)], rtol=1e-6)
    np.testing.assert_allclose(grade(px, gamma=2.0, black_clamp=True, white_clamp=True)[0, 0], [0.0, 0.5, 1.0])


def test_reverse_inverts_the_grade(rng):
    px = rng.uniform(-0.2, 4.0, (6, 7, 3)).astype(np.float32)
    fwd = grade(px, **PARAMS, saturation=1.3)
    back = grade(fwd, **PARAMS, saturation=1.3, reverse=True)
    np.testing.assert_allclose(back, px, rtol=1e-4, atol=1e-5)


def test_saturation_keeps_acescg_luminance(rng):
    px = rng.uniform(0.0, 2.0, (5, 5, 3)).astype(np.float32)
    out = grade(px, saturation=0.3)
    np.testing.assert_allclose(out @ AP1_LUMA, px @ AP1_LUMA, rtol=1e-5)
    grey = grade(px, saturation=0.0)
    np.testing.assert_allclose(np.ptp(grey, axis=2), 0.0, atol=1e-6)


def test_premultiplied_rgba_is_graded_unpremultiplied():
    rgba = np.array([[[0.1, 0.2, 0.3, 0.5], [0.4, 0.4, 0.4, 0.0], [0.5, 0.5, 0.5, 1.0]]], np.float32)
    out = grade(rgba, offset=0.1, gain=2.0)
    np.testing.assert_allclose(out[0, 0], [(0.2 * 2 + 0.1) * 0.5, (0.4 * 2 + 0.1) * 0.5, (0.6 * 2 + 0.1) * 0.5, 0.5],
                               rtol=1e-6)
    np.testing.assert_array_equal(out[0, 1], rgba[0, 1])  # alpha 0: untouched
    np.testing.assert_allclose(out[0, 2], [1.1, 1.1, 1.1, 1.0], rtol=1e-6)


def test_grade_rejects_flat_ranges_and_bad_gamma():
    px = np.zeros((2, 2, 3), np.float32)
    with pytest.raises(InputError, match="whitepoint equals blackpoint in G"):
        grade(px, blackpoint=[0.0, 0.5, 0.0], whitepoint=[1.0, 0.5, 1.0])
    with pytest.raises(InputError, match="gamma must be > 0"):
        grade(px, gamma=0.0)
    with pytest.raises(InputError, match="3 numbers"):
        grade(px, lift=[0.1, 0.2])


# -- solver ------------------------------------------------------------------------------------------
def _pair(rng):
    """A reference plate and an element that is the plate under a known per-channel affine mismatch."""
    base = rng.gamma(2.0, 0.12, (40, 50, 1))  # correlated channels, as in real pictures
    ref = (base * [1.0, 0.9, 0.8] + [0.01, 0.012, 0.015] + rng.uniform(0, 0.004, (40, 50, 3))).astype(np.float32)
    slope, inter = np.array([0.7, 0.9, 1.25]), np.array([0.05, -0.004, 0.02])
    element = (ref * slope + inter).astype(np.float32)
    return element, ref


def test_solver_recovers_a_per_channel_affine_mismatch_exactly(rng):
    element, ref = _pair(rng)
    sol = solve_grade(element, ref, dark_percentile=0.0, bright_percentile=100.0, mode="channel")
    np.testing.assert_allclose(apply_grade_params(element, sol.params), ref, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(sol.params.blackpoint, element.reshape(-1, 3).min(0), rtol=1e-6)
    np.testing.assert_allclose(sol.params.gain, ref.reshape(-1, 3).max(0), rtol=1e-6)


def test_luma_mode_is_robust_to_outliers(rng):
    element, ref = _pair(rng)
    element[0, :3] = [30.0, 30.0, 30.0]  # three fireflies
    element[1, :2] = [-1.0, -1.0, -1.0]  # and two dead pixels
    robust = match_black_white(element, ref, dark_percentile=2.0, bright_percentile=98.0)
    naive = match_black_white(element, ref, dark_percentile=0.0, bright_percentile=100.0, mode="channel")
    inside = np.ones(element.shape[:2], bool)
    inside[:2] = False
    err_robust = np.abs(robust[inside] - ref[inside]).mean()
    err_naive = np.abs(naive[inside] - ref[inside]).mean()
    assert err_robust < 0.005 and err_naive > 0.1  # measured 0.0022 and 0.17


def test_find_dark_bright_luma_averages_the_extreme_pixels():
    px = np.zeros((10, 10, 3), np.float32)
    px[...] = 0.5
    px[0, :] = [0.01, 0.02, 0.03]  # the darkest 10 %
    px[9, :] = [2.0, 1.5, 1.0]  # the brightest 10 %
    px[9, 9] = [50.0, 50.0, 50.0]  # a firefly beyond the band is ignored
    dark, bright = find_dark_bright(px, dark_percentile=5.0, bright_percentile=95.0)
    np.testing.assert_allclose(dark, [0.01, 0.02, 0.03], rtol=1e-6)
    np.testing.assert_allclose(bright, [2.0, 1.5, 1.0], rtol=1e-6)
    weights = np.ones((10, 10), np.float32)
    weights[9] = 0.0  # matte out the bright row
    _, bright = find_dark_bright(px, weights=weights, dark_percentile=5.0, bright_percentile=95.0)
    np.testing.assert_allclose(bright, [0.5, 0.5, 0.5], rtol=1e-6)


def test_picks_replace_the_search():
    px = np.full((8, 8, 3), 0.3, np.float32)
    px[:2, :2] = [0.05, 0.06, 0.07]
    np.testing.assert_allclose(region_mean(px, (0, 0, 2, 2)), [0.05, 0.06, 0.07], rtol=1e-6)
    sol = solve_grade(px, None, element_dark={"box": [0, 0, 2, 2]}, element_bright=0.3,
                      reference_dark=[0.0, 0.0, 0.0], reference_bright=[1.0, 1.0, 1.0])
    assert sol.params.whitepoint == (0.3, 0.3, 0.3)
    out = apply_grade_params(px, sol.params)
    np.testing.assert_allclose(out[0, 0], 0.0, atol=1e-6)
    np.testing.assert_allclose(out[5, 5], 1.0, atol=1e-6)
    # no reference: map the element's dark/bright onto 0/1
    sol2 = solve_grade(None, None, element_dark=0.1, element_bright=0.6)
    assert sol2.params.lift == (0.0, 0.0, 0.0) and sol2.params.gain == (1.0, 1.0, 1.0)
    with pytest.raises(InputError, match="outside"):
        region_mean(px, (20, 20, 2, 2))


def test_solver_errors_are_clear(rng):
    flat = np.full((6, 6, 3), 0.2, np.float32)
    _, ref = _pair(rng)
    with pytest.raises(InputError, match="region is flat"):
        solve_grade(flat, ref)
    with pytest.raises(InputError, match="reference: the region is empty"):
        solve_grade(ref, ref, reference_weights=np.zeros(ref.shape[:2], np.float32))
    with pytest.raises(InputError, match="matte is 3x3"):
        solve_grade(ref, ref, element_weights=np.ones((3, 3), np.float32))
    with pytest.raises(InputError, match="dark < bright"):
        find_dark_bright(ref, dark_percentile=60.0, bright_percentile=40.0)
    with pytest.raises(InputError, match="give the element image"):
        solve_grade(None, ref)


def test_grade_params_serialise():
    p = GradeParams(lift=0.1, gamma=[1.0, 1.2, 0.9], saturation=0.8)
    assert p.to_dict()["lift"] == [0.1, 0.1, 0.1]
    assert GradeParams(**p.to_dict()) == p
    assert GradeParams().is_identity and not p.is_identity


def test_extreme_values_stay_finite():
    px = np.array([[[3e38, 1e30, -3e38], [-5.0, 0.0, 1e-30], [65504.0, 1e6, 2.0]]], np.float32)
    for kw in (dict(PARAMS, saturation=1.5), dict(gain=1e6, saturation=0.0), dict(gamma=0.2, saturation=10.0)):
        out = grade(px, **kw)
        assert out.dtype == np.float32 and np.all(np.isfinite(out)), kw
    # ordinary HDR values go through the float32 path exactly as the formula says
    np.testing.assert_allclose(grade(px[:, 2:], gain=2.0), px[:, 2:] * 2.0, rtol=1e-6)
