"""ReadImage / WriteImage: colour and alpha to and from the working state, sequences, missing-frame
policies, format changes mid-sequence, fingerprints and recipes."""

from __future__ import annotations

import os

import numpy as np
import pytest

from composite.core import AlphaState, Image, InputError, Layer, MissingFrameError, RecipeError
from composite.graph import Pipeline
from composite.io import exr, formats, images
from composite.io.stages import ReadImage, WriteImage

# ACES AP0 → AP1 (ACES2065-1 → ACEScg), from the ACES specification (S-2014-004)
AP0_TO_AP1 = np.array([[1.4514393161, -0.2365107469, -0.2149285693],
                       [-0.0765537734, 1.1762296998, -0.0996759264],
                       [0.0083161484, -0.0060324498, 0.9977163014]])
# linear Rec.709 → ACEScg (Bradford D65 → D60), as published with the ACES configs
REC709_TO_AP1 = np.array([[0.6130974, 0.3395231, 0.0473795],
                          [0.0701937, 0.9163539, 0.0134524],
                          [0.0206156, 0.1095698, 0.8698147]])


def write_seq(folder, frames, value=0.25, size=(6, 8), colorspace="ACES2065-1", channels=4, pixel_type="half"):
    paths = []
    for t in frames:
        px = np.full(size + (channels,), value, np.float32)
        px[..., 0] = value + (t % 100) / 100.0
        if channels == 4:
            px[..., 3] = 1.0
        img = Image(px, ("R", "G", "B", "A")[:channels], colorspace=colorspace)
        paths.append(exr.write_exr(folder / f"plate.{t:04d}.exr", img, pixel_type=pixel_type))
    return paths


def reader_pipeline(**params):
    p = Pipeline("t")
    p.add("plate", ReadImage(**params))
    return p


def test_exr_aces2065_plate_arrives_in_acescg_with_the_aces_matrix(tmp_path):
    write_seq(tmp_path, [1001, 1002])
    p = reader_pipeline(path=str(tmp_path / "plate.####.exr"))
    img = p.evaluate("plate", 1002)
    assert img.colorspace == "ACEScg" and img.alpha is AlphaState.PREMULTIPLIED and img.frame == 1002
    src = np.array([0.27, 0.25, 0.25], np.float16).astype(np.float64)
    np.testing.assert_allclose(img.pixels[0, 0, :3], AP0_TO_AP1 @ src, rtol=2e-5)
    assert img.pixels[0, 0, 3] == 1.0


def test_linear_conversion_keeps_emissive_pixels_with_zero_alpha(tmp_path):
    px = np.array([[[0.5, 0.25, 0.125, 0.0], [0.2, 0.2, 0.2, 0.5]]], np.float32)
    exr.write_exr(tmp_path / "e.exr", Image(px, colorspace="Linear Rec.709 (sRGB)"), pixel_type="float")
    img = reader_pipeline(path=str(tmp_path / "e.exr")).evaluate("plate", 1)
    # a pure matrix acts on premultiplied colour directly: light with A == 0 (fire, glints) survives
    np.testing.assert_allclose(img.pixels[0, 0, :3], REC709_TO_AP1 @ px[0, 0, :3], rtol=1e-5)
    np.testing.assert_allclose(img.pixels[0, 1, :3], REC709_TO_AP1 @ px[0, 1, :3], rtol=1e-5)
    assert img.pixels[0, 0, 3] == 0.0


def test_srgb_png_is_decoded_and_premultiplied(tmp_path):
    px = np.array([[[1.0, 0.5, 0.0, 0.5]]], np.float32)
    formats.write_oiio(tmp_path / "a.png", Image(px, alpha=AlphaState.STRAIGHT, colorspace="sRGB Encoded Rec.709 (sRGB)"),
                       bits="uint16")
    img = reader_pipeline(path=str(tmp_path / "a.png")).evaluate("plate", 1)
    code = np.round(px[0, 0] * 65535) / 65535
    lin = np.where(code[:3] <= 0.04045, code[:3] / 12.92, ((code[:3] + 0.055) / 1.055) ** 2.4)
    expected = (REC709_TO_AP1 @ lin) * code[3]
    np.testing.assert_allclose(img.pixels[0, 0, :3], expected, rtol=2e-4, atol=1e-6)
    assert img.alpha is AlphaState.PREMULTIPLIED


