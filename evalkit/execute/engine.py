"""checkpoint x dataset -> served outputs -> metric families -> results store.

The one place where the pipeline's steps meet. For every checkpoint of a run folder, in
step order, and every dataset: reuse the stored evaluation if its checkpoint and dataset
hashes (and metric settings) still match -- recomputing only a family whose settings
changed or that was skipped for missing weights that are now there; otherwise reuse cached
outputs if any, else load the weights and generate once; then run the metric families on
the served outputs and store the evaluation in one transaction. A checkpoint that cannot be
read or does not fit is recorded as failed with a one-line reason, and the run goes on.

The work is split at one seam (:mod:`evalkit.execute.executors`): this module is the *driver*: it
alone reads and writes the store, decides per (checkpoint, dataset) what is left to compute
(:func:`_plan_checkpoint`) and writes each finished evaluation (:func:`_store_result`);
the unit of work itself (:func:`evalkit.execute.executors.evaluate_unit`: load -> generate ->
metrics -> values) runs in this process (default) or as Ray tasks
(:mod:`evalkit.execute.ray_executor`).
"""

from __future__ import annotations

import json
import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from evalkit.execute.executors import InProcess, UnitResult, WorkUnit, compute_metrics
from evalkit.execute.generate import OutputCache
from evalkit.execute.precision import cache_key
from evalkit.inputs import sources
from evalkit.inputs.checkpoints.discover import CheckpointRef
from evalkit.inputs.data.dataset import Dataset
from evalkit.measure.base import MetricContext, MetricValue
from evalkit.store.outputs import CheckedFolder
from evalkit.store.results import Store


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
    #: load Keras/SavedModel/ONNX files that could run code (evalkit.inputs.sources.safety)
    trust_model_code: bool = False
    device: str = "auto"  # auto|cpu|gpu (evalkit.execute.device)
    #: where units run: None = in this process; an evalkit.execute.executors.Executor otherwise
    #: (e.g. evalkit.execute.ray_executor.RayExecutor)
    executor: Any = None
    #: generator precision: "fp32" or "bf16" screening (evalkit.execute.precision)
    precision: str = "fp32"
    #: when a dict, seconds spent per stage are added to it (``generator``, ``load weights``,
    #: ``png cache write``/``read``, ``metric:<family>``, ``store``): benchmarks/bench_run.py
    timings: dict[str, float] | None = None



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
    from evalkit.measure.paired import PairedMetrics

    families: list = [PairedMetrics()]
    try:
        from evalkit.measure.distribution import DistributionMetrics
        families.append(DistributionMetrics(feature_extractor=options.feature_extractor))
    except ImportError:
        pass
    try:
        from evalkit.measure.lpips import LpipsMetric
        families.append(LpipsMetric())
    except ImportError:
        pass
    try:
        from evalkit.measure.adherence import AdherenceMetrics
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


def _short(value: Any, width: int = 70) -> str:
    text = json.dumps(value, sort_keys=True, default=str)
    return text if len(text) <= width else text[:width - 3] + "..."


def _settings_diff(old: Any, new: Any) -> str:
    """What changed between two settings of one metric family, in words (keys and values)."""
    if isinstance(old, dict) and isinstance(new, dict):
        keys = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
        return ", ".join(f"{k} {_short(old.get(k))} -> {_short(new.get(k))}" for k in keys)
    return f"{_short(old)} -> {_short(new)}"


