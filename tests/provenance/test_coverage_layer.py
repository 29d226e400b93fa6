"""The ai_coverage layer through stages that move, merge, grade and filter pixels over time, and into EXR.

Reference arithmetic: coverage is associated with alpha like premultiplied colour. A fully generated
element has coverage == alpha; ``over`` gives ``cA + cB (1 - aA)``; a resampling filter applied to
colour and alpha applies to coverage too (so coverage == alpha survives any warp of a fully generated
element); colour operations leave it untouched.
"""

from __future__ import annotations

import numpy as np
import pytest

from composite.core import Image
from composite.core.coverage import coverage, coverage_fraction, mark_generated, with_coverage
from composite.core.merge import merge_images
from composite.graph import Pipeline
from composite.graph.builtin import Constant, Merge, Reformat, Transform
from composite.io.exr import read_exr
from composite.io.stages import WriteImage
from composite.provenance.coverage_stats import coverage_summary

from .helpers import ConstantImage, ProvTestElement, SequenceImages


def _element(alpha=0.5, box=(4, 2, 8, 6), h=12, w=16, fraction=1.0):
    px = np.zeros((h, w, 4), np.float32)
    x, y, bw, bh = box
    px[y:y + bh, x:x + bw] = [0.4 * alpha, 0.2 * alpha, 0.1 * alpha, alpha]
    return mark_generated(Image(px), fraction)


def _plate(h=12, w=16, value=0.3):
    px = np.full((h, w, 4), value, np.float32)
    px[..., 3] = 1.0
    return Image(px)


def test_over_gives_coverage_of_the_generated_element_and_of_a_generated_background():
    fg = _element(alpha=0.5)
    out = merge_images("over", fg, _plate())
    cov = coverage(out)
    expected = np.zeros((12, 16), np.float32)
    expected[2:8, 4:12] = 0.5  # cA + cB (1 - aA), cB = 0
    np.testing.assert_array_equal(cov, expected)
    assert coverage_summary(out) == {"mean": round(48 * 0.5 / 192, 6), "max": 0.5, "area": 0.25}
    # a live-action actor (alpha 1 core, 0.25 edge) over a fully generated background: 1 - a_actor
    actor = np.zeros((12, 16, 4), np.float32)
    actor[3:9, 5:11] = [0.25, 0.25, 0.25, 0.25]
    actor[4:8, 6:10] = [1.0, 1.0, 1.0, 1.0]
    bg = mark_generated(_plate(value=0.6))
    out = merge_images("over", Image(actor), bg)
    np.testing.assert_allclose(coverage(out), 1.0 - actor[..., 3], atol=1e-7)
    np.testing.assert_allclose(coverage_fraction(out), 1.0 - actor[..., 3], atol=1e-7)


def test_partly_generated_element_under_mix_and_mask():
    fg = _element(alpha=0.8, fraction=0.5)  # half of each element pixel is generated
    bg = with_coverage(_plate(), np.full((12, 16), 0.25, np.float32))
    out = merge_images("over", fg, bg, mix=0.5)
    a = fg.a
    full = coverage(fg) + 0.25 * (1 - a)
    expected = 0.25 + 0.5 * (full - 0.25)  # B + mix (result - B)
    np.testing.assert_allclose(coverage(out), expected, atol=1e-7)
    masked = merge_images("mask", fg, bg)  # B a
    np.testing.assert_allclose(coverage(masked), 0.25 * a, atol=1e-7)


@pytest.mark.parametrize("stage", [Transform(translate=[3.0, 2.0]), Transform(translate=[0.5, 0.25]),
                                   Transform(rotate=30.0, scale=[1.3, 0.8]),
                                   Reformat(width=8, height=6, mode="distort", filter="bilinear"),
                                   Reformat(width=32, height=20, mode="fit", filter="cubic")])
def test_warps_resample_coverage_like_alpha(stage):
    src = _element(alpha=0.75)
    p = Pipeline("t")
    p.add("el", ConstantImage(image=src))
    p.add("op", stage, image="el")
    out = p.evaluate("op", 1001)
    cov = coverage(out)
    np.testing.assert_allclose(cov, out.a, atol=2e-6)  # fully generated: coverage stays equal to alpha
    if isinstance(stage, Transform) and stage.p.translate == (3.0, 2.0):
        expected = np.zeros((12, 16), np.float32)
        expected[4:10, 7:15] = 0.75
        np.testing.assert_array_equal(cov, expected)
    if isinstance(stage, Transform) and stage.p.translate == (0.5, 0.25):
        # bilinear half/quarter-pixel shift keeps the total (the element stays inside the frame)
        assert float(cov.sum(dtype=np.float64)) == pytest.approx(48 * 0.75, rel=1e-5)


