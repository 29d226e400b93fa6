"""What :class:`~composite.graph.Pipeline` does when its ``device`` is a torch device.

The pipeline keeps evaluating frame by frame, pulled by its outputs; three hooks
(``gather_inputs``, the ``process`` call of ``evaluate_outputs``, and ``evaluate``) hand over to this
module, which decides where each stage runs and where its inputs must be:

* a stage with a torch implementation (:mod:`composite.gpu.stages`) gets its inputs as
  :class:`~composite.gpu.image.DeviceImage` — uploaded once if they come from the host, passed as they are
  if the previous stage ran on the device. Between device stages frames never visit the host;
* any other stage (readers, writers, stages without a torch implementation) gets :class:`Image` inputs,
  downloaded once;
* **source frames are decoded ahead** on reader threads (``prefetch`` frames beyond the one asked for,
  one reader thread for a movie, ``readers`` for an image sequence), checked for NaN/Inf there, and — when every consumer
  runs on the device — uploaded from the reader thread through pinned buffers on a side CUDA stream;
* **frames are batched** where a stage opts in (``batch`` in :mod:`composite.gpu.stages`): asked for
  frame t, such a stage computes t .. t + batch - 1 with one call over ``(N, H, W, C)`` stacks and keeps
  the later frames for when they are asked for;
* **compute runs ahead of writing** on CUDA: once an output stage's inputs for frame t are on the host,
  the device work of frame t + 1 is queued (kernel launches return at once) before the writer encodes
  frame t, so encoding overlaps the GPU.

Everything here runs on the pipeline's calling thread except source reads; results are the same with
any of these options (tests check it). Options: :func:`configure`.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import weakref
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from ..core.image import Image
from .device import resolve_device
from .image import DeviceImage, to_device_image, to_image
from .stages import implementation
from .tensor import adopt, upload_on_side_stream

log = logging.getLogger("composite.gpu")


@dataclass
class Options:
    """Per-pipeline options of the device path.

    ``prefetch``: source frames decoded ahead of the one asked for (0: read in the calling thread).
    ``readers``: reader threads per image-sequence source (movies always use one).
    ``batch``: frames computed per call by stages that allow batching (1: off).
    ``compute_ahead``: queue frame t + 1's device work before frame t is written (None: on CUDA only).
    """

    prefetch: int = 2
    readers: int = 2
    batch: int = 1
    compute_ahead: bool | None = None


class _Prefetcher:
    """Source frames read ahead on worker threads (per source node)."""

    def __init__(self, state: _State):
        self.state = state
        self.pools: dict[str, ThreadPoolExecutor] = {}
        self.futures: dict[tuple[str, int], Future] = {}

    def _pool(self, pipeline, node: str) -> ThreadPoolExecutor:
        pool = self.pools.get(node)
        if pool is None:
            stage = pipeline.nodes[node].stage
            workers = 1 if getattr(stage, "is_movie", False) else max(1, self.state.options.readers)
            pool = self.pools[node] = ThreadPoolExecutor(workers, thread_name_prefix=f"composite-read-{node}")
        return pool

    def _load(self, pipeline, node: str, t: int, upload: bool):
        stage = pipeline.nodes[node].stage
        out = stage.process(t)
        result = {stage.outputs[0]: out} if isinstance(out, (Image, DeviceImage)) else dict(out or {})
        result = {k: pipeline._check_finite(node, t, k, v) for k, v in result.items()}
        events = []
        if upload:
            for k, v in list(result.items()):
                if isinstance(v, Image):
                    result[k], ev = _upload(v, self.state.device)
                    events += ev
        return result, events

    def get(self, pipeline, node: str, t: int) -> dict[str, Any]:
        upload = self.state.all_consumers_on_device(pipeline, node)
        fut = self.futures.pop((node, t), None)
        if fut is None:
            result, events = self._load(pipeline, node, t, upload)
        else:
            result, events = fut.result()
        for tensor, event in events:
            adopt(tensor, event)
        self._schedule(pipeline, node, t, upload)
        return result

    def _schedule(self, pipeline, node: str, t: int, upload: bool) -> None:
        depth = self.state.options.prefetch
        if depth <= 0:
            return
        rng = pipeline.frame_range(node)
        for f in list(self.futures):
            if f[0] == node and f[1] < t:
                self.futures.pop(f).cancel()
        for f in range(t + 1, t + 1 + depth):
            if rng is not None and not rng[0] <= f <= rng[1]:
                break
            if (node, f) not in self.futures:
                self.futures[(node, f)] = self._pool(pipeline, node).submit(self._load, pipeline, node, f, upload)

    def clear(self) -> None:
        for fut in self.futures.values():
            fut.cancel()
        self.futures.clear()

    def close(self, wait: bool = True) -> None:
        self.clear()
        for pool in self.pools.values():
            pool.shutdown(wait=wait, cancel_futures=True)
        self.pools.clear()


def _upload(image: Image, device):
    from .image import DeviceLayer, placeholder

    pixels, ev = upload_on_side_stream(image.pixels, device, what="pixels")
    events = [(pixels, ev)]
    layers = {}
    for name, lay in image.layers.items():
        t, e = upload_on_side_stream(lay.pixels, device, what=f"layer {name}")
        events.append((t, e))
        layers[name] = DeviceLayer(t, lay.channels)
    import dataclasses

    header = dataclasses.replace(image, pixels=placeholder(image.pixels.shape), layers={})
    return DeviceImage(pixels, header, layers), [(t, e) for t, e in events if e is not None]


class _State:
    def __init__(self, pipeline):
        self.name = pipeline.device
        self.device = resolve_device(pipeline.device)
        self.options = Options()
        self.caches_id = id(pipeline._caches)
        self.impls: dict[str, tuple[Any, Any]] = {}
        self.consumers: dict[str, list[str]] | None = None
        self.store: dict[tuple[str, int], dict[str, Any]] = {}
        self.prefetcher = _Prefetcher(self)
        self.local = threading.local()

    def refresh(self, pipeline) -> None:
        """Forget derived state when the pipeline's caches were reset (parameters or graph changed)."""
        if id(pipeline._caches) != self.caches_id:
            self.caches_id = id(pipeline._caches)
            self.impls.clear()
            self.consumers = None
            self.store.clear()
            self.prefetcher.clear()

    def impl(self, pipeline, node: str):
        stage = pipeline.nodes[node].stage
        hit = self.impls.get(node)
        if hit is None or hit[0] is not stage:
            hit = self.impls[node] = (stage, implementation(stage))
        return hit[1]

    def all_consumers_on_device(self, pipeline, node: str) -> bool:
        if self.consumers is None:
            cons: dict[str, list[str]] = {}
            for name, n in pipeline.nodes.items():
                for ref in n.inputs.values():
                    cons.setdefault(ref.node, []).append(name)
            self.consumers = cons
        users = self.consumers.get(node, [])
        return bool(users) and all(self.impl(pipeline, u) is not None for u in users)

    @property
    def compute_ahead(self) -> bool:
        ca = self.options.compute_ahead
        return (self.device is not None and self.device.type == "cuda") if ca is None else bool(ca)


