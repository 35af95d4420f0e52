"""What every metric family receives and returns.

A *family* is one small module (paired, distribution, lpips, adherence...) whose
``compute(ctx)`` turns the cached served outputs of one checkpoint on one dataset into
:class:`MetricValue` rows. Families never run a generator: outputs come from the
generation cache (:mod:`evalkit.execute.generate`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from evalkit.inputs.data.dataset import Dataset

OK, SKIPPED, FAILED = "ok", "skipped", "failed"


@dataclass
class MetricValue:
    """One aggregate value of one metric for one checkpoint on one dataset.

    ``value`` is the point estimate (mean over samples for per-sample metrics);
    ``ci_low``/``ci_high`` a 95% confidence interval where one is defined; ``n`` the number
    of samples behind it; ``status`` one of ``ok``, ``skipped`` (could not be computed
    here, ``reason`` says why and how to fix it) or ``failed``. ``flags`` carries facts a
    reader must see beside the number (e.g. ``{"biased_small_n": true}``, extractor
    identity, ``"comparable": false``).
    """

    metric: str
    value: float | None
    n: int
    std: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None
    per_sample: np.ndarray | None = None
    status: str = OK
    reason: str | None = None
    flags: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def skipped(cls, metric: str, reason: str, n: int = 0, **flags: Any) -> MetricValue:
        return cls(metric=metric, value=None, n=n, status=SKIPPED, reason=reason, flags=flags)

    @classmethod
    def failed(cls, metric: str, reason: str, n: int = 0) -> MetricValue:
        return cls(metric=metric, value=None, n=n, status=FAILED, reason=reason)


@dataclass
class MetricContext:
    """Everything a family may use for one (checkpoint, dataset) evaluation.

    Attributes:
        dataset: the served inputs and targets.
        outputs: ``(N, S, S, 3)`` uint8, the served outputs (post-processed like serving).
        raw_l1: ``(N,)`` per-sample L1 of the raw [-1, 1] output against the target
            (computed at generation time; NaN where there is no target), or None.
        checkpoint: checkpoint name; checkpoint_hash its content hash.
        cache_dir: ``OUT/cache`` for reusable artefacts (e.g. real-image features).
        reference: dataset whose targets are the "real" images for distribution metrics
            on a dataset without targets (the held-out photos for the sketch track).
        options: run options (``feature_extractor`` path, ...).
    """

    dataset: Dataset
    outputs: np.ndarray
    checkpoint: str
    checkpoint_hash: str
    cache_dir: Path
    raw_l1: np.ndarray | None = None
    reference: Dataset | None = None
    options: dict[str, Any] = field(default_factory=dict)


class MetricFamily(Protocol):
    """A metric family: a name, the metrics it yields, and ``compute``."""

    name: str
    metrics: tuple[str, ...]

    def compute(self, ctx: MetricContext) -> list[MetricValue]: ...
