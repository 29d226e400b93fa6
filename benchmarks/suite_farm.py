"""Farm scale-out: how throughput scales with workers, and memory per worker at HD and 4K.

A comp recipe (EXR plate → seeded noise → rotate/scale with a cubic filter → over a constant background →
half ZIP EXR) renders a sequence in chunks of ``CHUNK`` frames:

* ``local``: the local executor, in this process (1 worker) and with 2 worker processes;
* ``ray``: the Ray executor with 1 and 2 actors on a local Ray instance (start-up timed apart);
* ``farm``: the simulated farm — one ``python -m composite render`` process per chunk, as Deadline or
  OpenCue run them, with N = 1, 2 and 4 slots (4 oversubscribes a 2-core machine on purpose).

From the measurements, "on paper" figures for bigger farms: with a per-frame time ``t_f`` and a per-task
start-up ``t_s`` (process start, imports, pipeline build: farm N=1 minus local 1 worker, per chunk), N
workers render ``N * c / (t_s + c * t_f)`` frames/s with chunks of c frames while the shared storage keeps
up; the report gives the storage bandwidth that needs (bytes read and written per frame × frames/s).

Memory per worker: peak RSS (``VmHWM``) of a fresh process rendering 2 frames at 1920x1080 and 3840x2160,
and of the same process importing composite and building the pipeline without rendering (the baseline
every worker pays).

Run by hand (not part of the test suite)::

    .venv/bin/python -m benchmarks --suite farm [--quick]
    .venv/bin/python benchmarks/suite_farm.py [--quick]
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

CHUNK = 4


def _plates(folder: Path, width: int, height: int, frames: int) -> str:
    import numpy as np

    from composite.core import Image
    from composite.io.exr import write_exr

    folder.mkdir(parents=True, exist_ok=True)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    u, v = x / width, y / height
    for i in range(frames):
        rng = np.random.default_rng(i)
        rgb = np.stack([0.18 + 0.5 * u, 0.12 + 0.4 * v, 0.08 + 0.3 * (1 - u) * v], axis=-1)
        rgb += rng.normal(0.0, 0.01, rgb.shape).astype(np.float32)
        alpha = np.clip((0.9 - np.hypot(u - 0.5, v - 0.5)) * 4, 0, 1)[..., None]
        px = np.concatenate([np.clip(rgb, 0, None) * alpha, alpha], axis=-1).astype(np.float32)
        write_exr(folder / f"plate.{1001 + i:04d}.exr", Image(px))
    return str(folder / "plate.####.exr")


def _recipe(folder: Path, plate: str, width: int, height: int, frames: int) -> Path:
    import yaml

    stages = {
        "plate": {"type": "ReadImage", "params": {"path": plate}},
        "noise": {"type": "Noise", "inputs": {"image": "plate"}, "params": {"amount": 0.01, "seed": 3}},
        "move": {"type": "Transform", "inputs": {"image": "noise"},
                 "params": {"rotate": 2.0, "scale": [1.05, 1.05], "filter": "cubic"}},
        "bg": {"type": "Constant", "params": {"color": [0.05, 0.06, 0.08, 1.0], "width": width, "height": height}},
        "comp": {"type": "Merge", "inputs": {"a": "move", "b": "bg"}},
        "write": {"type": "WriteImage", "inputs": {"image": "comp"},
                  "params": {"path": str(folder / "out" / "comp.####.exr")}},
    }
    path = folder / "comp.yaml"
    path.write_text(yaml.safe_dump({"schema": "composite.pipeline/1", "name": "bench",
                                    "frames": f"1001-{1000 + frames}", "stages": stages}, sort_keys=False))
    return path


def _clear(folder: Path) -> None:
    shutil.rmtree(folder / "out", ignore_errors=True)


def _throughput(folder: Path, recipe: Path, frames: int, ray: bool, farm_slots: tuple[int, ...]) -> dict[str, Any]:
    from composite.farm import plan_job
    from composite.farm.simulate import simulate_farm
    from composite.graph.recipe import load_recipe

    rows: dict[str, Any] = {}

    def record(name: str, seconds: float, **extra: Any) -> None:
        rows[name] = {"seconds": round(seconds, 3), "fps": round(frames / seconds, 3), **extra}

    load_recipe(recipe).render("1001", progress=False)  # first use of OCIO, OpenEXR ... in this process
    for workers in (1, 2):
        _clear(folder)
        t0 = time.perf_counter()
        load_recipe(recipe).render(chunk_size=CHUNK, workers=workers, progress=False)
        record(f"local.workers{workers}", time.perf_counter() - t0)
    if ray:
        try:
            import ray as _ray  # noqa: F401

            from composite.farm import ray_executor

            for workers in (1, 2):
                t0 = time.perf_counter()
                ex = ray_executor.RayExecutor(workers=workers)
                rows[f"ray.workers{workers}.startup_s"] = round(time.perf_counter() - t0, 3)
                _clear(folder)
                t0 = time.perf_counter()
                load_recipe(recipe).render(chunk_size=CHUNK, executor=ex, progress=False)
                record(f"ray.workers{workers}", time.perf_counter() - t0)
                # a second render on warm actors (pipelines cached): the steady state of a long job
                _clear(folder)
                t0 = time.perf_counter()
                load_recipe(recipe).render(chunk_size=CHUNK, executor=ex, progress=False)
                record(f"ray.workers{workers}.warm", time.perf_counter() - t0)
            ray_executor.shutdown()
        except ImportError:
            rows["ray"] = "ray is not installed"
    job = plan_job(recipe, chunk_size=CHUNK)
    for slots in farm_slots:
        _clear(folder)
        rep = simulate_farm(job, workers=slots, kill_probability=0.0, seed=0)
        record(f"farm.slots{slots}", rep.elapsed, processes=rep.launched)
    return rows


def _peak_rss_mb(recipe: Path, frames: str, *, render: bool) -> float:
    # VmHWM, not ru_maxrss: after fork+exec Linux carries the parent's peak into ru_maxrss
    code = (
        "from composite.graph.recipe import load_recipe\n"
        f"p = load_recipe({str(recipe)!r})\n"
        + (f"p.render({frames!r}, progress=False, force=True)\n" if render else "p.validate()\n")
        + "print([ln.split()[1] for ln in open('/proc/self/status') if ln.startswith('VmHWM')][0])\n"
    )
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env)
    return int(out.stdout.strip().splitlines()[-1]) / 1024.0


def _memory(folder: Path) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for label, (w, h) in (("HD", (1920, 1080)), ("4K", (3840, 2160))):
        sub = folder / f"mem_{label}"
        plate = _plates(sub / "plates", w, h, 2)
        recipe = _recipe(sub, plate, w, h, 2)
        base = _peak_rss_mb(recipe, "1001-1002", render=False)
        peak = _peak_rss_mb(recipe, "1001-1002", render=True)
        frame_mb = w * h * 4 * 4 / 2**20
        out[label] = {"size": f"{w}x{h}", "worker_peak_rss_mb": round(peak, 1), "baseline_rss_mb": round(base, 1),
                      "per_frame_working_mb": round(peak - base, 1), "rgba_float_frame_mb": round(frame_mb, 1),
                      "frames_of_rgba_float": round((peak - base) / frame_mb, 1)}
        shutil.rmtree(sub, ignore_errors=True)
    return out


def _on_paper(rows: dict[str, Any], frames: int, bytes_per_frame: float) -> dict[str, Any]:
    if "local.workers1" not in rows or "farm.slots1" not in rows:
        return {}
    t_f = rows["local.workers1"]["seconds"] / frames
    chunks = -(-frames // CHUNK)
    t_s = max(0.0, (rows["farm.slots1"]["seconds"] - rows["local.workers1"]["seconds"]) / chunks)
    paper = {"per_frame_s": round(t_f, 4), "per_task_startup_s": round(t_s, 3), "chunk": CHUNK, "farm": []}
    for c in (CHUNK, 10, 50):
        for n in (1, 2, 8, 32, 128, 512):
            fps = n * c / (t_s + c * t_f)
            paper["farm"].append({"workers": n, "chunk": c, "fps": round(fps, 2),
                                  "efficiency": round(c * t_f / (t_s + c * t_f), 3),
                                  "storage_MB_per_s": round(fps * bytes_per_frame / 2**20, 1)})
    return paper


def report(config) -> dict[str, Any]:
    """Throughput vs workers (local, Ray, simulated farm), figures on paper for bigger farms, memory per worker."""
    quick = bool(getattr(config, "quick", False))
    width, height = (640, 360) if quick else (1920, 1080)
    frames = 8 if quick else 16
    folder = Path(tempfile.mkdtemp(prefix="composite-bench-farm-"))
    try:
        plate = _plates(folder / "plates", width, height, frames)
        recipe = _recipe(folder, plate, width, height, frames)
        rows = _throughput(folder, recipe, frames, ray=True, farm_slots=(1, 2, 4))
        written = sum(p.stat().st_size for p in (folder / "out").glob("*.exr")) / frames
        read = sum(p.stat().st_size for p in (folder / "plates").glob("*.exr")) / frames
        paper = _on_paper(rows, frames, written + read)
        memory = _memory(folder)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    result = {"size": f"{width}x{height}", "frames": frames, "chunk": CHUNK, "cpus": os.cpu_count(),
              "throughput": rows, "on_paper": paper, "memory_per_worker": memory}
    result["markdown"] = _markdown(result)
    return result


def _markdown(r: dict[str, Any]) -> str:
    lines = [f"### Farm scale-out ({r['size']}, {r['frames']} frames, chunks of {r['chunk']}, {r['cpus']} CPUs)", "",
             "| executor | seconds | frames/s |", "|---|---:|---:|"]
    for name, row in r["throughput"].items():
        if isinstance(row, dict):
            lines.append(f"| {name} | {row['seconds']:.2f} | {row['fps']:.2f} |")
        else:
            lines.append(f"| {name} | {row} | |")
    p = r.get("on_paper") or {}
    if p:
        lines += ["", f"On paper: {p['per_frame_s'] * 1000:.0f} ms/frame, {p['per_task_startup_s']:.2f} s start-up "
                      "per task.", "", "| workers | chunk | frames/s | efficiency | storage MB/s |", "|---:|---:|---:|---:|---:|"]
        for row in p["farm"]:
            lines.append(f"| {row['workers']} | {row['chunk']} | {row['fps']:.1f} | {row['efficiency']:.2f} | "
                         f"{row['storage_MB_per_s']:.0f} |")
    lines += ["", "| size | worker peak RSS MB | baseline MB | per-chunk working MB |", "|---|---:|---:|---:|"]
    for label, m in r["memory_per_worker"].items():
        lines.append(f"| {label} {m['size']} | {m['worker_peak_rss_mb']:.0f} | {m['baseline_rss_mb']:.0f} | "
                     f"{m['per_frame_working_mb']:.0f} |")
    return "\n".join(lines) + "\n"


def run(quick: bool = False) -> dict[str, Any]:
    from types import SimpleNamespace

    return report(SimpleNamespace(quick=quick))


if __name__ == "__main__":
    result = run("--quick" in sys.argv)
    print(result.pop("markdown"))
    print(json.dumps(result, indent=2))