_STATES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_STATES_LOCK = threading.Lock()


def state(pipeline) -> _State:
    """The device state of a pipeline (created on first use; rebuilt when ``pipeline.device`` changes)."""
    with _STATES_LOCK:
        st = _STATES.get(pipeline)
        if st is None or st.name != pipeline.device:
            if st is not None:
                st.prefetcher.close(wait=False)
            st = _STATES[pipeline] = _State(pipeline)
            # Reader threads end with the pipeline (a farm worker builds many).
            weakref.finalize(pipeline, st.prefetcher.close, False)
    st.refresh(pipeline)
    return st


def configure(pipeline, **options: Any) -> Options:
    """Set device-path options of a pipeline (see :class:`Options`); returns them.

    >>> from composite.graph import Pipeline
    >>> p = Pipeline("doc"); p.device = "torch-cpu"
    >>> configure(p, batch=4).batch
    4
    """
    opts = state(pipeline).options
    for key, value in options.items():
        if not hasattr(opts, key):
            raise TypeError(f"unknown device option {key!r}; options: prefetch, readers, batch, compute_ahead")
        setattr(opts, key, value)
    return opts


def close(pipeline) -> None:
    """Stop a pipeline's reader threads (waiting for reads in progress) and drop frames held ahead."""
    with _STATES_LOCK:
        st = _STATES.pop(pipeline, None)
    if st is not None:
        st.prefetcher.close()
        st.store.clear()


@contextlib.contextmanager
def _using(st: _State):
    from . import stages

    previous = getattr(stages._CURRENT, "device", None)
    stages._CURRENT.device = st.device
    try:
        yield
    finally:
        stages._CURRENT.device = previous


# -- the pipeline hooks ---------------------------------------------------------------------------------

def place(value, on_device: bool, device):
    """Inputs for a stage: on the device (``on_device``) or on the host."""
    return to_device_image(value, device) if on_device else to_image(value)


