"""Farm jobs, engine-neutral: which recipe each step renders, over which frames, in which chunks, after what.

:func:`plan_job` turns a recipe (and optionally a timeline of shots, a plate-prep recipe, ``--set``
overrides) into a :class:`FarmJob`: one step per shot (two when a prep recipe is given: ``SHOT_prep``
then ``SHOT_comp``, which depends on it). Everything a farm would only discover on a worker is checked
here, before submission, and refused with an :class:`~composite.core.errors.InputError` (CLI exit code 2):
an unknown stage or parameter, a chunk size below 1, frames outside a plate's range, plates missing on
disk, two steps writing the same file, two shots with the same name.

Each step renders with the task command farms run (``python -m composite render RECIPE --frames A-B
--set ...``); :meth:`FarmStep.command` builds it and the engine exporters (:mod:`composite.farm.openjd`,
:mod:`composite.farm.opencue`) embed it with their own frame tokens.

``{shot}`` in any string parameter of a recipe (or in a ``--set`` value) becomes the shot's name, so one
recipe renders every shot of a timeline into its own files::

    write: {type: WriteImage, inputs: {image: comp}, params: {path: renders/{shot}/{shot}.####.exr}}

Example
-------
>>> from composite.farm import plan_job                                    # doctest: +SKIP
>>> job = plan_job("comp.yaml", timeline="edit.otio", chunk_size=10)      # doctest: +SKIP
>>> [s.name for s in job.steps][:2], job.steps[0].chunks()[0]              # doctest: +SKIP
(['sh010_comp', 'sh020_comp'], [1001, ..., 1010])
"""

from __future__ import annotations

import json
import os
import re
import shlex
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..core.errors import InputError, RecipeError
from ..graph.executor import ChunkTask, format_frames, parse_frames, split_chunks, stage_modules
from ..graph.pipeline import Pipeline
from ..graph.recipe import parse_overrides, pipeline_from_recipe, read_recipe_file, resolve_recipe_path
from ..io.sequence import SequencePattern

SHOT_TOKEN = "{shot}"
_STEP_NAME = re.compile(r"[^A-Za-z0-9_.-]+")
_MAX_STEP_NAME = 60


@dataclass(frozen=True)
class Shot:
    """One shot to render: a name, the plate it reads (None: the recipe's own) and its frames.

    ``frames`` is the inclusive ``(first, last)`` range (None: the job's ``--frames`` or the recipe's).
    ``overrides`` are extra ``STAGE.PARAM=VALUE`` settings for this shot; ``recipe`` replaces the job's
    recipe for this shot.
    """

    name: str
    plate: str | None = None
    frames: tuple[int, int] | None = None
    overrides: tuple[str, ...] = ()
    recipe: str | None = None
    source: str = ""


@dataclass
class FarmStep:
    """One step of a farm job: a recipe with overrides, rendered over ``frames`` in chunks."""

    name: str
    shot: str
    kind: str
    recipe_path: str
    overrides: list[str]
    frames: list[int]
    chunk_size: int
    depends_on: list[str] = field(default_factory=list)
    outputs: list[str] = field(default_factory=list)
    recipe: dict[str, Any] = field(default_factory=dict, repr=False)
    modules: tuple[str, ...] = ()

    def chunks(self) -> list[list[int]]:
        return split_chunks(self.frames, self.chunk_size)

    @property
    def frame_range(self) -> str:
        return format_frames(self.frames)

    def render_args(self, frames: str) -> list[str]:
        """Arguments after ``composite``: ``render RECIPE --frames FRAMES --set ... --progress log``."""
        args = ["render", self.recipe_path, "--frames", frames]
        for item in self.overrides:
            args += ["--set", item]
        return args + ["--progress", "log"]

    def command(self, frames: str, *, python: str | None = None) -> list[str]:
        """The task command (argv) rendering ``frames`` of this step."""
        return [python or sys.executable, "-m", "composite", *self.render_args(frames)]

    def tasks(self, *, force: bool = False) -> list[ChunkTask]:
        return [ChunkTask(self.name, self.recipe, tuple(c), source=self.recipe_path, force=force,
                          after=tuple(self.depends_on), modules=self.modules) for c in self.chunks()]


