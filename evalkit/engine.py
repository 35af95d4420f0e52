"""checkpoint x dataset -> served outputs -> metric families -> results store.

The one place where the pipeline's steps meet. For every checkpoint of a run folder, in
step order, and every dataset: reuse the stored evaluation if its checkpoint and dataset
hashes (and metric settings) still match -- recomputing only a family whose settings
changed or that was skipped for missing weights that are now there; otherwise reuse cached
outputs if any, else load the weights and generate once; then run the metric families on
the served outputs and store the evaluation in one transaction. A checkpoint that cannot be read or does not fit
is recorded as failed with a one-line reason, and the run goes on.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from evalkit import sources
from evalkit.checkpoints.discover import CheckpointRef
from evalkit.checkpoints.load import CheckpointError
from evalkit.data.dataset import Dataset
from evalkit.generate import OutputCache, RunnerPool, generate
from evalkit.metrics.base import FAILED, MetricContext, MetricValue
from evalkit.precision import cache_key
from evalkit.store import Store


class UsageError(ValueError):
    """Bad arguments or unusable inputs (exit code 2); the message says what to fix."""


@dataclass
class RunOptions:
    """Settings of one evaluation run."""

    image_size: int = 256
    batch_size: int = 4  # fastest measured on 2 cores (reports/benchmarks.md)
    limit: int | None = None
    feature_extractor: Path | None = None
    domain: str | None = None
    progress: bool = True
    net_g: str | None = None  # pix2pix --netG (None: inferred from the weights)
    norm: str | None = None  # pix2pix --norm (None: inferred from the weights)
    contract: str | None = None  # input contract (None: each model kind's default)
    #: generator precision: "fp32" or "bf16" screening (evalkit.precision)
    precision: str = "fp32"
    #: when a dict, seconds spent per stage are added to it (``generator``, ``load weights``,
    #: ``png cache write``/``read``, ``metric:<family>``, ``store``): benchmarks/bench_run.py
    timings: dict[str, float] | None = None


class _Clock:
    """Adds the seconds of a ``with`` block to ``timings[stage]`` (no-op without a dict)."""

    def __init__(self, timings: dict[str, float] | None):
        self.timings = timings

    def __call__(self, stage: str) -> _Clock:
        self.stage = stage
        return self

    def __enter__(self) -> None:
        self.t0 = time.perf_counter()

    def __exit__(self, *exc) -> None:
        if self.timings is not None:
            self.timings[self.stage] = (self.timings.get(self.stage, 0.0)
                                        + time.perf_counter() - self.t0)


@dataclass
class CheckpointOutcome:
    name: str
    step: int
    status: str  # "evaluated", "cached" (all from the store) or "failed"
    error: str | None = None
    seconds: float = 0.0


@dataclass
class RunSummary:
    out_dir: Path
    checkpoints: list[CheckpointOutcome] = field(default_factory=list)
    datasets: list[Dataset] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def failed(self) -> list[CheckpointOutcome]:
        return [c for c in self.checkpoints if c.status == "failed"]

    @property
    def exit_code(self) -> int:
        return 1 if self.failed else 0


def default_families(options: RunOptions) -> list:
    """The metric families every run computes, in order."""
    from evalkit.metrics.paired import PairedMetrics

    families: list = [PairedMetrics()]
    try:
        from evalkit.metrics.distribution import DistributionMetrics
        families.append(DistributionMetrics(feature_extractor=options.feature_extractor))
    except ImportError:
        pass
    try:
        from evalkit.metrics.lpips import LpipsMetric
        families.append(LpipsMetric())
    except ImportError:
        pass
    try:
        from evalkit.metrics.adherence import AdherenceMetrics
        families.append(AdherenceMetrics())
    except ImportError:
        pass
    return families


def _signature(families: list, precision: str = "fp32") -> str:
    """What the metric settings were, so that changed settings trigger recomputation.
    A non-fp32 generator precision is part of every family's setting (never mixed)."""
    sig = {}
    for f in families:
        get = getattr(f, "signature", None)
        sig[f.name] = get() if callable(get) else list(f.metrics)
        if precision != "fp32":
            sig[f.name] = {"settings": sig[f.name], "precision": precision}
    return json.dumps(sig, sort_keys=True, default=str)


