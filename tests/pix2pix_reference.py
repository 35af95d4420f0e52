"""An independent definition of pix2pix's generators, for tests.

Written without evalkit's modules and structured differently: a generator is a plain
``{key: tensor}`` state dict with upstream's key names (junyanz/pytorch-CycleGAN-and-pix2pix
``models/networks.py``: ``nn.Sequential`` indices such as ``model.1.weight``,
``model.10.conv_block.1.weight``, ``model.model.1.model.3.model.1.weight``) built by
walking the layer list index by index, and a forward pass with ``torch.nn.functional`` on
that dict. Random weights with a fixed seed; batch-norm layers get random running stats.

Upstream quirk reproduced on purpose: a U-Net block's first layer is an in-place
``LeakyReLU(0.2)`` applied to the block's own input, so the skip connection
``cat([x, block(x)])`` carries ``leaky_relu(x)``, not ``x``.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F

EPS = 1e-5  # torch's InstanceNorm2d / BatchNorm2d default


class _Maker:
    def __init__(self, seed: int, norm: str):
        self.g = torch.Generator().manual_seed(seed)
        self.norm = norm
        self.state: dict[str, torch.Tensor] = {}

    def randn(self, *shape, scale=0.2):
        return torch.randn(*shape, generator=self.g) * scale

    def conv(self, key, shape, bias):
        self.state[f"{key}.weight"] = self.randn(*shape)
        if bias:
            self.state[f"{key}.bias"] = self.randn(shape[0] if len(shape) == 4 else 1,
                                                   scale=0.1)

    def convt(self, key, cin, cout, k, bias):
        self.state[f"{key}.weight"] = self.randn(cin, cout, k, k)
        if bias:
            self.state[f"{key}.bias"] = self.randn(cout, scale=0.1)

    def norm_layer(self, key, c):
        if self.norm != "batch":
            return  # instance norm (no affine, no running stats) and none hold no keys
        self.state[f"{key}.weight"] = 1 + self.randn(c, scale=0.1)
        self.state[f"{key}.bias"] = self.randn(c, scale=0.1)
        self.state[f"{key}.running_mean"] = self.randn(c, scale=0.1)
        self.state[f"{key}.running_var"] = 0.5 + torch.rand(c, generator=self.g)
        self.state[f"{key}.num_batches_tracked"] = torch.tensor(100)


def resnet_state(in_nc=3, out_nc=3, ngf=4, n_blocks=9, norm="instance", dropout=False,
                 seed=0) -> dict[str, torch.Tensor]:
    """Upstream ``ResnetGenerator`` keys and shapes, random values."""
    m = _Maker(seed, norm)
    bias = norm == "instance"
    m.conv("model.1", (ngf, in_nc, 7, 7), bias)  # 0 is ReflectionPad2d(3)
    m.norm_layer("model.2", ngf)
    m.conv("model.4", (2 * ngf, ngf, 3, 3), bias)
    m.norm_layer("model.5", 2 * ngf)
    m.conv("model.7", (4 * ngf, 2 * ngf, 3, 3), bias)
    m.norm_layer("model.8", 4 * ngf)
    c = 4 * ngf
    for b in range(n_blocks):
        key = f"model.{10 + b}.conv_block"
        second = 6 if dropout else 5
        m.conv(f"{key}.1", (c, c, 3, 3), bias)
        m.norm_layer(f"{key}.2", c)
        m.conv(f"{key}.{second}", (c, c, 3, 3), bias)
        m.norm_layer(f"{key}.{second + 1}", c)
    i = 10 + n_blocks
    m.convt(f"model.{i}", c, c // 2, 3, bias)
    m.norm_layer(f"model.{i + 1}", c // 2)
    m.convt(f"model.{i + 3}", c // 2, c // 4, 3, bias)
    m.norm_layer(f"model.{i + 4}", c // 4)
    m.conv(f"model.{i + 7}", (out_nc, ngf, 7, 7), True)  # i + 6 is ReflectionPad2d(3)
    return m.state


def _norm(x, s, key, norm):
    if norm == "instance":
        return F.instance_norm(x, eps=EPS)
    if norm == "batch":
        return F.batch_norm(x, s[f"{key}.running_mean"], s[f"{key}.running_var"],
                            s[f"{key}.weight"], s[f"{key}.bias"], training=False, eps=EPS)
    return x


def _conv(x, s, key, stride=1, padding=0):
    return F.conv2d(x, s[f"{key}.weight"], s.get(f"{key}.bias"), stride, padding)


def _convt(x, s, key, padding, output_padding=0):
    return F.conv_transpose2d(x, s[f"{key}.weight"], s.get(f"{key}.bias"), 2, padding,
                              output_padding)


def resnet_forward(s, x, norm="instance", n_blocks=9, dropout=False):
    """NCHW [-1, 1] in, NCHW [-1, 1] out (eval mode)."""
    y = F.relu(_norm(_conv(F.pad(x, (3,) * 4, mode="reflect"), s, "model.1"), s, "model.2",
                     norm))
    y = F.relu(_norm(_conv(y, s, "model.4", 2, 1), s, "model.5", norm))
    y = F.relu(_norm(_conv(y, s, "model.7", 2, 1), s, "model.8", norm))
    second = 6 if dropout else 5
    for b in range(n_blocks):
        k = f"model.{10 + b}.conv_block"
        r = F.relu(_norm(_conv(F.pad(y, (1,) * 4, mode="reflect"), s, f"{k}.1"), s, f"{k}.2",
                         norm))
        r = _norm(_conv(F.pad(r, (1,) * 4, mode="reflect"), s, f"{k}.{second}"), s,
                  f"{k}.{second + 1}", norm)
        y = y + r
    i = 10 + n_blocks
    y = F.relu(_norm(_convt(y, s, f"model.{i}", 1, 1), s, f"model.{i + 1}", norm))
    y = F.relu(_norm(_convt(y, s, f"model.{i + 3}", 1, 1), s, f"model.{i + 4}", norm))
    return torch.tanh(_conv(F.pad(y, (3,) * 4, mode="reflect"), s, f"model.{i + 7}"))


def _unet_levels(in_nc, out_nc, ngf, depth):
    """(prefix, outer, inner, input, role) from the outermost level inwards."""
    widths = [(out_nc, ngf), (ngf, 2 * ngf), (2 * ngf, 4 * ngf), (4 * ngf, 8 * ngf)]
    widths += [(8 * ngf, 8 * ngf)] * (depth - 4)
    levels, prefix = [], "model.model"
    for k, (outer, inner) in enumerate(widths):
        role = "outer" if k == 0 else "inner" if k == depth - 1 else "middle"
        levels.append((prefix, outer, inner, in_nc if k == 0 else outer, role))
        prefix += ".1.model" if k == 0 else ".3.model"
    return levels


def unet_state(in_nc=3, out_nc=3, ngf=4, depth=8, norm="batch", seed=0):
    """Upstream ``UnetGenerator`` (num_downs = depth) keys and shapes, random values."""
    m = _Maker(seed, norm)
    bias = norm == "instance"
    for prefix, outer, inner, inp, role in _unet_levels(in_nc, out_nc, ngf, depth):
        if role == "outer":
            m.conv(f"{prefix}.0", (inner, inp, 4, 4), bias)
            m.convt(f"{prefix}.3", 2 * inner, outer, 4, True)
        elif role == "middle":
            m.conv(f"{prefix}.1", (inner, inp, 4, 4), bias)
            m.norm_layer(f"{prefix}.2", inner)
            m.convt(f"{prefix}.5", 2 * inner, outer, 4, bias)
            m.norm_layer(f"{prefix}.6", outer)
        else:
            m.conv(f"{prefix}.1", (inner, inp, 4, 4), bias)
            m.convt(f"{prefix}.3", inner, outer, 4, bias)
            m.norm_layer(f"{prefix}.4", outer)
    return m.state


def unet_forward(s, x, norm="batch", depth=8, in_nc=3, out_nc=3, ngf=4):
    levels = _unet_levels(in_nc, out_nc, ngf, depth)

    def level(k, x):
        prefix, _, _, _, role = levels[k]
        if role == "outer":
            y = _conv(x, s, f"{prefix}.0", 2, 1)
            y = F.relu(level(k + 1, y))
            return torch.tanh(_convt(y, s, f"{prefix}.3", 1))
        xl = F.leaky_relu(x, 0.2)  # in place upstream: the skip below carries it too
        if role == "middle":
            y = _norm(_conv(xl, s, f"{prefix}.1", 2, 1), s, f"{prefix}.2", norm)
            y = F.relu(level(k + 1, y))
            y = _norm(_convt(y, s, f"{prefix}.5", 1), s, f"{prefix}.6", norm)
        else:
            y = F.relu(_conv(xl, s, f"{prefix}.1", 2, 1))
            y = _norm(_convt(y, s, f"{prefix}.3", 1), s, f"{prefix}.4", norm)
        return torch.cat([xl, y], 1)

    return level(0, x)


def save_run(folder: Path, states: dict[str, dict]) -> Path:
    """Write ``{file name: state dict}`` as upstream does (``torch.save(state_dict)``)."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, state in states.items():
        torch.save(state, folder / name)
    return folder
