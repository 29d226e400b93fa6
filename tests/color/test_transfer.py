"""Colour transfer: Reinhard, Pitié's MKL and histogram matching."""

import logging

import cv2
import numpy as np
import PyOpenColorIO as ocio
import pytest

from composite.color.transfer import (
    SPACES,
    ColorTransform,
    acescct_decode,
    acescct_encode,
    color_transfer,
    decode,
    encode,
    fit_color_transfer,
    mkl_matrix,
    transfer_histogram,
    transfer_mkl,
    transfer_reinhard,
)
from composite.core.errors import InputError


def _image(rng, shape=(24, 32), scale=(1.0, 1.0, 1.0), offset=0.0):
    """A smooth-plus-noise scene-linear image with correlated channels."""
    h, w = shape
    yy, xx = np.mgrid[0:h, 0:w] / max(h, w)
    base = 0.05 + 0.5 * (0.5 + 0.5 * np.sin(6 * xx + 3 * yy))[..., None] * np.array([1.0, 0.8, 0.6])
    px = base * np.asarray(scale) + offset + rng.normal(0, 0.03, (h, w, 3))
    return np.abs(px).astype(np.float32)


# -- encodings ---------------------------------------------------------------------------------------
def test_acescct_matches_ocio_builtin_curve_and_round_trips():
    lin = np.array([-1.0, -0.01, 0.0, 0.001, 0.0078125, 0.18, 1.0, 100.0, 65504.0, 1e6], np.float32)
    cfg = ocio.Config.CreateRaw()
    cpu = cfg.getProcessor(ocio.BuiltinTransform("CURVE - ACEScct-LOG_to_LINEAR", ocio.TRANSFORM_DIR_INVERSE)) \
        .getDefaultCPUProcessor()
    buf = np.repeat(lin[:, None], 3, 1).copy()
    cpu.applyRGB(buf)
    np.testing.assert_allclose(acescct_encode(lin), buf[:, 0], rtol=2e-6, atol=2e-6)
    assert acescct_encode(0.18) == pytest.approx(0.4135884, abs=1e-6)  # S-2016-001 mid grey
    np.testing.assert_allclose(acescct_decode(acescct_encode(lin.astype(np.float64))), lin, rtol=1e-12)


@pytest.mark.parametrize("space", SPACES)
def test_every_space_round_trips_hdr_and_negatives(space, rng):
    x = np.concatenate([rng.uniform(-0.05, 1.0, (50, 3)), rng.uniform(1.0, 1e4, (50, 3))])
    np.testing.assert_allclose(decode(encode(x, space), space), x, rtol=1e-9, atol=1e-12)