def _families_to_compute(ev: dict | None, ckpt_hash: str, ds: Dataset, families: list,
                         signature: str) -> list:
    """The metric families to (re)compute for one (checkpoint, dataset); [] = complete.

    All of them when there is no current evaluation of these checkpoint and dataset hashes.
    Otherwise only the families whose settings changed, whose metrics are missing, or that
    were skipped for a reason that may go away (flag ``retryable``, e.g. missing weights)
    AND whose cause is gone now (``family.available()``): a skip whose cause remains is
    final for this re-run, so an unchanged offline re-run computes nothing.
    """
    if ev is None or ev["checkpoint_hash"] != ckpt_hash or ev["dataset_hash"] != ds.content_hash:
        return list(families)
    try:
        stored = json.loads(ev["signature"] or "{}")
    except ValueError:
        stored = {}
    current = json.loads(signature)
    todo = []
    for fam in families:
        if stored.get(fam.name) != current.get(fam.name):
            todo.append(fam)
        elif not set(fam.metrics) <= set(ev["metrics"]):
            todo.append(fam)
        elif any(m in ev["retryable"] for m in fam.metrics) and _now_available(fam):
            todo.append(fam)
    return todo


def _now_available(family) -> bool:
    """Can a family skipped for missing weights succeed now? (its ``available()`` hook;
    a family without one is not retried until its settings change)."""
    check = getattr(family, "available", None)
    if not callable(check):
        return False
    try:
        return bool(check())
    except Exception:  # a broken check means: not available
        return False


def _compute_metrics(families: list, ctx: MetricContext,
                     clock: _Clock | None = None) -> list[MetricValue]:
    values: list[MetricValue] = []
    clock = clock or _Clock(None)
    for fam in families:
        try:
            with clock(f"metric:{fam.name}"):
                values.extend(fam.compute(ctx))
        except Exception as exc:  # a metric bug must not sink the run; it is recorded
            reason = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
            values.extend(MetricValue(metric=m, value=None, n=0, status=FAILED, reason=reason)
                          for m in fam.metrics)
    return values


def evaluate_run(run_dir: str | Path, out_dir: str | Path, datasets: list[Dataset],
                 options: RunOptions | None = None, argv: list[str] | None = None,
                 families: list | None = None,
                 log: Callable[[str], None] = lambda s: print(s, file=sys.stderr),
                 ) -> RunSummary:
    """Evaluate every checkpoint under ``run_dir`` (one domain) on ``datasets``.

    The domain is that of the datasets (they must agree); checkpoint names carry it. See
    :func:`evaluate_domains` for runs of several domains.
    """
    from evalkit.domains import DomainPlan

    run_dir, out_dir = Path(run_dir), Path(out_dir)
    if not run_dir.is_dir():
        raise UsageError(f"run folder {run_dir} does not exist")
    domains = {d.domain for d in datasets}
    if len(domains) > 1:
        raise UsageError(f"datasets of several domains ({', '.join(sorted(domains))}) given "
                         "for one run folder: evaluate each domain on its own data "
                         "(evalkit.domains.plan_domains)")
    domain = domains.pop() if domains else ""
    try:
        refs = sources.discover(run_dir, exclude=[out_dir], options=options)
    except sources.ContractError as exc:
        raise UsageError(str(exc)) from exc
    if domain:
        import dataclasses
        refs = [dataclasses.replace(r, name=f"{domain}/{r.name}") for r in refs]
    plan = DomainPlan(domain, run_dir, refs, datasets=list(datasets))
    return evaluate_domains([plan], out_dir, options, argv, families, log)


