"""The engine's unit of work and where it runs.

A *unit* is one checkpoint of one domain on the datasets that still need work:
load -> generate -> metrics -> values (:func:`evaluate_unit`). It is pure with respect to
the results store: it never opens ``results.sqlite``. It returns a :class:`UnitResult`
(metric values per dataset, the architecture, the device, an error) and the driver
(:mod:`evalkit.execute.engine`) alone writes the store, one transaction per (checkpoint, dataset),
exactly as before. So resume, caching and history are the same whatever runs the units.

Served outputs: with ``shared_fs`` the unit reads and writes ``OUT/outputs`` itself (the
in-process executor, a local Ray, a cluster whose workers mount OUT); otherwise it gets any
cached outputs from the driver inside the unit and returns the uint8 arrays it generated,
and the driver writes them to ``OUT/outputs``.

Executors (:class:`InProcess`, :class:`evalkit.execute.ray_executor.RayExecutor`) take units and
yield results as they finish.
"""

from __future__ import annotations

import os
import socket
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from evalkit.execute.generate import OutputCache, generate
from evalkit.inputs.checkpoints.discover import CheckpointRef
from evalkit.inputs.checkpoints.load import CheckpointError
from evalkit.inputs.data.dataset import Dataset
from evalkit.measure.base import FAILED, MetricContext, MetricValue


@dataclass
class WorkUnit:
    """One (checkpoint, domain) evaluation to run; picklable.

    Attributes:
        ref: the checkpoint.
        domain: its domain (``""`` without domains).
        checkpoint_hash: content hash computed by the driver (outputs cache key).
        todo: ``(dataset name, [family names])`` still to compute, in order.
        reference: name of the domain's held-out dataset (real photos for distribution
            metrics on datasets without targets), or None.
        image_size, batch_size: serving size (px) and inference batch.
        feature_extractor: FID/KID extractor path (None: Inception weights).
        device: ``auto``, ``cpu`` or ``gpu`` (:mod:`evalkit.execute.device`).
        out_dir: OUT, as the driver sees it.
        shared_fs: the unit may read/write ``OUT/outputs`` and ``OUT/cache`` itself.
        cached: outputs the driver read from its cache, per dataset name
            (``(uint8 (N,S,S,3), raw_l1 or None)``), when not ``shared_fs``.
        n_families: how many families the run computes (a todo with fewer is partial).
        evalkit_version: the driver's evalkit version (workers must match).
        source_options: how to open the model (:class:`evalkit.inputs.sources.SourceOptions`).
    """

    ref: CheckpointRef
    domain: str
    checkpoint_hash: str
    todo: list[tuple[str, list[str]]]
    reference: str | None
    image_size: int
    batch_size: int
    feature_extractor: Path | None
    device: str
    out_dir: Path
    shared_fs: bool
    n_families: int
    evalkit_version: str
    cached: dict[str, tuple[np.ndarray, np.ndarray | None]] = field(default_factory=dict)
    source_options: Any = None  # evalkit.inputs.sources.SourceOptions (model kind settings)
    precision: str = "fp32"  # generator precision (evalkit.execute.precision): outputs cached apart
    #: seconds per stage are added here when a dict (in-process only: a remote worker's
    #: copy does not come back); see benchmarks/bench_run.py
    timings: dict[str, float] | None = None


class Clock:
    """Adds the seconds of a ``with`` block to ``timings[stage]`` (no-op without a dict)."""

    def __init__(self, timings: dict[str, float] | None):
        self.timings = timings

    def __call__(self, stage: str) -> Clock:
        self.stage = stage
        return self

    def __enter__(self) -> None:
        self.t0 = time.perf_counter()

    def __exit__(self, *exc) -> None:
        if self.timings is not None:
            self.timings[self.stage] = (self.timings.get(self.stage, 0.0)
                                        + time.perf_counter() - self.t0)


