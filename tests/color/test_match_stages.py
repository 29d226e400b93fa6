"""Stages: ColorTransfer, Grade, CDL, ApplyCDLFile, MatchToReference."""

import numpy as np
import pytest

from composite.color.cdl import CDL as CDLValues
from composite.color.cdl import apply_cdl, apply_cdl_file, write_cdl_file
from composite.color.grade import grade, solve_grade
from composite.color.match_stages import CDL, ApplyCDLFile, ColorTransfer, Grade, MatchToReference
from composite.color.transfer import fit_color_transfer
from composite.core import Image, InputError, RecipeError, StateError
from composite.graph import Param, Pipeline, Stage, register, stage_types


@register
class ColorTestPlate(Stage):
    """A small deterministic RGBA (or RGB) plate per frame: a gradient, a tint and a seeded texture."""

    type_name = "TestColorPlate"
    is_source = True
    params = {
        "tint": Param(list, [1.0, 1.0, 1.0], item=float, length=3),
        "seed": Param(int, 0),
        "alpha": Param(bool, True),
        "width": Param(int, 24),
        "height": Param(int, 16),
        "first": Param(int, 1001),
        "last": Param(int, 1005),
    }

    def frame_range(self):
        return (self.p.first, self.p.last)

    def source_identity(self, t):
        return f"plate:{self.p.seed}:{t}"

    def process(self, t, **_):
        h, w = self.p.height, self.p.width
        rng = np.random.default_rng(self.p.seed * 1000 + t)
        yy, xx = np.mgrid[0:h, 0:w] / max(h, w)
        base = (0.05 + 0.6 * xx + 0.3 * yy)[..., None] * np.asarray(self.p.tint)
        rgb = (base + rng.uniform(0, 0.05, (h, w, 3)) + 0.01 * (t - 1001)).astype(np.float32)
        if not self.p.alpha:
            return Image(rgb, ("R", "G", "B"), time=self.time(t))
        a = np.ones((h, w, 1), np.float32)
        a[:, :3] = 0.0
        a[:, 3] = 0.5
        return Image(np.concatenate([rgb * a, a], 2), time=self.time(t))


@register
class ColorTestMatte(Stage):
    """A matte covering the left part of a frame (single channel ``A``)."""

    type_name = "TestColorMatte"
    is_source = True
    params = {"width": Param(int, 24), "height": Param(int, 16), "cover": Param(float, 0.5)}

    def process(self, t, **_):
        m = np.zeros((self.p.height, self.p.width, 1), np.float32)
        m[:, : int(round(self.p.width * self.p.cover))] = 1.0
        return Image(m, ("A",), colorspace="Raw", alpha="straight", time=self.time(t))


def _pipeline():
    p = Pipeline("color")
    cg = p.add("cg", ColorTestPlate(tint=[1.3, 1.0, 0.6], seed=1))
    plate = p.add("plate", ColorTestPlate(tint=[0.7, 0.9, 1.4], seed=2, alpha=False))
    return p, cg, plate


def _round_trip(p):
    recipe = p.to_recipe()
    assert Pipeline.from_recipe(recipe).to_recipe() == recipe


def test_every_stage_is_registered():
    names = stage_types()
    for n in ("ColorTransfer", "Grade", "CDL", "ApplyCDLFile", "MatchToReference"):
        assert n in names


