"""OpenCue export: a PyOutline job serialised without a Cuebot, one layer per step; its commands render
the same files as a direct render."""

from __future__ import annotations

import os
import subprocess
import xml.etree.ElementTree as ET

import pytest

from composite.farm import plan_job
from composite.farm.opencue import build_outline, job_spec, step_command
from composite.farm.timeline_jobs import write_timeline

from .helpers import cli as main
from .helpers import comp_after_prep_recipe, make_plates, prep_recipe, read_tree, save

pytest.importorskip("outline")


@pytest.fixture
def edit(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))  # nothing may be written to the user's folder
    a = make_plates(tmp_path / "plates" / "sh010", 1001, 1004, seed=1, name="sh010")
    b = make_plates(tmp_path / "plates" / "sh020", 1001, 1004, seed=2, name="sh020")
    timeline = write_timeline(tmp_path / "edit.otio", [("sh010", a, 1001, 1004), ("sh020", b, 1002, 1004)])
    prep = save(tmp_path / "prep.yaml", prep_recipe(str(tmp_path / "renders/{shot}/prep.####.exr")))
    comp = save(tmp_path / "comp.yaml", comp_after_prep_recipe(str(tmp_path / "renders/{shot}/prep.####.exr"),
                                                               str(tmp_path / "renders/{shot}/comp.####.exr")))
    return tmp_path, timeline, prep, comp


def test_serialised_job_has_a_layer_per_step_with_range_chunk_and_dependencies(edit):
    tmp, timeline, prep, comp = edit
    job = plan_job(comp, timeline=timeline, prep=prep, chunk_size=3)
    ol = build_outline(job, show="battle", user="td")
    assert [layer.get_name() for layer in ol.get_layers()] == ["sh010_prep", "sh010_comp", "sh020_prep", "sh020_comp"]
    out = tmp / "job.xml"
    assert main(["farm", "export", str(comp), "--engine", "opencue", "--timeline", str(timeline), "--prep", str(prep),
                 "--chunk-size", "3", "--show", "battle", "--max-retries", "4", "-o", str(out)]) == 0
    text = out.read_text()
    assert text.startswith('<?xml version="1.0"?><!DOCTYPE spec PUBLIC "SPI Cue  Specification Language" '
                           '"http://localhost:8080/spcue/dtd/cjsl-1.15.dtd">')
    spec = ET.fromstring(text.split(">", 2)[2])
    assert spec.findtext("show") == "battle"
    jobs = spec.findall("job")
    assert len(jobs) == 1 and jobs[0].get("name") == "edit" and jobs[0].findtext("maxretries") == "4"
    layers = jobs[0].findall("layers/layer")
    assert [(la.get("name"), la.findtext("range"), la.findtext("chunk")) for la in layers] == [
        ("sh010_prep", "1001-1004", "3"), ("sh010_comp", "1001-1004", "3"),
        ("sh020_prep", "1002-1004", "3"), ("sh020_comp", "1002-1004", "3")]
    cmd = layers[1].findtext("cmd")
    assert " -m composite render " in cmd and "--frames '#FRAME_START#-#FRAME_END#'" in cmd
    assert f"'prepped.path={tmp}/renders/sh010/prep.####.exr'" in cmd
    assert {k.get("name"): k.text for k in layers[1].findall("env/key")}["COMPOSITE_SHOT"] == "sh010"
    deps = [(d.get("type"), d.findtext("deplayer"), d.findtext("onlayer")) for d in spec.findall("depends/depend")]
    assert deps == [("LAYER_ON_LAYER", "sh010_comp", "sh010_prep"), ("LAYER_ON_LAYER", "sh020_comp", "sh020_prep")]
    assert not (tmp / "home").exists()  # no PyOutline session folder was created


def test_layer_commands_render_the_same_files_as_a_direct_render(edit):
    tmp, timeline, prep, comp = edit
    job = plan_job(comp, timeline=timeline, prep=prep, chunk_size=2)
    job.steps = job.steps[:2]  # shot sh010: prep then comp, two chunks each
    # run every chunk as an RQD host would: tokens replaced, through a shell, layers in dependency order
    # (a layer's chunks run side by side, on two hosts)
    for step in job.steps:
        cmd = step_command(step)
        procs = []
        for chunk in step.chunks():
            line = cmd.replace("#FRAME_START#", str(chunk[0])).replace("#FRAME_END#", str(chunk[-1]))
            procs.append(subprocess.Popen(["/bin/sh", "-c", line], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                          text=True, cwd=tmp))
        for proc in procs:
            _, err = proc.communicate(timeout=120)
            assert proc.returncode == 0, err
    farm = read_tree(tmp / "renders")
    assert len(farm) == 8
    os.rename(tmp / "renders", tmp / "farm")
    # the same steps rendered directly, in order, one call per step
    for step in job.steps:
        sets = [a for item in step.overrides for a in ("--set", item)]
        assert main(["render", step.recipe_path, "--frames", step.frame_range, "--progress", "log", *sets]) == 0
    direct = read_tree(tmp / "renders")
    prep_files = [k for k in farm if "/prep." in k]
    assert [direct[k] == farm[k] for k in prep_files] == [True] * 4  # bytes, fingerprints included
    # comp files record their input's fingerprint, which names the prep file's modification time: compare pixels
    from composite.io.exr import read_exr

    for k in farm:
        if "/comp." in k:
            assert (read_exr(tmp / "renders" / k).pixels == read_exr(tmp / "farm" / k).pixels).all(), k


def test_env_setup_wraps_the_command(edit):
    tmp, timeline, prep, comp = edit
    job = plan_job(comp, timeline=timeline, prep=prep)
    cmd = step_command(job.steps[0], python="python3", env_setup="source /venvs/composite/bin/activate")
    assert cmd.startswith("bash -c 'source /venvs/composite/bin/activate\nexec python3 -m composite render ")
    xml = job_spec(job, env_setup="source /venvs/composite/bin/activate", python="python3")
    assert xml.count("source /venvs/composite/bin/activate") == 4
