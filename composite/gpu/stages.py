"""Which stages run on a torch device, and how: the registry of torch stage implementations.

An implementation is a function ``fn(stage, t, **inputs) -> DeviceImage | {output: DeviceImage}``
registered for a stage class with :func:`torch_stage`. It receives its inputs as
:class:`~composite.gpu.image.DeviceImage` (dicts of them for temporal windows) and must produce what the
stage's :meth:`~composite.graph.Stage.process` produces, to float tolerance. ``supports(stage)`` may
decline particular parameter choices (those then run on the NumPy path, their inputs downloaded).

A stage may also opt in to **batching**: ``batch(stage, ts, **inputs)`` receives lists of frames (one
entry per frame of ``ts``) and returns a list of outputs, computing all of them with single device
calls over ``(N, H, W, C)`` stacks. :func:`composite.gpu.graph.evaluate_batch` uses it when every
frame of the batch has the same layout.

Implementations are registered for the stage class itself, not for subclasses (a subclass may change
``process``). Third-party stages register theirs the same way::

    from composite.gpu.stages import torch_stage

    @torch_stage(MyStage)
    def _my_stage(stage, t, image):
        return image.with_pixels(image.pixels * stage.p.gain)

Stages with torch implementations (see :func:`implemented`): Constant, NoOp, Merge, Premultiply,
Unpremultiply, Crop, Reformat, Transform (not lanczos), ColorDifferenceKey, ScreenSubtractKey, Despill,
CleanPlate, GarbageMatte, MatteErode, MatteBlur, MatteClamp, MatteCombine, EdgeExtend, ColorTransfer,
Grade, CDL, Regrain, LightWrap, Defocus, Crowd. Everything else runs on the NumPy path.
"""

from __future__ import annotations

import importlib
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ..core.errors import InputError, StateError
from ..core.image import RGBA, Window
from ..core.state import RAW_SPACE, AlphaState
from ..graph.stage import Stage
from . import frames
from .image import DeviceImage, DeviceLayer
from .ops import color as tcolor
from .ops import matte as tmatte
from .ops import merge as tmerge
from .tensor import to_device

log = logging.getLogger("composite.gpu")

#: Where Regrain's white noise comes from on the device path (see :mod:`composite.gpu.ops.grain`):
#: ``"numpy"`` keeps GPU and CPU renders interchangeable; ``"device"`` is faster and differs from NumPy.
GRAIN_NOISE = "numpy"


@dataclass(frozen=True)
class TorchStage:
    """A stage's torch implementation."""

    process: Callable[..., Any]
    batch: Callable[..., list] | None = None
    supports: Callable[[Stage], bool] | None = None


_IMPLS: dict[type, TorchStage] = {}
_loaded = False


def torch_stage(cls: type[Stage], *, batch: Callable | None = None, supports: Callable | None = None):
    """Decorator registering ``fn(stage, t, **inputs)`` as the torch implementation of ``cls``."""
    def deco(fn):
        _IMPLS[cls] = TorchStage(fn, batch, supports)
        return fn
    return deco


def implementation(stage: Stage) -> TorchStage | None:
    """The torch implementation that runs ``stage`` with its parameters, or None (NumPy path)."""
    _load()
    impl = _IMPLS.get(type(stage))
    if impl is None:
        return None
    if impl.supports is not None and not impl.supports(stage):
        return None
    return impl


def implemented() -> list[str]:
    """Type names of the stages with a torch implementation."""
    _load()
    return sorted(cls.type_name for cls in _IMPLS)


# -- helpers -----------------------------------------------------------------------------------------

def _device_of(*images) -> torch.device:
    for im in images:
        if isinstance(im, DeviceImage):
            return im.device
    return torch.device("cpu")


def _cols(image: DeviceImage, names, who: str) -> list[int]:
    try:
        return [image.channels.index(c) for c in names]
    except ValueError:
        raise StateError(f"{who}: expects channels {tuple(names)}, got {image.channels}") from None


def _colour_idx(image: DeviceImage, who: str) -> list[int]:
    """R, G, B (and A when premultiplied): the planes colour operations take."""
    idx = _cols(image, ("R", "G", "B"), who)
    if image.alpha is AlphaState.PREMULTIPLIED and "A" in image.channels:
        idx.append(image.channels.index("A"))
    return idx


def _gather(pixels, idx: list[int]):
    if idx == list(range(pixels.shape[-1])):
        return pixels
    if idx == list(range(len(idx))):
        return pixels[..., :len(idx)]
    return pixels[..., idx]


