"""Image-sequence patterns: ``plate.####.exr``, ``plate.%04d.exr``, ``plate.1001-1100#.exr``.

``#`` stands for one digit each (``####`` = 4-digit zero padding, as in Nuke), ``@`` likewise, ``%04d``
is printf style, and a fileseq frame range before the padding (``1001-1100#``) limits the frames,
where a single ``#`` after a range means 4-digit padding (fileseq's convention).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import fileseq

from ..core.errors import InputError

_PRINTF = re.compile(r"%(0?)(\d*)d")
_HASHES = re.compile(r"(#+|@+)")
_RANGE_PAD = re.compile(r"((?:-?\d+(?:-(?:-?\d+))?(?:[xy:]\d+)?,?)+)(#+|@+)")


@dataclass(frozen=True)
class SequencePattern:
    """A parsed path pattern. ``padding`` 0 means a single file (no frame number)."""

    prefix: str
    padding: int
    suffix: str
    frames: tuple[int, ...] | None = None

    @classmethod
    def parse(cls, pattern: str | os.PathLike) -> SequencePattern:
        pattern = os.fspath(pattern)
        head, name = os.path.split(pattern)
        join = (lambda s: os.path.join(head, s)) if head else (lambda s: s)
        m = _RANGE_PAD.search(name)
        if m and ("-" in m.group(1) or "," in m.group(1)) and m.start() > 0 and name[m.start() - 1] in "._":
            pad_token = m.group(2)
            padding = 4 if pad_token == "#" else len(pad_token)
            try:
                frames = tuple(int(f) for f in fileseq.FrameSet(m.group(1)))
            except Exception:
                raise InputError(f"{pattern}: bad frame range {m.group(1)!r}") from None
            return cls(join(name[:m.start()]), padding, name[m.end():], frames)
        m = _PRINTF.search(name)
        if m:
            padding = int(m.group(2) or 1)
            return cls(join(name[:m.start()]), padding, name[m.end():])
        matches = list(_HASHES.finditer(name))
        if matches:
            m = matches[-1]
            return cls(join(name[:m.start()]), len(m.group(1)), name[m.end():])
        return cls(pattern, 0, "")

    @property
    def is_sequence(self) -> bool:
        return self.padding > 0

    def path(self, frame: int) -> str:
        """The file name of ``frame`` (negative frames keep the sign before the padding)."""
        if not self.is_sequence:
            return self.prefix
        sign = "-" if frame < 0 else ""
        return f"{self.prefix}{sign}{abs(int(frame)):0{self.padding}d}{self.suffix}"

    def __str__(self) -> str:
        return self.prefix + "#" * self.padding + self.suffix if self.is_sequence else self.prefix

    def scan(self) -> list[int]:
        """Frames present on disk (within ``frames`` when the pattern names a range)."""
        if not self.is_sequence:
            return []
        folder = Path(self.prefix).parent if os.path.dirname(self.prefix) else Path(".")
        base = os.path.basename(self.prefix)
        if not folder.is_dir():
            return []
        rx = re.compile(re.escape(base) + r"(-?\d+)" + re.escape(self.suffix) + r"$")
        found = []
        for entry in os.scandir(folder):
            m = rx.match(entry.name)
            if m and (len(m.group(1).lstrip("-")) >= self.padding):
                found.append(int(m.group(1)))
        frames = sorted(set(found))
        if self.frames is not None:
            allowed = set(self.frames)
            frames = [f for f in frames if f in allowed]
        return frames

    def frame_range(self) -> tuple[int, int] | None:
        """First and last frame: the pattern's range, or what is on disk."""
        if self.frames:
            return (min(self.frames), max(self.frames))
        frames = self.scan()
        return (frames[0], frames[-1]) if frames else None

    def gaps(self) -> list[int]:
        """Frames missing between the first and last frame."""
        frames = self.scan()
        if not frames:
            return []
        expected = set(self.frames) if self.frames else set(range(frames[0], frames[-1] + 1))
        return sorted(expected - set(frames))


def format_frame_list(frames: list[int]) -> str:
    """``[1, 2, 3, 7]`` → ``"1-3,7"``."""
    return str(fileseq.FrameSet(frames)) if frames else ""
