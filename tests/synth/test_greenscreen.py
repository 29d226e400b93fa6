"""The green-screen generator's truth is self-consistent, deterministic and follows its camera."""

import numpy as np
import pytest

from composite.core.errors import InputError
from composite.synth import greenscreen_sequence
from composite.synth.greenscreen import _ap1


@pytest.fixture(scope="module")
def seq():
    return greenscreen_sequence(320, 180, 6, seed=3)


@pytest.fixture(scope="module")
def frame(seq):
    return seq.frame(1003)


def test_plate_is_the_physical_composite(frame):
    f = frame
    rebuilt = f.fg + (1.0 - f.alpha) * f.screen + f.spill + f.grain
    np.testing.assert_allclose(f.plate, rebuilt, rtol=0, atol=1e-6)
    for a in (f.plate, f.alpha, f.fg, f.screen, f.spill, f.grain):
        assert a.dtype == np.float32 and np.isfinite(a).all()
    assert f.plate.shape == (180, 320, 3) and f.alpha.shape == (180, 320, 1)


def test_alpha_and_premultiplied_foreground_are_consistent(frame):
    a = frame.alpha[..., 0]
    assert a.min() >= 0.0 and a.max() <= 1.0
    assert (a == 0).mean() > 0.4 and (a == 1).mean() > 0.1  # a real subject on a real screen
    assert (frame.fg >= 0).all()
    # Premultiplied: where the subject is absent its colour is zero, elsewhere colour/alpha is a plausible
    # reflectance (the brightest part is the lit steel plate, well under 1).
    assert np.abs(frame.fg[a == 0]).max() == 0
    straight = frame.fg[a > 0.02] / a[a > 0.02, None]
    assert straight.max() < 1.0


def test_spill_is_screen_light_on_the_subject_only(frame):
    a = frame.alpha[..., 0]
    sp = frame.spill
    assert np.abs(sp[a == 0]).max() == 0
    assert (sp >= 0).all() and sp.sum() > 0
    # Spill has the screen's colour: per pixel proportional to the screen plate.
    m = sp[..., 1] > 1e-4
    ratio = sp[m] / frame.screen[m]
    np.testing.assert_allclose(ratio[:, 0], ratio[:, 1], rtol=1e-4)
    np.testing.assert_allclose(ratio[:, 2], ratio[:, 1], rtol=1e-4)
    # Strongest at the silhouette: thin/soft pixels carry more spill per unit alpha than the core.
    edge = (a > 0.05) & (a < 0.95)
    core = a == 1
    per_alpha = sp[..., 1] / np.maximum(a, 1e-6)
    assert per_alpha[edge].mean() > 3 * per_alpha[core].mean()


def test_fine_structures_exist(seq):
    f = seq.frame(1001)
    a = f.alpha[..., 0]
    # Hair strands and cords: many partially covered pixels, in the upper part of the frame.
    soft = (a > 0.03) & (a < 0.97)
    assert soft[:70].sum() > 150
    # The veil: a translucent region with alpha between 0.3 and 0.6.
    assert ((a >= 0.29) & (a <= 0.61)).sum() > 0.01 * a.size


def test_motion_blur_softens_the_raised_arm():
    # Frame 1008 is a third of a second in, when the arm swings fastest.
    on = greenscreen_sequence(320, 180, 10, seed=1, motion_blur=True, grain=0)
    off = greenscreen_sequence(320, 180, 10, seed=1, motion_blur=False, grain=0)
    a_on, a_off = on.frame(1008).alpha[..., 0], off.frame(1008).alpha[..., 0]
    right = np.s_[:, 215:]  # the raised arm is on the right of the subject
    frac_on = ((a_on[right] > 0.02) & (a_on[right] < 0.98)).sum()
    frac_off = ((a_off[right] > 0.02) & (a_off[right] < 0.98)).sum()
    assert frac_on > 2 * frac_off
    # The blur conserves coverage over the shutter: total alpha is about the same.
    assert abs(a_on[right].sum() - a_off[right].sum()) < 0.1 * a_off[right].sum()


def test_deterministic_and_chunk_independent():
    a = greenscreen_sequence(160, 90, 5, seed=11)
    b = greenscreen_sequence(160, 90, 5, seed=11)
    c = greenscreen_sequence(160, 90, 5, seed=12)
    in_order = [f for f in b][3]  # generated after frames 1001-1003
    alone = a.frame(1004)  # generated on its own
    for name in ("plate", "alpha", "fg", "screen", "spill", "grain"):
        assert np.array_equal(getattr(alone, name), getattr(in_order, name)), name
    assert not np.array_equal(alone.plate, c.frame(1004).plate)


