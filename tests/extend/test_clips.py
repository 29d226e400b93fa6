"""External generated clips: timing, retiming, beyond-the-clip policies, fitting, alignment, records."""

from __future__ import annotations

import hashlib
import json

import cv2
import numpy as np
import pytest

from composite.core import Image, InputError, RecipeError
from composite.core.coverage import coverage
from composite.extend import clips
from composite.extend.gen_stages import ExternalClip
from composite.extend.generator import generator_records
from composite.graph import Pipeline
from composite.graph.builtin import Constant
from composite.io.exr import write_exr


def constant_clip(tmp_path, n=6, w=32, h=16, name="gen"):
    """An EXR sequence whose frame k is the constant 0.1 * (k + 1) (float, lossless)."""
    folder = tmp_path / name
    folder.mkdir()
    for k in range(n):
        px = np.full((h, w, 3), 0.1 * (k + 1), np.float32)
        write_exr(folder / f"gen.{k + 1:04d}.exr", Image(px, ("R", "G", "B")), pixel_type="float")
    return str(folder / "gen.####.exr")


def clip_pipeline(path, *, rate=24.0, w=32, h=16, **params):
    p = Pipeline("clip", rate=rate)
    plate = p.add("plate", Constant(width=w, height=h, color=[0.0, 0.0, 0.0, 1.0]))
    p.add("clip", ExternalClip(path=path, **params), plate=plate)
    return p


def test_positions_and_policies_against_hand_computed_tables():
    assert clips.clip_position(1003, plate_rate=24, clip_rate=30, start_frame=1001) == pytest.approx(2.5)
    assert clips.clip_position(1001, plate_rate=24, clip_rate=12, start_frame=1001, clip_offset=3, speed=-1) == 3.0
    assert clips.clip_position(1005, plate_rate=25, clip_rate=24000 / 1001, start_frame=1001) == \
        pytest.approx(4 * 24000 / 1001 / 25)
    nearest = {pol: [clips.resolve_position(float(k), 4, policy=pol, method="nearest") for k in range(-2, 9)]
               for pol in ("loop", "hold", "pingpong", "black")}
    assert [s[0] for s in nearest["loop"]] == [2, 3, 0, 1, 2, 3, 0, 1, 2, 3, 0]
    assert [s[0] for s in nearest["hold"]] == [0, 0, 0, 1, 2, 3, 3, 3, 3, 3, 3]
    assert [s[0] for s in nearest["pingpong"]] == [2, 1, 0, 1, 2, 3, 2, 1, 0, 1, 2]
    assert [s if s is None else s[0] for s in nearest["black"]] == [None, None, 0, 1, 2, 3] + [None] * 5
    # blending picks the two neighbours and the weight; the last frame loops into the first
    assert clips.resolve_position(2.25, 4, policy="hold", method="blend") == (2, 3, 0.25)
    assert clips.resolve_position(3.5, 4, policy="loop", method="blend") == (3, 0, 0.5)
    assert clips.resolve_position(3.5, 4, policy="pingpong", method="blend") == (3, 2, 0.5)
    assert clips.resolve_position(3.25, 4, policy="black", method="blend") == (3, 3, 0.0)  # inside the last frame
    assert clips.resolve_position(-0.5, 4, policy="error", method="nearest") == (0, 0, 0.0)
    with pytest.raises(InputError, match="outside the clip"):
        clips.resolve_position(3.5, 4, policy="error", method="nearest")
    with pytest.raises(InputError, match="unknown policy"):
        clips.resolve_position(0.0, 4, policy="wrap")


def test_blend_is_the_linear_mix():
    a = np.full((2, 3, 4), 0.2, np.float32)
    b = np.full((2, 3, 4), 1.0, np.float32)
    np.testing.assert_allclose(clips.blend_frames(a, b, 0.25), 0.4, rtol=1e-6)
    assert clips.retime(a, b, 0.7, method="nearest") is b and clips.retime(a, b, 0.3, method="nearest") is a


def test_flow_interpolation_places_moving_texture_halfway():
    rng = np.random.default_rng(3)
    base = cv2.GaussianBlur(rng.random((96, 128)).astype(np.float32), (0, 0), 2.0) * 4
    a = np.stack([base, base * 0.8, base * 0.6], -1).astype(np.float32)
    b = np.roll(a, 6, axis=1)  # content moves 6 px right
    truth = np.roll(a, 3, axis=1)
    inner = (slice(16, -16), slice(16, -16))
    flow = clips.interpolate_flow(a, b, 0.5)
    blend = clips.blend_frames(a, b, 0.5)
    err_flow = float(np.abs(flow - truth)[inner].mean())
    err_blend = float(np.abs(blend - truth)[inner].mean())
    assert err_flow < 0.15 * err_blend, (err_flow, err_blend)
    assert err_flow < 0.01
    quarter = clips.interpolate_flow(a, b, 0.25)
    assert float(np.abs(quarter - np.roll(a, 1, axis=1) * 0.5 - np.roll(a, 2, axis=1) * 0.5)[inner].mean()) < 0.02
    np.testing.assert_array_equal(clips.interpolate_flow(a, b, 0.0), a)


