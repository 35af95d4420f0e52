"""evalkit's pix2pix / CycleGAN networks and .pth loading against an independent
definition with upstream's key names (tests/pix2pix_reference.py)."""

from __future__ import annotations

import pytest
import torch

import evalkit  # noqa: F401  (import-order safety)
from evalkit.inputs.checkpoints.load import CheckpointError
from evalkit.inputs.checkpoints.torch_state import (
    infer_architecture,
    load_state_dict,
    normalize_state,
)
from evalkit.inputs.models.pix2pix import build_generator
from evalkit.inputs.models.pix2pix_arch import Pix2PixArchitecture
from tests import pix2pix_reference as ref

CASES = [  # (netG, norm, dropout, reference state kwargs, size)
    ("resnet_9blocks", "instance", False, dict(n_blocks=9), 32),
    ("resnet_9blocks", "batch", True, dict(n_blocks=9), 32),
    ("resnet_6blocks", "instance", True, dict(n_blocks=6), 32),
    ("resnet_6blocks", "none", False, dict(n_blocks=6), 32),
    ("resnet_6blocks", "batch", False, dict(n_blocks=6), 32),
    ("unet_256", "batch", False, dict(depth=8), 256),
    ("unet_256", "instance", False, dict(depth=8), 256),
    ("unet_128", "batch", False, dict(depth=7), 128),
]


def _ref_state(net_g, norm, dropout, kw, in_nc=3, out_nc=3, ngf=4):
    if net_g.startswith("resnet"):
        return ref.resnet_state(in_nc, out_nc, ngf, norm=norm, dropout=dropout, **kw)
    return ref.unet_state(in_nc, out_nc, ngf, norm=norm, **kw)


def _ref_forward(state, x, net_g, norm, dropout, kw):
    if net_g.startswith("resnet"):
        return ref.resnet_forward(state, x, norm, kw["n_blocks"], dropout)
    return ref.unet_forward(state, x, norm, kw["depth"])


@pytest.mark.parametrize("net_g,norm,dropout,kw,size", CASES,
                         ids=[f"{c[0]}-{c[1]}{'-dropout' if c[2] else ''}" for c in CASES])
def test_keys_shapes_inference_and_forward_match_reference(net_g, norm, dropout, kw, size):
    state = _ref_state(net_g, norm, dropout, kw)
    arch = infer_architecture(state)
    assert (arch.net_g, arch.norm, arch.use_dropout) == (net_g, norm, dropout)
    assert (arch.input_nc, arch.output_nc, arch.ngf) == (3, 3, 4)
    assert set(arch.inferred) == {"net_g", "norm"}
    net = build_generator(arch)
    ours = {k: list(v.shape) for k, v in net.state_dict().items()}
    assert ours == {k: list(v.shape) for k, v in state.items()}
    net.load_state_dict(state, strict=True)
    x = torch.rand(2, 3, size, size, generator=torch.Generator().manual_seed(1)) * 2 - 1
    with torch.inference_mode():
        diff = (net(x) - _ref_forward(state, x, net_g, norm, dropout, kw)).abs().max().item()
    assert diff <= 1e-5


def test_upstream_key_names_literally():
    """Key names as upstream's nn.Sequential indices spell them (networks.py)."""
    r9 = build_generator(Pix2PixArchitecture("resnet_9blocks", "instance", 3, 3, 4))
    keys = set(r9.state_dict())
    assert {"model.1.weight", "model.1.bias", "model.4.weight", "model.7.weight",
            "model.10.conv_block.1.weight", "model.10.conv_block.5.weight",
            "model.18.conv_block.5.bias", "model.19.weight", "model.22.weight",
            "model.26.weight", "model.26.bias"} <= keys
    r9d = build_generator(Pix2PixArchitecture("resnet_9blocks", "batch", 3, 3, 4,
                                              use_dropout=True))
    keys = set(r9d.state_dict())
    assert "model.10.conv_block.6.weight" in keys and "model.1.bias" not in keys
    assert "model.2.running_mean" in keys and "model.2.num_batches_tracked" in keys
    u = build_generator(Pix2PixArchitecture("unet_256", "batch", 3, 3, 4))
    keys = set(u.state_dict())
    innermost = "model.model.1.model" + ".3.model" * 6
    assert {"model.model.0.weight", "model.model.3.weight", "model.model.3.bias",
            "model.model.1.model.1.weight", "model.model.1.model.2.running_var",
            "model.model.1.model.3.model.1.weight", f"{innermost}.1.weight",
            f"{innermost}.3.weight", f"{innermost}.4.weight"} <= keys
    assert f"{innermost}.3.model.1.weight" not in keys