@dataclass
class DatasetResult:
    """The values of one (checkpoint, dataset) evaluation, for the driver to store.

    ``partial``: the metrics replaced when only some families were computed (None = the
    whole evaluation). ``outputs``/``raw_l1``: the generated served outputs when the unit
    did not write them to ``OUT/outputs`` (no shared filesystem); ``outputs_dir`` is the
    cache folder relative to OUT either way.
    """

    dataset: str
    values: list[MetricValue]
    outputs_dir: str
    partial: list[str] | None = None
    outputs: np.ndarray | None = None
    raw_l1: np.ndarray | None = None


@dataclass
class UnitResult:
    """What a unit returns: finished evaluations (even when a later dataset failed),
    the architecture description, a checkpoint error (one line), where it ran."""

    checkpoint: str
    evaluations: list[DatasetResult] = field(default_factory=list)
    architecture: str | None = None
    error: str | None = None
    version_mismatch: str | None = None
    device: str = "cpu"
    worker: str = ""
    seconds: float = 0.0


def compute_metrics(families: list, ctx: MetricContext, clock: Clock | None = None
                    ) -> list[MetricValue]:
    """Every family on one context; a family that raises is recorded as failed. With a
    ``clock``, each family's seconds go to stage ``metric:<family>``."""
    values: list[MetricValue] = []
    clock = clock or Clock(None)
    for fam in families:
        try:
            with clock(f"metric:{fam.name}"):
                values.extend(fam.compute(ctx))
        except Exception as exc:  # a metric bug must not sink the run; it is recorded
            reason = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
            values.extend(MetricValue(metric=m, value=None, n=0, status=FAILED, reason=reason)
                          for m in fam.metrics)
    return values


def _place_families(families: list, torch_device: str) -> None:
    """Families with a ``device`` attribute (torch) compute on ``torch_device``."""
    for fam in families:
        if hasattr(fam, "device") and fam.device != torch_device:
            fam.device = torch_device


def _prepare_runner(unit: WorkUnit, pool):
    """The architecture description and a loader of the unit's generator, through the
    model-source seam (:mod:`evalkit.inputs.sources`)."""
    from evalkit.inputs import sources
    opts = unit.source_options or sources.SourceOptions.of(unit)  # defaults, unit's size
    source = sources.prepare(unit.ref, pool, opts)
    return source.description, source.runner