def gather_inputs(pipeline, node: str, t: int) -> dict[str, Any]:
    """``Pipeline.gather_inputs`` on a device: evaluate the inputs and place them where ``node`` runs."""
    st = state(pipeline)
    if st.device is None:  # "auto" without a CUDA device: the NumPy path
        return pipeline._gather_inputs(node, t)
    if (node, t) in st.store:  # computed ahead in a batch: its inputs were gathered then
        return {}
    stage = pipeline.nodes[node].stage
    impl = st.impl(pipeline, node)
    kwargs = pipeline._gather_inputs(node, t)
    kwargs = {k: place(v, impl is not None, st.device) for k, v in kwargs.items()}
    if impl is None and stage.is_output and st.compute_ahead:
        try:
            _compute_ahead(pipeline, node, t + 1)
        except Exception:  # noqa: BLE001 - frame t+1's error is raised when t+1 itself is rendered
            log.debug("compute-ahead of %s frame %d failed; it will be computed when asked for", node, t + 1)
    return kwargs


def _compute_ahead(pipeline, node: str, t: int) -> None:
    """Queue the device work of ``node``'s inputs at frame ``t`` (their results stay in the caches)."""
    n = pipeline.nodes[node]
    for inp, ref in n.inputs.items():
        rng = pipeline.frame_range(ref.node)
        if rng is not None and not rng[0] <= t <= rng[1]:
            continue
        if n.stage.inputs[inp].window is not None:
            continue
        pipeline.evaluate_outputs(ref.node, t)


def process(pipeline, node: str, t: int, kwargs: dict[str, Any]) -> dict[str, Any]:
    """The ``process`` call of ``Pipeline.evaluate_outputs`` on a device: a dict of outputs."""
    st = state(pipeline)
    stage = pipeline.nodes[node].stage
    if st.device is None:
        return _as_dict(stage, stage.process(t, **kwargs))
    held = st.store.pop((node, t), None)
    if held is not None:
        return held
    impl = st.impl(pipeline, node)
    if impl is None:
        if stage.is_source and st.options.prefetch > 0:
            return st.prefetcher.get(pipeline, node, t)
        out = _as_dict(stage, stage.process(t, **kwargs))
        if st.all_consumers_on_device(pipeline, node):   # upload once, not once per consumer
            if stage.is_source:
                out = {k: pipeline._check_finite(node, t, k, v) for k, v in out.items()}
            out = {k: to_device_image(v, st.device) for k, v in out.items()}
        return out
    with _using(st):
        if impl.batch is not None and st.options.batch > 1 and not any(
                spec.window for spec in stage.inputs.values()):
            return _process_batch(pipeline, st, node, t, kwargs, impl)
        return _as_dict(stage, impl.process(stage, t, **kwargs))


def _as_dict(stage, out) -> dict[str, Any]:
    if isinstance(out, (Image, DeviceImage)):
        return {stage.outputs[0]: out}
    return dict(out or {})


def _process_batch(pipeline, st: _State, node: str, t: int, kwargs, impl) -> dict[str, Any]:
    stage = pipeline.nodes[node].stage
    rng = pipeline.frame_range(node)
    ts = [t]
    for f in range(t + 1, t + st.options.batch):
        if rng is not None and f > rng[1]:
            break
        if stage.identity(f) is not None or (node, f) in st.store:
            break
        ts.append(f)
    if len(ts) == 1:
        return _as_dict(stage, impl.process(stage, t, **kwargs))
    per_frame = [kwargs]
    for f in ts[1:]:
        try:
            per_frame.append(gather_inputs(pipeline, node, f))
        except Exception:  # noqa: BLE001 - a later frame's error surfaces when that frame is asked for
            break
    ts = ts[:len(per_frame)]
    if len(ts) == 1:
        return _as_dict(stage, impl.process(stage, t, **kwargs))
    names = sorted({k for kw in per_frame for k in kw})
    lists = {k: ([kw.get(k) for kw in per_frame] if any(kw.get(k) is not None for kw in per_frame) else None)
             for k in names}
    outs = impl.batch(stage, ts, **lists)
    results = [_as_dict(stage, o) for o in outs]
    for f, res in zip(ts[1:], results[1:]):
        st.store[(node, f)] = res
    for key in [k for k in st.store if k[0] == node and k[1] < t]:
        st.store.pop(key)
    return results[0]


def evaluate(pipeline, node: str, t: int, output: str | None = None) -> Image:
    """``Pipeline.evaluate`` on a device: the output downloaded as an :class:`Image`."""
    outs = pipeline.evaluate_outputs(node, t)
    name = output or pipeline.nodes[node].stage.outputs[0]
    if name not in outs:
        from ..core.errors import RecipeError

        raise RecipeError(f"stage {node!r} has no output {name!r}; outputs: {', '.join(outs)}")
    return to_image(outs[name])
