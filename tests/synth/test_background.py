"""The generated background's flicker truth reproduces its frames exactly."""

import cv2
import numpy as np
import pytest

from composite.core.errors import InputError
from composite.synth import flicker_gain_field, generated_background_sequence


@pytest.fixture(scope="module")
def seq():
    return generated_background_sequence(192, 108, 8, seed=2, exposure_ramp=1.5, flicker_grid=(2, 3))


def test_image_is_clean_times_gain(seq):
    f = seq.frame(1004)
    np.testing.assert_array_equal(f.image, f.clean * f.gain)
    g, reg = seq.flicker(1004)
    assert g == f.global_gain and np.array_equal(reg, f.regional_gains)
    assert reg.shape == (2, 3)
    np.testing.assert_allclose(reg.mean(), 1.0, atol=1e-6)
    # Independent rebuild of the regional field: bicubic interpolation of the grid given at region centres.
    ys, xs = np.mgrid[0:108, 0:192]
    field = f.gain[..., 0] / g
    # At the region centres the field equals the grid (a property of the centre-aligned interpolation).
    for r in range(2):
        for c in range(3):
            cy, cx = (r + 0.5) * 108 / 2 - 0.5, (c + 0.5) * 192 / 3 - 0.5
            if float(cy).is_integer() and float(cx).is_integer():
                assert abs(field[int(cy), int(cx)] - reg[r, c]) < 1e-5
    np.testing.assert_allclose(field, cv2.resize(reg, (192, 108), interpolation=cv2.INTER_CUBIC), rtol=1e-6)
    np.testing.assert_allclose(flicker_gain_field(g, reg, 192, 108), f.gain, rtol=1e-6)


def test_exposure_ramp_is_a_real_change_and_flicker_is_not(seq):
    assert seq.exposure(1001) == 1.0
    assert seq.exposure(1008) == pytest.approx(2 ** 1.5)
    still = generated_background_sequence(192, 108, 8, seed=2, exposure_ramp=1.5, camera_move=0.0)
    a, b = still.frame(1001), still.frame(1008)
    ratio = np.median(b.clean / np.maximum(a.clean, 1e-6))
    assert ratio == pytest.approx(2 ** 1.5, rel=0.01)
    # The flickered frames differ from the clean ones by exactly their gain.
    assert np.median(b.image / np.maximum(b.clean, 1e-6)) == pytest.approx(float(np.median(b.gain)), rel=1e-3)


def test_flicker_statistics():
    seq = generated_background_sequence(64, 36, 400, seed=9, flicker=0.05, regional_flicker=0.02)
    logs = np.log([seq.flicker(n)[0] for n in seq.frames])
    assert abs(logs.mean()) < 0.01
    assert logs.std() == pytest.approx(0.05, rel=0.12)
    regs = np.log(np.stack([seq.flicker(n)[1] for n in seq.frames[:100]]))
    assert regs.std() == pytest.approx(0.02, rel=0.15)


def test_no_flicker_means_no_gain():
    seq = generated_background_sequence(96, 54, 2, flicker=0.0, regional_flicker=0.0)
    f = seq.frame(1002)
    assert np.array_equal(f.image, f.clean)


def test_hdr_sun_is_kept_and_values_are_finite(seq):
    f = seq.frame(1001)
    assert np.isfinite(f.image).all() and f.image.dtype == np.float32
    assert f.image.max() > 4.0  # the sun's core, scene-linear, unclipped
    assert f.image.min() >= 0.0


def test_deterministic_and_chunk_independent():
    a = generated_background_sequence(128, 72, 6, seed=4)
    b = generated_background_sequence(128, 72, 6, seed=4)
    seq_b = [f for f in b]
    assert np.array_equal(a.frame(1005).image, seq_b[4].image)
    assert not np.array_equal(a.frame(1005).image, generated_background_sequence(128, 72, 6, seed=5).frame(1005).image)


def test_camera_and_smoke_move_the_picture():
    seq = generated_background_sequence(128, 72, 24, seed=4)
    np.testing.assert_allclose(seq.camera(1001), np.eye(3), atol=1e-12)
    assert not np.array_equal(seq.frame(1001).clean, seq.frame(1024).clean)


def test_truth_is_json_ready(seq):
    import json

    t = json.loads(json.dumps(seq.truth()))
    assert set(t["frames"]) == {str(n) for n in seq.frames}
    fr = t["frames"]["1003"]
    assert fr["global_gain"] == seq.flicker(1003)[0]
    assert np.allclose(fr["regional_gains"], seq.flicker(1003)[1])


@pytest.mark.parametrize("kwargs", [dict(flicker=-0.1), dict(flicker_grid=(0, 3)), dict(exposure_ramp=20)])
def test_bad_parameters(kwargs):
    with pytest.raises(InputError):
        generated_background_sequence(64, 36, 2, **kwargs)
