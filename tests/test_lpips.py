"""LPIPS: same numbers as torchmetrics' functional LPIPS on the same backbone, [-1, 1] inputs,
offline behaviour (local AlexNet file only, skipped with a clear reason otherwise)."""

from __future__ import annotations

import copy
import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch

import evalkit  # noqa: F401  (import-order safety first)
from evalkit.core.hashing import file_sha256
from evalkit.inputs.data.dataset import Dataset
from evalkit.measure import weights as W
from evalkit.measure.base import MetricContext
from evalkit.measure.lpips import (
    LpipsMetric,
    build_lpips_net,
    check_signed_range,
    linear_layers_path,
    lpips_per_sample,
    to_signed,
)
from evalkit.measure.lpips_net import TAPS, AlexNetFeatures, LpipsNet

try:
    import torchvision
except ImportError:  # evalkit's LPIPS does not need it; the equality test below is skipped
    torchvision = None

SIZE = 64


@pytest.fixture(scope="module")
def alexnet() -> torch.nn.Module:
    """An AlexNet with seeded random weights (built without downloading anything):
    torchvision's, or evalkit's own trunk where torchvision is not installed."""
    torch.manual_seed(7)
    if torchvision is None:
        return AlexNetFeatures().eval()
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


def _tv_alexnet(seed: int) -> torch.nn.Module:
    if torchvision is None:
        pytest.skip("torchvision is not installed: nothing to compare evalkit's AlexNet with")
    torch.manual_seed(seed)
    return torchvision.models.alexnet(weights=None).eval()


def test_own_alexnet_trunk_equals_torchvision(alexnet):
    """evalkit's plain-torch trunk loads torchvision's full AlexNet state dict (classifier
    keys ignored) by its own keys and gives the same features at every LPIPS tap."""
    tv = _tv_alexnet(11)
    ours = AlexNetFeatures().eval()
    ours.load_alexnet(tv.state_dict())
    x = torch.randn(3, 3, 2 * SIZE + 3, 2 * SIZE - 5)  # odd sizes, deep enough for pool 3
    with torch.no_grad():
        want, h = [], x
        for i, layer in enumerate(tv.features):
            h = layer(h)
            if i in TAPS:
                want.append(h.clone())  # torchvision's ReLUs are in-place
        got = ours.taps(x)
        assert [t.shape[1] for t in got] == [64, 192, 384, 256, 256]
        for a, b in zip(got, want, strict=True):
            torch.testing.assert_close(a, b, rtol=0, atol=1e-6)
        torch.testing.assert_close(ours(x), tv.features(x), rtol=0, atol=1e-6)
    with pytest.raises(RuntimeError):  # a wrong file is refused, not half-loaded
        AlexNetFeatures().load_alexnet({"features.0.weight": torch.zeros(1)})


def test_own_lpips_equals_torchmetrics_on_torchvision_alexnet():
    """LPIPS from evalkit's network == torchmetrics' _NoTrainLpips (torchvision AlexNet, the
    same random weights, the shipped v0.1 linear layers) to 1e-6."""
    from torchmetrics.functional.image.lpips import _NoTrainLpips

    tv = _tv_alexnet(5)
    ref = _NoTrainLpips(pretrained=True, net="alex", pnet_rand=True)
    slices = {0: 1, 1: 1, 2: 2, 3: 2, 4: 2, 5: 3, 6: 3, 7: 3, 8: 4, 9: 4, 10: 5, 11: 5}
    ref.net.load_state_dict({f"slice{slices[int(k.split('.')[0])]}.{k}": v
                             for k, v in tv.features.state_dict().items()}, strict=True)
    ours, name, _ = build_lpips_net(tv)
    assert isinstance(ours, LpipsNet) and name == "injected"
    pred, target = _pairs(5, seed=4)
    a, b = to_signed(pred), to_signed(target)
    with torch.no_grad():
        want = ref(a, b, normalize=False).reshape(-1)
        got = ours(a, b).reshape(-1)
    assert want.std() > 0
    torch.testing.assert_close(got, want, rtol=0, atol=1e-6)
    np.testing.assert_allclose(lpips_per_sample(pred, target, ours), want.double().numpy(),
                               rtol=0, atol=1e-6)


def test_lpips_runs_without_torchvision(alexnet, monkeypatch):
    """With torchvision unimportable, LPIPS still builds (own trunk, linear layers read from
    torchmetrics' package file) and scores; the torchvision-free net equals the reference."""
    import sys

    state = {f"features.{k}": v for k, v in alexnet.features.state_dict().items()} \
        if hasattr(alexnet, "features") else alexnet.state_dict()
    pred, target = _pairs(4, seed=6)
    with_tv = LpipsMetric(backbone=alexnet).compute(_ctx(pred, target))[0]
    monkeypatch.setitem(sys.modules, "torchvision", None)  # `import torchvision` now fails
    with pytest.raises(ImportError):
        import torchvision as _  # noqa: F401
    (v,) = LpipsMetric(backbone=state).compute(_ctx(pred, target))
    assert v.status == "ok" and v.n == 4
    np.testing.assert_allclose(v.per_sample, with_tv.per_sample, rtol=1e-6)
    assert linear_layers_path().name == "alex.pth"
