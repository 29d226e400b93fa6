"""OpenCue jobs: a PyOutline ``Outline`` with one layer per shot step, and its Cuebot job spec (XML).

Each step becomes a :class:`outline.modules.shell.Shell` layer with the step's frame range and chunk
size; its command renders ``#FRAME_START#-#FRAME_END#`` (OpenCue replaces the tokens per chunk). A comp
layer depends on its shot's plate-prep layer as a whole (``LAYER_ON_LAYER``: a comp frame may read
neighbouring prep frames through a temporal window).

The job spec is produced by PyOutline's own serialiser (``outline.backend.cue.serialize_simple``), which
needs no Cuebot: ``composite farm export --engine opencue -o job.xml`` writes it, and ``cuebot``
(or ``pycuerun``/the OpenCue REST gateway) launches it. Nothing is written to PyOutline's session folder.
"""

from __future__ import annotations

import os
import re
import shlex
from pathlib import Path
from typing import Any

from ..core.errors import InputError
from ..io.atomic import write_text_atomic
from .plan import FarmJob, FarmStep

FRAME_TOKEN = "#FRAME_START#-#FRAME_END#"
_LAYER = re.compile(r"[^A-Za-z0-9_.-]+")


def _import_outline():
    import logging

    for name in ("outline", "opencue"):  # their INFO chatter is not ours to show
        logging.getLogger(name).setLevel(logging.WARNING)
    try:
        import outline
        import outline.modules.shell
        from outline import cuerun
        from outline.backend import cue
        from outline.depend import DependType
    except ImportError as exc:  # pragma: no cover
        raise InputError("exporting OpenCue jobs needs opencue-pyoutline (pip install 'composite[farm]'): "
                         f"{exc}") from exc
    return outline, outline.modules.shell, cuerun, cue, DependType


def step_command(step: FarmStep, *, python: str | None = None, env_setup: str = "") -> str:
    """The shell command of a step's layer (frames as OpenCue chunk tokens)."""
    argv = step.command(FRAME_TOKEN, python=python)
    cmd = shlex.join(argv)
    if env_setup.strip():
        cmd = shlex.join(["bash", "-c", f"{env_setup.strip()}\nexec {cmd}"])
    return cmd


def build_outline(job: FarmJob, *, show: str = "testing", user: str | None = None, python: str | None = None,
                  env_setup: str = "", service: str = "shell", cores: float | None = None,
                  memory: str | None = None, tags: str | None = None):
    """The PyOutline ``Outline`` of ``job`` (one Shell layer per step, prep → comp dependencies)."""
    outline, shell, _, _, depend_type = _import_outline()
    user = user or os.environ.get("USER") or "composite"
    shots = job.shots
    ol = outline.Outline(job.name, shot=shots[0] if len(shots) == 1 else job.name, show=show, user=user)
    layers = {}
    for step in job.steps:
        args: dict[str, Any] = {"command": step_command(step, python=python, env_setup=env_setup),
                                "range": step.frame_range, "chunk": step.chunk_size, "service": service}
        if cores:
            args["cores"] = float(cores)
        if memory:
            args["memory"] = memory
        if tags:
            args["tags"] = tags
        layer = shell.Shell(_LAYER.sub("_", step.name), **args)
        layer.set_env("COMPOSITE_SHOT", step.shot)
        layer.set_env("PYTHONUNBUFFERED", "1")
        for dep in step.depends_on:
            layer.depend_on(layers[dep], depend_type.LayerOnLayer)
        ol.add_layer(layer)
        layers[step.name] = layer
    return ol


def job_spec(job: FarmJob, *, maxretries: int = 3, priority: int = 1, **options: Any) -> str:
    """The Cuebot job specification (XML, ``cjsl`` DTD) of ``job``, serialised without a Cuebot.

    ``maxretries``: times Cuebot retries a failed chunk (a chunk is idempotent, so retrying is safe).
    Other options go to :func:`build_outline`.
    """
    _, _, cuerun, cue, _ = _import_outline()
    ol = build_outline(job, **options)
    launcher = cuerun.OutlineLauncher(ol, nomail=True, maxretries=int(maxretries), priority=int(priority))
    return cue.serialize_simple(launcher)


def write_job(job: FarmJob, path: str | os.PathLike, **options: Any) -> Path:
    """Write the job spec of ``job`` to ``path`` (PyOutline's XML as serialised), atomically."""
    return write_text_atomic(path, job_spec(job, **options) + "\n")