@dataclass
class FarmJob:
    """A farm job: steps in dependency order (a step's dependencies come before it)."""

    name: str
    steps: list[FarmStep]
    chunk_size: int
    timeline: str | None = None

    def step(self, name: str) -> FarmStep:
        for s in self.steps:
            if s.name == name:
                return s
        raise KeyError(name)

    @property
    def shots(self) -> list[str]:
        seen: dict[str, None] = {}
        for s in self.steps:
            seen.setdefault(s.shot)
        return list(seen)

    def tasks(self, *, force: bool = False) -> list[ChunkTask]:
        """Every chunk of every step, as executor tasks (dependencies between steps kept)."""
        return [t for s in self.steps for t in s.tasks(force=force)]

    def task_count(self) -> int:
        return sum(len(s.chunks()) for s in self.steps)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "timeline": self.timeline, "chunk_size": self.chunk_size,
                "steps": [{"name": s.name, "shot": s.shot, "kind": s.kind, "recipe": s.recipe_path,
                           "overrides": list(s.overrides), "frames": s.frame_range, "chunks": len(s.chunks()),
                           "depends_on": list(s.depends_on), "outputs": list(s.outputs)} for s in self.steps]}


# -- helpers -------------------------------------------------------------------------------------

def step_name(shot: str, kind: str | None = None) -> str:
    """A name every engine accepts (letters, digits, ``_ . -``; at most 60 characters)."""
    base = _STEP_NAME.sub("_", shot).strip("_.-") or "shot"
    suffix = f"_{kind}" if kind else ""
    return base[:_MAX_STEP_NAME - len(suffix)] + suffix


def override_item(node: str, param: str, value: Any) -> str:
    """A ``--set`` item whose value reads back exactly (JSON-quoted when the plain text would not)."""
    if isinstance(value, str):
        try:
            back = parse_overrides([f"{node}.{param}={value}"])[0][2]
        except RecipeError:
            back = None
        text = value if back == value else json.dumps(value)
    else:
        text = json.dumps(value)
    return f"{node}.{param}={text}"


def _substitute(value: Any, shot: str) -> Any:
    if isinstance(value, str):
        return value.replace(SHOT_TOKEN, shot)
    if isinstance(value, list):
        return [_substitute(v, shot) for v in value]
    if isinstance(value, Mapping):
        return {k: _substitute(v, shot) for k, v in value.items()}
    return value


def _has_token(value: Any) -> bool:
    if isinstance(value, str):
        return SHOT_TOKEN in value
    if isinstance(value, list):
        return any(_has_token(v) for v in value)
    if isinstance(value, Mapping):
        return any(_has_token(v) for v in value.values())
    return False


def _shot_overrides(data: Mapping[str, Any], recipe_dir: str, shot: str) -> list[str]:
    """``--set`` items replacing ``{shot}`` in the recipe's own parameters."""
    items = []
    for node, spec in (data.get("stages") or {}).items():
        params = (spec or {}).get("params") or {} if isinstance(spec, Mapping) else {}
        if not isinstance(params, Mapping):
            continue
        for param, value in params.items():
            if _has_token(value):
                value = _substitute(value, shot)
                if isinstance(value, str):
                    value = value.replace("${RECIPE_DIR}", recipe_dir)
                items.append(override_item(node, param, value))
    return items


def _absolute_path_overrides(pipeline: Pipeline) -> list[str]:
    """``--set`` items making relative file parameters absolute (farm tasks run in other folders)."""
    items = []
    for name, node in pipeline.nodes.items():
        for param, spec in node.stage.params.items():
            value = node.stage.p[param]
            if getattr(spec, "path", False) and isinstance(value, str) and value and not os.path.isabs(value) \
                    and "://" not in value:
                items.append(override_item(name, param, os.path.abspath(value)))
    return items


def _check_override_syntax(items: Sequence[str]) -> None:
    parse_overrides(list(items))


@dataclass
class _Recipe:
    path: str
    data: dict[str, Any]
    recipe_dir: str


def _read_recipe(name_or_path: str | os.PathLike) -> _Recipe:
    path = resolve_recipe_path(name_or_path).resolve()
    return _Recipe(str(path), read_recipe_file(path), str(path.parent))


def _build(recipe: _Recipe, overrides: list[str], shot: str) -> Pipeline:
    try:
        return pipeline_from_recipe(recipe.data, source=recipe.path, recipe_dir=recipe.recipe_dir,
                                    overrides=parse_overrides(overrides))
    except RecipeError as exc:
        raise RecipeError(f"shot {shot}: {exc}") from None


