"""The race driver: rounds on growing subsets, then the leaders in full (docs/racing.md)."""

from __future__ import annotations

import dataclasses
import math
import sys
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from evalkit.execute.engine import RunOptions, RunSummary, evaluate_domains
from evalkit.execute.racing.generator import RaceGenerator
from evalkit.execute.racing.subsets import SCRATCH, subset
from evalkit.inputs.checkpoints.discover import CheckpointRef
from evalkit.inputs.data.dataset import Dataset

DEFAULT_THRESHOLD = 0.01
DEFAULT_START_FRACTION = 1 / 8
DEFAULT_MIN_SAMPLES = 4
DEFAULT_GROWTH = 2 ** 0.5  # more looks at no generator cost: generation is incremental


@dataclass
class RaceSettings:
    """How a race runs.

    Attributes:
        threshold: a checkpoint whose chance of being the final choice (bootstrap
            ``p_first``, in [0, 1]) and chance of being in the Smith set (``p_smith``)
            are both below this is raced out (:func:`losers`).
        start_fraction: share of each dataset's samples in the first round, (0, 1].
        min_samples: fewest samples of a dataset in any round.
        growth: factor (> 1) by which the subsets grow from one round to the next.
        finite_population: the chance is that of being chosen on the *full* data, of which
            the round has seen a part (:mod:`evalkit.execute.racing.evidence`); False: the plain
            bootstrap of the seen samples (more conservative, fewer raced out).
        seed: seeds the subsets (one permutation per dataset, nested prefixes).
        ranking_config: the ranking rule (``None``: evalkit's defaults).
    """

    threshold: float = DEFAULT_THRESHOLD
    start_fraction: float = DEFAULT_START_FRACTION
    min_samples: int = DEFAULT_MIN_SAMPLES
    growth: float = DEFAULT_GROWTH
    finite_population: bool = True
    seed: int = 0
    ranking_config: object | None = None

    def sizes(self, full_n: int) -> list[int]:
        """Samples of a dataset of ``full_n`` in each round (round ``r``: ``ceil(full_n *
        start_fraction * growth^r)``, at least ``min_samples``), the last one ``full_n``."""
        if not 0 < self.start_fraction <= 1 or self.growth <= 1:
            raise ValueError(f"race start fraction must be in (0, 1] (got "
                             f"{self.start_fraction}) and growth > 1 (got {self.growth})")
        out, frac = [], self.start_fraction
        while True:
            out.append(min(full_n, max(self.min_samples, math.ceil(full_n * frac))))
            n = out[-1]
            if n >= full_n:
                return out
            frac *= self.growth


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
    """A race's outcome: the final engine summary plus the race's own record.

    Generator compute is counted in images (checkpoint x sample forward passes):
    ``generated`` were run by this race; ``reused`` were served from outputs already in
    ``OUT`` (a checkpoint's full-data outputs, or an earlier race's); ``full_cost`` is what
    a full evaluation would generate, i.e. every checkpoint on every sample except the
    (checkpoint, dataset) outputs already cached in full in ``OUT``.
    """

    summary: RunSummary
    rounds: list[RoundInfo] = field(default_factory=list)
    raced_out: dict[str, str] = field(default_factory=dict)  # checkpoint -> evidence
    settled: list[str] = field(default_factory=list)  # fully evaluated before: not raced
    generated: int = 0
    generated_by_precision: dict[str, int] = field(default_factory=dict)
    reused: int = 0
    full_cost: int = 0

    @property
    def saved(self) -> float:
        """Generator compute of a full evaluation / this race's (x)."""
        return self.full_cost / self.generated if self.generated else math.inf


def _settled(plan, out_dir: Path, options: RunOptions, families: list | None) -> list[str]:
    """Checkpoints of ``plan`` already evaluated in full in ``OUT`` with the current
    settings (status ``ok``, every dataset's evaluation current: what the engine would
    reuse without computing anything). They are never raced out."""
    from evalkit.execute.engine import _families_to_compute, _signature, default_families
    from evalkit.store.results import DB_NAME, Store

    if not (out_dir / DB_NAME).exists():
        return []
    fams = families if families is not None else default_families(options)
    signature = _signature(fams, "fp32")
    out = []
    with Store(out_dir, create=False) as store:
        for ref in plan.refs:
            if ref.problem or store.checkpoint_status(ref.name) != "ok":
                continue
            try:
                ckpt_hash = ref.content_hash()
            except OSError:
                continue
            if all(not _families_to_compute(store.evaluation(ref.name, ds.name), ckpt_hash,
                                            ds, fams, signature) for ds in plan.datasets):
                out.append(ref.name)
    return out


