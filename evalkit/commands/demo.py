"""``evalkit demo [--out DIR]``: evaluate the shipped example run end to end.

The example (``examples/person/``, made by ``benchmarks/make_example.py``) is a small real
pix2pix run on procedural cartoon faces: 8 epoch checkpoints, 40 held-out AB pairs and 12
hand-drawn-style sketches, served at 64 px. The demo evaluates every checkpoint on both
datasets with ``evalkit run``'s engine, prints the results table, says whether the last
checkpoint beat the first on held-out L1 and SSIM, and renders the report when the report
module is installed.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

#: The example, relative to the repository root (evalkit is installed editable from it).
EXAMPLE = Path("examples") / "person"


def find_example() -> Path | None:
    """``examples/person`` of the checkout evalkit runs from, else of the working directory."""
    import evalkit

    for base in (Path(evalkit.__file__).resolve().parents[1], Path.cwd()):
        candidate = base / EXAMPLE
        if (candidate / "checkpoints").is_dir():
            return candidate
    return None


def first_vs_last(out: Path, dataset: str = "heldout") -> list[tuple[str, float, float, bool]]:
    """``(metric, first checkpoint's value, last's, last is better)`` for l1 and ssim."""
    from evalkit.store import Store

    with Store(out, create=False) as store:
        res = store.results()
        ckpts = store.checkpoints()
    ok = ckpts[ckpts.status != "failed"].sort_values("step")
    if len(ok) < 2:
        return []
    first, last = ok.name.iloc[0], ok.name.iloc[-1]
    rows = []
    for metric, higher_better in (("l1", False), ("ssim", True)):
        sel = res[(res.dataset == dataset) & (res.metric == metric) & (res.status == "ok")]
        vals = dict(zip(sel.checkpoint, sel.value, strict=True))
        if first in vals and last in vals:
            a, b = float(vals[first]), float(vals[last])
            rows.append((metric, a, b, b > a if higher_better else b < a))
    return rows


@click.command()
@click.option("--out", type=click.Path(path_type=Path, file_okay=False), default=Path("demo-out"),
              show_default=True, help="Output folder (results, outputs, report).")
@click.option("--example", type=click.Path(path_type=Path, file_okay=False, exists=True),
              help="Example run folder [default: examples/person of this checkout].")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def demo(out: Path, example: Path | None, quiet: bool) -> None:
    """Evaluate the shipped example run (every checkpoint, held-out pairs and sketches).

    Exit 0 when every checkpoint was evaluated, 1 when any failed, 2 when the example is
    missing.
    """
    from evalkit.commands.run import (
        announce_datasets,
        guarded_run,
        load_datasets,
        print_summary,
        render_report_safely,
    )
    from evalkit.config import load_config
    from evalkit.engine import RunOptions, evaluate_run

    example = example or find_example()
    if example is None:
        raise click.UsageError(
            f"the example run ({EXAMPLE}) is not here: run `evalkit demo` from a clone of the "
            "evalkit repository (installed with scripts/setup.sh), or pass --example DIR")
    cfg = load_config(example / "evalkit.toml")
    opts = RunOptions(image_size=cfg.image_size or 64, batch_size=cfg.batch_size or 16,
                      domain=cfg.domain, progress=not quiet)
    click.echo(f"evalkit demo: evaluating {example / 'checkpoints'} "
               f"(served at {opts.image_size} px) into {out}", err=True)
    datasets = load_datasets(cfg.heldout, cfg.sketches, opts.image_size, None, opts.domain)
    announce_datasets(datasets)
    with guarded_run(out):  # OUT's lock; clean ends on SIGINT/SIGTERM/disk full
        summary = evaluate_run(example / "checkpoints", out, datasets, opts, argv=sys.argv)
        print_summary(out, summary)
        for metric, a, b, better in first_vs_last(out):
            verdict = "better" if better else "NOT better"
            click.echo(f"held-out {metric}: first checkpoint {a:.4f} -> last {b:.4f} "
                       f"({verdict})", err=True)
        render_report_safely(out)
    sys.exit(summary.exit_code)
