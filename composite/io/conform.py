"""OpenTimelineIO conform: timelines → shots, and rendering a recipe for every shot of a timeline.

:func:`load_timeline` reads ``.otio`` (and every format an installed OTIO adapter reads) and CMX3600
``.edl`` files (the frame rate of an EDL is given, or inferred from its timecodes and reported).
:func:`timeline_shots` lists the video clips as :class:`Shot` records: clip name, source range with
handles, visible range (transitions included), record range, media reference (image sequence or
movie) and the file frame numbers to render, rate, timecodes, and speed effects — retimes are reported
in ``warnings`` and kept on the clip, never silently dropped.

:func:`render_timeline` renders a recipe for every shot — retargeting the plate reader's ``path``, the
frames and every writer's ``path`` per shot — and writes back a timeline whose clips reference the comp
renders and carry the recipe and fingerprints in ``metadata["composite"]``.

Example
-------
>>> tl, notes = load_timeline("edit.edl", rate=25)  # doctest: +SKIP
>>> [s.name for s in timeline_shots(tl, handles=8)]  # doctest: +SKIP
"""

from __future__ import annotations

import copy
import hashlib
import logging
import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import opentimelineio as otio

from ..core.errors import InputError, RecipeError
from .atomic import atomic_output
from .sequence import SequencePattern
from .video import is_movie

log = logging.getLogger(__name__)

#: EDL rates tried, in order, when none is given.
EDL_RATES = (24.0, 25.0, 30.0, 24000 / 1001, 30000 / 1001, 48.0, 50.0, 60.0)
_NUMBERED = re.compile(r"^(.*?)(\d+)(\.[A-Za-z0-9]+)$")


# -- loading -------------------------------------------------------------------------------------

def _rate_of(value: float) -> float:
    """An exact NTSC rate for 23.976/29.97/59.94 style values."""
    for exact in (24000 / 1001, 30000 / 1001, 60000 / 1001, 48000 / 1001):
        if abs(value - exact) < 0.01:
            return exact
    return float(value)


