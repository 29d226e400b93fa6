"""Provenance manifests: the versioned JSON record a render writes beside its outputs.

Layout on disk, for an output ``renders/sh010/sh010.####.exr``::

    renders/sh010/sh010.1001.exr ...            the frames (their headers carry a compact summary)
    renders/sh010/sh010.exr.provenance/         one *part* per render chunk, written atomically
        1001-1010.json
        1011-1020.json
    renders/sh010/sh010.exr.provenance.json     the *shot* manifest, assembled from the parts

Each chunk writes only its own part (named after its frames), so concurrent farm tasks never write the
same file; :func:`assemble` merges the parts into the shot manifest. Everything in a manifest except its
``render`` section (timestamps, host, which parts it came from) depends only on the recipe, the inputs
and the pixels, so the shot manifest is the same however the frames were split into chunks.

Schema ``composite.provenance/1`` (keys of a part or shot manifest):

``schema``, ``kind``
    ``"composite.provenance/1"``; ``"part"`` or ``"shot"``.
``manifest_id``
    ``urn:composite:provenance:<32 hex>`` derived from the shot name, output node and output path; the
    same for every part and for the shot manifest (and recorded in each frame's header).
``shot``, ``output``
    Pipeline name; ``{"node", "type", "path", "format"}`` of the output stage.
``recipes``
    ``{recipe fingerprint: {"recipe": ..., "source": ...}}`` (frames name the one that made them).
``frames``
    ``{"1001": {"fingerprint", "file", "recipe", "ai_coverage": {"mean", "max", "area"},
    "digital_source_type", "generators": [ids], "inputs": {node: [files]}}}``.
``files``
    Output files (relative to the output folder) → ``{"sha256", "size"}`` (+ ``"c2pa"`` for review media).
``inputs``
    Plate readers: ``{node: {"type", "path", "files": {absolute path: {"sha256", "size", ...}}}}``.
``assets``
    Other files the recipe names (LUTs, sprite libraries, grain profiles): ``{"node.param": {...}}``.
``generators``
    ``{id: {"record": {...}, "status", "card", "trained"}}`` (see :mod:`composite.provenance.cards`).
``software``
    Versions of composite, Python and the libraries that touch pixels.
``digital_source_type``, ``summary``
    The shot's IPTC term; frames, generated frames, mean and peak coverage, models.
``c2pa``
    Signing policy and status for review media.
``issues``
    ``[{"severity": "error"|"warning", "code", "message", ...}]``: what a reader must not overlook.
``render``
    Non-deterministic facts: ``created`` (UTC), ``host``, ``frames`` rendered, ``parts`` merged.

Example
-------
>>> str(sidecar_dir("renders/sh010.####.exr"))
'renders/sh010.exr.provenance'
>>> part_path("renders/sh010.####.exr", [1001, 1002, 1003]).name
'1001-1003.json'
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import platform
import socket
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

from ..core.errors import InputError
from . import iptc
from .checksums import describe_file
from .coverage_stats import shot_coverage

SCHEMA = "composite.provenance/1"
SIDECAR_SUFFIX = ".provenance"
ID_PREFIX = "urn:composite:provenance:"
#: Packages whose versions manifests record (those that read, convert or write pixels).
SOFTWARE_PACKAGES = ("numpy", "OpenEXR", "opencolorio", "OpenImageIO", "opencv-python-headless",
                     "opentimelineio", "av", "scipy", "torch", "c2pa-python")


# -- names ---------------------------------------------------------------------------------------

def _split_output(pattern: str | os.PathLike) -> tuple[Path, str, str]:
    """(folder, stem, extension without dot) of an output path or sequence pattern."""
    from ..io.sequence import SequencePattern

    text = os.fspath(pattern)
    seq = SequencePattern.parse(text)
    if seq.is_sequence:
        folder, base = os.path.split(seq.prefix)
        stem = base.rstrip("._-") or "render"
        ext = seq.suffix.lstrip(".")
    else:
        folder, name = os.path.split(text)
        stem, ext = os.path.splitext(name)
        ext = ext.lstrip(".")
    return Path(folder or "."), stem, ext.lower()


def sidecar_dir(pattern: str | os.PathLike) -> Path:
    """The folder holding the manifest parts of an output (``<stem>.<ext>.provenance``)."""
    folder, stem, ext = _split_output(pattern)
    return folder / f"{stem}.{ext}{SIDECAR_SUFFIX}" if ext else folder / f"{stem}{SIDECAR_SUFFIX}"


def shot_manifest_path(pattern: str | os.PathLike) -> Path:
    """Where the assembled shot manifest of an output goes (``<stem>.<ext>.provenance.json``)."""
    d = sidecar_dir(pattern)
    return d.with_name(d.name + ".json")


def part_name(frames: Sequence[int]) -> str:
    """``1001-1010.json`` for a contiguous chunk; non-contiguous chunks add a digest of their frames."""
    frames = sorted(set(int(f) for f in frames))
    if not frames:
        return "empty.json"
    name = f"{frames[0]}-{frames[-1]}"
    if frames != list(range(frames[0], frames[-1] + 1)):
        name += "_" + hashlib.sha256(",".join(map(str, frames)).encode()).hexdigest()[:8]
    return name + ".json"


def part_path(pattern: str | os.PathLike, frames: Sequence[int]) -> Path:
    return sidecar_dir(pattern) / part_name(frames)


def manifest_id(shot: str, output_node: str, output_path: str) -> str:
    """The id shared by every part of an output's manifest and its frames' headers."""
    text = f"{SCHEMA}|{shot}|{output_node}|{os.path.normpath(os.fspath(output_path))}"
    return ID_PREFIX + hashlib.sha256(text.encode()).hexdigest()[:32]


# -- software ------------------------------------------------------------------------------------

@lru_cache(maxsize=1)
def _software() -> tuple[tuple[str, str], ...]:
    from importlib.metadata import PackageNotFoundError, version

    from .. import __version__

    found = {"composite": __version__, "python": platform.python_version()}
    for pkg in SOFTWARE_PACKAGES:
        try:
            found[pkg] = version(pkg)
        except PackageNotFoundError:
            continue
    return tuple(sorted(found.items()))


def software_versions() -> dict[str, str]:
    """``{"composite": ..., "python": ..., "numpy": ..., "OpenEXR": ..., ...}`` (installed packages only)."""
    return dict(_software())


def render_facts(frames: Iterable[int] | None = None) -> dict[str, Any]:
    """The non-deterministic ``render`` section: UTC time, host and process."""
    facts: dict[str, Any] = {
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "host": socket.gethostname(),
        "pid": os.getpid(),
    }
    if frames is not None:
        from ..io.sequence import format_frame_list

        facts["frames"] = format_frame_list(sorted(set(frames)))
    return facts


# -- reading and writing -------------------------------------------------------------------------

def dumps(data: Mapping[str, Any]) -> str:
    """Canonical JSON text of a manifest (sorted keys, two-space indent, final newline)."""
    return json.dumps(data, sort_keys=True, indent=2, ensure_ascii=False, default=str) + "\n"


def content_digest(data: Mapping[str, Any]) -> str:
    """sha256 of a manifest's deterministic content (everything but ``render``)."""
    body = {k: v for k, v in data.items() if k != "render"}
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":"), default=str).encode()).hexdigest()


