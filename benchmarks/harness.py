"""The benchmark runner: discovers suites, measures each case in its own process, writes JSON and markdown.

A suite is a module ``benchmarks/suite_<area>.py`` exposing ``cases(config) -> list[Case]`` (timed by this
harness) and optionally ``derive(results, config) -> list[dict]`` (figures computed from the timings, such
as overheads) and ``report(config) -> dict`` (figures a suite measures itself, such as quality tables).
See ``benchmarks/README.md`` for the contract.

Each case runs in a fresh child process (``python -m benchmarks --child ...``): the child builds
the case's inputs (not timed), runs ``warmup`` untimed frames, resets the kernel's peak-RSS counter
(``/proc/self/clear_refs``), times ``frames`` calls of the step function with ``time.perf_counter`` and
reads the peak resident set size (``VmHWM``) back. Memory is therefore the whole process's peak RSS during
the timed frames (``peak_rss_mb``) and its growth over the RSS before them (``peak_delta_mb``: the working
memory of the case, NumPy, OpenCV and OpenEXR allocations alike); peer tools run as subprocesses report
their own peak RSS (``ru_maxrss`` of the largest child, ``peer_rss_mb``). Where the counter cannot be reset,
the figure is the process's lifetime peak and ``memory_method`` says so. Finally one more, untimed
frame runs under ``tracemalloc``: ``alloc_peak_mb`` is the peak of Python and NumPy allocations during one
frame (OpenCV's outputs are NumPy arrays and count; buffers private to C++ libraries such as OpenEXR's do
not) — the per-frame working memory, independent of what the allocator kept from earlier frames.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as _dt
import importlib
import json
import math
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS_DIR = ROOT / "benchmarks" / "results"
SCHEMA = "composite.bench/1"

FULL_SIZES = ((1920, 1080), (3840, 2160))
QUICK_SIZES = ((640, 360), (1280, 720))


@dataclass(frozen=True)
class Config:
    """What a run measures. Suites read it to decide their cases."""

    quick: bool = False
    sizes: tuple[tuple[int, int], ...] = FULL_SIZES
    frames: int = 8
    warmup: int = 1
    threads: int | None = None
    peers: bool = True
    timeout: float = 600.0

    @classmethod
    def make(cls, *, quick: bool = False, sizes: Sequence[tuple[int, int]] | None = None,
             frames: int | None = None, **kw: Any) -> Config:
        return cls(quick=quick, sizes=tuple(tuple(s) for s in (sizes or (QUICK_SIZES if quick else FULL_SIZES))),
                   frames=frames or (3 if quick else 8), **kw)

    def to_json(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["sizes"] = [list(s) for s in self.sizes]
        return d

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Config:
        d = dict(d)
        d["sizes"] = tuple(tuple(s) for s in d["sizes"])
        return cls(**d)


@dataclass(frozen=True)
class Case:
    """One measurement.

    ``setup(**params)`` runs in the child process (not timed) and returns ``step(i)``, which processes one
    frame (``i`` = 0, 1, 2, ... distinct across warm-up and timed calls), or a dict of named steps
    (variants) that are timed interleaved, frame by frame, in the same process, so that machine load
    affects them alike; each variant becomes a row ``name[variant]``. ``batch`` frames per step call
    (a peer tool processing a whole sequence in one process); ``units`` items per frame for per-item
    figures (stages in a chain: ``us_per_unit``). ``compare`` names the case (same suite) that this one is
    a peer of: the report gives the ratio of their times. ``requires`` names peer tools
    (``"oiiotool"``, ``"ffmpeg"``); the case is skipped when one is missing or peers are turned off.
    """

    name: str
    setup: Callable[..., Callable[[int], Any]]
    params: dict[str, Any] = field(default_factory=dict)
    group: str = ""
    kind: str = "stage"
    tool: str = "composite"
    size: tuple[int, int] | None = None
    frames: int | None = None
    batch: int = 1
    units: int = 1
    compare: str | None = None
    requires: tuple[str, ...] = ()
    note: str = ""


def op_cases(ops: Sequence[str], setup: Callable[..., Callable[[int], Any]], sizes, *, kind: str,
             name: str = "{op}@{w}x{h}") -> list[Case]:
    """One case per operation and size: ``setup(op=..., width=..., height=...)``, grouped by operation."""
    return [Case(name=name.format(op=op, w=w, h=h), setup=setup, params={"op": op, "width": w, "height": h},
                 group=op, kind=kind, size=(w, h)) for w, h in sizes for op in ops]


def time_in_process(cases: Sequence[Case], frames: int) -> dict[str, tuple[float, float]]:
    """Median wall and process-CPU milliseconds per frame of each case, run in this process (for the suites'
    standalone mode): set up, one warm-up frame, then ``frames`` timed frames."""
    out = {}
    for case in cases:
        step = case.setup(**case.params)
        step(0)
        wall, cpu = [], []
        for i in range(frames):
            t0, c0 = time.perf_counter(), time.process_time()
            step(i + 1)
            wall.append(time.perf_counter() - t0)
            cpu.append(time.process_time() - c0)
        out[case.name] = (statistics.median(wall) * 1e3, statistics.median(cpu) * 1e3)
    return out


# -- peer tools ----------------------------------------------------------------------------------

def tool_path(name: str) -> str | None:
    """Path of a peer tool: ``oiiotool`` (beside this Python, else on PATH), ``ffmpeg`` (imageio-ffmpeg's,
    else on PATH), or None."""
    if name == "ffmpeg":
        try:
            import imageio_ffmpeg

            return imageio_ffmpeg.get_ffmpeg_exe()
        except Exception:
            return shutil.which("ffmpeg")
    here = Path(sys.executable).parent / name
    if here.exists():
        return str(here)
    return shutil.which(name)


# -- the measuring child -------------------------------------------------------------------------

def _status_kb(key: str) -> int | None:
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def _reset_peak() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


def limit_threads(threads: int | None) -> None:
    if not threads:
        return
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS"):
        os.environ[var] = str(threads)
    try:
        import cv2

        cv2.setNumThreads(int(threads))
    except ImportError:  # pragma: no cover
        pass


def load_suite(name: str):
    return importlib.import_module(f"benchmarks.suite_{name}")


def measure(suite: str, case_name: str, config: Config) -> dict[str, Any]:
    """Run one case in this process and return its raw figures (called in the child)."""
    import resource

    limit_threads(config.threads)
    mod = load_suite(suite)
    found = {c.name: c for c in mod.cases(config)}
    if case_name not in found:
        raise KeyError(f"suite {suite} has no case {case_name!r}")
    case = found[case_name]
    t_setup = time.perf_counter()
    made = case.setup(**case.params)
    setup_s = time.perf_counter() - t_setup
    steps = made if isinstance(made, dict) else {"": made}
    frames = case.frames or config.frames
    for i in range(config.warmup):
        for step in steps.values():
            step(i)
    import gc

    gc.collect()
    rss_before = (_status_kb("VmRSS") or 0) / 1024.0
    reset = _reset_peak()
    times: dict[str, list[float]] = {k: [] for k in steps}
    names = list(steps)
    for i in range(config.warmup, config.warmup + frames):
        # Variants interleaved (machine load affects them alike), the order rotated every frame (so that
        # none always runs right after another one's allocations).
        r = i % len(names)
        for k in names[r:] + names[:r]:
            t0 = time.perf_counter()
            steps[k](i)
            times[k].append(time.perf_counter() - t0)
    hwm = _status_kb("VmHWM")
    self_max = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    child_max = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024.0
    peak = hwm / 1024.0 if (reset and hwm) else self_max
    # One more (untimed) frame per variant under tracemalloc: the peak of Python and NumPy allocations
    # (OpenCV returns NumPy arrays, so its outputs count; C++ libraries' own buffers do not).
    import tracemalloc

    traced = {}
    i = config.warmup + frames
    for k, step in steps.items():
        tracemalloc.start()
        step(i)
        traced[k] = tracemalloc.get_traced_memory()[1] / 2 ** 20
        tracemalloc.stop()
    return {
        "times_s": times, "setup_s": setup_s, "rss_before_mb": rss_before, "peak_rss_mb": peak,
        "memory_method": "VmHWM reset before the timed frames" if (reset and hwm) else "ru_maxrss (lifetime)",
        "peer_rss_mb": child_max if child_max > 0 else None, "alloc_peak_mb": traced,
    }


def _child_main(payload: str) -> int:
    req = json.loads(payload)
    try:
        out = measure(req["suite"], req["case"], Config.from_json(req["config"]))
    except Exception as exc:
        out = {"error": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc()[-4000:]}
    sys.stdout.write("\n@@BENCH@@" + json.dumps(out) + "\n")
    sys.stdout.flush()
    return 0


# -- the parent ----------------------------------------------------------------------------------

def discover_suites() -> list[str]:
    return sorted(p.stem[len("suite_"):] for p in (ROOT / "benchmarks").glob("suite_*.py"))


def _summarise(case: Case, suite: str, raw: dict[str, Any]) -> list[dict[str, Any]]:
    """Rows of one measured case: one per variant (``name[variant]``), or one row for a single step."""
    size = case.size or (case.params.get("width"), case.params.get("height"))
    base: dict[str, Any] = {
        "suite": suite, "case": case.name, "group": case.group, "kind": case.kind, "tool": case.tool,
        "size": f"{size[0]}x{size[1]}" if size and size[0] else None, "batch": case.batch, "units": case.units,
        "compare": case.compare, "note": case.note,
    }
    if "error" in raw:
        return [{**base, "error": raw["error"], "traceback": raw.get("traceback")}]
    rows = []
    for variant, times in raw["times_s"].items():
        row = dict(base)
        if variant:
            row["case"] = f"{case.name}[{variant}]"
            row["variant"] = variant
        per_frame = [t / case.batch for t in times]
        med = statistics.median(per_frame)
        row.update({
            "frames": len(per_frame) * case.batch,
            "ms_per_frame": med * 1e3,
            "ms_mean": statistics.fmean(per_frame) * 1e3,
            "ms_min": min(per_frame) * 1e3,
            "ms_max": max(per_frame) * 1e3,
            "fps": (1.0 / med) if med > 0 else math.inf,
            "us_per_unit": med * 1e6 / case.units,
            "setup_s": raw["setup_s"],
            "rss_before_mb": raw["rss_before_mb"],
            "peak_rss_mb": raw["peak_rss_mb"],
            "peak_delta_mb": max(0.0, raw["peak_rss_mb"] - raw["rss_before_mb"]),
            "memory_method": raw["memory_method"] + (" (shared by the case's variants)" if variant else ""),
            "peer_rss_mb": raw["peer_rss_mb"] if case.tool != "composite" else None,
            "alloc_peak_mb": (raw.get("alloc_peak_mb") or {}).get(variant),
        })
        rows.append(row)
    return rows


def run_case(suite: str, case: Case, config: Config) -> list[dict[str, Any]]:
    payload = json.dumps({"suite": suite, "case": case.name, "config": config.to_json()})
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    if config.threads:
        for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
            env[var] = str(config.threads)
    try:
        proc = subprocess.run([sys.executable, "-m", "benchmarks", "--child", payload], cwd=str(ROOT),
                              env=env, capture_output=True, text=True, timeout=config.timeout)
    except subprocess.TimeoutExpired:
        return _summarise(case, suite, {"error": f"timed out after {config.timeout:.0f} s"})
    marker = proc.stdout.rfind("@@BENCH@@")
    if marker < 0:
        tail = (proc.stderr or proc.stdout)[-2000:]
        return _summarise(case, suite, {"error": f"child exited with {proc.returncode}: {tail}"})
    raw = json.loads(proc.stdout[marker + len("@@BENCH@@"):].strip().splitlines()[0])
    return _summarise(case, suite, raw)


def machine_info() -> dict[str, Any]:
    info: dict[str, Any] = {
        "host": socket.gethostname(), "platform": platform.platform(), "python": platform.python_version(),
        "cpu": platform.processor() or platform.machine(), "logical_cpus": os.cpu_count(),
    }
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    info["cpu"] = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    try:
        info["usable_cpus"] = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover
        pass
    try:
        import psutil

        info["memory_gb"] = round(psutil.virtual_memory().total / 2 ** 30, 1)
        info["load_average"] = [round(v, 2) for v in os.getloadavg()]
    except Exception:
        pass
    versions = {}
    for mod in ("numpy", "cv2", "OpenEXR", "OpenImageIO", "composite"):
        try:
            versions[mod] = str(importlib.import_module(mod).__version__)
        except Exception:
            pass
    info["versions"] = versions
    try:
        info["commit"] = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=str(ROOT), capture_output=True,
                                        text=True, timeout=10).stdout.strip() or None
    except Exception:
        info["commit"] = None
    return info


def peer_ratios(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """For each peer case (``compare`` set): its time over the compared composite case's time."""
    by_name = {(r["suite"], r["case"]): r for r in rows}
    out = []
    for r in rows:
        if not r.get("compare") or "error" in r or "ms_per_frame" not in r:
            continue
        base = by_name.get((r["suite"], r["compare"]))
        if not base or "ms_per_frame" not in base:
            continue
        out.append({"suite": r["suite"], "case": base["case"], "peer": r["case"], "tool": r["tool"],
                    "size": r["size"], "composite_ms": base["ms_per_frame"], "peer_ms": r["ms_per_frame"],
                    "speedup": r["ms_per_frame"] / base["ms_per_frame"] if base["ms_per_frame"] > 0 else None})
    return out


