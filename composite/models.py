"""Model cards and checkpoint loading.

A *model card* is a JSON file in the top-level ``models/`` folder (packed into the wheel, see
:mod:`composite.resources`) describing one supported checkpoint::

    {
      "schema": "composite.model/1",
      "name": "sam_vit_b",
      "architecture": "sam_vit_b",
      "file_name": "sam_vit_b_01ec64.pth",
      "url": "https://dl.fbaipublicfiles.com/segment_anything/sam_vit_b_01ec64.pth",
      "sha256": "ec2df627...",
      "size": 375042383,
      "licence": "Apache-2.0",
      "notes": "...",
      "config": {}
    }

``sha256`` may be ``null`` when no published digest could be confirmed; the card then says so in its
``notes`` and loading warns instead of verifying. ``config`` (optional) carries architecture
hyper-parameters for loaders that accept them.

Checkpoints are never downloaded by composite. :func:`resolve_checkpoint` finds the file:

1. an explicit path (a file, or a folder holding ``file_name``);
2. otherwise ``$COMPOSITE_MODELS/<file_name>`` (``COMPOSITE_MODELS`` may list several folders separated
   by ``os.pathsep``).

A missing file raises :class:`~composite.core.errors.InputError` saying where to download it and where to
put it; a file whose sha256 differs from the card raises :class:`~composite.core.errors.ChecksumError`.
Digests are cached per ``(path, size, mtime)`` in the process, so fingerprinting a whole shot hashes a
multi-gigabyte checkpoint once.

Example
-------
>>> from composite.models import get_card
>>> card = get_card("sam_vit_b")
>>> card.file_name, card.licence
('sam_vit_b_01ec64.pth', 'Apache-2.0')
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from .core.errors import ChecksumError, InputError

log = logging.getLogger(__name__)

#: Environment variable naming the folder(s) that hold downloaded checkpoints.
MODELS_ENV = "COMPOSITE_MODELS"
#: Schema of model-card files.
CARD_SCHEMA = "composite.model/1"

_REQUIRED = ("name", "architecture", "file_name", "url", "licence")
_KNOWN = set(_REQUIRED) | {"schema", "sha256", "size", "notes", "config", "source"}


@dataclass(frozen=True)
class ModelCard:
    """What composite knows about one checkpoint.

    Attributes
    ----------
    name : str
        Card name (the JSON file's stem), e.g. ``"sam_vit_b"``.
    architecture : str
        Which builder loads it, e.g. ``"sam_vit_b"``.
    file_name : str
        The checkpoint's file name as published.
    url : str
        Where to download it.
    sha256 : str or None
        Published sha256 of the file (lower-case hex), or None when unconfirmed.
    size : int or None
        File size in bytes, when known (checked before hashing: a truncated download fails fast).
    licence : str
        Licence of the weights.
    notes : str
        Free text (provenance, caveats).
    source : str
        Page documenting the checkpoint.
    config : mapping
        Architecture hyper-parameters (optional; loaders define the keys).
    path : Path or None
        The card file itself.
    """

    name: str
    architecture: str
    file_name: str
    url: str
    licence: str
    sha256: str | None = None
    size: int | None = None
    notes: str = ""
    source: str = ""
    config: Mapping[str, Any] = field(default_factory=dict)
    path: Path | None = None

    def __post_init__(self):
        object.__setattr__(self, "config", MappingProxyType(dict(self.config)))
        if self.sha256 is not None:
            digest = str(self.sha256).lower()
            if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
                raise InputError(f"model card {self.name!r}: sha256 must be 64 hex digits, got {self.sha256!r}")
            object.__setattr__(self, "sha256", digest)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, path: Path | None = None) -> ModelCard:
        where = str(path) if path else "<model card>"
        if not isinstance(data, Mapping):
            raise InputError(f"{where}: a model card must be a JSON object")
        schema = data.get("schema", CARD_SCHEMA)
        if schema != CARD_SCHEMA:
            raise InputError(f"{where}: unknown model-card schema {schema!r}; this composite reads {CARD_SCHEMA}")
        missing = [k for k in _REQUIRED if not data.get(k)]
        if missing:
            raise InputError(f"{where}: model card lacks {', '.join(missing)}")
        unknown = sorted(set(data) - _KNOWN)
        if unknown:
            raise InputError(f"{where}: unknown model-card key {unknown[0]!r}; allowed: {', '.join(sorted(_KNOWN))}")
        size = data.get("size")
        if size is not None and (isinstance(size, bool) or not isinstance(size, int) or size <= 0):
            raise InputError(f"{where}: size must be a positive integer (bytes), got {size!r}")
        config = data.get("config") or {}
        if not isinstance(config, Mapping):
            raise InputError(f"{where}: config must be an object")
        return cls(name=str(data["name"]), architecture=str(data["architecture"]), file_name=str(data["file_name"]),
                   url=str(data["url"]), licence=str(data["licence"]), sha256=data.get("sha256"), size=size,
                   notes=str(data.get("notes", "")), source=str(data.get("source", "")), config=config, path=path)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"schema": CARD_SCHEMA, "name": self.name, "architecture": self.architecture,
                               "file_name": self.file_name, "url": self.url, "sha256": self.sha256,
                               "size": self.size, "licence": self.licence}
        if self.notes:
            out["notes"] = self.notes
        if self.source:
            out["source"] = self.source
        if self.config:
            out["config"] = dict(self.config)
        return out


# -- cards -------------------------------------------------------------------------------------------

def read_card(path: str | os.PathLike) -> ModelCard:
    """Read one model-card JSON file."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise InputError(f"model card {path} not found") from None
    except (OSError, json.JSONDecodeError) as exc:
        raise InputError(f"model card {path}: cannot read it as JSON ({exc})") from None
    return ModelCard.from_dict(data, path=path)


def list_cards() -> list[str]:
    """Names of the model cards composite ships."""
    from .resources import models_dir

    d = models_dir()
    return sorted(p.stem for p in d.glob("*.json")) if d else []


def get_card(name_or_path: str | os.PathLike | ModelCard) -> ModelCard:
    """A shipped card by name (``"sam_vit_b"``), or a card file by path."""
    if isinstance(name_or_path, ModelCard):
        return name_or_path
    p = Path(name_or_path)
    if p.suffix == ".json" and p.is_file():
        return read_card(p)
    from .resources import models_dir

    d = models_dir()
    if d is not None and (d / f"{p.name}.json").is_file() and p.name == str(name_or_path):
        return read_card(d / f"{p.name}.json")
    shipped = ", ".join(list_cards()) or "(none)"
    raise InputError(f"no model card {str(name_or_path)!r}; shipped cards: {shipped} "
                     "(or give the path of a card .json file)")


# -- digests -----------------------------------------------------------------------------------------

_DIGESTS: dict[tuple[str, int, int], str] = {}
_DIGEST_LOCK = threading.Lock()


def file_sha256(path: str | os.PathLike) -> str:
    """sha256 (hex) of a file, cached per (resolved path, size, mtime) for the life of the process."""
    p = Path(path).resolve()
    st = p.stat()
    key = (str(p), st.st_size, st.st_mtime_ns)
    with _DIGEST_LOCK:
        hit = _DIGESTS.get(key)
    if hit is not None:
        return hit
    h = hashlib.sha256()
    with open(p, "rb") as f:
        for block in iter(lambda: f.read(8 << 20), b""):
            h.update(block)
    digest = h.hexdigest()
    with _DIGEST_LOCK:
        _DIGESTS[key] = digest
    return digest


def clear_digest_cache() -> None:
    """Forget cached digests (tests; files rewritten within one mtime tick)."""
    with _DIGEST_LOCK:
        _DIGESTS.clear()


# -- checkpoints -------------------------------------------------------------------------------------

def model_dirs() -> list[Path]:
    """Folders listed in ``$COMPOSITE_MODELS`` (empty when unset)."""
    raw = os.environ.get(MODELS_ENV, "")
    return [Path(os.path.expanduser(part)) for part in raw.split(os.pathsep) if part.strip()]


def _size_text(size: int | None) -> str:
    if not size:
        return ""
    return f", {size / 1e9:.2f} GB" if size >= 1e9 else f", {size / 1e6:.0f} MB"


def _missing_message(card: ModelCard, looked: list[Path], explicit: str | None) -> str:
    dirs = model_dirs()
    where = ", ".join(str(p) for p in looked) or "(nowhere: no path given and $COMPOSITE_MODELS is unset)"
    if dirs:
        put = f"put it at {dirs[0] / card.file_name}"
    else:
        put = (f"put it in a folder of your choice and set {MODELS_ENV} to that folder "
               f"(e.g. export {MODELS_ENV}=$HOME/composite-models; the file then is "
               f"$HOME/composite-models/{card.file_name})")
    alt = "or pass the checkpoint's path explicitly" if explicit is None else \
        "or correct the checkpoint path you gave"
    digest = f"; its sha256 is {card.sha256}" if card.sha256 else ""
    return (f"checkpoint {card.file_name} for model {card.name!r} not found (looked at: {where}). "
            f"Download it from {card.url} ({card.licence}{_size_text(card.size)}){digest}, "
            f"then {put}, {alt}. composite never downloads weights itself.")


def resolve_checkpoint(card: ModelCard | str, path: str | os.PathLike | None = None) -> Path:
    """Where the checkpoint of ``card`` is: ``path`` (a file, or a folder holding ``card.file_name``),
    else ``$COMPOSITE_MODELS/<file_name>``. Raises :class:`InputError` saying how to get it when missing."""
    card = get_card(card)
    looked: list[Path] = []
    if path is not None and str(path) != "":
        p = Path(os.path.expanduser(str(path)))
        candidates = [p / card.file_name] if p.is_dir() else [p]
    else:
        candidates = [d / card.file_name for d in model_dirs()]
    for c in candidates:
        looked.append(c)
        if c.is_file():
            return c
    raise InputError(_missing_message(card, looked, None if path is None else str(path)))


def verify_checkpoint(card: ModelCard | str, path: str | os.PathLike) -> str:
    """Check a checkpoint file against its card; returns its sha256.

    The size is compared first (a truncated download fails without hashing), then the digest.
    Raises :class:`ChecksumError` naming the file, both digests and what to do.
    """
    card = get_card(card)
    p = Path(path)
    if card.size is not None:
        size = p.stat().st_size
        if size != card.size:
            raise ChecksumError(
                f"checkpoint {p} is {size} bytes but model card {card.name!r} expects {card.size} bytes "
                f"(an incomplete or different file); download it again from {card.url}")
    digest = file_sha256(p)
    if card.sha256 is None:
        log.warning("model card %s has no confirmed sha256; %s is not verified (sha256 %s)",
                    card.name, p, digest)
    elif digest != card.sha256:
        raise ChecksumError(
            f"checkpoint {p} has sha256 {digest} but model card {card.name!r} expects {card.sha256}; "
            f"the file is corrupt or a different checkpoint: download it again from {card.url}")
    return digest


def checkpoint_path(card: ModelCard | str, path: str | os.PathLike | None = None, *,
                    verify: bool = True) -> tuple[Path, str | None]:
    """Resolve and (by default) verify a checkpoint: ``(path, sha256)`` (sha256 None when not verified)."""
    card = get_card(card)
    p = resolve_checkpoint(card, path)
    return p, (verify_checkpoint(card, p) if verify else None)


def load_state_dict(card: ModelCard | str, path: str | os.PathLike | None = None, *, verify: bool = True,
                    map_location: Any = "cpu") -> tuple[dict, Path, str | None]:
    """Resolve, verify and load a PyTorch state dict (``torch.load(weights_only=True)``).

    Returns ``(state_dict, path, sha256)``. A file torch cannot read raises :class:`InputError`.
    """
    import torch

    p, digest = checkpoint_path(card, path, verify=verify)
    try:
        state = torch.load(p, map_location=map_location, weights_only=True)
    except Exception as exc:
        raise InputError(f"checkpoint {p} cannot be read by torch ({type(exc).__name__}: {exc}); "
                         f"download it again from {get_card(card).url}") from None
    if isinstance(state, Mapping) and "state_dict" in state and isinstance(state["state_dict"], Mapping):
        state = state["state_dict"]
    if not isinstance(state, Mapping):
        raise InputError(f"checkpoint {p} does not hold a state dict (got {type(state).__name__})")
    return dict(state), p, digest
