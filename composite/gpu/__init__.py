"""The torch path: the hot pixel operations on a GPU (or on the CPU through torch), GPU-resident pipelines.

Nothing here is imported by ``import composite``; torch is imported only when a torch device is used.

* :mod:`~composite.gpu.device` — ``"cpu"`` (NumPy, the default), ``"cuda"``, ``"cuda:N"``, ``"auto"``
  and ``"torch-cpu"`` (the torch implementations on the CPU, for tests and comparisons);
* :mod:`~composite.gpu.tensor` — NumPy ⇄ torch with pinned host buffers and counted transfers;
* :mod:`~composite.gpu.image` — :class:`~composite.gpu.image.DeviceImage`, a frame whose pixels stay on
  the device between stages;
* :mod:`~composite.gpu.ops` — torch implementations with the NumPy functions' signatures
  (merges, keyers, despill, matte operations, colour, grain, light wrap, defocus, warps, deflicker
  gains, crowd sprites);
* :mod:`~composite.gpu.dispatch` — the same functions with a ``device=`` keyword taking NumPy arrays;
* :mod:`~composite.gpu.stages` — which stages have a torch implementation (and which batch frames);
* :mod:`~composite.gpu.graph` — what :class:`~composite.graph.Pipeline` calls when ``device`` is set:
  inputs moved to or from the device, source frames decoded ahead on reader threads, the next frames
  computed while the current one is written;
* :mod:`~composite.gpu.models` — models loaded once per process, half precision on CUDA.

See ``docs/gpu.md``.
"""

from .device import DEVICE_CHOICES, is_torch_device, resolve_device

__all__ = ["DEVICE_CHOICES", "is_torch_device", "resolve_device"]
