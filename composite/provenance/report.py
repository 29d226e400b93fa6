"""Show reports: which shots hold generated pixels, how much, from which models — and timeline annotations.

:func:`collect` reads every output manifest under a folder, or the shots of a timeline (a conformed
``.otio`` written by ``composite render --timeline``, or any timeline whose clips reference composite
renders), assembles each output's shot manifest (checking its files' checksums) and summarises it as a
:class:`ShotSummary`. :func:`to_json` / :func:`to_markdown` write the report; :func:`thumbnail_sheet`
draws one row per shot: the frame with the most generated pixels beside its ``ai_coverage`` matte.
:func:`annotate_timeline` writes each clip's summary into ``clip.metadata["composite"]["provenance"]``.

Example
-------
>>> rep = collect("renders/")                       # doctest: +SKIP
>>> print(to_markdown(rep))                         # doctest: +SKIP
>>> thumbnail_sheet(rep, "provenance_sheet.png")    # doctest: +SKIP
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..core.errors import InputError
from . import iptc
from . import manifest as mf

REPORT_SCHEMA = "composite.provenance-report/1"
TIMELINE_EXTENSIONS = (".otio", ".otioz", ".otiod", ".edl", ".xml", ".fcpxml", ".aaf")


@dataclass
class ShotSummary:
    """One output of one shot, summarised."""

    shot: str
    output: str | None
    manifest: str | None
    manifest_id: str | None = None
    frames: int = 0
    generated_frames: int = 0
    ai_coverage_mean: float = 0.0
    ai_coverage_peak: float = 0.0
    models: list[str] = field(default_factory=list)
    digital_source_type: str | None = None
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    clip: str | None = None
    peak_frame: int | None = None
    data: dict[str, Any] | None = field(default=None, repr=False)

    @property
    def has_generated_pixels(self) -> bool:
        return self.generated_frames > 0

    def as_dict(self) -> dict[str, Any]:
        out = {k: v for k, v in asdict(self).items() if k != "data"}
        out["has_generated_pixels"] = self.has_generated_pixels
        out["digital_source_type_name"] = iptc.short_name(self.digital_source_type)
        return out


@dataclass
class ShowReport:
    source: str
    shots: list[ShotSummary]
    notes: list[str] = field(default_factory=list)

    @property
    def totals(self) -> dict[str, Any]:
        with_manifest = [s for s in self.shots if s.manifest]
        return {"shots": len(self.shots), "shots_with_manifest": len(with_manifest),
                "shots_with_generated_pixels": sum(1 for s in self.shots if s.has_generated_pixels),
                "frames": sum(s.frames for s in self.shots),
                "generated_frames": sum(s.generated_frames for s in self.shots),
                "models": sorted({m for s in self.shots for m in s.models}),
                "errors": sum(len(s.errors) for s in self.shots)}

    @property
    def ok(self) -> bool:
        return all(not s.errors for s in self.shots)

    def as_dict(self) -> dict[str, Any]:
        return {"schema": REPORT_SCHEMA, "source": self.source, "totals": self.totals,
                "shots": [s.as_dict() for s in self.shots], "notes": list(self.notes)}


# -- collecting ----------------------------------------------------------------------------------

def summarise_manifest(data: Mapping[str, Any], *, location: str | None = None, shot: str | None = None,
                       clip: str | None = None) -> ShotSummary:
    """A :class:`ShotSummary` of an assembled shot manifest."""
    summ = data.get("summary") or mf.summarise(data)
    frames = data.get("frames") or {}
    peak = None
    if frames:
        peak = int(max(frames, key=lambda k: ((frames[k].get("ai_coverage") or {}).get("mean", 0.0), -int(k))))
    issues = data.get("issues") or []
    return ShotSummary(
        shot=shot or data.get("shot") or "?", output=(data.get("output") or {}).get("path"), manifest=location,
        manifest_id=data.get("manifest_id"), frames=int(summ.get("frames", 0)),
        generated_frames=int(summ.get("generated_frames", 0)),
        ai_coverage_mean=float(summ.get("ai_coverage_mean", 0.0)), ai_coverage_peak=float(summ.get("ai_coverage_peak", 0.0)),
        models=list(summ.get("models") or []), digital_source_type=data.get("digital_source_type"),
        errors=[i.get("message", i.get("code")) for i in issues if i.get("severity") == "error"],
        warnings=[i.get("message", i.get("code")) for i in issues if i.get("severity") != "error"],
        clip=clip, peak_frame=peak, data=dict(data))


def _missing(shot: str, output: str | None, clip: str | None = None) -> ShotSummary:
    return ShotSummary(shot=shot, output=output, manifest=None, clip=clip,
                       errors=[f"no provenance manifest for {output or shot}; it was not rendered by composite, or "
                               "its manifest was removed"])


def collect_folder(folder: str | os.PathLike, *, checksums: bool = True) -> ShowReport:
    """Every output manifest under ``folder`` (sorted by path)."""
    found = mf.find_output_manifests(folder)
    if not found:
        raise InputError(f"{folder}: no provenance manifests (*.provenance/ or *.provenance.json) under this folder")
    shots = []
    for loc in found:
        data = mf.assemble(loc, check=True, checksums=checksums)
        shots.append(summarise_manifest(data, location=str(loc)))
    return ShowReport(str(folder), shots)


def _clip_outputs(clip) -> list[str]:
    """Output paths a clip points at: the conform step's ``metadata["composite"]["outputs"]``, else its
    media reference."""
    import opentimelineio as otio

    from ..io.conform import _url_to_path

    meta = clip.metadata.get("composite") if hasattr(clip.metadata, "get") else None
    paths: list[str] = []
    if meta is not None and hasattr(meta, "get") and meta.get("outputs"):
        outputs = meta.get("outputs")
        paths += [str(outputs[k]) for k in sorted(outputs.keys())]
    ref = clip.media_reference
    if isinstance(ref, otio.schema.ImageSequenceReference):
        base = _url_to_path(ref.target_url_base)
        pad = max(int(ref.frame_zero_padding), 1)
        paths.append(os.path.join(base, f"{ref.name_prefix}{'#' * pad}{ref.name_suffix}"))
    elif isinstance(ref, otio.schema.ExternalReference) and ref.target_url:
        paths.append(_url_to_path(ref.target_url))
    seen, out = set(), []
    for p in paths:
        key = os.path.normpath(os.path.abspath(p))
        if key not in seen:
            seen.add(key)
            out.append(p)
    return out


def _manifest_location(path: str, base: Path | None) -> Path | None:
    cands = [Path(path)]
    if base is not None and not os.path.isabs(path):
        cands.insert(0, base / path)
    for c in cands:
        side = mf.sidecar_dir(c)
        if side.is_dir() or mf.shot_manifest_path(c).is_file():
            return side
    return None


def collect_timeline(path: str | os.PathLike, *, rate: float | None = None,
                     checksums: bool = True) -> tuple[ShowReport, Any, dict]:
    """Summaries of a timeline's clips, in timeline order. Returns the report, the timeline and
    ``{clip index: [ShotSummary, ...]}`` for :func:`annotate_timeline`."""
    from ..io.conform import load_timeline

    timeline, notes = load_timeline(path, rate=rate)
    base = Path(path).resolve().parent
    shots: list[ShotSummary] = []
    by_clip: dict[int, list[ShotSummary]] = {}
    for i, clip in enumerate(timeline.find_clips()):
        outs = _clip_outputs(clip)
        found = False
        for out in outs:
            loc = _manifest_location(out, base)
            if loc is None:
                continue
            data = mf.assemble(loc, check=True, checksums=checksums)
            s = summarise_manifest(data, location=str(loc), shot=clip.name or data.get("shot"), clip=clip.name)
            shots.append(s)
            by_clip.setdefault(i, []).append(s)
            found = True
        if not found:
            s = _missing(clip.name or f"clip {i}", outs[0] if outs else None, clip=clip.name)
            shots.append(s)
            by_clip.setdefault(i, []).append(s)
    return ShowReport(str(path), shots, notes), timeline, by_clip


def collect(location: str | os.PathLike, *, rate: float | None = None, checksums: bool = True) -> ShowReport:
    """A :class:`ShowReport` of a folder of renders or of a timeline (``checksums=False``: compare output
    file sizes instead of their sha256)."""
    p = Path(location)
    if not p.exists():
        raise InputError(f"{p}: no such file or folder")
    if p.is_dir():
        return collect_folder(p, checksums=checksums)
    if p.suffix.lower() in TIMELINE_EXTENSIONS:
        return collect_timeline(p, rate=rate, checksums=checksums)[0]
    if p.suffix == ".json":
        data = mf.assemble(p, check=True, checksums=checksums)
        return ShowReport(str(p), [summarise_manifest(data, location=str(p))])
    raise InputError(f"{p}: give a folder of renders, a timeline ({', '.join(TIMELINE_EXTENSIONS)}) or a manifest")


# -- timeline annotation -------------------------------------------------------------------------

def clip_summary(summaries: Sequence[ShotSummary]) -> dict[str, Any]:
    """The JSON-able summary written into a clip's metadata."""
    outs = []
    for s in summaries:
        outs.append({"output": s.output, "manifest": s.manifest, "manifest_id": s.manifest_id, "frames": s.frames,
                     "generated_frames": s.generated_frames, "ai_coverage_mean": s.ai_coverage_mean,
                     "ai_coverage_peak": s.ai_coverage_peak, "models": list(s.models),
                     "digital_source_type": s.digital_source_type, "errors": list(s.errors)})
    gen = any(s.has_generated_pixels for s in summaries)
    return {"schema": mf.SCHEMA, "has_generated_pixels": gen,
            "digital_source_type": iptc.combine([s.digital_source_type for s in summaries if s.digital_source_type])
            if any(s.digital_source_type for s in summaries) else None,
            "ai_coverage_peak": max((s.ai_coverage_peak for s in summaries), default=0.0),
            "models": sorted({m for s in summaries for m in s.models}), "outputs": outs}


