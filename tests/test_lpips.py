"""LPIPS: same numbers as torchmetrics' functional LPIPS on the same backbone, [-1, 1] inputs,
offline behaviour (local AlexNet file only, skipped with a clear reason otherwise)."""

from __future__ import annotations

import copy
import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision

import evalkit  # noqa: F401  (import-order safety first)
from evalkit.core.hashing import file_sha256
from evalkit.inputs.data.dataset import Dataset
from evalkit.measure import weights as W
from evalkit.measure.base import MetricContext
from evalkit.measure.lpips import (
    LpipsMetric,
    build_lpips_net,
    check_signed_range,
    lpips_per_sample,
    to_signed,
)

SIZE = 64


@pytest.fixture(scope="module")
def alexnet() -> torch.nn.Module:
    """An AlexNet with seeded random weights (built without downloading anything)."""
    torch.manual_seed(7)
    return torchvision.models.alexnet(weights=None).eval()


def _pairs(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    target = rng.integers(0, 256, (n, SIZE, SIZE, 3)).astype(np.uint8)
    noise = rng.integers(-60, 60, (n, SIZE, SIZE, 3))
    pred = np.clip(target.astype(int) + noise * (np.arange(n)[:, None, None, None] % 3), 0, 255)
    return pred.astype(np.uint8), target


def _ctx(pred, target, mask=None) -> MetricContext:
    n = len(pred)
    ds = Dataset(name="heldout", kind="heldout", root=Path("."), ids=[str(i) for i in range(n)],
                 inputs=np.zeros((n, SIZE, SIZE, 1), np.float32), targets=target,
                 content_hash="h", size=SIZE, target_mask=mask)
    return MetricContext(dataset=ds, outputs=pred, checkpoint="ckpt-1", checkpoint_hash="c",
                         cache_dir=Path("."))


def test_matches_torchmetrics_functional_lpips(alexnet, monkeypatch):
    from torchmetrics.functional.image import lpips as tm_lpips

    # torchmetrics' functional LPIPS downloads AlexNet; give it the same random backbone.
    monkeypatch.setattr(tm_lpips, "_get_tv_model_features",
                        lambda net, pretrained=False: copy.deepcopy(alexnet.features))
    pred, target = _pairs(6, seed=0)
    a = torch.from_numpy(pred).permute(0, 3, 1, 2).float() / 127.5 - 1
    b = torch.from_numpy(target).permute(0, 3, 1, 2).float() / 127.5 - 1
    ref = tm_lpips.learned_perceptual_image_patch_similarity(a, b, net_type="alex",
                                                             reduction="none").numpy()
    (v,) = LpipsMetric(backbone=alexnet, batch_size=4).compute(_ctx(pred, target))
    assert v.status == "ok" and v.n == 6
    np.testing.assert_allclose(v.per_sample, ref, rtol=1e-5, atol=1e-7)
    assert v.value == pytest.approx(ref.mean(), rel=1e-5)
    assert v.ci_low <= v.value <= v.ci_high and v.std > 0
    assert ref.std() > 0 and ref[0] == pytest.approx(0, abs=1e-6)  # pair 0 is identical
    assert v.flags["comparable"] is False and v.flags["backbone"] == "injected"
    assert v.flags["net"] == "alex" and v.flags["lpips_version"] == "0.1"


def test_network_sees_inputs_on_minus_one_to_one(alexnet):
    net, _, _ = build_lpips_net(alexnet)
    seen = []

    class Spy(torch.nn.Module):
        def forward(self, x, y, normalize=False):
            seen.append((float(x.min()), float(x.max()), float(y.min()), float(y.max()),
                         normalize))
            return net(x, y, normalize=normalize)

    black = np.zeros((2, SIZE, SIZE, 3), np.uint8)
    white = np.full((2, SIZE, SIZE, 3), 255, np.uint8)
    lpips_per_sample(black, white, Spy())
    assert seen == [(-1.0, -1.0, 1.0, 1.0, False)]


def test_range_is_asserted_not_assumed():
    x = to_signed(np.array([[[[0, 128, 255]]]], np.uint8))
    assert float(x.min()) == -1.0 and float(x.max()) == 1.0 and x.shape == (1, 3, 1, 1)
    # float images (e.g. already in [0, 1], which torchmetrics would accept and score too well)
    with pytest.raises(ValueError, match="uint8"):
        to_signed(np.random.default_rng(0).random((1, 8, 8, 3)))
    with pytest.raises(ValueError, match=r"\[-1, 1\]"):
        check_signed_range(torch.tensor([0.0, 1.5]))
    with pytest.raises(ValueError, match=r"\[-1, 1\]"):
        check_signed_range(torch.tensor([-1.2, 0.5]))
    check_signed_range(torch.tensor([-1.0, 1.0]))


def test_rows_without_target_are_left_out(alexnet):
    pred, target = _pairs(5, seed=1)
    mask = np.array([True, False, True, True, False])
    fam = LpipsMetric(backbone=alexnet)
    (v,) = fam.compute(_ctx(pred, target, mask))
    assert v.n == 3 and np.isnan(v.per_sample[~mask]).all()
    full = lpips_per_sample(pred[mask], target[mask], fam.net()[0])
    np.testing.assert_allclose(v.per_sample[mask], full, rtol=1e-6)
    (none,) = fam.compute(_ctx(pred, None))
    assert none.status == "skipped" and not none.flags.get("retryable")


def test_missing_alexnet_skips_with_one_clear_line(tmp_path, monkeypatch):
    monkeypatch.setenv("EVALKIT_WEIGHTS_DIR", str(tmp_path / "w"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "th"))
    pred, target = _pairs(3, seed=2)
    (v,) = LpipsMetric().compute(_ctx(pred, target))
    assert v.status == "skipped" and v.flags["retryable"] is True and v.n == 3
    assert v.reason.startswith("lpips skipped: weights file alexnet-owt-7be5be79.pth not found")
    assert "'evalkit weights fetch'" in v.reason and "'evalkit weights import FILE'" in v.reason
    assert "\n" not in v.reason


def test_backbone_loaded_from_local_file_only(alexnet, tmp_path, monkeypatch):
    wdir = tmp_path / "w"
    wdir.mkdir()
    monkeypatch.setenv("EVALKIT_WEIGHTS_DIR", str(wdir))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "th"))
    f = wdir / W.ALEXNET.name
    torch.save(alexnet.state_dict(), f)  # a torchvision-format AlexNet file
    digest = file_sha256(f)
    pred, target = _pairs(4, seed=3)
    if not digest.startswith(W.ALEXNET.sha256_prefix):
        # other weights under the right name: refused (torch-hub prefix check), not used
        (bad,) = LpipsMetric().compute(_ctx(pred, target))
        assert bad.status == "skipped" and "expected 7be5be79..." in bad.reason
    monkeypatch.setitem(W.REGISTRY, "alexnet", dataclasses.replace(W.ALEXNET, sha256=digest))
    (v,) = LpipsMetric().compute(_ctx(pred, target))
    (ref,) = LpipsMetric(backbone=alexnet).compute(_ctx(pred, target))
    assert v.status == "ok", v.reason
    np.testing.assert_allclose(v.per_sample, ref.per_sample, rtol=1e-6)
    assert v.flags["backbone"] == W.ALEXNET.name and v.flags["backbone_sha256"] == digest
    assert v.flags["comparable"] is True
