"""Film and sensor grain: measure it on a plate, remove it (degrain), synthesise it (regrain).

Three pure functions and one data type:

* :func:`measure_grain` finds flat regions of a plate automatically and returns a :class:`GrainProfile`:
  the grain's standard deviation per channel in each of ``bands`` luminance bands (equally spaced in
  log2 luminance), its radial autocorrelation per channel (the spatial structure: the correlation
  length and, by Fourier transform, the power spectrum follow from it) and the correlation between
  channels. The profile is plain data: it is
  written to and read from JSON (:meth:`GrainProfile.save`, :meth:`GrainProfile.load`).
* :func:`regrain` adds synthetic grain matching a profile to a clean or generated element: Gaussian
  white noise, correlated across channels, shaped by a convolution kernel whose power spectrum is the
  measured one, scaled per pixel by the profile's standard deviation at the pixel's luminance.
* :func:`degrain` removes grain with a profile-driven wavelet filter (see below).

Measurement
-----------
The frame is cut into ``tile x tile`` squares (32 px by default). In each, a quadratic surface is
fitted per channel and removed; what remains is grain plus any texture. Flat tiles are kept by these
tests, in order:

1. no clipped pixels (at the frame's maximum or minimum in a channel: blown highlights, crushed
   blacks, letterbox bars) and, for RGBA or a mask, fully inside the alpha or mask;
2. stationarity: the residual's level in the tile's four quadrants differs at most threefold (an edge
   or an object inside the tile does not);
3. level: at one luminance grain has one level and texture only adds to it, so the luminance residual
   variance must be at most 3 times the 20th percentile of the tiles within half a stop of it;
4. structure: shading and edges survive a Gaussian blur (sigma 2 px, within the tile) that grain does
   not, so ``std(blurred residual) / std(residual)`` must be at most ``flatness`` times the median
   ratio of the tiles that passed test 3.

Per band (``bands`` bands equally spaced in log2 luminance between the 1st and 99th percentile of the
kept tiles) the tiles' variances are averaged (tiles above 4 times the band's median dropped). Grain
does not decrease with scene-linear luminance and grows at most in proportion to it (shot noise, film
grain and the quantisation of log or video encodings all behave so); with ``monotonic`` (default) a
band above that envelope by more than 1.5x in standard deviation is taken as textured: its value is
interpolated from the trusted bands (log-log; beyond them variance in proportion to luminance) and its
count is reported as 0.

The spatial statistics: per tile the autocorrelation for lags up to half a tile (zero-padded FFT,
divided by each lag's overlap), summed over tiles of equal luminance (quarter stops) and normalised,
then the count-weighted median over those luminance bins (trusted bands only). Removing each tile's
mean and surface biases this estimate; the bias is modelled exactly (for a radial autocorrelation
made of tent functions at integer lags, the expected measurement after the quadratic projection is
computed with FFTs), and the radial autocorrelation that best explains the measurement is solved for
by weighted least squares. The same model turns each tile's sum of squares into the grain variance.
Grain is taken as isotropic and uncorrelated beyond three quarters of half a tile. The channel
correlation is the mean over tiles of the residuals' correlation coefficients.

Measurement needs flat regions: a sky, a wall, a screen. On a plate without any (foliage, grass,
busy interiors) texture that looks statistically like grain is measured as grain and the profile is
too strong; give a ``mask`` that points at a flat region, or a profile measured on another frame.

Statistics are taken on the scene-linear values as they are (no encoding): grain amplitude is reported in
the same units as the pixels, and luminance uses the ACEScg (AP1) weights.

Degrain
-------
An undecimated B3-spline ("a trous") wavelet transform with ``scales`` detail levels. For each level
the grain's expected coefficient standard deviation follows from the profile's power spectrum
(computed in the Fourier domain), and each pixel's expected grain level from the profile's standard
deviation at the pixel's (smoothed) luminance. Coefficients are shrunk with a local Wiener gain
``max(0, 1 - (1.5 strength sigma)^2 / local_energy)``, the local energy averaged over a window that grows
with the level (5 px at the finest, up to 33 px); the 1.5 over-subtraction is the usual choice for this
shrinkage (on a flat plate it leaves about 3 % of white grain and 13 % of grain correlated over 2 px,
against 18 % and 27 % without it). The coarse residual is kept exactly, so the filter works on
scene-linear HDR values, including negative ones, without clipping or encoding. (OpenCV's non-local
means needs 8- or 16-bit input, which would mean quantising HDR values; the wavelet filter reads the
measured grain directly and runs in a fraction of the time.) Near strong edges and texture the gain
stays high, so some grain survives in a band of a few pixels along them.

Example
-------
>>> import numpy as np
>>> from composite.color.grain import GrainProfile, measure_grain, regrain
>>> rng = np.random.default_rng(0)
>>> plate = np.full((256, 256, 3), 0.18, np.float32) + rng.normal(0, 0.01, (256, 256, 3)).astype(np.float32)
>>> profile = measure_grain(plate, bands=2)
>>> [round(s, 3) for s in profile.std[0]]
[0.01, 0.01, 0.01]
>>> clean = np.full((64, 64, 3), 0.18, np.float32)
>>> grainy = regrain(clean, profile, seed=7)
>>> round(float(grainy.std()), 2)
0.01
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import scipy.fft
from scipy.ndimage import gaussian_filter

from ..core.errors import InputError
from ..core.state import AP1_LUMINANCE
from ..io.atomic import write_text_atomic

#: Schema name written into profile files.
SCHEMA = "composite.grain_profile/1"

#: Luminance below this (including zero and negative values) counts as this value in log2 luminance.
LUMINANCE_FLOOR = 2.0 ** -16

_BLUR_SIGMA = 2.0
_B3 = np.array([1.0, 4.0, 6.0, 4.0, 1.0], np.float32) / 16.0


# -- the profile -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class GrainProfile:
    """Measured grain statistics of a plate (serialisable; all values plain floats and tuples).

    Attributes
    ----------
    channels : tuple of str
        Names of the measured channels, e.g. ``("R", "G", "B")`` (``("Y",)`` for a mono plate).
    tile : int
        Tile size in pixels the statistics were taken on.
    band_edges : tuple of float
        ``bands + 1`` band edges in log2 luminance (the outer bands extend to -inf / +inf).
    band_centers : tuple of float
        Per band, the median log2 luminance of its tiles (the edges' midpoint for an empty band).
    std : tuple of tuple of float
        ``std[band][channel]``: grain standard deviation in pixel units (scene-linear). Empty bands are
        interpolated from their neighbours over log luminance.
    counts : tuple of int
        Number of tiles measured per band; 0 where the band's value is interpolated (no flat tile, or
        its tiles were judged textured, see :func:`measure_grain`).
    autocorrelation : tuple of tuple of float
        ``autocorrelation[channel][d]``: the grain's autocorrelation at lag distance ``d`` pixels,
        ``d = 0 .. tile // 2`` (1 at ``d = 0``; white grain is 0 beyond).
    channel_correlation : tuple of tuple of float
        Correlation coefficients between channels' grain.
    correlation_length : tuple of float
        Per channel, the lag in pixels at which the grain's autocorrelation falls to 0.5
        (0.5 for white grain; ``1.665 sigma`` for white noise blurred by a Gaussian of ``sigma``).
    colorspace : str
        Colour space of the measured pixels.
    source : str
        Free text: what was measured.
    """

    channels: tuple[str, ...]
    tile: int
    band_edges: tuple[float, ...]
    band_centers: tuple[float, ...]
    std: tuple[tuple[float, ...], ...]
    counts: tuple[int, ...]
    autocorrelation: tuple[tuple[float, ...], ...]
    channel_correlation: tuple[tuple[float, ...], ...]
    correlation_length: tuple[float, ...]
    colorspace: str = "ACEScg"
    source: str = ""
    _cache: dict = field(default_factory=dict, compare=False, repr=False, hash=False)

    # -- derived ---------------------------------------------------------------------------------
    @property
    def bands(self) -> int:
        return len(self.counts)

    @property
    def is_zero(self) -> bool:
        """True when the measured grain is zero everywhere (a constant or noiseless source)."""
        return not any(s > 0 for row in self.std for s in row)

    def std_at(self, luminance: np.ndarray) -> np.ndarray:
        """Grain standard deviation per channel at the given linear luminance.

        ``luminance``: array of any shape; returns ``luminance.shape + (channels,)`` float32. Linear in
        log2 luminance between band centres, constant beyond the first and last band.
        """
        lum = np.asarray(luminance, np.float32)
        centers = np.asarray(self.band_centers, np.float64)
        std = np.asarray(self.std, np.float64)
        lo, hi = float(centers[0]), float(centers[-1])
        if hi - lo < 1e-9:
            return np.broadcast_to(std[0].astype(np.float32), lum.shape + (len(self.channels),)).copy()
        # A 4096-entry table over the band centres' range, read by nearest entry: the table step is
        # under 0.003 stop for an 8-stop range, and a gather is much faster than np.interp per pixel.
        key = ("lut", 4096)
        if key not in self._cache:
            grid = np.linspace(lo, hi, 4096)
            self._cache[key] = np.stack([np.interp(grid, centers, std[:, c]) for c in range(std.shape[1])],
                                        axis=1).astype(np.float32)
        lut = self._cache[key]
        lg = np.log2(np.maximum(lum, np.float32(LUMINANCE_FLOOR)))
        lg -= np.float32(lo)
        lg *= np.float32(4095.0 / (hi - lo))
        np.clip(lg, 0.0, 4095.0, out=lg)
        lg += np.float32(0.5)
        return lut[lg.astype(np.int32)]

    def psd_2d(self, channel: int, size: int) -> np.ndarray:
        """Power spectrum of ``channel``'s grain on a ``size x size`` FFT grid, unit mean (unit variance).

        The Fourier transform of the radial autocorrelation laid out in 2D (lags beyond the measured
        ones are 0); negative lobes from estimation noise are set to 0.
        """
        key = ("psd", channel, size)
        if key not in self._cache:
            ac = np.asarray(self.autocorrelation[channel], np.float64)
            lag = np.fft.fftfreq(size) * size
            dist = np.hypot(lag[:, None], lag[None, :])
            ac2d = np.interp(dist, np.arange(ac.size), ac, right=0.0)
            psd = np.maximum(np.real(np.fft.fft2(ac2d)), 0.0)
            mean = psd.mean()
            self._cache[key] = psd / mean if mean > 0 else np.ones_like(psd)
        return self._cache[key]

    def radial_spectrum(self, channel: int) -> np.ndarray:
        """Power spectrum of ``channel`` averaged over rings: bin ``k`` is ``k / (2 tile)`` cycles/pixel."""
        size = 2 * self.tile
        psd = self.psd_2d(channel, size)
        f = np.fft.fftfreq(size)
        k = np.rint(np.hypot(f[:, None], f[None, :]) * size).astype(np.int64).ravel()
        return np.bincount(k, psd.ravel()) / np.maximum(np.bincount(k), 1)

    def kernel(self, channel: int, *, energy: float = 0.999) -> np.ndarray:
        """Zero-phase convolution kernel that turns unit white noise into unit-variance grain.

        Built from the square root of the power spectrum; cropped to the smallest odd square that keeps
        ``energy`` of its squared sum, then normalised to unit squared sum. ``(k, k)`` float32.
        """
        key = ("kernel", channel, energy)
        if key not in self._cache:
            size = 2 * self.tile
            amp = np.sqrt(np.maximum(self.psd_2d(channel, size), 0.0))
            k = np.fft.fftshift(np.real(np.fft.ifft2(amp)))
            c = size // 2
            total = float((k ** 2).sum())
            half = c - 1
            for h in range(0, c):
                part = k[c - h:c + h + 1, c - h:c + h + 1]
                if float((part ** 2).sum()) >= energy * total:
                    half = h
                    break
            k = k[c - half:c + half + 1, c - half:c + half + 1]
            k = k / math.sqrt(float((k ** 2).sum()))
            self._cache[key] = k.astype(np.float32)
        return self._cache[key]

    # -- serialisation ---------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-serialisable dictionary (``schema`` first)."""
        return {
            "schema": SCHEMA,
            "channels": list(self.channels),
            "tile": self.tile,
            "band_edges": list(self.band_edges),
            "band_centers": list(self.band_centers),
            "std": [list(r) for r in self.std],
            "counts": list(self.counts),
            "autocorrelation": [list(r) for r in self.autocorrelation],
            "channel_correlation": [list(r) for r in self.channel_correlation],
            "correlation_length": list(self.correlation_length),
            "colorspace": self.colorspace,
            "source": self.source,
        }

    @classmethod
    def from_dict(cls, data: Any, *, source: str = "grain profile") -> GrainProfile:
        """Validate and build a profile from :meth:`to_dict` output; errors name ``source`` and the key."""
        if not isinstance(data, dict):
            raise InputError(f"{source}: a grain profile must be a mapping, got {type(data).__name__}")
        schema = data.get("schema", SCHEMA)
        if schema != SCHEMA:
            raise InputError(f"{source}: unknown grain profile schema {schema!r}; expected {SCHEMA!r}")
        required = ("channels", "tile", "band_edges", "band_centers", "std", "counts", "autocorrelation",
                    "channel_correlation", "correlation_length")
        missing = [k for k in required if k not in data]
        if missing:
            raise InputError(f"{source}: grain profile lacks key(s) {', '.join(missing)}; "
                             "write profiles with GrainProfile.save")

        def numbers(key: str, shape: tuple[int, ...] | None = None) -> np.ndarray:
            try:
                arr = np.asarray(data[key], np.float64)
            except (TypeError, ValueError):
                raise InputError(f"{source}: key {key!r} must hold numbers") from None
            if not np.all(np.isfinite(arr)):
                raise InputError(f"{source}: key {key!r} holds NaN or infinite values")
            if shape is not None and arr.shape != shape:
                raise InputError(f"{source}: key {key!r} has shape {arr.shape}, expected {shape}")
            return arr

        channels = tuple(str(c) for c in data["channels"])
        nc = len(channels)
        if nc == 0:
            raise InputError(f"{source}: key 'channels' is empty")
        counts = numbers("counts")
        nb = counts.size
        if counts.ndim != 1 or nb == 0:
            raise InputError(f"{source}: key 'counts' must be a non-empty list")
        std = numbers("std", (nb, nc))
        if np.any(std < 0):
            raise InputError(f"{source}: key 'std' holds negative values")
        ac = numbers("autocorrelation")
        if ac.ndim != 2 or ac.shape[0] != nc or ac.shape[1] < 2 or np.any(np.abs(ac) > 1.0 + 1e-6):
            raise InputError(f"{source}: key 'autocorrelation' must be {nc} lists of at least 2 numbers "
                             "in [-1, 1]")
        tile = int(numbers("tile"))
        if tile < 4:
            raise InputError(f"{source}: key 'tile' must be at least 4, got {tile}")
        return cls(
            channels=channels,
            tile=tile,
            band_edges=tuple(float(v) for v in numbers("band_edges", (nb + 1,))),
            band_centers=tuple(float(v) for v in numbers("band_centers", (nb,))),
            std=tuple(tuple(float(v) for v in row) for row in std),
            counts=tuple(int(v) for v in counts),
            autocorrelation=tuple(tuple(float(v) for v in row) for row in ac),
            channel_correlation=tuple(tuple(float(v) for v in row)
                                      for row in numbers("channel_correlation", (nc, nc))),
            correlation_length=tuple(float(v) for v in numbers("correlation_length", (nc,))),
            colorspace=str(data.get("colorspace", "ACEScg")),
            source=str(data.get("source", "")),
        )

    def save(self, path: str | os.PathLike) -> None:
        """Write the profile as JSON (to a temporary name, then renamed into place)."""
        write_text_atomic(path, json.dumps(self.to_dict(), indent=1))

    @classmethod
    def load(cls, path: str | os.PathLike) -> GrainProfile:
        """Read a profile written by :meth:`save`; a missing or malformed file raises InputError naming it."""
        path = Path(path)
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError:
            raise InputError(f"grain profile {path} not found; measure one with measure_grain(...).save(path)"
                             ) from None
        except (OSError, json.JSONDecodeError) as exc:
            raise InputError(f"grain profile {path} cannot be read: {exc}") from None
        return cls.from_dict(data, source=f"grain profile {path}")


