"""FID and KID: torchmetrics' math on cached features, checked against independent numpy/scipy
implementations, with an injected TorchScript extractor (no weights, no network)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy import linalg

import evalkit  # noqa: F401  (import-order safety first)
from evalkit.core.hashing import file_sha256
from evalkit.inputs.data.dataset import Dataset
from evalkit.measure import weights as W
from evalkit.measure.base import MetricContext
from evalkit.measure.distribution import (
    FID_MIN_UNBIASED_N,
    DistributionMetrics,
    fid_from_features,
    frechet_distance_fast,
    kid_from_features,
)
from evalkit.measure.features import RESIZE_TF1

D = 16
SIZE = 32
# torch.jit.script/load are deprecated in favour of torch.export, but TorchScript is the format
# --feature-extractor accepts.
pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit:FutureWarning")


class _TinyExtractor(torch.nn.Module):
    """Fixed random conv, global mean pool plus a max pool of its ReLU: uint8 NCHW -> (N, 16).
    ``seen`` counts images passed through (in the TorchScript module itself)."""

    def __init__(self) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(1234)
        self.conv = torch.nn.Conv2d(3, D, 4, stride=4)
        with torch.no_grad():
            self.conv.weight.copy_(torch.randn(self.conv.weight.shape, generator=g) * 0.3)
            self.conv.bias.copy_(torch.randn(D, generator=g) * 0.1)
        self.num_features = D
        self.register_buffer("seen", torch.zeros((), dtype=torch.long))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        assert x.dtype == torch.uint8
        self.seen += x.shape[0]
        f = self.conv(x.float() / 255.0)
        return f.mean(dim=(2, 3)) + 0.5 * torch.relu(f).amax(dim=(2, 3))


@pytest.fixture(scope="module")
def extractor_file(tmp_path_factory) -> Path:
    p = tmp_path_factory.mktemp("ext") / "tiny_extractor.pt"
    torch.jit.script(_TinyExtractor()).save(str(p))
    return p


def _images(n: int, seed: int, shift: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 200, (n, SIZE, SIZE, 3))
    blobs = rng.integers(0, 55, (n, 1, 1, 3))
    return np.clip(base + blobs + shift, 0, 255).astype(np.uint8)


def _dataset(name: str, targets: np.ndarray | None, n: int, mask=None,
             content_hash: str | None = None) -> Dataset:
    return Dataset(name=name, kind="heldout" if targets is not None else "sketches",
                   root=Path("."), ids=[f"s{i}" for i in range(n)],
                   inputs=np.zeros((n, SIZE, SIZE, 1), np.float32), targets=targets,
                   content_hash=content_hash or f"hash-{name}", size=SIZE, target_mask=mask)


def _ctx(ds: Dataset, outputs: np.ndarray, cache: Path, ckpt: str = "ckpt-1",
         reference: Dataset | None = None) -> MetricContext:
    return MetricContext(dataset=ds, outputs=outputs, checkpoint=ckpt,
                         checkpoint_hash=f"h-{ckpt}", cache_dir=cache, reference=reference)


def _features(extractor_file: Path, images: np.ndarray) -> np.ndarray:
    """Independent feature extraction: load the TorchScript file and run it once."""
    m = torch.jit.load(str(extractor_file))
    with torch.no_grad():
        x = torch.from_numpy(images).permute(0, 3, 1, 2).contiguous()
        return m(x).double().numpy()


def _fid_scipy(a: np.ndarray, b: np.ndarray) -> float:
    """Fréchet distance with scipy's sqrtm (the original FID formula)."""
    mu1, mu2 = a.mean(0), b.mean(0)
    s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    covmean = linalg.sqrtm(s1 @ s2)
    covmean = np.real(covmean)
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean))


def _mmd2_unbiased(x: np.ndarray, y: np.ndarray) -> float:
    """Unbiased squared MMD, polynomial kernel (x.y/d + 1)^3 (Bińkowski et al. 2018)."""
    d = x.shape[1]
    kxx = (x @ x.T / d + 1) ** 3
    kyy = (y @ y.T / d + 1) ** 3
    kxy = (x @ y.T / d + 1) ** 3
    m, n = len(x), len(y)
    return float((kxx.sum() - np.trace(kxx)) / (m * (m - 1))
                 + (kyy.sum() - np.trace(kyy)) / (n * (n - 1)) - 2 * kxy.mean())


