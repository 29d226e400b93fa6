"""Point, planar and camera tracking on synthetic sequences with known motion; smoothing of transforms."""

from __future__ import annotations

import numpy as np
import pytest

from composite.core.errors import InputError
from composite.temporal.synthetic import camera_sequence, textured_plate
from composite.temporal.track import (
    Track,
    TrackingError,
    apply_matrix,
    estimate_transform,
    frame_corners,
    matrix_from_corners,
    smooth_transforms,
    stabilize_matrix,
    track_points,
    track_sequence,
)

W, H = 160, 96


def corner_error(m_est, m_true):
    c = frame_corners(W, H)
    return float(np.abs(apply_matrix(m_est, c) - apply_matrix(m_true, c)).max())


@pytest.fixture(scope="module")
def shot():
    return camera_sequence(10, height=H, width=W, seed=1, shake=2.0, pan=(1.5, 0.5), rotate=0.3, zoom=0.004,
                           perspective=0.02)


def test_homography_within_pixel_error(shot):
    """Stated accuracy (frame corners, the worst place: extrapolated beyond the features) on a shot with
    shake, pan, rotation, zoom and a growing keystone: 0.15 px to the next frame, 0.5 px four frames
    apart, 0.75 px nine frames apart."""
    frames, mats = shot
    for k, tol in ((1, 0.15), (4, 0.5), (9, 0.75)):
        est = estimate_transform(frames[0], frames[k], model="homography", labels=("frame 0", f"frame {k}"))
        assert est.inliers >= 50 and est.rms < 0.4
        assert corner_error(est.matrix, mats[k]) < tol


def test_affine_within_pixel_error():
    frames, mats = camera_sequence(6, height=H, width=W, seed=7, shake=2.0, pan=(1.5, 0.5), rotate=0.4,
                                   zoom=0.005)
    for k in (1, 5):
        est = estimate_transform(frames[0], frames[k], model="affine")
        assert corner_error(est.matrix, mats[k]) < 0.3


def test_similarity_and_translation_models():
    frames, mats = camera_sequence(3, height=H, width=W, seed=2, shake=0.0, pan=(3.0, -2.0), rotate=0.5)
    est = estimate_transform(frames[0], frames[2], model="similarity")
    assert corner_error(est.matrix, mats[2]) < 0.3
    frames, mats = camera_sequence(3, height=H, width=W, seed=2, shake=0.0, pan=(3.0, -2.0))
    est = estimate_transform(frames[0], frames[1], model="translation")
    assert np.allclose(est.matrix[:2, 2], [3.0, -2.0], atol=0.05)


def test_track_points_follow_known_motion(shot):
    frames, mats = shot
    tracks = track_points(frames, max_points=60)
    assert tracks.shape[1] >= 30
    alive = np.isfinite(tracks[-1, :, 0])
    assert alive.mean() > 0.7
    truth = apply_matrix(mats[-1], tracks[0, alive])
    err = np.linalg.norm(tracks[-1, alive] - truth, axis=1)
    assert np.median(err) < 0.25 and np.percentile(err, 90) < 0.8     # after 9 frames of LK steps


def test_forward_backward_check_drops_occluded_points():
    a = textured_plate(H, W, seed=3)
    b = a.copy()
    b[20:60, 40:100] = textured_plate(40, 60, seed=8)          # a patch replaced: its points cannot be followed
    tracks = track_points([a, b], max_points=200)
    inside = (tracks[0, :, 0] > 46) & (tracks[0, :, 0] < 94) & (tracks[0, :, 1] > 26) & (tracks[0, :, 1] < 54)
    assert inside.sum() > 5
    assert np.isnan(tracks[1, inside, 0]).mean() > 0.8
    assert np.isfinite(tracks[1, ~inside, 0]).mean() > 0.8


def test_camera_track_over_the_shot(shot, tmp_path):
    frames, mats = shot
    track = track_sequence(list(zip(range(1001, 1011), frames)), model="homography")
    assert track.frames == list(range(1001, 1011)) and track.reference == 1001
    for i in range(10):
        assert corner_error(track.matrices[i], mats[i]) < 0.5
    # Relative motion between any two frames of the track.
    rel = track.matrix(1008, 1004)
    assert corner_error(rel, mats[7] @ np.linalg.inv(mats[3])) < 0.6
    path = track.save(tmp_path / "sh010.track.json")
    back = Track.load(path)
    assert back.frames == track.frames and np.allclose(back.matrices, track.matrices)
    with pytest.raises(InputError, match="no frame 999"):
        back.matrix(999)


