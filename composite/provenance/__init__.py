"""AI provenance and IP protection: what each frame and shot owes to generators, and proof of it.

* :mod:`~composite.provenance.coverage_stats` — per-frame ``ai_coverage`` statistics (mean, max, area).
* :mod:`~composite.provenance.iptc` — the IPTC digital source type of a frame or shot.
* :mod:`~composite.provenance.manifest` — the versioned JSON manifest (``composite.provenance/1``) every
  render writes beside its outputs, one part per chunk, assembled into a shot manifest.
* :mod:`~composite.provenance.recorder` — the hook output stages call (EXR header summary, checksums,
  manifest parts, C2PA signing of review media).
* :mod:`~composite.provenance.c2pa_sign` — C2PA Content Credentials (actions, digital source type,
  ingredients, ``cawg.training-mining`` set to ``notAllowed``) through c2pa-python.
* :mod:`~composite.provenance.verify` — reading back: C2PA validation, sidecar checksums.
* :mod:`~composite.provenance.report` — show reports (JSON, Markdown, thumbnail sheets with coverage
  mattes) and OpenTimelineIO clip annotations.

Command line: ``composite provenance verify|report|merge|sign``.
"""

from __future__ import annotations

from .c2pa_sign import SigningConfig, SigningConfigError, build_definition, sign_file
from .coverage_stats import coverage_summary, shot_coverage
from .iptc import classify, classify_frame
from .manifest import SCHEMA, assemble, load_manifest, merge_manifests, shot_manifest_path, sidecar_dir
from .recorder import bind
from .verify import Verification, verify_path

__all__ = ["SCHEMA", "SigningConfig", "SigningConfigError", "Verification", "assemble", "bind", "build_definition",
           "classify", "classify_frame", "coverage_summary", "load_manifest", "merge_manifests", "shot_coverage",
           "shot_manifest_path", "sidecar_dir", "sign_file", "verify_path"]
