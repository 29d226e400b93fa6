"""Smoothing of per-frame signals (track positions, transform corners, brightness) over bounded windows.

Every smoother here evaluates frame ``t`` from the samples in ``[t - radius, t + radius]`` only (clamped
to the samples that exist), so a value never depends on frames outside its window and a chunked render
gives the same numbers as a whole one. Missing samples are NaN and are skipped.

* Savitzky–Golay: the least-squares polynomial of degree ``order`` through the window's samples,
  evaluated at ``t``. Inside the signal this is exactly ``scipy.signal.savgol_filter`` with a window of
  ``2 radius + 1``; near the ends the window is clamped and the polynomial is evaluated off-centre
  (``scipy.signal.savgol_coeffs(..., pos=...)``), instead of SciPy's whole-window edge modes.
* Kalman: a constant-velocity Kalman filter run forwards over the window and a Rauch–Tung–Striebel
  smoother run backwards, evaluated at ``t``. ``measurement_sigma`` is the noise of the samples,
  ``acceleration_sigma`` how much the true signal's velocity may change per frame (both in the signal's
  units, e.g. pixels).

Example
-------
>>> import numpy as np
>>> from composite.temporal.smooth import smooth_savgol
>>> ramp = np.arange(10, dtype=float)[:, None] * 2.0
>>> np.allclose(smooth_savgol(ramp, radius=3, order=1), ramp)   # a line is preserved, ends included
True
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from scipy.signal import savgol_coeffs, savgol_filter

from ..core.errors import InputError

#: Smoothing methods by name (the stages' ``method`` parameter).
SMOOTHING_METHODS = ("savgol", "kalman", "average")


def _as_series(values: np.ndarray, what: str) -> tuple[np.ndarray, bool]:
    v = np.asarray(values, np.float64)
    one_d = v.ndim == 1
    if one_d:
        v = v[:, None]
    if v.ndim != 2 or v.shape[0] < 1:
        raise InputError(f"{what}: expected a (T,) or (T, D) array of samples, got shape {np.shape(values)}")
    return v, one_d


@lru_cache(maxsize=256)
def _coeffs(n: int, order: int, pos: int) -> np.ndarray:
    return savgol_coeffs(n, order, pos=pos, use="dot")


def savgol_window(values: np.ndarray, offsets: np.ndarray, *, order: int = 2, at: float = 0.0) -> np.ndarray:
    """Least-squares polynomial of degree ``order`` through samples at ``offsets``, evaluated at ``at``.

    Parameters
    ----------
    values : np.ndarray
        ``(n,)`` or ``(n, D)`` samples (float); NaN marks a missing sample (per column).
    offsets : np.ndarray
        ``(n,)`` sample times (frames), e.g. ``[-2, -1, 0, 1, 2]``.
    order : int
        Polynomial degree; lowered to ``samples - 1`` when there are fewer samples.

    Returns
    -------
    np.ndarray
        ``(D,)`` (or a scalar array for 1-D input); NaN for a column without samples.
    """
    v, one_d = _as_series(values, "savgol_window")
    x = np.asarray(offsets, np.float64)
    if x.shape != (v.shape[0],):
        raise InputError(f"savgol_window: {v.shape[0]} samples but {x.shape} offsets")
    if order < 0:
        raise InputError(f"savgol_window: order must be >= 0, got {order}")
    out = np.full(v.shape[1], np.nan)
    finite = np.isfinite(v)
    # Columns sharing a pattern of missing samples share one solve.
    patterns: dict[bytes, list[int]] = {}
    for j in range(v.shape[1]):
        patterns.setdefault(finite[:, j].tobytes(), []).append(j)
    for key, cols in patterns.items():
        m = np.frombuffer(key, dtype=bool)
        n = int(m.sum())
        if n == 0:
            continue
        xs = x[m] - at
        deg = min(order, n - 1)
        uniform = np.all(np.diff(xs) == 1.0) and float(-xs[0]).is_integer()
        if uniform and 0 <= -xs[0] <= n - 1:
            w = _coeffs(n, deg, int(-xs[0]))
        else:
            vander = np.vander(xs, deg + 1, increasing=True)
            w = np.linalg.pinv(vander)[0]
        out[cols] = w @ v[m][:, cols]
    return out[0] if one_d else out


def smooth_savgol(values: np.ndarray, *, radius: int, order: int = 2) -> np.ndarray:
    """Savitzky–Golay smoothing of a whole series, each sample from its clamped window (see module docstring).

    ``values``: ``(T,)`` or ``(T, D)``; returns the same shape (float64).
    """
    v, one_d = _as_series(values, "smooth_savgol")
    radius = int(radius)
    if radius < 0:
        raise InputError(f"smoothing radius must be >= 0, got {radius}")
    t_count = v.shape[0]
    if radius == 0:
        return v[:, 0] if one_d else v
    out = np.empty_like(v)
    interior = t_count >= 2 * radius + 1 and np.isfinite(v).all()
    if interior:
        out[:] = savgol_filter(v, 2 * radius + 1, min(order, 2 * radius), axis=0, mode="interp")
        edges = list(range(radius)) + list(range(t_count - radius, t_count))
    else:
        edges = range(t_count)
    for t in edges:
        lo, hi = max(0, t - radius), min(t_count, t + radius + 1)
        out[t] = savgol_window(v[lo:hi], np.arange(lo, hi) - t, order=order)
    return out[:, 0] if one_d else out


def kalman_window(values: np.ndarray, offsets: np.ndarray, *, measurement_sigma: float = 1.0,
                  acceleration_sigma: float = 0.1, at: int = 0) -> np.ndarray:
    """Constant-velocity Kalman filter + RTS smoother over one window, evaluated at offset ``at``.

    Parameters
    ----------
    values : np.ndarray
        ``(n,)`` or ``(n, D)`` samples; NaN marks a missing sample. Each column is smoothed on its own.
    offsets : np.ndarray
        ``(n,)`` integer frame offsets (sorted, gaps allowed).
    measurement_sigma, acceleration_sigma : float
        Standard deviations of the sample noise and of the per-frame change of velocity (white-noise
        acceleration), in the samples' units.

    Returns
    -------
    np.ndarray
        ``(D,)`` smoothed positions at ``at`` (NaN for a column without samples).
    """
    v, one_d = _as_series(values, "kalman_window")
    x_off = np.asarray(offsets)
    if x_off.shape != (v.shape[0],) or not np.all(np.diff(x_off) > 0):
        raise InputError("kalman_window: offsets must be strictly increasing, one per sample")
    if measurement_sigma <= 0 or acceleration_sigma < 0:
        raise InputError(f"kalman_window: measurement_sigma must be > 0 and acceleration_sigma >= 0, got "
                         f"{measurement_sigma}, {acceleration_sigma}")
    first, last = int(x_off[0]), int(x_off[-1])
    if not first <= at <= last:
        raise InputError(f"kalman_window: evaluation offset {at} is outside the samples {first}..{last}")
    steps = last - first + 1
    d = v.shape[1]
    y = np.full((steps, d), np.nan)
    y[x_off.astype(int) - first] = v
    r = float(measurement_sigma) ** 2
    q = float(acceleration_sigma) ** 2
    f = np.array([[1.0, 1.0], [0.0, 1.0]])
    qm = q * np.array([[0.25, 0.5], [0.5, 1.0]])  # discrete white-noise acceleration, dt = 1
    xs_f = np.zeros((steps, d, 2))
    ps_f = np.zeros((steps, d, 2, 2))
    xs_p = np.zeros((steps, d, 2))
    ps_p = np.zeros((steps, d, 2, 2))
    x = np.zeros((d, 2))
    p = np.broadcast_to(np.eye(2) * 1e8, (d, 2, 2)).copy()  # diffuse prior
    for k in range(steps):
        if k > 0:
            x = x @ f.T
            p = f @ p @ f.T + qm
        xs_p[k], ps_p[k] = x, p
        m = np.isfinite(y[k])
        if m.any():
            s = p[m, 0, 0] + r
            gain = p[m, :, 0] / s[:, None]
            innov = y[k, m] - x[m, 0]
            x = x.copy()
            p = p.copy()
            x[m] += gain * innov[:, None]
            p[m] -= gain[:, :, None] * p[m, 0, :][:, None, :]
        xs_f[k], ps_f[k] = x, p
    xs, ps = xs_f[-1].copy(), ps_f[-1].copy()
    target = int(at) - first
    result = xs[:, 0].copy() if target == steps - 1 else None
    for k in range(steps - 2, target - 1, -1):
        c = ps_f[k] @ f.T @ np.linalg.inv(ps_p[k + 1])
        xs = xs_f[k] + np.einsum("dij,dj->di", c, xs - xs_p[k + 1])
        ps = ps_f[k] + c @ (ps - ps_p[k + 1]) @ np.transpose(c, (0, 2, 1))
        if k == target:
            result = xs[:, 0].copy()
    seen = np.isfinite(v).any(axis=0)
    result[~seen] = np.nan
    return result[0] if one_d else result


def smooth_kalman(values: np.ndarray, *, radius: int, measurement_sigma: float = 1.0,
                  acceleration_sigma: float = 0.1) -> np.ndarray:
    """Kalman (RTS) smoothing of a whole series, each sample from its clamped window of ``radius``."""
    v, one_d = _as_series(values, "smooth_kalman")
    radius = int(radius)
    if radius < 0:
        raise InputError(f"smoothing radius must be >= 0, got {radius}")
    out = np.empty_like(v)
    t_count = v.shape[0]
    for t in range(t_count):
        lo, hi = max(0, t - radius), min(t_count, t + radius + 1)
        out[t] = kalman_window(v[lo:hi], np.arange(lo, hi) - t, measurement_sigma=measurement_sigma,
                               acceleration_sigma=acceleration_sigma)
    return out[:, 0] if one_d else out


def average_window(values: np.ndarray) -> np.ndarray:
    """Mean of a window's samples per column, NaN skipped (the strongest smoothing: a locked average)."""
    v, one_d = _as_series(values, "average_window")
    finite = np.isfinite(v)
    n = finite.sum(axis=0)
    s = np.where(finite, v, 0.0).sum(axis=0)
    out = np.where(n > 0, s / np.maximum(n, 1), np.nan)
    return out[0] if one_d else out


def smooth_window(values: np.ndarray, offsets: np.ndarray, *, method: str = "savgol", order: int = 2,
                  measurement_sigma: float = 1.0, acceleration_sigma: float = 0.1) -> np.ndarray:
    """Smooth one window's samples and evaluate at offset 0 with ``method`` (see :data:`SMOOTHING_METHODS`)."""
    if method == "savgol":
        return savgol_window(values, offsets, order=order)
    if method == "kalman":
        return kalman_window(values, offsets, measurement_sigma=measurement_sigma,
                             acceleration_sigma=acceleration_sigma)
    if method == "average":
        return average_window(values)
    raise InputError(f"unknown smoothing method {method!r}; allowed: {', '.join(SMOOTHING_METHODS)}")
