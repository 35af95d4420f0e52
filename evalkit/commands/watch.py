"""``evalkit watch RUN_DIR``: evaluate each checkpoint as soon as training completes it.

The same options, store, cache and resume as ``evalkit run`` (:func:`evalkit.commands.run.
prepare_run`): every poll discovers and plans the run folder like ``run``, hands the
checkpoints that became complete (:mod:`evalkit.execute.watch`) to
:func:`evalkit.execute.engine.evaluate_domains`, then refreshes ``selection.json``, the report and
the TensorBoard log. A later ``evalkit run`` on the same folder and OUT finds everything
stored and gives the same table.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from evalkit.commands.run import (
    PreparedRun,
    announce_plans,
    export_tensorboard_safely,
    load_plan_datasets,
    prepare_run,
    print_table,
    render_report_safely,
    run_options,
)


class WatchSession:
    """State kept across polls: what is complete, the loaded datasets, the outcomes."""

    def __init__(self, prep: PreparedRun, report: bool, tensorboard_dir: Path | None):
        from evalkit.execute.watch import CompletenessTracker

        self.prep, self.report, self.tensorboard_dir = prep, report, tensorboard_dir
        self.tracker = CompletenessTracker()
        self.datasets: dict[tuple, list] = {}  # (domain, heldout, sketches) -> datasets
        self.outcomes: dict[str, object] = {}  # checkpoint -> latest CheckpointOutcome
        self.waiting: dict[str, str] = {}  # checkpoint -> why it is not evaluated yet
        self._said: set[str] = set()

    def say(self, msg: str, once: bool = False) -> None:
        if once and msg in self._said:
            return
        self._said.add(msg)
        click.echo(msg, err=True)

    @staticmethod
    def _key(plan) -> tuple:
        return (plan.domain, str(plan.heldout), str(plan.sketches))

    def poll(self) -> bool:
        """One look at the run folder; True when something new happened."""
        from evalkit.execute.domains import DomainError, DomainPlan
        from evalkit.execute.engine import UsageError, evaluate_domains
        from evalkit.inputs.checkpoints.discover import discover_checkpoints
        from evalkit.inputs.data.pairs import DatasetError

        prep = self.prep
        if not discover_checkpoints(prep.run_dir, exclude=[prep.out]):
            return self.tracker.check([])[2]  # (planning needs checkpoints to see domains)
        try:
            plans = prep.plan()
        except DomainError as exc:
            raise click.UsageError(str(exc)) from exc
        ready, waiting, changed = self.tracker.check([r for p in plans for r in p.refs])
        for name, why in waiting.items():
            if self.waiting.get(name) != why:
                self.say(f"waiting for {name}: {why}")
        self.waiting = waiting
        if not ready:
            return changed
        need = [p for p in plans if self._key(p) not in self.datasets]
        try:
            if need:
                load_plan_datasets(need, prep.options.image_size, prep.options.limit)
                announce_plans(need)
                self.datasets.update({self._key(p): p.datasets for p in need})
            names = {r.name for r in ready}
            todo = [DomainPlan(p.domain, p.run_dir, [r for r in p.refs if r.name in names],
                               p.heldout, p.sketches, datasets=self.datasets[self._key(p)])
                    for p in plans if any(r.name in names for r in p.refs)]
            summary = evaluate_domains(todo, prep.out, prep.options, argv=sys.argv,
                                       log=lambda _msg: None)
        except (UsageError, DatasetError, FileNotFoundError) as exc:
            raise click.UsageError(str(exc)) from exc
        for p in plans:
            for note in p.notes:
                self.say(f"note: {note}", once=True)
        for ref in ready:
            self.tracker.handed_over(ref)
        for c in summary.checkpoints:
            self.outcomes[c.name] = c
            if c.status == "failed":
                self.say(f"FAILED {c.name} (step {c.step}): {c.error}")
            else:
                self.say(f"{c.name} (step {c.step}): {c.status} in {c.seconds:.1f} s")
        for note in summary.notes:
            self.say(f"note: {note}", once=True)
        self.refresh()
        return True

    def refresh(self) -> None:
        """selection.json, the report and the TensorBoard log, after each evaluation."""
        from evalkit.core.config import ConfigError
        from evalkit.decide.selection import SelectionError, select
        from evalkit.store.results import ResultsError

        try:
            sel = select(self.prep.out)
            chosen = ", ".join(f"{d + ': ' if d else ''}{e['checkpoint']}"
                               for d, e in sel["domains"].items())
            self.say(f"selected {chosen}")
        except (SelectionError, ConfigError, ResultsError) as exc:
            self.say(f"nothing selected yet: {exc}", once=True)
        if self.report:
            render_report_safely(self.prep.out)
        if self.tensorboard_dir is not None:
            export_tensorboard_safely(self.prep.out, self.tensorboard_dir)
        failed = sum(c.status == "failed" for c in self.outcomes.values())
        self.say(f"{len(self.outcomes)} checkpoints stored ({failed} failed); watching "
                 f"{self.prep.run_dir} (Ctrl-C to stop)")


@click.command()
@run_options
@click.option("--interval", type=click.FloatRange(min=0.05), default=30.0, show_default=True,
              help="Seconds between two looks at RUN_DIR.")
@click.option("--until-idle", type=click.FloatRange(min=0), default=3600.0, show_default=True,
              help="Stop after this many seconds with no new or changing checkpoint "
                   "(0: never; stop with Ctrl-C).")
def watch(run_dir: Path, out, no_report, tensorboard_dir, interval, until_idle, no_wait,
          **kwargs) -> None:
    """Evaluate each checkpoint of RUN_DIR as soon as training has completely written it.

    Takes the same options as `evalkit run` and shares its OUT (store, output cache,
    resume). A checkpoint is evaluated once its folder's `checkpoint` state file names it
    (or a newer one), its index and every data shard are there, their sizes stayed the same
    between two looks and every variable reads back; a checkpoint still being written is
    never read half-written and never recorded as failed. After each evaluation,
    selection.json, the report and (with --tensorboard) the TensorBoard log are brought up
    to date.

    Stops after --until-idle seconds without activity, or on Ctrl-C, which is the normal
    way to stop: both end cleanly, print what is stored, and exit 0, or 1 when a
    checkpoint failed (a reported failure, as with `run`); 2 on usage errors.
    """
    from evalkit.execute.watch import poll_until

    prep = prepare_run(run_dir, out=out, **kwargs)
    for flag, path in (("--heldout", prep.heldout), ("--sketches", prep.sketches)):
        if path is not None and not Path(path).is_dir():
            raise click.UsageError(f"{flag} {path} is not a folder")
    session = WatchSession(prep, report=not no_report, tensorboard_dir=tensorboard_dir)
    click.echo(f"watching {run_dir} every {interval:g} s "
               + (f"until idle for {until_idle:g} s " if until_idle else "")
               + "(Ctrl-C to stop)", err=True)
    from evalkit.store.lock import LockBusy, run_lock

    try:  # one writer per OUT: a `run` on the same OUT waits for the watch to end
        with run_lock(prep.out, wait=not no_wait, log=lambda m: click.echo(m, err=True)):
            how = poll_until(session.poll, interval, until_idle or None)
    except LockBusy as exc:
        raise click.UsageError(str(exc)) from exc
    if session.outcomes:
        print_table(prep.out)
    failed = [c for c in session.outcomes.values() if c.status == "failed"]
    why = "Ctrl-C" if how == "interrupted" else f"idle for {until_idle:g} s"
    click.echo(f"watch stopped ({why}): {len(session.outcomes)} checkpoints evaluated "
               f"({len(failed)} failed); results in {prep.out / 'results.sqlite'}", err=True)
    for name, reason in session.waiting.items():
        click.echo(f"  not evaluated (incomplete): {name}: {reason}", err=True)
    sys.exit(1 if failed else 0)
