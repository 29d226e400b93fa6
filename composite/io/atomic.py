"""Atomic file output: write to a temporary name beside the target, then rename into place.

A render killed mid-write leaves either the previous file or the complete new one under the final
name, never a truncated file; the temporary file is hidden (leading dot) and removed on failure.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

TEMP_MARKER = ".partial-"


def temp_path_for(path: str | os.PathLike) -> Path:
    """A hidden temporary path in the same folder, keeping the extension (so writers pick the format)."""
    p = Path(path)
    return p.with_name(f".{p.stem}{TEMP_MARKER}{os.getpid()}-{uuid.uuid4().hex[:8]}{p.suffix}")


def is_temp_path(path: str | os.PathLike) -> bool:
    name = Path(path).name
    return name.startswith(".") and TEMP_MARKER in name


def final_path(path: str | os.PathLike) -> str:
    """The name a temporary path (:func:`temp_path_for`) will be renamed to, for messages."""
    p = Path(path)
    if not is_temp_path(p):
        return os.fspath(path)
    stem = p.name[1:p.name.index(TEMP_MARKER)]
    return os.fspath(p.with_name(stem + p.suffix))


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path to write; on success rename it to ``path`` (creating folders), else delete it."""
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_path_for(final)
    try:
        yield tmp
        if not tmp.exists():
            raise FileNotFoundError(f"writer produced no file at {tmp}")
        os.replace(tmp, final)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise


def write_bytes_atomic(path: str | os.PathLike, data: bytes) -> Path:
    with atomic_output(path) as tmp:
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
    return Path(path)


def write_text_atomic(path: str | os.PathLike, text: str) -> Path:
    return write_bytes_atomic(path, text.encode())
