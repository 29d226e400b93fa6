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
    """Draw agents far to near into a ``height x width`` premultiplied RGBA frame.

    Per-agent placement (sizes, corners, shadow boxes, haze) is computed for all agents at once; the loop
    then only composites. Resized sprites are cached with their ``1 - alpha`` and solid masks, since a
    few sprite sizes serve thousands of distant agents.
    """
    canvas = np.zeros((height, width, 4), np.float32)
    n = len(agents)
    if n == 0:
        return CrowdFrame(canvas, np.full((height, width), np.inf, np.float32), np.zeros((height, width), np.float32))
    fx, fy = camera.project(agents.X, agents.Z)
    ph = camera.pixel_height(agents.size_m, agents.Z)
    haze = np.asarray(haze_color, np.float32)
    sprites = library.sprites
    # -- per-agent geometry, vectorised (the same formulas the loop used to evaluate one agent at a time)
    sid = np.asarray(agents.sprite, np.int64)
    n_frames = np.array([len(sp.frames) for sp in sprites], np.int64)
    fidx = (int(frame) + np.asarray(agents.offset, np.int64)) % n_frames[sid]
    s_h = np.array([sp.frames[0].shape[0] for sp in sprites], np.float64)[sid]
    s_w = np.array([sp.frames[0].shape[1] for sp in sprites], np.float64)[sid]
    foot_x0 = np.array([sp.foot[0] for sp in sprites], np.float64)[sid]
    foot_y = np.array([sp.foot[1] for sp in sprites], np.float64)[sid]
    heights = np.array([sp.height for sp in sprites], np.float64)[sid]
    mirror = np.asarray(agents.mirror, bool)
    scale = ph / heights
    th = np.maximum(1, np.round(s_h * scale)).astype(np.int64)
    tw = np.maximum(1, np.round(s_w * scale)).astype(np.int64)
    foot_x = np.where(mirror, s_w - foot_x0, foot_x0)
    x0 = np.round(fx - foot_x * scale).astype(np.int64)
    y0 = np.round(fy - foot_y * scale).astype(np.int64)
    if haze_density > 0:
        transmit = np.exp(-haze_density * np.asarray(agents.Z, np.float64)).astype(np.float64)
    else:
        transmit = np.ones(n, np.float64)
    do_shadow = (shadow_opacity > 0) & (ph >= 3)
    sw_px = np.maximum(2, np.round(0.5 * tw)).astype(np.int64)
    sh_px = np.maximum(1, np.round(sw_px * 0.25)).astype(np.int64)
    sx0 = np.round(fx - sw_px / 2).astype(np.int64)
    sy0 = np.round(fy - sh_px / 2).astype(np.int64)
    visible = ph >= min_pixel_height
    # Python lists: per-element access in the loop is several times cheaper than indexing NumPy arrays
    zid = np.stack([np.asarray(agents.Z, np.float32), np.asarray(agents.ident, np.float32)], -1)
    sid_l, fidx_l, th_l, tw_l, mir_l = sid.tolist(), fidx.tolist(), th.tolist(), tw.tolist(), mirror.tolist()
    x0_l, y0_l, sx0_l, sy0_l = x0.tolist(), y0.tolist(), sx0.tolist(), sy0.tolist()
    sw_l, sh_l, t_l, shadow_l, small_l = sw_px.tolist(), sh_px.tolist(), transmit.tolist(), do_shadow.tolist(), \
        (scale < 1).tolist()
    colour = agents.color
    # depth and id are written together (one masked copy per agent), then split
    zi = np.zeros((height, width, 2), np.float32)
    zi[..., 0] = np.inf
    cache, shadow_cache = _caches(library, shadow_opacity)
    local: dict[tuple, tuple] = {}  # large (near) sprites: kept for this frame only
    for i in np.flatnonzero(visible).tolist():
        s = sid_l[i]
        fi = fidx_l[i]
        h_i, w_i = th_l[i], tw_l[i]
        mir = mir_l[i]
        key = (s, fi, h_i, w_i, mir)
        entry = cache.get(key) or local.get(key)
        if entry is None:
            src = sprites[s].frames[fi]
            img = cv2.resize(src, (w_i, h_i), interpolation=cv2.INTER_AREA if small_l[i] else cv2.INTER_LINEAR)
            if img.ndim == 2:
                img = img[..., None]
            if mir:
                img = img[:, ::-1]
            a = img[..., 3:4]
            inv4 = np.ascontiguousarray(np.broadcast_to(1 - a, img.shape))
            rgb2d = np.ascontiguousarray(img[..., :3]).reshape(-1, 3)
            src4 = np.empty((h_i * w_i, 4), np.float32)  # premultiplied source: colour filled per agent
            src4[:, 3] = a.reshape(-1)
            entry = (img, a, 1 - a, (a > 0.5), inv4, rgb2d, src4)
            if h_i * w_i <= _PERSIST_PIXELS:
                cache[key] = entry
                _SPRITE_CACHE["bytes"] += 19 * h_i * w_i * 4
            else:
                local[key] = entry
        img, a_full, inv_full, solid_full, inv4, rgb2d, src4 = entry
        t_i = t_l[i]
        # contact shadow: a soft ellipse under the feet (black with alpha over the canvas)
        if shadow_l[i]:
            skey = (sw_l[i], sh_l[i])
            shade = shadow_cache.get(skey)
            if shade is None:
                sk = cv2.resize(_SHADOW, skey, interpolation=cv2.INTER_AREA)[..., None]
                full = sk * (shadow_opacity * 1.0)  # the shadow without haze, and its 1 - alpha
                shade = (sk, full, 1 - full)
                shadow_cache[skey] = shade
            ys, xs, sy, sx = _clip_box(sx0_l[i], sy0_l[i], skey[0], skey[1], width, height)
            if ys is not None:
                if t_i == 1.0:
                    sa, inv_sa = shade[1][sy, sx], shade[2][sy, sx]
                else:
                    sa = shade[0][sy, sx] * (shadow_opacity * t_i)
                    inv_sa = 1 - sa
                region = canvas[ys, xs]
                region *= inv_sa
                region[..., 3:4] += sa
        # sprite: colour variation, haze, then over
        ys, xs, sy, sx = _clip_box(x0_l[i], y0_l[i], w_i, h_i, width, height)
        if ys is None:
            continue
        region = canvas[ys, xs]
        if t_i >= 1.0 and w_i > 1 and sy.start == 0 and sx.start == 0 and sy.stop == h_i and sx.stop == w_i:
            # whole sprite, no haze: colour the cached contiguous copy (one 2-D product, the same numbers as the
            # per-pixel product; NumPy takes another kernel for one-pixel-wide sprites, hence w_i > 1), then over
            np.matmul(rgb2d, colour[i].T, out=src4[:, :3])
            region *= inv4
            region += src4.reshape(h_i, w_i, 4)
            np.copyto(zi[ys, xs], zid[i], where=solid_full)
            continue
        crop, a, inv, solid = img[sy, sx], a_full[sy, sx], inv_full[sy, sx], solid_full[sy, sx]
        rgb = crop[..., :3] @ colour[i].T
        if t_i < 1.0:
            rgb = rgb * t_i + haze * (1 - t_i) * a
        region *= inv
        region[..., :3] += rgb
        region[..., 3:4] += a
        np.copyto(zi[ys, xs], zid[i], where=solid)
    return CrowdFrame(canvas, np.ascontiguousarray(zi[..., 0]), np.ascontiguousarray(zi[..., 1]))


