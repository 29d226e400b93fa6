"""Matte stages in pipelines: numbers, fingerprints, pass-through, recipe round trips."""

from pathlib import Path

import numpy as np
import pytest

from composite.core import Image
from composite.core.errors import InputError, RecipeError
from composite.core.state import AlphaState
from composite.graph import Param, Pipeline, Stage, register
from composite.matte.stages import (
    CleanPlate,
    ColorDifferenceKey,
    Despill,
    EdgeExtend,
    GarbageMatte,
    MatteBlur,
    MatteClamp,
    MatteCombine,
    MatteErode,
    Roto,
    ScreenSubtractKey,
)

S = np.array([0.05, 0.5, 0.08], np.float32)
GREY = np.array([0.3, 0.3, 0.3], np.float32)
RECIPES = Path(__file__).resolve().parents[2] / "pipelines"


def ramp():
    a = np.zeros((16, 24), np.float32)
    a[4:12, 6:18] = np.linspace(0.0, 1.0, 12, dtype=np.float32)[None, :]
    return a


@register
class MattePlate(Stage):
    """Plate = ramp alpha x grey over the screen S (opaque RGB, working space)."""

    type_name = "TestMattePlate"
    is_source = True
    params = {"size": Param(int, 1, range=(1, 4))}

    def frame_range(self):
        return (1001, 1003)

    def source_identity(self, t):
        return f"matteplate:{t}"

    def process(self, t, **_):
        a = ramp()[..., None]
        px = (a * GREY + (1 - a) * S).astype(np.float32)
        if self.p.size > 1:
            px = np.ascontiguousarray(np.repeat(px, self.p.size, axis=0))
        return Image(px, ("R", "G", "B"), alpha=AlphaState.OPAQUE, time=self.time(t))


def keyed_pipeline(**key_params):
    p = Pipeline("t")
    p.add("plate", MattePlate())
    p.add("key", ColorDifferenceKey(screen_color=list(map(float, S)), **key_params), image="plate")
    return p


def test_colour_difference_key_stage_numbers_and_outputs():
    p = keyed_pipeline(despill="none")
    out = p.evaluate("key", 1001)
    assert out.channels == ("R", "G", "B", "A") and out.alpha is AlphaState.PREMULTIPLIED
    np.testing.assert_allclose(out.pixels[..., 3], ramp(), atol=2e-6)
    np.testing.assert_allclose(out.pixels[..., :3], ramp()[..., None] * GREY, atol=2e-6)
    matte = p.evaluate("key", 1001, "matte")
    assert matte.channels == ("A",) and matte.colorspace == "Raw"
    np.testing.assert_array_equal(matte.pixels[..., 0], out.pixels[..., 3])
    assert out.metadata["composite:screen_color"] == pytest.approx(S.tolist(), abs=1e-6)


def test_screen_subtract_key_stage_gain():
    p = Pipeline("t")
    p.add("plate", MattePlate())
    p.add("key", ScreenSubtractKey(screen_color=list(map(float, S)), screen_gain=1.2, despill="none"), image="plate")
    a = p.evaluate("key", 1001).pixels[..., 3]
    np.testing.assert_allclose(a, np.clip(1 - 1.2 * (1 - ramp()), 0, 1), atol=2e-6)


def test_despill_stage_uses_keyer_screen_colour_and_passes_through_at_zero():
    p = keyed_pipeline(despill="none")
    p.add("despill", Despill(method="screen_subtract"), image="key")
    p.add("off", Despill(strength=0.0), image="key")
    key = p.evaluate("key", 1001).pixels
    out = p.evaluate("despill", 1001).pixels
    np.testing.assert_allclose(out, key, atol=1e-6)  # the keyed grey has no spill left
    assert p.fingerprint("off", 1001) == p.fingerprint("key", 1001, "image")
    assert p.fingerprint("despill", 1001) != p.fingerprint("key", 1001, "image")


