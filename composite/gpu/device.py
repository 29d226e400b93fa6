"""Device names, resolved lazily (importing this module does not import torch).

=============  ===================================================================================
name           meaning
=============  ===================================================================================
``cpu``        the NumPy/OpenCV implementations (the default; ``None`` and ``numpy`` mean the same)
``cuda``       the torch implementations on the current CUDA device; ``cuda:N`` on device N
``auto``       ``cuda`` when torch sees a CUDA device, else ``cpu``
``torch-cpu``  the torch implementations on the CPU: what the tests compare with the NumPy path, and
               a way to check a recipe's GPU route on a machine without a GPU
=============  ===================================================================================

Example
-------
>>> from composite.gpu.device import is_torch_device
>>> is_torch_device("cpu"), is_torch_device(None), is_torch_device("torch-cpu")
(False, False, True)
"""

from __future__ import annotations

from typing import Any

from ..core.errors import InputError

#: Names accepted by ``--device`` (``cuda:N`` too).
DEVICE_CHOICES = ("cpu", "cuda", "auto", "torch-cpu")
#: Names that select the NumPy path.
NUMPY_NAMES = (None, "cpu", "numpy")


def torch_module():
    """``import torch`` with a clear error when it is missing."""
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is an optional dependency
        raise InputError("the GPU path needs PyTorch: pip install 'composite[torch]' (torch 2.x)") from None
    return torch


def check_name(device: Any) -> None:
    """Raise :class:`InputError` unless ``device`` is a known device name (or a ``torch.device``)."""
    if device in NUMPY_NAMES or device in DEVICE_CHOICES:
        return
    if isinstance(device, str) and device.startswith("cuda:") and device[5:].isdigit():
        return
    if type(device).__name__ == "device" and type(device).__module__.startswith("torch"):
        return
    raise InputError(f"unknown device {device!r}; use cpu (NumPy), cuda, cuda:N, auto or torch-cpu")


def is_torch_device(device: Any) -> bool:
    """True when ``device`` selects the torch implementations (without importing torch for names).

    ``auto`` is true only when a CUDA device is present.
    """
    check_name(device)
    if device in NUMPY_NAMES:
        return False
    if device == "auto":
        return resolve_device("auto") is not None
    return True


def resolve_device(device: Any):
    """The ``torch.device`` a name selects, or None for the NumPy path.

    Raises :class:`InputError` for unknown names and for ``cuda`` on a machine without a CUDA device
    (naming what to use instead).
    """
    check_name(device)
    if device in NUMPY_NAMES:
        return None
    torch = torch_module()
    if isinstance(device, torch.device):
        return device
    if device == "torch-cpu":
        return torch.device("cpu")
    if device == "auto":
        return torch.device("cuda") if torch.cuda.is_available() else None
    if not torch.cuda.is_available():
        raise InputError(f"device {device!r} requested but this torch ({torch.__version__}) sees no CUDA device; "
                         "use --device cpu (NumPy), auto, or torch-cpu")
    dev = torch.device(device)
    if dev.index is not None and dev.index >= torch.cuda.device_count():
        raise InputError(f"device {device!r}: only {torch.cuda.device_count()} CUDA device(s) present")
    return dev


def describe(device: Any) -> str:
    """A short human description (``"NVIDIA H100 80GB HBM3 (cuda:0)"``, ``"torch on the CPU"``, ``"NumPy"``)."""
    dev = resolve_device(device)
    if dev is None:
        return "NumPy"
    if dev.type == "cuda":
        torch = torch_module()
        index = dev.index if dev.index is not None else torch.cuda.current_device()
        return f"{torch.cuda.get_device_name(index)} (cuda:{index})"
    return "torch on the CPU"


def synchronize(device) -> None:
    """Wait for the device's queued work (a no-op on the CPU); used around timings."""
    if device is not None and getattr(device, "type", None) == "cuda":
        torch_module().cuda.synchronize(device)