def source_ranges(pipeline: Pipeline, *, skip_patterns: Iterable[str] = ()) -> list[tuple[str, str, tuple[int, int]]]:
    """``(node, description, (first, last))`` of every bounded source, except those reading ``skip_patterns``."""
    skip = {os.path.abspath(p) for p in skip_patterns}
    out = []
    for name in pipeline.topological_order():
        stage = pipeline.nodes[name].stage
        if not stage.is_source:
            continue
        pattern = getattr(stage, "pattern", None)
        if pattern is not None and os.path.abspath(str(pattern)) in skip:
            continue
        rng = stage.frame_range()
        if rng is not None:
            out.append((name, str(pattern) if pattern is not None else stage.type_name, rng))
    return out


def output_patterns(pipeline: Pipeline) -> list[str]:
    outs = []
    for o in pipeline.output_nodes():
        pattern = getattr(pipeline.nodes[o].stage, "pattern", None)
        outs.append(os.path.abspath(str(pattern)) if pattern is not None else o)
    return outs


def _source_patterns(pipeline: Pipeline) -> set[str]:
    out = set()
    for node in pipeline.nodes.values():
        pattern = getattr(node.stage, "pattern", None)
        if node.stage.is_source and pattern is not None:
            out.add(os.path.abspath(str(pattern)))
    return out


def output_files(pipeline: Pipeline, frames: Iterable[int]) -> list[str]:
    files = []
    for o in pipeline.output_nodes():
        stage = pipeline.nodes[o].stage
        for t in frames:
            files += [os.path.abspath(p) for p in stage.output_paths(t)]
    return files


def _check_frames(shot: str, step: str, pipeline: Pipeline, frames: list[int], skip: Iterable[str]) -> None:
    try:
        ranges = source_ranges(pipeline, skip_patterns=skip)
    except InputError as exc:
        raise InputError(f"shot {shot} ({step}): {exc}") from None
    for node, what, (lo, hi) in ranges:
        outside = [f for f in frames if f < lo or f > hi]
        if outside:
            raise InputError(
                f"shot {shot} ({step}): frames {format_frames(outside)} are outside the range of {node} "
                f"({what}: {lo}-{hi}); render frames inside it (--frames {max(lo, frames[0])}-{min(hi, frames[-1])}"
                f") or fix the shot's range")


# -- planning ------------------------------------------------------------------------------------

