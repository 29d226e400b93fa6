"""Set extension: classical inpainting (Telea/NS, exemplar), seams, colour match, carried extensions, stage."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from composite.core import Image, InputError, RecipeError
from composite.core.coverage import coverage
from composite.extend import set_extension as se
from composite.extend.gen_stages import SetExtend
from composite.extend.generator import generator_records
from composite.graph import Pipeline
from composite.graph.builtin import Constant


def world(h=140, w=220, seed=0):
    """A smooth, textured scene-linear picture (gradients plus blurred noise), opaque RGB."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    tex = cv2.GaussianBlur(rng.random((h, w)).astype(np.float32), (0, 0), 2.0)
    r = 0.05 + 0.3 * xx / w + 0.2 * tex
    g = 0.08 + 0.2 * yy / h + 0.15 * tex
    b = 0.1 + 0.1 * tex
    return np.stack([r, g, b], -1).astype(np.float32)


def stripes(h=120, w=160):
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    v = 0.1 + 0.08 * np.sin(2 * np.pi * xx / 9) + 0.05 * np.sin(2 * np.pi * yy / 13)
    return np.stack([v, 0.8 * v, v], -1).astype(np.float32)


def test_telea_fills_smoothly_keeps_known_pixels_and_never_overshoots():
    img = world()
    hole = np.zeros(img.shape[:2], bool)
    hole[60:68, 100:110] = True
    out = se.inpaint_telea(img, hole)
    np.testing.assert_array_equal(out[~hole], img[~hole])
    blur = cv2.GaussianBlur(img, (0, 0), 2.0)  # the scene without its finest texture
    assert float(np.abs(out - blur)[hole].mean()) < 0.02
    # OpenCV's float path oscillates inside holes (values far outside the image's range); ours stays inside
    rng = np.random.default_rng(1)
    noisy = rng.random((100, 120, 3)).astype(np.float32)
    h2 = np.zeros((100, 120), bool)
    h2[40:60, 50:70] = True
    for method in ("telea", "ns"):
        f = se.inpaint_telea(noisy, h2, method=method)
        assert f[h2].min() >= noisy.min() - 1e-4 and f[h2].max() <= noisy.max() + 1e-4
    raw = cv2.inpaint(np.ascontiguousarray(noisy[..., 0]), h2.astype(np.uint8), 5, cv2.INPAINT_TELEA)
    assert raw[h2].min() < -0.1 or raw[h2].max() > 1.1  # the reason for the 16-bit path


def test_exemplar_fill_reproduces_a_periodic_texture_that_diffusion_smears():
    img = stripes()
    hole = np.zeros(img.shape[:2], bool)
    hole[40:80, 60:110] = True
    patch = se.inpaint_patch(img, hole, seed=0)
    telea = se.inpaint_telea(img, hole)
    err_patch = float(np.abs(patch - img)[hole].mean())
    err_telea = float(np.abs(telea - img)[hole].mean())
    assert err_patch < 0.25 * err_telea, (err_patch, err_telea)
    np.testing.assert_array_equal(patch[~hole], img[~hole])
    np.testing.assert_array_equal(se.inpaint_patch(img, hole, seed=0), patch)  # deterministic for a seed
    # outpainting: a band beyond the edge continues the texture
    border = np.zeros(img.shape[:2], bool)
    border[:, :30] = True
    out = se.inpaint_patch(img, border, seed=0)
    assert float(np.abs(out - img)[border].mean()) < 0.35 * float(np.abs(se.inpaint_telea(img, border) - img)[border].mean())


def test_auto_chooses_by_hole_thickness_and_errors():
    img = world(60, 80)
    small = np.zeros((60, 80), bool)
    small[20:24, 30:34] = True
    big = np.zeros((60, 80), bool)
    big[10:50, 20:60] = True
    assert se.hole_thickness(small) == pytest.approx(2.0, abs=0.1)
    assert se.inpaint(img, small)[1] == "telea" and se.inpaint(img, big)[1] == "patch"
    with pytest.raises(InputError, match="whole image is a hole"):
        se.inpaint_telea(img, np.ones((60, 80), bool))
    with pytest.raises(InputError, match="nothing to copy from"):
        se.inpaint_patch(img[:8, :8], np.pad(np.ones((6, 6), bool), 1), patch_size=7)
    with pytest.raises(InputError, match="hole mask is 10x10"):
        se.inpaint(img, np.zeros((10, 10), bool))


def test_classical_extension_keeps_the_plate_and_continues_it():
    full = world()
    plate = full[20:120, 40:180]
    res = se.extend_plate(plate, left=40, top=20, right=40, bottom=20)
    assert res.pixels.shape == full.shape
    np.testing.assert_array_equal(res.pixels[20:120, 40:180], plate)
    assert res.generated.max() == 0 and res.info["method"] in ("telea", "patch")
    # no seam: the step across the plate's edge is like the steps inside the plate
    seam = float(np.abs(res.pixels[20:120, 39] - res.pixels[20:120, 40]).mean())
    inside = float(np.abs(np.diff(plate, axis=1)).mean())
    assert seam < 2.0 * inside, (seam, inside)