def run(config: Config, *, suites: Sequence[str] | None = None, case_filter: str | None = None,
        log: Callable[[str], None] = print) -> dict[str, Any]:
    """Run the suites and return the report (a JSON-ready dict)."""
    names = list(suites) if suites else discover_suites()
    available = discover_suites()
    report: dict[str, Any] = {"schema": SCHEMA, "date": _dt.datetime.now().astimezone().isoformat(timespec="seconds"),
                              "machine": machine_info(), "config": config.to_json(), "suites": {}}
    all_rows: list[dict[str, Any]] = []
    for name in names:
        entry: dict[str, Any] = {"cases": [], "derived": [], "report": None}
        report["suites"][name] = entry
        if name not in available:
            entry["skipped"] = f"no module benchmarks/suite_{name}.py (suites: {', '.join(available)})"
            log(f"[{name}] skipped: {entry['skipped']}")
            continue
        try:
            mod = load_suite(name)
        except Exception as exc:
            entry["skipped"] = f"import failed: {type(exc).__name__}: {exc}"
            log(f"[{name}] skipped: {entry['skipped']}")
            continue
        has_cases, has_report = hasattr(mod, "cases"), hasattr(mod, "report")
        if not has_cases and not has_report:
            entry["skipped"] = "does not follow the suite contract (no cases() or report(); see benchmarks/README.md)"
            log(f"[{name}] skipped: {entry['skipped']}")
            continue
        if has_cases:
            cases = list(mod.cases(config))
            if case_filter:
                cases = [c for c in cases if case_filter in c.name]
            for case in cases:
                missing = [t for t in case.requires if not config.peers or tool_path(t) is None]
                if missing:
                    why = "peers turned off" if not config.peers else f"{', '.join(missing)} not found"
                    log(f"[{name}] {case.name}: skipped ({why})")
                    continue
                t0 = time.perf_counter()
                rows = run_case(name, case, config)
                entry["cases"] += rows
                for row in rows:
                    if "error" in row:
                        log(f"[{name}] {row['case']}: ERROR {row['error'].splitlines()[0][:200]}")
                    else:
                        log(f"[{name}] {row['case']}: {row['ms_per_frame']:.3f} ms/frame, {row['fps']:.1f} frames/s, "
                            f"peak +{row['peak_delta_mb']:.0f} MB ({time.perf_counter() - t0:.1f} s)")
            all_rows += entry["cases"]
            if hasattr(mod, "derive"):
                try:
                    entry["derived"] = list(mod.derive(entry["cases"], config))
                except Exception as exc:
                    entry["derived"] = [{"error": f"derive failed: {type(exc).__name__}: {exc}"}]
                for d in entry["derived"]:
                    if "error" not in d:
                        log(f"[{name}] {d.get('name')}: {d.get('value'):.3f} {d.get('unit', '')}")
        if has_report and not case_filter:
            try:
                entry["report"] = mod.report(config)
            except Exception as exc:
                entry["report"] = {"error": f"{type(exc).__name__}: {exc}"}
    report["peers"] = peer_ratios(all_rows)
    return report