def evaluate_domains(plans: list, out_dir: str | Path, options: RunOptions | None = None,
                     argv: list[str] | None = None, families: list | None = None,
                     log: Callable[[str], None] = lambda s: print(s, file=sys.stderr),
                     ) -> RunSummary:
    """Evaluate each domain's checkpoints on that domain's datasets only; results in
    ``out_dir``.

    ``plans`` are :class:`evalkit.domains.DomainPlan` with their datasets loaded. Within a
    domain, its held-out dataset serves as the reference ("real" photos) for distribution
    metrics on its datasets without targets (the hand-drawn track): a domain's sketches are
    never compared with another domain's photos.
    """
    from tqdm import tqdm

    options = options or RunOptions()
    out_dir = Path(out_dir)
    plans = [p for p in plans if p.refs or p.datasets]
    if not any(p.datasets for p in plans):
        raise UsageError("no dataset to evaluate on: pass --heldout DIR and/or --sketches DIR "
                         "(or name them in evalkit.toml)")
    if not any(p.refs for p in plans):
        where = ", ".join(sorted({str(p.run_dir) for p in plans})) or "the run folder"
        raise UsageError(f"no checkpoints under {where}: expected files like ckpt-1.index "
                         "with ckpt-1.data-00000-of-00001 (tf.train.Checkpoint.save), "
                         "<epoch>_net_G.pth, *.keras, *.h5, *.onnx or SavedModel folders")
    from evalkit.precision import check_precision

    try:
        check_precision(options.precision)
    except ValueError as exc:
        raise UsageError(str(exc)) from exc
    families = families if families is not None else default_families(options)
    signature = _signature(families, options.precision)
    all_datasets = [d for p in plans for d in p.datasets]
    summary = RunSummary(out_dir=out_dir, datasets=all_datasets)
    cache = OutputCache(out_dir)
    pool = RunnerPool()
    store = Store(out_dir)
    try:
        run_id = store.start_run(
            ", ".join(sorted({str(p.run_dir.resolve()) for p in plans})), argv or [],
            options.image_size,
            {"batch_size": options.batch_size, "limit": options.limit,
             "feature_extractor": options.feature_extractor,
             "domains": [p.domain for p in plans],
             "datasets": [d.name for d in all_datasets]})
        store.set_run_signature(run_id, signature)
        for ds in all_datasets:
            note = store.put_dataset(ds)
            if note:
                log(note)
        for p in plans:  # every discovered checkpoint is on record, even before evaluation
            for ref in p.refs:
                store.note_discovered(ref.name, ref.step, str(ref.prefix), p.domain)
        total = sum(len(p.refs) * sum(len(d) for d in p.datasets) for p in plans)
        n_refs = sum(len(p.refs) for p in plans if p.datasets)
        interactive = options.progress and sys.stderr.isatty()
        bar = tqdm(total=total, unit="img", desc="evaluating", disable=not interactive,
                   file=sys.stderr, dynamic_ncols=True)
        for p in plans:
            if not p.datasets:
                continue
            reference = next((d for d in p.datasets
                              if d.targets is not None and d.kind == "heldout"), None)
            for ref in p.refs:
                bar.set_postfix_str(ref.name)
                outcome = _evaluate_checkpoint(ref, p.domain, p.datasets, reference, families,
                                               signature, store, cache, pool, options, run_id,
                                               out_dir, bar)
                summary.checkpoints.append(outcome)
                if outcome.status == "failed":
                    log(f"FAILED {ref.name}: {outcome.error}")
                elif options.progress and not interactive:  # logs (CI): one line each
                    log(f"{ref.name}: {outcome.status} in {outcome.seconds:.1f} s "
                        f"[{len(summary.checkpoints)}/{n_refs}]")
        bar.close()
        if any(c.status == "evaluated" for c in summary.checkpoints):
            _refresh_human_scores(store, log)
        store.finish_run(run_id)
        summary.notes = _skip_notes(store)
    finally:
        store.close()
    return summary


