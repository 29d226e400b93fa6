"""OpenColorIO: the built-in ACES config, conversions against published matrices and OCIO's own
command-line tool, round trips, cached processors, LUT/CDL files, configs from $OCIO."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from composite.color import ocio
from composite.core import Image, InputError
from composite.io import exr

AP0_TO_AP1 = np.array([[1.4514393161, -0.2365107469, -0.2149285693],
                       [-0.0765537734, 1.1762296998, -0.0996759264],
                       [0.0083161484, -0.0060324498, 0.9977163014]])


def acescct_encode(lin):
    """ACEScct from ACEScg (S-2016-001), independent of OCIO."""
    lin = np.asarray(lin, np.float64)
    return np.where(lin <= 0.0078125, 10.5402377416545 * lin + 0.0729055341958355,
                    (np.log2(np.maximum(lin, 1e-30)) + 9.72) / 17.52)


def test_default_config_is_the_builtin_aces_studio_config(monkeypatch):
    monkeypatch.delenv("OCIO", raising=False)
    cfg = ocio.get_config()
    assert cfg.getName().startswith("studio-config")
    assert ocio.resolve_colorspace("scene_linear") == "ACEScg"  # roles and aliases resolve
    assert ocio.resolve_colorspace("lin_srgb") == "Linear Rec.709 (sRGB)"


def test_conversions_match_published_formulas(rng):
    px = rng.random((5, 7, 3), dtype=np.float32) * 4
    np.testing.assert_allclose(ocio.convert(px, "ACES2065-1", "ACEScg"), px @ AP0_TO_AP1.T.astype(np.float32),
                               rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(ocio.convert(px, "ACEScg", "ACEScct"), acescct_encode(px), atol=2e-6)
    assert ocio.is_linear_conversion("ACES2065-1", "ACEScg") and not ocio.is_linear_conversion("ACEScg", "ACEScct")


@pytest.mark.parametrize("space", ["ACEScct", "ACEScc", "ACES2065-1", "sRGB Encoded Rec.709 (sRGB)", "ADX10",
                                   "ARRI LogC4", "Linear Rec.2020", "S-Log3 S-Gamut3.Cine"])
def test_round_trips_within_float_tolerance(rng, space):
    # plate-like colours: greys with moderate saturation (inside every camera/film gamut), 0.01 .. 1.5
    grey = rng.random((8, 8, 1), dtype=np.float32) * np.float32(1.5) + np.float32(0.01)
    tint = np.float32(1) + (rng.random((8, 8, 3), dtype=np.float32) - np.float32(0.5)) * np.float32(0.4)
    px = np.concatenate([grey * tint, rng.random((8, 8, 1), dtype=np.float32)], axis=-1)
    there = ocio.convert(px, "ACEScg", space)
    back = ocio.convert(there, space, "ACEScg")
    np.testing.assert_allclose(back, px, rtol=2e-4, atol=2e-5)
    assert np.array_equal(there[..., 3], px[..., 3])  # alpha passes through


def test_agrees_with_ocioconvert_on_a_small_image(tmp_path, rng):
    tool = Path(sys.executable).parent / "ocioconvert"
    if not tool.exists():
        pytest.skip("ocioconvert is not installed")
    px = rng.random((6, 9, 4), dtype=np.float32) * np.float32(2)
    exr.write_exr(tmp_path / "in.exr", Image(px), pixel_type="float", compression="none")
    env = {**os.environ, "OCIO": "ocio://studio-config-latest"}
    for dst in ("ACEScct", "ARRI LogC4"):
        out = tmp_path / "out.exr"
        subprocess.run([str(tool), "--bitdepth", "float", str(tmp_path / "in.exr"), "ACEScg", str(out), dst],
                       check=True, capture_output=True, env=env)
        assert np.array_equal(exr.read_exr(out).pixels[..., :3], ocio.convert(px, "ACEScg", dst)[..., :3])
    view = tmp_path / "view.exr"
    subprocess.run([str(tool), "--bitdepth", "float", "--view", str(tmp_path / "in.exr"), "ACEScg", str(view),
                    "sRGB - Display", ocio.DEFAULT_VIEW], check=True, capture_output=True, env=env)
    np.testing.assert_array_equal(exr.read_exr(view).pixels[..., :3], ocio.to_display(px, "ACEScg")[..., :3])


def test_processors_are_cached_and_ids_are_stable():
    a = ocio.processor("ACEScg", "ACEScct")
    assert ocio.processor("lin_ap1", "ACEScct") is a  # aliases share the processor
    pid = ocio.processor_id("ACEScg", "ACEScct")
    assert pid == ocio.processor_id("ACEScg", "ACEScct") and pid != ocio.processor_id("ACEScg", "ACEScc")
    assert ocio.processor_id("ACEScg", "ACEScg").endswith("identity")


def test_unknown_names_are_input_errors_with_suggestions():
    with pytest.raises(InputError, match="unknown colour space 'ACEScgg'.*did you mean 'ACEScg'"):
        ocio.convert(np.zeros((1, 1, 3), np.float32), "ACEScgg", "ACEScct")
    with pytest.raises(InputError, match="unknown view 'Film' for display 'sRGB - Display'"):
        ocio.to_display(np.zeros((1, 1, 3), np.float32), "ACEScg", view="Film")
    with pytest.raises(InputError, match="expects float32"):
        ocio.convert(np.zeros((1, 1, 3), np.float64), "ACEScg", "ACEScct")


def test_config_from_ocio_variable_and_from_a_file(tmp_path, monkeypatch):
    cfg_path = tmp_path / "mini.ocio"
    cfg_path.write_text("""ocio_profile_version: 2
