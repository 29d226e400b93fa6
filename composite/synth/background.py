"""A generated-looking battlefield background plate with injected flicker and known truth.

:func:`generated_background_sequence` paints a procedural landscape of the kind image generators deliver
for battle scenes — a hazy sky with a bright (HDR) sun and clouds, layered mountains and hills with
atmospheric perspective, a fortress, ranks of distant troops, burnt ground, rising smoke — seen by a
slowly moving camera, then applies per-frame flicker the way generated clips carry it:

    image = clean * gain
    clean = scene * exposure                      (what a perfect deflicker keeps)
    gain  = global_gain * regional(x, y)          (what a deflicker must remove)

``exposure`` is an optional deliberate ramp (``exposure_ramp`` stops from the first frame to the last);
``global_gain`` is one log-normal number per frame; ``regional`` interpolates a ``rows x cols`` grid of
log-normal gains (mean 1) given at the centres of equal regions, with OpenCV's bicubic resize
(:func:`flicker_gain_field` rebuilds it). All arrays are ``float32`` scene-linear ACEScg, opaque.

Example
-------
>>> from composite.synth import generated_background_sequence
>>> seq = generated_background_sequence(192, 108, 4, seed=1, exposure_ramp=1.0)
>>> f = seq[3]
>>> round(f.exposure, 6)
2.0
>>> bool(abs(f.image - f.clean * f.gain).max() < 1e-6)
True
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from ..core.errors import InputError
from ..core.image import RGB, Image
from ..core.state import RAW_SPACE, WORKING_SPACE, AlphaState
from ._common import (
    FrameSequence,
    Raster,
    camera_path,
    check_size,
    fbm,
    fbm1d,
    scene_rng,
    smoothstep,
    translation,
)

_709_TO_AP1 = np.array([[0.6130974, 0.3395231, 0.0473795],
                        [0.0701937, 0.9163539, 0.0134524],
                        [0.0206156, 0.1095698, 0.8698147]], np.float32)
_MARGIN = 0.12
_HORIZON = 0.06  # below the frame centre, in units of height


def _ap1(rgb709) -> np.ndarray:
    return (_709_TO_AP1 @ np.asarray(rgb709, np.float32)).astype(np.float32)


def flicker_gain_field(global_gain: float, regional: np.ndarray, width: int, height: int) -> np.ndarray:
    """``(height, width, 1)`` float32 gain: ``global_gain`` times the regional grid interpolated bicubically.

    ``regional``: ``(rows, cols)`` gains at the centres of equal regions of the frame.
    """
    grid = np.asarray(regional, np.float32)
    if grid.ndim != 2:
        raise InputError(f"flicker_gain_field: regional gains must be a (rows, cols) grid, got {grid.shape}")
    if (grid == grid.flat[0]).all():  # uniform: exact, without interpolation rounding
        return np.full((int(height), int(width), 1), np.float32(grid.flat[0]) * np.float32(global_gain), np.float32)
    field = cv2.resize(grid, (int(width), int(height)), interpolation=cv2.INTER_CUBIC)
    field *= np.float32(global_gain)
    return field[..., None]


@dataclass(frozen=True, eq=False)
class BackgroundFrame:
    """One generated background frame and its flicker truth (see the module docstring)."""

    frame: int
    image: np.ndarray
    clean: np.ndarray
    gain: np.ndarray
    global_gain: float
    regional_gains: np.ndarray
    exposure: float
    camera: np.ndarray
    rate: float = 24.0

    def images(self) -> dict[str, Image]:
        """``bg`` (with flicker), ``bg_clean`` (the deflicker target) and ``gain`` as Images."""
        import opentimelineio as otio

        t = otio.opentime.RationalTime(self.frame, self.rate)
        meta = {"synth:frame": self.frame, "synth:global_gain": self.global_gain,
                "synth:exposure": self.exposure}
        return {
            "bg": Image(self.image, RGB, WORKING_SPACE, AlphaState.OPAQUE, time=t, metadata=meta),
            "bg_clean": Image(self.clean, RGB, WORKING_SPACE, AlphaState.OPAQUE, time=t, metadata=meta),
            "gain": Image(self.gain, ("Y",), RAW_SPACE, AlphaState.OPAQUE, time=t, metadata=meta),
        }


class _World:
    """The static painting (with margin for the camera) and the smoke density that rises over time."""

    def __init__(self, width: int, height: int, seed: int):
        self.w, self.h = width, height
        mx, my = int(round(_MARGIN * width)), int(round(_MARGIN * height))
        self.origin = (mx, my)
        tw, th = width + 2 * mx, height + 2 * my
        self.tw, self.th = tw, th
        rng = scene_rng(seed, "background")
        u = float(height)
        xs = ((np.arange(tw, dtype=np.float32) - mx - (width - 1) / 2.0) / u)[None, :]
        ys = ((np.arange(th, dtype=np.float32) - my - (height - 1) / 2.0) / u)[:, None]
        aspect = tw / th
        hz = _HORIZON
        top = float(ys[0, 0])
        # Sky: zenith to a warm haze at the horizon, a sun with an HDR core, clouds lit from the sun side.
        zenith, haze = _ap1((0.045, 0.085, 0.23)), _ap1((0.80, 0.62, 0.45))
        t = np.clip((ys - top) / (hz - top), 0.0, 1.0) ** 1.7
        img = np.empty((th, tw, 3), np.float32)
        img[...] = (zenith[None, None, :] * (1 - t[..., None]) + haze[None, None, :] * t[..., None])
        sx, sy = -0.38, -0.20
        d2 = (xs - sx) ** 2 + (ys - sy) ** 2
        sun = _ap1((1.0, 0.82, 0.58))
        glow = 30.0 * (d2 < 0.012 ** 2) + 4.0 * np.exp(-d2 / (2 * 0.02 ** 2)) + 0.9 * np.exp(-d2 / (2 * 0.16 ** 2))
        img += glow[..., None] * sun
        cl = fbm(rng, th, tw, cells=(5.0, 5.0 * aspect / 3.0), octaves=6, gain=0.55)
        cl_mask = smoothstep(0.45, 1.4, cl + 0.5 * (ys - top) / (hz - top) - 0.25) * (ys < hz)
        cl_mask *= smoothstep(hz, hz - 0.12, ys)
        lit = np.clip(0.55 - 1.2 * (xs - sx) * 0.3 + 0.4 * fbm(rng, th, tw, cells=(8.0, 12.0), octaves=3), 0.1, 1.2)
        cloud = _ap1((0.20, 0.17, 0.16))[None, None, :] + lit[..., None] * _ap1((0.85, 0.70, 0.52))
        cm = (0.9 * cl_mask)[..., None]
        img *= 1.0 - cm
        img += cm * cloud
        # Far mountains and middle hills (1D ridge noise), hazier with distance.
        ridge_rng = scene_rng(seed, "ridges")
        r1 = fbm1d(ridge_rng, tw, cells=4.0 * aspect, octaves=8, gain=0.55)
        r2 = fbm1d(ridge_rng, tw, cells=3.0 * aspect, octaves=7, gain=0.5)
        ridge1 = hz - 0.075 - 0.055 * r1
        ridge2 = hz - 0.012 - 0.028 * r2
        mtn = _ap1((0.10, 0.11, 0.14)) * 0.5 + haze * 0.5 * 0.8
        m1 = smoothstep(-0.6 / u, 0.6 / u, ys - ridge1[None, :]) * (ys < hz + 0.01)
        shade1 = (0.8 + 0.25 * fbm(rng, th, tw, cells=(10.0, 20.0), octaves=4))[..., None]
        img = img * (1 - m1[..., None]) + m1[..., None] * mtn * shade1
        hill = _ap1((0.10, 0.085, 0.05)) * 0.65 + haze * 0.35 * 0.55
        m2 = smoothstep(-0.6 / u, 0.6 / u, ys - ridge2[None, :])
        img = img * (1 - m2[..., None]) + m2[..., None] * hill * shade1
        # Ground: earth darkening towards the camera with a texture in perspective (sums of random
        # sinusoids over ground-plane coordinates, so it needs no tiling) and burnt patches.
        r0 = int(np.searchsorted(ys[:, 0], hz))  # first row below the horizon
        yg = ys[r0:]
        d = np.maximum(yg - hz, 0.015)
        gx, gz = xs / d, 1.0 / d
        g_t = np.clip((yg - hz) / (float(ys[-1, 0]) - hz), 0.0, 1.0)
        far, near = _ap1((0.30, 0.24, 0.17)), _ap1((0.08, 0.062, 0.04))
        ground = far[None, None, :] * (1 - g_t[..., None] ** 0.5) + near[None, None, :] * g_t[..., None] ** 0.5
        gtex = np.zeros((th - r0, tw), np.float32)
        patches = np.zeros((th - r0, tw), np.float32)
        for k in range(16):
            f = 0.4 * 1.4 ** k
            ang = rng.uniform(0, math.pi)
            phase = rng.uniform(0, 2 * math.pi)
            # Fade each wave out where it would alias (phase step per pixel approaching pi).
            step = f * (abs(math.cos(ang)) / d + abs(math.sin(ang)) * 3.0 / (d * d) * (1 + np.abs(xs))) / u
            fade = np.clip(1.6 - step, 0.0, 1.0)
            if not fade.any():
                continue
            wave = np.sin((np.float32(math.cos(ang)) * gx + np.float32(math.sin(ang) * 3.0) * gz) * np.float32(f)
                          + np.float32(phase)) * fade
            gtex += np.float32(1.0 / (1 + 0.25 * k)) * wave
            if k < 4:
                patches += wave
        gtex *= np.float32(0.3)
        burnt = smoothstep(0.8, 2.2, patches)
        ground = ground * (1 + 0.22 * gtex[..., None]) * (1 - 0.55 * burnt[..., None])
        mg = (smoothstep(hz + 0.004, hz + 0.02, yg) * np.ones((1, tw), np.float32))[..., None]
        img[r0:] = img[r0:] * (1 - mg) + mg * ground
        # Fortress on the hills, ranks of troops on the plain (drawn anti-aliased).
        img = self._structures(img, rng, ridge2, haze, u)
        img = np.maximum(img, 0.0).astype(np.float32)
        self.scene = cv2.GaussianBlur(img, (0, 0), 0.6 * height / 1080.0)  # the generator's softness
        # Smoke: three plumes rising from the plain; density texture scrolls upwards over time.
        self.plumes = []
        for _ in range(3):
            px_ = rng.uniform(-0.6, 0.6) * width / height
            py_ = hz + rng.uniform(0.03, 0.10)
            self.plumes.append((px_, py_, rng.uniform(0.35, 0.6)))
        self.smoke_noise = fbm(rng, th, tw, cells=(6.0, 6.0 * aspect), octaves=5)
        self.xs, self.ys = xs, ys
        self.haze = haze

    def _structures(self, img, rng, ridge2, haze, u):
        mx, my = self.origin
        W, H = self.w, self.h

        def to_px(x, y):
            return np.stack([np.asarray(x, float) * u + mx + (W - 1) / 2.0,
                             np.asarray(y, float) * u + my + (H - 1) / 2.0], -1)

        xf = 0.22 * W / H
        col_idx = int(np.clip(round(xf * u + mx + (W - 1) / 2.0), 0, self.tw - 1))
        base = float(ridge2[col_idx]) + 0.012
        polys = [to_px([xf - 0.17, xf + 0.17, xf + 0.17, xf - 0.17], [base, base, base - 0.05, base - 0.05])]
        for tx in (-0.17, -0.06, 0.06, 0.17):
            x0, x1 = xf + tx - 0.014, xf + tx + 0.014
            polys.append(to_px([x0, x1, x1, x0], [base, base, base - 0.085, base - 0.085]))
            for c in range(3):  # crenellations
                cx0 = x0 + c * 0.011
                polys.append(to_px([cx0, cx0 + 0.006, cx0 + 0.006, cx0],
                                   [base - 0.085, base - 0.085, base - 0.093, base - 0.093]))
        keep = polys[0]
        box = (int(keep[:, 0].min()) - 60, int((base - 0.1) * u + my + (H - 1) / 2.0) - 4,
               int(keep[:, 0].max()) + 60, int(base * u + my + (H - 1) / 2.0) + 4)
        box = (max(0, box[0]), max(0, box[1]), min(self.tw, box[2]), min(self.th, box[3]))
        r = Raster(box, ss=2)
        r.polygons(polys)
        cov = r.resolve()[..., None]
        x0, y0, x1, y1 = box
        xs_local = (np.arange(x0, x1, dtype=np.float32)[None, :] - mx - (W - 1) / 2.0) / u
        stone = _ap1((0.32, 0.28, 0.23)) * 0.6 + haze * 0.4 * 0.6
        light = (1.0 - 1.5 * np.clip(xs_local - xf + 0.17, 0.0, 0.34))[..., None]
        img[y0:y1, x0:x1] = img[y0:y1, x0:x1] * (1 - cov) + cov * stone * light
        # Troops: rows of small dark figures, larger nearer the camera.
        hz = _HORIZON
        r = Raster((0, 0, self.tw, self.th), ss=1)
        ellipses = []
        for row in range(6):
            yv = hz + 0.025 + row * 0.018
            size = 0.0012 + 0.0007 * row
            n = int(40 + 15 * row)
            x_a, x_b = rng.uniform(-1.1, -0.2), rng.uniform(0.2, 1.1)
            xs_t = np.sort(rng.uniform(x_a, x_b, n)) * W / H * 0.6
            for xv in xs_t:
                yj = yv + rng.normal(0, 0.002)
                ellipses.append((to_px(xv, yj - size * 1.6), size))
        canvas = r.canvas
        for c, size in ellipses:
            cx, cy = c
            rad = size * u
            r.ellipse((cx, cy), (rad * 0.55, rad * 1.6))
        cov = (canvas.astype(np.float32) / 255.0)[..., None]
        dark = _ap1((0.025, 0.02, 0.015))
        img = img * (1 - 0.9 * cov) + 0.9 * cov * dark
        return img

    def smoke(self, s: float) -> np.ndarray:
        """Smoke alpha ``(th, tw)`` at time ``s`` (the density texture scrolls upwards)."""
        H = self.h
        shift = -0.035 * s * H  # rises 3.5% of the height per second
        noise = cv2.warpAffine(self.smoke_noise, np.float32([[1, 0, 0], [0, 1, -shift]]), (self.tw, self.th),
                               flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_WRAP)
        xs, ys = self.xs, self.ys
        a = np.zeros((self.th, self.tw), np.float32)
        for px_, py_, height in self.plumes:
            rise = np.clip(py_ - ys, 0.0, None)
            width = 0.012 + 0.35 * rise ** 1.1
            drift = 0.3 * rise ** 1.3
            core = np.exp(-((xs - px_ - drift) / width) ** 2)
            fade = smoothstep(0.0, 0.01, rise) * smoothstep(height, height * 0.3, rise) * (ys < py_)
            a += core * fade * np.sqrt(np.clip(0.04 / width, 0.25, 1.0))
        a *= np.clip(0.6 + 0.5 * noise, 0.0, 1.3)
        return np.clip(a * 1.1, 0.0, 0.95).astype(np.float32)


class BackgroundSequence(FrameSequence):
    """A generated background clip with flicker truth (see :func:`generated_background_sequence`)."""

    _who = "generated_background_sequence"

    def __init__(self, width: int, height: int, frames: int, *, seed: int = 0, first_frame: int = 1001,
                 rate: float = 24.0, flicker: float = 0.04, regional_flicker: float = 0.03,
                 flicker_grid: tuple[int, int] = (3, 4), exposure_ramp: float = 0.0, camera_move: float = 0.6):
        who = "generated_background_sequence"
        check_size(width, height, frames, who=who)
        for name, value, lo, hi in (("flicker", flicker, 0.0, 1.0), ("regional_flicker", regional_flicker, 0.0, 1.0),
                                    ("exposure_ramp", exposure_ramp, -8.0, 8.0),
                                    ("camera_move", camera_move, 0.0, 2.0), ("rate", rate, 1.0, 240.0)):
            if not (isinstance(value, (int, float)) and lo <= float(value) <= hi):
                raise InputError(f"{who}: {name}={value!r} is out of range [{lo}, {hi}]")
        grid = tuple(int(v) for v in flicker_grid)
        if len(grid) != 2 or min(grid) < 1 or max(grid) > 64:
            raise InputError(f"{who}: flicker_grid must be (rows, cols) with 1..64 each, got {flicker_grid!r}")
        self.width, self.height, self.count = int(width), int(height), int(frames)
        self.first_frame, self.rate, self.seed = int(first_frame), float(rate), int(seed)
        self.params: dict[str, Any] = {
            "kind": "background", "width": self.width, "height": self.height, "frames": self.count,
            "first_frame": self.first_frame, "rate": self.rate, "seed": self.seed, "flicker": float(flicker),
            "regional_flicker": float(regional_flicker), "flicker_grid": list(grid),
            "exposure_ramp": float(exposure_ramp), "camera_move": float(camera_move),
            "colorspace": WORKING_SPACE,
        }
        self._cam_phase = scene_rng(self.seed, "background-camera").uniform(0, 2 * math.pi, 8)
        self._world: _World | None = None


    def camera(self, number: int) -> np.ndarray:
        """3x3 homography: first-frame pixel coordinates → frame ``number`` pixel coordinates."""
        i = self._index(number)
        amt = self.params["camera_move"]
        m0 = camera_path(self.width, self.height, 0.0, self._cam_phase, amt, speed=0.7)
        m = camera_path(self.width, self.height, i / self.rate, self._cam_phase, amt, speed=0.7) @ np.linalg.inv(m0)
        return m / m[2, 2]

    def exposure(self, number: int) -> float:
        """The deliberate exposure multiplier of frame ``number`` (2 ** (ramp * position))."""
        i = self._index(number)
        pos = i / (self.count - 1) if self.count > 1 else 0.0
        return float(2.0 ** (self.params["exposure_ramp"] * pos))

    def flicker(self, number: int) -> tuple[float, np.ndarray]:
        """``(global_gain, regional_gains)`` injected into frame ``number``."""
        self._index(number)
        rng = scene_rng(self.seed, "flicker", number)
        g = float(math.exp(self.params["flicker"] * rng.standard_normal()))
        rows, cols = self.params["flicker_grid"]
        reg = np.exp(self.params["regional_flicker"] * rng.standard_normal((rows, cols)))
        reg /= reg.mean()
        return g, reg.astype(np.float32)

    def frame(self, number: int) -> BackgroundFrame:
        """Generate frame ``number`` (independent of any other frame)."""
        i = self._index(number)
        if self._world is None:
            self._world = _World(self.width, self.height, self.seed)
        w = self._world
        s = i / self.rate
        a = w.smoke(s)[..., None]
        smoke_col = _ap1((0.06, 0.055, 0.05)) + 0.25 * w.haze * np.clip(0.5 - w.ys, 0, 1)[..., None]
        world = w.scene * (1.0 - a) + a * smoke_col
        m = self.camera(number)
        mx, my = w.origin
        scene = cv2.warpPerspective(world, m @ translation(-mx, -my), (self.width, self.height),
                                    flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
        exposure = self.exposure(number)
        clean = (scene * np.float32(exposure)).astype(np.float32)
        g, reg = self.flicker(number)
        gain = flicker_gain_field(g, reg, self.width, self.height)
        image = clean * gain
        return BackgroundFrame(frame=number, image=image, clean=clean, gain=gain, global_gain=g,
                               regional_gains=reg, exposure=exposure, camera=m, rate=self.rate)

    def truth(self) -> dict[str, Any]:
        """JSON-serialisable truth: parameters and, per frame, gains, exposure and camera matrix."""
        frames = {}
        for f in self.frames:
            g, reg = self.flicker(f)
            frames[str(f)] = {"global_gain": g, "regional_gains": reg.tolist(), "exposure": self.exposure(f),
                              "camera": self.camera(f).tolist()}
        return {
            "schema": "composite.synth.truth/1",
            "params": dict(self.params),
            "composition": "image = clean * global_gain * regional(x, y); clean = scene * exposure; regional "
                           "interpolates the rows x cols grid (values at region centres) with OpenCV bicubic "
                           "resize (composite.synth.background.flicker_gain_field)",
            "camera_convention": "3x3 homography mapping first-frame pixel coordinates to this frame's pixel "
                                 "coordinates (pixel centres at integers, y down)",
            "frames": frames,
        }


def generated_background_sequence(width: int, height: int, frames: int, *, seed: int = 0,
                                  first_frame: int = 1001, rate: float = 24.0, flicker: float = 0.04,
                                  regional_flicker: float = 0.03, flicker_grid: tuple[int, int] = (3, 4),
                                  exposure_ramp: float = 0.0, camera_move: float = 0.6) -> BackgroundSequence:
    """A generated-looking battlefield background clip with injected flicker and its truth.

    Parameters
    ----------
    width, height, frames : int
        Frame size and number of frames (numbered from ``first_frame``).
    flicker : float
        Standard deviation of the log of the per-frame global gain (0.04: about 4%).
    regional_flicker : float
        Standard deviation of the log of each regional gain (grid normalised to mean 1).
    flicker_grid : (rows, cols)
        Regions of the regional flicker.
    exposure_ramp : float
        A real exposure change, in stops from the first frame to the last, that a deflicker must keep.
    camera_move : float
        Camera movement scale in [0, 2] (0: locked off).

    Returns
    -------
    BackgroundSequence
        ``seq[i]`` / ``seq.frame(number)`` give :class:`BackgroundFrame` values; ``seq.truth()`` the gains,
        exposures and camera matrices as JSON-ready data.
    """
    return BackgroundSequence(width, height, frames, seed=seed, first_frame=first_frame, rate=rate,
                              flicker=flicker, regional_flicker=regional_flicker, flicker_grid=flicker_grid,
                              exposure_ramp=exposure_ramp, camera_move=camera_move)