# -- output --------------------------------------------------------------------------------------

def _fmt(v: Any, digits: int = 2) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        if math.isinf(v):
            return "inf"
        if abs(v) >= 100:
            return f"{v:.0f}"
        return f"{v:.{digits}f}"
    return str(v)


def to_markdown(report: dict[str, Any]) -> str:
    m = report["machine"]
    c = report["config"]
    lines = [
        "# composite benchmarks",
        "",
        f"{report['date']} on {m.get('host')}: {m.get('cpu')}, {m.get('usable_cpus', m.get('logical_cpus'))} usable "
        f"CPUs, {m.get('memory_gb', '?')} GB, Python {m.get('python')}, "
        + ", ".join(f"{k} {v}" for k, v in m.get("versions", {}).items())
        + (f", commit {m['commit']}" if m.get("commit") else "") + ".",
        f"Load average at start: {m.get('load_average')}. Threads: {c.get('threads') or 'library defaults'}. "
        f"{'Quick run. ' if c.get('quick') else ''}Timed frames per case: {c['frames']} after {c['warmup']} warm-up; "
        "ms/frame is the median; alloc peak is the peak of Python/NumPy allocations during one frame "
        "(tracemalloc); peak RSS is the measuring process's resident peak during the timed frames "
        "(Δ: over its RSS before them; 'tool': the peer process's own peak).",
        "",
    ]
    for name, entry in report["suites"].items():
        lines.append(f"## {name}")
        lines.append("")
        if entry.get("skipped"):
            lines += [f"Skipped: {entry['skipped']}", ""]
            continue
        if entry["cases"]:
            lines += ["| case | tool | size | ms/frame | frames/s | min ms | alloc peak MB | peak RSS MB (Δ) | note |",
                      "|---|---|---|---:|---:|---:|---:|---:|---|"]
            for r in entry["cases"]:
                if "error" in r:
                    lines.append(f"| {r['case']} | {r['tool']} | {r['size'] or '-'} | error | | | | | "
                                 f"{r['error'].splitlines()[0][:120]} |")
                    continue
                mem = f"{_fmt(r['peak_rss_mb'], 0)} (+{_fmt(r['peak_delta_mb'], 0)})"
                if r.get("peer_rss_mb"):
                    mem += f"; tool {_fmt(r['peer_rss_mb'], 0)}"
                ms = r["ms_per_frame"]
                lines.append(f"| {r['case']} | {r['tool']} | {r['size'] or '-'} | {_fmt(ms, 3 if ms < 1 else 2)} | "
                             f"{_fmt(r['fps'], 1)} | {_fmt(r['ms_min'], 3 if ms < 1 else 2)} | "
                             f"{_fmt(r.get('alloc_peak_mb'), 1)} | {mem} | {r['note']} |")
            lines.append("")
        derived = [d for d in entry.get("derived") or [] if "error" not in d]
        if derived:
            lines += ["| derived figure | value | unit | from |", "|---|---:|---|---|"]
            for d in derived:
                lines.append(f"| {d['name']} | {_fmt(d['value'], 3)} | {d.get('unit', '')} | {d.get('from', '')} |")
            lines.append("")
        for d in entry.get("derived") or []:
            if "error" in d:
                lines += [f"Derived figures failed: {d['error']}", ""]
        rep = entry.get("report")
        if rep:
            if "error" in rep:
                lines += [f"Suite report failed: {rep['error']}", ""]
            elif rep.get("markdown"):
                lines += [rep["markdown"], ""]
    peers = report.get("peers") or []
    if peers:
        lines += ["## Peers side by side", "",
                  "| composite case | peer case | tool | size | composite ms | peer ms | peer/composite |",
                  "|---|---|---|---|---:|---:|---:|"]
        for p in peers:
            lines.append(f"| {p['case']} | {p['peer']} | {p['tool']} | {p['size']} | {_fmt(p['composite_ms'])} | "
                         f"{_fmt(p['peer_ms'])} | {_fmt(p['speedup'])}x |")
        lines.append("")
    return "\n".join(lines) + "\n"


