"""ASC CDL: apply, fit, write (.cdl, .cc, .ccc) and apply CDL files through OpenColorIO.

The ASC Color Decision List (v1.2) per channel::

    out = (in * slope + offset) ** power          (SOP)
    out = luma + saturation * (out - luma)         (SAT, luma with Rec.709 weights 0.2126, 0.7152, 0.0722)

Two styles, as OpenColorIO's ``CDLTransform``:

``no_clamp`` (OCIO's default, ``CDL_NO_CLAMP``)
    No clamping; the power applies only where ``in * slope + offset`` is positive, negative values pass
    linearly. HDR values survive.
``asc`` (``CDL_ASC``, the v1.2 specification)
    ``in * slope + offset`` is clamped to [0, 1] before the power and the result after saturation is
    clamped to [0, 1].

``encoding`` says what values the CDL sees: ``"linear"`` (the scene-linear working space as it is) or
``"acescct"`` (ACEScct, the log encoding ACES pipelines exchange CDLs in: working-space colour is
encoded with the ACEScct curve, graded, and decoded). The .cc/.ccc/.cdl files themselves do not record
this; keep the convention with whoever reads them.

A match made here reaches Nuke (OCIOCDLTransform / OCIOFileTransform) or Resolve as a .cc/.ccc/.cdl
file: :func:`fit_cdl` finds the CDL that best reproduces a match (least squares), :func:`write_cdl_file`
writes it, and OpenColorIO reads it back (:func:`read_cdl_file`, :func:`apply_cdl_file`).

Example
-------
>>> import numpy as np
>>> from composite.color.cdl import CDL, apply_cdl
>>> cdl = CDL(slope=(1.1, 1.0, 0.9), offset=(0.01, 0.0, -0.01), power=(1.0, 1.0, 1.2), saturation=0.9)
>>> [round(float(v), 4) for v in apply_cdl(np.full((1, 1, 3), 0.18, np.float32), cdl)[0, 0]]
[0.2052, 0.18, 0.1119]
"""

from __future__ import annotations

import functools
import hashlib
import os
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..core.errors import InputError
from ..io.atomic import write_text_atomic
from .delta_e import REC709_LUMA
from .transfer import (
    _check_finite,
    _check_pixels,
    _check_weights,
    acescct_decode,
    acescct_encode,
    apply_unpremultiplied,
    straight_colour,
)

STYLES = ("no_clamp", "asc")
ENCODINGS = ("linear", "acescct")
FILE_FORMATS = (".cdl", ".cc", ".ccc")
ASC_NAMESPACE = "urn:ASC:CDL:v1.01"
_F32_MAX = float(np.finfo(np.float32).max)


def _triplet(value: Any, name: str) -> tuple[float, float, float]:
    arr = np.asarray(value, np.float64)
    if arr.ndim == 0:
        arr = np.repeat(arr, 3)
    if arr.shape != (3,) or not np.all(np.isfinite(arr)):
        raise InputError(f"CDL {name}: expected 3 finite numbers (R, G, B), got {value!r}")
    return tuple(float(v) for v in arr)


