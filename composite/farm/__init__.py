"""Render farms and scale-out: farm jobs planned from recipes and timelines, exported to Open Job
Description (AWS Deadline Cloud) and OpenCue, rendered on Ray clusters or a simulated farm.

* :func:`plan_job` — a recipe (optionally a timeline of shots and a plate-prep recipe) → :class:`FarmJob`,
  checked before submission.
* :mod:`composite.farm.openjd` — ``jobtemplate-2023-09`` templates (``TASK_CHUNKING``).
* :mod:`composite.farm.opencue` — PyOutline jobs and their Cuebot job spec (XML).
* :mod:`composite.farm.ray_executor` — ``executor="ray"``: chunks over a Ray cluster, one actor per worker.
* :func:`render_job` / :func:`job_status` — render a whole job here, or inspect what a farm left on disk.
* :mod:`composite.farm.simulate` — a local farm whose workers get killed, to prove retries are safe.
"""

from .plan import FarmJob, FarmStep, Shot, plan_job
from .timeline_jobs import JobSummary, job_status, read_timeline_shots, render_job

__all__ = ["FarmJob", "FarmStep", "JobSummary", "Shot", "job_status", "plan_job", "read_timeline_shots",
           "render_job"]
