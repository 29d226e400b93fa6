"""Extension stages: the procedural crowd."""

from __future__ import annotations

import functools
import hashlib
import json
import os

import numpy as np

from ..core.coverage import mark_generated, with_coverage
from ..core.errors import InputError, RecipeError
from ..core.image import RGBA, Image
from ..core.state import AlphaState
from ..graph.params import Param
from ..graph.registry import register
from ..graph.stage import ANY_ALPHA, Input, Stage
from .camera import GroundCamera
from .crowd import SpriteLibrary, place_agents, render_crowd, sprites_from_matte
from .generator import GeneratorRecord, attach_record


@functools.lru_cache(maxsize=8)
def _load_library(path: str, mtime_ns: int, min_height: int) -> SpriteLibrary:
    if os.path.isdir(path):
        return SpriteLibrary.load(path)
    from ..io.images import read_image, to_working

    img = to_working(read_image(path), "ACEScg")
    if img.channels != RGBA:
        raise InputError(f"{path}: a sprite sheet needs an alpha channel (RGBA), got channels {img.channels}")
    return sprites_from_matte(img.pixels, min_height=min_height, name=os.path.basename(path) + ":")


def _file_identity(path: str) -> str:
    if not os.path.exists(path):
        return f"missing:{path}"
    if os.path.isdir(path):
        parts = [_file_identity(os.path.join(path, n)) for n in sorted(os.listdir(path))]
        return hashlib.sha256("|".join(parts).encode()).hexdigest()
    st = os.stat(path)
    return f"{os.path.abspath(path)}|{st.st_size}|{st.st_mtime_ns}"


@register
class Crowd(Stage):
    """Instance a crowd of sprite extras on the plate camera's ground plane.

    Output: premultiplied RGBA (working space) with ``depth`` (metres, layer channel Z), ``crowd_id``
    (agent id, 0 = none) and ``ai_coverage`` layers. ``library`` is a sprite library folder or an RGBA
    sprite sheet (one extra per connected alpha region). Agents are seeded: the same agents stand in
    the same places in every frame and chunk. The optional ``plate`` input gives format and time.
    ``density_map`` (luminance in [0, 1]) thins agents; ``keepout_map`` (luminance > 0.5) keeps the
    ground under it free. Both are static images resized to the frame, so placement never changes
    between frames.
    """

    version = 1
    inputs = {
        "plate": Input("plate for format and time", alpha=ANY_ALPHA, optional=True),
    }
    params = {
        "library": Param(str, "", path=True, doc="sprite library folder or RGBA sprite sheet"),
        "count": Param(int, 1000, range=(0, 200000)),
        "seed": Param(int, 0, range=(0, 2**31 - 1)),
        "width": Param(int, 1920, range=(1, 16384), doc="frame width when no plate is connected"),
        "height": Param(int, 1080, range=(1, 16384), doc="frame height when no plate is connected"),
        "horizon_y": Param(float, 400.0, doc="image row of the horizon"),
        "camera_height": Param(float, 1.7, range=(0.01, 10000.0), doc="metres above the ground"),
        "focal_px": Param(float, 1500.0, range=(1.0, 1e6), doc="focal length in pixels"),
        "depth_range": Param(list, [8.0, 200.0], item=float, length=2, doc="near and far ground depth (m)"),
        "person_height": Param(float, 1.75, range=(0.1, 10.0)),
        "scale_jitter": Param(float, 0.08, range=(0.0, 0.5)),
        "hue_jitter": Param(float, 0.03, range=(0.0, 0.5)),
        "sat_jitter": Param(float, 0.15, range=(0.0, 1.0)),
        "value_jitter": Param(float, 0.2, range=(0.0, 1.0)),
        "mirror": Param(bool, True),
        "shadow_opacity": Param(float, 0.4, range=(0.0, 1.0)),
        "haze_density": Param(float, 0.0, range=(0.0, 10.0), doc="per metre"),
        "haze_color": Param(list, [0.6, 0.65, 0.7], item=float, length=3),
        "min_sprite_height": Param(int, 16, range=(1, 10000)),
        "density_map": Param(str, "", path=True, doc="optional image: agent density in [0, 1] (luminance)"),
        "keepout_map": Param(str, "", path=True, doc="optional image: no agents where luminance > 0.5"),
        "generated": Param(bool, False, doc="count the crowd as generated pixels in ai_coverage"),
    }

    def check_params(self):
        if not self.p.library:
            raise RecipeError("a sprite library (folder) or RGBA sprite sheet is required", key="params.library")
        near, far = self.p.depth_range
        if not 0 < near < far:
            raise RecipeError(f"depth_range must be [near, far] with 0 < near < far, got {list(self.p.depth_range)}",
                              key="params.depth_range")

    def fingerprint_extra(self) -> str:
        maps = [self.p.density_map, self.p.keepout_map]
        return "|".join([_file_identity(self.p.library)] + [_file_identity(m) if m else "" for m in maps])

    def _library(self) -> SpriteLibrary:
        path = self.p.library
        if not os.path.exists(path):
            raise InputError(f"{path}: sprite library not found")
        return _load_library(path, os.stat(path).st_mtime_ns, self.p.min_sprite_height)

    def process(self, t, plate=None):
        lib = self._library()
        if plate is not None:
            w, h = plate.display_window.width, plate.display_window.height
        else:
            w, h = self.p.width, self.p.height
        cam = GroundCamera(horizon_y=self.p.horizon_y, height=self.p.camera_height, focal_px=self.p.focal_px,
                           cx=w / 2.0)
        density = _map(self.p.density_map, w, h)
        keep = _map(self.p.keepout_map, w, h)
        loop = max(len(s.frames) for s in lib.sprites)
        agents = _place_cached(cam, w, h, self.p.count, len(lib), self.p.seed, tuple(self.p.depth_range),
                               self.p.person_height, self.p.scale_jitter, self.p.hue_jitter, self.p.sat_jitter,
                               self.p.value_jitter, self.p.mirror, loop, density, keep)
        fr = render_crowd(lib, agents, cam, w, h, frame=t, shadow_opacity=self.p.shadow_opacity,
                          haze_density=self.p.haze_density, haze_color=tuple(self.p.haze_color))
        depth = np.where(np.isfinite(fr.depth), fr.depth, np.float32(0)).astype(np.float32)
        img = Image(fr.rgba, RGBA, alpha=AlphaState.PREMULTIPLIED, time=self.time(t),
                    display_window=plate.display_window if plate is not None else None)
        img = img.with_layer("depth", depth[..., None], ("Z",)).with_layer("crowd_id", fr.ident[..., None], ("id",))
        img = mark_generated(img) if self.p.generated else with_coverage(img, np.zeros((h, w), np.float32))
        record = GeneratorRecord("procedural_crowd", generated=self.p.generated,
                                 params={"count": self.p.count, "seed": self.p.seed, "sprites": len(lib)},
                                 sources=[os.path.abspath(self.p.library)])
        return attach_record(img, record)


