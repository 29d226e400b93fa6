"""Crowd multiplication: sprites of extras instanced by the thousand on a ground plane.

1. :func:`sprites_from_matte` cuts a :class:`SpriteLibrary` out of a plate and its matte (each connected
   region of the matte is one extra; its foot point is the bottom centre, its height the region's).
   Short looping clips give sprites with several frames.
2. :func:`place_agents` samples agents on the ground plane seen by a :class:`GroundCamera` — seeded, so
   agents keep identity and position in every frame and chunk — with per-agent variation (scale,
   mirror, hue/saturation/value, time offset), a density map and a keep-out mask.
3. :func:`render_crowd` draws them far to near: perspective scale, soft contact shadows, haze by
   distance, and returns premultiplied RGBA, depth (metres) and an agent-ID matte.

Sprites and output are scene-linear, premultiplied float32.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from ..core.errors import InputError
from .camera import GroundCamera

#: Rec.709/ACEScg-agnostic luminance weights used for saturation jitter (AP1 luminance).
_LUMA = np.array([0.2722287, 0.6740818, 0.0536895], np.float32)


@dataclass
class Sprite:
    """One extra: ``frames`` of ``(h, w, 4)`` premultiplied RGBA, the foot point ``(x, y)`` in sprite
    pixels and the figure's height in sprite pixels (all frames share size and foot point)."""

    frames: list[np.ndarray]
    foot: tuple[float, float]
    height: float
    name: str = ""

    def __post_init__(self):
        if not self.frames:
            raise InputError(f"sprite {self.name!r} has no frames")
        shape = self.frames[0].shape
        for f in self.frames:
            if f.shape != shape or f.ndim != 3 or f.shape[2] != 4 or f.dtype != np.float32:
                raise InputError(f"sprite {self.name!r}: frames must share one (h, w, 4) float32 shape")
        if self.height <= 0:
            raise InputError(f"sprite {self.name!r}: height must be positive")


@dataclass
class SpriteLibrary:
    sprites: list[Sprite] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.sprites)

    def save(self, folder: str | os.PathLike) -> Path:
        """Write the library as ``sprites.npz`` + ``sprites.json`` (atomically)."""
        from ..io.atomic import atomic_output, write_text_atomic

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        arrays = {f"s{i}_f{j}": fr for i, s in enumerate(self.sprites) for j, fr in enumerate(s.frames)}
        with atomic_output(folder / "sprites.npz") as tmp:
            with open(tmp, "wb") as fh:
                np.savez_compressed(fh, **arrays)
        meta = [{"name": s.name, "foot": list(s.foot), "height": s.height, "frames": len(s.frames)}
                for s in self.sprites]
        write_text_atomic(folder / "sprites.json", json.dumps({"schema": "composite.sprites/1", "sprites": meta},
                                                              indent=1))
        return folder

    @classmethod
    def load(cls, folder: str | os.PathLike) -> SpriteLibrary:
        folder = Path(folder)
        try:
            meta = json.loads((folder / "sprites.json").read_text())
            arrays = np.load(folder / "sprites.npz")
        except FileNotFoundError as exc:
            raise InputError(f"{folder}: not a sprite library ({exc.filename} missing)") from None
        sprites = [Sprite([arrays[f"s{i}_f{j}"] for j in range(m["frames"])], tuple(m["foot"]), float(m["height"]),
                          m.get("name", "")) for i, m in enumerate(meta["sprites"])]
        return cls(sprites)


def sprites_from_matte(rgba: np.ndarray, *, min_height: int = 16, threshold: float = 0.5, pad: int = 2,
                       name: str = "sprite") -> SpriteLibrary:
    """Cut one sprite per connected matte region of a premultiplied ``(H, W, 4)`` RGBA frame.

    Regions shorter than ``min_height`` pixels are skipped. Raises InputError when none is usable.
    """
    if rgba.ndim != 3 or rgba.shape[2] != 4:
        raise InputError(f"sprites_from_matte expects (H, W, 4) premultiplied RGBA, got {rgba.shape}")
    alpha = rgba[..., 3]
    n, labels, stats, _ = cv2.connectedComponentsWithStats((alpha > threshold).astype(np.uint8), connectivity=8)
    sprites = []
    h_img, w_img = alpha.shape
    for i in range(1, n):
        x, y, w, h, area = stats[i]
        if h < min_height:
            continue
        x0, y0 = max(0, x - pad), max(0, y - pad)
        x1, y1 = min(w_img, x + w + pad), min(h_img, y + h + pad)
        own = (labels[y0:y1, x0:x1] == i)
        # keep the soft edge around this region only (dilated region mask)
        keep = cv2.dilate(own.astype(np.uint8), np.ones((2 * pad + 1, 2 * pad + 1), np.uint8)).astype(np.float32)
        crop = rgba[y0:y1, x0:x1] * keep[..., None]
        rows = np.nonzero(own.any(axis=1))[0]
        bottom = rows.max()
        cols = np.nonzero(own[bottom])[0]
        foot = (float(cols.mean()), float(bottom) + 0.5)
        sprites.append(Sprite([np.ascontiguousarray(crop, np.float32)], foot, float(h), f"{name}{len(sprites)}"))
    if not sprites:
        raise InputError(f"no usable sprites: no matte region is at least {min_height} pixels tall "
                         f"(alpha > {threshold}); check the matte or lower min_height")
    return SpriteLibrary(sprites)


