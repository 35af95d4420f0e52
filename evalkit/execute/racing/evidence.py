"""A round's evidence: each checkpoint's chance of being the final choice.

The final choice is made on the *full* datasets, of which a round has seen ``n`` of ``N``
samples. The ranking's paired bootstrap (:func:`evalkit.decide.ranking.rank.rank_checkpoints`) resamples
the ``n`` seen samples as if they were all the data, i.e. it answers for an infinite
population. With the finite-population correction (``finite_population=True``, the
default), a round asks the right question instead: the full-data mean of a checkpoint is
``(n * seen mean + (N - n) * mean of the unseen)/N``; only the unseen part is uncertain, and
its predictive variance is ``S^2 / n * (1 - n/N)`` (S^2 the unbiased sample variance;
Cochran, *Sampling Techniques*, 3rd ed., 1977, sec. 2.5). The bootstrap's variance of a mean
is ``S^2 / n * (n-1)/n``, so every per-sample value is pulled towards its checkpoint's seen
mean by ``c = sqrt((1 - n/N) * n / (n - 1))`` before the paired bootstrap runs: the
resampled means then have exactly the predictive spread, the point values are unchanged
and the pairing (one draw of samples shared by all checkpoints) is kept. Set-level metrics
resampled from their confidence interval (KID) get their CI scaled by the same ``c``. At
``n = N`` nothing is uncertain (``c = 0``); at ``n = N/2``, ``c ~ 0.71``; at ``n = N/8``,
``c ~ 0.94``.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd


def fpc_factor(n: int, full_n: int) -> float:
    """Scale of deviations from the seen mean: ``sqrt((1 - n/N) * n/(n-1))`` in [0, ~1.2];
    1 (no correction) for ``n < 2`` or an unknown ``N``."""
    if n < 2 or full_n <= 0:
        return 1.0
    return math.sqrt(max(0.0, 1.0 - n / full_n) * n / (n - 1))


def finite_population(results: pd.DataFrame, samples: pd.DataFrame,
                      full_n: dict[str, int]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``(results, sample metrics)`` of a round with the finite-population correction
    applied (see the module docstring); ``full_n``: dataset name -> samples in the full
    dataset. Datasets not in ``full_n`` are left as they are."""
    samples = samples.copy()
    results = results.copy()
    if len(samples):
        n_seen = samples.groupby(["checkpoint", "dataset"])["sample_id"].transform("nunique")
        big_n = samples["dataset"].map(full_n)
        c = np.array([fpc_factor(int(a), int(b)) if b == b else 1.0
                      for a, b in zip(n_seen, big_n, strict=True)])
        vals = samples["value"].astype(float)
        mean = vals.groupby([samples["checkpoint"], samples["dataset"],
                             samples["metric"]]).transform("mean")
        samples["value"] = np.where(np.isfinite(vals), mean + c * (vals - mean), vals)
    if len(results) and {"ci_low", "ci_high", "n"} <= set(results.columns):
        n = pd.to_numeric(results["n"], errors="coerce")
        big_n = results["dataset"].map(full_n)
        c = np.array([fpc_factor(int(a), int(b)) if a == a and b == b else 1.0
                      for a, b in zip(n, big_n, strict=True)])
        v = pd.to_numeric(results["value"], errors="coerce")
        for col in ("ci_low", "ci_high"):
            ci = pd.to_numeric(results[col], errors="coerce")
            results[col] = np.where(ci.notna() & v.notna(), v + c * (ci - v), ci)
    return results, samples
