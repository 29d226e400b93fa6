"""Synthetic sequences with known truth, for tests and benchmarks of the temporal tools.

Every frame is a pure function of ``(seed, frame index)``, so any frame can be generated on its own
(a source stage of a chunked render gives the same pixels in any chunk).

* :func:`textured_plate`: a scene-linear texture (log-normal multi-scale noise) to track and flow on.
* :func:`camera_frame` / :func:`camera_sequence`: a plate seen through a moving 2D camera, with the
  exact transform of every frame relative to frame 0.
* :func:`matte_frame` / :func:`matte_sequence`: a soft-edged blob moving over a textured background,
  its true alpha, and a "keyed per frame" alpha with realistic per-frame edge noise: the edge position
  boils (a smooth random offset of the contour, new every frame) and fine noise sits in the edge band.
* :func:`flicker_gains` / :func:`apply_flicker`: per-frame, per-region gains in stops.
"""

from __future__ import annotations

import cv2
import numpy as np

from ..core.geometry import affine_matrix


def _rng(seed: int, *key: int) -> np.random.Generator:
    return np.random.default_rng([int(seed) & 0xFFFFFFFF, *[int(k) & 0xFFFFFFFF for k in key]])


def _smooth_noise(rng: np.random.Generator, h: int, w: int, sigma: float) -> np.ndarray:
    n = rng.standard_normal((h, w)).astype(np.float32)
    n = cv2.GaussianBlur(n, (0, 0), sigma, borderType=cv2.BORDER_REFLECT)
    n -= np.float32(n.mean())
    return n / max(float(n.std()), 1e-3)


def textured_plate(height: int, width: int, *, seed: int = 0, contrast: float = 1.0) -> np.ndarray:
    """``(H, W, 3)`` float32 scene-linear texture around mid grey (about 0.03..0.8), with detail at 2-20 px."""
    rng = _rng(seed, 7)
    logy = sum(_smooth_noise(rng, height, width, s) * a for s, a in ((1.5, 0.35), (4.0, 0.45), (16.0, 0.6)))
    tint = np.stack([_smooth_noise(rng, height, width, 24.0) * 0.15 for _ in range(3)], 2)
    v = np.exp2(np.float32(contrast) * logy[..., None] * np.float32(0.9) + tint - np.float32(2.3))
    return v.astype(np.float32)


# -- camera motion ---------------------------------------------------------------------------------

def camera_matrix(k: int, *, seed: int = 0, shake: float = 3.0, pan: tuple[float, float] = (0.0, 0.0),
                  rotate: float = 0.0, zoom: float = 0.0, perspective: float = 0.0,
                  size: tuple[int, int] = (160, 96)) -> np.ndarray:
    """3x3 transform from frame 0's pixels to frame ``k``'s: a smooth move plus per-frame random shake.

    ``pan``: pixels per frame; ``rotate``: degrees per frame; ``zoom``: relative scale per frame;
    ``shake``: standard deviation (pixels) of an independent per-frame jitter; ``perspective``: a
    keystone that grows per frame (projective term).
    """
    w, h = size

    def cam(i: int) -> np.ndarray:
        r = _rng(seed, 11, i)
        jitter = r.normal(0.0, shake, 2) if (shake > 0 and i != 0) else np.zeros(2)
        rot = rotate * i + (r.normal(0.0, shake * 0.05) if (shake > 0 and i != 0) else 0.0)
        s = 1.0 + zoom * i
        m = affine_matrix(translate=(pan[0] * i + jitter[0], pan[1] * i + jitter[1]), rotate=rot, scale=(s, s),
                          center=((w - 1) / 2, (h - 1) / 2))
        full = np.vstack([m, [0.0, 0.0, 1.0]])
        if perspective:
            p = np.eye(3)
            p[2, 0] = perspective * i / max(w, 1)
            c = np.array([[1, 0, (w - 1) / 2], [0, 1, (h - 1) / 2], [0, 0, 1.0]])
            full = c @ p @ np.linalg.inv(c) @ full
        return full

    m = cam(k) @ np.linalg.inv(cam(0))
    return m / m[2, 2]


def camera_frame(k: int, *, height: int = 96, width: int = 160, seed: int = 0, margin: int = 48,
                 **motion) -> tuple[np.ndarray, np.ndarray]:
    """Frame ``k`` of a plate seen through a moving camera, and its transform from frame 0.

    The plate is a texture larger than the frame by ``margin`` on every side, so no borders show for
    moderate motion. Returns ``((H, W, 3) float32 scene-linear, 3x3 matrix frame 0 → frame k)``.
    """
    big = textured_plate(height + 2 * margin, width + 2 * margin, seed=seed)
    m = camera_matrix(k, seed=seed, size=(width, height), **motion)
    # Frame 0 is the canvas cropped at the margin; frame k is frame 0 moved by m.
    shift = np.array([[1.0, 0.0, -margin], [0.0, 1.0, -margin], [0.0, 0.0, 1.0]])
    frame = cv2.warpPerspective(big, m @ shift, (width, height), flags=cv2.INTER_LINEAR,
                                borderMode=cv2.BORDER_REFLECT)
    return frame.astype(np.float32), m