def _scatter(image: DeviceImage, idx: list[int], values) -> DeviceImage:
    if idx == list(range(image.pixels.shape[-1])):
        return image.with_pixels(values.contiguous())
    out = image.pixels.clone()
    out[..., idx] = values
    return image.with_pixels(out)


def _matte_of(image: DeviceImage, who: str):
    if "A" in image.channels:
        return image.channel("A")
    if len(image.channels) == 1:
        return image.pixels[..., 0]
    raise StateError(f"{who}: expects a matte (an A channel or a single channel), got channels {image.channels}")


def _matte_image(m, like: DeviceImage) -> DeviceImage:
    return DeviceImage.wrap(m.contiguous()[..., None], like, layers={}, channels=("A",), colorspace=RAW_SPACE,
                            alpha=AlphaState.OPAQUE)


def _same_size(image, other, what: str, who: str) -> None:
    if tuple(other.pixels.shape[:2]) != tuple(image.pixels.shape[:2]):
        raise InputError(f"{who}: {what} is {other.width}x{other.height} but the image is "
                         f"{image.width}x{image.height}; reformat it to the same size")


def _uniform(images: list[DeviceImage]) -> bool:
    """True when every frame has the same pixel shape, channels and state (so frames can be stacked)."""
    first = images[0]
    return all(im.pixels.shape == first.pixels.shape and im.channels == first.channels and im.alpha is first.alpha
               and im.colorspace == first.colorspace and im.data_window == first.data_window for im in images)


def _batched(fn_pixels: Callable, images: list[DeviceImage], make: Callable):
    """Stack frames, call ``fn_pixels`` once on ``(N, H, W, C)``, and rebuild each frame with ``make``."""
    out = fn_pixels(torch.stack([im.pixels for im in images]))
    return [make(im, out[i]) for i, im in enumerate(images)]


# -- builtin stages -----------------------------------------------------------------------------------

