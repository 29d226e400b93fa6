"""CIELAB conversions and the CIEDE2000 colour difference, vectorised.

Colour maths used by the colour-matching tools:

* :func:`delta_e_2000` — CIEDE2000 (CIE 142-2001) following Sharma, Wu and Dalal, "The CIEDE2000
  colour-difference formula: implementation notes, supplementary test data, and mathematical
  observations", Color Research & Application 30(1), 2005. Broadcasts over any leading shape.
* :func:`xyz_to_lab` / :func:`lab_to_xyz` — CIELAB, extended to every real value: the cube-root
  branch above ``(6/29)^3`` and the linear branch below it (negative values included), so that
  scene-linear HDR data goes through and back without clipping.
* :func:`acescg_to_lab` / :func:`lab_to_acescg` — scene-linear ACEScg to CIELAB with the ACES white
  (1, 1, 1) mapped to L* = 100 (AP1 → CIE XYZ D65 with Bradford adaptation, the matrix of OCIO's
  built-in ``UTILITY - ACES-AP1_to_CIE-XYZ-D65_BFD``).
* :func:`display_lab` — the CIELAB a viewer sees on an sRGB/Rec.709 display, for ΔE reports:
  ``"srgb_clip"`` (ACEScg → linear Rec.709 primaries, Bradford-adapted, clipped to [0, 1], no tone
  mapping), ``"aces_sdr"`` (the ACES 2.0 SDR 100-nit Rec.709 view of OCIO's built-in ACES studio
  config, via :mod:`composite.color.ocio`) or ``"none"`` (CIELAB of the scene-linear values,
  unclipped).
* :func:`srgb_to_acescg` / :func:`acescg_to_srgb` — the sRGB transfer function (IEC 61966-2-1)
  with Rec.709 primaries, for 8-bit display-referred pictures.

Example
-------
>>> import numpy as np
>>> from composite.color.delta_e import delta_e_2000
>>> round(float(delta_e_2000(np.array([50.0, 2.6772, -79.7751]), np.array([50.0, 0.0, -82.7485]))), 4)
2.0425
"""

from __future__ import annotations

import cv2
import numpy as np

from ..core.errors import InputError
from ..core.state import AP1_LUMINANCE

#: ACEScg (AP1, ACES white) → CIE XYZ with a D65 white, Bradford adaptation (OCIO's built-in
#: ``UTILITY - ACES-AP1_to_CIE-XYZ-D65_BFD``).
AP1_TO_XYZ_D65 = np.array([
    [0.6522375418862875, 0.1282361359997117, 0.1699822491656708],
    [0.2676721801253363, 0.6743399888015512, 0.05798783107311251],
    [-0.005381815766387645, 0.001369060209095833, 1.0930705063171717],
])
XYZ_D65_TO_AP1 = np.linalg.inv(AP1_TO_XYZ_D65)

#: ACEScg → linear Rec.709/sRGB primaries with Bradford adaptation (OCIO's built-in
#: ``UTILITY - ACES-AP1_to_LINEAR-REC709_BFD``).
AP1_TO_REC709 = np.array([
    [1.7050509926579833, -0.6217921206570055, -0.08325887200097848],
    [-0.13025641750704378, 1.1408047365754022, -0.010548319068358056],
    [-0.02400335680461801, -0.12896897606497063, 1.152972332869589],
])
REC709_TO_AP1 = np.linalg.inv(AP1_TO_REC709)

#: Linear Rec.709/sRGB primaries (D65) → CIE XYZ (IEC 61966-2-1).
REC709_TO_XYZ_D65 = np.array([
    [0.4123907992659595, 0.35758433938387796, 0.1804807884018343],
    [0.21263900587151036, 0.7151686787677559, 0.07219231536073371],
    [0.01933081871559185, 0.11919477979462599, 0.9505321522496606],
])

#: CIE XYZ of the D65 white with Y = 1 (the white of the matrices above).
D65_WHITE_XYZ = REC709_TO_XYZ_D65.sum(axis=1)

#: Luminance weights of ACEScg (the Y row of AP1 → XYZ at the ACES white; TB-2014-004).
AP1_LUMA = np.array(AP1_LUMINANCE)

#: Rec.709 luma weights (used by the ASC CDL saturation operator).
REC709_LUMA = np.array([0.2126, 0.7152, 0.0722])

DISPLAYS = ("srgb_clip", "aces_sdr", "none")

_EPS = (6.0 / 29.0) ** 3
_KAPPA = 3.0 * (6.0 / 29.0) ** 2


