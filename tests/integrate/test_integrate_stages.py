"""Integration stages: numbers equal the functions, depth sources, fingerprints, pass-through, recipes."""

from __future__ import annotations

import numpy as np
import pytest

from composite.core import Image
from composite.core.errors import InputError, StateError
from composite.core.image import Window
from composite.core.state import RAW_SPACE, AlphaState
from composite.graph import Param, Pipeline, Stage, register
from composite.integrate.defocus import defocus, depth_defocus
from composite.integrate.edge_blend import edge_blend
from composite.integrate.haze import haze
from composite.integrate.lens import apply_distortion, remove_distortion
from composite.integrate.lightwrap import light_wrap
from composite.integrate.stages import Defocus, DepthDefocus, EdgeBlend, Haze, LensDistort, LightWrap

H, W = 40, 56


def _fg():
    px = np.zeros((H, W, 4), np.float32)
    px[8:32, 20:44] = (0.4, 0.3, 0.2, 1.0)
    px[8:32, 19] = (0.2, 0.15, 0.1, 0.5)
    return px


def _bg():
    yy, xx = np.mgrid[0:H, 0:W].astype(np.float32)
    return np.stack([0.2 + xx / W, 0.5 + 0 * xx, 3.0 * (yy < 10) + 0.1], -1).astype(np.float32)


def _depth():
    d = np.full((H, W), 20.0, np.float32)
    d[8:32, 20:44] = 4.0
    return d


@register
class IntegrateSource(Stage):
    """Test images: ``fg`` (premultiplied RGBA element), ``bg`` (opaque RGB with a depth layer), ``depth``."""

    type_name = "TestIntegrateSource"
    is_source = True
    params = {"kind": Param(str, "fg", choices=("fg", "bg", "depth", "rgb"))}

    def source_identity(self, t):
        return f"integrate:{self.p.kind}"

    def process(self, t, **_):
        if self.p.kind == "fg":
            return Image(_fg(), time=self.time(t))
        if self.p.kind == "rgb":
            return Image(_fg()[..., :3].copy(), ("R", "G", "B"), time=self.time(t))
        if self.p.kind == "depth":
            return Image(_depth()[..., None], ("Z",), colorspace=RAW_SPACE, time=self.time(t))
        return Image(_bg(), ("R", "G", "B"), time=self.time(t)).with_layer("depth", _depth()[..., None], ("Z",))


def pipeline():
    p = Pipeline("t")
    p.add("fg", IntegrateSource(kind="fg"))
    p.add("bg", IntegrateSource(kind="bg"))
    p.add("z", IntegrateSource(kind="depth"))
    return p


def test_stage_numbers_equal_the_functions():
    p = pipeline()
    p.add("wrap", LightWrap(size=3.0, intensity=0.8, threshold=0.5), fg="fg", bg="bg")
    p.add("wrapcomp", LightWrap(size=3.0, output="comp"), fg="fg", bg="bg")
    p.add("blend", EdgeBlend(size=2.0), fg="fg", bg="bg")
    p.add("dof", Defocus(radius=3.0, blades=6), image="bg")
    p.add("zdof", DepthDefocus(focus=4.0, size=6.0, max_radius=8.0, layers=5), image="bg")
    p.add("haze", Haze(density=0.05, color=[0.6, 0.7, 0.9]), image="bg")
    p.add("lens", LensDistort(direction="apply", k1=-0.1, k2=0.01), image="fg")
    fg, bg = _fg(), _bg()
    ev = lambda n: p.evaluate(n, 1001)  # noqa: E731
    np.testing.assert_array_equal(ev("wrap").pixels, light_wrap(fg, bg, size=3.0, intensity=0.8, threshold=0.5))
    np.testing.assert_allclose(ev("wrapcomp").pixels, light_wrap(fg, bg, size=3.0, output="comp"), atol=1e-6)
    np.testing.assert_array_equal(ev("blend").pixels, edge_blend(fg, bg, size=2.0))
    np.testing.assert_array_equal(ev("dof").pixels, defocus(bg, radius=3.0, blades=6))
    np.testing.assert_array_equal(ev("zdof").pixels, depth_defocus(bg, _depth(), focus=4.0, size=6.0,
                                                                   max_radius=8.0, layers=5))
    np.testing.assert_array_equal(ev("haze").pixels, haze(bg, _depth(), density=0.05, color=(0.6, 0.7, 0.9)))
    np.testing.assert_array_equal(ev("lens").pixels, apply_distortion(fg, k1=-0.1, k2=0.01))
    assert "depth" in ev("zdof").layers and "depth" in ev("haze").layers       # layers pass through


def test_depth_from_input_or_layer_or_distance_and_missing_depth():
    p = pipeline()
    p.add("from_layer", Haze(density=0.05), image="bg")
    p.add("from_input", Haze(density=0.05), image="fg", depth="z")
    p.add("uniform", Haze(density=0.05, distance=4.0), image="fg")
    p.add("missing", Haze(density=0.05), image="fg")
    p.add("zmissing", DepthDefocus(), image="fg")
    p.add("wrong_channel", Haze(density=0.05, depth_channel="depth.W"), image="bg")
    np.testing.assert_array_equal(p.evaluate("from_input", 1001).pixels, haze(_fg(), _depth(), density=0.05,
                                                                             color=(0.7, 0.75, 0.8)))
    uniform = p.evaluate("uniform", 1001).pixels
    np.testing.assert_array_equal(uniform, haze(_fg(), 4.0, density=0.05, color=(0.7, 0.75, 0.8)))
    assert p.evaluate("from_layer", 1001).pixels.shape == (H, W, 3)
    for name in ("missing", "zmissing"):
        with pytest.raises(InputError, match="no depth.*depth.Z.*connect a depth input"):
            p.evaluate(name, 1001)
    with pytest.raises(InputError, match="depth.W"):
        p.evaluate("wrong_channel", 1001)