def test_missing_frame_policies(tmp_path):
    write_seq(tmp_path, [1001, 1002, 1004, 1005])
    pattern = str(tmp_path / "plate.####.exr")
    p = reader_pipeline(path=pattern)
    assert p.frame_range("plate") == (1001, 1005)
    with pytest.raises(MissingFrameError, match=r"frame 1003 is missing \(gaps in the sequence: 1003\).*plate.missing"):
        p.evaluate("plate", 1003)
    hold = reader_pipeline(path=pattern, missing="hold").evaluate("plate", 1003)
    ref = reader_pipeline(path=pattern).evaluate("plate", 1002)
    assert np.array_equal(hold.pixels, ref.pixels) and hold.frame == 1003
    black = reader_pipeline(path=pattern, missing="black").evaluate("plate", 1003)
    assert black.shape == ref.shape and not black.pixels.any() and black.metadata["composite:black_frame"]
    # the range form of the pattern limits the frames
    ranged = reader_pipeline(path=str(tmp_path / "plate.1001-1002#.exr"))
    assert ranged.frame_range("plate") == (1001, 1002)


def test_format_change_mid_sequence_is_reported_at_that_frame(tmp_path):
    write_seq(tmp_path, [1001, 1002])
    write_seq(tmp_path, [1003], size=(6, 10))
    write_seq(tmp_path, [1004], channels=3)
    write_seq(tmp_path, [1005], pixel_type="float")
    p = reader_pipeline(path=str(tmp_path / "plate.####.exr"))
    p.evaluate("plate", 1002)
    with pytest.raises(InputError, match=r"frame 1003 differs from the sequence's first frame 1001: resolution 8x6 → 10x6"):
        p.evaluate("plate", 1003)
    with pytest.raises(InputError, match=r"frame 1004 .*channels R,G,B,A → R,G,B"):
        p.evaluate("plate", 1004)
    with pytest.raises(InputError, match=r"frame 1005 .*bit_depth .*R:half.* → .*R:float"):
        reader_pipeline(path=str(tmp_path / "plate.####.exr")).evaluate("plate", 1005)
    relaxed = reader_pipeline(path=str(tmp_path / "plate.####.exr"), check_format=False)
    assert relaxed.evaluate("plate", 1003).width == 10


def test_chunked_render_is_bit_identical_and_skips_up_to_date(tmp_path):
    (tmp_path / "in").mkdir()
    write_seq(tmp_path / "in", range(1001, 1007))

    def build(out):
        p = Pipeline("c")
        r = p.add("plate", ReadImage(path=str(tmp_path / "in" / "plate.####.exr")))
        p.add("write", WriteImage(path=str(out / "o.####.exr"), compression="piz"), image=r)
        return p

    a = build(tmp_path / "a").render("1001-1006")
    b = build(tmp_path / "b").render("1001-1006", chunk_size=2)
    assert a.rendered == b.rendered == list(range(1001, 1007))
    for t in range(1001, 1007):
        pa, pb = exr.read_exr(tmp_path / "a" / f"o.{t}.exr"), exr.read_exr(tmp_path / "b" / f"o.{t}.exr")
        assert np.array_equal(pa.pixels, pb.pixels)
    assert build(tmp_path / "a").render("1001-1006").skipped == list(range(1001, 1007))
    out = exr.read_exr(tmp_path / "a" / "o.1001.exr")
    assert out.colorspace == "ACEScg" and out.metadata["exr:compression"] == "piz"
    assert out.metadata["colorspace_source"] == "file attribute composite:colorspace"


