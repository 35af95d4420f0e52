"""A run folder of ``*_net_G.pth`` files (written from the independent definition in
tests/pix2pix_reference.py) evaluated end to end: served outputs equal the reference's
forward pass on upstream's own test-time transform, exactly after quantization."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

import evalkit
from evalkit.cli import cli
from evalkit.execute.engine import RunOptions, evaluate_run
from evalkit.execute.generate import OutputCache
from evalkit.inputs.data.pairs import load_pairs
from evalkit.inputs.models.runner import RunnerPool
from evalkit.inputs.sources import discover, prepare
from evalkit.measure.paired import PairedMetrics
from tests import pix2pix_reference as ref
from tests.conftest import make_ab_folder


def upstream_input(ab_path, size: int) -> torch.Tensor:
    """pytorch-CycleGAN-and-pix2pix's aligned dataset at test time, for A (input_nc 3):
    RGB, split AB at w // 2, Resize((size, size), BICUBIC), ToTensor, Normalize(0.5, 0.5)."""
    import torchvision.transforms as T

    ab = Image.open(ab_path).convert("RGB")
    w, h = ab.size
    a = ab.crop((0, 0, w // 2, h))
    tf = T.Compose([T.Resize((size, size), T.InterpolationMode.BICUBIC), T.ToTensor(),
                    T.Normalize((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))])
    return tf(a)


def tensor2im(y: torch.Tensor) -> np.ndarray:
    """upstream util.tensor2im: ((y + 1) / 2 * 255) as uint8, CHW -> HWC."""
    return ((np.transpose(y.numpy(), (1, 2, 0)) + 1) / 2.0 * 255.0).astype(np.uint8)


def _check_run(tmp_path, states, forward, size, n, batch=4):
    heldout = make_ab_folder(tmp_path / "heldout", n=n, half=max(40, size // 4))
    run = ref.save_run(tmp_path / "run", states)
    ds = load_pairs(heldout, size=size)
    out = tmp_path / "out"
    summary = evaluate_run(run, out, [ds], RunOptions(image_size=size, batch_size=batch,
                                                      progress=False),
                           families=[PairedMetrics()])
    assert summary.exit_code == 0, [c.error for c in summary.checkpoints]
    files = sorted(heldout.glob("*.png"))
    x = torch.stack([upstream_input(f, size) for f in files])
    refs = {r.name: r for r in discover(run)}
    cache = OutputCache(out)
    for name, state in states.items():
        with torch.inference_mode():
            y = torch.cat([forward(state, x[i:i + batch]) for i in range(0, n, batch)])
        runner = prepare(refs[name], RunnerPool(), RunOptions(image_size=size)).runner()
        raw = runner.run(ds.inputs, batch_size=batch)
        assert np.abs(raw - y.permute(0, 2, 3, 1).numpy()).max() <= 1e-5, name
        served, raw_l1 = cache.load(refs[name].content_hash(), ds)
        expected = np.stack([tensor2im(t) for t in y])
        assert np.array_equal(served, expected), name
        target = ds.targets.astype(np.float32) / 127.5 - 1
        want_l1 = np.abs(y.permute(0, 2, 3, 1).numpy() - target).mean(axis=(1, 2, 3))
        assert np.allclose(raw_l1, want_l1, atol=1e-5), name
    return out, summary


def test_resnet_9blocks_run_end_to_end(tmp_path):
    states = {f"{e}_net_G.pth": ref.resnet_state(ngf=4, n_blocks=9, norm="instance", seed=e)
              for e in (5, 10)}
    states["latest_net_G.pth"] = ref.resnet_state(ngf=4, n_blocks=9, seed=11)
    out, summary = _check_run(tmp_path, states,
                              lambda s, x: ref.resnet_forward(s, x, "instance", 9), 32, 6)
    assert [c.name for c in summary.checkpoints] == ["5_net_G.pth", "10_net_G.pth",
                                                      "latest_net_G.pth"]
    cks = evalkit.load_results(out)
    assert set(cks.checkpoint) == set(states)
    from evalkit.store.results import Store
    with Store(out, create=False) as st:
        table = st.checkpoints().set_index("name")
    assert table.loc["latest_net_G.pth", "step"] == 10
    assert table.loc["5_net_G.pth", "architecture"] == (
        "pix2pix resnet_9blocks (inferred) norm=instance (inferred) in=3 out=3 ngf=4; "
        "contract pix2pix-torch")


def test_unet_256_batchnorm_run_end_to_end(tmp_path):
    # unet_256 down-samples 8 times: it needs 256 px (ngf 2 keeps it cheap)
    states = {f"{e}_net_G.pth": ref.unet_state(ngf=2, depth=8, norm="batch", seed=e)
              for e in (1, 2)}
    _check_run(tmp_path, states, lambda s, x: ref.unet_forward(s, x, "batch", 8, ngf=2),
               256, 4)


def test_cli_netg_and_clear_failures(tmp_path):
    heldout = make_ab_folder(tmp_path / "heldout", n=2)
    run = ref.save_run(tmp_path / "run",
                       {"3_net_G.pth": ref.resnet_state(ngf=2, n_blocks=6, norm="batch")})
    args = ["run", str(run), "--heldout", str(heldout), "--image-size", "32", "--no-report",
            "--quiet"]
    r = CliRunner().invoke(cli, [*args, "--out", str(tmp_path / "o1"), "--netG",
                                 "resnet_6blocks", "--norm", "batch"], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    r = CliRunner().invoke(cli, [*args, "--out", str(tmp_path / "o2"), "--netG", "unet_256"],
                           catch_exceptions=False)
    assert r.exit_code == 1
    assert "--netG unet_256 does not fit the weights, which are a resnet_6blocks" in r.output
    r = CliRunner().invoke(cli, [*args, "--out", str(tmp_path / "o3"), "--contract", "bogus"])
    assert r.exit_code == 2


def test_unet_needs_its_size(tmp_path):
    heldout = make_ab_folder(tmp_path / "heldout", n=2)
    run = ref.save_run(tmp_path / "run", {"1_net_G.pth": ref.unet_state(ngf=1, depth=7)})
    summary = evaluate_run(run, tmp_path / "out", [load_pairs(heldout, size=64)],
                           RunOptions(image_size=64, progress=False), families=[PairedMetrics()])
    assert "unet_128 needs an image size that is a multiple of 128" in summary.failed[0].error


@pytest.mark.parametrize("contract", ["seed", "pix2pix-torch"])
def test_contract_changes_the_content_hash_only_when_not_default(tmp_path, contract):
    run = ref.save_run(tmp_path / "run", {"1_net_G.pth": ref.resnet_state(ngf=1, n_blocks=6)})
    (r0,) = discover(run)
    (r1,) = discover(run, options=RunOptions(contract=contract))
    assert (r0.content_hash() == r1.content_hash()) == (contract == "pix2pix-torch")
    assert r0.files_hash() == r1.files_hash()
