"""OpenEXR reading and writing: every evaluation file against OpenImageIO, windows, parts, views,
luminance/chroma, deep refusal, attributes, and write round trips."""

from __future__ import annotations

import fractions
import shutil

import numpy as np
import OpenEXR
import OpenImageIO as oiio
import pytest

from composite.core import Image, InputError, Layer, Window
from composite.io import exr
from composite.io.yca import luminance_weights, yca_to_rgb

LOSSY = {"Cannon.exr", "ColorCodedLevels.exr", "WideFloatRange.exr", "oiio_tahoe-tiny_b44a.exr",
         "oiio_tahoe-tiny_dwaa.exr", "oiio_tahoe-tiny_dwab.exr"}


def oiio_parts(path):
    """Every subimage of a file as (spec, (H, W, C) float32) read by OpenImageIO."""
    inp = oiio.ImageInput.open(str(path))
    assert inp is not None, oiio.geterror()
    out = []
    k = 0
    while inp.seek_subimage(k, 0):
        spec = inp.spec()
        data = inp.read_image(k, 0, 0, spec.nchannels, oiio.FLOAT)
        out.append((spec, np.asarray(data, np.float32).reshape(spec.height, spec.width, spec.nchannels)))
        k += 1
    inp.close()
    return out


def plane(img: Image, name: str) -> np.ndarray:
    """A channel of an image read with other_parts=False: main, layer.channel, or Z in 'depth'."""
    if name in img.channels:
        return img.pixels[..., img.channels.index(name)]
    if name == "Z" and "depth" in img.layers:
        return img.layers["depth"].pixels[..., 0]
    layer, _, short = name.rpartition(".")
    if layer in img.layers:
        return img.layer(layer).pixels[..., img.layer(layer).channels.index(short)]
    return img.pixels[..., img.channels.index(short)]  # a part whose only layer became the main channels


def eval_exrs():
    import os
    from pathlib import Path

    root = os.environ.get("COMPOSITE_EVAL_DATA")
    if not root or not (Path(root) / "exr").is_dir():
        return []
    return sorted(p.name for p in (Path(root) / "exr").glob("*.exr"))


@pytest.mark.parametrize("name", eval_exrs() or ["(no eval data)"])
def test_every_eval_exr_is_read_exactly_or_refused_cleanly(eval_data, name):
    path = eval_data / "exr" / name
    if "deep" in name:
        with pytest.raises(InputError, match="deep data .* flatten"):
            exr.read_exr(path)
        return
    if name == "Rec709_YC.exr":  # OpenImageIO refuses subsampled channels; see the YC tests below
        img = exr.read_exr(path)
        assert img.channels == ("R", "G", "B") and img.metadata["exr:luminance_chroma"]
        return
    compared = 0
    for k, (spec, ref) in enumerate(oiio_parts(path)):
        img = exr.read_exr(path, part=k, other_parts=False)
        views = img.metadata.get("exr:views") if img.metadata.get("exr:parts") == 1 else None
        assert img.data_window == Window(spec.x, spec.y, spec.x + spec.width - 1, spec.y + spec.height - 1)
        assert img.display_window.width == spec.full_width and img.display_window.height == spec.full_height
        for i, cname in enumerate(spec.channelnames):
            if views:
                v = exr.view_of_channel(cname, views)
                if v and v != img.metadata["exr:view"]:
                    continue
                cname = exr.strip_view(cname, v) if v else cname
            ours = plane(img, cname)
            # every decoder is OpenEXR's, so even lossy files decode to the same values
            assert np.array_equal(ours, ref[..., i], equal_nan=True), f"{name} part {k} channel {cname}"
            compared += 1
    assert compared > 0
    if name not in LOSSY:
        assert img.metadata["exr:compression"] not in exr.LOSSY_COMPRESSIONS


def test_all_half_values_survive(eval_data):
    path = eval_data / "exr" / "AllHalfValues.exr"
    img = exr.read_exr(path)
    raw = OpenEXR.File(str(path), separate_channels=True).parts[0].channels
    raw_bits = np.stack([raw[c].pixels.view(np.uint16) for c in "RGB"], axis=-1)
    ours_bits = img.pixels.astype(np.float16).view(np.uint16)
    # every channel holds all 65536 half bit patterns; float32 keeps each one (NaN payloads included)
    assert [np.unique(ours_bits[..., c]).size for c in range(3)] == [65536] * 3
    assert np.array_equal(ours_bits, raw_bits)
    assert int(np.isnan(img.pixels).sum()) == 3 * 2046 and int(np.isinf(img.pixels).sum()) == 3 * 2