def _as_triplets(x, what: str, *, keep_float32: bool = False) -> np.ndarray:
    arr = np.asarray(x)
    if not (keep_float32 and arr.dtype == np.float32):
        arr = arr.astype(np.float64, copy=False)
    if arr.shape[-1:] != (3,):
        raise InputError(f"{what}: expected (..., 3) values, got shape {arr.shape}")
    return arr


def mat3(x: np.ndarray, m: np.ndarray) -> np.ndarray:
    """``x @ m.T`` for ``(..., 3)`` float32/float64 colour and a 3x3 matrix, in x's dtype.

    Uses OpenCV's ``transform`` (vectorised and threaded), far faster than NumPy's matmul for a long
    array of 3-vectors.
    """
    x = np.asarray(x)
    if x.dtype not in (np.float32, np.float64):
        x = x.astype(np.float64)
    flat = np.ascontiguousarray(x.reshape(-1, 1, 3))
    if flat.shape[0] == 0:
        return np.empty(x.shape, x.dtype)
    return cv2.transform(flat, np.asarray(m, x.dtype)).reshape(x.shape)


def _lab_f(t: np.ndarray) -> np.ndarray:
    return np.where(t > _EPS, np.cbrt(t), t / _KAPPA + 4.0 / 29.0)


def _lab_finv(f: np.ndarray) -> np.ndarray:
    f = np.clip(f, -1e12, 1e12)  # |XYZ| up to 1e36: keeps float32 finite
    return np.where(f > 6.0 / 29.0, f * f * f, _KAPPA * (f - 4.0 / 29.0))


def xyz_to_lab(xyz, *, white=D65_WHITE_XYZ) -> np.ndarray:
    """CIE XYZ → CIELAB (float64), relative to ``white`` (XYZ of the reference white, Y = 1 scale).

    Defined for every real value: the linear branch continues below zero, the cube root above one,
    so HDR and negative values round-trip through :func:`lab_to_xyz`.
    """
    xyz = _as_triplets(xyz, "xyz_to_lab", keep_float32=True)
    f = _lab_f(xyz / np.asarray(white, xyz.dtype))
    lab = np.empty_like(f)
    lab[..., 0] = 116.0 * f[..., 1] - 16.0
    lab[..., 1] = 500.0 * (f[..., 0] - f[..., 1])
    lab[..., 2] = 200.0 * (f[..., 1] - f[..., 2])
    return lab


def lab_to_xyz(lab, *, white=D65_WHITE_XYZ) -> np.ndarray:
    """CIELAB → CIE XYZ (float64); the exact inverse of :func:`xyz_to_lab`."""
    lab = _as_triplets(lab, "lab_to_xyz", keep_float32=True)
    fy = (lab[..., 0] + 16.0) / 116.0
    f = np.stack([fy + lab[..., 1] / 500.0, fy, fy - lab[..., 2] / 200.0], axis=-1)
    return _lab_finv(f) * np.asarray(white, lab.dtype)


def acescg_to_lab(rgb) -> np.ndarray:
    """Scene-linear ACEScg ``(..., 3)`` → CIELAB; ACES white (1, 1, 1) → (100, 0, 0).

    No clipping: values above 1 give L* above 100, negative values go through the linear branch.
    float32 input is computed in float32, anything else in float64.
    """
    rgb = _as_triplets(rgb, "acescg_to_lab", keep_float32=True)
    return xyz_to_lab(mat3(rgb, AP1_TO_XYZ_D65))


def lab_to_acescg(lab) -> np.ndarray:
    """CIELAB → scene-linear ACEScg; the exact inverse of :func:`acescg_to_lab` (float32 stays float32)."""
    return mat3(lab_to_xyz(lab), XYZ_D65_TO_AP1)


def srgb_eotf(v) -> np.ndarray:
    """sRGB-encoded values → linear light (IEC 61966-2-1 piecewise curve; negatives mirrored)."""
    v = np.asarray(v, dtype=np.float64)
    a = np.abs(v)
    lin = np.where(a <= 0.04045, a / 12.92, ((a + 0.055) / 1.055) ** 2.4)
    return np.copysign(lin, v)


def srgb_oetf(lin) -> np.ndarray:
    """Linear light → sRGB-encoded values (inverse of :func:`srgb_eotf`; negatives mirrored)."""
    lin = np.asarray(lin, dtype=np.float64)
    a = np.abs(lin)
    v = np.where(a <= 0.0031308, a * 12.92, 1.055 * np.power(a, 1.0 / 2.4) - 0.055)
    return np.copysign(v, lin)


