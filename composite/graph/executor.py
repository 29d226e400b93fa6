"""Rendering: frame ranges, chunks, worker processes, skip-if-up-to-date, warm-up, progress and logs.

``render(pipeline, "1001-1100", chunk_size=10, workers=2)`` renders every output stage of the pipeline
over the frames. Chunks are rendered independently (each with its own cache), so rendering a range in
one process or as chunks in separate processes gives bit-identical files. A frame whose output already
exists with the same fingerprint is skipped unless ``force``: re-running a finished chunk does no work,
and a chunk killed halfway resumes at the first unfinished frame. Temporary files left by a killed
process (``.NAME.partial-PID-XXXX.ext``) are removed when the chunk that owns those frames runs again.

Stages that keep state between frames declare ``warmup_frames``; before the first frame it renders (and
after any gap) a chunk evaluates that many preceding frames through the graph without writing them.

Chunks are handed to an *executor* (``executor="local"`` worker processes, ``"ray"`` a Ray cluster, or
any object with the :class:`Executor` interface); executors are looked up by name in
:data:`EXECUTORS` and in the ``composite.executors`` entry-point group.

Log lines (one per event, stable wording for farm log parsers; all on stderr)::

    composite: chunk 1001-1010 started (10 frames, up to 2 warm-up frames)
    composite: removed stale temporary file renders/.sh010.1003.partial-4242-1a2b3c4d.exr
    composite: frame 999 warm-up (not written)
    composite: frame 1001 started
    composite: frame 1001 finished in 0.412 s (1/10, 10.0%)
    composite: frame 1002 skipped, up to date (2/10, 20.0%)
    composite: chunk 1001-1010 finished: 9 rendered, 1 skipped in 4.120 s

With ``COMPOSITE_PROGRESS_PROTOCOL=openjd`` in the environment (the Open Job Description templates that
``composite farm export`` writes set it) progress is also reported on stdout as ``openjd_progress: 10.0``
and ``openjd_status: frame 1001 finished``, which Deadline Cloud shows as task progress.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import json
import logging
import multiprocessing as mp
import os
import sys
import threading
import time
from collections import Counter, OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor
from concurrent.futures import wait as wait_futures
from dataclasses import dataclass, field
from typing import Any

import fileseq

from ..core.errors import CompositeError, InputError, RecipeError, RenderError
from .pipeline import Pipeline

log = logging.getLogger("composite.render")

_THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS",
                "VECLIB_MAXIMUM_THREADS", "NUMBA_NUM_THREADS")

#: Environment variable selecting an extra progress protocol on stdout (``openjd``).
PROGRESS_PROTOCOL_ENV = "COMPOSITE_PROGRESS_PROTOCOL"

Notify = Callable[..., None]


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


def format_frames(frames: Iterable[int]) -> str:
    """``[1001, 1002, 1003, 1007]`` → ``"1001-1003,1007"`` (the form ``--frames`` reads)."""
    frames = sorted(set(int(f) for f in frames))
    return str(fileseq.FrameSet(frames)) if frames else ""


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
    warmup: list[int] = field(default_factory=list)
    removed_temp: list[str] = field(default_factory=list)

    @property
    def fps(self) -> float:
        return len(self.rendered) / self.elapsed if self.elapsed > 0 else 0.0

    def merge(self, other: RenderReport) -> None:
        self.rendered += other.rendered
        self.skipped += other.skipped
        self.written += other.written
        self.warmup += other.warmup
        self.removed_temp += other.removed_temp
        self.frame_seconds.update(other.frame_seconds)

    def summary(self) -> str:
        return (f"{len(self.rendered)} frame(s) rendered, {len(self.skipped)} skipped (up to date) "
                f"in {self.elapsed:.2f} s ({self.fps:.2f} frames/s)")


class _Progress:
    """A progress bar on a terminal, plain log lines otherwise (plus an optional stdout protocol)."""

    def __init__(self, total: int, enabled: bool | None = None, protocol: str | None = None):
        self.total = max(total, 1)
        self.done = 0
        self.counted: set[tuple] = set()  # (step, frame) already counted: a retried chunk reports them again
        self.start = time.perf_counter()
        self.tty = sys.stderr.isatty() if enabled is None else enabled
        self.protocol = (protocol if protocol is not None else os.environ.get(PROGRESS_PROTOCOL_ENV, "")).lower()
        self.lock = threading.Lock()

    def _status(self, pct: float | None, text: str) -> None:
        if self.protocol == "openjd":
            if pct is not None:
                print(f"openjd_progress: {pct:.1f}", flush=True)
            print(f"openjd_status: {text}", flush=True)

    def event(self, kind: str, frame: int, seconds: float | None = None, detail: str | None = None,
              step: str | None = None) -> None:
        with self.lock:
            if kind in ("chunk_started", "chunk_finished"):
                log.info("composite: chunk %s", detail or frame)
                return
            if kind == "warmup":
                log.info("composite: frame %d warm-up (not written)", frame)
                return
            if kind == "removed":
                log.info("composite: removed stale temporary file %s", detail)
                return
            if kind == "started":
                if not self.tty:
                    log.info("composite: frame %d started", frame)
                return
            if (step, frame) not in self.counted:
                self.counted.add((step, frame))
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
            self._status(pct, f"frame {frame} {'finished' if kind == 'finished' else 'skipped, up to date'}")


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


# -- warm-up and stale temporary files -----------------------------------------------------------

def warmup_frames(pipeline: Pipeline, outputs: Sequence[str]) -> int:
    """The largest ``warmup_frames`` of the stages the ``outputs`` depend on."""
    seen: set[str] = set()
    stack = list(outputs)
    most = 0
    while stack:
        name = stack.pop()
        if name in seen or name not in pipeline.nodes:
            continue
        seen.add(name)
        node = pipeline.nodes[name]
        most = max(most, int(getattr(node.stage, "warmup_frames", 0) or 0))
        stack.extend(ref.node for ref in node.inputs.values())
    return most


def _pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def remove_stale_temp_files(paths: Iterable[str]) -> list[str]:
    """Delete temporary files (``.NAME.partial-PID-XXXX.ext``) of ``paths`` left by dead processes.

    A temporary file whose process is still alive on this machine is kept (it may still be renaming it
    into place). Returns the removed paths.
    """
    from ..io.atomic import TEMP_MARKER

    by_dir: dict[str, set[str]] = {}
    for p in paths:
        folder, name = os.path.split(os.path.abspath(p))
        stem, ext = os.path.splitext(name)
        by_dir.setdefault(folder, set()).add(f".{stem}{TEMP_MARKER}|{ext}")
    removed = []
    for folder, keys in by_dir.items():
        try:
            entries = os.listdir(folder)
        except OSError:
            continue
        for entry in entries:
            if not entry.startswith(".") or TEMP_MARKER not in entry:
                continue
            head, _, rest = entry.partition(TEMP_MARKER)
            pid_text, _, tail = rest.partition("-")
            ext = os.path.splitext(tail)[1]
            if f"{head}{TEMP_MARKER}|{ext}" not in keys:
                continue
            try:
                pid = int(pid_text)
            except ValueError:
                continue
            if _pid_alive(pid):
                continue
            full = os.path.join(folder, entry)
            with contextlib.suppress(FileNotFoundError):
                os.unlink(full)
                removed.append(full)
    return removed


# -- rendering in this process -------------------------------------------------------------------

def render_frames(pipeline: Pipeline, frames: Iterable[int], *, force: bool = False,
                  outputs: list[str] | None = None, notify: Notify | None = None) -> RenderReport:
    """Render ``frames`` of the pipeline's output stages in this process, in order (one chunk).

    Frames whose outputs are up to date are skipped; stale temporary files of these frames left by dead
    processes are removed first; stages with ``warmup_frames`` see the frames before each contiguous run
    of rendered frames (evaluated, not written).
    """
    frames = list(frames)
    outputs = outputs or pipeline.output_nodes()
    if not outputs:
        raise RecipeError("the pipeline has no output stage (add a writer such as WriteImage)",
                          source=pipeline.source, key="stages")
    report = RenderReport(frames=frames)
    t0 = time.perf_counter()
    stages = [pipeline.nodes[o].stage for o in outputs]
    warm = warmup_frames(pipeline, outputs)
    label = format_frames(frames)
    if notify:
        extra = f", up to {_plural(warm, 'warm-up frame')}" if warm else ""
        notify("chunk_started", frames[0] if frames else 0, None,
               f"{label} started ({_plural(len(frames), 'frame')}{extra})")
    paths = [p for st in stages for t in frames for p in st.output_paths(t)] if frames else []
    for removed in remove_stale_temp_files(paths):
        report.removed_temp.append(removed)
        if notify:
            notify("removed", 0, None, removed)
    for st in stages:
        st.begin(frames)
    lo = None
    if warm:
        rngs = [pipeline.frame_range(o) for o in outputs]
        lows = [r[0] for r in rngs if r is not None]
        lo = max(lows) if lows else None
    previous: int | None = None
    try:
        for t in frames:
            fps = {o: pipeline.fingerprint(o, t) for o in outputs}
            todo = [o for o in outputs if force or pipeline.nodes[o].stage.existing_fingerprint(t) != fps[o]]
            if not todo:
                report.skipped.append(t)
                if notify:
                    notify("skipped", t)
                continue
            if warm and previous != t - 1:
                start = t - warm if lo is None else max(lo, t - warm)
                for w in range(start, t):
                    if notify:
                        notify("warmup", w)
                    for o in todo:
                        pipeline.gather_inputs(o, w)
                    report.warmup.append(w)
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
            previous = t
            dt = time.perf_counter() - ft
            report.rendered.append(t)
            report.frame_seconds[t] = dt
            if notify:
                notify("finished", t, dt)
    except BaseException as exc:  # record what this chunk finished before failing (farm summaries)
        exc.rendered_frames = list(report.rendered)
        exc.skipped_frames = list(report.skipped)
        raise
    for st in stages:
        report.written += st.finish(frames)
    report.elapsed = time.perf_counter() - t0
    if notify:
        notify("chunk_finished", frames[0] if frames else 0, report.elapsed,
               f"{label} finished: {len(report.rendered)} rendered, {len(report.skipped)} skipped"
               f" in {report.elapsed:.3f} s")
    return report


# -- chunk tasks ---------------------------------------------------------------------------------

def recipe_fingerprint(recipe: Mapping[str, Any], source: str = "") -> str:
    """A digest of a resolved recipe (and the file it came from): equal recipes build equal pipelines."""
    text = json.dumps(recipe, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(f"{source}|{text}".encode()).hexdigest()


@dataclass(frozen=True)
class ChunkTask:
    """One unit of farm work: render ``frames`` of a resolved recipe.

    ``step`` names the job step (a shot's comp, a shot's plate prep) the chunk belongs to; ``after``
    names the steps whose every chunk must have finished before this one starts. ``modules`` are
    imported by the worker before it builds the pipeline (stage types defined outside composite).
    """

    step: str
    recipe: Mapping[str, Any]
    frames: tuple[int, ...]
    source: str = "<recipe>"
    force: bool = False
    after: tuple[str, ...] = ()
    modules: tuple[str, ...] = ()

    @property
    def key(self) -> str:
        return f"{self.step}:{format_frames(self.frames)}"


@dataclass
class ChunkResult:
    """What became of a :class:`ChunkTask`: ``done``, ``failed`` or ``blocked`` (a step it waits for failed).

    A failed chunk's ``report`` lists the frames it finished before the failure.
    """

    task: ChunkTask
    status: str
    report: RenderReport | None = None
    error: str | None = None
    exit_code: int = 0
    attempts: int = 0
    exception: BaseException | None = field(default=None, repr=False, compare=False)


#: Stage instances are shared between pipelines of one worker when type, parameters, node name, rate
#: and working space agree (so a model loads once per worker, not once per shot). Sources and stages
#: with warm-up state are never shared.
_SHARED_STAGES_MAX = 64


class ChunkRenderer:
    """Renders :class:`ChunkTask` s in this process, keeping pipelines (and their loaded models) alive.

    Pipelines are cached by :func:`recipe_fingerprint`; each chunk starts with cold frame caches, as a
    farm task does, so results do not depend on which chunks a worker rendered before.
    """

    def __init__(self, max_pipelines: int = 8):
        self.max_pipelines = max(1, max_pipelines)
        self._pipelines: OrderedDict[str, Pipeline] = OrderedDict()
        self._stages: OrderedDict[tuple, Any] = OrderedDict()
        self.built = 0

    def pipeline(self, task: ChunkTask) -> Pipeline:
        from .recipe import pipeline_from_recipe

        for module in task.modules:
            importlib.import_module(module)
        key = recipe_fingerprint(task.recipe, task.source)
        p = self._pipelines.get(key)
        if p is None:
            p = pipeline_from_recipe(task.recipe, source=task.source)
            self._share_stages(p)
            self.built += 1
            self._pipelines[key] = p
            while len(self._pipelines) > self.max_pipelines:
                self._pipelines.popitem(last=False)
        else:
            self._pipelines.move_to_end(key)
        p._reset_caches()
        return p

    def _share_stages(self, p: Pipeline) -> None:
        for name, node in p.nodes.items():
            st = node.stage
            if st.is_source or st.is_output or getattr(st, "warmup_frames", 0):
                continue
            key = (name, type(st).__module__, type(st).__qualname__, st.version, st.canonical_params(),
                   st.rate, st.working_space)
            shared = self._stages.get(key)
            if shared is None:
                self._stages[key] = st
                while len(self._stages) > _SHARED_STAGES_MAX:
                    self._stages.popitem(last=False)
            else:
                node.stage = shared
                self._stages.move_to_end(key)
        p._reset_caches()

    def render(self, task: ChunkTask, notify: Notify | None = None) -> RenderReport:
        return render_frames(self.pipeline(task), task.frames, force=task.force, notify=notify)


def tag_events(notify: Notify | None, step: str) -> Notify | None:
    """``notify`` with the step name added to each event (progress counts frames per step)."""
    if notify is None:
        return None

    def tagged(kind, t, seconds=None, detail=None, step_name=step):
        notify(kind, t, seconds, detail, step_name)

    return tagged


def _error_text(exc: BaseException) -> str:
    if isinstance(exc, CompositeError):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"


def _exit_code(exc: BaseException) -> int:
    return int(getattr(exc, "exit_code", 1) or 1)


class Executor:
    """Runs chunk tasks, honouring step dependencies, with retries.

    Subclasses provide ``slots`` (tasks in flight at once), :meth:`_submit` (start a task, return a
    handle) and :meth:`_wait` (block until at least one handle finishes; return ``(handle, report or
    exception)`` pairs). :meth:`run` does the scheduling.
    """

    name = "base"
    slots = 1

    def run(self, tasks: Sequence[ChunkTask], *, notify: Notify | None = None, max_attempts: int = 1,
            stop_on_failure: bool = False) -> list[ChunkResult]:
        """Run ``tasks``; a failed task is retried up to ``max_attempts`` in all. Returns one result per task.

        Tasks whose ``after`` steps failed are reported ``blocked``. With ``stop_on_failure`` nothing new
        starts after the first failure (the rest is reported ``blocked``).
        """
        tasks = list(tasks)
        left = Counter(t.step for t in tasks)
        failed_steps: set[str] = set()
        waiting = list(range(len(tasks)))
        attempts = [0] * len(tasks)
        results: dict[int, ChunkResult] = {}
        pending: dict[Any, int] = {}
        stop = False
        try:
            while waiting or pending:
                for i in list(waiting):
                    task = tasks[i]
                    bad = [s for s in task.after if s in failed_steps]
                    if bad or stop:
                        why = f"step {bad[0]} failed" if bad else "the render stopped after a failure"
                        results[i] = ChunkResult(task, "blocked", error=why, exit_code=1)
                        waiting.remove(i)
                        failed_steps.add(task.step)
                        continue
                    if any(left.get(s, 0) for s in task.after) or len(pending) >= self.slots:
                        continue
                    attempts[i] += 1
                    pending[self._submit(task, tag_events(notify, task.step))] = i
                    waiting.remove(i)
                if not pending:
                    if waiting:  # only tasks waiting on steps that can never finish
                        for i in waiting:
                            results[i] = ChunkResult(tasks[i], "blocked", error="dependency cycle", exit_code=1)
                        waiting = []
                    break
                for handle, outcome in self._wait(list(pending)):
                    i = pending.pop(handle)
                    task = tasks[i]
                    if isinstance(outcome, BaseException):
                        retry = attempts[i] < max_attempts and not isinstance(outcome, InputError)
                        if retry:
                            log.warning("composite: chunk %s failed (attempt %d of %d): %s; retrying", task.key,
                                        attempts[i], max_attempts, _error_text(outcome))
                            waiting.insert(0, i)
                            continue
                        partial = RenderReport(frames=list(task.frames),
                                               rendered=list(getattr(outcome, "rendered_frames", [])),
                                               skipped=list(getattr(outcome, "skipped_frames", [])))
                        results[i] = ChunkResult(task, "failed", report=partial, error=_error_text(outcome),
                                                 exit_code=_exit_code(outcome), attempts=attempts[i],
                                                 exception=outcome)
                        failed_steps.add(task.step)
                        if stop_on_failure:
                            stop = True
                    else:
                        results[i] = ChunkResult(task, "done", report=outcome, attempts=attempts[i])
                    left[task.step] -= 1
        finally:
            if pending:
                self._cancel(list(pending))
        return [results[i] for i in range(len(tasks))]

    def _submit(self, task: ChunkTask, notify: Notify | None) -> Any:
        raise NotImplementedError

    def _wait(self, handles: list[Any]) -> list[tuple[Any, Any]]:
        raise NotImplementedError

    def _cancel(self, handles: list[Any]) -> None:
        """Abandon handles still running when :meth:`run` exits early."""

    def close(self) -> None:
        """Release workers."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class InProcessExecutor(Executor):
    """Renders tasks one after another in this process (workers = 1)."""

    name = "inprocess"

    def __init__(self, renderer: ChunkRenderer | None = None):
        self.renderer = renderer or ChunkRenderer()
        self._done: list[tuple[Any, Any]] = []
        self._count = 0

    def _submit(self, task, notify):
        self._count += 1
        try:
            outcome = self.renderer.render(task, notify=notify)
        except Exception as exc:  # reported through run()
            outcome = exc
        self._done.append((self._count, outcome))
        return self._count

    def _wait(self, handles):
        done, self._done = self._done, []
        return done


