"""``evalkit select OUT [--export DIR]``: choose the deployment checkpoint."""

from __future__ import annotations

from pathlib import Path

import click


@click.command()
@click.argument("out", type=click.Path(path_type=Path, file_okay=False))
@click.option("--config", "config_path", type=click.Path(path_type=Path, dir_okay=False),
              help="evalkit.toml with the [ranking] rule [default: the run's, else defaults].")
@click.option("--export", "export_dir", type=click.Path(path_type=Path, file_okay=False),
              help="Write the chosen checkpoint here: the seed's layout for TF checkpoints "
                   "(checkpoint + ckpt-1.index + ckpt-1.data-*), other formats copied as "
                   "they are.")
@click.option("--force", is_flag=True, help="Replace checkpoint files in a non-empty --export.")
@click.option("--json", "as_json", is_flag=True, help="Print selection.json instead of prose.")
def select(out: Path, config_path: Path | None, export_dir: Path | None, force: bool,
           as_json: bool) -> None:
    """Choose the checkpoint to deploy from the results in OUT.

    Ranks checkpoints by weighted normalized ranks over the metrics of [ranking] in
    evalkit.toml (see docs/ranking.md), measures how often each comes first over bootstrap
    resamples of the samples, writes OUT/selection.json and prints why. Exit 0 on success,
    2 when nothing can be selected or the inputs are unusable.
    """
    import json

    from evalkit.config import ConfigError
    from evalkit.selection import SelectionError
    from evalkit.selection import select as do_select
    from evalkit.store import ResultsError

    try:
        sel = do_select(out, config_path)
    except (ConfigError, ResultsError, SelectionError) as exc:
        raise click.UsageError(str(exc)) from exc
    if as_json:
        click.echo(json.dumps(sel, indent=2))
    else:
        click.echo(sel["explanation"])
    click.echo(f"selection: {out / 'selection.json'}", err=True)
    if export_dir is not None:
        try:
            from evalkit.sources import export

            dest = export(sel, export_dir, force=force)
        except SelectionError as exc:
            raise click.UsageError(str(exc)) from exc
        click.echo(f"exported {sel['checkpoint']} as {dest} (content hash "
                   f"{sel['content_hash'][:12]} verified)", err=True)