def test_grain_statistics_follow_the_documented_amplitude():
    f = greenscreen_sequence(320, 180, 2, seed=5, grain=1.0).frame(1002)
    clean = f.plate - f.grain
    amp = (np.sqrt(np.maximum(clean, 0) * 0.18) * 0.03 + 0.0004) * np.array([1.0, 0.85, 1.35], np.float32)
    z = f.grain / amp
    assert abs(float(z.mean())) < 0.02
    assert 0.93 < float(z.std()) < 1.07
    # Partly shared across channels.
    r = np.corrcoef(z[..., 0].ravel(), z[..., 1].ravel())[0, 1]
    assert 0.2 < r < 0.6
    none = greenscreen_sequence(160, 90, 2, seed=5, grain=0).frame(1001)
    assert not none.grain.any()


def test_camera_first_frame_identity_and_locked_off():
    seq = greenscreen_sequence(160, 90, 4, seed=2)
    np.testing.assert_allclose(seq.camera(1001), np.eye(3), atol=1e-12)
    assert np.abs(seq.camera(1004) - np.eye(3)).max() > 1e-4
    step = seq.camera_step(1003)
    np.testing.assert_allclose(step @ seq.camera(1002), seq.camera(1003) * (step @ seq.camera(1002))[2, 2],
                               atol=1e-9)
    still = greenscreen_sequence(160, 90, 4, seed=2, camera_move=0.0)
    for n in still.frames:
        np.testing.assert_allclose(still.camera(n), np.eye(3), atol=1e-12)
    assert np.array_equal(still.frame(1001).screen, still.frame(1004).screen)


def _marker_centroid(img, x, y, r=7):
    xi, yi = int(round(x)), int(round(y))
    win = img[yi - r:yi + r + 1, xi - r:xi + r + 1, 1].astype(np.float64)
    ring = np.concatenate([win[0], win[-1], win[:, 0], win[:, -1]])
    dark = np.clip(np.median(ring) - win, 0, None)
    dark[dark < 0.25 * dark.max()] = 0
    ys, xs = np.mgrid[-r:r + 1, -r:r + 1]
    w = dark.sum()
    return xi + (xs * dark).sum() / w, yi + (ys * dark).sum() / w


def test_screen_markers_move_as_the_camera_matrix_says():
    seq = greenscreen_sequence(640, 360, 48, seed=4, camera_move=2.0)
    markers = np.array(seq.markers)
    assert len(markers) > 10
    n = 1048
    f = seq.frame(n)
    m = seq.camera(n)
    hom = np.c_[markers, np.ones(len(markers))] @ m.T
    proj = hom[:, :2] / hom[:, 2:]
    errs, moved = [], []
    for (x0, y0), (x, y) in zip(markers, proj):
        if not (12 < x < 640 - 12 and 12 < y < 360 - 12):
            continue
        cx, cy = _marker_centroid(f.screen, x, y)
        errs.append(np.hypot(cx - x, cy - y))
        moved.append(np.hypot(x - x0, y - y0))
    assert len(errs) > 8
    assert max(moved) > 3.0  # the camera really moved: identity would miss by pixels
    assert np.median(errs) < 0.2 and max(errs) < 0.5


def test_blue_screen_and_uneven_screen():
    seq = greenscreen_sequence(320, 180, 2, seed=0, screen="blue")
    sc = seq.frame(1001).screen
    med = np.median(sc.reshape(-1, 3), axis=0)
    assert med[2] > 3 * med[1] > med[0]
    np.testing.assert_allclose(seq.params["screen_color"], _ap1((0.018, 0.06, 0.36)), rtol=1e-6)
    g = greenscreen_sequence(320, 180, 2, seed=0).frame(1001).screen[..., 1]
    cv = g.std() / g.mean()
    assert 0.03 < cv < 0.25  # uneven, but a usable screen


@pytest.mark.parametrize("kwargs", [dict(screen="red"), dict(spill=2.0), dict(camera_move=-1.0),
                                    dict(hair_strands=-3)])
def test_bad_parameters_are_input_errors(kwargs):
    with pytest.raises(InputError):
        greenscreen_sequence(160, 90, 2, **kwargs)


def test_bad_size_and_frame():
    with pytest.raises(InputError, match="size"):
        greenscreen_sequence(8, 8, 2)
    with pytest.raises(InputError, match="frames"):
        greenscreen_sequence(160, 90, 0)
    seq = greenscreen_sequence(160, 90, 2)
    with pytest.raises(InputError, match="outside 1001-1002"):
        seq.frame(1003)
    with pytest.raises(IndexError):
        seq[2]


def test_images_carry_state(frame):
    from composite.core.state import AlphaState

    imgs = frame.images()
    assert imgs["fg"].alpha is AlphaState.PREMULTIPLIED and imgs["fg"].channels == ("R", "G", "B", "A")
    assert imgs["plate"].alpha is AlphaState.OPAQUE and imgs["plate"].colorspace == "ACEScg"
    assert imgs["alpha"].channels == ("A",) and imgs["alpha"].colorspace == "Raw"
    assert imgs["plate"].frame == 1003
