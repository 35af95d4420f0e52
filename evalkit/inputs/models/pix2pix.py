"""pix2pix / CycleGAN generators in PyTorch, state-dict compatible with
junyanz/pytorch-CycleGAN-and-pix2pix (``models/networks.py``, ``define_G``).

Written for evalkit (the upstream repository is not a dependency); what must match upstream
is the module tree, because it fixes the state-dict keys a ``*_net_G.pth`` file holds:

* ``resnet_9blocks`` / ``resnet_6blocks``: one ``nn.Sequential`` called ``model``::

      0 ReflectionPad(3)  1 Conv7x7(in, ngf)  2 norm  3 ReLU
      4 Conv3x3/2  5 norm  6 ReLU  7 Conv3x3/2  8 norm  9 ReLU       (ngf -> 2ngf -> 4ngf)
      10 .. 10+B-1  residual blocks, each ``conv_block`` = Sequential(
            0 ReflectionPad(1) 1 Conv3x3 2 norm 3 ReLU [4 Dropout(0.5)] ReflectionPad(1)
            Conv3x3 norm)          -> second conv at index 5, or 6 with dropout
      then 2 x (ConvTranspose3x3/2 (padding 1, output_padding 1), norm, ReLU),
      ReflectionPad(3), Conv7x7(ngf, out) (always with bias), Tanh

  Keys: ``model.1.weight``, ``model.10.conv_block.1.weight``, ``model.19.weight`` ...
* ``unet_256`` / ``unet_128`` (8 / 7 down-samplings): nested skip blocks; the generator's
  ``model`` is the outermost block, and every block keeps its layers in a Sequential called
  ``model``. Outermost: ``0 down-conv, 1 inner block, 2 ReLU, 3 up-conv (bias), 4 Tanh``;
  middle: ``0 LeakyReLU(0.2), 1 down-conv, 2 norm, 3 inner block, 4 ReLU, 5 up-conv,
  6 norm [, 7 Dropout(0.5)]``; innermost: ``0 LeakyReLU, 1 down-conv, 2 ReLU, 3 up-conv,
  4 norm``. All convs 4x4 stride 2 padding 1. Keys: ``model.model.0.weight``,
  ``model.model.1.model.1.weight``, ``model.model.1.model.3.model.1.weight`` ... Every
  non-outermost block returns ``cat([x, block(x)], channel axis)``.

Norms (upstream ``get_norm_layer``): ``instance`` = InstanceNorm2d without affine
parameters or running statistics (no keys; convs before it carry a bias); ``batch`` =
BatchNorm2d with affine parameters and running statistics (convs before it have no bias);
``none`` = identity (no bias either: upstream's ``use_bias`` test is only true for instance
norm). Dropout (pix2pix's default, ``--no_dropout`` off) holds no weights; evalkit runs the
network in eval mode, so dropout is the identity and batch norm uses its running
statistics (upstream ``test.py --eval``).

Input ``(N, in, H, W)`` float32 in [-1, 1]; output ``(N, out, H, W)`` in [-1, 1].
ResNet generators need H, W multiples of 4; ``unet_256`` multiples of 256 and ``unet_128``
multiples of 128.
"""

from __future__ import annotations

import torch
from torch import nn

from evalkit.inputs.models.pix2pix_arch import NETGS, NORMS, Pix2PixArchitecture

__all__ = ["NETGS", "NORMS", "Pix2PixArchitecture", "ResnetGenerator", "UnetGenerator",
           "build_generator"]

def _norm(norm: str, channels: int) -> nn.Module:
    if norm == "instance":
        return nn.InstanceNorm2d(channels, affine=False, track_running_stats=False)
    if norm == "batch":
        return nn.BatchNorm2d(channels, affine=True, track_running_stats=True)
    if norm == "none":
        return nn.Identity()
    raise ValueError(f"unknown norm {norm!r}: use one of {', '.join(NORMS)}")


class ResnetBlock(nn.Module):
    """Two reflect-padded 3x3 convs with a norm after each and ReLU between, plus the skip."""

    def __init__(self, dim: int, norm: str, use_dropout: bool, bias: bool):
        super().__init__()
        layers: list[nn.Module] = [nn.ReflectionPad2d(1), nn.Conv2d(dim, dim, 3, bias=bias),
                                   _norm(norm, dim), nn.ReLU(True)]
        if use_dropout:
            layers.append(nn.Dropout(0.5))
        layers += [nn.ReflectionPad2d(1), nn.Conv2d(dim, dim, 3, bias=bias), _norm(norm, dim)]
        self.conv_block = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv_block(x)


