"""The render hook: what output stages call so every render leaves a provenance record.

An output stage calls, per render or chunk::

    begin(stage, frames)                    # before the first frame (checks the signing setup)
    attrs = header(stage, t, image)         # per frame: header attributes to write into the file
    written(stage, t, path)                 # per written file: checksum (and C2PA signature)
    paths = finish(stage, frames, [movie])  # after the last frame: writes the manifest part

:func:`header` returns ``composite:provenance`` (a compact JSON summary: manifest id, sidecar folder,
frame, AI coverage, generators, recipe fingerprint) and ``Iptc4xmpExt:DigitalSourceType`` (the IPTC
NewsCodes URI). Both depend only on the recipe, inputs and pixels, so chunked renders stay
bit-identical. The frame's own checksum lives in the manifest, not in the frame (a file cannot
contain its own digest, and the manifest is written after the frames).

The recorder finds the pipeline that renders the stage (the executor's ``render_frames`` holds it), to
record the recipe, the plate files each frame read and the other files the recipe names; pass it
explicitly with :func:`bind` when driving output stages by hand.

Manifests can be switched off with ``COMPOSITE_PROVENANCE=off`` or the recipe's ``metadata:
{provenance: {manifest: false}}`` (frames then carry no provenance header either).
"""

from __future__ import annotations

import json
import logging
import os
import sys
import weakref
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from ..core.coverage import GENERATORS_KEY
from ..core.errors import InputError
from ..core.image import Image
from . import c2pa_sign, cards, iptc
from . import manifest as mf
from .checksums import describe_file, describe_path
from .coverage_stats import coverage_summary

log = logging.getLogger("composite.provenance")

ENABLE_ENV = "COMPOSITE_PROVENANCE"
HEADER_KEY = "composite:provenance"
_ATTR = "_composite_provenance"
_BIND_ATTR = "_composite_provenance_pipeline"


def enabled(recipe_metadata: Mapping[str, Any] | None = None) -> bool:
    """Whether renders write provenance (on unless switched off; see the module docstring)."""
    prov = (recipe_metadata or {}).get("provenance") or {}
    if isinstance(prov, Mapping) and prov.get("manifest") is False:
        return False
    return os.environ.get(ENABLE_ENV, "on").strip().lower() not in ("0", "off", "false", "no")


def bind(stage, pipeline) -> None:
    """Tell the recorder which pipeline renders ``stage`` (when output stages are driven by hand)."""
    setattr(stage, _BIND_ATTR, weakref.ref(pipeline))


def find_pipeline(stage):
    """The :class:`~composite.graph.Pipeline` holding ``stage`` as one of its nodes: the bound one, else
    one found in the calling frames (the executor's ``render_frames``); None when there is none."""
    from ..graph.pipeline import Pipeline

    ref = getattr(stage, _BIND_ATTR, None)
    if ref is not None and ref() is not None:
        return ref()
    name = getattr(stage, "node_name", None)
    frame = sys._getframe(1)
    while frame is not None:
        for value in list(frame.f_locals.values()):
            if isinstance(value, Pipeline) and name in value.nodes and value.nodes[name].stage is stage:
                bind(stage, value)
                return value
        frame = frame.f_back
    return None


# -- the graph upstream of an output -------------------------------------------------------------

