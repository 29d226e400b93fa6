"""OpenColorIO colour management with cached processors.

The default config is OCIO's built-in ACES studio config (no download); ``$OCIO`` or an explicit path
(or ``ocio://`` URI) selects another. Processors are cached by (config cache id, source, destination
[, display, view, file transform]) so a render builds each one once per process.

Conversions act on the first three channels of ``(..., C)`` float32 arrays; further channels (alpha,
data) pass through unchanged.

Example
-------
>>> import numpy as np
>>> from composite.color import ocio
>>> px = np.array([[[0.18, 0.18, 0.18]]], np.float32)
>>> [round(float(v), 4) for v in ocio.convert(px, "ACES2065-1", "ACEScg")[0, 0]]
[0.18, 0.18, 0.18]
"""

from __future__ import annotations

import difflib
import functools
import os
import threading
from collections.abc import Sequence

import numpy as np
import PyOpenColorIO as ocio

from ..core.errors import InputError

BUILTIN_CONFIG = "studio-config-latest"
#: The default display and view for previews and review media.
DEFAULT_DISPLAY = "sRGB - Display"
DEFAULT_VIEW = "ACES 2.0 - SDR 100 nits (Rec.709)"

_lock = threading.Lock()
_configs: dict[str, ocio.Config] = {}


@functools.lru_cache(maxsize=1)
def _builtin_names() -> frozenset[str]:
    names = {name for name, *_ in ocio.BuiltinConfigRegistry().getBuiltinConfigs()}
    return frozenset(names | {"studio-config-latest", "cg-config-latest", "default"})


def config_key(path: str | None = None) -> str:
    """The key naming the config ``path`` resolves to: the path, else ``$OCIO``, else the built-in one."""
    return path or os.environ.get("OCIO") or BUILTIN_CONFIG


def get_config(path: str | None = None) -> ocio.Config:
    """The OCIO config: ``path``, else ``$OCIO``, else the built-in ACES studio config (cached)."""
    key = config_key(path)
    with _lock:
        cfg = _configs.get(key)
        if cfg is None:
            try:
                if key in _builtin_names():
                    cfg = ocio.Config.CreateFromBuiltinConfig(key)
                elif key.startswith("ocio://") or os.path.exists(key):
                    cfg = ocio.Config.CreateFromFile(key)
                else:
                    raise FileNotFoundError("no such file")
                cfg.validate()
            except Exception as exc:
                where = " (from $OCIO)" if not path and os.environ.get("OCIO") else ""
                raise InputError(f"cannot load OCIO config {key!r}{where}: {exc}; set $OCIO to a valid "
                                 "config file or leave it unset for the built-in ACES studio config") from None
            _configs[key] = cfg
    return cfg


def config_id(config: str | None = None) -> str:
    """The config's cache id (changes when the config's content changes)."""
    return get_config(config).getCacheID()


def colorspace_names(config: str | ocio.Config | None = None) -> list[str]:
    cfg = config if isinstance(config, ocio.Config) else get_config(config)
    return [cs.getName() for cs in cfg.getColorSpaces()]


def resolve_colorspace(name: str, config: str | ocio.Config | None = None) -> str:
    """Canonical name of a colour space (aliases and roles accepted) or an InputError listing close names."""
    cfg = config if isinstance(config, ocio.Config) else get_config(config)
    cs = cfg.getColorSpace(name) if name else None
    if cs is None:
        names = colorspace_names(cfg)
        close = difflib.get_close_matches(name or "", names, n=4, cutoff=0.4)
        hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else \
            "; run `composite info --colorspaces` for the list"
        raise InputError(f"unknown colour space {name!r} in OCIO config {cfg.getName() or '(unnamed)'}{hint}")
    return cs.getName()


def is_data(name: str, config: str | None = None) -> bool:
    """True for non-colour data spaces (``Raw``): conversions leave them alone."""
    cfg = get_config(config)
    cs = cfg.getColorSpace(name)
    return bool(cs is not None and cs.isData())


