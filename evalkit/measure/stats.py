"""Aggregation of per-sample values: mean, standard deviation and a bootstrap CI."""

from __future__ import annotations

import warnings

import numpy as np

from evalkit.measure.base import MetricValue

N_RESAMPLES = 2000
#: resamples per vectorized call: memory O(BATCH x n), not O(N_RESAMPLES x n) (64 MB of
#: indices at n = 2,000); the draws, hence the interval, are the same as in one call
BATCH = 200
CONFIDENCE = 0.95
SEED = 0


def bootstrap_ci(values: np.ndarray, confidence: float = CONFIDENCE,
                 n_resamples: int = N_RESAMPLES, seed: int = SEED
                 ) -> tuple[float | None, float | None]:
    """Percentile bootstrap CI of the mean (Efron & Tibshirani 1993), seeded so that the
    same values always give the same interval. ``(None, None)`` for fewer than 2 values."""
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    if v.size < 2:
        return None, None
    if np.ptp(v) == 0:
        return float(v[0]), float(v[0])
    # imported here: scipy.stats takes ~0.5 s, and a run with nothing to compute needs none
    from scipy import stats

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = stats.bootstrap((v,), np.mean, n_resamples=n_resamples, confidence_level=confidence,
                              method="percentile", rng=np.random.default_rng(seed),
                              batch=BATCH)
    return float(res.confidence_interval.low), float(res.confidence_interval.high)


def summarize(metric: str, per_sample: np.ndarray, **flags) -> MetricValue:
    """Mean, sample std (ddof=1), 95% bootstrap CI and n of finite per-sample values."""
    v = np.asarray(per_sample, dtype=np.float64)
    finite = v[np.isfinite(v)]
    if finite.size == 0:
        return MetricValue.skipped(metric, "no sample has a value for this metric")
    lo, hi = bootstrap_ci(finite)
    return MetricValue(
        metric=metric, value=float(finite.mean()), n=int(finite.size),
        std=float(finite.std(ddof=1)) if finite.size > 1 else None,
        ci_low=lo, ci_high=hi, per_sample=v, flags=dict(flags),
    )
