"""Reading provenance back: C2PA validation of review media, sidecar checks of EXR frames and manifests.

:func:`verify_path` checks one path and returns :class:`Verification` results:

* a review file (PNG, JPEG, MP4, MOV) is validated with c2pa-python — signature, hashes of the media
  data (a flipped byte in the pixels fails), trust of the signer when trust anchors are configured —
  and its assertions are listed (actions, digital source type, training-and-data-mining, ingredients,
  the composite provenance summary); a sidecar manifest listing it is checked too;
* an EXR frame (C2PA does not embed into EXR) is checked against its sidecar manifest: the manifest id
  in its header, its sha256 against the one recorded, its recorded coverage;
* a manifest (``*.provenance.json``, a sidecar folder, or a part) is assembled and every output file
  it lists is checked;
* a folder: every output manifest under it.

A result is ``ok`` when nothing is wrong; ``exit_code`` is 0, or 2 (bad input) otherwise.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from ..core.errors import InputError
from . import c2pa_sign, iptc
from . import manifest as mf
from .checksums import describe_file

#: EXR/PNG header attribute carrying the compact provenance summary.
HEADER_KEY = "composite:provenance"


@dataclass
class Verification:
    """The outcome of checking one file or manifest."""

    path: str
    kind: str
    ok: bool
    state: str
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def exit_code(self) -> int:
        return 0 if self.ok else InputError.exit_code

    def as_dict(self) -> dict[str, Any]:
        return {"path": self.path, "kind": self.kind, "ok": self.ok, "state": self.state,
                "problems": list(self.problems), "warnings": list(self.warnings), "details": self.details}

    def text(self) -> str:
        lines = [f"{self.path}: {'OK' if self.ok else 'FAILED'} ({self.kind}: {self.state})"]
        d = self.details
        if d.get("signer"):
            lines.append(f"  signer: {d['signer']}")
        if d.get("digital_source_type"):
            lines.append(f"  digital source type: {iptc.short_name(d['digital_source_type'])}")
        for a in d.get("actions") or []:
            extra = f" [{iptc.short_name(a['digitalSourceType'])}]" if a.get("digitalSourceType") else ""
            desc = f" — {a['description']}" if a.get("description") else ""
            lines.append(f"  action: {a.get('action')}{extra}{desc}")
        tm = d.get("training_mining")
        if tm:
            lines.append("  training and data mining: " + ", ".join(f"{k}={v}" for k, v in sorted(tm.items())))
        for ing in d.get("ingredients") or []:
            lines.append(f"  ingredient: {ing.get('title')} ({ing.get('format')}, {ing.get('relationship')})")
        if d.get("ai_coverage") is not None:
            c = d["ai_coverage"]
            if "mean" in c:
                lines.append(f"  AI coverage: mean {c.get('mean')}, max {c.get('max')}")
            else:
                lines.append(f"  AI coverage: mean {c.get('ai_coverage_mean')}, peak {c.get('ai_coverage_peak')} "
                             f"over {c.get('frames')} frame(s), {c.get('generated_frames')} with generated pixels")
        for m in d.get("models") or []:
            lines.append(f"  model: {m}")
        if d.get("manifest_id"):
            lines.append(f"  manifest: {d['manifest_id']}" + (f" ({d['manifest']})" if d.get("manifest") else ""))
        if d.get("files_checked") is not None:
            lines.append(f"  files checked: {d['files_checked']}")
        for p in self.problems:
            lines.append(f"  problem: {p}")
        for w in self.warnings:
            lines.append(f"  warning: {w}")
        return "\n".join(lines)


# -- headers -------------------------------------------------------------------------------------

def read_header_summary(path: str | os.PathLike) -> dict[str, Any] | None:
    """The compact provenance summary (``composite:provenance``) and IPTC term in an output file's
    header, or None."""
    path = os.fspath(path)
    attrs = _file_attributes(path)
    raw = attrs.get(HEADER_KEY)
    if raw is None and iptc.HEADER_KEY not in attrs:
        return None
    out: dict[str, Any] = {}
    if raw is not None:
        try:
            out = json.loads(raw) if isinstance(raw, str) else dict(raw)
        except (TypeError, ValueError):
            out = {"unreadable": str(raw)}
    if attrs.get(iptc.HEADER_KEY):
        out["digital_source_type_uri"] = str(attrs[iptc.HEADER_KEY])
    if attrs.get("composite:fingerprint"):
        out["fingerprint"] = str(attrs["composite:fingerprint"])
    return out


def _file_attributes(path: str) -> dict[str, Any]:
    from ..io.images import is_exr

    try:
        if is_exr(path):
            import OpenEXR

            return dict(OpenEXR.File(path, header_only=True).parts[0].header)
        if os.path.splitext(path)[1].lower() in (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".dpx"):
            import OpenImageIO as oiio

            inp = oiio.ImageInput.open(path)
            if inp is None:
                return {}
            try:
                spec = inp.spec()
                return {a.name: a.value for a in spec.extra_attribs}
            finally:
                inp.close()
    except Exception:
        return {}
    return {}


def _file_key(path: str) -> tuple:
    st = os.stat(path)
    return (os.path.abspath(path), st.st_size, st.st_mtime_ns)


def declared_source_type(path: str | os.PathLike) -> str | None:
    """The IPTC digital source type a file declares about itself: the ``Iptc4xmpExt:DigitalSourceType``
    header composite writes, or the ``c2pa.created`` action of its C2PA manifest. None when it says
    nothing (cached per file version)."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        return None
    return _declared(*_file_key(path))


