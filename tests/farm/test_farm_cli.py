"""`composite farm render` and `composite farm status`: a whole timeline rendered here, what failed, what is left."""

from __future__ import annotations

import json
import shutil

from composite.farm.timeline_jobs import write_timeline

from .helpers import cli as main
from .helpers import comp_recipe, make_plates, save


def test_render_summarises_failures_and_status_lists_what_is_missing(tmp_path, capsys):
    a = make_plates(tmp_path / "plates" / "sh010", 1001, 1004, seed=1, name="sh010")
    b = make_plates(tmp_path / "plates" / "sh020", 1001, 1004, seed=2, name="sh020")
    timeline = write_timeline(tmp_path / "edit.otio", [("sh010", a, 1001, 1004), ("sh020", b, 1001, 1004)])
    recipe = save(tmp_path / "comp.yaml", comp_recipe("unset.####.exr", str(tmp_path / "renders/{shot}/{shot}.####.exr"),
                                                       frames=None))
    args = [str(recipe), "--timeline", str(timeline), "--chunk-size", "2"]
    missing = b.replace("####", "1004")
    shutil.move(missing, tmp_path / "spare.exr")  # lost after the job was planned (checked here: refused)
    assert main(["farm", "render", *args]) == 2
    assert "frames 1004 are outside the range of plate" in capsys.readouterr().err
    shutil.move(tmp_path / "spare.exr", missing)
    # a frame in the middle goes missing instead: that chunk fails, the rest renders
    middle = b.replace("####", "1002")
    shutil.move(middle, tmp_path / "spare.exr")
    assert main(["farm", "render", *args, "--json", "--retries", "0", "--no-media-check"]) == 1
    summary = json.loads(capsys.readouterr().out)
    assert summary["ok"] is False and summary["failed_shots"] == ["sh020"]
    steps = {s["step"]: s for s in summary["steps"]}
    assert steps["sh010"]["rendered"] == "1001-1004" and steps["sh010"]["ok"]
    # frame 1001 was written before 1002 failed in the same chunk
    assert steps["sh020"]["rendered"] == "1001,1003-1004" and steps["sh020"]["failed"] == "1002"
    assert "sh020.1002.exr: frame 1002 is missing" in steps["sh020"]["errors"][0]
    assert main(["farm", "status", *args, "--json", "--no-media-check"]) == 1
    status = json.loads(capsys.readouterr().out)
    assert status["incomplete_shots"] == ["sh020"]
    assert [(s["step"], s["up_to_date"], s["missing"]) for s in status["steps"]] == [
        ("sh010", "1001-1004", ""), ("sh020", "1001,1003-1004", "1002")]
    # the plate comes back: only the failed frames render, and the job is complete
    shutil.move(tmp_path / "spare.exr", middle)
    assert main(["farm", "render", *args, "--json"]) == 0
    captured = capsys.readouterr()
    again = json.loads(captured.out)
    # progress counts each shot's frames once: 8 frames in all, however the chunks went
    assert "(8/8, 100.0%)" in captured.err and "(9/8" not in captured.err
    assert again["rendered_frames"] == 1 and again["up_to_date_frames"] == 7
    assert main(["farm", "status", *args]) == 0
    assert "job edit: complete" in capsys.readouterr().out
