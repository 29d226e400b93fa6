"""Pipelines: a DAG of named stages, built in Python or from a recipe, evaluated frame by frame.

Example
-------
>>> from composite.graph import Pipeline
>>> from composite.graph.builtin import Constant, Merge
>>> p = Pipeline("doc")
>>> bg = p.add("bg", Constant(color=[0.1, 0.2, 0.3, 1.0], width=8, height=4))
>>> fg = p.add("fg", Constant(color=[0.5, 0.0, 0.0, 0.5], width=8, height=4))
>>> comp = p.add("comp", Merge(operation="over"), a=fg, b=bg)
>>> [round(float(v), 3) for v in p.evaluate("comp", 1001).pixels[0, 0]]
[0.55, 0.1, 0.15, 1.0]
"""

from __future__ import annotations

import hashlib
import os
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..core.errors import InputError, NonFiniteError, RecipeError, RenderError
from ..core.image import Image
from ..core.state import WORKING_SPACE
from .stage import Stage

#: Version of the fingerprint scheme; part of every fingerprint.
FINGERPRINT_SCHEME = "composite.fp/1"


@dataclass(frozen=True)
class Ref:
    """A reference to one output of a node: ``Ref("key", "matte")`` is spelled ``key.matte`` in recipes."""

    node: str
    output: str = "image"

    def __str__(self) -> str:
        return self.node if self.output == "image" else f"{self.node}.{self.output}"

    @classmethod
    def parse(cls, value: Ref | str) -> Ref:
        if isinstance(value, Ref):
            return value
        if not isinstance(value, str) or not value:
            raise RecipeError(f"expected a stage name, got {value!r}")
        node, _, output = value.partition(".")
        return cls(node, output or "image")


@dataclass
class Node:
    name: str
    stage: Stage
    inputs: dict[str, Ref] = field(default_factory=dict)


class _FrameCache:
    """A bounded LRU of (node, frame) → outputs."""

    def __init__(self, capacity: int):
        self.capacity = max(1, capacity)
        self._items: OrderedDict[int, dict[str, Image]] = OrderedDict()

    def get(self, t: int):
        item = self._items.get(t)
        if item is not None:
            self._items.move_to_end(t)
        return item

    def put(self, t: int, value: dict[str, Image]) -> None:
        self._items[t] = value
        self._items.move_to_end(t)
        while len(self._items) > self.capacity:
            self._items.popitem(last=False)