def test_foreground_without_alpha_is_refused_clearly():
    p = pipeline()
    p.add("rgb", IntegrateSource(kind="rgb"))
    p.add("wrap", LightWrap(), fg="rgb", bg="bg")
    p.add("blend", EdgeBlend(), fg="rgb", bg="bg")
    for name in ("wrap", "blend"):
        with pytest.raises(StateError, match="expects alpha premultiplied, got opaque"):
            p.evaluate(name, 1001)


def test_defocus_of_an_element_grows_its_data_window():
    p = pipeline()
    p.add("dof", Defocus(radius=4.0), image="fg")
    out = p.evaluate("dof", 1001)
    assert out.data_window == Window(-4, -4, W + 3, H + 3)
    assert out.alpha is AlphaState.PREMULTIPLIED
    np.testing.assert_allclose(out.pixels[..., 3].sum(), _fg()[..., 3].sum(), rtol=1e-5)


def test_fingerprints_and_pass_through():
    p = pipeline()
    stages = {
        "wrap": (LightWrap(size=4.0), {"fg": "fg", "bg": "bg"}, ("size", 5.0)),
        "blend": (EdgeBlend(), {"fg": "fg", "bg": "bg"}, ("amount", 0.5)),
        "dof": (Defocus(radius=3.0), {"image": "bg"}, ("radius", 4.0)),
        "zdof": (DepthDefocus(), {"image": "bg"}, ("focus", 5.0)),
        "haze": (Haze(), {"image": "bg"}, ("density", 0.1)),
        "lens": (LensDistort(k1=0.05), {"image": "bg"}, ("k1", 0.06)),
    }
    for name, (stage, inputs, _) in stages.items():
        p.add(name, stage, **inputs)
    for name, (_, _, (param, value)) in stages.items():
        before = p.fingerprint(name, 1001)
        p.set_param(name, param, value)
        assert p.fingerprint(name, 1001) != before, name
    identities = {
        "wrap0": (LightWrap(intensity=0.0), {"fg": "fg", "bg": "bg"}, "fg"),
        "dof0": (Defocus(radius=0.0), {"image": "bg"}, "bg"),
        "haze0": (Haze(density=0.0), {"image": "bg"}, "bg"),
        "lens0": (LensDistort(), {"image": "bg"}, "bg"),
        "zdof0": (DepthDefocus(size=0.0, max_radius=0.0), {"image": "bg"}, "bg"),
    }
    for name, (stage, inputs, src) in identities.items():
        p.add(name, stage, **inputs)
        assert p.fingerprint(name, 1001) == p.fingerprint(src, 1001), name
        assert p.evaluate(name, 1001) is p.evaluate(src, 1001)


def test_lens_distort_round_trip_through_the_graph():
    p = pipeline()
    p.add("un", LensDistort(direction="remove", k1=-0.08, filter="cubic"), image="bg")
    p.add("re", LensDistort(direction="apply", k1=-0.08, filter="cubic"), image="un")
    out = p.evaluate("re", 1001)
    assert out.alpha is AlphaState.PREMULTIPLIED and out.channels == ("R", "G", "B", "A")
    inner = (slice(14, -6), slice(6, -6))                 # away from the frame edge and the hard step at y=10
    np.testing.assert_allclose(out.pixels[inner][..., :3], _bg()[inner], atol=2e-3)
    np.testing.assert_allclose(p.evaluate("un", 1001).pixels[..., :3],
                               remove_distortion(np.concatenate([_bg(), np.ones((H, W, 1), np.float32)], -1),
                                                 k1=-0.08, filter="cubic")[..., :3])


def test_recipe_round_trip():
    p = pipeline()
    p.add("wrap", LightWrap(size=3.0, threshold=0.4, output="wrap"), fg="fg", bg="bg")
    p.add("blend", EdgeBlend(size=1.5, blur=2.0), fg="fg", bg="bg")
    p.add("dof", Defocus(radius=2.5, blades=7, rotation=15.0, border="black"), image="fg")
    p.add("zdof", DepthDefocus(focus=4.0, depth_mode="inverse", depth_channel="Z"), image="bg", depth="z")
    p.add("haze", Haze(distance=12.0, color=[1.0, 0.9, 0.8]), image="fg")
    p.add("lens", LensDistort(direction="apply", k1=-0.1, center=[20.0, 18.0], focal=[60.0, 60.0]), image="bg")
    recipe = p.to_recipe()
    again = Pipeline.from_recipe(recipe)
    assert again.to_recipe() == recipe
    for name in ("wrap", "blend", "dof", "haze", "lens"):
        assert again.fingerprint(name, 1001) == p.fingerprint(name, 1001)
        np.testing.assert_array_equal(again.evaluate(name, 1001).pixels, p.evaluate(name, 1001).pixels)


def test_depth_defocus_keeps_generated_fraction_of_a_covered_element():
    from composite.core import Image
    from composite.core.coverage import coverage, mark_generated
    from composite.integrate.stages import DepthDefocus

    px = np.zeros((16, 16, 4), np.float32)
    px[4:12, 4:12] = [0.4, 0.3, 0.2, 1.0]
    img = mark_generated(Image(px)).with_layer("depth", np.full((16, 16, 1), 50.0, np.float32), ("Z",))
    out = DepthDefocus(focus=5.0, size=4.0, max_radius=3.0).process(1001, img)
    assert out.pixels.shape == (16, 16, 4)
    inside = out.a > 0.05
    np.testing.assert_allclose(coverage(out)[inside & (img.a > 0)], out.a[inside & (img.a > 0)], atol=1e-5)
