"""``evalkit report OUT``: render the HTML report of an evaluation folder."""

from __future__ import annotations

import errno
from pathlib import Path

import click


@click.command()
@click.argument("out", type=click.Path(path_type=Path, file_okay=False))
@click.option("--config", "config_path", type=click.Path(path_type=Path, dir_okay=False),
              help="evalkit.toml with the [ranking] rule [default: the run's, else defaults].")
@click.option("--dest", type=click.Path(path_type=Path, file_okay=False),
              help="Write the report folder here [default: OUT/report] (e.g. OUT is read-only).")
@click.option("--single-file", "single_file", type=click.Path(path_type=Path, dir_okay=False),
              help="Write the whole report as ONE self-contained HTML file here instead "
                   "(images embedded, domain pages as sections): for a pull request or an "
                   "MLflow run.")
def report(out: Path, config_path: Path | None, dest: Path | None,
           single_file: Path | None) -> None:
    """Render OUT/report/index.html (ranking, grids, plots, one page per checkpoint).

    The folder is self-contained (images beside the pages, no network requests) and opens
    from disk in any browser. Exit 0 on success, 2 when OUT has no results or the config
    is invalid, the store is damaged or OUT cannot be written (then pass --dest).
    """
    from evalkit.core.config import ConfigError
    from evalkit.present.report import render_report
    from evalkit.store.results import ResultsError

    target = dest if dest is not None else out / "report"
    if single_file is not None:
        from evalkit.present.report.single_file import write_single_file

        target = single_file
    try:
        if single_file is not None:
            path = write_single_file(out, single_file, config_path)
            click.echo(f"{path} ({path.stat().st_size / 1e6:.1f} MB, one file)")
            return
        path = render_report(out, config_path, dest=dest)
    except (ConfigError, ResultsError) as exc:
        raise click.UsageError(str(exc)) from exc
    except PermissionError as exc:  # e.g. a read-only OUT (the results were read fine)
        raise click.UsageError(f"cannot write the report to {target} ({exc.strerror}): pass "
                               "--dest DIR to write it elsewhere") from exc
    except OSError as exc:
        if exc.errno != errno.EROFS:
            raise
        raise click.UsageError(f"cannot write the report to {target} (read-only file "
                               "system): pass --dest DIR to write it elsewhere") from exc
    click.echo(str(path))
