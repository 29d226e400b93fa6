"""Grain measurement, regrain and degrain against synthetic plates with known grain."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from composite.color.grain import (
    GrainProfile,
    degrain,
    luminance,
    measure_grain,
    regrain,
    synthesize_grain,
)
from composite.core.errors import InputError

SIGMA = 1.0                                   # Gaussian correlation of the synthetic grain (px)
LEVELS = 2.0 ** np.arange(-6, 2, dtype=np.float32)  # strip luminances, one stop apart
A = np.array([0.020, 0.015, 0.030], np.float32)      # grain std = A sqrt(L) + B per channel
B = np.array([0.001, 0.001, 0.002], np.float32)


def true_std(lum):
    return A * np.sqrt(np.asarray(lum, np.float32))[..., None] + B


def correlated_noise(rng, h, w, sigma=SIGMA, rho=0.0):
    """Unit-variance Gaussian-blurred noise, channels correlated by rho."""
    white = rng.standard_normal((h, w, 3)).astype(np.float32)
    if rho:
        cov = np.full((3, 3), rho) + (1 - rho) * np.eye(3)
        white = white @ np.linalg.cholesky(cov).T.astype(np.float32)
    n = cv2.GaussianBlur(white, (0, 0), sigma, borderType=cv2.BORDER_REFLECT)
    return n / n.std(axis=(0, 1))


def discrete_half_length(sigma):
    """Lag where the autocorrelation of white noise blurred by OpenCV's Gaussian falls to 0.5."""
    k = cv2.getGaussianKernel(int(round(sigma * 8 + 1)) | 1, sigma)[:, 0]
    ac = np.correlate(k, k, "full")
    ac = ac[ac.size // 2:] / ac.max()
    i = int(np.flatnonzero(ac < 0.5)[0])
    return i - 1 + (ac[i - 1] - 0.5) / (ac[i - 1] - ac[i])


def strips(h=512, w=512, texture=True):
    """8 horizontal strips of constant colour at LEVELS; a checkerboard texture over the left quarter."""
    rows = np.repeat(LEVELS, h // LEVELS.size)
    base = rows[:, None, None] * np.array([1.1, 1.0, 0.8], np.float32)[None, None, :]
    base = np.broadcast_to(base, (h, w, 3)).copy()
    if texture:
        yy, xx = np.mgrid[0:h, 0:w]
        check = ((xx // 5 + yy // 5) % 2).astype(np.float32) * 0.6 + 0.7
        base[:, : w // 4] *= check[:, : w // 4, None]
    return base.astype(np.float32)


def band_edges():
    lg = np.log2(LEVELS)
    mids = 0.5 * (lg[1:] + lg[:-1])
    return [float(lg[0] - 0.5), *mids.tolist(), float(lg[-1] + 0.5)]


@pytest.fixture(scope="module")
def plate():
    rng = np.random.default_rng(5)
    base = strips()
    lum = luminance(base)
    return base, (base + true_std(lum) * correlated_noise(rng, *base.shape[:2])).astype(np.float32)


@pytest.fixture(scope="module")
def profile(plate):
    return measure_grain(plate[1], band_edges=band_edges())


def test_measured_std_per_band_and_channel_matches_truth(profile):
    lum_of_strip = luminance(np.array([[[1.1, 1.0, 0.8]]], np.float32))[0, 0] * LEVELS
    expected = true_std(lum_of_strip)
    got = np.asarray(profile.std)
    assert all(c >= 20 for c in profile.counts)            # textured tiles left out
    np.testing.assert_allclose(got, expected, rtol=0.06)
    np.testing.assert_allclose(2.0 ** np.asarray(profile.band_centers), lum_of_strip, rtol=0.02)


def test_measured_correlation_length_matches_the_blur(profile):
    np.testing.assert_allclose(profile.correlation_length, discrete_half_length(SIGMA), rtol=0.04)
    corr = np.asarray(profile.channel_correlation)
    assert np.abs(corr - np.eye(3)).max() < 0.06


def test_autocorrelation_matches_direct_estimate_on_the_full_frame(plate, profile):
    # Independent estimate: the FFT autocorrelation of the known grain field over the whole frame.
    rng = np.random.default_rng(5)
    base = strips()
    noise = correlated_noise(rng, *base.shape[:2])
    f = np.fft.fft2(noise[:, :, 1])
    ac = np.real(np.fft.ifft2(np.abs(f) ** 2))
    ac /= ac[0, 0]
    direct = 0.5 * (ac[0, :5] + ac[:5, 0])
    np.testing.assert_allclose(profile.autocorrelation[1][:5], direct, atol=0.04)


def test_regrained_element_matches_the_plate_statistics(profile):
    """Regrain a clean element, re-measure it with the plate's bands: std within 6% per band and
    channel, correlation length within 5%, channel correlation within 0.05."""
    clean = strips(texture=False)
    # a gentle gradient inside each strip so the element is not a copy of the plate's layout
    clean *= np.linspace(0.9, 1.1, clean.shape[1], dtype=np.float32)[None, :, None]
    grainy = regrain(clean, profile, seed=11)
    again = measure_grain(grainy, band_edges=profile.band_edges)
    np.testing.assert_allclose(np.asarray(again.std), np.asarray(profile.std), rtol=0.06)
    np.testing.assert_allclose(again.correlation_length, profile.correlation_length, rtol=0.05)
    assert np.abs(np.asarray(again.channel_correlation) - np.eye(3)).max() < 0.05
    # and the grain is really added, not the element changed: its mean stays
    np.testing.assert_allclose(grainy.mean(axis=(0, 1)), clean.mean(axis=(0, 1)), rtol=0.01)


def test_channel_correlation_is_measured_and_reproduced():
    rng = np.random.default_rng(9)
    base = np.full((384, 384, 3), 0.18, np.float32)
    plate = (base + 0.01 * correlated_noise(rng, 384, 384, sigma=0.8, rho=0.6)).astype(np.float32)
    prof = measure_grain(plate, bands=1)
    corr = np.asarray(prof.channel_correlation)
    np.testing.assert_allclose(corr[np.triu_indices(3, 1)], 0.6, atol=0.05)
    again = measure_grain(regrain(base, prof, seed=2), bands=1)
    np.testing.assert_allclose(np.asarray(again.channel_correlation)[np.triu_indices(3, 1)], 0.6, atol=0.07)
    np.testing.assert_allclose(again.std[0], prof.std[0], rtol=0.05)


def test_white_grain_gives_identity_kernel_and_half_pixel_length():
    rng = np.random.default_rng(3)
    plate = (0.5 + 0.02 * rng.standard_normal((256, 256, 3))).astype(np.float32)
    prof = measure_grain(plate, bands=1)
    np.testing.assert_allclose(prof.std[0], 0.02, rtol=0.03)
    np.testing.assert_allclose(prof.correlation_length, 0.5, atol=0.03)
    k = prof.kernel(0)
    c = k.shape[0] // 2
    assert k[c, c] ** 2 > 0.97                              # nearly all energy in the centre tap


def test_synthesized_grain_is_unit_variance_and_seeded(profile):
    a = synthesize_grain(200, 300, profile, rng=np.random.default_rng(1))
    b = synthesize_grain(200, 300, profile, rng=np.random.default_rng(1))
    c = synthesize_grain(200, 300, profile, rng=np.random.default_rng(2))
    assert a.shape == (200, 300, 3) and a.dtype == np.float32
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    np.testing.assert_allclose(a.std(axis=(0, 1)), 1.0, rtol=0.05)


def test_regrain_premultiplied_scales_grain_by_alpha_and_keeps_alpha(profile):
    h, w = 256, 256
    rgba = np.zeros((h, w, 4), np.float32)
    rgba[:, :128] = (0.25, 0.25, 0.25, 1.0)
    rgba[:, 128:192] = (0.125, 0.125, 0.125, 0.5)           # straight colour 0.25, half covered
    out = regrain(rgba, profile, seed=4)
    np.testing.assert_array_equal(out[..., 3], rgba[..., 3])
    np.testing.assert_array_equal(out[:, 192:], 0.0)        # transparent stays transparent
    full = (out - rgba)[:, :128, 1].std()
    half = (out - rgba)[:, 128:192, 1].std()
    np.testing.assert_allclose(half / full, 0.5, rtol=0.1)
    expected = profile.std_at(np.array([0.25]))[0, 1]
    np.testing.assert_allclose(full, expected, rtol=0.08)


def test_regrain_hdr_and_negative_values_are_not_clipped(profile):
    img = np.zeros((64, 64, 3), np.float32)
    img[:32] = 5000.0
    img[32:] = -0.5
    out = regrain(img, profile, seed=1)
    assert np.isfinite(out).all()
    assert out[:32].max() > 5000.0 and out[:32].min() < 5000.0
    # above the top band the grain stays at the top band's level, below the bottom at the bottom's
    np.testing.assert_allclose((out - img)[:32].std(axis=(0, 1)), profile.std[-1], rtol=0.2)
    np.testing.assert_allclose((out - img)[32:].std(axis=(0, 1)), profile.std[0], rtol=0.2)


def test_degrain_removes_grain_and_keeps_edges_and_hdr():
    rng = np.random.default_rng(21)
    h, w = 256, 256
    clean = np.full((h, w, 3), 0.18, np.float32)
    clean[:, 128:] = 0.6                                       # a hard edge
    clean[:64, :64] = 1000.0                                   # an HDR block
    clean[200:, :64] = -0.05                                   # slightly negative (out-of-gamut) values
    grain = 0.01 * correlated_noise(rng, h, w, sigma=0.7)
    plate = (clean + grain * np.sqrt(np.maximum(clean, 0.18) / 0.18)).astype(np.float32)
    prof = measure_grain(plate, bands=4)
    out = degrain(plate, prof)
    assert np.isfinite(out).all()
    flat = (slice(80, 190), slice(70, 120))
    before = (plate - clean)[flat].std()
    after = (out - clean)[flat].std()
    assert after < 0.4 * before
    # the edge keeps its contrast: mean step across it within 2%
    step = out[80:190, 131].mean() - out[80:190, 124].mean()
    np.testing.assert_allclose(step, 0.42, rtol=0.02)
    np.testing.assert_allclose(out[8:56, 8:56].mean(), 1000.0, rtol=1e-4)
    assert out[208:248, 8:56].mean() < 0                       # negative values kept, not clipped


def test_constant_image_gives_zero_grain_and_no_ops():
    img = np.full((128, 128, 3), 0.3, np.float32)
    prof = measure_grain(img)
    assert prof.is_zero
    np.testing.assert_array_equal(regrain(img, prof, seed=1), img)
    np.testing.assert_array_equal(degrain(img, prof), img)


def test_profile_json_round_trip(tmp_path, profile):
    path = tmp_path / "grain.json"
    profile.save(path)
    back = GrainProfile.load(path)
    assert back == profile
    assert json.loads(path.read_text())["schema"] == "composite.grain_profile/1"


def test_bad_profiles_and_inputs_raise_clear_errors(tmp_path, profile):
    with pytest.raises(InputError, match="not found"):
        GrainProfile.load(tmp_path / "missing.json")
    data = profile.to_dict()
    data["std"] = data["std"][:-1]
    with pytest.raises(InputError, match="key 'std'"):
        GrainProfile.from_dict(data)
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(InputError, match="bad.json"):
        GrainProfile.load(tmp_path / "bad.json")
    img = np.full((128, 128, 3), 0.3, np.float32)
    with pytest.raises(InputError, match="mask"):
        measure_grain(img, mask=np.ones((64, 64), np.float32))
    with pytest.raises(InputError, match="mask"):
        regrain(img, profile, mask=np.ones((64, 64), np.float32))
    with pytest.raises(InputError, match="inside the mask"):
        measure_grain(img, mask=np.zeros((128, 128), np.float32))
    with pytest.raises(InputError, match="channel"):
        regrain(img[:, :, :1], profile)
    bad = img.copy()
    bad[3, 3] = np.nan
    with pytest.raises(InputError, match="NaN"):
        degrain(bad, profile)


def test_element_without_full_alpha_tiles_is_refused_for_measurement():
    rgba = np.zeros((64, 64, 4), np.float32)
    rgba[..., 3] = 0.5
    with pytest.raises(InputError, match="alpha"):
        measure_grain(rgba)


@pytest.mark.evaldata
def test_real_green_screen_plate_measures_the_screen_and_regrain_matches(eval_data):
    from composite.io.images import read_image, to_working

    path = eval_data / "greenscreen" / "unity_keyer_scientists.png"
    # the upper half: green screen, hair, the lamp (keeps the test short)
    plate = np.ascontiguousarray(to_working(read_image(path), "ACEScg").pixels[:512, :, :3])
    prof = measure_grain(plate, source=str(path))
    trusted = np.asarray(prof.counts) > 0
    # the trusted bands are the green screen's luminance (about 0.2-0.3 linear); the rest (hair,
    # clothes) is texture and interpolated
    centers = 2.0 ** np.asarray(prof.band_centers)
    assert trusted.sum() >= 1 and np.all((centers[trusted] > 0.15) & (centers[trusted] < 0.4))
    assert np.all(np.asarray(prof.std)[trusted] < 0.005)          # an 8-bit, lightly compressed plate
    h, w = plate.shape[:2]
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    elem = np.stack([0.1 + 0.2 * xx / w, 0.2 + 0.1 * yy / h, 0.15 + 0 * xx], -1).astype(np.float32)
    again = measure_grain(regrain(elem, prof, seed=1), band_edges=prof.band_edges)
    both = trusted & (np.asarray(again.counts) > 0)
    assert both.any()
    np.testing.assert_allclose(np.asarray(again.std)[both], np.asarray(prof.std)[both], rtol=0.1)