def plan_job(recipe: str | os.PathLike, *, frames: Any = None, chunk_size: int = 10,
             timeline: str | os.PathLike | None = None, shots: Sequence[Shot] | None = None,
             overrides: Sequence[str] = (), prep: str | os.PathLike | None = None,
             plate_node: str = "plate", handles: int = 0, check_media: bool = True,
             name: str | None = None, timeline_rate: float | None = None) -> FarmJob:
    """Plan a farm job and check it before submission.

    Parameters
    ----------
    recipe : path or shipped recipe name
        The comp recipe every shot renders.
    frames : str or None
        Frames of a single-shot job (default: the recipe's ``frames``). Not allowed with a timeline,
        whose clips give each shot's frames.
    chunk_size : int
        Frames per farm task (at least 1).
    timeline : path or None
        An OpenTimelineIO file (``.otio``, ``.edl`` ...): one shot per clip (see
        :func:`composite.farm.timeline_jobs.read_timeline_shots`).
    shots : list of Shot or None
        Shots given directly (instead of a timeline).
    overrides : list of str
        ``STAGE.PARAM=VALUE`` for every shot (``{shot}`` is replaced by the shot name).
    prep : path or None
        A plate-prep recipe rendered per shot before the comp (the comp step depends on it).
    plate_node : str
        The reader stage that takes each shot's plate path (``--set plate.path=...``).
    handles : int
        Extra frames rendered before and after each shot.
    check_media : bool
        Check that plates exist and cover the frames (turn off when plates are only visible on the farm).
    timeline_rate : float or None
        Frame rate of an EDL timeline (default: inferred from its timecodes).
    """
    if chunk_size is None or int(chunk_size) < 1:
        raise InputError(f"chunk size must be at least 1, got {chunk_size}")
    chunk_size = int(chunk_size)
    if handles < 0:
        raise InputError(f"handles must be 0 or more, got {handles}")
    comp = _read_recipe(recipe)
    prep_recipe = _read_recipe(prep) if prep is not None else None
    _check_override_syntax(overrides)
    if timeline is not None and shots is not None:
        raise InputError("give a timeline or a list of shots, not both")
    if timeline is not None:
        if frames is not None:
            raise InputError("--frames cannot be combined with --timeline: each clip gives its shot's frames")
        from .timeline_jobs import read_timeline_shots

        shots = read_timeline_shots(timeline, handles=handles, rate=timeline_rate)
        handles = 0  # the conform added them
    recipe_cache: dict[str, _Recipe] = {comp.path: comp}
    if shots is None:
        base = _build(comp, list(overrides), "-")
        shot_name = name or base.name
        shots = [Shot(shot_name)]
        job_frames = parse_frames(frames, default=base.frames)
    else:
        job_frames = None
        if not shots:
            raise InputError(f"{timeline or 'shots'}: no shots to render (the timeline has no clips with media)")
    names: dict[str, str] = {}
    plates = {str(SequencePattern.parse(os.path.abspath(s.plate))) for s in shots if s.plate}
    steps: list[FarmStep] = []
    claimed: dict[str, str] = {}
    for shot in shots:
        key = step_name(shot.name)
        if key in names:
            raise InputError(f"two shots are named {shot.name!r} ({names[key]} and {shot.source or 'another clip'}); "
                             "shot names must be unique (they name the job's steps and output files)")
        names[key] = shot.source or shot.name
        shot_recipe = comp
        if shot.recipe:
            path = str(resolve_recipe_path(shot.recipe).resolve())
            shot_recipe = recipe_cache.get(path) or _read_recipe(path)
            recipe_cache[path] = shot_recipe
        if shot.frames is not None:
            lo, hi = shot.frames
            if hi < lo:
                raise InputError(f"shot {shot.name}: empty frame range {lo}-{hi}")
            shot_frames = list(range(lo - handles, hi + handles + 1))
        else:
            shot_frames = list(job_frames or [])
        if not shot_frames:
            raise InputError(f"shot {shot.name}: no frames to render")
        token = step_name(shot.name)  # what {shot} becomes in paths: letters, digits, _ . -
        common = [_substitute(o, token) for o in overrides] + [_substitute(o, token) for o in shot.overrides]
        plate_items = [override_item(plate_node, "path", shot.plate)] if shot.plate else []
        chain: list[tuple[str, _Recipe]] = ([("prep", prep_recipe)] if prep_recipe else []) + [("comp", shot_recipe)]
        previous: FarmStep | None = None
        for kind, rec in chain:
            items = _shot_overrides(rec.data, rec.recipe_dir, token)
            stages = rec.data.get("stages") or {}
            if plate_items:
                if plate_node not in stages:
                    if kind == "prep" or prep_recipe is None:
                        raise RecipeError(f"shot {shot.name}: the recipe has no stage {plate_node!r} to take the "
                                          f"plate {shot.plate}; name its reader {plate_node!r} or pass --plate-node",
                                          source=rec.path)
                else:
                    items += plate_items
            items += common
            pipeline = _build(rec, items, shot.name)
            absolute = _absolute_path_overrides(pipeline)
            if absolute:
                items += absolute
                pipeline = _build(rec, items, shot.name)
            if not pipeline.output_nodes():
                raise RecipeError(f"shot {shot.name}: the recipe has no output stage (add a WriteImage)",
                                  source=rec.path)
            sname = step_name(shot.name, kind if prep_recipe else None)
            deps = [previous.name] if previous is not None else []
            if check_media:
                _check_frames(shot.name, kind, pipeline, shot_frames, previous.outputs if previous else ())
            outs = output_patterns(pipeline)
            reads = _source_patterns(pipeline)
            for out in outs:
                if out in reads or out in plates:
                    raise InputError(f"shot {shot.name} ({kind}): the output {out} is also read as a plate; "
                                     "writing it would overwrite the footage — write somewhere else")
            for f in output_files(pipeline, shot_frames):
                other = claimed.get(f)
                if other is not None:
                    raise InputError(
                        f"output collision: {other} and {sname} both write {f}; put {SHOT_TOKEN} in the output "
                        f"path (e.g. --set write.path=renders/{SHOT_TOKEN}/{SHOT_TOKEN}.####.exr)")
                claimed[f] = sname
            step = FarmStep(name=sname, shot=shot.name, kind=kind, recipe_path=rec.path, overrides=items,
                            frames=shot_frames, chunk_size=chunk_size, depends_on=deps, outputs=outs,
                            recipe=pipeline.to_recipe(), modules=stage_modules(pipeline))
            steps.append(step)
            previous = step
    job_name = name or (Path(timeline).stem if timeline is not None else steps[0].shot)
    return FarmJob(name=step_name(job_name), steps=steps, chunk_size=chunk_size,
                   timeline=str(Path(timeline).resolve()) if timeline is not None else None)


def shell_command(argv: Sequence[str]) -> str:
    """``argv`` as one POSIX shell command line."""
    return shlex.join(list(argv))
