"""Non-EXR formats through OpenImageIO: bit depths, alpha association, colour-space defaults, fingerprints."""

from __future__ import annotations

import numpy as np
import OpenImageIO as oiio
import pytest

from composite.core import AlphaState, Image, InputError
from composite.io import formats, images


def _codes(rng, h, w, c, bits):
    top = (1 << bits) - 1
    return rng.integers(0, top + 1, size=(h, w, c)), top


@pytest.mark.parametrize("name,bits,nbits,channels", [
    ("a.png", "uint8", 8, 4), ("a.png", "uint16", 16, 4), ("a.tif", "uint8", 8, 3), ("a.tif", "uint16", 16, 4),
    ("a.dpx", "uint10", 10, 3), ("a.dpx", "uint16", 16, 3),
])
def test_integer_formats_round_trip_code_values_exactly(tmp_path, rng, name, bits, nbits, channels):
    codes, top = _codes(rng, 6, 9, channels, nbits)
    px = (codes / top).astype(np.float32)
    names = ("R", "G", "B", "A")[:channels]
    alpha = AlphaState.STRAIGHT if channels == 4 else None
    img = Image(px, names, colorspace="sRGB Encoded Rec.709 (sRGB)", alpha=alpha)
    path = formats.write_oiio(tmp_path / name, img, bits=bits, fingerprint="ab" * 32)
    back = formats.read_oiio(path)
    # integer code k reads back as k / (2**bits - 1), exactly (to float32 rounding)
    assert np.array_equal(np.round(back.pixels * top).astype(int), codes)
    np.testing.assert_allclose(back.pixels, px, atol=1e-7)
    assert back.metadata["oiio:BitsPerSample"] == nbits
    assert back.alpha is (AlphaState.STRAIGHT if channels == 4 else AlphaState.OPAQUE)
    assert formats.read_oiio_fingerprint(path) == "ab" * 32
    assert back.colorspace == "sRGB Encoded Rec.709 (sRGB)"
    # an independent reader sees the same codes (asked not to premultiply PNG/TIFF alpha)
    config = oiio.ImageSpec()
    config.attribute("oiio:UnassociatedAlpha", 1)
    inp = oiio.ImageInput.open(str(path), config)
    ref = inp.read_image(0, 0, 0, channels, oiio.FLOAT)
    inp.close()
    # (OpenImageIO scales 10-bit codes by bit replication, code * 64 + code >> 4 over 65535: within 1.5e-5)
    tol = 1.5e-5 if nbits == 10 else 1e-7
    np.testing.assert_allclose(np.asarray(ref).reshape(back.pixels.shape), back.pixels, atol=tol)


def test_float_tiff_and_jpeg(tmp_path, rng):
    px = rng.random((5, 7, 3), dtype=np.float32) * 4
    path = formats.write_oiio(tmp_path / "f.tif", Image(px, ("R", "G", "B"), colorspace="ACEScg"), bits="float")
    back = formats.read_oiio(path)
    assert np.array_equal(back.pixels, px) and back.metadata["oiio:BitsPerSample"] == 32
    assert back.colorspace == "ACEScg"  # recorded by composite
    flat = np.full((16, 16, 3), 0.5, np.float32)
    jpg = formats.write_oiio(tmp_path / "j.jpg", Image(flat, ("R", "G", "B"), colorspace="sRGB Encoded Rec.709 (sRGB)"))
    got = formats.read_oiio(jpg)
    assert abs(float(got.pixels.mean()) - 128 / 255) < 1.5 / 255 and got.metadata["oiio:BitsPerSample"] == 8


def test_colour_space_defaults_follow_the_file(tmp_path):
    # files written by another tool: no composite attributes
    def write(name, fmt, attrs=None, nbits=None):
        spec = oiio.ImageSpec(4, 4, 3, fmt)
        if nbits:
            spec.attribute("oiio:BitsPerSample", nbits)
        for k, v in (attrs or {}).items():
            spec.attribute(k, v)
        buf = oiio.ImageBuf(spec)
        assert buf.write(str(tmp_path / name))
        return tmp_path / name

    assert formats.read_oiio(write("a.png", oiio.UINT8)).colorspace == "sRGB Encoded Rec.709 (sRGB)"
    log_dpx = formats.read_oiio(write("log.dpx", oiio.UINT16, {"dpx:Transfer": "Printing density"}, 10))
    assert log_dpx.colorspace == "ADX10" and "log" in log_dpx.metadata["colorspace_source"]
    assert formats.read_oiio(write("f.tif", oiio.FLOAT)).colorspace == "ACEScg"
    assert formats.read_oiio(write("b.png", oiio.UINT8), colorspace="ACEScct").colorspace == "ACEScct"


def test_dpx_log_to_working_space_through_ocio(tmp_path):
    from composite.color import ocio

    codes = np.array([[[95, 445, 685]]], np.float32) / 1023.0
    img = formats.read_oiio(formats.write_oiio(tmp_path / "s.dpx", Image(codes, ("R", "G", "B"), colorspace="ADX10"),
                                               bits="uint10"))
    work = images.to_working(img, "ACEScg")
    expected = ocio.convert(np.round(codes * 1023) / 1023, "ADX10", "ACEScg")
    np.testing.assert_allclose(work.pixels, expected, rtol=1e-6)
    assert work.colorspace == "ACEScg"


def test_straight_png_alpha_is_premultiplied_on_the_way_in(tmp_path):
    px = np.array([[[1.0, 0.5, 0.0, 0.5], [0.2, 0.4, 0.6, 0.0]]], np.float32)
    path = formats.write_oiio(tmp_path / "a.png", Image(px, alpha=AlphaState.STRAIGHT,
                                                        colorspace="Linear Rec.709 (sRGB)"), bits="uint16")
    work = images.to_working(formats.read_oiio(path), "Linear Rec.709 (sRGB)")
    assert work.alpha is AlphaState.PREMULTIPLIED
    q = np.round(px * 65535) / 65535
    np.testing.assert_allclose(work.pixels[0, 0], [q[0, 0, 0] * q[0, 0, 3], q[0, 0, 1] * q[0, 0, 3], 0, q[0, 0, 3]],
                               atol=1e-6)
    assert np.all(work.pixels[0, 1] == 0)


def test_bad_files_are_input_errors(tmp_path):
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 40)
    with pytest.raises(InputError, match="bad.png"):
        formats.read_oiio(bad)
    with pytest.raises(InputError, match="file not found"):
        formats.read_oiio(tmp_path / "nope.tif")
    with pytest.raises(InputError, match="only available for DPX"):
        formats.write_oiio(tmp_path / "x.png", Image(np.zeros((2, 2, 3), np.float32), ("R", "G", "B")), bits="uint10")


def test_integer_output_reports_clipping(tmp_path, caplog):
    img = Image(np.array([[[2.0, -1.0, 0.5]]], np.float32), ("R", "G", "B"))
    formats.write_oiio(tmp_path / "c.png", img)
    assert "2 value(s) outside [0, 1]" in caplog.text
