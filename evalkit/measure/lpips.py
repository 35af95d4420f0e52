"""LPIPS: learned perceptual distance between each served output and its target photo.

Zhang et al. 2018, "The unreasonable effectiveness of deep features as a perceptual metric"
(LPIPS v0.1): both images go through AlexNet (ImageNet weights, torchvision's
``alexnet-owt-7be5be79.pth``); at each of its 5 ReLU stages the activations are unit-normalised
along channels, their squared difference is weighted per channel by the learned v0.1 linear
layers (shipped inside torchmetrics, ``lpips_models/alex.pth``) and averaged over space; the
5 stage values are summed: ``d(x, y) = sum_l mean_hw || w_l * (x^_l - y^_l) ||^2``.
Dimensionless, >= 0, typically in [0, 1]; 0 for identical images; lower is better.

Inputs: served uint8 RGB output and uint8 target, mapped to [-1, 1] by ``x / 127.5 - 1`` (the
range LPIPS was trained on); evalkit asserts that range itself, because torchmetrics (and the
network) only check ``min >= -1`` or nothing and would silently score [0, 1] inputs too well. No resizing (served size).
Per sample, then mean, std and 95% bootstrap CI (:func:`evalkit.measure.stats.summarize`).

The network is evalkit's own plain-torch AlexNet trunk and LPIPS head
(:mod:`evalkit.measure.lpips_net`; torchvision is not needed), checked equal to torchvision's
AlexNet and torchmetrics' LPIPS in tests/test_lpips.py. The AlexNet backbone is loaded only
from the local hash-checked file (:mod:`evalkit.measure.weights`); without it the metric is
skipped with a one-line reason. Tests inject a backbone (random weights) instead.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from evalkit.inputs.data.samples import iter_chunks
from evalkit.measure import weights as W
from evalkit.measure.base import MetricContext, MetricValue
from evalkit.measure.stats import summarize

LPIPS_VERSION = "0.1"
NET_TYPE = "alex"


def to_signed(images: np.ndarray):
    """uint8 ``(N, H, W, 3)`` -> float32 torch ``(N, 3, H, W)`` in [-1, 1], range asserted."""
    import torch

    images = np.asarray(images)
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[-1] != 3:
        raise ValueError(f"LPIPS expects uint8 (N, H, W, 3) images, got {images.dtype} "
                         f"{images.shape}")
    x = torch.from_numpy(images.astype(np.float32) / 127.5 - 1.0).permute(0, 3, 1, 2)
    check_signed_range(x)
    return x.contiguous()


def check_signed_range(x) -> None:
    """Raise unless ``x`` lies in [-1, 1] (torchmetrics checks only the lower bound)."""
    lo, hi = float(x.min()), float(x.max())
    if lo < -1.0 or hi > 1.0:
        raise ValueError(f"LPIPS inputs must lie in [-1, 1], got [{lo}, {hi}]")


def linear_layers_path():
    """The v0.1 linear layers file shipped inside torchmetrics (found without importing it).

    Raises:
        WeightsMissing: torchmetrics (or the file inside it) is not installed.
    """
    path = W.bundled_lpips_layers(NET_TYPE)
    if path is None:
        raise W.BundledMissing("lpips_models/alex.pth", "torchmetrics")
    return path


def build_lpips_net(backbone: Any = None):
    """The LPIPS network (AlexNet, v0.1 linear layers; :class:`evalkit.measure.lpips_net.
    LpipsNet`, plain torch, no torchvision), eval mode, no download.

    ``backbone``: None (load ``alexnet-owt-7be5be79.pth`` from the local weights folders,
    raising :class:`evalkit.measure.weights.WeightsMissing` when absent or wrong), an AlexNet
    module (torchvision's, or :class:`~evalkit.measure.lpips_net.AlexNetFeatures`) or its
    ``features`` ``Sequential`` (tests: random weights), or an AlexNet state dict
    (``features.*`` keys). Returns ``(net, backbone_name, backbone_sha256)``.
    """
    # the weights first: when they are absent (the offline case) lpips is skipped without
    # paying torch's and torchmetrics' import (seconds, most of a small run's start-up)
    path = W.resolve("alexnet") if backbone is None else None
    import torch

    from evalkit.measure.lpips_net import LpipsNet

    if path is not None:
        state = torch.load(str(path), map_location="cpu", weights_only=True)
        name, digest = W.ALEXNET.name, W.cached_sha256(path)
    else:
        if isinstance(backbone, torch.nn.Module):
            mod = getattr(backbone, "features", backbone)
            state = {f"features.{k}": v for k, v in mod.state_dict().items()}
        else:
            state = dict(backbone)
        name, digest = "injected", None
    net = LpipsNet()
    net.load_linear_layers(torch.load(str(linear_layers_path()), map_location="cpu",
                                      weights_only=True))
    net.trunk.load_alexnet(state)
    net.eval()
    return net, name, digest


def lpips_per_sample(pred: np.ndarray, target: np.ndarray, net: Any,
                     batch_size: int = 16) -> np.ndarray:
    """LPIPS of each pair of uint8 ``(N, H, W, 3)`` images (inputs mapped to [-1, 1])."""
    import torch

    if pred.shape != target.shape:
        raise ValueError(f"shapes differ: {pred.shape} vs {target.shape}")
    out = []
    with torch.no_grad():
        for i in range(0, len(pred), batch_size):
            a, b = to_signed(pred[i:i + batch_size]), to_signed(target[i:i + batch_size])
            out.append(net(a, b, normalize=False).reshape(-1).double().numpy())
    return np.concatenate(out) if out else np.zeros(0)


class LpipsMetric:
    """``lpips`` (AlexNet, v0.1) per sample on rows with a target; lower is better.

    Args:
        backbone: inject an AlexNet (module, ``features`` Sequential or state dict) instead of
            loading ``alexnet-owt-7be5be79.pth`` (tests; values are then flagged
            ``comparable: False``).
        batch_size: pairs per forward pass.
    """

    name = "lpips"
    metrics = ("lpips",)

    def __init__(self, backbone: Any = None, batch_size: int = 16):
        self.backbone = backbone
        self.batch_size = batch_size
        self._net: tuple | None = None

    def signature(self) -> dict[str, Any]:
        return {"metrics": list(self.metrics), "net": NET_TYPE, "version": LPIPS_VERSION,
                "backbone": "injected" if self.backbone is not None else W.ALEXNET.name,
                "input_range": [-1, 1]}

    def available(self) -> bool:
        """Could ``compute`` build its network now? (a backbone was injected, or the AlexNet
        weights resolve and pass their hash check). The engine retries a skipped lpips only
        when this turns True."""
        if self.backbone is not None:
            return True
        try:
            W.resolve(W.ALEXNET)
        except W.WeightsMissing:
            return False
        return True

    def net(self):
        """``(net, backbone name, sha256)``, built once. Raises WeightsMissing."""
        if self._net is None:
            self._net = build_lpips_net(self.backbone)
        return self._net

    def compute(self, ctx: MetricContext) -> list[MetricValue]:
        ds = ctx.dataset
        mask = ds.has_targets
        if not mask.any():
            return [MetricValue.skipped("lpips", f"dataset '{ds.name}' has no target images")]
        try:
            net, name, digest = self.net()
        except W.WeightsMissing as exc:
            return [MetricValue.skipped("lpips", exc.skip_reason("lpips"), n=int(mask.sum()),
                                        retryable=True, missing_weights=exc.file_name)]
        full = np.full(len(ds), np.nan)
        for idx, pred in iter_chunks(ctx.outputs, mask):  # streamed: rows may be on disk
            full[idx] = lpips_per_sample(pred, np.asarray(ds.targets[idx]), net,
                                         self.batch_size)
        return [summarize("lpips", full, net=NET_TYPE, lpips_version=LPIPS_VERSION,
                          backbone=name, backbone_sha256=digest,
                          comparable=self.backbone is None, input_range=[-1, 1])]
