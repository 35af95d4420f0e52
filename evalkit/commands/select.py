"""``evalkit select OUT [--export DIR]``: choose the deployment checkpoint."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from evalkit.commands._output import emit, format_options, render

#: ``select --format csv`` columns, one row per domain (a domain with nothing selected: its
#: ``error``, the rest empty)
SELECTION_COLUMNS = ["domain", "checkpoint", "step", "content_hash", "p_first", "stable",
                     "runner_up", "margin", "error"]


def selection_rows(sel: dict) -> list[dict]:
    """One record per domain of a selection (:data:`SELECTION_COLUMNS`)."""
    rows = []
    for d, e in sel.get("domains", {}).items():
        st, ru = e.get("stability") or {}, e.get("runner_up") or {}
        rows.append({"domain": d, "checkpoint": e.get("checkpoint"), "step": e.get("step"),
                     "content_hash": e.get("content_hash"), "p_first": st.get("p_first"),
                     "stable": st.get("stable"), "runner_up": ru.get("checkpoint"),
                     "margin": ru.get("margin"), "error": None})
    for d, err in sel.get("errors", {}).items():
        rows.append({"domain": d, "error": err})
    return rows


@click.command()
@click.argument("out", type=click.Path(path_type=Path, file_okay=False))
@click.option("--config", "config_path", type=click.Path(path_type=Path, dir_okay=False),
              help="evalkit.toml with the [ranking] rule [default: the run's, else defaults].")
@click.option("--export", "export_dir", type=click.Path(path_type=Path, file_okay=False),
              help="Write the chosen checkpoint here: the seed's layout for TF checkpoints "
                   "(checkpoint + ckpt-1.index + ckpt-1.data-*), other formats copied as "
                   "they are.")
@click.option("--force", is_flag=True, help="Replace checkpoint files in a non-empty --export.")
@format_options(what="the selection")
@click.option("--json", "as_json", is_flag=True,
              help="Same as --format json (selection.json; kept for scripts).")
def select(out: Path, config_path: Path | None, export_dir: Path | None, force: bool,
           fmt: str, output: Path | None, as_json: bool) -> None:
    """Choose the checkpoint to deploy from the results in OUT, one per domain.

    Ranks checkpoints head to head (weighted pairwise majority; [ranking] method =
    "ranks": weighted normalized ranks) over the metrics of [ranking] in evalkit.toml (see
    docs/ranking.md), measures how often each comes first over bootstrap
    resamples of the samples, writes OUT/selection.json and prints why. --export DIR writes
    DIR/<domain>/ (checkpoint + ckpt-1.*) per domain, the seed's serving layout (flat for a
    run without domains). An existing OUT/report is refreshed so it shows this choice.
    --format json prints selection.json; csv one row per domain (domain, checkpoint, step,
    content_hash, p_first, stable, runner_up, margin, error). Exit 0 on success, 1 when
    some domain has nothing to select, 2 when nothing can be selected or the inputs are
    unusable.
    """
    import os

    from evalkit.core.config import ConfigError
    from evalkit.decide.selection import SelectionError, explain_all, summary_table
    from evalkit.decide.selection import select as do_select
    from evalkit.present.deploy import export_selection
    from evalkit.store.results import ResultsError

    writable = os.access(out, os.W_OK)  # a read-only OUT: select, print, write nothing
    try:
        sel = do_select(out, config_path, write=writable)
    except (ConfigError, ResultsError, SelectionError) as exc:
        raise click.UsageError(str(exc)) from exc
    fmt = "json" if as_json else fmt
    # table: the decision at a glance first, then why; json: selection.json; csv: per domain
    emit(render(fmt, selection_rows(sel), document=sel, columns=SELECTION_COLUMNS,
                table=lambda: summary_table(sel) + "\n\n" + explain_all(sel)),
         output, "the selection", fmt)
    if writable:
        click.echo(f"selection: {out / 'selection.json'}", err=True)
        if (out / "report" / "index.html").is_file():  # the page must not contradict it
            from evalkit.commands.run import render_report_safely

            render_report_safely(out, config_path)  # the same rule as this selection
    else:
        click.echo(f"{out} is read-only: selection.json not written", err=True)
    if export_dir is not None:
        try:
            written = export_selection(sel, export_dir, force=force)
        except SelectionError as exc:
            raise click.UsageError(str(exc)) from exc
        for d, dest in written.items():
            entry = sel["domains"][d]
            click.echo(f"exported {entry['checkpoint']} as {dest} (content hash "
                       f"{entry['content_hash'][:12]} verified)", err=True)
    if sel.get("errors"):
        sys.exit(1)
