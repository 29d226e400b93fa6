import cv2
import numpy as np
import pytest

from composite.core import Image, InputError
from composite.core.coverage import coverage, coverage_fraction, mark_generated
from composite.extend.camera import GroundCamera
from composite.extend.crowd import Agents, SpriteLibrary, place_agents, render_crowd, sprites_from_matte
from composite.extend.stages import Crowd
from composite.graph import Pipeline
from composite.graph.builtin import Constant
from composite.io.exr import write_exr


def figure_sheet(n=3, colour=(0.5, 0.3, 0.2)):
    sheet = np.zeros((120, 60 * n, 4), np.float32)
    for k in range(n):
        m = np.zeros(sheet.shape[:2], np.uint8)
        cx = 30 + 60 * k
        cv2.rectangle(m, (cx - 10, 10), (cx + 10, 109), 255, -1)  # 100 px tall block person
        a = m.astype(np.float32) / 255
        sheet[..., :3] += np.asarray(colour, np.float32) * a[..., None]
        sheet[..., 3] += a
    return sheet


CAM = GroundCamera(horizon_y=200, height=1.75, focal_px=1000, cx=320)


def test_camera_projection_and_reference_solve():
    x, y = CAM.project(np.array([0.0, 1.0]), np.array([10.0, 10.0]))
    np.testing.assert_allclose(x, [320, 420])
    np.testing.assert_allclose(y, [200 + 1000 * 1.75 / 10] * 2)
    np.testing.assert_allclose(CAM.depth_at_row(y), [10, 10])
    assert CAM.pixel_height(1.75, 10.0) == pytest.approx(175)
    cam = GroundCamera.from_reference(horizon_y=200, foot_y=375, pixel_height=175, focal_px=1000, cx=320)
    assert cam.height == pytest.approx(1.75)
    with pytest.raises(InputError, match="above the horizon"):
        GroundCamera.from_reference(horizon_y=200, foot_y=150, pixel_height=50, focal_px=1000, cx=320)
    with pytest.raises(InputError, match="do not see the ground"):
        CAM.depth_at_row(100)


def test_sprites_from_matte():
    lib = sprites_from_matte(figure_sheet())
    assert len(lib) == 3
    s = lib.sprites[0]
    assert s.height == 100 and s.foot == pytest.approx((10.0 + 2, 100.0 + 2 - 0.5 + 0.5 - 0.5 + 0.5), abs=0.6)
    with pytest.raises(InputError, match="no usable sprites"):
        sprites_from_matte(figure_sheet(), min_height=500)


def test_placement_is_seeded_sorted_and_respects_keepout():
    keep = np.zeros((480, 640), np.float32)
    keep[:, :320] = 1  # left half forbidden
    a = place_agents(CAM, 640, 480, 300, n_sprites=3, seed=5, keepout=keep)
    b = place_agents(CAM, 640, 480, 300, n_sprites=3, seed=5, keepout=keep)
    np.testing.assert_array_equal(a.X, b.X)
    assert len(a) == 300 and np.all(np.diff(a.Z) <= 0)  # far to near
    fx, fy = CAM.project(a.X, a.Z)
    assert (fx >= 319).all()
    with pytest.raises(InputError, match="only"):
        place_agents(CAM, 640, 480, 50, n_sprites=3, keepout=np.ones((480, 640), np.float32))
    with pytest.raises(InputError, match="looks above the ground"):
        place_agents(GroundCamera(horizon_y=600, height=1.7, focal_px=1000, cx=320), 640, 480, 5, n_sprites=1)


def one_agent(Z, X=0.0):
    return Agents(np.array([X]), np.array([Z]), np.array([0]), np.array([1.75]), np.array([False]),
                  np.eye(3, dtype=np.float32)[None], np.array([0]), np.array([1]))