class Pipeline:
    """A directed acyclic graph of stages.

    Parameters
    ----------
    name : str
        Shot or job name (used in logs, manifests and farm jobs).
    rate : float
        Frame rate of the plate (frames per second); frames are integers at this rate.
    working_space : str
        OCIO name of the working colour space (ACEScg by default).
    nonfinite : {"error", "repair"}
        What to do with NaN/Inf pixels coming out of source stages: stop with an error naming stage,
        frame and count, or replace them with 0 and log the count.
    frames : str or None
        Default frame range (``"1001-1100"``) for :meth:`render` and the CLI.
    device : str or None
        Where stages with torch implementations run: None or ``"cpu"`` (NumPy, the default), ``"cuda"``,
        ``"cuda:N"``, ``"auto"`` or ``"torch-cpu"`` (see :mod:`composite.gpu`). Defaults to
        ``$COMPOSITE_DEVICE``. An execution choice: not part of recipes or fingerprints.
    """

    def __init__(self, name: str = "pipeline", *, rate: float = 24.0, working_space: str = WORKING_SPACE,
                 nonfinite: str = "error", frames: str | None = None, metadata: Mapping[str, Any] | None = None,
                 device: str | None = None):
        if nonfinite not in ("error", "repair"):
            raise RecipeError(f"nonfinite must be 'error' or 'repair', got {nonfinite!r}", key="nonfinite")
        self.name = name
        self.rate = float(rate)
        self.working_space = working_space
        self.nonfinite = nonfinite
        self.frames = frames
        self.metadata = dict(metadata or {})
        self.nodes: dict[str, Node] = {}
        self.source: str = "<python>"
        self.device: str | None = device if device is not None else (os.environ.get("COMPOSITE_DEVICE") or None)
        self._reset_caches()

    # -- building ------------------------------------------------------------------------------
    def add(self, name: str, stage: Stage, **inputs: Ref | str) -> Ref:
        """Add ``stage`` as node ``name`` with its inputs connected; returns a Ref to its main output."""
        if not isinstance(name, str) or not name or "." in name:
            raise RecipeError(f"stage names must be non-empty and contain no '.', got {name!r}")
        if name in self.nodes:
            raise RecipeError(f"a stage named {name!r} already exists", key=f"stages.{name}", source=self.source)
        if not isinstance(stage, Stage):
            raise RecipeError(f"expected a Stage, got {type(stage).__name__}", key=f"stages.{name}")
        refs = {}
        for inp, ref in inputs.items():
            if inp not in stage.inputs:
                allowed = ", ".join(stage.inputs) or "(none)"
                raise RecipeError(f"{stage.type_name} has no input {inp!r}; inputs: {allowed}",
                                  key=f"stages.{name}.inputs.{inp}", source=self.source)
            refs[inp] = Ref.parse(ref)
        stage.node_name = name
        stage.rate = self.rate
        stage.working_space = self.working_space
        self.nodes[name] = Node(name, stage, refs)
        self._reset_caches()
        return Ref(name, stage.outputs[0] if stage.outputs else "image")

    def set_param(self, node: str, param: str, value: Any) -> None:
        """Replace one parameter of a node (validated), as ``--set node.param=value`` does."""
        if node not in self.nodes:
            raise RecipeError(f"no stage named {node!r}; stages: {', '.join(self.nodes)}", key=f"{node}.{param}")
        n = self.nodes[node]
        if param not in n.stage.params:
            allowed = ", ".join(sorted(n.stage.params))
            raise RecipeError(f"{n.stage.type_name} has no parameter {param!r}; parameters: {allowed}",
                              key=f"stages.{node}.params.{param}", source=self.source)
        try:
            new = n.stage.with_params(**{param: value})
        except RecipeError as exc:
            raise RecipeError(str(exc).split(": ", 1)[-1], key=f"stages.{node}.params.{param}",
                              source=self.source) from None
        new.node_name = node
        new.rate = self.rate
        new.working_space = self.working_space
        n.stage = new
        self._reset_caches()

    # -- validation ----------------------------------------------------------------------------
    def validate(self) -> None:
        """Check connections, outputs and cycles; raise :class:`RecipeError` with the key path."""
        for name, node in self.nodes.items():
            for inp, spec in node.stage.inputs.items():
                if inp not in node.inputs and not spec.optional:
                    raise RecipeError(f"required input {inp!r} of {node.stage.type_name} is not connected",
                                      key=f"stages.{name}.inputs.{inp}", source=self.source)
            for inp, ref in node.inputs.items():
                if ref.node not in self.nodes:
                    raise RecipeError(f"input refers to unknown stage {ref.node!r}; stages: {', '.join(self.nodes)}",
                                      key=f"stages.{name}.inputs.{inp}", source=self.source)
                outs = self.nodes[ref.node].stage.outputs
                if ref.output not in outs:
                    raise RecipeError(f"stage {ref.node!r} has no output {ref.output!r}; outputs: {', '.join(outs)}",
                                      key=f"stages.{name}.inputs.{inp}", source=self.source)
        self.topological_order()

    def topological_order(self) -> list[str]:
        state: dict[str, int] = {}
        order: list[str] = []

        def visit(n: str, path: list[str]):
            s = state.get(n, 0)
            if s == 2:
                return
            if s == 1:
                cycle = " -> ".join(path[path.index(n):] + [n])
                raise RecipeError(f"the graph has a cycle: {cycle}", key=f"stages.{n}.inputs", source=self.source)
            state[n] = 1
            for ref in self.nodes[n].inputs.values():
                if ref.node in self.nodes:
                    visit(ref.node, path + [n])
            state[n] = 2
            order.append(n)

        for n in self.nodes:
            visit(n, [])
        return order

    def output_nodes(self) -> list[str]:
        return [n for n, node in self.nodes.items() if node.stage.is_output]

    # -- recipes -------------------------------------------------------------------------------
    def to_recipe(self) -> dict[str, Any]:
        from .recipe import pipeline_to_recipe

        return pipeline_to_recipe(self)

    @classmethod
    def from_recipe(cls, recipe: Mapping[str, Any] | str, **kwargs: Any) -> Pipeline:
        from .recipe import load_recipe, pipeline_from_recipe

        if isinstance(recipe, Mapping):
            return pipeline_from_recipe(recipe, **kwargs)
        return load_recipe(recipe, **kwargs)

    # -- frame ranges --------------------------------------------------------------------------
    def frame_range(self, node: str) -> tuple[int, int] | None:
        """Frames a node can produce: a source's own range, else the intersection of its inputs'."""
        if node in self._ranges:
            return self._ranges[node]
        n = self.nodes[node]
        rng = n.stage.frame_range() if n.stage.is_source else None
        if rng is None:
            for ref in n.inputs.values():
                r = self.frame_range(ref.node)
                if r is not None:
                    rng = r if rng is None else (max(rng[0], r[0]), min(rng[1], r[1]))
        self._ranges[node] = rng
        return rng

    def frames_for_input(self, node: str, inp: str, t: int) -> list[int]:
        """Frames of input ``inp`` that ``node`` reads at ``t``, clamped to the input's frame range."""
        n = self.nodes[node]
        before, after = n.stage.window(inp)
        frames = range(t - before, t + after + 1)
        rng = self.frame_range(n.inputs[inp].node)
        if rng is None:
            return list(frames)
        lo, hi = rng
        return sorted({min(max(f, lo), hi) for f in frames})

    # -- fingerprints --------------------------------------------------------------------------
    def fingerprint(self, node: str, t: int, output: str | None = None) -> str:
        """Fingerprint of a node's output at frame t, from parameters and inputs, without reading pixels."""
        key = (node, t, output)
        fp = self._fingerprints.get(key)
        if fp is not None:
            return fp
        n = self.nodes[node]
        stage = n.stage
        ident = stage.identity(t)
        if ident is not None and ident in n.inputs:
            ref = n.inputs[ident]
            fp = self.fingerprint(ref.node, t, ref.output)
        else:
            h = hashlib.sha256()
            h.update(f"{FINGERPRINT_SCHEME}|{type(stage).__module__}.{type(stage).__qualname__}|"
                     f"{stage.type_name}|v{stage.version}|{stage.canonical_params()}|{stage.fingerprint_extra()}|"
                     f"{self.working_space}|{self.nonfinite}".encode())
            h.update(f"|t:{t}".encode())
            if stage.is_source:
                h.update(f"|src:{stage.source_identity(t)}".encode())
            if "seed" in stage.params:
                h.update(f"|node:{node}".encode())
            for inp in sorted(n.inputs):
                ref = n.inputs[inp]
                for f in self.frames_for_input(node, inp, t):
                    h.update(f"|{inp}@{f - t}:{self.fingerprint(ref.node, f, ref.output)}".encode())
            if not stage.is_output and output is not None and len(stage.outputs) > 1:
                h.update(f"|out:{output}".encode())
            fp = h.hexdigest()
        self._fingerprints[key] = fp
        return fp

    # -- evaluation ----------------------------------------------------------------------------
    def _reset_caches(self) -> None:
        self._caches: dict[str, _FrameCache] = {}
        self._fingerprints: dict[tuple, str] = {}
        self._ranges: dict[str, tuple[int, int] | None] = {}

    def _cache_capacities(self) -> dict[str, int]:
        """Frames each node must keep so a sequential render computes every frame once.

        A node read over offsets [lo, hi] (accumulated along every path from the outputs) keeps
        ``hi - lo + 2`` frames.
        """
        reach: dict[str, tuple[int, int]] = {}
        order = self.topological_order()
        for name in reversed(order):
            lo, hi = reach.setdefault(name, (0, 0))
            node = self.nodes[name]
            for inp, ref in node.inputs.items():
                before, after = node.stage.window(inp)
                rlo, rhi = reach.get(ref.node, (0, 0))
                reach[ref.node] = (min(rlo, lo - before), max(rhi, hi + after))
        return {n: hi - lo + 2 for n, (lo, hi) in reach.items()}

    def _cache(self, node: str) -> _FrameCache:
        cache = self._caches.get(node)
        if cache is None:
            caps = self._cache_capacities()
            for n, cap in caps.items():
                self._caches.setdefault(n, _FrameCache(cap))
            cache = self._caches[node]
        return cache

    def evaluate_outputs(self, node: str, t: int) -> dict[str, Image]:
        """All outputs of ``node`` at frame ``t`` (cached within the bounded window)."""
        if node not in self.nodes:
            raise RecipeError(f"no stage named {node!r}; stages: {', '.join(self.nodes)}")
        cache = self._cache(node)
        hit = cache.get(t)
        if hit is not None:
            return hit
        n = self.nodes[node]
        stage = n.stage
        ident = stage.identity(t)
        if ident is not None and ident in n.inputs:
            ref = n.inputs[ident]
            img = self.evaluate_outputs(ref.node, t)[ref.output]
            result = {out: img for out in stage.outputs}
        else:
            kwargs = self.gather_inputs(node, t)
            try:
                if self.device is None or self.device == "cpu":
                    out = stage.process(t, **kwargs)
                else:  # torch device: composite.gpu decides where the stage runs
                    from ..gpu.graph import process as process_on_device

                    out = process_on_device(self, node, t, kwargs)
            except (InputError, RenderError):
                raise
            except Exception as exc:
                raise RenderError(f"stage {node!r} ({stage.type_name}) failed at frame {t}: "
                                  f"{type(exc).__name__}: {exc}") from exc
            result = {stage.outputs[0]: out} if isinstance(out, Image) else dict(out or {})
            if stage.is_source:
                result = {k: self._check_finite(node, t, k, v) for k, v in result.items()}
        cache.put(t, result)
        return result

    def gather_inputs(self, node: str, t: int) -> dict[str, Any]:
        """Evaluate and state-check the inputs ``node`` reads at ``t`` (dicts of frame → Image for windows)."""
        if self.device is not None and self.device != "cpu":
            from ..gpu.graph import gather_inputs as gather_on_device

            return gather_on_device(self, node, t)
        return self._gather_inputs(node, t)

    def _gather_inputs(self, node: str, t: int) -> dict[str, Any]:
        n = self.nodes[node]
        stage = n.stage
        kwargs: dict[str, Any] = {}
        for inp, ref in n.inputs.items():
            if stage.inputs[inp].window is None:
                img = self.evaluate_outputs(ref.node, t)[ref.output]
                stage.check_input(inp, img, self.working_space)
                kwargs[inp] = img
            else:
                frames = {}
                for f in self.frames_for_input(node, inp, t):
                    img = self.evaluate_outputs(ref.node, f)[ref.output]
                    stage.check_input(inp, img, self.working_space)
                    frames[f] = img
                kwargs[inp] = frames
        return kwargs

    def evaluate(self, node: str, t: int, output: str | None = None) -> Image:
        """One output image of ``node`` at frame ``t``."""
        if self.device is not None and self.device != "cpu":
            from ..gpu.graph import evaluate as evaluate_on_device

            return evaluate_on_device(self, node, t, output)
        outs = self.evaluate_outputs(node, t)
        name = output or self.nodes[node].stage.outputs[0]
        if name not in outs:
            raise RecipeError(f"stage {node!r} has no output {name!r}; outputs: {', '.join(outs)}")
        return outs[name]

    def _check_finite(self, node: str, t: int, output: str, img: Image) -> Image:
        if not isinstance(img, Image):
            return img
        planes = [img.pixels] + [layer.pixels for layer in img.layers.values()]
        bad = sum(int(p.size - np.count_nonzero(np.isfinite(p))) for p in planes)
        if bad == 0:
            return img
        if self.nonfinite == "error":
            raise NonFiniteError(f"stage {node!r} output {output!r} frame {t}: {bad} NaN/Inf values; "
                                 "fix the source or set `nonfinite: repair` in the recipe to replace them with 0")
        import logging

        logging.getLogger("composite.render").warning("stage %s frame %d: repaired %d NaN/Inf values", node, t, bad)
        layers = {k: type(v)(np.nan_to_num(v.pixels, nan=0.0, posinf=0.0, neginf=0.0), v.channels)
                  for k, v in img.layers.items()}
        return img.replace(pixels=np.nan_to_num(img.pixels, nan=0.0, posinf=0.0, neginf=0.0), layers=layers)

    # -- rendering -----------------------------------------------------------------------------
    def render(self, frames: Any = None, **kwargs: Any):
        """Render the output stages over ``frames`` (see :func:`composite.graph.executor.render`)."""
        from .executor import render

        return render(self, frames, **kwargs)

    def __repr__(self) -> str:
        return f"Pipeline({self.name!r}, stages={list(self.nodes)})"