@dataclass(frozen=True)
class CDL:
    """One ASC colour correction: slope, offset, power (per channel), saturation, an id and a description."""

    slope: tuple[float, float, float] = (1.0, 1.0, 1.0)
    offset: tuple[float, float, float] = (0.0, 0.0, 0.0)
    power: tuple[float, float, float] = (1.0, 1.0, 1.0)
    saturation: float = 1.0
    id: str = ""
    description: str = ""

    def __post_init__(self):
        object.__setattr__(self, "slope", _triplet(self.slope, "slope"))
        object.__setattr__(self, "offset", _triplet(self.offset, "offset"))
        object.__setattr__(self, "power", _triplet(self.power, "power"))
        if min(self.slope) < 0:
            raise InputError(f"CDL slope must be >= 0 (ASC CDL v1.2), got {self.slope}")
        if min(self.power) <= 0:
            raise InputError(f"CDL power must be > 0 (ASC CDL v1.2), got {self.power}")
        sat = float(self.saturation)
        if not np.isfinite(sat) or sat < 0:
            raise InputError(f"CDL saturation must be a finite number >= 0, got {self.saturation!r}")
        object.__setattr__(self, "saturation", sat)
        object.__setattr__(self, "id", str(self.id))
        object.__setattr__(self, "description", str(self.description))

    @property
    def is_identity(self) -> bool:
        return (self.slope == (1.0, 1.0, 1.0) and self.offset == (0.0, 0.0, 0.0)
                and self.power == (1.0, 1.0, 1.0) and self.saturation == 1.0)

    def to_dict(self) -> dict[str, Any]:
        return {"slope": list(self.slope), "offset": list(self.offset), "power": list(self.power),
                "saturation": self.saturation, "id": self.id, "description": self.description}

    @classmethod
    def from_ocio(cls, t) -> CDL:
        """From a ``PyOpenColorIO.CDLTransform``."""
        return cls(tuple(t.getSlope()), tuple(t.getOffset()), tuple(t.getPower()), t.getSat(), t.getID(),
                   t.getFirstSOPDescription() or "")

    def to_ocio(self, *, style: str = "no_clamp"):
        """A ``PyOpenColorIO.CDLTransform`` with these values and ``style``."""
        import PyOpenColorIO as ocio

        t = ocio.CDLTransform()
        t.setSlope(list(self.slope))
        t.setOffset(list(self.offset))
        t.setPower(list(self.power))
        t.setSat(self.saturation)
        t.setStyle(_ocio_style(style))
        if self.id:
            t.setID(self.id)
        if self.description:
            t.setFirstSOPDescription(self.description)
        return t


def _ocio_style(style: str):
    import PyOpenColorIO as ocio

    if style == "no_clamp":
        return ocio.CDL_NO_CLAMP
    if style == "asc":
        return ocio.CDL_ASC
    raise InputError(f"unknown CDL style {style!r}; allowed: {', '.join(STYLES)}")


def _check_choice(value: str, allowed: Sequence[str], what: str) -> None:
    if value not in allowed:
        raise InputError(f"unknown {what} {value!r}; allowed: {', '.join(allowed)}")


# -- NumPy implementation -----------------------------------------------------------------------------
def cdl_values(x: np.ndarray, slope, offset, power, saturation, *, style: str = "no_clamp") -> np.ndarray:
    """Apply SOP + saturation to ``(..., 3)`` values (float32 stays float32, else float64); the CDL maths alone."""
    dt = x.dtype if x.dtype in (np.float32, np.float64) else np.dtype(np.float64)
    x = np.asarray(x, dt)
    y = x * np.asarray(slope, dt) + np.asarray(offset, dt)
    power = np.asarray(power, dt)
    if style == "asc":
        y = np.clip(y, 0.0, 1.0)
        y = np.power(y, power)
    elif style == "no_clamp":
        pos = y > 0
        y = np.where(pos, np.power(np.where(pos, y, dt.type(1.0)), power), y)
    else:
        _check_choice(style, STYLES, "CDL style")
    if saturation != 1.0:
        l0, l1, l2 = (float(v) for v in REC709_LUMA)  # Python floats keep float32 in float32
        luma = (y[..., 0] * l0 + y[..., 1] * l1 + y[..., 2] * l2)[..., None]
        y = luma + dt.type(saturation) * (y - luma)
    if style == "asc":
        y = np.clip(y, 0.0, 1.0)
    return y


def _encode(rgb: np.ndarray, encoding: str) -> np.ndarray:
    _check_choice(encoding, ENCODINGS, "CDL encoding")
    if encoding == "acescct":
        return acescct_encode(rgb)
    rgb = np.asarray(rgb)
    return rgb if rgb.dtype in (np.float32, np.float64) else rgb.astype(np.float64)