def test_windows_and_pixel_aspect(eval_data):
    d = eval_data / "exr"
    t07 = exr.read_exr(d / "DisplayWindow_t07.exr")
    assert t07.display_window == Window(-40, -40, 440, 330) and t07.data_window == Window(0, 0, 399, 299)
    t08 = exr.read_exr(d / "DisplayWindow_t08.exr")
    assert t08.data_window == Window(30, 40, 429, 339) and t08.display_window == Window(0, 0, 500, 400)
    t09 = exr.read_exr(d / "DisplayWindow_t09.exr")
    assert t09.data_window.intersect(t09.display_window).empty
    assert exr.read_exr(d / "DisplayWindow_t15.exr").pixel_aspect == 1.5
    assert exr.read_exr(d / "DisplayWindow_t01.exr").pixel_aspect == 1.0


def test_multipart_parts_by_index_name_and_view(eval_data):
    path = eval_data / "exr" / "Beachball_multipart.0001.exr"
    ref = oiio_parts(path)
    img = exr.read_exr(path)  # part 0: rgba_right, with the right view's other parts as layers
    assert img.metadata["exr:part_name"] == "rgba_right" and img.metadata["exr:view"] == "right"
    assert set(img.layers) == {"depth", "forward", "disparityL", "disparityR", "whitebarmask"}
    # the depth layer is part 5 (depth_right) pasted into part 0's data window
    spec5, z5 = ref[5]
    w5 = Window(spec5.x, spec5.y, spec5.x + spec5.width - 1, spec5.y + spec5.height - 1)
    inter = w5.intersect(img.data_window)
    dz = img.layers["depth"].pixels[inter.ymin - img.data_window.ymin:inter.ymax - img.data_window.ymin + 1,
                                    inter.xmin - img.data_window.xmin:inter.xmax - img.data_window.xmin + 1, 0]
    assert np.array_equal(dz, z5[inter.ymin - w5.ymin:inter.ymax - w5.ymin + 1,
                                 inter.xmin - w5.xmin:inter.xmax - w5.xmin + 1, 0])
    left = exr.read_exr(path, view="left")
    assert left.metadata["exr:part"] == 4 and left.metadata["exr:view"] == "left"
    assert np.array_equal(left.pixels, exr.read_exr(path, part="rgba_left").pixels)
    assert np.array_equal(left.pixels[..., 0], ref[4][1][..., list(ref[4][0].channelnames).index("R")])
    with pytest.raises(InputError, match="no part named 'nope'.*rgba_right"):
        exr.read_exr(path, part="nope")
    with pytest.raises(InputError, match="part 12 does not exist"):
        exr.read_exr(path, part=12)


def test_single_part_multiview_default_and_other_view(eval_data):
    path = eval_data / "exr" / "Beachball_singlepart.0001.exr"
    ref_spec, ref = oiio_parts(path)[0]
    names = list(ref_spec.channelnames)
    right = exr.read_exr(path)
    assert right.metadata["exr:views"] == ["right", "left"] and right.metadata["exr:view"] == "right"
    assert right.channels == ("R", "G", "B", "A")
    assert np.array_equal(right.pixels[..., 0], ref[..., names.index("R")])
    assert np.array_equal(right.layers["depth"].pixels[..., 0], ref[..., names.index("Z")])
    assert np.array_equal(right.layers["forward"].pixels[..., 0], ref[..., names.index("forward.right.u")])
    left = exr.read_exr(path, view="left")
    assert np.array_equal(left.pixels[..., 3], ref[..., names.index("left.A")])
    assert np.array_equal(left.layers["forward"].pixels[..., 1], ref[..., names.index("forward.left.v")])
    assert np.array_equal(left.layers["whitebarmask"].pixels[..., 0], ref[..., names.index("whitebarmask.left.mask")])
    # channels without a view (disparity) belong to both
    assert np.array_equal(left.layers["disparityL"].pixels, right.layers["disparityL"].pixels)
    with pytest.raises(InputError, match="no view 'centre'"):
        exr.read_exr(path, view="centre")
    fog = exr.read_exr(eval_data / "exr" / "Fog.exr", view="right")
    assert fog.channels == ("Y",) and fog.metadata["exr:view"] == "right"


