"""Distribution metrics: FID and KID of a checkpoint's served outputs against real photos.

Both compare the *set* of generated images with a set of real images in a feature space
(:mod:`evalkit.measure.features`; by default Inception-v3 pool3, 2048-d, FID-standard
2015-12-05 weights). Lower is better for both; both are 0 for identical distributions.

* **FID** (Heusel et al. 2017, "GANs trained by a two time-scale update rule converge to a
  local Nash equilibrium"): fit Gaussians N(mu_r, S_r), N(mu_g, S_g) to the real and generated
  features (covariances with ddof = 1) and take the Fréchet distance
  ``||mu_r - mu_g||^2 + Tr(S_r + S_g - 2 (S_r S_g)^(1/2))``, in squared feature units, range
  [0, inf). The features are extracted with torchmetrics' / torch-fidelity's Inception;
  the distance is computed by :func:`frechet_distance_fast` by default, because torchmetrics'
  ``FrechetInceptionDistance.compute`` (``fid_backend="torchmetrics"``) takes an eigendecomposition of the non-symmetric D x D matrix
  ``S_r S_g``: about 45 s at D = 2048 on 2 CPU cores, whatever n, per checkpoint and dataset.
  The fast route computes the same quantity exactly through symmetric
  factorizations (0.1 s at n = 40, D = 2048; agrees with torchmetrics to ~1e-7 relative).
  FID is biased upwards at small n, and below D = 2048 samples the covariance is rank-deficient:
  values with fewer than :data:`FID_MIN_UNBIASED_N` samples on either side carry the flag
  ``biased_small_n``; compare checkpoints on small sets with KID.
* **KID** (Bińkowski et al. 2018, "Demystifying MMD GANs"): the unbiased estimator of the
  squared MMD with the polynomial kernel ``k(x, y) = (x.y / D + 1)^3``,
  ``MMD^2_u = sum_{i!=j} k(x_i,x_j)/(m(m-1)) + sum_{i!=j} k(y_i,y_j)/(m(m-1))
  - 2 sum_{i,j} k(x_i,y_j)/m^2``, averaged over random subsets of size
  ``m = min(n_real, n_generated, 1000)`` (torchmetrics' ``KernelInceptionDistance``; it raises
  when m exceeds n, so evalkit picks m). ``value`` is the mean over subsets and ``std`` their
  standard deviation; when both sets are no larger than m every subset is the whole set, so
  one subset is computed and ``std`` is None (flag ``kid_subsets = 1``). Unbiased, so it may
  be slightly negative. Range about [-0.01, inf), in squared kernel units.

Which images: generated = ``ctx.outputs`` (served uint8, from the generation cache; no second
inference); real = the dataset's own targets (rows that have one), or, for a dataset without
targets (hand-drawn sketches), ``ctx.reference``'s targets (the held-out photos).
Real-image features are cached per (dataset content hash, extractor identity); FID and KID share
one extraction. Every value records n (generated), ``n_real``, the extractor's identity and
whether it is comparable with published FID (:meth:`ExtractorIdentity.flags`).
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np

from evalkit.inputs.data.samples import take_rows
from evalkit.measure import weights as W
from evalkit.measure.base import MetricContext, MetricValue
from evalkit.measure.features import (
    INCEPTION_NAME,
    RESIZE_ANTIALIAS,
    RESIZE_TF1,
    FeatureCache,
    FeatureExtractor,
    array_digest,
    load_extractor,
    real_set_key,
)

#: Below this many samples (either side) FID is flagged ``biased_small_n``.
FID_MIN_UNBIASED_N = 2000
#: torchmetrics' and torch-fidelity's default KID subset size.
KID_MAX_SUBSET_SIZE = 1000
KID_SUBSETS = 100


def _passthrough(num_features: int):
    """A torch module returning its input: torchmetrics' FID/KID are fed precomputed
    features through their own ``update``/``compute`` (their ``feature=Module`` route)."""
    import torch

    class _Precomputed(torch.nn.Module):
        def __init__(self, d: int):
            super().__init__()
            self.num_features = d

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x

    return _Precomputed(num_features)


def fid_from_features(real: np.ndarray, fake: np.ndarray) -> float:
    """FID (Heusel et al. 2017) of two ``(n, D)`` feature sets via torchmetrics' math."""
    import torch
    from torchmetrics.image.fid import FrechetInceptionDistance

    d = real.shape[1]
    metric = FrechetInceptionDistance(feature=_passthrough(d))
    metric.update(torch.from_numpy(np.asarray(real, dtype=np.float64)), real=True)
    metric.update(torch.from_numpy(np.asarray(fake, dtype=np.float64)), real=False)
    return float(metric.compute())