class ResnetGenerator(nn.Module):
    """``resnet_{n}blocks``: c7s1-ngf, two stride-2 downs, n residual blocks, two ups, c7s1."""

    def __init__(self, input_nc: int, output_nc: int, ngf: int = 64, norm: str = "instance",
                 use_dropout: bool = False, n_blocks: int = 9):
        super().__init__()
        bias = norm == "instance"
        layers: list[nn.Module] = [nn.ReflectionPad2d(3), nn.Conv2d(input_nc, ngf, 7, bias=bias),
                                   _norm(norm, ngf), nn.ReLU(True)]
        width = ngf
        for _ in range(2):
            layers += [nn.Conv2d(width, 2 * width, 3, stride=2, padding=1, bias=bias),
                       _norm(norm, 2 * width), nn.ReLU(True)]
            width *= 2
        layers += [ResnetBlock(width, norm, use_dropout, bias) for _ in range(n_blocks)]
        for _ in range(2):
            layers += [nn.ConvTranspose2d(width, width // 2, 3, stride=2, padding=1,
                                          output_padding=1, bias=bias),
                       _norm(norm, width // 2), nn.ReLU(True)]
            width //= 2
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(ngf, output_nc, 7), nn.Tanh()]
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


class UnetSkipBlock(nn.Module):
    """One U-Net level: down-conv, the inner levels, up-conv; the input is concatenated to
    the output (channel axis) except at the outermost level."""

    def __init__(self, outer_nc: int, inner_nc: int, norm: str, inner: nn.Module | None = None,
                 input_nc: int | None = None, outermost: bool = False,
                 use_dropout: bool = False):
        super().__init__()
        self.outermost = outermost
        bias = norm == "instance"
        down = nn.Conv2d(input_nc or outer_nc, inner_nc, 4, stride=2, padding=1, bias=bias)
        if outermost:
            layers = [down, inner, nn.ReLU(True),
                      nn.ConvTranspose2d(2 * inner_nc, outer_nc, 4, stride=2, padding=1),
                      nn.Tanh()]
        elif inner is None:  # innermost
            layers = [nn.LeakyReLU(0.2, True), down, nn.ReLU(True),
                      nn.ConvTranspose2d(inner_nc, outer_nc, 4, stride=2, padding=1, bias=bias),
                      _norm(norm, outer_nc)]
        else:
            layers = [nn.LeakyReLU(0.2, True), down, _norm(norm, inner_nc), inner, nn.ReLU(True),
                      nn.ConvTranspose2d(2 * inner_nc, outer_nc, 4, stride=2, padding=1,
                                         bias=bias),
                      _norm(norm, outer_nc)]
            if use_dropout:
                layers.append(nn.Dropout(0.5))
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.outermost:
            return self.model(x)
        return torch.cat([x, self.model(x)], 1)


class UnetGenerator(nn.Module):
    """``unet_256`` (``num_downs=8``) / ``unet_128`` (7): widths ngf, 2ngf, 4ngf, then 8ngf."""

    def __init__(self, input_nc: int, output_nc: int, num_downs: int, ngf: int = 64,
                 norm: str = "batch", use_dropout: bool = False):
        super().__init__()
        block = UnetSkipBlock(8 * ngf, 8 * ngf, norm)  # innermost
        for _ in range(num_downs - 5):
            block = UnetSkipBlock(8 * ngf, 8 * ngf, norm, block, use_dropout=use_dropout)
        for mult in (4, 2, 1):
            block = UnetSkipBlock(mult * ngf, 2 * mult * ngf, norm, block)
        self.model = UnetSkipBlock(output_nc, ngf, norm, block, input_nc=input_nc,
                                   outermost=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


def build_generator(arch: Pix2PixArchitecture) -> nn.Module:
    """The generator ``arch`` describes, in eval mode, with freshly initialised weights."""
    kind, depth = NETGS[arch.net_g]
    if kind == "resnet":
        net: nn.Module = ResnetGenerator(arch.input_nc, arch.output_nc, arch.ngf, arch.norm,
                                         arch.use_dropout, n_blocks=depth)
    else:
        net = UnetGenerator(arch.input_nc, arch.output_nc, depth, arch.ngf, arch.norm,
                            arch.use_dropout)
    return net.eval()
