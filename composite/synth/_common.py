"""Building blocks shared by the synthetic-footage generators.

* :func:`scene_rng`: random generators seeded by a seed and any keys (frame numbers, names), so every
  frame of a sequence can be generated on its own, in any order or process, with the same result.
* :func:`fbm`: fractal value noise at any resolution from a fixed random grid, so the same seed gives the
  same picture at 960x540 and at 3840x2160.
* :class:`Raster`: anti-aliased coverage drawing (polygons, ellipses, polylines) in a box of the frame at a
  supersampling factor, resolved to float32 coverage by box filtering.
* :func:`nodal_camera`: the homography of a camera that pans, tilts, rolls and zooms about its nodal
  point (no parallax, so one 3x3 matrix maps every depth of the scene).

Coordinates are frame pixels with pixel centres at integers (OpenCV's convention), y down.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable, Sequence

import cv2
import numpy as np

from ..core.errors import InputError

#: Fractional bits used for sub-pixel drawing coordinates (OpenCV's ``shift``).
_SHIFT = 4
_ONE = 1 << _SHIFT


def scene_rng(seed: int, *keys: object) -> np.random.Generator:
    """A generator seeded by ``seed`` and ``keys`` (hashed, so any printable keys work)."""
    text = "|".join(str(k) for k in (int(seed), *keys))
    digest = hashlib.sha256(text.encode()).digest()
    return np.random.default_rng(np.frombuffer(digest[:16], dtype=np.uint32))


def check_size(width: int, height: int, frames: int, *, who: str) -> None:
    if not (isinstance(width, (int, np.integer)) and isinstance(height, (int, np.integer))):
        raise InputError(f"{who}: width and height must be integers, got {width!r} x {height!r}")
    if width < 16 or height < 16 or width > 16384 or height > 16384:
        raise InputError(f"{who}: size {width}x{height} is out of range; use 16..16384 pixels per side")
    if not isinstance(frames, (int, np.integer)) or frames < 1:
        raise InputError(f"{who}: frames must be a positive integer (a count), got {frames!r}")


def fbm(rng: np.random.Generator, height: int, width: int, *, cells: tuple[float, float] = (3.0, 5.0),
        octaves: int = 5, gain: float = 0.5, lacunarity: float = 2.0) -> np.ndarray:
    """Fractal value noise, ``(height, width)`` float32 with zero mean and unit variance (roughly).

    ``cells`` is the number of noise cells (rows, columns) of the first octave across the whole output;
    each octave multiplies it by ``lacunarity`` and its amplitude by ``gain``. The random grids drawn
    from ``rng`` depend only on ``cells`` and ``octaves``, never on the output size, so one seed gives the
    same pattern at every resolution.
    """
    out = np.zeros((height, width), np.float32)
    amp, total = 1.0, 0.0
    cy, cx = cells
    for k in range(octaves):
        gy = max(2, int(math.ceil(cy * lacunarity ** k)) + 1)
        gx = max(2, int(math.ceil(cx * lacunarity ** k)) + 1)
        grid = rng.standard_normal((gy, gx)).astype(np.float32)
        if gy > 2 * max(height, 2) or gx > 2 * max(width, 2):
            continue  # finer than a pixel: drawn (so later octaves keep their numbers) but not used
        out += np.float32(amp) * cv2.resize(grid, (width, height), interpolation=cv2.INTER_CUBIC)
        total += amp * amp
        amp *= gain
    if total > 0:
        out *= np.float32(1.0 / math.sqrt(total))
    return out


def fbm1d(rng: np.random.Generator, length: int, *, cells: float = 6.0, octaves: int = 7,
          gain: float = 0.5) -> np.ndarray:
    """1D fractal value noise of ``length`` samples (zero mean, unit variance roughly); see :func:`fbm`."""
    out = np.zeros(length, np.float32)
    amp, total = 1.0, 0.0
    for k in range(octaves):
        g = max(2, int(math.ceil(cells * 2 ** k)) + 1)
        grid = rng.standard_normal((1, g)).astype(np.float32)
        if g > 2 * length:
            continue
        out += np.float32(amp) * cv2.resize(np.repeat(grid, 2, 0), (length, 2), interpolation=cv2.INTER_CUBIC)[0]
        total += amp * amp
        amp *= gain
    if total > 0:
        out *= np.float32(1.0 / math.sqrt(total))
    return out


def blur(img: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur (edges replicated); large sigmas are done at reduced size, as the result is smooth."""
    if sigma <= 0:
        return img.copy()
    if sigma <= 8:
        return cv2.GaussianBlur(img, (0, 0), sigma, borderType=cv2.BORDER_REPLICATE)
    h, w = img.shape[:2]
    f = int(sigma // 4)
    sw, sh = max(1, int(round(w / f))), max(1, int(round(h / f)))
    small = cv2.resize(img, (sw, sh), interpolation=cv2.INTER_AREA)
    small = cv2.GaussianBlur(small, (0, 0), sigma * sw / w, borderType=cv2.BORDER_REPLICATE)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)


