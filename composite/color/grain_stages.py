"""Pipeline stages for grain: Regrain, Degrain and MatchGrain.

A grain profile is data. It reaches a pipeline in one of three ways:

* a JSON file written by :meth:`~composite.color.grain.GrainProfile.save` (``profile_path``; the file's
  content is part of the stage's fingerprint, so re-measuring re-renders);
* inline in the recipe (``profile``: the dictionary of :meth:`GrainProfile.to_dict`);
* measured on the fly from a reference plate (:class:`MatchGrain`), pooled over ``reference_radius``
  frames either side and cached per frame, so a sequential render measures each plate frame once.

Grain is seeded by ``stage.rng(t)`` (stage type, node name, ``seed`` and frame): chunked farm renders give
bit-identical frames.

Recipe example::

    stages:
      plate: {type: ReadImage, params: {path: plates/sh010.####.exr}}
      cg:    {type: ReadImage, params: {path: gen/sh010_bg.####.exr}}
      grain: {type: MatchGrain, inputs: {image: cg, reference: plate}, params: {reference_radius: 2}}
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import numpy as np

from ..core.errors import InputError, RecipeError, StateError
from ..core.image import Image
from ..core.merge import to_window
from ..core.state import AlphaState
from ..graph.params import Param, thaw
from ..graph.registry import register
from ..graph.stage import Input, Stage
from . import grain as g


def _colour_indices(image: Image, who: str) -> list[int]:
    """Indices of R, G, B (and A when premultiplied) in the image's channels."""
    try:
        idx = [image.channels.index(c) for c in ("R", "G", "B")]
    except ValueError:
        if image.channels in (("Y",), ("L",)):
            idx = [0]
        else:
            raise StateError(f"{who}: expects R, G, B channels (or one Y channel), got {image.channels}") from None
    if image.alpha is AlphaState.PREMULTIPLIED and "A" in image.channels:
        idx.append(image.channels.index("A"))
    return idx


def _apply(image: Image, idx: list[int], fn) -> Image:
    """Run ``fn`` on the colour (+alpha) planes and put the result back into a copy of the pixels."""
    view = np.ascontiguousarray(image.pixels[:, :, idx])
    result = fn(view)
    pixels = image.pixels.copy()
    pixels[:, :, idx] = result
    return image.with_pixels(pixels)


class _ProfileSource:
    """Loads a profile from ``profile_path`` or the inline ``profile`` parameter (cached by file state)."""

    def __init__(self, path: str | None, inline: Any, who: str):
        self.path = path
        self.inline = thaw(inline) if inline is not None else None
        self.who = who
        self._key: tuple | None = None
        self._profile: g.GrainProfile | None = None

    def _stat(self) -> tuple:
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            raise InputError(f"{self.who}: grain profile {self.path} not found; write one with "
                             "composite.color.grain.measure_grain(...).save(path)") from None
        return (self.path, st.st_mtime_ns, st.st_size)

    def get(self) -> g.GrainProfile | None:
        if self.path is None and self.inline is None:
            return None
        if self.path is None:
            if self._profile is None:
                self._profile = g.GrainProfile.from_dict(self.inline, source=f"{self.who} params.profile")
            return self._profile
        key = self._stat()
        if key != self._key:
            self._profile = g.GrainProfile.load(self.path)
            self._key = key
        return self._profile

    def digest(self) -> str:
        if self.path is None:
            return ""
        try:
            data = Path(self.path).read_bytes()
        except FileNotFoundError:
            raise InputError(f"{self.who}: grain profile {self.path} not found; write one with "
                             "composite.color.grain.measure_grain(...).save(path)") from None
        return "grain-profile:" + hashlib.sha256(data).hexdigest()


_PROFILE_PARAMS = {
    "profile_path": Param(str, None, optional=True, path=True, doc="grain profile JSON (GrainProfile.save)"),
    "profile": Param(dict, None, optional=True, doc="grain profile inline (GrainProfile.to_dict)"),
}


@register
class Regrain(Stage):
    """Add synthetic grain matching a measured profile (file or inline) to a clean or generated element."""

    inputs = {"image": Input("clean element, premultiplied or opaque")}
    params = {
        **_PROFILE_PARAMS,
        "amount": Param(float, 1.0, range=(0.0, 10.0), doc="multiplies the grain's standard deviation"),
        "seed": Param(int, 0, doc="varies the grain pattern; frames are seeded by (node, seed, frame)"),
    }

    def check_params(self):
        if (self.p.profile_path is None) == (self.p.profile is None):
            raise RecipeError("give exactly one of profile_path (a JSON file) or profile (inline)",
                              key="params.profile_path")
        self._source = _ProfileSource(self.p.profile_path, self.p.profile, self.type_name)
        if self.p.profile is not None:
            self._source.get()                    # validate inline profiles when the recipe loads

    def identity(self, t):
        return "image" if self.p.amount == 0.0 else None

    def fingerprint_extra(self) -> str:
        return self._source.digest()

    def process(self, t, image):
        profile = self._source.get()
        idx = _colour_indices(image, self.node_name)
        return _apply(image, idx, lambda px: g.regrain(px, profile, rng=self.rng(t), amount=self.p.amount))