def load_timeline(path: str | os.PathLike, *, rate: float | None = None) -> tuple[otio.schema.Timeline, list[str]]:
    """Read a timeline; return it and notes about how it was read (an inferred EDL rate, mismatches).

    ``rate``: frame rate of an EDL (default: the first of :data:`EDL_RATES` whose timecodes parse).
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise InputError(f"{path}: timeline not found")
    notes: list[str] = []
    ext = os.path.splitext(path)[1].lower()
    if ext == ".edl":
        rates = [_rate_of(rate)] if rate else list(EDL_RATES)
        last_error = None
        for r in rates:
            try:
                tl = otio.adapters.read_from_file(path, rate=r)
            except Exception as exc:
                message = str(exc)
                if "duration don't match" in message or "durations don't match" in message:
                    try:
                        tl = otio.adapters.read_from_file(path, rate=r, ignore_timecode_mismatch=True)
                    except Exception as exc2:
                        last_error = exc2
                        continue
                    notes.append(f"source and record durations differ in some events ({message.split(': ', 1)[-1]}); "
                                 "the record durations were used")
                elif "rate" in message.lower() or "beyond" in message.lower():
                    last_error = exc
                    continue
                else:
                    raise InputError(f"{path}: cannot read EDL ({message})") from None
            if not rate:
                notes.append(f"EDL frame rate not given; read at {r:g} fps, the first rate its timecodes fit "
                             "(pass the rate to be sure)")
            tl.metadata.setdefault("composite", {})["edl_rate"] = r
            return tl, notes
        raise InputError(f"{path}: cannot read EDL at rates {', '.join(f'{r:g}' for r in rates)} ({last_error})")
    try:
        tl = otio.adapters.read_from_file(path)
    except Exception as exc:
        if "unsupported schema version" in str(exc) and ext == ".otio":
            tl = _read_newer_otio(path, notes)
        else:
            raise InputError(f"{path}: cannot read timeline ({type(exc).__name__}: {exc})") from None
    if not isinstance(tl, otio.schema.Timeline):
        if isinstance(tl, otio.schema.SerializableCollection):
            timelines = list(tl.find_children(descended_from_type=otio.schema.Timeline)) if hasattr(tl, "find_children") \
                else [c for c in tl if isinstance(c, otio.schema.Timeline)]
            if len(timelines) == 1:
                return timelines[0], notes
        raise InputError(f"{path}: holds a {type(tl).__name__}, not one timeline")
    return tl, notes


def _downgrade(obj: Any, known: Mapping[str, int], seen: set[str]) -> Any:
    """Rewrite schema versions newer than this OpenTimelineIO knows to the newest it knows."""
    if isinstance(obj, list):
        return [_downgrade(v, known, seen) for v in obj]
    if not isinstance(obj, dict):
        return obj
    out = {k: _downgrade(v, known, seen) for k, v in obj.items()}
    schema = out.get("OTIO_SCHEMA")
    if isinstance(schema, str) and "." in schema:
        name, _, version = schema.rpartition(".")
        if name in known and version.isdigit() and int(version) > known[name]:
            seen.add(f"{schema} → {name}.{known[name]}")
            out["OTIO_SCHEMA"] = f"{name}.{known[name]}"
            if name == "Marker" and isinstance(out.get("color"), dict):  # Marker.3: color became a Color object
                out["color"] = str(out["color"].get("name") or "RED").upper()
    return out


def _read_newer_otio(path: str, notes: list[str]) -> otio.schema.Timeline:
    import json

    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
        seen: set[str] = set()
        data = _downgrade(data, dict(otio.core.type_version_map()), seen)
        tl = otio.adapters.read_from_string(json.dumps(data), "otio_json")
    except Exception as exc:
        raise InputError(f"{path}: cannot read timeline ({type(exc).__name__}: {exc})") from None
    notes.append(f"written by a newer OpenTimelineIO; read with schema(s) {', '.join(sorted(seen))}")
    return tl


# -- shots ---------------------------------------------------------------------------------------

def _url_to_path(url: str) -> str:
    if url.startswith("file://"):
        path = unquote(urlparse(url).path)
        if re.match(r"^/[A-Za-z]:/", path):  # file:///D:/media/a.mov → D:/media/a.mov
            path = path[1:]
        return path
    return url


def _timecode(t: otio.opentime.RationalTime) -> str:
    rate = otio.opentime.RationalTime.nearest_valid_timecode_rate(t.rate)
    try:
        return otio.opentime.to_timecode(t.rescaled_to(rate), rate)
    except Exception:
        return f"{t.value:g}@{t.rate:g}"


@dataclass
class Shot:
    """One video clip of a timeline, ready to conform."""

    name: str
    index: int
    track: str
    rate: float
    source_range: otio.opentime.TimeRange
    visible_range: otio.opentime.TimeRange
    record_range: otio.opentime.TimeRange | None
    handles: int
    media_kind: str
    media_path: str | None
    available_range: otio.opentime.TimeRange | None
    first_frame: int | None = None
    last_frame: int | None = None
    speed: float | None = None
    effects: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    clip: Any = field(default=None, repr=False, compare=False)

    @property
    def frame_count(self) -> int | None:
        if self.first_frame is None or self.last_frame is None:
            return None
        return self.last_frame - self.first_frame + 1

    @property
    def renderable(self) -> bool:
        return self.media_kind in ("image_sequence", "movie") and self.first_frame is not None

    def as_dict(self) -> dict[str, Any]:
        def rng(r):
            if r is None:
                return None
            return {"start": r.start_time.value, "duration": r.duration.value, "rate": r.start_time.rate,
                    "in": _timecode(r.start_time), "out": _timecode(r.end_time_exclusive())}

        return {"index": self.index, "name": self.name, "track": self.track, "rate": self.rate,
                "source_range": rng(self.source_range), "visible_range": rng(self.visible_range),
                "record_range": rng(self.record_range), "handles": self.handles, "media_kind": self.media_kind,
                "media_path": self.media_path, "available_range": rng(self.available_range),
                "first_frame": self.first_frame, "last_frame": self.last_frame, "frame_count": self.frame_count,
                "speed": self.speed, "effects": list(self.effects), "warnings": list(self.warnings)}


def _top_track(clip, timeline):
    item = clip
    parent = item.parent()
    while parent is not None and parent is not timeline.tracks:
        item, parent = parent, parent.parent()
    return item if isinstance(item, otio.schema.Track) else clip.parent()


def _speed(clip) -> tuple[float | None, list[str]]:
    speed = None
    names = []
    for effect in clip.effects:
        label = effect.schema_name()
        if getattr(effect, "effect_name", "") and effect.effect_name != label:
            label += f":{effect.effect_name}"
        names.append(label)
        if isinstance(effect, otio.schema.FreezeFrame):
            speed = 0.0
        elif isinstance(effect, otio.schema.LinearTimeWarp):
            speed = float(effect.time_scalar) * (speed if speed is not None else 1.0)
        elif isinstance(effect, otio.schema.TimeEffect):
            speed = float("nan")
    return speed, names


def _media(ref) -> tuple[str, str | None, otio.opentime.TimeRange | None, dict]:
    """(kind, path or pattern, available range, details) of a media reference."""
    if ref is None or isinstance(ref, otio.schema.MissingReference):
        return "missing", None, getattr(ref, "available_range", None), {}
    if isinstance(ref, otio.schema.GeneratorReference):
        return "generator", None, ref.available_range, {}
    if isinstance(ref, otio.schema.ImageSequenceReference):
        base = _url_to_path(ref.target_url_base)
        pad = max(int(ref.frame_zero_padding), 1)
        pattern = os.path.join(base, f"{ref.name_prefix}{'#' * pad}{ref.name_suffix}") if base else \
            f"{ref.name_prefix}{'#' * pad}{ref.name_suffix}"
        return "image_sequence", pattern, ref.available_range, {"reference": ref}
    if isinstance(ref, otio.schema.ExternalReference):
        path = _url_to_path(ref.target_url or "")
        if not path:
            return "missing", None, ref.available_range, {}
        if is_movie(path):
            return "movie", path, ref.available_range, {}
        pattern = SequencePattern.parse(path)
        if pattern.is_sequence:
            return "image_sequence", path, ref.available_range, {}
        m = _NUMBERED.match(os.path.basename(path))
        if m:  # a numbered file (EDL "FROM FILE"): the sequence it belongs to, starting at that number
            head = os.path.dirname(path)
            pad = len(m.group(2))
            seq = os.path.join(head, f"{m.group(1)}{'#' * pad}{m.group(3)}") if head else f"{m.group(1)}{'#' * pad}{m.group(3)}"
            return "image_sequence", seq, ref.available_range, {"first_file_frame": int(m.group(2))}
        return "file", path, ref.available_range, {}
    return "unknown", None, getattr(ref, "available_range", None), {}


def _movie_range(path: str, rate: float) -> otio.opentime.TimeRange | None:
    """A movie's media range: from its timecode tag (else 0) for its frame count."""
    from .video import movie_reader

    try:
        reader = movie_reader(path)
    except InputError:
        return None
    mrate = float(reader.rate)
    start = otio.opentime.RationalTime(0, mrate)
    if reader.timecode:
        try:
            start = otio.opentime.from_timecode(reader.timecode,
                                                otio.opentime.RationalTime.nearest_valid_timecode_rate(mrate))
        except Exception:
            pass
    return otio.opentime.TimeRange(start.rescaled_to(rate), otio.opentime.RationalTime(reader.frame_count, mrate)
                                   .rescaled_to(rate))