@dataclass
class Superseded:
    """Why stored results are being replaced in this run, gathered while planning, said as
    one line per cause (:meth:`lines`); the data's own line comes from ``Store.put_dataset``."""

    settings: dict[str, tuple[str, int]] = field(default_factory=dict)  # family -> diff, n
    checkpoints: list[str] = field(default_factory=list)

    def note(self, ev: dict | None, ckpt_hash: str, ds: Dataset, name: str,
             fams: list, signature: str) -> None:
        """Record why ``fams`` are recomputed for a stored evaluation ``ev`` (if they replace
        values: a first evaluation or a retried skip replaces nothing)."""
        if ev is None or ev["dataset_hash"] != ds.content_hash:
            return
        if ev["checkpoint_hash"] != ckpt_hash:
            if name not in self.checkpoints:
                self.checkpoints.append(name)
            return
        try:
            stored = json.loads(ev["signature"] or "{}")
        except ValueError:
            stored = {}
        current = json.loads(signature)
        for fam in fams:
            if fam.name in stored and stored[fam.name] != current.get(fam.name):
                diff, n = self.settings.get(fam.name, ("", 0))
                self.settings[fam.name] = (
                    diff or _settings_diff(stored[fam.name], current.get(fam.name)), n + 1)

    def lines(self) -> list[str]:
        out = []
        if self.settings:
            what = "; ".join(f"{fam} ({diff})" for fam, (diff, _) in sorted(self.settings.items()))
            n = sum(k for _, k in self.settings.values())
            out.append(f"metric settings changed: {what} for {n} evaluation(s): recomputed; "
                       "the earlier values are kept as history (evalkit results OUT --all)")
        if self.checkpoints:
            names = ", ".join(self.checkpoints[:5]) + (
                f" and {len(self.checkpoints) - 5} more" if len(self.checkpoints) > 5 else "")
            out.append(f"checkpoint changed: {names} {'has' if len(self.checkpoints) == 1 else 'have'}"
                       " new content: re-evaluated; the earlier results are kept as history "
                       "(evalkit results OUT --all)")
        return out


def _compute_metrics(families: list, ctx: MetricContext, clock=None) -> list[MetricValue]:
    return compute_metrics(families, ctx, clock)


def evaluate_run(run_dir: str | Path, out_dir: str | Path, datasets: list[Dataset],
                 options: RunOptions | None = None, argv: list[str] | None = None,
                 families: list | None = None,
                 log: Callable[[str], None] = lambda s: print(s, file=sys.stderr),
                 ) -> RunSummary:
    """Evaluate every checkpoint under ``run_dir`` (one domain) on ``datasets``.

    The domain is that of the datasets (they must agree); checkpoint names carry it. See
    :func:`evaluate_domains` for runs of several domains.
    """
    from evalkit.execute.domains import DomainPlan

    run_dir, out_dir = Path(run_dir), Path(out_dir)
    if not run_dir.is_dir():
        raise UsageError(f"run folder {run_dir} does not exist")
    domains = {d.domain for d in datasets}
    if len(domains) > 1:
        raise UsageError(f"datasets of several domains ({', '.join(sorted(domains))}) given "
                         "for one run folder: evaluate each domain on its own data "
                         "(evalkit.execute.domains.plan_domains)")
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

    ``plans`` are :class:`evalkit.execute.domains.DomainPlan` with their datasets loaded. Within a
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
    from evalkit.execute.precision import check_precision

    try:
        check_precision(options.precision)
    except ValueError as exc:
        raise UsageError(str(exc)) from exc
    families = families if families is not None else default_families(options)
    signature = _signature(families, options.precision)
    all_datasets = [d for p in plans for d in p.datasets]
    summary = RunSummary(out_dir=out_dir, datasets=all_datasets)
    executor = options.executor if options.executor is not None else InProcess()
    cache = OutputCache(out_dir)
    store = Store(out_dir)
    try:
        run_id = store.start_run(
            ", ".join(sorted({str(p.run_dir.resolve()) for p in plans})), argv or [],
            options.image_size,
            {"batch_size": options.batch_size, "limit": options.limit,
             "feature_extractor": options.feature_extractor,
             "domains": [p.domain for p in plans],
             "datasets": [d.name for d in all_datasets],
             "executor": executor.name, "device": options.device})
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
        order: dict[str, int] = {}
        units: list[WorkUnit] = []
        superseded = Superseded()
        for p in plans:  # the driver decides what to compute (it alone reads the store)
            if not p.datasets:
                continue
            reference = next((d for d in p.datasets
                              if d.targets is not None and d.kind == "heldout"), None)
            for ref in p.refs:
                order[ref.name] = len(order)
                planned = _plan_checkpoint(ref, p.domain, p.datasets, reference, families,
                                           signature, store, options, out_dir, bar, superseded, log)
                if isinstance(planned, WorkUnit):
                    units.append(planned)
                else:
                    _record(planned, summary, log, options, interactive, n_refs)
        for line in superseded.lines():
            log(line)
        if units:
            _ship_cached_outputs(executor, units, cache, all_datasets, out_dir)
        by_name = {d.name: d for d in all_datasets}
        ticks = [0]

        def on_images(n: int) -> None:
            ticks[0] += n
            bar.update(n)

        t_units, n_done = time.perf_counter(), 0
        expected = {u.ref.name: sum(len(by_name[d]) for d, _ in u.todo) for u in units}
        pending = {u.ref.name: u for u in units}
        for result in executor.run(units, by_name, families, on_images):
            unit = pending.pop(result.checkpoint)
            bar.update(max(0, expected[unit.ref.name] - ticks[0]))  # a failed unit's rest
            ticks[0] = 0
            outcome = _store_result(unit, result, by_name, store, cache, run_id, signature)
            n_done += 1
            elapsed = time.perf_counter() - t_units
            eta = elapsed / n_done * (len(units) - n_done)
            _record(outcome, summary, log, options, interactive, n_refs,
                    f"{result.device}, ETA {eta:.0f} s" if n_done < len(units) else
                    result.device)
        bar.close()
        summary.checkpoints.sort(key=lambda c: order.get(c.name, 0))
        if any(c.status == "evaluated" for c in summary.checkpoints):
            _refresh_human_scores(store, log)
        store.finish_run(run_id)
        summary.notes = _skip_notes(store)
    finally:
        store.close()
    return summary