def test_colour_operations_leave_coverage_untouched():
    from composite.color.match_stages import CDL, Grade
    from composite.graph.builtin import Noise

    comp = merge_images("over", _element(alpha=0.5), _plate())
    for stage in (Grade(gain=[2.0, 1.5, 0.5], lift=[0.01, 0.0, 0.0], gamma=[1.2, 1.0, 1.0]),
                  CDL(slope=[1.2, 1.0, 0.9], offset=[0.01, 0.0, 0.0], power=[1.1, 1.0, 1.0], saturation=0.8),
                  Noise(amount=0.05, seed=3)):
        p = Pipeline("t")
        p.add("el", ConstantImage(image=comp))
        p.add("op", stage, image="el")
        out = p.evaluate("op", 1001)
        assert not np.array_equal(out.pixels[..., :3], comp.pixels[..., :3])  # the colour did change
        np.testing.assert_array_equal(coverage(out), coverage(comp))


def test_deflicker_keeps_coverage_and_stabilize_warps_it_with_alpha():
    from composite.temporal.stages import Deflicker, Stabilize
    from composite.temporal.synthetic import camera_frame

    frames = {}
    for k in range(5):
        rgb, _ = camera_frame(k, height=72, width=96, seed=2, shake=2.0)
        rgb = rgb * np.float32(1.0 + 0.15 * (-1) ** k)  # flicker
        px = np.concatenate([rgb, np.ones((72, 96, 1), np.float32)], axis=2)
        img = Image(np.ascontiguousarray(px))
        frac = np.zeros((72, 96), np.float32)
        frac[:, :40] = 1.0  # the left part of the plate is a generated set extension
        frames[1001 + k] = with_coverage(img, frac)
    p = Pipeline("t")
    p.add("seq", SequenceImages(frames=frames))
    p.add("deflicker", Deflicker(radius=2, motion_compensate=False), image="seq")
    p.add("stab", Stabilize(radius=2, max_points=200, min_inliers=6), image="seq")
    out = p.evaluate("deflicker", 1003)
    assert not np.allclose(out.pixels[..., :3], frames[1003].pixels[..., :3])
    np.testing.assert_array_equal(coverage(out), coverage(frames[1003]))
    # a fully generated plate: coverage must equal alpha after the stabilising warp (borders: both 0)
    full = {k: mark_generated(v) for k, v in frames.items()}
    p.nodes["seq"].stage.frames_ = full
    p._reset_caches()
    st = p.evaluate("stab", 1003)
    assert float(st.a.min()) < 1.0  # the warp uncovered a border
    np.testing.assert_allclose(coverage(st), st.a, atol=1e-5)


def test_temporal_matte_smooth_keeps_coverage_with_alpha():
    from composite.temporal.stages import TemporalMatteSmooth

    rng = np.random.default_rng(3)
    frames = {}
    for k in range(5):
        px = np.zeros((32, 40, 4), np.float32)
        a = np.zeros((32, 40), np.float32)
        a[8:24, 10:30] = 1.0
        a[8:24, 9] = a[8:24, 30] = rng.uniform(0.2, 0.8)  # boiling edge
        px[..., :3] = 0.5 * a[..., None]
        px[..., 3] = a
        frames[1001 + k] = mark_generated(Image(px))
    p = Pipeline("t")
    p.add("seq", SequenceImages(frames=frames))
    p.add("smooth", TemporalMatteSmooth(radius=2), matte="seq")
    out = p.evaluate("smooth", 1003)
    assert not np.allclose(out.a, frames[1003].a)
    np.testing.assert_allclose(coverage(out), out.a, atol=1e-5)


def test_defocus_blurs_coverage_with_alpha():
    from composite.integrate.stages import Defocus

    el = _element(alpha=1.0, h=24, w=32, box=(10, 8, 12, 8))
    out = Defocus(radius=3.0).process(1001, el)
    np.testing.assert_allclose(coverage(out), out.a, atol=1e-4)


def test_coverage_is_written_to_the_exr_with_its_summary(tmp_path):
    p = Pipeline("sh010")
    plate = p.add("plate", Constant(color=[0.2, 0.2, 0.2, 1.0], width=24, height=16))
    gen = p.add("gen", ProvTestElement(alpha=0.5))
    comp = p.add("comp", Merge(), a=gen, b=plate)
    p.add("write", WriteImage(path=str(tmp_path / "o.####.exr")), image=comp)
    p.render("1001", progress=False)
    img = read_exr(tmp_path / "o.1001.exr")
    assert img.layers["ai_coverage"].channels == ("Y",)
    expected = np.zeros((16, 24), np.float32)
    expected[4:12, 6:18] = 0.5
    np.testing.assert_array_equal(img.layers["ai_coverage"].pixels[..., 0], expected)  # stored as float
    import json

    head = json.loads(img.metadata["composite:provenance"])
    assert head["ai_coverage"] == {"mean": 0.125, "max": 0.5, "area": 0.25}  # 96 px of 384 at 0.5
    assert img.metadata["Iptc4xmpExt:DigitalSourceType"] == \
        "http://cv.iptc.org/newscodes/digitalsourcetype/compositeWithTrainedAlgorithmicMedia"