def write_manifest(path: str | os.PathLike, data: Mapping[str, Any]) -> Path:
    """Write a manifest atomically (temporary name, then rename)."""
    from ..io.atomic import write_text_atomic

    return write_text_atomic(path, dumps(data))


def upgrade(data: dict[str, Any], *, where: str = "<manifest>") -> dict[str, Any]:
    """Bring a manifest to the current schema (there is one version so far); refuse unknown ones."""
    schema = data.get("schema")
    if schema == SCHEMA:
        return data
    raise InputError(f"{where}: unknown provenance schema {schema!r}; this composite reads {SCHEMA}")


def load_manifest(path: str | os.PathLike) -> dict[str, Any]:
    """Read a manifest (part or shot) and check its schema."""
    p = Path(path)
    try:
        data = json.loads(p.read_text())
    except FileNotFoundError:
        raise InputError(f"{p}: provenance manifest not found") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(f"{p}: not a readable provenance manifest ({exc})") from None
    if not isinstance(data, dict):
        raise InputError(f"{p}: a provenance manifest is a JSON object")
    return upgrade(data, where=str(p))


def list_parts(folder: str | os.PathLike) -> list[Path]:
    d = Path(folder)
    if not d.is_dir():
        return []
    return sorted(p for p in d.glob("*.json") if not p.name.startswith("."))


# -- summaries -----------------------------------------------------------------------------------