def smoothstep(e0: float, e1: float, x: np.ndarray) -> np.ndarray:
    t = np.clip((x - e0) / (e1 - e0), 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


class Raster:
    """Anti-aliased coverage in a box ``[x0, x1) x [y0, y1)`` of the frame, drawn at ``ss`` x supersampling.

    Shapes are drawn into an 8-bit canvas with OpenCV's anti-aliased rasteriser at sub-pixel precision,
    then :meth:`resolve` box-filters it to ``(y1 - y0, x1 - x0)`` float32 coverage in [0, 1].
    """

    def __init__(self, box: tuple[int, int, int, int], ss: int = 2):
        x0, y0, x1, y1 = (int(v) for v in box)
        self.x0, self.y0, self.x1, self.y1 = x0, y0, x1, y1
        self.ss = int(ss)
        self.w, self.h = max(0, x1 - x0), max(0, y1 - y0)
        self.canvas = np.zeros((self.h * self.ss, self.w * self.ss), np.uint8)

    @property
    def empty(self) -> bool:
        return self.w == 0 or self.h == 0

    def _fixed(self, pts: np.ndarray) -> np.ndarray:
        """Frame coordinates → fixed-point supersampled canvas coordinates (int32, ``_SHIFT`` bits)."""
        p = np.asarray(pts, np.float64)
        q = np.empty_like(p)
        q[..., 0] = (p[..., 0] - self.x0 + 0.5) * self.ss - 0.5
        q[..., 1] = (p[..., 1] - self.y0 + 0.5) * self.ss - 0.5
        np.clip(q, -1e6, 1e6, out=q)
        return np.round(q * _ONE).astype(np.int32)

    def polygon(self, pts: np.ndarray) -> None:
        if self.empty:
            return
        cv2.fillPoly(self.canvas, [self._fixed(pts).reshape(-1, 1, 2)], 255, cv2.LINE_AA, _SHIFT)

    def polygons(self, polys: Iterable[np.ndarray]) -> None:
        if self.empty:
            return
        for p in polys:  # one call per polygon: a single call would leave overlaps unfilled (even-odd)
            cv2.fillPoly(self.canvas, [self._fixed(p).reshape(-1, 1, 2)], 255, cv2.LINE_AA, _SHIFT)

    def ellipse(self, center: Sequence[float], axes: Sequence[float], angle: float = 0.0) -> None:
        """Filled ellipse; ``axes`` are the half-axes in frame pixels, ``angle`` in degrees."""
        if self.empty:
            return
        c = self._fixed(np.asarray(center, np.float64))
        ax = np.round(np.asarray(axes, np.float64) * self.ss * _ONE).astype(np.int64)
        cv2.ellipse(self.canvas, (int(c[0]), int(c[1])), (max(int(ax[0]), 1), max(int(ax[1]), 1)), float(angle),
                    0.0, 360.0, 255, -1, cv2.LINE_AA, _SHIFT)

    def polylines(self, lines: Sequence[np.ndarray], width_px: float) -> None:
        """Open polylines ``width_px`` frame pixels wide (widths below a pixel come out as partial coverage)."""
        if self.empty or not len(lines):
            return
        thickness = max(1, int(round(width_px * self.ss)))
        arrs = [self._fixed(p).reshape(-1, 1, 2) for p in lines]
        cv2.polylines(self.canvas, arrs, False, 255, thickness, cv2.LINE_AA, _SHIFT)

    def resolve(self) -> np.ndarray:
        """``(h, w)`` float32 coverage in [0, 1]."""
        if self.empty:
            return np.zeros((self.h, self.w), np.float32)
        c = self.canvas.astype(np.float32)
        if self.ss > 1:
            c = cv2.resize(c, (self.w, self.h), interpolation=cv2.INTER_AREA)
        c *= np.float32(1.0 / 255.0)
        return c


def box_of(points: Iterable[np.ndarray], pad: float, width: int, height: int) -> tuple[int, int, int, int]:
    """Integer box around ``points`` grown by ``pad`` pixels and clipped to the frame (may be empty)."""
    allp = np.concatenate([np.asarray(p, np.float64).reshape(-1, 2) for p in points], axis=0)
    x0 = int(math.floor(allp[:, 0].min() - pad))
    y0 = int(math.floor(allp[:, 1].min() - pad))
    x1 = int(math.ceil(allp[:, 0].max() + pad)) + 1
    y1 = int(math.ceil(allp[:, 1].max() + pad)) + 1
    x0, y0 = max(0, x0), max(0, y0)
    x1, y1 = min(width, x1), min(height, y1)
    return x0, y0, max(x0, x1), max(y0, y1)


def capsule(p0: Sequence[float], p1: Sequence[float], r0: float, r1: float | None = None,
            segments: int = 10) -> np.ndarray:
    """Outline of a (tapered) capsule from ``p0`` (radius ``r0``) to ``p1`` (radius ``r1``), as a polygon."""
    r1 = r0 if r1 is None else r1
    p0 = np.asarray(p0, np.float64)
    p1 = np.asarray(p1, np.float64)
    d = p1 - p0
    ang = math.atan2(d[1], d[0])
    a1 = np.linspace(ang - math.pi / 2, ang + math.pi / 2, segments)
    a0 = np.linspace(ang + math.pi / 2, ang + 3 * math.pi / 2, segments)
    end1 = p1 + r1 * np.stack([np.cos(a1), np.sin(a1)], 1)
    end0 = p0 + r0 * np.stack([np.cos(a0), np.sin(a0)], 1)
    return np.concatenate([end1, end0], 0)


def apply_h(matrix: np.ndarray, pts: np.ndarray) -> np.ndarray:
    """Apply a 3x3 homography to ``(..., 2)`` points."""
    p = np.asarray(pts, np.float64)
    flat = p.reshape(-1, 2)
    hom = np.concatenate([flat, np.ones((flat.shape[0], 1))], 1) @ np.asarray(matrix, np.float64).T
    return (hom[:, :2] / hom[:, 2:3]).reshape(p.shape)


def nodal_camera(width: int, height: int, *, pan: float, tilt: float, roll: float, zoom: float,
                 hfov: float = 40.0) -> np.ndarray:
    """Homography from the reference view to a view rotated by ``pan``/``tilt``/``roll`` degrees and zoomed.

    The camera turns about its nodal point (no parallax) with focal length ``zoom`` times the reference
    one (horizontal field of view ``hfov`` degrees); its principal point is the frame centre.
    """
    f0 = (width / 2.0) / math.tan(math.radians(hfov) / 2.0)
    cx, cy = (width - 1) / 2.0, (height - 1) / 2.0
    k0 = np.array([[f0, 0, cx], [0, f0, cy], [0, 0, 1.0]])
    k1 = np.array([[f0 * zoom, 0, cx], [0, f0 * zoom, cy], [0, 0, 1.0]])
    p, t, r = (math.radians(v) for v in (pan, tilt, roll))
    ry = np.array([[math.cos(p), 0, math.sin(p)], [0, 1, 0], [-math.sin(p), 0, math.cos(p)]])
    rx = np.array([[1, 0, 0], [0, math.cos(t), -math.sin(t)], [0, math.sin(t), math.cos(t)]])
    rz = np.array([[math.cos(r), -math.sin(r), 0], [math.sin(r), math.cos(r), 0], [0, 0, 1.0]])
    rot = rz @ rx @ ry
    m = k1 @ rot.T @ np.linalg.inv(k0)
    return m / m[2, 2]


def camera_path(width: int, height: int, s: float, phases: np.ndarray, amount: float, *,
                speed: float = 1.0) -> np.ndarray:
    """A smooth, bounded camera move at time ``s`` seconds: slow pan/tilt/roll swings, a push-in and out
    over six seconds and a little high-frequency shake, scaled by ``amount`` (0: locked off), relative to
    the camera at ``s = 0``'s orientation plus the swings' phase (``phases``: 8 random angles)."""
    a, ph, v = amount, phases, speed
    pan = a * (0.9 * math.sin(2 * math.pi * 0.11 * v * s + ph[0]) - 0.9 * math.sin(ph[0])
               + 0.05 * math.sin(2 * math.pi * 1.7 * s + ph[1]))
    tilt = a * (0.45 * math.sin(2 * math.pi * 0.08 * v * s + ph[2]) - 0.45 * math.sin(ph[2])
                + 0.04 * math.sin(2 * math.pi * 2.3 * s + ph[3]))
    roll = a * (0.35 * math.sin(2 * math.pi * 0.13 * v * s + ph[4]) - 0.35 * math.sin(ph[4]))
    zoom = 1.0 + a * 0.03 * (0.5 - 0.5 * math.cos(2 * math.pi * v * s / 6.0))
    return nodal_camera(width, height, pan=pan, tilt=tilt, roll=roll, zoom=zoom)


def translation(dx: float, dy: float) -> np.ndarray:
    return np.array([[1.0, 0.0, dx], [0.0, 1.0, dy], [0.0, 0.0, 1.0]])


def over_into(rgb: np.ndarray, alpha: np.ndarray, box: tuple[int, int, int, int], layer_rgb: np.ndarray,
              layer_a: np.ndarray) -> None:
    """Porter–Duff over of a premultiplied layer (covering ``box``) onto accumulators, in place.

    ``rgb``: ``(H, W, 3)``, ``alpha``: ``(H, W, 1)`` float32 premultiplied accumulators;
    ``layer_rgb``: ``(h, w, 3)`` premultiplied, ``layer_a``: ``(h, w)``.
    """
    x0, y0, x1, y1 = box
    if x1 <= x0 or y1 <= y0:
        return
    a = layer_a[..., None]
    keep = np.float32(1.0) - a
    sub_rgb = rgb[y0:y1, x0:x1]
    sub_a = alpha[y0:y1, x0:x1]
    sub_rgb *= keep
    sub_rgb += layer_rgb
    sub_a *= keep
    sub_a += a


def preview_srgb(linear: np.ndarray, *, exposure: float = 0.0) -> np.ndarray:
    """Scene-linear ACEScg ``(H, W, 3)`` → 8-bit sRGB display (BGR order for ``cv2.imwrite``), for viewing.

    Uses the OCIO ACES 2.0 SDR view of the built-in config.
    """
    from ..color.ocio import to_display

    px = np.ascontiguousarray(linear[..., :3], np.float32)
    if exposure:
        px = px * np.float32(2.0 ** exposure)
    disp = to_display(px, "ACEScg")
    out = np.clip(disp * 255.0 + 0.5, 0, 255).astype(np.uint8)
    return np.ascontiguousarray(out[..., ::-1])


def preview_matte(alpha: np.ndarray) -> np.ndarray:
    """``(H, W)`` or ``(H, W, 1)`` matte → 8-bit grey (BGR), values clipped to [0, 1] for viewing."""
    a = np.asarray(alpha, np.float32).reshape(alpha.shape[0], alpha.shape[1])
    g = np.clip(a * 255.0 + 0.5, 0, 255).astype(np.uint8)
    return np.repeat(g[..., None], 3, axis=2)


class FrameSequence:
    """Frame access shared by the synthetic sequences: ``frames``, ``len``, indexing, iteration and
    :meth:`_index` (frame number → position). Subclasses set ``first_frame``, ``count``, ``_who`` and
    implement ``frame(number)``."""

    _who = "sequence"
    first_frame: int
    count: int

    @property
    def frames(self) -> list[int]:
        return list(range(self.first_frame, self.first_frame + self.count))

    def __len__(self) -> int:
        return self.count

    def __getitem__(self, index: int):
        if not -self.count <= index < self.count:
            raise IndexError(f"frame index {index} out of range for {self.count} frames")
        return self.frame(self.frames[index])

    def __iter__(self):
        for f in self.frames:
            yield self.frame(f)

    def _index(self, number: int) -> int:
        if number not in range(self.first_frame, self.first_frame + self.count):
            raise InputError(f"{self._who}: frame {number} is outside "
                             f"{self.first_frame}-{self.first_frame + self.count - 1}")
        return number - self.first_frame