def _decode(values: np.ndarray, encoding: str) -> np.ndarray:
    return acescct_decode(values) if encoding == "acescct" else values


def _apply_straight_numpy(rgb: np.ndarray, cdl: CDL, style: str, encoding: str) -> np.ndarray:
    if rgb.size and float(np.abs(rgb).max()) > 1e30:  # float32 could overflow on the way
        rgb = rgb.astype(np.float64)
    y = _decode(cdl_values(_encode(rgb, encoding), cdl.slope, cdl.offset, cdl.power, cdl.saturation,
                           style=style), encoding)
    np.clip(y, -_F32_MAX, _F32_MAX, out=y)
    return y.astype(np.float32)


def _apply_premultiplied(pixels: np.ndarray, fn) -> np.ndarray:
    return apply_unpremultiplied(pixels, lambda rgb: fn(np.ascontiguousarray(rgb)))


def apply_cdl(pixels: np.ndarray, cdl: CDL, *, style: str = "no_clamp", encoding: str = "linear") -> np.ndarray:
    """Apply an ASC CDL with NumPy.

    Parameters
    ----------
    pixels : np.ndarray
        ``(H, W, 3)`` or premultiplied ``(H, W, 4)`` float32 scene-linear (ACEScg) pixels; colour is
        graded unpremultiplied where alpha > 0 and premultiplied again, alpha-0 pixels are unchanged.
    cdl : CDL
    style : {"no_clamp", "asc"}
        As OCIO's ``CDL_NO_CLAMP`` (default) and ``CDL_ASC``.
    encoding : {"linear", "acescct"}
        Values the CDL operates on (module docstring).

    Returns
    -------
    np.ndarray
        float32, same shape and alpha state.
    """
    _check_choice(style, STYLES, "CDL style")
    _check_choice(encoding, ENCODINGS, "CDL encoding")
    pixels = _check_pixels(pixels, "CDL input")
    _check_finite(pixels, "CDL input")
    if cdl.is_identity and style == "no_clamp":
        return pixels.copy()
    return _apply_premultiplied(pixels, lambda rgb: _apply_straight_numpy(rgb, cdl, style, encoding))


# -- fitting ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class CDLFit:
    """Result of :func:`fit_cdl`: the CDL, the RMS residual in the fit's encoding, and sample count."""

    cdl: CDL
    rms: float
    samples: int
    encoding: str
    style: str

    def to_dict(self) -> dict[str, Any]:
        return {"cdl": self.cdl.to_dict(), "rms": self.rms, "samples": self.samples,
                "encoding": self.encoding, "style": self.style}


def _cdl_jacobian(x: np.ndarray, p: np.ndarray, style: str, fit_saturation: bool, sw: np.ndarray) -> np.ndarray:
    """Analytic Jacobian of the weighted CDL residuals ``(N*3, 9 or 10)`` (row order of ``ravel``)."""
    slope, offset, power = p[0:3], p[3:6], p[6:9]
    sat = p[9] if fit_saturation else 1.0
    n = x.shape[0]
    t = x * slope + offset
    if style == "asc":
        inside = (t > 0) & (t < 1)
        tc = np.clip(t, 0.0, 1.0)
        pos = tc > 0
        base = np.where(pos, tc, 1.0)
        pw = np.where(pos, np.power(base, power), 0.0)
        dpdt = np.where(pos, power * np.power(base, power - 1.0), 0.0) * inside
        dpdpow = np.where(pos, pw * np.log(base), 0.0)
    else:
        pos = t > 0
        base = np.where(pos, t, 1.0)
        pw = np.where(pos, np.power(base, power), t)
        dpdt = np.where(pos, power * np.power(base, power - 1.0), 1.0)
        dpdpow = np.where(pos, pw * np.log(base), 0.0)
    luma = pw @ REC709_LUMA
    y = luma[:, None] + sat * (pw - luma[:, None])
    live = np.ones_like(y) if style != "asc" else ((y > 0) & (y < 1)).astype(np.float64)
    k = 10 if fit_saturation else 9
    jac = np.zeros((n, 3, k))
    # dy_k/dp_j = w_j (1 - sat) + sat [k == j]
    for j in range(3):
        dy_dpj = np.full((n, 3), REC709_LUMA[j] * (1.0 - sat))
        dy_dpj[:, j] += sat
        jac[:, :, j] = dy_dpj * (dpdt[:, j] * x[:, j])[:, None]
        jac[:, :, 3 + j] = dy_dpj * dpdt[:, j][:, None]
        jac[:, :, 6 + j] = dy_dpj * dpdpow[:, j][:, None]
    if fit_saturation:
        jac[:, :, 9] = pw - luma[:, None]
    jac *= (live * sw)[:, :, None]
    return jac.reshape(n * 3, k)