def annotate_timeline(timeline, manifests: Mapping[int, Sequence[ShotSummary]] | Iterable[Mapping[str, Any]] | None = None,
                      *, base: str | os.PathLike | None = None) -> int:
    """Write each clip's provenance summary into ``clip.metadata["composite"]["provenance"]``.

    ``manifests``: ``{clip index: [ShotSummary]}`` (from :func:`collect_timeline`), or assembled shot
    manifests matched to clips by their output paths; None finds each clip's manifests from its outputs
    (paths relative to ``base``). Returns the number of clips annotated.
    """
    clips = list(timeline.find_clips())
    by_clip: dict[int, list[ShotSummary]] = {}
    if isinstance(manifests, Mapping):
        by_clip = {int(k): list(v) for k, v in manifests.items()}
    else:
        given = list(manifests or [])
        index: dict[str, Mapping[str, Any]] = {}
        for m in given:
            out = (m.get("output") or {}).get("path")
            if out:
                index[os.path.normpath(os.path.abspath(out))] = m
        basep = Path(base) if base is not None else None
        for i, clip in enumerate(clips):
            for out in _clip_outputs(clip):
                key = os.path.normpath(os.path.abspath(out if basep is None or os.path.isabs(out) else basep / out))
                if key in index:
                    by_clip.setdefault(i, []).append(summarise_manifest(index[key], shot=clip.name, clip=clip.name))
                elif not given:
                    loc = _manifest_location(out, basep)
                    if loc is not None:
                        data = mf.assemble(loc, check=True)
                        by_clip.setdefault(i, []).append(summarise_manifest(data, location=str(loc), shot=clip.name,
                                                                            clip=clip.name))
    count = 0
    for i, clip in enumerate(clips):
        sums = [s for s in by_clip.get(i, []) if s.manifest_id or s.manifest]
        if not sums:
            continue
        summary = json.loads(json.dumps(clip_summary(sums), default=str))
        if "composite" in clip.metadata and hasattr(clip.metadata["composite"], "keys"):
            clip.metadata["composite"]["provenance"] = summary  # keep what the conform step recorded
        else:
            clip.metadata["composite"] = {"provenance": summary}
        count += 1
    return count