class GraphInfo:
    """What the pipeline upstream of one output node reads: plate readers, other files, stage types."""

    def __init__(self, pipeline, node: str):
        self.pipeline = pipeline
        self.node = node
        self.upstream: list[str] = []
        if pipeline is not None and node in pipeline.nodes:
            seen: set[str] = set()
            stack = [node]
            while stack:
                n = stack.pop()
                if n in seen:
                    continue
                seen.add(n)
                stack.extend(ref.node for ref in pipeline.nodes[n].inputs.values())
            order = pipeline.topological_order()
            self.upstream = [n for n in order if n in seen]
        self.readers = [n for n in self.upstream if self._is_reader(n)]

    def _is_reader(self, n: str) -> bool:
        st = self.pipeline.nodes[n].stage
        return bool(st.is_source and getattr(st, "pattern", None) is not None and "path" in st.params)

    @property
    def captured_sources(self) -> int:
        return len(self.readers)

    def stage_types(self) -> list[str]:
        if self.pipeline is None:
            return []
        return sorted({self.pipeline.nodes[n].stage.type_name for n in self.upstream
                       if not self.pipeline.nodes[n].stage.is_output})

    def frames_needed(self, t: int) -> dict[str, set[int]]:
        """Frames of every upstream node that output frame ``t`` reads (temporal windows included)."""
        need: dict[str, set[int]] = {self.node: {int(t)}}
        if self.pipeline is None:
            return need
        for n in reversed(self.upstream):
            frames = need.get(n)
            if not frames:
                continue
            node = self.pipeline.nodes[n]
            for inp, ref in node.inputs.items():
                dst = need.setdefault(ref.node, set())
                for f in frames:
                    dst.update(self.pipeline.frames_for_input(n, inp, f))
        return need

    def reader_files(self, t: int) -> dict[str, list[str]]:
        """Plate files read for output frame ``t``, per reader node (absolute paths)."""
        out: dict[str, list[str]] = {}
        need = self.frames_needed(t)
        for n in self.readers:
            st = self.pipeline.nodes[n].stage
            frames = sorted(need.get(n) or ())
            if getattr(st, "is_movie", False) or not st.pattern.is_sequence:
                paths = [st.p.path] if frames else []
            else:
                paths = [st.pattern.path(f) for f in frames]
            out[n] = [os.path.abspath(p) for p in paths]
        return out

    def assets(self) -> dict[str, str]:
        """``{"node.param": path}`` for the other file parameters of upstream stages and the output."""
        out: dict[str, str] = {}
        if self.pipeline is None:
            return out
        for n in self.upstream:
            st = self.pipeline.nodes[n].stage
            for pname, spec in st.params.items():
                if not getattr(spec, "path", False):
                    continue
                if pname == "path" and (n in self.readers or st.is_output):
                    continue
                value = st.p.get(pname)
                if isinstance(value, str) and value:
                    out[f"{n}.{pname}"] = value
        return out


# -- the recorder --------------------------------------------------------------------------------