def _register_builtin() -> None:
    from ..core import geometry
    from ..graph import builtin as b

    @torch_stage(b.NoOp)
    def _noop(stage, t, image):
        return image

    @torch_stage(b.Constant)
    def _constant(stage, t, **_):
        dev = current_device()
        px = torch.empty((stage.p.height, stage.p.width, 4), dtype=torch.float32, device=dev)
        px[...] = torch.as_tensor(np.asarray(stage.p.color, np.float32), device=dev)
        from ..core.image import Image
        from .image import placeholder

        header = Image(placeholder(px.shape), RGBA, time=stage.time(t))
        return DeviceImage(px, header)

    def _merge_batch(stage, ts, a, b):
        op = stage.p.operation
        pairs = [frames.prepare_merge(op, ai, bi) for ai, bi in zip(a, b)]
        if not (_uniform([p[0] for p in pairs]) and _uniform([p[1] for p in pairs])):
            return [frames.merge_images(op, ai, bi, mix=stage.p.mix) for ai, bi in zip(a, b)]
        out = tmerge.OPERATIONS[op](torch.stack([p[0].pixels for p in pairs]), torch.stack([p[1].pixels for p in pairs]),
                                    mix=stage.p.mix)
        return [frames.finish_merge(op, pa, pb, out[i], mix=stage.p.mix) for i, (pa, pb) in enumerate(pairs)]

    @torch_stage(b.Merge, batch=_merge_batch)
    def _merge(stage, t, a, b):
        return frames.merge_images(stage.p.operation, a, b, mix=stage.p.mix)

    def _premult_batch(stage, ts, image):
        for im in image:
            im.require(channels=RGBA, who=stage.node_name)
        if not _uniform(image):
            return [_premult(stage, t, im) for t, im in zip(ts, image)]
        return _batched(tmerge.premultiply, image, lambda im, px: im.with_pixels(px, alpha=AlphaState.PREMULTIPLIED))

    @torch_stage(b.Premultiply, batch=_premult_batch)
    def _premult(stage, t, image):
        image.require(channels=RGBA, who=stage.node_name)
        return image.with_pixels(tmerge.premultiply(image.pixels), alpha=AlphaState.PREMULTIPLIED)

    def _unpremult_batch(stage, ts, image):
        for im in image:
            im.require(channels=RGBA, who=stage.node_name)
        if not _uniform(image):
            return [_unpremult(stage, t, im) for t, im in zip(ts, image)]
        return _batched(tmerge.unpremultiply, image, lambda im, px: im.with_pixels(px, alpha=AlphaState.STRAIGHT))

    @torch_stage(b.Unpremultiply, batch=_unpremult_batch)
    def _unpremult(stage, t, image):
        image.require(channels=RGBA, who=stage.node_name)
        return image.with_pixels(tmerge.unpremultiply(image.pixels), alpha=AlphaState.STRAIGHT)

    @torch_stage(b.Crop)
    def _crop(stage, t, image):
        from ..core.errors import RecipeError

        x, y, w, h = stage.p.box
        if w <= 0 or h <= 0:
            raise RecipeError(f"crop box width and height must be positive, got {w}x{h}", key="params.box")
        src = image.display_window
        win = Window.from_size(w, h, src.xmin + x, src.ymin + y)
        out = frames.to_window(image, win)
        new = Window.from_size(w, h)
        return out.replace(data_window=new, display_window=new)

    def _resize_t(p, width, height, flt):
        from .ops._common import resize_antialiased
        return resize_antialiased(p, int(width), int(height), filter=flt)

    def _crop_t(p, x, y, width, height):
        h, w, c = p.shape
        out = p.new_zeros((height, width, c))
        x0, y0 = max(x, 0), max(y, 0)
        x1, y1 = min(x + width, w), min(y + height, h)
        if x1 > x0 and y1 > y0:
            out[y0 - y:y1 - y, x0 - x:x1 - x] = p[y0:y1, x0:x1]
        return out

    def _map(image: DeviceImage, fn, window: Window) -> DeviceImage:
        layers = {n: DeviceLayer(fn(lay.pixels), lay.channels) for n, lay in image.layers.items()}
        return image.replace(pixels=fn(image.pixels), layers=layers, data_window=window)

    @torch_stage(b.Reformat)
    def _reformat(stage, t, image):
        p = stage.p
        width, height, mode, flt, pa = p.width, p.height, p.mode, p.filter, p.pixel_aspect
        src = frames.to_window(image, image.display_window)
        sw, sh = src.width * src.pixel_aspect, src.height
        dw, dh = width * pa, height
        if mode == "distort":
            def fn(q):
                return _resize_t(q, width, height, flt)
        else:
            k = {"fit": min(dw / sw, dh / sh), "fill": max(dw / sw, dh / sh), "none": 1.0}[mode]
            scale_x, scale_y = k * src.pixel_aspect / pa, k
            nw, nh = max(1, round(src.width * scale_x)), max(1, round(src.height * scale_y))
            ox, oy = (width - nw) // 2, (height - nh) // 2
            down = nw < src.width or nh < src.height
            fl = "area" if down and flt in ("bilinear", "area") else flt

            def fn(q, nw=nw, nh=nh, ox=ox, oy=oy, fl=fl):
                scaled = q if (nw, nh) == (q.shape[1], q.shape[0]) else _resize_t(q, nw, nh, fl)
                return _crop_t(scaled, -ox, -oy, width, height)
        window = Window.from_size(width, height)
        out = _map(src, fn, window)
        return out.replace(display_window=window, pixel_aspect=pa)

    @torch_stage(b.Transform, supports=lambda st: st.p.filter != "lanczos")
    def _transform(stage, t, image):
        from .ops.warp import transform

        dw = image.display_window
        center = stage.p.center or ((dw.xmin + dw.xmax) / 2, (dw.ymin + dw.ymax) / 2)
        m = geometry.affine_matrix(translate=stage.p.translate, rotate=stage.p.rotate, scale=stage.p.scale,
                                   center=center)
        if image.alpha is AlphaState.OPAQUE:
            image = frames.as_rgba(image, who=stage.node_name)
        src = frames.to_window(image, image.display_window)
        size = (src.width, src.height)
        ox, oy = image.display_window.xmin, image.display_window.ymin
        shift = np.array([[1, 0, -ox], [0, 1, -oy], [0, 0, 1]], np.float64)
        unshift = np.array([[1, 0, ox], [0, 1, oy], [0, 0, 1]], np.float64)
        local = (shift @ np.vstack([m, [0, 0, 1]]) @ unshift)[:2]
        return _map(src, lambda q: transform(q, local, size=size, filter=stage.p.filter), src.data_window)


# -- matte stages -------------------------------------------------------------------------------------

