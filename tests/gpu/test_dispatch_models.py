"""``device=`` dispatch of the NumPy functions, and the model helpers."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from composite.core.errors import InputError
from composite.gpu import dispatch as D
from composite.gpu import models as M
from composite.matte.keyers import KeyResult

from .conftest import smooth_rgba


def test_numpy_in_numpy_out_on_every_device(device_name, gen):
    a, b = smooth_rgba(gen), smooth_rgba(gen)
    for name, fn in D.OPERATIONS.items():
        ref = fn(a, b, mix=0.6)
        out = fn(a, b, mix=0.6, device=device_name)
        assert isinstance(out, np.ndarray) and out.dtype == np.float32, name
        np.testing.assert_allclose(out, ref, atol=1e-6)
    np.testing.assert_allclose(D.merge("over", a, b, device=device_name), D.over(a, b), atol=1e-6)
    m = np.ascontiguousarray(a[..., 3])
    np.testing.assert_allclose(D.blur(m, size=2.0, device=device_name), D.blur(m, size=2.0), atol=1e-5)
    np.testing.assert_allclose(D.warp(a, np.ones((48, 64, 2), np.float32), device=device_name),
                               D.warp(a, np.ones((48, 64, 2), np.float32)), atol=1e-5)


def test_keyer_dispatch_returns_the_numpy_result_type(device_name):
    from composite.synth import greenscreen_sequence

    plate = greenscreen_sequence(48, 32, 1, seed=1).frame(1001).plate
    garbage = np.ones(plate.shape[:2], np.float32)
    ref = D.key_color_difference(plate, garbage=garbage)
    out = D.key_color_difference(plate, garbage=garbage, device=device_name)
    assert isinstance(out, KeyResult) and isinstance(out.fg, np.ndarray)
    np.testing.assert_allclose(out.alpha, ref.alpha, atol=1e-5)
    fg, alpha = out                                       # unpacks as the NumPy result does
    assert fg.shape == (32, 48, 3) and alpha.shape == (32, 48)


def test_tensors_in_tensors_out_and_numpy_default(gen):
    a, b = smooth_rgba(gen), smooth_rgba(gen)
    out = D.over(torch.from_numpy(a), torch.from_numpy(b))
    assert isinstance(out, torch.Tensor)
    assert isinstance(D.over(a, b), np.ndarray) and isinstance(D.over(a, b, device="cpu"), np.ndarray)
    from composite.color.transfer import fit_color_transfer

    tr = fit_color_transfer(a, b)
    np.testing.assert_allclose(D.apply_transfer(a, tr, device="torch-cpu"), tr.apply(a), atol=2e-5, rtol=2e-5)
    with pytest.raises(InputError, match="unknown device"):
        D.over(a, b, device="metal")


def test_load_once_builds_each_model_once():
    M.clear()
    built = []
    first = M.load_once(("net", "cpu"), lambda: built.append(1) or {"w": 1})
    second = M.load_once(("net", "cpu"), lambda: built.append(1) or {"w": 2})
    other = M.load_once(("net", "cuda"), lambda: built.append(1) or {"w": 3})
    assert first is second and other is not first and len(built) == 2
    assert M.cached_keys() == [("net", "cpu"), ("net", "cuda")]
    M.clear()
    assert M.cached_keys() == []


def test_precision_and_autocast():
    assert M.precision_for("cpu") == "float32" and M.precision_for("torch-cpu") == "float32"
    assert M.model_dtype(torch.device("cpu")) is torch.float32
    with M.autocast_for("torch-cpu"):                   # a no-op off CUDA
        y = torch.nn.Linear(3, 2)(torch.ones(1, 3))
    assert y.dtype is torch.float32
    if torch.cuda.is_available():
        assert M.precision_for("cuda") == "float16"
        with M.autocast_for("cuda"):
            z = torch.nn.Linear(3, 2).cuda()(torch.ones(1, 3, device="cuda"))
        assert z.dtype is torch.float16


def test_learned_flow_model_loads_once(tmp_path):
    from composite.models import ModelCard, file_sha256
    from composite.temporal.learned_flow import TinyFlowNet

    torch.manual_seed(0)
    net = TinyFlowNet(channels=4, levels=2)
    ckpt = tmp_path / "tiny.pt"
    torch.save(net.state_dict(), ckpt)
    card = ModelCard.from_dict({"name": "tiny_flow_gpu_test", "architecture": "composite_tiny_flow",
                                "file_name": "tiny.pt", "url": "https://example.invalid/tiny.pt",
                                "sha256": file_sha256(ckpt), "licence": "test",
                                "config": {"channels": 4, "levels": 2}})
    M.clear()
    a = M.flow_model(card, str(ckpt), device="torch-cpu")
    b = M.flow_model(card, str(ckpt), device="torch-cpu")
    assert a is b
    frame = np.random.default_rng(0).random((24, 32, 3), dtype=np.float32)
    assert a(frame, frame).shape == (24, 32, 2)
    M.clear()
