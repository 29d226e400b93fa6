"""Show reports from folders and timelines: numbers, Markdown, JSON, thumbnail sheets, OTIO annotations."""

from __future__ import annotations

import json
import os

import cv2
import numpy as np
import opentimelineio as otio

from composite.cli.app import run as main
from composite.graph.recipe import pipeline_from_recipe
from composite.provenance import report as rp

from .helpers import comp_recipe, write_plates


def _show(tmp_path):
    """Two shots: sh010 with a generated element (alpha 0.5, then 1.0 on frame 1003), sh020 a plain plate."""
    plate = write_plates(tmp_path / "plates")
    r1 = comp_recipe(plate, str(tmp_path / "renders" / "sh010" / "sh010.####.exr"), element={"alpha": 0.5})
    pipeline_from_recipe(r1).render("1001-1004", progress=False)
    r1b = comp_recipe(plate, str(tmp_path / "renders" / "sh010" / "sh010.####.exr"), element={"alpha": 1.0})
    pipeline_from_recipe(r1b).render("1003", progress=False)
    r2 = {"schema": "composite.pipeline/1", "name": "sh020", "stages": {
        "plate": {"type": "ReadImage", "params": {"path": plate}},
        "write": {"type": "WriteImage", "inputs": {"image": "plate"},
                  "params": {"path": str(tmp_path / "renders" / "sh020" / "sh020.####.exr")}}}}
    pipeline_from_recipe(r2).render("1001-1003", progress=False)
    return tmp_path / "renders"


def test_folder_report_numbers(tmp_path):
    rep = rp.collect(_show(tmp_path))
    assert [s.shot for s in rep.shots] == ["sh010", "sh020"]
    s1, s2 = rep.shots
    # frame means: 0.125 (96 px at 0.5 in 384) x3 and 0.25 (at 1.0) on 1003 → mean 0.15625; peak 1.0
    assert (s1.frames, s1.generated_frames, s1.ai_coverage_mean, s1.ai_coverage_peak) == (4, 4, 0.15625, 1.0)
    assert s1.models == ["test_generator (sam_vit_b)"] and s1.peak_frame == 1003
    assert (s2.frames, s2.generated_frames, s2.ai_coverage_mean, s2.ai_coverage_peak) == (3, 0, 0.0, 0.0)
    assert s2.digital_source_type.endswith("/digitalCapture")
    assert rep.totals == {"shots": 2, "shots_with_manifest": 2, "shots_with_generated_pixels": 1, "frames": 7,
                          "generated_frames": 4, "models": ["test_generator (sam_vit_b)"], "errors": 0}
    md = rp.to_markdown(rep)
    assert "| sh010 |" in md and "| 4 | 4 | 15.62% | 100.00% | test_generator (sam_vit_b) |" in md
    assert "compositeWithTrainedAlgorithmicMedia" in md and "| sh020 |" in md
    data = json.loads(rp.to_json(rep))
    assert data["schema"] == "composite.provenance-report/1" and data["shots"][0]["has_generated_pixels"] is True


def test_thumbnail_sheet_shows_the_frame_and_its_coverage_matte(tmp_path):
    rep = rp.collect(_show(tmp_path))
    path = rp.thumbnail_sheet(rep, tmp_path / "sheet.png", height=48)
    sheet = cv2.imread(str(path))[..., ::-1]
    assert sheet.shape[0] == 2 * 48 + 8  # two rows and a gap
    # row 1: the 24x16 frame scaled to 72x48, then a gap of 8, then the matte of frame 1003
    matte = sheet[:48, 72 + 8:72 + 8 + 72].astype(np.float32) / 255
    expected = np.zeros((16, 24), np.float32)
    expected[4:12, 8:20] = 1.0  # the element (12x8 at x 6, moved 2 px right), fully generated
    ref = cv2.resize(expected, (72, 48), interpolation=cv2.INTER_AREA)
    assert np.abs(matte[..., 0] - ref).max() < 1.5 / 255
    # row 2 (no generated pixels): an all-black matte
    assert sheet[56:104, 80:152].max() == 0