@lru_cache(maxsize=4096)
def _declared(path: str, size: int, mtime: int) -> str | None:
    attrs = _file_attributes(path)
    if attrs.get(iptc.HEADER_KEY):
        return iptc.normalise(str(attrs[iptc.HEADER_KEY]))
    if c2pa_sign.is_review_media(path):
        try:
            store = c2pa_sign.read_manifest_store(path)
        except Exception:
            return None
        if store:
            active = (store.get("manifests") or {}).get(store.get("active_manifest")) or {}
            for action in _actions(active):
                if action.get("action") in ("c2pa.created", "c2pa.opened") and action.get("digitalSourceType"):
                    return iptc.normalise(action["digitalSourceType"])
    return None


# -- C2PA ----------------------------------------------------------------------------------------

def _actions(manifest: Mapping[str, Any]) -> list[dict[str, Any]]:
    out = []
    for a in manifest.get("assertions") or []:
        if str(a.get("label", "")).startswith("c2pa.actions"):
            out += list((a.get("data") or {}).get("actions") or [])
    return out


def _assertion(manifest: Mapping[str, Any], *labels: str) -> Any:
    for a in manifest.get("assertions") or []:
        if a.get("label") in labels:
            return a.get("data")
    return None


def describe_c2pa(store: Mapping[str, Any]) -> dict[str, Any]:
    """The parts of a C2PA manifest store a reader of composite's output cares about."""
    active = (store.get("manifests") or {}).get(store.get("active_manifest")) or {}
    actions = _actions(active)
    created = next((a for a in actions if a.get("action") in ("c2pa.created", "c2pa.opened")), {})
    tm = _assertion(active, c2pa_sign.TRAINING_MINING_LABEL, "c2pa.training-mining") or {}
    entries = {k: (v or {}).get("use") for k, v in (tm.get("entries") or {}).items()}
    prov = _assertion(active, c2pa_sign.PROVENANCE_LABEL) or {}
    sig = active.get("signature_info") or {}
    signer = ", ".join(str(sig[k]) for k in ("common_name", "issuer") if sig.get(k))
    return {"active_manifest": store.get("active_manifest"), "title": active.get("title"),
            "signer": signer or None, "algorithm": sig.get("alg"), "digital_source_type": created.get("digitalSourceType"),
            "actions": [{k: a[k] for k in ("action", "digitalSourceType", "description") if k in a} for a in actions],
            "training_mining": entries, "ingredients": [{k: i.get(k) for k in ("title", "format", "relationship")}
                                                         for i in active.get("ingredients") or []],
            "manifest_id": prov.get("manifest_id"), "ai_coverage": prov.get("ai_coverage"),
            "models": prov.get("models"), "provenance": prov or None,
            "assertion_labels": [a.get("label") for a in active.get("assertions") or []]}