def srgb_to_acescg(srgb) -> np.ndarray:
    """sRGB-encoded ``(..., 3)`` values in [0, 1] (8-bit pictures divided by 255) → scene-linear ACEScg float32."""
    srgb = _as_triplets(srgb, "srgb_to_acescg")
    return mat3(srgb_eotf(srgb), REC709_TO_AP1).astype(np.float32)


def acescg_to_srgb(rgb, *, clip: bool = True) -> np.ndarray:
    """Scene-linear ACEScg → sRGB-encoded float32 (no tone mapping); clipped to [0, 1] unless ``clip=False``."""
    rgb = _as_triplets(rgb, "acescg_to_srgb")
    lin = mat3(rgb, AP1_TO_REC709)
    if clip:
        lin = np.clip(lin, 0.0, 1.0)
    return srgb_oetf(lin).astype(np.float32)


def srgb_to_lab(srgb) -> np.ndarray:
    """sRGB-encoded values in [0, 1] → CIELAB D65 (float64)."""
    srgb = _as_triplets(srgb, "srgb_to_lab")
    return xyz_to_lab(mat3(srgb_eotf(srgb), REC709_TO_XYZ_D65))


def display_lab(rgb, *, display: str = "srgb_clip") -> np.ndarray:
    """CIELAB (float64) of scene-linear ACEScg ``(..., 3)`` colour as shown on a display.

    Parameters
    ----------
    rgb : array_like
        ``(..., 3)`` scene-linear ACEScg colour (straight, i.e. not premultiplied).
    display : {"srgb_clip", "aces_sdr", "none"}
        ``"srgb_clip"``: linear Rec.709 primaries (Bradford-adapted from the ACES white to D65), clipped
        to [0, 1] — what an sRGB monitor shows without a tone curve. ``"aces_sdr"``: the ACES 2.0
        SDR 100-nit Rec.709 view of OCIO's built-in ACES studio config (tone-mapped), decoded with the
        sRGB curve. ``"none"``: CIELAB of the scene-linear values themselves (unclipped, ACES white
        → L* = 100).
    """
    rgb = _as_triplets(rgb, "display_lab")
    if display == "srgb_clip":
        lin = np.clip(mat3(rgb, AP1_TO_REC709), 0.0, 1.0)
        return xyz_to_lab(mat3(lin, REC709_TO_XYZ_D65))
    if display == "aces_sdr":
        from .ocio import to_display

        shape = rgb.shape
        flat = np.ascontiguousarray(rgb.reshape(-1, 3), dtype=np.float32)
        shown = to_display(flat.reshape(-1, 1, 3), "ACEScg", display="sRGB - Display",
                           view="ACES 2.0 - SDR 100 nits (Rec.709)").reshape(shape)
        return srgb_to_lab(np.clip(shown, 0.0, 1.0))
    if display == "none":
        return acescg_to_lab(rgb)
    raise InputError(f"unknown display {display!r}; allowed: {', '.join(DISPLAYS)}")


