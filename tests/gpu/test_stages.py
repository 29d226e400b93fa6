"""Stages with torch implementations give the NumPy pipeline's results (state, layers, metadata and pixels
within the ops' tolerances), keep fingerprints and recipes unchanged, and mix with NumPy-only stages."""

from __future__ import annotations

import numpy as np
import pytest

from composite.color.grain import measure_grain
from composite.color.grain_stages import Regrain
from composite.color.match_stages import CDL, ColorTransfer, Grade, MatchToReference
from composite.core import Image
from composite.core.state import AlphaState
from composite.extend.stages import Crowd
from composite.gpu.image import DeviceImage
from composite.gpu.stages import implementation, implemented
from composite.graph import Param, Pipeline, Stage
from composite.graph.builtin import (
    Constant,
    Crop,
    Merge,
    Noise,
    Premultiply,
    Reformat,
    Transform,
    Unpremultiply,
)
from composite.integrate.stages import Defocus, LightWrap
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
    ScreenSubtractKey,
)

from .conftest import smooth_rgba

W, H = 64, 48


class GreenPlate(Stage):
    """Frames of the synthetic green-screen sequence (opaque RGB)."""

    is_source = True
    params = {"seed": Param(int, 3)}

    def frame_range(self):
        return (1001, 1004)

    def source_identity(self, t):
        return f"green:{self.p.seed}:{t}"

    def process(self, t, **_):
        from composite.synth import greenscreen_sequence

        seq = _SEQ.get(self.p.seed) or _SEQ.setdefault(self.p.seed, greenscreen_sequence(W, H, 4, seed=self.p.seed))
        return Image(seq.frame(t).plate, ("R", "G", "B"), time=self.time(t))


_SEQ: dict = {}


class Element(Stage):
    """A premultiplied RGBA element with a data window smaller than its display window and a coverage layer."""

    is_source = True
    params = {"seed": Param(int, 0)}

    def frame_range(self):
        return (1001, 1004)

    def source_identity(self, t):
        return f"element:{self.p.seed}:{t}"

    def process(self, t, **_):
        from composite.core.image import Window

        px = smooth_rgba(np.random.default_rng(self.p.seed + t), 40, 50)
        img = Image(px, data_window=Window.from_size(50, 40, 6, 4), display_window=Window.from_size(W, H),
                    time=self.time(t), metadata={"element": t})
        return img.with_layer("ai_coverage", np.ascontiguousarray(px[..., 3:]), ("Y",))


def _compare(build, frames=(1001, 1002), node="out", output=None, atol=1e-5, rtol=0.0):
    p_np, p_t = build(), build()
    p_t.device = "torch-cpu"
    for f in frames:
        a = p_np.evaluate(node, f, output)
        b = p_t.evaluate(node, f, output)
        assert isinstance(b, Image)
        for field in ("channels", "colorspace", "alpha", "data_window", "display_window", "pixel_aspect", "time"):
            assert getattr(a, field) == getattr(b, field), field
        assert dict(a.metadata) == dict(b.metadata)
        np.testing.assert_allclose(b.pixels, a.pixels, atol=atol, rtol=rtol)
        assert sorted(a.layers) == sorted(b.layers)
        for name in a.layers:
            np.testing.assert_allclose(b.layers[name].pixels, a.layers[name].pixels, atol=atol, rtol=rtol)
        assert p_np.fingerprint(node, f) == p_t.fingerprint(node, f)     # the device is not in fingerprints
    assert p_t.to_recipe() == p_np.to_recipe()
    return p_t


def _stage_runs_on_device(p: Pipeline, node: str) -> bool:
    return implementation(p.nodes[node].stage) is not None


def _keyed(key_cls=ColorDifferenceKey, **kw):
    def build():
        p = Pipeline("t")
        plate = p.add("plate", GreenPlate())
        p.add("out", key_cls(**kw), image=plate)
        return p
    return build


@pytest.mark.parametrize("kw", [{}, {"clean_plate": "auto"}, {"screen_color": [0.05, 0.4, 0.08], "despill": "none"}])
def test_keyer_stages(kw):
    p = _compare(_keyed(**kw), output="image")
    _compare(_keyed(**kw), output="matte")
    _compare(_keyed(ScreenSubtractKey, softness=1.0, **kw), output="image")
    assert _stage_runs_on_device(p, "out")


def test_keyer_with_clean_plate_and_mattes_inputs():
    def build():
        p = Pipeline("t")
        plate = p.add("plate", GreenPlate())
        cp = p.add("cp", CleanPlate(), image=plate)
        key = p.add("key", ColorDifferenceKey(), image=plate, clean_plate=cp)
        garbage = p.add("garbage", GarbageMatte(shapes=[{"points": [[2, 2], [60, 2], [60, 46], [2, 46]]}]),
                        image="key.matte")
        p.add("out", Despill(method="screen_subtract"), image=key)
        p.add("m", MatteCombine(operation="min"), a=key, b=garbage)
        return p
    _compare(build)
    _compare(build, node="m")
    _compare(build, node="cp")


@pytest.mark.parametrize("stage", [MatteErode(amount=1.5), MatteErode(amount=-2.0), MatteBlur(size=1.5),
                                   MatteBlur(size=1.5, edge_only=True), MatteClamp(low=0.2, high=0.8),
                                   EdgeExtend(), Premultiply, Unpremultiply])