def _failures(store: Mapping[str, Any]) -> list[str]:
    res = store.get("validation_results") or {}
    codes = []
    for section in (res.get("activeManifest") or {},):
        for item in section.get("failure") or []:
            codes.append(f"{item.get('code')}: {item.get('explanation', '')}".strip())
    return codes


def verify_c2pa(path: str | os.PathLike, *, config: c2pa_sign.SigningConfig | None = None,
                require_trusted: bool = False) -> Verification:
    """Validate a review file's C2PA manifest and describe its assertions."""
    path = os.fspath(path)
    if config is None:
        try:
            config = c2pa_sign.SigningConfig.load()
        except InputError:
            config = None
    store = c2pa_sign.read_manifest_store(path, config=config)
    if store is None:
        return Verification(path, "c2pa", False, "no manifest",
                            [f"{path} carries no C2PA manifest (unsigned review media)"])
    if store.get("error"):
        return Verification(path, "c2pa", False, "Invalid", [f"the C2PA data cannot be read: {store['error']}"])
    state = str(store.get("validation_state") or "Invalid")
    details = describe_c2pa(store)
    problems, warnings = [], []
    failures = _failures(store)
    untrusted = [f for f in failures if f.startswith("signingCredential.untrusted")]
    real = [f for f in failures if f not in untrusted]
    if state == "Invalid" or real:
        problems += real or [f"C2PA validation state {state}"]
    if untrusted:
        msg = ("the signer's certificate is not in the trust list (set COMPOSITE_C2PA_TRUST_ANCHORS to the "
               "studio's root CA to check trust)")
        (problems if require_trusted else warnings).append(msg)
    if require_trusted and state != "Trusted" and not untrusted:
        problems.append(f"C2PA validation state {state}, not Trusted")
    tm = details.get("training_mining") or {}
    missing = [u for u in c2pa_sign.TRAINING_MINING_USES if tm.get(u) != "notAllowed"]
    if missing:
        warnings.append("training and data mining not forbidden for: " + ", ".join(missing))
    return Verification(path, "c2pa", not problems, state, problems, warnings, details)


# -- sidecars ------------------------------------------------------------------------------------

def _sidecar_for(path: Path, header: Mapping[str, Any] | None) -> Path | None:
    """The sidecar folder (or shot manifest) of an output file: the header's ``manifest`` entry, else
    the ``<stem>.<ext>.provenance`` beside it (matching a frame-numbered name to its sequence)."""
    if header and header.get("manifest"):
        cand = path.parent / str(header["manifest"])
        if cand.exists() or cand.with_name(cand.name + ".json").exists():
            return cand
    import re

    stem, ext = path.stem, path.suffix.lstrip(".").lower()
    names = [stem]
    m = re.match(r"^(.*?)[._-]?(-?\d+)$", stem)
    if m:
        names.insert(0, m.group(1).rstrip("._-") or "render")
    for name in names:
        cand = path.parent / f"{name}.{ext}{mf.SIDECAR_SUFFIX}"
        if cand.is_dir() or cand.with_name(cand.name + ".json").is_file():
            return cand
    return None