# -- writing -------------------------------------------------------------------------------------

def to_json(report: ShowReport) -> str:
    return json.dumps(report.as_dict(), sort_keys=True, indent=2, default=str) + "\n"


def _pct(v: float) -> str:
    return f"{100.0 * v:.2f}%"


def to_markdown(report: ShowReport) -> str:
    """A Markdown page: totals, one table row per shot, then the problems."""
    t = report.totals
    lines = [f"# AI provenance report: {report.source}", "",
             f"- shots: {t['shots']} ({t['shots_with_generated_pixels']} with generated pixels, "
             f"{t['shots_with_manifest']} with a provenance manifest)",
             f"- frames: {t['frames']} ({t['generated_frames']} with generated pixels)",
             f"- models: {', '.join(t['models']) or 'none'}", "",
             "| shot | output | frames | generated frames | mean AI coverage | peak AI coverage | models | "
             "digital source type | status |",
             "|---|---|---:|---:|---:|---:|---|---|---|"]
    for s in report.shots:
        status = "OK" if not s.errors else f"{len(s.errors)} error(s)"
        lines.append(f"| {s.shot} | {s.output or '—'} | {s.frames} | {s.generated_frames} | "
                     f"{_pct(s.ai_coverage_mean)} | {_pct(s.ai_coverage_peak)} | {', '.join(s.models) or '—'} | "
                     f"{iptc.short_name(s.digital_source_type) or '—'} | {status} |")
    problems = [(s, e, "error") for s in report.shots for e in s.errors] + \
        [(s, w, "warning") for s in report.shots for w in s.warnings]
    if problems:
        lines += ["", "## Problems", ""]
        for s, text, kind in problems:
            lines.append(f"- **{kind}** {s.shot}: {text}")
    for n in report.notes:
        lines.append(f"- note: {n}")
    return "\n".join(lines) + "\n"


