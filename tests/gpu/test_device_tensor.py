"""Devices, transfers and DeviceImage."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch

from composite.core import Image, Layer
from composite.core.errors import InputError, StateError
from composite.gpu.device import describe, is_torch_device, resolve_device
from composite.gpu.image import DeviceImage, placeholder, to_device_image, to_image
from composite.gpu.tensor import to_device, to_host, transfers


def test_names_resolve_without_surprises():
    assert resolve_device(None) is None and resolve_device("cpu") is None and resolve_device("numpy") is None
    assert resolve_device("torch-cpu") == torch.device("cpu")
    assert not is_torch_device("cpu") and is_torch_device("torch-cpu") and is_torch_device("cuda:1")
    assert describe("cpu") == "NumPy" and describe("torch-cpu") == "torch on the CPU"
    with pytest.raises(InputError, match="unknown device 'gpu'"):
        resolve_device("gpu")


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message on machines without CUDA")
def test_cuda_without_a_gpu_says_what_to_use():
    with pytest.raises(InputError, match="sees no CUDA device; use --device cpu"):
        resolve_device("cuda")
    assert resolve_device("auto") is None        # auto falls back to NumPy


def test_import_composite_does_not_import_torch():
    code = ("import sys, composite; from composite.graph import Pipeline; import composite.gpu, composite.gpu.device; "
            "p = Pipeline('x'); assert p.device is None; assert 'torch' not in sys.modules, 'torch imported'")
    env = {"PATH": "/usr/bin:/bin"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 0, out.stderr


def test_transfers_are_counted_and_values_kept():
    dev = resolve_device("torch-cpu")
    transfers.reset()
    a = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    ta = to_device(a, dev)
    assert ta.dtype == torch.float32 and ta.shape == (2, 3, 4)
    back = to_host(ta * 2)
    np.testing.assert_array_equal(back, a * 2)
    snap = transfers.snapshot()
    assert snap == {"h2d": 1, "d2h": 1, "h2d_bytes": 96, "d2h_bytes": 96}
    # Read-only and negatively strided arrays are copied, never shared unsafely.
    ro = np.broadcast_to(np.float32(1.0), (2, 2, 1))
    assert float(to_device(ro, dev).sum()) == 4.0
    flipped = a[:, ::-1]
    np.testing.assert_array_equal(to_host(to_device(flipped, dev)), flipped)


def test_device_image_round_trip_keeps_state_and_layers():
    dev = resolve_device("torch-cpu")
    px = np.random.default_rng(0).random((5, 7, 4), dtype=np.float32)
    img = Image(px, time=None, metadata={"k": 1}).with_layer("ai_coverage", px[..., 3:], ("Y",))
    d = DeviceImage.from_image(img, dev)
    assert (d.width, d.height, d.channels, d.alpha, d.metadata["k"]) == (7, 5, img.channels, img.alpha, 1)
    assert d.header.pixels.strides == (0, 0, 0)          # the header holds no pixel memory
    back = d.to_image()
    np.testing.assert_array_equal(back.pixels, px)
    np.testing.assert_array_equal(back.layers["ai_coverage"].pixels, px[..., 3:])
    assert isinstance(back.layers["ai_coverage"], Layer) and back.metadata == img.metadata
    rgb = d.with_pixels(d.pixels[..., :3].contiguous(), ("R", "G", "B"), alpha="opaque")
    assert rgb.channels == ("R", "G", "B") and str(rgb.alpha) == "opaque"
    assert to_image({1: d})[1].pixels.shape == (5, 7, 4)
    assert to_device_image(img, dev).pixels.shape == (5, 7, 4)


def test_device_image_refuses_wrong_inputs():
    header = Image(placeholder((2, 2, 4)))
    with pytest.raises(StateError, match="float32"):
        DeviceImage(torch.zeros(2, 2, 4, dtype=torch.float64), header)
    with pytest.raises(InputError, match="header is"):
        DeviceImage(torch.zeros(3, 2, 4), header)
    with pytest.raises(InputError, match="torch tensor"):
        DeviceImage(np.zeros((2, 2, 4), np.float32), header)