def verify_sidecar(path: str | os.PathLike, *, manifest: Mapping[str, Any] | None = None) -> Verification:
    """Check an output file against the sidecar manifest that lists it (sha256, manifest id)."""
    p = Path(path)
    header = read_header_summary(p)
    if manifest is None:
        sidecar = _sidecar_for(p, header)
        if sidecar is None:
            return Verification(str(p), "sidecar", False, "no manifest",
                                [f"{p}: no provenance manifest found beside it ({p.stem}.{p.suffix.lstrip('.')}"
                                 f"{mf.SIDECAR_SUFFIX}/); it was not rendered by composite or its manifest was removed"],
                                details={"header": header})
        manifest = mf.assemble(sidecar, check=False)
        folder = sidecar.parent
    else:
        folder = p.parent
    rel = os.path.relpath(p, folder)
    files = manifest.get("files") or {}
    problems, warnings = [], []
    details: dict[str, Any] = {"manifest_id": manifest.get("manifest_id")}
    if rel not in files:
        problems.append(f"{p}: not listed in its provenance manifest {manifest.get('manifest_id')}")
        return Verification(str(p), "sidecar", False, "not listed", problems, warnings, details)
    recorded = files[rel]
    now = describe_file(p)
    state = "checksum match"
    if recorded.get("sha256") != now.get("sha256"):
        state = "checksum mismatch"
        problems.append(f"{p}: sha256 {now.get('sha256')} differs from the manifest's {recorded.get('sha256')}; "
                        "the file changed after it was rendered")
    if header and header.get("manifest_id") and header["manifest_id"] != manifest.get("manifest_id"):
        problems.append(f"{p}: its header names manifest {header['manifest_id']} but the sidecar is "
                        f"{manifest.get('manifest_id')}")
    frames = [k for k, f in (manifest.get("frames") or {}).items() if f.get("file") == rel]
    if len(frames) == 1:
        fr = manifest["frames"][frames[0]]
        details["frame"] = int(frames[0])
        details["ai_coverage"] = fr.get("ai_coverage")
        details["digital_source_type"] = fr.get("digital_source_type")
        gens = manifest.get("generators") or {}
        details["models"] = sorted({mf._model_label(gens[g]) for g in fr.get("generators", []) if g in gens})
    else:
        details["frames"] = len(frames)
        details["ai_coverage"] = manifest.get("summary")
        details["digital_source_type"] = manifest.get("digital_source_type")
    details["sha256"] = now.get("sha256")
    before = len(problems)
    for issue in mf.errors(manifest):
        if issue.get("code") in ("checksum_mismatch", "missing_output"):
            continue
        if issue.get("frame") is None or int(issue["frame"]) in [int(f) for f in frames]:
            problems.append(issue.get("message", issue.get("code")))
    if len(problems) > before:
        state += "; the manifest has errors"
    return Verification(str(p), "sidecar", not problems, state, problems, warnings, details)


def verify_manifest(location: str | os.PathLike) -> Verification:
    """Assemble an output's manifest and check every file it lists."""
    data = mf.assemble(location, check=True)
    problems = [i.get("message", i.get("code")) for i in mf.errors(data)]
    warnings = [i.get("message", i.get("code")) for i in data.get("issues") or [] if i.get("severity") != "error"]
    details = {"manifest_id": data.get("manifest_id"), "shot": data.get("shot"),
               "output": (data.get("output") or {}).get("path"), "files_checked": len(data.get("files") or {}),
               "digital_source_type": data.get("digital_source_type"), "ai_coverage": data.get("summary"),
               "models": (data.get("summary") or {}).get("models")}
    state = "all files match" if not problems else f"{len(problems)} problem(s)"
    return Verification(os.fspath(location), "manifest", not problems, state, problems, warnings, details)


def verify_path(path: str | os.PathLike, *, config: c2pa_sign.SigningConfig | None = None,
                require_trusted: bool = False) -> list[Verification]:
    """Verify a review file, an EXR frame, a manifest or every output manifest under a folder."""
    p = Path(path)
    if not p.exists():
        raise InputError(f"{p}: no such file or folder")
    if p.is_dir() and not p.name.endswith(mf.SIDECAR_SUFFIX):
        found = mf.find_output_manifests(p)
        if not found:
            raise InputError(f"{p}: no provenance manifests (*.provenance/ or *.provenance.json) under this folder")
        return [verify_manifest(f) for f in found]
    if p.is_dir() or p.suffix == ".json":
        return [verify_manifest(p)]
    results = []
    if c2pa_sign.is_review_media(p):
        results.append(verify_c2pa(p, config=config, require_trusted=require_trusted))
        header = read_header_summary(p)
        if _sidecar_for(p, header) is not None:
            results.append(verify_sidecar(p))
        return results
    return [verify_sidecar(p)]
