"""A simulated render farm: local worker processes that get killed, and a scheduler that retries.

:func:`simulate_farm` runs a :class:`~composite.farm.plan.FarmJob` the way a farm does — every chunk
is a separate ``python -m composite render RECIPE --frames A-B --set ...`` process (the same command
the Open Job Description and OpenCue exports run), ``workers`` at a time, steps after the steps they
depend on — and, seeded, SIGKILLs some of them while they render a frame (after a ``frame N started``
log line, before its ``finished``). A killed chunk is put back in the queue and retried, as Deadline or
Cuebot would. It proves on one machine that a farm's failures leave no half-written frame and that
retries finish the job with the same pixels as a clean render.
"""

from __future__ import annotations

import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..graph.executor import format_frames
from ..io.atomic import TEMP_MARKER
from .plan import FarmJob


@dataclass
class SimulationReport:
    """What happened on the simulated farm."""

    tasks: int = 0
    launched: int = 0
    kills: int = 0
    failures: int = 0
    completed: int = 0
    gave_up: list[str] = field(default_factory=list)
    elapsed: float = 0.0
    #: temporary files of killed processes that a retried chunk removed
    stale_removed: int = 0
    #: kills that hit a process while it had a temporary output file open
    kills_mid_write: int = 0
    kills_by_task: dict[str, int] = field(default_factory=dict)
    logs: dict[str, list[str]] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.completed == self.tasks and not self.gave_up

    def to_dict(self) -> dict[str, Any]:
        return {"tasks": self.tasks, "processes_launched": self.launched, "kills": self.kills,
                "other_failures": self.failures, "completed": self.completed, "gave_up": list(self.gave_up),
                "kills_mid_write": self.kills_mid_write, "stale_temp_files_removed": self.stale_removed,
                "elapsed_s": round(self.elapsed, 2), "ok": self.ok}


@dataclass
class _Task:
    key: str
    step: str
    after: tuple[str, ...]
    argv: list[str]
    frames: int = 1
    folders: tuple[str, ...] = ()
    attempts: int = 0
    kills: int = 0


@dataclass
class _Running:
    task: _Task
    proc: subprocess.Popen
    log_path: Path
    kill_at_frame: int | None
    delay: float
    mode: str = "frame"
    folders: tuple[str, ...] = ()
    seen_start: float | None = None


_FRAME_STARTED = re.compile(r"^composite: frame -?\d+ started$", re.M)


def _started_frames(log_path: Path) -> int:
    """How many ``composite: frame N started`` lines a task has logged so far."""
    try:
        text = log_path.read_text(errors="replace")
    except OSError:
        return 0
    return len(_FRAME_STARTED.findall(text))


def _writing(folders: tuple[str, ...], pid: int) -> bool:
    """Whether process ``pid`` has a temporary output file open in one of ``folders`` (it is writing a frame)."""
    marker = f"{TEMP_MARKER}{pid}-"
    for folder in folders:
        try:
            if any(marker in name for name in os.listdir(folder)):
                return True
        except OSError:
            continue
    return False


