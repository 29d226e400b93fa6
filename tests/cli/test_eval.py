"""`composite eval matte`: files and sequences, JSON output, clear errors."""

import json

import cv2
import numpy as np
import pytest

from composite.cli import main
from composite.matte import metrics


def write_png(path, alpha):
    cv2.imwrite(str(path), np.round(alpha * 255).astype(np.uint8))


def test_eval_single_files_json_matches_hand_values(tmp_path, capsys):
    pred = np.zeros((4, 4))
    pred[1, 1] = 1.0
    pred[2, 2] = 0.2
    truth = np.zeros((4, 4))
    write_png(tmp_path / "pred.png", pred)
    write_png(tmp_path / "truth.png", truth)
    trimap = np.zeros((4, 4, 3))
    trimap[2, 2] = 128 / 255  # only pixel (2, 2) is unknown; RGB trimap
    cv2.imwrite(str(tmp_path / "tri.png"), np.round(trimap * 255).astype(np.uint8))
    assert main(["eval", "matte", "--pred", str(tmp_path / "pred.png"), "--truth", str(tmp_path / "truth.png"),
                 "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["count"] == 1
    assert out["mean"]["SAD"] == pytest.approx(1.2 / 1000, abs=1e-6)
    assert out["mean"]["MSE"] == pytest.approx((1 + 0.04) / 16, abs=1e-6)
    assert main(["eval", "matte", "--pred", str(tmp_path / "pred.png"), "--truth", str(tmp_path / "truth.png"),
                 "--trimap", str(tmp_path / "tri.png"), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["mean"]["SAD"] == pytest.approx(0.2 / 1000, abs=1e-6)
    assert out["mean"]["MSE"] == pytest.approx(0.04, abs=1e-5)


def test_eval_sequence_text_output_and_dtssd(tmp_path, capsys):
    rng = np.random.default_rng(3)
    preds, truths = [], []
    for f in (1001, 1002, 1003):
        t = np.clip(rng.uniform(-0.5, 1.5, (12, 12)), 0, 1)
        p = np.clip(t + rng.normal(0, 0.1, t.shape), 0, 1)
        write_png(tmp_path / f"p.{f}.png", p)
        write_png(tmp_path / f"t.{f}.png", t)
        preds.append(np.round(p * 255) / 255)
        truths.append(np.round(t * 255) / 255)
    assert main(["eval", "matte", "--pred", str(tmp_path / "p.####.png"), "--truth", str(tmp_path / "t.####.png"),
                 "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert [r["frame"] for r in out["frames"]] == [1001, 1002, 1003]
    assert out["frames"][1]["SAD"] == pytest.approx(metrics.sad(preds[1], truths[1]), rel=1e-5)
    assert out["frames"][2]["Conn"] == pytest.approx(metrics.connectivity_error(preds[2], truths[2]), rel=1e-5)
    assert out["dtSSD"] == pytest.approx(metrics.dtssd(preds, truths), rel=1e-5)
    assert main(["eval", "matte", "--pred", str(tmp_path / "p.####.png"), "--truth", str(tmp_path / "t.####.png"),
                 "--frames", "1001-1002", "--no-connectivity"]) == 0
    text = capsys.readouterr().out
    lines = text.splitlines()
    assert lines[0].split() == ["frame", "SAD", "MSE", "Grad", "MAD"]
    assert [ln.split()[0] for ln in lines[1:4]] == ["1001", "1002", "mean"] and "dtSSD" in text


def test_eval_errors_exit_2_with_message(tmp_path, capsys):
    write_png(tmp_path / "a.png", np.zeros((4, 4)))
    write_png(tmp_path / "b.png", np.zeros((5, 4)))
    code = main(["eval", "matte", "--pred", str(tmp_path / "a.png"), "--truth", str(tmp_path / "b.png")])
    assert code == 2
    assert "same size" in capsys.readouterr().err
    code = main(["eval", "matte", "--pred", str(tmp_path / "x.####.png"), "--truth", str(tmp_path / "b.png")])
    assert code == 2
    assert "no frames found" in capsys.readouterr().err