def test_tiled_mipmap_top_level_and_other_levels(eval_data):
    path = eval_data / "exr" / "ColorCodedLevels.exr"
    top = exr.read_exr(path)
    assert (top.width, top.height) == (512, 512) and top.metadata["exr:tiles"]["level_mode"] == "MIPMAP_LEVELS"
    level2 = exr.read_exr(path, level=2)
    assert (level2.width, level2.height) == (128, 128)
    buf = oiio.ImageBuf(str(path), 0, 2)
    assert np.array_equal(level2.pixels, buf.get_pixels(oiio.FLOAT))
    with pytest.raises(InputError, match="mip-map level 20"):
        exr.read_exr(path, level=20)


def test_colorspace_from_chromaticities_and_attributes(eval_data):
    carrots = exr.read_exr(eval_data / "exr" / "Carrots.exr")
    assert carrots.colorspace == "ACES2065-1" and carrots.metadata["colorspace_source"] == "file chromaticities"
    assert carrots.metadata["cameraModel"] == "SLT-A99"
    candle = exr.read_exr(eval_data / "exr" / "CandleGlass.exr")
    assert candle.colorspace == "ACEScg" and candle.metadata["colorspace_source"].startswith("default")
    assert candle.metadata["owner"].startswith("Copyright 2009")
    assert exr.read_exr(eval_data / "exr" / "Carrots.exr", colorspace="ACEScg").colorspace == "ACEScg"


def test_cryptomatte_layers_are_named_layers(eval_data):
    img = exr.read_exr(eval_data / "exr" / "oiio_cryptoasset.exr")
    assert img.channels == () and img.colorspace == "Raw"
    assert set(img.layers) == {"uCryptoAsset", "uCryptoAsset00", "uCryptoAsset01", "uCryptoAsset02"}
    assert img.layers["uCryptoAsset00"].channels == ("red", "green", "blue", "alpha")
    assert any(k.startswith("cryptomatte/") and k.endswith("/manifest") for k in img.metadata)
    ref_spec, ref = oiio_parts(eval_data / "exr" / "oiio_cryptoasset.exr")[0]
    i = list(ref_spec.channelnames).index("uCryptoAsset01.green")
    assert np.array_equal(img.layers["uCryptoAsset01"].pixels[..., 1], ref[..., i])


def test_deep_flatten_through_openimageio(eval_data):
    path = eval_data / "exr" / "LowResLeftView_Trunks_deep.exr"
    flat = exr.read_exr(path, deep="flatten")
    assert flat.channels == ("R", "G", "B", "A") and "depth" in flat.layers
    assert flat.data_window == Window(0, 141, 1023, 575) and flat.metadata["exr:flattened_deep"]
    assert float(flat.pixels[..., 3].min()) >= 0.0 and float(flat.pixels[..., 3].max()) <= 1.0 + 1e-3
    ref = oiio.ImageBufAlgo.flatten(oiio.ImageBuf(str(path))).get_pixels(oiio.FLOAT)
    assert np.array_equal(flat.pixels, ref[..., :4])


def test_truncated_and_foreign_files_are_input_errors(tmp_path, eval_data):
    src = eval_data / "exr" / "GoldenGate.exr"
    data = src.read_bytes()
    cut = tmp_path / "cut.exr"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError, match=r"cut\.exr: cannot read OpenEXR file .*truncated or corrupt"):
        exr.read_exr(cut)
    junk = tmp_path / "junk.exr"
    junk.write_bytes(b"not an exr at all" * 10)
    with pytest.raises(InputError, match="not an OpenEXR file"):
        exr.read_exr(junk)
    with pytest.raises(InputError, match="file not found"):
        exr.read_exr(tmp_path / "missing.exr")


# -- luminance / chroma ----------------------------------------------------------------------------

def test_luminance_weights_are_rec709_by_default():
    np.testing.assert_allclose(luminance_weights(), [0.2126, 0.7152, 0.0722], atol=2e-4)