# -- helpers ---------------------------------------------------------------------------------------

def _split(image: np.ndarray, who: str) -> tuple[np.ndarray, np.ndarray | None]:
    """``(colour, alpha)`` of a 1-, 3- or 4-channel float32 array (alpha last, premultiplied)."""
    if not isinstance(image, np.ndarray) or image.ndim not in (2, 3):
        raise InputError(f"{who}: expected an (H, W, C) float32 array, got "
                         f"{getattr(image, 'shape', type(image).__name__)}")
    if image.ndim == 2:
        image = image[:, :, None]
    if image.dtype != np.float32:
        raise InputError(f"{who}: expected float32 pixels, got {image.dtype}")
    c = image.shape[2]
    if c in (1, 3):
        return image, None
    if c == 4:
        return image[:, :, :3], image[:, :, 3]
    raise InputError(f"{who}: expected 1 (mono), 3 (RGB) or 4 (RGBA) channels, got {c}")


def luminance(colour: np.ndarray) -> np.ndarray:
    """Luminance ``(H, W)`` float32 of ``(H, W, 3)`` ACEScg colour (a mono plane is returned as is)."""
    if colour.shape[2] == 1:
        return colour[:, :, 0].astype(np.float32, copy=False)
    w = np.asarray(AP1_LUMINANCE, np.float32)
    return (colour[:, :, 0] * w[0] + colour[:, :, 1] * w[1] + colour[:, :, 2] * w[2]).astype(np.float32)


