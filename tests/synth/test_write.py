"""Writing synthetic footage: EXR passes that read back to the generated arrays, and truth.json."""

import json
import os

import numpy as np
import pytest

from composite.io.exr import read_exr
from composite.synth import crowd_tile, generated_background_sequence, greenscreen_sequence
from composite.synth.write import main, write_background, write_crowd_tile, write_greenscreen


def test_greenscreen_files_read_back(tmp_path):
    seq = greenscreen_sequence(160, 90, 2, seed=6)
    paths = write_greenscreen(seq, tmp_path, passes=("plate", "alpha", "fg", "screen", "spill"),
                              pixel_type="float")
    names = sorted(p.name for p in paths)
    assert names == sorted([f"{k}.{n}.exr" for k in ("plate", "alpha", "fg", "screen", "spill")
                            for n in (1001, 1002)] + ["truth.json"])
    assert not [p for p in os.listdir(tmp_path) if p.startswith(".")]  # no temporary files left
    f = seq.frame(1002)
    plate = read_exr(tmp_path / "plate.1002.exr")
    assert plate.channels == ("R", "G", "B") and plate.colorspace == "ACEScg"
    np.testing.assert_array_equal(plate.pixels, f.plate)
    alpha = read_exr(tmp_path / "alpha.1002.exr")
    np.testing.assert_array_equal(alpha.a, f.alpha[..., 0])
    fg = read_exr(tmp_path / "fg.1002.exr")
    assert fg.channels == ("R", "G", "B", "A") and str(fg.alpha) == "premultiplied"
    np.testing.assert_array_equal(fg.pixels, f.fg_rgba())
    truth = json.loads((tmp_path / "truth.json").read_text())
    np.testing.assert_allclose(truth["frames"]["1002"]["camera"], seq.camera(1002), rtol=1e-12)
    assert truth["files"]["plate"] == "plate.####.exr"
    assert truth["params"]["seed"] == 6
    # The identity holds on disk too (float storage).
    rebuilt = fg.pixels[..., :3] + (1 - alpha.pixels) * read_exr(tmp_path / "screen.1002.exr").pixels + \
        read_exr(tmp_path / "spill.1002.exr").pixels + f.grain
    np.testing.assert_allclose(plate.pixels, rebuilt, atol=1e-6)


def test_half_storage_and_lossy_plate(tmp_path):
    seq = greenscreen_sequence(160, 90, 1, seed=6)
    write_greenscreen(seq, tmp_path, passes=("plate", "alpha"), plate_compression="dwab")
    f = seq.frame(1001)
    alpha = read_exr(tmp_path / "alpha.1001.exr")
    np.testing.assert_array_equal(alpha.a, f.alpha[..., 0].astype(np.float16).astype(np.float32))
    plate = read_exr(tmp_path / "plate.1001.exr")
    assert plate.metadata["exr:compression"] == "dwab"
    assert np.abs(plate.pixels - f.plate).mean() < 0.01


def test_background_and_crowd(tmp_path):
    seq = generated_background_sequence(96, 54, 2, seed=1)
    write_background(seq, tmp_path / "bg", passes=("bg", "bg_clean", "gain"))
    gain = read_exr(tmp_path / "bg" / "gain.1002.exr")
    np.testing.assert_array_equal(gain.pixels, seq.frame(1002).gain)
    truth = json.loads((tmp_path / "bg" / "truth.json").read_text())
    assert truth["frames"]["1001"]["global_gain"] == seq.flicker(1001)[0]
    tile = crowd_tile(count=3, sprite_height=32, seed=0)
    write_crowd_tile(tile, tmp_path / "crowd")
    sheet = read_exr(tmp_path / "crowd" / "crowd_tile.exr")
    assert sheet.pixels.shape == tile.pixels.shape
    meta = json.loads((tmp_path / "crowd" / "crowd_tile.json").read_text())
    assert meta["sprites"][2]["foot"] == list(tile.sprites[2].foot)


def test_command_line(tmp_path, capsys):
    assert main([str(tmp_path), "--kind", "all", "--width", "96", "--height", "54", "--frames", "2",
                 "--crowd-count", "2", "--sprite-height", "24", "--preview"]) == 0
    for p in ("greenscreen/plate.1002.exr", "greenscreen/screen.1001.exr", "greenscreen/truth.json",
              "background/bg_clean.1002.exr", "crowd/crowd_tile.json", "greenscreen/greenscreen_preview.png"):
        assert (tmp_path / p).exists(), p
    assert "wrote" in capsys.readouterr().out
    assert main([str(tmp_path / "x"), "--passes", "plate,nope"]) == 2
    assert "unknown pass 'nope'" in capsys.readouterr().err


def test_bad_pass_name(tmp_path):
    from composite.core.errors import InputError

    with pytest.raises(InputError, match="unknown greenscreen pass"):
        write_greenscreen(greenscreen_sequence(96, 54, 1), tmp_path, passes=("matte",))