def test_yca_constant_colour_and_grey_decode_exactly():
    h, w = 40, 50  # the OpenEXR bindings cannot write subsampled channels: test the decoder directly
    yw = luminance_weights()
    rgb = np.array([0.5, 0.25, 0.125], np.float32)
    y = float(rgb @ yw)
    ry, by = (rgb[0] - y) / y, (rgb[2] - y) / y
    out = yca_to_rgb(np.full((h, w), y, np.float16), np.full((20, 25), ry, np.float16),
                     np.full((20, 25), by, np.float16))
    assert out.shape == (h, w, 3) and out.dtype == np.float16
    # Y, RY, BY are half: the decoded colour is the original to half precision, the same everywhere
    np.testing.assert_allclose(out.reshape(-1, 3).astype(np.float32), np.broadcast_to(rgb, (h * w, 3)), rtol=2e-3)
    assert np.unique(out.reshape(-1, 3), axis=0).shape[0] == 1
    # odd sizes: chroma planes of ceil(H/2) x ceil(W/2)
    odd = yca_to_rgb(np.full((7, 9), y, np.float16), np.full((4, 5), ry, np.float16), np.full((4, 5), by, np.float16))
    np.testing.assert_allclose(odd.reshape(-1, 3).astype(np.float32), np.broadcast_to(rgb, (63, 3)), rtol=2e-3)
    grey = np.linspace(0, 4, h * w, dtype=np.float32).reshape(h, w)
    out = yca_to_rgb(grey.astype(np.float16), np.zeros((20, 25), np.float16), np.zeros((20, 25), np.float16))
    # OpenEXR's special case: zero chroma gives R = G = B = Y exactly
    assert np.array_equal(out[..., 1], grey.astype(np.float16)) and np.array_equal(out[..., 0], out[..., 2])


def test_yca_real_file_keeps_luminance(eval_data):
    path = eval_data / "exr" / "Rec709_YC.exr"
    f = OpenEXR.File(str(path), separate_channels=True)
    y = f.parts[0].channels["Y"].pixels.astype(np.float32)
    img = exr.read_exr(path)
    lum = img.pixels @ luminance_weights()
    ok = np.isclose(lum, y, rtol=5e-3, atol=1e-4)
    # luminance is preserved except where fixSaturation desaturates a pixel or half rounding bites
    assert ok.mean() > 0.99
    # a simple independent decoder (nearest chroma, same formula) agrees to a few percent on average
    ry = np.repeat(np.repeat(f.parts[0].channels["RY"].pixels.astype(np.float32), 2, 0), 2, 1)[: y.shape[0], : y.shape[1]]
    by = np.repeat(np.repeat(f.parts[0].channels["BY"].pixels.astype(np.float32), 2, 0), 2, 1)[: y.shape[0], : y.shape[1]]
    yw = luminance_weights()
    r, b = (ry + 1) * y, (by + 1) * y
    g = (y - r * yw[0] - b * yw[2]) / yw[1]
    simple = np.stack([r, g, b], -1)
    rel = np.abs(img.pixels - simple).mean() / np.abs(simple).mean()
    assert rel < 0.05


# -- writing ---------------------------------------------------------------------------------------

def _test_image(rng, h=12, w=16):
    px = rng.random((h, w, 4), dtype=np.float32) * np.float32(3)
    px[..., 3] = rng.random((h, w), dtype=np.float32)
    px = px.astype(np.float16).astype(np.float32)  # half-representable, so half storage is exact
    depth = (rng.random((h, w, 1), dtype=np.float32) * 1000).astype(np.float32)
    motion = rng.normal(size=(h, w, 2)).astype(np.float32)
    return Image(px, ("R", "G", "B", "A"), colorspace="ACES2065-1", data_window=Window(5, -3, 5 + w - 1, -3 + h - 1),
                 display_window=Window(0, 0, 31, 19), pixel_aspect=2.0,
                 layers={"depth": Layer(depth, ("Z",)), "motion": Layer(motion, ("u", "v"))})


@pytest.mark.parametrize("compression", ["none", "rle", "zips", "zip", "piz"])
def test_write_read_round_trip_is_exact_for_lossless_compressions(tmp_path, rng, compression):
    img = _test_image(rng)
    meta = {"owner": "studio", "timeCode": "01:02:03:04", "framesPerSecond": "24000/1001", "shot": "sh010",
            "take": 3, "lens_mm": 35.5}
    path = exr.write_exr(tmp_path / "o.exr", img, compression=compression, metadata=meta, fingerprint="f" * 64)
    back = exr.read_exr(path)
    assert np.array_equal(back.pixels, img.pixels)
    assert np.array_equal(back.layers["depth"].pixels, img.layers["depth"].pixels)  # float by default
    assert np.array_equal(back.layers["motion"].pixels, img.layers["motion"].pixels)
    assert back.data_window == img.data_window and back.display_window == img.display_window
    assert back.pixel_aspect == 2.0 and back.colorspace == "ACES2065-1"
    assert back.metadata["exr:compression"] == compression
    assert back.metadata["timeCode"] == "01:02:03:04" and back.metadata["framesPerSecond"] == "24000/1001"
    assert back.metadata["owner"] == "studio" and back.metadata["take"] == 3 and back.metadata["lens_mm"] == 35.5
    assert exr.read_fingerprint(path) == "f" * 64
    header = exr.read_header(path)
    assert header["framesPerSecond"] == fractions.Fraction(24000, 1001)
    assert tuple(round(v, 4) for v in header["chromaticities"]) == (0.7347, 0.2653, 0.0, 1.0, 0.0001, -0.077,
                                                                    0.3217, 0.3377)
    # OpenImageIO reads what we wrote
    spec, ref = oiio_parts(path)[0]
    assert np.array_equal(ref[..., list(spec.channelnames).index("R")], img.pixels[..., 0])
    assert spec.get_string_attribute("smpte:TimeCode") == "01:02:03:04"


