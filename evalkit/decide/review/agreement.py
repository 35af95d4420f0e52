"""Agreement of reviewers with each other and with the automatic metrics, per domain.

* **Between reviewers**: comparisons (sketch, checkpoint pair) answered by two or more
  reviewers (each reviewer's latest answer; "same" is an answer too); for every two
  reviewers on such a comparison, whether they gave the same answer. Reported: the share
  of agreeing reviewer pairs and how many there were.
* **With a metric**: over decisive votes (one output preferred; "same" and skips left out),
  the share in which the metric also prefers the voted output (a metric tie counts half).
  Per-sample metrics of the voted sketch set compare the two outputs of *that sketch*;
  every other (dataset, metric) of the domain compares the two checkpoints' aggregate
  values (e.g. held-out L1: "does the checkpoint with the better held-out L1 draw the
  picture reviewers prefer?"). 50 % is chance. The 95 % interval is Wilson's score
  interval (Wilson 1927), written out because it is three lines and works with the
  half-counts of ties.
"""

from __future__ import annotations

import math
from itertools import combinations

import pandas as pd

from evalkit.decide.review.votes import Vote

_Z = 1.959963984540054


def wilson(k: float, n: int) -> tuple[float, float]:
    """95 % Wilson score interval of a proportion ``k / n`` (``(nan, nan)`` when n = 0)."""
    if n == 0:
        return math.nan, math.nan
    p = k / n
    centre = (p + _Z * _Z / (2 * n)) / (1 + _Z * _Z / n)
    half = _Z * math.sqrt(p * (1 - p) / n + _Z * _Z / (4 * n * n)) / (1 + _Z * _Z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def _outcome(v: Vote) -> tuple[tuple, str]:
    """(comparison key, answer relative to the sorted pair: 'a', 'b' or 'same')."""
    key = v.pair_key()
    if v.answer == "same":
        return key, "same"
    winner = v.left_hash if v.answer == "left" else v.right_hash
    return key, "a" if winner == key[1] else "b"


def reviewer_agreement(votes: list[Vote]) -> dict:
    """``{"comparisons", "pairs", "agree", "share", "ci"}`` over comparisons answered by
    >= 2 reviewers (see the module docstring)."""
    latest: dict[tuple, dict[str, str]] = {}
    for v in sorted(votes, key=lambda v: v.time):
        if v.answer == "skip":
            continue
        key, out = _outcome(v)
        latest.setdefault(key, {})[v.reviewer] = out
    shared = [r for r in latest.values() if len(r) >= 2]
    pairs = agree = 0
    for answers in shared:
        for x, y in combinations(answers.values(), 2):
            pairs += 1
            agree += int(x == y)
    return {"comparisons": len(shared), "pairs": pairs, "agree": agree,
            "share": agree / pairs if pairs else None,
            "ci": wilson(agree, pairs) if pairs else None}


def metric_agreement(votes: list[Vote], names: dict[str, str], results: pd.DataFrame,
                     sample_metrics: pd.DataFrame, directions: dict[str, str]
                     ) -> list[dict]:
    """One row per (dataset, metric, level): ``dataset, metric, level`` (``per sketch``
    or ``per checkpoint``), ``n`` decisive votes with values for both sides, ``share``
    agreeing, ``ci`` (Wilson 95 %). ``names``: content hash -> checkpoint name (current);
    sorted by share, best first."""
    decisive = [v for v in votes if v.answer in ("left", "right")
                and v.left_hash in names and v.right_hash in names]
    if not decisive:
        return []
    agg = results[(results["status"] == "ok") & results["value"].notna()
                  & (results["kind"] != "human")]
    agg_val = {(r.dataset, r.metric, r.checkpoint): float(r.value) for r in agg.itertuples()}
    sm_val = {(r.dataset, r.metric, r.checkpoint, r.sample_id): float(r.value)
              for r in sample_metrics.itertuples()} if len(sample_metrics) else {}
    per_sample = {(d, m) for d, m, _, _ in sm_val}
    tallies: dict[tuple[str, str, str], list[float]] = {}

    def judge(level_key: tuple[str, str, str], win: float | None, lose: float | None,
              direction: str) -> None:
        if win is None or lose is None or not math.isfinite(win) or not math.isfinite(lose):
            return
        if win == lose:
            s = 0.5
        else:
            s = float((win < lose) if direction == "lower" else (win > lose))
        tallies.setdefault(level_key, []).append(s)

    for v in decisive:
        w_hash, l_hash = ((v.left_hash, v.right_hash) if v.answer == "left"
                          else (v.right_hash, v.left_hash))
        w, lo = names[w_hash], names[l_hash]
        for (ds, m) in per_sample:
            d = directions.get(m)
            if ds == v.dataset and d in ("lower", "higher"):
                judge((ds, m, "per sketch"), sm_val.get((ds, m, w, v.sample_id)),
                      sm_val.get((ds, m, lo, v.sample_id)), d)
        for (ds, m) in {(k[0], k[1]) for k in agg_val}:
            d = directions.get(m)
            if d in ("lower", "higher"):
                judge((ds, m, "per checkpoint"), agg_val.get((ds, m, w)),
                      agg_val.get((ds, m, lo)), d)
    rows = []
    for (ds, m, level), xs in tallies.items():
        k = sum(xs)
        rows.append({"dataset": ds, "metric": m, "level": level, "n": len(xs),
                     "share": k / len(xs), "ci": wilson(k, len(xs))})
    rows.sort(key=lambda r: (-r["share"], -r["n"], r["dataset"], r["metric"], r["level"]))
    return rows