@pytest.mark.parametrize("net_g,norm,millions", [
    ("resnet_9blocks", "instance", 11.378),  # CycleGAN's G, as upstream prints it
    ("unet_256", "batch", 54.414),  # pix2pix's G, as upstream prints it
])
def test_parameter_counts_at_full_width(net_g, norm, millions):
    with torch.device("meta"):
        net = build_generator(Pix2PixArchitecture(net_g, norm, 3, 3, 64))
    assert round(sum(p.numel() for p in net.parameters()) / 1e6, 3) == millions


def test_channels_read_from_weights():
    state = ref.resnet_state(in_nc=1, out_nc=3, ngf=6, n_blocks=6)
    arch = infer_architecture(state)
    assert (arch.input_nc, arch.output_nc, arch.ngf) == (1, 3, 6)
    state = ref.unet_state(in_nc=1, out_nc=1, ngf=2, depth=7, norm="instance")
    arch = infer_architecture(state)
    assert (arch.input_nc, arch.output_nc, arch.ngf, arch.net_g) == (1, 1, 2, "unet_128")


def test_user_choices_must_fit_the_weights():
    state = ref.resnet_state(n_blocks=9, norm="instance")
    arch = infer_architecture(state, "resnet_9blocks", "instance")
    assert arch.inferred == ()
    assert "(inferred)" not in arch.describe()
    with pytest.raises(CheckpointError, match="--netG unet_256 does not fit.*resnet_9blocks"):
        infer_architecture(state, "unet_256")
    with pytest.raises(CheckpointError, match="--norm batch does not fit.*instance"):
        infer_architecture(state, norm="batch")
    with pytest.raises(CheckpointError, match="not a pix2pix/CycleGAN generator"):
        infer_architecture({"fc.weight": torch.zeros(2, 2)})


def test_old_instance_norm_buffers_and_dataparallel_prefix_are_tolerated(tmp_path):
    state = ref.resnet_state(n_blocks=6, norm="instance")
    old = {f"module.{k}": v for k, v in state.items()}
    old["module.model.2.running_mean"] = torch.zeros(4)  # PyTorch < 0.4 InstanceNorm2d
    old["module.model.2.running_var"] = torch.ones(4)
    torch.save(old, tmp_path / "1_net_G.pth")
    fixed = normalize_state(load_state_dict(tmp_path / "1_net_G.pth"))
    assert set(fixed) == set(state)


def test_not_a_state_dict_is_refused_with_the_fix(tmp_path):
    torch.save([torch.zeros(2)], tmp_path / "1_net_G.pth")
    with pytest.raises(CheckpointError, match=r"state_dict\(\)"):
        load_state_dict(tmp_path / "1_net_G.pth")
    (tmp_path / "2_net_G.pth").write_bytes(b"garbage")
    with pytest.raises(CheckpointError, match="cannot read 2_net_G.pth"):
        load_state_dict(tmp_path / "2_net_G.pth")


def test_shape_and_nan_checks_name_the_weight():
    from evalkit.inputs.checkpoints.torch_state import check_state

    state = ref.resnet_state(ngf=2, n_blocks=6)
    expected = build_generator(infer_architecture(state)).state_dict()
    bad = dict(state)
    bad["model.4.weight"] = torch.full_like(state["model.4.weight"], float("nan"))
    with pytest.raises(CheckpointError, match="model.4.weight holds NaN"):
        check_state(bad, expected)
    bad = dict(state)
    bad["model.4.weight"] = torch.zeros(1, 1, 3, 3)
    with pytest.raises(CheckpointError, match=r"model.4.weight has shape \[1, 1, 3, 3\]"):
        check_state(bad, expected)
