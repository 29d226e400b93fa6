"""Open Job Description job templates (specification ``jobtemplate-2023-09``) for AWS Deadline Cloud and
any other runtime of the specification (``openjd run`` runs them locally).

One step per shot (``SHOT``, or ``SHOT_prep`` then ``SHOT_comp`` depending on it). Each step's task
parameter ``Frame`` holds frame chunks: a ``CHUNK[INT]`` parameter of the ``TASK_CHUNKING`` extension
(contiguous chunks of ``ChunkSize`` frames; the scheduler may also adapt chunk sizes to a target
runtime), or, with ``chunking="list"``, a plain STRING parameter listing the chunks (no extension).
Every task runs ``python -m composite render RECIPE --frames CHUNK --set ...``.

Job parameters: ``Recipe`` (a PATH, so path-mapping rules apply; ``PrepRecipe`` too with a plate-prep
recipe), ``Python`` (interpreter on the
worker), ``EnvSetup`` (shell lines run once per session before any task, e.g. ``source
/studio/venvs/composite/bin/activate``; the environment they leave — PATH, VIRTUAL_ENV, PYTHONPATH ... —
is handed to the tasks), ``ChunkSize``; single-shot jobs also get ``Frames`` and ``Output``.

The job environment sets ``COMPOSITE_PROGRESS_PROTOCOL=openjd`` so tasks report ``openjd_progress``
and ``openjd_status`` lines.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import yaml

from ..core.errors import InputError
from ..graph.executor import PROGRESS_PROTOCOL_ENV
from ..io.atomic import write_text_atomic
from .plan import FarmJob, FarmStep

SPECIFICATION = "jobtemplate-2023-09"
CHUNKING_MODES = ("extension", "list")

_ENV_EXPORTS = ("PATH", "VIRTUAL_ENV", "PYTHONPATH", "LD_LIBRARY_PATH", "OCIO", "COMPOSITE_MODELS",
                "CONDA_PREFIX")


def openjd_range(frames: list[int]) -> str:
    """Frames as an Open Job Description range expression (``1001-1010,1020``)."""
    frames = sorted(set(frames))
    runs: list[tuple[int, int]] = []
    for f in frames:
        if runs and f == runs[-1][1] + 1:
            runs[-1] = (runs[-1][0], f)
        else:
            runs.append((f, f))
    return ",".join(f"{a}-{b}" if b > a else f"{a}" for a, b in runs)


def _check_text(value: str, what: str) -> str:
    if "{{" in value or "}}" in value:
        raise InputError(f"{what} {value!r} contains '{{{{' or '}}}}', which Open Job Description reads as a "
                         "format string; rename it")
    return value


def _path_param(name: str, description: str, value: str, flow: str, folder: str | os.PathLike | None,
                bundle: bool) -> dict[str, Any]:
    """A PATH parameter (default relative to the template folder, or none in a bundle), else a STRING one."""
    value = _check_text(value, f"{name} path")
    if bundle:
        return {"name": name, "type": "PATH", "objectType": "FILE", "dataFlow": flow, "description": description}
    base = os.path.abspath(folder or os.getcwd())
    try:
        rel = os.path.relpath(os.path.abspath(value), base)
    except ValueError:  # another drive
        rel = os.pardir
    if rel == os.pardir or rel.startswith(os.pardir + os.sep):
        return {"name": name, "type": "STRING", "description": description + " (absolute path)", "default": value,
                "minLength": 1}
    return {"name": name, "type": "PATH", "objectType": "FILE", "dataFlow": flow, "description": description,
            "default": rel}


def _enter_script() -> str:
    lines = ["set -eu", "{{Param.EnvSetup}}"]
    for var in _ENV_EXPORTS:
        lines.append(f'if [ -n "${{{var}:-}}" ]; then echo "openjd_env: {var}=${var}"; fi')
    lines.append('"{{Param.Python}}" -m composite --version')
    return "\n".join(lines) + "\n"


def _step(step: FarmStep, *, single: bool, chunking: str, write_node: str | None,
          timeout: int | None, recipe_params: dict[str, str]) -> dict[str, Any]:
    frames = "{{Param.Frames}}" if single and chunking == "extension" else openjd_range(step.frames)
    if chunking == "extension":
        chunks: dict[str, Any] = {"defaultTaskCount": "{{Param.ChunkSize}}", "rangeConstraint": "CONTIGUOUS"}
        param = {"name": "Frame", "type": "CHUNK[INT]", "range": frames, "chunks": chunks}
    else:
        param = {"name": "Frame", "type": "STRING", "range": [openjd_range(c) for c in step.chunks()]}
    recipe = recipe_params.get(step.recipe_path)
    args = ["-m", "composite", "render",
            f"{{{{Param.{recipe}}}}}" if recipe else _check_text(step.recipe_path, "recipe path"),
            "--frames", "{{Task.Param.Frame}}"]
    for item in step.overrides:
        args += ["--set", _check_text(item, "setting")]
    if single and write_node:
        args += ["--set", f"{write_node}.path={{{{Param.Output}}}}"]
    args += ["--progress", "log"]
    action: dict[str, Any] = {"command": "{{Param.Python}}", "args": args}
    if timeout:
        action["timeout"] = int(timeout)
    out: dict[str, Any] = {"name": step.name, "description": f"shot {step.shot}: {step.kind} of frames "
                                                                f"{step.frame_range}"}
    if step.depends_on:
        out["dependencies"] = [{"dependsOn": d} for d in step.depends_on]
    out["parameterSpace"] = {"taskParameterDefinitions": [param]}
    out["script"] = {"actions": {"onRun": action}}
    return out


def job_template(job: FarmJob, *, chunking: str = "extension", python: str | None = None, env_setup: str = "",
                 target_runtime: int | None = None, timeout: int | None = None,
                 write_node: str = "write", template_dir: str | os.PathLike | None = None,
                 bundle: bool = False) -> dict[str, Any]:
    """The job template (a dict ready for YAML/JSON) of ``job``.

    Parameters
    ----------
    chunking : {"extension", "list"}
        ``CHUNK[INT]`` task parameters (``TASK_CHUNKING``) or explicit chunk lists.
    python : str or None
        Interpreter the workers run (default: this one, ``sys.executable``).
    env_setup : str
        Shell lines that prepare the environment on a worker (default: none).
    target_runtime : int or None
        Seconds a chunk should take; Deadline Cloud then adapts chunk sizes (``TASK_CHUNKING`` only).
    timeout : int or None
        Seconds after which a task is cancelled.
    write_node : str
        The writer stage whose path the ``Output`` parameter sets (single-shot jobs).
    template_dir : path or None
        Folder the template is written to (default: the current folder). The specification wants PATH
        parameter defaults relative to it and inside it: a recipe or output path there becomes a PATH
        parameter (path-mapped by Deadline Cloud); one elsewhere a STRING parameter with the absolute path.
    bundle : bool
        For a Deadline Cloud job bundle: ``Recipe`` and ``Output`` are PATH parameters without defaults;
        their values go to ``parameter_values.yaml`` (see :func:`write_bundle`).
    """
    if chunking not in CHUNKING_MODES:
        raise InputError(f"unknown chunking {chunking!r}; choose one of {', '.join(CHUNKING_MODES)}")
    if not job.steps:
        raise InputError("the job has no steps")
    single = len(job.steps) == 1 and job.timeline is None
    first = job.steps[0]
    if single and write_node not in first.recipe.get("stages", {}):
        write_node = None
    comp = next((s.recipe_path for s in job.steps if s.kind == "comp"), first.recipe_path)
    prep = next((s.recipe_path for s in job.steps if s.kind == "prep"), None)
    recipe_params = {comp: "Recipe"}
    params: list[dict[str, Any]] = [
        _path_param("Recipe", "composite recipe file", comp, "IN", template_dir, bundle),
        {"name": "Python", "type": "STRING", "description": "Python interpreter with composite installed",
         "default": _check_text(python or sys.executable, "python")},
        {"name": "EnvSetup", "type": "STRING", "description": "shell lines preparing the environment "
                                                             "(e.g. source VENV/bin/activate)",
         "default": _check_text(env_setup, "environment set-up")},
    ]
    if prep is not None:
        recipe_params[prep] = "PrepRecipe"
        params.append(_path_param("PrepRecipe", "composite plate-prep recipe file", prep, "IN", template_dir, bundle))
    if chunking == "extension":
        params.append({"name": "ChunkSize", "type": "INT", "description": "frames per task",
                       "default": job.chunk_size, "minValue": 1})
    if single and chunking == "extension":
        params.append({"name": "Frames", "type": "STRING", "description": "frames to render (1001-1100)",
                       "default": openjd_range(first.frames), "minLength": 1})
    if single and write_node:
        out = first.recipe["stages"][write_node].get("params", {}).get("path", "")
        params.append(_path_param("Output", "output file pattern (renders/sh010.####.exr)", out, "OUT",
                                  template_dir, bundle))
    template: dict[str, Any] = {"specificationVersion": SPECIFICATION}
    if chunking == "extension":
        template["extensions"] = ["TASK_CHUNKING"]
    template["name"] = f"composite {job.name}"
    template["description"] = (f"composite render of {len(job.shots)} shot(s), {len(job.steps)} step(s)"
                               + (f" from {Path(job.timeline).name}" if job.timeline else ""))
    template["parameterDefinitions"] = params
    template["jobEnvironments"] = [{
        "name": "composite",
        "description": "runs EnvSetup once per session and hands its environment to the tasks",
        "script": {"actions": {"onEnter": {"command": "bash", "args": ["{{Env.File.Enter}}"]}},
                   "embeddedFiles": [{"name": "Enter", "type": "TEXT", "data": _enter_script()}]},
        "variables": {PROGRESS_PROTOCOL_ENV: "openjd", "PYTHONUNBUFFERED": "1"},
    }]
    steps = []
    for step in job.steps:
        st = _step(step, single=single, chunking=chunking, write_node=write_node, timeout=timeout,
                   recipe_params=recipe_params)
        if chunking == "extension" and target_runtime:
            st["parameterSpace"]["taskParameterDefinitions"][0]["chunks"]["targetRuntimeSeconds"] = int(target_runtime)
        steps.append(st)
    template["steps"] = steps
    return template


def dump_template(template: dict[str, Any], path: str | os.PathLike | None = None) -> str:
    """The template as YAML (or JSON when ``path`` ends in ``.json``)."""
    if path is not None and str(path).endswith(".json"):
        import json

        return json.dumps(template, indent=2) + "\n"
    return yaml.safe_dump(template, sort_keys=False, width=100)


def write_template(job: FarmJob, path: str | os.PathLike, **options: Any) -> Path:
    """Write the job template of ``job`` to ``path`` (YAML, or JSON for ``.json``), atomically."""
    options.setdefault("template_dir", os.path.dirname(os.path.abspath(path)))
    template = job_template(job, **options)
    return write_text_atomic(path, dump_template(template, path))


def parameter_values(job: FarmJob, write_node: str = "write") -> dict[str, str]:
    """Values of the path parameters (absolute) for a job bundle's ``parameter_values.yaml``."""
    first = job.steps[0]
    values = {"Recipe": next((s.recipe_path for s in job.steps if s.kind == "comp"), first.recipe_path)}
    prep = next((s.recipe_path for s in job.steps if s.kind == "prep"), None)
    if prep is not None:
        values["PrepRecipe"] = prep
    single = len(job.steps) == 1 and job.timeline is None
    if single and write_node in first.recipe.get("stages", {}):
        values["Output"] = first.recipe["stages"][write_node].get("params", {}).get("path", "")
    return values