def _full_cost(plan, out_dir: Path, settled: list[str]) -> int:
    """Images a full evaluation of ``plan`` would generate: every checkpoint on every
    sample, except the settled checkpoints (a full run reuses their stored values) and
    (checkpoint, dataset) outputs cached in full in ``OUT``."""
    from evalkit.execute.generate import MANIFEST, OutputCache
    from evalkit.execute.precision import cache_key

    cache = OutputCache(out_dir, log=lambda s: None, clean=False)
    total = 0
    for ref in plan.refs:
        if ref.name in settled:
            continue
        try:
            key = None if ref.problem else cache_key(ref.content_hash(), "fp32")
        except OSError:
            key = None
        for ds in plan.datasets:
            cached = key is not None and (cache.folder(key, ds.content_hash) / MANIFEST
                                          ).exists()
            total += 0 if cached else len(ds)
    return total


def _round_chances(scratch: Path, alive: list[CheckpointRef], datasets: list[Dataset],
                   settings: RaceSettings, config):
    """The round's ranking among ``alive`` (with the finite-population correction when
    asked) and each one's chance of being the final choice."""
    from evalkit.decide.ranking.rank import rank_checkpoints
    from evalkit.execute.racing.evidence import finite_population
    from evalkit.store.results import Store

    names = {r.name for r in alive}
    with Store(scratch) as store:
        ck = store.checkpoints()
        results = store.results()
        samples = store.sample_metrics()
    results = results[results["checkpoint"].isin(names)]
    samples = samples[samples["checkpoint"].isin(names)]
    if settings.finite_population:
        results, samples = finite_population(results, samples,
                                             {d.name: len(d) for d in datasets})
    ranking = rank_checkpoints(results, ck[ck["name"].isin(names)], samples, config)
    p = {str(r.checkpoint): float(r.p_first) if r.p_first == r.p_first else 0.0
         for r in ranking.participants.itertuples()}
    return ranking, p


def losers(ranking, p: dict[str, float], threshold: float, settled: list[str]
           ) -> dict[str, tuple[float, float]]:
    """The checkpoints a round races out, each with ``(p_first, p_smith)``.

    A checkpoint leaves only when both its chance of coming first and its chance of being
    in the Smith set (the top group, whose every member beats each outsider head to head)
    are below ``threshold``, over the round's bootstrap. Outside the Smith set, every
    remaining leader beats it head to head, and Schulze's order is
    independent of Smith-dominated alternatives, so its absence cannot change the winner
    (a low ``p_first`` alone can: a weak checkpoint in a cycle carries the chain by which
    the full run's pick wins). The round's most likely winner and settled checkpoints
    never leave."""
    best = max(p, key=lambda k: p[k]) if p else None
    smith = {str(r.checkpoint): float(r.p_smith) if r.p_smith == r.p_smith else 1.0
             for r in ranking.participants.itertuples()}
    out = {}
    for name, chance in p.items():
        if name == best or name in settled:
            continue
        s = smith.get(name, 1.0)
        if chance < threshold and s < threshold:
            out[name] = (chance, s)
    return out


def race_domains(plans: list, out_dir: str | Path, options: RunOptions | None = None,
                 settings: RaceSettings | None = None, argv: list[str] | None = None,
                 families: list | None = None,
                 log: Callable[[str], None] = lambda s: print(s, file=sys.stderr),
                 ) -> RaceResult:
    """Race each domain's checkpoints (docs/racing.md); returns the final engine summary
    (full evaluation of the leaders, in ``out_dir``) and the race record."""
    from evalkit.decide.ranking.rank import RankingConfig
    from evalkit.execute.engine import CheckpointOutcome, UsageError
    from evalkit.execute.precision import check_precision
    from evalkit.store.results import Store

    options = options or RunOptions()
    settings = settings or RaceSettings()
    try:
        check_precision(options.precision)
        settings.sizes(1)
    except ValueError as exc:
        raise UsageError(str(exc)) from exc
    config = settings.ranking_config or RankingConfig()
    out_dir = Path(out_dir)
    quiet = dataclasses.replace(options, progress=False)  # rounds: bf16 if asked
    final_opts = dataclasses.replace(options, precision="fp32")  # leaders: always fp32
    gen = RaceGenerator(out_dir)
    result = RaceResult(summary=RunSummary(out_dir=out_dir))
    finals: list = []
    raced_refs: list[tuple[CheckpointRef, str, str]] = []  # (ref, domain, evidence)
    for plan in plans:
        settled = _settled(plan, out_dir, final_opts, families)
        result.settled += settled
        result.full_cost += _full_cost(plan, out_dir, settled)
        # settled checkpoints race (as yardsticks) only when their outputs are all in OUT
        # at the rounds' precision; otherwise they go straight to the final evaluation
        held = [r for r in plan.refs if r.name in settled
                and not gen.has_all(r, plan.datasets, quiet.precision)]
        racers = [r for r in plan.refs if r not in held]
        if not plan.datasets or len(racers) < 2:
            finals.append(plan)
            continue
        alive, broken = _race_plan(dataclasses.replace(plan, refs=racers), out_dir,
                                   settings, config, settled, gen, quiet, argv, families,
                                   log, result, raced_refs)
        for r in alive:  # the leaders: full data (generated incrementally, then cached)
            gen.prepare(r, [(d, d) for d in plan.datasets], out_dir, final_opts)
        keep = {r.name for r in alive + broken + held}
        finals.append(dataclasses.replace(plan, refs=[r for r in plan.refs
                                                      if r.name in keep]))
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
    result.reused = gen.reused
    return result


