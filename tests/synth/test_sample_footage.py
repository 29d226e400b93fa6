"""The footage shipped in sample_footage/ is small, complete and what the generator makes."""

import json
from pathlib import Path

import numpy as np
import pytest

from composite.io.exr import read_exr
from composite.synth import crowd_tile, generated_background_sequence, greenscreen_sequence
from composite.synth.write import SAMPLE_PRESET

ROOT = Path(__file__).resolve().parents[2] / "sample_footage"


def test_layout_and_size():
    p = SAMPLE_PRESET
    frames = range(1001, 1001 + p["frames"])
    expected = [f"greenscreen/{k}.{n}.exr" for k in p["greenscreen_passes"] for n in frames]
    expected += [f"background/{k}.{n}.exr" for k in p["background_passes"] for n in frames]
    expected += ["greenscreen/truth.json", "background/truth.json", "crowd/crowd_tile.exr", "crowd/crowd_tile.json",
                 "README.md"]
    for rel in expected:
        assert (ROOT / rel).is_file(), rel
    # what the repository ships (sample_footage/generated/ is a git-ignored cache of the docs build)
    total = sum(f.stat().st_size for f in ROOT.rglob("*") if f.is_file() and "generated" not in f.relative_to(ROOT).parts)
    assert total < 4_000_000


@pytest.mark.parametrize("frame", [1001, 1008])
def test_matte_and_camera_are_the_generators(frame):
    p = SAMPLE_PRESET
    seq = greenscreen_sequence(p["width"], p["height"], p["frames"], seed=p["seed"], grain=p["grain"])
    f = seq.frame(frame)
    alpha = read_exr(ROOT / "greenscreen" / f"alpha.{frame}.exr")
    # Lossless half storage: the shipped matte is the generator's matte rounded to half.
    np.testing.assert_array_equal(alpha.a, f.alpha[..., 0].astype(np.float16).astype(np.float32))
    plate = read_exr(ROOT / "greenscreen" / f"plate.{frame}.exr")
    assert plate.pixels.shape == (p["height"], p["width"], 3)
    assert np.abs(plate.pixels - f.plate).mean() < 0.005  # DWAB is lossy, but close
    truth = json.loads((ROOT / "greenscreen" / "truth.json").read_text())
    np.testing.assert_allclose(truth["frames"][str(frame)]["camera"], seq.camera(frame), rtol=1e-12, atol=1e-12)
    assert truth["params"]["grain"] == p["grain"]


def test_background_gains_and_crowd_tile():
    p = SAMPLE_PRESET
    seq = generated_background_sequence(p["width"], p["height"], p["frames"], seed=p["seed"])
    truth = json.loads((ROOT / "background" / "truth.json").read_text())
    g, reg = seq.flicker(1005)
    assert truth["frames"]["1005"]["global_gain"] == g
    np.testing.assert_allclose(truth["frames"]["1005"]["regional_gains"], reg, rtol=1e-6)
    bg = read_exr(ROOT / "background" / "bg.1005.exr")
    assert np.abs(bg.pixels - seq.frame(1005).image).mean() < 0.01
    tile = crowd_tile(count=p["crowd_count"], sprite_height=p["sprite_height"], seed=p["seed"])
    sheet = read_exr(ROOT / "crowd" / "crowd_tile.exr")
    np.testing.assert_array_equal(sheet.pixels, tile.pixels.astype(np.float16).astype(np.float32))
    meta = json.loads((ROOT / "crowd" / "crowd_tile.json").read_text())
    assert [s["foot"] for s in meta["sprites"]] == [list(s.foot) for s in tile.sprites]
