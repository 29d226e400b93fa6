"""The composite command: exit codes, --set, validate, stages."""

import json
import subprocess
import sys

import numpy as np
import yaml

from composite.cli import main
from composite.core import Image
from composite.io.exr import read_exr, write_exr


def run(*args):
    return subprocess.run([sys.executable, "-m", "composite", *args], capture_output=True, text=True)


def test_render_with_set_and_json_report(tmp_path, capsys):
    for t in (1, 2):
        write_exr(tmp_path / f"in.{t:04d}.exr", Image(np.full((4, 4, 4), 0.5, np.float32)))
    recipe = {"stages": {
        "plate": {"type": "ReadImage", "params": {"path": "missing.####.exr"}},
        "write": {"type": "WriteImage", "inputs": {"image": "plate"}, "params": {"path": "nowhere.####.exr"}},
    }}
    path = tmp_path / "r.yaml"
    path.write_text(yaml.safe_dump(recipe))
    code = main(["render", str(path), "--frames", "1-2", "--json",
                 "--set", f"plate.path={tmp_path}/in.####.exr", "--set", f"write.path={tmp_path}/out/o.####.exr"])
    assert code == 0
    report = json.loads(capsys.readouterr().out)
    assert report["rendered"] == [1, 2]
    np.testing.assert_allclose(read_exr(tmp_path / "out" / "o.0002.exr").pixels, 0.5)


def test_bad_input_exits_2_with_a_message_and_no_traceback(tmp_path):
    path = tmp_path / "r.yaml"
    path.write_text("stages:\n  a: {type: Constant, params: {width: -4}}\n")
    res = run("validate", str(path))
    assert res.returncode == 2
    assert "stages.a.params.width" in res.stderr and "out of range" in res.stderr
    assert "Traceback" not in res.stderr
    res = run("render", str(tmp_path / "nope.yaml"))
    assert res.returncode == 2 and "no recipe file" in res.stderr
    good = tmp_path / "g.yaml"
    good.write_text(yaml.safe_dump({"stages": {
        "plate": {"type": "ReadImage", "params": {"path": str(tmp_path / "p.####.exr")}},
        "write": {"type": "WriteImage", "inputs": {"image": "plate"}, "params": {"path": str(tmp_path / "o.####.exr")}},
    }}))
    res = run("render", str(good), "--frames", "1-3")
    assert res.returncode == 2 and "no frames of this sequence" in res.stderr


def test_render_failure_exits_1(tmp_path, monkeypatch, capsys):
    from composite.graph.builtin import NoOp

    def explode(self, t, image):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(NoOp, "process", explode)
    write_exr(tmp_path / "in.0001.exr", Image(np.zeros((2, 2, 4), np.float32)))
    path = tmp_path / "r.yaml"
    path.write_text(yaml.safe_dump({"stages": {
        "plate": {"type": "ReadImage", "params": {"path": str(tmp_path / "in.####.exr")}},
        "n": {"type": "NoOp", "inputs": {"image": "plate"}},
        "write": {"type": "WriteImage", "inputs": {"image": "n"}, "params": {"path": str(tmp_path / "o.####.exr")}},
    }}))
    assert main(["render", str(path), "--frames", "1"]) == 1
    assert "disk on fire" in capsys.readouterr().err


def test_stages_lists_and_describes(capsys):
    assert main(["stages"]) == 0
    out = capsys.readouterr().out
    assert "Merge" in out and "ReadImage" in out
    assert main(["stages", "Merge"]) == 0
    out = capsys.readouterr().out
    assert "operation: str; default 'over'; one of over, under" in out
    assert "mix: float; default 1.0; range [0.0, 1.0]" in out
    assert main(["stages", "Merge", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["params"]["mix"]["range"] == [0.0, 1.0]


def test_help_lists_commands():
    res = run("--help")
    assert res.returncode == 0
    for cmd in ("render", "validate", "stages"):
        assert cmd in res.stdout