class GainFiller:
    """A stand-in generator: the truth scene with a colour error (gain and tint), flagged as generated."""

    generated = True
    backend = "test_generator"

    def __init__(self, truth, gain=(1.6, 1.3, 0.8)):
        self.truth, self.gain = truth, np.asarray(gain, np.float32)
        self.masks = []

    def fill(self, pixels, mask):
        self.masks.append(mask.copy())
        return (self.truth * self.gain).astype(np.float32)

    def describe(self):
        return {"backend": self.backend, "generated": True, "model": {}, "prompt": "", "seed": 0, "params": {},
                "sources": []}


def test_generator_fill_is_colour_matched_and_crossfaded_on_the_overlap_band():
    full = world()
    plate = full[20:120, 40:180]
    filler = GainFiller(full)
    res = se.extend_plate(plate, left=40, top=20, right=40, bottom=20, filler=filler, overlap=8, color_match="mkl")
    hole = np.ones(full.shape[:2], bool)
    hole[20:120, 40:180] = False
    # the filler was asked for the hole plus an 8 px band of the plate
    assert filler.masks[0][hole].all() and not filler.masks[0][29:111, 49:171].any()
    assert filler.masks[0][20:120, 40:48].all()
    err = float(np.abs(res.pixels - full)[hole].mean() / full[hole].mean())
    raw = float(np.abs(full * filler.gain - full)[hole].mean() / full[hole].mean())
    assert err < 0.03 and raw > 0.25, (err, raw)
    # plate weight: 0 in the hole, smoothstep over the band, 1 deeper in the plate
    w = res.plate_weight
    assert w[hole].max() == 0 and w[60, 100] == 1.0
    d = 4.0  # a pixel 4 px inside the left edge (distance transform: ~4.5 to the nearest hole pixel)
    x = np.clip(cv2.distanceTransform((~hole).astype(np.uint8), cv2.DIST_L2, 5)[60, 44] / 8.0, 0, 1)
    assert w[60, 44] == pytest.approx(x * x * (3 - 2 * x), abs=1e-6) and 0 < w[60, 40 + int(d)] < 1
    np.testing.assert_allclose(res.generated, 1 - w, atol=1e-6)
    plain = se.extend_plate(plate, left=40, top=20, right=40, bottom=20, filler=GainFiller(full), overlap=8,
                            color_match="none")
    assert float(np.abs(plain.pixels - full)[hole].mean() / full[hole].mean()) > 0.25


def test_carried_extension_moves_with_the_camera_and_matches_exposure():
    scene = world(180, 300, seed=2)
    ref_plate = scene[40:140, 60:240]
    perfect = GainFiller(scene[20:160, 20:280], gain=(1, 1, 1))
    ext = se.extend_plate(ref_plate, left=40, top=20, right=40, bottom=20, filler=perfect)
    np.testing.assert_allclose(ext.pixels, scene[20:160, 20:280], atol=1e-6)
    # frame t: the camera panned 6 px left (content moves right) and the exposure rose by 10 %
    shift = np.array([[1, 0, 6.0], [0, 1, 0], [0, 0, 1]])
    plate_t = scene[40:140, 54:234] * np.float32(1.1)
    res = se.carry_extension(ext.pixels, plate_t, shift, left=40, top=20, right=40, bottom=20, feather=4,
                             color_match="reinhard")
    want = scene[20:160, 14:274] * 1.1
    inner = (slice(24, 116), slice(6, 200))
    assert float(np.abs(res.pixels - want)[inner].mean() / want[inner].mean()) < 0.01
    assert res.info["uncovered_pixels"] == 6 * 140  # the strip the reference never showed
    np.testing.assert_array_equal(res.pixels[40:80, 80:160], plate_t[20:60, 40:120])


def test_stage_classical_per_frame_and_bad_input(tmp_path):
    p = Pipeline("ext")
    plate = p.add("plate", Constant(width=48, height=32, color=[0.2, 0.3, 0.4, 1.0]))
    p.add("ext", SetExtend(left=8, right=8, top=4, bottom=4), image=plate)
    out = p.evaluate("ext", 1001)
    assert (out.width, out.height) == (64, 40) and out.display_window.width == 64
    np.testing.assert_allclose(out.pixels, np.broadcast_to(np.float32([0.2, 0.3, 0.4, 1.0]), out.pixels.shape), atol=1e-4)
    assert coverage(out).max() == 0
    rec = generator_records(out)[0]
    assert rec["backend"] == "classical_inpaint" and rec["generated"] is False and rec["params"]["trained"] is False
    fp = p.fingerprint("ext", 1001)
    q = Pipeline.from_recipe(p.to_recipe())
    assert q.to_recipe() == p.to_recipe() and q.fingerprint("ext", 1001) == fp
    p.set_param("ext", "left", 9)
    assert p.fingerprint("ext", 1001) != fp
    with pytest.raises(RecipeError, match="prompt was given but the backend is classical"):
        SetExtend(left=8, prompt="castle walls")
    with pytest.raises(RecipeError, match="backend diffusion needs a prompt"):
        SetExtend(left=8, backend="diffusion")
    with pytest.raises(RecipeError, match="reference_frame"):
        SetExtend(left=8, track="cam.json")


