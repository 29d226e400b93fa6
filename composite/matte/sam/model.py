"""Building Segment Anything (SAM) models from model cards, without the package's top-level import.

``import segment_anything`` runs the package's ``__init__``, which imports its predictor and through it
``torchvision`` — absent from (or mismatched with) CPU-only torch installs. The network itself lives in
``segment_anything.modeling``, whose modules import only torch and each other. :func:`sam_modeling`
imports that sub-package under its own name *without* executing the parent package's ``__init__``: the
classes are the genuine ``segment_anything.modeling`` ones (a later ``import segment_anything`` in a process
that has torchvision finds and reuses them), and torchvision is never touched.

Architectures: ``sam_vit_b``, ``sam_vit_l``, ``sam_vit_h`` (the three published checkpoints, see the cards
in ``models/``). A card may carry a ``config`` object overriding any :class:`SamConfig` field, which is how
tests describe tiny randomly initialised models of the same architecture.
"""

from __future__ import annotations

import dataclasses
import importlib
import importlib.util
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ...core.errors import InputError

_MODELING = "segment_anything.modeling"


def sam_modeling():
    """The ``segment_anything.modeling`` module, imported without ``segment_anything/__init__.py``."""
    mod = sys.modules.get(_MODELING)
    if mod is not None:
        return mod
    spec = importlib.util.find_spec("segment_anything")  # locates the package; does not execute it
    if spec is None or not spec.submodule_search_locations:
        raise InputError("SAM roto needs the segment-anything package: pip install 'composite[sam]' "
                         "(or pip install segment-anything); torchvision is not needed")
    pkg_dir = Path(list(spec.submodule_search_locations)[0]) / "modeling"
    mspec = importlib.util.spec_from_file_location(_MODELING, pkg_dir / "__init__.py",
                                                   submodule_search_locations=[str(pkg_dir)])
    if mspec is None or mspec.loader is None:  # pragma: no cover - broken install
        raise InputError(f"segment-anything is installed but {pkg_dir} is not importable")
    mod = importlib.util.module_from_spec(mspec)
    sys.modules[_MODELING] = mod
    try:
        mspec.loader.exec_module(mod)
    except Exception:
        sys.modules.pop(_MODELING, None)
        raise
    return mod


@dataclass(frozen=True)
class SamConfig:
    """Hyper-parameters of a SAM network (defaults: the published ViT-B)."""

    encoder_embed_dim: int = 768
    encoder_depth: int = 12
    encoder_num_heads: int = 12
    encoder_global_attn_indexes: tuple[int, ...] = (2, 5, 8, 11)
    image_size: int = 1024
    patch_size: int = 16
    window_size: int = 14
    prompt_embed_dim: int = 256
    mask_in_chans: int = 16
    decoder_depth: int = 2
    decoder_mlp_dim: int = 2048
    decoder_num_heads: int = 8
    iou_head_depth: int = 3
    iou_head_hidden_dim: int = 256
    pixel_mean: tuple[float, float, float] = (123.675, 116.28, 103.53)
    pixel_std: tuple[float, float, float] = (58.395, 57.12, 57.375)

    @property
    def embedding_size(self) -> int:
        return self.image_size // self.patch_size

    @property
    def low_res_size(self) -> int:
        """Side of the decoder's mask logits (256 for the published models)."""
        return 4 * self.embedding_size

    def replace(self, **changes: Any) -> SamConfig:
        fields = {f.name for f in dataclasses.fields(self)}
        unknown = sorted(set(changes) - fields)
        if unknown:
            raise InputError(f"unknown SAM config key {unknown[0]!r}; allowed: {', '.join(sorted(fields))}")
        for k in ("encoder_global_attn_indexes", "pixel_mean", "pixel_std"):
            if k in changes:
                changes[k] = tuple(changes[k])
        return dataclasses.replace(self, **changes)


#: The published architectures.
CONFIGS: dict[str, SamConfig] = {
    "sam_vit_b": SamConfig(),
    "sam_vit_l": SamConfig(encoder_embed_dim=1024, encoder_depth=24, encoder_num_heads=16,
                           encoder_global_attn_indexes=(5, 11, 17, 23)),
    "sam_vit_h": SamConfig(encoder_embed_dim=1280, encoder_depth=32, encoder_num_heads=16,
                           encoder_global_attn_indexes=(7, 15, 23, 31)),
}


