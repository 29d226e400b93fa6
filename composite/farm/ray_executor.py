"""Ray executor: chunks (and whole shots of a timeline) over a Ray cluster, one actor per worker.

``composite render RECIPE --executor ray [--address ADDR] [--workers N]`` and
``render_job(job, executor="ray")`` use it. Each actor keeps a
:class:`~composite.graph.executor.ChunkRenderer`: pipelines are cached by recipe fingerprint and stage
instances shared between shots when their parameters agree, so models load once per actor, not once per
chunk or frame. Chunks start with cold frame caches, so output files are bit-identical to the local
executor's.

Without ``address`` a local Ray instance is started (``num_cpus`` = workers, no dashboard) and shut down
when the process exits; ``address="auto"`` or ``"HOST:PORT"`` joins a running cluster. Actors are kept
between renders of one process (a timeline rendered shot by shot reuses them); an executor asking for
another number of workers replaces them (actors keep their CPUs reserved while they live);
:func:`shutdown` releases them. A chunk whose actor dies is retried on a restarted actor (``max_restarts``).
"""

from __future__ import annotations

import atexit
import os
import sys
import threading
from typing import Any

from ..core.errors import InputError, RenderError
from ..graph.executor import ChunkRenderer, ChunkTask, Executor, RenderReport, limit_threads, tag_events

_lock = threading.Lock()
_state: dict[str, Any] = {"started": False, "pools": {}}


def _ray():
    try:
        import ray
    except ImportError as exc:  # pragma: no cover
        raise InputError("the ray executor needs ray (pip install 'composite[farm]')") from exc
    return ray


class _Worker:
    """The actor body: a long-lived chunk renderer with capped numeric threads."""

    def __init__(self, threads: int):
        limit_threads(threads)
        self.renderer = ChunkRenderer()
        self.pid = os.getpid()

    def render(self, task: ChunkTask) -> RenderReport:
        return self.renderer.render(task)

    def stats(self) -> dict[str, int]:
        return {"pid": self.pid, "pipelines_built": self.renderer.built}


def _connect(address: str | None, workers: int | None) -> None:
    ray = _ray()
    if ray.is_initialized():
        return
    options: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False,
                               "configure_logging": True, "logging_level": "ERROR"}
    if address:
        options["address"] = address
    else:
        options["num_cpus"] = max(int(workers or 1), os.cpu_count() or 1)
        # workers import the same modules as this process (stage plugins, test helpers)
        paths = [p for p in sys.path if p and os.path.isdir(p)]
        options["runtime_env"] = {"env_vars": {"PYTHONPATH": os.pathsep.join(paths)}}
    try:
        ray.init(**options)
    except ConnectionError as exc:
        raise InputError(f"cannot reach the Ray cluster at {address!r}: {exc}") from None
    _state["started"] = True