def _record(outcome: CheckpointOutcome, summary: RunSummary, log, options: RunOptions,
            interactive: bool, n_refs: int, where: str = "") -> None:
    """Add an outcome to the summary; a failure is logged, and in logs (CI) each
    checkpoint gets one line (with the device and the ETA when units run)."""
    summary.checkpoints.append(outcome)
    if outcome.status == "failed":
        log(f"FAILED {outcome.name}: {outcome.error}")
    elif options.progress and not interactive:
        extra = f" ({where})" if where else ""
        log(f"{outcome.name}: {outcome.status} in {outcome.seconds:.1f} s{extra} "
            f"[{len(summary.checkpoints)}/{n_refs}]")


def _plan_checkpoint(ref: CheckpointRef, domain: str, datasets: list[Dataset], reference,
                     families: list, signature: str, store: Store, options: RunOptions,
                     out_dir: Path, bar, superseded: Superseded | None = None,
                     log: Callable[[str], None] = lambda s: None
                     ) -> CheckpointOutcome | WorkUnit:
    """Driver side, before any work: a failed or fully cached checkpoint is settled here
    (and stored); otherwise the :class:`WorkUnit` of what is left to compute. A complete
    evaluation whose cached outputs fail their check (:func:`_outputs_intact`) is computed
    again, from regenerated outputs."""
    import evalkit

    t0 = time.perf_counter()
    if ref.problem:
        return _fail(store, ref, domain, ref.problem, None, bar, sum(len(d) for d in datasets))
    try:
        ckpt_hash = ref.content_hash()
    except OSError as exc:
        return _fail(store, ref, domain, f"cannot read checkpoint files: {exc}", None, bar,
                     sum(len(d) for d in datasets))
    todo = []
    for ds in datasets:
        ev = store.evaluation(ref.name, ds.name)
        fams = _families_to_compute(ev, ckpt_hash, ds, families, signature)
        if not fams and not _outputs_intact(
                out_dir, cache_key(ckpt_hash, options.precision), ds, log):
            fams = list(families)
        if fams and superseded is not None:
            superseded.note(ev, ckpt_hash, ds, ref.name, fams, signature)
        if fams:
            todo.append((ds.name, [f.name for f in fams]))
        else:
            bar.update(len(ds))
    if not todo:
        if store.checkpoint_status(ref.name) != "ok":
            store.put_checkpoint(ref.name, ref.step, ckpt_hash, str(ref.prefix), "ok",
                                 domain=domain)
        return CheckpointOutcome(ref.name, ref.step, "cached", None, time.perf_counter() - t0)
    return WorkUnit(ref=ref, domain=domain, checkpoint_hash=ckpt_hash, todo=todo,
                    reference=reference.name if reference is not None else None,
                    image_size=options.image_size, batch_size=options.batch_size,
                    feature_extractor=options.feature_extractor, device=options.device,
                    out_dir=out_dir, shared_fs=True, n_families=len(families),
                    evalkit_version=evalkit.__version__,
                    source_options=sources.SourceOptions.of(options),
                    precision=options.precision, timings=options.timings)