def _register_matte() -> None:
    from ..matte import stages as ms
    from .ops import keying as tk
    from .ops.despill import despill as tdespill

    def _key(stage, t, image, clean_plate=None, garbage=None, core=None):
        who = f"{stage.node_name} ({stage.type_name})"
        if image.channels[:3] != ("R", "G", "B"):
            raise StateError(f"{who}: expects an RGB plate, got channels {image.channels}")
        rgb = image.pixels[..., :3]
        cp = stage.p.clean_plate if stage.p.clean_plate == "auto" else None
        if clean_plate is not None:
            _same_size(image, clean_plate, "clean plate", who)
            if clean_plate.channels[:3] != ("R", "G", "B"):
                raise StateError(f"{who}: expects an RGB plate, got channels {clean_plate.channels}")
            cp = clean_plate.pixels[..., :3]
        mattes = {}
        for name, m in (("garbage", garbage), ("core", core)):
            if m is not None:
                _same_size(image, m, f"{name} matte", who)
                mattes[name] = _matte_of(m, who)
        fn = tk.key_color_difference if isinstance(stage, ms.ColorDifferenceKey) else tk.key_screen_subtract
        extra = ({"red_weight": stage.p.red_weight, "blue_green_weight": stage.p.blue_green_weight,
                  "balance": stage.p.balance} if isinstance(stage, ms.ColorDifferenceKey) else
                 {"screen_gain": stage.p.screen_gain, "screen_balance": stage.p.screen_balance,
                  "softness": stage.p.softness})
        try:
            res = fn(rgb, screen=stage.p.screen, screen_color=stage.p.screen_color, clean_plate=cp,
                     clip_black=stage.p.clip_black, clip_white=stage.p.clip_white,
                     despill=None if stage.p.despill == "none" else stage.p.despill,
                     spill_strength=stage.p.spill_strength, replace_color=stage.p.replace_color,
                     denoise_radius=stage.p.denoise_radius, denoise_eps=stage.p.denoise_eps, **mattes, **extra)
        except InputError as exc:
            raise InputError(f"{who} frame {t}: {exc}") from None
        meta = {ms.SCREEN_COLOR_KEY: [round(float(c), 6) for c in res.screen_color]}
        out = image.replace(pixels=res.rgba(), channels=RGBA, alpha=AlphaState.PREMULTIPLIED, layers={},
                            metadata={**image.metadata, **meta})
        return {"image": out, "matte": _matte_image(res.alpha, image)}

    def _key_batch(stage, ts, image, clean_plate=None, garbage=None, core=None):
        # One device call for the batch when the screen colour is fixed and nothing per-frame is connected.
        simple = (stage.p.screen_color is not None and stage.p.clean_plate == "none" and clean_plate is None
                  and garbage is None and core is None and _uniform(image)
                  and all(im.channels[:3] == ("R", "G", "B") for im in image))
        if not simple:
            return [_key(stage, t, im, clean_plate=cp, garbage=g, core=c) for t, im, cp, g, c in
                    zip(ts, image, clean_plate or [None] * len(ts), garbage or [None] * len(ts),
                        core or [None] * len(ts))]
        rgb = torch.stack([im.pixels[..., :3] for im in image])
        n, h, w, _ = rgb.shape
        flat = rgb.reshape(n * h, w, 3)
        out = _key(stage, ts[0], DeviceImage.wrap(flat.contiguous(), image[0], data_window=None, display_window=None,
                                                 channels=("R", "G", "B"), alpha=AlphaState.OPAQUE,
                                                 layers={}))
        rgba = out["image"].pixels.reshape(n, h, w, 4)
        meta = {ms.SCREEN_COLOR_KEY: out["image"].metadata[ms.SCREEN_COLOR_KEY]}
        results = []
        for i, im in enumerate(image):
            o = im.replace(pixels=rgba[i], channels=RGBA, alpha=AlphaState.PREMULTIPLIED, layers={},
                           metadata={**im.metadata, **meta})
            results.append({"image": o, "matte": _matte_image(rgba[i][..., 3], im)})
        return results

    torch_stage(ms.ColorDifferenceKey, batch=_key_batch)(_key)
    torch_stage(ms.ScreenSubtractKey, batch=_key_batch)(_key)

    def _despill_px(stage, image, px):
        sc = stage.p.screen_color or image.metadata.get(ms.SCREEN_COLOR_KEY)
        c = px.shape[-1]
        head = px if c in (3, 4) else px[..., :4]
        out = tdespill(head, method=stage.p.method, screen=stage.p.screen, screen_color=sc,
                       replace_color=stage.p.replace_color, weights=tuple(stage.p.weights), strength=stage.p.strength)
        if c > 4:
            out = torch.cat([out, px[..., 4:]], dim=-1)
        return out

    def _despill_check(stage, image):
        if image.channels[:3] != ("R", "G", "B"):
            raise StateError(f"{stage.node_name} (Despill): expects RGB(A), got channels {image.channels}")

    @torch_stage(ms.Despill, batch=lambda stage, ts, image: _despill_batch(stage, ts, image))
    def _despill(stage, t, image):
        _despill_check(stage, image)
        return image.with_pixels(_despill_px(stage, image, image.pixels))

    def _despill_batch(stage, ts, image):
        for im in image:
            _despill_check(stage, im)
        key = ms.SCREEN_COLOR_KEY
        same_screen = len({str(im.metadata.get(key)) for im in image}) == 1
        if not (_uniform(image) and same_screen):
            return [_despill(stage, t, im) for t, im in zip(ts, image)]
        return _batched(lambda px: _despill_px(stage, image[0], px), image, lambda im, px: im.with_pixels(px))

    @torch_stage(ms.CleanPlate)
    def _clean_plate(stage, t, image):
        from .ops._common import resize

        who = f"{stage.node_name} (CleanPlate)"
        if image.channels[:3] != ("R", "G", "B"):
            raise StateError(f"{who}: expects an RGB plate, got channels {image.channels}")
        rgb = image.pixels[..., :3]
        try:
            small = tk.estimate_clean_plate_small(rgb, screen=stage.p.screen, screen_color=stage.p.screen_color,
                                                  resolution=stage.p.resolution, tolerance=stage.p.tolerance,
                                                  shrink=stage.p.shrink)
        except InputError as exc:
            raise InputError(f"{who} frame {t}: {exc}") from None
        h, w = rgb.shape[:2]
        st = to_device(small, rgb.device, what="clean plate grid")
        plate = st if tuple(small.shape[:2]) == (h, w) else resize(st, w, h, interp="linear")
        return image.replace(pixels=plate.contiguous(), channels=("R", "G", "B"), alpha=AlphaState.OPAQUE, layers={})

    @torch_stage(ms.GarbageMatte)
    def _garbage(stage, t, image):
        if image.alpha is AlphaState.STRAIGHT:
            raise StateError(f"{stage.node_name} (GarbageMatte): expects premultiplied or a matte, got straight")
        if image.alpha is AlphaState.OPAQUE and len(image.channels) > 1:
            raise StateError(f"{stage.node_name} (GarbageMatte): an opaque colour image has no alpha to cut; "
                             "key it first or apply the matte to a matte")
        full = stage.matte_for(image.header, t)   # rasterised on the host (shapes), one plane uploaded
        m = to_device(np.ascontiguousarray(full, np.float32), image.device, what="garbage matte")
        return image.with_pixels(image.pixels * m[..., None])

    def _apply_to_alpha(image: DeviceImage, fn, who: str) -> DeviceImage:
        if image.channels == ("A",) or len(image.channels) == 1:
            return image.with_pixels(fn(image.pixels[..., 0]).contiguous()[..., None])
        if image.channels[:4] != RGBA or image.alpha is not AlphaState.PREMULTIPLIED:
            raise StateError(f"{who}: expects a matte or premultiplied RGBA, got {''.join(image.channels)} "
                             f"{image.alpha}")
        rgba = image.pixels[..., :4]
        new_a = fn(rgba[..., 3].contiguous())
        straight = tmatte.edge_extend(rgba.contiguous())
        colour = straight[..., :3] * new_a[..., None]
        out = torch.cat([colour, new_a[..., None], image.pixels[..., 4:]], dim=-1)
        return image.with_pixels(out)

    @torch_stage(ms.MatteErode)
    def _erode(stage, t, image):
        return _apply_to_alpha(image, lambda m: tmatte.erode(m, amount=stage.p.amount),
                               f"{stage.node_name} (MatteErode)")

    @torch_stage(ms.MatteBlur)
    def _mblur(stage, t, image):
        if stage.p.edge_only:
            def fn(m):
                return tmatte.edge_blur(m, size=stage.p.size, width=stage.p.edge_width)
        else:
            def fn(m):
                return tmatte.blur(m, size=stage.p.size)
        return _apply_to_alpha(image, fn, f"{stage.node_name} (MatteBlur)")

    @torch_stage(ms.MatteClamp)
    def _mclamp(stage, t, image):
        return _apply_to_alpha(image, lambda m: tmatte.clamp(m, low=stage.p.low, high=stage.p.high),
                               f"{stage.node_name} (MatteClamp)")

    @torch_stage(ms.MatteCombine)
    def _mcombine(stage, t, a, b):
        who = f"{stage.node_name} (MatteCombine)"
        _same_size(a, b, "matte b", who)
        mb = _matte_of(b, who).contiguous()
        return _apply_to_alpha(a, lambda m: tmatte.combine(m, mb, op=stage.p.operation), who)

    @torch_stage(ms.EdgeExtend)
    def _extend(stage, t, image):
        image.require(channels=RGBA, who=stage.node_name)
        out = torch.cat([tmatte.edge_extend(image.pixels[..., :4].contiguous(), threshold=stage.p.threshold),
                         image.pixels[..., 4:]], dim=-1)
        return image.with_pixels(out, alpha=AlphaState.STRAIGHT)


