"""Open Job Description export: templates pass `openjd check`, and `openjd run` renders the same files as a
direct `composite render`."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from composite.farm import plan_job, render_job
from composite.farm.openjd import job_template, openjd_range, write_template
from composite.farm.timeline_jobs import write_timeline
from composite.io.exr import read_exr

from .helpers import cli as main
from .helpers import comp_after_prep_recipe, comp_recipe, make_plates, prep_recipe, read_tree, save

OPENJD = Path(sys.executable).with_name("openjd")
pytestmark = pytest.mark.skipif(not OPENJD.exists(), reason="openjd-cli is not installed next to this Python")


def openjd(*args, cwd=None):
    return subprocess.run([str(OPENJD), *map(str, args)], capture_output=True, text=True, cwd=cwd, timeout=300)


def test_openjd_range_expressions():
    assert openjd_range([1001, 1002, 1003, 1007, 1009, 1010]) == "1001-1003,1007,1009-1010"
    assert openjd_range([5]) == "5"


def test_single_shot_template_and_openjd_run_match_a_direct_render(tmp_path):
    plate = make_plates(tmp_path / "plates", 1001, 1004)
    recipe = save(tmp_path / "sh010.yaml", comp_recipe(plate, str(tmp_path / "out" / "sh010.####.exr"),
                                                       frames="1001-1004"))
    job = plan_job(recipe, chunk_size=2)
    path = write_template(job, tmp_path / "sh010.template.yaml")
    template = yaml.safe_load(path.read_text())
    assert template["specificationVersion"] == "jobtemplate-2023-09"
    assert template["extensions"] == ["TASK_CHUNKING"]
    params = {p["name"]: p for p in template["parameterDefinitions"]}
    assert params["Recipe"]["default"] == "sh010.yaml" and params["Recipe"]["type"] == "PATH"
    assert params["Frames"]["default"] == "1001-1004" and params["ChunkSize"]["default"] == 2
    assert params["Output"]["default"] == "out/sh010.####.exr" and params["Output"]["dataFlow"] == "OUT"
    (step,) = template["steps"]
    frame = step["parameterSpace"]["taskParameterDefinitions"][0]
    assert frame == {"name": "Frame", "type": "CHUNK[INT]", "range": "{{Param.Frames}}",
                     "chunks": {"defaultTaskCount": "{{Param.ChunkSize}}", "rangeConstraint": "CONTIGUOUS"}}
    run = step["script"]["actions"]["onRun"]
    assert run["command"] == "{{Param.Python}}"
    assert run["args"][:6] == ["-m", "composite", "render", "{{Param.Recipe}}", "--frames", "{{Task.Param.Frame}}"]
    assert run["args"][-4:] == ["--set", "write.path={{Param.Output}}", "--progress", "log"]
    env = template["jobEnvironments"][0]
    assert env["variables"]["COMPOSITE_PROGRESS_PROTOCOL"] == "openjd"
    check = openjd("check", path)
    assert check.returncode == 0, check.stdout + check.stderr
    # a template elsewhere holds absolute paths (the specification forbids PATH defaults outside its folder)
    elsewhere = yaml.safe_load(write_template(job, tmp_path / "jobs" / "t.yaml").read_text())
    params2 = {p["name"]: p for p in elsewhere["parameterDefinitions"]}
    assert params2["Recipe"] == {"name": "Recipe", "type": "STRING", "description": "composite recipe file "
                                 "(absolute path)", "default": str(recipe), "minLength": 1}
    # a Deadline Cloud job bundle: PATH parameters, values beside the template
    assert main(["farm", "export", str(recipe), "--engine", "openjd", "--chunk-size", "2",
                 "-o", str(tmp_path / "bundle")]) == 0
    values = yaml.safe_load((tmp_path / "bundle" / "parameter_values.yaml").read_text())
    assert values == {"parameterValues": [{"name": "Recipe", "value": str(recipe)},
                                          {"name": "Output", "value": str(tmp_path / "out" / "sh010.####.exr")}]}
    bundled = yaml.safe_load((tmp_path / "bundle" / "template.yaml").read_text())
    assert [p["type"] for p in bundled["parameterDefinitions"] if p["name"] in ("Recipe", "Output")] == ["PATH"] * 2
    check = openjd("check", tmp_path / "bundle" / "template.yaml")
    assert check.returncode == 0, check.stdout + check.stderr

    # the reference: a direct render with the step's settings
    sets = [a for item in job.steps[0].overrides for a in ("--set", item)]
    assert main(["render", str(recipe), "--frames", "1001-1004", "--progress", "log", *sets]) == 0
    direct = read_tree(tmp_path / "out")
    assert len(direct) == 4
    shutil.rmtree(tmp_path / "out")
    res = openjd("run", path, cwd=tmp_path)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    assert "Chunks run: 2" in res.stdout
    assert "openjd_progress: 100.0" in res.stdout and "composite: frame 1004 finished in" in res.stdout
    assert read_tree(tmp_path / "out") == direct


def test_timeline_job_with_prep_and_comp_runs_in_dependency_order(tmp_path):
    a = make_plates(tmp_path / "plates" / "sh010", 1001, 1003, seed=1, name="sh010")
    b = make_plates(tmp_path / "plates" / "sh020", 1001, 1003, seed=2, name="sh020")
    timeline = write_timeline(tmp_path / "edit.otio", [("sh010", a, 1001, 1003), ("sh020", b, 1002, 1003)])
    prep = save(tmp_path / "prep.yaml", prep_recipe(str(tmp_path / "renders/{shot}/prep.####.exr")))
    comp = save(tmp_path / "comp.yaml", comp_after_prep_recipe(str(tmp_path / "renders/{shot}/prep.####.exr"),
                                                               str(tmp_path / "renders/{shot}/comp.####.exr")))
    job = plan_job(comp, timeline=timeline, prep=prep, chunk_size=4)
    path = tmp_path / "edit.template.json"
    assert main(["farm", "export", str(comp), "--engine", "openjd", "--timeline", str(timeline), "--prep", str(prep),
                 "--chunk-size", "4", "-o", str(path)]) == 0
    template = yaml.safe_load(path.read_text())
    assert [s["name"] for s in template["steps"]] == ["sh010_prep", "sh010_comp", "sh020_prep", "sh020_comp"]
    assert template["steps"][3]["dependencies"] == [{"dependsOn": "sh020_prep"}]
    ranges = [s["parameterSpace"]["taskParameterDefinitions"][0]["range"] for s in template["steps"]]
    assert ranges == ["1001-1003", "1001-1003", "1002-1003", "1002-1003"]
    params = {p["name"]: p for p in template["parameterDefinitions"]}
    assert "Frames" not in params and params["PrepRecipe"]["default"] == "prep.yaml"
    assert params["Recipe"] == {"name": "Recipe", "type": "PATH", "objectType": "FILE", "dataFlow": "IN",
                                "description": "composite recipe file", "default": "comp.yaml"}
    args = [s["script"]["actions"]["onRun"]["args"] for s in template["steps"]]
    assert [a[3] for a in args] == ["{{Param.PrepRecipe}}", "{{Param.Recipe}}"] * 2
    assert f"plate.path={tmp_path}/plates/sh020/sh020.####.exr" in args[2]
    assert f"prepped.path={tmp_path}/renders/sh020/prep.####.exr" in args[3]
    # the explicit-chunk variant needs no extension
    listed = job_template(job, chunking="list", template_dir=tmp_path)
    assert "extensions" not in listed
    assert listed["steps"][0]["parameterSpace"]["taskParameterDefinitions"][0] == {
        "name": "Frame", "type": "STRING", "range": ["1001-1003"]}
    (tmp_path / "listed.yaml").write_text(yaml.safe_dump(listed))
    for p in (path, tmp_path / "listed.yaml"):
        check = openjd("check", p)
        assert check.returncode == 0, check.stdout + check.stderr

    # run shot sh020's comp step with the step it depends on, as a worker session would
    res = openjd("run", path, "--step", "sh020_comp", "--run-dependencies", cwd=tmp_path)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    order = [line.split("'")[1] for line in res.stdout.splitlines() if "Running step '" in line]
    assert order == ["sh020_prep", "sh020_comp"]
    farm = {k: read_exr(tmp_path / "renders" / k).pixels for k in read_tree(tmp_path / "renders")}
    assert sorted(farm) == [f"sh020/{k}.{t}.exr" for k in ("comp", "prep") for t in (1002, 1003)]
    os.rename(tmp_path / "renders", tmp_path / "farm")
    summary = render_job(job)  # the same job rendered here, in this process
    assert summary.ok and sum(len(s.rendered) for s in summary.steps) == 10
    for k, px in farm.items():
        np.testing.assert_array_equal(read_exr(tmp_path / "renders" / k).pixels, px, err_msg=k)