def display_names(config: str | None = None) -> list[str]:
    return list(get_config(config).getDisplays())


def view_names(display: str, config: str | None = None) -> list[str]:
    return list(get_config(config).getViews(display))


def _check_display_view(cfg: ocio.Config, display: str, view: str) -> None:
    displays = list(cfg.getDisplays())
    if display not in displays:
        raise InputError(f"unknown display {display!r}; displays: {', '.join(displays)}")
    views = list(cfg.getViews(display))
    if view not in views:
        raise InputError(f"unknown view {view!r} for display {display!r}; views: {', '.join(views)}")


# -- processors (cached) -------------------------------------------------------------------------

@functools.lru_cache(maxsize=256)
def _colorspace_processor(cache_id: str, key: str, src: str, dst: str):
    return get_config(key).getProcessor(src, dst)


@functools.lru_cache(maxsize=64)
def _display_processor(cache_id: str, key: str, src: str, display: str, view: str, inverse: bool):
    direction = ocio.TRANSFORM_DIR_INVERSE if inverse else ocio.TRANSFORM_DIR_FORWARD
    return get_config(key).getProcessor(src, display, view, direction)


@functools.lru_cache(maxsize=64)
def _transform_processor(cache_id: str, key: str, ident: tuple):
    """A processor for a transform described by ``ident`` (file transforms and CDLs)."""
    kind = ident[0]
    cfg = get_config(key)
    if kind == "file":
        _, path, _mtime, direction, interpolation, cccid, space, working = ident
        ft = ocio.FileTransform(src=path, cccId=cccid or "",
                                interpolation=ocio.InterpolationFromString(interpolation),
                                direction=ocio.TransformDirectionFromString(direction))
        if space and space != working:
            group = ocio.GroupTransform()
            group.appendTransform(ocio.ColorSpaceTransform(src=working, dst=space))
            group.appendTransform(ft)
            group.appendTransform(ocio.ColorSpaceTransform(src=space, dst=working))
            return cfg.getProcessor(group)
        return cfg.getProcessor(ft)
    if kind == "cdl":
        _, slope, offset, power, sat, style, direction, space, working = ident
        cdl = ocio.CDLTransform(slope=list(slope), offset=list(offset), power=list(power), sat=sat,
                                direction=ocio.TransformDirectionFromString(direction))
        cdl.setStyle(ocio.CDL_ASC if style == "asc" else ocio.CDL_NO_CLAMP)
        if space and space != working:
            group = ocio.GroupTransform()
            group.appendTransform(ocio.ColorSpaceTransform(src=working, dst=space))
            group.appendTransform(cdl)
            group.appendTransform(ocio.ColorSpaceTransform(src=space, dst=working))
            return cfg.getProcessor(group)
        return cfg.getProcessor(cdl)
    raise ValueError(kind)  # pragma: no cover


@functools.lru_cache(maxsize=512)
def _cpu(processor) -> ocio.CPUProcessor:
    return processor.getDefaultCPUProcessor()


@functools.lru_cache(maxsize=512)
def _is_matrix_only(processor) -> bool:
    group = processor.getOptimizedProcessor(ocio.OPTIMIZATION_DEFAULT).createGroupTransform()
    return all(isinstance(t, ocio.MatrixTransform) for t in group)


def processor(src: str, dst: str, *, config: str | None = None) -> ocio.Processor:
    """The cached OCIO processor converting colour space ``src`` to ``dst``."""
    cfg = get_config(config)
    s, d = resolve_colorspace(src, cfg), resolve_colorspace(dst, cfg)
    return _colorspace_processor(cfg.getCacheID(), config_key(config), s, d)


