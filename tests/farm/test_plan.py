"""Planning farm jobs: shots from timelines, {shot} paths, prep → comp steps, and bad input refused early."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import opentimelineio as otio
import pytest

from composite.core import InputError, RecipeError
from composite.farm import Shot, plan_job, read_timeline_shots
from composite.farm.plan import override_item
from composite.farm.timeline_jobs import write_timeline
from composite.graph.recipe import parse_overrides

from .helpers import comp_after_prep_recipe, comp_recipe, make_plates, prep_recipe, save


def run_cli(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "composite", *args], capture_output=True, text=True, cwd=cwd)


@pytest.fixture
def edit(tmp_path):
    """Two shots with their own plates, a {shot} comp recipe and a timeline of both."""
    a = make_plates(tmp_path / "plates" / "sh010", 1001, 1008, seed=1, name="sh010")
    b = make_plates(tmp_path / "plates" / "sh020", 1001, 1006, seed=2, name="sh020")
    recipe = save(tmp_path / "comp.yaml", comp_recipe("unset.####.exr", str(tmp_path / "renders/{shot}/{shot}.####.exr"),
                                                       frames=None))
    timeline = write_timeline(tmp_path / "edit.otio", [("sh010", a, 1002, 1007), ("sh020", b, 1001, 1006)])
    return tmp_path, recipe, timeline


def test_timeline_gives_one_step_per_shot_with_its_plate_frames_and_outputs(edit):
    tmp, recipe, timeline = edit
    job = plan_job(recipe, timeline=timeline, chunk_size=4)
    assert [s.name for s in job.steps] == ["sh010", "sh020"]
    a, b = job.steps
    assert a.frames == list(range(1002, 1008)) and b.frames == list(range(1001, 1007))
    assert [c[0] for c in a.chunks()] == [1002, 1006] and a.chunks()[-1] == [1006, 1007]
    assert a.outputs == [str(tmp / "renders" / "sh010" / "sh010.####.exr")]
    sets = dict(item.split("=", 1) for item in a.overrides)
    assert sets["plate.path"] == str(tmp / "plates" / "sh010" / "sh010.####.exr")
    assert sets["write.path"] == str(tmp / "renders" / "sh010" / "sh010.####.exr")
    # the resolved recipe is what a worker builds
    assert a.recipe["stages"]["write"]["params"]["path"] == sets["write.path"]
    assert a.command("1002-1005")[3:6] == ["render", str(recipe), "--frames"]
    assert job.task_count() == 4
    # handles extend each shot: sh010's plate has room (1001-1008), sh020's plate does not
    with pytest.raises(InputError, match=r"shot sh020 \(comp\): frames 1000,1007 are outside the range of plate"):
        plan_job(recipe, timeline=timeline, handles=1)
    one = plan_job(recipe, shots=read_timeline_shots(timeline)[:1], handles=1)
    assert one.steps[0].frames == list(range(1001, 1009))


def test_timeline_reader_handles_image_sequence_references_and_clip_metadata(tmp_path):
    rt, tr = otio.opentime.RationalTime, otio.opentime.TimeRange
    ref = otio.schema.ImageSequenceReference(target_url_base=f"file://{tmp_path}/plates/", name_prefix="sh030.",
                                             name_suffix=".exr", start_frame=1001, rate=24, frame_zero_padding=4,
                                             available_range=tr(rt(0, 24), rt(48, 24)))
    clip = otio.schema.Clip(name="sh030", media_reference=ref, source_range=tr(rt(8, 24), rt(16, 24)),
                            metadata={"composite": {"set": ["noise.amount=0.1"]}})
    tl = otio.schema.Timeline(name="e")
    tl.tracks.append(otio.schema.Track(children=[otio.schema.Gap(source_range=tr(rt(0, 24), rt(5, 24))), clip]))
    otio.adapters.write_to_file(tl, str(tmp_path / "e.otio"))
    (shot,) = read_timeline_shots(tmp_path / "e.otio")
    assert shot.name == "sh030" and shot.frames == (1009, 1024)
    assert shot.plate == f"{tmp_path}/plates/sh030.####.exr" and shot.overrides == ("noise.amount=0.1",)


def test_prep_and_comp_steps_depend_and_only_the_plate_reader_is_range_checked(edit):
    tmp, _, timeline = edit
    prep = save(tmp / "prep.yaml", prep_recipe(str(tmp / "renders/{shot}/prep.####.exr")))
    comp = save(tmp / "comp2.yaml", comp_after_prep_recipe(str(tmp / "renders/{shot}/prep.####.exr"),
                                                           str(tmp / "renders/{shot}/comp.####.exr")))
    job = plan_job(comp, timeline=timeline, prep=prep, chunk_size=3)
    assert [(s.name, s.depends_on) for s in job.steps] == [
        ("sh010_prep", []), ("sh010_comp", ["sh010_prep"]), ("sh020_prep", []), ("sh020_comp", ["sh020_prep"])]
    tasks = job.tasks()
    assert len(tasks) == 8 and tasks[2].after == ("sh010_prep",)
    assert job.step("sh020_comp").recipe["stages"]["prepped"]["params"]["path"] == \
        str(tmp / "renders" / "sh020" / "prep.####.exr")


def test_override_items_read_back_exactly():
    for value in ["plates/a.####.exr", "a: b", "1001", "yes", "x#1", "", "{shot}/%04d.exr", "[1, 2]"]:
        (node, param, back), = parse_overrides([override_item("plate", "path", value)])
        assert (node, param, back) == ("plate", "path", value)
    (_, _, back), = parse_overrides([override_item("move", "translate", [1.5, -2.0])])
    assert back == [1.5, -2.0]


def test_bad_input_is_refused_before_submission(edit):
    tmp, recipe, timeline = edit
    with pytest.raises(InputError, match="chunk size must be at least 1, got 0"):
        plan_job(recipe, timeline=timeline, chunk_size=0)
    with pytest.raises(InputError, match=r"shot sh010 \(comp\): frames 1009-1010 are outside the range of plate "
                                         r"\(.*sh010\.####\.exr: 1001-1008\)"):
        plan_job(recipe, shots=[Shot("sh010", tmp_path_plate(tmp, "sh010"), (1005, 1010))])
    with pytest.raises(InputError, match="no frames of this sequence exist on disk"):
        plan_job(recipe, shots=[Shot("sh099", str(tmp / "plates" / "none.####.exr"), (1001, 1002))])
    # plates only visible on the farm: the check can be turned off
    assert plan_job(recipe, shots=[Shot("sh099", str(tmp / "plates" / "none.####.exr"), (1001, 1002))],
                    check_media=False).steps[0].frames == [1001, 1002]
    bad = tmp / "broken.otio"
    bad.write_text("{ not a timeline")
    with pytest.raises(InputError, match="broken.otio: cannot read timeline"):
        plan_job(recipe, timeline=bad)
    with pytest.raises(InputError, match="nope.otio: timeline not found"):
        plan_job(recipe, timeline=tmp / "nope.otio")
    offline = otio.schema.Timeline(name="offline")
    rt, tr = otio.opentime.RationalTime, otio.opentime.TimeRange
    offline.tracks.append(otio.schema.Track(children=[otio.schema.Clip(
        name="sh050", media_reference=otio.schema.MissingReference(), source_range=tr(rt(0, 24), rt(10, 24)))]))
    otio.adapters.write_to_file(offline, str(tmp / "offline.otio"))
    with pytest.raises(InputError, match=r"offline.otio: clip 1 \(sh050, track \?\): cannot be rendered \(no media "
                                         r"reference; nothing to render\); relink the clip to its plate"):
        plan_job(recipe, timeline=tmp / "offline.otio")
    with pytest.raises(InputError, match="--frames cannot be combined with --timeline"):
        plan_job(recipe, timeline=timeline, frames="1001-1002")
    fixed = save(tmp / "fixed.yaml", comp_recipe("unset.####.exr", str(tmp / "renders" / "all.####.exr"), frames=None))
    with pytest.raises(InputError, match=r"output collision: sh010 and sh020 both write .*all\.1002\.exr; put "
                                         r"\{shot\} in the output path"):
        plan_job(fixed, timeline=timeline)
    with pytest.raises(InputError, match=r"shot sh010 \(comp\): the output .*sh010\.####\.exr is also read as a "
                                         r"plate; writing it would overwrite the footage"):
        plan_job(recipe, timeline=timeline, overrides=["write.path=" + str(tmp / "plates/{shot}/{shot}.####.exr")])
    dup = write_timeline(tmp / "dup.otio", [("sh010", tmp_path_plate(tmp, "sh010"), 1001, 1002),
                                            ("sh010", tmp_path_plate(tmp, "sh010"), 1003, 1004)])
    with pytest.raises(InputError, match="two shots are named 'sh010'"):
        plan_job(recipe, timeline=dup)
    with pytest.raises(RecipeError, match="--set names unknown stage 'grade'"):
        plan_job(recipe, timeline=timeline, overrides=["grade.gain=2"])


def tmp_path_plate(tmp, shot):
    return str(tmp / "plates" / shot / f"{shot}.####.exr")


def test_cli_refuses_bad_input_with_exit_code_2(edit, capsys):
    from .helpers import cli as main

    tmp, recipe, timeline = edit
    cases = [
        (["--engine", "deadline"], "unknown engine 'deadline'; engines: openjd, opencue"),
        (["--engine", "openjd", "--chunk-size", "0"], "chunk size must be at least 1"),
        (["--engine", "opencue", "--timeline", str(tmp / "comp.yaml")], "cannot read timeline"),
        (["--engine", "openjd", "--set", "write.path=" + str(tmp / "x.####.exr")], "output collision"),
    ]
    for extra, message in cases:
        args = ["farm", "export", str(recipe), "-o", str(tmp / "job.yaml")]
        if "--timeline" not in extra:
            args += ["--timeline", str(timeline)]
        assert main([*args, *extra]) == 2, extra
        assert message in capsys.readouterr().err
    single = save(tmp / "single.yaml", comp_recipe(tmp_path_plate(tmp, "sh010"), str(tmp / "o.####.exr"),
                                                   frames="1001-1008"))
    res = run_cli("farm", "export", str(single), "--engine", "openjd", "--frames", "1007-1012", "-o", str(tmp / "j.yaml"))
    assert res.returncode == 2 and "frames 1009-1012 are outside the range of plate" in res.stderr
    assert not (tmp / "j.yaml").exists() and not (tmp / "job.yaml").exists()


def test_350_shot_timeline_exports_as_one_job_quickly(tmp_path):
    from composite.farm.openjd import job_template, validate_template

    plate = make_plates(tmp_path / "plates", 1001, 1100, size=(4, 4))
    shots = [(f"sh{i * 10:04d}", plate, 1001 + (i % 80), 1001 + (i % 80) + 12) for i in range(350)]
    timeline = write_timeline(tmp_path / "reel.otio", shots)
    prep = save(tmp_path / "prep.yaml", prep_recipe(str(tmp_path / "renders/{shot}/prep.####.exr")))
    comp = save(tmp_path / "comp.yaml", comp_after_prep_recipe(str(tmp_path / "renders/{shot}/prep.####.exr"),
                                                               str(tmp_path / "renders/{shot}/comp.####.exr")))
    t0 = time.perf_counter()
    job = plan_job(comp, timeline=timeline, prep=prep, chunk_size=5)
    template = job_template(job, template_dir=tmp_path)
    validate_template(template)
    elapsed = time.perf_counter() - t0
    assert len(job.steps) == 700 and len(template["steps"]) == 700 and job.task_count() == 350 * 2 * 3
    assert template["steps"][1]["dependencies"] == [{"dependsOn": "sh0000_prep"}]
    assert template["steps"][699]["name"] == "sh3490_comp"
    assert elapsed < 20, f"planning and exporting 350 shots took {elapsed:.1f} s"
    print(f"350 shots: planned, exported and validated in {elapsed:.2f} s")
    assert os.path.exists(plate.replace("####", "1100"))
