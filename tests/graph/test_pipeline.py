import numpy as np
import pytest

from composite.core import NonFiniteError, RecipeError, RenderError, StateError
from composite.graph import Pipeline
from composite.graph.builtin import Constant, Merge, Noise, NoOp, Transform, Unpremultiply

from . import helpers
from .helpers import CountingSource, Exploding, TemporalMean


def test_dag_with_several_inputs():
    p = Pipeline("t")
    bg = p.add("bg", Constant(color=[0.1, 0.2, 0.3, 1.0], width=4, height=2))
    fg = p.add("fg", Constant(color=[0.5, 0.0, 0.0, 0.5], width=4, height=2))
    p.add("comp", Merge(operation="over"), a=fg, b=bg)
    np.testing.assert_allclose(p.evaluate("comp", 1).pixels[0, 0], [0.55, 0.1, 0.15, 1.0], atol=1e-7)


def test_temporal_window_reads_each_frame_once_and_clamps_to_range():
    helpers.CALLS.clear()
    p = Pipeline("t")
    src = p.add("src", CountingSource(first=1001, last=1005))
    a = p.add("a", TemporalMean(radius=2), image=src)
    p.add("b", TemporalMean(radius=1), image=src)  # a second consumer of the same window
    p.add("c", Merge(operation="plus"), a=a, b="b")
    values = [float(p.evaluate("c", t).pixels[0, 0, 0]) for t in range(1001, 1006)]
    # a at 1001: mean of clamped frames {1001, 1002, 1003}; b at 1001: mean of {1001, 1002}
    assert values[0] == pytest.approx((1001 + 1002 + 1003) / 3 + (1001 + 1002) / 2)
    assert values[2] == pytest.approx(1003 + 1003)
    assert sorted(helpers.CALLS["src"]) == [1001, 1002, 1003, 1004, 1005]  # each frame computed once


def test_wrong_state_names_both_states():
    p = Pipeline("t")
    c = p.add("c", Constant(color=[0.2, 0.2, 0.2, 0.5], width=2, height=2))
    u = p.add("u", Unpremultiply(), image=c)
    p.add("m", Merge(), a=u, b=c)
    with pytest.raises(StateError, match="expects alpha premultiplied or opaque, got straight"):
        p.evaluate("m", 1)


def test_stage_exception_is_wrapped_with_stage_and_frame():
    p = Pipeline("t")
    c = p.add("c", Constant(width=2, height=2))
    p.add("x", Exploding(), image=c)
    with pytest.raises(RenderError, match="stage 'x' .*frame 7.*ZeroDivisionError"):
        p.evaluate("x", 7)


def test_nonfinite_policy():
    for policy in ("error", "repair"):
        p = Pipeline("t", nonfinite=policy)
        p.add("c", Constant(color=[1, 0, 0, 1], width=2, height=2))
        # inject NaN into the source's output (every fifth value)
        stage = p.nodes["c"].stage
        orig = stage.process
        stage.process = lambda t, orig=orig, **kw: orig(t).with_pixels(
            np.where(np.arange(16).reshape(2, 2, 4) % 5 == 0, np.nan, orig(t).pixels).astype(np.float32))
        if policy == "error":
            with pytest.raises(NonFiniteError, match=r"stage 'c' output 'image' frame 3: 4 NaN/Inf"):
                p.evaluate("c", 3)
        else:
            out = p.evaluate("c", 3)
            assert np.isfinite(out.pixels).all() and out.pixels[0, 0, 0] == 0


def test_fingerprints_without_pixels():
    def build(**kw):
        p = Pipeline("t")
        s = p.add("src", CountingSource())
        n = p.add("noop", NoOp(), image=s)
        x = p.add("x", Exploding(), image=n)
        p.add("tr", Transform(**kw), image=x)
        return p

    helpers.CALLS.clear()
    base = build()
    fp = base.fingerprint("tr", 1001)
    assert "src" not in helpers.CALLS  # no pixels were computed
    assert fp == build().fingerprint("tr", 1001)
    assert fp != build(translate=[1.0, 0.0]).fingerprint("tr", 1001)  # a parameter change changes it
    assert fp != base.fingerprint("tr", 1002)  # another frame
    # pass-through (identity) keeps the input's fingerprint
    assert base.fingerprint("tr", 1001) == base.fingerprint("x", 1001)
    assert base.fingerprint("noop", 1001) != base.fingerprint("src", 1001)  # NoOp is a real stage


def test_fingerprint_covers_temporal_window():
    def build(value):
        p = Pipeline("t")
        s = p.add("src", CountingSource(value=value))
        p.add("m", TemporalMean(radius=2), image=s)
        return p

    assert build(0.0).fingerprint("m", 1005) != build(1.0).fingerprint("m", 1005)


def test_seeded_stage_is_deterministic_per_frame():
    def run(t):
        p = Pipeline("t")
        c = p.add("c", Constant(width=8, height=8))
        p.add("n", Noise(amount=0.1, seed=3), image=c)
        return p.evaluate("n", t).pixels

    np.testing.assert_array_equal(run(5), run(5))
    assert not np.array_equal(run(5), run(6))


def test_validation_errors():
    p = Pipeline("t")
    with pytest.raises(RecipeError, match="has no input 'c'"):
        p.add("m", Merge(), c="x")
    p.add("m", Merge(), a="nope")
    with pytest.raises(RecipeError, match="required input 'b'"):
        p.validate()
    with pytest.raises(RecipeError, match="already exists"):
        p.add("m", Merge())