def test_planar_region_track():
    frames, mats = camera_sequence(6, height=H, width=W, seed=4, shake=1.0, pan=(1.0, 0.0), perspective=0.03)
    track = track_sequence(dict(zip(range(6), frames)), model="homography", region=(30, 20, 90, 56))
    corners = np.array([[30, 20], [120, 20], [120, 76], [30, 76]], np.float64)
    for i in range(6):
        err = np.abs(apply_matrix(track.matrices[i], corners) - apply_matrix(mats[i], corners)).max()
        assert err < 0.5


def test_textureless_frames_fail_clearly():
    flat = np.full((H, W, 3), 0.18, np.float32)
    with pytest.raises(TrackingError, match="frame 1001.*textureless"):
        estimate_transform(flat, flat, labels=("frame 1001", "frame 1002"))
    frames, _ = camera_sequence(4, height=H, width=W, seed=5, shake=1.0)
    seq = [(1, frames[0]), (2, frames[1]), (3, flat), (4, frames[2])]
    with pytest.raises(TrackingError, match="tracking lost at frame 3"):
        track_sequence(seq)
    held = track_sequence(seq, on_failure="hold")
    assert held.inliers[2] == 0 and np.allclose(held.matrices[2], held.matrices[1])
    with pytest.raises(InputError, match="share one size"):
        track_sequence([(1, frames[0]), (2, frames[1][:, :100])])


def test_smoothing_transforms_removes_shake_keeps_move():
    n = 40
    t = np.arange(n)
    rng = np.random.default_rng(0)
    smooth_path = np.stack([np.eye(3)] * n)
    smooth_path[:, 0, 2] = 0.02 * t ** 2          # an accelerating pan: kept by order-2 smoothing
    smooth_path[:, 1, 2] = -1.5 * t
    shaky = smooth_path.copy()
    shaky[:, :2, 2] += rng.normal(0, 2.0, (n, 2))
    for method, kw in (("savgol", {"order": 2}), ("kalman", {"measurement_sigma": 2.0, "acceleration_sigma": 0.05})):
        out = smooth_transforms(shaky, width=W, height=H, model="translation", method=method, radius=8, **kw)
        err_before = np.abs(shaky[:, :2, 2] - smooth_path[:, :2, 2])[8:-8].mean()
        err_after = np.abs(out[:, :2, 2] - smooth_path[:, :2, 2])[8:-8].mean()
        assert err_after < 0.5 * err_before, method


def test_matrix_from_corners_round_trip():
    m = np.array([[1.01, 0.02, 3.0], [-0.015, 0.99, -2.0], [1e-5, -2e-5, 1.0]])
    c = frame_corners(W, H)
    assert np.allclose(matrix_from_corners(c, apply_matrix(m, c), model="homography"), m, atol=1e-9)


def test_windowed_stabilisation_reduces_jitter():
    frames, mats = camera_sequence(9, height=H, width=W, seed=6, shake=2.5, pan=(1.0, 0.0))
    window = dict(enumerate(frames))
    m, used = stabilize_matrix(window, 4, model="translation", method="average")
    assert used == 9
    # Averaging the window's camera positions puts frame 4 at the mean position of frames 0..8.
    mean_shift = np.mean([mats[k][:2, 2] - mats[4][:2, 2] for k in range(9)], axis=0)
    assert np.allclose(m[:2, 2], mean_shift, atol=0.15)


def test_green_screen_camera_track_excluding_the_actor():
    """On a screen shot the actor moves on its own: excluded (its alpha, grown), the markers and screen give
    the camera to within half a pixel; not excluded, the actor's features pull the track off."""
    import cv2

    from composite.synth import greenscreen_sequence

    frames = list(greenscreen_sequence(480, 270, 10, seed=8, camera_move=1.6))
    exclude = {f.frame: cv2.dilate((f.alpha[..., 0] > 0.02).astype(np.uint8), np.ones((7, 7))) for f in frames}
    c = frame_corners(480, 270)

    def worst(track):
        return max(np.abs(apply_matrix(track.matrices[i], c) - apply_matrix(frames[i].camera, c)).max()
                   for i in range(10))

    excluded = track_sequence([(f.frame, f.plate) for f in frames], exclude=exclude)
    assert worst(excluded) < 0.5
    assert worst(track_sequence([(f.frame, f.plate) for f in frames])) > worst(excluded)
