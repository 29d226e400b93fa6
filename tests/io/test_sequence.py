"""Sequence patterns, scans and gaps."""

from __future__ import annotations

import pytest

from composite.core import InputError
from composite.io.sequence import SequencePattern, format_frame_list


@pytest.mark.parametrize("pattern,padding,frames,path", [
    ("plates/sh010.####.exr", 4, None, "plates/sh010.1001.exr"),
    ("plates/sh010.%04d.exr", 4, None, "plates/sh010.1001.exr"),
    ("sh010.%d.exr", 1, None, "sh010.1001.exr"),
    ("sh010.1001-1100#.exr", 4, (1001, 1100), "sh010.1001.exr"),
    ("sh010.1-5@@@.dpx", 3, (1, 5), "sh010.1001.dpx"),
    ("sh010.@@@@@.tif", 5, None, "sh010.01001.tif"),
    ("single.exr", 0, None, "single.exr"),
])
def test_patterns(pattern, padding, frames, path):
    p = SequencePattern.parse(pattern)
    assert p.padding == padding and p.path(1001) == path
    if frames:
        assert (min(p.frames), max(p.frames)) == frames
    assert p.is_sequence == (padding > 0)


def test_negative_frames_and_bad_ranges():
    assert SequencePattern.parse("a.####.exr").path(-12) == "a.-0012.exr"
    with pytest.raises(InputError, match="bad frame range"):
        SequencePattern.parse("a.5-1x0#.exr")


def test_scan_gaps_and_range_limits(tmp_path):
    for f in (1001, 1002, 1003, 1007, 1010):
        (tmp_path / f"p.{f:04d}.exr").write_bytes(b"")
    (tmp_path / "p.12.exr").write_bytes(b"")  # too little padding: not part of the sequence
    (tmp_path / "p.1004.exr.tmp").write_bytes(b"")
    p = SequencePattern.parse(str(tmp_path / "p.####.exr"))
    assert p.scan() == [1001, 1002, 1003, 1007, 1010]
    assert p.gaps() == [1004, 1005, 1006, 1008, 1009]
    assert format_frame_list(p.gaps()) == "1004-1006,1008-1009"
    assert p.frame_range() == (1001, 1010)
    limited = SequencePattern.parse(str(tmp_path / "p.1001-1005#.exr"))
    assert limited.scan() == [1001, 1002, 1003] and limited.gaps() == [1004, 1005]
