"""The executor as a farm task: log lines, progress protocol, warm-up, idempotent chunks, stale temp files,
and the scheduler that runs chunk tasks with dependencies and retries."""

from __future__ import annotations

import logging
import os
import subprocess
import sys

import numpy as np
import pytest

from composite.core import InputError
from composite.graph.executor import (
    ChunkRenderer,
    ChunkTask,
    Executor,
    InProcessExecutor,
    get_executor,
    remove_stale_temp_files,
    render_frames,
)
from composite.graph.recipe import load_recipe, pipeline_from_recipe
from composite.io.exr import read_exr

from .helpers import comp_recipe, make_plates, read_tree, save


@pytest.fixture
def shot(tmp_path):
    plate = make_plates(tmp_path / "plates")
    out = tmp_path / "out"
    path = save(tmp_path / "r.yaml", comp_recipe(plate, str(out / "comp.####.exr")))
    return path, out


def test_log_lines_name_frames_progress_and_elapsed(shot, caplog):
    path, _ = shot
    with caplog.at_level(logging.INFO, logger="composite.render"):
        load_recipe(path).render("1001-1004", chunk_size=2, progress=False)
    lines = [r.getMessage() for r in caplog.records]
    assert lines[0] == "composite: chunk 1001-1002 started (2 frames)"
    assert lines[1] == "composite: frame 1001 started"
    assert lines[2].startswith("composite: frame 1001 finished in ") and lines[2].endswith(" s (1/4, 25.0%)")
    assert lines[4].endswith("(2/4, 50.0%)")
    assert lines[5].startswith("composite: chunk 1001-1002 finished: 2 rendered, 0 skipped in ")
    assert lines[-2].endswith("(4/4, 100.0%)")
    caplog.clear()
    # a finished chunk re-run does no work and says so
    with caplog.at_level(logging.INFO, logger="composite.render"):
        report = load_recipe(path).render("1003-1004", progress=False)
    assert report.rendered == [] and report.skipped == [1003, 1004]
    lines = [r.getMessage() for r in caplog.records]
    assert "composite: frame 1003 skipped, up to date (1/2, 50.0%)" in lines
    assert lines[-1].startswith("composite: chunk 1003-1004 finished: 0 rendered, 2 skipped")


def test_openjd_progress_protocol_on_stdout(shot):
    path, _ = shot
    env = dict(os.environ, COMPOSITE_PROGRESS_PROTOCOL="openjd")
    res = subprocess.run([sys.executable, "-m", "composite", "render", str(path), "--frames", "1001-1002",
                          "--progress", "log"], capture_output=True, text=True, env=env)
    assert res.returncode == 0, res.stderr
    assert res.stdout.splitlines() == ["openjd_progress: 50.0", "openjd_status: frame 1001 finished",
                                       "openjd_progress: 100.0", "openjd_status: frame 1002 finished"]
    assert "composite: frame 1002 finished in" in res.stderr


def _recurrent_recipe(tmp_path, plate, out, warm=True):
    data = comp_recipe(plate, str(out))
    data["stages"]["state"] = {"type": "TestRecurrent", "inputs": {"image": "plate"}}
    data["stages"]["noise"]["inputs"] = {"image": "state"}
    return save(tmp_path / ("rec.yaml" if warm else "rec_nowarm.yaml"), data)


def test_warmup_frames_are_rendered_not_written_and_keep_chunks_identical(tmp_path):
    plate = make_plates(tmp_path / "plates")
    path = _recurrent_recipe(tmp_path, plate, tmp_path / "out" / "c.####.exr")
    whole = load_recipe(path).render("1001-1006", progress=False)
    assert whole.warmup == []  # frame 1001 has nothing before it; then frames follow each other
    ref = read_tree(tmp_path / "out")
    os.rename(tmp_path / "out", tmp_path / "whole")
    p = load_recipe(path)
    chunked = p.render("1001-1006", chunk_size=3, progress=False)
    assert chunked.warmup == [1002, 1003]  # the second chunk (1004-1006) first sees 1002 and 1003
    assert sorted(read_tree(tmp_path / "out")) == [f"c.{t}.exr" for t in range(1001, 1007)]
    assert read_tree(tmp_path / "out") == ref
    assert p.nodes["state"].stage.calls == [1001, 1002, 1003, 1002, 1003, 1004, 1005, 1006]
    # a single later frame warms up from the two before it; without warm-up its pixels differ
    os.rename(tmp_path / "out", tmp_path / "single")
    one = load_recipe(path).render("1005", progress=False)
    assert one.warmup == [1003, 1004] and one.rendered == [1005]
    assert (tmp_path / "out" / "c.1005.exr").read_bytes() == ref["c.1005.exr"]
    os.rename(tmp_path / "out", tmp_path / "single2")
    p2 = load_recipe(path)
    p2.nodes["state"].stage.warmup_frames = 0
    assert render_frames(p2, [1005]).warmup == []
    cold = read_exr(tmp_path / "out" / "c.1005.exr").pixels
    warm = read_exr(tmp_path / "single" / "c.1005.exr").pixels
    assert np.abs(cold - warm).max() > 1e-3


def test_stale_temp_files_of_dead_processes_are_removed_and_live_ones_kept(shot):
    path, out = shot
    out.mkdir()
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = out / f".comp.1001.partial-{dead.pid}-deadbeef.exr"
    live = out / f".comp.1002.partial-{os.getpid()}-cafef00d.exr"
    other = out / f".comp.1009.partial-{dead.pid}-0badf00d.exr"  # not a frame of this chunk
    for f in (stale, live, other):
        f.write_bytes(b"half a frame")
    report = load_recipe(path).render("1001-1003", progress=False)
    assert report.removed_temp == [str(stale)]
    assert not stale.exists() and live.exists() and other.exists()
    assert remove_stale_temp_files([str(out / "comp.1009.exr")]) == [str(other)]