# -- worker processes ----------------------------------------------------------------------------

_worker_queue = None
_worker_renderer: ChunkRenderer | None = None


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


def _queue_notify(kind, t, seconds=None, detail=None, step=None):
    if _worker_queue is not None:
        _worker_queue.put((kind, t, seconds, detail, step))


def _render_task(task: ChunkTask) -> RenderReport:
    global _worker_renderer
    if _worker_renderer is None:
        _worker_renderer = ChunkRenderer()
    return _worker_renderer.render(task, notify=tag_events(_queue_notify, task.step))


class LocalExecutor(Executor):
    """Worker processes on this machine (``spawn``), each with ``cpu_count // workers`` numeric threads.

    Each worker keeps its pipelines between chunks (:class:`ChunkRenderer`), so models load once per
    worker. Frame events stream back to ``notify`` as they happen.
    """

    name = "local"

    def __init__(self, workers: int = 2, *, threads: int | None = None):
        if workers < 1:
            raise InputError(f"--workers must be at least 1, got {workers}")
        self.slots = workers
        self.threads = threads or max(1, (os.cpu_count() or 1) // workers)
        self._pool: ProcessPoolExecutor | None = None
        self._queue = None
        self._pump: threading.Thread | None = None
        self._stop = threading.Event()
        self._notify: Notify | None = None
        self._saved_env: dict[str, str | None] = {}

    def _start(self) -> None:
        if self._pool is not None:
            return
        ctx = mp.get_context("spawn")
        self._queue = ctx.Queue()
        self._saved_env = {v: os.environ.get(v) for v in _THREAD_VARS}
        for v in _THREAD_VARS:  # children read these at import time
            os.environ[v] = str(self.threads)
        self._pool = ProcessPoolExecutor(max_workers=self.slots, mp_context=ctx, initializer=_init_worker,
                                         initargs=(self.threads, self._queue))
        self._stop.clear()
        self._pump = threading.Thread(target=self._pump_events, daemon=True)
        self._pump.start()

    def _pump_events(self) -> None:
        while not self._stop.is_set() or not self._queue.empty():
            try:
                event = self._queue.get(timeout=0.1)
            except Exception:
                continue
            if self._notify:
                self._notify(*event)

    def run(self, tasks, *, notify=None, max_attempts=1, stop_on_failure=False):
        self._notify = notify
        return super().run(tasks, notify=notify, max_attempts=max_attempts, stop_on_failure=stop_on_failure)

    def _submit(self, task, notify):
        self._start()
        try:
            return self._pool.submit(_render_task, task)
        except Exception:  # a broken pool (a worker was killed): start a fresh one
            self._shutdown_pool()
            self._start()
            return self._pool.submit(_render_task, task)

    def _wait(self, handles):
        done, _ = wait_futures(handles, return_when=FIRST_COMPLETED)
        out = []
        for fut in done:
            exc = fut.exception()
            out.append((fut, exc if exc is not None else fut.result()))
        return out

    def _cancel(self, handles):
        for fut in handles:
            fut.cancel()

    def _shutdown_pool(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def close(self) -> None:
        self._shutdown_pool()
        self._stop.set()
        if self._pump is not None:
            self._pump.join(timeout=5)
            self._pump = None
        for v, val in self._saved_env.items():
            if val is None:
                os.environ.pop(v, None)
            else:
                os.environ[v] = val
        self._saved_env = {}


#: Executors by name: a class, or ``"module:attr"`` imported on first use.
EXECUTORS: dict[str, Any] = {
    "local": LocalExecutor,
    "ray": "composite.farm.ray_executor:RayExecutor",
}


def executor_names() -> list[str]:
    names = set(EXECUTORS)
    with contextlib.suppress(Exception):
        from importlib.metadata import entry_points

        names |= {ep.name for ep in entry_points(group="composite.executors")}
    return sorted(names)


def get_executor(name: str, **options: Any) -> Executor:
    """An executor by name (``local``, ``ray`` or a ``composite.executors`` entry point) with ``options``."""
    target = EXECUTORS.get(name)
    if target is None:
        from importlib.metadata import entry_points

        for ep in entry_points(group="composite.executors"):
            if ep.name == name:
                target = ep.load()
                break
    if target is None:
        raise InputError(f"unknown executor {name!r}; executors: {', '.join(executor_names())}")
    if isinstance(target, str):
        module, _, attr = target.partition(":")
        target = getattr(importlib.import_module(module), attr)
    return target(**options)


def stage_modules(pipeline: Pipeline) -> tuple[str, ...]:
    """Modules defining the pipeline's stage types (imported by workers before building it)."""
    return tuple(sorted({type(n.stage).__module__ for n in pipeline.nodes.values()
                         if not type(n.stage).__module__.startswith("composite.")}))


def raise_for_failures(results: Sequence[ChunkResult]) -> None:
    """Re-raise the first failure of a list of chunk results (keeping bad input as bad input)."""
    for res in results:
        if res.status == "failed":
            exc = res.exception
            if isinstance(exc, CompositeError):
                raise exc
            if exc is not None and res.exit_code == InputError.exit_code:
                raise InputError(f"chunk {res.task.key}: {res.error}") from exc
            raise RenderError(f"chunk {res.task.key} failed: {res.error}") from exc
    for res in results:
        if res.status == "blocked":
            raise RenderError(f"chunk {res.task.key} did not run: {res.error}")


def render(pipeline: Pipeline, frames: Any = None, *, chunk_size: int | None = None, workers: int = 1,
           force: bool = False, progress: bool | None = None, executor: str | Executor | None = None,
           address: str | None = None, max_attempts: int = 1) -> RenderReport:
    """Render the pipeline's output stages over ``frames``.

    Parameters
    ----------
    frames : str, int, list or TimeRange
        Defaults to the recipe's ``frames``.
    chunk_size : int or None
        Frames per chunk; each chunk is rendered independently (as a farm task would be).
    workers : int
        Worker processes for chunks (1: render in this process). Each worker's numeric libraries get
        ``cpu_count // workers`` threads so workers do not oversubscribe the machine. With the Ray
        executor: actors (default: one per CPU of the cluster).
    force : bool
        Re-render frames whose outputs are up to date.
    progress : bool or None
        Progress bar (True), log lines (False) or decide by whether stderr is a terminal (None).
    executor : str, Executor or None
        ``"local"`` (default), ``"ray"``, another registered name, or an :class:`Executor` instance.
    address : str or None
        Cluster address for executors that connect to one (``ray``: ``auto`` or ``HOST:PORT``; default:
        start a local cluster for this render).
    max_attempts : int
        Tries per chunk before the render fails (farm-style retries).
    """
    pipeline.validate()
    frame_list = parse_frames(frames, default=pipeline.frames)
    if workers < 1:
        raise InputError(f"--workers must be at least 1, got {workers}")
    chunks = split_chunks(frame_list, chunk_size)
    bar = _Progress(len(frame_list), progress)
    report = RenderReport(frames=frame_list)
    t0 = time.perf_counter()
    name = executor if isinstance(executor, str) else None
    if executor in (None, "local") and (workers == 1 or len(chunks) == 1):
        if address:
            raise InputError("--address needs a cluster executor (e.g. --executor ray)")
        for chunk in chunks:
            if chunk_size:
                pipeline._reset_caches()  # each chunk starts cold, as a farm task does
            report.merge(render_frames(pipeline, chunk, force=force, notify=bar.event))
    else:
        recipe = pipeline.to_recipe()
        modules = stage_modules(pipeline)
        tasks = [ChunkTask(pipeline.name, recipe, tuple(c), source=pipeline.source, force=force, modules=modules)
                 for c in chunks]
        if isinstance(executor, Executor):
            ex, own = executor, False
        elif name in (None, "local"):
            if address:
                raise InputError("--address needs a cluster executor (e.g. --executor ray)")
            ex, own = LocalExecutor(workers), True
        else:
            options: dict[str, Any] = {"address": address}
            if workers > 1:
                options["workers"] = workers
            ex, own = get_executor(name, **options), True
        try:
            results = ex.run(tasks, notify=bar.event, max_attempts=max_attempts, stop_on_failure=True)
        finally:
            if own:
                ex.close()
        raise_for_failures(results)
        for res in results:
            report.merge(res.report)
        # Outputs holding the whole range in one file (a review movie) were written by concurrent chunks,
        # each with only its own frames: complete them here in one pass (up-to-date frames are kept).
        whole = [n for n in pipeline.output_nodes() if getattr(pipeline.nodes[n].stage, "whole_range", False)]
        if whole and len(chunks) > 1:
            pipeline._reset_caches()
            report.written += render_frames(pipeline, frame_list, outputs=whole).written
    report.rendered.sort()
    report.skipped.sort()
    report.elapsed = time.perf_counter() - t0
    return report
