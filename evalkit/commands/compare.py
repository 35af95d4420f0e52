"""``evalkit compare OUT_A OUT_B``: two evaluations' picks side by side, per domain."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from evalkit.commands._output import emit, format_options, render

#: ``compare --format csv`` columns, one row per domain and compared metric
COMPARE_COLUMNS = ["domain", "a_checkpoint", "b_checkpoint", "verdict", "margin", "dataset",
                   "metric", "weight", "direction", "a", "b", "diff", "ci_low", "ci_high",
                   "n", "b_better", "clear"]


def compare_rows(cmp: dict) -> list[dict]:
    """The comparison as records (:data:`COMPARE_COLUMNS`)."""
    rows = []
    for d in cmp["domains"]:
        head = {"domain": d["domain"], "a_checkpoint": d["a"]["checkpoint"],
                "b_checkpoint": d["b"]["checkpoint"], "verdict": d["verdict"],
                "margin": d["margin"]}
        rows += [{**head, **m} for m in d["metrics"]] or [head]
    return rows


@click.command()
@click.argument("out_a", type=click.Path(path_type=Path, file_okay=False))
@click.argument("out_b", type=click.Path(path_type=Path, file_okay=False))
@format_options(what="the comparison")
@click.option("--html", "html_path", type=click.Path(path_type=Path, dir_okay=False),
              help="Also write the comparison as an HTML page (the report's compare.html).")
def compare(out_a: Path, out_b: Path, fmt: str, output: Path | None,
            html_path: Path | None) -> None:
    """Compare each domain's pick in OUT_B (e.g. this week's run) with OUT_A's (e.g. the
    last release): per counted metric the paired difference B - A with its 95% bootstrap
    interval on the samples both evaluated, and whether B's pick beats A's head to head
    (B's ranking rule). Both folders need selection.json (evalkit select). Datasets whose
    content differs between the folders are listed, not compared. Exit 0; 1 when some
    domain's B pick loses to A's; 2 when a folder cannot be read. csv: one row per domain
    and compared metric (a domain without one: one row with its verdict)."""
    from evalkit.decide.compare import CompareError, to_text
    from evalkit.decide.compare import compare as do_compare

    try:
        cmp = do_compare(out_a, out_b)
    except CompareError as exc:
        raise click.UsageError(str(exc)) from exc
    emit(render(fmt, compare_rows(cmp), document=cmp, columns=COMPARE_COLUMNS,
                table=lambda: to_text(cmp)), output, "the comparison", fmt)
    if html_path is not None:
        from evalkit.present.report.compare_page import write_compare_page

        try:
            write_compare_page(html_path, cmp, str(out_a), str(out_b))
        except OSError as exc:
            raise click.UsageError(f"cannot write {html_path}: {exc.strerror or exc}; "
                                   "choose a writable --html path") from exc
        click.echo(f"wrote {html_path}", err=True)
    if any(d["margin"] is not None and d["margin"] < 0 and not d["same_pick"]
           for d in cmp["domains"]):
        sys.exit(1)