def simulate_farm(job: FarmJob, *, workers: int = 2, kill_probability: float = 0.5, max_kills: int | None = None,
                  write_kills: float = 0.5, max_attempts: int = 10, seed: int = 0, python: str | None = None,
                  timeout: float = 300.0,
                  log_dir: str | os.PathLike | None = None, env: dict[str, str] | None = None) -> SimulationReport:
    """Run ``job`` on a simulated farm of ``workers`` slots that SIGKILLs chunks mid-frame.

    Parameters
    ----------
    kill_probability : float
        Chance that a launched chunk process is killed: at a random frame it renders, a few milliseconds
        after the frame started, or (with probability ``write_kills``) while it writes an output file.
    max_kills : int or None
        Stop killing after this many kills (bounds the run time).
    max_attempts : int
        Tries per chunk before the farm gives up on it (kills included).
    seed : int
        Seeds which launches are killed, at which frame and after what delay.
    """
    rng = random.Random(seed)
    report = SimulationReport()
    tasks = []
    for step in job.steps:
        for chunk in step.chunks():
            frames = format_frames(chunk)
            tasks.append(_Task(f"{step.name}:{frames}", step.name, tuple(step.depends_on),
                               step.command(frames, python=python), len(chunk),
                               tuple(sorted({os.path.dirname(o) for o in step.outputs}))))
    report.tasks = len(tasks)
    left = {s.name: len(s.chunks()) for s in job.steps}
    queue = list(tasks)
    running: list[_Running] = []
    own_dir = log_dir is None
    folder = Path(tempfile.mkdtemp(prefix="composite-farm-")) if own_dir else Path(log_dir)
    folder.mkdir(parents=True, exist_ok=True)
    child_env = dict(os.environ)
    child_env.update({"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
                      "PYTHONUNBUFFERED": "1"})
    child_env.update(env or {})
    t0 = time.monotonic()
    serial = 0
    try:
        while queue or running:
            if time.monotonic() - t0 > timeout:
                report.gave_up += [t.key for t in queue] + [r.task.key for r in running]
                break
            # launch ready tasks on free slots
            for task in list(queue):
                if len(running) >= workers:
                    break
                if any(left.get(s, 0) > 0 for s in task.after):
                    continue
                queue.remove(task)
                task.attempts += 1
                serial += 1
                log_path = folder / f"{serial:05d}.log"
                kill = rng.random() < kill_probability and (max_kills is None or report.kills < max_kills)
                kill_at = rng.randint(1, task.frames) if kill else None
                delay = rng.uniform(0.0, 0.03)
                mode = "write" if kill and rng.random() < write_kills else "frame"
                fh = open(log_path, "w")
                proc = subprocess.Popen(task.argv, stdout=fh, stderr=subprocess.STDOUT, env=child_env,
                                        start_new_session=True)
                fh.close()
                running.append(_Running(task, proc, log_path, kill_at, delay, mode, task.folders))
                report.launched += 1
            time.sleep(0.005)
            for r in list(running):
                code = r.proc.poll()
                if code is None and r.kill_at_frame is not None:
                    if r.mode == "write":
                        fire = _writing(r.folders, r.proc.pid)
                    else:
                        if r.seen_start is None and _started_frames(r.log_path) >= r.kill_at_frame:
                            r.seen_start = time.monotonic()
                        fire = r.seen_start is not None and time.monotonic() - r.seen_start >= r.delay
                    if fire:
                        os.kill(r.proc.pid, signal.SIGKILL)
                        r.proc.wait()
                        code = r.proc.returncode
                        if r.mode == "write":
                            report.kills_mid_write += 1
                if code is None:
                    continue
                running.remove(r)
                lines = r.log_path.read_text(errors="replace").splitlines()
                report.stale_removed += sum("removed stale temporary file" in line for line in lines)
                report.logs.setdefault(r.task.key, []).append("\n".join(lines[-20:]))
                if code == 0:
                    report.completed += 1
                    left[r.task.step] -= 1
                    continue
                if code == -signal.SIGKILL:
                    report.kills += 1
                    r.task.kills += 1
                    report.kills_by_task[r.task.key] = r.task.kills
                else:
                    report.failures += 1
                if r.task.attempts >= max_attempts or code == 2:  # bad input: retrying will not help
                    report.gave_up.append(r.task.key)
                else:
                    queue.insert(0, r.task)
            if report.gave_up:
                blocked = {k.split(":", 1)[0] for k in report.gave_up}
                for task in list(queue):
                    if any(s in blocked for s in task.after) or task.step in blocked:
                        queue.remove(task)
                        report.gave_up.append(task.key)
    finally:
        for r in running:
            if r.proc.poll() is None:
                os.kill(r.proc.pid, signal.SIGKILL)
                r.proc.wait()
        if own_dir:
            shutil.rmtree(folder, ignore_errors=True)
    report.elapsed = time.monotonic() - t0
    return report


def main(argv: list[str] | None = None) -> int:  # pragma: no cover - a thin command-line wrapper
    import argparse
    import json

    from .plan import plan_job

    ap = argparse.ArgumentParser(prog="python -m composite.farm.simulate",
                                 description="render a recipe or timeline on a simulated farm that kills workers")
    ap.add_argument("recipe")
    ap.add_argument("--timeline")
    ap.add_argument("--frames")
    ap.add_argument("--chunk-size", type=int, default=5)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--kill-probability", type=float, default=0.5)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    job = plan_job(args.recipe, frames=args.frames, chunk_size=args.chunk_size, timeline=args.timeline)
    rep = simulate_farm(job, workers=args.workers, kill_probability=args.kill_probability, seed=args.seed,
                        python=sys.executable)
    print(json.dumps(rep.to_dict(), indent=2))
    return 0 if rep.ok else 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
