"""Synthetic green/blue-screen plates with exact ground truth.

:func:`greenscreen_sequence` describes a shot: an actor-like subject (head, torso, arms, long hair with
hundreds of sub-pixel strands, a spear with thin cords, a translucent veil with alpha 0.3-0.6, a raised arm
with motion blur) standing before an unevenly lit, slightly graded screen with seams and tracking markers,
filmed by a camera that pans, tilts, rolls and zooms about its nodal point, with screen spill on the
subject's edges and film-like grain. Every frame is generated on its own from the seed and its frame
number, so frames come out identical in any order, chunk or process.

Each :class:`GreenscreenFrame` holds the camera's picture and the truth it was made from, all
``float32`` scene-linear ACEScg::

    plate = fg + (1 - alpha) * screen + spill + grain

* ``fg``: ``(H, W, 3)`` the subject's own colour, premultiplied by ``alpha``, without spill;
* ``alpha``: ``(H, W, 1)`` true coverage in [0, 1] (anti-aliased edges, strands, motion blur);
* ``screen``: ``(H, W, 3)`` the clean screen plate (what the camera would see without the subject);
* ``spill``: ``(H, W, 3)`` screen light added to the subject (zero where alpha is 0);
* ``grain``: ``(H, W, 3)`` zero-mean, signal-dependent grain (zero with ``grain=0``).

The camera matrix of a frame maps pixel coordinates of the first frame to pixel coordinates of that frame
(3x3 homography, pixel centres at integers); the screen and the subject (apart from its own movement) follow
it exactly. Camera-move blur is not modelled; the raised arm's own motion is integrated over the shutter.

Example
-------
>>> from composite.synth import greenscreen_sequence
>>> seq = greenscreen_sequence(160, 90, 3, seed=7)
>>> f = seq[0]
>>> f.plate.shape, f.alpha.shape, f.frame
((90, 160, 3), (90, 160, 1), 1001)
>>> bool(abs(f.plate - (f.fg + (1 - f.alpha) * f.screen + f.spill + f.grain)).max() < 1e-5)
True
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np

from ..core.errors import InputError
from ..core.image import RGB, RGBA, Image
from ..core.state import RAW_SPACE, WORKING_SPACE, AlphaState
from ._common import (
    FrameSequence,
    Raster,
    apply_h,
    blur,
    box_of,
    camera_path,
    capsule,
    check_size,
    fbm,
    over_into,
    scene_rng,
    translation,
)

#: Linear Rec.709 → ACEScg (AP1), Bradford D65 → D60. Colours below are picked in linear Rec.709.
_709_TO_AP1 = np.array([[0.6130974, 0.3395231, 0.0473795],
                        [0.0701937, 0.9163539, 0.0134524],
                        [0.0206156, 0.1095698, 0.8698147]], np.float32)


def _ap1(rgb709: tuple[float, float, float]) -> np.ndarray:
    return (_709_TO_AP1 @ np.asarray(rgb709, np.float32)).astype(np.float32)


#: Screen colours as lit on a stage, linear Rec.709 (converted to ACEScg).
SCREEN_COLORS = {"green": (0.012, 0.32, 0.034), "blue": (0.018, 0.06, 0.36)}

#: Margin of the rendered screen around the first frame's view (fraction of each side).
_MARGIN = 0.12

_SKIN = (0.42, 0.25, 0.17)
_HAIR = (0.20, 0.125, 0.06)
_TUNIC = (0.23, 0.045, 0.035)
_STEEL = (0.20, 0.205, 0.215)
_LEATHER = (0.09, 0.05, 0.025)
_WOOD = (0.13, 0.075, 0.035)
_VEIL = (0.62, 0.56, 0.46)
_SLEEVE = (0.12, 0.08, 0.05)
_CORD = (0.55, 0.45, 0.25)


@dataclass(frozen=True, eq=False)
class GreenscreenFrame:
    """One synthetic frame and its truth (see the module docstring for the identity they satisfy)."""

    frame: int
    plate: np.ndarray
    alpha: np.ndarray
    fg: np.ndarray
    screen: np.ndarray
    spill: np.ndarray
    grain: np.ndarray
    camera: np.ndarray
    rate: float = 24.0
    metadata: dict[str, Any] = field(default_factory=dict)

    def fg_rgba(self) -> np.ndarray:
        """``(H, W, 4)`` float32 premultiplied RGBA of the unspilled subject."""
        return np.concatenate([self.fg, self.alpha], axis=2)

    def images(self) -> dict[str, Image]:
        """The frame as :class:`~composite.core.Image` values: plate, alpha, fg (RGBA), screen, spill."""
        import opentimelineio as otio

        t = otio.opentime.RationalTime(self.frame, self.rate)
        meta = {"synth:frame": self.frame}
        return {
            "plate": Image(self.plate, RGB, WORKING_SPACE, AlphaState.OPAQUE, time=t, metadata=meta),
            "alpha": Image(self.alpha, ("A",), RAW_SPACE, AlphaState.OPAQUE, time=t, metadata=meta),
            "fg": Image(self.fg_rgba(), RGBA, WORKING_SPACE, AlphaState.PREMULTIPLIED, time=t, metadata=meta),
            "screen": Image(self.screen, RGB, WORKING_SPACE, AlphaState.OPAQUE, time=t, metadata=meta),
            "spill": Image(self.spill, RGB, WORKING_SPACE, AlphaState.OPAQUE, time=t, metadata=meta),
        }


# -- the screen ----------------------------------------------------------------------------------

def _render_screen_texture(width: int, height: int, seed: int, screen: str, markers: bool):
    """The screen as seen from the first frame, with a margin: (texture, origin (ox, oy), marker list)."""
    mx, my = int(round(_MARGIN * width)), int(round(_MARGIN * height))
    tw, th = width + 2 * mx, height + 2 * my
    rng = scene_rng(seed, "screen")
    u = height  # unit length
    # The lighting is smooth: compute it on a grid reduced by f and resize (cubic), keeping pixel centres
    # aligned; the thin seams are applied per column at full resolution, the markers drawn at full size.
    f = max(1, height // 270)
    sw, sh = max(2, -(-tw // f)), max(2, -(-th // f))
    xs = ((np.arange(sw, dtype=np.float32) + 0.5) * (tw / sw) - 0.5)[None, :]
    ys = ((np.arange(sh, dtype=np.float32) + 0.5) * (th / sh) - 0.5)[:, None]
    xr = (xs - mx - (width - 1) / 2.0) / u  # reference coordinates in units of frame height, origin at centre
    yr = (ys - my - (height - 1) / 2.0) / u
    cells = (3.0 * (1 + 2 * _MARGIN), 3.0 * (width / height) * (1 + 2 * _MARGIN))
    light = 0.9 + 0.09 * fbm(rng, sh, sw, cells=cells, octaves=3)
    # Two soft hot spots from the screen lights and fall-off towards the edges and the bottom.
    for hx, hy, amp, rad in ((-0.35, -0.25, 0.16, 0.45), (0.45, -0.1, 0.10, 0.35)):
        light += amp * np.exp(-((xr - hx) ** 2 + (yr - hy) ** 2) / (2 * rad * rad))
    light *= 1.0 - 0.16 * (xr / (0.9 * width / height)) ** 2 - 0.22 * np.clip(yr + 0.1, 0, None) ** 2
    # Folds: soft vertical creases with a highlight beside each.
    for _ in range(4):
        x0 = rng.uniform(-0.8, 0.8) * width / height
        wav = x0 + 0.02 * np.sin(yr * rng.uniform(3, 7) + rng.uniform(0, 6))
        d = (xr - wav) / 0.012
        light = light * (1.0 - 0.07 * np.exp(-d * d) + 0.03 * np.exp(-(d - 1.6) ** 2))
    base = _ap1(SCREEN_COLORS[screen])
    small = np.empty((sh, sw, 3), np.float32)
    for c in range(3):
        grade = 1.0 + 0.045 * fbm(rng, sh, sw, cells=cells, octaves=2)
        small[..., c] = base[c] * light * grade
    tex = cv2.resize(small, (tw, th), interpolation=cv2.INTER_CUBIC) if f > 1 else small
    # Panel seams (thin vertical lines), per column.
    pitch = 0.45
    xcol = (np.arange(tw, dtype=np.float32) - mx - (width - 1) / 2.0) / u
    seam = np.abs(((xcol + 0.11) / pitch) % 1.0 - 0.5) * pitch  # distance to the seam line
    tex *= (1.0 - 0.08 * np.exp(-((pitch / 2 - seam) / 0.0025) ** 2)).astype(np.float32)[None, :, None]
    marker_list: list[list[float]] = []
    if markers:
        spacing = 0.2
        arm, width_m = 0.013 * u, max(0.0028 * u, 1.2)
        r = Raster((0, 0, tw, th), ss=2)
        polys = []
        gx = np.arange(-4.0, 4.01, 1.0) * spacing * 1.5
        gy = np.arange(-3.0, 3.01, 1.0) * spacing
        jit = rng.uniform(-0.02, 0.02, size=(len(gy), len(gx), 2))
        for j, y in enumerate(gy):
            for i, x in enumerate(gx):
                cx = (x + jit[j, i, 0]) * u + (width - 1) / 2.0
                cy = (y + jit[j, i, 1]) * u + (height - 1) / 2.0
                if not (-mx + arm < cx < width + mx - arm and -my + arm < cy < height + my - arm):
                    continue
                marker_list.append([float(cx), float(cy)])
                tx, ty = cx + mx, cy + my
                polys.append(np.array([[tx - arm, ty - width_m / 2], [tx + arm, ty - width_m / 2],
                                       [tx + arm, ty + width_m / 2], [tx - arm, ty + width_m / 2]]))
                polys.append(np.array([[tx - width_m / 2, ty - arm], [tx + width_m / 2, ty - arm],
                                       [tx + width_m / 2, ty + arm], [tx - width_m / 2, ty + arm]]))
        r.polygons(polys)
        cov = r.resolve()
        tex *= (1.0 - 0.5 * cov)[..., None]
    return tex, (mx, my), marker_list


# -- the subject ---------------------------------------------------------------------------------

def _ellipse_corners(center, axes) -> np.ndarray:
    r = max(axes)
    cx, cy = float(center[0]), float(center[1])
    return np.array([[cx - r, cy - r], [cx + r, cy + r]])


def _relief(cov: np.ndarray, sigma: float, ambient: float = 0.45) -> np.ndarray:
    """Fake relief lighting from a blurred coverage (key light from the upper left)."""
    sigma = max(sigma, 0.6)
    b = blur(cov, sigma)
    gx = cv2.Sobel(b, cv2.CV_32F, 1, 0, ksize=3) * np.float32(0.125 * sigma * 2.5)
    gy = cv2.Sobel(b, cv2.CV_32F, 0, 1, ksize=3) * np.float32(0.125 * sigma * 2.5)
    lx, ly, lz = -0.55, -0.6, 0.58
    n = np.sqrt(gx * gx + gy * gy + 1.0)
    lam = np.clip((-gx * lx - gy * ly + lz) / n, 0.0, 1.0)
    return (ambient + (1.0 - ambient) * lam * 1.25).astype(np.float32)


class _Subject:
    """The actor: static random choices (strands, veil shape) made once from the seed."""

    def __init__(self, width: int, height: int, seed: int, hair_strands: int):
        self.w, self.h = width, height
        self.u = float(height)
        self.cx = 0.56 * width
        rng = scene_rng(seed, "subject")
        n_main = int(hair_strands)
        n_fly = max(0, n_main // 3)
        # Strands: root angle on the scalp arc, length, curl, opacity, colour and sway phase.
        self.strand_root = rng.uniform(math.radians(150), math.radians(390), n_main + n_fly)
        self.strand_len = np.concatenate([rng.uniform(0.07, 0.26, n_main), rng.uniform(0.05, 0.20, n_fly)])
        self.strand_curl = rng.normal(0.0, 1.0, n_main + n_fly)
        self.strand_out = np.concatenate([rng.uniform(0.0, 0.012, n_main), rng.uniform(0.01, 0.05, n_fly)])
        self.strand_phase = rng.uniform(0, 2 * math.pi, n_main + n_fly)
        self.strand_group = np.concatenate([rng.integers(0, 4, n_main), rng.integers(4, 7, n_fly)])
        self.group_opacity = np.array([0.95, 0.85, 0.7, 0.55, 0.6, 0.42, 0.28])
        self.group_tint = rng.uniform(0.75, 1.35, 7)
        n_frizz = n_main // 2
        self.frizz_angle = rng.uniform(math.radians(175), math.radians(365), n_frizz)
        self.frizz_turn = rng.normal(0.0, 0.6, n_frizz)
        self.frizz_len = rng.uniform(0.008, 0.045, n_frizz)
        self.frizz_group = rng.integers(0, 2, n_frizz)
        self.veil_wave = rng.uniform(0, 2 * math.pi, 3)
        self.tex_rng_seed = seed

    # All shapes are built in units of frame height relative to the subject's centre line, then mapped to
    # the first frame's pixels and through the camera.
    def _to_px(self, pts, sway, m, pivot=None, tilt=0.0):
        p = np.asarray(pts, np.float64)
        if pivot is not None and tilt:
            c, s_ = math.cos(tilt), math.sin(tilt)
            q = p - pivot
            p = np.stack([c * q[..., 0] - s_ * q[..., 1], s_ * q[..., 0] + c * q[..., 1]], -1) + pivot
        ref = np.empty_like(p)
        ref[..., 0] = self.cx + (p[..., 0] + sway[0]) * self.u
        ref[..., 1] = (p[..., 1] + sway[1]) * self.u
        return apply_h(m, ref)

    def arm_pose(self, s: float):
        """Shoulder, elbow and hand (units of height) of the raised arm at time ``s`` seconds."""
        f = 0.8
        t1 = math.radians(40 + 55 * (0.5 - 0.5 * math.cos(2 * math.pi * f * s)))
        t2 = math.radians(20 + 75 * (0.5 - 0.5 * math.cos(2 * math.pi * f * s - 0.6)))
        sh = np.array([0.19, 0.50])
        el = sh + 0.19 * np.array([math.sin(t1), math.cos(t1)])
        hd = el + 0.17 * np.array([math.sin(t1 + t2), math.cos(t1 + t2)])
        return sh, el, hd

    def render(self, s: float, m: np.ndarray, *, rate: float, motion_blur: bool, shutter: float,
               softness: float) -> tuple[np.ndarray, np.ndarray, tuple[int, int, int, int]]:
        """Premultiplied colour ``(H, W, 3)``, alpha ``(H, W, 1)`` and the subject's box at time ``s``."""
        W, H, u = self.w, self.h, self.u
        rgb = np.zeros((H, W, 3), np.float32)
        alpha = np.zeros((H, W, 1), np.float32)
        sway = (0.006 * math.sin(2 * math.pi * 0.23 * s), 0.003 * math.sin(2 * math.pi * 0.41 * s + 0.7))
        tilt = math.radians(2.5 * math.sin(2 * math.pi * 0.19 * s + 0.3))
        neck = np.array([0.0, 0.40])
        scale = math.sqrt(abs(np.linalg.det(m[:2, :2])))
        px = lambda pts: self._to_px(pts, sway, m)  # noqa: E731
        pxh = lambda pts: self._to_px(pts, sway, m, neck, tilt)  # noqa: E731
        boxes: list[tuple[int, int, int, int]] = []

        def layer(polys_px, color, *, ss=2, relief=None, tex=None, alpha_fn=None, draw=None):
            box = box_of(polys_px, 3, W, H)
            if box[2] <= box[0] or box[3] <= box[1]:
                return None
            r = Raster(box, ss=ss)
            if draw is None:
                r.polygons(polys_px)
            else:
                draw(r)
            cov = r.resolve()
            if alpha_fn is not None:
                cov = cov * alpha_fn(box)
            col = np.empty((*cov.shape, 3), np.float32)
            col[...] = _ap1(color)
            if relief is not None:
                col *= _relief(cov, relief * u * scale)[..., None]
            if tex is not None:
                col *= tex(box)[..., None]
            over_into(rgb, alpha, box, col * cov[..., None], cov)
            boxes.append(box)
            return box

        minv = np.linalg.inv(m)

        def ref_coords(box):
            """Coordinates (units of height, subject-centred) of each pixel of a box before the camera."""
            x0, y0, x1, y1 = box
            xs = np.arange(x0, x1, dtype=np.float32)[None, :]
            ys = np.arange(y0, y1, dtype=np.float32)[:, None]
            a = minv.astype(np.float32)
            den = a[2, 0] * xs + a[2, 1] * ys + a[2, 2]
            rx = (a[0, 0] * xs + a[0, 1] * ys + a[0, 2]) / den
            ry = (a[1, 0] * xs + a[1, 1] * ys + a[1, 2]) / den
            rx *= np.float32(1.0 / u)
            rx -= np.float32(self.cx / u + sway[0])
            ry *= np.float32(1.0 / u)
            ry -= np.float32(sway[1])
            return rx, ry

        def cloth(box, amp=0.08, freq=160.0):
            xr, yr = ref_coords(box)
            weave = np.sin(xr * freq) * np.sin(yr * freq * 1.1)
            folds = np.sin(xr * 23.0 + 3 * np.sin(yr * 9.0)) * 0.6 + np.sin(yr * 31.0 + xr * 5.0) * 0.4
            return (1.0 + amp * 0.35 * weave + amp * folds).astype(np.float32)

        # 1. Veil: translucent cloth from the left shoulder, blown outwards (alpha 0.3-0.6).
        wv = self.veil_wave
        t_ = np.linspace(0, 1, 24)
        outer = np.stack([-0.30 - 0.17 * t_ + 0.02 * np.sin(2 * math.pi * (1.3 * t_ + 0.7 * s) + wv[0]),
                          0.47 + 0.60 * t_], 1)
        inner = np.stack([-0.19 - 0.03 * t_ + 0.01 * np.sin(2 * math.pi * (2.0 * t_ + 0.5 * s) + wv[1]),
                          0.47 + 0.60 * t_], 1)[::-1]
        top = np.array([[-0.14, 0.44], [-0.22, 0.45]])
        veil = px(np.concatenate([top, outer, inner], 0))

        def veil_alpha(box):
            xr, yr = ref_coords(box)
            a = (0.45 + 0.09 * np.sin(2 * math.pi * (xr * 7.0 + yr * 2.0) + 2.0 * s + wv[2])
                 + 0.05 * np.sin(2 * math.pi * (xr * 13.0 - yr * 5.0) + 1.3))
            return np.clip(a, 0.3, 0.6).astype(np.float32)

        layer([veil], _VEIL, alpha_fn=veil_alpha, tex=lambda b: cloth(b, 0.05))

        # 2. Long hair behind the head.
        th = np.linspace(math.pi, 2 * math.pi, 20)
        arc = np.stack([0.100 * np.cos(th), 0.30 + 0.118 * np.sin(th)], 1)
        hair_back = np.concatenate([arc, [[0.107, 0.36], [0.118, 0.44], [0.128, 0.505], [0.06, 0.475],
                                          [-0.06, 0.475], [-0.128, 0.505], [-0.118, 0.44], [-0.107, 0.36]]], 0)
        layer([pxh(hair_back)], _HAIR, relief=0.02)

        # 3. Hair strands: from the scalp, over the sides of the head and down behind the shoulders
        #    (the face and torso, drawn later, hide what falls behind them); flyaways are finer and fainter.
        a0 = self.strand_root
        side = np.cos(a0)[:, None]
        k = np.linspace(0, 1, 14)[None, :]
        root_x = 0.09 * np.cos(a0)[:, None]
        root_y = 0.30 + 0.108 * np.sin(a0)[:, None]
        out = self.strand_out[:, None]
        length = self.strand_len[:, None]
        ph = self.strand_phase[:, None]
        top = np.clip(-np.sin(a0), 0.0, 1.0)[:, None]
        lean = side + 0.6 * top * np.tanh(self.strand_curl[:, None]) * out / 0.05
        spread = lean * (0.022 + out) * (1 - (1 - k) ** 2) + np.sign(lean) * out * 0.8 * k
        curl = self.strand_curl[:, None] * 0.006 * np.sin(k * (3.0 + 4.0 * out / 0.05) + ph) * k
        wind = 0.005 * np.sin(2 * math.pi * 0.35 * s + ph) * k ** 2
        xs = root_x + spread + curl + wind
        ys = root_y + length * k ** 1.15 - (0.004 + 0.5 * out) * (0.3 + top) * np.sin(math.pi * 0.85 * k)
        strands_px = pxh(np.stack([xs, ys], -1))
        strand_w = 0.00045 * u * scale  # about half a pixel at 1080 lines
        for g in range(len(self.group_opacity)):
            sel = np.nonzero(self.strand_group == g)[0]
            if len(sel) == 0:
                continue
            lines = [strands_px[i] for i in sel]
            op = float(self.group_opacity[g])
            width_px = strand_w * (1.6 if g < 4 else 1.0)
            layer(lines, tuple(np.asarray(_HAIR) * self.group_tint[g]), ss=3,
                  draw=lambda r, lines=lines, width_px=width_px: r.polylines(lines, width_px),
                  alpha_fn=lambda box, op=op: np.float32(op))

        # Frizz: short, faint hairs standing off the outline of the hair.
        fa = self.frizz_angle[:, None]
        fd = fa + self.frizz_turn[:, None]
        kf = np.linspace(0, 1, 6)[None, :]
        fl = self.frizz_len[:, None]
        fx = 0.099 * np.cos(fa) + np.cos(fd) * fl * kf + 0.004 * np.sin(2 * math.pi * 0.35 * s + fa) * kf
        fy = 0.30 + 0.117 * np.sin(fa) + np.sin(fd) * fl * kf + 0.4 * fl * kf ** 2
        frizz_px = pxh(np.stack([fx, fy], -1))
        for g, op in ((0, 0.5), (1, 0.3)):
            lines = [frizz_px[i] for i in np.nonzero(self.frizz_group == g)[0]]
            if lines:
                layer(lines, tuple(np.asarray(_HAIR) * 1.2), ss=3,
                      draw=lambda r, lines=lines: r.polylines(lines, strand_w),
                      alpha_fn=lambda box, op=op: np.float32(op))

        # 4. Torso (tunic), breastplate, belt, neck.
        torso = np.array([[-0.055, 0.42], [0.055, 0.42], [0.15, 0.44], [0.20, 0.465], [0.218, 0.52],
                          [0.195, 0.75], [0.175, 1.15], [-0.175, 1.15], [-0.195, 0.75], [-0.218, 0.52],
                          [-0.20, 0.465], [-0.15, 0.44]])
        layer([px(torso)], _TUNIC, relief=0.05, tex=lambda b: cloth(b, 0.07))
        plate = np.array([[-0.13, 0.47], [0.13, 0.47], [0.152, 0.60], [0.122, 0.78], [0.0, 0.82],
                          [-0.122, 0.78], [-0.152, 0.60]])

        def steel(box):
            xr, yr = ref_coords(box)
            return (0.8 + 1.2 * np.exp(-((xr + 0.05 + 0.25 * (yr - 0.6)) / 0.025) ** 2)
                    + 0.05 * np.sin(yr * 400.0)).astype(np.float32)

        layer([px(plate)], _STEEL, relief=0.03, tex=steel)
        belt = np.array([[-0.19, 0.79], [0.19, 0.79], [0.188, 0.835], [-0.188, 0.835]])
        layer([px(belt)], _LEATHER, relief=0.01)
        layer([px(capsule((0.0, 0.35), (0.0, 0.44), 0.036))], _SKIN, relief=0.015)

        # 5. Head with face features, beard and a hair cap.
        head_c = pxh(np.array([0.0, 0.30]))
        head_ax = (0.068 * u * scale, 0.088 * u * scale)
        head_angle = math.degrees(tilt)

        def face(box):
            xr, yr = ref_coords(box)
            c, s_ = math.cos(-tilt), math.sin(-tilt)
            qx, qy = xr - neck[0], yr - neck[1]
            xr, yr = c * qx - s_ * qy + neck[0], s_ * qx + c * qy + neck[1]
            dark = np.zeros_like(xr)
            for ex in (-0.027, 0.027):
                dark += 0.75 * np.exp(-(((xr - ex) / 0.013) ** 2 + ((yr - 0.292) / 0.0075) ** 2))
                dark += 0.35 * np.exp(-(((xr - ex) / 0.02) ** 2 + ((yr - 0.276) / 0.004) ** 2))
            dark += 0.5 * np.exp(-((xr / 0.02) ** 2 + ((yr - 0.352) / 0.0035) ** 2))
            dark += 0.25 * np.exp(-(((xr - 0.006) / 0.006) ** 2 + ((yr - 0.322) / 0.012) ** 2))
            return np.clip(1.0 - dark, 0.15, 1.0).astype(np.float32)

        layer([_ellipse_corners(head_c, head_ax)], _SKIN, relief=0.03, tex=face,
              draw=lambda r: r.ellipse(head_c, head_ax, head_angle))
        beard = np.array([[-0.062, 0.31], [-0.05, 0.36], [-0.025, 0.392], [0.0, 0.398], [0.025, 0.392],
                          [0.05, 0.36], [0.062, 0.31], [0.045, 0.335], [0.02, 0.362], [0.0, 0.343],
                          [-0.02, 0.362], [-0.045, 0.335]])
        layer([pxh(beard)], _HAIR, relief=0.008, tex=lambda b: cloth(b, 0.15, 400.0))
        th2 = np.linspace(math.pi * 1.02, math.pi * 1.98, 16)
        cap = np.concatenate([np.stack([0.075 * np.cos(th2), 0.292 + 0.1 * np.sin(th2)], 1),
                              [[0.068, 0.25], [0.03, 0.235], [0.0, 0.245], [-0.035, 0.232], [-0.069, 0.26]]], 0)
        layer([pxh(cap)], _HAIR, relief=0.012)

        # 6. Left arm, spear with cords, hand gripping the spear.
        layer([px(capsule((-0.19, 0.50), (-0.272, 0.69), 0.045, 0.038)),
               px(capsule((-0.272, 0.69), (-0.245, 0.84), 0.038, 0.03))], _SLEEVE, relief=0.02,
              tex=lambda b: cloth(b, 0.06))
        shaft = px(capsule((-0.232, 0.115), (-0.262, 1.2), 0.0036))
        layer([shaft], _WOOD, relief=0.003)
        blade = px(np.array([[-0.2318, 0.018], [-0.2215, 0.06], [-0.2235, 0.105], [-0.2318, 0.125],
                             [-0.2405, 0.105], [-0.2425, 0.06]]))
        layer([blade], _STEEL, relief=0.004)
        cs = 2 * math.pi * 0.5 * s
        t3 = np.linspace(0, 1, 16)[:, None]
        cord1 = np.concatenate([-0.2318 + 0.04 * t3 + 0.006 * np.sin(t3 * 4 + cs), 0.13 + 0.11 * t3 ** 0.8], 1)
        cord2 = np.concatenate([-0.2318 + 0.028 * t3 + 0.008 * np.sin(t3 * 5 + cs + 1), 0.13 + 0.14 * t3], 1)
        c1, c2 = px(cord1), px(cord2)
        layer([c1, c2], _CORD, ss=3, draw=lambda r: (r.polylines([c1], 0.0016 * u * scale),
                                                      r.polylines([c2], 0.0008 * u * scale)))
        hand_c, hand_ax = px(np.array([-0.246, 0.845])), (0.026 * u * scale, 0.033 * u * scale)
        layer([_ellipse_corners(hand_c, hand_ax)], _SKIN, relief=0.012,
              draw=lambda r: r.ellipse(hand_c, hand_ax, 10))

        # 7. The raised arm, integrated over the shutter.
        self._raised_arm(rgb, alpha, boxes, s, m, sway, scale, rate=rate, motion_blur=motion_blur,
                         shutter=shutter)

        sbox = box_of([np.array([[b[0], b[1]], [b[2], b[3]]]) for b in boxes], 4, W, H)
        if softness > 0:
            x0, y0, x1, y1 = sbox
            sig = softness * H / 1080.0
            rgb[y0:y1, x0:x1] = cv2.GaussianBlur(rgb[y0:y1, x0:x1], (0, 0), sig)
            alpha[y0:y1, x0:x1, 0] = cv2.GaussianBlur(alpha[y0:y1, x0:x1, 0], (0, 0), sig)
        np.clip(alpha, 0.0, 1.0, out=alpha)
        return rgb, alpha, sbox

    def _raised_arm(self, rgb, alpha, boxes, s, m, sway, scale, *, rate, motion_blur, shutter):
        W, H, u = self.w, self.h, self.u
        px = lambda pts: self._to_px(pts, sway, m)  # noqa: E731

        def shapes(t):
            sh, el, hd = self.arm_pose(t)
            fist = hd + 0.012 * (hd - el) / np.linalg.norm(hd - el)
            return (px(capsule(sh, el, 0.044, 0.037)), px(capsule(el, hd, 0.037, 0.031)),
                    px(capsule(sh, el, 0.022, 0.018)), px(capsule(el, hd, 0.018, 0.015)), px(fist))

        if motion_blur and shutter > 0:
            half = 0.5 * shutter / rate
            _, _, h_open = self.arm_pose(s - half)
            _, _, h_close = self.arm_pose(s + half)
            disp = float(np.linalg.norm(px(h_close) - px(h_open)))
            n = int(min(32, max(1, math.ceil(disp / 0.75))))
            times = s - half + (np.arange(n) + 0.5) * (2 * half / n)
        else:
            n, times = 1, np.array([s])
        all_shapes = [shapes(t) for t in times]
        fist_r = 0.03 * u * scale
        box = box_of([np.concatenate([*sh[:2], sh[4][None]], 0) for sh in all_shapes], fist_r + 3, W, H)
        if box[2] <= box[0] or box[3] <= box[1]:
            return
        ss = 2 if n <= 4 else 1
        h_, w_ = box[3] - box[1], box[2] - box[0]
        acc_rgb = np.zeros((h_, w_, 3), np.float32)
        acc_a = np.zeros((h_, w_), np.float32)
        sleeve, skin = _ap1(_SLEEVE), _ap1(_SKIN)
        for up, fore, up_core, fore_core, fist in all_shapes:
            r = Raster(box, ss)
            r.polygons([up, fore])
            sl = r.resolve()
            r = Raster(box, ss)
            r.polygons([up_core, fore_core])
            core = r.resolve()
            r = Raster(box, ss)
            r.ellipse(fist, (fist_r, fist_r))
            hand = r.resolve()
            keep = 1.0 - hand
            sleeve_shade = 0.55 * sl + 0.5 * core  # rounder (brighter) along the limb's core
            acc_rgb += hand[..., None] * (skin * 0.9) + (keep * sleeve_shade)[..., None] * sleeve
            acc_a += hand + keep * sl
        acc_rgb *= np.float32(1.0 / n)
        acc_a *= np.float32(1.0 / n)
        over_into(rgb, alpha, box, acc_rgb, acc_a)
        boxes.append(box)