@dataclass
class Agents:
    """Per-agent arrays (length N), sorted far to near."""

    X: np.ndarray
    Z: np.ndarray
    sprite: np.ndarray
    size_m: np.ndarray
    mirror: np.ndarray
    color: np.ndarray  # (N, 3, 3) colour matrices
    offset: np.ndarray
    ident: np.ndarray

    def __len__(self) -> int:
        return len(self.Z)


def _colour_matrices(hue: np.ndarray, sat: np.ndarray, val: np.ndarray) -> np.ndarray:
    """(N, 3, 3) matrices: hue rotation about the grey axis (radians), saturation, value gain."""
    n = len(hue)
    k = np.ones(3) / np.sqrt(3)
    K = np.array([[0, -k[2], k[1]], [k[2], 0, -k[0]], [-k[1], k[0], 0]])
    c, s = np.cos(hue)[:, None, None], np.sin(hue)[:, None, None]
    rot = c * np.eye(3) + s * K + (1 - c) * np.outer(k, k)
    luma = np.tile(_LUMA, (3, 1))
    satm = sat[:, None, None] * np.eye(3) + (1 - sat)[:, None, None] * luma
    out = val[:, None, None] * (satm @ rot)
    return out.astype(np.float32).reshape(n, 3, 3)


def place_agents(camera: GroundCamera, width: int, height: int, count: int, *, n_sprites: int, seed: int = 0,
                 depth_range: tuple[float, float] = (8.0, 200.0), person_height: float = 1.75,
                 scale_jitter: float = 0.08, hue_jitter: float = 0.05, sat_jitter: float = 0.15,
                 value_jitter: float = 0.2, mirror: bool = True, loop_length: int = 1,
                 density: np.ndarray | None = None, keepout: np.ndarray | None = None) -> Agents:
    """Sample ``count`` agents uniformly on the visible ground (far depths get more, as a frustum does),
    thinned by ``density`` (``(H, W)`` in [0, 1] at the foot) and removed where ``keepout`` > 0.5."""
    if count < 0:
        raise InputError(f"agent count must be >= 0, got {count}")
    if n_sprites < 1:
        raise InputError("the sprite library has no sprites")
    z0, z1 = depth_range
    if not 0 < z0 < z1:
        raise InputError(f"depth range must satisfy 0 < near < far, got {depth_range}")
    horizon_row = camera.horizon_y
    if horizon_row >= height - 1:
        raise InputError(f"the horizon (row {horizon_row}) is at or below the bottom of the frame: the camera "
                         "looks above the ground; lower horizon_y")
    for name, m in (("density", density), ("keepout", keepout)):
        if m is not None and m.shape[:2] != (height, width):
            raise InputError(f"{name} map is {m.shape[1]}x{m.shape[0]} but the frame is {width}x{height}")
    rng = np.random.default_rng(seed)
    X, Z = np.empty(0), np.empty(0)
    for _ in range(64):
        need = count - len(Z)
        if need <= 0:
            break
        batch = max(need * 2, 64)
        u = rng.random(batch)
        z = np.sqrt(z0 ** 2 + u * (z1 ** 2 - z0 ** 2))  # pdf ∝ Z: uniform over the ground frustum
        xa, xb = camera.ground_extent(z, width)
        x = xa + rng.random(batch) * (xb - xa)
        px, py = camera.project(x, z)
        ok = (py < height + 0.5 * camera.pixel_height(person_height, z)) & (py > horizon_row)
        ix = np.clip(px.astype(int), 0, width - 1)
        iy = np.clip(py.astype(int), 0, height - 1)
        if density is not None:
            ok &= rng.random(batch) < density[iy, ix]
        if keepout is not None:
            ok &= keepout[iy, ix] <= 0.5
        X, Z = np.concatenate([X, x[ok]]), np.concatenate([Z, z[ok]])
    if len(Z) < count:
        raise InputError(f"only {len(Z)} of {count} agents fit: the density map or keep-out mask leaves too little "
                         "ground; lower the count or widen the allowed region")
    X, Z = X[:count], Z[:count]
    n = count
    order = np.argsort(-Z, kind="stable")  # far to near
    sprite = rng.integers(0, n_sprites, n)
    size = person_height * (1 + scale_jitter * rng.standard_normal(n)).clip(0.5, 1.5)
    mir = rng.random(n) < 0.5 if mirror else np.zeros(n, bool)
    colour = _colour_matrices(hue_jitter * 2 * np.pi * rng.standard_normal(n),
                              (1 + sat_jitter * rng.standard_normal(n)).clip(0, 2),
                              (1 + value_jitter * rng.standard_normal(n)).clip(0.2, 3))
    offset = rng.integers(0, max(1, loop_length), n)
    ident = np.arange(1, n + 1, dtype=np.int64)
    return Agents(X[order], Z[order], sprite[order], size[order], mir[order], colour[order], offset[order],
                  ident[order])