def timeline_rate(timeline: otio.schema.Timeline) -> float:
    """The edit's frame rate: its global start time's, an EDL's read rate, else its clips' most common rate."""
    if timeline.global_start_time is not None:
        return float(timeline.global_start_time.rate)
    edl = (timeline.metadata.get("composite") or {}).get("edl_rate") if hasattr(timeline.metadata, "get") else None
    if edl:
        return float(edl)
    rates = [float(c.trimmed_range().start_time.rate) for c in timeline.find_clips()]
    if not rates:
        return float(timeline.duration().rate)
    return max(dict.fromkeys(rates), key=rates.count)


def timeline_shots(timeline: otio.schema.Timeline, *, handles: int = 0, start_frame: int = 1001,
                   video_only: bool = True) -> list[Shot]:
    """The clips of ``timeline``'s video tracks as shots, in track then time order.

    Parameters
    ----------
    handles : int
        Extra frames before and after each clip's visible source range to render.
    start_frame : int
        Frame number given to a movie's first frame (``ReadImage.start_frame``), and to the first frame
        of a numbered-file sequence whose media range is unknown.
    """
    if handles < 0:
        raise InputError(f"handles must be >= 0, got {handles}")
    shots = []
    edit_rate = timeline_rate(timeline)
    for index, clip in enumerate(timeline.find_clips()):
        track = _top_track(clip, timeline)
        kind_of_track = getattr(track, "kind", otio.schema.TrackKind.Video)
        if video_only and kind_of_track != otio.schema.TrackKind.Video:
            continue
        source = clip.trimmed_range()
        try:
            visible = clip.visible_range()
        except Exception:
            visible = source
        try:
            record = clip.transformed_time_range(clip.trimmed_range(), timeline.tracks)
            record = otio.opentime.TimeRange(record.start_time.rescaled_to(edit_rate),
                                             record.duration.rescaled_to(edit_rate))
        except Exception:
            record = None
        rate = float(source.start_time.rate)
        kind, path, available, details = _media(clip.media_reference)
        speed, effects = _speed(clip)
        shot = Shot(name=clip.name or f"clip{index}", index=index, track=getattr(track, "name", "") or "",
                    rate=rate, source_range=source, visible_range=visible, record_range=record, handles=handles,
                    media_kind=kind, media_path=path, available_range=available, speed=speed, effects=effects,
                    clip=clip)
        # media frames the shot needs: visible range, stretched by a retime, plus handles
        start = visible.start_time
        duration = visible.duration.rescaled_to(start.rate).value
        if speed is not None and speed != 1.0:
            if math.isnan(speed):
                shot.warnings.append(f"time effect {', '.join(effects)} is not a linear retime; rendering the "
                                     "unretimed source range")
                media_frames = int(round(duration))
            else:
                media_frames = max(1, int(math.ceil(duration * abs(speed) - 1e-9)))
                what = "freeze frame" if speed == 0 else f"speed {speed:g}x"
                shot.warnings.append(f"{what} ({', '.join(effects)}): rendering {media_frames} source frame(s) for "
                                     f"{int(round(duration))} timeline frame(s); the retime stays in the timeline")
                if speed < 0:
                    start = start - otio.opentime.RationalTime(media_frames - 1, start.rate)
        else:
            media_frames = int(round(duration))
        if abs(float(visible.start_time.rate) - edit_rate) > 1e-6:
            shot.warnings.append(f"source rate {rate:g} fps differs from the timeline's {edit_rate:g} fps")
        if kind in ("missing", "generator", "unknown", "file"):
            shot.warnings.append({"missing": "no media reference; nothing to render",
                                  "generator": "generator reference (no media); nothing to render",
                                  "unknown": "unsupported media reference; nothing to render",
                                  "file": f"media {path} is a single file, not a sequence or movie"}[kind])
            shots.append(shot)
            continue
        first_t = start - otio.opentime.RationalTime(handles, start.rate)
        count = media_frames + 2 * handles
        if kind == "movie" and available is None and path and os.path.isfile(path):
            available = _movie_range(path, start.rate)
            shot.available_range = available
        if "reference" in details:
            ref = details["reference"]
            try:
                first = ref.frame_for_time(first_t) if ref.available_range is None or \
                    first_t >= ref.available_range.start_time else None
            except Exception:
                first = None
            if first is None:
                first = ref.start_frame + int(round((first_t - (ref.available_range.start_time if ref.available_range
                                                               else first_t)).to_frames()))
        elif available is not None:
            offset = int(round((first_t - available.start_time).rescaled_to(start.rate).value))
            base = details.get("first_file_frame", start_frame)
            first = base + offset
            if offset < 0 or offset + count > int(round(available.duration.rescaled_to(start.rate).value)):
                shot.warnings.append("the range with handles reaches outside the media's available range")
        elif "first_file_frame" in details:
            first = details["first_file_frame"] + (-handles)
            shot.warnings.append(f"media range unknown; assuming {os.path.basename(clip.media_reference.target_url)} "
                                 "is the clip's first source frame")
        elif kind == "movie":
            first = start_frame + int(round(first_t.value))
            shot.warnings.append("movie not found and its available range unknown; frame index taken from the "
                                 "source time")
        else:
            first = int(round(first_t.value))
        shot.first_frame = int(first)
        shot.last_frame = int(first) + count - 1
        shots.append(shot)
    return shots


