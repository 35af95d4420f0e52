"""``evalkit demo [--out DIR]``: evaluate the shipped example service end to end.

The example (``examples/``, made by ``benchmarks/make_example.py``) has the service's
layout with two domains: ``checkpoints/person/`` and ``checkpoints/gemstone/`` (small real
pix2pix runs on procedural subjects, one checkpoint per epoch), ``heldout/<domain>/`` AB
pairs and one two-domain sketch set, served at 64 px. The demo runs exactly what
``evalkit run examples/checkpoints`` runs (every domain on its own data), prints the
results table, says per domain whether the last checkpoint beat the first on held-out L1
and SSIM, selects one checkpoint per domain, exports them to ``OUT/deploy/<domain>/`` (the
service's ``checkpoints/`` layout) and renders the report (domain overview).
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from evalkit.commands import is_quiet, quiet_option

#: The example, relative to the repository root (evalkit is installed editable from it).
EXAMPLE = Path("examples")


def find_example() -> Path | None:
    """``examples/`` of the checkout evalkit runs from, else of the working directory."""
    import evalkit

    for base in (Path(evalkit.__file__).resolve().parents[1], Path.cwd()):
        candidate = base / EXAMPLE
        if (candidate / "checkpoints").is_dir():
            return candidate
    return None


def first_vs_last(out: Path) -> list[tuple[str, str, float, float, bool]]:
    """``(domain, metric, first checkpoint's value, last's, last is better)`` for held-out
    l1 and ssim, per domain."""
    from evalkit.store.results import Store

    with Store(out, create=False) as store:
        res = store.results()
        ckpts = store.checkpoints()
    rows = []
    for domain, mine in ckpts[ckpts.status == "ok"].groupby("domain", sort=True):
        ok = mine.sort_values("step")
        if len(ok) < 2:
            continue
        first, last = ok.name.iloc[0], ok.name.iloc[-1]
        for metric, higher_better in (("l1", False), ("ssim", True)):
            sel = res[(res.kind == "heldout") & (res.domain == domain)
                      & (res.metric == metric) & (res.status == "ok")]
            vals = dict(zip(sel.checkpoint, sel.value, strict=True))
            if first in vals and last in vals:
                a, b = float(vals[first]), float(vals[last])
                rows.append((str(domain), metric, a, b, b > a if higher_better else b < a))
    return rows


def select_and_export(out: Path) -> None:
    """Choose one checkpoint per domain and export them to ``OUT/deploy/<domain>/``; a
    selection problem is printed (the results stand)."""
    try:
        from evalkit.decide.selection import explain_all, select
        from evalkit.present.deploy import export_selection
        sel = select(out)
        click.echo(explain_all(sel), err=True)
        written = export_selection(sel, out / "deploy", force=True)
        click.echo("exported the chosen checkpoints in the service's layout: "
                   + ", ".join(str(p) for p in written.values()), err=True)
    except Exception as exc:  # the results stand; a selection problem is printed
        click.echo(f"selection: {exc}", err=True)


@click.command()
@click.option("--out", type=click.Path(path_type=Path, file_okay=False), default=Path("demo-out"),
              show_default=True, help="Output folder (results, outputs, report).")
@click.option("--example", type=click.Path(path_type=Path, file_okay=False, exists=True),
              help="The example folder (checkpoints/, heldout/, sketches, evalkit.toml) "
                   "[default: examples/ of this checkout, else ./examples].")
@quiet_option
def demo(out: Path, example: Path | None) -> None:
    """Evaluate the shipped example run (every checkpoint, held-out pairs and sketches).

    Exit 0 when every checkpoint was evaluated, 1 when any failed, 2 when the example is
    missing.
    """
    from evalkit.commands.run import (
        announce_plans,
        guarded_run,
        load_plan_datasets,
        print_summary,
        render_report_safely,
    )
    from evalkit.core.config import load_config
    from evalkit.execute.domains import plan_domains
    from evalkit.execute.engine import RunOptions, evaluate_domains

    example = example or find_example()
    if example is None:
        raise click.UsageError(
            f"the example ({EXAMPLE}/checkpoints) is not here: run `evalkit demo` from a clone "
            "of the evalkit repository (installed with scripts/setup.sh), or pass --example DIR")
    cfg = load_config(example / "evalkit.toml")
    opts = RunOptions(image_size=cfg.image_size or 64, batch_size=cfg.batch_size or 16,
                      domain=cfg.domain, progress=not is_quiet())
    run_dir = example / "checkpoints"
    click.echo(f"evalkit demo: evaluating {run_dir} (every domain, served at "
               f"{opts.image_size} px) into {out}", err=True)
    plans = plan_domains(run_dir, heldout=cfg.heldout, sketches=cfg.sketches,
                         domain=opts.domain, domain_configs=cfg.domains, exclude=[out],
                         options=opts)
    load_plan_datasets(plans, opts.image_size, None)
    announce_plans(plans)
    with guarded_run(out):  # OUT's lock; clean ends on SIGINT/SIGTERM/disk full
        summary = evaluate_domains(plans, out, opts, argv=sys.argv)
        print_summary(out, summary)
        for domain, metric, a, b, better in first_vs_last(out):
            verdict = "better" if better else "NOT better"
            click.echo(f"{domain}: held-out {metric}: first checkpoint {a:.4f} -> last "
                       f"{b:.4f} ({verdict})", err=True)
        select_and_export(out)
        render_report_safely(out)
    sys.exit(summary.exit_code)