def _race_plan(plan, out_dir: Path, settings: RaceSettings, config, settled: list[str],
               gen: RaceGenerator, quiet: RunOptions, argv, families, log,
               result: RaceResult, raced_refs: list
               ) -> tuple[list[CheckpointRef], list[CheckpointRef]]:
    """The rounds of one domain; returns (leaders, checkpoints that could not be used)."""
    from evalkit.execute.domains import DomainPlan

    scratch = out_dir / SCRATCH / (plan.domain or "run")
    orders = {d.name: np.random.default_rng([settings.seed, zlib.crc32(d.name.encode())])
              .permutation(len(d)) for d in plan.datasets}
    schedule = {d.name: settings.sizes(len(d)) for d in plan.datasets}
    alive = list(plan.refs)
    broken: list[CheckpointRef] = []
    round_no = 0
    while len(alive) > 1:
        subs = [subset(d, schedule[d.name][min(round_no, len(schedule[d.name]) - 1)],
                       orders[d.name], round_no) for d in plan.datasets]
        if all(s is d for s, d in zip(subs, plan.datasets, strict=True)):
            break  # the subsets are the whole data: the leaders are finished in full
        parts = list(zip(subs, plan.datasets, strict=True))
        usable = [r for r in alive if gen.prepare(r, parts, scratch, quiet)]
        for r in alive:
            if r not in usable:
                broken.append(r)
                log(f"race {plan.domain or 'run'}: {r.name} cannot take part in round "
                    f"{round_no + 1} ({gen.problems.get(r.name, 'no reason given')}); it is "
                    "evaluated in full, where its error is recorded")
        alive = usable
        if len(alive) < 2:
            break
        rplan = DomainPlan(plan.domain, plan.run_dir, alive, datasets=subs)
        evaluate_domains([rplan], scratch, quiet, argv, families, log=lambda s: None)
        ranking, p = _round_chances(scratch, alive, plan.datasets, settings, config)
        info = RoundInfo(plan.domain, round_no, {s.name: len(s) for s in subs}, p)
        result.rounds.append(info)
        if not ranking.bootstrap:  # nothing counted or resampled: no evidence to race on
            log(f"race {plan.domain or 'run'}: no bootstrap evidence in round "
                f"{round_no + 1} (no counted metric): every checkpoint is finished in full")
            break
        out_now = losers(ranking, p, settings.threshold, settled)
        for r in list(alive):
            if r.name not in out_now:
                continue
            chance, smith = out_now[r.name]
            sizes = ", ".join(f"{s.name} {len(s)}/{len(d)}"
                              for s, d in zip(subs, plan.datasets, strict=True))
            fpc = ", finite-population corrected" if settings.finite_population else ""
            evidence = (f"raced out in round {round_no + 1} on {sizes} samples: "
                        f"chance of being the final choice {chance:.1%} and of being in "
                        f"the top group (Smith set) {smith:.1%}, both < "
                        f"{settings.threshold:.0%} (paired bootstrap, "
                        f"{ranking.bootstrap} resamples{fpc}; raced values in "
                        f"{scratch.relative_to(out_dir)})")
            raced_refs.append((r, plan.domain, evidence))
            result.raced_out[r.name] = evidence
            info.raced_out.append(r.name)
            alive.remove(r)
            gen.forget(r, quiet.precision)
        log(f"race {plan.domain or 'run'} round {round_no + 1}: "
            f"{', '.join(f'{k} {v}' for k, v in info.samples.items())} samples; "
            f"{len(info.raced_out)} raced out, {len(alive)} left")
        round_no += 1
    return alive, broken