# -- ColorTransfer -----------------------------------------------------------------------------------
def test_color_transfer_stage_equals_the_function_and_fingerprints():
    p, cg, plate = _pipeline()
    matte = p.add("sky", ColorTestMatte(cover=0.5))
    p.add("match", ColorTransfer(method="mkl", strength=0.8), image=cg, reference=plate, reference_matte=matte)
    out = p.evaluate("match", 1003)
    src, ref = p.evaluate("cg", 1003), p.evaluate("plate", 1003)
    tr = fit_color_transfer(src.pixels, ref.pixels, method="mkl", strength=0.8,
                            reference_weights=p.evaluate("sky", 1003).pixels[..., 0])
    np.testing.assert_array_equal(out.pixels, tr.apply(src.pixels))
    assert out.alpha == src.alpha and out.channels == src.channels
    np.testing.assert_array_equal(out.pixels[..., 3], src.pixels[..., 3])
    # the element moved toward the reference: its mean colour ratio R/B went from >2 to <1
    m = out.pixels[:, 4:, :3].reshape(-1, 3).mean(0)
    assert m[0] / m[2] < 1.0 < src.pixels[:, 4:, 0].mean() / src.pixels[:, 4:, 2].mean()
    fp = p.fingerprint("match", 1003)
    p.set_param("match", "strength", 0.5)
    assert p.fingerprint("match", 1003) != fp
    p.set_param("match", "strength", 0.0)  # a pass-through keeps its input's fingerprint
    assert p.fingerprint("match", 1003) == p.fingerprint("cg", 1003)
    assert p.evaluate("match", 1003) is p.evaluate("cg", 1003)
    _round_trip(p)


def test_stats_radius_pools_neighbouring_frames():
    p, cg, plate = _pipeline()
    p.add("match", ColorTransfer(method="reinhard", stats_radius=1), image=cg, reference=plate)
    out = p.evaluate("match", 1003)
    src = np.concatenate([p.evaluate("cg", t).pixels for t in (1002, 1003, 1004)], 0)
    ref = np.concatenate([p.evaluate("plate", t).pixels for t in (1002, 1003, 1004)], 0)
    tr = fit_color_transfer(src, ref, method="reinhard")
    np.testing.assert_array_equal(out.pixels, tr.apply(p.evaluate("cg", 1003).pixels))
    # the window is part of the fingerprint
    q, cg2, plate2 = _pipeline()
    q.add("match", ColorTransfer(method="reinhard", stats_radius=0), image=cg2, reference=plate2)
    assert q.fingerprint("match", 1003) != p.fingerprint("match", 1003)
    _round_trip(p)


def test_stored_transform_needs_no_reference():
    p, cg, plate = _pipeline()
    tr = fit_color_transfer(p.evaluate("cg", 1001).pixels, p.evaluate("plate", 1001).pixels, method="mkl")
    p.add("fixed", ColorTransfer(transform=tr.to_dict()), image=cg)
    for t in (1001, 1004):
        np.testing.assert_array_equal(p.evaluate("fixed", t).pixels, tr.apply(p.evaluate("cg", t).pixels))
    _round_trip(p)
    with pytest.raises(RecipeError, match="params.transform"):
        ColorTransfer(transform={"method": "mkl"})
    q, cg2, _ = _pipeline()
    q.add("live", ColorTransfer(), image=cg2)
    with pytest.raises(InputError, match="connect a reference"):
        q.evaluate("live", 1001)


def test_color_transfer_bad_inputs_name_stage_and_frame():
    p, cg, plate = _pipeline()
    small = p.add("small", ColorTestMatte(width=8, height=8))
    p.add("a", ColorTransfer(), image=cg, reference=plate, reference_matte=small)
    with pytest.raises(InputError, match=r"a \(ColorTransfer\) frame 1002.*matte format is 8x8 but the image's is 24x16"):
        p.evaluate("a", 1002)
    empty = p.add("empty", ColorTestMatte(cover=0.0))
    p.add("b", ColorTransfer(), image=cg, reference=plate, reference_matte=empty)
    with pytest.raises(InputError, match=r"b \(ColorTransfer\) frame 1002: reference: the region is empty"):
        p.evaluate("b", 1002)
    # the reference must be in the working space
    q = Pipeline("q")
    src = q.add("src", ColorTestPlate())
    q.nodes["src"].stage.process = lambda t, **kw: ColorTestPlate.process(q.nodes["src"].stage, t).replace(
        colorspace="sRGB - Texture")
    q.add("m", ColorTransfer(), image=src, reference=src)
    with pytest.raises(StateError, match="expects colour space ACEScg"):
        q.evaluate("m", 1001)