def config_for(architecture: str, overrides: dict | None = None) -> SamConfig:
    if architecture not in CONFIGS:
        raise InputError(f"unknown SAM architecture {architecture!r}; known: {', '.join(CONFIGS)}")
    return CONFIGS[architecture].replace(**dict(overrides or {}))


def build_sam(config: SamConfig):
    """A randomly initialised ``segment_anything.modeling.Sam`` of the given shape, in eval mode."""
    from functools import partial

    import torch

    m = sam_modeling()
    c = config
    sam = m.Sam(
        image_encoder=m.ImageEncoderViT(
            depth=c.encoder_depth, embed_dim=c.encoder_embed_dim, img_size=c.image_size, mlp_ratio=4,
            norm_layer=partial(torch.nn.LayerNorm, eps=1e-6), num_heads=c.encoder_num_heads,
            patch_size=c.patch_size, qkv_bias=True, use_rel_pos=True,
            global_attn_indexes=tuple(c.encoder_global_attn_indexes), window_size=c.window_size,
            out_chans=c.prompt_embed_dim),
        prompt_encoder=m.PromptEncoder(
            embed_dim=c.prompt_embed_dim, image_embedding_size=(c.embedding_size, c.embedding_size),
            input_image_size=(c.image_size, c.image_size), mask_in_chans=c.mask_in_chans),
        mask_decoder=m.MaskDecoder(
            num_multimask_outputs=3,
            transformer=m.TwoWayTransformer(depth=c.decoder_depth, embedding_dim=c.prompt_embed_dim,
                                            mlp_dim=c.decoder_mlp_dim, num_heads=c.decoder_num_heads),
            transformer_dim=c.prompt_embed_dim, iou_head_depth=c.iou_head_depth,
            iou_head_hidden_dim=c.iou_head_hidden_dim),
        pixel_mean=list(c.pixel_mean), pixel_std=list(c.pixel_std),
    )
    sam.eval()
    return sam


def resolve_device(device: str = "auto", precision: str = "auto") -> tuple[str, str]:
    """``("cpu"|"cuda[:n]", "float32"|"float16")`` from the user's choices (half precision only on CUDA)."""
    import torch

    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise InputError(f"device {device!r} requested but this torch has no CUDA device; use device=cpu or auto")
    if device != "cpu" and not device.startswith("cuda"):
        raise InputError(f"device must be auto, cpu or cuda[:n], got {device!r}")
    if precision == "auto":
        precision = "float16" if device.startswith("cuda") else "float32"
    if precision not in ("float32", "float16"):
        raise InputError(f"precision must be auto, float32 or float16, got {precision!r}")
    if precision == "float16" and device == "cpu":
        raise InputError("half precision (float16) is for CUDA devices; on the CPU use precision=float32 or auto")
    return device, precision


@dataclass
class LoadedSam:
    """A SAM network on a device, with where it came from."""

    model: Any
    config: SamConfig
    device: str
    precision: str
    card_name: str
    checkpoint: Path | None
    sha256: str | None


_MODELS: dict[tuple, LoadedSam] = {}
_LOCK = threading.Lock()


def load_sam(card, checkpoint: str | None = None, *, device: str = "auto", precision: str = "auto",
             verify: bool = True) -> LoadedSam:
    """Build the card's architecture, load its verified checkpoint and move it to ``device``.

    Loaded models are shared within the process per (checkpoint sha256, device, precision). On CUDA with
    ``float16`` the image encoder (nearly all the compute) runs in half precision; the prompt encoder and
    mask decoder stay in float32.
    """
    from ...models import get_card, load_state_dict

    card = get_card(card)
    device, precision = resolve_device(device, precision)
    config = config_for(card.architecture, dict(card.config))
    state, path, digest = load_state_dict(card, checkpoint, verify=verify)
    key = (card.name, config, str(path.resolve()), digest or path.stat().st_mtime_ns, device, precision)
    with _LOCK:
        hit = _MODELS.get(key)
        if hit is not None:
            return hit
        sam = build_sam(config)
        try:
            sam.load_state_dict(state)
        except RuntimeError as exc:
            first = str(exc).splitlines()[0]
            raise InputError(f"checkpoint {path} does not fit architecture {card.architecture!r} of model card "
                             f"{card.name!r}: {first}") from None
        sam.to(device)
        if precision == "float16":
            sam.image_encoder.half()
        loaded = LoadedSam(sam, config, device, precision, card.name, path, digest)
        _MODELS[key] = loaded
        return loaded


def clear_model_cache() -> None:
    with _LOCK:
        _MODELS.clear()
