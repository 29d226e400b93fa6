"""Describe a plate, sequence, movie or timeline (what ``composite info`` prints).

:func:`describe_path` returns a JSON-serialisable dict: for EXR files every part (storage, compression,
windows, pixel aspect, channels with their types, layers, views, colour space, header attributes); for
other images OpenImageIO's view of the file; for sequences the frame range, count and gaps plus the first
frame's description (and, with ``check``, the frames whose format differs); for movies codec, size, rate,
frame count, pixel format and timecode; for timelines the shots.
"""

from __future__ import annotations

import os
from typing import Any

from ..core.errors import InputError
from . import exr, formats, images, video
from .sequence import SequencePattern, format_frame_list

TIMELINE_EXTENSIONS = (".otio", ".otioz", ".otiod", ".edl", ".xml", ".fcpxml", ".aaf")


def is_timeline(path: str | os.PathLike) -> bool:
    return os.path.splitext(os.fspath(path))[1].lower() in TIMELINE_EXTENSIONS


def describe_file(path: str) -> dict[str, Any]:
    """One image file (EXR or any OpenImageIO format)."""
    if images.is_exr(path):
        parts = exr.describe_exr(path)
        out: dict[str, Any] = {"kind": "image", "format": "openexr", "path": path, "parts": []}
        for p in parts:
            d = p.as_dict()
            if not p.is_deep:
                cs, source = exr.colorspace_from_metadata(p.attributes)
                names = {c.name.rpartition(".")[2] for c in p.channels if "." not in c.name}
                colour = {"R", "G", "B"} <= names or "Y" in names
                d["colorspace"] = cs or ("ACEScg" if colour else "Raw")
                d["colorspace_source"] = source if cs else ("default (scene-linear working space)" if colour else
                                                            "default (data)")
                d["luminance_chroma"] = {"Y", "RY", "BY"} <= names
            d["lossy"] = p.compression in exr.LOSSY_COMPRESSIONS
            out["parts"].append(d)
        first = parts[0]
        out.update(width=first.data_window.width, height=first.data_window.height,
                   display_width=first.display_window.width, display_height=first.display_window.height)
        return out
    subs = formats.describe_oiio(path)
    out = {"kind": "image", "format": subs[0]["format"], "path": path, "subimages": subs,
           "width": subs[0]["width"], "height": subs[0]["height"]}
    return out


def describe_sequence(pattern: SequencePattern, *, check: bool = False) -> dict[str, Any]:
    frames = pattern.scan()
    if not frames:
        raise InputError(f"{pattern}: no frames of this sequence exist on disk")
    gaps = pattern.gaps()
    out: dict[str, Any] = {"kind": "sequence", "pattern": str(pattern), "first": frames[0], "last": frames[-1],
                           "count": len(frames), "frames": format_frame_list(frames), "gaps": format_frame_list(gaps),
                           "missing_count": len(gaps)}
    out["first_frame"] = describe_file(pattern.path(frames[0]))
    if check:
        ref = None
        changes = []
        for f in frames:
            img = images.read_image(pattern.path(f))
            sig = images.image_signature(img)
            if ref is None:
                ref = sig
                continue
            change = images.signature_change(ref, sig)
            if change:
                changes.append({"frame": f, "change": change})
        out["format_changes"] = changes
    return out


def describe_timeline(path: str, *, rate: float | None = None, handles: int = 0) -> dict[str, Any]:
    from .conform import load_timeline, timeline_rate, timeline_shots

    timeline, notes = load_timeline(path, rate=rate)
    shots = timeline_shots(timeline, handles=handles)
    edit_rate = timeline_rate(timeline)
    dur = timeline.duration().rescaled_to(edit_rate)
    return {"kind": "timeline", "path": path, "name": timeline.name, "rate": edit_rate,
            "duration_frames": round(dur.value, 3), "tracks": [f"{t.name} ({t.kind})" for t in timeline.tracks],
            "notes": notes, "shot_count": len(shots), "shots": [s.as_dict() for s in shots]}


def describe_path(path: str | os.PathLike, *, check: bool = False, rate: float | None = None,
                  handles: int = 0) -> dict[str, Any]:
    """Describe a file, sequence pattern, movie or timeline (see the module doc)."""
    path = os.fspath(path)
    if is_timeline(path):
        return describe_timeline(path, rate=rate, handles=handles)
    if video.is_movie(path):
        return {"kind": "movie", **video.probe_movie(path).as_dict()}
    pattern = SequencePattern.parse(path)
    if pattern.is_sequence:
        return describe_sequence(pattern, check=check)
    if not os.path.exists(path):
        raise InputError(f"{path}: no such file (for a sequence write plate.####.exr or plate.%04d.exr)")
    return describe_file(path)


# -- text ----------------------------------------------------------------------------------------

def _win(w) -> str:
    x0, y0, x1, y1 = w
    return f"({x0},{y0})-({x1},{y1}) {x1 - x0 + 1}x{y1 - y0 + 1}"


def _attrs(attrs: dict, indent: str) -> list[str]:
    lines = []
    for k in sorted(attrs):
        v = attrs[k]
        text = str(v)
        if len(text) > 100:
            text = text[:97] + "..."
        lines.append(f"{indent}{k}: {text}")
    return lines


