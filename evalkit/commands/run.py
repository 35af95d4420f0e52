"""``evalkit run RUN_DIR``: evaluate every checkpoint of a run folder."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import click

from evalkit.commands import is_quiet
from evalkit.core.config import ConfigError, find_config, image_size_problem, load_config


def load_datasets(heldout: Path | None, sketches: Path | None, size: int,
                  limit: int | None, domain: str | None,
                  heldout_domain: str | None = None) -> list:
    """Read one domain's held-out and sketch datasets (named ``heldout/<domain>``...).
    ``heldout_domain``: the domain the held-out set is named by when it is not ``domain``
    (a pooled run's one-domain held-out folder: ``heldout/car``, not ``heldout/all``)."""
    from evalkit.inputs.data.dataset import dataset_name
    from evalkit.inputs.data.pairs import load_pairs

    d = domain or ""
    datasets = []
    if heldout is not None:
        label = d if heldout_domain is None else heldout_domain
        ds = load_pairs(heldout, size=size, name=dataset_name("heldout", label), limit=limit)
        ds.domain = d
        datasets.append(ds)
    if sketches is not None:
        from evalkit.inputs.data.dataset import POOLED
        from evalkit.inputs.sketches.dataset import load_sketches
        ds = load_sketches(sketches, size=size, name=dataset_name("sketches", d),
                           domain=None if d in ("", POOLED) else d, limit=limit)
        ds.domain = d
        datasets.append(ds)
    return datasets


def load_plan_datasets(plans: list, size: int, limit: int | None) -> None:
    """Load each domain's datasets into its plan. Data missing for one domain of a
    multi-domain run is a note on that domain; in a one-domain run it is an error."""
    from evalkit.execute.domains import sketch_domains
    from evalkit.inputs.data.pairs import DatasetError

    multi = len(plans) > 1
    for plan in plans:
        sketches = plan.sketches
        if sketches is not None and plan.domain and plan.domain != "all":
            have = sketch_domains(sketches)
            if have and plan.domain not in have:
                msg = (f"{sketches} has no sketches of domain '{plan.domain}' (it has "
                       f"{', '.join(have)})")
                if not multi:
                    raise DatasetError(msg)
                plan.notes.append(msg + f": no hand-drawn track for {plan.domain}")
                sketches = None
            elif not have and multi:
                plan.notes.append(f"{sketches} is not split by domain (no manifest domains, "
                                  f"no subfolders): not used for '{plan.domain}', so as not "
                                  "to mix domains")
                sketches = None
        try:
            plan.datasets = load_datasets(plan.heldout, sketches, size, limit, plan.domain,
                                          plan.heldout_domain)
        except DatasetError as exc:
            if not multi:
                raise
            plan.notes.append(f"domain '{plan.domain}': {exc}; not evaluated")
            plan.datasets = []


def print_table(out: Path) -> None:
    """The final terminal table: one row per checkpoint, headline metrics per dataset.
    Memoized by the store's content (:mod:`evalkit.commands.memo`): unchanged, it is
    re-printed without importing pandas."""
    from evalkit.commands.memo import remember_table

    def compute() -> str:
        from evalkit.commands.results import checkpoint_table

        table = checkpoint_table(out)
        return "" if table.empty else table.to_string(index=False, na_rep="-")

    text = remember_table(out, compute)
    if text:
        click.echo(text)


def run_options(f):
    """The options ``run`` and ``watch`` share (same data, same store, same cache)."""
    opts = [
        click.argument("run_dir", type=click.Path(path_type=Path, file_okay=False)),
        click.option("--heldout", type=click.Path(path_type=Path, file_okay=False),
                     help="Held-out pairs: AB images, or a folder with A/ and B/ (a root with "
                          "one folder per domain, or one domain's)."),
        click.option("--sketches", type=click.Path(path_type=Path, file_okay=False),
                     help="Hand-drawn sketch set (a folder, with manifest.json or not)."),
        click.option("--out", type=click.Path(path_type=Path, file_okay=False),
                     help="Output folder for results, outputs, caches and report "
                          "[default: RUN_DIR/evalkit-out]."),
        click.option("--config", "config_path",
                     type=click.Path(path_type=Path, dir_okay=False),
                     help="evalkit.toml to use [default: found in RUN_DIR or above]."),
        click.option("--domain", help="Domain of a one-domain run folder (selects its "
                     "sketches), the one domain to evaluate of a root, or 'all' to pool every "
                     "domain (explicitly)."),
        click.option("--image-size", type=int, callback=_check_image_size,
                     help="Size the model is served at, px: a multiple of 4, >= 16 "
                          "[default: 256]."),
        click.option("--batch-size", type=int, help="Inference batch size [default: 4]."),
        click.option("--limit", type=int, help="Use only the first N images of each dataset."),
        click.option("--feature-extractor", type=click.Path(path_type=Path, dir_okay=False),
                     help="TorchScript FID/KID feature extractor (uint8 NCHW -> (N, D))."),
        click.option("--netG", "net_g",
                     type=click.Choice(["resnet_9blocks", "resnet_6blocks", "unet_256",
                                        "unet_128"]),
                     help="pix2pix .pth generator [default: inferred from the weights]."),
        click.option("--norm", type=click.Choice(["instance", "batch", "none"]),
                     help="pix2pix .pth norm layers [default: inferred from the weights]."),
        click.option("--contract", type=click.Choice(["seed", "pix2pix-torch"]),
                     help="Input contract [default: seed for TF/Keras/SavedModel, "
                          "pix2pix-torch for .pth; ONNX by its layout]. See README "
                          "'Model formats'."),
        click.option("--trust-model-code", is_flag=True,
                     help="Load Keras, SavedModel and ONNX files even when they could run "
                          "code or touch files (Lambda/custom layers, file ops, custom ONNX "
                          "domains); only for files from people you trust. Recorded in "
                          "each such checkpoint's content hash (docs/formats.md)."),
        click.option("--tensorboard", "tensorboard_dir",
                     type=click.Path(path_type=Path, file_okay=False),
                     help="Also write the results as TensorBoard scalars and grid images "
                          "into this log folder (e.g. the training's own logdir)."),
        click.option("--no-report", is_flag=True, help="Do not render the HTML report."),
        click.option("--quiet", is_flag=True, help="No progress bar."),
        click.option("--no-wait", is_flag=True,
                     help="Exit 2 instead of waiting when another run holds OUT."),
    ]
    for opt in reversed(opts):
        f = opt(f)
    return f


def _check_image_size(ctx: click.Context, param: click.Parameter,
                      value: int | None) -> int | None:
    """``--image-size``: exit 2 naming the rule for a size models cannot be served at."""
    if value is not None and (problem := image_size_problem(value)):
        raise click.BadParameter(problem, ctx=ctx, param=param)
    return value


@dataclass
class PreparedRun:
    """A run's settings resolved from the command line and evalkit.toml."""

    run_dir: Path
    out: Path
    options: object  # evalkit.execute.engine.RunOptions
    heldout: Path | None
    sketches: Path | None
    config: object  # evalkit.core.config.Config

    def plan(self) -> list:
        """The domains' plans (checkpoints discovered now; datasets not loaded yet)."""
        from evalkit.execute.domains import plan_domains

        return plan_domains(self.run_dir, heldout=self.heldout, sketches=self.sketches,
                            domain=self.options.domain, domain_configs=self.config.domains,
                            exclude=[self.out], options=self.options)


def prepare_run(run_dir: Path, heldout, sketches, out, config_path, domain, image_size,
                batch_size, limit, feature_extractor, quiet, net_g=None, norm=None,
                contract=None, trust_model_code=False, **_ignored) -> PreparedRun:
    """Resolve ``run``'s options (command line over evalkit.toml over defaults);
    click.UsageError on bad ones."""
    from evalkit.execute.engine import RunOptions

    try:
        cfg = load_config(config_path or find_config(run_dir))
    except ConfigError as exc:
        raise click.UsageError(str(exc)) from exc
    opts = RunOptions(
        image_size=image_size if image_size is not None else cfg.image_size or 256,
        batch_size=batch_size or cfg.batch_size or 4,
        limit=limit if limit is not None else cfg.limit,
        feature_extractor=feature_extractor or cfg.feature_extractor,
        domain=domain or cfg.domain,
        net_g=net_g, norm=norm, contract=contract, trust_model_code=trust_model_code,
        progress=not (quiet or is_quiet()),
    )
    heldout = heldout or cfg.heldout
    sketches = sketches or cfg.sketches
    if sketches is None and opts.domain and cfg.path is not None:
        # a config that names the domain finds the curated set beside it
        beside = cfg.path.parent / "human_sketches"
        if (beside / opts.domain).is_dir() or (beside / "manifest.json").is_file():
            sketches = beside
    out = out or run_dir / "evalkit-out"
    if opts.feature_extractor is not None and not Path(opts.feature_extractor).is_file():
        raise click.UsageError(f"feature extractor {opts.feature_extractor} not found")
    if not run_dir.is_dir():
        raise click.UsageError(f"run folder {run_dir} does not exist")
    return PreparedRun(run_dir, out, opts, heldout, sketches, cfg)


@click.command()
@run_options
@click.option("--rebuild-store", is_flag=True,
              help="Move OUT/results.sqlite aside (e.g. a damaged one) and rebuild the results "
                   "from the outputs cache.")
@click.option("--executor", type=click.Choice(["inprocess", "ray"]), default="inprocess",
              show_default=True, help="Where checkpoint evaluations run: this process, or "
              "one Ray task each (pip install 'evalkit[ray]'; docs/scale.md).")
@click.option("--address", help="Ray cluster to join: 'auto' or ray://host:port "
              "[default: start a local Ray instance].")
@click.option("--workers", type=int, help="Local Ray instance: tasks at once [default: cores].")
@click.option("--cpus-per-task", type=float, default=1.0, show_default=True,
              help="CPUs each Ray task asks for.")
@click.option("--gpus-per-task", type=float, default=0.0, show_default=True,
              help="GPUs each Ray task asks for.")
@click.option("--shared-fs", type=click.Choice(["auto", "yes", "no"]), default="auto",
              show_default=True, help="Do Ray workers see OUT? auto: probe with a file.")
@click.option("--device", type=click.Choice(["auto", "cpu", "gpu"]), default="auto",
              show_default=True, help="Where TensorFlow and torch compute (auto: a visible "
              "GPU, else the CPU); recorded with every value.")
@click.option("--race", is_flag=True, default=None,
              help="Racing selection: evaluate every checkpoint on a seeded subset, drop those "
                   "with < 1% chance of being chosen, grow the subset by sqrt(2) for the rest, "
                   "finish the leaders on the full data (docs/racing.md) [config: [run] "
                   "race].")
@click.option("--race-seed", type=int, default=0, show_default=True,
              help="Seed of the racing subsets.")
@click.option("--precision", type=click.Choice(["fp32", "bf16"]), default="fp32",
              show_default=True,
              help="Generator precision. bf16: screening only, flagged and kept apart from "
                   "fp32 values; refused (exit 2) without bfloat16 hardware. With --race, "
                   "the rounds run in bf16 and the leaders are finished in fp32.")
def run(run_dir: Path, out, no_report, tensorboard_dir, no_wait, rebuild_store, executor,
        address, workers, cpus_per_task, gpus_per_task, shared_fs, device, race, race_seed,
        precision, **kwargs) -> None:
    """Evaluate every checkpoint under RUN_DIR on held-out pairs and hand-drawn sketches.

    RUN_DIR is a root whose subfolders are domains (checkpoints/car/, checkpoints/shoe/...)
    or one domain's folder; each domain is evaluated on its own data only.

    Exit 0 when every checkpoint was evaluated, 1 when any failed, 2 on usage errors (or a
    damaged store, or OUT in use with --no-wait), 3 when the disk is full, 130 on Ctrl-C,
    143 on SIGTERM (see docs/faults.md).
    """
    from evalkit.execute.domains import DomainError
    from evalkit.execute.engine import UsageError, evaluate_domains
    from evalkit.execute.precision import check_precision
    from evalkit.inputs.data.pairs import DatasetError
    from evalkit.inputs.sources import ContractError

    prep = prepare_run(run_dir, out=out, **kwargs)
    opts, out = prep.options, prep.out
    opts.device = device
    if executor == "inprocess" and (address or workers or gpus_per_task):
        raise click.UsageError("--address, --workers and --gpus-per-task need --executor ray")
    opts.precision = precision
    try:
        check_precision(precision)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from exc
    with guarded_run(out, wait=not no_wait):
        if rebuild_store:
            rebuild(out)
        try:
            # the executor first: Ray's workers start while the data is being loaded
            with make_executor(executor, address, workers, cpus_per_task, gpus_per_task,
                               shared_fs, device) as opts.executor:
                plans = prep.plan()
                load_plan_datasets(plans, opts.image_size, opts.limit)
                announce_plans(plans)
                if race if race is not None else bool(prep.config.race):
                    summary = run_race(plans, out, opts, prep.config.path, race_seed)
                else:
                    summary = evaluate_domains(plans, out, opts, argv=sys.argv)
        except (UsageError, DatasetError, DomainError, FileNotFoundError,
                ContractError) as exc:
            raise click.UsageError(str(exc)) from exc
        print_summary(out, summary)
        if not no_report:
            render_report_safely(out)
        if tensorboard_dir is not None:
            export_tensorboard_safely(out, tensorboard_dir)
    sys.exit(summary.exit_code)


@contextmanager
def make_executor(kind: str, address: str | None, workers: int | None, cpus_per_task: float,
                  gpus_per_task: float, shared_fs: str, device: str) -> Iterator[object]:
    """The executor for ``--executor`` (None = in this process), closed at the end.
    In-process, ``--device gpu`` is checked now (without a GPU: exit 2); ``auto``/``cpu``
    are set up by the first unit that computes (so a run with nothing to compute never
    imports TensorFlow); Ray workers check the device where they run."""
    if kind == "inprocess":
        if device == "gpu":
            from evalkit.execute.device import DeviceError, configure

            try:
                configure(device)
            except DeviceError as exc:
                raise click.UsageError(str(exc)) from exc
        yield None
        return
    from evalkit.execute.ray_executor import RayExecutor, RayUnavailable

    if device == "gpu" and not gpus_per_task:
        raise click.UsageError("--device gpu with --executor ray needs --gpus-per-task "
                               "(e.g. 1): Ray hides GPUs from tasks that do not ask for one")
    try:
        ex = RayExecutor(address=address, workers=workers, cpus_per_task=cpus_per_task,
                         gpus_per_task=gpus_per_task, shared_fs=shared_fs)
    except RayUnavailable as exc:
        raise click.UsageError(str(exc)) from exc
    where = address or "a local instance (127.0.0.1)"
    click.echo(f"ray: {where} started in {ex.startup_s:.1f} s; one task per checkpoint "
               f"({cpus_per_task:g} CPU, {gpus_per_task:g} GPU each)", err=True)
    try:
        yield ex
    finally:
        ex.close()


def run_race(plans: list, out: Path, opts, config_path: Path | None, seed: int):
    """``--race``: racing selection (:mod:`evalkit.execute.racing`); prints what it saved."""
    from evalkit.decide.ranking.rank import ranking_config
    from evalkit.execute.engine import UsageError
    from evalkit.execute.racing import RaceSettings, race_domains

    config = ranking_config(config_path)
    if config.bootstrap < 2:
        raise UsageError("--race needs the ranking's bootstrap (its chance of being chosen): "
                         "set [ranking] bootstrap to 1000 (or remove it) in evalkit.toml")
    result = race_domains(plans, out, opts, RaceSettings(seed=seed, ranking_config=config),
                          argv=sys.argv)
    click.echo(f"race: generator ran on {result.generated} of {result.full_cost} "
               f"checkpoint·images ({result.saved:.1f}x less than a full evaluation)"
               + (f", {result.reused} served from earlier outputs in OUT" if result.reused
                  else "")
               + f"; {len(result.raced_out)} checkpoint(s) raced out", err=True)
    for name, evidence in result.raced_out.items():
        click.echo(f"  {name}: {evidence}", err=True)
    return result.summary


def announce_plans(plans: list) -> None:
    """One line per domain (when there are domains) with its checkpoints and datasets, the
    planner's notes, then one line per dataset."""
    named = [p for p in plans if p.domain]
    for p in named:
        data = ", ".join(f"{d.name} ({len(d)})" for d in p.datasets) or "no data"
        click.echo(f"domain {p.domain}: {len(p.refs)} checkpoints, {data}", err=True)
    for p in plans:
        for note in p.notes:
            click.echo(f"note: {note}", err=True)
    announce_datasets([d for p in plans for d in p.datasets])


@contextmanager
def guarded_run(out: Path, wait: bool = True) -> Iterator[None]:
    """The body holds OUT's run lock (waiting with a message, or exit 2 when ``wait`` is
    False) and ends cleanly on SIGINT (130), SIGTERM (143) and a full disk (3)."""
    from evalkit.core.faults import is_disk_full, remove_stale_temps
    from evalkit.store.endings import ending_cleanly
    from evalkit.store.lock import LockBusy, run_lock

    with ending_cleanly(out, echo=lambda s: click.echo(s, err=True)):
        try:
            with run_lock(out, wait=wait, log=lambda s: click.echo(s, err=True)):
                remove_stale_temps(out, "report.*")  # a killed run's half-made report
                yield
        except LockBusy as exc:
            raise click.UsageError(str(exc)) from exc
        except OSError as exc:
            if is_disk_full(exc) or exc.filename is None or \
                    Path(exc.filename).name != ".evalkit.lock":
                raise
            raise click.UsageError(f"cannot write to {out} ({exc.strerror}): use an --out "
                                   "folder you can write to") from exc


def rebuild(out: Path) -> None:
    """``--rebuild-store``: move OUT/results.sqlite aside; the run rebuilds it (cheaply:
    generated outputs are reused from OUT/outputs)."""
    from evalkit.store.results import DB_NAME, move_aside

    if (out / DB_NAME).exists():
        dest = move_aside(out / DB_NAME)
        click.echo(f"moved {out / DB_NAME} aside to {dest.name}; rebuilding the results from "
                   "the outputs cache", err=True)


def announce_datasets(datasets: list) -> None:
    """One line per dataset on stderr, and one per file it skipped."""
    for ds in datasets:
        click.echo(f"dataset {ds.name}: {len(ds)} samples from {ds.root}", err=True)
        for s in ds.skipped:
            click.echo(f"  skipped {s.file}: {s.reason}", err=True)
        for note in ds.meta.get("notes") or []:
            click.echo(f"  note: {note}", err=True)


def print_summary(out: Path, summary) -> None:
    """The final table (stdout), then notes, the count and the failed checkpoints (stderr)."""
    print_table(out)
    for note in summary.notes:
        click.echo(f"note: {note}", err=True)
    n_failed = len(summary.failed)
    n_raced = sum(c.status == "raced" for c in summary.checkpoints)
    raced = f" ({n_raced} raced out)" if n_raced else ""
    click.echo(f"{len(summary.checkpoints) - n_failed - n_raced} of "
               f"{len(summary.checkpoints)} checkpoints evaluated{raced}; results in "
               f"{out / 'results.sqlite'}", err=True)
    for c in summary.failed:
        click.echo(f"  failed {c.name}: {c.error}", err=True)


def render_report_safely(out: Path, config_path: Path | None = None) -> None:
    """Render OUT/report unless it is up to date (:mod:`evalkit.present.report.stamp`), with
    the ranking config ``config_path`` (default the run's); a report problem is printed,
    never fatal (results are stored), except a full disk (exit 3)."""
    try:
        from evalkit.present.report.stamp import render_if_stale
    except ImportError:
        return
    from evalkit.commands.memo import report_if_stale
    from evalkit.core.faults import is_disk_full

    try:
        path, rendered = report_if_stale(out, render_if_stale, config_path)
        click.echo(f"report: {path}" + ("" if rendered else " (up to date)"), err=True)
    except Exception as exc:  # the results are stored; a report problem must not hide them
        if is_disk_full(exc):
            raise  # exit 3 (guarded_run), not a shrug
        click.echo(f"report could not be rendered: {type(exc).__name__}: {exc}", err=True)


def export_tensorboard_safely(out: Path, logdir: Path) -> None:
    """Write OUT's results into a TensorBoard log folder; a problem is printed, never fatal."""
    try:
        from evalkit.present.export.tensorboard import export_tensorboard
        written = export_tensorboard(out, logdir)
        click.echo(f"tensorboard: {written.summary()} in {logdir}", err=True)
    except Exception as exc:  # the results are stored; TensorBoard is a view of them
        click.echo(f"tensorboard export failed: {type(exc).__name__}: {exc}", err=True)