# -- the sequence --------------------------------------------------------------------------------

class GreenscreenSequence(FrameSequence):
    """A synthetic screen shot: frames are generated on demand (see :func:`greenscreen_sequence`).

    ``seq[i]`` is the i-th frame (0-based position); ``seq.frame(n)`` the frame numbered ``n``;
    iterating yields every frame in order.
    """

    _who = "greenscreen_sequence"

    def __init__(self, width: int, height: int, frames: int, *, seed: int = 0, screen: str = "green",
                 first_frame: int = 1001, rate: float = 24.0, camera_move: float = 1.0, spill: float = 0.3,
                 grain: float = 1.0, motion_blur: bool = True, shutter: float = 0.5, hair_strands: int = 300,
                 markers: bool = True, softness: float = 0.5):
        who = "greenscreen_sequence"
        check_size(width, height, frames, who=who)
        if screen not in SCREEN_COLORS:
            raise InputError(f"{who}: screen must be one of {', '.join(SCREEN_COLORS)}, got {screen!r}")
        for name, value, lo, hi in (("camera_move", camera_move, 0.0, 2.0), ("spill", spill, 0.0, 1.0),
                                    ("grain", grain, 0.0, 10.0), ("shutter", shutter, 0.0, 1.0),
                                    ("softness", softness, 0.0, 5.0), ("rate", rate, 1.0, 240.0)):
            if not (isinstance(value, (int, float)) and lo <= float(value) <= hi):
                raise InputError(f"{who}: {name}={value!r} is out of range [{lo}, {hi}]")
        if not isinstance(hair_strands, (int, np.integer)) or not 0 <= hair_strands <= 5000:
            raise InputError(f"{who}: hair_strands must be an integer in [0, 5000], got {hair_strands!r}")
        self.width, self.height, self.count = int(width), int(height), int(frames)
        self.first_frame = int(first_frame)
        self.rate = float(rate)
        self.seed = int(seed)
        self.params: dict[str, Any] = {
            "kind": "greenscreen", "width": self.width, "height": self.height, "frames": self.count,
            "first_frame": self.first_frame, "rate": self.rate, "seed": self.seed, "screen": screen,
            "camera_move": float(camera_move), "spill": float(spill), "grain": float(grain),
            "motion_blur": bool(motion_blur), "shutter": float(shutter), "hair_strands": int(hair_strands),
            "markers": bool(markers), "softness": float(softness), "colorspace": WORKING_SPACE,
            "screen_color": [float(v) for v in _ap1(SCREEN_COLORS[screen])],
        }
        rng = scene_rng(self.seed, "camera")
        self._cam_phase = rng.uniform(0, 2 * math.pi, 8)
        self._subject = _Subject(self.width, self.height, self.seed, int(hair_strands))
        self._texture = None

    # -- frames ------------------------------------------------------------------------------

    # -- camera ------------------------------------------------------------------------------
    def _camera_at(self, s: float) -> np.ndarray:
        return camera_path(self.width, self.height, s, self._cam_phase, self.params["camera_move"])

    def camera(self, number: int) -> np.ndarray:
        """3x3 float64 homography: first-frame pixel coordinates → frame ``number`` pixel coordinates."""
        i = self._index(number)
        m0 = self._camera_at(0.0)
        m = self._camera_at(i / self.rate) @ np.linalg.inv(m0)
        return m / m[2, 2]

    def camera_step(self, number: int) -> np.ndarray:
        """3x3 homography from the previous frame's pixels to this frame's (identity for the first frame)."""
        i = self._index(number)
        if i == 0:
            return np.eye(3)
        m = self.camera(number) @ np.linalg.inv(self.camera(number - 1))
        return m / m[2, 2]

    @property
    def markers(self) -> list[list[float]]:
        """Tracking-marker centres on the screen, in first-frame pixel coordinates."""
        if not self.params["markers"]:
            return []
        return self._screen_texture()[2]

    def _screen_texture(self):
        if self._texture is None:
            self._texture = _render_screen_texture(self.width, self.height, self.seed, self.params["screen"],
                                                   self.params["markers"])
        return self._texture

    # -- generation --------------------------------------------------------------------------
    def frame(self, number: int) -> GreenscreenFrame:
        """Generate frame ``number`` (independent of any other frame)."""
        i = self._index(number)
        p = self.params
        s = i / self.rate
        m = self.camera(number)
        tex, (mx, my), _ = self._screen_texture()
        screen = cv2.warpPerspective(tex, m @ translation(-mx, -my), (self.width, self.height),
                                     flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
        fg, alpha, box = self._subject.render(s, m, rate=self.rate, motion_blur=p["motion_blur"],
                                              shutter=p["shutter"], softness=p["softness"])
        spill = np.zeros_like(fg)
        if p["spill"] > 0:
            x0, y0, x1, y1 = box
            sig = 0.02 * self.height
            pad = int(3 * sig) + 1
            X0, Y0 = max(0, x0 - pad), max(0, y0 - pad)
            X1, Y1 = min(self.width, x1 + pad), min(self.height, y1 + pad)
            near = blur(1.0 - alpha[Y0:Y1, X0:X1, 0], sig)
            near = np.clip(near * 1.6, 0.0, 1.0)
            weight = np.float32(p["spill"]) * alpha[Y0:Y1, X0:X1] * near[..., None]
            spill[Y0:Y1, X0:X1] = weight * screen[Y0:Y1, X0:X1]
        clean = fg + (1.0 - alpha) * screen
        clean += spill
        grain = _grain(clean, self.seed, number, p["grain"], self.height)
        plate = clean + grain
        return GreenscreenFrame(frame=number, plate=plate, alpha=alpha, fg=fg, screen=screen, spill=spill,
                                grain=grain, camera=m, rate=self.rate,
                                metadata={"seed": self.seed, "kind": "greenscreen"})

    def truth(self) -> dict[str, Any]:
        """JSON-serialisable truth: parameters, per-frame camera matrices and steps, marker positions."""
        frames = {}
        for f in self.frames:
            frames[str(f)] = {"camera": self.camera(f).tolist(), "camera_step": self.camera_step(f).tolist()}
        return {
            "schema": "composite.synth.truth/1",
            "params": dict(self.params),
            "camera_convention": "3x3 homography mapping first-frame pixel coordinates to this frame's pixel "
                                 "coordinates (pixel centres at integers, y down); camera_step maps the "
                                 "previous frame to this one",
            "composition": "plate = fg + (1 - alpha) * screen + spill + grain (scene-linear ACEScg, "
                           "fg premultiplied by alpha)",
            "markers": self.markers,
            "frames": frames,
        }


def _grain(clean: np.ndarray, seed: int, number: int, amount: float, height: int) -> np.ndarray:
    """Zero-mean film-like grain: soft-grained, partly shared across channels, stronger in blue and shadows
    (relative to signal), amplitude ~3% of the signal at 18% grey for ``amount`` 1."""
    if amount <= 0:
        return np.zeros_like(clean)
    h, w, _ = clean.shape
    rng = scene_rng(seed, "grain", number)
    n = rng.random((h, w, 3), dtype=np.float32)
    n -= np.float32(0.5)
    sigma = 0.6 * height / 1080.0
    k = cv2.getGaussianKernel(max(3, int(6 * sigma) | 1), sigma).astype(np.float32)
    k /= np.float32(math.sqrt(float((k ** 2).sum())))  # unit-variance output for unit-variance input
    n = cv2.sepFilter2D(n, -1, k, k, borderType=cv2.BORDER_REFLECT)
    # Partly shared across channels (dye layers overlap): add a share of the channel mean, renormalise.
    c = 0.6
    n += (n.sum(axis=2, keepdims=True) * np.float32(c / 3.0))
    n *= np.float32(math.sqrt(12.0) / math.sqrt((1 + c / 3.0) ** 2 + 2 * (c / 3.0) ** 2))
    level = np.maximum(clean, 0.0)
    amp = np.sqrt(level * np.float32(0.18)) * np.float32(0.03 * amount) + np.float32(0.0004 * amount)
    amp *= np.array([1.0, 0.85, 1.35], np.float32)
    return (n * amp).astype(np.float32)


def greenscreen_sequence(width: int, height: int, frames: int, *, seed: int = 0, screen: str = "green",
                         first_frame: int = 1001, rate: float = 24.0, camera_move: float = 1.0,
                         spill: float = 0.3, grain: float = 1.0, motion_blur: bool = True, shutter: float = 0.5,
                         hair_strands: int = 300, markers: bool = True, softness: float = 0.5) -> GreenscreenSequence:
    """A synthetic green- or blue-screen shot with ground truth, generated frame by frame on demand.

    Parameters
    ----------
    width, height : int
        Frame size in pixels; the scene is laid out relative to the height, so every size shows the same
        shot.
    frames : int
        Number of frames, numbered from ``first_frame``.
    seed : int
        Every random choice (hair, screen unevenness, camera shake phases, grain) follows from it.
    screen : {"green", "blue"}
    rate : float
        Frames per second (sets the speed of the camera, the sway and the raised arm).
    camera_move : float
        Camera movement scale in [0, 2]; 0 gives a locked-off camera (identity matrices).
    spill : float
        Fraction of the screen's light added to the subject at its silhouette (falls off inwards).
    grain : float
        Grain amount (1: about 3% of the signal at 18% grey); 0 disables it.
    motion_blur, shutter : bool, float
        Integrate the raised arm over the shutter (fraction of the frame interval, 0.5 = 180 degrees).
    hair_strands : int
        Number of long strands (plus a third as many finer flyaways).
    markers : bool
        Tracking crosses on the screen (positions in :attr:`GreenscreenSequence.markers`).
    softness : float
        Lens softness of the subject, Gaussian sigma in pixels at 1080 lines (scaled with the height).

    Returns
    -------
    GreenscreenSequence
        ``seq[i]`` / ``seq.frame(number)`` give :class:`GreenscreenFrame` values; ``seq.truth()`` the
        parameters and camera matrices as JSON-ready data.
    """
    return GreenscreenSequence(width, height, frames, seed=seed, screen=screen, first_frame=first_frame,
                               rate=rate, camera_move=camera_move, spill=spill, grain=grain,
                               motion_blur=motion_blur, shutter=shutter, hair_strands=hair_strands,
                               markers=markers, softness=softness)