def _frame_sort(frames: Mapping[str, Any]) -> dict[str, Any]:
    return {k: frames[k] for k in sorted(frames, key=lambda s: int(s))}


def summarise(data: Mapping[str, Any]) -> dict[str, Any]:
    """Shot summary: frames, generated frames, mean and peak AI coverage, models, digital source type."""
    frames = data.get("frames") or {}
    cov = shot_coverage(frames)
    used = sorted({g for f in frames.values() for g in f.get("generators", [])})
    gens = data.get("generators") or {}
    models = sorted({_model_label(gens[g]) for g in used if g in gens and gens[g].get("record", {}).get("generated")})
    terms = [f.get("digital_source_type") for f in frames.values()]
    captured = int((data.get("summary") or {}).get("captured_sources", 0) or 0)
    return {"frames": cov["frames"], "generated_frames": cov["generated_frames"],
            "ai_coverage_mean": cov["mean"], "ai_coverage_peak": cov["peak"], "models": models,
            "captured_sources": captured,
            "digital_source_type": iptc.combine(terms, captured_sources=captured) if terms else None}


def _model_label(gen: Mapping[str, Any]) -> str:
    rec = gen.get("record") or {}
    card = (gen.get("card") or {}).get("name")
    backend = rec.get("backend", "?")
    return f"{backend} ({card})" if card else backend


def finalise(data: dict[str, Any]) -> dict[str, Any]:
    """Sort frames, recompute ``summary`` and ``digital_source_type`` and de-duplicate ``issues``."""
    data["frames"] = _frame_sort(data.get("frames") or {})
    data["summary"] = summarise(data)
    data["digital_source_type"] = data["summary"]["digital_source_type"]
    seen, issues = set(), []
    for issue in data.get("issues") or []:
        key = json.dumps(issue, sort_keys=True, default=str)
        if key not in seen:
            seen.add(key)
            issues.append(issue)
    data["issues"] = sorted(issues, key=lambda i: (i.get("severity") != "error", str(i.get("code")),
                                                   int(i.get("frame", 0) or 0), str(i.get("message"))))
    return data


def errors(data: Mapping[str, Any]) -> list[dict[str, Any]]:
    return [i for i in data.get("issues") or [] if i.get("severity") == "error"]


# -- merging -------------------------------------------------------------------------------------