def test_clean_plate_and_garbage_and_core_inputs():
    p = keyed_pipeline(despill="none")
    p.add("clean", CleanPlate(), image="plate")
    clean = p.evaluate("clean", 1001).pixels
    # Far from the foreground the plate is the screen; next to the soft ramp it is within a few percent.
    np.testing.assert_allclose(clean[:, 20:], np.broadcast_to(S, clean[:, 20:].shape), atol=1e-3)
    np.testing.assert_allclose(clean, np.broadcast_to(S, clean.shape), atol=0.035)
    p.add("garbage", Roto(shapes=[{"points": [[0, 0], [12, 0], [12, 16], [0, 16]]}]), image="plate")
    p.add("key2", ColorDifferenceKey(screen_color=list(map(float, S)), despill="none"),
          image="plate", clean_plate="clean", garbage="garbage.matte")
    a = p.evaluate("key2", 1001).pixels[..., 3]
    # Faint parts of a soft edge are partly taken for screen by the clean plate (documented limitation).
    np.testing.assert_allclose(a[:, :12], ramp()[:, :12], atol=0.12)
    assert np.abs(a[:, :12] - ramp()[:, :12]).mean() < 0.01
    assert a[:, 12:].max() == 0.0


def test_roto_matte_ops_and_garbage_stage():
    sq = [{"points": [[4, 4], [12, 4], [12, 12], [4, 12]]}]
    p = Pipeline("t")
    p.add("roto", Roto(shapes=sq, width=16, height=16))
    p.add("erode", MatteErode(amount=1.0), image="roto.matte")
    p.add("blur", MatteBlur(size=1.0, edge_only=True), image="roto.matte")
    p.add("clamp", MatteClamp(low=0.0, high=0.5), image="roto.matte")
    p.add("roto2", Roto(shapes=[{"points": [[8, 0], [16, 0], [16, 16], [8, 16]]}], width=16, height=16))
    p.add("comb", MatteCombine(operation="min"), a="roto.matte", b="roto2.matte")
    assert float(p.evaluate("roto", 1001, "matte").pixels.sum()) == 64.0
    assert float(p.evaluate("erode", 1001).pixels.sum()) == 36.0
    assert float(p.evaluate("blur", 1001).pixels.sum()) == pytest.approx(64.0, abs=0.5)
    assert float(p.evaluate("clamp", 1001).pixels.max()) == 0.5
    assert float(p.evaluate("comb", 1001).pixels.sum()) == 32.0
    # Keyframed shapes animate with the frame number.
    p.add("anim", Roto(shapes=[{"keyframes": {1001: [[0, 0], [4, 0], [4, 4]], 1003: [[0, 0], [8, 0], [8, 8]]}}],
                       width=10, height=10))
    assert float(p.evaluate("anim", 1002, "matte").pixels.sum()) == pytest.approx(18.0)


def test_matte_ops_on_premultiplied_rgba_keep_colour():
    p = keyed_pipeline(despill="none")
    p.add("grow", MatteErode(amount=-1.0), image="key")
    p.add("ext", EdgeExtend(), image="key")
    grown = p.evaluate("grow", 1001).pixels
    a = grown[..., 3]
    solid = a > 0.05
    # Colour stays grey (straight = 0.3) wherever alpha grew.
    np.testing.assert_allclose(grown[..., :3][solid] / a[solid][:, None], 0.3, atol=1e-3)
    ext = p.evaluate("ext", 1001)
    assert ext.alpha is AlphaState.STRAIGHT
    np.testing.assert_allclose(ext.pixels[0, 0, :3], 0.3, atol=1e-3)