def test_fid_and_kid_match_independent_implementations(tmp_path, extractor_file):
    n = 40
    targets = _images(n, seed=1)
    outputs = _images(n, seed=2, shift=30)
    ds = _dataset("heldout", targets, n)
    fam = DistributionMetrics(feature_extractor=extractor_file)
    values = {v.metric: v for v in fam.compute(_ctx(ds, outputs, tmp_path / "cache"))}

    fr, ff = _features(extractor_file, targets), _features(extractor_file, outputs)
    fid_ref = _fid_scipy(fr, ff)
    kid_ref = _mmd2_unbiased(fr, ff)
    assert fid_ref > 0.01  # the two sets really differ
    assert values["fid"].value == pytest.approx(fid_ref, rel=1e-3)
    assert values["kid"].value == pytest.approx(kid_ref, rel=1e-4, abs=1e-9)
    # a set against itself: FID ~ 0
    same = fam.compute(_ctx(ds, targets.copy(), tmp_path / "cache", ckpt="ckpt-same"))
    assert abs(same[0].value) < 1e-6 * max(fid_ref, 1)


def test_flags_sample_size_and_extractor_identity(tmp_path, extractor_file):
    n = 12
    ds = _dataset("heldout", _images(n, 3), n)
    fid, kid = DistributionMetrics(feature_extractor=extractor_file).compute(
        _ctx(ds, _images(n, 4), tmp_path))
    assert fid.status == kid.status == "ok"
    assert fid.n == kid.n == n and fid.flags["n_real"] == n
    assert fid.flags["biased_small_n"] is True and n < FID_MIN_UNBIASED_N
    assert "biased_small_n" not in kid.flags
    for v in (fid, kid):
        assert v.flags["comparable"] is False
        assert v.flags["standard_extractor"] is False
        assert v.flags["extractor"] == "torchscript:tiny_extractor.pt"
        assert v.flags["extractor_sha256"] == file_sha256(extractor_file)
        assert v.flags["feature_dim"] == D
        assert "not comparable" in v.flags["note"]
    # equal sets no larger than 1000: one subset = the whole sets, std undefined
    assert kid.flags["kid_subset_size"] == n and kid.flags["kid_subsets"] == 1
    assert kid.std is None


def test_real_features_extracted_once_across_checkpoints(tmp_path, extractor_file):
    n_real, n_fake = 20, 20
    ds = _dataset("heldout", _images(n_real, 5), n_real)
    cache = tmp_path / "cache"
    fam = DistributionMetrics(feature_extractor=extractor_file)
    fam.compute(_ctx(ds, _images(n_fake, 6), cache, ckpt="ckpt-1"))
    module = fam.extractor().module
    assert int(module.seen) == n_real + n_fake
    fam.compute(_ctx(ds, _images(n_fake, 7), cache, ckpt="ckpt-2"))
    assert int(module.seen) == n_real + 2 * n_fake  # only the new outputs
    assert fam.last_cache.hits["real"] == 1 and fam.last_cache.misses["fake"] == 1

    # a new process (fresh family, fresh module) finds the real features on disk
    fresh = DistributionMetrics(feature_extractor=extractor_file)
    fresh.compute(_ctx(ds, _images(n_fake, 8), cache, ckpt="ckpt-3"))
    assert int(fresh.extractor().module.seen) == n_fake
    # recomputing a checkpoint's metrics re-extracts nothing
    fresh.compute(_ctx(ds, _images(n_fake, 8), cache, ckpt="ckpt-3"))
    assert int(fresh.extractor().module.seen) == n_fake
    assert len(list((cache / "features" / "real").glob("*.npy"))) == 1
    assert len(list((cache / "features" / "fake").glob("*.npy"))) == 3

    # another dataset content (hash) or extractor is another cache entry
    other = _dataset("heldout", _images(n_real, 5), n_real, content_hash="other-content")
    fresh.compute(_ctx(other, _images(n_fake, 8), cache, ckpt="ckpt-3"))
    assert int(fresh.extractor().module.seen) == n_fake + n_real
    assert len(list((cache / "features" / "real").glob("*.npy"))) == 2