# -- rendering a timeline ------------------------------------------------------------------------

def _safe_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._") or "shot"


def shot_output_path(path: str, shot: Shot, *, multiple: bool = True) -> str:
    """Where a writer's ``path`` goes for ``shot``: ``{shot}`` (and ``{index}``) in the path are filled in;
    otherwise the files go into a folder named after the shot beside the original path."""
    name = _safe_name(shot.name)
    if "{shot}" in path or "{index}" in path:
        return path.replace("{shot}", name).replace("{index}", f"{shot.index:03d}")
    if not multiple:
        return path
    head, tail = os.path.split(path)
    return os.path.join(head, f"{shot.index:03d}_{name}", tail)


@dataclass
class TimelineRender:
    """What :func:`render_timeline` did."""

    shots: list[Shot]
    rendered: dict[str, dict[str, Any]]
    skipped: dict[str, str]
    output_timeline: str | None
    notes: list[str]

    def as_dict(self) -> dict[str, Any]:
        rendered = {k: {kk: vv for kk, vv in v.items() if kk != "recipe"} for k, v in self.rendered.items()}
        return {"output_timeline": self.output_timeline, "notes": self.notes, "rendered": rendered,
                "skipped": self.skipped, "shots": [s.as_dict() for s in self.shots]}

    def summary(self) -> str:
        lines = [f"composite: {len(self.rendered)} shot(s) rendered, {len(self.skipped)} without media; "
                 f"conformed timeline: {self.output_timeline}"]
        lines += [f"composite: note: {n}" for n in self.notes]
        for name, info in self.rendered.items():
            lines.append(f"composite: shot {name}: frames {info['frames']} ({info['rendered']} rendered, "
                         f"{info['skipped']} up to date) -> {', '.join(info['outputs'].values())}")
            lines += [f"composite:   warning: {w}" for w in info["warnings"]]
        for name, why in self.skipped.items():
            lines.append(f"composite: shot {name}: skipped ({why})")
        return "\n".join(lines)


