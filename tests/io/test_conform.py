"""OpenTimelineIO conform: every evaluation timeline loads with its shots and ranges; shots map to file
frames (image sequences, movies, mixed rates, speed effects); a recipe renders every shot of a timeline."""

from __future__ import annotations

import json

import numpy as np
import opentimelineio as otio
import pytest
import yaml

from composite.core import Image, InputError
from composite.io import conform, exr, video

RT, TR = otio.opentime.RationalTime, otio.opentime.TimeRange

# shot count and (source start, duration) of the first shots, per evaluation timeline
EXPECTED = {
    "edl/25fps.edl": (4, [(90000, 161), (90000, 200), (90000, 86), (90000, 49)], 25),
    "edl/avid_example.edl": (2, [(86501, 31), (86557, 50)], 24),
    "edl/cdl.edl": (2, [(86501, 31), (86501, 31)], 24),
    "edl/dissolve_test.edl": (3, [(86501, 9), (86600, 10), (86610, 1)], 24),
    "edl/gap_test.edl": (3, [(14400, 24), (1987200, 24), (864000, 24)], 24),
    "edl/multi_audio.edl": (0, [], 24),
    "edl/nucoda_example.edl": (2, [(86501, 31), (86557, 50)], 24),
    "edl/premiere_example.edl": (2, [(86501, 31), (86557, 50)], 24),
    "edl/screening_example.edl": (9, [(86501, 31), (86557, 50), (86601, 28), (86641, 115), (86753, 101)], 24),
    "edl/speed_effects_small.edl": (5, [(86445, 126), (86661, 17), (86660, 1), (86660, 18), (86544, 36)], 24),
    "edl/timecode_mismatch.edl": (20, [(90000, 161), (90000, 200), (90000, 86), (90000, 49)], 25),
    "edl/wipe_test.edl": (3, [(86501, 9), (86600, 10), (86610, 1)], 24),
    "otio/clip_example.otio": (1, [(3, 3)], 24),
    "otio/generator_reference_test.otio": (1, [(0, 50)], 24),
    "otio/multitrack.otio": (5, [(0, 720), (0, 722), (0, 720), (0, 480), (0, 640)], 24),
    "otio/nested_example.otio": (7, [(135, 238), (373, 37), (101, 33), (429, 24), (179, 63), (471, 1)], 24),
    "otio/premiere_example.otio": (7, [(0, 50), (0, 100), (0, 157), (0, 235), (108000, 941)], None),
    "otio/screening_example.otio": (9, [(86501, 31), (86557, 50), (86601, 28), (86641, 115), (86753, 101)], 24),
    "otio/simple_cut.otio": (4, [(3, 3), (2, 6), (0, 4), (100, 6)], 24),
    "otio/transition.otio": (4, [(3, 3), (2, 6), (3, 4), (100, 6)], 24),
}


def test_every_eval_timeline_loads_with_its_shots(eval_data):
    found = sorted(str(p.relative_to(eval_data / "otio")) for p in (eval_data / "otio").glob("*/*"))
    assert found == sorted(EXPECTED)
    for rel, (count, ranges, rate) in EXPECTED.items():
        tl, notes = conform.load_timeline(eval_data / "otio" / rel)
        shots = conform.timeline_shots(tl)
        assert len(shots) == count, rel
        got = [(int(s.source_range.start_time.value), int(s.source_range.duration.value)) for s in shots[:len(ranges)]]
        assert got == ranges, rel
        if rate is not None:
            assert all(s.rate == rate for s in shots), rel
        assert json.dumps([s.as_dict() for s in shots])  # serialisable for `composite info --json`


def test_edl_rate_inference_timecodes_and_mismatch_notes(eval_data):
    tl, notes = conform.load_timeline(eval_data / "otio" / "edl" / "25fps.edl")
    assert any("read at 25 fps" in n for n in notes)
    shot = conform.timeline_shots(tl)[3]
    assert shot.as_dict()["source_range"]["in"] == "01:00:00:00" and shot.as_dict()["source_range"]["out"] == "01:00:01:24"
    tl, notes = conform.load_timeline(eval_data / "otio" / "edl" / "timecode_mismatch.edl")
    assert any("record durations were used" in n for n in notes)
    tl, notes = conform.load_timeline(eval_data / "otio" / "edl" / "screening_example.edl", rate=24)
    assert not any("not given" in n for n in notes)
    _, notes = conform.load_timeline(eval_data / "otio" / "otio" / "premiere_example.otio")
    assert any("Marker.3" in n for n in notes)


