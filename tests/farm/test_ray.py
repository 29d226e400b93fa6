"""The Ray executor on a local two-CPU Ray instance: bit-identical to the local executor, one model load per
actor, whole timelines with prep → comp dependencies, failures summarised."""

from __future__ import annotations

import os

import pytest

from composite.farm import plan_job, render_job
from composite.farm.timeline_jobs import write_timeline
from composite.graph.recipe import load_recipe

from ..graph import helpers as graph_helpers  # noqa: F401  (registers TestTemporalMean)
from .helpers import LOADS_ENV, comp_after_prep_recipe, comp_recipe, make_plates, prep_recipe, read_tree, save

ray = pytest.importorskip("ray")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """A local Ray instance with two CPUs for this module; shut down afterwards."""
    from composite.farm import ray_executor

    loads = tmp_path_factory.mktemp("loads")
    old = os.environ.get(LOADS_ENV)
    os.environ[LOADS_ENV] = str(loads)  # inherited by the Ray workers
    ray_executor.shutdown()
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="ERROR",
             runtime_env={"env_vars": {"PYTHONPATH": os.getcwd(), LOADS_ENV: str(loads)}})
    try:
        yield loads
    finally:
        ray_executor.shutdown()
        ray.shutdown()
        if old is None:
            os.environ.pop(LOADS_ENV, None)
        else:
            os.environ[LOADS_ENV] = old
    assert not ray.is_initialized()


def test_ray_render_is_bit_identical_and_loads_the_model_once_per_actor(cluster, tmp_path):
    from composite.farm.ray_executor import RayExecutor

    plate = make_plates(tmp_path / "plates", 1001, 1008)
    data = comp_recipe(plate, str(tmp_path / "out" / "c.####.exr"), frames="1001-1008")
    data["stages"]["model"] = {"type": "TestFarmModel", "inputs": {"image": "noise"}}
    data["stages"]["state"] = {"type": "TestRecurrent", "inputs": {"image": "model"}}  # warm-up frames
    data["stages"]["smooth"] = {"type": "TestTemporalMean", "inputs": {"image": "state"},  # reads t-1..t+1
                                "params": {"radius": 1}}
    data["stages"]["move"]["inputs"] = {"image": "smooth"}
    path = save(tmp_path / "r.yaml", data)
    load_recipe(path).render(progress=False)  # the local executor, one process
    local = read_tree(tmp_path / "out")
    os.rename(tmp_path / "out", tmp_path / "local")
    before = len(os.listdir(cluster))
    ex = RayExecutor(workers=2)
    report = load_recipe(path).render(chunk_size=2, executor=ex, progress=False)
    assert report.rendered == list(range(1001, 1009))
    assert read_tree(tmp_path / "out") == local
    stats = ex.worker_stats()
    assert len(stats) == 2 and len({s["pid"] for s in stats}) == 2
    assert sum(s["pipelines_built"] for s in stats) <= 2  # four chunks, at most one pipeline per actor
    loads = len(os.listdir(cluster)) - before
    assert 1 <= loads <= 2, f"{loads} model loads for 4 chunks on 2 actors"
    # the CLI spelling of the same render re-uses the actors and finds everything up to date
    from .helpers import cli as main

    assert main(["render", str(path), "--chunk-size", "4", "--executor", "ray", "--progress", "log"]) == 0
    assert len(os.listdir(cluster)) - before == loads


def test_ray_renders_a_timeline_with_prep_before_comp_and_summarises_failures(cluster, tmp_path):
    a = make_plates(tmp_path / "plates" / "sh010", 1001, 1004, seed=1, name="sh010")
    b = make_plates(tmp_path / "plates" / "sh020", 1001, 1004, seed=2, name="sh020")
    timeline = write_timeline(tmp_path / "edit.otio", [("sh010", a, 1001, 1004), ("sh020", b, 1001, 1004)])
    prep = save(tmp_path / "prep.yaml", prep_recipe(str(tmp_path / "renders/{shot}/prep.####.exr")))
    comp = save(tmp_path / "comp.yaml", comp_after_prep_recipe(str(tmp_path / "renders/{shot}/prep.####.exr"),
                                                               str(tmp_path / "renders/{shot}/comp.####.exr")))
    job = plan_job(comp, timeline=timeline, prep=prep, chunk_size=2)
    os.remove(b.replace("####", "1003"))  # sh020's plate loses a frame after submission
    summary = render_job(job, executor="ray", workers=2, max_attempts=2)
    assert not summary.ok and summary.failed_shots == ["sh020"]
    steps = {s.name: s for s in summary.steps}
    assert steps["sh010_prep"].rendered == steps["sh010_comp"].rendered == [1001, 1002, 1003, 1004]
    assert steps["sh020_prep"].rendered == [1001, 1002] and steps["sh020_prep"].failed == [1003, 1004]
    assert summary.steps[2].errors[0].startswith("chunk 1003-1004: ")
    assert "sh020.1003.exr: frame 1003 is missing" in steps["sh020_prep"].errors[0]
    assert steps["sh020_comp"].blocked == [1001, 1002, 1003, 1004] and steps["sh020_comp"].rendered == []
    d = summary.to_dict()
    assert d["rendered_frames"] == 10 and d["failed_frames"] == 2 and d["blocked_frames"] == 4
    assert "FAILED: sh020" in summary.format()


def test_a_ray_actor_killed_mid_frame_is_restarted_and_the_chunk_retried(cluster, tmp_path):
    from composite.farm.ray_executor import RayExecutor

    plate = make_plates(tmp_path / "plates", 1001, 1004)
    marker = tmp_path / "died"
    data = comp_recipe(plate, str(tmp_path / "out" / "c.####.exr"), frames="1001-1004")
    data["stages"]["die"] = {"type": "TestDieOnce", "inputs": {"image": "noise"},
                             "params": {"frame": 1003, "marker": str(marker)}}
    data["stages"]["move"]["inputs"] = {"image": "die"}
    path = save(tmp_path / "r.yaml", data)
    marker.write_text("not this time")
    load_recipe(path).render(progress=False)
    reference = read_tree(tmp_path / "out")
    os.rename(tmp_path / "out", tmp_path / "reference")
    marker.unlink()
    ex = RayExecutor(workers=2)
    report = load_recipe(path).render(chunk_size=2, executor=ex, progress=False)
    assert marker.exists()  # an actor process died at frame 1003; Ray restarted it and re-ran the chunk
    assert report.rendered == [1001, 1002, 1003, 1004]
    assert read_tree(tmp_path / "out") == reference