def write_report(report: dict[str, Any], *, json_path: str | os.PathLike | None = None,
                 markdown_path: str | os.PathLike | None = None) -> tuple[Path, Path]:
    """Write the JSON and markdown reports (atomically); default under ``benchmarks/results/``."""
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    jp = Path(json_path) if json_path else RESULTS_DIR / f"bench-{stamp}.json"
    mp = Path(markdown_path) if markdown_path else jp.with_suffix(".md")
    for path, text in ((jp, json.dumps(report, indent=1, default=str) + "\n"), (mp, to_markdown(report))):
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.partial-{os.getpid()}")
        tmp.write_text(text)
        os.replace(tmp, path)
    write_plots(report, jp.parent, jp.stem)
    if not json_path:
        for src, name in ((jp, "latest.json"), (mp, "latest.md")):
            dst = RESULTS_DIR / name
            tmp = dst.with_name(f".{name}.partial-{os.getpid()}")
            tmp.write_text(src.read_text())
            os.replace(tmp, dst)
    return jp, mp


def write_plots(report: dict[str, Any], folder: str | os.PathLike, stem: str = "bench") -> list[Path]:
    """PNG plots of a report: ms/frame against resolution per case, and a per-case time breakdown at
    the most common size. Returns the files written (none when matplotlib is missing)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return []
    rows = [r for e in report.get("suites", {}).values() for r in e.get("cases", [])
            if "ms_per_frame" in r and r.get("size") and r.get("tool") == "composite"]
    if not rows:
        return []
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    series: dict[str, list[tuple[float, float]]] = {}
    for r in rows:
        w, h = (int(v) for v in r["size"].split("x"))
        name = f"{r['suite']}: {r['case'].split('@')[0]}"
        series.setdefault(name, []).append((w * h / 1e6, r["ms_per_frame"]))
    multi = {k: sorted(v) for k, v in series.items() if len({p[0] for p in v}) > 1}
    if multi:
        fig, ax = plt.subplots(figsize=(9, 6))
        for name, pts in sorted(multi.items(), key=lambda kv: -kv[1][-1][1])[:16]:
            ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=name)
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("megapixels per frame")
        ax.set_ylabel("ms per frame")
        ax.set_title("Time per frame against resolution")
        ax.legend(fontsize=7)
        fig.tight_layout()
        path = folder / f"{stem}-resolution.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        written.append(path)
    sizes = [r["size"] for r in rows]
    common = "1920x1080" if "1920x1080" in sizes else max(set(sizes), key=sizes.count)
    at = sorted((r for r in rows if r["size"] == common), key=lambda r: r["ms_per_frame"])[-30:]
    fig, ax = plt.subplots(figsize=(9, max(3, 0.28 * len(at) + 1)))
    ax.barh([f"{r['suite']}: {r['case'].split('@')[0]}" for r in at], [r["ms_per_frame"] for r in at])
    ax.set_xlabel(f"ms per frame at {common}")
    ax.set_title("Time per frame by stage and pipeline")
    ax.tick_params(axis="y", labelsize=7)
    fig.tight_layout()
    path = folder / f"{stem}-breakdown.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    written.append(path)
    return written


def _size(text: str) -> tuple[int, int]:
    try:
        w, h = text.lower().split("x")
        return int(w), int(h)
    except ValueError:
        raise argparse.ArgumentTypeError(f"sizes are written WIDTHxHEIGHT, got {text!r}") from None


def add_arguments(ap: argparse.ArgumentParser) -> None:
    """The runner's options (shared by ``python -m benchmarks`` and ``composite bench``)."""
    ap.add_argument("--quick", action="store_true", help="small sizes (640x360, 1280x720) and 3 frames per case")
    ap.add_argument("--suite", action="append", dest="suites", metavar="NAME",
                    help="run only this suite (repeatable; default: every benchmarks/suite_*.py)")
    ap.add_argument("--case", dest="case_filter", metavar="TEXT", help="run only cases whose name contains TEXT")
    ap.add_argument("--sizes", type=lambda s: [_size(v) for v in s.split(",")],
                    help="comma-separated WIDTHxHEIGHT list (default 1920x1080,3840x2160)")
    ap.add_argument("--frames", type=int, help="timed frames per case (default 8, quick 3)")
    ap.add_argument("--threads", type=int, help="cap OpenCV/BLAS threads in the measuring processes")
    ap.add_argument("--no-peers", action="store_true", help="skip peer tools (oiiotool, ffmpeg)")
    ap.add_argument("--timeout", type=float, default=600.0, help="seconds allowed per case (default 600)")
    ap.add_argument("--json", dest="json_path", metavar="PATH",
                    help="write the JSON report here (markdown beside it); default benchmarks/results/")
    ap.add_argument("--markdown", dest="markdown_path", metavar="PATH", help="write the markdown report here")
    ap.add_argument("--list", action="store_true", help="list suites and cases without running them")
    ap.add_argument("--device", metavar="DEVICE",
                    help="also measure the torch path on this device (cuda, cuda:N, torch-cpu) in suites that have one")