# -- thumbnail sheet -----------------------------------------------------------------------------

def _frame_pixels(summary: ShotSummary, frame: int) -> tuple[np.ndarray | None, np.ndarray | None]:
    """(display RGB float in [0, 1], coverage (H, W)) of one rendered frame, from its file."""
    from ..color import ocio
    from ..core.coverage import COVERAGE_LAYER
    from ..core.merge import to_window
    from ..io import images, video

    data = summary.data or {}
    rec = (data.get("frames") or {}).get(str(frame)) or {}
    rel = rec.get("file")
    if not rel or not summary.manifest:
        return None, None
    path = mf.output_folder(summary.manifest) / rel
    if not path.is_file():
        return None, None
    if images.is_movie(path):
        frames = sorted(int(k) for k in data.get("frames") or {})
        meta = video.read_movie_metadata(path)
        recorded = sorted(video.decode_fingerprints(meta.get(video.METADATA_KEY))) or frames
        index = recorded.index(frame) if frame in recorded else frames.index(frame)
        img = images.read_image(path, frame_index=index)
        return np.clip(img.pixels[..., :3], 0, 1), None
    img = images.read_image(path)
    img = to_window(img, img.display_window)
    cov = img.layers[COVERAGE_LAYER].pixels[..., 0] if COVERAGE_LAYER in img.layers else None
    if cov is None and images.is_exr(path):  # an EXR render without the layer has no generated pixels
        cov = np.zeros(img.pixels.shape[:2], np.float32)
    rgb = np.ascontiguousarray(img.pixels[..., :3]) if img.channels[:3] == ("R", "G", "B") else \
        np.repeat(img.pixels[..., :1], 3, axis=2)
    if images.is_exr(path):
        rgb = ocio.to_display(rgb, img.colorspace, display=ocio.DEFAULT_DISPLAY, view=ocio.DEFAULT_VIEW)
    return np.clip(rgb, 0, 1), cov