def frechet_distance_fast(real: np.ndarray, fake: np.ndarray) -> float:
    """FID of two ``(n, D)`` feature sets, exact, without a non-symmetric eigensolver.

    With ``A = (X_r - mu_r) / sqrt(n_r - 1)`` and ``B = (X_g - mu_g) / sqrt(n_g - 1)``,
    ``S_r = A^T A``, ``S_g = B^T B`` and the nonzero eigenvalues of ``S_r S_g`` are those of
    ``(A B^T)(A B^T)^T``, so ``Tr (S_r S_g)^(1/2) = ||A B^T||_*`` (sum of singular values of an
    n_r x n_g matrix) -- used when min(n) < D. Otherwise ``Tr (S_r^(1/2) S_g S_r^(1/2))^(1/2)``
    with symmetric eigensolvers. Same value as torchmetrics' ``_compute_fid``.
    """
    real = np.asarray(real, dtype=np.float64)
    fake = np.asarray(fake, dtype=np.float64)
    n1, n2, d = len(real), len(fake), real.shape[1]
    if n1 < 2 or n2 < 2:
        raise ValueError("FID needs at least 2 samples in each set")
    mu1, mu2 = real.mean(0), fake.mean(0)
    a = (real - mu1) / np.sqrt(n1 - 1)
    b = (fake - mu2) / np.sqrt(n2 - 1)
    if min(n1, n2) < d:
        cross = np.linalg.svd(a @ b.T, compute_uv=False).sum()
    else:
        w, v = np.linalg.eigh(a.T @ a)
        root = (v * np.sqrt(np.clip(w, 0, None))) @ v.T
        m = root @ (b.T @ b) @ root
        cross = np.sqrt(np.clip(np.linalg.eigvalsh((m + m.T) / 2), 0, None)).sum()
    return float(((mu1 - mu2) ** 2).sum() + (a ** 2).sum() + (b ** 2).sum() - 2 * cross)


FID_BACKENDS = ("torchmetrics", "fast")


def kid_from_features(real: np.ndarray, fake: np.ndarray, subset_size: int | None = None,
                      subsets: int = KID_SUBSETS, seed: int = 0
                      ) -> tuple[float, float | None, int, int]:
    """KID (Bińkowski et al. 2018) via torchmetrics: ``(mean, std, subset_size, subsets)``.

    ``subset_size`` defaults to ``min(n_real, n_fake, 1000)``. When it equals both set sizes
    every random subset is a permutation of the whole sets and the unbiased MMD is
    permutation-invariant, so one subset is computed and std is None. Subsets are drawn from
    torch's RNG seeded with ``seed`` (the global RNG state is restored afterwards).
    """
    import torch
    from torchmetrics.image.kid import KernelInceptionDistance

    n_real, n_fake = len(real), len(fake)
    m = subset_size or min(n_real, n_fake, KID_MAX_SUBSET_SIZE)
    if m < 2 or m > min(n_real, n_fake):
        raise ValueError(f"KID subset size {m} needs 2 <= m <= min(n_real={n_real}, "
                         f"n_fake={n_fake})")
    whole = m == n_real == n_fake
    k = 1 if whole else subsets
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "will save all extracted features in buffer"
        metric = KernelInceptionDistance(feature=_passthrough(real.shape[1]), subsets=k,
                                         subset_size=m)
    metric.update(torch.from_numpy(np.asarray(real, dtype=np.float64)), real=True)
    metric.update(torch.from_numpy(np.asarray(fake, dtype=np.float64)), real=False)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        mean, std = metric.compute()
    return float(mean), (None if whole else float(std)), m, k


