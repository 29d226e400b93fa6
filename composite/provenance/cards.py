"""Generator records in provenance: stable ids, model-card resolution and the issues they raise.

A generator record (:class:`composite.extend.generator.GeneratorRecord`) names its backend, whether it
produced the pixels (``generated``), its model (``model``: a mapping with the model card's name under
``card`` or ``name`` and the checkpoint's ``sha256``), prompt, seed and parameters. Manifests keep each
distinct record once, under an id derived from its content, and add what the model-card registry
(:mod:`composite.models`) knows:

``status``
    ``verified`` (the card exists and its sha256 equals the record's), ``unverified`` (the card has no
    confirmed sha256, or the record gives none), ``unknown_card`` (no such card), ``checksum_mismatch``
    (the record's checkpoint is not the card's), ``no_card`` (a generator that produced pixels without
    naming a model card) or ``not_generated`` (the record's element is not counted as generated).

Unknown cards and checksum mismatches are errors, a generated element without a card a warning: both
are reported by ``composite provenance verify`` and ``report``, never silently accepted.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

from . import iptc


def record_id(record: Mapping[str, Any]) -> str:
    """A stable 16-hex id of a record's content."""
    text = json.dumps(record, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def model_card_name(record: Mapping[str, Any]) -> str | None:
    model = record.get("model") or {}
    if isinstance(model, str):
        return model or None
    if not isinstance(model, Mapping):
        return None
    for key in ("card", "name", "model_card"):
        value = model.get(key)
        if value:
            return str(value)
    return None


def model_sha256(record: Mapping[str, Any]) -> str | None:
    model = record.get("model") or {}
    if isinstance(model, Mapping):
        value = model.get("sha256") or model.get("checksum")
        return str(value).lower() if value else None
    return None


def resolve_record(record: Mapping[str, Any]) -> dict[str, Any]:
    """The record plus ``card`` (what the registry says) and ``status`` (see the module docstring)."""
    out: dict[str, Any] = {"record": dict(record), "trained": iptc.record_is_trained(record)}
    name = model_card_name(record)
    digest = model_sha256(record)
    if not iptc.record_is_generated(record):
        out["status"] = "not_generated"
        if name:
            out.update(_card_info(name, digest))
            if out["status"] in ("unknown_card", "checksum_mismatch"):
                return out
            out["status"] = "not_generated"
        return out
    if not name:
        out["status"] = "no_card"
        return out
    out.update(_card_info(name, digest))
    return out


def _card_info(name: str, digest: str | None) -> dict[str, Any]:
    try:
        from ..models import get_card
    except ImportError:  # pragma: no cover - the registry is part of composite
        return {"status": "unverified", "card": {"name": name, "registry": "unavailable"}}
    from ..core.errors import InputError

    try:
        card = get_card(name)
    except InputError:
        return {"status": "unknown_card", "card": {"name": name}}
    info = {"name": card.name, "architecture": card.architecture, "file_name": card.file_name,
            "url": card.url, "licence": card.licence, "sha256": card.sha256}
    if card.sha256 and digest and card.sha256 != digest:
        status = "checksum_mismatch"
    elif card.sha256 and digest:
        status = "verified"
    else:
        status = "unverified"
    return {"status": status, "card": info}


def record_issues(rid: str, resolved: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Issues (``severity``, ``code``, ``message``) raised by a resolved record."""
    rec = resolved.get("record") or {}
    backend = rec.get("backend", "?")
    status = resolved.get("status")
    name = (resolved.get("card") or {}).get("name") or model_card_name(rec)
    if status == "unknown_card":
        from ..models import list_cards

        known = ", ".join(list_cards()) or "(none)"
        return [{"severity": "error", "code": "unknown_model_card", "generator": rid,
                 "message": f"generator {backend!r} names model card {name!r}, which the registry does not know "
                            f"(known cards: {known}); add its card to models/ or fix the record"}]
    if status == "checksum_mismatch":
        return [{"severity": "error", "code": "model_checksum_mismatch", "generator": rid,
                 "message": f"generator {backend!r}: the checkpoint's sha256 {model_sha256(rec)} differs from model "
                            f"card {name!r} ({(resolved.get('card') or {}).get('sha256')})"}]
    if status == "no_card":
        return [{"severity": "warning", "code": "generator_without_model_card", "generator": rid,
                 "message": f"generator {backend!r} produced pixels without naming a model card"}]
    return []