def _fit(rgb: np.ndarray, height: int) -> np.ndarray:
    import cv2

    h, w = rgb.shape[:2]
    width = max(1, int(round(w * height / h)))
    return cv2.resize(rgb.astype(np.float32), (width, height), interpolation=cv2.INTER_AREA)


def _u8(rgb: np.ndarray) -> np.ndarray:
    """Display RGB float in [0, 1] → uint8 (OpenCV draws text on 8-bit images only)."""
    return (np.clip(rgb, 0, 1) * 255.0 + 0.5).astype(np.uint8)


def _ascii(text: str) -> str:
    return text.encode("ascii", "replace").decode("ascii")


def thumbnail_sheet(report: ShowReport, path: str | os.PathLike, *, height: int = 180) -> Path:
    """Write a PNG with one row per shot: the frame with the highest mean AI coverage, its coverage
    matte (white = generated) and a caption (shot, frame, mean/peak coverage, models)."""
    import cv2

    from ..io.atomic import atomic_output

    rows = []
    pad = 8
    grey = (170, 170, 170)
    for s in report.shots:
        frame = s.peak_frame
        rgb, cov = _frame_pixels(s, frame) if frame is not None else (None, None)
        if rgb is None:
            rgb = np.full((height, int(height * 16 / 9), 3), 0.15, np.float32)
        img = _u8(_fit(rgb, height))
        if cov is None:
            matte = np.full_like(img, 20)
            cv2.putText(matte, "no coverage layer", (8, height // 2), cv2.FONT_HERSHEY_SIMPLEX, 0.45, grey, 1,
                        cv2.LINE_AA)
        else:
            m = np.clip(np.nan_to_num(cov), 0, 1).astype(np.float32)
            matte = _u8(_fit(np.repeat(m[..., None], 3, axis=2), height))
        caption = np.full((height, 460, 3), 25, np.uint8)
        name = os.path.basename(s.output or "")
        lines = [s.shot + (f" ({name})" if name else "") + (f" frame {frame}" if frame is not None else ""),
                 f"{s.frames} frames, {s.generated_frames} with generated pixels",
                 f"AI coverage mean {_pct(s.ai_coverage_mean)}, peak {_pct(s.ai_coverage_peak)}",
                 (", ".join(s.models) or "no models")[:60],
                 str(iptc.short_name(s.digital_source_type) or "no manifest"),
                 "OK" if not s.errors else f"{len(s.errors)} error(s): {s.errors[0][:48]}"]
        for i, line in enumerate(lines):
            colour = (230, 230, 230) if i < 5 else ((120, 230, 120) if not s.errors else (255, 110, 100))
            cv2.putText(caption, _ascii(line), (10, 26 + 26 * i), cv2.FONT_HERSHEY_SIMPLEX, 0.5, colour, 1,
                        cv2.LINE_AA)
        gap = np.zeros((height, pad, 3), np.uint8)
        rows.append(np.concatenate([img, gap, matte, gap, caption], axis=1))
    if not rows:
        raise InputError("the report has no shots to draw")
    width = max(r.shape[1] for r in rows)
    spaced = []
    for r in rows:
        spaced += [np.pad(r, ((0, 0), (0, width - r.shape[1]), (0, 0))), np.zeros((pad, width, 3), np.uint8)]
    sheet = np.concatenate(spaced[:-1], axis=0)
    path = Path(path)
    with atomic_output(path) as tmp:
        if not cv2.imwrite(str(tmp), np.ascontiguousarray(sheet[..., ::-1])):
            raise InputError(f"{path}: cannot write the thumbnail sheet")
    return path