# -- Reinhard ----------------------------------------------------------------------------------------
def test_reinhard_linear_equals_the_analytic_formula(rng):
    src = _image(rng)
    ref = _image(rng, (20, 30), scale=(1.4, 0.9, 0.5), offset=0.1)
    out = transfer_reinhard(src, ref, space="linear", max_samples=None)
    s, r = src.reshape(-1, 3).astype(np.float64), ref.reshape(-1, 3).astype(np.float64)
    want = (s - s.mean(0)) / s.std(0) * r.std(0) + r.mean(0)
    np.testing.assert_allclose(out.reshape(-1, 3), want, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("space", ["lab", "lalphabeta", "acescct"])
def test_reinhard_matches_mean_and_std_in_its_space(space, rng):
    src = _image(rng)
    ref = _image(rng, scale=(0.5, 1.0, 1.6), offset=0.02)
    out = transfer_reinhard(src, ref, space=space)
    eo, er = encode(out.reshape(-1, 3), space), encode(ref.reshape(-1, 3), space)
    np.testing.assert_allclose(eo.mean(0), er.mean(0), atol=1e-4)
    np.testing.assert_allclose(eo.std(0), er.std(0), rtol=1e-4, atol=1e-6)


# -- MKL ---------------------------------------------------------------------------------------------
def test_mkl_matrix_solves_t_a_t_equals_b(rng):
    m = rng.normal(size=(3, 3))
    a = m @ m.T + 0.1 * np.eye(3)
    n = rng.normal(size=(3, 3))
    b = n @ n.T + 0.1 * np.eye(3)
    t = mkl_matrix(a, b, regularization=0.0)
    np.testing.assert_allclose(t, t.T, atol=1e-12)
    assert np.all(np.linalg.eigvalsh(t) > 0)
    np.testing.assert_allclose(t @ a @ t, b, rtol=1e-8, atol=1e-10)


def test_mkl_output_has_the_reference_mean_and_covariance(rng):
    src = _image(rng)
    ref = _image(rng, scale=(0.4, 1.0, 1.5), offset=0.05)
    out = transfer_mkl(src, ref, space="acescct")
    eo, er = encode(out.reshape(-1, 3), "acescct"), encode(ref.reshape(-1, 3), "acescct")
    np.testing.assert_allclose(eo.mean(0), er.mean(0), atol=1e-5)
    np.testing.assert_allclose(np.cov(eo.T), np.cov(er.T), rtol=1e-3, atol=1e-7)


def test_mkl_reproduces_pities_published_result(eval_data):
    """Pitié's MKL (colour_transfer_MKL.m) on 8-bit display values in [0, 1], his published result_MKL.png.

    Measured: 227 of the 520,923 8-bit values differ, each by one level (rounding); mean absolute
    difference 0.0004 levels, PSNR 81.7 dB.
    """
    folder = eval_data / "color_transfer" / "pitie_scotland"

    def read(name):
        return cv2.imread(str(folder / name), cv2.IMREAD_COLOR)[:, :, ::-1].astype(np.float32) / 255.0

    source, palette, published = read("scotland_house.png"), read("scotland_plain.png"), read("result_MKL.png")
    out = transfer_mkl(source, palette, space="linear", max_samples=None)
    ours = np.round(np.clip(out, 0.0, 1.0) * 255.0)
    diff = np.abs(ours - published * 255.0)
    psnr = 10 * np.log10(255.0 ** 2 / np.mean(diff ** 2))
    assert diff.mean() < 0.005
    assert diff.max() <= 1.0
    assert np.count_nonzero(diff) < 0.002 * diff.size
    assert psnr > 75.0


# -- histogram ---------------------------------------------------------------------------------------
def test_histogram_maps_uniform_onto_uniform_linearly(rng):
    # evenly spread values (shuffled) so the empirical distributions are exactly uniform
    src = np.stack([rng.permutation(np.linspace(0.0, 1.0, 4096)) for _ in range(3)], -1)
    ref = np.stack([rng.permutation(np.linspace(2.0, 4.0, 3000)) for _ in range(3)], -1)
    src, ref = src.reshape(64, 64, 3).astype(np.float32), ref.reshape(50, 60, 3).astype(np.float32)
    out = transfer_histogram(src, ref, space="linear", max_samples=None)
    np.testing.assert_allclose(out, 2.0 + 2.0 * src, atol=4e-3)


def test_histogram_output_quantiles_match_reference(rng):
    src = _image(rng, (48, 48))
    ref = (rng.gamma(2.0, 0.1, (40, 50, 3)) * [1.0, 1.3, 0.7]).astype(np.float32)
    out = transfer_histogram(src, ref, space="acescct", max_samples=None)
    qs = np.linspace(0.05, 0.95, 19)
    eo, er = encode(out.reshape(-1, 3), "acescct"), encode(ref.reshape(-1, 3), "acescct")
    np.testing.assert_allclose(np.quantile(eo, qs, axis=0), np.quantile(er, qs, axis=0), atol=6e-3)
    # monotone per channel: the order of pixels is kept
    for c in range(3):
        order = np.argsort(src[..., c].ravel())
        assert np.all(np.diff(out[..., c].ravel()[order]) >= -1e-6)


# -- controls ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("method", ["reinhard", "mkl", "histogram"])
def test_strength_blends_in_the_transfer_space(method, rng):
    src, ref = _image(rng), _image(rng, scale=(1.5, 1.0, 0.5))
    assert np.array_equal(color_transfer(src, ref, method=method, strength=0.0), src)
    full = fit_color_transfer(src, ref, method=method)
    half = full.with_strength(0.5)
    s = encode(src.reshape(-1, 3), full.space)
    f = encode(full.apply(src).reshape(-1, 3), full.space)
    h = encode(half.apply(src).reshape(-1, 3), full.space)
    np.testing.assert_allclose(h, 0.5 * (s + f), atol=1e-4)


@pytest.mark.parametrize("method", ["reinhard", "mkl", "histogram"])
def test_stored_transform_round_trips(method, rng):
    src, ref = _image(rng), _image(rng, scale=(0.7, 1.0, 1.3))
    tr = fit_color_transfer(src, ref, method=method, bins=256)
    again = ColorTransform.from_dict(tr.to_dict())
    np.testing.assert_array_equal(again.apply(src), tr.apply(src))
    with pytest.raises(InputError, match="unknown key"):
        ColorTransform.from_dict({**tr.to_dict(), "gamma": 2})


def test_premultiplied_alpha_is_respected(rng):
    src = _image(rng)
    ref = _image(rng, scale=(1.5, 1.0, 0.5))
    alpha = np.zeros(src.shape[:2], np.float32)
    alpha[4:20, 5:25] = 1.0
    alpha[4:20, 5] = 0.5  # a soft edge
    garbage = src.copy()
    garbage[alpha == 0] = [50.0, 0.0, 0.0]  # emissive colour where alpha is 0 must not affect the fit
    rgba = np.concatenate([garbage * np.where(alpha > 0, alpha, 1.0)[..., None], alpha[..., None]], 2)
    tr_rgba = fit_color_transfer(rgba, ref, method="mkl")
    sub = src[4:20, 6:25]
    tr_region = fit_color_transfer(np.ascontiguousarray(sub), ref, method="mkl")
    # the soft-edge column has the same colour family; statistics are close to the inside-only fit
    np.testing.assert_allclose(tr_rgba.matrix, tr_region.matrix, atol=0.06)
    out = tr_rgba.apply(rgba)
    np.testing.assert_array_equal(out[..., 3], alpha)
    np.testing.assert_array_equal(out[alpha == 0], rgba[alpha == 0])  # untouched
    straight = tr_rgba.apply(np.ascontiguousarray(src[4:20, 5:25]))
    np.testing.assert_allclose(out[4:20, 5:25, :3], straight * alpha[4:20, 5:25, None], rtol=1e-5, atol=1e-6)


def test_reference_matte_restricts_the_statistics(rng):
    src = _image(rng)
    ref = np.empty((20, 40, 3), np.float32)
    ref[:, :20] = _image(rng, (20, 20), scale=(1.6, 0.8, 0.4))
    ref[:, 20:] = _image(rng, (20, 20), scale=(0.3, 0.6, 1.8))
    matte = np.zeros((20, 40), np.float32)
    matte[:, :20] = 1.0
    with_matte = color_transfer(src, ref, method="reinhard", reference_weights=matte, max_samples=None)
    cropped = color_transfer(src, np.ascontiguousarray(ref[:, :20]), method="reinhard", max_samples=None)
    np.testing.assert_allclose(with_matte, cropped, rtol=1e-5, atol=1e-6)
    # a (H, W, 1) matte is accepted too
    np.testing.assert_allclose(color_transfer(src, ref, method="reinhard", reference_weights=matte[..., None],
                                              max_samples=None), cropped, rtol=1e-5, atol=1e-6)


# -- bad input ---------------------------------------------------------------------------------------
def test_empty_reference_region_is_a_clear_error(rng):
    src, ref = _image(rng), _image(rng)
    with pytest.raises(InputError, match="reference: the region is empty"):
        color_transfer(src, ref, reference_weights=np.zeros(ref.shape[:2], np.float32))
    transparent = np.zeros((*ref.shape[:2], 4), np.float32)
    with pytest.raises(InputError, match="reference: the region is empty"):
        color_transfer(src, transparent)


def test_matte_of_the_wrong_size_names_both_sizes(rng):
    src, ref = _image(rng, (24, 32)), _image(rng, (24, 32))
    with pytest.raises(InputError, match=r"matte is 16x10.*image is 32x24"):
        color_transfer(src, ref, reference_weights=np.ones((10, 16), np.float32))


@pytest.mark.parametrize("method", ["reinhard", "mkl", "histogram"])
def test_constant_reference_gives_a_mean_only_transfer(method, rng, caplog):
    src = _image(rng)
    ref = np.full((8, 8, 3), [0.3, 0.2, 0.1], np.float32)
    with caplog.at_level(logging.INFO, logger="composite.color"):
        tr = fit_color_transfer(src, ref, method=method)
    assert len(tr.notes) == 3 and "constant" in tr.notes[0]
    out = tr.apply(src)
    assert np.all(np.isfinite(out))
    eo, es = encode(out.reshape(-1, 3), tr.space), encode(src.reshape(-1, 3), tr.space)
    np.testing.assert_allclose(eo.mean(0), encode(np.array([0.3, 0.2, 0.1]), tr.space), atol=2e-3)
    np.testing.assert_allclose(eo.std(0), es.std(0), rtol=2e-3)  # the element keeps its spread


@pytest.mark.parametrize("method", ["reinhard", "mkl", "histogram"])
def test_constant_element_maps_to_the_reference_mean(method, rng):
    src = np.full((6, 6, 3), 0.5, np.float32)
    ref = _image(rng)
    tr = fit_color_transfer(src, ref, method=method)
    out = tr.apply(src)
    assert np.all(np.isfinite(out))
    assert np.ptp(out.reshape(-1, 3), axis=0).max() < 1e-6
    np.testing.assert_allclose(encode(out[0, 0], tr.space), tr.stats["reference_mean"], atol=2e-3)


@pytest.mark.parametrize("method", ["reinhard", "mkl", "histogram"])
def test_hdr_values_are_not_clipped(method, rng):
    src = _image(rng)
    src[0, 2] = [40.0, 40.0, 40.0]
    src[0, 3] = [400.0, 300.0, 200.0]
    ref = _image(rng, scale=(1.2, 1.0, 0.9))
    ref[5, 5] = [60.0, 60.0, 60.0]
    out = color_transfer(src, ref, method=method)
    if method != "histogram":  # affine maps keep a highlight above 1
        assert out[0, 2].min() > 1.0
    assert out[0, 3].max() > 1.0  # histogram matching maps the top onto the reference's highlight
    assert out[0, 3].sum() > out[0, 2].sum()  # brighter highlights stay brighter


@pytest.mark.parametrize("method", ["reinhard", "mkl", "histogram"])
def test_enormous_and_negative_values_give_finite_output(method, rng):
    src = _image(rng)
    src[0, 0] = [1e30, 1e30, 1e30]
    src[0, 1] = [-5.0, -1.0, -0.5]
    ref = _image(rng, scale=(1.2, 1.0, 0.9))
    ref[3, 3] = [3e38, 1e-30, -1e20]
    out = color_transfer(src, ref, method=method)
    assert out.dtype == np.float32 and np.all(np.isfinite(out))


def test_nonfinite_and_wrong_dtype_inputs_are_refused(rng):
    src, ref = _image(rng), _image(rng)
    bad = src.copy()
    bad[1, 1, 1] = np.nan
    with pytest.raises(InputError, match="NaN/Inf"):
        color_transfer(bad, ref)
    with pytest.raises(InputError, match="float32"):
        color_transfer(src.astype(np.float64), ref)
    with pytest.raises(InputError, match=r"\(H, W, 3\)"):
        color_transfer(src[..., :2].copy(), ref)
    with pytest.raises(InputError, match="unknown colour-transfer method"):
        color_transfer(src, ref, method="idt")
