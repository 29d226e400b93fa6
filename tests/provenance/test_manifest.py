"""Provenance manifests written by renders: content, chunk independence, skipped frames, tampering."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np
import pytest

from composite.core.errors import InputError
from composite.graph.recipe import pipeline_from_recipe
from composite.io.exr import read_exr, write_exr
from composite.provenance import iptc
from composite.provenance import manifest as mf
from composite.provenance.verify import verify_path

from .helpers import SAM_B_SHA256, comp_recipe, write_plates


def _render(recipe, frames="1001-1004", **kw):
    p = pipeline_from_recipe(recipe)
    return p, p.render(frames, progress=False, **kw)


def _sha(path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _deterministic(data):
    return {k: v for k, v in data.items() if k != "render"}


def test_manifest_records_recipe_inputs_generators_coverage_and_software(tmp_path):
    plate = write_plates(tmp_path / "plates")
    out = str(tmp_path / "renders" / "sh010.####.exr")
    p, report = _render(comp_recipe(plate, out, element={"alpha": 0.5}))
    side = tmp_path / "renders" / "sh010.exr.provenance"
    assert [Path(w).name for w in report.written if w.endswith(".json")] == ["1001-1004.json"]
    part = mf.load_manifest(side / "1001-1004.json")
    assert part["schema"] == "composite.provenance/1" and part["kind"] == "part"
    assert part["manifest_id"] == mf.manifest_id("sh010", "write", out)
    # recipe and its fingerprint
    (fp, recipe), = part["recipes"].items()
    assert recipe["recipe"] == p.to_recipe()
    from composite.graph.executor import recipe_fingerprint

    assert fp == recipe_fingerprint(p.to_recipe(), p.source)
    # input plates with checksums computed independently
    files = part["inputs"]["plate"]["files"]
    assert sorted(files) == [os.path.abspath(f"{tmp_path}/plates/plate.{t}.exr") for t in range(1001, 1005)]
    for path, desc in files.items():
        assert desc == {"sha256": _sha(path), "size": os.path.getsize(path)}
    # each frame: its file, checksum, fingerprint, coverage (96 element px at alpha 0.5 in 384)
    for t in range(1001, 1005):
        rec = part["frames"][str(t)]
        assert rec["file"] == f"sh010.{t}.exr"
        assert part["files"][rec["file"]]["sha256"] == _sha(tmp_path / "renders" / rec["file"])
        assert rec["fingerprint"] == p.fingerprint("write", t)
        assert rec["ai_coverage"] == {"mean": 0.125, "max": 0.5, "area": 0.25}
        assert rec["inputs"] == {"plate": [os.path.abspath(f"{tmp_path}/plates/plate.{t}.exr")]}
        assert rec["digital_source_type"] == iptc.COMPOSITE_WITH_TRAINED
    # the generator: record, model card resolved and verified against the registry
    (gid, gen), = part["generators"].items()
    assert gen["status"] == "verified" and gen["card"]["name"] == "sam_vit_b"
    assert gen["record"]["prompt"] == "an army on a hill" and gen["record"]["seed"] == 7
    assert gen["card"]["sha256"] == SAM_B_SHA256
    assert part["summary"]["models"] == ["test_generator (sam_vit_b)"]
    assert part["summary"]["ai_coverage_mean"] == 0.125 and part["summary"]["ai_coverage_peak"] == 0.5
    assert part["software"]["numpy"] == np.__version__
    assert {"composite", "python", "OpenEXR"} <= set(part["software"])
    assert part["issues"] == []
    # the frame header names the manifest and carries the coverage summary
    head = json.loads(read_exr(tmp_path / "renders" / "sh010.1002.exr").metadata["composite:provenance"])
    assert head["manifest_id"] == part["manifest_id"] and head["manifest"] == "sh010.exr.provenance"
    assert head["generators"] == [{"id": gid, "backend": "test_generator", "generated": True, "model": "sam_vit_b"}]
    assert head["recipe_fingerprint"] == fp and head["frame"] == 1002


def test_chunked_renders_write_parts_that_assemble_to_the_same_manifest(tmp_path):
    plate = write_plates(tmp_path / "plates", frames=range(1001, 1007))
    recipe = comp_recipe(plate, str(tmp_path / "r" / "sh010.####.exr"), frames="1001-1006")
    _render(recipe, "1001-1006")
    whole = mf.assemble(tmp_path / "r" / "sh010.exr.provenance")
    frames = {t: _sha(tmp_path / "r" / f"sh010.{t}.exr") for t in range(1001, 1007)}
    os.rename(tmp_path / "r", tmp_path / "whole")
    _render(recipe, "1001-1006", chunk_size=2, workers=2)  # two worker processes write parts at once
    parts = sorted(p.name for p in (tmp_path / "r" / "sh010.exr.provenance").iterdir())
    assert parts == ["1001-1002.json", "1003-1004.json", "1005-1006.json"]
    chunked = mf.assemble(tmp_path / "r" / "sh010.exr.provenance", write=True)
    assert len(chunked["render"]["parts"]) == 3 and len(whole["render"]["parts"]) == 1
    assert _deterministic(chunked) == _deterministic(whole)
    # frames (provenance headers included) are bit-identical however the shot was chunked
    assert {t: _sha(tmp_path / "r" / f"sh010.{t}.exr") for t in range(1001, 1007)} == frames
    assert (tmp_path / "r" / "sh010.exr.provenance.json").is_file()
    assert _deterministic(mf.load_manifest(tmp_path / "r" / "sh010.exr.provenance.json")) == _deterministic(whole)


def test_rerendering_up_to_date_frames_keeps_their_provenance(tmp_path):
    plate = write_plates(tmp_path / "plates")
    recipe = comp_recipe(plate, str(tmp_path / "r" / "s.####.exr"))
    _render(recipe)
    before = mf.assemble(tmp_path / "r" / "s.exr.provenance")
    p, report = _render(recipe, "1001-1002")  # nothing to do: both frames are up to date
    assert report.skipped == [1001, 1002] and report.rendered == []
    again = mf.load_manifest(tmp_path / "r" / "s.exr.provenance" / "1001-1002.json")
    for t in ("1001", "1002"):
        assert again["frames"][t] == before["frames"][t]
    after = mf.assemble(tmp_path / "r" / "s.exr.provenance")
    assert _deterministic(after) == _deterministic(before)


def test_temporal_windows_list_every_plate_frame_read(tmp_path):
    import tests.graph.helpers  # noqa: F401  (registers TestTemporalMean)

    plate = write_plates(tmp_path / "plates")
    extra = {"avg": {"type": "TestTemporalMean", "inputs": {"image": "plate"}, "params": {"radius": 1}},
             "comp": {"type": "Merge", "inputs": {"a": "move", "b": "avg"}}}
    recipe = comp_recipe(plate, str(tmp_path / "r" / "s.####.exr"), extra=extra)
    _render(recipe, "1001-1002")
    rec = mf.assemble(tmp_path / "r" / "s.####.exr")["frames"]
    names = {t: [os.path.basename(f) for f in rec[t]["inputs"]["plate"]] for t in rec}
    assert names == {"1001": ["plate.1001.exr", "plate.1002.exr"],  # clamped at the first frame
                     "1002": ["plate.1001.exr", "plate.1002.exr", "plate.1003.exr"]}


def test_digital_source_type_of_captures_composites_and_synthetic_elements(tmp_path):
    plate = write_plates(tmp_path / "plates")
    other = write_plates(tmp_path / "plates", name="bg", value=0.5)

    def term(recipe, name):
        _render(recipe, "1001")
        return mf.assemble(tmp_path / name / "s.####.exr")["digital_source_type"]

    single = {"schema": "composite.pipeline/1", "name": "s", "stages": {
        "plate": {"type": "ReadImage", "params": {"path": plate}},
        "grade": {"type": "Grade", "inputs": {"image": "plate"}, "params": {"gain": [1.2, 1.2, 1.2]}},
        "write": {"type": "WriteImage", "inputs": {"image": "grade"}, "params": {"path": str(tmp_path / "one" / "s.####.exr")}}}}
    assert term(single, "one") == iptc.DIGITAL_CAPTURE
    two = json.loads(json.dumps(single))
    two["stages"]["bg"] = {"type": "ReadImage", "params": {"path": other}}
    two["stages"]["comp"] = {"type": "Merge", "inputs": {"a": "grade", "b": "bg"}, "params": {"mix": 0.5}}
    two["stages"]["write"] = {"type": "WriteImage", "inputs": {"image": "comp"},
                              "params": {"path": str(tmp_path / "two" / "s.####.exr")}}
    assert term(two, "two") == iptc.COMPOSITE_CAPTURE
    gen = comp_recipe(plate, str(tmp_path / "gen" / "s.####.exr"))
    assert term(gen, "gen") == iptc.COMPOSITE_WITH_TRAINED
    proc = comp_recipe(plate, str(tmp_path / "proc" / "s.####.exr"), element={"trained": False, "card": ""})
    assert term(proc, "proc") == iptc.COMPOSITE_SYNTHETIC
    # a plate that declares itself generated (no coverage layer) makes the output generated too
    ai = write_plates(tmp_path / "plates", name="ai", metadata={iptc.HEADER_KEY: iptc.TRAINED_ALGORITHMIC_MEDIA})
    declared = json.loads(json.dumps(single).replace(plate, ai).replace("one", "ai"))
    assert term(declared, "ai") == iptc.COMPOSITE_WITH_TRAINED


def test_unknown_model_card_and_wrong_checkpoint_are_errors(tmp_path):
    plate = write_plates(tmp_path / "plates")
    _render(comp_recipe(plate, str(tmp_path / "u" / "s.####.exr"), element={"card": "sdxl_turbo_private"}), "1001")
    data = mf.assemble(tmp_path / "u" / "s.####.exr")
    (issue,) = mf.errors(data)
    assert issue["code"] == "unknown_model_card" and "sdxl_turbo_private" in issue["message"]
    assert "sam_vit_b" in issue["message"]  # names the cards it knows
    _render(comp_recipe(plate, str(tmp_path / "w" / "s.####.exr"), element={"sha256": "ab" * 32}), "1001")
    (issue,) = mf.errors(mf.assemble(tmp_path / "w" / "s.####.exr"))
    assert issue["code"] == "model_checksum_mismatch" and SAM_B_SHA256 in issue["message"]
    _render(comp_recipe(plate, str(tmp_path / "n" / "s.####.exr"), element={"card": ""}), "1001")
    data = mf.assemble(tmp_path / "n" / "s.####.exr")
    assert mf.errors(data) == [] and [i["code"] for i in data["issues"]] == ["generator_without_model_card"]


def test_tampered_and_missing_frames_are_reported(tmp_path):
    plate = write_plates(tmp_path / "plates")
    _render(comp_recipe(plate, str(tmp_path / "r" / "s.####.exr")))
    frame = tmp_path / "r" / "s.1002.exr"
    (ok,) = verify_path(frame)
    assert ok.ok and ok.state == "checksum match" and ok.details["ai_coverage"]["max"] == 1.0
    # flip one byte of pixel data (the end of the file is compressed pixels, not header)
    data = bytearray(frame.read_bytes())
    data[-20] ^= 0xFF
    frame.write_bytes(bytes(data))
    (bad,) = verify_path(frame)
    assert not bad.ok and bad.state == "checksum mismatch" and bad.exit_code == 2
    os.remove(tmp_path / "r" / "s.1003.exr")
    m = mf.assemble(tmp_path / "r" / "s.exr.provenance")
    assert sorted((i["code"], i["file"]) for i in mf.errors(m)) == [("checksum_mismatch", "s.1002.exr"),
                                                                    ("missing_output", "s.1003.exr")]
    from composite.cli.app import run as main

    assert main(["provenance", "verify", str(tmp_path / "r")]) == 2
    assert main(["provenance", "verify", str(tmp_path / "r" / "s.1001.exr")]) == 0


def test_an_exr_without_a_manifest_fails_verification(tmp_path):
    from composite.core import Image

    write_exr(tmp_path / "x.1001.exr", Image(np.zeros((4, 4, 4), np.float32)))
    (res,) = verify_path(tmp_path / "x.1001.exr")
    assert not res.ok and res.state == "no manifest"


def test_bad_manifests_and_switching_provenance_off(tmp_path, monkeypatch):
    bad = tmp_path / "x.exr.provenance"
    bad.mkdir()
    (bad / "1-2.json").write_text(json.dumps({"schema": "composite.provenance/99"}))
    with pytest.raises(InputError, match="unknown provenance schema"):
        mf.assemble(bad)
    (bad / "1-2.json").write_text("{not json")
    with pytest.raises(InputError, match="not a readable provenance manifest"):
        mf.load_manifest(bad / "1-2.json")
    with pytest.raises(InputError, match="no provenance manifest found"):
        mf.assemble(tmp_path / "nothing.####.exr")
    plate = write_plates(tmp_path / "plates")
    monkeypatch.setenv("COMPOSITE_PROVENANCE", "off")
    _render(comp_recipe(plate, str(tmp_path / "off" / "s.####.exr")), "1001")
    assert sorted(os.listdir(tmp_path / "off")) == ["s.1001.exr"]
    assert "composite:provenance" not in read_exr(tmp_path / "off" / "s.1001.exr").metadata


def test_merge_prefers_the_record_matching_the_file_on_disk(tmp_path):
    plate = write_plates(tmp_path / "plates")
    out = str(tmp_path / "r" / "s.####.exr")
    _render(comp_recipe(plate, out, element={"alpha": 0.5}), "1001-1002")
    _render(comp_recipe(plate, out, element={"alpha": 1.0}), "1002")  # frame 1002 re-rendered differently
    data = mf.assemble(tmp_path / "r" / "s.exr.provenance")
    assert data["frames"]["1001"]["ai_coverage"]["max"] == 0.5
    assert data["frames"]["1002"]["ai_coverage"]["max"] == 1.0  # the part that matches the file wins
    assert mf.errors(data) == []
    assert len(data["recipes"]) == 2  # both recipes are kept; each frame names its own
    assert data["frames"]["1001"]["recipe"] != data["frames"]["1002"]["recipe"]