def delta_e_2000(lab1, lab2, *, kL: float = 1.0, kC: float = 1.0, kH: float = 1.0) -> np.ndarray:
    """CIEDE2000 colour difference between CIELAB colours.

    Parameters
    ----------
    lab1, lab2 : array_like
        ``(..., 3)`` CIELAB values (L*, a*, b*); broadcast against each other.
    kL, kC, kH : float
        Parametric weighting factors (1 for the reference conditions).

    Returns
    -------
    np.ndarray
        ``(...)`` float64 ΔE00, symmetric in its arguments.

    Notes
    -----
    Follows the implementation notes of Sharma, Wu and Dalal (2005), including their conventions for
    zero chroma (hue 0, hue difference 0, mean hue the sum of hues) and the hue-angle wrap.
    """
    lab1 = _as_triplets(lab1, "delta_e_2000")
    lab2 = _as_triplets(lab2, "delta_e_2000")
    L1, a1, b1 = lab1[..., 0], lab1[..., 1], lab1[..., 2]
    L2, a2, b2 = lab2[..., 0], lab2[..., 1], lab2[..., 2]
    c_bar = 0.5 * (np.hypot(a1, b1) + np.hypot(a2, b2))
    c7 = c_bar ** 7
    g = 0.5 * (1.0 - np.sqrt(c7 / (c7 + 25.0 ** 7)))
    a1p, a2p = (1.0 + g) * a1, (1.0 + g) * a2
    c1p, c2p = np.hypot(a1p, b1), np.hypot(a2p, b2)
    h1p = np.degrees(np.arctan2(b1, a1p)) % 360.0
    h2p = np.degrees(np.arctan2(b2, a2p)) % 360.0
    h1p = np.where((a1p == 0) & (b1 == 0), 0.0, h1p)
    h2p = np.where((a2p == 0) & (b2 == 0), 0.0, h2p)

    dLp = L2 - L1
    dCp = c2p - c1p
    cc = c1p * c2p
    dh = h2p - h1p
    dhp = np.where(dh > 180.0, dh - 360.0, np.where(dh < -180.0, dh + 360.0, dh))
    dhp = np.where(cc == 0, 0.0, dhp)
    dHp = 2.0 * np.sqrt(cc) * np.sin(np.radians(dhp) / 2.0)

    Lp_bar = 0.5 * (L1 + L2)
    Cp_bar = 0.5 * (c1p + c2p)
    hsum = h1p + h2p
    hp_bar = np.where(np.abs(h1p - h2p) <= 180.0, 0.5 * hsum,
                      np.where(hsum < 360.0, 0.5 * (hsum + 360.0), 0.5 * (hsum - 360.0)))
    hp_bar = np.where(cc == 0, hsum, hp_bar)

    hr = np.radians(hp_bar)
    t = (1.0 - 0.17 * np.cos(hr - np.radians(30.0)) + 0.24 * np.cos(2.0 * hr)
         + 0.32 * np.cos(3.0 * hr + np.radians(6.0)) - 0.20 * np.cos(4.0 * hr - np.radians(63.0)))
    d_theta = 30.0 * np.exp(-(((hp_bar - 275.0) / 25.0) ** 2))
    cp7 = Cp_bar ** 7
    rc = 2.0 * np.sqrt(cp7 / (cp7 + 25.0 ** 7))
    lm = (Lp_bar - 50.0) ** 2
    sl = 1.0 + 0.015 * lm / np.sqrt(20.0 + lm)
    sc = 1.0 + 0.045 * Cp_bar
    sh = 1.0 + 0.015 * Cp_bar * t
    rt = -np.sin(np.radians(2.0 * d_theta)) * rc
    tl, tc, th = dLp / (kL * sl), dCp / (kC * sc), dHp / (kH * sh)
    return np.sqrt(np.maximum(tl * tl + tc * tc + th * th + rt * tc * th, 0.0))


def summarize(values, *, weights=None) -> dict[str, float]:
    """Mean, median and 95th percentile of ΔE values (optionally weighted), as plain floats."""
    v = np.asarray(values, np.float64).ravel()
    if weights is None:
        if v.size == 0:
            raise InputError("no ΔE values to summarise (empty region)")
        return {"mean": float(v.mean()), "median": float(np.median(v)),
                "p95": float(np.percentile(v, 95)), "max": float(v.max())}
    w = np.asarray(weights, np.float64).ravel()
    keep = w > 0
    v, w = v[keep], w[keep]
    if v.size == 0:
        raise InputError("no ΔE values to summarise (the weights are zero everywhere)")
    order = np.argsort(v)
    v, w = v[order], w[order]
    cdf = (np.cumsum(w) - 0.5 * w) / w.sum()
    return {"mean": float(np.average(v, weights=w)), "median": float(np.interp(0.5, cdf, v)),
            "p95": float(np.interp(0.95, cdf, v)), "max": float(v.max())}


def image_delta_e(a, b, *, display: str = "srgb_clip", weights=None,
                  max_samples: int | None = 1 << 20) -> dict[str, float]:
    """Per-pixel ΔE2000 statistics between two aligned scene-linear ACEScg images of the same content.

    ``a``, ``b``: ``(H, W, 3)`` straight (or opaque) ACEScg colour; ``weights``: optional ``(H, W)``;
    at most ``max_samples`` pixels (every k-th) are compared. Returns ``{"mean", "median", "p95", "max",
    "display"}``.
    """
    a = _as_triplets(a, "image_delta_e", keep_float32=True)
    b = _as_triplets(b, "image_delta_e", keep_float32=True)
    if a.shape != b.shape:
        raise InputError(f"image_delta_e: images are {a.shape} and {b.shape}; they must be aligned")
    a, b = a.reshape(-1, 3), b.reshape(-1, 3)
    w = None if weights is None else np.asarray(weights, np.float64).reshape(-1)
    if w is not None and w.shape[0] != a.shape[0]:
        raise InputError(f"image_delta_e: {w.shape[0]} weights for {a.shape[0]} pixels")
    step = max(1, -(-a.shape[0] // max_samples)) if max_samples else 1
    if step > 1:
        a, b = a[::step], b[::step]
        w = None if w is None else w[::step]
    de = delta_e_2000(display_lab(a, display=display), display_lab(b, display=display))
    out: dict = summarize(de, weights=w)
    out["display"] = display
    return out
