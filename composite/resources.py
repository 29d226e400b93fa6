"""Locations of the data composite ships: model cards (``models/``) and recipes (``pipelines/``).

In a wheel they are packed as ``composite/_data/models`` and ``composite/_data/pipelines``; in a source
checkout (editable install) they are the repository's top-level folders.
"""

from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent


def _data_dir(name: str) -> Path | None:
    for candidate in (_PACKAGE / "_data" / name, _PACKAGE.parent / name):
        if candidate.is_dir():
            return candidate
    return None


def pipelines_dir() -> Path | None:
    """Folder of the shipped recipe files."""
    return _data_dir("pipelines")


def models_dir() -> Path | None:
    """Folder of the shipped model cards."""
    return _data_dir("models")


def list_pipelines() -> list[str]:
    d = pipelines_dir()
    return sorted(p.stem for p in d.glob("*.yaml")) if d else []


def find_pipeline(name: str) -> Path | None:
    d = pipelines_dir()
    if d is None:
        return None
    for candidate in (d / name, d / f"{name}.yaml", d / f"{name}.yml"):
        if candidate.is_file():
            return candidate
    return None
