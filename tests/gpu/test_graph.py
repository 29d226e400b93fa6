"""GPU-resident pipelines: where frames live between stages, transfers, read-ahead, batching, compute ahead
of writing, rendering to files and the ``--device`` option."""

from __future__ import annotations

import json
import os
import threading

import numpy as np
import pytest
import yaml

from composite.color.match_stages import Grade
from composite.core import Image
from composite.core.errors import InputError, NonFiniteError
from composite.gpu import graph as G
from composite.gpu import stages as S
from composite.gpu.tensor import transfers
from composite.graph import Param, Pipeline, Stage
from composite.graph.builtin import Constant, Merge, Noise
from composite.matte.stages import ColorDifferenceKey, Despill

W, H = 64, 48
FRAME_BYTES = W * H * 3 * 4


class Plate(Stage):
    """Green-screen frames 1001-1006; records the threads that decoded them."""

    is_source = True
    params = {"bad_frame": Param(int, 0)}
    threads: list[str] = []

    def frame_range(self):
        return (1001, 1006)

    def source_identity(self, t):
        return f"plate:{t}"

    def process(self, t, **_):
        from composite.synth import greenscreen_sequence

        Plate.threads.append(threading.current_thread().name)
        seq = _SEQ.get("s") or _SEQ.setdefault("s", greenscreen_sequence(W, H, 6, seed=5))
        px = seq.frame(t).plate.copy()
        if t == self.p.bad_frame:
            px[3, 4, 1] = np.nan
        return Image(px, ("R", "G", "B"), time=self.time(t))


_SEQ: dict = {}


def comp(device=None, *, bad_frame=0, numpy_stage=False):
    p = Pipeline("comp", device=device)
    plate = p.add("plate", Plate(bad_frame=bad_frame))
    key = p.add("key", ColorDifferenceKey(screen_color=[0.05, 0.4, 0.08], despill="none"), image=plate)
    ds = p.add("despill", Despill(), image=key)
    if numpy_stage:
        ds = p.add("noise", Noise(amount=0.01), image=ds)
    gr = p.add("grade", Grade(gain=[1.1, 1.0, 0.9]), image=ds)
    bg = p.add("bg", Constant(color=[0.1, 0.2, 0.3, 1.0], width=W, height=H))
    p.add("comp", Merge(), a=gr, b=bg)
    return p


def test_frames_stay_on_the_device_between_stages():
    reference = comp()
    p = comp("torch-cpu")
    G.configure(p, prefetch=0)
    transfers.reset()
    for t in range(1001, 1007):
        np.testing.assert_allclose(p.evaluate("comp", t).pixels, reference.evaluate("comp", t).pixels, atol=1e-6)
    big = transfers.large(FRAME_BYTES)
    # One upload per plate frame, one download per result; the constant background is made on the device.
    assert [d for d, _, _ in big].count("h2d") == 6 and [d for d, _, _ in big].count("d2h") == 6
    assert transfers.snapshot()["h2d"] == 6 and transfers.snapshot()["d2h"] == 6


def test_a_numpy_only_stage_costs_one_round_trip():
    p = comp("torch-cpu", numpy_stage=True)
    G.configure(p, prefetch=0)
    transfers.reset()
    p.evaluate("comp", 1001)
    snap = transfers.snapshot()
    assert (snap["h2d"], snap["d2h"]) == (2, 2)       # plate up; down to Noise and up again; result down
    np.testing.assert_allclose(p.evaluate("comp", 1002).pixels, comp(numpy_stage=True).evaluate("comp", 1002).pixels,
                               atol=1e-6)


def test_source_frames_are_read_ahead_on_reader_threads():
    Plate.threads = []
    p = comp("torch-cpu")
    G.configure(p, prefetch=2)
    reference = comp()
    for t in range(1001, 1007):
        np.testing.assert_allclose(p.evaluate("comp", t).pixels, reference.evaluate("comp", t).pixels, atol=1e-6)
    readers = [name for name in Plate.threads if name.startswith("composite-read-plate")]
    assert len(readers) >= 4              # frames after the first came from the reader threads
    G.close(p)


def test_non_finite_source_frames_are_caught_on_reader_threads():
    p = comp("torch-cpu", bad_frame=1003)
    G.configure(p, prefetch=2)
    p.evaluate("comp", 1001)
    p.evaluate("comp", 1002)
    with pytest.raises(NonFiniteError, match="stage 'plate' output 'image' frame 1003: 1 NaN/Inf"):
        p.evaluate("comp", 1003)
    G.close(p)


def test_batching_computes_several_frames_per_call(monkeypatch):
    calls = []
    impl = S.implementation(Grade())
    monkeypatch.setitem(S._IMPLS, Grade, S.TorchStage(impl.process, lambda st, ts, **kw: calls.append(list(ts))
                                                      or impl.batch(st, ts, **kw)))
    p = comp("torch-cpu")
    G.configure(p, batch=4, prefetch=0)
    reference = comp()
    transfers.reset()
    for t in range(1001, 1007):
        np.testing.assert_allclose(p.evaluate("comp", t).pixels, reference.evaluate("comp", t).pixels, atol=1e-6)
    assert calls == [[1001, 1002, 1003, 1004], [1005, 1006]]
    assert transfers.snapshot()["h2d"] == 6          # every plate frame still uploaded once


