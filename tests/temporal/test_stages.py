"""Temporal stages: chunk determinism, pinned numbers, fingerprints, recipes and bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest

from composite.core import Image
from composite.core.errors import InputError, StateError
from composite.graph import Pipeline
from composite.graph.builtin import Constant
from composite.temporal.deflicker import deflicker
from composite.temporal.flow import clear_caches, estimate_flow
from composite.temporal.matte_smooth import smooth_matte_temporal
from composite.temporal.metrics import dtssd, flicker_index
from composite.temporal.stages import ApplyTrack, Deflicker, OpticalFlow, Stabilize, TemporalMatteSmooth
from composite.temporal.track import Track, TrackingError, estimate_transform

from .helpers import TemporalTestSource

FRAMES = list(range(1001, 1013))


def build(kind: str, stage_factory, **source):
    p = Pipeline("sh010")
    src = p.add("src", TemporalTestSource(kind=kind, **source))
    stage = stage_factory()
    if isinstance(stage, TemporalMatteSmooth):
        p.add("node", stage, matte="src.matte", plate=src)
    else:
        p.add("node", stage, **{next(iter(stage.inputs)): src})
    return p


CASES = {
    "matte": ("matte", lambda: TemporalMatteSmooth(radius=2)),
    "deflicker": ("flicker", lambda: Deflicker(radius=4, grid=[2, 2])),
    "stabilize": ("camera", lambda: Stabilize(radius=3, model="similarity")),
    "flow": ("camera", lambda: OpticalFlow(preset="fast")),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_chunked_render_is_bit_identical(case):
    kind, factory = CASES[case]
    clear_caches()
    whole = build(kind, factory)
    full = {t: whole.evaluate("node", t) for t in FRAMES}
    for start in range(FRAMES[0], FRAMES[-1] + 1, 3):      # farm tasks of 3 frames, each a fresh process
        clear_caches()
        chunk = build(kind, factory)
        for t in range(start, start + 3):
            img = chunk.evaluate("node", t)
            assert np.array_equal(img.pixels, full[t].pixels), (case, t)
            for name, layer in img.layers.items():
                assert np.array_equal(layer.pixels, full[t].layers[name].pixels)
            assert chunk.fingerprint("node", t) == whole.fingerprint("node", t)


def test_matte_stage_numbers():
    p = build("matte", lambda: TemporalMatteSmooth(radius=2))
    keyed = {t: p.evaluate("src", t, "matte").pixels[..., 0] for t in FRAMES}
    plates = {t: p.evaluate("src", t).pixels for t in FRAMES}
    truth = [p.evaluate("src", t, "truth").pixels[..., 0] for t in FRAMES]
    out = [p.evaluate("node", t) for t in FRAMES]
    assert out[0].channels == ("A",) and out[0].colorspace == "Raw"
    win = [1004, 1005, 1006, 1007, 1008]
    ref = smooth_matte_temporal({k: keyed[k] for k in win}, 1006, guides={k: plates[k] for k in win})
    assert np.array_equal(out[5].pixels[..., 0], ref)
    assert dtssd([o.pixels[..., 0] for o in out], truth) < 0.75 * dtssd(list(keyed.values()), truth)


def test_deflicker_stage_numbers():
    p = build("flicker", lambda: Deflicker(radius=4))
    frames = {t: p.evaluate("src", t).pixels for t in FRAMES}
    out = [p.evaluate("node", t).pixels for t in FRAMES]
    ref = deflicker({k: frames[k] for k in range(1001, 1010)}, 1005)
    assert np.array_equal(out[4], ref)
    zero = [(np.zeros((64, 96, 2), np.float32),) * 2] * 11
    assert flicker_index(out, flows=zero) < 0.35 * flicker_index(list(frames.values()), flows=zero)
    meta = p.evaluate("node", 1005).metadata["composite:deflicker_gain_stops"]
    assert len(meta) == 3


def test_stabilize_stage_reduces_shake():
    p = build("camera", lambda: Stabilize(radius=4, model="translation", method="average"))
    src = [p.evaluate("src", t).pixels for t in FRAMES]
    out = [p.evaluate("node", t) for t in FRAMES]
    assert out[0].channels == ("R", "G", "B", "A")            # borders are transparent after the move

    def jitter(frames):
        steps = [estimate_transform(frames[i], frames[i + 1], model="translation").matrix[:2, 2]
                 for i in range(len(frames) - 1)]
        return float(np.std(np.diff(np.array(steps), axis=0)))

    # Compare inner crops (the moved borders are empty in the stabilised frames).
    crop = (slice(8, -8), slice(8, -8))
    stab = [o.pixels[crop][..., :3].copy() for o in out]
    assert jitter(stab) < 0.5 * jitter([s[crop] for s in src])


def test_optical_flow_stage_layers_and_ends():
    p = build("camera", lambda: OpticalFlow(preset="medium"))
    img = p.evaluate("node", 1005)
    a, b = p.evaluate("src", 1005).pixels, p.evaluate("src", 1006).pixels
    assert np.array_equal(img.layer("forward").pixels, estimate_flow(a, b, preset="medium"))
    assert img.layer("occlusion").channels == ("forward", "backward")
    last = p.evaluate("node", FRAMES[-1])
    assert not last.layer("forward").pixels.any() and last.layer("occlusion").pixels[..., 0].all()
    cut = build("camera", lambda: OpticalFlow(), cut_at=1006)          # the next frame is another shot
    at_cut = cut.evaluate("node", 1005)
    assert not at_cut.layer("forward").pixels.any() and at_cut.layer("backward").pixels.any()


def test_apply_track_moves_a_layer_exactly(tmp_path):
    frames = list(range(1001, 1006))
    mats = [np.array([[1, 0, 2.0 * i], [0, 1, -1.0 * i], [0, 0, 1]]) for i in range(5)]
    path = Track(frames, np.array(mats), 96, 64, "translation").save(tmp_path / "cam.json")
    p = Pipeline("t")
    bg = p.add("bg", TemporalTestSource(kind="flicker", first=1001, last=1005))
    p.add("move", ApplyTrack(track=str(path)), image=bg)
    p.add("back", ApplyTrack(track=str(path), invert=True), image="move")
    src = p.evaluate("bg", 1004).pixels
    moved = p.evaluate("move", 1004).pixels       # 6 px right, 3 px up
    expected = np.zeros_like(moved)
    expected[:61, 6:, :3] = src[3:, :90]
    expected[:61, 6:, 3] = 1.0
    assert np.allclose(moved, expected, atol=1e-6)
    # Smoothing a linear track changes nothing; a fingerprint follows the file's content.
    p.add("smooth", ApplyTrack(track=str(path), smoothing="savgol", radius=2, order=1), image=bg)
    assert np.allclose(p.evaluate("smooth", 1004).pixels, moved, atol=1e-5)
    fp = p.fingerprint("move", 1004)
    mats[3] = np.array([[1, 0, 7.0], [0, 1, -3.0], [0, 0, 1]])
    Track(frames, np.array(mats), 96, 64, "translation").save(path)
    q = Pipeline.from_recipe(p.to_recipe())
    assert q.fingerprint("move", 1004) != fp
    late = Pipeline("late")
    longer = late.add("bg", TemporalTestSource(kind="flicker", first=1001, last=1010))
    late.add("move", ApplyTrack(track=str(path)), image=longer)
    with pytest.raises(InputError, match="covers frames 1001-1005, not 1008"):
        late.evaluate("move", 1008)


def test_fingerprints_change_with_params_and_pass_through():
    def fp(factory, kind="matte"):
        return build(kind, factory).fingerprint("node", 1005)

    assert fp(lambda: TemporalMatteSmooth(radius=2)) != fp(lambda: TemporalMatteSmooth(radius=3))
    p = build("matte", lambda: TemporalMatteSmooth(radius=0))
    assert p.fingerprint("node", 1005) == p.fingerprint("src", 1005, "matte")
    assert fp(lambda: Deflicker(grid=[2, 2]), "flicker") != fp(lambda: Deflicker(grid=[3, 2]), "flicker")
    p = build("flicker", lambda: Deflicker(strength=0.0))
    assert p.fingerprint("node", 1005) == p.fingerprint("src", 1005, "image")
    assert fp(lambda: Stabilize(method="kalman"), "camera") != fp(lambda: Stabilize(method="savgol"), "camera")
    p = build("camera", lambda: Stabilize(radius=0))
    assert p.fingerprint("node", 1005) == p.fingerprint("src", 1005, "image")
    assert fp(lambda: OpticalFlow(preset="fast"), "camera") != fp(lambda: OpticalFlow(preset="fine"), "camera")


@pytest.mark.parametrize("factory", [
    lambda: TemporalMatteSmooth(radius=3, preset="fine", alpha_tolerance=0.5, cut_threshold=0.0),
    lambda: Deflicker(radius=6, grid=[4, 3], mode="luminance", order=0, preserve_changes=None),
    lambda: Stabilize(radius=5, model="homography", method="kalman", on_failure="skip"),
    lambda: OpticalFlow(preset="ultrafast", scale=0.5, encoding="linear"),
])
def test_recipe_round_trip(factory):
    p = build("matte", factory)
    recipe = p.to_recipe()
    assert Pipeline.from_recipe(recipe).to_recipe() == recipe
    q = Pipeline.from_recipe(recipe)
    assert q.fingerprint("node", 1004) == p.fingerprint("node", 1004)


def test_apply_track_recipe_round_trip(tmp_path):
    path = Track([1, 2], np.stack([np.eye(3)] * 2), 96, 64).save(tmp_path / "t.json")
    p = Pipeline("t")
    src = p.add("src", TemporalTestSource(first=1, last=2))
    p.add("node", ApplyTrack(track=str(path), reference=2, invert=True, smoothing="kalman"), image=src)
    assert Pipeline.from_recipe(p.to_recipe()).to_recipe() == p.to_recipe()


def test_one_frame_sequence_passes_through():
    for kind, factory in CASES.values():
        p = build(kind, factory, first=1001, last=1001)
        out = p.evaluate("node", 1001)
        src = p.evaluate("src", 1001, "matte" if kind == "matte" else "image")
        assert np.array_equal(out.pixels[..., :src.pixels.shape[2]], src.pixels)


def test_windows_stop_at_cuts_and_size_changes():
    p = build("flicker", lambda: Deflicker(radius=12), cut_at=1007)
    frames = {t: p.evaluate("src", t).pixels for t in range(1001, 1007)}
    assert np.array_equal(p.evaluate("node", 1004).pixels, deflicker(frames, 1004, preset="fast"))
    q = build("matte", lambda: TemporalMatteSmooth(radius=2, cut_threshold=0.0), size_change_at=1007)
    out = q.evaluate("node", 1006)                 # 1007 and 1008 are narrower: left out, no error
    keyed = {t: q.evaluate("src", t, "matte").pixels[..., 0] for t in (1004, 1005, 1006)}
    plates = {t: q.evaluate("src", t).pixels for t in (1004, 1005, 1006)}
    assert np.array_equal(out.pixels[..., 0], smooth_matte_temporal(keyed, 1006, guides=plates))
    assert q.evaluate("node", 1008).width == 88
    r = build("matte", lambda: TemporalMatteSmooth(radius=2), cut_at=1007)   # cut found on the plate
    keyed = {t: r.evaluate("src", t, "matte").pixels[..., 0] for t in (1004, 1005, 1006)}
    plates = {t: r.evaluate("src", t).pixels for t in (1004, 1005, 1006)}
    assert np.array_equal(r.evaluate("node", 1006).pixels[..., 0], smooth_matte_temporal(keyed, 1006, guides=plates))


def test_textureless_plate_and_wrong_states():
    p = Pipeline("flat")
    flat = p.add("flat", Constant(color=[0.18, 0.18, 0.18, 1.0], width=64, height=48, first=1, last=5))
    p.add("stab", Stabilize(radius=2), image=flat)
    with pytest.raises(TrackingError, match="at frame 3.*textureless"):
        p.evaluate("stab", 3)
    p.set_param("stab", "on_failure", "skip")
    assert np.array_equal(p.evaluate("stab", 3).pixels, p.evaluate("flat", 3).pixels)
    straight = Image(np.ones((8, 8, 4), np.float32), alpha="straight")
    with pytest.raises(StateError, match="straight"):
        Stabilize(radius=1).process(1, {1: straight})
    with pytest.raises(StateError, match="A channel"):
        TemporalMatteSmooth().process(1, {1: Image(np.ones((8, 8, 2), np.float32), ("X", "Y"), alpha="opaque")})


def test_track_file_errors(tmp_path):
    stage = ApplyTrack(track=str(tmp_path / "missing.json"))
    with pytest.raises(InputError, match="does not exist"):
        stage.process(1, Image(np.ones((4, 4, 4), np.float32)))
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"schema": "other"}))
    with pytest.raises(InputError, match="not a track file"):
        ApplyTrack(track=str(bad)).process(1, Image(np.ones((4, 4, 4), np.float32)))
