"""OpenColorIO colour management with cached processors.

The default config is OCIO's built-in ACES studio config (no download); ``$OCIO`` or an explicit path
selects another. Processors are cached by (config cache id, source, destination[, view]).
"""

from __future__ import annotations

import functools
import os
import threading

import numpy as np
import PyOpenColorIO as ocio

from ..core.errors import InputError

BUILTIN_CONFIG = "studio-config-latest"

_lock = threading.Lock()
_configs: dict[str, ocio.Config] = {}


def get_config(path: str | None = None) -> ocio.Config:
    """The OCIO config: ``path``, else ``$OCIO``, else the built-in ACES studio config."""
    key = path or os.environ.get("OCIO") or BUILTIN_CONFIG
    with _lock:
        cfg = _configs.get(key)
        if cfg is None:
            try:
                if key.startswith("ocio://") or key == BUILTIN_CONFIG:
                    name = key[len("ocio://"):] if key.startswith("ocio://") else key
                    cfg = ocio.Config.CreateFromBuiltinConfig(name)
                else:
                    cfg = ocio.Config.CreateFromFile(key)
            except Exception as exc:
                raise InputError(f"cannot load OCIO config {key!r}: {exc}") from None
            _configs[key] = cfg
    return cfg


def colorspace_names(config: ocio.Config | None = None) -> list[str]:
    cfg = config or get_config()
    return [cs.getName() for cs in cfg.getColorSpaces()]


def resolve_colorspace(name: str, config: ocio.Config | None = None) -> str:
    """Canonical name of a colour space (aliases and roles accepted) or an InputError listing close names."""
    cfg = config or get_config()
    cs = cfg.getColorSpace(name)
    if cs is None:
        import difflib

        names = colorspace_names(cfg)
        close = difflib.get_close_matches(name, names, n=4, cutoff=0.4)
        hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        raise InputError(f"unknown colour space {name!r} in OCIO config {cfg.getName() or '(unnamed)'}{hint}")
    return cs.getName()


@functools.lru_cache(maxsize=256)
def _cpu_processor(cache_id: str, src: str, dst: str, config_key: str | None):
    cfg = get_config(config_key)
    return cfg.getProcessor(src, dst).getDefaultCPUProcessor()


@functools.lru_cache(maxsize=64)
def _display_processor(cache_id: str, src: str, display: str, view: str, config_key: str | None):
    cfg = get_config(config_key)
    return cfg.getProcessor(src, display, view, ocio.TRANSFORM_DIR_FORWARD).getDefaultCPUProcessor()


def processor_id(src: str, dst: str, config: str | None = None) -> str:
    """Stable id of a conversion (for fingerprints): config cache id + names."""
    cfg = get_config(config)
    return f"{cfg.getCacheID()}|{src}|{dst}"


def _apply(proc, pixels: np.ndarray) -> np.ndarray:
    if pixels.dtype != np.float32:
        raise InputError(f"OCIO conversion expects float32 pixels, got {pixels.dtype}")
    out = np.ascontiguousarray(pixels[..., :3]).copy()
    proc.applyRGB(out)
    if pixels.shape[-1] > 3:
        out = np.concatenate([out, pixels[..., 3:]], axis=-1)
    return out


def convert(pixels: np.ndarray, src: str, dst: str, *, config: str | None = None) -> np.ndarray:
    """Convert the first three channels of ``(..., C)`` float32 from ``src`` to ``dst`` (extra channels kept).

    Colour must be straight (unassociated) or opaque for non-linear conversions; callers unpremultiply.
    """
    cfg = get_config(config)
    s, d = resolve_colorspace(src, cfg), resolve_colorspace(dst, cfg)
    if s == d:
        return pixels
    return _apply(_cpu_processor(cfg.getCacheID(), s, d, config), pixels)


def to_display(pixels: np.ndarray, src: str, *, display: str = "sRGB - Display",
               view: str = "ACES 2.0 - SDR 100 nits (Rec.709)", config: str | None = None) -> np.ndarray:
    """Apply a display/view transform (for previews and review media). Output is display-referred [0, 1]."""
    cfg = get_config(config)
    s = resolve_colorspace(src, cfg)
    if display not in cfg.getDisplays():
        raise InputError(f"unknown display {display!r}; displays: {', '.join(cfg.getDisplays())}")
    if view not in cfg.getViews(display):
        raise InputError(f"unknown view {view!r} for {display!r}; views: {', '.join(cfg.getViews(display))}")
    return _apply(_display_processor(cfg.getCacheID(), s, display, view, config), pixels)