def test_write_pixel_types_multipart_and_dwa(tmp_path, rng):
    img = _test_image(rng)
    exact = img.with_pixels(rng.random(img.pixels.shape, dtype=np.float32))
    path = exr.write_exr(tmp_path / "f.exr", exact, pixel_type="float", layer_types={"motion": "half"},
                         multipart=True)
    back = exr.read_exr(path)
    assert np.array_equal(back.pixels, exact.pixels)  # float main channels: exact
    assert back.metadata["exr:parts"] == 3 and set(back.layers) == {"depth", "motion"}
    assert np.array_equal(back.layers["motion"].pixels, img.layers["motion"].pixels.astype(np.float16).astype(np.float32))
    f = OpenEXR.File(str(path), header_only=True)
    assert [p.header["name"] for p in f.parts] == ["rgba", "depth", "motion"]
    dwa = exr.read_exr(exr.write_exr(tmp_path / "d.exr", img, compression="dwab", dwa_level=45))
    assert dwa.metadata["exr:compression"] == "dwab"
    assert np.abs(dwa.pixels[..., :3] - img.pixels[..., :3]).mean() < 0.05  # lossy but close
    with pytest.raises(InputError, match="unknown EXR compression 'lzw'"):
        exr.write_exr(tmp_path / "x.exr", img, compression="lzw")
    with pytest.raises(InputError, match="layer_types names layer 'beauty'"):
        exr.write_exr(tmp_path / "x.exr", img, layer_types={"beauty": "half"})
    assert not list(tmp_path.glob(".*partial*"))


def test_unprefixed_z_becomes_the_depth_layer_and_uint_reads_exactly(tmp_path):
    h, w = 4, 5
    z = np.arange(h * w, dtype=np.float32).reshape(h, w)
    ids = (np.arange(h * w, dtype=np.uint32).reshape(h, w) * 1000003) % (1 << 24)
    channels = {"R": np.ones((h, w), np.float16), "G": np.ones((h, w), np.float16), "B": np.ones((h, w), np.float16),
                "Z": z, "id.i": ids}
    OpenEXR.File({"compression": OpenEXR.ZIP_COMPRESSION, "type": OpenEXR.scanlineimage}, channels).write(
        str(tmp_path / "z.exr"))
    img = exr.read_exr(tmp_path / "z.exr")
    assert img.channels == ("R", "G", "B") and img.layers["depth"].channels == ("Z",)
    assert np.array_equal(img.layers["depth"].pixels[..., 0], z)
    assert np.array_equal(img.layers["id"].pixels[..., 0], ids.astype(np.float32))
    assert img.metadata["exr:pixel_types"]["id.i"] == "uint"


def test_half_overflow_is_reported_not_silent(tmp_path, caplog):
    img = Image(np.full((2, 2, 3), 1e6, np.float32), ("R", "G", "B"))
    exr.write_exr(tmp_path / "big.exr", img)
    assert "exceed the half-float range" in caplog.text
    assert np.isinf(exr.read_exr(tmp_path / "big.exr").pixels).all()
    exr.write_exr(tmp_path / "big32.exr", img, pixel_type="float")
    assert exr.read_exr(tmp_path / "big32.exr").pixels.max() == 1e6


def test_tiled_copy_reads_like_the_scanline_original(tmp_path, eval_data):
    src = eval_data / "exr" / "Carrots.exr"
    tiled = tmp_path / "tiled.exr"
    buf = oiio.ImageBuf(str(src))
    buf.set_write_tiles(64, 64)
    assert buf.write(str(tiled))
    shutil.copy(src, tmp_path / "copy.exr")
    a = exr.read_exr(tmp_path / "copy.exr")
    b = exr.read_exr(tiled)
    assert b.metadata["exr:storage"] == "tiledimage" and b.metadata["exr:tiles"]["x_size"] == 64
    assert np.array_equal(a.pixels, b.pixels)
