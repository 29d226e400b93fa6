"""Look consistency across shots: match a set of shots to a hero reference frame and report ΔE2000.

A generated environment and its characters must keep one look over a sequence. :func:`match_shots` fits,
for each shot, a colour transfer (:mod:`composite.color.transfer`) from the shot's representative frame to
the hero frame (optionally restricted to mattes: the environment of each, the sky, a character), applies
it, and reports how far each shot's look is from the hero's before and after, in ΔE2000. The fitted
transforms are stored values (``ShotMatch.transform``): apply them to every frame of the shot (the
``ColorTransfer`` stage's ``transform`` parameter) so the match does not flicker, and optionally export
each as an ASC CDL (:func:`composite.color.cdl.fit_cdl`) into one .ccc with an id per shot.

Shots of different framing cannot be compared pixel by pixel, so the look distance compares colour
distributions in the CIELAB of a display (:func:`composite.color.delta_e.display_lab`, ``"srgb_clip"`` by
default: ACEScg → Rec.709 primaries, clipped to [0, 1], CIELAB D65):

* ``quantile_de``: ΔE2000 between the shot's and the hero's q-th per-channel quantiles of (L*, a*, b*),
  for q = 1 %, 2 %, ..., 99 %; summarised as mean, median and 95th percentile over the 99 levels.
  It is 0 when the two distributions have the same marginals.
* ``mean_de``: ΔE2000 between the mean CIELAB colours.
* ``stats``: mean, standard deviation and the 5/50/95 % quantiles of L*, a*, b*.

Example
-------
>>> import numpy as np
>>> from composite.color.consistency import match_shots
>>> rng = np.random.default_rng(1)
>>> hero = rng.uniform(0.02, 0.6, (24, 32, 3)).astype(np.float32)
>>> shot = (hero[::-1] * np.array([1.3, 1.0, 0.7], np.float32))
>>> result = match_shots({"sh020": shot}, hero, method="reinhard")
>>> result.matches["sh020"].after["quantile_de"]["mean"] < result.matches["sh020"].before["quantile_de"]["mean"]
True
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..core.errors import InputError
from ..io.atomic import write_text_atomic
from .cdl import CDL, CDLFit, apply_cdl, fit_cdl, write_cdl_file
from .delta_e import DISPLAYS, delta_e_2000, display_lab, summarize
from .transfer import ColorTransform, collect_samples, fit_color_transfer, straight_colour

QUANTILES = np.linspace(0.01, 0.99, 99)
_STAT_QUANTILES = np.array([0.05, 0.5, 0.95])
#: Pixels (every k-th) sampled for look statistics: 2^16 pin the 1 %..99 % quantiles far below 0.1 ΔE.
LOOK_SAMPLES = 1 << 16


@dataclass(frozen=True, eq=False)
class LookProfile:
    """The colour distribution of an image region in display CIELAB: weighted mean, std and quantiles."""

    display: str
    mean: np.ndarray
    std: np.ndarray
    quantiles: np.ndarray  # (99, 3): 1 %..99 % per channel
    stat_quantiles: np.ndarray  # (3, 3): 5, 50, 95 %
    samples: int

    @classmethod
    def of_samples(cls, lab: np.ndarray, w: np.ndarray, display: str) -> LookProfile:
        mean = np.average(lab, axis=0, weights=w)
        std = np.sqrt(np.average((lab - mean) ** 2, axis=0, weights=w))
        qs = np.concatenate([QUANTILES, _STAT_QUANTILES])
        q = np.empty((qs.size, 3))
        for c in range(3):  # one sort per channel serves every quantile
            order = np.argsort(lab[:, c])
            v, ww = lab[order, c], w[order]
            cdf = (np.cumsum(ww) - 0.5 * ww) / ww.sum()
            q[:, c] = np.interp(qs, cdf, v)
        return cls(display, mean, std, q[:QUANTILES.size], q[QUANTILES.size:], int(lab.shape[0]))

    def stats(self) -> dict[str, Any]:
        r = lambda a: [round(float(v), 4) for v in a]  # noqa: E731
        return {"display": self.display, "space": "CIELAB D65", "mean": r(self.mean), "std": r(self.std),
                "p05": r(self.stat_quantiles[0]), "p50": r(self.stat_quantiles[1]),
                "p95": r(self.stat_quantiles[2]), "samples": self.samples}

    def distance(self, hero: LookProfile) -> dict[str, Any]:
        """ΔE2000 between quantiles (mean/median/p95 over the 99 levels) and between means."""
        de = delta_e_2000(self.quantiles, hero.quantiles)
        return {"quantile_de": _summary(de), "mean_de": round(float(delta_e_2000(self.mean, hero.mean)), 4)}


def look_profile(pixels: np.ndarray, *, weights=None, display: str = "srgb_clip",
                 max_samples: int | None = LOOK_SAMPLES, what: str = "image") -> LookProfile:
    """The :class:`LookProfile` of an image region (``(H, W, 3)`` or premultiplied RGBA float32 ACEScg)."""
    if display not in DISPLAYS:
        raise InputError(f"unknown display {display!r}; allowed: {', '.join(DISPLAYS)}")
    x, w = collect_samples(pixels, weights, what=what, max_samples=max_samples)
    return LookProfile.of_samples(display_lab(x, display=display), w, display)


def look_statistics(pixels: np.ndarray, *, weights=None, display: str = "srgb_clip",
                    max_samples: int | None = LOOK_SAMPLES, what: str = "image") -> dict[str, Any]:
    """Display-CIELAB statistics of an image region: mean, std and 5/50/95 % quantiles of L*, a*, b*.

    ``pixels``: ``(H, W, 3)`` or premultiplied ``(H, W, 4)`` float32 scene-linear ACEScg.
    """
    return look_profile(pixels, weights=weights, display=display, max_samples=max_samples, what=what).stats()


def _summary(de: np.ndarray) -> dict[str, float]:
    return {"mean": round(float(de.mean()), 4), "median": round(float(np.median(de)), 4),
            "p95": round(float(np.percentile(de, 95)), 4)}


def _report(profile: LookProfile, hero: LookProfile) -> dict[str, Any]:
    return {**profile.distance(hero), "stats": profile.stats()}


def look_distance(pixels: np.ndarray, hero: np.ndarray, *, weights=None, hero_weights=None,
                  display: str = "srgb_clip", max_samples: int | None = LOOK_SAMPLES) -> dict[str, Any]:
    """How far an image's look is from the hero's, in ΔE2000 (module docstring).

    Returns ``{"quantile_de": {"mean", "median", "p95"}, "mean_de", "stats", "display"}``.
    """
    a = look_profile(pixels, weights=weights, display=display, max_samples=max_samples, what="shot")
    b = look_profile(hero, weights=hero_weights, display=display, max_samples=max_samples, what="hero")
    return {**_report(a, b), "display": display}


@dataclass(frozen=True, eq=False)
class ShotMatch:
    """One shot's match to the hero: the fitted transform, the look report before/after, optional CDL."""

    name: str
    transform: ColorTransform
    before: dict[str, Any]
    after: dict[str, Any]
    cdl: CDLFit | None = None
    cdl_after: dict[str, Any] | None = None

    def report(self) -> dict[str, Any]:
        d: dict[str, Any] = {"shot": self.name, "method": self.transform.method, "space": self.transform.space,
                             "strength": self.transform.strength, "transfer_stats": dict(self.transform.stats),
                             "notes": list(self.transform.notes), "before": self.before, "after": self.after,
                             "transform": self.transform.to_dict()}
        if self.cdl is not None:
            d["cdl"] = self.cdl.to_dict()
            d["cdl_after"] = self.cdl_after
        return d