def processor_id(src: str, dst: str, config: str | None = None) -> str:
    """Stable id of a conversion, for fingerprints: config cache id + canonical names + processor id."""
    cfg = get_config(config)
    s, d = resolve_colorspace(src, cfg), resolve_colorspace(dst, cfg)
    if s == d:
        return f"{cfg.getCacheID()}|{s}|{d}|identity"
    return f"{cfg.getCacheID()}|{s}|{d}|{processor(s, d, config=config).getCacheID()}"


def is_linear_conversion(src: str, dst: str, *, config: str | None = None) -> bool:
    """True when ``src`` → ``dst`` is a pure 3x3 matrix (or identity): it may act on premultiplied colour."""
    cfg = get_config(config)
    s, d = resolve_colorspace(src, cfg), resolve_colorspace(dst, cfg)
    if s == d:
        return True
    return _is_matrix_only(processor(s, d, config=config))


def apply_processor(cpu: ocio.CPUProcessor, pixels: np.ndarray) -> np.ndarray:
    """Apply a CPU processor to the first three channels of ``(..., C)`` float32 (a new array)."""
    if pixels.dtype != np.float32:
        raise InputError(f"OCIO conversion expects float32 pixels, got {pixels.dtype}")
    c = pixels.shape[-1]
    if c < 3:
        raise InputError(f"OCIO conversion needs at least 3 channels (R, G, B), got {c}")
    if c == 4:
        out = np.array(pixels, np.float32, order="C", copy=True)
        cpu.applyRGBA(out)  # the alpha channel passes through OCIO untouched
        return out
    out = np.array(pixels[..., :3], np.float32, order="C", copy=True)
    cpu.applyRGB(out)
    if c > 3:
        out = np.concatenate([out, pixels[..., 3:]], axis=-1)
    return out


def convert(pixels: np.ndarray, src: str, dst: str, *, config: str | None = None) -> np.ndarray:
    """Convert the first three channels of ``(..., C)`` float32 from ``src`` to ``dst`` (others kept).

    Colour must be straight (unassociated) or opaque unless :func:`is_linear_conversion` is true;
    callers unpremultiply around non-linear conversions. Returns ``pixels`` itself when ``src`` and
    ``dst`` name the same space.
    """
    cfg = get_config(config)
    s, d = resolve_colorspace(src, cfg), resolve_colorspace(dst, cfg)
    if s == d:
        return pixels
    return apply_processor(_cpu(processor(s, d, config=config)), pixels)


def to_display(pixels: np.ndarray, src: str, *, display: str = DEFAULT_DISPLAY, view: str = DEFAULT_VIEW,
               config: str | None = None) -> np.ndarray:
    """Apply a display/view transform (previews, review media). Output is display-referred, nominally [0, 1]."""
    cfg = get_config(config)
    s = resolve_colorspace(src, cfg)
    _check_display_view(cfg, display, view)
    proc = _display_processor(cfg.getCacheID(), config_key(config), s, display, view, False)
    return apply_processor(_cpu(proc), pixels)


def from_display(pixels: np.ndarray, dst: str, *, display: str = DEFAULT_DISPLAY, view: str = DEFAULT_VIEW,
                 config: str | None = None) -> np.ndarray:
    """Invert a display/view transform: display-referred pixels back to colour space ``dst``."""
    cfg = get_config(config)
    d = resolve_colorspace(dst, cfg)
    _check_display_view(cfg, display, view)
    proc = _display_processor(cfg.getCacheID(), config_key(config), d, display, view, True)
    return apply_processor(_cpu(proc), pixels)


def display_processor_id(src: str, display: str, view: str, config: str | None = None) -> str:
    cfg = get_config(config)
    s = resolve_colorspace(src, cfg)
    _check_display_view(cfg, display, view)
    proc = _display_processor(cfg.getCacheID(), config_key(config), s, display, view, False)
    return f"{cfg.getCacheID()}|{s}|{display}|{view}|{proc.getCacheID()}"


LUT_INTERPOLATIONS = ("linear", "tetrahedral", "best", "nearest", "cubic", "default")


