"""The shipped recipes: every one validates; the demo and the element recipe render on sample footage."""

import numpy as np
import pytest

from composite.core.coverage import coverage
from composite.graph.recipe import load_recipe, parse_overrides
from composite.io.exr import read_exr
from composite.resources import list_pipelines


def test_every_shipped_recipe_loads_and_round_trips():
    names = list_pipelines()
    for required in ("greenscreen_battle", "location_set_extension", "ai_element_integration",
                     "key_greenscreen", "roto_sam", "plate_preview"):
        assert required in names
    for name in names:
        p = load_recipe(name)
        assert "plate" in p.nodes and "write" in p.nodes, name  # retargetable with --set plate/write.path
        assert type(p).from_recipe(p.to_recipe()).to_recipe() == p.to_recipe()


def test_greenscreen_battle_renders_the_layers(tmp_path):
    out = tmp_path / "battle"
    p = load_recipe("greenscreen_battle", overrides=parse_overrides([
        f"write.path={out}/b.####.exr", f"review.path={out}/b.mp4", f"sheet.path={out}/sheet.png"]))
    report = p.render("1001-1002", progress=False)
    assert report.rendered == [1001, 1002]
    img = read_exr(out / "b.1002.exr")
    assert set(img.layers) >= {"alpha", "depth", "ai_coverage"}
    assert img.pixels[..., 3].min() == pytest.approx(1.0, abs=1e-3)  # an opaque final frame
    cov = coverage(img)
    actor = img.layers["alpha"].pixels[..., 0]
    assert 0.3 < float(cov.mean()) < 0.95  # the generated world, not the actor or the crowd
    # over arithmetic: the generated share is at most what the actor leaves uncovered (the crowd adds none)
    assert float((cov - (1 - actor)).max()) < 2e-3
    assert float(cov[actor < 0.01].mean()) > 0.5
    assert float(img.layers["depth"].pixels.max()) > 10  # the crowd's depth, in metres
    assert (out / "b.mp4").stat().st_size > 0 and (out / "sheet.png").stat().st_size > 0
    assert "compositeWithTrainedAlgorithmicMedia" in img.metadata["Iptc4xmpExt:DigitalSourceType"]


def test_ai_element_integration_marks_the_element(tmp_path):
    p = load_recipe("ai_element_integration", overrides=parse_overrides([f"write.path={tmp_path}/c.####.exr"]))
    p.render("1001", progress=False)
    img = read_exr(tmp_path / "c.1001.exr")
    cov = coverage(img)
    assert 0.05 < float(cov.mean()) < 0.4  # the inset element only
    assert float(cov.max()) == pytest.approx(1.0, abs=1e-3)
    np.testing.assert_array_equal(cov[0:5, -5:], 0)  # the plate's corner is live action