def _canon(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


def output_folder(manifest_path_or_dir: str | os.PathLike) -> Path:
    """The folder the ``files`` of a manifest are relative to (the parent of the sidecar folder)."""
    p = Path(manifest_path_or_dir)
    if p.is_dir() and p.name.endswith(SIDECAR_SUFFIX):
        return p.parent
    if p.parent.name.endswith(SIDECAR_SUFFIX):
        return p.parent.parent
    return p.parent


def check_files(data: dict[str, Any], folder: str | os.PathLike, *, checksums: bool = True) -> list[dict[str, Any]]:
    """Issues for output files that are missing or whose sha256 no longer matches the manifest
    (``checksums=False``: compare sizes only, for a quick look at a large show)."""
    folder = Path(folder)
    issues = []
    for rel, info in sorted((data.get("files") or {}).items()):
        path = folder / rel
        if not checksums:
            if not path.is_file():
                issues.append({"severity": "error", "code": "missing_output", "file": rel,
                               "message": f"{path}: listed in the provenance manifest but missing"})
            elif info.get("size") is not None and path.stat().st_size != info["size"]:
                issues.append({"severity": "error", "code": "checksum_mismatch", "file": rel,
                               "message": f"{path}: {path.stat().st_size} bytes, the manifest says {info['size']}; "
                                          "the file changed after it was rendered"})
            continue
        now = describe_file(path)
        if now.get("missing"):
            issues.append({"severity": "error", "code": "missing_output", "file": rel,
                           "message": f"{path}: listed in the provenance manifest but missing"})
        elif info.get("sha256") and now["sha256"] != info["sha256"]:
            issues.append({"severity": "error", "code": "checksum_mismatch", "file": rel,
                           "message": f"{path}: sha256 {now['sha256']} differs from the manifest's {info['sha256']}; "
                                      "the file changed after it was rendered"})
    return issues


def merge_manifests(parts: Sequence[Mapping[str, Any]], *, folder: str | os.PathLike | None = None,
                    names: Sequence[str] | None = None) -> dict[str, Any]:
    """Merge manifest parts (or shot manifests) of one output into a shot manifest.

    Where parts disagree about a frame (it was rendered twice, by different recipes or software), the
    record whose output file matches the file on disk wins when ``folder`` is given, else the part
    written last; disagreements that cannot be settled become issues. The result does not depend on
    the order of ``parts`` nor on how the frames were split into parts (its ``render`` section aside).
    """
    if not parts:
        raise InputError("no provenance manifest parts to merge")
    names = list(names) if names is not None else [f"part{i}" for i in range(len(parts))]
    order = sorted(range(len(parts)), key=lambda i: (str((parts[i].get("render") or {}).get("created", "")), names[i]))
    parts = [parts[i] for i in order]
    names = [names[i] for i in order]
    ids = sorted({p.get("manifest_id") for p in parts})
    issues: list[dict[str, Any]] = []
    if len(ids) > 1:
        issues.append({"severity": "error", "code": "mixed_manifests",
                       "message": f"parts of different outputs were merged: {', '.join(map(str, ids))}"})
    disk: dict[str, str | None] = {}

    def on_disk(rel: str) -> str | None:
        if folder is None:
            return None
        if rel not in disk:
            d = describe_file(Path(folder) / rel)
            disk[rel] = d.get("sha256")
        return disk[rel]

    out: dict[str, Any] = {"schema": SCHEMA, "kind": "shot", "manifest_id": ids[-1] if ids else None}
    for key in ("shot", "output"):
        values = sorted({_canon(p.get(key)) for p in parts})
        out[key] = json.loads(values[-1]) if values else None
        if len(values) > 1:
            issues.append({"severity": "warning", "code": f"mixed_{key}",
                           "message": f"parts disagree on {key}: {'; '.join(values)}"})
    # files and frames: the last written record wins unless an earlier one matches the disk
    file_cands: dict[str, list[dict[str, Any]]] = {}
    frame_cands: dict[str, list[dict[str, Any]]] = {}
    for p in parts:
        for rel, info in (p.get("files") or {}).items():
            file_cands.setdefault(rel, []).append(dict(info))
        for k, f in (p.get("frames") or {}).items():
            frame_cands.setdefault(str(k), []).append(dict(f))
    files: dict[str, Any] = {}
    for rel, cands in file_cands.items():
        chosen = cands[-1]
        if folder is not None and len({_canon(c) for c in cands}) > 1:
            matching = [c for c in cands if c.get("sha256") and c.get("sha256") == on_disk(rel)]
            chosen = matching[-1] if matching else chosen
        files[rel] = chosen
    frames: dict[str, Any] = {}
    for k, cands in frame_cands.items():
        chosen = cands[-1]
        if folder is not None and len({_canon(c) for c in cands}) > 1:
            matching = [c for c in cands if c.get("file")
                        and c.get("fingerprint") == _disk_fingerprint(Path(folder) / c["file"], int(k))]
            chosen = matching[-1] if matching else chosen
        frames[k] = chosen
    out["frames"] = frames
    out["files"] = dict(sorted(files.items()))
    # recipes, generators, inputs, assets: unions; conflicting values become issues
    for key in ("recipes", "generators", "assets"):
        merged: dict[str, Any] = {}
        for p in parts:
            for k, v in (p.get(key) or {}).items():
                if k in merged and _canon(merged[k]) != _canon(v):
                    issues.append({"severity": "warning", "code": f"changed_{key[:-1]}", "key": k,
                                   "message": f"{key[:-1]} {k} differs between render chunks"})
                merged[k] = v
        out[key] = dict(sorted(merged.items()))
    inputs: dict[str, Any] = {}
    for p in parts:
        for node, info in (p.get("inputs") or {}).items():
            slot = inputs.setdefault(node, {k: v for k, v in info.items() if k != "files"} | {"files": {}})
            for path, desc in (info.get("files") or {}).items():
                prev = slot["files"].get(path)
                if prev is not None and prev.get("sha256") != desc.get("sha256"):
                    issues.append({"severity": "warning", "code": "input_changed", "file": path,
                                   "message": f"{path}: input file changed between render chunks "
                                              f"(sha256 {prev.get('sha256')} then {desc.get('sha256')})"})
                slot["files"][path] = desc
    for slot in inputs.values():
        slot["files"] = dict(sorted(slot["files"].items()))
    out["inputs"] = dict(sorted(inputs.items()))
    softwares = sorted({_canon(p.get("software") or {}) for p in parts})
    if len(softwares) == 1:
        out["software"] = json.loads(softwares[0])
    else:
        out["software"] = {"mixed": [json.loads(s) for s in softwares]}
        issues.append({"severity": "warning", "code": "mixed_software",
                       "message": "render chunks ran different software versions (see software.mixed)"})
    policies = sorted({_canon((p.get("c2pa") or {}).get("policy")) for p in parts})
    out["c2pa"] = {"policy": json.loads(policies[-1]) if len(policies) == 1 else "mixed"}
    captured = max(int((p.get("summary") or {}).get("captured_sources", 0) or 0) for p in parts)
    out["summary"] = {"captured_sources": captured}
    # issues of the parts, except per-file problems that the merge settled
    for p in parts:
        for issue in p.get("issues") or []:
            issues.append(dict(issue))
    out["issues"] = issues
    out = finalise(out)
    out["render"] = {"parts": [{"name": n, **(p.get("render") or {})} for n, p in zip(names, parts)]}
    return out


def _disk_fingerprint(path: Path, frame: int) -> str | None:
    """The fingerprint of ``frame`` recorded in an output file (EXR/PNG header, or a movie's metadata)."""
    from ..io import video
    from ..io.images import is_movie, read_fingerprint

    try:
        if is_movie(path):
            meta = video.read_movie_metadata(path) if path.is_file() else {}
            return video.decode_fingerprints(meta.get(video.METADATA_KEY)).get(frame)
        return read_fingerprint(path)
    except Exception:
        return None


def find_output_manifests(root: str | os.PathLike) -> list[Path]:
    """Sidecar folders (``*.provenance``) and shot manifests (``*.provenance.json``) under ``root``,
    one entry per output (a sidecar folder wins over its assembled shot manifest)."""
    root = Path(root)
    found: dict[Path, Path] = {}
    for p in sorted(root.rglob(f"*{SIDECAR_SUFFIX}.json")):
        found[p.with_suffix("")] = p
    for p in sorted(root.rglob(f"*{SIDECAR_SUFFIX}")):
        if p.is_dir():
            found[p] = p
    return [found[k] for k in sorted(found)]


def locate(location: str | os.PathLike) -> Path:
    """The sidecar folder of an output given its path/pattern, sidecar folder, shot manifest or a part."""
    p = Path(location)
    if p.is_dir() and p.name.endswith(SIDECAR_SUFFIX):
        return p
    if p.suffix == ".json" and p.name.endswith(SIDECAR_SUFFIX + ".json"):
        return p.with_suffix("")
    if p.suffix == ".json" and p.parent.name.endswith(SIDECAR_SUFFIX):
        return p.parent
    return sidecar_dir(location)


def assemble(location: str | os.PathLike, *, write: bool = False, check: bool = True,
             checksums: bool = True) -> dict[str, Any]:
    """The shot manifest of an output: ``location`` is its sidecar folder, its shot manifest, a part,
    or the output's path/pattern. Parts are merged (:func:`merge_manifests`); with ``check`` the
    output files are compared with their recorded sha256 (mismatches become ``error`` issues); with
    ``write`` the result is written to ``<stem>.<ext>.provenance.json`` beside the sidecar folder;
    ``checksums=False`` compares file sizes instead of sha256 (fast, weaker)."""
    folder = locate(location)
    parts = list_parts(folder)
    shot_file = folder.with_name(folder.name + ".json")
    if parts:
        data = merge_manifests([load_manifest(q) for q in parts], folder=folder.parent,
                               names=[q.name for q in parts])
    elif shot_file.is_file():
        data = load_manifest(shot_file)
    else:
        raise InputError(f"{location}: no provenance manifest found (looked for {folder}/*.json and {shot_file}); "
                         "render the output with composite to write one")
    if check:
        base = [i for i in data.get("issues") or [] if i.get("code") not in ("missing_output", "checksum_mismatch")]
        data["issues"] = base + check_files(data, folder.parent, checksums=checksums)
        render = data.pop("render", None)
        data = finalise(data)
        if render is not None:
            data["render"] = render
    if write:
        write_manifest(shot_file, data)
    return data


def frame_counter(data: Mapping[str, Any]) -> Counter:
    """How many frames carry each digital source type."""
    return Counter(f.get("digital_source_type") for f in (data.get("frames") or {}).values())
