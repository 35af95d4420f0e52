"""Metrics a report could not show, said once: which metric, on which datasets, why, and
the fix (the reason evalkit stored says both, e.g. "weights file ... not found ...; run
'evalkit weights fetch' ..."), instead of one footnote per cell."""

from __future__ import annotations

import pandas as pd


def _strip(reason: str, metric: str) -> str:
    """The reason without a leading ``"<family> skipped: "`` (it repeats the metric)."""
    head, sep, rest = reason.partition(" skipped: ")
    return rest if sep and len(head) < 24 and " " not in head.strip() else reason


def unmeasured(results: pd.DataFrame) -> list[dict]:
    """``[{"metric" (names joined), "metrics", "datasets", "status", "reason"}]``: the
    (dataset, metric) pairs no checkpoint has a value for, one entry per distinct reason
    (metrics with the same reason on the same datasets share it: fid and kid need the
    same weights)."""
    if results.empty:
        return []
    ok = results[(results["status"] == "ok") & results["value"].notna()]
    have = set(zip(ok["dataset"], ok["metric"], strict=True))
    bad = results[[(d, m) not in have for d, m in zip(results["dataset"], results["metric"],
                                                       strict=True)]]
    by_metric: dict[tuple[str, str], dict] = {}
    for r in bad.itertuples():
        reason = r.reason if isinstance(r.reason, str) and r.reason else "no reason recorded"
        key = (r.metric, _strip(reason, r.metric))
        e = by_metric.setdefault(key, {"metric": r.metric, "datasets": [], "status": r.status,
                                       "reason": key[1]})
        if r.dataset not in e["datasets"]:
            e["datasets"].append(r.dataset)
    merged: dict[tuple, dict] = {}
    for e in sorted(by_metric.values(), key=lambda e: e["metric"]):
        m = merged.setdefault((e["reason"], tuple(e["datasets"])),
                              {**e, "metrics": []})
        m["metrics"].append(e["metric"])
    for m in merged.values():
        m["metric"] = ", ".join(m["metrics"])
    return list(merged.values())


def unmeasured_pairs(entries: list[dict]) -> set[tuple[str, str]]:
    """The (dataset, metric) pairs the entries cover."""
    return {(d, m) for e in entries for m in e["metrics"] for d in e["datasets"]}