def file_transform_processor(path: str | os.PathLike, *, direction: str = "forward",
                             interpolation: str = "linear", cccid: str = "", space: str | None = None,
                             working_space: str = "ACEScg", config: str | None = None) -> ocio.Processor:
    """The cached processor of a LUT or CDL file (``.cube``, ``.3dl``, ``.clf``, ``.spi1d``, ``.cdl``,
    ``.cc``, ``.ccc`` ...), optionally applied in colour space ``space`` (pixels arrive in and leave in
    ``working_space``)."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise InputError(f"{path}: LUT/CDL file not found")
    if direction not in ("forward", "inverse"):
        raise InputError(f"direction must be 'forward' or 'inverse', got {direction!r}")
    if interpolation not in LUT_INTERPOLATIONS:
        raise InputError(f"unknown LUT interpolation {interpolation!r}; allowed: {', '.join(LUT_INTERPOLATIONS)}")
    cfg = get_config(config)
    sp = resolve_colorspace(space, cfg) if space else None
    wk = resolve_colorspace(working_space, cfg) if sp else None
    ident = ("file", os.path.abspath(path), os.stat(path).st_mtime_ns, direction, interpolation, cccid or "",
             sp, wk)
    try:
        return _transform_processor(cfg.getCacheID(), config_key(config), ident)
    except InputError:
        raise
    except Exception as exc:
        raise InputError(f"{path}: OCIO cannot apply this LUT/CDL file ({exc})") from None


def apply_file_transform(pixels: np.ndarray, path: str | os.PathLike, *, direction: str = "forward",
                         interpolation: str = "linear", cccid: str = "", space: str | None = None,
                         working_space: str = "ACEScg", config: str | None = None) -> np.ndarray:
    """Apply a LUT or CDL file through an OCIO FileTransform.

    Parameters
    ----------
    pixels : np.ndarray
        ``(..., C)`` float32, C >= 3; straight or opaque colour in ``working_space`` (or in the LUT's
        own space when ``space`` is None). Channels after the third pass through.
    path : path
        Any file format OCIO reads (``.cube``, ``.3dl``, ``.clf``/``.ctf``, ``.spi1d``/``.spi3d``,
        ``.csp``, ``.cdl``/``.cc``/``.ccc`` ...).
    direction : {"forward", "inverse"}
    interpolation : str
        One of :data:`LUT_INTERPOLATIONS`.
    cccid : str
        Which correction of a ``.ccc``/``.cdl`` collection (id or index).
    space : str or None
        Colour space the LUT expects (e.g. ``ACEScct`` for a grading LUT); pixels are converted into it
        and back.

    Example
    -------
    >>> out = apply_file_transform(px, "show.cube", space="ACEScct")  # doctest: +SKIP
    """
    proc = file_transform_processor(path, direction=direction, interpolation=interpolation, cccid=cccid,
                                    space=space, working_space=working_space, config=config)
    return apply_processor(_cpu(proc), pixels)


def apply_cdl(pixels: np.ndarray, *, slope: Sequence[float] = (1.0, 1.0, 1.0),
              offset: Sequence[float] = (0.0, 0.0, 0.0), power: Sequence[float] = (1.0, 1.0, 1.0),
              saturation: float = 1.0, style: str = "asc", direction: str = "forward",
              space: str | None = None, working_space: str = "ACEScg", config: str | None = None) -> np.ndarray:
    """Apply an ASC CDL (slope, offset, power, saturation) through OCIO's CDLTransform.

    ``style="asc"`` clamps to [0, 1] as the ASC specification says; ``"no_clamp"`` keeps HDR values.
    ``space``: colour space the grade was made in (e.g. ``ACEScct``); pixels arrive and leave in
    ``working_space``.
    """
    if style not in ("asc", "no_clamp"):
        raise InputError(f"CDL style must be 'asc' or 'no_clamp', got {style!r}")
    vals = [tuple(float(v) for v in x) for x in (slope, offset, power)]
    if any(len(v) != 3 for v in vals):
        raise InputError("CDL slope, offset and power need three values each")
    cfg = get_config(config)
    sp = resolve_colorspace(space, cfg) if space else None
    wk = resolve_colorspace(working_space, cfg) if sp else None
    ident = ("cdl", vals[0], vals[1], vals[2], float(saturation), style, direction, sp, wk)
    proc = _transform_processor(cfg.getCacheID(), config_key(config), ident)
    return apply_processor(_cpu(proc), pixels)


def clear_caches() -> None:
    """Forget loaded configs and processors (after editing a config file in place)."""
    with _lock:
        _configs.clear()
    for fn in (_colorspace_processor, _display_processor, _transform_processor, _cpu, _is_matrix_only):
        fn.cache_clear()


# -- chromaticities (OpenEXR headers) ------------------------------------------------------------

_D65 = (0.3127, 0.3290)
_ACES_WHITE = (0.32168, 0.33767)
#: Linear colour spaces of the ACES configs recognised from an EXR ``chromaticities`` attribute
#: (red, green, blue, white xy). Only linear gamuts: EXR pixels are scene-linear.
KNOWN_CHROMATICITIES: dict[str, tuple[float, ...]] = {
    "ACES2065-1": (0.7347, 0.2653, 0.0, 1.0, 0.0001, -0.077) + _ACES_WHITE,
    "ACEScg": (0.713, 0.293, 0.165, 0.830, 0.128, 0.044) + _ACES_WHITE,
    "Linear Rec.709 (sRGB)": (0.64, 0.33, 0.30, 0.60, 0.15, 0.06) + _D65,
    "Linear Rec.2020": (0.708, 0.292, 0.170, 0.797, 0.131, 0.046) + _D65,
    "Linear P3-D65": (0.680, 0.320, 0.265, 0.690, 0.150, 0.060) + _D65,
    "Linear AdobeRGB": (0.64, 0.33, 0.21, 0.71, 0.15, 0.06) + _D65,
    "Linear ARRI Wide Gamut 3": (0.684, 0.313, 0.221, 0.848, 0.0861, -0.102) + _D65,
    "Linear ARRI Wide Gamut 4": (0.7347, 0.2653, 0.1424, 0.8576, 0.0991, -0.0308) + _D65,
    "Linear S-Gamut3": (0.730, 0.280, 0.140, 0.855, 0.100, -0.050) + _D65,
    "Linear S-Gamut3.Cine": (0.766, 0.275, 0.225, 0.800, 0.089, -0.087) + _D65,
    "Linear V-Gamut": (0.730, 0.280, 0.165, 0.840, 0.100, -0.030) + _D65,
}


def colorspace_from_chromaticities(chromaticities, *, tolerance: float = 1e-3,
                                   config: str | None = None) -> str | None:
    """The linear colour space whose primaries and white match ``chromaticities`` (8 numbers: red,
    green, blue, white xy) within ``tolerance``, if the config has it; else None.

    >>> colorspace_from_chromaticities([0.7347, 0.2653, 0.0, 1.0, 0.0001, -0.077, 0.32168, 0.33767])
    'ACES2065-1'
    """
    try:
        values = np.asarray([float(v) for v in chromaticities], np.float64)
    except (TypeError, ValueError):
        return None
    if values.shape != (8,):
        return None
    cfg = get_config(config)
    for name, ref in KNOWN_CHROMATICITIES.items():
        if np.all(np.abs(values - np.asarray(ref)) <= tolerance) and cfg.getColorSpace(name) is not None:
            return cfg.getColorSpace(name).getName()
    return None


def chromaticities_for(colorspace: str, config: str | None = None) -> tuple[float, ...] | None:
    """The chromaticities of a known linear colour space (for EXR headers), or None."""
    cfg = get_config(config)
    cs = cfg.getColorSpace(colorspace)
    if cs is None:
        return None
    return KNOWN_CHROMATICITIES.get(cs.getName())
