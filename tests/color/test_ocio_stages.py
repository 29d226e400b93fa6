import numpy as np
import pytest

from composite.color import ocio
from composite.color.ocio_stages import ColorSpaceConvert, OCIOFileTransform
from composite.core import Image, InputError, RecipeError
from composite.core.merge import premultiply
from composite.graph import Pipeline
from composite.graph.builtin import Constant


def write_cube(path, fn, size=5):
    lines = [f"LUT_3D_SIZE {size}"]
    grid = np.linspace(0, 1, size)
    for b in grid:
        for g in grid:
            for r in grid:
                lines.append(" ".join(f"{v:.6f}" for v in fn(np.array([r, g, b]))))
    path.write_text("\n".join(lines) + "\n")


def test_lut_file_through_ocio_matches_the_analytic_function(tmp_path):
    cube = tmp_path / "half.cube"
    write_cube(cube, lambda rgb: rgb * 0.5 + np.array([0.1, 0.0, 0.0]))  # linear: exact in a trilinear LUT
    straight = np.array([[[0.2, 0.4, 0.6, 0.5], [0.8, 0.1, 0.3, 1.0]]], np.float32)
    img = Image(premultiply(straight))
    out = OCIOFileTransform(file=str(cube)).process(1, img)
    expect = straight.copy()
    expect[..., :3] = straight[..., :3] * 0.5 + np.array([0.1, 0.0, 0.0], np.float32)
    np.testing.assert_allclose(out.pixels, premultiply(expect), atol=1e-5)  # LUT on straight colour
    half = OCIOFileTransform(file=str(cube), mix=0.5).process(1, img)
    np.testing.assert_allclose(half.pixels[..., :3], (img.pixels[..., :3] + out.pixels[..., :3]) / 2, atol=1e-5)


def test_fingerprint_follows_the_file_and_missing_file_is_clear(tmp_path):
    cube = tmp_path / "a.cube"
    write_cube(cube, lambda rgb: rgb)
    p = Pipeline("t")
    c = p.add("c", Constant(width=4, height=2))
    p.add("lut", OCIOFileTransform(file=str(cube)), image=c)
    fp = p.fingerprint("lut", 1)
    write_cube(cube, lambda rgb: rgb * 0.9)
    p._reset_caches()
    assert p.fingerprint("lut", 1) != fp
    assert Pipeline.from_recipe(p.to_recipe()).to_recipe() == p.to_recipe()
    with pytest.raises(RecipeError, match="a LUT file is required"):
        OCIOFileTransform()
    with pytest.raises(InputError, match="not found"):
        OCIOFileTransform(file=str(tmp_path / "nope.cube")).process(1, Image(np.zeros((1, 1, 4), np.float32)))


def test_colorspace_convert_round_trip_and_matches_ocio():
    px = np.array([[[0.18, 0.5, 2.0, 1.0]]], np.float32)
    img = Image(px)
    log = ColorSpaceConvert(dst="ACEScct").process(1, img)
    assert log.colorspace == "ACEScct"
    np.testing.assert_allclose(log.pixels[..., :3], ocio.convert(px[..., :3].copy(), "ACEScg", "ACEScct"), atol=1e-6)
    back = ColorSpaceConvert(dst="ACEScg").process(1, log)
    np.testing.assert_allclose(back.pixels, px, rtol=3e-5)  # OCIO's fast SSE log/exp: ~1e-5 relative
    with pytest.raises(RecipeError, match="unknown colour space"):
        ColorSpaceConvert(dst="NotASpace")
