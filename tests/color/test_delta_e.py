"""CIEDE2000 and CIELAB conversions, pinned against published data and OpenColorIO."""

import numpy as np
import PyOpenColorIO as ocio
import pytest

from composite.color.delta_e import (
    AP1_TO_REC709,
    AP1_TO_XYZ_D65,
    acescg_to_lab,
    acescg_to_srgb,
    delta_e_2000,
    display_lab,
    image_delta_e,
    lab_to_acescg,
    srgb_to_acescg,
    srgb_to_lab,
    summarize,
)
from composite.core.errors import InputError

# Sharma, Wu and Dalal (2005), Table 1: (L1, a1, b1), (L2, a2, b2), ΔE00. Rows 1-4, 7-14, 17, 25, 31, 34:
# the blue-region rotation term, the hue wrap at 180°, zero chroma and near-black pairs.
SHARMA = [
    ((50.0000, 2.6772, -79.7751), (50.0000, 0.0000, -82.7485), 2.0425),
    ((50.0000, 3.1571, -77.2803), (50.0000, 0.0000, -82.7485), 2.8615),
    ((50.0000, 2.8361, -74.0200), (50.0000, 0.0000, -82.7485), 3.4412),
    ((50.0000, -1.3802, -84.2814), (50.0000, 0.0000, -82.7485), 1.0000),
    ((50.0000, 0.0000, 0.0000), (50.0000, -1.0000, 2.0000), 2.3669),
    ((50.0000, -1.0000, 2.0000), (50.0000, 0.0000, 0.0000), 2.3669),
    ((50.0000, 2.4900, -0.0010), (50.0000, -2.4900, 0.0009), 7.1792),
    ((50.0000, 2.4900, -0.0010), (50.0000, -2.4900, 0.0010), 7.1792),
    ((50.0000, 2.4900, -0.0010), (50.0000, -2.4900, 0.0011), 7.2195),
    ((50.0000, 2.4900, -0.0010), (50.0000, -2.4900, 0.0012), 7.2195),
    ((50.0000, -0.0010, 2.4900), (50.0000, 0.0009, -2.4900), 4.8045),
    ((50.0000, -0.0010, 2.4900), (50.0000, 0.0010, -2.4900), 4.8045),
    ((50.0000, 2.5000, 0.0000), (73.0000, 25.0000, -18.0000), 27.1492),
    ((60.2574, -34.0099, 36.2677), (60.4626, -34.1751, 39.4387), 1.2644),
    ((22.7233, 20.0904, -46.6940), (23.0331, 14.9730, -42.5619), 2.0373),
    ((2.0776, 0.0795, -1.1350), (0.9033, -0.0636, -0.5514), 0.9082),
]


def test_ciede2000_reproduces_sharma_table():
    lab1 = np.array([r[0] for r in SHARMA])
    lab2 = np.array([r[1] for r in SHARMA])
    want = np.array([r[2] for r in SHARMA])
    got = delta_e_2000(lab1, lab2)
    np.testing.assert_allclose(got, want, atol=5e-5)
    np.testing.assert_allclose(delta_e_2000(lab2, lab1), got, atol=1e-12)  # symmetric


def test_ciede2000_broadcasts_and_is_zero_on_identity(rng):
    lab = np.stack([rng.uniform(0, 100, (5, 7)), rng.uniform(-90, 90, (5, 7)), rng.uniform(-90, 90, (5, 7))], -1)
    assert delta_e_2000(lab, lab).shape == (5, 7)
    assert delta_e_2000(lab, lab).max() == 0.0
    one = delta_e_2000(lab, np.array([50.0, 0.0, 0.0]))
    assert one.shape == (5, 7) and np.all(one > 0)
    with pytest.raises(InputError, match=r"\(\.\.\., 3\)"):
        delta_e_2000(np.zeros((4, 2)), np.zeros((4, 2)))