# -- Grade -------------------------------------------------------------------------------------------
def test_grade_stage_equals_the_function_and_fingerprints():
    p, cg, plate = _pipeline()
    kw = dict(blackpoint=[0.02, 0.02, 0.0], whitepoint=[0.9, 1.0, 1.1], lift=[0.01, 0.0, 0.0],
              gain=[1.1, 1.0, 0.9], gamma=[1.0, 1.2, 1.0], saturation=0.9)
    p.add("g", Grade(**kw), image=cg)
    src = p.evaluate("cg", 1002)
    np.testing.assert_array_equal(p.evaluate("g", 1002).pixels, grade(src.pixels, **kw))
    fp = p.fingerprint("g", 1002)
    p.set_param("g", "saturation", 1.0)
    assert p.fingerprint("g", 1002) != fp
    p.add("noop", Grade(), image=cg)
    assert p.fingerprint("noop", 1002) == p.fingerprint("cg", 1002)
    p.add("clamped", Grade(black_clamp=True), image=cg)
    assert p.fingerprint("clamped", 1002) != p.fingerprint("cg", 1002)
    _round_trip(p)
    with pytest.raises(RecipeError, match="whitepoint equals blackpoint"):
        Grade(blackpoint=[0.5, 0.0, 0.0], whitepoint=[0.5, 1.0, 1.0])
    with pytest.raises(RecipeError, match="expected 3 items"):
        Grade(lift=[0.1, 0.1])


def test_grade_on_rgb_opaque_plate():
    p, cg, plate = _pipeline()
    p.add("g", Grade(multiply=[2.0, 2.0, 2.0]), image=plate)
    out = p.evaluate("g", 1001)
    assert out.channels == ("R", "G", "B")
    np.testing.assert_allclose(out.pixels, p.evaluate("plate", 1001).pixels * 2, rtol=1e-6)


# -- CDL ---------------------------------------------------------------------------------------------
LOOK = CDLValues(slope=(1.1, 1.0, 0.9), offset=(0.01, 0.0, -0.01), power=(1.0, 1.1, 1.0), saturation=0.8, id="sh010")


@pytest.mark.parametrize("encoding", ["linear", "acescct"])
def test_cdl_stage_from_params_and_from_file(encoding, tmp_path):
    path = write_cdl_file(tmp_path / "look.cc", LOOK)
    p, cg, _ = _pipeline()
    p.add("by_params", CDL(slope=list(LOOK.slope), offset=list(LOOK.offset), power=list(LOOK.power),
                           saturation=LOOK.saturation, encoding=encoding), image=cg)
    p.add("by_file", CDL(file=path, encoding=encoding), image=cg)
    p.add("ocio", ApplyCDLFile(file=path, encoding=encoding), image=cg)
    src = p.evaluate("cg", 1001).pixels
    want = apply_cdl(src, LOOK, encoding=encoding)
    np.testing.assert_array_equal(p.evaluate("by_params", 1001).pixels, want)
    np.testing.assert_array_equal(p.evaluate("by_file", 1001).pixels, want)
    np.testing.assert_array_equal(p.evaluate("ocio", 1001).pixels, apply_cdl_file(src, path, encoding=encoding))
    np.testing.assert_allclose(p.evaluate("ocio", 1001).pixels, want, rtol=1e-4, atol=1e-5)
    _round_trip(p)


def test_cdl_fingerprints_follow_params_and_file_contents(tmp_path):
    path = tmp_path / "look.cc"
    write_cdl_file(path, LOOK)
    p, cg, _ = _pipeline()
    p.add("c", CDL(slope=[1.2, 1.0, 1.0]), image=cg)
    p.add("f", CDL(file=str(path)), image=cg)
    p.add("o", ApplyCDLFile(file=str(path)), image=cg)
    p.add("id", CDL(), image=cg)
    assert p.fingerprint("id", 1001) == p.fingerprint("cg", 1001)
    fps = {n: p.fingerprint(n, 1001) for n in ("c", "f", "o")}
    p.set_param("c", "slope", [1.3, 1.0, 1.0])
    assert p.fingerprint("c", 1001) != fps["c"]
    write_cdl_file(path, CDLValues(slope=2.0, id="sh010"))
    q, cg2, _ = _pipeline()
    q.add("f", CDL(file=str(path)), image=cg2)
    q.add("o", ApplyCDLFile(file=str(path)), image=cg2)
    assert q.fingerprint("f", 1001) != fps["f"] and q.fingerprint("o", 1001) != fps["o"]
    src = q.evaluate("cg", 1001).pixels
    np.testing.assert_allclose(q.evaluate("o", 1001).pixels[..., :3], src[..., :3] * 2.0, rtol=1e-6)
    _round_trip(q)


