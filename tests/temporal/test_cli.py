"""``composite track`` writes a track file that ApplyTrack reads."""

from __future__ import annotations

import numpy as np
import yaml

from composite.cli.app import run
from composite.temporal.synthetic import camera_matrix
from composite.temporal.track import Track, apply_matrix, frame_corners

from .helpers import TemporalTestSource  # noqa: F401  (registers the test source)


def test_track_command(tmp_path, capsys):
    recipe = {"schema": "composite.pipeline/1", "name": "sh", "frames": "1-8",
              "stages": {"plate": {"type": "TestTemporalSource",
                                   "params": {"kind": "camera", "first": 1, "last": 8, "width": 160, "height": 96}}}}
    path = tmp_path / "shot.yaml"
    path.write_text(yaml.safe_dump(recipe))
    out = tmp_path / "cam.json"
    assert run(["track", str(path), "--node", "plate", "--out", str(out)]) == 0
    assert "wrote" in capsys.readouterr().out
    track = Track.load(out)
    assert track.frames == list(range(1, 9))
    c = frame_corners(160, 96)
    for i in range(8):
        truth = camera_matrix(i, seed=0, shake=2.0, pan=(1.0, 0.3), size=(160, 96))
        assert np.abs(apply_matrix(track.matrices[i], c) - apply_matrix(truth, c)).max() < 0.5
    assert run(["track", str(path), "--node", "plate", "--out", str(out), "--region", "1,2"]) == 2
