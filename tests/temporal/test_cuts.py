"""Scene-cut detection on synthetic shots and on the real Tears of Steel excerpt."""

from __future__ import annotations

import numpy as np
import pytest

from composite.temporal.cuts import cut_score, is_cut, shot_frames
from composite.temporal.synthetic import camera_frame, textured_plate


def test_same_shot_changes_are_not_cuts():
    a, _ = camera_frame(0, seed=3, shake=0.0, pan=(4.0, 1.0))
    b, _ = camera_frame(1, seed=3, shake=0.0, pan=(4.0, 1.0))      # camera moved 4 px
    assert cut_score(a, b) < 0.3
    assert not is_cut(a, a * np.float32(0.5))                        # a one-stop flicker
    assert cut_score(a, a) == pytest.approx(0.0, abs=1e-9)


def test_different_shots_are_cuts():
    a = textured_plate(72, 128, seed=1)
    b = textured_plate(72, 128, seed=2)
    assert is_cut(a, b)
    assert cut_score(a, b[:, :100]) == float("inf")                  # frames of different sizes


def test_shot_frames_stop_at_cut_and_gap():
    shot1 = [textured_plate(36, 64, seed=1) * np.float32(1 + 0.05 * k) for k in range(4)]
    shot2 = [textured_plate(36, 64, seed=9)] * 3
    frames = dict(zip(range(1001, 1008), shot1 + shot2))
    assert shot_frames(frames, 1002) == [1001, 1002, 1003, 1004]
    assert shot_frames(frames, 1005) == [1005, 1006, 1007]
    assert shot_frames(frames, 1002, threshold=None) == list(range(1001, 1008))
    del frames[1003]
    assert shot_frames(frames, 1002) == [1001, 1002]                # a gap ends the window


def _decode(path, n):
    import av

    out = []
    with av.open(str(path)) as container:
        for frame in container.decode(video=0):
            v = frame.to_ndarray(format="rgb24")[::4, ::4].astype(np.float32) / np.float32(255.0)
            out.append(v ** np.float32(2.4))         # BT.1886 display encoding to linear light
            if len(out) >= n:
                break
    return out


@pytest.mark.evaldata
def test_real_clip_cuts(eval_data):
    frames = _decode(eval_data / "video" / "tears_of_steel_10s_640x360.mp4", 240)
    scores = np.array([cut_score(frames[i], frames[i + 1]) for i in range(len(frames) - 1)])
    # Three hard cuts, checked by eye on a contact sheet: after frames 20, 64 and 184.
    assert sorted(np.flatnonzero(scores > 0.8).tolist()) == [20, 64, 184]
    chaplin = _decode(eval_data / "video" / "moviepy_chaplin.mp4", 60)   # one flickering shot
    assert max(cut_score(chaplin[i], chaplin[i + 1]) for i in range(59)) < 0.4
