"""SAM inference with composite's own pre- and post-processing.

Pre-processing (what the published models were trained with): the image, as 8-bit-range sRGB-encoded RGB,
is resized so its longest side is the model's input size (1024), normalised with the model's pixel mean
and standard deviation, and zero-padded at the bottom and right to a square. Prompt coordinates are scaled
by the same factors. Post-processing: the decoder's low-resolution logits (256x256) are upsampled bilinearly
to the padded input, cropped to the resized image and upsampled bilinearly to the original size; the mask
is ``logits > 0``.

Scene-linear plates are encoded with :func:`composite.matte.refine.encode_for_matting` (``"srgb"``: the sRGB
transfer curve on the working-space channels, clipped to [0, 1]) before entering the network.

Image embeddings are cached per image content (a digest of the pre-processed input), so prompting the same
frame again — re-prompting, several objects, a propagation pass that revisits a frame — runs the heavy
image encoder once.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from dataclasses import dataclass

import cv2
import numpy as np

from ...core.errors import InputError
from .model import LoadedSam


def preprocess_shape(h: int, w: int, long_side: int) -> tuple[int, int]:
    """``(new_h, new_w)`` with the longest side ``long_side`` (SAM's rounding)."""
    scale = long_side / max(h, w)
    return int(h * scale + 0.5), int(w * scale + 0.5)


@dataclass(frozen=True)
class Embedding:
    """An image's SAM features and the geometry needed to map prompts and masks."""

    features: object  # torch.Tensor (1, C, e, e), float32 on the model's device
    input_size: tuple[int, int]  # (h, w) of the resized image inside the padded square
    original_size: tuple[int, int]  # (H, W)
    key: str


@dataclass(frozen=True)
class Prediction:
    """Masks for one prompt set.

    ``logits``: ``(n, H, W)`` float32 full-resolution logits (mask = logits > 0). ``iou``: ``(n,)`` the
    model's predicted IoU per mask. ``low_res``: ``(n, s, s)`` float32 decoder logits (s = 256 for the
    published models), usable as the next mask prompt.
    """

    logits: np.ndarray
    iou: np.ndarray
    low_res: np.ndarray

    def best(self) -> int:
        return int(np.argmax(self.iou))


class SamSegmenter:
    """Embeds frames (cached) and decodes masks from prompts.

    Parameters
    ----------
    sam : LoadedSam
        From :func:`composite.matte.sam.model.load_sam`.
    cache_size : int
        Embeddings kept (least recently used dropped). A ViT embedding is 4 MB in float32.
    """

    def __init__(self, sam: LoadedSam, *, cache_size: int = 16):
        self.sam = sam
        self.cache_size = max(1, int(cache_size))
        self._cache: OrderedDict[str, Embedding] = OrderedDict()
        self._lock = threading.Lock()
        #: Number of times the image encoder ran (for tests and logs).
        self.encoder_runs = 0

    # -- images ------------------------------------------------------------------------------------
    def _prepare(self, rgb01: np.ndarray) -> tuple[np.ndarray, tuple[int, int]]:
        a = np.asarray(rgb01, np.float32)
        if a.ndim != 3 or a.shape[2] != 3:
            raise InputError(f"SAM: expected an (H, W, 3) encoded RGB image, got {a.shape}")
        h, w = a.shape[:2]
        size = self.sam.config.image_size
        nh, nw = preprocess_shape(h, w, size)
        interp = cv2.INTER_AREA if nh < h else cv2.INTER_LINEAR
        x = cv2.resize(np.clip(a, 0.0, 1.0) * np.float32(255.0), (nw, nh), interpolation=interp)
        mean = np.asarray(self.sam.config.pixel_mean, np.float32)
        std = np.asarray(self.sam.config.pixel_std, np.float32)
        x = (x - mean) / std
        padded = np.zeros((size, size, 3), np.float32)
        padded[:nh, :nw] = x
        return padded, (nh, nw)

    def embed(self, rgb01: np.ndarray) -> Embedding:
        """Features of an ``(H, W, 3)`` float image in [0, 1] (sRGB-encoded), cached by content."""
        import torch

        padded, input_size = self._prepare(rgb01)
        h = hashlib.blake2b(padded.tobytes(), digest_size=16)
        h.update(repr((rgb01.shape[:2], self.sam.card_name, self.sam.sha256, self.sam.precision)).encode())
        key = h.hexdigest()
        with self._lock:
            hit = self._cache.get(key)
            if hit is not None:
                self._cache.move_to_end(key)
                return hit
        model = self.sam.model
        dtype = torch.float16 if self.sam.precision == "float16" else torch.float32
        x = torch.from_numpy(np.ascontiguousarray(padded.transpose(2, 0, 1)))[None].to(self.sam.device, dtype)
        with torch.inference_mode():
            feats = model.image_encoder(x).float()
        self.encoder_runs += 1
        emb = Embedding(feats, input_size, tuple(int(v) for v in rgb01.shape[:2]), key)
        with self._lock:
            self._cache[key] = emb
            while len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)
        return emb

    # -- prompts -----------------------------------------------------------------------------------
    def _scale(self, emb: Embedding) -> np.ndarray:
        (nh, nw), (h, w) = emb.input_size, emb.original_size
        return np.array([nw / w, nh / h], np.float64)

    def mask_to_low_res(self, emb: Embedding, mask: np.ndarray, *, strength: float = 8.0) -> np.ndarray:
        """A full-resolution mask (``(H, W)``, [0, 1]) as decoder mask-prompt logits ``(s, s)``:
        resized like the image, padded, area-downsampled, mapped to ``strength * (2 m - 1)``."""
        m = np.asarray(mask, np.float32)
        if m.shape != emb.original_size:
            raise InputError(f"mask hint is {m.shape[1]}x{m.shape[0]} but the image is "
                             f"{emb.original_size[1]}x{emb.original_size[0]}")
        size = self.sam.config.image_size
        nh, nw = emb.input_size
        padded = np.zeros((size, size), np.float32)
        padded[:nh, :nw] = cv2.resize(np.clip(m, 0, 1), (nw, nh), interpolation=cv2.INTER_AREA
                                      if nh < m.shape[0] else cv2.INTER_LINEAR)
        s = self.sam.config.low_res_size
        low = cv2.resize(padded, (s, s), interpolation=cv2.INTER_AREA)
        return (np.float32(strength) * (2.0 * low - 1.0)).astype(np.float32)

    def predict(self, emb: Embedding, *, points: np.ndarray | None = None, labels: np.ndarray | None = None,
                box: np.ndarray | None = None, mask_logits: np.ndarray | None = None,
                multimask: bool = False) -> Prediction:
        """Masks for prompts on an embedded image.

        Parameters
        ----------
        points : ``(n, 2)`` x, y pixel coordinates of the original image; ``labels`` ``(n,)`` 1 positive,
            0 negative.
        box : ``(4,)`` x0, y0, x1, y1 in pixels.
        mask_logits : ``(s, s)`` low-resolution logits (a previous :attr:`Prediction.low_res`, or
            :meth:`mask_to_low_res`).
        multimask : return the decoder's three candidate masks instead of one.
        """
        import torch
        import torch.nn.functional as F

        if points is None and box is None and mask_logits is None:
            raise InputError("SAM needs at least one prompt: points, a box or a mask hint")
        model = self.sam.model
        dev = self.sam.device
        scale = self._scale(emb)
        pts = None
        if points is not None and len(points):
            p = np.asarray(points, np.float64).reshape(-1, 2) * scale
            lab = np.asarray(labels if labels is not None else np.ones(len(p)), np.int64).reshape(-1)
            if lab.shape[0] != p.shape[0]:
                raise InputError(f"SAM: {p.shape[0]} points but {lab.shape[0]} labels")
            pts = (torch.as_tensor(p, dtype=torch.float32, device=dev)[None],
                   torch.as_tensor(lab, dtype=torch.int64, device=dev)[None])
        boxes = None
        if box is not None:
            b = np.asarray(box, np.float64).reshape(2, 2) * scale
            boxes = torch.as_tensor(b.reshape(1, 4), dtype=torch.float32, device=dev)
        masks = None
        if mask_logits is not None:
            s = self.sam.config.low_res_size
            ml = np.asarray(mask_logits, np.float32)
            if ml.shape != (s, s):
                raise InputError(f"SAM: mask prompt must be {s}x{s} logits, got {ml.shape}")
            masks = torch.as_tensor(ml, device=dev)[None, None]
        with torch.inference_mode():
            sparse, dense = model.prompt_encoder(points=pts, boxes=boxes, masks=masks)
            low, iou = model.mask_decoder(image_embeddings=emb.features,
                                          image_pe=model.prompt_encoder.get_dense_pe(),
                                          sparse_prompt_embeddings=sparse, dense_prompt_embeddings=dense,
                                          multimask_output=multimask)
            size = self.sam.config.image_size
            nh, nw = emb.input_size
            full = F.interpolate(low.float(), (size, size), mode="bilinear", align_corners=False)
            full = full[..., :nh, :nw]
            full = F.interpolate(full, emb.original_size, mode="bilinear", align_corners=False)
        logits = np.nan_to_num(full[0].cpu().numpy().astype(np.float32), nan=-1e4)
        return Prediction(logits, iou[0].float().cpu().numpy().astype(np.float32),
                          low[0].float().cpu().numpy().astype(np.float32))
