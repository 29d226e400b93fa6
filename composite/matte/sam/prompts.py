"""SAM prompt files: points, boxes and mask hints per keyframe, in YAML or JSON.

::

    schema: composite.prompts/1
    keyframes:
      1001:
        positive: [[412, 300], [455, 520]]     # x, y pixels: on the subject
        negative: [[610, 380]]                 # x, y pixels: not the subject
        box: [350, 120, 640, 700]              # x0, y0, x1, y1 pixels
      1040:
        box: [380, 110, 700, 690]
        mask: masks/actor.1040.png             # mask hint, relative to this file

Coordinates are pixels of the plate's display window: x to the right, y downwards, origin at the top-left
corner, the same convention SAM uses. JSON files write the frame numbers as strings (``"1001"``). A mask
hint is a grey (or RGB(A), read with the trimap rules of :func:`composite.matte.trimap.normalize_trimap`)
8/16-bit PNG/TIFF/JPEG of the plate's size; pixels >= 0.5 are inside. A keyframe with only a mask hint gets
the mask's bounding box as its box prompt.

Example
-------
>>> from composite.matte.sam.prompts import parse_prompts
>>> kf = parse_prompts({"keyframes": {1001: {"positive": [[10, 20]], "box": [0, 0, 40, 50]}}})
>>> kf[1001].points.tolist(), kf[1001].labels.tolist(), kf[1001].box.tolist()
([[10.0, 20.0]], [1], [0.0, 0.0, 40.0, 50.0])
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ...core.errors import InputError

SCHEMA = "composite.prompts/1"
_KEYS = {"positive", "negative", "box", "mask"}


@dataclass(frozen=True, eq=False)
class Keyframe:
    """Prompts of one keyframe. ``points`` ``(n, 2)`` float64 x, y; ``labels`` ``(n,)`` int (1 positive,
    0 negative); ``box`` ``(4,)`` x0, y0, x1, y1 or None; ``mask`` path of a mask hint or None."""

    frame: int
    points: np.ndarray = field(default_factory=lambda: np.zeros((0, 2)))
    labels: np.ndarray = field(default_factory=lambda: np.zeros((0,), np.int64))
    box: np.ndarray | None = None
    mask: Path | None = None

    def check_bounds(self, width: int, height: int, source: str = "prompts") -> None:
        """Raise :class:`InputError` for points or boxes outside a ``width`` x ``height`` plate."""
        for (x, y) in self.points:
            if not (0 <= x <= width and 0 <= y <= height):
                raise InputError(f"{source}: keyframe {self.frame}: point ({x:g}, {y:g}) lies outside the "
                                 f"{width}x{height} plate")
        if self.box is not None:
            x0, y0, x1, y1 = self.box
            if x1 <= 0 or y1 <= 0 or x0 >= width or y0 >= height:
                raise InputError(f"{source}: keyframe {self.frame}: box {self.box.tolist()} lies outside the "
                                 f"{width}x{height} plate")


def _pairs(value: Any, where: str) -> np.ndarray:
    if not isinstance(value, (list, tuple)):
        raise InputError(f"{where}: expected a list of [x, y] pairs, got {value!r}")
    out = []
    for i, p in enumerate(value):
        if not isinstance(p, (list, tuple)) or len(p) != 2 or not all(
                isinstance(v, (int, float)) and not isinstance(v, bool) and np.isfinite(v) for v in p):
            raise InputError(f"{where}[{i}]: expected [x, y] numbers, got {p!r}")
        out.append([float(p[0]), float(p[1])])
    return np.asarray(out, np.float64).reshape(-1, 2)


def _parse_keyframe(frame: int, spec: Any, source: str, base: Path | None) -> Keyframe:
    where = f"{source}: keyframes.{frame}"
    if not isinstance(spec, Mapping):
        raise InputError(f"{where}: expected a mapping with positive/negative/box/mask")
    unknown = sorted(set(spec) - _KEYS)
    if unknown:
        raise InputError(f"{where}: unknown key {unknown[0]!r}; allowed: {', '.join(sorted(_KEYS))}")
    pos = _pairs(spec.get("positive", []), f"{where}.positive")
    neg = _pairs(spec.get("negative", []), f"{where}.negative")
    box = None
    if spec.get("box") is not None:
        b = spec["box"]
        if not isinstance(b, (list, tuple)) or len(b) != 4 or not all(
                isinstance(v, (int, float)) and not isinstance(v, bool) and np.isfinite(v) for v in b):
            raise InputError(f"{where}.box: expected [x0, y0, x1, y1] numbers, got {b!r}")
        box = np.asarray(b, np.float64)
        if box[2] <= box[0] or box[3] <= box[1]:
            raise InputError(f"{where}.box: x1 must exceed x0 and y1 must exceed y0, got {b!r}")
    mask = None
    if spec.get("mask") is not None:
        if not isinstance(spec["mask"], str) or not spec["mask"]:
            raise InputError(f"{where}.mask: expected a file path, got {spec['mask']!r}")
        mask = Path(spec["mask"])
        if base is not None and not mask.is_absolute():
            mask = base / mask
    if not len(pos) and box is None and mask is None:
        raise InputError(f"{where}: needs at least one positive point, a box or a mask "
                         "(negative points alone select nothing)")
    points = np.concatenate([pos, neg]) if len(neg) else pos
    labels = np.concatenate([np.ones(len(pos), np.int64), np.zeros(len(neg), np.int64)])
    return Keyframe(int(frame), points, labels, box, mask)


def parse_prompts(data: Mapping[str, Any], *, source: str = "<prompts>", base: Path | None = None) -> dict[int, Keyframe]:
    """Keyframes from a parsed prompts mapping (``{"keyframes": {frame: {...}}}``), sorted by frame."""
    if not isinstance(data, Mapping):
        raise InputError(f"{source}: a prompts file must be a mapping with 'keyframes'")
    schema = data.get("schema", SCHEMA)
    if schema != SCHEMA:
        raise InputError(f"{source}: unknown schema {schema!r}; this composite reads {SCHEMA}")
    unknown = sorted(set(data) - {"schema", "keyframes"})
    if unknown:
        raise InputError(f"{source}: unknown key {unknown[0]!r}; allowed: schema, keyframes")
    kfs = data.get("keyframes")
    if not isinstance(kfs, Mapping) or not kfs:
        raise InputError(f"{source}: 'keyframes' must be a non-empty mapping of frame number: prompts")
    out: dict[int, Keyframe] = {}
    for k, spec in kfs.items():
        try:
            frame = int(k)
        except (TypeError, ValueError):
            raise InputError(f"{source}: keyframe key {k!r} is not a frame number") from None
        if frame in out:
            raise InputError(f"{source}: keyframe {frame} is given twice")
        out[frame] = _parse_keyframe(frame, spec, source, base)
    return dict(sorted(out.items()))


def load_prompts(path: str | Path) -> dict[int, Keyframe]:
    """Read a prompts file (``.yaml``/``.yml``/``.json``)."""
    import yaml

    p = Path(path)
    try:
        text = p.read_text()
    except FileNotFoundError:
        raise InputError(f"prompts file {p} not found") from None
    except OSError as exc:
        raise InputError(f"prompts file {p}: cannot read it ({exc})") from None
    try:
        data = json.loads(text) if p.suffix.lower() == ".json" else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as exc:
        raise InputError(f"prompts file {p}: not valid {'JSON' if p.suffix.lower() == '.json' else 'YAML'} ({exc})") from None
    return parse_prompts(data, source=str(p), base=p.parent)


def prompts_digest(path: str | Path) -> str:
    """sha256 of a prompts file and of the mask hints it names (for stage fingerprints)."""
    keyframes = load_prompts(path)
    h = hashlib.sha256(Path(path).read_bytes())
    for kf in keyframes.values():
        if kf.mask is not None:
            try:
                h.update(kf.mask.read_bytes())
            except OSError:
                raise InputError(f"prompts file {path}: keyframe {kf.frame}: mask hint {kf.mask} cannot be read") from None
    return h.hexdigest()


def read_mask_hint(kf: Keyframe, shape: tuple[int, int], *, source: str = "prompts") -> np.ndarray:
    """The keyframe's mask hint as ``(H, W)`` float32 in {0, 1}, checked against the plate's size."""
    import cv2

    from ..trimap import normalize_trimap

    if kf.mask is None:
        raise InputError(f"{source}: keyframe {kf.frame} has no mask hint")
    a = cv2.imread(str(kf.mask), cv2.IMREAD_UNCHANGED)
    if a is None:
        raise InputError(f"{source}: keyframe {kf.frame}: mask hint {kf.mask} is missing or not an image "
                         "(PNG, TIFF or JPEG)")
    if a.ndim == 3:
        a = a[:, :, ::-1] if a.shape[2] == 3 else a[:, :, [2, 1, 0, 3]] if a.shape[2] == 4 else a
    if a.shape[:2] != tuple(shape):
        raise InputError(f"{source}: keyframe {kf.frame}: mask hint {kf.mask} is {a.shape[1]}x{a.shape[0]} but "
                         f"the plate is {shape[1]}x{shape[0]}")
    # grey levels: anything not clearly background counts as inside
    return (normalize_trimap(a, low=0.499, high=0.5) >= 0.5).astype(np.float32)