def _shadow_kernel() -> np.ndarray:
    y, x = np.mgrid[-1:1:32j, -1:1:128j]
    return np.exp(-3.0 * (x ** 2 + y ** 2)).astype(np.float32)


_SHADOW = _shadow_kernel()


@dataclass
class CrowdFrame:
    rgba: np.ndarray   # (H, W, 4) premultiplied
    depth: np.ndarray  # (H, W) metres, inf where empty
    ident: np.ndarray  # (H, W) agent id (0 = none), float32


def render_crowd(library: SpriteLibrary, agents: Agents, camera: GroundCamera, width: int, height: int, *,
                 frame: int = 0, shadow_opacity: float = 0.4, haze_density: float = 0.0,
                 haze_color: tuple[float, float, float] = (0.6, 0.65, 0.7), min_pixel_height: float = 1.0) -> CrowdFrame:
    """Draw agents far to near into a ``height x width`` premultiplied RGBA frame."""
    canvas = np.zeros((height, width, 4), np.float32)
    depth = np.full((height, width), np.inf, np.float32)
    ident = np.zeros((height, width), np.float32)
    if len(agents) == 0:
        return CrowdFrame(canvas, depth, ident)
    fx, fy = camera.project(agents.X, agents.Z)
    ph = camera.pixel_height(agents.size_m, agents.Z)
    haze = np.asarray(haze_color, np.float32)
    cache: dict[tuple, np.ndarray] = {}
    for i in range(len(agents)):
        h_px = ph[i]
        if h_px < min_pixel_height:
            continue
        sp = library.sprites[agents.sprite[i]]
        fidx = (frame + int(agents.offset[i])) % len(sp.frames)
        scale = h_px / sp.height
        sh, sw = sp.frames[fidx].shape[:2]
        th, tw = max(1, int(round(sh * scale))), max(1, int(round(sw * scale)))
        key = (int(agents.sprite[i]), fidx, th, tw, bool(agents.mirror[i]))
        img = cache.get(key)
        if img is None:
            src = sp.frames[fidx]
            img = cv2.resize(src, (tw, th), interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
            if img.ndim == 2:
                img = img[..., None]
            if agents.mirror[i]:
                img = img[:, ::-1]
            cache[key] = img
        foot_x = (sw - sp.foot[0]) if agents.mirror[i] else sp.foot[0]
        x0 = int(round(fx[i] - foot_x * scale))
        y0 = int(round(fy[i] - sp.foot[1] * scale))
        transmit = float(np.exp(-haze_density * agents.Z[i])) if haze_density > 0 else 1.0
        # contact shadow: a soft ellipse under the feet
        if shadow_opacity > 0 and h_px >= 3:
            sw_px = max(2, int(round(0.5 * tw)))
            sh_px = max(1, int(round(sw_px * 0.25)))
            skey = ("shadow", sw_px, sh_px)
            sk = cache.get(skey)
            if sk is None:
                sk = cv2.resize(_SHADOW, (sw_px, sh_px), interpolation=cv2.INTER_AREA)
                cache[skey] = sk
            _over_alpha_only(canvas, sk * (shadow_opacity * transmit), int(round(fx[i] - sw_px / 2)),
                             int(round(fy[i] - sh_px / 2)))
        # sprite: colour variation, haze, then over
        ys, xs, sy, sx = _clip_box(x0, y0, img.shape[1], img.shape[0], width, height)
        if ys is None:
            continue
        crop = img[sy, sx]
        a = crop[..., 3:4]
        rgb = crop[..., :3] @ agents.color[i].T
        if transmit < 1.0:
            rgb = rgb * transmit + haze * (1 - transmit) * a
        region = canvas[ys, xs]
        region[..., :3] = rgb + region[..., :3] * (1 - a)
        region[..., 3:4] = a + region[..., 3:4] * (1 - a)
        solid = a[..., 0] > 0.5
        depth[ys, xs][solid] = agents.Z[i]
        ident[ys, xs][solid] = agents.ident[i]
    return CrowdFrame(canvas, depth, ident)


def _clip_box(x0: int, y0: int, w: int, h: int, width: int, height: int):
    xa, ya, xb, yb = max(x0, 0), max(y0, 0), min(x0 + w, width), min(y0 + h, height)
    if xa >= xb or ya >= yb:
        return None, None, None, None
    return slice(ya, yb), slice(xa, xb), slice(ya - y0, yb - y0), slice(xa - x0, xb - x0)


def _over_alpha_only(canvas: np.ndarray, alpha: np.ndarray, x0: int, y0: int) -> None:
    """Black with ``alpha`` over the canvas (a shadow)."""
    ys, xs, sy, sx = _clip_box(x0, y0, alpha.shape[1], alpha.shape[0], canvas.shape[1], canvas.shape[0])
    if ys is None:
        return
    a = alpha[sy, sx][..., None]
    region = canvas[ys, xs]
    region *= (1 - a)
    region[..., 3:4] += a