# -- colour stages ------------------------------------------------------------------------------------

def _register_color() -> None:
    from ..color import match_stages as cs
    from ..color.grade import GRADE_KEYS

    def _rgb_idx(image: DeviceImage, who: str) -> list[int]:
        ch = image.channels
        if ch[:3] != ("R", "G", "B"):
            raise InputError(f"{who}: expects R, G, B channels first, got {ch}")
        premult = image.alpha is AlphaState.PREMULTIPLIED and "A" in ch
        return [0, 1, 2, ch.index("A")] if premult else [0, 1, 2]

    def _colour_stage(fn):
        """A per-pixel colour stage: single-frame and batched forms from ``fn(stage, pixels) -> pixels``."""
        def single(stage, t, image):
            idx = _rgb_idx(image, f"{stage.node_name} ({stage.type_name}) frame {t}")
            return _scatter(image, idx[:3], fn(stage, _gather(image.pixels, idx))[..., :3])

        def batch(stage, ts, image):
            idxs = [_rgb_idx(im, f"{stage.node_name} ({stage.type_name}) frame {t}") for t, im in zip(ts, image)]
            if not _uniform(image):
                return [single(stage, t, im) for t, im in zip(ts, image)]
            idx = idxs[0]
            out = fn(stage, torch.stack([_gather(im.pixels, idx) for im in image]))
            return [_scatter(im, idx[:3], out[i][..., :3]) for i, im in enumerate(image)]
        return single, batch

    def _grade_px(stage, px):
        kw = {k: list(stage.p[k]) for k in GRADE_KEYS}
        kw.update(saturation=stage.p.saturation, black_clamp=stage.p.black_clamp, white_clamp=stage.p.white_clamp,
                  reverse=stage.p.reverse)
        return tcolor.grade(px, **kw)

    single, batch = _colour_stage(_grade_px)
    torch_stage(cs.Grade, batch=batch)(single)

    def _cdl_px(stage, px):
        return tcolor.apply_cdl(px, stage.cdl(), style=stage.p.style, encoding=stage.p.encoding)

    single, batch = _colour_stage(_cdl_px)
    torch_stage(cs.CDL, batch=batch)(single)

    def _pooled(frames_, mattes, t, who):
        if frames_ is None:
            return None, None
        if isinstance(frames_, DeviceImage):
            frames_ = {t: frames_}
        if isinstance(mattes, DeviceImage):
            mattes = {t: mattes}
        keys = sorted(frames_)
        if len({frames_[k].width for k in keys}) > 1:
            keys = [t if t in frames_ else keys[len(keys) // 2]]
        px, mw = [], []
        sel = {k: frames_[k].pixels[..., _rgb_idx(frames_[k], who)] for k in keys}
        any4 = any(v.shape[-1] == 4 for v in sel.values())
        for k in keys:
            p = sel[k]
            if p.shape[-1] == 3 and any4:
                p = torch.cat([p, torch.ones_like(p[..., :1])], dim=-1)
            px.append(p)
            if mattes is not None:
                m = mattes.get(k) if k in mattes else mattes[min(mattes, key=lambda f: abs(f - k))]
                mw.append(_matte_plane(m, frames_[k], who))
        pixels = px[0] if len(px) == 1 else torch.cat(px, dim=0)
        weights = None if mattes is None else (mw[0] if len(mw) == 1 else torch.cat(mw, dim=0))
        return pixels, weights

    def _matte_plane(matte, image, who):
        if matte.display_window != image.display_window:
            dm, di = matte.display_window, image.display_window
            raise InputError(f"{who}: matte format is {dm.width}x{dm.height} but the image's is "
                             f"{di.width}x{di.height}; reformat the matte to the image's format")
        if matte.data_window != image.data_window:
            matte = frames.to_window(matte, image.data_window)
        plane = matte.channel("A") if "A" in matte.channels else matte.pixels[..., 0]
        return plane

    def _current(frames_, t):
        if isinstance(frames_, DeviceImage):
            return frames_
        return frames_[t] if t in frames_ else frames_[min(frames_, key=lambda f: abs(f - t))]

    @torch_stage(cs.ColorTransfer)
    def _transfer(stage, t, image, reference=None, reference_matte=None, image_matte=None):
        cur = _current(image, t)
        who = f"{stage.node_name} (ColorTransfer) frame {t}"
        if stage._stored is not None:
            trf = stage._stored.with_strength(stage._stored.strength * stage.p.strength)
        else:
            if reference is None:
                raise InputError(f"{who}: connect a reference (or set a stored transform)")
            img_px, img_w = _pooled(image, image_matte, t, who + " element")
            ref_px, ref_w = _pooled(reference, reference_matte, t, who + " reference")
            try:
                trf = tcolor.fit_color_transfer(img_px, ref_px, method=stage.p.method,
                                                space=None if stage.p.space == "auto" else stage.p.space,
                                                strength=stage.p.strength, image_weights=img_w,
                                                reference_weights=ref_w, max_samples=stage.p.max_samples,
                                                bins=stage.p.bins)
            except InputError as exc:
                raise InputError(f"{who}: {exc}") from None
        idx = _rgb_idx(cur, who)
        out = tcolor.apply_transfer(_gather(cur.pixels, idx), trf)
        return _scatter(cur, idx[:3], out[..., :3])


# -- grain, integration, crowd ---------------------------------------------------------------------------

def _register_grain() -> None:
    from ..color import grain_stages as gs
    from .ops.grain import regrain

    @torch_stage(gs.Regrain)
    def _regrain(stage, t, image):
        profile = stage._source.get()
        try:
            idx = _colour_idx(image, stage.node_name)
        except StateError:
            if image.channels in (("Y",), ("L",)):
                idx = [0]
            else:
                raise StateError(f"{stage.node_name}: expects R, G, B channels (or one Y channel), got "
                                 f"{image.channels}") from None
        px = _gather(image.pixels, idx)
        out = regrain(px.contiguous(), profile, rng=stage.rng(t), amount=stage.p.amount, noise=GRAIN_NOISE)
        return _scatter(image, idx, out)


def _register_integrate() -> None:
    from ..core.coverage import COVERAGE_CHANNELS, COVERAGE_LAYER
    from ..integrate import stages as ist
    from .ops.defocus import defocus
    from .ops.lightwrap import light_wrap

    def _pair(fg, bg, who):
        if fg.colorspace != bg.colorspace:
            raise StateError(f"{who}: fg is in colour space {fg.colorspace}, bg in {bg.colorspace}; convert one first")
        if not fg.has_alpha:
            raise StateError(f"{who}: fg has no alpha (channels {fg.channels}); it needs the element's matte")
        fg = frames.as_rgba(fg, who=f"{who} (fg)")
        bg = frames.as_rgba(bg, who=f"{who} (bg)")
        window = fg.data_window.union(bg.data_window)
        return frames.to_window(fg, window), frames.to_window(bg, window), window

    @torch_stage(ist.LightWrap)
    def _lightwrap(stage, t, fg, bg):
        fa, ba, _ = _pair(fg, bg, stage.node_name)
        out = "foreground" if stage.p.output == "comp" else stage.p.output
        px = light_wrap(fa.pixels, ba.pixels, size=stage.p.size, intensity=stage.p.intensity,
                        threshold=stage.p.threshold, softness=stage.p.softness, saturation=stage.p.saturation,
                        output=out)
        wrapped = frames.to_window(fa.with_pixels(px), fg.data_window)
        if stage.p.output == "comp":
            return frames.merge_images("over", wrapped, bg)
        return wrapped

    @torch_stage(ist.Defocus)
    def _defocus(stage, t, image):
        border = stage.p.border
        if border == "auto":
            border = "black" if image.alpha is AlphaState.PREMULTIPLIED else "extend"
        if border == "black":
            r = int(np.ceil(stage.p.radius * max(1.0, stage.p.aspect)))
            dw = image.data_window
            image = frames.to_window(image, Window(dw.xmin - r, dw.ymin - r, dw.xmax + r, dw.ymax + r))
        idx = _cols(image, ("R", "G", "B"), stage.node_name)
        planes = None
        if image.alpha is AlphaState.PREMULTIPLIED and "A" in image.channels:
            idx.append(image.channels.index("A"))
            if COVERAGE_LAYER in image.layers:   # associated with alpha: filtered as one more plane
                planes = torch.cat([_gather(image.pixels, idx), image.layers[COVERAGE_LAYER].pixels[..., :1]], -1)
        px = _gather(image.pixels, idx) if planes is None else planes
        out = defocus(px.contiguous(), radius=stage.p.radius, blades=stage.p.blades, rotation=stage.p.rotation,
                      aspect=stage.p.aspect, border=border)
        if planes is None:
            return _scatter(image, idx, out)
        result = _scatter(image, idx, out[..., :-1])
        return result.with_layer(COVERAGE_LAYER, out[..., -1:].contiguous(), COVERAGE_CHANNELS)


def _register_extend() -> None:
    from ..core.coverage import COVERAGE_CHANNELS, COVERAGE_LAYER
    from ..core.image import Image
    from ..extend import stages as es
    from ..extend.camera import GroundCamera
    from ..extend.generator import GeneratorRecord, attach_record
    from .image import placeholder
    from .ops.crowd import render_crowd

    @torch_stage(es.Crowd)
    def _crowd(stage, t, plate=None):
        import os

        dev = plate.device if isinstance(plate, DeviceImage) else current_device()
        lib = stage._library()
        if plate is not None:
            w, h = plate.display_window.width, plate.display_window.height
        else:
            w, h = stage.p.width, stage.p.height
        cam = GroundCamera(horizon_y=stage.p.horizon_y, height=stage.p.camera_height, focal_px=stage.p.focal_px,
                           cx=w / 2.0)
        density = es._map(stage.p.density_map, w, h)
        keep = es._map(stage.p.keepout_map, w, h)
        loop = max(len(s.frames) for s in lib.sprites)
        agents = es._place_cached(cam, w, h, stage.p.count, len(lib), stage.p.seed, tuple(stage.p.depth_range),
                                  stage.p.person_height, stage.p.scale_jitter, stage.p.hue_jitter, stage.p.sat_jitter,
                                  stage.p.value_jitter, stage.p.mirror, loop, density, keep)
        fr = render_crowd(lib, agents, cam, w, h, frame=t, shadow_opacity=stage.p.shadow_opacity,
                          haze_density=stage.p.haze_density, haze_color=tuple(stage.p.haze_color), device=dev)
        depth = torch.where(torch.isfinite(fr.depth), fr.depth, torch.zeros_like(fr.depth))
        cov = fr.rgba[..., 3] if stage.p.generated else torch.zeros_like(fr.depth)
        header = Image(placeholder(fr.rgba.shape), RGBA, alpha=AlphaState.PREMULTIPLIED, time=stage.time(t),
                       display_window=plate.display_window if plate is not None else None)
        record = GeneratorRecord("procedural_crowd", generated=stage.p.generated,
                                 params={"count": stage.p.count, "seed": stage.p.seed, "sprites": len(lib)},
                                 sources=[os.path.abspath(stage.p.library)])
        header = attach_record(header, record)
        layers = {"depth": DeviceLayer(depth[..., None].contiguous(), ("Z",)),
                  "crowd_id": DeviceLayer(fr.ident[..., None].contiguous(), ("id",)),
                  COVERAGE_LAYER: DeviceLayer(cov[..., None].contiguous(), COVERAGE_CHANNELS)}
        return DeviceImage(fr.rgba, header, layers)


#: The device that stages creating frames (sources) put them on; set by composite.gpu.graph per thread.
_CURRENT = threading.local()


def current_device():
    """The device of the pipeline being evaluated on this thread (the CPU outside one)."""
    return getattr(_CURRENT, "device", None) or torch.device("cpu")

_GROUPS = (("composite.graph.builtin", _register_builtin), ("composite.matte.stages", _register_matte),
           ("composite.color.match_stages", _register_color), ("composite.color.grain_stages", _register_grain),
           ("composite.integrate.stages", _register_integrate), ("composite.extend.stages", _register_extend))


def _load() -> None:
    global _loaded
    if _loaded:
        return
    _loaded = True
    for module, register_group in _GROUPS:
        try:
            importlib.import_module(module)
            register_group()
        except Exception as exc:  # a stage module that cannot be imported keeps its stages on the NumPy path
            log.warning("torch implementations of %s are unavailable: %s: %s", module, type(exc).__name__, exc)
