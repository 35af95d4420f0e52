"""The LPIPS v0.1 network (AlexNet variant) in plain torch: no torchvision, no torchmetrics
import.

* :class:`AlexNetFeatures`: torchvision's ``alexnet().features`` trunk, layer for layer and
  index for index (5 convolutions with ReLU, 3 max-pools), so the standard ImageNet file
  ``alexnet-owt-7be5be79.pth`` loads by its own keys (``features.0.weight`` ...; the
  ``classifier.*`` keys are ignored). :meth:`AlexNetFeatures.taps` returns the 5 ReLU
  outputs LPIPS compares (after ``features.1``, ``.4``, ``.7``, ``.9``, ``.11``), channels
  64, 192, 384, 256, 256.
* :class:`LpipsNet`: Zhang et al. 2018, v0.1 (the ``lpips`` package and torchmetrics
  compute the same): inputs in [-1, 1] are shifted/scaled per channel
  (``(x - shift) / scale``, shift ``(-0.030, -0.088, -0.188)``, scale ``(0.458, 0.448,
  0.450)``), each tap is unit-normalised along channels (``x / sqrt(eps + sum x^2)``,
  eps 1e-8), the squared difference is weighted per channel by a 1x1 convolution without
  bias (the learned linear layers, file ``lpips_models/alex.pth`` shipped in torchmetrics,
  keys ``lin{k}.model.1.weight``) and averaged over space; the 5 values are summed.
  Output ``(N, 1, 1, 1)``, dimensionless, >= 0, 0 for identical images.

tests/test_lpips.py checks both against torchvision's AlexNet and torchmetrics' LPIPS on
random weights (to 1e-6).
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn

#: ``features`` index of each ReLU that LPIPS taps, and its channel count
TAPS = (1, 4, 7, 9, 11)
CHANNELS = (64, 192, 384, 256, 256)
_SHIFT = (-0.030, -0.088, -0.188)
_SCALE = (0.458, 0.448, 0.450)


class AlexNetFeatures(nn.Module):
    """torchvision's AlexNet ``features`` (same layers, indices and parameter names)."""

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 64, kernel_size=11, stride=4, padding=2),    # 0
            nn.ReLU(),                                                # 1  tap
            nn.MaxPool2d(kernel_size=3, stride=2),                    # 2
            nn.Conv2d(64, 192, kernel_size=5, padding=2),             # 3
            nn.ReLU(),                                                # 4  tap
            nn.MaxPool2d(kernel_size=3, stride=2),                    # 5
            nn.Conv2d(192, 384, kernel_size=3, padding=1),            # 6
            nn.ReLU(),                                                # 7  tap
            nn.Conv2d(384, 256, kernel_size=3, padding=1),            # 8
            nn.ReLU(),                                                # 9  tap
            nn.Conv2d(256, 256, kernel_size=3, padding=1),            # 10
            nn.ReLU(),                                                # 11 tap
            nn.MaxPool2d(kernel_size=3, stride=2),                    # 12
        )

    def load_alexnet(self, state: Mapping[str, torch.Tensor]) -> None:
        """Load a torchvision-format AlexNet state dict (``features.*``; other keys such as
        ``classifier.*`` are ignored). Raises KeyError/RuntimeError on missing or misshapen
        keys (strict)."""
        feats = {k: v for k, v in state.items() if k.startswith("features.")}
        self.load_state_dict(feats, strict=True)

    def taps(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The 5 ReLU activations LPIPS compares, for ``x`` ``(N, 3, H, W)``."""
        out = []
        for i, layer in enumerate(self.features[:TAPS[-1] + 1]):
            x = layer(x)
            if i in TAPS:
                out.append(x)
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)


class LpipsNet(nn.Module):
    """LPIPS v0.1 with the AlexNet trunk; ``forward(a, b)`` on ``(N, 3, H, W)`` in [-1, 1]
    (``normalize=True``: inputs in [0, 1]) returns ``(N, 1, 1, 1)``. Always in eval mode."""

    def __init__(self) -> None:
        super().__init__()
        self.trunk = AlexNetFeatures()
        self.lins = nn.ModuleList(nn.Conv2d(c, 1, kernel_size=1, bias=False) for c in CHANNELS)
        self.register_buffer("shift", torch.tensor(_SHIFT)[None, :, None, None],
                             persistent=False)
        self.register_buffer("scale", torch.tensor(_SCALE)[None, :, None, None],
                             persistent=False)
        self.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True) -> LpipsNet:  # never leaves eval mode
        return super().train(False)

    def load_linear_layers(self, state: Mapping[str, torch.Tensor]) -> None:
        """Load the v0.1 linear layers (``lin{k}.model.1.weight``, as shipped in
        torchmetrics/lpips; ``lin{k}.model.0.weight`` without dropout is accepted too)."""
        ours = {}
        for k in range(len(CHANNELS)):
            key = next((f"lin{k}.model.{i}.weight" for i in (1, 0)
                        if f"lin{k}.model.{i}.weight" in state), None)
            if key is None:
                raise KeyError(f"LPIPS linear layer lin{k} not in the file (keys: "
                               f"{', '.join(sorted(state))})")
            ours[f"lins.{k}.weight"] = state[key]
        self.lins.load_state_dict({k.removeprefix("lins."): v for k, v in ours.items()},
                                  strict=True)

    def forward(self, in0: torch.Tensor, in1: torch.Tensor,
                normalize: bool = False) -> torch.Tensor:
        if normalize:
            in0, in1 = 2 * in0 - 1, 2 * in1 - 1
        f0 = self.trunk.taps((in0 - self.shift) / self.scale)
        f1 = self.trunk.taps((in1 - self.shift) / self.scale)
        total = 0
        for lin, a, b in zip(self.lins, f0, f1, strict=True):
            d = (_unit(a) - _unit(b)) ** 2
            total = total + lin(d).mean([2, 3], keepdim=True)
        return total


def _unit(x: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """``x`` divided by its L2 norm along channels (LPIPS' ``normalize_tensor``)."""
    return x / torch.sqrt(eps + torch.sum(x ** 2, dim=1, keepdim=True))