def fit_cdl(source: np.ndarray, target: np.ndarray, *, weights=None, style: str = "no_clamp",
            encoding: str = "acescct", fit_saturation: bool = True, max_samples: int = 10_000,
            id: str = "", description: str = "") -> CDLFit:
    """Fit the ASC CDL that best maps ``source`` onto ``target`` (least squares).

    Parameters
    ----------
    source, target : np.ndarray
        Aligned images of the same content before and after a match (``(H, W, 3)`` or premultiplied
        ``(H, W, 4)`` float32 scene-linear ACEScg), e.g. an element and its colour-transferred version.
        Or ``(N, 3)`` float32 colour samples (straight).
    weights : np.ndarray or None
        ``(H, W)`` (or ``(N,)``) sample weights, multiplied by the source alpha.
    style : {"no_clamp", "asc"}
    encoding : {"linear", "acescct"}
        Values the CDL operates on; residuals are measured there.
    fit_saturation : bool
        Fit the saturation too (else it stays 1).
    max_samples : int
        At most this many samples (every k-th) enter the solver.

    Returns
    -------
    CDLFit

    Notes
    -----
    Solved with :func:`scipy.optimize.least_squares` and an analytic Jacobian, started from a per-channel
    linear regression: Levenberg–Marquardt, or, when its optimum falls outside slope in [0, 100], offset in
    [-10, 10], power in [0.02, 50], saturation in [0, 10], the bounded trust-region reflective method.
    """
    from scipy.optimize import least_squares

    _check_choice(style, STYLES, "CDL style")
    _check_choice(encoding, ENCODINGS, "CDL encoding")
    if source.ndim == 2 and target.ndim == 2:
        if source.shape != target.shape or source.shape[1] != 3:
            raise InputError(f"fit_cdl: sample arrays must both be (N, 3), got {source.shape} and {target.shape}")
        xs, xt = source, target
        w = np.ones(xs.shape[0]) if weights is None else np.asarray(weights, np.float64).ravel()
        if w.shape[0] != xs.shape[0]:
            raise InputError(f"fit_cdl: {w.shape[0]} weights for {xs.shape[0]} samples")
    else:
        src = _check_pixels(source, "fit_cdl source")
        tgt = _check_pixels(target, "fit_cdl target")
        if src.shape[:2] != tgt.shape[:2]:
            raise InputError(f"fit_cdl: source is {src.shape} but target is {tgt.shape}; they must be aligned")
        rgb_s, alpha = straight_colour(src)
        rgb_t, _ = straight_colour(tgt)
        xs, xt = rgb_s.reshape(-1, 3), rgb_t.reshape(-1, 3)
        w = np.ones(xs.shape[0])
        if alpha is not None:
            w = w * np.maximum(alpha.reshape(-1).astype(np.float64), 0.0)
        if weights is not None:
            w = w * _check_weights(weights, src.shape[:2], "fit_cdl matte").reshape(-1)
    w = np.where(np.isfinite(w), np.maximum(w, 0.0), 0.0)
    keep = w > 0
    xs, xt, w = xs[keep], xt[keep], w[keep]
    if xs.shape[0] > max_samples:
        step = -(-xs.shape[0] // max_samples)
        xs, xt, w = xs[::step], xt[::step], w[::step]
    xs, xt = np.asarray(xs, np.float64), np.asarray(xt, np.float64)
    _check_finite(xs, "fit_cdl source")
    _check_finite(xt, "fit_cdl target")
    if xs.shape[0] < 4:
        raise InputError(f"fit_cdl: {xs.shape[0]} samples are too few to fit a CDL (need at least 4)")
    es, et = _encode(xs, encoding), _encode(xt, encoding)
    sw = np.sqrt(w / w.mean())[:, None]

    # start: per-channel linear regression, clipped into bounds
    slope0 = np.ones(3)
    off0 = np.zeros(3)
    for c in range(3):
        vx = np.average((es[:, c] - np.average(es[:, c], weights=w)) ** 2, weights=w)
        if vx > 1e-12:
            cov = np.average((es[:, c] - np.average(es[:, c], weights=w)) * (et[:, c] - np.average(et[:, c], weights=w)),
                             weights=w)
            slope0[c] = cov / vx
        off0[c] = np.average(et[:, c], weights=w) - slope0[c] * np.average(es[:, c], weights=w)
    slope0 = np.clip(slope0, 1e-3, 99.0)
    off0 = np.clip(off0, -9.0, 9.0)
    p0 = np.concatenate([slope0, off0, np.ones(3), [1.0]])
    lo = np.array([0.0] * 3 + [-10.0] * 3 + [0.02] * 3 + [0.0])
    hi = np.array([100.0] * 3 + [10.0] * 3 + [50.0] * 3 + [10.0])
    if not fit_saturation:
        p0, lo, hi = p0[:9], lo[:9], hi[:9]

    def residuals(p):
        sat = p[9] if fit_saturation else 1.0
        with np.errstate(all="ignore"):  # the unbounded solver may try powers <= 0
            r = ((cdl_values(es, p[0:3], p[3:6], p[6:9], sat, style=style) - et) * sw).ravel()
        return np.nan_to_num(r, nan=1e3, posinf=1e3, neginf=-1e3)

    def jacobian(p):
        with np.errstate(all="ignore"):
            return np.nan_to_num(_cdl_jacobian(es, p, style, fit_saturation, sw), nan=0.0, posinf=0.0, neginf=0.0)

    # Levenberg–Marquardt (MINPACK) first: fast and free of BLAS threading; the bounded trust-region
    # solver only when the unconstrained optimum leaves the CDL's valid range (negative slope, ...).
    res = least_squares(residuals, p0, jac=jacobian, method="lm", x_scale="jac", max_nfev=400)
    if not (res.success and np.all(res.x >= lo) and np.all(res.x <= hi)):
        res = least_squares(residuals, np.clip(p0, lo, hi), jac=jacobian, bounds=(lo, hi), method="trf",
                            x_scale="jac", max_nfev=200)
    p = res.x
    cdl = CDL(p[0:3], p[3:6], p[6:9], p[9] if fit_saturation else 1.0, id=id, description=description)
    rms = float(np.sqrt(np.mean(res.fun ** 2)))
    return CDLFit(cdl, rms, int(xs.shape[0]), encoding, style)


# -- files ------------------------------------------------------------------------------------------
def _fmt(v: float) -> str:
    return repr(float(v))


def _cc_element(cdl: CDL, *, namespace: bool) -> ET.Element:
    cc = ET.Element("ColorCorrection")
    if namespace:
        cc.set("xmlns", ASC_NAMESPACE)
    if cdl.id:
        cc.set("id", cdl.id)
    sop = ET.SubElement(cc, "SOPNode")
    if cdl.description:
        ET.SubElement(sop, "Description").text = cdl.description
    ET.SubElement(sop, "Slope").text = " ".join(_fmt(v) for v in cdl.slope)
    ET.SubElement(sop, "Offset").text = " ".join(_fmt(v) for v in cdl.offset)
    ET.SubElement(sop, "Power").text = " ".join(_fmt(v) for v in cdl.power)
    sat = ET.SubElement(cc, "SatNode")
    ET.SubElement(sat, "Saturation").text = _fmt(cdl.saturation)
    return cc


def cdl_xml(cdls: CDL | Sequence[CDL], fmt: str) -> str:
    """The XML text of a ``.cc`` (one correction), ``.ccc`` (a collection) or ``.cdl`` (a decision list)."""
    items = [cdls] if isinstance(cdls, CDL) else list(cdls)
    if not items:
        raise InputError("no CDLs to write")
    fmt = fmt if fmt.startswith(".") else "." + fmt
    if fmt == ".cc":
        if len(items) != 1:
            raise InputError(f"a .cc file holds one ColorCorrection, got {len(items)}; write a .ccc or .cdl")
        root = _cc_element(items[0], namespace=True)
    elif fmt in (".ccc", ".cdl"):
        ids = [c.id for c in items]
        if len(items) > 1 and (any(not i for i in ids) or len(set(ids)) != len(ids)):
            raise InputError(f"CDLs in a collection need distinct non-empty ids, got {ids}")
        if fmt == ".ccc":
            root = ET.Element("ColorCorrectionCollection", {"xmlns": ASC_NAMESPACE})
            for c in items:
                root.append(_cc_element(c, namespace=False))
        else:
            root = ET.Element("ColorDecisionList", {"xmlns": ASC_NAMESPACE})
            for c in items:
                dec = ET.SubElement(root, "ColorDecision")
                dec.append(_cc_element(c, namespace=False))
    else:
        raise InputError(f"unknown CDL file format {fmt!r}; allowed: {', '.join(FILE_FORMATS)}")
    ET.indent(root, space="    ")
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def write_cdl_file(path: str | os.PathLike, cdls: CDL | Sequence[CDL]) -> str:
    """Write CDLs as ``.cc``, ``.ccc`` or ``.cdl`` (by the extension), atomically. Returns the path."""
    path = os.fspath(path)
    ext = os.path.splitext(path)[1].lower()
    write_text_atomic(path, cdl_xml(cdls, ext))
    return path


#: (size, mtime) of every CDL file OpenColorIO has read in this process, by absolute path.
_seen_stamps: dict[str, tuple[int, int]] = {}


def _check_file(path: str) -> str:
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise InputError(f"CDL file {path!r} does not exist")
    ext = os.path.splitext(path)[1].lower()
    if ext not in FILE_FORMATS:
        raise InputError(f"CDL file {path!r}: unknown extension {ext!r}; allowed: {', '.join(FILE_FORMATS)}")
    return os.path.abspath(path)


def _fresh(path: str) -> tuple[int, int]:
    """The file's (mtime, size); clears OpenColorIO's file caches when a file it read has changed.

    OpenColorIO caches parsed files by path for the life of the process, so a .cc rewritten in place
    would otherwise keep giving the old correction.
    """
    import PyOpenColorIO as ocio

    st = os.stat(path)
    stamp = (st.st_mtime_ns, st.st_size)
    old = _seen_stamps.get(path)
    if old is not None and old != stamp:
        ocio.ClearAllCaches()
    _seen_stamps[path] = stamp
    return stamp


def read_cdl_file(path: str | os.PathLike, cccid: str | None = None) -> CDL:
    """Read one CDL with OpenColorIO (``CDLTransform.CreateFromFile``).

    ``cccid`` selects a correction of a .ccc/.cdl by id or by index (``"0"``, ``"1"``, ...); None takes
    the first.
    """
    import PyOpenColorIO as ocio

    path = _check_file(path)
    _fresh(path)
    try:
        t = ocio.CDLTransform.CreateFromFile(path, cccid or "")
    except Exception as exc:
        raise InputError(f"CDL file {path!r}: OpenColorIO cannot read it"
                         f"{' (id ' + repr(cccid) + ')' if cccid else ''}: {exc}") from None
    return CDL.from_ocio(t)


def read_cdl_collection(path: str | os.PathLike) -> list[CDL]:
    """Every CDL of a .ccc/.cdl/.cc file, read with OpenColorIO (``CDLTransform.CreateGroupFromFile``)."""
    import PyOpenColorIO as ocio

    path = _check_file(path)
    _fresh(path)
    try:
        group = ocio.CDLTransform.CreateGroupFromFile(path)
    except Exception as exc:
        raise InputError(f"CDL file {path!r}: OpenColorIO cannot read it: {exc}") from None
    return [CDL.from_ocio(t) for t in group]


def file_sha256(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 16), b""):
            h.update(block)
    return h.hexdigest()