@register
class Degrain(Stage):
    """Remove grain with the profile-driven wavelet filter; without a profile, each frame measures its own."""

    inputs = {"image": Input("grainy plate or element, premultiplied or opaque")}
    params = {
        **_PROFILE_PARAMS,
        "strength": Param(float, 1.0, range=(0.0, 4.0), doc="scales the grain level assumed (1: as measured)"),
        "scales": Param(int, 4, range=(1, 6), doc="wavelet detail levels filtered"),
    }

    def check_params(self):
        if self.p.profile_path is not None and self.p.profile is not None:
            raise RecipeError("give at most one of profile_path or profile", key="params.profile")
        self._source = _ProfileSource(self.p.profile_path, self.p.profile, self.type_name)
        if self.p.profile is not None:
            self._source.get()

    def identity(self, t):
        return "image" if self.p.strength == 0.0 else None

    def fingerprint_extra(self) -> str:
        return self._source.digest()

    def process(self, t, image):
        profile = self._source.get()
        idx = _colour_indices(image, self.node_name)
        return _apply(image, idx, lambda px: g.degrain(px, profile, strength=self.p.strength,
                                                       scales=self.p.scales))


@register
class MatchGrain(Stage):
    """Give an element the grain of a reference plate, measured on the fly from the plate's flat regions.

    ``mode``: ``add`` adds the plate's grain to the element (clean CG or generated elements);
    ``top_up`` measures the element's own grain and adds only what is missing (variances add);
    ``replace`` first removes the element's own grain (degrain, measured on the element), then tops up
    what the degrain left. Where the element has no measurable region (too small, transparent), its
    own grain counts as none.
    The optional ``mask`` input (a matte, last channel read) limits where the plate is measured, e.g. to
    exclude an actor or a title.
    """

    inputs = {
        "image": Input("element to regrain, premultiplied or opaque"),
        "reference": Input("plate whose grain is matched", window="reference_radius"),
        "mask": Input("where to measure the plate (last channel; >= 0.5 measured)", alpha=None,
                      optional=True, window="reference_radius"),
    }
    params = {
        "mode": Param(str, "add", choices=("add", "top_up", "replace")),
        "amount": Param(float, 1.0, range=(0.0, 10.0)),
        "strength": Param(float, 1.0, range=(0.0, 4.0), doc="degrain strength in replace mode"),
        "reference_radius": Param(int, 0, range=(0, 12), doc="plate frames either side pooled into the profile"),
        "tile": Param(int, 32, range=(8, 128), doc="measuring tile size in pixels"),
        "bands": Param(int, 8, range=(1, 32), doc="luminance bands"),
        "seed": Param(int, 0),
    }

    def check_params(self):
        self._tiles: dict[int, tuple[np.ndarray, Any, g.GrainTiles]] = {}

    def identity(self, t):
        return "image" if self.p.amount == 0.0 and self.p.mode == "add" else None

    def _measure(self, f: int, plate: Image, mask: Image | None) -> g.GrainTiles:
        hit = self._tiles.get(f)
        mask_px = None if mask is None else mask.pixels
        if hit is not None and hit[0] is plate.pixels and hit[1] is mask_px:
            return hit[2]
        idx = _colour_indices(plate, f"{self.node_name} reference")
        px = np.ascontiguousarray(plate.pixels[:, :, idx])
        m = None
        if mask is not None:
            if mask.data_window != plate.data_window:
                mask = to_window(mask, plate.data_window)
            m = mask.pixels[:, :, -1]
        tiles = g.measure_tiles(px, mask=m, tile=self.p.tile, who=f"{self.node_name} reference frame {f}")
        self._tiles[f] = (plate.pixels, mask_px, tiles)
        keep = 2 * self.p.reference_radius + 3
        while len(self._tiles) > keep:
            self._tiles.pop(max(self._tiles, key=lambda k: abs(k - f)))
        return tiles

    def profile(self, reference: dict[int, Image], mask: dict[int, Image] | None = None) -> g.GrainProfile:
        """The pooled profile of the reference frames (as ``process`` measures it)."""
        tiles = [self._measure(f, reference[f], None if mask is None else mask.get(f)) for f in sorted(reference)]
        frames = f"{min(reference)}-{max(reference)}" if len(reference) > 1 else f"{min(reference)}"
        try:
            return g.profile_from_tiles(tiles, bands=self.p.bands, source=f"{self.node_name} reference")
        except InputError as exc:
            raise InputError(f"{self.node_name} ({self.type_name}) reference frame(s) {frames}: "
                             f"{str(exc).split(': ', 1)[-1]}") from None

    def process(self, t, image, reference, mask=None):
        profile = self.profile(reference, mask)
        idx = _colour_indices(image, self.node_name)

        def own_grain(px):
            try:
                return g.measure_grain(px, tile=self.p.tile, band_edges=profile.band_edges)
            except InputError:
                return None                       # nothing measurable: count as no grain

        def run(px):
            add = profile
            if self.p.mode == "replace":
                own = own_grain(px)
                if own is not None:
                    px = g.degrain(px, own, strength=self.p.strength)
            if self.p.mode in ("replace", "top_up"):
                own = own_grain(px)
                if own is not None:
                    add = g.missing_grain(profile, own)
            return g.regrain(px, add, rng=self.rng(t), amount=self.p.amount)

        return _apply(image, idx, run)