class _Flaky(Executor):
    """Runs tasks in order; fails the first attempt of the named chunks."""

    def __init__(self, fail_once=(), fail_always=()):
        self.slots = 2
        self.fail_once, self.fail_always = set(fail_once), set(fail_always)
        self.order: list[str] = []
        self._done = []

    def _submit(self, task, notify):
        self.order.append(task.key)
        if task.key in self.fail_always or task.key in self.fail_once:
            self.fail_once.discard(task.key)
            outcome = RuntimeError(f"worker lost on {task.key}")
        else:
            outcome = task.key
        self._done.append((task.key, outcome))
        return task.key

    def _wait(self, handles):
        out = [d for d in self._done if d[0] in handles][:1]
        self._done = [d for d in self._done if d not in out]
        return out


def _tasks():
    r = {"stages": {}}
    return [ChunkTask("a_prep", r, (1, 2)), ChunkTask("a_prep", r, (3,)),
            ChunkTask("a_comp", r, (1, 2), after=("a_prep",)), ChunkTask("b", r, (1,)),
            ChunkTask("b_comp", r, (1,), after=("b",))]


def test_scheduler_orders_steps_retries_and_blocks_dependents():
    ex = _Flaky(fail_once={"a_prep:3"}, fail_always={"b:1"})
    results = ex.run(_tasks(), max_attempts=2)
    assert [r.status for r in results] == ["done", "done", "done", "failed", "blocked"]
    assert results[1].attempts == 2 and results[3].attempts == 2
    assert "worker lost on b:1" in results[3].error and "step b failed" in results[4].error
    # the comp chunk started only after both prep chunks finished (the retry included)
    assert ex.order.index("a_comp:1-2") > max(i for i, k in enumerate(ex.order) if k == "a_prep:3")


def test_chunk_renderer_builds_a_pipeline_once_per_recipe_and_shares_model_stages(tmp_path, monkeypatch):
    from .helpers import LOADS_ENV

    monkeypatch.setenv(LOADS_ENV, str(tmp_path))
    plate = make_plates(tmp_path / "plates")
    base = comp_recipe(plate, str(tmp_path / "o" / "a.####.exr"))
    base["stages"]["model"] = {"type": "TestFarmModel", "inputs": {"image": "noise"}}
    base["stages"]["move"]["inputs"] = {"image": "model"}
    other = comp_recipe(plate, str(tmp_path / "o" / "b.####.exr"))
    other["stages"]["model"] = base["stages"]["model"]
    other["stages"]["move"]["inputs"] = {"image": "model"}
    renderer = ChunkRenderer()
    ex = InProcessExecutor(renderer)
    tasks = [ChunkTask("a", base, (1001, 1002)), ChunkTask("a", base, (1003,)), ChunkTask("b", other, (1001,))]
    results = ex.run(tasks)
    assert [r.status for r in results] == ["done"] * 3
    assert renderer.built == 2  # one pipeline per recipe, reused across its chunks
    assert len([f for f in os.listdir(tmp_path) if f.startswith("load-")]) == 1  # the model loaded once
    assert sorted(read_tree(tmp_path / "o")) == ["a.1001.exr", "a.1002.exr", "a.1003.exr", "b.1001.exr"]
    # shared stages keep results equal to a fresh pipeline's
    fresh = pipeline_from_recipe(other)
    np.testing.assert_array_equal(read_exr(tmp_path / "o" / "b.1001.exr").pixels,
                                  fresh.evaluate("comp", 1001).pixels)


def test_unknown_executor_and_address_without_cluster_are_bad_input(shot):
    path, _ = shot
    with pytest.raises(InputError, match="unknown executor 'slurm'; executors: local, ray"):
        get_executor("slurm")
    with pytest.raises(InputError, match="--address needs a cluster executor"):
        load_recipe(path).render("1001", address="10.0.0.1:6379", progress=False)


def test_a_worker_process_killed_mid_frame_is_replaced_and_its_chunk_retried(shot, tmp_path, caplog):
    path, out = shot
    marker = tmp_path / "died"
    data = load_recipe(path).to_recipe()
    data["stages"]["die"] = {"type": "TestDieOnce", "inputs": {"image": "noise"},
                             "params": {"frame": 1003, "marker": str(marker)}}
    data["stages"]["move"]["inputs"] = {"image": "die"}
    marker.write_text("not this time")
    pipeline_from_recipe(data, source=str(path)).render("1001-1004", progress=False)  # the reference
    reference = read_tree(out)
    os.rename(out, tmp_path / "reference")
    marker.unlink()
    p = pipeline_from_recipe(data, source=str(path))
    with caplog.at_level(logging.INFO, logger="composite.render"):
        report = p.render("1001-1004", chunk_size=2, workers=2, max_attempts=2, progress=False)
    counts = [m.split("(")[1] for m in caplog.messages if "finished in" in m or "skipped, up to date" in m]
    assert counts and max(int(c.split("/")[0]) for c in counts) == 4  # retried frames are not counted twice
    assert marker.exists()  # a worker did die, at frame 1003
    # the pool broke for both chunks; the retried 1001-1002 finds its frames done if they were written
    assert sorted(report.rendered + report.skipped) == [1001, 1002, 1003, 1004] and 1003 in report.rendered
    assert read_tree(out) == reference
