"""Stored results as per-step series: what the TensorBoard and MLflow exports write.

One :class:`Point` per (domain, dataset, metric, checkpoint) with status ``ok`` and a finite
value, at the checkpoint's step (the ``N`` of ``ckpt-N``). Within a domain a step has one
checkpoint: when two share a step (``ckpt-3`` and ``run2/ckpt-3``) the first by name is
exported and the others are named in the notes (a series cannot hold two values at a step).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import pandas as pd


@dataclass(frozen=True)
class Point:
    """One aggregate value at one step.

    Attributes:
        domain: ``car``...; ``""`` for a run without domains.
        dataset: the dataset's label within its domain (``heldout``, ``sketches``).
        metric: ``ssim``...; units as in the README's metric table.
        checkpoint, step: where the value comes from.
        value: the aggregate (mean for per-sample metrics).
        ci_low, ci_high: its 95% bootstrap CI, or None (set-level metrics).
    """

    domain: str
    dataset: str
    metric: str
    checkpoint: str
    step: int
    value: float
    ci_low: float | None = None
    ci_high: float | None = None


def dataset_label(dataset: str, domain: str) -> str:
    """``heldout/car`` in domain ``car`` -> ``heldout`` (the domain is said once)."""
    suffix = f"/{domain}"
    if domain and dataset.endswith(suffix):
        return dataset[: -len(suffix)]
    return dataset


def _finite(v) -> float | None:
    if v is None:
        return None
    try:
        v = float(v)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


def metric_points(results: pd.DataFrame) -> tuple[list[Point], list[str]]:
    """Points of a results table (:func:`evalkit.store.results.load_results`) in step order, and
    notes on what was left out (a second checkpoint at a step already taken)."""
    points: list[Point] = []
    notes: list[str] = []
    if results.empty:
        return points, notes
    ok = results[results["status"] == "ok"].copy()
    ok["domain"] = ok["domain"].fillna("")
    ok = ok[ok["step"].notna()].sort_values(["domain", "step", "checkpoint"], kind="stable")
    owner: dict[tuple[str, int], str] = {}
    dropped: set[str] = set()
    for row in ok.itertuples(index=False):
        value = _finite(row.value)
        if value is None:
            continue
        step = int(row.step)
        first = owner.setdefault((row.domain, step), row.checkpoint)
        if first != row.checkpoint:
            if row.checkpoint not in dropped:
                dropped.add(row.checkpoint)
                notes.append(f"{row.checkpoint} has step {step} like {first}: not exported "
                             "(a series holds one value per step)")
            continue
        points.append(Point(row.domain, dataset_label(row.dataset, row.domain), row.metric,
                            row.checkpoint, step, value, _finite(row.ci_low),
                            _finite(row.ci_high)))
    return points, notes


def load_points(out_dir: str | Path) -> tuple[list[Point], list[str]]:
    """:func:`metric_points` of an evaluation folder's stored results."""
    from evalkit.store.results import Store

    with Store(out_dir, create=False) as store:
        return metric_points(store.results())
