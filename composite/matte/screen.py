"""Screen colour estimation and clean screen plates.

A keyer compares each pixel with the colour of the screen behind it. With an even screen one colour is
enough (:func:`estimate_screen_color`); real screens are lit unevenly, so the keyers can compare against a
*clean screen plate* instead: an image of the screen alone, built from the plate by taking the pixels that
are clearly screen and filling the foreground region from the surrounding screen
(:func:`estimate_clean_plate`, a push–pull masked diffusion at low resolution, which yields a smooth plate
that follows the screen's gradients and hot spots but not its grain).

All colour arrays are ``(H, W, 3)`` float32, scene-linear (the working space, ACEScg), without alpha.

Example
-------
>>> import numpy as np
>>> from composite.matte.screen import estimate_screen_color
>>> plate = np.zeros((32, 32, 3), np.float32); plate[...] = (0.05, 0.4, 0.08)
>>> plate[8:24, 8:24] = (0.3, 0.25, 0.2)          # a foreground square
>>> [round(float(c), 3) for c in estimate_screen_color(plate)]
[0.05, 0.4, 0.08]
"""

from __future__ import annotations

import cv2
import numpy as np

from ..core.errors import InputError, StateError
from .ops import fill_from_weights

SCREENS = ("green", "blue")
_PRIMARY = {"green": 1, "blue": 2}
_OTHERS = {"green": (0, 2), "blue": (0, 1)}

#: Smallest share of the frame that must look like screen for automatic estimation.
MIN_SCREEN_FRACTION = 0.002


def check_rgb(rgb: np.ndarray, what: str = "plate") -> np.ndarray:
    """Return the first three planes of an ``(H, W, >=3)`` float32 array, or raise a clear error."""
    if not isinstance(rgb, np.ndarray):
        raise InputError(f"{what}: expected a NumPy array, got {type(rgb).__name__}")
    if rgb.ndim != 3 or rgb.shape[2] < 3:
        raise InputError(f"{what}: expected an (H, W, 3) RGB array, got shape {rgb.shape}")
    if rgb.dtype != np.float32:
        raise StateError(f"{what}: pixels must be float32, got {rgb.dtype}; convert explicitly")
    if rgb.shape[0] == 0 or rgb.shape[1] == 0:
        raise InputError(f"{what}: the image is empty ({rgb.shape[1]}x{rgb.shape[0]})")
    return rgb[..., :3]


def check_screen(screen: str) -> str:
    if screen not in SCREENS:
        raise InputError(f"unknown screen {screen!r}; allowed: {', '.join(SCREENS)}")
    return screen


def screen_channels(screen: str) -> tuple[int, int, int]:
    """(primary, first other, second other) channel indices: green → (1, 0, 2), blue → (2, 0, 1)."""
    check_screen(screen)
    o1, o2 = _OTHERS[screen]
    return _PRIMARY[screen], o1, o2


def _subsample(rgb: np.ndarray, target: int = 25_000) -> np.ndarray:
    h, w = rgb.shape[:2]
    step = max(1, int(np.sqrt(h * w / target)))
    return rgb[::step, ::step].reshape(-1, 3)


def screen_excess(rgb: np.ndarray, *, screen: str = "green") -> np.ndarray:
    """Primary channel minus the larger of the other two: ``G - max(R, B)`` for green. ``(...)`` float32."""
    p, o1, o2 = screen_channels(screen)
    return rgb[..., p] - np.maximum(rgb[..., o1], rgb[..., o2])


def estimate_screen_color(rgb: np.ndarray, *, screen: str = "green",
                          min_fraction: float = MIN_SCREEN_FRACTION) -> np.ndarray:
    """Estimate the screen colour of a plate.

    Pixels where the screen primary clearly dominates (``G - max(R, B)`` above 35 % of ``G``) are screen
    candidates; the purest half of them (by that excess) gives the per-channel median.

    Parameters
    ----------
    rgb : (H, W, 3) float32, scene-linear working space, no alpha
    screen : {"green", "blue"}
    min_fraction : float
        Smallest share of the frame that must look like screen.

    Returns
    -------
    (3,) float32 linear RGB.

    Raises
    ------
    InputError
        When less than ``min_fraction`` of the plate looks like a ``screen`` screen (no visible screen,
        or the wrong screen colour chosen); the message says what to do.
    """
    rgb = check_rgb(rgb)
    px = _subsample(rgb)
    px = px[np.isfinite(px).all(axis=1)]
    p, o1, o2 = screen_channels(screen)
    excess = px[:, p] - np.maximum(px[:, o1], px[:, o2])
    cand = (excess > 0.35 * np.abs(px[:, p])) & (excess > 1e-4)
    frac = float(cand.mean()) if px.size else 0.0
    if frac < min_fraction:
        raise InputError(
            f"no visible {screen} screen: only {frac:.2%} of the plate looks like {screen} screen "
            f"(need {min_fraction:.2%}); check the screen setting ('green' or 'blue'), give screen_color "
            "explicitly, or key a frame where the screen is visible")
    ex = excess[cand]
    sel = px[cand][ex >= np.median(ex)]
    return np.median(sel, axis=0).astype(np.float32)


def screen_difference(rgb: np.ndarray, *, screen: str = "green", weights: tuple[float, float] = (0.5, 0.5),
                      balance: float = 0.0) -> np.ndarray:
    """Colour difference ``primary - secondary`` (the screen "saturation" a keyer measures).

    ``secondary = (1 - balance) * (w1 * o1 + w2 * o2) + balance * max(o1, o2)`` where o1, o2 are the two
    other channels (red and blue for green screens, red and green for blue screens) and ``weights`` their
    weights. Works on any ``(..., 3)`` float32 array; returns ``(...)``.
    """
    p, o1, o2 = screen_channels(screen)
    a = rgb[..., o1]
    b = rgb[..., o2]
    w1, w2 = np.float32(weights[0]), np.float32(weights[1])
    sec = w1 * a + w2 * b
    if balance:
        bal = np.float32(balance)
        sec *= (1 - bal)
        sec += bal * np.maximum(a, b)
    return rgb[..., p] - sec