#: Resized sprites (and their derived planes) kept across frames for the last library drawn: distant
#: agents reuse a few sizes and single-frame sprites give the same keys every frame. Bounded in bytes.
_SPRITE_CACHE: dict = {"lib": None, "shadow_opacity": None, "sprites": {}, "shadows": {}, "bytes": 0}
_SPRITE_CACHE_BYTES = 256 << 20
#: Sprites up to this many pixels are kept across frames (the many distant agents); larger ones per frame.
_PERSIST_PIXELS = 48 * 48


def _caches(library: SpriteLibrary, shadow_opacity: float) -> tuple[dict, dict]:
    import weakref

    c = _SPRITE_CACHE
    ref = c["lib"]
    ident = (id(library.sprites), len(library.sprites), tuple(id(sp) for sp in library.sprites))
    if ref is None or ref() is not library or c.get("ident") != ident or c["shadow_opacity"] != shadow_opacity \
            or c["bytes"] > _SPRITE_CACHE_BYTES:
        c.update(lib=weakref.ref(library), ident=ident, shadow_opacity=shadow_opacity, sprites={}, shadows={},
                 bytes=0)
    return c["sprites"], c["shadows"]


def _clip_box(x0: int, y0: int, w: int, h: int, width: int, height: int):
    xa, ya, xb, yb = max(x0, 0), max(y0, 0), min(x0 + w, width), min(y0 + h, height)
    if xa >= xb or ya >= yb:
        return None, None, None, None
    return slice(ya, yb), slice(xa, xb), slice(ya - y0, yb - y0), slice(xa - x0, xb - x0)
