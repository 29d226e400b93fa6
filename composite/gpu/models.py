"""Models on a device: loaded once per process, half precision on CUDA.

Three small tools every model stage can share:

* :func:`load_once` — a process-wide cache of loaded models keyed by what defines them (card name,
  checkpoint sha256, device, precision): a farm worker rendering many chunks or shots builds a model once;
* :func:`precision_for` / :func:`model_dtype` — ``float16`` on CUDA, ``float32`` on the CPU (CPU half
  precision is slow and lossy, so it is never chosen automatically);
* :func:`autocast_for` — a context manager running a forward pass under CUDA autocast (float16) on
  CUDA and doing nothing elsewhere.

What composite's model stages do (see ``docs/gpu.md``):

===================  ===================================================================================
SAM roto             :func:`composite.matte.sam.load_sam` caches networks per (card, checkpoint sha256,
(``SamRoto``)        device, precision); ``device: auto`` picks CUDA when present and ``precision: auto``
                     runs the image encoder in float16 there (prompt encoder and mask decoder in float32);
                     image embeddings are cached per frame content (``SamSegmenter``, LRU).
learned flow         :func:`composite.temporal.learned_flow.load_flow_model` builds a model on a given
(``OpticalFlow``)    device; the ``OpticalFlow`` stage loads it on the CPU, once per stage instance.
                     :func:`flow_model` loads it once per process on a device, with autocast on CUDA.
generators           composite's generators (external plates, the procedural crowd) run no network; a
                     diffusion backend should load through :func:`load_once` and run under
                     :func:`autocast_for`.
===================  ===================================================================================

Example
-------
>>> from composite.gpu.models import load_once, clear
>>> calls = []
>>> m1 = load_once(("toy", "cpu"), lambda: calls.append(1) or object())
>>> m2 = load_once(("toy", "cpu"), lambda: calls.append(1) or object())
>>> m1 is m2, len(calls)
(True, 1)
>>> clear()
"""

from __future__ import annotations

import contextlib
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any

from .device import resolve_device, torch_module

#: Models kept (least recently used dropped beyond this).
MAX_MODELS = 16

_MODELS: OrderedDict[Hashable, Any] = OrderedDict()
_LOCKS: dict[Hashable, threading.Lock] = {}
_GUARD = threading.Lock()


def load_once(key: Hashable, factory: Callable[[], Any]) -> Any:
    """The model cached under ``key``, built by ``factory()`` the first time (thread-safe: concurrent
    callers of one key wait for a single build)."""
    with _GUARD:
        if key in _MODELS:
            _MODELS.move_to_end(key)
            return _MODELS[key]
        lock = _LOCKS.setdefault(key, threading.Lock())
    with lock:
        with _GUARD:
            if key in _MODELS:
                return _MODELS[key]
        model = factory()
        with _GUARD:
            _MODELS[key] = model
            while len(_MODELS) > MAX_MODELS:
                old, _ = _MODELS.popitem(last=False)
                _LOCKS.pop(old, None)
        return model


def clear() -> None:
    """Forget every cached model."""
    with _GUARD:
        _MODELS.clear()
        _LOCKS.clear()


def cached_keys() -> list[Hashable]:
    with _GUARD:
        return list(_MODELS)


def precision_for(device: Any) -> str:
    """``"float16"`` for CUDA devices, ``"float32"`` otherwise (names as ``device`` in composite.gpu.device)."""
    dev = resolve_device(device) if not _is_torch_device(device) else device
    return "float16" if dev is not None and dev.type == "cuda" else "float32"


def model_dtype(device: Any):
    """The torch dtype of :func:`precision_for`."""
    torch = torch_module()
    return torch.float16 if precision_for(device) == "float16" else torch.float32


def _is_torch_device(value: Any) -> bool:
    return type(value).__name__ == "device" and type(value).__module__.startswith("torch")


@contextlib.contextmanager
def autocast_for(device: Any):
    """Autocast to float16 on CUDA; nothing on the CPU (a no-op context)."""
    dev = resolve_device(device) if not _is_torch_device(device) else device
    if dev is None or dev.type != "cuda":
        yield
        return
    torch = torch_module()
    with torch.autocast(device_type="cuda", dtype=torch.float16):
        yield


def flow_model(card: Any, checkpoint: Any = None, *, device: Any = "auto", verify: bool = True):
    """A learned optical-flow model (:func:`composite.temporal.learned_flow.load_flow_model`) loaded once
    per process on ``device``; on CUDA its forward pass runs under float16 autocast."""
    from ..models import get_card
    from ..temporal.learned_flow import LearnedFlow, load_flow_model

    dev = resolve_device(device) or torch_module().device("cpu")
    c = get_card(card)
    key = ("flow", c.name, str(checkpoint), str(dev))

    def build():
        base = load_flow_model(c, checkpoint, device=str(dev), verify=verify)

        class _AutocastFlow(LearnedFlow):
            def __call__(self, a, b):
                with autocast_for(dev):
                    return super().__call__(a, b)

        model = _AutocastFlow.__new__(_AutocastFlow)
        model.__dict__.update(base.__dict__)
        return model

    return load_once(key, build)