class DistributionMetrics:
    """``fid`` and ``kid`` of served outputs vs real photos (see the module docstring).

    Args:
        feature_extractor: a TorchScript file (uint8 NCHW [0, 255] -> (N, D)) to use instead of
            the standard Inception; its values are marked ``comparable: False``.
        antialias: resize flag of the standard Inception (False = TF1-compatible, the FID
            standard; True = torchmetrics' default since 1.8, not comparable).
        kid_subsets: number of KID subsets when subsets differ from the whole sets.
        batch_size: extractor batch size.
        device: torch device for the extractor (``cpu``).
        seed: seed of the KID subset draws.
        fid_backend: ``"fast"`` (default: :func:`frechet_distance_fast`, same value as
            torchmetrics to ~1e-7 relative, ~400x faster at small n; tested against it) or
            ``"torchmetrics"`` (``FrechetInceptionDistance.compute``).
    """

    name = "distribution"
    metrics = ("fid", "kid")

    def __init__(self, feature_extractor: str | Path | None = None, antialias: bool = False,
                 kid_subsets: int = KID_SUBSETS, batch_size: int = 32, device: str = "cpu",
                 seed: int = 0, fid_backend: str = "fast"):
        if fid_backend not in FID_BACKENDS:
            raise ValueError(f"fid_backend must be one of {FID_BACKENDS}, got {fid_backend!r}")
        self.fid_backend = fid_backend
        self.feature_extractor = Path(feature_extractor) if feature_extractor else None
        self.antialias = antialias
        self.kid_subsets = kid_subsets
        self.batch_size = batch_size
        self.device = device
        self.seed = seed
        self._extractor: FeatureExtractor | None = None
        self.last_cache: FeatureCache | None = None

    def signature(self) -> dict[str, Any]:
        """Settings that change the values (the engine recomputes when they change)."""
        if self.feature_extractor is not None:
            # the file's content, not the path as typed: fx.pt, /abs/fx.pt and ../x/fx.pt
            # are one extractor (a missing file is known by its resolved path until it exists)
            ext: dict[str, Any]
            if self.feature_extractor.is_file():
                ext = {"torchscript_sha256": W.cached_sha256(self.feature_extractor)}
            else:
                ext = {"torchscript_missing": str(self.feature_extractor.resolve())}
        else:
            ext = {"name": INCEPTION_NAME, "weights": W.INCEPTION.expected_hash(),
                   "resize": RESIZE_ANTIALIAS if self.antialias else RESIZE_TF1}
        return {"metrics": list(self.metrics), "extractor": ext, "kid_subsets": self.kid_subsets,
                "kid_max_subset_size": KID_MAX_SUBSET_SIZE, "seed": self.seed,
                "fid_backend": self.fid_backend}

    def available(self) -> bool:
        """Could ``compute`` load its extractor now? (the custom TorchScript file exists, or
        the Inception weights resolve and pass their hash check). The engine retries a
        skipped fid/kid only when this turns True."""
        if self.feature_extractor is not None:
            return self.feature_extractor.is_file()
        try:
            W.resolve(W.INCEPTION)
        except W.WeightsMissing:
            return False
        return True

    def extractor(self) -> FeatureExtractor:
        """The loaded extractor (once per instance). Raises WeightsMissing / FileNotFoundError."""
        if self._extractor is None:
            self._extractor = load_extractor(self.feature_extractor, antialias=self.antialias,
                                             batch_size=self.batch_size, device=self.device)
        return self._extractor

    @staticmethod
    def _real_set(ctx: MetricContext):
        """(images, set key, description, source dataset) of the real images, or None."""
        ds = ctx.dataset
        for src, label in ((ds, "own targets"), (ctx.reference, "reference targets")):
            if src is None or src.targets is None:
                continue
            mask = src.has_targets
            if not mask.any():
                continue
            mask_arg = None if mask.all() else mask
            return (take_rows(src.targets, mask), real_set_key(src.content_hash, mask_arg),
                    f"{src.name} targets ({label})", src)
        return None

    def compute(self, ctx: MetricContext) -> list[MetricValue]:
        fake = ctx.outputs
        n_fake = len(fake)
        real = self._real_set(ctx)
        if real is None:
            reason = (f"dataset '{ctx.dataset.name}' has no target images and no reference "
                      "set was given")
            return [MetricValue.skipped(m, reason, n=n_fake) for m in self.metrics]
        real_images, real_key, real_desc, src = real
        n_real = len(real_images)
        if n_real < 2 or n_fake < 2:
            reason = (f"FID/KID need at least 2 real and 2 generated images (have {n_real} "
                      f"real, {n_fake} generated)")
            return [MetricValue.skipped(m, reason, n=n_fake) for m in self.metrics]
        try:
            extractor = self.extractor()
        except W.WeightsMissing as exc:
            reason = exc.skip_reason("fid/kid")
            return [MetricValue.skipped(m, reason, n=n_fake, retryable=True,
                                        missing_weights=exc.file_name) for m in self.metrics]
        except FileNotFoundError as exc:
            return [MetricValue.skipped(m, f"fid/kid skipped: {exc}", n=n_fake, retryable=True)
                    for m in self.metrics]
        cache = FeatureCache(Path(ctx.cache_dir) / "features")
        self.last_cache = cache
        f_real = cache.get_or_extract("real", real_key, extractor, real_images,
                                      meta={"dataset": src.name,
                                            "content_hash": src.content_hash})
        f_fake = cache.get_or_extract("fake", array_digest(fake), extractor, fake,
                                      meta={"checkpoint": ctx.checkpoint,
                                            "checkpoint_hash": ctx.checkpoint_hash,
                                            "dataset": ctx.dataset.name,
                                            "content_hash": ctx.dataset.content_hash})
        ident = extractor.identity
        common: dict[str, Any] = {**ident.flags(), "n_real": n_real, "n_generated": n_fake,
                                  "real_set": real_desc}
        if not ident.comparable:
            common["note"] = ("not comparable with published FID/KID: "
                              + ("custom feature extractor" if not ident.standard
                                 else "antialiased resize"))
        if self.fid_backend == "fast":
            fid = frechet_distance_fast(f_real, f_fake)
        else:
            fid = fid_from_features(f_real, f_fake)
        small = min(n_real, n_fake) < FID_MIN_UNBIASED_N
        fid_flags = {**common, "biased_small_n": small, "min_unbiased_n": FID_MIN_UNBIASED_N,
                     "fid_backend": self.fid_backend}
        kid_mean, kid_std, m, k = kid_from_features(f_real, f_fake, subsets=self.kid_subsets,
                                                    seed=self.seed)
        kid_flags = {**common, "kid_subset_size": m, "kid_subsets": k}
        return [
            MetricValue(metric="fid", value=fid, n=n_fake, flags=fid_flags),
            MetricValue(metric="kid", value=kid_mean, n=n_fake, std=kid_std, flags=kid_flags),
        ]
