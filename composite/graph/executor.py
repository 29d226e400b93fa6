"""Rendering: frame ranges, chunks, worker processes, skip-if-up-to-date, progress and logs.

``render(pipeline, "1001-1100", chunk_size=10, workers=2)`` renders every output stage of the pipeline
over the frames. Chunks are rendered independently (each with its own cache), so rendering a range in
one process or as chunks in separate processes gives bit-identical files. A frame whose output already
exists with the same fingerprint is skipped unless ``force``.

Log lines (one per event, stable wording for farm log parsers)::

    composite: frame 1001 started
    composite: frame 1001 finished in 0.412 s (1/10, 10.0%)
    composite: frame 1002 skipped, up to date (2/10, 20.0%)
"""

from __future__ import annotations

import logging
import multiprocessing as mp
import os
import sys
import threading
import time
from collections.abc import Iterable
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from typing import Any

import fileseq

from ..core.errors import CompositeError, InputError, RecipeError, RenderError
from .pipeline import Pipeline

log = logging.getLogger("composite.render")

_THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS",
                "VECLIB_MAXIMUM_THREADS", "NUMBA_NUM_THREADS")


def parse_frames(frames: Any, *, default: str | None = None) -> list[int]:
    """Frames from ``"1001-1100"``, ``"1001-1100x2"``, ``"1001,1005,1010-1012"``, an int, a list, or an
    OpenTimelineIO ``TimeRange`` (half-open, at the pipeline's rate)."""
    if frames is None:
        frames = default
    if frames is None:
        raise InputError("no frame range given: pass --frames (e.g. 1001-1100) or set 'frames' in the recipe")
    try:
        import opentimelineio as otio

        if isinstance(frames, otio.opentime.TimeRange):
            start = int(round(frames.start_time.value))
            return list(range(start, start + int(round(frames.duration.value))))
    except ImportError:  # pragma: no cover
        pass
    if isinstance(frames, int):
        return [frames]
    if isinstance(frames, (list, tuple, range)):
        return sorted({int(f) for f in frames})
    try:
        out = [int(f) for f in fileseq.FrameSet(str(frames).replace(" ", ""))]
    except Exception:
        raise InputError(f"bad frame range {frames!r}; write it like 1001-1100, 1001-1100x2 or 1001,1005") from None
    if not out:
        raise InputError(f"frame range {frames!r} is empty")
    return sorted(set(out))


def split_chunks(frames: list[int], chunk_size: int | None) -> list[list[int]]:
    if chunk_size is None or chunk_size <= 0:
        if chunk_size is not None and chunk_size <= 0:
            raise InputError(f"chunk size must be at least 1, got {chunk_size}")
        return [frames]
    return [frames[i:i + chunk_size] for i in range(0, len(frames), chunk_size)]


@dataclass
class RenderReport:
    """What a render did."""

    frames: list[int] = field(default_factory=list)
    rendered: list[int] = field(default_factory=list)
    skipped: list[int] = field(default_factory=list)
    written: list[str] = field(default_factory=list)
    elapsed: float = 0.0
    frame_seconds: dict[int, float] = field(default_factory=dict)

    @property
    def fps(self) -> float:
        return len(self.rendered) / self.elapsed if self.elapsed > 0 else 0.0

    def merge(self, other: RenderReport) -> None:
        self.rendered += other.rendered
        self.skipped += other.skipped
        self.written += other.written
        self.frame_seconds.update(other.frame_seconds)

    def summary(self) -> str:
        return (f"{len(self.rendered)} frame(s) rendered, {len(self.skipped)} skipped (up to date) "
                f"in {self.elapsed:.2f} s ({self.fps:.2f} frames/s)")


class _Progress:
    """A progress bar on a terminal, plain log lines otherwise."""

    def __init__(self, total: int, enabled: bool | None = None):
        self.total = max(total, 1)
        self.done = 0
        self.start = time.perf_counter()
        self.tty = sys.stderr.isatty() if enabled is None else enabled
        self.lock = threading.Lock()

    def event(self, kind: str, frame: int, seconds: float | None = None) -> None:
        with self.lock:
            if kind == "started":
                if not self.tty:
                    log.info("composite: frame %d started", frame)
                return
            self.done += 1
            pct = 100.0 * self.done / self.total
            if self.tty:
                elapsed = time.perf_counter() - self.start
                rate = self.done / elapsed if elapsed > 0 else 0.0
                eta = (self.total - self.done) / rate if rate > 0 else 0.0
                width = 30
                filled = int(width * self.done / self.total)
                sys.stderr.write(f"\r[{'#' * filled}{'.' * (width - filled)}] {self.done}/{self.total} "
                                 f"{rate:5.2f} frames/s ETA {eta:5.1f} s ")
                if self.done >= self.total:
                    sys.stderr.write("\n")
                sys.stderr.flush()
            elif kind == "finished":
                log.info("composite: frame %d finished in %.3f s (%d/%d, %.1f%%)", frame, seconds or 0.0,
                         self.done, self.total, pct)
            else:
                log.info("composite: frame %d skipped, up to date (%d/%d, %.1f%%)", frame, self.done, self.total, pct)


