"""Racing selection: choose the deployment checkpoint at a fraction of the compute.

``evalkit run --race`` (or ``[run] race = true``). Per domain, every checkpoint is first
evaluated on a seeded subset of each of the domain's datasets (``start_fraction`` of its
samples, at least ``min_samples``); then, round after round, the checkpoints whose chance
of being the final choice is below ``threshold`` are *raced out* and the subset is doubled
for the others, until the leaders have the full data. The chance of being the final choice
is the ranking's own paired-bootstrap ``p_first`` (:func:`evalkit.ranking.rank_checkpoints`
on the round's results, the same rule and bootstrap as the final selection).

Where the values go, so that raced values are never mixed up with full ones:

* each round is a normal engine run (:func:`evalkit.engine.evaluate_domains`) on subset
  datasets into a scratch folder ``OUT/race/<domain>/``; the subsets have their own content
  hash and ``meta["race"]``, so every value stored there has its real ``n`` and the flags
  ``raced: true``, ``full_n`` and ``race_round``;
* the leaders are finished with a normal full evaluation in ``OUT`` (full values, as any run);
* the raced-out checkpoints are recorded in ``OUT`` with status ``raced`` and the evidence
  (round, samples, chance of being chosen) as their reason: the ranking, selection, report
  and gate list them as excluded with that reason, never silently dropped. A later run
  without ``--race`` evaluates them fully (their status is not ``ok``).

With ``--precision bf16`` the rounds run the generator in bfloat16 (values flagged
``precision: bf16`` in the scratch store) and the leaders are always finished in fp32.

Generation is incremental: a sample generated for a checkpoint in one round is kept (in
memory) and not generated again in the next; the outputs are handed to the engine through
its output cache, so the engine itself generates nothing. Generator compute is counted in
images (:attr:`RaceResult.generated` vs :attr:`RaceResult.full_cost`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import sys
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from evalkit.checkpoints.discover import CheckpointRef
from evalkit.data.dataset import Dataset
from evalkit.engine import RunOptions, RunSummary, evaluate_domains

DEFAULT_THRESHOLD = 0.01
DEFAULT_START_FRACTION = 1 / 8
DEFAULT_MIN_SAMPLES = 4
SCRATCH = "race"


@dataclass
class RaceSettings:
    """How a race runs.

    Attributes:
        threshold: a checkpoint whose chance of being the final choice (bootstrap
            ``p_first``, in [0, 1]) is below this is raced out.
        start_fraction: share of each dataset's samples in the first round, (0, 1].
        min_samples: fewest samples of a dataset in any round.
        seed: seeds the subsets (one permutation per dataset, nested prefixes).
        ranking_config: the ranking rule (``None``: evalkit's defaults).
    """

    threshold: float = DEFAULT_THRESHOLD
    start_fraction: float = DEFAULT_START_FRACTION
    min_samples: int = DEFAULT_MIN_SAMPLES
    seed: int = 0
    ranking_config: object | None = None


@dataclass
class RoundInfo:
    """One round of one domain: sample counts, each checkpoint's chance, who left."""

    domain: str
    round: int
    samples: dict[str, int]  # dataset name -> samples this round
    p_first: dict[str, float]  # checkpoint -> chance of being the final choice
    raced_out: list[str] = field(default_factory=list)


@dataclass
class RaceResult:
    """A race's outcome: the final engine summary plus the race's own record."""

    summary: RunSummary
    rounds: list[RoundInfo] = field(default_factory=list)
    raced_out: dict[str, str] = field(default_factory=dict)  # checkpoint -> evidence
    generated: int = 0  # generator forward passes actually run (images)
    generated_by_precision: dict[str, int] = field(default_factory=dict)
    full_cost: int = 0  # what a full evaluation of every checkpoint would generate

    @property
    def saved(self) -> float:
        """Generator compute of a full evaluation / this race's (x)."""
        return self.full_cost / self.generated if self.generated else math.inf


def subset(ds: Dataset, n: int, order: np.ndarray, round_no: int) -> Dataset:
    """The first ``n`` samples of ``order`` (kept in the dataset's own order), as a
    Dataset with its own content hash and ``meta["race"]``; the whole dataset when
    ``n >= len(ds)``."""
    if n >= len(ds):
        return ds
    idx = np.sort(order[:n])
    ids = [ds.ids[i] for i in idx]
    digest = hashlib.sha256(f"{ds.content_hash}:race:".encode()
                            + "\0".join(ids).encode()).hexdigest()
    return dataclasses.replace(
        ds, ids=ids, inputs=ds.inputs[idx],
        targets=None if ds.targets is None else ds.targets[idx],
        target_mask=None if ds.target_mask is None else ds.target_mask[idx],
        content_hash=digest,
        meta={**ds.meta, "race": {"round": round_no, "n": n, "full_n": len(ds)}})


class _Generator:
    """Generates served outputs incrementally (per checkpoint and sample id, in memory)
    and hands them to an engine through its output cache."""

    def __init__(self) -> None:
        from evalkit.generate import RunnerPool

        self.pool = RunnerPool()
        self.memo: dict[tuple[str, str, str], dict[str, tuple[np.ndarray, float]]] = {}
        self.generated: dict[str, int] = {}  # precision -> images generated

    def prepare(self, ref: CheckpointRef, datasets: list[Dataset], out_dir: Path,
                options: RunOptions) -> bool:
        """Put ``ref``'s outputs on ``datasets`` into ``out_dir``'s output cache, running
        the generator only on samples not generated before. False when the checkpoint
        cannot be used (the engine then records why)."""
        from evalkit import sources
        from evalkit.generate import OutputCache, generate

        if ref.problem:
            return False
        try:
            from evalkit.precision import cache_key

            ckpt_hash = cache_key(ref.content_hash(), options.precision)
            cache = OutputCache(out_dir, log=lambda s: None)
            runner = None
            for ds in datasets:
                have = self.memo.setdefault((options.precision, ref.name, ds.name), {})
                need = [i for i, sid in enumerate(ds.ids) if sid not in have]
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
                        have[sid] = (outs[j], np.nan if raw is None else float(raw[j]))
                outputs = np.stack([have[sid][0] for sid in ds.ids])
                raw_l1 = None if ds.targets is None else \
                    np.array([have[sid][1] for sid in ds.ids])
                cache.save(ckpt_hash, ds, outputs, raw_l1)
        except Exception:  # noqa: BLE001 -- the engine re-tries and records the reason
            return False
        return True


def race_domains(plans: list, out_dir: str | Path, options: RunOptions | None = None,
                 settings: RaceSettings | None = None, argv: list[str] | None = None,
                 families: list | None = None,
                 log: Callable[[str], None] = lambda s: print(s, file=sys.stderr),
                 ) -> RaceResult:
    """Race each domain's checkpoints (see the module docstring); returns the final
    engine summary (full evaluation of the leaders, in ``out_dir``) and the race record."""
    from evalkit.domains import DomainPlan
    from evalkit.engine import CheckpointOutcome, UsageError
    from evalkit.precision import check_precision
    from evalkit.ranking import RankingConfig, rank_checkpoints
    from evalkit.store import Store

    options = options or RunOptions()
    settings = settings or RaceSettings()
    try:
        check_precision(options.precision)
    except ValueError as exc:
        raise UsageError(str(exc)) from exc
    config = settings.ranking_config or RankingConfig()
    out_dir = Path(out_dir)
    quiet = dataclasses.replace(options, progress=False)  # rounds: bf16 if asked
    final_opts = dataclasses.replace(options, precision="fp32")  # leaders: always fp32
    gen = _Generator()
    result = RaceResult(summary=RunSummary(out_dir=out_dir))
    finals: list = []
    raced_refs: list[tuple[CheckpointRef, str, str]] = []  # (ref, domain, evidence)
    for plan in plans:
        result.full_cost += len(plan.refs) * sum(len(d) for d in plan.datasets)
        if not plan.datasets or len(plan.refs) < 2:
            finals.append(plan)
            continue
        scratch = out_dir / SCRATCH / (plan.domain or "run")
        orders = {d.name: np.random.default_rng([settings.seed, zlib.crc32(d.name.encode())])
                  .permutation(len(d)) for d in plan.datasets}
        alive = list(plan.refs)
        broken: list[CheckpointRef] = []
        frac, round_no = settings.start_fraction, 0
        while frac < 1 and len(alive) > 1:
            subs = [subset(d, min(len(d), max(settings.min_samples, math.ceil(len(d) * frac))),
                           orders[d.name], round_no) for d in plan.datasets]
            if all(s is d for s, d in zip(subs, plan.datasets, strict=True)):
                break  # the subsets are the whole data already: finish in full
            usable = [r for r in alive if gen.prepare(r, subs, scratch, quiet)]
            broken += [r for r in alive if r not in usable]
            alive = usable
            if len(alive) < 2:
                break
            rplan = DomainPlan(plan.domain, plan.run_dir, alive, datasets=subs)
            evaluate_domains([rplan], scratch, quiet, argv, families, log=lambda s: None)
            with Store(scratch) as store:
                names = {r.name for r in alive}
                ck = store.checkpoints()
                ranking = rank_checkpoints(store.results(), ck[ck["name"].isin(names)],
                                           store.sample_metrics(), config)
            table = ranking.participants
            p = {str(r.checkpoint): float(r.p_first) if r.p_first == r.p_first else 0.0
                 for r in table.itertuples()}
            info = RoundInfo(plan.domain, round_no, {s.name: len(s) for s in subs}, p)
            best = max(p, key=lambda k: p[k]) if p else None
            if not ranking.bootstrap:  # nothing counted or resampled: no evidence to race on
                log(f"race {plan.domain or 'run'}: no bootstrap evidence in round "
                    f"{round_no + 1} (no counted metric): every checkpoint is finished in full")
                result.rounds.append(info)
                break
            for r in list(alive):
                chance = p.get(r.name, 0.0)
                if r.name != best and chance < settings.threshold:
                    sizes = ", ".join(f"{s.name} {len(s)}/{len(d)}"
                                      for s, d in zip(subs, plan.datasets, strict=True))
                    evidence = (f"raced out in round {round_no + 1} on {sizes} samples: "
                                f"chance of being the final choice {chance:.1%} < "
                                f"{settings.threshold:.0%} (paired bootstrap, "
                                f"{ranking.bootstrap} resamples; raced values in "
                                f"{scratch.relative_to(out_dir)})")
                    raced_refs.append((r, plan.domain, evidence))
                    result.raced_out[r.name] = evidence
                    info.raced_out.append(r.name)
                    alive.remove(r)
            result.rounds.append(info)
            log(f"race {plan.domain or 'run'} round {round_no + 1}: "
                f"{', '.join(f'{k} {v}' for k, v in info.samples.items())} samples; "
                f"{len(info.raced_out)} raced out, {len(alive)} left")
            frac *= 2
            round_no += 1
        for r in alive:  # the leaders: full data (generated incrementally, then cached)
            gen.prepare(r, plan.datasets, out_dir, final_opts)
        finals.append(dataclasses.replace(plan, refs=alive + broken))
    result.summary = evaluate_domains(finals, out_dir, final_opts, argv, families, log)
    with Store(out_dir) as store:
        for ref, domain, evidence in raced_refs:
            try:
                ckpt_hash = ref.content_hash()
            except OSError:
                ckpt_hash = None
            store.put_checkpoint(ref.name, ref.step, ckpt_hash, str(ref.prefix), "raced",
                                 error=evidence, domain=domain)
            result.summary.checkpoints.append(
                CheckpointOutcome(ref.name, ref.step, "raced", evidence))
    result.generated = sum(gen.generated.values())
    result.generated_by_precision = dict(gen.generated)
    return result
