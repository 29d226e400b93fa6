"""Camera-matched layers: plane-motion decomposition, parallax against a pinhole projection, depth slices,
tracking the plate, camera files, the CameraMatch stage (with the crowd) and the sample shot."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from composite.core import Image, InputError
from composite.core.coverage import coverage, mark_generated
from composite.core.image import RGBA
from composite.extend import camera_match as cm
from composite.extend.gen_stages import CameraMatch
from composite.graph import Pipeline
from composite.graph.builtin import Constant


def rot(ax, ay, az):
    rx = cv2.Rodrigues(np.array([ax, 0.0, 0.0]))[0]
    ry = cv2.Rodrigues(np.array([0.0, ay, 0.0]))[0]
    rz = cv2.Rodrigues(np.array([0.0, 0.0, az]))[0]
    return rz @ ry @ rx


F, CX, CY = 400.0, 159.5, 89.5
K = np.array([[F, 0, CX], [0, F, CY], [0, 0, 1.0]])


def project_plane(x, R, t, depth):
    """Where pixels x (N, 2) of a fronto-parallel plane at ``depth`` go when the camera moves by (R, t)."""
    X = depth * (np.linalg.inv(K) @ np.vstack([x.T, np.ones(len(x))]))
    q = K @ (R @ X + t[:, None])
    return (q[:2] / q[2]).T


def test_decomposition_and_parallax_against_a_pinhole_projection():
    R = rot(0.01, -0.02, 0.015)
    t = np.array([0.4, -0.15, 0.3])
    d_ref = 10.0
    H = K @ (R + np.outer(t / d_ref, [0, 0, 1])) @ np.linalg.inv(K)
    H /= H[2, 2]
    R_est, tp = cm.decompose_plane_motion(H, focal_px=F, cx=CX, cy=CY)
    np.testing.assert_allclose(R_est, R, atol=1e-9)
    np.testing.assert_allclose(tp, t / d_ref, atol=1e-9)
    pts = np.array([[0, 0], [319, 0], [319, 179], [0, 179], [160, 90], [40, 150]], np.float64)
    for depth in (2.5, 10.0, 37.0, np.inf):
        Hd = cm.layer_homography(H, depth, ref_depth=d_ref, focal_px=F, cx=CX, cy=CY)
        q = np.hstack([pts, np.ones((len(pts), 1))]) @ Hd.T
        got = q[:, :2] / q[:, 2:]
        want = project_plane(pts, R, t * (0.0 if np.isinf(depth) else 1.0), 1.0 if np.isinf(depth) else depth)
        np.testing.assert_allclose(got, want, atol=1e-8)
    np.testing.assert_allclose(cm.layer_homography(H, d_ref, ref_depth=d_ref, focal_px=F, cx=CX, cy=CY), H, atol=1e-12)
    with pytest.raises(InputError, match="mirrors"):
        cm.decompose_plane_motion(np.diag([-1.0, 1.0, 1.0]), focal_px=F, cx=CX, cy=CY)


def square_layer(h=180, w=320):
    """Two squares: A (value 1) at depth 10, B (value 0.5) at depth 40, premultiplied RGBA + depth."""
    px = np.zeros((h, w, 4), np.float32)
    depth = np.zeros((h, w, 1), np.float32)
    px[60:100, 60:100] = [1, 1, 1, 1]
    depth[60:100, 60:100] = 10.0
    px[60:100, 200:240] = [0.5, 0.5, 0.5, 1]
    depth[60:100, 200:240] = 40.0
    img = Image(px, RGBA).with_layer("depth", depth, ("Z",))
    return mark_generated(img)


def centroid_x(alpha, mask):
    a = alpha * mask
    return float((a * np.arange(alpha.shape[1])[None, :]).sum() / a.sum())


def test_depth_slices_move_in_proportion_to_inverse_depth():
    layer = square_layer()
    t = np.array([0.5, 0.0, 0.0])
    H = K @ (np.eye(3) + np.outer(t / 10.0, [0, 0, 1])) @ np.linalg.inv(K)  # 20 px at depth 10
    out = cm.apply_layer_motion(layer, H, ref_depth=10.0, focal_px=F)
    left = np.zeros(out.a.shape, np.float32)
    left[:, :160] = 1
    right = 1 - left
    assert centroid_x(out.a, left) - 79.5 == pytest.approx(20.0, abs=0.02)
    assert centroid_x(out.a, right) - 219.5 == pytest.approx(5.0, abs=0.02)
    np.testing.assert_allclose(coverage(out), out.a, atol=1e-6)  # coverage travels with alpha
    z = out.layers["depth"].pixels[..., 0]
    assert z[80, 99] == 10.0 and z[80, 224] == 40.0
    flat = cm.apply_layer_motion(layer, H, ref_depth=10.0, focal_px=F, parallax=False)
    assert centroid_x(flat.a, right) - 219.5 == pytest.approx(20.0, abs=0.02)
    sky = cm.apply_layer_motion(layer, H, depth=np.inf, ref_depth=10.0, focal_px=F)
    np.testing.assert_array_equal(sky.pixels, layer.pixels)  # translation does not move infinity


def test_warp_layer_matches_opencv_and_uses_overscan():
    rng = np.random.default_rng(0)
    px = rng.random((40, 60, 4)).astype(np.float32)
    img = Image(px, RGBA)
    m = np.array([[1.01, 0.02, 3.3], [-0.01, 0.99, -2.1], [1e-5, 0, 1]])
    out = cm.warp_layer(img, m)
    want = cv2.warpPerspective(px, m, (60, 40), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
    np.testing.assert_array_equal(out.pixels, want)
    # a layer with 10 px of overscan: a move of 5 px brings in real pixels, not black
    from composite.core.image import Window

    big = rng.random((60, 80, 4)).astype(np.float32)
    over = Image(big, RGBA, data_window=Window(-10, -10, 69, 49), display_window=Window(0, 0, 59, 39))
    moved = cm.warp_layer(over, np.array([[1, 0, 5.0], [0, 1, 0], [0, 0, 1]]))
    assert moved.pixels.shape == (40, 60, 4)
    np.testing.assert_array_equal(moved.pixels[:, :5], big[10:50, 5:10])


def textured(h, w, seed=0):
    rng = np.random.default_rng(seed)
    base = cv2.GaussianBlur(rng.random((h, w)).astype(np.float32), (0, 0), 1.5)
    return np.stack([base, base * 0.7 + 0.1, 0.3 * np.ones_like(base)], -1).astype(np.float32)


def test_estimate_plate_motion_recovers_a_homography_and_ignores_excluded_motion():
    a = textured(180, 320)
    H = np.array([[1.01, 0.01, 3.2], [-0.008, 1.005, -1.7], [2e-5, 1e-5, 1.0]])
    b = cv2.warpPerspective(a, H, (320, 180), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    # something moving on its own in the middle of both frames
    b[60:120, 120:200] = np.roll(a, 25, axis=1)[60:120, 120:200]
    excl = np.zeros((180, 320), np.float32)
    excl[50:130, 110:210] = 1
    est = cm.estimate_plate_motion(a, b, exclude=excl)
    assert cm.motion_residual(est, H, 320, 180) < 0.1
    with pytest.raises(InputError, match="exclusion mask"):
        cm.estimate_plate_motion(a, b, exclude=np.zeros((10, 10)))


def test_camera_files(tmp_path):
    from composite.temporal.track import Track

    mats = np.stack([np.eye(3), [[1, 0, 2], [0, 1, 0], [0, 0, 1]], [[1, 0, 4], [0, 1, 1], [0, 0, 1]]])
    Track([1001, 1002, 1003], mats, 64, 32).save(tmp_path / "t.json")
    path = cm.load_camera_path(tmp_path / "t.json")
    np.testing.assert_allclose(path.matrix(1003, 1002), [[1, 0, 2], [0, 1, 1], [0, 0, 1]])
    (tmp_path / "m.json").write_text(json.dumps({"reference": 1002, "frames": {str(f): m.tolist() for f, m in
                                                                                zip((1001, 1002, 1003), mats)}}))
    np.testing.assert_allclose(cm.load_camera_path(tmp_path / "m.json").matrix(1003), [[1, 0, 2], [0, 1, 1], [0, 0, 1]])
    truth = cm.load_camera_path("sample_footage/greenscreen/truth.json")
    assert truth.reference == 1001 and len(truth.frames) == 12
    with pytest.raises(InputError, match="does not exist; make one with `composite track`"):
        cm.load_camera_path(tmp_path / "nope.json")
    with pytest.raises(InputError, match="no camera matrix for frame 1009"):
        path.matrix(1009)
    (tmp_path / "bad.json").write_text(json.dumps({"frames": 3}))
    with pytest.raises(InputError, match="not a camera file"):
        cm.load_camera_path(tmp_path / "bad.json")


def test_stage_with_a_track_file_fingerprint_and_recipe(tmp_path):
    cam = {"reference": 1001, "frames": {"1001": np.eye(3).tolist(), "1002": [[1, 0, 3], [0, 1, -2], [0, 0, 1]]}}
    (tmp_path / "cam.json").write_text(json.dumps(cam))
    p = Pipeline("cm")
    bg = p.add("bg", Constant(width=64, height=48, color=[0.2, 0.3, 0.4, 1.0]))
    p.add("move", CameraMatch(track=str(tmp_path / "cam.json")), image=bg)
    out = p.evaluate("move", 1002)
    assert out.a[:, :3].max() == 0 and out.a[-2:].max() == 0 and out.a[10, 10] == 1
    assert out.metadata["composite:camera_matrix"] == [[1, 0, 3], [0, 1, -2], [0, 0, 1]]
    fp = p.fingerprint("move", 1002)
    q = Pipeline.from_recipe(p.to_recipe())
    assert q.to_recipe() == p.to_recipe() and q.fingerprint("move", 1002) == fp
    p.set_param("move", "depth", 20.0)
    assert p.fingerprint("move", 1002) != fp
    (tmp_path / "cam.json").write_text(json.dumps({**cam, "frames": {**cam["frames"], "1002": np.eye(3).tolist()}}))
    assert Pipeline.from_recipe(q.to_recipe()).fingerprint("move", 1002) != fp  # the file's content counts
    lone = Pipeline("x")
    lone.add("bg", Constant(width=8, height=8))
    lone.add("move", CameraMatch(), image="bg")
    with pytest.raises(InputError, match="needs a camera file"):
        lone.evaluate("move", 1)


def test_crowd_layer_gets_parallax_per_agent(tmp_path):
    from composite.extend.stages import Crowd
    from composite.io.exr import write_exr

    sheet = np.zeros((120, 60, 4), np.float32)
    cv2.rectangle(sheet, (20, 10), (40, 109), (0.5, 0.3, 0.2, 1.0), -1)
    write_exr(tmp_path / "sheet.exr", Image(sheet, RGBA))
    cam = {"reference": 1, "frames": {"1": np.eye(3).tolist(), "2": (K @ (np.eye(3) + np.outer([0.3 / 10, 0, 0], [0, 0, 1]))
                                                                         @ np.linalg.inv(K)).tolist()}}
    (tmp_path / "cam.json").write_text(json.dumps(cam))
    p = Pipeline("crowd")
    crowd = p.add("crowd", Crowd(library=str(tmp_path / "sheet.exr"), count=30, width=320, height=180, horizon_y=60,
                                 focal_px=F, camera_height=1.7, depth_range=[6.0, 60.0], seed=2, shadow_opacity=0.0))
    p.add("move", CameraMatch(track=str(tmp_path / "cam.json"), ref_depth=10.0, focal_px=F, slices=16), image=crowd)
    a, b = p.evaluate("crowd", 2), p.evaluate("move", 2)
    ids_a, ids_b = a.layers["crowd_id"].pixels[..., 0], b.layers["crowd_id"].pixels[..., 0]
    za = a.layers["depth"].pixels[..., 0]
    checked = 0
    for ident in np.unique(ids_a[ids_a > 0]):
        sa, sb = ids_a == ident, ids_b == ident
        if sa.sum() < 40 or sb.sum() < 0.9 * sa.sum():  # small or occluded agents
            continue
        shift = np.nonzero(sb)[1].mean() - np.nonzero(sa)[1].mean()
        z = float(np.median(za[sa]))
        assert shift == pytest.approx(F * 0.3 / z, abs=0.35 + 0.1 * F * 0.3 / z), (ident, z, shift)
        checked += 1
    assert checked >= 5


def test_sample_shot_background_sticks_to_the_plate():
    """Track the synthetic green-screen plate (actor excluded), move a generated background still with it and
    compare with the true camera: the background must not slide against the plate."""
    from composite.synth import generated_background_sequence, greenscreen_sequence

    shot = greenscreen_sequence(320, 180, 6, grain=0.25)
    bg = generated_background_sequence(320, 180, 1, camera_move=0.0).frame(1001).image
    ref = shot.frame(1001)
    residuals = []
    for n in shot.frames[1:]:
        f = shot.frame(n)
        est = cm.estimate_plate_motion(ref.plate, f.plate, exclude=cv2.dilate((ref.alpha[..., 0] > 0.02).astype(np.uint8),
                                                                               np.ones((9, 9), np.uint8)))
        residuals.append(cm.motion_residual(est, shot.camera(n), 320, 180))
        moved = cm.warp_layer(Image(np.concatenate([bg, np.ones_like(bg[..., :1])], -1), RGBA), est)
        truth = cv2.warpPerspective(bg, shot.camera(n), (320, 180), flags=cv2.INTER_LINEAR)
        inner = (slice(20, -20), slice(20, -20))
        assert float(np.abs(moved.pixels[..., :3] - truth)[inner].mean()) < 0.01 * float(bg.mean())
    assert max(residuals) < 0.5, residuals


def test_extend_border_leaves_no_gap_in_an_opaque_layer():
    import numpy as np

    from composite.core import Image
    from composite.extend.camera_match import warp_layer

    img = Image(np.ones((20, 30, 3), np.float32), channels=("R", "G", "B"))
    shift = np.array([[1, 0, 3.5], [0, 1, -2.0], [0, 0, 1]], np.float64)
    gap = warp_layer(img, shift)
    assert gap.a.min() == 0  # the move uncovers the left and bottom edges
    filled = warp_layer(img, shift, border="extend")
    np.testing.assert_allclose(filled.pixels, 1.0, atol=1e-6)