def format_description(info: dict[str, Any]) -> str:
    """A human-readable rendering of :func:`describe_path`'s result."""
    kind = info["kind"]
    lines: list[str] = []
    if kind == "image" and info["format"] == "openexr":
        lines.append(f"{info['path']}: OpenEXR, {len(info['parts'])} part(s)")
        for p in info["parts"]:
            head = f"  part {p['index']}" + (f" {p['name']!r}" if p["name"] else "") + \
                (f" view {p['view']!r}" if p["view"] else "")
            lines.append(f"{head}: {p['storage']}, {p['compression']}{' (lossy)' if p['lossy'] else ''}")
            if p.get("tiles"):
                t = p["tiles"]
                lines.append(f"    tiles: {t['x_size']}x{t['y_size']} {t['level_mode']}")
            lines.append(f"    data window: {_win(p['data_window'])}")
            lines.append(f"    display window: {_win(p['display_window'])}")
            lines.append(f"    pixel aspect: {p['pixel_aspect']:g}")
            if p["views"]:
                lines.append(f"    views: {', '.join(p['views'])} (default {p['views'][0]})")
            if "colorspace" in p:
                lines.append(f"    colour space: {p['colorspace']} ({p['colorspace_source']})")
            if p.get("luminance_chroma"):
                lines.append("    luminance/chroma (Y, RY, BY): read as RGB")
            lines.append("    channels:")
            for layer, chans in p["layers"].items():
                types = {c["name"]: c for c in p["channels"]}
                desc = ", ".join(
                    f"{c} {types[(layer + '.' if layer else '') + c]['type']}"
                    + ("" if types[(layer + '.' if layer else '') + c]["sampling"] == [1, 1] else
                       " (sampling {}x{})".format(*types[(layer + '.' if layer else '') + c]["sampling"]))
                    for c in chans)
                lines.append(f"      {layer or '(main)'}: {desc}")
            if p["attributes"]:
                lines.append("    attributes:")
                lines += _attrs(p["attributes"], "      ")
    elif kind == "image":
        lines.append(f"{info['path']}: {info['format']}")
        for s in info["subimages"]:
            lines.append(f"  subimage {s['subimage']}: {s['width']}x{s['height']}, "
                         f"{s['bits_per_sample']}-bit, {len(s['channels'])} channel(s)")
            lines.append(f"    data window: {_win(s['data_window'])}")
            lines.append(f"    display window: {_win(s['display_window'])}")
            lines.append(f"    pixel aspect: {s['pixel_aspect']:g}")
            lines.append(f"    colour space: {s['colorspace']} ({s['colorspace_source']})")
            lines.append("    channels: " + ", ".join(f"{c['name']} {c['type']}" for c in s["channels"]))
            if s["mip_levels"] > 1:
                lines.append(f"    mip levels: {s['mip_levels']}")
            if s["attributes"]:
                lines.append("    attributes:")
                lines += _attrs(s["attributes"], "      ")
    elif kind == "sequence":
        lines.append(f"{info['pattern']}: sequence of {info['count']} frame(s), {info['first']}-{info['last']}")
        lines.append(f"  frames: {info['frames']}")
        lines.append(f"  gaps: {info['gaps'] or 'none'}" + (f" ({info['missing_count']} missing)" if info["gaps"] else ""))
        if "format_changes" in info:
            if info["format_changes"]:
                for c in info["format_changes"]:
                    lines.append(f"  frame {c['frame']}: {c['change']}")
            else:
                lines.append("  format: the same in every frame")
        lines.append("  first frame:")
        lines += ["    " + line for line in format_description(info["first_frame"]).splitlines()]
    elif kind == "movie":
        lines.append(f"{info['path']}: movie ({info['container']})")
        lines.append(f"  codec: {info['codec']}, {info['pix_fmt']} ({info['bit_depth']}-bit"
                     f"{', alpha' if info['has_alpha'] else ''})")
        lines.append(f"  size: {info['width']}x{info['height']}")
        lines.append(f"  rate: {info['fps']:g} fps ({info['rate']})")
        lines.append(f"  frames: {info['frame_count']} ({info['duration_s']:.3f} s)")
        if info.get("timecode"):
            lines.append(f"  timecode: {info['timecode']}")
        color = {k: v for k, v in info.get("color", {}).items() if v is not None}
        if color:
            lines.append("  colour tags: " + ", ".join(f"{k} {v}" for k, v in color.items()))
    elif kind == "timeline":
        lines.append(f"{info['path']}: timeline {info['name']!r}, {info['rate']:g} fps, "
                     f"{info['duration_frames']:g} frame(s), {info['shot_count']} shot(s)")
        for note in info["notes"]:
            lines.append(f"  note: {note}")
        for s in info["shots"]:
            src = s["source_range"]
            frames = f"frames {s['first_frame']}-{s['last_frame']}" if s["first_frame"] is not None else "no frames"
            lines.append(f"  {s['index']:3d} {s['name']} [{s['track']}] {src['in']}-{src['out']} "
                         f"({src['duration']:g} @ {src['rate']:g} fps) {s['media_kind']}"
                         f"{': ' + s['media_path'] if s['media_path'] else ''}, {frames}")
            for w in s["warnings"]:
                lines.append(f"      warning: {w}")
    return "\n".join(lines)