class RenderRecorder:
    """Collects one output stage's provenance over a render (or chunk) and writes its manifest part."""

    def __init__(self, stage, frames: Sequence[int] | None = None, *, pipeline=None):
        self.stage = stage
        self.path = str(stage.p.path)
        self.pipeline = pipeline if pipeline is not None else find_pipeline(stage)
        meta = self.pipeline.metadata if self.pipeline is not None else {}
        self.enabled = enabled(meta)
        self.node = stage.node_name
        self.shot = self.pipeline.name if self.pipeline is not None else self.node
        self.id = mf.manifest_id(self.shot, self.node, self.path)
        self.sidecar = mf.sidecar_dir(self.path)
        self.folder = self.sidecar.parent
        self.frames = list(frames or [])
        self.graph = GraphInfo(self.pipeline, self.node)
        self.review = c2pa_sign.is_review_media(self.path)
        self.movie = os.path.splitext(self.path)[1].lower() in (".mp4", ".mov", ".m4v", ".mkv")
        self.records: dict[int, dict[str, Any]] = {}
        self.files: dict[str, dict[str, Any]] = {}
        self.generators: dict[str, dict[str, Any]] = {}
        self.inputs: dict[str, dict[str, Any]] = {}
        self.issues: list[dict[str, Any]] = []
        self.signing: c2pa_sign.SigningConfig | None = None
        self.policy = "off"
        self._recipe: tuple[str, dict[str, Any]] | None = None
        self.recipes: dict[str, dict[str, Any]] = {}
        if not self.enabled:
            return
        if self.review:
            config = c2pa_sign.SigningConfig.load()
            self.policy = c2pa_sign.render_policy(meta, config)
            if self.policy == "sign":
                try:
                    self.signing = config.require()
                    config.algorithm()
                except InputError as exc:
                    raise type(exc)(f"{self.node} ({self.path}): {exc}") from None
                c2pa_sign._c2pa()
            else:
                log.warning("composite: %s: writing unsigned review media (C2PA policy 'unsigned')", self.path)
        if self.pipeline is None:
            self.issues.append({"severity": "warning", "code": "no_pipeline",
                                "message": f"{self.node}: written outside a pipeline render; the recipe and "
                                           "input plates are not recorded"})

    # -- pieces ----------------------------------------------------------------------------------
    def recipe(self) -> tuple[str | None, dict[str, Any] | None]:
        if self.pipeline is None:
            return None, None
        if self._recipe is None:
            from ..graph.executor import recipe_fingerprint

            recipe = self.pipeline.to_recipe()
            fp = recipe_fingerprint(recipe, self.pipeline.source)
            self._recipe = (fp, {"recipe": recipe, "source": self.pipeline.source})
            self.recipes[fp] = self._recipe[1]
        return self._recipe

    def _generator_ids(self, records: Iterable[Mapping[str, Any]]) -> list[str]:
        ids = []
        for rec in records:
            rid = cards.record_id(rec)
            if rid not in self.generators:
                resolved = cards.resolve_record(rec)
                self.generators[rid] = resolved
                self.issues += cards.record_issues(rid, resolved)
            ids.append(rid)
        return sorted(set(ids))

    def _input_files(self, t: int) -> tuple[dict[str, list[str]], list[str | None]]:
        from .verify import declared_source_type

        files = self.graph.reader_files(t) if self.pipeline is not None else {}
        terms: list[str | None] = []
        for n, paths in files.items():
            st = self.pipeline.nodes[n].stage
            slot = self.inputs.setdefault(n, {"type": st.type_name, "path": str(st.p.path), "files": {}})
            for p in paths:
                desc = slot["files"].get(p)
                if desc is None:
                    desc = describe_file(p)
                    if desc.get("missing"):
                        self.issues.append({"severity": "warning", "code": "input_missing", "frame": int(t),
                                            "file": p, "message": f"{p}: input frame missing (held or black)"})
                    term = declared_source_type(p)
                    if term:
                        desc["digital_source_type"] = term
                    slot["files"][p] = desc
                terms.append(desc.get("digital_source_type"))
        return files, terms

    def _compact(self, t: int, rec: Mapping[str, Any]) -> dict[str, Any]:
        gens = []
        for g in rec["generators"]:
            r = self.generators[g]["record"]
            gens.append({"id": g, "backend": r.get("backend"), "generated": bool(r.get("generated")),
                         "model": cards.model_card_name(r)})
        return {"schema": mf.SCHEMA, "manifest_id": self.id, "manifest": self.sidecar.name, "frame": int(t),
                "ai_coverage": rec["ai_coverage"], "digital_source_type": iptc.short_name(rec["digital_source_type"]),
                "generators": gens, "recipe_fingerprint": rec.get("recipe")}

    # -- per frame -------------------------------------------------------------------------------
    def header(self, t: int, image: Image, fingerprint: str | None = None) -> dict[str, Any]:
        """Record frame ``t`` (coverage, generators, inputs) and return its header attributes."""
        if not self.enabled:
            return {}
        from ..extend.generator import generator_records

        cov = coverage_summary(image)
        records = generator_records(image) if image.metadata.get(GENERATORS_KEY) else []
        gids = self._generator_ids(records)
        files, terms = self._input_files(t)
        term = iptc.classify_frame(coverage_max=cov["max"], records=records,
                                   captured_sources=self.graph.captured_sources, input_terms=terms)
        fp_recipe, _ = self.recipe()
        rec: dict[str, Any] = {"ai_coverage": cov, "digital_source_type": term, "generators": gids,
                               "inputs": {n: p for n, p in sorted(files.items())}, "recipe": fp_recipe}
        if fingerprint:
            rec["fingerprint"] = fingerprint
        self.records[int(t)] = rec
        return {HEADER_KEY: json.dumps(self._compact(t, rec), sort_keys=True, separators=(",", ":")),
                iptc.HEADER_KEY: term}

    def _rel(self, path: str | os.PathLike) -> str:
        return os.path.relpath(os.path.abspath(path), os.path.abspath(self.folder)).replace(os.sep, "/")

    def _definition(self, title: str, frames: Sequence[int]) -> dict[str, Any]:
        recs = [self.records[t] for t in frames if t in self.records]
        term = iptc.combine([r["digital_source_type"] for r in recs], captured_sources=self.graph.captured_sources)
        ingredients = []
        for n in self.graph.readers:
            slot = self.inputs.get(n)
            if not slot:
                continue
            declared = {d.get("digital_source_type") for d in slot["files"].values()} - {None}
            generated = bool(declared & iptc.GENERATED_TERMS)
            ingredients.append(c2pa_sign.Ingredient(label=f"plate:{n}", title=os.path.basename(slot["path"]),
                                                    format=c2pa_sign.format_of(slot["path"]), generated=generated,
                                                    trained=bool(declared & iptc.TRAINED_TERMS),
                                                    description=f"input {n} ({len(slot['files'])} file(s))"))
        used = sorted({g for r in recs for g in r["generators"]})
        models = []
        for g in used:
            info = self.generators[g]
            r = info["record"]
            if not r.get("generated"):
                continue
            card = cards.model_card_name(r)
            models.append(mf._model_label(info))
            ingredients.append(c2pa_sign.Ingredient(label=f"generator:{g}", title=f"{r.get('backend')}"
                                                    + (f" ({card})" if card else ""), generated=True,
                                                    trained=bool(info.get("trained", True)),
                                                    description="generated element"))
        cov_frames = {str(t): self.records[t]["ai_coverage"] for t in frames if t in self.records}
        fp, _ = self.recipe()
        provenance = {"schema": mf.SCHEMA, "manifest_id": self.id, "shot": self.shot, "recipe_fingerprint": fp,
                      "frames": cov_frames, "models": models,
                      "generators": {g: self.generators[g]["record"] for g in used}}
        if len(cov_frames) == 1:
            provenance["ai_coverage"] = next(iter(cov_frames.values()))
        else:
            from .coverage_stats import shot_coverage

            shot = shot_coverage([{"ai_coverage": c} for c in cov_frames.values()])
            provenance["ai_coverage"] = {"frames": shot["frames"], "generated_frames": shot["generated_frames"],
                                         "ai_coverage_mean": shot["mean"], "ai_coverage_peak": shot["peak"]}
        return c2pa_sign.build_definition(title=title, format=c2pa_sign.mime_type(title), digital_source_type=term,
                                          ingredients=ingredients, operations=self.graph.stage_types(),
                                          provenance=provenance)

    def _sign(self, path: str, frames: Sequence[int]) -> str:
        if not self.review:
            return "not applicable"
        if self.policy != "sign":
            return "unsigned (requested)"
        c2pa_sign.sign_file(path, self._definition(os.path.basename(path), frames), config=self.signing)
        return "signed"

    def written(self, t: int, path: str | os.PathLike) -> None:
        """A frame's file is in place: sign it (review stills) and record its checksum."""
        if not self.enabled:
            return
        path = os.fspath(path)
        status = self._sign(path, [int(t)])
        self._record_file(path, status)
        self.records.setdefault(int(t), {})["file"] = self._rel(path)

    def _record_file(self, path: str, status: str) -> None:
        desc = describe_file(path)
        if self.review:
            desc["c2pa"] = status
            if status.startswith("unsigned"):
                self.issues.append({"severity": "warning", "code": "unsigned_review_media", "file": self._rel(path),
                                    "message": f"{path}: written without C2PA signature (policy 'unsigned')"})
        self.files[self._rel(path)] = desc

    # -- per render ------------------------------------------------------------------------------
    def _previous_frames(self) -> dict[int, list[tuple[dict[str, Any], dict[str, Any]]]]:
        found: dict[int, list[tuple[dict[str, Any], dict[str, Any]]]] = {}
        for p in mf.list_parts(self.sidecar):
            try:
                data = mf.load_manifest(p)
            except InputError:
                continue
            for k, rec in (data.get("frames") or {}).items():
                found.setdefault(int(k), []).append((rec, data))
        return found

    def _recover(self, t: int, previous) -> bool:
        """Provenance of a frame this render skipped (up to date): from an earlier part, else the header."""
        out_path = self.stage.output_paths(t)[0]
        if not os.path.exists(out_path):
            return False
        fp = None
        if self.pipeline is not None:
            try:
                fp = self.pipeline.fingerprint(self.node, t)
            except Exception:
                fp = None
        for rec, data in reversed(previous.get(int(t), [])):
            if fp is not None and rec.get("fingerprint") != fp:
                continue
            rec = dict(rec)
            self.records[int(t)] = rec
            for g in rec.get("generators", []):
                if g in (data.get("generators") or {}):
                    self.generators.setdefault(g, data["generators"][g])
            for n, paths in (rec.get("inputs") or {}).items():
                src = ((data.get("inputs") or {}).get(n) or {})
                slot = self.inputs.setdefault(n, {k: v for k, v in src.items() if k != "files"} | {"files": {}})
                for p in paths:
                    if p in (src.get("files") or {}):
                        slot["files"].setdefault(p, src["files"][p])
            for k2, v in (data.get("recipes") or {}).items():
                if k2 == rec.get("recipe"):
                    self.recipes.setdefault(k2, v)
            return True
        from .verify import read_header_summary

        head = read_header_summary(out_path) or {}
        if head.get("manifest_id") == self.id:
            self.records[int(t)] = {"ai_coverage": head.get("ai_coverage") or {},
                                    "digital_source_type": head.get("digital_source_type_uri")
                                    or iptc.normalise(head.get("digital_source_type")),
                                    "generators": [g.get("id") for g in head.get("generators") or []],
                                    "inputs": {}, "recipe": head.get("recipe_fingerprint"),
                                    "fingerprint": head.get("fingerprint")}
            self.issues.append({"severity": "warning", "code": "recovered_from_header", "frame": int(t),
                                "message": f"frame {t} was up to date and no earlier manifest part describes it; "
                                           "its provenance comes from its header (inputs not listed)"})
            return True
        return False

    def _movie_frames(self, path: str, frames: Sequence[int]) -> list[int]:
        """Every frame a finished movie holds (frames of earlier renders kept in it included), with their
        records recovered from earlier manifest parts, so its C2PA manifest describes the whole movie."""
        from ..io import video

        try:
            held = sorted(video.decode_fingerprints(video.read_movie_metadata(path).get(video.METADATA_KEY)))
        except Exception:
            held = []
        extra = [t for t in held if t not in self.records]
        if extra:
            previous = self._previous_frames()
            for t in extra:
                self._recover(t, previous)
        return sorted(set(frames) | {t for t in held if t in self.records})

    def finish(self, frames: Sequence[int] | None = None, paths: Sequence[str] = ()) -> list[str]:
        """Write this render's manifest part; sign a finished movie (``paths``). Returns the part's path."""
        if not self.enabled:
            return []
        frames = sorted(set(int(f) for f in (frames if frames is not None else self.frames)) | set(self.records))
        previous = None
        for t in frames:
            if t not in self.records or "ai_coverage" not in self.records[t]:
                previous = self._previous_frames() if previous is None else previous
                if not self._recover(t, previous):
                    self.records.pop(t, None)
                    self.issues.append({"severity": "warning", "code": "frame_not_recorded", "frame": t,
                                        "message": f"frame {t}: no output and no provenance recorded"})
                    continue
            if not self.movie:
                out_path = self.stage.output_paths(t)[0]
                rel = self._rel(out_path)
                self.records[t]["file"] = rel
                if rel not in self.files and os.path.exists(out_path):
                    status = "signed" if self.review and c2pa_sign.has_manifest(out_path) else None
                    if status is None:
                        status = self._sign(out_path, [t])
                    self._record_file(out_path, status)
        movie_files = [p for p in paths if os.path.exists(p)] if self.movie else []
        if self.movie and not movie_files and os.path.exists(self.path):
            movie_files = [self.path]  # every frame was up to date: make sure the movie is signed
            if self.review and not c2pa_sign.has_manifest(self.path):
                paths = [self.path]
            else:
                self._record_file(self.path, "signed" if self.review else "not applicable")
        for p in paths:
            if self.movie and os.path.exists(p):
                self._record_file(p, self._sign(p, self._movie_frames(p, frames)))
        for p in movie_files:
            for t in frames:
                if t in self.records:
                    self.records[t]["file"] = self._rel(p)
        recorded = [t for t in frames if t in self.records]
        if not recorded:
            return []
        used = sorted({g for t in recorded for g in self.records[t].get("generators", [])})
        used_files = {self.records[t].get("file") for t in recorded}
        inputs = {}
        for n, slot in self.inputs.items():
            wanted = {p for t in recorded for p in (self.records[t].get("inputs") or {}).get(n, [])}
            inputs[n] = {k: v for k, v in slot.items() if k != "files"} | \
                {"files": {p: d for p, d in sorted(slot["files"].items()) if p in wanted}}
        self.recipe()
        recipes = {}
        for t in recorded:
            key = self.records[t].get("recipe")
            if key and key in self.recipes:
                recipes[key] = self.recipes[key]
        assets = {k: {"path": v, **describe_path(v)} for k, v in self.graph.assets().items()}
        data: dict[str, Any] = {
            "schema": mf.SCHEMA, "kind": "part", "manifest_id": self.id, "shot": self.shot,
            "output": {"node": self.node, "type": self.stage.type_name, "path": self.path,
                       "format": os.path.splitext(self.path)[1].lstrip(".").lower()},
            "recipes": recipes,
            "frames": {str(t): self.records[t] for t in recorded},
            "files": {k: v for k, v in sorted(self.files.items()) if k in used_files},
            "inputs": dict(sorted(inputs.items())),
            "assets": dict(sorted(assets.items())),
            "generators": {g: self.generators[g] for g in used if g in self.generators},
            "software": mf.software_versions(),
            "c2pa": {"policy": self.policy},
            "summary": {"captured_sources": self.graph.captured_sources},
            "issues": [i for i in self.issues if i.get("frame") is None or int(i["frame"]) in recorded],
        }
        for k in assets:
            if assets[k].get("missing"):
                data["issues"].append({"severity": "warning", "code": "asset_missing", "key": k,
                                       "message": f"{k}: {assets[k]['path']} does not exist"})
        data = mf.finalise(data)
        data["render"] = mf.render_facts(frames)
        part = mf.part_path(self.path, recorded)
        from ..graph.executor import remove_stale_temp_files

        remove_stale_temp_files([str(part)])  # a temporary part left by a killed process of this chunk
        mf.write_manifest(part, data)
        for issue in mf.errors(data):
            log.warning("composite: provenance: %s", issue.get("message"))
        return [str(part)]


