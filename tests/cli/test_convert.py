"""``composite convert``: colour, alpha and format conversion of files, sequences and movies; nothing is
written unless every frame converts."""

from __future__ import annotations

import subprocess
import sys

import numpy as np

from composite.cli import main
from composite.color import ocio
from composite.core import Image
from composite.io import exr, formats, video


def test_exr_to_png_and_back_through_srgb(tmp_path, capsys):
    px = np.zeros((4, 6, 4), np.float32)
    px[..., 0] = np.linspace(0, 1, 6)[None, :]
    px[..., 1] = 0.18
    px[..., 3] = 1.0
    exr.write_exr(tmp_path / "in.exr", Image(px, colorspace="Linear Rec.709 (sRGB)"), pixel_type="float")
    assert main(["convert", str(tmp_path / "in.exr"), str(tmp_path / "out.png"), "--bits", "uint16"]) == 0
    assert "Linear Rec.709 (sRGB) -> sRGB Encoded Rec.709 (sRGB)" in capsys.readouterr().err
    png = formats.read_oiio(tmp_path / "out.png")
    lin = px[..., :3].astype(np.float64)
    srgb = np.where(lin <= 0.0031308, lin * 12.92, 1.055 * lin ** (1 / 2.4) - 0.055)  # IEC 61966-2-1
    np.testing.assert_allclose(png.pixels[..., :3], np.round(srgb * 65535) / 65535, atol=2e-5)
    assert png.colorspace == "sRGB Encoded Rec.709 (sRGB)"
    assert main(["convert", str(tmp_path / "in.exr"), str(tmp_path / "cct.exr"), "--to-colorspace", "ACEScct",
                 "--compression", "piz"]) == 0
    cct = exr.read_exr(tmp_path / "cct.exr")
    assert cct.colorspace == "ACEScct" and cct.metadata["exr:compression"] == "piz"
    assert cct.metadata["exr:pixel_types"]["R"] == "float"  # float input stays float
    np.testing.assert_allclose(cct.pixels[..., :3], ocio.convert(px, "Linear Rec.709 (sRGB)", "ACEScct")[..., :3],
                               atol=1e-6)


def test_lossless_recompression_keeps_pixels_and_metadata(tmp_path, eval_data):
    src = eval_data / "exr" / "Carrots.exr"
    assert main(["convert", str(src), str(tmp_path / "c.exr"), "--compression", "zips"]) == 0
    a, b = exr.read_exr(src), exr.read_exr(tmp_path / "c.exr")
    assert np.array_equal(a.pixels, b.pixels) and b.metadata["exr:compression"] == "zips"
    assert b.colorspace == "ACES2065-1" and b.metadata["cameraModel"] == "SLT-A99"
    assert b.metadata["exr:pixel_types"]["R"] == "half"


def test_sequence_conversion_and_movie_output(tmp_path):
    for t in range(1001, 1005):
        px = np.full((8, 8, 4), 0.1 * (t - 1000), np.float32)
        px[..., 3] = 1
        exr.write_exr(tmp_path / f"p.{t}.exr", Image(px))
    assert main(["convert", str(tmp_path / "p.####.exr"), str(tmp_path / "o" / "q.%04d.dpx"),
                 "--to-colorspace", "ACEScct"]) == 0
    dpx = formats.read_oiio(tmp_path / "o" / "q.1003.dpx")
    assert dpx.metadata["oiio:BitsPerSample"] == 10 and dpx.colorspace == "ACEScct"
    np.testing.assert_allclose(dpx.pixels[0, 0, :3], ocio.convert(np.full((1, 1, 3), 0.3, np.float32), "ACEScg",
                                                              "ACEScct")[0, 0], atol=1 / 1023)
    assert main(["convert", str(tmp_path / "p.####.exr"), str(tmp_path / "review.mp4"), "--rate", "25"]) == 0
    info = video.probe_movie(tmp_path / "review.mp4")
    assert info.frame_count == 4 and float(info.rate) == 25.0


def test_corrupt_frame_or_gap_leaves_no_partial_output(tmp_path):
    for t in range(1001, 1005):
        exr.write_exr(tmp_path / f"p.{t}.exr", Image(np.zeros((4, 4, 4), np.float32)))
    data = (tmp_path / "p.1003.exr").read_bytes()
    (tmp_path / "p.1003.exr").write_bytes(data[: len(data) // 2])
    res = subprocess.run([sys.executable, "-m", "composite", "convert", str(tmp_path / "p.####.exr"),
                          str(tmp_path / "out" / "o.####.exr")], capture_output=True, text=True)
    assert res.returncode == 2 and "Traceback" not in res.stderr
    assert "p.1003.exr: cannot read OpenEXR file" in res.stderr
    assert not any((tmp_path / "out").iterdir())  # not even frames 1001-1002, nor temporary files
    (tmp_path / "p.1003.exr").unlink()
    assert main(["convert", str(tmp_path / "p.####.exr"), str(tmp_path / "out" / "o.####.exr")]) == 2
    assert not any((tmp_path / "out").iterdir())
    assert main(["convert", str(tmp_path / "p.####.exr"), str(tmp_path / "out" / "o.####.exr"),
                 "--missing", "black"]) == 0
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [f"o.{t}.exr" for t in range(1001, 1005)]
    assert main(["convert", str(tmp_path / "p.1001.exr"), str(tmp_path / "x.exr"), "--to-colorspace", "Rec709"]) == 2
    assert not (tmp_path / "x.exr").exists()


def test_colour_conversion_of_data_only_files_is_refused(tmp_path, eval_data):
    src = eval_data / "exr" / "oiio_cryptoasset.exr"
    assert main(["convert", str(src), str(tmp_path / "c.exr")]) == 0  # data passes through unchanged
    back = exr.read_exr(tmp_path / "c.exr")
    assert np.array_equal(back.layers["uCryptoAsset00"].pixels, exr.read_exr(src).layers["uCryptoAsset00"].pixels)
    assert main(["convert", str(src), str(tmp_path / "d.exr"), "--display", "sRGB - Display"]) == 2
    assert not (tmp_path / "d.exr").exists()