def _map(path: str, w: int, h: int) -> np.ndarray | None:
    """A static single-channel map from an image file (mean of its colour channels), resized to w x h."""
    if not path:
        return None
    from ..core.geometry import resize
    from ..io.images import read_image

    px = read_image(path).pixels
    chans = px[..., :3] if px.shape[2] >= 3 else px[..., :1]
    return resize(np.ascontiguousarray(chans), w, h, filter="bilinear").mean(axis=2).clip(0, 1)


def _place_cached(cam, w, h, count, n_sprites, seed, depth_range, person_height, sj, hj, satj, vj, mirror, loop,
                  density, keep):
    key = json.dumps([cam.horizon_y, cam.height, cam.focal_px, cam.cx, w, h, count, n_sprites, seed, depth_range,
                      person_height, sj, hj, satj, vj, mirror, loop])
    if density is not None:
        key += hashlib.sha256(np.ascontiguousarray(density).tobytes()).hexdigest()
    if keep is not None:
        key += hashlib.sha256(np.ascontiguousarray(keep).tobytes()).hexdigest()
    hit = _AGENTS.get(key)
    if hit is None:
        hit = place_agents(cam, w, h, count, n_sprites=n_sprites, seed=seed, depth_range=depth_range,
                           person_height=person_height, scale_jitter=sj, hue_jitter=hj, sat_jitter=satj,
                           value_jitter=vj, mirror=mirror, loop_length=loop, density=density, keepout=keep)
        if len(_AGENTS) > 8:
            _AGENTS.clear()
        _AGENTS[key] = hit
    return hit


_AGENTS: dict[str, object] = {}
