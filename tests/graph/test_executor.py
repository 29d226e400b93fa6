"""Rendering: skip-if-up-to-date, chunk determinism across processes, atomic output under SIGKILL."""

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

from composite.core import Image, InputError
from composite.graph.executor import parse_frames, split_chunks
from composite.graph.recipe import load_recipe
from composite.io.exr import read_exr, read_fingerprint, write_exr

FRAMES = range(1001, 1007)


def make_plates(folder: Path, size=(48, 32), frames=FRAMES):
    rng = np.random.default_rng(7)
    for t in frames:
        px = rng.random((size[1], size[0], 4), dtype=np.float32)
        px[..., :3] *= px[..., 3:]
        write_exr(folder / f"plate.{t:04d}.exr", Image(px))
    return str(folder / "plate.####.exr")


def recipe(plate: str, out: str, temporal=False, size=None) -> dict:
    stages = {
        "plate": {"type": "ReadImage", "params": {"path": plate}},
        "noise": {"type": "Noise", "inputs": {"image": "plate"}, "params": {"amount": 0.05, "seed": 11}},
        "move": {"type": "Transform", "inputs": {"image": "noise"},
                 "params": {"translate": [1.5, -0.5], "rotate": 3.0, "filter": "cubic"}},
        "bg": {"type": "Constant", "params": {"color": [0.2, 0.3, 0.4, 1.0], "width": (size or (48, 32))[0],
                                              "height": (size or (48, 32))[1]}},
        "comp": {"type": "Merge", "inputs": {"a": "move", "b": "bg"}},
        "write": {"type": "WriteImage", "inputs": {"image": "comp"}, "params": {"path": out, "pixel_type": "float"}},
    }
    return {"schema": "composite.pipeline/1", "name": "det", "frames": "1001-1006", "stages": stages}


def save(tmp_path, data, name="r.yaml"):
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data))
    return path


def test_parse_frames_and_chunks():
    assert parse_frames("1001-1005") == [1001, 1002, 1003, 1004, 1005]
    assert parse_frames("1001-1009x4") == [1001, 1005, 1009]
    assert parse_frames("1,3,5-6") == [1, 3, 5, 6]
    with pytest.raises(InputError, match="bad frame range"):
        parse_frames("ten to twenty")
    assert split_chunks([1, 2, 3, 4, 5], 2) == [[1, 2], [3, 4], [5]]
    with pytest.raises(InputError, match="chunk size must be at least 1"):
        split_chunks([1, 2], 0)


def test_rerender_skips_up_to_date_frames_and_force_overrides(tmp_path):
    plate = make_plates(tmp_path)
    path = save(tmp_path, recipe(plate, str(tmp_path / "out" / "comp.####.exr")))
    first = load_recipe(path).render(progress=False)
    assert first.rendered == list(FRAMES) and first.skipped == []
    fp = read_fingerprint(tmp_path / "out" / "comp.1003.exr")
    assert fp == load_recipe(path).fingerprint("write", 1003)
    again = load_recipe(path).render(progress=False)
    assert again.rendered == [] and again.skipped == list(FRAMES)
    # a parameter change makes every frame out of date
    changed = recipe(plate, str(tmp_path / "out" / "comp.####.exr"))
    changed["stages"]["noise"]["params"]["seed"] = 12
    assert load_recipe(save(tmp_path, changed, "r2.yaml")).render(progress=False).rendered == list(FRAMES)
    forced = load_recipe(path).render("1001-1002", force=True, progress=False)
    assert forced.rendered == [1001, 1002]


def test_chunked_renders_in_separate_processes_are_bit_identical(tmp_path):
    plate = make_plates(tmp_path)
    out = tmp_path / "out"
    path = save(tmp_path, recipe(plate, str(out / "comp.####.exr")))

    def collect(name):
        os.rename(out, tmp_path / name)
        return {t: (tmp_path / name / f"comp.{t:04d}.exr").read_bytes() for t in FRAMES}

    load_recipe(path).render(progress=False)
    whole = collect("whole")
    # the same range as chunks of 2 rendered by two worker processes
    report = load_recipe(path).render(chunk_size=2, workers=2, progress=False)
    assert report.rendered == list(FRAMES)
    pooled = collect("pooled")
    # and as farm tasks: one CLI process per chunk of 3
    for chunk in ("1001-1003", "1004-1006"):
        subprocess.run([sys.executable, "-m", "composite", "render", str(path), "--frames", chunk],
                       check=True, capture_output=True)
    farm = collect("farm")
    assert pooled == whole
    assert farm == whole


def test_killed_render_leaves_no_truncated_frame_and_resumes(tmp_path):
    size = (2600, 2000)  # large float frames: each write takes a noticeable time
    plate = make_plates(tmp_path, size=size, frames=range(1001, 1005))
    data = recipe(plate, str(tmp_path / "out" / "comp.####.exr"), size=size)
    data["frames"] = "1001-1004"
    data["stages"]["write"]["params"]["compression"] = "zip"
    path = save(tmp_path, data)
    out = tmp_path / "out"
    proc = subprocess.Popen([sys.executable, "-m", "composite", "render", str(path), "--progress", "log"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.time() + 120
    # wait until the first frame is finished and the second one is being written (a temp file exists)
    while time.time() < deadline:
        names = os.listdir(out) if out.exists() else []
        if "comp.1001.exr" in names and any(".partial-" in n for n in names):
            break
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    def frames_in(folder):
        return sorted(n for n in os.listdir(folder) if re.fullmatch(r"comp\.\d+\.exr", n))

    finished = frames_in(out)
    assert "comp.1001.exr" in finished and len(finished) < 4
    for name in finished:  # every file under a final name is complete
        img = read_exr(out / name)
        assert img.pixels.shape == (size[1], size[0], 4)
    leftovers = [n for n in os.listdir(out) if n.startswith(".")]
    assert all(".partial-" in n for n in leftovers)
    # the re-run renders only what is missing
    report = load_recipe(path).render(progress=False)
    assert report.skipped == [1001 + i for i in range(len(finished))]
    assert frames_in(out) == [f"comp.{t}.exr" for t in range(1001, 1005)]


def test_whole_range_outputs_are_completed_after_concurrent_chunks(tmp_path):
    import json

    from composite.graph import Pipeline
    from composite.graph.builtin import Constant

    from .helpers import RangeFileRecorder

    p = Pipeline("whole", frames="1-6")
    c = p.add("c", Constant(width=4, height=4, first=1, last=6))
    p.add("movie", RangeFileRecorder(path=str(tmp_path / "frames.json")), image=c)
    p.render(chunk_size=3, workers=2, progress=False)
    # each worker's finish() saw only its chunk; the executor's final pass sees the whole range
    assert json.loads((tmp_path / "frames.json").read_text()) == [1, 2, 3, 4, 5, 6]