@functools.lru_cache(maxsize=64)
def _file_processor(path: str, stamp: tuple, cccid: str, style: str, encoding: str, inverse: bool):
    import PyOpenColorIO as ocio

    cfg = ocio.Config.CreateRaw()
    ft = ocio.FileTransform(src=path, cccId=cccid, interpolation=ocio.INTERP_LINEAR)
    ft.setCDLStyle(_ocio_style(style))
    group = ocio.GroupTransform()
    if encoding == "acescct":
        group.appendTransform(ocio.BuiltinTransform("CURVE - ACEScct-LOG_to_LINEAR", ocio.TRANSFORM_DIR_INVERSE))
    group.appendTransform(ft)
    if encoding == "acescct":
        group.appendTransform(ocio.BuiltinTransform("CURVE - ACEScct-LOG_to_LINEAR", ocio.TRANSFORM_DIR_FORWARD))
    if inverse:
        group.setDirection(ocio.TRANSFORM_DIR_INVERSE)
    try:
        proc = cfg.getProcessor(group)
    except Exception as exc:
        raise InputError(f"CDL file {path!r}{' id ' + repr(cccid) if cccid else ''}: OpenColorIO cannot "
                         f"build a processor: {exc}") from None
    return proc


def cdl_file_processor(path: str | os.PathLike, *, cccid: str | None = None, style: str = "no_clamp",
                       encoding: str = "linear", inverse: bool = False):
    """A cached OpenColorIO processor applying a CDL file (FileTransform in a raw config).

    With ``encoding="acescct"`` the chain is ACEScct encode (OCIO's built-in ACEScct curve, inverse),
    the file, ACEScct decode. The cache key includes the file's modification time and size.
    """
    _check_choice(style, STYLES, "CDL style")
    _check_choice(encoding, ENCODINGS, "CDL encoding")
    path = _check_file(path)
    return _file_processor(path, _fresh(path), cccid or "", style, encoding, bool(inverse))


def apply_cdl_file(pixels: np.ndarray, path: str | os.PathLike, *, cccid: str | None = None,
                   style: str = "no_clamp", encoding: str = "linear", inverse: bool = False) -> np.ndarray:
    """Apply a .cc/.ccc/.cdl file to pixels through an OpenColorIO processor.

    ``pixels``: ``(H, W, 3)`` or premultiplied ``(H, W, 4)`` float32 scene-linear; colour is processed
    unpremultiplied where alpha > 0 (alpha-0 pixels unchanged). Returns float32 of the same shape.
    """
    pixels = _check_pixels(pixels, "CDL file input")
    _check_finite(pixels, "CDL file input")
    cpu = cdl_file_processor(path, cccid=cccid, style=style, encoding=encoding,
                             inverse=inverse).getDefaultCPUProcessor()

    def run(rgb: np.ndarray) -> np.ndarray:
        buf = np.array(rgb, dtype=np.float32, order="C", copy=True)
        flat = buf.reshape(-1, 1, 3) if buf.ndim == 2 else buf
        cpu.applyRGB(flat)
        out = flat.reshape(rgb.shape)
        out[~np.isfinite(out)] = 0.0
        return out

    return _apply_premultiplied(pixels, run)
