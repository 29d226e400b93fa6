"""sha256 of files and folders, computed once per file version.

Digests are cached per ``(resolved path, size, mtime)`` for the life of the process (through
:func:`composite.models.file_sha256`, which hashes multi-gigabyte checkpoints the same way), so a render
that reads a plate frame in several chunks, or a report that checks the same files again, hashes each
file once.

Example
-------
>>> import tempfile, os
>>> with tempfile.TemporaryDirectory() as d:
...     p = os.path.join(d, "a.txt")
...     _ = open(p, "w").write("abc")
...     sha256_file(p)[:16]
'ba7816bf8f01cfea'
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

from ..models import file_sha256

#: Folders with more files than this are summarised by names, sizes and mtimes instead of contents.
MAX_FOLDER_FILES = 5000


def sha256_file(path: str | os.PathLike) -> str:
    """Hex sha256 of a file (cached per path, size and mtime)."""
    return file_sha256(path)


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def describe_file(path: str | os.PathLike) -> dict[str, Any]:
    """``{"sha256", "size"}`` of an existing file, or ``{"missing": True}``."""
    p = Path(path)
    if not p.is_file():
        return {"missing": True}
    return {"sha256": sha256_file(p), "size": p.stat().st_size}


def describe_path(path: str | os.PathLike) -> dict[str, Any]:
    """A file as :func:`describe_file`; a folder as the sha256 over its files' relative names and
    digests (``{"sha256", "files", "kind": "folder"}``); a missing path as ``{"missing": True}``."""
    p = Path(path)
    if p.is_file():
        return describe_file(p)
    if not p.is_dir():
        return {"missing": True}
    entries = sorted(q for q in p.rglob("*") if q.is_file() and not q.name.startswith("."))
    h = hashlib.sha256()
    if len(entries) > MAX_FOLDER_FILES:
        for q in entries:
            st = q.stat()
            h.update(f"{q.relative_to(p).as_posix()}|{st.st_size}|{st.st_mtime_ns}\n".encode())
        return {"kind": "folder", "files": len(entries), "sha256": h.hexdigest(), "by": "names-sizes-mtimes"}
    for q in entries:
        h.update(f"{q.relative_to(p).as_posix()}|{sha256_file(q)}\n".encode())
    return {"kind": "folder", "files": len(entries), "sha256": h.hexdigest()}
