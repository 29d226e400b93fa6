"""NumPy ⇄ torch: pinned host staging buffers, non-blocking uploads, and a count of every transfer.

Every copy of pixel data between host and device made by composite's torch path goes through
:func:`to_device` and :func:`to_host`, which count it in :data:`transfers` (also on the CPU, where the
"transfer" is a zero-copy view: a pipeline's transfers are the same whatever the device, so tests on
CPU torch check what a GPU run will do).

On CUDA, uploads are staged through page-locked (pinned) host buffers and issued with
``non_blocking=True`` on the current stream, so a reader thread's upload overlaps the compute of the
previous frame. A buffer is reused only after the event recorded behind its copy has completed.
Downloads are synchronous (``Tensor.cpu()``): the frame then lives in ordinary pageable memory that
writers and NumPy stages can keep.

Example
-------
>>> import numpy as np
>>> from composite.gpu.tensor import to_device, to_host, transfers
>>> from composite.gpu.device import resolve_device
>>> transfers.reset()
>>> t = to_device(np.ones((2, 3, 4), np.float32), resolve_device("torch-cpu"))
>>> to_host(t * 2)[0, 0].tolist(), transfers.h2d, transfers.d2h
([2.0, 2.0, 2.0, 2.0], 1, 1)
"""

from __future__ import annotations

import threading
from collections import defaultdict, deque
from dataclasses import dataclass, field

import numpy as np

from ..core.errors import StateError
from .device import torch_module


@dataclass
class TransferCounter:
    """Host ⇄ device copies made through this module (thread-safe)."""

    h2d: int = 0
    d2h: int = 0
    h2d_bytes: int = 0
    d2h_bytes: int = 0
    log: deque = field(default_factory=lambda: deque(maxlen=4096), repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, direction: str, nbytes: int, what: str = "") -> None:
        with self._lock:
            if direction == "h2d":
                self.h2d += 1
                self.h2d_bytes += int(nbytes)
            else:
                self.d2h += 1
                self.d2h_bytes += int(nbytes)
            self.log.append((direction, int(nbytes), what))

    def reset(self) -> None:
        with self._lock:
            self.h2d = self.d2h = self.h2d_bytes = self.d2h_bytes = 0
            self.log.clear()

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return {"h2d": self.h2d, "d2h": self.d2h, "h2d_bytes": self.h2d_bytes, "d2h_bytes": self.d2h_bytes}

    def large(self, min_bytes: int) -> list[tuple[str, int, str]]:
        """Logged transfers of at least ``min_bytes`` (frame-sized copies, as opposed to a few statistics)."""
        with self._lock:
            return [entry for entry in self.log if entry[1] >= min_bytes]


#: The process-wide counter.
transfers = TransferCounter()


class _PinnedPool:
    """Reusable page-locked buffers per (shape, dtype), each guarded by the CUDA event of its last copy."""

    def __init__(self, per_shape: int = 4):
        self.per_shape = per_shape
        self._free: dict[tuple, list] = defaultdict(list)
        self._lock = threading.Lock()

    def upload(self, array: np.ndarray, device):
        torch = torch_module()
        key = (array.shape, array.dtype.str)
        with self._lock:
            entries = self._free[key]
            entry = None
            for i, (_buf, event) in enumerate(entries):
                if event is None or event.query():
                    entry = entries.pop(i)
                    break
        if entry is None:
            buf = torch.empty(array.shape, dtype=_torch_dtype(array.dtype), pin_memory=True)
        else:
            buf = entry[0]
        np.copyto(buf.numpy(), array, casting="no")
        out = buf.to(device, non_blocking=True)
        event = torch.cuda.Event()
        event.record()
        with self._lock:
            entries = self._free[key]
            if len(entries) < self.per_shape:
                entries.append((buf, event))
        return out


_pinned = _PinnedPool()


