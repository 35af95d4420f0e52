"""Paired metrics cross-checked against scikit-image on the same arrays."""

from __future__ import annotations

import numpy as np
import pytest
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from evalkit.measure.paired import l1_per_sample, psnr_per_sample, ssim_per_sample
from evalkit.measure.stats import bootstrap_ci, summarize


@pytest.fixture
def pair():
    rng = np.random.default_rng(0)
    target = rng.integers(0, 256, (5, 48, 40, 3)).astype(np.uint8)
    noise = rng.normal(0, 25, target.shape)
    pred = np.clip(target + noise, 0, 255).astype(np.uint8)
    pred[0] = target[0]  # one identical pair
    return pred, target


def test_ssim_matches_skimage_and_torchmetrics(pair):
    import torch
    from torchmetrics.functional.image import structural_similarity_index_measure as tm_ssim

    pred, target = pair
    ours = ssim_per_sample(pred, target)
    ref = [structural_similarity(p, t, gaussian_weights=True, sigma=1.5,
                                 use_sample_covariance=False, data_range=255, channel_axis=-1)
           for p, t in zip(pred, target, strict=True)]
    np.testing.assert_allclose(ours, ref, atol=1e-4)
    # torchmetrics (float64) averages a reflect-padded border too: crop 5 px like skimage
    p = torch.from_numpy(pred.astype(np.float64)).permute(0, 3, 1, 2)
    t = torch.from_numpy(target.astype(np.float64)).permute(0, 3, 1, 2)
    _, full = tm_ssim(p, t, gaussian_kernel=True, sigma=1.5, kernel_size=11, data_range=255.0,
                      reduction="none", return_full_image=True)
    np.testing.assert_allclose(ours, full[:, :, 5:-5, 5:-5].mean(dim=(1, 2, 3)).numpy(),
                               atol=1e-4)
    assert ours[0] == pytest.approx(1.0)


def test_psnr_matches_skimage(pair):
    pred, target = pair
    ours = psnr_per_sample(pred, target)
    for i in range(1, len(pred)):
        assert ours[i] == pytest.approx(peak_signal_noise_ratio(target[i], pred[i],
                                                                data_range=255), abs=1e-6)
    assert ours[0] == 100.0  # identical images: capped


def test_l1_on_signed_scale():
    target = np.array([[[[0, 255, 127]]]], np.uint8)
    y = np.array([[[[-1.0, 1.0, 0.0]]]], np.float32)
    expected = np.mean(np.abs(y - (target / 127.5 - 1)))
    assert l1_per_sample(y, target)[0] == pytest.approx(expected)
    assert l1_per_sample(-y, target)[0] == pytest.approx(np.mean([2, 2, abs(127 / 127.5 - 1)]))


def test_summary_and_ci():
    v = np.arange(20, dtype=float)
    s = summarize("x", v)
    assert s.value == pytest.approx(9.5) and s.n == 20
    assert s.std == pytest.approx(np.std(v, ddof=1))
    assert s.ci_low < 9.5 < s.ci_high
    assert bootstrap_ci(v) == bootstrap_ci(v)  # seeded: reproducible
    assert bootstrap_ci(np.array([1.0])) == (None, None)
    nan_mixed = summarize("x", np.array([1.0, np.nan, 3.0]))
    assert nan_mixed.n == 2 and nan_mixed.value == 2.0


def test_batched_bootstrap_gives_the_unbatched_interval():
    """The CI's resamples run in batches (memory O(batch x n)) with the very interval of
    one vectorized call: the same seeded draws."""
    import warnings

    from scipy import stats

    from evalkit.measure import stats as ek_stats

    for n in (3, 57, 3000):
        v = np.random.default_rng(n).gamma(2.0, size=n)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ref = stats.bootstrap((v,), np.mean, n_resamples=ek_stats.N_RESAMPLES,
                                  confidence_level=0.95, method="percentile",
                                  rng=np.random.default_rng(ek_stats.SEED))
        assert bootstrap_ci(v) == (ref.confidence_interval.low, ref.confidence_interval.high)
    assert ek_stats.BATCH < ek_stats.N_RESAMPLES
