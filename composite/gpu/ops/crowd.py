"""Crowd sprite compositing on a torch device: :func:`composite.extend.crowd.render_crowd`'s drawing.

Placement, perspective and sprite resampling are the NumPy version's (host, cached per sprite size);
each resampled sprite is uploaded once per process and device and kept (:data:`SPRITE_CACHE_MAX`), and
the far-to-near drawing (colour variation matrix, haze, contact shadow, ``over``, depth and id where the
sprite is solid) runs on the device. Results agree with the NumPy drawing to float32 rounding.

Example
-------
>>> import numpy as np, torch
>>> from composite.extend.camera import GroundCamera
>>> from composite.extend.crowd import Sprite, SpriteLibrary, place_agents
>>> from composite.gpu.ops.crowd import render_crowd
>>> fig = np.zeros((20, 8, 4), np.float32); fig[2:, 2:6] = (0.2, 0.1, 0.05, 1.0)
>>> lib = SpriteLibrary([Sprite([fig], (4.0, 19.5), 18.0)])
>>> cam = GroundCamera(horizon_y=10.0, height=1.7, focal_px=60.0, cx=32.0)
>>> agents = place_agents(cam, 64, 48, 5, n_sprites=1, seed=1)
>>> out = render_crowd(lib, agents, cam, 64, 48, device=torch.device("cpu"))
>>> tuple(out.rgba.shape), bool(out.rgba[..., 3].max() > 0)
((48, 64, 4), True)
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

import cv2
import numpy as np
import torch

from ...extend.crowd import _SHADOW, Agents, SpriteLibrary, _clip_box
from ..tensor import to_device
from ._common import ieee_fp32

#: Resampled sprites kept on the device (least recently used dropped).
SPRITE_CACHE_MAX = 4096
_SPRITES: OrderedDict = OrderedDict()


@dataclass
class CrowdFrame:
    rgba: torch.Tensor   # (H, W, 4) premultiplied
    depth: torch.Tensor  # (H, W) metres, inf where empty
    ident: torch.Tensor  # (H, W) agent id (0 = none), float32


def _sprite_on_device(key, make, device):
    full = (key, str(device))
    t = _SPRITES.get(full)
    if t is None:
        t = to_device(np.ascontiguousarray(make()), device, what="crowd sprite")
        _SPRITES[full] = t
        while len(_SPRITES) > SPRITE_CACHE_MAX:
            _SPRITES.popitem(last=False)
    else:
        _SPRITES.move_to_end(full)
    return t


def render_crowd(library: SpriteLibrary, agents: Agents, camera, width: int, height: int, *, frame: int = 0,
                 shadow_opacity: float = 0.4, haze_density: float = 0.0,
                 haze_color: tuple[float, float, float] = (0.6, 0.65, 0.7), min_pixel_height: float = 1.0,
                 device=None) -> CrowdFrame:
    """Draw agents far to near into a ``height x width`` premultiplied RGBA frame on ``device``."""
    device = device or torch.device("cpu")
    canvas = torch.zeros((height, width, 4), dtype=torch.float32, device=device)
    depth = torch.full((height, width), float("inf"), dtype=torch.float32, device=device)
    ident = torch.zeros((height, width), dtype=torch.float32, device=device)
    if len(agents) == 0:
        return CrowdFrame(canvas, depth, ident)
    fx, fy = camera.project(agents.X, agents.Z)
    ph = camera.pixel_height(agents.size_m, agents.Z)
    haze = torch.as_tensor(np.asarray(haze_color, np.float32), device=device)
    lib_id = id(library)
    for i in range(len(agents)):
        h_px = ph[i]
        if h_px < min_pixel_height:
            continue
        sp = library.sprites[agents.sprite[i]]
        fidx = (frame + int(agents.offset[i])) % len(sp.frames)
        scale = h_px / sp.height
        sh, sw = sp.frames[fidx].shape[:2]
        th, tw = max(1, int(round(sh * scale))), max(1, int(round(sw * scale)))
        mirror = bool(agents.mirror[i])
        key = (lib_id, int(agents.sprite[i]), fidx, th, tw, mirror)

        def make(src=sp.frames[fidx], tw=tw, th=th, scale=scale, mirror=mirror):
            img = cv2.resize(src, (tw, th), interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
            if img.ndim == 2:
                img = img[..., None]
            return img[:, ::-1] if mirror else img

        img = _sprite_on_device(key, make, device)
        foot_x = (sw - sp.foot[0]) if mirror else sp.foot[0]
        x0 = int(round(fx[i] - foot_x * scale))
        y0 = int(round(fy[i] - sp.foot[1] * scale))
        transmit = float(np.exp(-haze_density * agents.Z[i])) if haze_density > 0 else 1.0
        if shadow_opacity > 0 and h_px >= 3:
            sw_px = max(2, int(round(0.5 * tw)))
            sh_px = max(1, int(round(sw_px * 0.25)))
            sk = _sprite_on_device(("shadow", sw_px, sh_px),
                                   lambda sw_px=sw_px, sh_px=sh_px: cv2.resize(_SHADOW, (sw_px, sh_px),
                                                                               interpolation=cv2.INTER_AREA), device)
            _over_alpha_only(canvas, sk * (shadow_opacity * transmit), int(round(fx[i] - sw_px / 2)),
                             int(round(fy[i] - sh_px / 2)))
        ys, xs, sy, sx = _clip_box(x0, y0, img.shape[1], img.shape[0], width, height)
        if ys is None:
            continue
        crop = img[sy, sx]
        a = crop[..., 3:4]
        with ieee_fp32(device):
            rgb = crop[..., :3] @ torch.as_tensor(np.ascontiguousarray(agents.color[i].T), device=device)
        if transmit < 1.0:
            rgb = rgb * transmit + haze * (1 - transmit) * a
        region = canvas[ys, xs]
        region[..., :3] = rgb + region[..., :3] * (1 - a)
        region[..., 3:4] = a + region[..., 3:4] * (1 - a)
        solid = a[..., 0] > 0.5
        dview = depth[ys, xs]
        dview[solid] = float(agents.Z[i])
        iview = ident[ys, xs]
        iview[solid] = float(agents.ident[i])
    return CrowdFrame(canvas, depth, ident)


def _over_alpha_only(canvas, alpha, x0: int, y0: int) -> None:
    ys, xs, sy, sx = _clip_box(x0, y0, alpha.shape[1], alpha.shape[0], canvas.shape[1], canvas.shape[0])
    if ys is None:
        return
    a = alpha[sy, sx][..., None]
    region = canvas[ys, xs]
    region *= (1 - a)
    region[..., 3:4] += a
