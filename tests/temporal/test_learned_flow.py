"""The learned-flow hook with a tiny randomly initialised model (nothing is ever downloaded)."""

from __future__ import annotations

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from composite.core.errors import ChecksumError, InputError  # noqa: E402
from composite.graph import Pipeline  # noqa: E402
from composite.models import file_sha256  # noqa: E402
from composite.temporal.flow import estimate_flow  # noqa: E402
from composite.temporal.learned_flow import LearnedFlow, TinyFlowNet, load_flow_model  # noqa: E402
from composite.temporal.stages import OpticalFlow  # noqa: E402
from composite.temporal.synthetic import textured_plate  # noqa: E402

from .helpers import TemporalTestSource  # noqa: E402


@pytest.fixture
def tiny_model(tmp_path):
    torch.manual_seed(0)
    net = TinyFlowNet(channels=8, levels=2)
    ckpt = tmp_path / "tiny_flow.pt"
    torch.save(net.state_dict(), ckpt)
    card = {"schema": "composite.model/1", "name": "tiny_flow_test", "architecture": "composite_tiny_flow",
            "file_name": "tiny_flow.pt", "url": "https://example.invalid/tiny_flow.pt",
            "sha256": file_sha256(ckpt), "licence": "Apache-2.0", "config": {"channels": 8, "levels": 2}}
    card_path = tmp_path / "tiny_flow_test.json"
    card_path.write_text(json.dumps(card))
    return net, ckpt, card_path


def test_loaded_model_matches_the_module(tiny_model):
    net, ckpt, card = tiny_model
    model = load_flow_model(card, ckpt)
    a = textured_plate(36, 52, seed=1)
    b = np.roll(a, 2, axis=1)
    flow = model(a, b)
    assert flow.shape == (36, 52, 2) and flow.dtype == np.float32
    # Same numbers as running the module by hand on the padded guides.
    from composite.temporal.flow import flow_guide

    def tensor(x):
        g = flow_guide(x).astype(np.float32) / 255.0
        return torch.from_numpy(np.pad(g, ((0, 0), (0, 0)), mode="edge"))[None, None]

    with torch.no_grad():
        ref = net.eval()(tensor(a), tensor(b))[0].permute(1, 2, 0).numpy()
    assert np.allclose(flow, ref, atol=1e-6)          # 36 and 52 are multiples of 4: no padding
    assert np.array_equal(flow, model(a, b))          # deterministic
    # estimate_flow uses the model instead of DIS.
    assert np.array_equal(estimate_flow(a, b, model=model), flow)


def test_checksum_and_missing_file(tiny_model, tmp_path):
    _, ckpt, card = tiny_model
    bad = tmp_path / "other.pt"
    torch.save({"x": torch.zeros(1)}, bad)
    with pytest.raises(ChecksumError, match="sha256"):
        load_flow_model(card, bad)
    with pytest.raises(InputError, match="example.invalid"):
        load_flow_model(card, tmp_path / "nowhere" / "tiny_flow.pt")


class _Difference(torch.nn.Module):
    """A scriptable stand-in for an exported model: flow = 3 (a - b, b - a)."""

    def forward(self, a, b):
        return torch.cat([a - b, b - a], dim=1) * 3.0


@pytest.mark.filterwarnings("ignore:`torch.jit:DeprecationWarning")
@pytest.mark.parametrize("arch", ["torch_export", "torchscript"])
def test_exported_architectures(tmp_path, arch):
    path = tmp_path / "flow.bin"
    if arch == "torchscript":
        torch.jit.script(_Difference()).save(str(path))
    else:
        h, w = torch.export.Dim("h", min=2, max=8192), torch.export.Dim("w", min=2, max=8192)
        example = (torch.zeros(1, 1, 8, 8), torch.zeros(1, 1, 8, 8))
        exported = torch.export.export(_Difference(), example, dynamic_shapes=({2: h, 3: w}, {2: h, 3: w}))
        torch.export.save(exported, str(path))
    card = {"name": "exported_flow", "architecture": arch, "file_name": "flow.bin", "url": "https://example.invalid",
            "licence": "MIT", "sha256": file_sha256(path), "config": {"multiple_of": 2}}
    (tmp_path / "ts.json").write_text(json.dumps(card))
    model = load_flow_model(tmp_path / "ts.json", path)
    a = textured_plate(21, 33, seed=2)                  # odd sizes: padded, then cropped back
    b = a * np.float32(0.5)
    flow = model(a, b)
    assert flow.shape == (21, 33, 2)
    from composite.temporal.flow import flow_guide

    expected = 3.0 * (flow_guide(a).astype(np.float32) - flow_guide(b).astype(np.float32)) / 255.0
    assert np.allclose(flow[..., 0], expected, atol=1e-6) and np.allclose(flow[..., 1], -expected, atol=1e-6)


def test_optical_flow_stage_with_learned_model(tiny_model):
    _, ckpt, card = tiny_model
    p = Pipeline("lf")
    src = p.add("src", TemporalTestSource(kind="camera", first=1, last=3, width=48, height=32))
    p.add("flow", OpticalFlow(method="learned", model=str(card), checkpoint=str(ckpt)), image=src)
    out = p.evaluate("flow", 2)
    assert out.layer("forward").pixels.shape == (32, 48, 2)
    model = LearnedFlow(load_flow_model(card, ckpt).module)
    expected = model(p.evaluate("src", 2).pixels, p.evaluate("src", 3).pixels)
    assert np.allclose(out.layer("forward").pixels, expected, atol=1e-6)
    # The checkpoint's digest is part of the fingerprint.
    fp = p.fingerprint("flow", 2)
    p2 = Pipeline("lf")
    src2 = p2.add("src", TemporalTestSource(kind="camera", first=1, last=3, width=48, height=32))
    p2.add("flow", OpticalFlow(method="dis"), image=src2)
    assert p2.fingerprint("flow", 2) != fp