def test_sketch_track_uses_reference_targets(tmp_path, extractor_file):
    n_ref, n_sk = 30, 10
    ref = _dataset("heldout", _images(n_ref, 9), n_ref)
    sketches = _dataset("sketches", None, n_sk)
    outputs = _images(n_sk, 10, shift=20)
    fid, kid = DistributionMetrics(feature_extractor=extractor_file, kid_subsets=50).compute(
        _ctx(sketches, outputs, tmp_path, reference=ref))
    assert fid.status == "ok" and fid.n == n_sk and fid.flags["n_real"] == n_ref
    assert "heldout targets" in fid.flags["real_set"]
    fr, ff = _features(extractor_file, ref.targets), _features(extractor_file, outputs)
    assert fid.value == pytest.approx(_fid_scipy(fr, ff), rel=1e-3)
    # KID over 50 random subsets of size min(n) = 10 from the 30 real images
    assert kid.flags["kid_subset_size"] == n_sk and kid.flags["kid_subsets"] == 50
    assert kid.std is not None and kid.std > 0
    rng = np.random.default_rng(0)
    draws = [_mmd2_unbiased(fr[rng.permutation(n_ref)[:n_sk]], ff) for _ in range(400)]
    assert kid.value == pytest.approx(np.mean(draws), abs=4 * np.std(draws) / np.sqrt(50))

    # no targets and no reference: skipped, not retryable
    skipped = DistributionMetrics(feature_extractor=extractor_file).compute(
        _ctx(sketches, outputs, tmp_path))
    assert [v.status for v in skipped] == ["skipped", "skipped"]
    assert "no target images" in skipped[0].reason and not skipped[0].flags.get("retryable")


def test_partial_targets_use_only_rows_with_targets(tmp_path, extractor_file):
    n = 16
    targets = _images(n, 11)
    mask = np.arange(n) % 2 == 0
    ds = _dataset("sketches", targets, n, mask=mask)
    outputs = _images(n, 12)
    fid, _ = DistributionMetrics(feature_extractor=extractor_file).compute(
        _ctx(ds, outputs, tmp_path))
    assert fid.flags["n_real"] == mask.sum() and fid.n == n
    fr, ff = _features(extractor_file, targets[mask]), _features(extractor_file, outputs)
    assert fid.value == pytest.approx(_fid_scipy(fr, ff), rel=1e-3)


def test_feature_level_math_against_scipy():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(300, 8))
    b = rng.normal(size=(250, 8)) @ rng.normal(size=(8, 8)) * 0.5 + 0.3
    assert fid_from_features(a, b) == pytest.approx(_fid_scipy(a, b), rel=1e-6)
    mean, std, m, k = kid_from_features(a[:250], b)
    assert (m, k, std) == (250, 1, None)
    assert mean == pytest.approx(_mmd2_unbiased(a[:250], b), rel=1e-6)
    # subsets are seeded: the same call gives the same KID, and the global RNG is untouched
    torch.manual_seed(5)
    before = torch.rand(1)
    torch.manual_seed(5)
    r1 = kid_from_features(a, b, subsets=20, seed=3)
    assert torch.rand(1) == before
    assert kid_from_features(a, b, subsets=20, seed=3) == r1
    assert r1[2] == 250 and r1[3] == 20 and r1[1] > 0


@pytest.mark.parametrize("n1,n2,d", [(40, 40, 256), (12, 40, 256), (300, 280, 32)])
def test_fast_fid_backend_equals_torchmetrics(n1, n2, d):
    """Both routes of the exact fast FID (n < D: nuclear norm; n >= D: symmetric roots)."""
    rng = np.random.default_rng(n1 + d)
    a = np.abs(rng.normal(size=(n1, d)))
    b = np.abs(rng.normal(size=(n2, d))) * 1.2 + 0.1
    ref = fid_from_features(a, b)
    assert frechet_distance_fast(a, b) == pytest.approx(ref, rel=1e-6)
    if n1 >= d:
        assert frechet_distance_fast(a, b) == pytest.approx(_fid_scipy(a, b), rel=1e-6)
    with pytest.raises(ValueError):
        DistributionMetrics(fid_backend="nope")


def test_fast_backend_in_the_family(tmp_path, extractor_file):
    n = 30
    ds = _dataset("heldout", _images(n, 21), n)
    out = _images(n, 22, shift=25)
    slow = DistributionMetrics(feature_extractor=extractor_file, fid_backend="torchmetrics"
                               ).compute(_ctx(ds, out, tmp_path))
    fast = DistributionMetrics(feature_extractor=extractor_file).compute(_ctx(ds, out, tmp_path))
    assert fast[0].value == pytest.approx(slow[0].value, rel=1e-6)
    assert fast[0].flags["fid_backend"] == "fast" and slow[0].flags["fid_backend"] == "torchmetrics"
    assert fast[1].value == slow[1].value  # KID unchanged


