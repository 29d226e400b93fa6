"""Whole timelines: read an OpenTimelineIO timeline into shots, render a job, summarise what happened.

* :func:`read_timeline_shots` — one :class:`~composite.farm.plan.Shot` per clip of the video tracks
  (through :mod:`composite.io.conform`): the clip's name, its plate (the media reference as a sequence
  pattern or movie) and its frames (the clip's source range in the plate's frame numbers, with handles).
* :func:`render_job` — render every chunk of a :class:`~composite.farm.plan.FarmJob` with an executor
  (this process, local worker processes, or a Ray cluster), plate prep before comp, failed chunks
  retried, and return a :class:`JobSummary` (per shot: rendered, up to date, failed, blocked).
* :func:`job_status` — what is on disk for a planned job: per step, frames whose outputs are up to date
  (their recorded fingerprint matches), out of date, or missing. Run it after a farm job to list the
  frames that failed.

A clip may carry per-shot settings in its metadata::

    clip.metadata["composite"] = {"set": ["grade.exposure=0.5"], "recipe": "comp_night.yaml"}
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..core.errors import InputError
from ..graph.executor import ChunkResult, Executor, format_frames, get_executor, log
from .plan import FarmJob, Shot


def read_timeline_shots(path: str | os.PathLike, *, handles: int = 0, rate: float | None = None) -> list[Shot]:
    """Shots of a timeline (``.otio``, ``.edl`` and whatever an installed OTIO adapter reads), in track order.

    Built on :mod:`composite.io.conform`: each video clip gives its name, its plate (the media reference
    as a sequence pattern or movie) and its plate frame numbers (the visible source range, retimes
    accounted for, plus ``handles``). Clips without media to render (generators, slugs) are left out with
    a logged note. Raises :class:`InputError` when the file cannot be read, a clip's media is missing or
    not a sequence/movie, or nothing is left to render. ``rate``: frame rate of an EDL.
    """
    from ..io.conform import load_timeline, timeline_shots

    path = os.fspath(path)
    timeline, notes = load_timeline(path, rate=rate)
    for note in notes:
        log.warning("composite: %s: %s", path, note)
    shots = []
    for shot in timeline_shots(timeline, handles=handles):
        where = f"{path}: clip {shot.index + 1} ({shot.name}, track {shot.track or '?'})"
        if shot.media_kind == "generator":
            log.warning("composite: %s: generator clip, nothing to render; left out", where)
            continue
        if not shot.renderable or not shot.media_path:
            reason = "; ".join(shot.warnings) or f"media kind {shot.media_kind}"
            raise InputError(f"{where}: cannot be rendered ({reason}); relink the clip to its plate")
        for warning in shot.warnings:
            log.warning("composite: %s: %s", where, warning)
        meta = {}
        if shot.clip is not None and hasattr(shot.clip.metadata, "get"):
            meta = dict(shot.clip.metadata.get("composite", {}) or {})
        sets = meta.get("set") or []
        if isinstance(sets, str):
            sets = [sets]
        shots.append(Shot(name=shot.name, plate=shot.media_path, frames=(shot.first_frame, shot.last_frame),
                          overrides=tuple(str(v) for v in sets), recipe=meta.get("recipe"), source=where))
    if not shots:
        raise InputError(f"{path}: the timeline has no clips with media to render")
    return shots


# -- rendering a job -----------------------------------------------------------------------------

@dataclass
class StepSummary:
    name: str
    shot: str
    kind: str
    frames: list[int]
    rendered: list[int] = field(default_factory=list)
    skipped: list[int] = field(default_factory=list)
    failed: list[int] = field(default_factory=list)
    blocked: list[int] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    attempts: int = 0

    @property
    def ok(self) -> bool:
        return not self.failed and not self.blocked

    def to_dict(self) -> dict[str, Any]:
        return {"step": self.name, "shot": self.shot, "kind": self.kind, "frames": format_frames(self.frames),
                "rendered": format_frames(self.rendered), "up_to_date": format_frames(self.skipped),
                "failed": format_frames(self.failed), "blocked": format_frames(self.blocked),
                "errors": list(self.errors), "attempts": self.attempts, "ok": self.ok}


@dataclass
class JobSummary:
    """What a job render did, step by step."""

    job: str
    steps: list[StepSummary]
    elapsed: float = 0.0

    @property
    def ok(self) -> bool:
        return all(s.ok for s in self.steps)

    @property
    def failed_shots(self) -> list[str]:
        return sorted({s.shot for s in self.steps if not s.ok})

    def to_dict(self) -> dict[str, Any]:
        return {"job": self.job, "ok": self.ok, "elapsed_s": round(self.elapsed, 3),
                "rendered_frames": sum(len(s.rendered) for s in self.steps),
                "up_to_date_frames": sum(len(s.skipped) for s in self.steps),
                "failed_frames": sum(len(s.failed) for s in self.steps),
                "blocked_frames": sum(len(s.blocked) for s in self.steps),
                "failed_shots": self.failed_shots, "steps": [s.to_dict() for s in self.steps]}

    def format(self) -> str:
        lines = [f"job {self.job}: {'all steps finished' if self.ok else 'FAILED: ' + ', '.join(self.failed_shots)}"
                 f" in {self.elapsed:.1f} s"]
        for s in self.steps:
            state = "ok" if s.ok else "FAILED"
            parts = [f"{len(s.rendered)} rendered", f"{len(s.skipped)} up to date"]
            if s.failed:
                parts.append(f"failed {format_frames(s.failed)}")
            if s.blocked:
                parts.append(f"not run {format_frames(s.blocked)}")
            lines.append(f"  {s.name:<24} {format_frames(s.frames):<16} {state:<6} {', '.join(parts)}")
            lines += [f"      {e}" for e in s.errors]
        return "\n".join(lines)


def summarise(job: FarmJob, results: Sequence[ChunkResult], elapsed: float = 0.0) -> JobSummary:
    by_step = {s.name: StepSummary(s.name, s.shot, s.kind, list(s.frames)) for s in job.steps}
    for res in results:
        st = by_step[res.task.step]
        st.attempts += res.attempts
        if res.status == "done":
            st.rendered += res.report.rendered
            st.skipped += res.report.skipped
        elif res.status == "failed":
            done = set()
            if res.report is not None:
                st.rendered += res.report.rendered
                st.skipped += res.report.skipped
                done = set(res.report.rendered) | set(res.report.skipped)
            st.failed += [t for t in res.task.frames if t not in done]
            st.errors.append(f"chunk {format_frames(res.task.frames)}: {res.error}")
        else:
            st.blocked += list(res.task.frames)
            if res.error and not any(res.error in e for e in st.errors):
                st.errors.append(f"not run: {res.error}")
    for st in by_step.values():
        st.rendered.sort()
        st.skipped.sort()
    return JobSummary(job.name, list(by_step.values()), elapsed)


def render_job(job: FarmJob, *, executor: str | Executor = "local", workers: int = 1, address: str | None = None,
               max_attempts: int = 2, force: bool = False, progress=None) -> JobSummary:
    """Render every chunk of ``job`` and summarise (failures are reported, not raised).

    ``executor``: ``"local"`` (this process when ``workers`` is 1, else worker processes), ``"ray"``
    (``address`` names a cluster; default: start a local one), or an :class:`Executor`.
    """
    from ..graph.executor import InProcessExecutor, LocalExecutor

    tasks = job.tasks(force=force)
    own = True
    if isinstance(executor, Executor):
        ex, own = executor, False
    elif executor == "local":
        if address:
            raise InputError("--address needs a cluster executor (e.g. --executor ray)")
        ex = InProcessExecutor() if workers == 1 else LocalExecutor(workers)
    else:
        options: dict[str, Any] = {"address": address}
        if workers > 1:
            options["workers"] = workers
        ex = get_executor(executor, **options)
    total = sum(len(t.frames) for t in tasks)
    log.info("composite: job %s: %d step(s), %d chunk(s), %d frame(s)", job.name, len(job.steps), len(tasks), total)
    t0 = time.perf_counter()
    try:
        results = ex.run(tasks, notify=progress, max_attempts=max_attempts)
    finally:
        if own:
            ex.close()
    return summarise(job, results, time.perf_counter() - t0)


# -- state on disk -------------------------------------------------------------------------------

def job_status(job: FarmJob) -> dict[str, Any]:
    """Per step: frames whose outputs are up to date, out of date (fingerprint differs) or missing."""
    from ..graph.recipe import pipeline_from_recipe

    steps = []
    for step in job.steps:
        p = pipeline_from_recipe(step.recipe, source=step.recipe_path)
        done, stale, missing = [], [], []
        for t in step.frames:
            state = "done"
            for o in p.output_nodes():
                found = p.nodes[o].stage.existing_fingerprint(t)
                if found is None:
                    state = "missing"
                    break
                if found != p.fingerprint(o, t):
                    state = "stale"
            {"done": done, "stale": stale, "missing": missing}[state].append(t)
        steps.append({"step": step.name, "shot": step.shot, "frames": step.frame_range,
                      "up_to_date": format_frames(done), "out_of_date": format_frames(stale),
                      "missing": format_frames(missing), "complete": len(done) == len(step.frames)})
    return {"job": job.name, "complete": all(s["complete"] for s in steps),
            "incomplete_shots": sorted({s["shot"] for s in steps if not s["complete"]}), "steps": steps}


def write_timeline(path: str | os.PathLike, shots: Sequence[tuple[str, str, int, int]], *, rate: float = 24.0,
                   name: str = "edit") -> Path:
    """Write a one-track OTIO timeline of ``(name, plate_pattern, first, last)`` clips (tests, demos).

    Each clip references its plate as an ``ImageSequenceReference`` covering the frames on disk (or just
    ``first``-``last`` when none are there), and uses ``first``-``last`` of it.
    """
    import opentimelineio as otio

    from ..io.sequence import SequencePattern

    rt, tr = otio.opentime.RationalTime, otio.opentime.TimeRange
    timeline = otio.schema.Timeline(name=name)
    track = otio.schema.Track(name="V1", kind=otio.schema.TrackKind.Video)
    timeline.tracks.append(track)
    ranges: dict[str, tuple[int, int] | None] = {}
    for shot, plate, first, last in shots:
        pattern = SequencePattern.parse(os.path.abspath(plate))
        if plate not in ranges:
            ranges[plate] = pattern.frame_range()
        lo, hi = ranges[plate] or (first, last)
        folder, prefix = os.path.split(pattern.prefix)
        ref = otio.schema.ImageSequenceReference(
            target_url_base=folder + os.sep, name_prefix=prefix, name_suffix=pattern.suffix, start_frame=lo,
            frame_step=1, rate=rate, frame_zero_padding=pattern.padding,
            available_range=tr(rt(lo, rate), rt(hi - lo + 1, rate)))
        track.append(otio.schema.Clip(name=shot, media_reference=ref,
                                      source_range=tr(rt(first, rate), rt(last - first + 1, rate))))
    otio.adapters.write_to_file(timeline, os.fspath(path))
    return Path(path)
