"""``composite farm``: export farm jobs (Open Job Description, OpenCue), render whole jobs, check their state.

::

    composite farm export RECIPE --engine openjd|opencue [--frames A-B] [--chunk-size N]
                          [--timeline edit.otio] [--prep PREP_RECIPE] [--set STAGE.PARAM=VALUE ...] -o OUT
    composite farm render RECIPE [--timeline edit.otio] [--executor local|ray] [--workers N] [--address ADDR]
    composite farm status RECIPE [--timeline edit.otio] ...

Everything is checked before a job is written or started; bad input exits with code 2.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from ..core.errors import InputError

ENGINES = ("openjd", "opencue")


def _plan_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("recipe", help="comp recipe file, or the name of a recipe in pipelines/")
    p.add_argument("--frames", help="frames of a single-shot job (default: the recipe's 'frames')")
    p.add_argument("--chunk-size", type=int, default=10, help="frames per farm task (default 10)")
    p.add_argument("--timeline", help="OpenTimelineIO timeline: one shot per clip (plate and frames from the clip)")
    p.add_argument("--prep", help="plate-prep recipe rendered per shot before the comp (the comp depends on it)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="STAGE.PARAM=VALUE",
                   help="override a parameter for every shot ({shot} becomes the shot name)")
    p.add_argument("--plate-node", default="plate", help="reader stage that takes each shot's plate (default plate)")
    p.add_argument("--handles", type=int, default=0, help="extra frames before and after each timeline shot")
    p.add_argument("--no-media-check", dest="check_media", action="store_false",
                   help="do not check that plates exist and cover the frames (plates only visible on the farm)")
    p.add_argument("--edl-rate", type=float, default=None, help="frame rate of an EDL timeline (default: inferred)")
    p.add_argument("--name", help="job name (default: the timeline's or the recipe's)")


def register(sub) -> None:
    farm = sub.add_parser("farm", help="export render-farm jobs, render or check whole timelines",
                          description="Farm jobs: one step per shot, frame chunks as tasks.")
    fsub = farm.add_subparsers(dest="farm_command", metavar="ACTION")
    fsub.required = True

    e = fsub.add_parser("export", help="write a farm job (Open Job Description template or OpenCue job spec)",
                        description="Write a job that renders RECIPE (and every shot of a timeline) on a farm.")
    _plan_args(e)
    e.add_argument("--engine", required=True, help="openjd (AWS Deadline Cloud, openjd run) or opencue")
    e.add_argument("-o", "--output", required=True,
                   help="job file: .yaml/.json (openjd template), a folder (openjd: a Deadline Cloud job bundle "
                        "with parameter_values.yaml), .xml (opencue job spec)")
    e.add_argument("--python", help="Python interpreter on the workers (default: this one)")
    e.add_argument("--env-setup", default="",
                   help="shell lines preparing a worker's environment, e.g. 'source /venvs/composite/bin/activate'")
    e.add_argument("--chunking", default="extension", choices=("extension", "list"),
                   help="openjd: CHUNK[INT] task parameters (TASK_CHUNKING extension) or explicit chunk lists")
    e.add_argument("--target-runtime", type=int, default=None,
                   help="openjd: seconds a chunk should take (the scheduler adapts chunk sizes)")
    e.add_argument("--timeout", type=int, default=None, help="openjd: seconds before a task is cancelled")
    e.add_argument("--show", default="testing", help="opencue: show name")
    e.add_argument("--service", default="shell", help="opencue: service of the layers")
    e.add_argument("--max-retries", type=int, default=3, help="opencue: retries of a failed chunk")
    e.set_defaults(func=cmd_export)

    r = fsub.add_parser("render", help="render a whole job here or on a Ray cluster, with a summary",
                        description="Render every step of the job (plate prep before comp), retrying failed "
                                    "chunks, and summarise what was rendered and what failed.")
    _plan_args(r)
    r.add_argument("--executor", default="local", choices=("local", "ray"))
    r.add_argument("--workers", type=int, default=1, help="worker processes or Ray actors")
    r.add_argument("--address", default=None, help="Ray cluster address (default: start a local Ray instance)")
    r.add_argument("--retries", type=int, default=1, help="retries of a failed chunk (default 1)")
    r.add_argument("--force", action="store_true", help="re-render frames that are up to date")
    r.add_argument("--json", action="store_true", help="print the summary as JSON")
    r.set_defaults(func=cmd_render)

    s = fsub.add_parser("status", help="which frames of a job are rendered and up to date, which are missing",
                        description="Compare the job's outputs on disk with their fingerprints.")
    _plan_args(s)
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=cmd_status)


def _plan(args: argparse.Namespace):
    from ..farm.plan import plan_job

    return plan_job(args.recipe, frames=args.frames, chunk_size=args.chunk_size, timeline=args.timeline,
                    overrides=args.overrides, prep=args.prep, plate_node=args.plate_node, handles=args.handles,
                    check_media=args.check_media, name=args.name, timeline_rate=args.edl_rate)


def cmd_export(args: argparse.Namespace) -> int:
    engine = args.engine.lower()
    if engine not in ENGINES:
        raise InputError(f"unknown engine {args.engine!r}; engines: {', '.join(ENGINES)}")
    job = _plan(args)
    if engine == "openjd":
        from ..farm import openjd

        options = dict(chunking=args.chunking, python=args.python, env_setup=args.env_setup,
                       target_runtime=args.target_runtime, timeout=args.timeout)
        if os.path.splitext(args.output)[1].lower() not in (".yaml", ".yml", ".json"):
            openjd.write_bundle(job, args.output, **options)  # a Deadline Cloud job bundle folder
        else:
            template = openjd.job_template(job, template_dir=os.path.dirname(os.path.abspath(args.output)),
                                           **options)
            openjd.validate_template(template)
            from ..io.atomic import write_text_atomic

            write_text_atomic(args.output, openjd.dump_template(template, args.output))
    else:
        from ..farm import opencue

        opencue.write_job(job, args.output, python=args.python, env_setup=args.env_setup, show=args.show,
                          service=args.service, maxretries=args.max_retries)
    print(f"composite: wrote {args.output}: {engine} job {job.name!r}, {len(job.shots)} shot(s), "
          f"{len(job.steps)} step(s), {job.task_count()} task(s) of up to {job.chunk_size} frames", file=sys.stderr)
    return 0


def cmd_render(args: argparse.Namespace) -> int:
    from ..farm.timeline_jobs import render_job
    from ..graph.executor import _Progress

    job = _plan(args)
    total = sum(len(s.frames) for s in job.steps)
    bar = _Progress(total, False)
    summary = render_job(job, executor=args.executor, workers=args.workers, address=args.address,
                         max_attempts=1 + max(0, args.retries), force=args.force, progress=bar.event)
    if args.json:
        print(json.dumps(summary.to_dict(), indent=2))
    else:
        print(summary.format(), file=sys.stderr)
    return 0 if summary.ok else 1


def cmd_status(args: argparse.Namespace) -> int:
    from ..farm.timeline_jobs import job_status

    status = job_status(_plan(args))
    if args.json:
        print(json.dumps(status, indent=2))
    else:
        print(f"job {status['job']}: {'complete' if status['complete'] else 'incomplete'}")
        for s in status["steps"]:
            line = f"  {s['step']:<24} {s['frames']:<16} up to date: {s['up_to_date'] or '-'}"
            if s["out_of_date"]:
                line += f"; out of date: {s['out_of_date']}"
            if s["missing"]:
                line += f"; missing: {s['missing']}"
            print(line)
    return 0 if status["complete"] else 1