def _files_pipeline(tmp_path, device, out):
    from composite.io.exr import write_exr
    from composite.io.stages import ReadImage, WriteImage

    plates = tmp_path / "plates"
    if not plates.exists():
        plates.mkdir()
        src = Plate()
        for t in range(1001, 1005):
            write_exr(plates / f"plate.{t}.exr", src.process(t), pixel_type="float")
    p = Pipeline("files", device=device)
    plate = p.add("plate", ReadImage(path=str(plates / "plate.####.exr"), colorspace="ACEScg", alpha="ignore"))
    key = p.add("key", ColorDifferenceKey(clean_plate="auto", despill="none"), image=plate)
    ds = p.add("despill", Despill(), image=key)
    bg = p.add("bg", Constant(color=[0.1, 0.2, 0.3, 1.0], width=W, height=H))
    c = p.add("comp", Merge(), a=ds, b=bg)
    p.add("write", WriteImage(path=str(tmp_path / out / "o.####.exr"), pixel_type="float"), image=c)
    return p


def test_render_to_files_with_compute_ahead_equals_numpy(tmp_path):
    from composite.io.images import read_image

    _files_pipeline(tmp_path, None, "np").render("1001-1004", progress=False)
    p = _files_pipeline(tmp_path, "torch-cpu", "torch")
    G.configure(p, compute_ahead=True, batch=2)
    report = p.render("1001-1004", progress=False)
    assert report.rendered == [1001, 1002, 1003, 1004]
    for t in report.rendered:
        a = read_image(tmp_path / "np" / f"o.{t}.exr")
        b = read_image(tmp_path / "torch" / f"o.{t}.exr")
        np.testing.assert_allclose(b.pixels, a.pixels, atol=1e-5)
    # Up-to-date frames are skipped whatever the device rendered them.
    assert _files_pipeline(tmp_path, None, "torch").render("1001-1004", progress=False).skipped == report.rendered


def test_cli_device_option(tmp_path, capsys):
    from composite.cli import main

    _files_pipeline(tmp_path, None, "np")        # writes the plates
    recipe = {"stages": {
        "plate": {"type": "ReadImage", "params": {"path": str(tmp_path / "plates" / "plate.####.exr"),
                                                   "colorspace": "ACEScg", "alpha": "ignore"}},
        "key": {"type": "ColorDifferenceKey", "inputs": {"image": "plate"}, "params": {"clean_plate": "auto"}},
        "write": {"type": "WriteImage", "inputs": {"image": "key"}, "params": {"path": str(tmp_path / "c" / "o.####.exr")}},
    }}
    path = tmp_path / "r.yaml"
    path.write_text(yaml.safe_dump(recipe))
    before = os.environ.get("COMPOSITE_DEVICE")
    assert main(["render", str(path), "--frames", "1001-1002", "--json", "--device", "torch-cpu"]) == 0
    assert json.loads(capsys.readouterr().out)["rendered"] == [1001, 1002]
    assert os.environ.get("COMPOSITE_DEVICE") == before          # restored after the command
    assert main(["render", str(path), "--frames", "1001-1002", "--device", "gpu0"]) == 2
    assert "unknown device 'gpu0'" in capsys.readouterr().err


def test_auto_without_a_gpu_is_the_numpy_path(monkeypatch):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA: auto selects it")
    called = []
    impl = S.implementation(Grade())
    monkeypatch.setitem(S._IMPLS, Grade, S.TorchStage(lambda *a, **k: called.append(1) or impl.process(*a, **k)))
    p = comp("auto")
    np.testing.assert_array_equal(p.evaluate("comp", 1001).pixels, comp().evaluate("comp", 1001).pixels)
    assert called == []


def test_unknown_or_missing_device_is_an_input_error():
    import torch

    p = comp("gpu")
    with pytest.raises(InputError, match="unknown device"):
        p.evaluate("comp", 1001)
    if not torch.cuda.is_available():
        with pytest.raises(InputError, match="sees no CUDA device"):
            comp("cuda").evaluate("comp", 1001)


def test_parameter_changes_drop_frames_held_ahead():
    p = comp("torch-cpu")
    G.configure(p, batch=3, prefetch=0)
    p.evaluate("comp", 1001)                       # 1002, 1003 held ahead
    p.set_param("grade", "gain", [2.0, 2.0, 2.0])
    expect = comp()
    expect.set_param("grade", "gain", [2.0, 2.0, 2.0])
    np.testing.assert_allclose(p.evaluate("comp", 1002).pixels, expect.evaluate("comp", 1002).pixels, atol=1e-6)


def test_errors_of_frames_computed_ahead_wait_for_their_frame(tmp_path):
    from composite.io.stages import WriteImage

    p = comp("torch-cpu", bad_frame=1003)
    p.add("write", WriteImage(path=str(tmp_path / "o.####.exr")), image="comp")
    G.configure(p, compute_ahead=True, batch=2, prefetch=2)
    assert p.render("1001-1002", progress=False).rendered == [1001, 1002]   # 1003 was read and computed ahead
    with pytest.raises(NonFiniteError, match="frame 1003"):
        p.render("1003", progress=False)
    G.close(p)