@dataclass(eq=False)
class ConsistencyResult:
    """Matches of every shot, the hero's statistics and the matched frames."""

    matches: dict[str, ShotMatch]
    hero_stats: dict[str, Any]
    images: dict[str, np.ndarray] = field(default_factory=dict)
    display: str = "srgb_clip"

    def report(self) -> dict[str, Any]:
        """A JSON-serialisable report: per shot ΔE2000 before/after and the statistics used."""
        return {"display": self.display, "delta_e": "CIEDE2000 between per-channel CIELAB quantiles "
                "(1..99 %) of shot and hero, and between mean colours",
                "hero": self.hero_stats, "shots": {k: m.report() for k, m in self.matches.items()}}

    def table(self) -> str:
        """A plain-text table of quantile ΔE2000 (mean / median / p95) before and after, per shot."""
        lines = [f"{'shot':<16} {'before mean/med/p95':>24} {'after mean/med/p95':>24}"]
        for name, m in self.matches.items():
            b, a = m.before["quantile_de"], m.after["quantile_de"]
            lines.append(f"{name:<16} {b['mean']:7.2f} {b['median']:7.2f} {b['p95']:7.2f}  "
                         f"{a['mean']:7.2f} {a['median']:7.2f} {a['p95']:7.2f}")
        return "\n".join(lines)

    def write_report(self, path: str | os.PathLike) -> str:
        path = os.fspath(path)
        write_text_atomic(path, json.dumps(self.report(), indent=2))
        return path

    def cdls(self) -> list[CDL]:
        missing = [k for k, m in self.matches.items() if m.cdl is None]
        if missing:
            raise InputError(f"shots {missing} have no fitted CDL; run match_shots(..., fit_cdl=True)")
        return [m.cdl.cdl for m in self.matches.values()]

    def write_ccc(self, path: str | os.PathLike) -> str:
        """Write every shot's CDL (id = shot name) into one .ccc (or .cdl) file."""
        return write_cdl_file(path, self.cdls())