def evaluate_unit(unit: WorkUnit, datasets: dict[str, Dataset], families: list, pool,
                  on_images: Callable[[int], None] | None = None) -> UnitResult:
    """Run one unit: load -> generate (or read cached outputs) -> metrics -> values.

    ``datasets``: every dataset of the run by name (only the unit's are used);
    ``families``: the run's metric families (the unit's ``todo`` names which to compute);
    ``pool``: a :class:`evalkit.inputs.models.runner.RunnerPool` (kept per process, so traced
    generators are reused across units); ``on_images``: progress callback (images done).
    Never touches the store. A checkpoint that cannot be read or does not fit ends the unit
    with ``error`` set, keeping the evaluations finished before it.
    """
    import evalkit
    from evalkit.execute import device as devices
    t0 = time.perf_counter()
    res = UnitResult(unit.ref.name, worker=f"{socket.gethostname()}:{os.getpid()}")
    if unit.evalkit_version != evalkit.__version__:
        res.version_mismatch = (f"worker {res.worker} has evalkit {evalkit.__version__}, the "
                                f"driver {unit.evalkit_version}: install the same evalkit "
                                "version on every node")
        return res
    tick = on_images or (lambda n: None)
    try:
        res.device = devices.configure(unit.device)
    except devices.DeviceError as exc:
        res.error = str(exc)
        return res
    _place_families(families, devices.torch_device(res.device))
    by_name = {f.name: f for f in families}
    out_dir = Path(unit.out_dir)
    cache = OutputCache(out_dir, clean=False) if unit.shared_fs else None
    cache_dir = out_dir / "cache" if unit.shared_fs else Path(tempfile.gettempdir()) / \
        "evalkit-worker-cache"
    from evalkit.execute.precision import cache_key

    clock = Clock(unit.timings)
    out_key = cache_key(unit.checkpoint_hash, unit.precision)  # bf16 never serves as fp32
    from evalkit.execute.racing.subsets import complete_outputs, raced_outputs

    try:
        res.architecture, make_runner = _prepare_runner(unit, pool)
        runner = None

        def generate_part(part: Dataset):
            """The generator (built on first use) on ``part``'s samples."""
            nonlocal runner
            if runner is None:
                with clock("build generator + load weights"):
                    runner = make_runner()
            return generate(runner, part, unit.batch_size, on_batch=tick,
                            timings=unit.timings)

        for ds_name, fam_names in unit.todo:
            ds = datasets[ds_name]
            with clock("png cache read"):
                cached = cache.load(out_key, ds) if cache else unit.cached.get(ds_name)
            rel = f"outputs/{out_key[:16]}/{ds.content_hash[:16]}"
            new = cached is None
            if new:
                # outputs a race generated on subsets of ds are reused (docs/racing.md);
                # the generator runs on the missing samples only
                have = raced_outputs(out_dir, out_key, ds) if unit.shared_fs else {}
                try:
                    outputs, raw_l1, _ = complete_outputs(ds, have, generate_part)
                except ValueError as exc:  # e.g. input channels the data cannot supply
                    raise CheckpointError(str(exc)) from exc
                tick(len(have))
                if cache:
                    with clock("png cache write"):
                        cache.save(out_key, ds, outputs, raw_l1)
            else:
                outputs, raw_l1 = cached
                tick(len(ds))
            fams = [by_name[n] for n in fam_names]
            ref_ds = datasets.get(unit.reference) if unit.reference else None
            ctx = MetricContext(dataset=ds, outputs=outputs, raw_l1=raw_l1,
                                checkpoint=unit.ref.name, checkpoint_hash=unit.checkpoint_hash,
                                cache_dir=cache_dir,
                                reference=ref_ds if ref_ds is not ds else None,
                                options={"feature_extractor": unit.feature_extractor})
            values = compute_metrics(fams, ctx, clock)
            for v in values:
                v.flags = {**v.flags, "device": res.device}
                if unit.precision != "fp32":
                    v.flags["precision"] = unit.precision
            race = ds.meta.get("race")
            if race:  # a racing round's subset: never to be mistaken for a full value
                for v in values:
                    v.flags.update(raced=True, full_n=race.get("full_n"),
                                   race_round=race.get("round"))
            partial = (None if len(fams) == unit.n_families
                       else [m for f in fams for m in f.metrics])
            ship = new and not cache
            res.evaluations.append(DatasetResult(
                ds_name, values, rel, partial,
                outputs=outputs if ship else None, raw_l1=raw_l1 if ship else None))
    except CheckpointError as exc:
        res.error = str(exc)
    res.seconds = time.perf_counter() - t0
    return res


class Executor(Protocol):
    """Runs units and yields their results as they finish (any order)."""

    name: str

    def run(self, units: list[WorkUnit], datasets: dict[str, Dataset], families: list,
            on_images: Callable[[int], None] | None = None) -> Iterator[UnitResult]: ...

    def close(self) -> None: ...


class InProcess:
    """Units one after another in this process (the default): the driver writes each
    result before the next unit starts, so a kill loses at most the unit in progress."""

    name = "inprocess"
    shared_fs = True

    def __init__(self) -> None:
        from evalkit.inputs.models.runner import RunnerPool

        self.pool = RunnerPool()

    def run(self, units: list[WorkUnit], datasets: dict[str, Dataset], families: list,
            on_images: Callable[[int], None] | None = None) -> Iterator[UnitResult]:
        for unit in units:
            yield evaluate_unit(unit, datasets, families, self.pool, on_images)

    def close(self) -> None:
        pass