def _evaluate_checkpoint(ref: CheckpointRef, domain: str, datasets: list[Dataset], reference,
                         families,
                         signature, store: Store, cache: OutputCache, pool: RunnerPool,
                         options: RunOptions, run_id: int, out_dir: Path, bar
                         ) -> CheckpointOutcome:
    t0 = time.perf_counter()
    n_images = sum(len(d) for d in datasets)
    done = [0]  # images accounted for in the progress bar

    def fail(reason: str, ckpt_hash: str | None = None) -> CheckpointOutcome:
        store.mark_checkpoint_failed(ref.name, ref.step, ckpt_hash, str(ref.prefix), reason,
                                     domain=domain)
        bar.update(n_images - done[0])
        return CheckpointOutcome(ref.name, ref.step, "failed", reason,
                                 time.perf_counter() - t0)

    if ref.problem:
        return fail(ref.problem)
    try:
        ckpt_hash = ref.content_hash()
    except OSError as exc:
        return fail(f"cannot read checkpoint files: {exc}")
    todo = []
    for ds in datasets:
        ev = store.evaluation(ref.name, ds.name)
        fams = _families_to_compute(ev, ckpt_hash, ds, families, signature)
        if fams:
            todo.append((ds, fams))
        else:
            bar.update(len(ds))
            done[0] += len(ds)
    if not todo:
        if store.checkpoint_status(ref.name) != "ok":
            store.put_checkpoint(ref.name, ref.step, ckpt_hash, str(ref.prefix), "ok",
                                 domain=domain)
        return CheckpointOutcome(ref.name, ref.step, "cached", None, time.perf_counter() - t0)
    clock = _Clock(options.timings)
    out_key = cache_key(ckpt_hash, options.precision)  # bf16 outputs never serve as fp32
    try:
        source = sources.prepare(ref, pool, options)
        runner = None
        for ds, fams in todo:
            with clock("png cache read"):
                cached = cache.load(out_key, ds)
            if cached is None:
                if runner is None:
                    with clock("build generator + load weights"):
                        runner = source.runner()
                try:
                    outputs, raw_l1 = generate(runner, ds, options.batch_size,
                                               on_batch=bar.update, timings=options.timings)
                except ValueError as exc:  # e.g. input channels the data cannot supply
                    raise CheckpointError(str(exc)) from exc
                with clock("png cache write"):
                    folder = cache.save(out_key, ds, outputs, raw_l1)
            else:
                outputs, raw_l1 = cached
                folder = cache.folder(out_key, ds.content_hash)
                bar.update(len(ds))
            done[0] += len(ds)
            ctx = MetricContext(dataset=ds, outputs=outputs, raw_l1=raw_l1, checkpoint=ref.name,
                                checkpoint_hash=ckpt_hash, cache_dir=out_dir / "cache",
                                reference=reference if ds is not reference else None,
                                options={"feature_extractor": options.feature_extractor})
            values = _compute_metrics(fams, ctx, clock)
            if options.precision != "fp32":
                for v in values:
                    v.flags["precision"] = options.precision
            race = ds.meta.get("race")
            if race:  # a racing round's subset: never to be mistaken for a full value
                for v in values:
                    v.flags.update(raced=True, full_n=race.get("full_n"),
                                   race_round=race.get("round"))
            partial = None if len(fams) == len(families) else [m for f in fams for m in f.metrics]
            with clock("store"):
                store.put_evaluation(ref.name, ds.name, ckpt_hash, ds.content_hash, run_id,
                                     str(folder.relative_to(out_dir)), values, ds.ids,
                                     signature=signature, only=partial)
    except CheckpointError as exc:
        return fail(str(exc), ckpt_hash)
    store.put_checkpoint(ref.name, ref.step, ckpt_hash, str(ref.prefix), "ok",
                         architecture=source.description, domain=domain)
    return CheckpointOutcome(ref.name, ref.step, "evaluated", None, time.perf_counter() - t0)


def _refresh_human_scores(store: Store, log: Callable[[str], None]) -> None:
    """Re-fit reviewers' Bradley-Terry scores (``human/<domain>``) when votes exist: a
    checkpoint evaluated again (changed files) must not keep a score fitted before."""
    from evalkit.review.scores import update_human_scores
    from evalkit.review.votes import has_table

    if not has_table(store.conn) or not store.conn.execute("SELECT 1 FROM votes LIMIT 1"
                                                           ).fetchone():
        return

    try:
        update_human_scores(store)
    except Exception as exc:  # the evaluation is stored; the review scores are a view
        log(f"note: reviewers' scores could not be refitted: {type(exc).__name__}: {exc}")


def _skip_notes(store: Store) -> list[str]:
    """One line per distinct reason a metric was skipped for something fixable."""
    return [r for r in store.retryable_skip_reasons() if r]