def test_garbage_matte_stage_passes_through_without_shapes(tmp_path):
    p = keyed_pipeline(despill="none")
    p.add("none", GarbageMatte(), image="key")
    assert p.fingerprint("none", 1001) == p.fingerprint("key", 1001, "image")
    roto = tmp_path / "g.json"
    roto.write_text('{"schema": "composite.roto/1", "shapes": [{"points": [[0, 0], [12, 0], [12, 16], [0, 16]]}]}')
    p.add("cut", GarbageMatte(path=str(roto)), image="key")
    out = p.evaluate("cut", 1001).pixels
    assert out[:, 12:].max() == 0.0
    np.testing.assert_allclose(out[:, :12, 3], ramp()[:, :12], atol=2e-6)
    fp = p.fingerprint("cut", 1001)
    roto.write_text('{"shapes": [{"points": [[0, 0], [10, 0], [10, 16], [0, 16]]}]}')
    p2 = keyed_pipeline(despill="none")
    p2.add("cut", GarbageMatte(path=str(roto)), image="key")
    assert p2.fingerprint("cut", 1001) != fp  # the roto file's content is part of the fingerprint


def test_fingerprints_follow_parameters():
    a = keyed_pipeline()
    b = keyed_pipeline(clip_black=0.1)
    assert a.fingerprint("key", 1001) != b.fingerprint("key", 1001)
    assert a.fingerprint("key", 1001, "matte") != a.fingerprint("key", 1001, "image")
    p = Pipeline("t")
    p.add("r", Roto(width=8, height=8))
    p.add("e0", MatteErode(amount=0.0), image="r.matte")
    p.add("e1", MatteErode(amount=0.5), image="r.matte")
    assert p.fingerprint("e0", 1001) == p.fingerprint("r", 1001, "matte")
    assert p.fingerprint("e1", 1001) != p.fingerprint("r", 1001, "matte")


def test_recipe_round_trip_and_shipped_recipe():
    p = keyed_pipeline(despill="none")
    p.add("spill", Despill(method="replace", replace_color=[0.1, 0.1, 0.2]), image="key")
    p.add("roto", Roto(shapes=[{"type": "bezier", "points": [[1, 1, 0, 0, 1, 0], [5, 1], [5, 5]], "feather": 2}]),
          image="plate")
    p.add("g", GarbageMatte(shapes=[{"points": [[0, 0], [5, 0], [5, 5]], "invert": True}]), image="spill")
    p.add("ss", ScreenSubtractKey(softness=1.0), image="plate", garbage="roto.matte")
    p.add("cp", CleanPlate(resolution=64), image="plate")
    p.add("blur", MatteBlur(size=2.0), image="g")
    p.add("comb", MatteCombine(operation="subtract"), a="g", b="roto.matte")
    p.add("ext", EdgeExtend(threshold=0.9), image="comb")
    p.add("clamp", MatteClamp(high=0.9), image="ext")
    p.add("erode", MatteErode(amount=0.5), image="g")
    recipe = p.to_recipe()
    assert Pipeline.from_recipe(recipe).to_recipe() == recipe
    shipped = Pipeline.from_recipe(str(RECIPES / "key_greenscreen.yaml"))
    assert {"plate", "key", "despill", "garbage", "write"} <= set(shipped.nodes)
    shipped.set_param("key", "clip_black", 0.05)
    assert shipped.nodes["key"].stage.p.clip_black == 0.05
    assert Pipeline.from_recipe(shipped.to_recipe()).to_recipe() == shipped.to_recipe()


def test_bad_parameters_and_sizes():
    with pytest.raises(RecipeError, match="clip_white"):
        ColorDifferenceKey(clip_black=0.6, clip_white=0.5)
    with pytest.raises(RecipeError, match="replace_color"):
        Despill(method="replace")
    with pytest.raises(RecipeError, match="shapes"):
        Roto(shapes=[{"points": [[0, 0], [1, 1]]}])
    p = keyed_pipeline()
    p.add("big", MattePlate(size=2))
    p.add("key2", ColorDifferenceKey(), image="plate", clean_plate="big")
    with pytest.raises(InputError, match="clean plate is 24x32 but the image is 24x16"):
        p.evaluate("key2", 1001)
    p.add("grey", MattePlate())
    p.add("nokey", ColorDifferenceKey(screen="blue"), image="grey")
    with pytest.raises(InputError, match="nokey .*frame 1001: no visible blue screen"):
        p.evaluate("nokey", 1001)
