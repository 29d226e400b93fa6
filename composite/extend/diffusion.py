"""The diffusers backend: Stable Diffusion inpainting and outpainting from a local model folder.

Optional: ``pip install composite[gen]`` (PyTorch, diffusers, transformers). Nothing here imports them
until a model is loaded, so ``import composite`` stays light.

Model
    A model card in ``models/`` (``sd2_inpainting``) names the Hugging Face repository, the files of the
    diffusers folder, the main weights file and (when confirmed) its sha256, and the licence.
    :func:`model_folder` finds the folder — a path you give, else ``$COMPOSITE_MODELS/<folder name>`` —
    and says exactly how to download it when it is missing; composite never downloads weights.
    :func:`load_inpaint_pipeline` checks the files and the weights' sha256 and loads
    ``diffusers.StableDiffusionInpaintPipeline`` with ``local_files_only``.
Colour
    The model wants display-referred pictures: the working-space plate is converted to sRGB-encoded
    Rec.709 (OCIO) after an optional ``exposure`` (stops) and clipped to [0, 1] at the model's boundary;
    the model's output is converted back (it has no HDR: highlights it makes stop at display white).
Tiling
    Large frames (4K) are filled tile by tile (``tile`` pixels, ``overlap`` apart). Tiles touching no
    hole are skipped. Tiles run in raster order and each sees what earlier tiles made as context (only the
    still-empty part of the hole is masked), so content continues across tiles; each tile's result is
    blended in with a feathered edge (``feather`` pixels) that also crossfades into the known pixels
    around the hole, hiding the VAE's small colour shifts.
Determinism and temporal consistency
    Every tile draws its noise from its own ``torch.Generator`` seeded by ``(seed, tile position)`` — and
    the frame too with ``noise="per_frame"``. With ``noise="shared"`` (default) every frame starts from the
    same initial latents at the same place, which keeps generated content far steadier from frame to
    frame than fresh noise. Frames never depend on each other (no latent blending with the previous
    frame), so chunked renders are bit-identical. Remaining frame-to-frame flicker should be removed
    with the ``Deflicker`` stage (:mod:`composite.temporal`).
Provenance
    :meth:`DiffusionInpainter.describe` gives the generator record (backend ``diffusers``, model card,
    weights' sha256, prompt, seed, parameters); pixels it made are returned as a coverage fraction for
    the ``ai_coverage`` layer.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from ..core.errors import ChecksumError, InputError

log = logging.getLogger(__name__)

__all__ = [
    "DEFAULT_CARD", "NOISE_MODES", "DiffusionInpainter", "ModelFolder", "feather_mask", "inpaint_diffusion",
    "load_inpaint_pipeline", "model_folder", "tile_layout",
]

DEFAULT_CARD = "sd2_inpainting"
NOISE_MODES = ("shared", "per_frame")
#: Colour space the model sees (display-referred sRGB-encoded Rec.709).
MODEL_SPACE = "sRGB Encoded Rec.709 (sRGB)"


# -- model folders ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class ModelFolder:
    """A resolved diffusers model folder: the card, the folder and the main weights' sha256 (None when
    not computed)."""

    card: Any
    path: Path
    weights: Path
    sha256: str | None


def _card_config(card) -> dict:
    cfg = dict(card.config)
    if cfg.get("format", "diffusers") != "diffusers":
        raise InputError(f"model card {card.name!r} is not a diffusers folder (format {cfg.get('format')!r})")
    return cfg


def _download_hint(card, target: str) -> str:
    cfg = dict(card.config)
    repo = cfg.get("repo_id", "")
    how = (f"hf download {repo} --local-dir {target}" if repo else f"download it from {card.url} into {target}")
    return how


def _missing_folder_message(card, looked: list[Path], explicit: str | None) -> str:
    from ..models import MODELS_ENV, model_dirs

    dirs = model_dirs()
    target = str(dirs[0] / card.file_name) if dirs else f"$HOME/composite-models/{card.file_name}"
    where = ", ".join(str(p) for p in looked) or f"(nowhere: no folder given and ${MODELS_ENV} is unset)"
    setenv = "" if dirs else (f"; then set {MODELS_ENV}=$HOME/composite-models (or pass the folder as model_path)")
    alt = " or correct the folder you gave" if explicit else ""
    return (f"model folder {card.file_name!r} for model card {card.name!r} not found (looked at: {where}). "
            f"It is the diffusers folder of {card.url} ({card.licence}). Get it with: "
            f"`{_download_hint(card, target)}` (pip install huggingface_hub for the hf command){setenv}{alt}. "
            "composite never downloads weights itself.")


def model_folder(card: Any = DEFAULT_CARD, path: str | os.PathLike | None = None, *, verify: bool = True) -> ModelFolder:
    """Find and check the diffusers folder of a model card.

    ``path``: the folder itself (or a folder holding ``card.file_name``); None: ``$COMPOSITE_MODELS``.
    Checks that the card's ``config.files`` exist; with ``verify`` computes the main weights' sha256
    (``config.weights``; cached per process) and compares it with the card's when the card has one.
    Raises :class:`InputError` (missing folder or files, saying how to get them) or
    :class:`ChecksumError`.
    """
    from ..models import file_sha256, get_card, model_dirs

    card = get_card(card)
    cfg = _card_config(card)
    looked: list[Path] = []
    if path is not None and str(path) != "":
        p = Path(os.path.expanduser(str(path)))
        candidates = [p / card.file_name, p] if (p / card.file_name).is_dir() else [p]
    else:
        candidates = [d / card.file_name for d in model_dirs()]
    folder = None
    for c in candidates:
        looked.append(c)
        if c.is_dir():
            folder = c
            break
    if folder is None:
        raise InputError(_missing_folder_message(card, looked, None if path is None else str(path)))
    files = list(cfg.get("files", []))
    missing = [f for f in files if not (folder / f).is_file()]
    if missing:
        raise InputError(f"model folder {folder} lacks {', '.join(missing)} (model card {card.name!r}); the download "
                         f"is incomplete: `{_download_hint(card, str(folder))}`")
    weights_rel = cfg.get("weights")
    weights = folder / weights_rel if weights_rel else folder
    if weights_rel and not weights.is_file():
        raise InputError(f"model folder {folder} lacks its main weights {weights_rel} (model card {card.name!r}): "
                         f"`{_download_hint(card, str(folder))}`")
    digest = None
    if verify and weights_rel:
        if card.size is not None and weights.stat().st_size != card.size:
            raise ChecksumError(f"{weights} is {weights.stat().st_size} bytes but model card {card.name!r} expects "
                                f"{card.size}; download it again: `{_download_hint(card, str(folder))}`")
        digest = file_sha256(weights)
        if card.sha256 is None:
            log.warning("model card %s has no confirmed sha256; %s is not verified (sha256 %s)", card.name, weights,
                        digest)
        elif digest != card.sha256:
            raise ChecksumError(f"{weights} has sha256 {digest} but model card {card.name!r} expects {card.sha256}; "
                                f"the file is corrupt or a different model: `{_download_hint(card, str(folder))}`")
    return ModelFolder(card, folder, weights, digest)


def folder_identity(card: Any = DEFAULT_CARD, path: str | os.PathLike | None = None) -> str:
    """A cheap identity of the model for fingerprints (the card's sha256 when it has one, else the weights'
    path, size and mtime), without hashing the weights. Never raises."""
    try:
        from ..models import get_card

        c = get_card(card)
        if c.sha256:
            return f"{c.name}:{c.sha256}"
        mf = model_folder(c, path, verify=False)
        st = mf.weights.stat()
        return f"{c.name}:{mf.weights}|{st.st_size}|{st.st_mtime_ns}"
    except Exception as exc:  # a missing model is reported when rendering, not when fingerprinting
        return f"unresolved:{card}:{path}:{type(exc).__name__}"


_PIPES: dict[tuple, Any] = {}
_PIPES_LOCK = threading.Lock()


def _torch():
    try:
        import torch
    except ImportError:
        raise InputError("the diffusion backend needs PyTorch: pip install 'composite[gen]'") from None
    return torch


class _quiet_loading:
    """No download/loading progress bars in render logs while a model loads (restored afterwards)."""

    def __enter__(self):
        from diffusers.utils import logging as dlog

        self._was = dlog.is_progress_bar_enabled()
        dlog.disable_progress_bar()
        try:
            from transformers.utils import logging as tlog

            self._twas = tlog.is_progress_bar_enabled()
            tlog.disable_progress_bar()
        except ImportError:  # pragma: no cover
            self._twas = None
        return self

    def __exit__(self, *exc):
        from diffusers.utils import logging as dlog

        if self._was:
            dlog.enable_progress_bar()
        if self._twas:
            from transformers.utils import logging as tlog

            tlog.enable_progress_bar()
        return False


def load_inpaint_pipeline(card: Any = DEFAULT_CARD, path: str | os.PathLike | None = None, *, device: str = "cpu",
                          dtype: str = "float32", verify: bool = True) -> tuple[Any, ModelFolder]:
    """Load ``diffusers.StableDiffusionInpaintPipeline`` from a card's local folder (cached per process).

    ``device``: ``cpu``, ``cuda`` or ``auto`` (cuda when available). ``dtype``: ``float32``, ``float16``
    or ``bfloat16``. Returns ``(pipeline, ModelFolder)``.
    """
    mf = model_folder(card, path, verify=verify)
    torch = _torch()
    try:
        from diffusers import StableDiffusionInpaintPipeline
    except ImportError:
        raise InputError("the diffusion backend needs diffusers and transformers: pip install 'composite[gen]'") from None
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device not in ("cpu", "cuda") and not device.startswith("cuda:"):
        raise InputError(f"unknown device {device!r}; allowed: cpu, cuda, auto")
    dtypes = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}
    if dtype not in dtypes:
        raise InputError(f"unknown dtype {dtype!r}; allowed: {', '.join(dtypes)}")
    st = mf.weights.stat()
    key = (str(mf.path.resolve()), st.st_size, st.st_mtime_ns, device, dtype)
    with _PIPES_LOCK:
        pipe = _PIPES.get(key)
    if pipe is None:
        try:
            with _quiet_loading():
                pipe = StableDiffusionInpaintPipeline.from_pretrained(
                    str(mf.path), local_files_only=True, dtype=dtypes[dtype], safety_checker=None,
                    requires_safety_checker=False)
        except Exception as exc:
            raise InputError(f"model folder {mf.path} could not be loaded as a Stable Diffusion inpainting pipeline "
                             f"({type(exc).__name__}: {exc}); check the download: "
                             f"`{_download_hint(mf.card, str(mf.path))}`") from None
        pipe = pipe.to(device)
        pipe.set_progress_bar_config(disable=True)
        with _PIPES_LOCK:
            if len(_PIPES) >= 2:
                _PIPES.clear()
            _PIPES[key] = pipe
    return pipe, mf


# -- tiling ---------------------------------------------------------------------------------------------

def _positions(size: int, tile: int, step: int) -> list[int]:
    if size <= tile:
        return [0]
    out = list(range(0, size - tile + 1, step))
    if out[-1] != size - tile:
        out.append(size - tile)
    return out


def tile_layout(width: int, height: int, *, tile: int = 512, overlap: int = 64, multiple: int = 8) -> list[tuple[int, int, int, int]]:
    """Tiles ``(x, y, w, h)`` covering a ``width x height`` image: ``tile`` pixels (rounded down to
    ``multiple``) stepping by ``tile - overlap``, the last ones flush with the far edges. An image smaller
    than a tile is one tile of the image's size (callers pad it to ``multiple``)."""
    if tile < multiple or overlap < 0 or overlap >= tile:
        raise InputError(f"tile must be >= {multiple} and 0 <= overlap < tile, got tile {tile}, overlap {overlap}")
    tile = (tile // multiple) * multiple
    step = tile - overlap
    tw, th = min(tile, width), min(tile, height)
    return [(x, y, tw, th) for y in _positions(height, th, step) for x in _positions(width, tw, step)]


def feather_mask(mask: np.ndarray, feather: float) -> np.ndarray:
    """A blend weight: 1 on ``mask`` (bool), falling smoothly to 0 over ``feather`` pixels outside it."""
    m = np.asarray(mask, bool)
    if feather <= 0 or not m.any():
        return m.astype(np.float32)
    d = cv2.distanceTransform((~m).astype(np.uint8), cv2.DIST_L2, 5)
    x = np.clip(1.0 - d / float(feather), 0.0, 1.0)
    return (x * x * (3 - 2 * x)).astype(np.float32)


def _seed_for(seed: int, *parts: int) -> int:
    h = hashlib.sha256("|".join(str(int(p)) for p in (seed, *parts)).encode()).digest()
    return int.from_bytes(h[:8], "little") & ((1 << 63) - 1)


def _to_model(rgb: np.ndarray, exposure: float) -> np.ndarray:
    from ..color import ocio

    px = np.ascontiguousarray(rgb * np.float32(2.0 ** exposure), np.float32)
    return np.clip(ocio.convert(px, "ACEScg", MODEL_SPACE), 0.0, 1.0).astype(np.float32)


def _from_model(disp: np.ndarray, exposure: float) -> np.ndarray:
    from ..color import ocio

    lin = ocio.convert(np.ascontiguousarray(disp, np.float32), MODEL_SPACE, "ACEScg")
    return (lin * np.float32(2.0 ** -exposure)).astype(np.float32)


def _run_tile(pipe, image: np.ndarray, mask: np.ndarray, *, prompt: str, negative_prompt: str, steps: int,
              guidance: float, strength: float, seed: int) -> np.ndarray:
    torch = _torch()
    gen = torch.Generator("cpu").manual_seed(int(seed))
    h, w = image.shape[:2]
    with torch.inference_mode():
        out = pipe(prompt=prompt, negative_prompt=negative_prompt or None, image=image[None],
                   mask_image=mask[None, :, :, None].astype(np.float32), height=h, width=w,
                   num_inference_steps=int(steps), guidance_scale=float(guidance), strength=float(strength),
                   generator=gen, output_type="np")
    res = np.asarray(out.images[0], np.float32)
    if res.shape[:2] != (h, w):
        res = cv2.resize(res, (w, h), interpolation=cv2.INTER_CUBIC)
    return res


def inpaint_diffusion(pipe, pixels: np.ndarray, mask: np.ndarray, *, prompt: str, negative_prompt: str = "",
                      seed: int = 0, frame: int = 0, noise: str = "shared", steps: int = 30, guidance: float = 7.5,
                      strength: float = 1.0, tile: int = 512, overlap: int = 64, feather: float = 16.0,
                      scale: float = 1.0, exposure: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Fill ``mask`` of a frame with a Stable Diffusion inpainting pipeline, tile by tile.

    Parameters
    ----------
    pipe : diffusers.StableDiffusionInpaintPipeline
        From :func:`load_inpaint_pipeline` (or any pipeline with the same call signature).
    pixels : np.ndarray
        ``(H, W, C)`` float32 scene-linear ACEScg, opaque RGB or premultiplied RGBA (colour is
        unpremultiplied for the model; alpha is kept).
    mask : np.ndarray
        ``(H, W)`` region to fill (> 0.5).
    seed, frame, noise : the noise of each tile comes from ``(seed, tile x, tile y)`` (``shared``) or
        ``(seed, frame, tile x, tile y)`` (``per_frame``).
    steps, guidance, strength : denoising steps, classifier-free guidance scale, strength (1: ignore the
        masked pixels' old content).
    tile, overlap, feather : tile size and overlap (pixels of the working resolution) and the width of
        the crossfade around each tile's filled region.
    scale : float
        Work at this fraction of the frame's resolution (e.g. 0.5 for 4K with a 512 model); the fill is
        resized back (softer than the plate).
    exposure : float
        Stops applied before the display encoding (and undone after) to bring the plate into [0, 1].

    Returns
    -------
    (np.ndarray, np.ndarray)
        The frame with the region filled (``(H, W, C)`` float32, known pixels outside the feather kept
        bit for bit) and the ``(H, W)`` float32 fraction of each pixel that the model made.
    """
    if noise not in NOISE_MODES:
        raise InputError(f"unknown noise mode {noise!r}; allowed: {', '.join(NOISE_MODES)}")
    if not 0.0 < strength <= 1.0:
        raise InputError(f"strength must be in (0, 1], got {strength}")
    if not 0.05 <= scale <= 1.0:
        raise InputError(f"scale must be in [0.05, 1], got {scale}")
    if steps < 1:
        raise InputError(f"steps must be >= 1, got {steps}")
    px = np.asarray(pixels, np.float32)
    if px.ndim != 3 or px.shape[2] < 3:
        raise InputError(f"diffusion inpainting expects (H, W, 3|4) pixels, got {px.shape}")
    hole = np.asarray(mask)
    if hole.ndim == 3:
        hole = hole[..., 0]
    if hole.shape != px.shape[:2]:
        raise InputError(f"the mask is {hole.shape[1]}x{hole.shape[0]} but the frame is {px.shape[1]}x{px.shape[0]}")
    hole = hole > 0.5
    H, W = px.shape[:2]
    if not hole.any():
        return px.copy(), np.zeros((H, W), np.float32)
    has_alpha = px.shape[2] >= 4
    rgb = px[..., :3]
    if has_alpha:
        a = px[..., 3:4]
        rgb = np.where(a > 1e-6, rgb / np.maximum(a, 1e-6), 0.0).astype(np.float32)
    # working resolution
    ww, wh = (max(8, int(round(W * scale))), max(8, int(round(H * scale)))) if scale < 1.0 else (W, H)
    disp = _to_model(rgb, exposure)
    work = disp if (ww, wh) == (W, H) else cv2.resize(disp, (ww, wh), interpolation=cv2.INTER_AREA)
    whole = hole if (ww, wh) == (W, H) else cv2.resize(hole.astype(np.float32), (ww, wh),
                                                          interpolation=cv2.INTER_LINEAR) > 0.01
    vae = int(getattr(pipe, "vae_scale_factor", 8))
    try:
        down = 2 ** (len(pipe.unet.config.block_out_channels) - 1)
    except AttributeError:
        down = 8
    multiple = vae * down
    # pad to a multiple (mirror), so every tile is a size the model takes
    ph, pw = -(-wh // multiple) * multiple, -(-ww // multiple) * multiple
    canvas = np.pad(work, ((0, ph - wh), (0, pw - ww), (0, 0)), mode="symmetric").astype(np.float32)
    todo = np.zeros((ph, pw), bool)
    todo[:wh, :ww] = whole
    made = np.zeros((ph, pw), np.float32)
    tile_px = max(multiple, (int(tile) // multiple) * multiple)
    ov = max(0, min(int(overlap), min(tile_px, ph, pw) - multiple))
    for (x, y, tw, th) in tile_layout(pw, ph, tile=tile_px, overlap=ov, multiple=multiple):
        sub = todo[y:y + th, x:x + tw]
        if not sub.any():
            continue
        parts = (x, y) if noise == "shared" else (frame, x, y)
        seed_t = _seed_for(seed, *parts)
        out = _run_tile(pipe, np.ascontiguousarray(canvas[y:y + th, x:x + tw]), sub, prompt=prompt,
                        negative_prompt=negative_prompt, steps=steps, guidance=guidance, strength=strength, seed=seed_t)
        f = feather_mask(sub, feather * (ww / W if scale < 1.0 else 1.0))
        region = canvas[y:y + th, x:x + tw]
        canvas[y:y + th, x:x + tw] = region * (1.0 - f[..., None]) + out * f[..., None]
        made[y:y + th, x:x + tw] = made[y:y + th, x:x + tw] * (1.0 - f) + f
        todo[y:y + th, x:x + tw] = False
    fill = canvas[:wh, :ww]
    made = made[:wh, :ww]
    if (ww, wh) != (W, H):
        fill = cv2.resize(fill, (W, H), interpolation=cv2.INTER_CUBIC)
        made = np.clip(cv2.resize(made, (W, H), interpolation=cv2.INTER_LINEAR), 0.0, 1.0)
    made = np.where(hole, np.float32(1.0), made).astype(np.float32)
    lin = _from_model(np.clip(fill, 0.0, 1.0), exposure)
    out = px.copy()
    touched = made > 0
    k = made[..., None]
    if has_alpha:
        a = px[..., 3:4]
        a_new = np.where(hole[..., None], np.float32(1.0), a)
        straight = rgb * (1 - k) + lin * k
        out[..., :3] = np.where(touched[..., None], straight * a_new, px[..., :3])
        out[..., 3:4] = np.where(touched[..., None], a_new, a)
    else:
        out[..., :3] = np.where(touched[..., None], rgb * (1 - k) + lin * k, px[..., :3])
    return out.astype(np.float32), made


class DiffusionInpainter:
    """The diffusion backend as a filler/generator (``generated`` True).

    Example
    -------
    >>> gen = DiffusionInpainter(prompt="a misty battlefield at dawn", seed=7)  # doctest: +SKIP
    >>> filled, made = gen.fill_with_coverage(plate_rgb, hole)                   # doctest: +SKIP
    """

    backend = "diffusers"
    generated = True

    def __init__(self, *, prompt: str, card: Any = DEFAULT_CARD, model_path: str | None = None,
                 negative_prompt: str = "", seed: int = 0, frame: int = 0, noise: str = "shared", steps: int = 30,
                 guidance: float = 7.5, strength: float = 1.0, tile: int = 512, overlap: int = 64,
                 feather: float = 16.0, scale: float = 1.0, exposure: float = 0.0, device: str = "cpu",
                 dtype: str = "float32", verify: bool = True, pipeline: Any = None):
        if not prompt:
            raise InputError("the diffusion backend needs a prompt (what to paint in the region)")
        self.prompt, self.card, self.model_path = prompt, card, model_path
        self.negative_prompt, self.seed, self.frame, self.noise = negative_prompt, int(seed), int(frame), noise
        self.steps, self.guidance, self.strength = int(steps), float(guidance), float(strength)
        self.tile, self.overlap, self.feather, self.scale, self.exposure = int(tile), int(overlap), float(feather), \
            float(scale), float(exposure)
        self.device, self.dtype, self.verify = device, dtype, verify
        self._pipe = pipeline
        self._folder: ModelFolder | None = None
        self.last_method = "diffusion"
        self.last_made: np.ndarray | None = None

    def pipeline(self):
        if self._pipe is None:
            self._pipe, self._folder = load_inpaint_pipeline(self.card, self.model_path, device=self.device,
                                                             dtype=self.dtype, verify=self.verify)
        return self._pipe

    def describe(self) -> dict[str, Any]:
        from ..models import get_card

        self.pipeline()
        card = get_card(self.card)
        model = {"card": card.name, "sha256": self._folder.sha256 if self._folder else None,
                 "repo_id": dict(card.config).get("repo_id", ""), "licence": card.licence}
        return {"backend": self.backend, "generated": True, "model": model, "prompt": self.prompt, "seed": self.seed,
                "params": {"negative_prompt": self.negative_prompt, "noise": self.noise, "steps": self.steps,
                           "guidance": self.guidance, "strength": self.strength, "tile": self.tile,
                           "overlap": self.overlap, "scale": self.scale, "exposure": self.exposure},
                "sources": [str(self._folder.path)] if self._folder else []}

    def fill_with_coverage(self, pixels: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return inpaint_diffusion(self.pipeline(), pixels, mask, prompt=self.prompt,
                                 negative_prompt=self.negative_prompt, seed=self.seed, frame=self.frame,
                                 noise=self.noise, steps=self.steps, guidance=self.guidance, strength=self.strength,
                                 tile=self.tile, overlap=self.overlap, feather=self.feather, scale=self.scale,
                                 exposure=self.exposure)

    def fill(self, pixels: np.ndarray, mask: np.ndarray) -> np.ndarray:
        out, made = self.fill_with_coverage(pixels, mask)
        self.last_made = made
        return out

    def generate(self, ctx):
        """The protocol call: fill ``ctx.mask`` of ``ctx.plate``; the element carries ``ai_coverage``."""
        from ..core.coverage import with_coverage
        from .generator import attach_record

        if ctx.plate is None or ctx.mask is None:
            raise InputError("the diffusion backend needs the plate and the mask of the region to fill")
        self.frame = int(ctx.frame)
        if ctx.seed:
            self.seed = int(ctx.seed)
        if ctx.prompt:
            self.prompt = ctx.prompt
        out, made = self.fill_with_coverage(ctx.plate.pixels, ctx.mask)
        img = ctx.plate.with_pixels(out)
        img = with_coverage(img, made * img.a)
        return attach_record(img, self.describe())
