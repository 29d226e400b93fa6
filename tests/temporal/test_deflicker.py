"""Deflicker: injected flicker removed, real changes (ramps, a light turning on) kept."""

from __future__ import annotations

import numpy as np
import pytest

from composite.core.errors import InputError
from composite.temporal.deflicker import apply_gains, deflicker, estimate_flicker_gains
from composite.temporal.metrics import flicker_index
from composite.temporal.synthetic import apply_flicker, camera_frame, flicker_gains, textured_plate

N = 24
R = 8


def levels(out, base, region=(slice(None), slice(None))):
    return np.array([np.log2(np.median(o[region][..., 1] / base[region][..., 1])) for o in out])


def run(frames, **kw):
    n = len(frames)
    return [deflicker({k: frames[k] for k in range(max(0, t - R), min(n, t + R + 1))}, t, **kw) for t in range(n)]


@pytest.fixture(scope="module")
def base():
    return textured_plate(48, 80, seed=2)


@pytest.fixture(scope="module")
def flicker():
    return np.random.default_rng(7).normal(0.0, 0.15, N)


@pytest.mark.parametrize("trend_name", ["flat", "ramp", "step"])
def test_global_flicker_removed_and_real_changes_kept(base, flicker, trend_name):
    t = np.arange(N)
    trend = {"flat": np.zeros(N), "ramp": np.linspace(0.0, 1.5, N),
             "step": np.where(t >= 12, 1.0, 0.0)}[trend_name]      # a light turning on at frame 12
    frames = [base * np.float32(2.0 ** (trend[k] + flicker[k])) for k in range(N)]
    out = run(frames, motion_compensate=False)
    dev = levels(out, base) - trend            # what is left of the flicker (the shot's level is free)
    jumps = np.diff(dev)
    if trend_name == "step":
        jumps = np.delete(jumps, 11)
        lv = levels(out, base)
        assert lv[12] - lv[11] == pytest.approx(1.0, abs=0.15)   # the light still turns on, in one frame
    # Frame-to-frame flicker drops to a fifth (a third next to a step, where the trend is fitted on one
    # side only); a ramp keeps its slope.
    limit = 0.35 if trend_name == "step" else 0.2
    assert np.sqrt(np.mean(jumps ** 2)) < limit * np.sqrt(np.mean(np.diff(flicker) ** 2))
    if trend_name == "ramp":
        slope = np.polyfit(t, levels(out, base), 1)[0]
        assert slope == pytest.approx(1.5 / (N - 1), abs=0.01)


def test_regional_flicker_needs_a_grid(base):
    gains = [flicker_gains(k, seed=3, amplitude=0.15, grid=(4, 2)) for k in range(N)]
    frames = [apply_flicker(base, g) for g in gains]
    zero = [(np.zeros((48, 80, 2), np.float32),) * 2] * (N - 1)
    before = flicker_index(frames, flows=zero, grid=(4, 2))
    regional = flicker_index(run(frames, grid=(4, 2), motion_compensate=False), flows=zero, grid=(4, 2))
    global_only = flicker_index(run(frames, motion_compensate=False), flows=zero, grid=(4, 2))
    assert regional < 0.35 * before
    assert regional < 0.6 * global_only


def test_colour_flicker_rgb_mode(base):
    gains = [flicker_gains(k, seed=5, amplitude=0.05, colour=0.08) for k in range(N)]
    frames = [apply_flicker(base, g) for g in gains]
    out = run(frames, motion_compensate=False)
    ratios = np.array([[np.log2(np.median(o[..., c] / base[..., c])) for c in range(3)] for o in out])
    tint_before = np.array([g[0, 0] - g[0, 0].mean() for g in gains])
    tint_after = ratios - ratios.mean(axis=1, keepdims=True)
    # Frame-to-frame colour changes (each channel against the others) drop to a quarter.
    assert np.all(np.std(np.diff(tint_after, axis=0), axis=0) < 0.25 * np.std(np.diff(tint_before, axis=0), axis=0))


def test_motion_compensated_on_moving_camera():
    frames = []
    for k in range(N):
        plate, _ = camera_frame(k, height=72, width=120, seed=4, shake=1.0, pan=(1.5, 0.5))
        frames.append(apply_flicker(plate, flicker_gains(k, seed=9, amplitude=0.15)))
    before = flicker_index(frames)
    after = flicker_index(run(frames, motion_compensate=True))
    assert after < 0.25 * before


def test_gains_apply_to_colour_only_and_keep_hdr():
    px = np.ones((4, 6, 4), np.float32) * np.float32(3.0)      # HDR colour, alpha 3 (nonsense) kept
    px[..., 3] = 0.5
    out = apply_gains(px, np.full((1, 1, 3), 1.0))
    assert np.allclose(out[..., :3], 6.0) and np.allclose(out[..., 3], 0.5)
    smooth = apply_gains(px, np.array([[[0.0] * 3, [1.0] * 3]]))    # two tiles, interpolated between centres
    assert smooth[0, 0, 0] == pytest.approx(3.0) and smooth[0, -1, 0] == pytest.approx(6.0)
    assert np.all(np.diff(smooth[0, :, 0]) >= -1e-6)


def test_bad_input():
    b = textured_plate(16, 16, seed=1)
    with pytest.raises(InputError, match="share one size"):
        estimate_flicker_gains({0: b, 1: b[:, :8]}, 0)
    with pytest.raises(InputError, match="R, G, B"):
        estimate_flicker_gains({0: b[..., :1], 1: b[..., :1]}, 0)
    assert np.allclose(estimate_flicker_gains({0: b}, 0), 0.0)        # a one-frame window: no change


def _decode(path, n, step=4):
    import av

    out = []
    with av.open(str(path)) as container:
        for frame in container.decode(video=0):
            v = frame.to_ndarray(format="rgb24")[::step, ::step].astype(np.float32) / np.float32(255.0)
            out.append(v ** np.float32(2.4))
            if len(out) >= n:
                break
    return out


@pytest.mark.evaldata
def test_real_clips(eval_data):
    """Real footage: an 8-bit, already steady film clip is left alone; the same clip with injected
    flicker is brought back close to its original steadiness."""
    frames = _decode(eval_data / "video" / "moviepy_chaplin.mp4", 24)
    n = len(frames)

    def run_real(seq):
        return [deflicker({k: seq[k] for k in range(max(0, t - 6), min(n, t + 7))}, t, mode="luminance")
                for t in range(n)]

    flows = None
    from composite.temporal.metrics import sequence_flows

    flows = sequence_flows(frames)
    steady = flicker_index(frames, flows=flows)
    assert flicker_index(run_real(frames), flows=flows) < steady + 0.005
    flickered = [apply_flicker(f, flicker_gains(k, seed=11, amplitude=0.12)) for k, f in enumerate(frames)]
    before = flicker_index(flickered, flows=flows)
    after = flicker_index(run_real(flickered), flows=flows)
    assert before > 0.1 and after < 0.25 * before
