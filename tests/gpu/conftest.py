"""Fixtures of the GPU-path tests: the torch devices to compare with NumPy (CPU torch always, CUDA when
this machine has it), small deterministic images and helpers to run both paths."""

from __future__ import annotations

import os
import sys

import numpy as np
import pytest

if "torch" not in sys.modules:
    # OpenMP threads that spin while waiting slow small torch operations ~100x on a loaded machine.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
torch = pytest.importorskip("torch")

DEVICES = ["torch-cpu"] + (["cuda"] if torch.cuda.is_available() else [])


@pytest.fixture(params=DEVICES)
def device_name(request) -> str:
    return request.param


@pytest.fixture
def device(device_name):
    from composite.gpu.device import resolve_device

    return resolve_device(device_name)


@pytest.fixture
def gen() -> np.random.Generator:
    return np.random.default_rng(20240611)


def t(array: np.ndarray, device):
    """A NumPy array as a tensor on ``device`` (a copy)."""
    return torch.as_tensor(np.ascontiguousarray(array), device=device)


def n(tensor) -> np.ndarray:
    return tensor.detach().cpu().numpy()


def smooth_rgba(gen: np.random.Generator, h: int = 48, w: int = 64, premultiplied: bool = True) -> np.ndarray:
    """Smooth random premultiplied RGBA with soft alpha, a few alpha-0 pixels and HDR values."""
    import cv2

    px = cv2.GaussianBlur(gen.random((h, w, 4), dtype=np.float32), (0, 0), 2.0)
    px = (px - px.min()) / (px.max() - px.min())
    px[..., :3] *= 3.0                       # HDR colour
    px[..., 3] = np.clip(px[..., 3] * 1.6 - 0.3, 0.0, 1.0)
    px[:3, :3, 3] = 0.0                      # transparent corner (emissive colour kept)
    if premultiplied:
        px[..., :3] *= np.where(px[..., 3:] > 0, px[..., 3:], 1.0)
    return px.astype(np.float32)