def _straight_luminance(colour: np.ndarray, alpha: np.ndarray | None) -> np.ndarray:
    lum = luminance(colour)
    if alpha is not None:
        np.divide(lum, alpha, out=lum, where=alpha > 1e-6)
    return lum


def _check_mask(mask: np.ndarray | None, shape: tuple[int, int], who: str) -> np.ndarray | None:
    if mask is None:
        return None
    mask = np.asarray(mask)
    if mask.ndim == 3:
        mask = mask[:, :, -1]
    if mask.shape != shape:
        raise InputError(f"{who}: mask is {mask.shape[1] if mask.ndim > 1 else '?'}x{mask.shape[0]} but the "
                         f"image is {shape[1]}x{shape[0]}; reformat the mask to the image's size")
    mask = mask.astype(np.float32, copy=False)
    return np.nan_to_num(mask, nan=0.0, posinf=1.0, neginf=0.0)


def _tiles(arr: np.ndarray, t: int) -> np.ndarray:
    """``(H, W, C)`` → ``(N, t, t, C)`` centred grid of non-overlapping tiles (a copy)."""
    h, w, c = arr.shape
    ny, nx = h // t, w // t
    y0, x0 = (h - ny * t) // 2, (w - nx * t) // 2
    a = arr[y0:y0 + ny * t, x0:x0 + nx * t]
    return a.reshape(ny, t, nx, t, c).swapaxes(1, 2).reshape(ny * nx, t, t, c)


#: Number of polynomial terms removed per tile (1, x, y, x^2, y^2, xy).
_POLY_TERMS = 6