def _find_nodes(pipeline, plate_node: str | None) -> tuple[str, list[str]]:
    from .stages import ReadImage

    if plate_node:
        if plate_node not in pipeline.nodes:
            raise RecipeError(f"no stage named {plate_node!r} to take the plate; stages: {', '.join(pipeline.nodes)}")
        plate = plate_node
    else:
        readers = [n for n, node in pipeline.nodes.items() if isinstance(node.stage, ReadImage)]
        if len(readers) != 1:
            raise RecipeError(f"the recipe has {len(readers)} ReadImage stages ({', '.join(readers) or 'none'}); "
                              "name the plate reader with --plate-node")
        plate = readers[0]
    writers = [n for n, node in pipeline.nodes.items() if node.stage.is_output and "path" in node.stage.params]
    if not writers:
        raise RecipeError("the recipe has no output stage with a path (WriteImage, WriteMovie)")
    return plate, writers


def _image_sequence_reference(pattern: str, first: int, count: int, shot: Shot) -> otio.schema.ImageSequenceReference:
    seq = SequencePattern.parse(pattern)
    folder, prefix = os.path.split(seq.prefix)
    base = Path(folder or ".").resolve().as_uri() + "/"
    start = shot.visible_range.start_time - otio.opentime.RationalTime(shot.handles, shot.visible_range.start_time.rate)
    available = otio.opentime.TimeRange(start, otio.opentime.RationalTime(count, start.rate))
    return otio.schema.ImageSequenceReference(
        target_url_base=base, name_prefix=prefix, name_suffix=seq.suffix, start_frame=first, frame_step=1,
        rate=start.rate, frame_zero_padding=seq.padding, available_range=available)


