"""A sprite sheet of small people-like figures for crowd-multiplication tests.

:func:`crowd_tile` draws ``count`` soldier-like figures (legs, tunic, belt, arms, head, and by chance a
helmet, a shield and a spear), each in its own cell of a sheet, anti-aliased, as premultiplied RGBA
float32 in ACEScg. Each :class:`Sprite` records its box in the sheet, its foot point (the ground point
between the feet, where a crowd system plants it) and its figure height (foot to top of head, props
excluded).

Example
-------
>>> from composite.synth import crowd_tile
>>> tile = crowd_tile(count=4, sprite_height=48, columns=2, seed=3)
>>> tile.pixels.shape[2], len(tile.sprites)
(4, 4)
>>> s = tile.sprites[0]
>>> bool(s.box[1] <= s.foot[1] <= s.box[1] + s.box[3])
True
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from ..core.errors import InputError
from ..core.image import RGBA, Image
from ..core.state import WORKING_SPACE, AlphaState
from ._common import Raster, capsule, over_into, scene_rng

_709_TO_AP1 = np.array([[0.6130974, 0.3395231, 0.0473795],
                        [0.0701937, 0.9163539, 0.0134524],
                        [0.0206156, 0.1095698, 0.8698147]], np.float32)

_TUNICS = ((0.25, 0.04, 0.03), (0.05, 0.08, 0.20), (0.18, 0.15, 0.06), (0.10, 0.12, 0.06), (0.22, 0.20, 0.17),
           (0.12, 0.05, 0.12))
_SKINS = ((0.45, 0.28, 0.19), (0.30, 0.17, 0.10), (0.17, 0.09, 0.05), (0.50, 0.34, 0.25))
_SHIELDS = ((0.35, 0.05, 0.03), (0.04, 0.07, 0.25), (0.40, 0.30, 0.05), (0.25, 0.22, 0.18))
_STEEL = (0.22, 0.22, 0.23)
_LEGS = (0.06, 0.045, 0.03)
_WOOD = (0.12, 0.07, 0.035)


def _ap1(rgb709) -> np.ndarray:
    return (_709_TO_AP1 @ np.asarray(rgb709, np.float32)).astype(np.float32)


@dataclass(frozen=True)
class Sprite:
    """One figure of a :class:`CrowdTile`.

    ``box``: ``(x, y, width, height)`` of its pixels in the sheet; ``foot``: the ground point between its
    feet, sheet pixel coordinates (pixel centres at integers); ``height``: pixels from the foot point to
    the top of the head; ``facing``: ``"left"`` or ``"right"``; ``props``: what it carries.
    """

    index: int
    box: tuple[int, int, int, int]
    foot: tuple[float, float]
    height: float
    facing: str
    props: tuple[str, ...] = ()


@dataclass(frozen=True, eq=False)
class CrowdTile:
    """A sprite sheet: ``pixels`` ``(H, W, 4)`` float32 premultiplied RGBA (ACEScg) and its sprites."""

    pixels: np.ndarray
    sprites: tuple[Sprite, ...]
    params: dict[str, Any] = field(default_factory=dict)

    def image(self) -> Image:
        """The sheet as a premultiplied RGBA :class:`~composite.core.Image`."""
        return Image(self.pixels, RGBA, WORKING_SPACE, AlphaState.PREMULTIPLIED,
                     metadata={"synth:kind": "crowd_tile"})

    def sprite(self, index: int) -> np.ndarray:
        """``(h, w, 4)`` premultiplied RGBA crop of one sprite (a copy)."""
        x, y, w, h = self.sprites[index].box
        return self.pixels[y:y + h, x:x + w].copy()

    def to_json(self) -> dict[str, Any]:
        return {"schema": "composite.synth.crowd_tile/1", "params": dict(self.params),
                "width": int(self.pixels.shape[1]), "height": int(self.pixels.shape[0]),
                "coordinates": "sheet pixels, pixel centres at integers, y down; box is x, y, width, height",
                "sprites": [{**asdict(s), "box": list(s.box), "foot": list(s.foot), "props": list(s.props)}
                            for s in self.sprites]}


def _figure(rgb, alpha, foot, hf, rng, mirror, ss):
    """Draw one figure with its feet at ``foot`` and head top ``hf`` pixels above; returns its props."""
    fx, fy = foot
    sgn = -1.0 if mirror else 1.0

    def p(x, y):
        return np.array([fx + sgn * x * hf, fy + y * hf])

    def part(polys, color, light=True):
        pts = np.concatenate([np.asarray(q).reshape(-1, 2) for q in polys], 0)
        x0 = max(0, int(math.floor(pts[:, 0].min())) - 2)
        y0 = max(0, int(math.floor(pts[:, 1].min())) - 2)
        x1 = min(rgb.shape[1], int(math.ceil(pts[:, 0].max())) + 3)
        y1 = min(rgb.shape[0], int(math.ceil(pts[:, 1].max())) + 3)
        if x1 <= x0 or y1 <= y0:
            return
        r = Raster((x0, y0, x1, y1), ss=ss)
        r.polygons(polys)
        cov = r.resolve()
        col = np.empty((*cov.shape, 3), np.float32)
        col[...] = _ap1(color)
        if light:  # lit from the left of the sheet
            xs = np.arange(x0, x1, dtype=np.float32)[None, :]
            col *= np.clip(1.15 - 0.9 * (xs - fx) / max(hf, 1.0), 0.6, 1.5)[..., None]
        over_into(rgb, alpha, (x0, y0, x1, y1), col * cov[..., None], cov)

    def circle(cx, cy, r, n=24):
        a = np.linspace(0, 2 * math.pi, n, endpoint=False)
        c = p(cx, cy)
        return np.stack([c[0] + r * hf * np.cos(a), c[1] + r * hf * np.sin(a)], 1)

    stance = rng.uniform(0.03, 0.11)
    tunic = _TUNICS[rng.integers(len(_TUNICS))]
    skin = _SKINS[rng.integers(len(_SKINS))]
    props: list[str] = []
    has_spear = rng.random() < 0.5
    has_shield = rng.random() < 0.45
    has_helmet = rng.random() < 0.6
    # Spear behind the body, held upright on the figure's right.
    if has_spear:
        props.append("spear")
        part([capsule(p(0.19, -0.02), p(0.21, -1.28), 0.011 * hf)], _WOOD)
        part([np.array([p(0.212, -1.28), p(0.225, -1.34), p(0.214, -1.42), p(0.201, -1.34)])], _STEEL)
    part([capsule(p(-0.05, -0.50), p(-stance, -0.025), 0.048 * hf, 0.035 * hf),
          capsule(p(0.05, -0.50), p(stance, -0.025), 0.048 * hf, 0.035 * hf)], _LEGS)
    part([np.array([p(-0.075, -0.02), p(-stance - 0.045, -0.02), p(-stance - 0.05, 0.0), p(-0.075 + 0.02, 0.0)]),
          np.array([p(stance - 0.01, -0.02), p(stance + 0.07, -0.02), p(stance + 0.075, 0.0), p(stance - 0.01, 0.0)])],
         _LEGS, light=False)
    part([np.array([p(-0.12, -0.80), p(0.12, -0.80), p(0.15, -0.44), p(-0.15, -0.44)])], tunic)
    part([np.array([p(-0.13, -0.58), p(0.13, -0.58), p(0.135, -0.55), p(-0.135, -0.55)])], (0.08, 0.05, 0.025))
    arm_r = 0.035
    part([capsule(p(-0.12, -0.78), p(-0.17, -0.52), arm_r * hf, 0.03 * hf)], tunic)
    hand_y = -0.70 if has_spear else -0.52
    part([capsule(p(0.12, -0.78), p(0.19, hand_y), arm_r * hf, 0.03 * hf)], tunic)
    part([circle(0.19, hand_y, 0.03)], skin)
    part([circle(-0.17, -0.51, 0.028)], skin)
    part([capsule(p(0.0, -0.80), p(0.0, -0.84), 0.03 * hf)], skin)
    part([circle(0.0, -0.91, 0.075)], skin)
    if has_helmet:
        props.append("helmet")
        a = np.linspace(math.pi, 2 * math.pi, 16)
        c = p(0.0, -0.915)
        dome = np.stack([c[0] + 0.083 * hf * np.cos(a), c[1] + 0.083 * hf * np.sin(a)], 1)
        part([np.concatenate([dome, [p(0.083, -0.9), p(-0.083, -0.9)]], 0)], _STEEL)
    if has_shield:
        props.append("shield")
        colour = _SHIELDS[rng.integers(len(_SHIELDS))]
        part([circle(-0.17, -0.60, 0.15, 32)], _STEEL)
        part([circle(-0.17, -0.60, 0.13, 32)], colour)
        part([circle(-0.17, -0.60, 0.03, 12)], _STEEL)
    return tuple(props)


def crowd_tile(*, count: int = 12, sprite_height: int = 96, columns: int = 6, seed: int = 0) -> CrowdTile:
    """A sheet of ``count`` people-like figures about ``sprite_height`` pixels tall.

    Parameters
    ----------
    count : int
        Number of figures (1..1024).
    sprite_height : int
        Nominal figure height in pixels (foot to head top); each figure is 88-100% of it. 16..2048.
    columns : int
        Cells per row of the sheet.
    seed : int
        Every choice (colours, props, stance, facing) follows from it.

    Returns
    -------
    CrowdTile
        ``pixels`` ``(H, W, 4)`` float32 premultiplied ACEScg and ``sprites`` with boxes and foot points.
    """
    if not isinstance(count, (int, np.integer)) or not 1 <= count <= 1024:
        raise InputError(f"crowd_tile: count must be an integer in [1, 1024], got {count!r}")
    if not isinstance(sprite_height, (int, np.integer)) or not 16 <= sprite_height <= 2048:
        raise InputError(f"crowd_tile: sprite_height must be an integer in [16, 2048], got {sprite_height!r}")
    if not isinstance(columns, (int, np.integer)) or columns < 1:
        raise InputError(f"crowd_tile: columns must be a positive integer, got {columns!r}")
    columns = min(int(columns), int(count))
    rows = int(math.ceil(count / columns))
    pad = max(2, sprite_height // 16)
    cell_w = int(math.ceil(0.6 * sprite_height)) + 2 * pad
    cell_h = int(math.ceil(1.45 * sprite_height)) + 2 * pad
    sheet_h, sheet_w = rows * cell_h, columns * cell_w
    rgb = np.zeros((sheet_h, sheet_w, 3), np.float32)
    alpha = np.zeros((sheet_h, sheet_w, 1), np.float32)
    ss = 4 if sprite_height <= 256 else 2
    sprites = []
    for i in range(int(count)):
        rng = scene_rng(seed, "crowd", i)
        row, col = divmod(i, columns)
        cx0, cy0 = col * cell_w, row * cell_h
        hf = float(sprite_height) * rng.uniform(0.88, 1.0)
        foot = (cx0 + (cell_w - 1) / 2.0, float(cy0 + cell_h - pad - 1))
        mirror = bool(rng.random() < 0.5)
        props = _figure(rgb, alpha, foot, hf, rng, mirror, ss)
        cell = alpha[cy0:cy0 + cell_h, cx0:cx0 + cell_w, 0]
        ys, xs = np.nonzero(cell > 0)
        if len(xs):
            box = (cx0 + int(xs.min()), cy0 + int(ys.min()), int(xs.max() - xs.min() + 1), int(ys.max() - ys.min() + 1))
        else:  # pragma: no cover - a figure always covers pixels
            box = (cx0, cy0, cell_w, cell_h)
        sprites.append(Sprite(index=i, box=box, foot=(float(foot[0]), float(foot[1])), height=hf,
                              facing="left" if mirror else "right", props=props))
    pixels = np.concatenate([rgb, alpha], axis=2)
    params = {"kind": "crowd", "count": int(count), "sprite_height": int(sprite_height), "columns": columns,
              "seed": int(seed), "colorspace": WORKING_SPACE, "alpha": "premultiplied"}
    return CrowdTile(pixels=pixels, sprites=tuple(sprites), params=params)