def test_render_scale_position_depth_and_haze():
    lib = sprites_from_matte(figure_sheet(1), pad=0)
    frame = render_crowd(lib, one_agent(10.0), CAM, 640, 480, shadow_opacity=0.0)
    rows = np.nonzero(frame.rgba[..., 3].max(axis=1) > 0.5)[0]
    assert rows.max() - rows.min() + 1 == pytest.approx(175, abs=2)  # f * h / Z
    assert rows.max() == pytest.approx(375, abs=2)  # feet on the ground line
    cols = np.nonzero(frame.rgba[..., 3].max(axis=0) > 0.5)[0]
    assert (cols.min() + cols.max()) / 2 == pytest.approx(320, abs=2)
    assert frame.depth[300, 320] == pytest.approx(10.0) and frame.ident[300, 320] == 1
    assert np.isinf(frame.depth[10, 10]) and frame.ident[10, 10] == 0
    np.testing.assert_allclose(frame.rgba[300, 320], [0.5, 0.3, 0.2, 1.0], atol=1e-5)
    hazy = render_crowd(lib, one_agent(10.0), CAM, 640, 480, shadow_opacity=0.0, haze_density=0.05,
                        haze_color=(1.0, 1.0, 1.0))
    t = np.exp(-0.5)
    np.testing.assert_allclose(hazy.rgba[300, 320, :3], np.array([0.5, 0.3, 0.2]) * t + (1 - t), atol=1e-5)
    shadow = render_crowd(lib, one_agent(10.0), CAM, 640, 480, shadow_opacity=0.5)
    assert shadow.rgba[376, 320, 3] > 0.05 and shadow.rgba[376, 320, :3].max() == 0  # black soft shadow
    assert shadow.rgba[395, 320, 3] == 0 and shadow.rgba[376, 200, 3] == 0  # only under the feet


def test_near_agents_cover_far_ones():
    lib = sprites_from_matte(figure_sheet(1), pad=0)
    agents = Agents(np.array([0.0, 0.0]), np.array([20.0, 10.0]), np.array([0, 0]), np.array([1.75, 1.75]),
                    np.array([False, False]), np.stack([np.eye(3, dtype=np.float32) * 0.5, np.eye(3, dtype=np.float32)]),
                    np.array([0, 0]), np.array([1, 2]))
    frame = render_crowd(lib, agents, CAM, 640, 480, shadow_opacity=0.0)
    # at the far agent's feet row the near agent stands in front
    assert frame.ident[280, 320] == 2 and frame.depth[280, 320] == pytest.approx(10.0)


def test_coverage_helpers():
    img = Image(np.array([[[0.2, 0.2, 0.2, 0.5]]], np.float32))
    assert coverage(img)[0, 0] == 0
    gen = mark_generated(img)
    assert coverage(gen)[0, 0] == pytest.approx(0.5)
    assert coverage_fraction(gen)[0, 0] == pytest.approx(1.0)


def test_crowd_stage(tmp_path):
    write_exr(tmp_path / "sheet.exr", Image(figure_sheet()))
    p = Pipeline("crowd")
    plate = p.add("plate", Constant(width=320, height=240, color=[0.1, 0.1, 0.1, 1.0]))
    p.add("crowd", Crowd(library=str(tmp_path / "sheet.exr"), count=200, horizon_y=80, focal_px=500, seed=3),
          plate=plate)
    a, b = p.evaluate("crowd", 1001), p.evaluate("crowd", 1002)
    assert a.layers["depth"].channels == ("Z",) and "crowd_id" in a.layers
    np.testing.assert_array_equal(a.layers["crowd_id"].pixels, b.layers["crowd_id"].pixels)  # same agents
    overshoot = 500 * (1.75 * 1.5 - 1.7) / 8  # tallest agent at the nearest depth: head above the horizon
    assert a.pixels[..., 3].max() == pytest.approx(1.0) and a.pixels[: int(80 - overshoot) - 2, :, 3].max() == 0
    assert coverage(a).max() == 0  # procedural extras are not generated pixels
    assert '"backend": "procedural_crowd"' in a.metadata["composite:generators"]
    fp = p.fingerprint("crowd", 1001)
    q = Pipeline.from_recipe(p.to_recipe())
    assert q.to_recipe() == p.to_recipe() and q.fingerprint("crowd", 1001) == fp
    p.set_param("crowd", "count", 201)
    assert p.fingerprint("crowd", 1001) != fp
    missing = Pipeline("m")
    missing.add("crowd", Crowd(library=str(tmp_path / "nope.exr")))
    with pytest.raises(InputError, match="sprite library not found"):
        missing.evaluate("crowd", 1)


def test_library_roundtrip(tmp_path):
    lib = sprites_from_matte(figure_sheet())
    lib.save(tmp_path / "lib")
    back = SpriteLibrary.load(tmp_path / "lib")
    assert len(back) == 3 and back.sprites[1].foot == lib.sprites[1].foot
    np.testing.assert_array_equal(back.sprites[2].frames[0], lib.sprites[2].frames[0])