def main_from_args(args: argparse.Namespace) -> int:
    if getattr(args, "device", None):  # suites with a torch path (suite_gpu) read the devices from here
        os.environ["COMPOSITE_BENCH_DEVICES"] = f"numpy,{args.device}"
    config = Config.make(quick=args.quick, sizes=args.sizes, frames=args.frames, threads=args.threads,
                         peers=not args.no_peers, timeout=args.timeout)
    if args.list:
        for name in args.suites or discover_suites():
            try:
                mod = load_suite(name)
            except Exception as exc:
                print(f"{name}: cannot import ({type(exc).__name__}: {exc})")
                continue
            if not hasattr(mod, "cases"):
                print(f"{name}: {'report() only' if hasattr(mod, 'report') else 'does not follow the contract'}")
                continue
            for c in mod.cases(config):
                if not args.case_filter or args.case_filter in c.name:
                    print(f"{name}: {c.name} [{c.tool}]")
        return 0
    report = run(config, suites=args.suites, case_filter=args.case_filter)
    jp, mp = write_report(report, json_path=args.json_path, markdown_path=args.markdown_path)
    errors = sum(1 for e in report["suites"].values() for r in e["cases"] if "error" in r)
    print(f"wrote {jp} and {mp}" + (f" ({errors} case(s) failed)" if errors else ""))
    return 1 if errors else 0


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["--child"]:
        return _child_main(argv[1])
    ap = argparse.ArgumentParser(prog="python -m benchmarks",
                                 description="Throughput, memory and graph-overhead benchmarks of composite.")
    add_arguments(ap)
    return main_from_args(ap.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
