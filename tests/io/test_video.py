"""Movies: frame-accurate random access, alpha video, review-movie writing, the movie stages."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest

from composite.core import InputError
from composite.graph import Pipeline
from composite.io import video
from composite.io.stages import ReadImage, WriteMovie


def coded_frames(n, h=48, w=64):
    """Frame k carries its number as a grey level: (k + 10) / 80 on the right half."""
    for k in range(n):
        a = np.zeros((h, w, 3), np.float32)
        a[:, w // 2:] = (k + 10) / 80.0
        a[:, : w // 2, 0] = 0.6
        yield a


def decoded_number(rgb):
    w = rgb.shape[1]
    return int(round(float(rgb[4:-4, w // 2 + 4:-4, 1].mean()) * 80 - 10))


def test_h264_round_trip_is_frame_accurate_in_any_order(tmp_path):
    path = video.write_movie(tmp_path / "t.mp4", coded_frames(30), rate=Fraction(24000, 1001),
                             metadata={"comment": "hello"})
    reader = video.MovieReader(path)
    info = reader.info()
    assert (info.frame_count, info.width, info.height, info.codec) == (30, 64, 48, "h264")
    assert info.rate == Fraction(24000, 1001) and info.pix_fmt == "yuv420p"
    assert video.read_movie_metadata(path)["comment"] == "hello"
    for k in (17, 3, 29, 0, 12, 13, 14, 28, 5):  # backwards, forwards, sequential
        assert decoded_number(reader.read(k)) == k
    sequential = [reader.read(k) for k in range(30)]
    assert all(np.array_equal(reader.read(k), sequential[k]) for k in (21, 2, 27))
    with pytest.raises(InputError, match="frame index 30 is outside the movie"):
        reader.read(30)


def test_prores_and_alpha(tmp_path):
    if not video.prores_available():
        pytest.skip("this FFmpeg build has no prores_ks encoder")
    path = video.write_movie(tmp_path / "p.mov", coded_frames(6), rate=25, codec="prores")
    r = video.MovieReader(path)
    assert r.info().codec == "prores" and r.info().bit_depth == 10
    assert [decoded_number(r.read(k)) for k in (5, 0, 3)] == [5, 0, 3]
    rgba = np.zeros((32, 32, 4), np.float32)
    rgba[..., 0] = 0.8
    rgba[8:24, 8:24, 3] = 1.0
    path = video.write_movie(tmp_path / "a.mov", [rgba, rgba], codec="prores")
    frame = video.read_movie_frame(path, 1)
    assert frame.channels == ("R", "G", "B", "A") and frame.alpha.value == "straight"
    assert frame.pixels[16, 16, 3] > 0.99 and frame.pixels[2, 2, 3] < 0.01


def test_eval_movies_random_access_matches_sequential_decode(eval_data):
    path = eval_data / "video" / "tears_of_steel_10s_640x360.mp4"
    reader = video.MovieReader(path)
    info = reader.info()
    assert (info.width, info.height, info.frame_count, info.rate) == (640, 360, 240, Fraction(24))
    seq = [reader.read(k) for k in range(40)]
    for k in (33, 7, 39, 0, 25):
        assert np.array_equal(reader.read(k), seq[k])
    assert 0.0 <= float(seq[10].min()) and float(seq[10].max()) <= 1.0


def test_alpha_webm_brings_its_alpha(eval_data):
    path = eval_data / "video" / "moviepy_transparent.webm"
    info = video.probe_movie(path)
    assert info.has_alpha and info.frame_count == 150 and info.codec == "vp9"
    img = video.read_movie_frame(path, 75)
    assert img.channels == ("R", "G", "B", "A") and img.alpha.value == "straight"
    a = img.pixels[..., 3]
    assert float(a.min()) == 0.0 and float(a.max()) == 1.0  # both transparent and opaque pixels
    assert 0.0 < float(a.mean()) < 1.0


def test_unreadable_movies_are_input_errors(tmp_path, eval_data):
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"\x00\x00\x00\x18ftypisom" + b"\x00" * 100)
    with pytest.raises(InputError, match="bad.mp4"):
        video.MovieReader(bad)
    data = (eval_data / "video" / "tears_of_steel_10s_640x360.mp4").read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) // 3])
    with pytest.raises(InputError, match="cut.mp4"):
        video.MovieReader(cut).read(200)


def test_read_image_stage_numbers_movie_frames_from_start_frame(tmp_path):
    path = video.write_movie(tmp_path / "m.mp4", coded_frames(8), rate=24)
    stage = ReadImage(path=str(path), start_frame=1001, colorspace="Gamma 2.4 Encoded Rec.709")
    p = Pipeline("m")
    node = p.add("plate", stage)
    assert p.frame_range("plate") == (1001, 1008)
    img = p.evaluate("plate", 1005)
    assert img.colorspace == "ACEScg" and img.frame == 1005
    # the working-space image converts back to the movie's frame 4
    from composite.color import ocio

    back = ocio.convert(img.pixels, "ACEScg", "Gamma 2.4 Encoded Rec.709")
    assert decoded_number(back) == 4
    with pytest.raises(InputError, match="frame 1009 is outside the movie's frames 1001-1008"):
        p.evaluate(node.node, 1009)
    held = ReadImage(path=str(path), missing="hold")
    p2 = Pipeline("h")
    p2.add("plate", held)
    assert decoded_number(ocio.convert(p2.evaluate("plate", 1020).pixels, "ACEScg", "Gamma 2.4 Encoded Rec.709")) == 7


def test_write_movie_stage_merges_chunks_and_skips_up_to_date(tmp_path, monkeypatch):
    from composite.graph.builtin import Constant

    monkeypatch.setenv("COMPOSITE_C2PA", "unsigned")  # review movies are C2PA-signed unless told otherwise

    p = Pipeline("review", rate=25)
    src = p.add("src", Constant(color=[0.18, 0.18, 0.18, 1.0], width=64, height=36))
    p.add("review", WriteMovie(path=str(tmp_path / "r.mp4")), image=src)
    first = p.render("1001-1010", chunk_size=4)
    assert first.rendered == list(range(1001, 1011))
    info = video.probe_movie(tmp_path / "r.mp4")
    assert info.frame_count == 10 and info.rate == 25
    recorded = video.decode_fingerprints(video.read_movie_metadata(tmp_path / "r.mp4")["comment"])
    assert sorted(recorded) == list(range(1001, 1011))
    assert recorded[1003] == p.fingerprint("review", 1003)
    again = p.render("1001-1010")
    assert again.skipped == list(range(1001, 1011))
    # a grey of 0.18 through the ACES SDR view lands near the display's mid grey
    mid = video.MovieReader(tmp_path / "r.mp4").read(5)
    assert 0.3 < float(mid.mean()) < 0.5
    assert not list(tmp_path.glob(".*partial*"))


def test_write_movie_stage_params_and_recipe_round_trip():
    from composite.core import RecipeError

    stage = WriteMovie(path="out/review.mp4", crf=20)
    p = Pipeline("x")
    from composite.graph.builtin import Constant

    src = p.add("src", Constant())
    p.add("review", stage, image=src)
    assert Pipeline.from_recipe(p.to_recipe()).to_recipe() == p.to_recipe()
    fp = p.fingerprint("review", 1001)
    p.set_param("review", "crf", 23)
    assert p.fingerprint("review", 1001) != fp
    with pytest.raises(RecipeError, match="ProRes goes in a .mov"):
        WriteMovie(path="a.mp4", codec="prores")
    with pytest.raises(RecipeError, match="unknown view"):
        WriteMovie(path="a.mp4", view="Nope")
