"""A simulated farm that SIGKILLs chunk processes mid-frame: retries finish the timeline with the same files
as a clean render, and nothing half-written is left behind."""

from __future__ import annotations

import os

from composite.farm import plan_job, render_job
from composite.farm.simulate import simulate_farm
from composite.farm.timeline_jobs import write_timeline

from .helpers import comp_recipe, make_plates, read_tree, save


def test_killed_workers_are_retried_and_the_timeline_matches_a_clean_render(tmp_path):
    size = (320, 240)  # frames take tens of milliseconds, so kills land inside them
    shots = []
    for i, name in enumerate(("sh010", "sh020", "sh030")):
        plate = make_plates(tmp_path / "plates" / name, 1001, 1006, size=size, seed=i, name=name)
        shots.append((name, plate, 1001, 1006))
    timeline = write_timeline(tmp_path / "reel.otio", shots)
    recipe = save(tmp_path / "comp.yaml", comp_recipe("unset.####.exr", str(tmp_path / "renders/{shot}/{shot}.####.exr"),
                                                       frames=None, size=size))
    job = plan_job(recipe, timeline=timeline, chunk_size=3)
    assert job.task_count() == 6
    clean = render_job(job)  # in this process, nobody killed
    assert clean.ok
    reference = read_tree(tmp_path / "renders")
    assert len(reference) == 18
    os.rename(tmp_path / "renders", tmp_path / "clean")

    report = simulate_farm(job, workers=2, kill_probability=0.7, max_kills=5, max_attempts=8, seed=3, timeout=120)
    print(f"simulated farm: {report.to_dict()}")
    assert report.ok, report.to_dict()
    assert report.kills >= 3, report.to_dict()
    # some kills hit a frame being written; the retried chunk removed the dead process's temporary file
    assert report.kills_mid_write >= 1 and report.stale_removed >= 1, report.to_dict()
    assert report.launched == report.tasks + report.kills + report.failures
    assert report.failures == 0
    files = sorted(p.relative_to(tmp_path / "renders").as_posix() for p in (tmp_path / "renders").rglob("*")
                   if p.is_file())
    assert [f for f in files if "partial" in f] == []  # killed writes were cleaned up by the retries
    assert read_tree(tmp_path / "renders") == reference