def render_timeline(recipe: str | os.PathLike | Mapping[str, Any], timeline_path: str | os.PathLike, *,
                    output: str | os.PathLike | None = None, handles: int = 0, rate: float | None = None,
                    plate_node: str | None = None, shots: list[str] | None = None,
                    overrides: list[tuple[str, str, Any]] | None = None, start_frame: int = 1001,
                    **render_options: Any) -> TimelineRender:
    """Render ``recipe`` for every renderable shot of a timeline and write the conformed timeline.

    Per shot, the plate reader (the recipe's single ``ReadImage``, or ``plate_node``) gets the shot's
    media as ``path`` (and ``start_frame`` for movies), the pipeline the shot's rate, and every writer a
    per-shot ``path`` (:func:`shot_output_path`). The frames rendered are the shot's file frames with
    ``handles``. The output timeline (``output``, default ``<timeline>_comp.otio`` in the current folder)
    is a copy of the input whose rendered clips reference the comp renders and carry
    ``metadata["composite"]`` = recipe, fingerprint, frames, plate and warnings. Shots without media are
    reported and left as they are. ``render_options`` (chunk_size, workers, force, progress, executor
    ...) go to :meth:`Pipeline.render` for every shot.
    """
    from ..graph.recipe import load_recipe, pipeline_from_recipe

    timeline, notes = load_timeline(timeline_path, rate=rate)
    all_shots = timeline_shots(timeline, handles=handles, start_frame=start_frame)
    if shots:
        wanted = set(shots)
        unknown = wanted - {s.name for s in all_shots}
        if unknown:
            raise InputError(f"{timeline_path}: no shot named {sorted(unknown)[0]!r}; shots: "
                             f"{', '.join(s.name for s in all_shots)}")
        all_shots = [s for s in all_shots if s.name in wanted]
    if isinstance(recipe, Mapping):
        base = pipeline_from_recipe(recipe, overrides=overrides)
        recipe_source = "<recipe>"
    else:
        base = load_recipe(recipe, overrides=overrides)
        recipe_source = os.fspath(recipe)
    plate, writers = _find_nodes(base, plate_node)
    base_recipe = base.to_recipe()
    renderable = [s for s in all_shots if s.renderable]
    if not renderable:
        raise InputError(f"{timeline_path}: no shot has media to render "
                         f"({len(all_shots)} shot(s); see `composite info {timeline_path}`)")
    out_tl = timeline.deepcopy()
    out_clips = list(out_tl.find_clips())
    rendered: dict[str, dict[str, Any]] = {}
    skipped: dict[str, str] = {}
    for shot in all_shots:
        if not shot.renderable:
            skipped[f"{shot.index:03d} {shot.name}"] = "; ".join(shot.warnings) or "no media"
            continue
        for w in shot.warnings:
            log.warning("composite: shot %s: %s", shot.name, w)
        data = copy.deepcopy(base_recipe)
        data["name"] = _safe_name(shot.name)
        data["rate"] = shot.rate
        data.pop("frames", None)
        stage = data["stages"][plate]
        stage.setdefault("params", {})["path"] = shot.media_path
        if shot.media_kind == "movie":
            stage["params"]["start_frame"] = start_frame
        outputs = {}
        for w in writers:
            wparams = data["stages"][w].setdefault("params", {})
            wparams["path"] = shot_output_path(wparams["path"], shot, multiple=len(renderable) > 1)
            outputs[w] = wparams["path"]
        pipeline = pipeline_from_recipe(data, source=f"{recipe_source} [{shot.name}]")
        frames = f"{shot.first_frame}-{shot.last_frame}"
        log.info("composite: shot %s: frames %s from %s", shot.name, frames, shot.media_path)
        report = pipeline.render(frames, **render_options)
        frame_list = list(range(shot.first_frame, shot.last_frame + 1))
        main_out = next((w for w in writers if not pipeline.nodes[w].stage.type_name == "WriteMovie"), writers[0])
        per_frame = [pipeline.fingerprint(main_out, t) for t in frame_list]
        combined = hashlib.sha256("|".join(per_frame).encode()).hexdigest()
        info = {"recipe": pipeline.to_recipe(), "recipe_source": recipe_source, "fingerprint": combined,
                "first_frame_fingerprint": per_frame[0], "frames": frames, "plate": shot.media_path,
                "outputs": outputs, "warnings": list(shot.warnings), "rendered": len(report.rendered),
                "skipped": len(report.skipped)}
        rendered[f"{shot.index:03d} {shot.name}"] = info
        clip = out_clips[shot.index]
        out_path = outputs[main_out]
        if SequencePattern.parse(out_path).is_sequence:
            clip.media_reference = _image_sequence_reference(out_path, shot.first_frame, len(frame_list), shot)
        else:
            start = shot.visible_range.start_time - otio.opentime.RationalTime(shot.handles, shot.rate)
            clip.media_reference = otio.schema.ExternalReference(
                target_url=Path(out_path).resolve().as_uri(),
                available_range=otio.opentime.TimeRange(start, otio.opentime.RationalTime(len(frame_list), start.rate)))
        clip.metadata["composite"] = info
    out_path = Path(output) if output else Path.cwd() / f"{Path(timeline_path).stem}_comp.otio"
    if out_path.suffix.lower() not in (".otio", ".otioz", ".otiod"):
        raise InputError(f"{out_path}: the conformed timeline is written as .otio")
    with atomic_output(out_path) as tmp:
        otio.adapters.write_to_file(out_tl, str(tmp))
    return TimelineRender(all_shots, rendered, skipped, str(out_path), notes)

