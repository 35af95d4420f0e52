"""How many more samples would most likely settle an unstable pick, and of which track.

A pick is unstable when it comes first in fewer than ``[ranking] stable_at`` of the
bootstrap resamples. With ``k`` times as many samples of one track (dataset), the bootstrap
spread of that track's per-sample means would shrink by ``sqrt(k)`` (the standard error of a
mean goes as ``1/sqrt(n)``). This module projects that: each per-sample value of the track is
pulled towards its checkpoint's mean by ``1/sqrt(k)`` (point values unchanged, pairing kept;
set-level CIs scaled the same way), the paired bootstrap is run again, and the projection
reports the smallest ``k`` of :data:`FACTORS` at which the top checkpoint's P(first) reaches
``stable_at``. It assumes the new samples behave like the old ones (same means and spread);
it is a planning figure, not a promise.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

FACTORS = (1.5, 2.0, 3.0, 4.0, 6.0, 8.0)


def _shrink(results: pd.DataFrame, samples: pd.DataFrame, dataset: str, k: float
            ) -> tuple[pd.DataFrame, pd.DataFrame]:
    c = 1.0 / np.sqrt(k)
    s = samples.copy()
    on = s["dataset"] == dataset
    if on.any():
        vals = s.loc[on, "value"].astype(float)
        mean = vals.groupby([s.loc[on, "checkpoint"], s.loc[on, "metric"]]).transform("mean")
        s.loc[on, "value"] = np.where(np.isfinite(vals), mean + c * (vals - mean), vals)
    r = results.copy()
    rows = r["dataset"] == dataset
    if {"ci_low", "ci_high"} <= set(r.columns) and rows.any():
        v = pd.to_numeric(r.loc[rows, "value"], errors="coerce")
        for col in ("ci_low", "ci_high"):
            ci = pd.to_numeric(r.loc[rows, col], errors="coerce")
            r.loc[rows, col] = np.where(ci.notna() & v.notna(), v + c * (ci - v), ci)
    return r, s


def settle_advice(results: pd.DataFrame, checkpoints: pd.DataFrame, samples: pd.DataFrame,
                  config, counted_datasets: list[str], n: dict[str, int]) -> list[dict]:
    """Per counted track: ``{"dataset", "n", "factor", "more", "p_first", "leader"}`` with
    the smallest factor of :data:`FACTORS` at which the top checkpoint's projected P(first)
    reaches ``config.stable_at`` (``factor`` None: not within 8x), sorted most useful first
    (smallest factor, then fewest extra samples)."""
    from evalkit.decide.ranking.rank import rank_checkpoints

    out = []
    for ds in counted_datasets:
        hit = None
        for k in FACTORS:
            r, s = _shrink(results, samples, ds, k)
            ranking = rank_checkpoints(r, checkpoints, s, config)
            top = ranking.participants.iloc[0] if len(ranking.participants) else None
            if top is not None and top["p_first"] >= config.stable_at:
                hit = (k, float(top["p_first"]), str(top["checkpoint"]))
                break
        size = int(n.get(ds) or 0)
        out.append({"dataset": ds, "n": size, "factor": None if hit is None else hit[0],
                    "more": None if hit is None else int(np.ceil(size * (hit[0] - 1))),
                    "p_first": None if hit is None else hit[1],
                    "leader": None if hit is None else hit[2]})
    return sorted(out, key=lambda e: (e["factor"] is None, e["factor"] or 0, e["more"] or 0))


def advice_text(advice: list[dict], stable_at: float) -> str:
    """One sentence for the explanation, or "" when no track settles it within 8x."""
    best = [a for a in advice if a["factor"] is not None]
    if not best:
        return (f"No single track settles it within {FACTORS[-1]:g}x its samples (projected "
                "from the bootstrap): the top checkpoints are practically equal; choose by the "
                "grids or by another criterion.")
    a = best[0]
    return (f"Projected from the bootstrap: about {a['more']} more samples of {a['dataset']} "
            f"({a['factor']:g}x its {a['n']}) would most likely settle it (P(first) of "
            f"{a['leader']} {a['p_first']:.0%} >= {stable_at:.0%}), assuming new samples "
            "behave like these.")