def test_cdl_stage_errors(tmp_path):
    with pytest.raises(RecipeError, match="either a CDL file or"):
        CDL(file="x.cc", slope=[2.0, 1.0, 1.0])
    with pytest.raises(RecipeError, match="a CDL file is required"):
        ApplyCDLFile()
    p, cg, _ = _pipeline()
    p.add("f", CDL(file=str(tmp_path / "missing.cc")), image=cg)
    with pytest.raises(InputError, match="does not exist"):
        p.evaluate("f", 1001)
    p.add("o", ApplyCDLFile(file=str(tmp_path / "missing.cc")), image=cg)
    with pytest.raises(InputError, match=r"o \(ApplyCDLFile\).*does not exist"):
        p.fingerprint("o", 1001)


# -- MatchToReference --------------------------------------------------------------------------------
def test_match_to_reference_equals_the_solver_and_records_it():
    p, cg, plate = _pipeline()
    p.add("m", MatchToReference(dark_percentile=2.0, bright_percentile=98.0), image=cg, reference=plate)
    out = p.evaluate("m", 1002)
    src, ref = p.evaluate("cg", 1002), p.evaluate("plate", 1002)
    sol = solve_grade(src.pixels, ref.pixels, dark_percentile=2.0, bright_percentile=98.0)
    np.testing.assert_array_equal(out.pixels, grade(src.pixels, **sol.params.to_dict()))
    assert out.metadata["composite.match"]["params"]["lift"] == pytest.approx(list(sol.params.lift))
    fp = p.fingerprint("m", 1002)
    p.set_param("m", "mode", "channel")
    assert p.fingerprint("m", 1002) != fp
    p.set_param("m", "strength", 0.0)
    assert p.fingerprint("m", 1002) == p.fingerprint("cg", 1002)
    _round_trip(p)


def test_match_to_reference_with_picks_and_errors():
    p, cg, plate = _pipeline()
    p.add("m", MatchToReference(reference_dark=[0.0, 0.0, 0.0], reference_bright=[1.0, 1.0, 1.0],
                                element_dark=[0.1, 0.1, 0.1], element_bright=[0.6, 0.6, 0.6]), image=cg)
    out = p.evaluate("m", 1001)
    src = p.evaluate("cg", 1001)
    np.testing.assert_allclose(out.pixels, grade(src.pixels, blackpoint=0.1, whitepoint=0.6), rtol=1e-6)
    _round_trip(p)
    p.add("n", MatchToReference(), image=cg)
    with pytest.raises(InputError, match="connect a reference"):
        p.evaluate("n", 1001)
    with pytest.raises(RecipeError, match="dark_percentile must be below"):
        MatchToReference(dark_percentile=50.0, bright_percentile=50.0)


def test_element_without_alpha_is_treated_as_opaque():
    p, cg, plate = _pipeline()
    p.add("m", ColorTransfer(method="reinhard"), image=plate, reference=cg)
    out = p.evaluate("m", 1001)
    assert out.channels == ("R", "G", "B") and np.all(np.isfinite(out.pixels))
    want = fit_color_transfer(p.evaluate("plate", 1001).pixels, p.evaluate("cg", 1001).pixels,
                              method="reinhard").apply(p.evaluate("plate", 1001).pixels)
    np.testing.assert_array_equal(out.pixels, want)