# -- the functions output stages call ------------------------------------------------------------

def recorder(stage) -> RenderRecorder:
    rec = getattr(stage, _ATTR, None)
    if rec is None:
        rec = RenderRecorder(stage)
        setattr(stage, _ATTR, rec)
    return rec


def begin(stage, frames: Sequence[int]) -> None:
    """Start recording a render (or chunk) of ``stage``; raises when review media must be signed and
    the signing configuration is missing."""
    setattr(stage, _ATTR, None)
    setattr(stage, _ATTR, RenderRecorder(stage, frames))


def header(stage, t: int, image: Image, fingerprint: str | None = None) -> dict[str, Any]:
    return recorder(stage).header(t, image, fingerprint)


def written(stage, t: int, path: str | os.PathLike) -> None:
    recorder(stage).written(t, path)


def finish(stage, frames: Sequence[int] | None = None, paths: Sequence[str] = ()) -> list[str]:
    rec = getattr(stage, _ATTR, None)
    if rec is None:
        return []
    try:
        return rec.finish(frames, paths)
    finally:
        setattr(stage, _ATTR, None)


__all__ = ["ENABLE_ENV", "HEADER_KEY", "GraphInfo", "RenderRecorder", "begin", "bind", "enabled", "find_pipeline",
           "finish", "header", "recorder", "written"]