def test_speed_effects_are_reported_not_ignored(eval_data):
    tl, _ = conform.load_timeline(eval_data / "otio" / "edl" / "speed_effects_small.edl")
    shots = conform.timeline_shots(tl)
    assert shots[1].speed == 0.0 and any("freeze frame" in w for w in shots[1].warnings)
    assert shots[4].speed == pytest.approx(47.6 / 24)
    assert any("rendering 72 source frame(s) for 36 timeline frame(s)" in w for w in shots[4].warnings)


def test_transition_widens_the_visible_range(eval_data):
    tl, _ = conform.load_timeline(eval_data / "otio" / "otio" / "transition.otio")
    shots = conform.timeline_shots(tl, handles=2)
    s = shots[1]
    assert (s.source_range.duration.value, s.visible_range.duration.value) == (6, 9)
    assert s.media_kind == "movie" and s.frame_count == 9 + 4
    assert any("outside the media's available range" in w for w in s.warnings)


# -- synthetic timeline rendered end to end ----------------------------------------------------------

def _plates(folder, name, frames, value):
    folder.mkdir(parents=True, exist_ok=True)
    for t in frames:
        px = np.zeros((4, 6, 4), np.float32)
        px[..., 0] = value
        px[..., 1] = t / 10000.0  # the frame number, readable back from the render
        px[..., 3] = 1
        exr.write_exr(folder / f"{name}.{t:04d}.exr", Image(px, colorspace="ACEScg"), pixel_type="float")


def _timeline(tmp_path):
    _plates(tmp_path / "plates", "sh010", range(1001, 1021), 0.1)
    _plates(tmp_path / "plates", "sh030", range(1001, 1021), 0.3)
    frames = (np.full((36, 48, 3), k / 40.0, np.float32) for k in range(20))
    movie = video.write_movie(tmp_path / "plates" / "sh020.mov", frames, rate=25)

    tl = otio.schema.Timeline("edit")
    track = otio.schema.Track("V1")
    tl.tracks.append(track)
    seq = otio.schema.ImageSequenceReference(
        target_url_base=(tmp_path / "plates").as_uri() + "/", name_prefix="sh010.", name_suffix=".exr",
        start_frame=1001, rate=24, frame_zero_padding=4, available_range=TR(RT(86400, 24), RT(20, 24)))
    track.append(otio.schema.Clip("sh010", media_reference=seq, source_range=TR(RT(86405, 24), RT(5, 24))))
    mov = otio.schema.ExternalReference(target_url=str(movie), available_range=TR(RT(0, 25), RT(20, 25)))
    track.append(otio.schema.Clip("sh020", media_reference=mov, source_range=TR(RT(3, 25), RT(6, 25))))
    track.append(otio.schema.Gap(source_range=TR(RT(0, 24), RT(3, 24))))
    seq3 = seq.clone()
    seq3.name_prefix = "sh030."
    warp = otio.schema.Clip("sh030", media_reference=seq3, source_range=TR(RT(86402, 24), RT(4, 24)))
    warp.effects.append(otio.schema.LinearTimeWarp(time_scalar=2.0))
    track.append(warp)
    track.append(otio.schema.Clip("sh040", media_reference=otio.schema.MissingReference(),
                                  source_range=TR(RT(0, 24), RT(5, 24))))
    path = tmp_path / "edit.otio"
    otio.adapters.write_to_file(tl, str(path))
    return path


def test_shots_of_a_synthetic_timeline_map_to_file_frames(tmp_path):
    path = _timeline(tmp_path)
    tl, _ = conform.load_timeline(path)
    shots = conform.timeline_shots(tl, handles=2)
    by = {s.name: s for s in shots}
    assert (by["sh010"].first_frame, by["sh010"].last_frame) == (1004, 1012)  # 1006-1010 with 2 handles
    assert by["sh010"].media_kind == "image_sequence" and by["sh010"].media_path.endswith("sh010.####.exr")
    assert (by["sh020"].first_frame, by["sh020"].last_frame, by["sh020"].rate) == (1002, 1011, 25.0)
    assert any("25 fps differs from the timeline's 24 fps" in w for w in by["sh020"].warnings)
    assert (by["sh030"].first_frame, by["sh030"].last_frame) == (1001, 1012)  # 8 media frames for 4 at 2x
    assert by["sh030"].speed == 2.0 and not by["sh040"].renderable
    assert by["sh010"].as_dict()["record_range"]["start"] == 0 and by["sh020"].record_range.start_time.value == 5


