"""``evalkit report OUT``: render the HTML report of an evaluation folder."""

from __future__ import annotations

from pathlib import Path

import click


@click.command()
@click.argument("out", type=click.Path(path_type=Path, file_okay=False))
@click.option("--config", "config_path", type=click.Path(path_type=Path, dir_okay=False),
              help="evalkit.toml with the [ranking] rule [default: the run's, else defaults].")
def report(out: Path, config_path: Path | None) -> None:
    """Render OUT/report/index.html (ranking, grids, plots, one page per checkpoint).

    The folder is self-contained (images beside the pages, no network requests) and opens
    from disk in any browser. Exit 0 on success, 2 when OUT has no results or the config
    is invalid.
    """
    from evalkit.config import ConfigError
    from evalkit.report import render_report
    from evalkit.store import ResultsError

    try:
        path = render_report(out, config_path)
    except (ConfigError, ResultsError) as exc:
        raise click.UsageError(str(exc)) from exc
    click.echo(str(path))