def test_timeline_report_and_clip_annotations(tmp_path, capsys):
    renders = _show(tmp_path)
    tl = otio.schema.Timeline("show")
    track = otio.schema.Track("V1")
    tl.tracks.append(track)
    for name, first, count in (("sh010", 1001, 4), ("sh020", 1001, 3), ("sh030", 1001, 2)):
        ref = otio.schema.ImageSequenceReference(
            target_url_base=(renders / name).resolve().as_uri() + "/", name_prefix=f"{name}.", name_suffix=".exr",
            start_frame=first, frame_zero_padding=4, rate=24,
            available_range=otio.opentime.TimeRange(otio.opentime.RationalTime(first, 24),
                                                    otio.opentime.RationalTime(count, 24)))
        track.append(otio.schema.Clip(name=name, media_reference=ref,
                                      source_range=otio.opentime.TimeRange(otio.opentime.RationalTime(first, 24),
                                                                           otio.opentime.RationalTime(count, 24))))
    # a conformed timeline names the outputs in clip metadata (as composite render --timeline writes it)
    track[1].metadata["composite"] = {"outputs": {"write": str(renders / "sh020" / "sh020.####.exr")}}
    path = tmp_path / "show.otio"
    otio.adapters.write_to_file(tl, str(path))
    rep, timeline, by_clip = rp.collect_timeline(path)
    assert [s.shot for s in rep.shots] == ["sh010", "sh020", "sh030"]
    assert rep.shots[2].manifest is None and "no provenance manifest" in rep.shots[2].errors[0]
    assert rp.annotate_timeline(timeline, by_clip) == 2
    prov = timeline.tracks[0][0].metadata["composite"]["provenance"]
    assert prov["has_generated_pixels"] is True and prov["ai_coverage_peak"] == 1.0
    assert prov["outputs"][0]["frames"] == 4 and list(prov["models"]) == ["test_generator (sam_vit_b)"]
    assert timeline.tracks[0][1].metadata["composite"]["outputs"]  # the conform step's data is kept
    assert timeline.tracks[0][1].metadata["composite"]["provenance"]["has_generated_pixels"] is False
    # the command line: exit 2 because sh030 has no manifest; the annotated copy is written anyway
    out = tmp_path / "annotated.otio"
    code = main(["provenance", "report", str(path), "--json", "--annotate", str(out),
                 "--markdown", str(tmp_path / "r.md"), "--sheet", str(tmp_path / "s.png")])
    assert code == 2
    data = json.loads(capsys.readouterr().out)
    assert data["totals"]["shots_with_generated_pixels"] == 1 and data["totals"]["errors"] == 1
    back = otio.adapters.read_from_file(str(out))
    clips = list(back.find_clips())
    assert clips[0].metadata["composite"]["provenance"]["ai_coverage_peak"] == 1.0
    assert "provenance" not in clips[2].metadata.get("composite", {})
    assert os.path.getsize(tmp_path / "s.png") > 0 and "| sh030 |" in (tmp_path / "r.md").read_text()


def test_annotate_with_given_manifests_and_report_exit_codes(tmp_path, capsys):
    renders = _show(tmp_path)
    from composite.provenance import manifest as mf

    m = mf.assemble(renders / "sh010" / "sh010.####.exr")
    tl = otio.schema.Timeline("t")
    tr = otio.schema.Track()
    tl.tracks.append(tr)
    clip = otio.schema.Clip(name="sh010", media_reference=otio.schema.ExternalReference(
        target_url=str(renders / "sh010" / "sh010.####.exr")))
    tr.append(clip)
    assert rp.annotate_timeline(tl, [m]) == 1
    assert clip.metadata["composite"]["provenance"]["outputs"][0]["manifest_id"] == m["manifest_id"]
    assert main(["provenance", "report", str(renders)]) == 0
    assert "| sh010 |" in capsys.readouterr().out
    # a changed frame makes the report fail
    frame = renders / "sh020" / "sh020.1002.exr"
    data = bytearray(frame.read_bytes())
    data[-10] ^= 0x01
    frame.write_bytes(bytes(data))
    assert main(["provenance", "report", str(renders), "--json"]) == 2
    out = json.loads(capsys.readouterr().out)
    assert "sha256" in out["shots"][1]["errors"][0]
    # the quick check compares sizes only: the same-size change goes unnoticed, a missing frame does not
    assert rp.collect(renders, checksums=False).ok
    os.remove(frame)
    assert main(["provenance", "report", str(renders), "--no-checksums"]) == 2
    assert main(["provenance", "merge", str(renders / "sh010" / "sh010.####.exr")]) == 0
    assert (renders / "sh010" / "sh010.exr.provenance.json").is_file()


def test_report_on_a_timeline_conformed_by_render_timeline(tmp_path):
    from composite.io import conform

    for name, value in (("sh010", 0.2), ("sh020", 0.4)):
        write_plates(tmp_path / "plates", name=name, frames=range(1001, 1009), value=value)
    tl = otio.schema.Timeline("edit")
    track = otio.schema.Track("V1")
    tl.tracks.append(track)
    TR, RT = otio.opentime.TimeRange, otio.opentime.RationalTime
    for name in ("sh010", "sh020"):
        ref = otio.schema.ImageSequenceReference(
            target_url_base=(tmp_path / "plates").as_uri() + "/", name_prefix=f"{name}.", name_suffix=".exr",
            start_frame=1001, rate=24, frame_zero_padding=4, available_range=TR(RT(0, 24), RT(8, 24)))
        track.append(otio.schema.Clip(name, media_reference=ref, source_range=TR(RT(2, 24), RT(3, 24))))
    path = tmp_path / "edit.otio"
    otio.adapters.write_to_file(tl, str(path))
    recipe = comp_recipe("unused.####.exr", str(tmp_path / "renders" / "{shot}" / "comp.####.exr"))
    recipe.pop("frames")
    recipe["stages"]["gen"]["params"] = {"alpha": 0.5}
    result = conform.render_timeline(recipe, path, output=tmp_path / "edit_comp.otio")
    assert sorted(result.rendered) == ["000 sh010", "001 sh020"]
    rep, timeline, by_clip = rp.collect_timeline(tmp_path / "edit_comp.otio")
    assert [(s.shot, s.frames, s.generated_frames, s.ai_coverage_peak) for s in rep.shots] == \
        [("sh010", 3, 3, 0.5), ("sh020", 3, 3, 0.5)]
    assert rep.ok and rp.annotate_timeline(timeline, by_clip) == 2
    meta = list(timeline.find_clips())[0].metadata["composite"]
    assert meta["provenance"]["outputs"][0]["ai_coverage_mean"] == 0.125 and meta["frames"] == "1003-1005"