def _outputs_intact(out_dir: Path, out_key: str, ds: Dataset,
                    log: Callable[[str], None]) -> bool:
    """Whether the cached outputs of a complete evaluation pass their check
    (:mod:`evalkit.store.outputs`). A folder that fails is said once (its first bad file
    and how many more) and removed, so that it is regenerated; a folder without a
    manifest (outputs deleted to save space) has nothing to check."""
    folder = OutputCache.folder_of(out_dir, out_key, ds.content_hash)
    try:
        checked = CheckedFolder(folder)
    except (OSError, ValueError):
        return True
    bad = checked.problems()
    checked.save_keys()
    if not bad:
        return True
    more = f" (and {len(bad) - 1} more file(s) there)" if len(bad) > 1 else ""
    log(f"{bad[0]}{more}: regenerating that folder and its metrics")
    shutil.rmtree(folder, ignore_errors=True)
    return False


def _fail(store: Store, ref: CheckpointRef, domain: str, reason: str, ckpt_hash: str | None,
          bar, n_images: int = 0) -> CheckpointOutcome:
    store.mark_checkpoint_failed(ref.name, ref.step, ckpt_hash, str(ref.prefix), reason,
                                 domain=domain)
    bar.update(n_images)
    return CheckpointOutcome(ref.name, ref.step, "failed", reason)


def _ship_cached_outputs(executor, units: list[WorkUnit], cache: OutputCache,
                         datasets: list[Dataset], out_dir: Path) -> None:
    """Ask the executor whether its workers see OUT (a remote one probes, and checks their
    evalkit version); when they do not, the driver reads cached outputs into the units."""
    import evalkit

    check = getattr(executor, "check_workers", None)
    if callable(check):
        try:
            check(out_dir, evalkit.__version__)
        except RuntimeError as exc:  # VersionMismatch
            raise UsageError(str(exc)) from exc
    shared = bool(getattr(executor, "shared_fs", True))
    by_name = {d.name: d for d in datasets}
    for u in units:
        u.shared_fs = shared
        if not shared:
            for ds_name, _ in u.todo:
                got = cache.load(cache_key(u.checkpoint_hash, u.precision), by_name[ds_name])
                if got is not None:
                    u.cached[ds_name] = got


def _store_result(unit: WorkUnit, result: UnitResult, datasets: dict[str, Dataset],
                  store: Store, cache: OutputCache, run_id: int, signature: str
                  ) -> CheckpointOutcome:
    """Driver side, after a unit: write its outputs (when the worker could not) and each
    finished evaluation in its own transaction, then the checkpoint's status."""
    ref = unit.ref
    for ev in result.evaluations:
        ds = datasets[ev.dataset]
        if ev.outputs is not None:
            cache.save(cache_key(unit.checkpoint_hash, unit.precision), ds, ev.outputs,
                       ev.raw_l1)
        store.put_evaluation(ref.name, ds.name, unit.checkpoint_hash, ds.content_hash, run_id,
                             ev.outputs_dir, ev.values, ds.ids, signature=signature,
                             only=ev.partial)
    if result.error:
        store.mark_checkpoint_failed(ref.name, ref.step, unit.checkpoint_hash, str(ref.prefix),
                                     result.error, domain=unit.domain)
        return CheckpointOutcome(ref.name, ref.step, "failed", result.error, result.seconds)
    store.put_checkpoint(ref.name, ref.step, unit.checkpoint_hash, str(ref.prefix), "ok",
                         architecture=result.architecture, domain=unit.domain)
    return CheckpointOutcome(ref.name, ref.step, "evaluated", None, result.seconds)


def _refresh_human_scores(store: Store, log: Callable[[str], None]) -> None:
    """Re-fit reviewers' Bradley-Terry scores (``human/<domain>``) when votes exist: a
    checkpoint evaluated again (changed files) must not keep a score fitted before."""
    from evalkit.decide.review.scores import update_human_scores
    from evalkit.decide.review.votes import has_table

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