def render_frames(pipeline: Pipeline, frames: Iterable[int], *, force: bool = False,
                  outputs: list[str] | None = None, notify=None) -> RenderReport:
    """Render ``frames`` of the pipeline's output stages in this process, in order."""
    frames = list(frames)
    outputs = outputs or pipeline.output_nodes()
    if not outputs:
        raise RecipeError("the pipeline has no output stage (add a writer such as WriteImage)",
                          source=pipeline.source, key="stages")
    report = RenderReport(frames=frames)
    t0 = time.perf_counter()
    stages = [pipeline.nodes[o].stage for o in outputs]
    for st in stages:
        st.begin(frames)
    for t in frames:
        fps = {o: pipeline.fingerprint(o, t) for o in outputs}
        todo = [o for o in outputs if force or pipeline.nodes[o].stage.existing_fingerprint(t) != fps[o]]
        if not todo:
            report.skipped.append(t)
            if notify:
                notify("skipped", t)
            continue
        if notify:
            notify("started", t)
        ft = time.perf_counter()
        for o in todo:
            stage = pipeline.nodes[o].stage
            inputs = pipeline.gather_inputs(o, t)
            try:
                report.written += stage.write(t, fingerprint=fps[o], **inputs)
            except CompositeError:
                raise
            except Exception as exc:
                raise RenderError(f"output stage {o!r} failed at frame {t}: {type(exc).__name__}: {exc}") from exc
        dt = time.perf_counter() - ft
        report.rendered.append(t)
        report.frame_seconds[t] = dt
        if notify:
            notify("finished", t, dt)
    for st in stages:
        report.written += st.finish(frames)
    report.elapsed = time.perf_counter() - t0
    return report


# -- worker processes ----------------------------------------------------------------------------

_worker_queue = None


def limit_threads(threads: int) -> None:
    """Cap the threads of the numeric libraries in this process (OpenCV, BLAS, OpenMP, torch)."""
    threads = max(1, int(threads))
    for var in _THREAD_VARS:
        os.environ[var] = str(threads)
    try:
        import cv2

        cv2.setNumThreads(threads)
    except ImportError:  # pragma: no cover
        pass
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(threads)


def _init_worker(threads: int, queue) -> None:
    global _worker_queue
    _worker_queue = queue
    limit_threads(threads)
    logging.basicConfig(level=logging.WARNING, format="%(message)s")


def _render_chunk(recipe: dict, source: str, frames: list[int], force: bool) -> RenderReport:
    from .recipe import pipeline_from_recipe

    pipeline = pipeline_from_recipe(recipe, source=source)

    def notify(kind, t, seconds=None):
        if _worker_queue is not None:
            _worker_queue.put((kind, t, seconds))

    return render_frames(pipeline, frames, force=force, notify=notify)


def render(pipeline: Pipeline, frames: Any = None, *, chunk_size: int | None = None, workers: int = 1,
           force: bool = False, progress: bool | None = None) -> RenderReport:
    """Render the pipeline's output stages over ``frames``.

    Parameters
    ----------
    frames : str, int, list or TimeRange
        Defaults to the recipe's ``frames``.
    chunk_size : int or None
        Frames per chunk; each chunk is rendered independently (as a farm task would be).
    workers : int
        Worker processes for chunks (1: render in this process). Each worker's numeric libraries get
        ``cpu_count // workers`` threads so workers do not oversubscribe the machine.
    force : bool
        Re-render frames whose outputs are up to date.
    progress : bool or None
        Progress bar (True), log lines (False) or decide by whether stderr is a terminal (None).
    """
    pipeline.validate()
    frame_list = parse_frames(frames, default=pipeline.frames)
    if workers < 1:
        raise InputError(f"--workers must be at least 1, got {workers}")
    chunks = split_chunks(frame_list, chunk_size)
    bar = _Progress(len(frame_list), progress)
    report = RenderReport(frames=frame_list)
    t0 = time.perf_counter()
    if workers == 1 or len(chunks) == 1:
        for chunk in chunks:
            if chunk_size:
                pipeline._reset_caches()  # each chunk starts cold, as a farm task does
            report.merge(render_frames(pipeline, chunk, force=force, notify=bar.event))
    else:
        recipe = pipeline.to_recipe()
        threads = max(1, (os.cpu_count() or 1) // workers)
        ctx = mp.get_context("spawn")
        queue = ctx.Queue()
        saved = {v: os.environ.get(v) for v in _THREAD_VARS}
        for v in _THREAD_VARS:
            os.environ[v] = str(threads)
        stop = threading.Event()

        def pump():
            while not stop.is_set() or not queue.empty():
                try:
                    kind, t, secs = queue.get(timeout=0.1)
                except Exception:
                    continue
                bar.event(kind, t, secs)

        pumper = threading.Thread(target=pump, daemon=True)
        pumper.start()
        try:
            with ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=_init_worker,
                                     initargs=(threads, queue)) as pool:
                futures = [pool.submit(_render_chunk, recipe, pipeline.source, c, force) for c in chunks]
                for fut in as_completed(futures):
                    report.merge(fut.result())
        finally:
            stop.set()
            pumper.join(timeout=5)
            for v, val in saved.items():
                if val is None:
                    os.environ.pop(v, None)
                else:
                    os.environ[v] = val
    report.rendered.sort()
    report.skipped.sort()
    report.elapsed = time.perf_counter() - t0
    return report