def write_bundle(job: FarmJob, folder: str | os.PathLike, **options: Any) -> Path:
    """Write a Deadline Cloud job bundle: ``template.yaml`` and ``parameter_values.yaml`` in ``folder``.

    Submit it with ``deadline bundle submit FOLDER``; run it locally with ``openjd run
    FOLDER/template.yaml -p Recipe=... [-p Output=...]``.
    """
    folder = Path(folder)
    template = job_template(job, bundle=True, template_dir=folder, **options)
    validate_template(template)
    write_text_atomic(folder / "template.yaml", dump_template(template))
    values = parameter_values(job, options.get("write_node", "write"))
    write_text_atomic(folder / "parameter_values.yaml", yaml.safe_dump(
        {"parameterValues": [{"name": k, "value": v} for k, v in values.items()]}, sort_keys=False))
    return folder


def validate_template(template: dict[str, Any]) -> None:
    """Check a template with the openjd-model package (the same checks ``openjd check`` does)."""
    try:
        from openjd.model import DocumentType, decode_job_template, document_string_to_object
    except ImportError as exc:  # pragma: no cover
        raise InputError("validating Open Job Description templates needs openjd-model "
                         "(pip install 'composite[farm]')") from exc
    text = yaml.safe_dump(template, sort_keys=False)
    obj = document_string_to_object(document=text, document_type=DocumentType.YAML)
    try:
        decode_job_template(template=obj, supported_extensions=["TASK_CHUNKING"])
    except Exception as exc:
        raise InputError(f"the Open Job Description template is invalid: {exc}") from None
