"""Grain stages in pipelines: numbers, seeding across chunks, profile files, caching, fingerprints, recipes."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from composite.color import grain as g
from composite.color.grain_stages import Degrain, MatchGrain, Regrain
from composite.core import Image
from composite.core.errors import InputError, RecipeError
from composite.graph import Param, Pipeline, Stage, register

H, W = 192, 256


def _plate_pixels(t: int, amount: float) -> np.ndarray:
    """Two flat strips (0.05 and 0.25) with Gaussian-correlated grain of std ``amount * sqrt(L / 0.25)``."""
    rng = np.random.default_rng(1000 + t)
    base = np.full((H, W, 3), 0.25, np.float32)
    base[: H // 2] = 0.05
    n = cv2.GaussianBlur(rng.standard_normal((H, W, 3)).astype(np.float32), (0, 0), 0.8)
    n /= n.std(axis=(0, 1))
    return (base + amount * np.sqrt(base / 0.25) * n).astype(np.float32)


@register
class GrainPlateSource(Stage):
    """A grainy plate (frames 1001-1010), grain different on every frame."""

    type_name = "TestGrainPlate"
    is_source = True
    params = {"amount": Param(float, 0.01)}

    def frame_range(self):
        return (1001, 1010)

    def source_identity(self, t):
        return f"grainplate:{t}"

    def process(self, t, **_):
        return Image(_plate_pixels(t, self.p.amount), ("R", "G", "B"), time=self.time(t))


@register
class CleanElementSource(Stage):
    """A clean premultiplied RGBA element: smooth colour, alpha 1 on the left, 0.5 in a band, 0 on the right."""

    type_name = "TestCleanElement"
    is_source = True

    def source_identity(self, t):
        return "clean"

    def process(self, t, **_):
        px = np.zeros((H, W, 4), np.float32)
        px[:, :160] = (0.25, 0.25, 0.25, 1.0)
        px[: H // 2, :160, :3] = 0.05
        px[:, 160:208] = (0.125, 0.125, 0.125, 0.5)
        return Image(px, time=self.time(t))


@pytest.fixture(scope="module")
def profile():
    return g.measure_grain([_plate_pixels(t, 0.01) for t in (1001, 1002)], bands=2)


def test_regrain_stage_pins_the_function_and_the_plate_statistics(profile):
    p = Pipeline("t")
    el = p.add("el", CleanElementSource())
    p.add("rg", Regrain(profile=profile.to_dict(), seed=3), image=el)
    out = p.evaluate("rg", 1004)
    src = p.evaluate("el", 1004).pixels
    expected = g.regrain(src, profile, rng=p.nodes["rg"].stage.rng(1004))
    np.testing.assert_array_equal(out.pixels, expected)
    # the grain in the opaque strips has the plate's level (0.01 at 0.25, 0.01/2 at 0.05)
    diff = out.pixels - src
    np.testing.assert_allclose(diff[H // 2:, :160, :3].std(), 0.01, rtol=0.08)
    np.testing.assert_allclose(diff[: H // 2, :160, :3].std(), 0.01 * np.sqrt(0.2), rtol=0.1)
    np.testing.assert_array_equal(out.pixels[..., 3], src[..., 3])
    np.testing.assert_array_equal(out.pixels[:, 208:], 0.0)


def test_regrain_is_identical_in_any_chunk_and_differs_per_frame(profile):
    def build():
        p = Pipeline("t")
        el = p.add("el", CleanElementSource())
        p.add("rg", Regrain(profile=profile.to_dict()), image=el)
        return p

    alone = build().evaluate("rg", 1005).pixels
    seq = build()
    frames = {t: seq.evaluate("rg", t).pixels for t in range(1001, 1006)}
    np.testing.assert_array_equal(frames[1005], alone)
    assert not np.array_equal(frames[1004], frames[1005])
    other_seed = Pipeline("t")
    el = other_seed.add("el", CleanElementSource())
    other_seed.add("rg", Regrain(profile=profile.to_dict(), seed=1), image=el)
    assert not np.array_equal(other_seed.evaluate("rg", 1005).pixels, alone)


def test_regrain_from_profile_file_and_fingerprint_follows_the_file(tmp_path, profile):
    path = tmp_path / "plate_grain.json"
    profile.save(path)
    p = Pipeline("t")
    el = p.add("el", CleanElementSource())
    p.add("rg", Regrain(profile_path=str(path)), image=el)
    q = Pipeline("t")
    el = q.add("el", CleanElementSource())
    q.add("rg", Regrain(profile=profile.to_dict()), image=el)
    np.testing.assert_array_equal(p.evaluate("rg", 1001).pixels, q.evaluate("rg", 1001).pixels)
    before = p.fingerprint("rg", 1001)
    stronger = g.GrainProfile.from_dict({**profile.to_dict(), "std": [[2 * v for v in row] for row in profile.std]})
    stronger.save(path)
    p2 = Pipeline("t")
    el = p2.add("el", CleanElementSource())
    p2.add("rg", Regrain(profile_path=str(path)), image=el)
    assert p2.fingerprint("rg", 1001) != before
    ratio = (p2.evaluate("rg", 1001).pixels - p2.evaluate("el", 1001).pixels)[:, :160].std() / \
        (q.evaluate("rg", 1001).pixels - q.evaluate("el", 1001).pixels)[:, :160].std()
    np.testing.assert_allclose(ratio, 2.0, rtol=1e-5)


def test_regrain_parameters_and_missing_profiles(tmp_path, profile):
    with pytest.raises(RecipeError, match="exactly one"):
        Regrain()
    with pytest.raises(RecipeError, match="exactly one"):
        Regrain(profile=profile.to_dict(), profile_path="x.json")
    with pytest.raises(InputError, match="std"):
        Regrain(profile={**profile.to_dict(), "std": [[0.1]]})
    p = Pipeline("t")
    el = p.add("el", CleanElementSource())
    p.add("rg", Regrain(profile_path=str(tmp_path / "nope.json")), image=el)
    with pytest.raises(InputError, match="not found"):
        p.evaluate("rg", 1001)


def test_fingerprints_and_pass_through(profile):
    p = Pipeline("t")
    el = p.add("el", CleanElementSource())
    p.add("rg", Regrain(profile=profile.to_dict(), amount=1.0), image=el)
    p.add("off", Regrain(profile=profile.to_dict(), amount=0.0), image=el)
    p.add("dg", Degrain(strength=1.0), image=el)
    p.add("dg0", Degrain(strength=0.0), image=el)
    assert p.fingerprint("off", 1001) == p.fingerprint("el", 1001)
    assert p.fingerprint("dg0", 1001) == p.fingerprint("el", 1001)
    assert p.evaluate("off", 1001) is p.evaluate("el", 1001)
    fp = p.fingerprint("rg", 1001)
    p.set_param("rg", "amount", 0.5)
    assert p.fingerprint("rg", 1001) != fp
    fp = p.fingerprint("dg", 1001)
    p.set_param("dg", "strength", 2.0)
    assert p.fingerprint("dg", 1001) != fp
    assert p.fingerprint("rg", 1001) != p.fingerprint("rg", 1002)


def test_degrain_stage_pins_the_function(profile):
    p = Pipeline("t")
    plate = p.add("plate", GrainPlateSource())
    p.add("dg", Degrain(profile=profile.to_dict(), strength=1.5), image=plate)
    p.add("self", Degrain(), image=plate)
    src = p.evaluate("plate", 1003).pixels
    np.testing.assert_array_equal(p.evaluate("dg", 1003).pixels, g.degrain(src, profile, strength=1.5))
    np.testing.assert_array_equal(p.evaluate("self", 1003).pixels, g.degrain(src, g.measure_grain(src)))
    residual = p.evaluate("dg", 1003).pixels[H // 2 + 8:, 8:-8] - 0.25
    assert residual.std() < 0.35 * 0.01


def test_match_grain_measures_the_plate_pools_frames_and_caches(monkeypatch):
    calls = []
    real = g.measure_tiles

    def counting(px, **kw):
        calls.append(kw.get("who"))
        return real(px, **kw)

    monkeypatch.setattr(g, "measure_tiles", counting)
    p = Pipeline("t")
    plate = p.add("plate", GrainPlateSource(amount=0.02))
    el = p.add("el", CleanElementSource())
    p.add("mg", MatchGrain(reference_radius=1, bands=2), image=el, reference=plate)
    outs = {t: p.evaluate("mg", t) for t in range(1001, 1006)}
    assert len(calls) == 6          # plate frames 1001..1006 measured once each (1006: window of 1005)
    src = p.evaluate("el", 1003).pixels
    diff = outs[1003].pixels - src
    np.testing.assert_allclose(diff[H // 2:, :160, :3].std(), 0.02, rtol=0.08)
    np.testing.assert_allclose(diff[: H // 2, :160, :3].std(), 0.02 * np.sqrt(0.2), rtol=0.1)
    # the stage's own profile equals measuring the pooled frames directly
    stage = p.nodes["mg"].stage
    direct = g.measure_grain([_plate_pixels(t, 0.02) for t in (1002, 1003, 1004)], bands=2)
    pooled = stage.profile({t: p.evaluate("plate", t) for t in (1002, 1003, 1004)})
    np.testing.assert_allclose(np.asarray(pooled.std), np.asarray(direct.std), rtol=1e-6)


def test_match_grain_replace_mode_and_bad_masks():
    p = Pipeline("t")
    plate = p.add("plate", GrainPlateSource(amount=0.01))
    grainy = p.add("grainy", GrainPlateSource(amount=0.03))
    p.add("mg", MatchGrain(mode="replace", bands=2), image=grainy, reference=plate)
    out = p.evaluate("mg", 1002).pixels
    # the element's 0.03 grain is removed and topped up to the plate's 0.01 (+-15%)
    np.testing.assert_allclose((out - 0.25)[H // 2 + 8:, 8:-8].std(), 0.01, rtol=0.15)
    wrong = Pipeline("t")
    plate = wrong.add("plate", GrainPlateSource())
    el = wrong.add("el", CleanElementSource())
    from composite.graph.builtin import Constant

    m = wrong.add("m", Constant(color=[0, 0, 0, 0], width=W, height=H))
    small = wrong.add("small", Constant(color=[0, 0, 0, 1], width=16, height=16))
    wrong.add("empty", MatchGrain(), image=el, reference=plate, mask=m)
    with pytest.raises(InputError, match="empty .*frame.*1001.*inside the mask"):
        wrong.evaluate("empty", 1001)
    # a mask with a smaller data window is padded with 0 (not measured): here nothing is left
    wrong.add("mis", MatchGrain(), image=el, reference=plate, mask=small)
    with pytest.raises(InputError, match="inside the mask"):
        wrong.evaluate("mis", 1001)


def test_recipe_round_trip(profile, tmp_path):
    path = tmp_path / "p.json"
    profile.save(path)
    p = Pipeline("t")
    plate = p.add("plate", GrainPlateSource())
    el = p.add("el", CleanElementSource())
    p.add("rg", Regrain(profile_path=str(path), amount=0.7, seed=4), image=el)
    p.add("rgi", Regrain(profile=profile.to_dict()), image=el)
    p.add("dg", Degrain(strength=1.2, scales=3), image=plate)
    p.add("mg", MatchGrain(mode="replace", reference_radius=2, tile=16), image=el, reference=plate)
    recipe = p.to_recipe()
    again = Pipeline.from_recipe(recipe)
    assert again.to_recipe() == recipe
    assert again.fingerprint("rgi", 1001) == p.fingerprint("rgi", 1001)
    np.testing.assert_array_equal(again.evaluate("rgi", 1001).pixels, p.evaluate("rgi", 1001).pixels)


def test_match_grain_top_up_adds_only_the_missing_variance():
    p = Pipeline("t")
    plate = p.add("plate", GrainPlateSource(amount=0.01))
    partly = p.add("partly", GrainPlateSource(amount=0.006))
    p.add("up", MatchGrain(mode="top_up", bands=2), image=partly, reference=plate)
    p.add("add", MatchGrain(mode="add", bands=2), image=partly, reference=plate)
    region = (slice(H // 2 + 8, None), slice(8, -8))
    up = (p.evaluate("up", 1002).pixels - 0.25)[region].std()
    add = (p.evaluate("add", 1002).pixels - 0.25)[region].std()
    np.testing.assert_allclose(up, 0.01, rtol=0.06)
    np.testing.assert_allclose(add, np.hypot(0.01, 0.006), rtol=0.06)