def _poly_residual(tiles: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Remove a least-squares quadratic surface per tile and channel; returns (residual, tile mean).

    The basis (1, x, y, x^2 - m, y^2 - m, xy) on a centred square grid is orthogonal, so each
    coefficient is a separate projection.
    """
    t = tiles.shape[1]
    x = (np.arange(t, dtype=np.float64) - (t - 1) / 2)
    x2 = x ** 2 - (x ** 2).mean()
    sx, sx2 = float((x ** 2).sum()), float((x2 ** 2).sum())
    x, x2 = x.astype(np.float32), x2.astype(np.float32)
    mean = tiles.mean(axis=(1, 2), dtype=np.float64).astype(np.float32)
    r = tiles - mean[:, None, None, :]
    cx = np.einsum("nyxc,x->nc", r, x) / np.float32(t * sx)
    cy = np.einsum("nyxc,y->nc", r, x) / np.float32(t * sx)
    cxx = np.einsum("nyxc,x->nc", r, x2) / np.float32(t * sx2)
    cyy = np.einsum("nyxc,y->nc", r, x2) / np.float32(t * sx2)
    cxy = np.einsum("nyxc,y,x->nc", r, x, x) / np.float32(sx * sx)
    r -= (cx[:, None, None, :] * x[None, None, :, None] + cxx[:, None, None, :] * x2[None, None, :, None])
    r -= (cy[:, None, None, :] * x[None, :, None, None] + cyy[:, None, None, :] * x2[None, :, None, None])
    r -= cxy[:, None, None, :] * (x[:, None] * x[None, :])[None, :, :, None]
    return r, mean


@dataclass
class GrainTiles:
    """What :func:`measure_tiles` found on one frame: statistics of its flat tiles.

    Small (a few hundred kilobytes at most), so a stage can cache it per frame and pool several frames
    with :func:`profile_from_tiles`.
    """

    tile: int
    lum: np.ndarray        # (N,) mean luminance of each measured tile
    sumsq: np.ndarray      # (N, C) sum of squared residuals per tile
    corr_sum: np.ndarray   # (C, C) sum over tiles of the channel correlation
    ac_bins: dict          # luminance bin -> (lag sums (C, 2R+1, 2R+1), tile count)
    constant: int          # tiles without any variation
    considered: int        # tiles inside the mask/alpha
    positions: np.ndarray = field(default_factory=lambda: np.zeros((0, 2), np.int64))  # (N, 2) tile corners y, x


#: At most this many tiles per frame (evenly spread) contribute to the autocorrelation.
_AC_TILES = 512

#: Tiles are grouped in luminance bins this wide (stops) to pool their autocorrelations.
_AC_BIN_STOPS = 0.25


def _autocorrelation_sums(res: np.ndarray, lum: np.ndarray, radius: int) -> dict[int, tuple[np.ndarray, int]]:
    """Lag sums over overlap, lags -radius..radius, summed over the tiles of each luminance bin.

    Returns ``{bin: (sums (C, 2r+1, 2r+1), tile count)}``. Grouping tiles of similar grain level and
    dividing sums (rather than averaging per-tile ratios) keeps the normalised estimate unbiased.
    """
    n, t, _, nc = res.shape
    size = 2 * t
    lags = np.arange(-radius, radius + 1)
    overlap = ((t - np.abs(lags))[:, None] * (t - np.abs(lags))[None, :]).astype(np.float64)
    bins = np.floor(np.log2(np.maximum(lum, LUMINANCE_FLOOR)) / _AC_BIN_STOPS).astype(np.int64)
    out: dict[int, tuple[np.ndarray, int]] = {}
    for i in range(0, n, 256):
        part = res[i:i + 256]
        spec = scipy.fft.rfft2(part, s=(size, size), axes=(1, 2))
        ac = scipy.fft.irfft2(spec.real ** 2 + spec.imag ** 2, s=(size, size), axes=(1, 2)).astype(np.float64)
        ac = np.fft.fftshift(ac, axes=(1, 2))[:, t - radius:t + radius + 1, t - radius:t + radius + 1]
        ac = ac / overlap[None, :, :, None]
        part_bins = bins[i:i + 256]
        for b in np.unique(part_bins):
            sel = part_bins == b
            total = ac[sel].sum(axis=0).transpose(2, 0, 1)
            prev = out.get(int(b))
            out[int(b)] = (total, int(sel.sum())) if prev is None else (prev[0] + total, prev[1] + int(sel.sum()))
    return out


def _variance_inliers(std: np.ndarray, lum: np.ndarray, use: np.ndarray) -> np.ndarray:
    """Tiles whose residual is not much larger than that of the quietest tiles of similar luminance.

    Grain at one luminance has one level; texture, shading and edges only add to it. Tiles are grouped
    in half-stop luminance bins; a tile is kept when its variance is at most 3 times the 20th
    percentile of the variances in its bin and the two neighbouring bins.
    """
    keep = np.zeros(std.shape, bool)
    idx = np.flatnonzero(use)
    if idx.size == 0:
        return keep
    bins = np.floor(2.0 * np.log2(np.maximum(lum[idx], LUMINANCE_FLOOR))).astype(np.int64)
    var = std[idx] ** 2
    for b in np.unique(bins):
        near = np.abs(bins - b) <= 1
        ref = np.percentile(var[near], 20)
        here = bins == b
        keep[idx[here]] = var[here] <= 3.0 * ref
    return keep


def _tile_stats(image: np.ndarray, *, mask: np.ndarray | None, tile: int, flatness: float,
                max_tiles: int, who: str) -> GrainTiles:
    colour, alpha = _split(image, who)
    h, w, nc = colour.shape
    radius = tile // 2
    if h < tile or w < tile:
        raise InputError(f"{who}: image is {w}x{h}, smaller than one {tile}x{tile} measuring tile; "
                         "use a smaller tile or a larger region")
    if not np.all(np.isfinite(colour)):
        colour = np.nan_to_num(colour, nan=0.0, posinf=0.0, neginf=0.0)
    mask = _check_mask(mask, (h, w), who)
    valid_px = np.ones((h, w, 1), np.float32)
    if alpha is not None:
        valid_px[:, :, 0] = np.minimum(valid_px[:, :, 0], (alpha >= 0.999).astype(np.float32))
    if mask is not None:
        valid_px[:, :, 0] = np.minimum(valid_px[:, :, 0], (mask >= 0.5).astype(np.float32))
    # Clipped pixels (at the frame's maximum or minimum in any channel: a blown-out lamp, crushed
    # blacks, letterbox bars) carry no grain.
    flat_px = colour.reshape(-1, nc)
    top, bottom = flat_px.max(axis=0), flat_px.min(axis=0)
    clipped = np.any(((colour >= top[None, None, :]) | (colour <= bottom[None, None, :]))
                     & (top > bottom)[None, None, :], axis=2)
    clipped = clipped.astype(np.float32)[:, :, None]
    valid = (_tiles(valid_px, tile).min(axis=(1, 2, 3)) > 0) & (_tiles(clipped, tile).mean(axis=(1, 2, 3)) <= 0.01)
    considered = int(valid.sum())
    empty = GrainTiles(tile, np.zeros(0), np.zeros((0, nc)), np.zeros((nc, nc)), {}, 0, considered)
    if considered == 0:
        return empty

    lum_tiles = _tiles(luminance(colour)[:, :, None], tile)[valid]
    res_l, mean_l = _poly_residual(lum_tiles)
    s = np.sqrt((res_l.astype(np.float64) ** 2).mean(axis=(1, 2, 3)))
    # Blur each tile on its own (reflected at its edges) so nothing outside the tile leaks in.
    res_b, _ = _poly_residual(gaussian_filter(lum_tiles, (0, _BLUR_SIGMA, _BLUR_SIGMA, 0), mode="reflect",
                                              truncate=3.0))
    sb = np.sqrt((res_b.astype(np.float64) ** 2).mean(axis=(1, 2, 3)))
    constant = s <= 1e-7 * (1.0 + np.abs(mean_l[:, 0].astype(np.float64)))
    empty.constant = int(constant.sum())
    cand = ~constant
    if not cand.any():
        return empty
    # 1. Stationarity: grain is as strong in each quadrant of a tile; an edge or an object is not.
    half = tile // 2
    quad = (res_l.astype(np.float64) ** 2).reshape(-1, 2, half, 2, half).mean(axis=(2, 4)).reshape(-1, 4)
    cand &= quad.max(axis=1) <= 3.0 * quad.min(axis=1)
    if not cand.any():
        return empty
    # 2. Level: at one luminance grain has one level and texture only adds to it.
    flat = _variance_inliers(s, mean_l[:, 0], cand)
    # 3. Structure: shading and edges survive the blur that grain does not; compare with the typical
    #    ratio of the tiles that passed the level test.
    ratio = np.where(cand, sb / np.maximum(s, 1e-30), np.inf)
    ref = np.median(ratio[flat]) if flat.any() else np.median(ratio[cand])
    flat &= ratio <= flatness * ref
    sel_pos = np.flatnonzero(flat)
    if sel_pos.size > max_tiles:
        sel_pos = sel_pos[np.linspace(0, sel_pos.size - 1, max_tiles).round().astype(np.int64)]
    chosen = np.flatnonzero(valid)[sel_pos]

    res, _ = _poly_residual(_tiles(colour, tile)[chosen])
    cov = np.einsum("nyxc,nyxd->ncd", res, res, dtype=np.float64)
    sumsq = np.einsum("ncc->nc", cov).copy()
    sd = np.sqrt(np.maximum(sumsq, 0.0))
    denom = sd[:, :, None] * sd[:, None, :]
    corr = np.where(denom > 0, cov / np.where(denom > 0, denom, 1.0), 0.0)
    corr[:, np.arange(nc), np.arange(nc)] = 1.0
    lum_sel = mean_l[sel_pos, 0].astype(np.float64)
    ny, nx = h // tile, w // tile
    y0, x0 = (h - ny * tile) // 2, (w - nx * tile) // 2
    pos = np.stack([y0 + (chosen // nx) * tile, x0 + (chosen % nx) * tile], axis=1)
    # The autocorrelation is an average: a few hundred tiles (evenly spread) measure it well.
    sub = np.linspace(0, len(res) - 1, min(len(res), _AC_TILES)).round().astype(np.int64)
    return GrainTiles(tile, lum_sel, sumsq, corr.sum(axis=0), _autocorrelation_sums(res[sub], lum_sel[sub], radius),
                      int(constant.sum()), considered, pos)


@functools.lru_cache(maxsize=8)
def _estimation_operator(t: int) -> tuple[np.ndarray, np.ndarray]:
    """How a tile's measured autocorrelation depends on the grain's true one.

    The grain's autocorrelation is modelled as ``a(d) = sum_k a_k phi_k(d)`` with tents ``phi_k`` at
    integer lag distances ``k = 0 .. t // 2`` (linear interpolation). For each tent, the expected lag
    sums of the residual after removing the quadratic surface, ``(I - P) Sigma_k (I - P)`` with ``P`` the
    projector onto the surface basis, are computed exactly (with FFTs). Returns ``A`` of shape
    ``(r+1, 2r+1, 2r+1)`` (expected lag sums over overlap, lag 0 centred) and ``s0`` of shape ``(r+1,)``
    (expected sum of squares), both per unit grain variance.
    """
    from scipy.signal import fftconvolve

    r = t // 2
    size = 2 * t
    x = np.arange(t, dtype=np.float64) - (t - 1) / 2
    u = [np.ones(t), x, x ** 2 - (x ** 2).mean()]
    u = [v / np.linalg.norm(v) for v in u]
    basis = [np.outer(u[i], u[j]) for i, j in ((0, 0), (0, 1), (1, 0), (0, 2), (2, 0), (1, 1))]

    def xcorr(p: np.ndarray, q: np.ndarray) -> np.ndarray:
        c = np.fft.irfft2(np.conj(np.fft.rfft2(p, s=(size, size))) * np.fft.rfft2(q, s=(size, size)),
                          s=(size, size))
        return np.fft.fftshift(c)[t - r:t + r + 1, t - r:t + r + 1]

    lags = np.arange(-r, r + 1)
    dist = np.hypot(lags[:, None], lags[None, :])
    overlap = (t - np.abs(lags))[:, None] * (t - np.abs(lags))[None, :].astype(np.float64)
    bb = [[xcorr(p, q) for q in basis] for p in basis]
    kl = np.arange(-(r + 1), r + 2)
    kdist = np.hypot(kl[:, None], kl[None, :])
    a_op = np.empty((r + 1, 2 * r + 1, 2 * r + 1))
    s0 = np.empty(r + 1)
    for k in range(r + 1):
        phi = np.maximum(0.0, 1.0 - np.abs(kdist - k))
        lag_sums = np.maximum(0.0, 1.0 - np.abs(dist - k)) * overlap
        conv = [fftconvolve(p, phi, mode="same") for p in basis]
        for m, (p, c) in enumerate(zip(basis, conv)):
            lag_sums -= xcorr(p, c) + xcorr(c, p)
            for n, c2 in enumerate(conv):
                lag_sums += float((p * c2).sum()) * bb[m][n]
        a_op[k] = lag_sums / overlap
        s0[k] = lag_sums[r, r]
    return a_op, s0


def _fit_autocorrelation(measured: np.ndarray, tile: int) -> tuple[np.ndarray, float]:
    """Radial autocorrelation ``a`` (``a[0] = 1``) that explains a measured one; and the variance factor.

    ``measured``: ``(2r+1, 2r+1)`` averaged per-tile autocorrelation (unit at lag 0). Solves, in the least
    squares sense (weights ``1 / d^2``) over lags within distance ``r``, ``sum_k a_k A_k(L) = c m(L)`` for ``a_1..a_{3r/4}``
    (beyond, ``a_k = 0``) and the scale ``c``. The factor ``sum_k a_k s0_k`` turns a tile's sum of squared residuals into the grain
    variance.
    """
    a_op, s0 = _estimation_operator(tile)
    r = tile // 2
    lags = np.arange(-r, r + 1)
    dist = np.hypot(lags[:, None], lags[None, :]).ravel()
    inside = dist <= r
    ops = a_op.reshape(r + 1, -1)[:, inside]
    m = measured.ravel()[inside]
    # Equations are weighted by 1/d^2: the many distant lags carry little signal and would otherwise
    # set the scale from their small offsets alone.
    wt = np.sqrt(1.0 / np.maximum(dist[inside], 1.0) ** 2)
    # A correlation that is constant over the tile is removed with the tile's mean and cannot be
    # measured: the fit assumes the grain is uncorrelated from three quarters of the tile radius on.
    free = max(1, (3 * r) // 4)
    lhs = np.concatenate([ops[1:free + 1].T, -m[:, None]], axis=1) * wt[:, None]
    sol, *_ = np.linalg.lstsq(lhs, -ops[0] * wt, rcond=None)
    a = np.zeros(r + 1)
    a[0] = 1.0
    a[1:free + 1] = np.clip(sol[:-1], -1.0, 1.0)
    factor = float(a @ s0)
    if not np.isfinite(factor) or factor <= 0:
        a = np.zeros(r + 1)
        a[0] = 1.0
        factor = float(s0[0])
    return a, factor


def _correlation_length(ac: Sequence[float]) -> float:
    """Lag (pixels) at which a radial autocorrelation (1 at lag 0) first falls to 0.5."""
    ac = np.asarray(ac, np.float64)
    below = np.flatnonzero(ac < 0.5)
    if below.size == 0:
        return float(ac.size - 1)
    i = int(below[0])
    a, b = ac[i - 1], ac[i]
    return float(i - 1 + (a - 0.5) / (a - b))


def _weighted_median(stack: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Element-wise weighted median along axis 0."""
    order = np.argsort(stack, axis=0)
    sorted_vals = np.take_along_axis(stack, order, axis=0)
    w = np.asarray(weights, np.float64)[order] if stack.ndim == 1 else \
        np.asarray(weights, np.float64)[order.reshape(order.shape[0], -1)].reshape(order.shape)
    cum = np.cumsum(w, axis=0)
    half = cum[-1:] / 2.0
    idx = np.argmax(cum >= half, axis=0)
    return np.take_along_axis(sorted_vals, idx[None], axis=0)[0]


def _profile_from_stats(stats: Sequence[GrainTiles], *, bands: int, band_edges: Sequence[float] | None,
                        channels: tuple[str, ...], colorspace: str, source: str, who: str,
                        monotonic: bool = True) -> GrainProfile:
    tile = stats[0].tile
    lum = np.concatenate([s.lum for s in stats])
    sumsq = np.concatenate([s.sumsq for s in stats])
    constant = sum(s.constant for s in stats)
    considered = sum(s.considered for s in stats)
    nc = len(channels)
    radius = tile // 2
    if lum.size == 0 and constant == 0:
        if considered == 0:
            raise InputError(f"{who}: no {tile}x{tile} region lies fully inside the mask/alpha; "
                             "give a larger measuring region or a smaller tile")
        raise InputError(f"{who}: no flat region found to measure grain on")
    n = lum.size
    lg = np.log2(np.maximum(lum, LUMINANCE_FLOOR))
    if band_edges is not None:
        edges = np.asarray(band_edges, np.float64)
        if edges.ndim != 1 or edges.size < 2 or np.any(np.diff(edges) <= 0) or not np.all(np.isfinite(edges)):
            raise InputError(f"{who}: band_edges must be at least 2 increasing finite log2 luminances")
    elif lg.size:
        lo, hi = np.percentile(lg, [1, 99])
        if hi - lo < 0.25:
            mid = 0.5 * (lo + hi)
            lo, hi = mid - 0.125, mid + 0.125
        edges = np.linspace(lo, hi, bands + 1)
    else:
        edges = np.linspace(-8.0, 0.0, bands + 1)
    nb = edges.size - 1

    def band_of(values: np.ndarray) -> np.ndarray:
        return np.clip(np.searchsorted(edges, values, side="right") - 1, 0, nb - 1)

    # Per band: a robust mean of the tiles' sums of squares (tiles above 4x the median are dropped).
    which = band_of(lg)
    level = np.full((nb, nc), np.nan)
    centers = 0.5 * (edges[:-1] + edges[1:])
    counts = np.zeros(nb, np.int64)
    for b in range(nb):
        v = sumsq[which == b]
        if v.shape[0] == 0:
            continue
        med = np.median(v, axis=0)
        keep = np.all(v <= 4.0 * med + 1e-30, axis=1)
        v = v[keep] if keep.any() else v
        level[b] = v.mean(axis=0)
        centers[b] = float(np.median(lg[which == b]))
        counts[b] = int(v.shape[0])
    filled = counts > 0
    # Grain does not decrease with scene-linear luminance (shot noise, film grain, quantisation of a
    # log or video encoding all grow with it); a dark band noisier than a brighter one measured texture.
    # Each band is capped at the lowest level of the bands above it, then at the level of the band
    # below it grown in proportion to luminance. Bands capped by more than 1.5x in standard deviation
    # are left out of the spatial statistics.
    envelope = level.copy()
    if monotonic and filled.any():
        running = np.full(nc, np.inf)
        for b in range(nb - 1, -1, -1):
            if filled[b]:
                running = np.minimum(running, level[b])
                envelope[b] = running
        # ... and grows at most in proportion to luminance (film grain, constant in density): a band
        # far noisier than the one below it measured texture too.
        prev = None
        for b in range(nb):
            if filled[b]:
                if prev is not None:
                    growth = 2.0 ** (2.0 * max(centers[b] - centers[prev], 0.0))
                    envelope[b] = np.minimum(envelope[b], envelope[prev] * growth)
                prev = b
    textured = filled & np.any(level > 2.25 * envelope + 1e-30, axis=1)

    if n:
        pooled: dict[int, list] = {}
        for st in stats:
            for key, (sums, count) in st.ac_bins.items():
                if key in pooled:
                    pooled[key][0] = pooled[key][0] + sums
                    pooled[key][1] += count
                else:
                    pooled[key] = [sums, count]
        maps, weights = [], []
        for key, (sums, count) in pooled.items():
            if textured[band_of(np.array([(key + 0.5) * _AC_BIN_STOPS]))[0]]:
                continue
            if np.all(sums[:, radius, radius] > 0):
                maps.append(sums / sums[:, radius, radius][:, None, None])
                weights.append(count)
        if maps:
            # Weighted median over luminance bins: robust to a bin where texture slipped through.
            ac2d = _weighted_median(np.stack(maps), np.asarray(weights))
        else:
            ac2d = np.zeros((nc, 2 * radius + 1, 2 * radius + 1))
            ac2d[:, radius, radius] = 1.0
        corr = sum(s.corr_sum for s in stats) / n
        fits = [_fit_autocorrelation(ac2d[c], tile) for c in range(nc)]
        radial = np.stack([f[0] for f in fits])
        factor = np.array([f[1] for f in fits])
    else:
        radial = np.zeros((nc, radius + 1))
        radial[:, 0] = 1.0
        corr = np.eye(nc)
        factor = np.ones(nc)
    std = np.sqrt(np.maximum(envelope, 0.0) / factor[None, :])
    trusted = filled & ~textured
    if not trusted.any():
        trusted = filled
    if not filled.any():
        std[:] = 0.0                     # only constant tiles: no grain
    else:
        # Bands without trusted tiles: log-log interpolation between trusted bands; beyond them the
        # shot-noise law (variance in proportion to luminance) from the nearest trusted band.
        t_idx = np.flatnonzero(trusted)
        for b in np.flatnonzero(~trusted):
            lo_t, hi_t = t_idx[t_idx < b], t_idx[t_idx > b]
            if lo_t.size and hi_t.size:
                i, j = lo_t[-1], hi_t[0]
                f = (centers[b] - centers[i]) / max(centers[j] - centers[i], 1e-9)
                std[b] = np.exp((1 - f) * np.log(np.maximum(std[i], 1e-30)) + f * np.log(np.maximum(std[j], 1e-30)))
                std[b] = np.where((std[i] == 0) | (std[j] == 0), 0.0, std[b])
            else:
                i = lo_t[-1] if lo_t.size else hi_t[0]
                std[b] = std[i] * 2.0 ** (0.5 * (centers[b] - centers[i]))
        counts = np.where(trusted, counts, 0)
    return GrainProfile(
        channels=channels,
        tile=tile,
        band_edges=tuple(float(v) for v in edges),
        band_centers=tuple(float(v) for v in centers),
        std=tuple(tuple(float(v) for v in row) for row in std),
        counts=tuple(int(v) for v in counts),
        autocorrelation=tuple(tuple(float(v) for v in row) for row in radial),
        channel_correlation=tuple(tuple(float(v) for v in row) for row in corr),
        correlation_length=tuple(_correlation_length(row) for row in radial),
        colorspace=colorspace,
        source=source,
    )


# -- public functions --------------------------------------------------------------------------------

def measure_grain(image: np.ndarray | Sequence[np.ndarray], *, mask: np.ndarray | Sequence | None = None,
                  tile: int = 32, bands: int = 8, band_edges: Sequence[float] | None = None,
                  flatness: float = 1.5, max_tiles: int = 3000, monotonic: bool = True,
                  colorspace: str = "ACEScg", source: str = "") -> GrainProfile:
    """Measure a plate's grain from its flat regions.

    Parameters
    ----------
    image : np.ndarray or sequence of np.ndarray
        ``(H, W, C)`` float32, scene-linear, C = 1 (mono), 3 (RGB) or 4 (premultiplied RGBA: only tiles
        with alpha 1 throughout are used). Several frames are pooled into one profile.
    mask : np.ndarray, optional
        ``(H, W)`` (or ``(H, W, k)``, last plane used) weights: only tiles where the mask is at least 0.5
        throughout are measured (e.g. a garbage matte excluding the actor). One per frame when several.
    tile : int
        Measuring tile size in pixels; the autocorrelation is measured up to lag ``tile // 2``.
    bands : int
        Number of luminance bands, equally spaced in log2 luminance between the 1st and 99th percentile
        of the measured tiles' luminance.
    band_edges : sequence of float, optional
        Explicit band edges in log2 luminance (``bands`` is then ignored); pass another profile's
        ``band_edges`` to compare two measurements band by band.
    flatness : float
        Tiles whose texture ratio is at most ``flatness`` times the 20th percentile are measured.
    max_tiles : int
        Per frame, at most this many flat tiles (evenly spread) are measured.
    monotonic : bool
        Treat grain as never decreasing with luminance and growing at most in proportion to it (see the
        module notes); bands that break this are taken as textured and interpolated.

    Returns
    -------
    GrainProfile

    Raises
    ------
    InputError
        A mask of the wrong size, no tile inside the mask/alpha, a channel count other than 1, 3 or 4, or
        no flat region.
        A constant image gives a profile with zero grain (``profile.is_zero``).
    """
    if isinstance(image, np.ndarray):
        frames = [image]
        masks = [mask]
    else:
        frames = list(image)
        if not frames:
            raise InputError("measure grain: no frames given")
        masks = list(mask) if mask is not None else [None] * len(frames)
        if len(masks) != len(frames):
            raise InputError(f"measure grain: {len(frames)} frames but {len(masks)} masks")
    who = "measure grain"
    stats = []
    for i, (frame, m) in enumerate(zip(frames, masks)):
        w = who if len(frames) == 1 else f"{who} (frame {i})"
        stats.append(measure_tiles(frame, mask=m, tile=tile, flatness=flatness, max_tiles=max_tiles, who=w))
    return profile_from_tiles(stats, bands=bands, band_edges=band_edges, monotonic=monotonic, colorspace=colorspace,
                              source=source)


def measure_tiles(image: np.ndarray, *, mask: np.ndarray | None = None, tile: int = 32, flatness: float = 1.5,
                  max_tiles: int = 3000, who: str = "measure grain") -> GrainTiles:
    """First half of :func:`measure_grain` on one frame: find and measure its flat tiles.

    Same arguments as :func:`measure_grain`; pool the results of several frames with
    :func:`profile_from_tiles`.
    """
    if not (8 <= int(tile) <= 128):
        raise InputError(f"{who}: tile must be between 8 and 128 pixels, got {tile}")
    if not flatness >= 1:
        raise InputError(f"{who}: flatness must be at least 1, got {flatness}")
    return _tile_stats(image, mask=mask, tile=int(tile), flatness=float(flatness), max_tiles=max(1, int(max_tiles)),
                       who=who)


def profile_from_tiles(tiles: Sequence[GrainTiles], *, bands: int = 8, band_edges: Sequence[float] | None = None,
                       monotonic: bool = True, colorspace: str = "ACEScg", source: str = "") -> GrainProfile:
    """Second half of :func:`measure_grain`: pool the flat tiles of one or more frames into a profile."""
    who = "measure grain"
    tiles = list(tiles)
    if not tiles:
        raise InputError(f"{who}: no frames given")
    if bands < 1:
        raise InputError(f"{who}: bands must be at least 1, got {bands}")
    ncs = {t.sumsq.shape[1] for t in tiles}
    sizes = {t.tile for t in tiles}
    if len(ncs) > 1 or len(sizes) > 1:
        raise InputError(f"{who}: frames differ in channel count {sorted(ncs)} or tile size {sorted(sizes)}")
    nc = ncs.pop()
    channels = ("R", "G", "B") if nc == 3 else ("Y",)
    return _profile_from_stats(tiles, bands=int(bands), band_edges=band_edges, channels=channels,
                               colorspace=colorspace, source=source, who=who, monotonic=monotonic)


def _cholesky(corr: np.ndarray) -> np.ndarray:
    c = 0.5 * (corr + corr.T)
    vals, vecs = np.linalg.eigh(c)
    vals = np.maximum(vals, 1e-6)
    c = (vecs * vals) @ vecs.T
    d = np.sqrt(np.diag(c))
    c = c / d[:, None] / d[None, :]
    return np.linalg.cholesky(c)


def synthesize_grain(height: int, width: int, profile: GrainProfile, *,
                     rng: np.random.Generator) -> np.ndarray:
    """Unit-variance grain with the profile's spectrum and channel correlation.

    Returns ``(height, width, C)`` float32, zero mean, standard deviation 1 per channel (C = the
    profile's channel count). Deterministic for a given ``rng`` state.
    """
    nc = len(profile.channels)
    white = rng.standard_normal((height, width, nc), dtype=np.float32)
    if nc > 1:
        chol = _cholesky(np.asarray(profile.channel_correlation, np.float64)).astype(np.float32)
        if not np.allclose(chol, np.eye(nc), atol=1e-6):
            white = np.ascontiguousarray(white @ chol.T)
    out = np.empty_like(white)
    for c in range(nc):
        k = profile.kernel(c)
        plane = np.ascontiguousarray(white[:, :, c])
        out[:, :, c] = plane if k.shape == (1, 1) else cv2.filter2D(plane, -1, k, borderType=cv2.BORDER_REFLECT)
    return out


def regrain(image: np.ndarray, profile: GrainProfile, *, rng: np.random.Generator | None = None,
            seed: int = 0, amount: float = 1.0, mask: np.ndarray | None = None) -> np.ndarray:
    """Add grain matching ``profile`` to a clean element.

    Parameters
    ----------
    image : np.ndarray
        ``(H, W, C)`` float32, scene-linear; C = 1, 3 or 4 (premultiplied RGBA: grain is scaled by alpha
        so it stays premultiplied; alpha is unchanged). NaN or infinite values raise InputError.
    profile : GrainProfile
        Measured grain; a mono profile on an RGB image adds the same grain to all three channels.
    rng : numpy.random.Generator, optional
        Source of randomness (a stage passes ``stage.rng(t)`` so every frame is reproducible in any
        chunk); ``seed`` is used when it is None.
    amount : float
        Multiplies the grain's standard deviation.
    mask : np.ndarray, optional
        ``(H, W)`` weights in [0, 1] where grain is added.

    Returns
    -------
    np.ndarray
        Same shape, float32. Grain amplitude follows each pixel's luminance (alpha-divided), so HDR
        values get the profile's top-band grain; values are never clipped and never NaN.
    """
    colour, alpha = _split(image, "regrain")
    h, w, nc = colour.shape
    mask = _check_mask(mask, (h, w), "regrain")
    npc = len(profile.channels)
    if npc not in (1, nc):
        raise InputError(f"regrain: the profile has channels {profile.channels} but the image has {nc} colour "
                         "channel(s); measure a profile on a plate with the same channels")
    out = image.copy() if image.ndim == 3 else image[:, :, None].copy()
    if amount == 0 or profile.is_zero or (mask is not None and not mask.any()):
        return out
    if not np.all(np.isfinite(image)):
        raise InputError("regrain: the image holds NaN or infinite values; repair them first")
    rng = rng if rng is not None else np.random.default_rng(seed)
    lum = _straight_luminance(colour, alpha)
    std = profile.std_at(lum)                                  # (H, W, npc)
    grain = synthesize_grain(h, w, profile, rng=rng)
    grain *= std
    grain *= np.float32(amount)
    weight = None
    if alpha is not None:
        weight = np.clip(alpha, 0.0, 1.0)
    if mask is not None:
        weight = mask if weight is None else weight * mask
    if weight is not None:
        grain *= weight[:, :, None]
    out[:, :, :nc] += grain if npc == nc else grain[:, :, :1]
    return out


def _atrous_kernel(level: int) -> np.ndarray:
    step = 2 ** level
    k = np.zeros(4 * step + 1, np.float32)
    k[::step] = _B3
    return k


def wavelet_noise_levels(profile: GrainProfile, scales: int, *, size: int = 256) -> np.ndarray:
    """Standard deviation of unit-variance grain (with the profile's spectrum) in each a-trous detail level.

    Returns ``(scales, C)`` float64, computed in the Fourier domain on a ``size x size`` grid.
    """
    f = np.fft.fftfreq(size)
    out = np.empty((scales, len(profile.channels)))
    for c in range(len(profile.channels)):
        psd = profile.psd_2d(c, size)
        low = np.ones((size, size))
        for j in range(scales):
            step = 2 ** j
            h1 = (6 + 8 * np.cos(2 * np.pi * f * step) + 2 * np.cos(4 * np.pi * f * step)) / 16.0
            hj = h1[:, None] * h1[None, :]
            psi = low * (1.0 - hj)
            out[j, c] = math.sqrt(float((psd * psi ** 2).mean()))
            low = low * hj
    return out


def degrain(image: np.ndarray, profile: GrainProfile | None = None, *, strength: float = 1.0, scales: int = 4,
            mask: np.ndarray | None = None) -> np.ndarray:
    """Remove grain with a profile-driven wavelet filter (see the module notes).

    Parameters
    ----------
    image : np.ndarray
        ``(H, W, C)`` float32, scene-linear; C = 1, 3 or 4 (premultiplied RGBA: the expected grain is
        scaled by alpha; alpha passes through).
    profile : GrainProfile, optional
        The grain to remove; measured from ``image`` itself when None.
    strength : float
        Scales the grain level the filter assumes (1: as measured, with the usual 1.5 over-subtraction;
        higher removes more grain and more detail).
    scales : int
        Number of wavelet detail levels filtered (1..6); grain coarser than ``2**scales`` pixels remains.
    mask : np.ndarray, optional
        ``(H, W)`` weights: where the degrained result replaces the input.

    Returns
    -------
    np.ndarray
        Same shape, float32, HDR values and negative values preserved (nothing is clipped).
    """
    colour, alpha = _split(image, "degrain")
    h, w, nc = colour.shape
    if not (1 <= scales <= 6):
        raise InputError(f"degrain: scales must be between 1 and 6, got {scales}")
    mask = _check_mask(mask, (h, w), "degrain")
    out = image.copy() if image.ndim == 3 else image[:, :, None].copy()
    if not np.all(np.isfinite(colour)):
        raise InputError("degrain: the image holds NaN or infinite values; repair them first")
    if profile is None:
        profile = measure_grain(image)
    npc = len(profile.channels)
    if npc not in (1, nc):
        raise InputError(f"degrain: the profile has channels {profile.channels} but the image has {nc} colour "
                         "channel(s)")
    if strength == 0 or profile.is_zero:
        return out
    levels = wavelet_noise_levels(profile, scales)
    smooth = cv2.GaussianBlur(colour, (0, 0), 2.0, borderType=cv2.BORDER_REFLECT).reshape(h, w, nc)
    lum = _straight_luminance(smooth, alpha)
    sigma = profile.std_at(lum)                                      # (H, W, npc)
    if alpha is not None:
        sigma *= np.clip(alpha, 0.0, 1.0)[:, :, None]
    s2 = np.float32(1.5 * strength) ** 2
    for c in range(nc):
        pc = c if npc == nc else 0
        noise_var = sigma[:, :, pc] ** 2 * s2
        cur = np.ascontiguousarray(colour[:, :, c])
        result = np.zeros_like(cur)
        for j in range(scales):
            k = _atrous_kernel(j)
            nxt = cv2.sepFilter2D(cur, -1, k, k, borderType=cv2.BORDER_REFLECT)
            detail = cur - nxt
            win = min(4 * 2 ** j + 1, 33)
            energy = cv2.blur(detail * detail, (win, win), borderType=cv2.BORDER_REFLECT)
            nv = noise_var * np.float32(levels[j, pc] ** 2)
            gain = np.float32(1.0) - nv / np.maximum(energy, np.float32(1e-30))
            np.maximum(gain, 0.0, out=gain)
            result += detail * gain
            cur = nxt
        result += cur
        if mask is not None:
            result = colour[:, :, c] + mask * (result - colour[:, :, c])
        out[:, :, c] = result
    return out


def missing_grain(target: GrainProfile, present: GrainProfile) -> GrainProfile:
    """The grain to add to an image that already carries ``present`` so that it carries ``target``.

    Per band of ``target`` and channel: ``sqrt(max(0, target^2 - present^2))`` with ``present`` read at
    the band's luminance (independent grains add in variance). The spatial statistics are the
    target's.
    """
    if len(present.channels) not in (1, len(target.channels)):
        raise InputError(f"missing grain: profiles have channels {target.channels} and {present.channels}")
    have = present.std_at(2.0 ** np.asarray(target.band_centers, np.float32)).astype(np.float64)
    want = np.asarray(target.std, np.float64)
    std = np.sqrt(np.maximum(want ** 2 - have ** 2, 0.0))
    return dataclasses.replace(target, std=tuple(tuple(float(v) for v in row) for row in std), _cache={},
                               source=f"{target.source} minus {present.source}".strip())
