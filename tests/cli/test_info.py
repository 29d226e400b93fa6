"""``composite info``: files, sequences, movies and timelines; bad input exits 2 with one line."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np

from composite.cli import main
from composite.core import Image
from composite.io import exr, video


def info_json(capsys, *args):
    assert main(["info", *args, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_info_exr_parts_windows_channels_and_colour(eval_data, capsys):
    info = info_json(capsys, str(eval_data / "exr" / "Beachball_multipart.0001.exr"))
    assert info["format"] == "openexr" and len(info["parts"]) == 10
    p0 = info["parts"][0]
    assert p0["name"] == "rgba_right" and p0["view"] == "right" and p0["compression"] == "zips"
    assert p0["data_window"] == [654, 245, 1530, 1120] and p0["display_window"] == [0, 0, 2047, 1555]
    assert {c["name"]: c["type"] for c in p0["channels"]} == {"A": "half", "B": "half", "G": "half", "R": "half"}
    carrots = info_json(capsys, str(eval_data / "exr" / "Carrots.exr"))["parts"][0]
    assert carrots["colorspace"] == "ACES2065-1" and carrots["attributes"]["cameraMake"] == "Sony"
    yc = info_json(capsys, str(eval_data / "exr" / "Rec709_YC.exr"))["parts"][0]
    assert yc["luminance_chroma"] and {c["name"]: c["sampling"] for c in yc["channels"]}["RY"] == [2, 2]
    tiles = info_json(capsys, str(eval_data / "exr" / "ColorCodedLevels.exr"))["parts"][0]["tiles"]
    assert tiles == {"x_size": 64, "y_size": 64, "level_mode": "MIPMAP_LEVELS", "rounding": "ROUND_DOWN"}
    assert info_json(capsys, str(eval_data / "exr" / "LowResLeftView_Trunks_deep.exr"))["parts"][0]["storage"] == \
        "deepscanline"
    assert main(["info", str(eval_data / "exr" / "DisplayWindow_t15.exr")]) == 0
    text = capsys.readouterr().out
    assert "pixel aspect: 1.5" in text and "display window: (-40,-40)-(440,330) 481x371" in text


def test_info_sequence_range_gaps_and_format_changes(tmp_path, capsys):
    for t in (1001, 1002, 1003, 1006):
        w = 8 if t != 1006 else 10
        exr.write_exr(tmp_path / f"p.{t}.exr", Image(np.zeros((4, w, 4), np.float32)))
    info = info_json(capsys, str(tmp_path / "p.####.exr"), "--check")
    assert (info["first"], info["last"], info["count"], info["gaps"]) == (1001, 1006, 4, "1004-1005")
    assert info["format_changes"] == [{"frame": 1006, "change": "resolution 8x4 → 10x4"}]
    assert main(["info", str(tmp_path / "p.%04d.exr")]) == 0
    assert "gaps: 1004-1005 (2 missing)" in capsys.readouterr().out


def test_info_movie_and_timeline(tmp_path, eval_data, capsys):
    path = video.write_movie(tmp_path / "m.mp4", (np.full((16, 16, 3), k / 10, np.float32) for k in range(7)),
                             rate=25)
    movie = info_json(capsys, str(path))
    assert (movie["codec"], movie["frame_count"], movie["fps"], movie["width"]) == ("h264", 7, 25.0, 16)
    tl = info_json(capsys, str(eval_data / "otio" / "edl" / "speed_effects_small.edl"))
    assert tl["shot_count"] == 5 and tl["shots"][4]["speed"] > 1.9
    assert main(["info", str(eval_data / "otio" / "otio" / "simple_cut.otio")]) == 0
    assert "Clip-002" in capsys.readouterr().out


def test_info_bad_input_exits_2_with_one_line(tmp_path, eval_data):
    data = (eval_data / "exr" / "Carrots.exr").read_bytes()
    cut = tmp_path / "cut.exr"
    cut.write_bytes(data[: len(data) // 2])
    res = subprocess.run([sys.executable, "-m", "composite", "info", str(cut)], capture_output=True, text=True)
    assert res.returncode == 2
    lines = [line for line in res.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "cut.exr: cannot read OpenEXR file" in lines[0] and "truncated" in lines[0]
    assert "Traceback" not in res.stderr
    assert main(["info", str(tmp_path / "nothing.####.exr")]) == 2
    assert main(["info"]) == 2