def _torch_dtype(dtype: np.dtype):
    torch = torch_module()
    mapping = {np.dtype(np.float32): torch.float32, np.dtype(np.float64): torch.float64,
               np.dtype(np.float16): torch.float16, np.dtype(np.int64): torch.int64,
               np.dtype(np.int32): torch.int32, np.dtype(np.uint8): torch.uint8, np.dtype(bool): torch.bool}
    try:
        return mapping[np.dtype(dtype)]
    except KeyError:
        raise StateError(f"no torch dtype for NumPy {dtype}; convert explicitly") from None


def is_tensor(value) -> bool:
    """True for a ``torch.Tensor`` (without importing torch when it was never imported)."""
    import sys

    torch = sys.modules.get("torch")
    return torch is not None and isinstance(value, torch.Tensor)


def to_device(array: np.ndarray, device, *, what: str = "", pinned: bool = True):
    """Copy a NumPy array to ``device`` (a ``torch.device``); counted as one host-to-device transfer.

    float32 stays float32 (no dtype changes). On the CPU the tensor is a view of the array's memory
    (read-only arrays are copied first); torch operations in composite never write into their inputs.
    On CUDA the copy goes through a pinned staging buffer and is non-blocking.
    """
    torch = torch_module()
    if is_tensor(array):
        return array.to(device)
    arr = np.asarray(array)
    if arr.dtype.byteorder not in ("=", "|"):
        arr = arr.astype(arr.dtype.newbyteorder("="))
    if not arr.flags.c_contiguous or not arr.flags.writeable or any(st < 0 for st in arr.strides):
        arr = np.array(arr, order="C", copy=True)
    transfers.add("h2d", arr.nbytes, what)
    if device.type == "cpu":
        return torch.from_numpy(arr)
    if pinned and arr.size:
        return _pinned.upload(arr, device)
    return torch.from_numpy(arr).to(device)


def to_host(tensor, *, what: str = "") -> np.ndarray:
    """A NumPy array with the tensor's values; counted as one device-to-host transfer.

    On the CPU this is a view when possible (no copy); from CUDA it is a synchronous copy.
    """
    if not is_tensor(tensor):
        return np.asarray(tensor)
    transfers.add("d2h", tensor.element_size() * tensor.numel(), what)
    t = tensor.detach()
    if t.device.type != "cpu":
        t = t.cpu()
    if not t.is_contiguous():
        t = t.contiguous()
    return t.numpy()


_side_streams: dict = {}
_side_lock = threading.Lock()


def upload_on_side_stream(array: np.ndarray, device, *, what: str = ""):
    """Upload from a worker thread without serialising with the compute stream.

    Returns ``(tensor, event)``: on CUDA the copy is queued on a side stream owned by the calling thread
    and ``event`` marks its completion; hand both to :func:`adopt` on the consuming thread. On the CPU
    the event is None.
    """
    torch = torch_module()
    if device.type != "cuda":
        return to_device(array, device, what=what), None
    key = (threading.get_ident(), str(device))
    with _side_lock:
        stream = _side_streams.get(key)
        if stream is None:
            stream = _side_streams[key] = torch.cuda.Stream(device=device)
    with torch.cuda.stream(stream):
        out = to_device(array, device, what=what)
        event = torch.cuda.Event()
        event.record(stream)
    return out, event


def adopt(tensor, event) -> None:
    """Make the current stream wait for a side-stream upload and keep its memory alive for that stream."""
    if event is None:
        return
    torch = torch_module()
    current = torch.cuda.current_stream(tensor.device)
    current.wait_event(event)
    tensor.record_stream(current)


def as_tensor(value, device, *, dtype=None, what: str = ""):
    """A tensor on ``device``: tensors are moved (if needed), arrays uploaded through :func:`to_device`."""
    torch = torch_module()
    if is_tensor(value):
        out = value if value.device == device else value.to(device)
    else:
        out = to_device(np.asarray(value), device, what=what)
    if dtype is not None and out.dtype != dtype:
        out = out.to(dtype)
    return out if isinstance(out, torch.Tensor) else torch.as_tensor(out)