def test_sequence_clip_retimed_by_blending_with_each_policy(tmp_path):
    path = constant_clip(tmp_path)
    expect = {1001: 0.1, 1002: 0.15, 1003: 0.2, 1011: 0.6}  # 12 fps clip on a 24 fps plate
    p = clip_pipeline(path, clip_rate=12, retime="blend", beyond="hold")
    for t, v in expect.items():
        img = p.evaluate("clip", t)
        np.testing.assert_allclose(img.pixels[..., :3], v, rtol=1e-6)
        np.testing.assert_allclose(img.a, 1.0)
        np.testing.assert_allclose(coverage(img), 1.0)  # every pixel of a generated clip is generated
    beyond = {"hold": 0.6, "loop": 0.35, "pingpong": 0.55}  # position 5.5: after the last frame
    for pol, v in beyond.items():
        img = clip_pipeline(path, clip_rate=12, beyond=pol).evaluate("clip", 1012)
        np.testing.assert_allclose(img.pixels[..., :3], v, rtol=1e-6)
    black = clip_pipeline(path, clip_rate=12, beyond="black").evaluate("clip", 1013)
    assert black.pixels.max() == 0 and coverage(black).max() == 0
    with pytest.raises(InputError, match=r"needs clip frame 6 .*has 6 frames.*set beyond to loop"):
        clip_pipeline(path, clip_rate=12, beyond="error").evaluate("clip", 1013)


def test_clip_record_names_model_prompt_seed_and_file_checksums(tmp_path):
    path = constant_clip(tmp_path, n=3)
    p = clip_pipeline(path, clip_rate=12, model="SomeVideoModel v2", prompt="a burning village at dusk", seed=42)
    rec = generator_records(p.evaluate("clip", 1001))
    assert len(rec) == 1
    rec = rec[0]
    digests = [hashlib.sha256((tmp_path / "gen" / f"gen.{k:04d}.exr").read_bytes()).hexdigest() for k in (1, 2, 3)]
    assert rec["backend"] == "external_clip" and rec["generated"] is True
    assert rec["model"] == {"external_model": "SomeVideoModel v2"}
    assert (rec["prompt"], rec["seed"]) == ("a burning village at dusk", 42)
    assert rec["params"]["clip_sha256"] == hashlib.sha256("".join(digests).encode()).hexdigest()
    assert rec["params"]["clip_frames"] == 3 and rec["params"]["clip_rate"] == 12


def test_fit_letterboxes_with_transparent_uncovered_bars(tmp_path):
    path = constant_clip(tmp_path, n=2)  # 32x16 clip on a 64x64 plate
    img = clip_pipeline(path, w=64, h=64, clip_rate=12, fit="fit", filter="bilinear").evaluate("clip", 1001)
    assert img.a[:16].max() == 0 and img.a[48:].max() == 0
    np.testing.assert_allclose(img.a[17:47], 1.0, atol=1e-6)
    np.testing.assert_allclose(coverage(img), img.a)
    np.testing.assert_allclose(img.pixels[20:44, :, 0], 0.1, rtol=1e-5)
    fill = clip_pipeline(path, w=64, h=64, clip_rate=12, fit="fill").evaluate("clip", 1001)
    np.testing.assert_allclose(fill.a, 1.0, atol=1e-6)