def test_srgb_primaries_to_lab_match_published_values():
    # sRGB red, green, blue and white in CIELAB D65 as Lindbloom's calculator publishes them; his 4-digit
    # matrix and white differ from IEC 61966-2-1's exact ones by a few thousandths of a unit of L*, a*, b*.
    lab = srgb_to_lab(np.eye(3).tolist() + [[1.0, 1.0, 1.0]])
    np.testing.assert_allclose(lab[0], [53.2408, 80.0925, 67.2032], atol=1e-2)
    np.testing.assert_allclose(lab[1], [87.7347, -86.1827, 83.1793], atol=1e-2)
    np.testing.assert_allclose(lab[2], [32.2970, 79.1875, -107.8602], atol=1e-2)
    np.testing.assert_allclose(lab[3], [100.0, 0.0, 0.0], atol=1e-9)


def _ocio_apply(name, values):
    cfg = ocio.Config.CreateRaw()
    cpu = cfg.getProcessor(ocio.BuiltinTransform(name, ocio.TRANSFORM_DIR_FORWARD)).getDefaultCPUProcessor()
    buf = np.ascontiguousarray(values, np.float32).copy()
    cpu.applyRGB(buf)
    return buf


def test_matrices_agree_with_ocio_builtins(rng):
    x = rng.uniform(-0.5, 4.0, (50, 3)).astype(np.float32)
    np.testing.assert_allclose(x @ AP1_TO_XYZ_D65.T, _ocio_apply("UTILITY - ACES-AP1_to_CIE-XYZ-D65_BFD", x),
                               rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(x @ AP1_TO_REC709.T, _ocio_apply("UTILITY - ACES-AP1_to_LINEAR-REC709_BFD", x),
                               rtol=1e-5, atol=1e-6)


def test_lab_round_trip_keeps_hdr_and_negative_values(rng):
    rgb = np.concatenate([rng.uniform(-0.2, 1.0, (100, 3)), rng.uniform(1.0, 5000.0, (100, 3))])
    lab = acescg_to_lab(rgb)
    assert lab[:, 0].max() > 100.0  # HDR is not clipped
    np.testing.assert_allclose(lab_to_acescg(lab), rgb, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(acescg_to_lab([1.0, 1.0, 1.0]), [100.0, 0.0, 0.0], atol=1e-9)


def test_srgb_round_trip_and_display_lab():
    v = np.linspace(0, 1, 256)[:, None].repeat(3, 1)
    np.testing.assert_allclose(acescg_to_srgb(srgb_to_acescg(v)), v, atol=2e-6)
    # the sRGB display view of ACEScg equals sRGB's own CIELAB for in-gamut colours
    s = np.array([[0.2, 0.4, 0.6], [0.9, 0.1, 0.3]])
    np.testing.assert_allclose(display_lab(srgb_to_acescg(s).astype(np.float64)), srgb_to_lab(s), atol=1e-3)
    # out-of-range scene values are clipped for display: 10x white shows as white
    np.testing.assert_allclose(display_lab(np.array([10.0, 10.0, 10.0])), [100.0, 0.0, 0.0], atol=1e-6)
    with pytest.raises(InputError, match="unknown display"):
        display_lab(s, display="p3")


def test_aces_sdr_display_is_monotone_and_bounded():
    grey = np.array([[v, v, v] for v in (0.01, 0.18, 1.0, 16.0)], np.float64)
    lab = display_lab(grey, display="aces_sdr")
    assert np.all(np.diff(lab[:, 0]) > 0) and lab[:, 0].max() <= 100.0 + 1e-6
    np.testing.assert_allclose(lab[:, 1:], 0.0, atol=0.5)  # neutral stays neutral


def test_image_delta_e_and_weighted_summary(rng):
    a = rng.uniform(0.05, 0.8, (8, 9, 3)).astype(np.float32)
    assert image_delta_e(a, a)["max"] == 0.0
    stats = summarize([1.0, 2.0, 3.0, 100.0], weights=[1, 1, 1, 0])
    assert stats["mean"] == pytest.approx(2.0) and stats["median"] == pytest.approx(2.0)
    with pytest.raises(InputError, match="aligned"):
        image_delta_e(a, a[:4])
    with pytest.raises(InputError, match="zero everywhere"):
        summarize([1.0, 2.0], weights=[0, 0])