roles:
  default: linear
  scene_linear: linear
displays:
  sRGB:
    - !<View> {name: Raw, colorspace: linear}
colorspaces:
  - !<ColorSpace>
    name: linear
  - !<ColorSpace>
    name: double
    from_scene_reference: !<MatrixTransform> {matrix: [2, 0, 0, 0, 0, 2, 0, 0, 0, 0, 2, 0, 0, 0, 0, 1]}
""")
    monkeypatch.setenv("OCIO", str(cfg_path))
    px = np.full((1, 2, 3), 0.25, np.float32)
    np.testing.assert_allclose(ocio.convert(px, "linear", "double"), 0.5)
    monkeypatch.delenv("OCIO")
    np.testing.assert_allclose(ocio.convert(px, "linear", "double", config=str(cfg_path)), 0.5)
    assert ocio.get_config().getName().startswith("studio-config")
    with pytest.raises(InputError, match="cannot load OCIO config"):
        ocio.get_config(str(tmp_path / "missing.ocio"))


def test_lut_and_cdl_files_through_file_transforms(tmp_path, rng):
    # a 1D .cube LUT that halves every value, and an ASC CDL .cc
    n = 17
    lines = ["LUT_1D_SIZE 17"] + [" ".join([f"{0.5 * i / (n - 1):.6f}"] * 3) for i in range(n)]
    (tmp_path / "half.cube").write_text("\n".join(lines) + "\n")
    px = rng.random((4, 5, 3), dtype=np.float32)
    np.testing.assert_allclose(ocio.apply_file_transform(px, tmp_path / "half.cube"), px * 0.5, atol=1e-6)
    np.testing.assert_allclose(ocio.apply_file_transform(px * 0.5, tmp_path / "half.cube", direction="inverse"), px,
                               atol=1e-4)
    (tmp_path / "grade.cc").write_text("""<ColorCorrection id="sh010">
  <SOPNode><Slope>1.2 1.0 0.8</Slope><Offset>0.01 0.0 -0.01</Offset><Power>1.0 1.1 0.9</Power></SOPNode>
  <SATNode><Saturation>1.0</Saturation></SATNode>
</ColorCorrection>""")
    graded = ocio.apply_file_transform(px, tmp_path / "grade.cc")
    # OCIO applies CDL files unclamped (HDR values survive; negatives pass the power unchanged)
    v = px * np.float32([1.2, 1.0, 0.8]) + np.float32([0.01, 0.0, -0.01])
    expected = np.where(v >= 0, np.abs(v) ** np.float32([1.0, 1.1, 0.9]), v)
    np.testing.assert_allclose(graded, expected, atol=2e-5)
    same = ocio.apply_cdl(px, slope=(1.2, 1.0, 0.8), offset=(0.01, 0.0, -0.01), power=(1.0, 1.1, 0.9),
                          style="no_clamp")
    np.testing.assert_allclose(same, graded, atol=1e-6)
    asc = ocio.apply_cdl(px, slope=(1.2, 1.0, 0.8), offset=(0.01, 0.0, -0.01), power=(1.0, 1.1, 0.9))
    np.testing.assert_allclose(asc, np.clip(v, 0, 1) ** np.float32([1.0, 1.1, 0.9]), atol=2e-5)  # ASC: clamped
    # a grade made in ACEScct, applied to ACEScg pixels
    cct = ocio.apply_cdl(px, slope=(1.0, 1.0, 1.0), offset=(0.05, 0.05, 0.05), space="ACEScct", style="no_clamp")
    np.testing.assert_allclose(ocio.convert(cct, "ACEScg", "ACEScct"), ocio.convert(px, "ACEScg", "ACEScct") + 0.05,
                               atol=1e-5)
    with pytest.raises(InputError, match="LUT/CDL file not found"):
        ocio.apply_file_transform(px, tmp_path / "nope.cube")


def test_chromaticities_name_linear_spaces():
    assert ocio.colorspace_from_chromaticities([0.713, 0.293, 0.165, 0.830, 0.128, 0.044, 0.32168, 0.33767]) == "ACEScg"
    assert ocio.colorspace_from_chromaticities([0.64, 0.33, 0.3, 0.6, 0.15, 0.06, 0.3127, 0.329]) == \
        "Linear Rec.709 (sRGB)"
    assert ocio.colorspace_from_chromaticities([0.6, 0.3, 0.3, 0.6, 0.15, 0.06, 0.3127, 0.329]) is None
    assert ocio.chromaticities_for("lin_ap1") == ocio.KNOWN_CHROMATICITIES["ACEScg"]
