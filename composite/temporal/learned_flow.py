"""A hook for learned optical-flow models (PyTorch), loaded from a checkpoint described by a model card.

A card (:mod:`composite.models`) names the architecture, the checkpoint file, its download address,
sha256 and licence; loading verifies the file and never downloads anything. Supported architectures:

``composite_tiny_flow``
    :class:`TinyFlowNet`, a small coarse-to-fine network (feature pyramid, warping, residual flow per
    level) defined here; its hyper-parameters come from the card's ``config`` (``channels``, ``levels``).
    It is the reference for wiring a model in and for tests (randomly initialised, it produces
    meaningless but deterministic flow).
``torch_export``
    Any model saved with ``torch.export.save`` (a ``.pt2`` file, export with dynamic height and width)
    whose ``forward(a, b)`` takes two ``(N, 1, H, W)`` float32 guides and returns ``(N, 2, H, W)`` flow
    in pixels (e.g. an exported RAFT). ``config`` may give ``multiple_of`` (input padding, default 8).
``torchscript``
    The same contract for a model saved with ``torch.jit.save`` (TorchScript, deprecated by PyTorch
    but still how many published flow models are exported).

Inputs are the same 8-bit log-luminance guides DIS uses (:func:`composite.temporal.flow.flow_guide`),
divided by 255, so a model sees flicker-normalised frames; the output follows composite's flow convention
(pixels, x right, y down, ``a[p] ≈ b[p + flow[p]]``).

Example
-------
>>> import numpy as np, torch
>>> from composite.temporal.learned_flow import LearnedFlow, TinyFlowNet
>>> _ = torch.manual_seed(0)
>>> model = LearnedFlow(TinyFlowNet(channels=8, levels=2), name="random")
>>> a = np.random.default_rng(0).random((40, 56, 3), dtype=np.float32)
>>> model(a, a).shape
(40, 56, 2)
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from ..core.errors import InputError
from .flow import flow_guide

#: Architectures :func:`load_flow_model` can build.
ARCHITECTURES = ("composite_tiny_flow", "torch_export", "torchscript")


def _torch():
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is an optional dependency
        raise InputError("learned optical flow needs PyTorch: pip install 'composite[torch]'") from None
    return torch


def _backward_warp(torch, feat, flow):
    """Sample ``feat`` (N, C, H, W) at ``p + flow[p]`` (flow (N, 2, H, W) in pixels), zeros outside."""
    n, _, h, w = feat.shape
    ys, xs = torch.meshgrid(torch.arange(h, dtype=feat.dtype, device=feat.device),
                            torch.arange(w, dtype=feat.dtype, device=feat.device), indexing="ij")
    gx = (xs[None] + flow[:, 0]) * (2.0 / max(w - 1, 1)) - 1.0
    gy = (ys[None] + flow[:, 1]) * (2.0 / max(h - 1, 1)) - 1.0
    grid = torch.stack([gx, gy], dim=-1)
    return torch.nn.functional.grid_sample(feat, grid, mode="bilinear", padding_mode="zeros", align_corners=True)


def _tiny_flow_class():
    torch = _torch()
    nn = torch.nn

    class TinyFlowNet(nn.Module):
        """Coarse-to-fine flow: a shared feature pyramid, then per level (coarsest first) the second
        frame's features warped by the current flow, and a small decoder predicting a flow update.

        ``forward(a, b)``: ``(N, 1, H, W)`` guides in [0, 1] with H, W multiples of ``2 ** levels``;
        returns ``(N, 2, H, W)`` flow in pixels.
        """

        def __init__(self, channels: int = 16, levels: int = 3, in_channels: int = 1):
            super().__init__()
            self.levels = int(levels)
            enc, dec = [], []
            c_in = in_channels
            for _ in range(self.levels):
                enc.append(nn.Sequential(nn.Conv2d(c_in, channels, 3, stride=2, padding=1), nn.LeakyReLU(0.1),
                                         nn.Conv2d(channels, channels, 3, padding=1), nn.LeakyReLU(0.1)))
                dec.append(nn.Sequential(nn.Conv2d(2 * channels + 2, channels, 3, padding=1), nn.LeakyReLU(0.1),
                                         nn.Conv2d(channels, 2, 3, padding=1)))
                c_in = channels
            self.encoder = nn.ModuleList(enc)
            self.decoder = nn.ModuleList(dec)

        def _pyramid(self, x):
            feats = []
            for layer in self.encoder:
                x = layer(x)
                feats.append(x)
            return feats

        def forward(self, a, b):
            fa, fb = self._pyramid(a), self._pyramid(b)
            flow = None
            for level in reversed(range(self.levels)):
                xa, xb = fa[level], fb[level]
                if flow is None:
                    flow = xa.new_zeros((xa.shape[0], 2, xa.shape[2], xa.shape[3]))
                else:
                    flow = 2.0 * nn.functional.interpolate(flow, size=xa.shape[2:], mode="bilinear",
                                                           align_corners=False)
                warped = _backward_warp(torch, xb, flow)
                flow = flow + self.decoder[level](torch.cat([xa, warped, flow], dim=1))
            return 2.0 * nn.functional.interpolate(flow, size=a.shape[2:], mode="bilinear", align_corners=False)

    return TinyFlowNet


def __getattr__(name: str):
    # TinyFlowNet is built on first access so that importing this module does not import torch.
    if name == "TinyFlowNet":
        cls = _tiny_flow_class()
        globals()["TinyFlowNet"] = cls
        return cls
    raise AttributeError(name)


class LearnedFlow:
    """A torch flow model wrapped as composite's flow estimator: ``model(a, b) -> (H, W, 2)`` float32.

    Parameters
    ----------
    module : torch.nn.Module
        ``forward(a, b)`` on ``(1, 1, H, W)`` guides in [0, 1], returning ``(1, 2, H, W)`` pixels.
    multiple_of : int
        Inputs are padded (edge replicate) to a multiple of this; the flow is cropped back.
    name, sha256 : str
        For messages and fingerprints (the checkpoint's digest).
    device : str
        Torch device, ``"cpu"`` by default.
    """

    def __init__(self, module: Any, *, multiple_of: int = 8, name: str = "flow model", sha256: str | None = None,
                 device: str = "cpu"):
        torch = _torch()
        self.module = module.to(device)
        try:
            self.module.eval()
        except (NotImplementedError, RuntimeError):  # exported programs have no train/eval switch
            pass
        self.multiple_of = max(1, int(multiple_of))
        self.name = name
        self.sha256 = sha256
        self.device = device
        self._torch = torch

    def __repr__(self) -> str:
        return f"LearnedFlow({self.name!r}, sha256={self.sha256})"

    def _tensor(self, pixels: np.ndarray):
        g = flow_guide(pixels, encoding="log").astype(np.float32) * np.float32(1.0 / 255.0)
        h, w = g.shape
        m = self.multiple_of
        ph, pw = (-h) % m, (-w) % m
        if ph or pw:
            g = np.pad(g, ((0, ph), (0, pw)), mode="edge")
        return self._torch.from_numpy(np.ascontiguousarray(g))[None, None].to(self.device)

    def __call__(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Flow from ``a`` to ``b`` (``(H, W, C)`` float32 scene-linear frames): ``(H, W, 2)`` float32."""
        h, w = a.shape[:2]
        with self._torch.no_grad():
            out = self.module(self._tensor(a), self._tensor(b))
        if tuple(out.shape[:2]) != (1, 2):
            raise InputError(f"flow model {self.name}: expected output (1, 2, H, W), got {tuple(out.shape)}")
        flow = out[0, :, :h, :w].permute(1, 2, 0).cpu().numpy().astype(np.float32)
        if not np.isfinite(flow).all():
            raise InputError(f"flow model {self.name} produced NaN/Inf flow; check the checkpoint")
        return np.ascontiguousarray(flow)


def load_flow_model(card: Any, checkpoint: str | os.PathLike | None = None, *, device: str = "cpu",
                    verify: bool = True) -> LearnedFlow:
    """Build a :class:`LearnedFlow` from a model card (name, path or :class:`~composite.models.ModelCard`).

    ``checkpoint``: the file (or a folder holding the card's ``file_name``); ``$COMPOSITE_MODELS`` is
    searched when None. The file's sha256 is checked against the card (:class:`ChecksumError` when it
    differs); a missing file raises :class:`InputError` saying where to download it.
    """
    from ..models import checkpoint_path, get_card, load_state_dict

    card = get_card(card)
    arch = card.architecture
    if arch not in ARCHITECTURES:
        raise InputError(f"model card {card.name!r}: architecture {arch!r} is not a flow model; flow "
                         f"architectures: {', '.join(ARCHITECTURES)}")
    cfg = dict(card.config)
    torch = _torch()
    if arch in ("torchscript", "torch_export"):
        path, digest = checkpoint_path(card, checkpoint, verify=verify)
        try:
            if arch == "torchscript":
                module = torch.jit.load(str(path), map_location=device)
            else:
                module = torch.export.load(str(path)).module()
        except Exception as exc:
            raise InputError(f"checkpoint {path} is not a {arch} flow model ({type(exc).__name__}: {exc})") from None
        return LearnedFlow(module, multiple_of=int(cfg.get("multiple_of", 8)), name=card.name, sha256=digest,
                           device=device)
    state, path, digest = load_state_dict(card, checkpoint, verify=verify)
    try:
        levels = int(cfg.get("levels", 3))
        module = _tiny_flow_class()(channels=int(cfg.get("channels", 16)), levels=levels)
        module.load_state_dict(state)
    except (RuntimeError, TypeError, ValueError) as exc:
        raise InputError(f"checkpoint {path} does not match architecture {arch} with config {cfg}: {exc}") from None
    return LearnedFlow(module, multiple_of=2 ** levels, name=card.name, sha256=digest, device=device)