def camera_sequence(n: int, **kwargs) -> tuple[list[np.ndarray], np.ndarray]:
    """``n`` frames of :func:`camera_frame` and their ``(n, 3, 3)`` transforms from frame 0."""
    frames, mats = zip(*(camera_frame(k, **kwargs) for k in range(n)))
    return list(frames), np.array(mats)


# -- mattes ----------------------------------------------------------------------------------------

def _blob_distance(h: int, w: int, cx: float, cy: float, radius: float, seed: int) -> np.ndarray:
    """Signed distance-like field: positive inside a wobbly blob centred at (cx, cy)."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    dx, dy = xx - np.float32(cx), yy - np.float32(cy)
    ang = np.arctan2(dy, dx)
    r = np.sqrt(dx * dx + dy * dy)
    wob = 1.0 + 0.12 * np.sin(3 * ang + seed) + 0.06 * np.sin(5 * ang + 2 * seed)
    return np.float32(radius) * wob.astype(np.float32) - r


def _soft(d: np.ndarray, softness: float) -> np.ndarray:
    x = np.clip(d / np.float32(softness) + 0.5, 0.0, 1.0)
    return (x * x * (3 - 2 * x)).astype(np.float32)  # smoothstep over `softness` pixels


def matte_frame(k: int, *, height: int = 96, width: int = 128, seed: int = 0, velocity: tuple[float, float] = (2.0, 0.5),
                start: tuple[float, float] | None = None, radius: float = 22.0, softness: float = 3.0,
                boil: float = 0.8, noise: float = 0.06) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Frame ``k`` of a moving soft blob: ``(plate, true alpha, keyed alpha)``.

    plate: ``(H, W, 3)`` float32 scene-linear, a textured foreground blob over a static textured
    background (foreground premultiplied by the true alpha, composited over). true alpha: ``(H, W)`` float32
    in [0, 1]. keyed alpha: the true shape with its contour moved by a smooth random offset of standard
    deviation ``boil`` pixels, plus spatially correlated noise of standard deviation ``noise`` in the
    edge band, both new every frame, clipped to [0, 1].
    """
    x0, y0 = start if start is not None else (width * 0.3, height * 0.5)
    cx, cy = x0 + velocity[0] * k, y0 + velocity[1] * k
    d = _blob_distance(height, width, cx, cy, radius, seed)
    truth = _soft(d, softness)
    r = _rng(seed, 23, k)
    offset = _smooth_noise(r, height, width, 3.0) * np.float32(boil)
    keyed = _soft(d + offset, softness)
    band = 4.0 * keyed * (1.0 - keyed)
    grain = _smooth_noise(r, height, width, 1.0) * np.float32(noise)
    keyed = np.clip(keyed + band * grain, 0.0, 1.0).astype(np.float32)
    bg = textured_plate(height, width, seed=seed + 1)
    # Foreground texture moves with the blob: sample a texture at coordinates relative to the centre.
    fg_tex = textured_plate(height + 64, width + 64, seed=seed + 2)
    mx = np.float32(32 + (np.arange(width)[None, :] - cx + x0)).repeat(height, 0)
    my = np.float32(32 + (np.arange(height)[:, None] - cy + y0)).repeat(width, 1)
    fg = cv2.remap(fg_tex, mx, my, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    fg = fg * np.array([1.6, 0.9, 0.6], np.float32)
    plate = fg * truth[..., None] + bg * (1.0 - truth[..., None])
    return plate.astype(np.float32), truth, keyed


def matte_sequence(n: int, **kwargs) -> tuple[list[np.ndarray], list[np.ndarray], list[np.ndarray]]:
    """``n`` frames of :func:`matte_frame`: lists of plates, true alphas and keyed alphas."""
    plates, truths, keyed = zip(*(matte_frame(k, **kwargs) for k in range(n)))
    return list(plates), list(truths), list(keyed)


# -- flicker ---------------------------------------------------------------------------------------

def flicker_gains(k: int, *, seed: int = 0, amplitude: float = 0.15, grid: tuple[int, int] = (1, 1),
                  colour: float = 0.0) -> np.ndarray:
    """Per-frame flicker in stops: ``(rows, columns, 3)`` log2 gains, independent per frame.

    ``amplitude``: standard deviation in stops; ``colour``: extra per-channel standard deviation.
    """
    r = _rng(seed, 31, k)
    gx, gy = grid
    base = r.normal(0.0, amplitude, (gy, gx, 1))
    tint = r.normal(0.0, colour, (gy, gx, 3)) if colour > 0 else np.zeros((gy, gx, 3))
    return (base + tint).astype(np.float64)


def apply_flicker(pixels: np.ndarray, log_gains: np.ndarray) -> np.ndarray:
    """Multiply RGB by ``2 ** log_gains`` (a ``(rows, columns, 3)`` grid, bilinear between tile centres)."""
    h, w = pixels.shape[:2]
    g = np.asarray(log_gains, np.float32)
    field = cv2.resize(g, (w, h), interpolation=cv2.INTER_LINEAR) if g.shape[:2] != (1, 1) else \
        np.broadcast_to(g.reshape(1, 1, -1), (h, w, g.shape[-1]))
    if field.ndim == 2:
        field = field[..., None]
    out = pixels.copy()
    out[..., :3] *= np.exp2(field[..., :3])
    return out