def test_matte_and_premultiplication_stages(stage):
    def build():
        p = Pipeline("t")
        el = p.add("el", Element())
        src = el
        if stage is Premultiply:
            src = p.add("straight", Unpremultiply(), image=el)
        st = stage() if isinstance(stage, type) else stage.with_params()
        p.add("out", st, image=src)
        return p
    _compare(build)


def test_merge_crop_reformat_transform():
    def build():
        p = Pipeline("t")
        el = p.add("el", Element())
        bg = p.add("bg", Constant(color=[0.1, 0.2, 0.3, 1.0], width=W, height=H))
        comp = p.add("comp", Merge(operation="over", mix=0.8), a=el, b=bg)
        moved = p.add("moved", Transform(translate=[2.5, -1.25], rotate=7.0, filter="cubic"), image=comp)
        small = p.add("small", Reformat(width=40, height=30, mode="fit", filter="bilinear"), image=moved)
        p.add("out", Crop(box=[3, 2, 30, 20]), image=small)
        p.add("screen", Merge(operation="screen"), a=el, b=el)
        p.add("lanczos", Transform(rotate=3.0, filter="lanczos"), image=el)    # runs on the NumPy path
        return p
    p = _compare(build)
    _compare(build, node="screen")
    _compare(build, node="lanczos")
    assert not _stage_runs_on_device(p, "lanczos") and _stage_runs_on_device(p, "moved")


def test_colour_stages():
    def build():
        p = Pipeline("t")
        el = p.add("el", Element())
        plate = p.add("plate", GreenPlate())
        g = p.add("g", Grade(gain=[1.2, 1.0, 0.8], gamma=[1.1, 1.0, 0.9], saturation=0.8), image=el)
        c = p.add("c", CDL(slope=[1.1, 1.0, 0.9], power=[1.0, 1.2, 1.0], encoding="acescct"), image=g)
        p.add("out", ColorTransfer(method="mkl", stats_radius=1), image=c, reference=plate)
        p.add("hist", ColorTransfer(method="histogram", strength=0.6), image=plate, reference=el)
        p.add("match", MatchToReference(), image=el, reference=plate)          # NumPy path
        return p
    # Grade → CDL (ACEScct) → a transfer fitted on their output: the fit sees inputs that differ by float32
    # rounding (~2e-6), and the fitted matrix passes that on; 2e-4 relative for the chain.
    _compare(build, atol=2e-4, rtol=2e-4)
    _compare(build, node="c", atol=3e-5, rtol=3e-5)
    # Histogram fits bin samples: one sample on a bin edge (float64 rounding of the encoding) may land in
    # the neighbouring bin and move the table by a fraction of a bin.
    _compare(build, node="hist", atol=2e-4, rtol=2e-4)
    p = _compare(build, node="match", atol=1e-6)
    assert not _stage_runs_on_device(p, "match")


def test_regrain_lightwrap_defocus():
    rng = np.random.default_rng(2)
    plate = np.full((64, 64, 3), 0.2, np.float32) + rng.normal(0, 0.01, (64, 64, 3)).astype(np.float32)
    profile = measure_grain(plate, bands=2).to_dict()

    def build():
        p = Pipeline("t")
        el = p.add("el", Element())
        bg = p.add("bg", GreenPlate())
        gr = p.add("gr", Regrain(profile=profile, amount=0.7, seed=4), image=el)
        lw = p.add("lw", LightWrap(size=3.0, intensity=0.6, output="comp"), fg=gr, bg=bg)
        p.add("out", Defocus(radius=2.5), image=lw)
        p.add("soft", Defocus(radius=3.0, border="black"), image=el)
        return p
    _compare(build)
    _compare(build, node="soft")


def test_crowd_stage(tmp_path):
    from composite.extend.crowd import sprites_from_matte
    from composite.synth import crowd_tile

    sprites_from_matte(crowd_tile(count=4, sprite_height=32, seed=0).pixels, min_height=16).save(tmp_path / "lib")

    def build():
        p = Pipeline("t")
        p.add("out", Crowd(library=str(tmp_path / "lib"), count=30, width=96, height=64, horizon_y=20.0,
                           focal_px=120.0, generated=True))
        return p
    _compare(build, atol=1e-6)


@pytest.mark.parametrize("mode,filter", [("fit", "area"), ("fill", "lanczos"), ("distort", "nearest"),
                                         ("none", "cubic")])
def test_reformat_filters_and_modes(mode, filter):
    def build():
        p = Pipeline("t")
        el = p.add("el", Element())
        p.add("out", Reformat(width=37, height=29, mode=mode, filter=filter, pixel_aspect=1.25), image=el)
        return p
    _compare(build)


def test_stages_without_torch_implementation_mix_in():
    def build():
        p = Pipeline("t")
        el = p.add("el", Element())
        n = p.add("noise", Noise(amount=0.05, seed=1), image=el)     # NumPy only
        p.add("out", Grade(gain=[2.0, 2.0, 2.0]), image=n)
        return p
    p = _compare(build)
    assert not _stage_runs_on_device(p, "noise") and _stage_runs_on_device(p, "out")
    assert {"Merge", "ColorDifferenceKey", "Despill", "ColorTransfer", "Grade", "Crowd"} <= set(implemented())


def test_evaluate_outputs_keeps_device_frames_on_the_device():
    p = _keyed(screen_color=[0.05, 0.4, 0.08])()
    p.device = "torch-cpu"
    outs = p.evaluate_outputs("out", 1001)
    assert isinstance(outs["image"], DeviceImage) and outs["image"].alpha is AlphaState.PREMULTIPLIED