def test_stage_removes_a_matte_and_carries_a_reference_extension(tmp_path):
    from composite.io.exr import write_exr
    from composite.io.stages import ReadImage

    scene = world(120, 200, seed=3)
    obj = scene.copy()
    obj[40:60, 80:100] = [2.0, 0.0, 0.0]  # a red prop to remove
    write_exr(tmp_path / "plate.1001.exr", Image(obj[20:100, 20:180], ("R", "G", "B")), pixel_type="float")
    write_exr(tmp_path / "plate.1002.exr", Image(scene[20:100, 17:177], ("R", "G", "B")), pixel_type="float")  # panned 3 px
    matte = np.zeros((80, 160, 1), np.float32)
    matte[18:42, 58:82] = 1
    write_exr(tmp_path / "rm.exr", Image(matte, ("A",), colorspace="Raw"), pixel_type="float")
    p = Pipeline("rm")
    plate = p.add("plate", ReadImage(path=str(tmp_path / "plate.####.exr")))
    rm = p.add("rm", ReadImage(path=str(tmp_path / "rm.exr")))
    p.add("fill", SetExtend(method="patch"), image=plate, remove=rm)
    out = p.evaluate("fill", 1001)
    assert out.pixels[20:40, 60:80, 0].max() < 0.6  # the prop is gone
    assert float(np.abs(out.pixels[18:42, 58:82, :3] - scene[38:62, 78:102]).mean()) < 0.08
    cam = {"reference": 1001, "frames": {"1001": np.eye(3).tolist(), "1002": [[1, 0, 3], [0, 1, 0], [0, 0, 1]]}}
    (tmp_path / "cam.json").write_text(json.dumps(cam))
    write_exr(tmp_path / "ref.exr", Image(scene[20:100, 20:180], ("R", "G", "B")), pixel_type="float")
    ref = p.add("ref", ReadImage(path=str(tmp_path / "ref.exr")))
    p.add("ext", SetExtend(left=12, right=12, top=6, bottom=6, reference_frame=1001, track=str(tmp_path / "cam.json"),
                           color_match="none", carry_feather=0), image=plate, reference=ref)
    a, b = p.evaluate("ext", 1001), p.evaluate("ext", 1002)
    # the filled border of frame 1002 is frame 1001's, moved 3 px with the camera
    np.testing.assert_allclose(b.pixels[10:80, 3:12, :3], a.pixels[10:80, 0:9, :3], atol=1e-5)
    np.testing.assert_allclose(b.pixels[6:86, 12:172, :3], scene[20:100, 17:177], atol=1e-6)
    with pytest.raises(InputError, match="remove is not supported with a reference"):
        q = Pipeline("bad")
        q.add("plate", ReadImage(path=str(tmp_path / "plate.####.exr")))
        q.add("rm", ReadImage(path=str(tmp_path / "rm.exr")))
        q.add("ref", ReadImage(path=str(tmp_path / "ref.exr")))
        q.add("ext", SetExtend(left=4), image="plate", remove="rm", reference="ref")
        q.evaluate("ext", 1001)


def test_extension_of_real_footage_has_no_visible_seam(eval_data):
    from composite.color.transfer import acescct_encode
    from composite.io.images import to_working
    from composite.io.video import read_movie_frame

    img = to_working(read_movie_frame(eval_data / "video" / "sam2_juggle.mp4", 60), "ACEScg").pixels
    plate = cv2.resize(img, (320, 180), interpolation=cv2.INTER_AREA)

    def detail(x):  # fine texture: mean deviation from a small blur, in ACEScct
        c = acescct_encode(x)
        return float(np.abs(c - cv2.GaussianBlur(c, (0, 0), 1.5)).mean())

    plate_detail = detail(plate[:, 4:28])
    for method in ("telea", "patch"):
        out = se.extend_plate(plate, left=32, right=32, filler=se.ClassicalInpaint(method=method)).pixels
        seam = float(np.abs(out[:, 31] - out[:, 32]).mean() + np.abs(out[:, 351] - out[:, 352]).mean()) / 2
        inside = float(np.abs(np.diff(plate, axis=1)).mean())
        assert seam < 1.2 * inside, (method, seam, inside)
        # the fill keeps the level of the plate's edge strips (in ACEScct, where both methods work)
        edge = acescct_encode(np.concatenate([plate[:, :32], plate[:, -32:]], axis=1)).reshape(-1, 3).mean(0)
        fill = acescct_encode(np.concatenate([out[:, :32], out[:, -32:]], axis=1)).reshape(-1, 3).mean(0)
        np.testing.assert_allclose(fill, edge, atol=0.03)
        # Telea smears; the exemplar fill keeps texture
        if method == "telea":
            assert detail(out[:, 4:28]) < 0.1 * plate_detail
        else:
            assert detail(out[:, 4:28]) > 0.35 * plate_detail