def test_fingerprints_follow_params_and_files(tmp_path):
    paths = write_seq(tmp_path, [1001, 1002])
    p = reader_pipeline(path=str(tmp_path / "plate.####.exr"))
    fp = p.fingerprint("plate", 1001)
    p.set_param("plate", "colorspace", "ACEScg")
    assert p.fingerprint("plate", 1001) != fp
    fp2 = p.fingerprint("plate", 1002)
    st = os.stat(paths[1])
    os.utime(paths[1], ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    q = reader_pipeline(path=str(tmp_path / "plate.####.exr"), colorspace="ACEScg")
    assert q.fingerprint("plate", 1002) != fp2
    assert q.fingerprint("plate", 1001) == p.fingerprint("plate", 1001)


def test_recipe_round_trip_and_param_errors(tmp_path):
    p = Pipeline("r")
    r = p.add("plate", ReadImage(path="plates/a.####.exr", colorspace="ARRI LogC4", part="rgba_left", view="left",
                                 missing="hold"))
    p.add("write", WriteImage(path="out/a.####.exr", layer_types={"depth": "float"}, compression="dwaa"), image=r)
    assert Pipeline.from_recipe(p.to_recipe()).to_recipe() == p.to_recipe()
    with pytest.raises(RecipeError, match="params.colorspace.*unknown colour space 'ACEScgg'.*did you mean 'ACEScg'"):
        ReadImage(path="a.exr", colorspace="ACEScgg")
    with pytest.raises(RecipeError, match="params.layer_types.depth"):
        WriteImage(path="a.exr", layer_types={"depth": "double"})
    with pytest.raises(RecipeError, match="WriteMovie"):
        WriteImage(path="a.mp4")


def test_multiview_and_layers_through_the_stages(eval_data, tmp_path):
    path = eval_data / "exr" / "Beachball_singlepart.0001.exr"
    p = Pipeline("mv")
    r = p.add("plate", ReadImage(path=str(path), view="left"))
    p.add("write", WriteImage(path=str(tmp_path / "left.exr"), layer_types={"forward": "half"}), image=r)
    p.render("1")
    out = exr.read_exr(tmp_path / "left.exr")
    src = exr.read_exr(path, view="left")
    assert set(out.layers) == set(src.layers)
    assert out.data_window == src.data_window and out.display_window == src.display_window
    assert np.array_equal(out.layers["forward"].pixels, src.layers["forward"].pixels)
    assert np.array_equal(out.layers["depth"].pixels, src.layers["depth"].pixels)
    np.testing.assert_allclose(out.pixels, src.pixels, atol=2e-3, rtol=1e-3)  # ACEScg → ACEScg, half storage


def test_write_image_display_view_png(tmp_path, monkeypatch):
    from composite.color import ocio

    monkeypatch.setenv("COMPOSITE_C2PA", "unsigned")  # review stills are C2PA-signed unless told otherwise

    px = np.zeros((4, 4, 4), np.float32)
    px[..., :3] = 0.18
    px[..., 3] = 1.0
    img = Image(px, layers={"depth": Layer(np.ones((4, 4, 1), np.float32), ("Z",))})
    stage = WriteImage(path=str(tmp_path / "p.####.png"), display="sRGB - Display")
    stage.write(1001, fingerprint="f" * 64, image=img)
    back = formats.read_oiio(tmp_path / "p.1001.png")
    expected = ocio.to_display(px[..., :3], "ACEScg", display="sRGB - Display")
    np.testing.assert_allclose(back.pixels[..., :3], np.round(expected * 255) / 255, atol=1e-6)
    assert stage.existing_fingerprint(1001) == "f" * 64
    assert images.read_fingerprint(tmp_path / "p.1001.png") == "f" * 64


def test_corrupt_frame_error_names_stage_frame_and_file(tmp_path):
    paths = write_seq(tmp_path, [1001, 1002])
    data = paths[1].read_bytes()
    paths[1].write_bytes(data[: len(data) // 2])
    p = reader_pipeline(path=str(tmp_path / "plate.####.exr"))
    with pytest.raises(InputError, match=r"plate frame 1002: .*plate\.1002\.exr: cannot read OpenEXR file"):
        p.evaluate("plate", 1002)