def test_missing_inception_weights_skip_with_one_clear_line(tmp_path, monkeypatch):
    monkeypatch.setenv("EVALKIT_WEIGHTS_DIR", str(tmp_path / "weights"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    n = 6
    ds = _dataset("heldout", _images(n, 1), n)
    values = DistributionMetrics().compute(_ctx(ds, _images(n, 2), tmp_path / "cache"))
    assert [v.metric for v in values] == ["fid", "kid"]
    for v in values:
        assert v.status == "skipped" and v.value is None and v.n == n
        assert v.flags["retryable"] is True
        assert v.flags["missing_weights"] == "weights-inception-2015-12-05-6726825d.pth"
        assert "\n" not in v.reason
        assert v.reason.startswith("fid/kid skipped: weights file "
                                   "weights-inception-2015-12-05-6726825d.pth not found")
        assert str(tmp_path / "weights") in v.reason and str(tmp_path / "torch") in v.reason
        assert "'evalkit weights fetch'" in v.reason and "'evalkit weights import FILE'" in v.reason
    assert not (tmp_path / "cache" / "features").exists()


def _random_inception_file(path: Path, monkeypatch) -> Path:
    """A structurally valid Inception weights file with random weights (no download)."""
    import torch_fidelity.feature_extractor_inceptionv3 as fe

    with monkeypatch.context() as m:
        m.setattr(fe, "load_state_dict_from_url", lambda *a, **k: {})
        m.setattr(fe.FeatureExtractorInceptionV3, "load_state_dict",
                  lambda self, *a, **k: None)
        torch.manual_seed(0)
        net = fe.FeatureExtractorInceptionV3("inception-v3-compat", ["2048"])
    torch.save(net.state_dict(), path)
    return path


@pytest.mark.slow
def test_standard_inception_from_local_file_matches_torchmetrics(tmp_path, monkeypatch):
    """The standard path: file found in EVALKIT_WEIGHTS_DIR, hash checked, loaded by
    torchmetrics' NoTrainInceptionV3 (TF1 resize), same FID as torchmetrics used directly."""
    from torchmetrics.image.fid import FrechetInceptionDistance

    wdir = tmp_path / "weights"
    wdir.mkdir()
    monkeypatch.setenv("EVALKIT_WEIGHTS_DIR", str(wdir))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    f = _random_inception_file(wdir / W.INCEPTION.name, monkeypatch)
    digest = file_sha256(f)
    # a random file is not the FID-standard one: refused, never substituted
    ds = _dataset("heldout", _images(4, 1), 4)
    outputs = _images(4, 2, shift=40)
    refused = DistributionMetrics().compute(_ctx(ds, outputs, tmp_path / "c0"))
    assert refused[0].status == "skipped" and "expected 6726825d0af5" in refused[0].reason
    # accept this file as the standard one for the test
    monkeypatch.setitem(W.REGISTRY, "inception",
                        dataclasses.replace(W.INCEPTION, sha256=digest, size=None))
    cache = tmp_path / "c1"
    fid, kid = DistributionMetrics(batch_size=4, fid_backend="fast").compute(
        _ctx(ds, outputs, cache))
    assert fid.status == "ok", fid.reason
    assert fid.flags["comparable"] is True and fid.flags["antialias"] is False
    assert fid.flags["resize"] == RESIZE_TF1 and fid.flags["feature_dim"] == 2048
    assert fid.flags["extractor_sha256"] == digest
    # torchmetrics used directly with the same local file extracts the same features ...
    ref = FrechetInceptionDistance(feature=2048, feature_extractor_weights_path=str(f),
                                   antialias=False)
    with torch.no_grad():
        fr = ref.inception(torch.from_numpy(ds.targets).permute(0, 3, 1, 2)).double().numpy()
        ff = ref.inception(torch.from_numpy(outputs).permute(0, 3, 1, 2)).double().numpy()
    [real_file] = (cache / "features" / "real").glob("*.npy")
    [fake_file] = (cache / "features" / "fake").glob("*.npy")
    np.testing.assert_allclose(np.load(real_file), fr, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(np.load(fake_file), ff, rtol=1e-5, atol=1e-6)
    # ... and so the same FID (torchmetrics' 2048-d compute() takes ~45 s on 2 cores; the
    # backends are shown equal in test_fast_fid_backend_equals_torchmetrics)
    assert fid.value == pytest.approx(frechet_distance_fast(fr, ff), rel=1e-6)
    assert kid.status == "ok" and kid.flags["kid_subset_size"] == 4