def _actors(workers: int | None, cpus_per_worker: float, max_restarts: int) -> list:
    ray = _ray()
    total = float(ray.cluster_resources().get("CPU", 1))
    if workers is None:
        workers = max(1, int(total // max(cpus_per_worker, 1e-6)))
    if workers * cpus_per_worker > total:
        # more actors than CPUs: share them, or the extra actors would wait for a CPU forever
        cpus_per_worker = round(total / workers, 4)
    key = (workers, cpus_per_worker, max_restarts)
    pool = _state["pools"].get(key)
    if pool:
        return pool
    _kill_actors()  # one pool at a time: actors keep their CPUs reserved while they live
    remote = ray.remote(num_cpus=cpus_per_worker, max_restarts=max_restarts, max_task_retries=max_restarts)(_Worker)
    threads = max(1, int(cpus_per_worker))
    pool = _state["pools"][key] = [remote.remote(threads) for _ in range(workers)]
    return pool


def _kill_actors() -> None:
    pools, _state["pools"] = _state["pools"], {}
    if not pools:
        return
    ray = _ray()
    for actors in pools.values():
        for actor in actors:
            try:
                ray.kill(actor)
            except Exception:
                pass


def shutdown() -> None:
    """Release the actors, and the Ray instance when this process started it."""
    with _lock:
        _kill_actors()
        if "ray" in sys.modules:
            ray = sys.modules["ray"]
            if _state["started"] and ray.is_initialized():
                ray.shutdown()
        _state["started"] = False


atexit.register(shutdown)


def _replay(report: RenderReport, task: ChunkTask, notify) -> None:
    """Frame events of a finished chunk, for the driver's progress and logs."""
    if notify is None:
        return
    from ..graph.executor import format_frames

    notify("chunk_started", task.frames[0], None, f"{format_frames(task.frames)} started on Ray "
                                                   f"({len(task.frames)} frames)")
    for w in report.warmup:
        notify("warmup", w)
    for t in task.frames:
        if t in report.frame_seconds:
            notify("finished", t, report.frame_seconds[t])
        elif t in report.skipped:
            notify("skipped", t)
    notify("chunk_finished", task.frames[0], report.elapsed,
           f"{format_frames(task.frames)} finished: {len(report.rendered)} rendered, {len(report.skipped)} "
           f"skipped in {report.elapsed:.3f} s")


class RayExecutor(Executor):
    """Chunk tasks on Ray actors (see the module docstring).

    Parameters
    ----------
    address : str or None
        Ray cluster address (``auto``, ``HOST:PORT``, ``ray://HOST:10001``); None starts a local instance.
    workers : int or None
        Actors (default: the cluster's CPUs divided by ``cpus_per_worker``).
    cpus_per_worker : float
        CPUs each actor reserves (its numeric libraries use that many threads).
    max_restarts : int
        Restarts of a dead actor, and retries of the chunk it was rendering.
    """

    name = "ray"

    def __init__(self, address: str | None = None, workers: int | None = None, *, cpus_per_worker: float = 1.0,
                 max_restarts: int = 3):
        if workers is not None and workers < 1:
            raise InputError(f"--workers must be at least 1, got {workers}")
        with _lock:
            _connect(address, workers)
            self.actors = list(_actors(workers, cpus_per_worker, max_restarts))
        self.slots = len(self.actors)
        self._idle = list(self.actors)
        self._busy: dict[Any, tuple[Any, ChunkTask]] = {}
        self._notify = None

    def run(self, tasks, *, notify=None, max_attempts=1, stop_on_failure=False):
        self._notify = notify
        return super().run(tasks, notify=notify, max_attempts=max_attempts, stop_on_failure=stop_on_failure)

    def _submit(self, task, notify):
        actor = self._idle.pop()
        ref = actor.render.remote(task)
        self._busy[ref] = (actor, task)
        return ref

    def _wait(self, handles):
        ray = _ray()
        ready, _ = ray.wait(handles, num_returns=1)
        out = []
        for ref in ready:
            actor, task = self._busy.pop(ref)
            self._idle.append(actor)
            try:
                report = ray.get(ref)
            except ray.exceptions.RayTaskError as exc:
                cause = getattr(exc, "cause", None)
                out.append((ref, cause if isinstance(cause, BaseException) else RenderError(str(exc))))
                continue
            except ray.exceptions.RayError as exc:  # actor died beyond its restarts, cluster lost ...
                out.append((ref, RenderError(f"Ray worker failed: {type(exc).__name__}: {exc}")))
                continue
            _replay(report, task, tag_events(self._notify, task.step))
            out.append((ref, report))
        return out

    def _cancel(self, handles):
        ray = _ray()
        for ref in handles:
            try:
                ray.cancel(ref)
            except Exception:
                pass
            actor, _ = self._busy.pop(ref, (None, None))
            if actor is not None:
                self._idle.append(actor)

    def worker_stats(self) -> list[dict[str, int]]:
        """Per actor: its process id and how many pipelines it built (models load per pipeline at most)."""
        ray = _ray()
        return ray.get([a.stats.remote() for a in self.actors])

    def close(self) -> None:
        """Actors stay up for the next render of this process; :func:`shutdown` releases them."""