def estimate_screen_mask(rgb: np.ndarray, screen_color: np.ndarray, *, screen: str = "green",
                         tolerance: float = 0.75, shrink: int = 3) -> np.ndarray:
    """Boolean ``(H, W)`` mask of pixels that are certainly screen.

    A pixel is screen when its screen excess relative to its brightness is at least ``tolerance`` times
    the screen colour's (a chromaticity test that accepts darker and brighter parts of an uneven screen)
    and it is not much darker than 15 % of the screen. The mask is then shrunk by ``shrink`` pixels so
    that soft edges (hair, motion blur) are not taken as screen.
    """
    rgb = check_rgb(rgb)
    s = np.asarray(screen_color, np.float32).reshape(3)
    p, _, _ = screen_channels(screen)
    ex = screen_excess(rgb, screen=screen)
    s_ex = float(screen_excess(s[None, :], screen=screen)[0])
    if s_ex <= 0:
        raise InputError(f"screen colour {s.tolist()} is not a {screen} screen colour "
                         f"(its {screen} does not exceed the other channels)")
    s_ratio = s_ex / max(float(s[p]), 1e-6)
    ratio = ex / np.maximum(rgb[..., p], np.float32(1e-6))
    mask = (ratio >= tolerance * s_ratio) & (ex >= 0.15 * s_ex)
    if shrink > 0:
        k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * shrink + 1, 2 * shrink + 1))
        mask = cv2.erode(mask.astype(np.uint8), k, borderType=cv2.BORDER_REPLICATE).astype(bool)
    return mask


def estimate_clean_plate(rgb: np.ndarray, *, screen: str = "green", screen_color: np.ndarray | None = None,
                         mask: np.ndarray | None = None, resolution: int = 160,
                         tolerance: float = 0.75, shrink: int = 3, full_size: bool = True) -> np.ndarray:
    """Build a clean screen plate: the screen as it would look without the foreground.

    The pixels that are certainly screen (:func:`estimate_screen_mask` on an area-averaged copy four times
    finer than the coarse grid, or ``mask`` when given) are averaged down to about ``resolution`` pixels on the long side, the foreground region is filled from the
    surrounding screen by push–pull diffusion (:func:`composite.matte.ops.fill_from_weights`), lightly
    smoothed and scaled back up. The result follows gradients and hot spots larger than a few percent of
    the frame and carries no grain.

    Parameters
    ----------
    rgb : (H, W, 3) float32, scene-linear working space
    screen : {"green", "blue"}
    screen_color : (3,) float32, optional
        Estimated with :func:`estimate_screen_color` when not given.
    mask : (H, W) bool or float32, optional
        Pixels known to be screen (1) — e.g. from a previous key or a garbage matte.
    resolution : int
        Long side, in pixels, of the grid the plate is built on.
    full_size : bool
        False returns the plate on that grid (scale it up with bilinear interpolation to use it).

    Returns
    -------
    (H, W, 3) float32, same colour space. When no pixel is screen, the constant screen colour.
    """
    rgb = check_rgb(rgb)
    h, w = rgb.shape[:2]
    if screen_color is None:
        screen_color = estimate_screen_color(rgb, screen=screen)
    s = np.asarray(screen_color, np.float32).reshape(3)
    scale = min(1.0, float(resolution) / max(h, w))
    lw, lh = max(1, round(w * scale)), max(1, round(h * scale))
    src = rgb
    if mask is None:
        # The mask only feeds an average down to the coarse grid: find it on a grid four times finer
        # than that (area-averaged, so grain is quieter and mixed edge pixels still fail the test).
        work = 4.0 * max(lw, lh) / max(h, w)
        if work < 0.67:
            src = cv2.resize(np.ascontiguousarray(rgb), (max(1, round(w * work)), max(1, round(h * work))),
                             interpolation=cv2.INTER_AREA)
            shrink = max(1, round(shrink * work)) if shrink > 0 else 0
        m = estimate_screen_mask(src, s, screen=screen, tolerance=tolerance, shrink=shrink).astype(np.float32)
    else:
        m = np.asarray(mask).astype(np.float32)
        if m.shape != (h, w):
            raise InputError(f"clean plate mask is {m.shape[::-1]} but the plate is {w}x{h}")
    if float(m.sum()) < 1:
        out = np.empty((h, w, 3) if full_size else (lh, lw, 3), np.float32)
        out[...] = s
        return out
    vals = np.ascontiguousarray(src * m[..., None])
    small_v = cv2.resize(vals, (lw, lh), interpolation=cv2.INTER_AREA)
    small_m = cv2.resize(m, (lw, lh), interpolation=cv2.INTER_AREA)
    own = small_v / np.maximum(small_m, 1e-6)[..., None]
    # Cells mostly covered by screen keep their average; the rest is diffused in from the surroundings.
    weight = np.clip((small_m - 0.25) / 0.5, 0, 1).astype(np.float32)
    filled = fill_from_weights(own.astype(np.float32), weight)
    filled = cv2.GaussianBlur(filled, (0, 0), 1.0, borderType=cv2.BORDER_REPLICATE)
    if full_size and (lw, lh) != (w, h):
        filled = cv2.resize(filled, (w, h), interpolation=cv2.INTER_LINEAR)
    return filled.astype(np.float32)