def match_shots(shots: Mapping[str, np.ndarray], hero: np.ndarray, *, method: str = "mkl",
                space: str | None = None, strength: float = 1.0, hero_weights=None,
                shot_weights: Mapping[str, np.ndarray] | None = None, display: str = "srgb_clip",
                fit_cdl_per_shot: bool = False, cdl_encoding: str = "acescct", keep_images: bool = True,
                max_samples: int | None = 1 << 18) -> ConsistencyResult:
    """Match each shot's look to a hero frame.

    Parameters
    ----------
    shots : mapping of str to np.ndarray
        Shot name → representative frame, ``(H, W, 3)`` or premultiplied ``(H, W, 4)`` float32 scene-linear
        ACEScg (sizes may differ between shots and from the hero).
    hero : np.ndarray
        The hero reference frame (same conventions).
    method, space, strength
        The colour transfer (:func:`composite.color.transfer.fit_color_transfer`); MKL in ACEScct by default.
    hero_weights : np.ndarray or None
        ``(H, W)`` matte of the hero region whose look is the target (e.g. the environment).
    shot_weights : mapping of str to np.ndarray or None
        Per shot ``(H, W)`` mattes of the corresponding regions; the transfer is estimated there and applied
        to the whole frame, and the report measures those regions.
    display : {"srgb_clip", "aces_sdr", "none"}
        Display encoding of the ΔE2000 report.
    fit_cdl_per_shot : bool
        Also fit an ASC CDL (in ``cdl_encoding``) reproducing each shot's match, and report its look
        distance (``cdl_after``) and its per-pixel ΔE2000 to the transfer's result (``cdl_vs_transfer``).
    keep_images : bool
        Keep the matched frames in ``result.images``.

    Returns
    -------
    ConsistencyResult
    """
    if not shots:
        raise InputError("match_shots: no shots given")
    shot_weights = dict(shot_weights or {})
    unknown = sorted(set(shot_weights) - set(shots))
    if unknown:
        raise InputError(f"match_shots: mattes given for unknown shots {unknown}; shots: {sorted(shots)}")
    hero_profile = look_profile(hero, weights=hero_weights, display=display, what="hero")
    hero_stats = hero_profile.stats()
    matches: dict[str, ShotMatch] = {}
    images: dict[str, np.ndarray] = {}
    for name, frame in shots.items():
        weights = shot_weights.get(name)
        try:
            tr = fit_color_transfer(frame, hero, method=method, space=space, strength=strength,
                                    image_weights=weights, reference_weights=hero_weights, max_samples=max_samples)
        except InputError as exc:
            raise InputError(f"shot {name!r}: {exc}") from None
        matched = tr.apply(frame)

        def profile(img, _w=weights, _name=name):
            return look_profile(img, weights=_w, display=display, what=f"shot {_name!r}")

        before = _report(profile(frame), hero_profile)
        after = _report(profile(matched), hero_profile)
        cdl_fit = None
        cdl_after = None
        if fit_cdl_per_shot:
            cdl_fit = fit_cdl(frame, matched, weights=weights, encoding=cdl_encoding, id=name,
                              description=f"match to hero ({tr.method}, {tr.space})")
            graded = apply_cdl(frame, cdl_fit.cdl, encoding=cdl_encoding)
            cdl_after = _report(profile(graded), hero_profile)
            g, _ = straight_colour(graded)
            m, _ = straight_colour(matched)
            step = max(1, (g.shape[0] * g.shape[1]) // LOOK_SAMPLES)
            de = delta_e_2000(display_lab(g.reshape(-1, 3)[::step], display=display),
                              display_lab(m.reshape(-1, 3)[::step], display=display))
            cdl_after["cdl_vs_transfer"] = {k: round(v, 4) for k, v in summarize(de).items()}
        matches[name] = ShotMatch(name, tr, before, after, cdl_fit, cdl_after)
        if keep_images:
            images[name] = matched
    return ConsistencyResult(matches, hero_stats, images, display)
