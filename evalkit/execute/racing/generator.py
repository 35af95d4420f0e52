"""A race's generator: outputs made incrementally, served from ``OUT`` where they exist."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from evalkit.execute.engine import RunOptions
from evalkit.execute.racing.subsets import RacedOutputs, gather, raced_outputs, subset
from evalkit.inputs.checkpoints.discover import CheckpointRef
from evalkit.inputs.data.dataset import Dataset


class RaceGenerator:
    """Generates served outputs incrementally (per checkpoint and sample id, in memory)
    and hands them to an engine through its output cache. Before generating anything for
    a (checkpoint, dataset) it looks in ``OUT``: full-data outputs in the run's cache, then
    outputs of earlier races (:func:`raced_outputs`); those are served, not generated."""

    def __init__(self, out_dir: Path) -> None:
        from evalkit.inputs.models.runner import RunnerPool

        self.out_dir = out_dir
        self.pool = RunnerPool()
        # outputs per (checkpoint key, dataset): rows stay where they were made (on disk
        # when large, evalkit.inputs.data.samples), so a race's memory does not grow with the data
        self.memo: dict[tuple[str, str], RacedOutputs] = {}
        self.complete: set[tuple[str, str]] = set()  # full outputs already in OUT's cache
        self.generated: dict[str, int] = {}  # precision -> images generated
        self.earlier: dict[tuple[str, str], set[str]] = {}  # found in OUT before the race
        self.served: dict[tuple[str, str], set[str]] = {}  # ... and served by the race
        self.problems: dict[str, str] = {}  # checkpoint -> why it could not race

    @property
    def reused(self) -> int:
        """Images served from outputs that were in ``OUT`` before this race."""
        return sum(len(s) for s in self.served.values())

    def _outputs(self, key: str, parent: Dataset) -> RacedOutputs:
        from evalkit.execute.generate import OutputCache

        if (key, parent.content_hash) in self.memo:
            return self.memo[(key, parent.content_hash)]
        have = RacedOutputs()
        full = OutputCache(self.out_dir, log=lambda s: None, clean=False).load(key, parent)
        if full is not None:
            outs, raw = full
            for j, sid in enumerate(parent.ids):
                have.add(sid, outs, j, np.nan if raw is None else float(raw[j]))
            self.complete.add((key, parent.content_hash))
        else:
            have = raced_outputs(self.out_dir, key, parent, log=lambda s: None)
        self.memo[(key, parent.content_hash)] = have
        self.earlier[(key, parent.content_hash)] = set(have)
        return have

    def forget(self, ref: CheckpointRef, precision: str) -> None:
        """Drop a raced-out checkpoint's outputs from memory (they stay in the scratch
        cache, for :func:`raced_outputs`)."""
        from evalkit.execute.precision import cache_key

        try:
            key = cache_key(ref.content_hash(), precision)
        except OSError:
            return
        for mk in [mk for mk in self.memo if mk[0] == key]:
            del self.memo[mk]

    def has_all(self, ref: CheckpointRef, datasets: list[Dataset], precision: str) -> bool:
        """Whether ``OUT`` holds ``ref``'s outputs on every sample of ``datasets`` (at this
        precision), so that it can take part in the rounds without a generator pass."""
        from evalkit.execute.precision import cache_key

        try:
            key = cache_key(ref.content_hash(), precision)
        except OSError:
            return False
        return all(set(self._outputs(key, d)) >= set(d.ids) for d in datasets)

    def prepare(self, ref: CheckpointRef, parts: list[tuple[Dataset, Dataset]],
                cache_dir: Path, options: RunOptions) -> bool:
        """Put ``ref``'s outputs on each ``(subset, parent)`` into ``cache_dir``'s output
        cache, running the generator only on samples it has no output for. False when the
        checkpoint cannot be used (the engine then records why)."""
        from evalkit.execute.generate import OutputCache, generate
        from evalkit.execute.precision import cache_key
        from evalkit.inputs import sources

        if ref.problem:
            self.problems[ref.name] = str(ref.problem)
            return False
        try:
            key = cache_key(ref.content_hash(), options.precision)
            cache = OutputCache(cache_dir, log=lambda s: None)
            runner = None
            for ds, parent in parts:
                have = self._outputs(key, parent)
                mk = (key, parent.content_hash)
                need = [i for i, sid in enumerate(ds.ids) if sid not in have]
                if not need and cache_dir == self.out_dir and mk in self.complete:
                    continue  # already cached in OUT, in full: the engine reuses it
                self.served.setdefault(mk, set()).update(set(ds.ids) & self.earlier[mk])
                if need:
                    if runner is None:
                        runner = sources.prepare(ref, self.pool, options).runner()
                    part = subset(ds, len(need), np.array(need), 0) if len(need) < len(ds) \
                        else ds
                    outs, raw = generate(runner, part, options.batch_size,
                                         timings=options.timings)
                    self.generated[options.precision] = (
                        self.generated.get(options.precision, 0) + len(part))
                    for j, sid in enumerate(part.ids):
                        have.add(sid, outs, j, np.nan if raw is None else float(raw[j]))
                cache.save(key, ds, *gather(ds, have.__getitem__))
        except Exception as exc:  # noqa: BLE001 -- the engine re-tries and records the reason
            self.problems[ref.name] = f"{type(exc).__name__}: {exc}"
            return False
        return True