def test_render_timeline_writes_renders_and_a_conformed_timeline(tmp_path):
    path = _timeline(tmp_path)
    recipe = {"stages": {
        "plate": {"type": "ReadImage", "params": {"path": "unused.####.exr", "colorspace": "ACEScg"}},
        "write": {"type": "WriteImage", "inputs": {"image": "plate"},
                  "params": {"path": str(tmp_path / "renders" / "{shot}" / "comp.####.exr"), "pixel_type": "float"}},
    }}
    result = conform.render_timeline(recipe, path, output=tmp_path / "out" / "edit_comp.otio", handles=1)
    assert sorted(result.rendered) == ["000 sh010", "001 sh020", "002 sh030"]
    assert list(result.skipped) == ["003 sh040"]
    # sh010: plate frames 1005-1011 rendered under the same numbers
    comp = exr.read_exr(tmp_path / "renders" / "sh010" / "comp.1007.exr")
    assert comp.pixels[0, 0, 1] == np.float32(1007 / 10000.0)
    assert sorted(p.name for p in (tmp_path / "renders" / "sh020").iterdir())[0] == "comp.1003.exr"
    out = otio.adapters.read_from_file(str(tmp_path / "out" / "edit_comp.otio"))
    clips = {c.name: c for c in out.find_clips()}
    ref = clips["sh010"].media_reference
    assert isinstance(ref, otio.schema.ImageSequenceReference) and ref.name_prefix == "comp."
    assert ref.frame_for_time(clips["sh010"].source_range.start_time) == 1006
    assert ref.abstract_target_url("#").endswith("renders/sh010/comp.#.exr")
    meta = clips["sh010"].metadata["composite"]
    assert meta["frames"] == "1005-1011" and len(meta["fingerprint"]) == 64
    assert meta["recipe"]["stages"]["plate"]["params"]["path"].endswith("sh010.####.exr")
    assert clips["sh020"].media_reference.frame_for_time(clips["sh020"].source_range.start_time) == 1004
    assert isinstance(clips["sh030"].effects[0], otio.schema.LinearTimeWarp)  # the retime stays in the edit
    assert any("speed 2x" in w for w in clips["sh030"].metadata["composite"]["warnings"])
    assert isinstance(clips["sh040"].media_reference, otio.schema.MissingReference)
    # rendering again: every frame is up to date
    again = conform.render_timeline(recipe, path, output=tmp_path / "out" / "edit_comp.otio", handles=1)
    assert all(info["rendered"] == 0 for info in again.rendered.values())


def test_render_timeline_cli(tmp_path, capsys):
    from composite.cli import main

    path = _timeline(tmp_path)
    recipe = tmp_path / "r.yaml"
    recipe.write_text(yaml.safe_dump({"stages": {
        "plate": {"type": "ReadImage", "params": {"path": "x.####.exr"}},
        "write": {"type": "WriteImage", "inputs": {"image": "plate"}, "params": {"path": "r/comp.####.exr"}},
    }}))
    code = main(["render", str(recipe), "--timeline", str(path), "--shot", "sh010", "--json",
                 "--set", f"write.path={tmp_path}/r/comp.####.exr", "--timeline-out", str(tmp_path / "c.otio")])
    assert code == 0
    report = json.loads(capsys.readouterr().out)
    assert list(report["rendered"]) == ["000 sh010"] and report["output_timeline"] == str(tmp_path / "c.otio")
    assert (tmp_path / "r" / "comp.1010.exr").exists()  # a single shot keeps the path as given
    with pytest.raises(InputError, match="no shot named 'sh999'"):
        conform.render_timeline(str(recipe), path, shots=["sh999"])


def test_ntsc_rate_edl_keeps_its_timecodes(eval_data):
    tl, notes = conform.load_timeline(eval_data / "otio" / "edl" / "screening_example.edl", rate=23.976)
    shots = conform.timeline_shots(tl)
    assert shots[0].rate == pytest.approx(24000 / 1001)
    d = shots[0].as_dict()["source_range"]
    assert (d["in"], d["out"], d["duration"]) == ("01:00:04:05", "01:00:05:12", 31)
