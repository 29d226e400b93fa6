"""ASC CDL: NumPy against OpenColorIO, file round trips, fitting."""

import numpy as np
import PyOpenColorIO as ocio
import pytest

from composite.color.cdl import (
    CDL,
    ENCODINGS,
    STYLES,
    apply_cdl,
    apply_cdl_file,
    cdl_file_processor,
    cdl_xml,
    fit_cdl,
    read_cdl_collection,
    read_cdl_file,
    write_cdl_file,
)
from composite.color.transfer import acescct_encode
from composite.core.errors import InputError

LOOK = CDL(slope=(1.2, 0.9, 1.05), offset=(0.03, -0.05, 0.0), power=(1.4, 0.8, 1.0), saturation=1.25,
           id="sh010_v3", description="warm, lifted")


def _values(rng, n=2000):
    x = np.concatenate([rng.uniform(-0.3, 1.2, (n, 3)), rng.uniform(1.0, 30.0, (n // 10, 3))])
    return x.astype(np.float32).reshape(-1, 1, 3)


def _assert_close_to_ocio(ours, theirs):
    """OCIO's CPU path uses a fast pow approximation: agreement to ~1.5e-5 of each pixel's magnitude."""
    scale = 1.0 + np.abs(theirs).max(axis=-1, keepdims=True)
    assert np.all(np.abs(ours - theirs) <= 3e-5 * scale), float((np.abs(ours - theirs) / scale).max())


def _ocio(cdl, style, x):
    cpu = ocio.Config.CreateRaw().getProcessor(cdl.to_ocio(style=style)).getDefaultCPUProcessor()
    out = np.ascontiguousarray(x).copy()
    cpu.applyRGB(out)
    return out


def test_asc_formula_by_hand():
    x = np.array([[[0.18, 0.5, 0.9]]], np.float32)
    sop = np.array([(0.18 * 1.2 + 0.03) ** 1.4, (0.5 * 0.9 - 0.05) ** 0.8, 0.9 * 1.05])
    luma = 0.2126 * sop[0] + 0.7152 * sop[1] + 0.0722 * sop[2]
    want = luma + 1.25 * (sop - luma)
    np.testing.assert_allclose(apply_cdl(x, LOOK)[0, 0], want, rtol=1e-6)


@pytest.mark.parametrize("style", STYLES)
def test_numpy_cdl_equals_ocio_cdltransform(style, rng):
    x = _values(rng)
    ours = apply_cdl(x, LOOK, style=style)
    theirs = _ocio(LOOK, style, x)
    _assert_close_to_ocio(ours, theirs)
    if style == "asc":
        assert ours.min() >= 0.0 and ours.max() <= 1.0
    else:
        assert ours.min() < 0.0 and ours.max() > 1.0  # negatives and HDR survive


def test_ocio_default_style_is_no_clamp(rng):
    t = ocio.CDLTransform()
    assert t.getStyle() == ocio.CDL_NO_CLAMP and ocio.FileTransform().getCDLStyle() == ocio.CDL_NO_CLAMP


@pytest.mark.parametrize("ext", [".cc", ".ccc", ".cdl"])
def test_files_round_trip_through_ocio(ext, tmp_path):
    path = tmp_path / f"look{ext}"
    write_cdl_file(path, LOOK if ext == ".cc" else [LOOK])
    t = ocio.CDLTransform.CreateFromFile(str(path), "")
    assert tuple(t.getSlope()) == LOOK.slope and tuple(t.getOffset()) == LOOK.offset
    assert tuple(t.getPower()) == LOOK.power and t.getSat() == LOOK.saturation
    assert t.getID() == LOOK.id and t.getFirstSOPDescription() == LOOK.description
    assert read_cdl_file(path) == LOOK


def test_collection_with_several_ids(tmp_path):
    looks = [LOOK, CDL(slope=0.9, id="sh020"), CDL(power=(1.1, 1.0, 0.95), saturation=0.7, id="sh030")]
    for ext in (".ccc", ".cdl"):
        path = tmp_path / f"seq{ext}"
        write_cdl_file(path, looks)
        group = ocio.CDLTransform.CreateGroupFromFile(str(path))
        assert [t.getID() for t in group] == ["sh010_v3", "sh020", "sh030"]
        assert read_cdl_collection(path) == looks
        assert read_cdl_file(path, "sh030") == looks[2]
        assert read_cdl_file(path, "1") == looks[1]  # by index, as OCIO allows
    with pytest.raises(InputError, match="distinct non-empty ids"):
        cdl_xml([CDL(), CDL()], ".ccc")
    with pytest.raises(InputError, match="holds one ColorCorrection"):
        cdl_xml(looks, ".cc")


@pytest.mark.parametrize("encoding", ENCODINGS)
@pytest.mark.parametrize("style", STYLES)
def test_apply_cdl_file_through_ocio_equals_numpy(encoding, style, tmp_path, rng):
    path = write_cdl_file(tmp_path / "look.cc", LOOK)
    x = rng.uniform(-0.05, 8.0, (16, 20, 3)).astype(np.float32)
    ours = apply_cdl(x, LOOK, style=style, encoding=encoding)
    theirs = apply_cdl_file(x, path, style=style, encoding=encoding)
    if encoding == "acescct":  # compare where the CDL works: in ACEScct
        np.testing.assert_allclose(acescct_encode(theirs), acescct_encode(ours), atol=3e-5)
    else:
        _assert_close_to_ocio(ours, theirs)
    back = apply_cdl_file(theirs, path, style="no_clamp", encoding=encoding, inverse=True) \
        if style == "no_clamp" else None
    if back is not None:
        np.testing.assert_allclose(back, x, rtol=2e-4, atol=2e-5)


def test_processor_cache_follows_the_file(tmp_path):
    path = write_cdl_file(tmp_path / "look.cc", LOOK)
    p1 = cdl_file_processor(path)
    assert cdl_file_processor(path) is p1
    write_cdl_file(path, CDL(slope=2.0, id="x"))
    import os

    os.utime(path, ns=(1, 1))  # a new mtime, whatever the clock resolution
    p2 = cdl_file_processor(path)
    assert p2 is not p1 and p2.getCacheID() != p1.getCacheID()
    x = np.full((1, 1, 3), 0.25, np.float32)
    np.testing.assert_allclose(apply_cdl_file(x, path), 0.5, rtol=1e-6)


def test_alpha_is_respected(rng):
    rgba = np.array([[[0.1, 0.1, 0.1, 0.5], [0.3, 0.2, 0.1, 0.0]]], np.float32)
    out = apply_cdl(rgba, CDL(slope=2.0, offset=0.1))
    np.testing.assert_allclose(out[0, 0], [0.25, 0.25, 0.25, 0.5], rtol=1e-6)
    np.testing.assert_array_equal(out[0, 1], rgba[0, 1])


@pytest.mark.parametrize("encoding", ENCODINGS)
def test_fit_recovers_a_known_cdl(encoding, rng):
    x = (rng.uniform(0.0, 1.0, (40, 40, 3)) ** 2.2 * 3.0).astype(np.float32)
    truth = CDL(slope=(1.15, 0.92, 1.04), offset=(0.02, -0.03, 0.01), power=(1.1, 0.9, 1.0), saturation=0.85)
    y = apply_cdl(x, truth, encoding=encoding)
    fit = fit_cdl(x, y, encoding=encoding, id="sh040")
    assert fit.rms < 1e-5
    np.testing.assert_allclose(fit.cdl.slope, truth.slope, atol=1e-4)
    np.testing.assert_allclose(fit.cdl.offset, truth.offset, atol=1e-4)
    np.testing.assert_allclose(fit.cdl.power, truth.power, atol=1e-4)
    assert fit.cdl.saturation == pytest.approx(0.85, abs=1e-4)
    assert fit.cdl.id == "sh040"


def test_fit_with_a_matte_uses_only_the_matted_pixels(rng):
    x = rng.uniform(0.02, 1.0, (30, 30, 3)).astype(np.float32)
    y = apply_cdl(x, CDL(slope=1.3), encoding="linear")
    y[:, 15:] = 0.0  # garbage outside the matte
    matte = np.zeros((30, 30), np.float32)
    matte[:, :15] = 1.0
    fit = fit_cdl(x, y, weights=matte, encoding="linear", fit_saturation=False)
    np.testing.assert_allclose(fit.cdl.slope, 1.3, atol=1e-4)
    assert fit.cdl.saturation == 1.0


def test_bad_cdl_input(tmp_path):
    with pytest.raises(InputError, match="slope must be >= 0"):
        CDL(slope=-1.0)
    with pytest.raises(InputError, match="power must be > 0"):
        CDL(power=(1.0, 0.0, 1.0))
    with pytest.raises(InputError, match="does not exist"):
        read_cdl_file(tmp_path / "missing.cc")
    bad = tmp_path / "look.txt"
    bad.write_text("x")
    with pytest.raises(InputError, match="unknown extension"):
        read_cdl_file(bad)
    broken = tmp_path / "broken.cc"
    broken.write_text("<ColorCorrection><SOPNode><Slope>1 2</Slope></SOPNode></ColorCorrection>")
    with pytest.raises(InputError, match="OpenColorIO cannot read it"):
        read_cdl_file(broken)
    with pytest.raises(InputError, match="unknown CDL style"):
        apply_cdl(np.zeros((1, 1, 3), np.float32), CDL(), style="clamped")
    with pytest.raises(InputError, match="too few"):
        fit_cdl(np.zeros((2, 3), np.float32), np.zeros((2, 3), np.float32))


@pytest.mark.parametrize("encoding", ENCODINGS)
@pytest.mark.parametrize("style", STYLES)
def test_extreme_values_stay_finite(encoding, style):
    px = np.array([[[3e38, 1e30, -3e38], [-5.0, 0.0, 1e-30], [65504.0, 1e6, 2.0]]], np.float32)
    out = apply_cdl(px, LOOK, style=style, encoding=encoding)
    assert out.dtype == np.float32 and np.all(np.isfinite(out))
    if style == "no_clamp" and encoding == "linear":
        assert out[0, 2].max() > 1e4  # HDR survives the default style