def test_offset_and_track_move_the_clip(tmp_path):
    folder = tmp_path / "grad"
    folder.mkdir()
    yy, xx = np.mgrid[0:24, 0:40].astype(np.float32)
    write_exr(folder / "g.0001.exr", Image(np.stack([xx / 40, yy / 24, xx * 0 + 0.3], -1).astype(np.float32),
                                           ("R", "G", "B")), pixel_type="float")
    path = str(folder / "g.####.exr")
    base = clip_pipeline(path, w=40, h=24, clip_rate=24).evaluate("clip", 1001).pixels
    moved = clip_pipeline(path, w=40, h=24, clip_rate=24, offset=[5, -3], filter="bilinear").evaluate("clip", 1001)
    np.testing.assert_allclose(moved.pixels[2:18, 7:38], base[5:21, 2:33], atol=1e-6)
    assert moved.a[:, :5].max() == 0  # uncovered on the left
    cam = {"reference": 1001, "frames": {"1001": np.eye(3).tolist(),
                                         "1002": [[1, 0, 2], [0, 1, 1], [0, 0, 1]]}}
    (tmp_path / "cam.json").write_text(json.dumps(cam))
    p = clip_pipeline(path, w=40, h=24, clip_rate=24, beyond="hold", track=str(tmp_path / "cam.json"))
    f1, f2 = p.evaluate("clip", 1001).pixels, p.evaluate("clip", 1002).pixels
    np.testing.assert_allclose(f2[4:20, 6:36], f1[3:19, 4:34], atol=1e-6)


def test_movie_clip_at_its_own_rate_matches_the_movie_reader(tmp_path):
    from composite.io import video
    from composite.io.stages import ReadImage

    frames = []
    for k in range(10):
        a = np.zeros((48, 64, 3), np.float32)
        a[:, 32:] = (k + 10) / 80.0
        a[:, :32, 0] = 0.6
        frames.append(a)
    movie = video.write_movie(tmp_path / "gen.mp4", frames, rate=30)
    p = clip_pipeline(str(movie), w=64, h=48, retime="nearest", beyond="hold")
    ref = Pipeline("ref")
    ref.add("m", ReadImage(path=str(movie), start_frame=0))
    expected_index = {1001: 0, 1002: 1, 1003: 3, 1004: 4, 1005: 5, 1006: 6, 1007: 8, 1008: 9, 1009: 9}
    for t, k in expected_index.items():
        np.testing.assert_array_equal(p.evaluate("clip", t).pixels[..., :3], ref.evaluate("m", k).pixels)
    with pytest.raises(InputError, match="needs clip frame 10"):
        clip_pipeline(str(movie), w=64, h=48, retime="nearest", beyond="error").evaluate("clip", 1009)


def test_chunks_agree_fingerprints_and_recipes(tmp_path):
    path = constant_clip(tmp_path, n=4, w=48, h=32)
    a = clip_pipeline(path, w=48, h=32, clip_rate=10, retime="flow", beyond="pingpong")
    b = clip_pipeline(path, w=48, h=32, clip_rate=10, retime="flow", beyond="pingpong")
    seq = [a.evaluate("clip", t).pixels for t in range(1001, 1010)]
    np.testing.assert_array_equal(b.evaluate("clip", 1007).pixels, seq[6])
    fp = a.fingerprint("clip", 1003)
    q = Pipeline.from_recipe(a.to_recipe())
    assert q.to_recipe() == a.to_recipe() and q.fingerprint("clip", 1003) == fp
    a.set_param("clip", "retime", "blend")
    assert a.fingerprint("clip", 1003) != fp
    assert a.fingerprint("clip", 1001) != a.fingerprint("clip", 1003)  # different clip frames


def test_bad_input_messages(tmp_path):
    with pytest.raises(InputError, match="not found"):
        clip_pipeline(str(tmp_path / "nope.mp4")).evaluate("clip", 1001)
    path = constant_clip(tmp_path, n=2)
    with pytest.raises(InputError, match="no frame rate of its own"):
        clip_pipeline(path).evaluate("clip", 1001)
    with pytest.raises(RecipeError, match="speed 0"):
        ExternalClip(path=path, speed=0)
    with pytest.raises(RecipeError, match="path is required"):
        ExternalClip()


def test_clip_generator_follows_the_generator_protocol(tmp_path):
    from composite.extend.generator import Generator, PlateContext

    path = constant_clip(tmp_path, n=4)
    gen = clips.ClipGenerator(path, rate=12, model="SomeVideoModel", prompt="embers", seed=7, fit="fill")
    assert isinstance(gen, Generator) and gen.describe()["backend"] == "external_clip"
    el = gen.generate(PlateContext(frame=1002, width=32, height=16, rate=24.0))
    np.testing.assert_allclose(el.pixels[..., :3], 0.15, rtol=1e-6)  # halfway between clip frames 0 and 1
    np.testing.assert_allclose(coverage(el), 1.0)
    assert el.frame == 1002 and generator_records(el)[0]["prompt"] == "embers"
    moved = gen.generate(PlateContext(frame=1002, width=32, height=16, rate=24.0,
                                      track=np.array([[1, 0, 4.0], [0, 1, 0], [0, 0, 1]])))
    assert moved.a[:, :4].max() == 0 and coverage(moved)[:, :4].max() == 0  # uncovered by the move
