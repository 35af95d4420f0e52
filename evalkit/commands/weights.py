"""``evalkit weights status|fetch|import``: the pretrained files FID, KID and LPIPS need.

``status`` works offline and lists every file (name, where evalkit looks, size, sha256, found
or not); ``fetch`` downloads them on a connected machine; ``import FILE`` checks a file fetched
elsewhere and puts it where evalkit looks. See :mod:`evalkit.measure.weights` for the lookup order.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import click

from evalkit.commands import error_line


def _fmt_size(n: int | None) -> str:
    if n is None:
        return "-"
    return f"{n / 1e6:.1f} MB" if n >= 1e5 else f"{n} B"


@click.group()
def weights() -> None:
    """Status, fetch and import of pretrained metric weights (FID/KID Inception, LPIPS AlexNet).

    evalkit looks in $EVALKIT_WEIGHTS_DIR first, then in the torch hub cache
    ($TORCH_HOME/hub/checkpoints, default ~/.cache/torch/hub/checkpoints).
    """


@weights.command("status")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option("--check", is_flag=True, help="Exit 1 when any file is missing or fails its hash.")
def status_cmd(as_json: bool, check: bool) -> None:
    """List each weight file: metrics, state, size, sha256 and location (works offline).

    Exit 0; with --check, exit 1 when any file is missing or fails its hash check.
    """
    from evalkit.measure import weights as W
    rows = W.status()
    if as_json:
        click.echo(json.dumps({"search_dirs": [str(d) for d in W.search_dirs()],
                               "files": [r.as_dict() for r in rows]}, indent=2))
    else:
        click.echo("evalkit looks in: " + ", ".join(str(d) for d in W.search_dirs())
                   + ("" if os.environ.get(W.ENV_DIR) else f"  (set {W.ENV_DIR} to add a folder)"))
        for r in rows:
            click.echo(f"\n{r.name}  [{r.state}]")
            click.echo(f"  used by:  {', '.join(r.used_by)}  ({r.description})")
            click.echo(f"  location: {r.path if r.path else 'not found in ' + ', '.join(map(str, r.looked_in))}")
            size = _fmt_size(r.size) + (" (expected)" if r.path is None and r.size else "")
            click.echo(f"  size:     {size}")
            click.echo(f"  sha256:   {r.sha256 or '-'}")
            click.echo(f"  expected: {r.expected}  (check: {r.hash_check})")
        bad = [r for r in rows if r.state in ("missing", "bad-hash")]
        if bad:
            click.echo(f"\n{len(bad)} file(s) unusable: run 'evalkit weights fetch' on a connected "
                       "machine, or 'evalkit weights import FILE' with a copy fetched elsewhere.")
    if check and any(r.state in ("missing", "bad-hash") for r in rows):
        sys.exit(1)


@weights.command("fetch")
@click.argument("names", nargs=-1)
@click.option("--dest", type=click.Path(path_type=Path, file_okay=False),
              help="Folder to save into [default: $EVALKIT_WEIGHTS_DIR, else the torch hub cache].")
@click.option("--force", is_flag=True, help="Download even when a valid copy is present.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def fetch_cmd(names: tuple[str, ...], dest: Path | None, force: bool, quiet: bool) -> None:
    """Download weight files (NAMES: inception, alexnet; default all) and check their sha256.

    Needs internet. Exit 1 when a download fails or a hash does not match.
    """
    from evalkit.measure import weights as W
    unknown = [n for n in names if n not in W.REGISTRY]
    if unknown:
        raise click.UsageError(f"unknown weight file(s) {', '.join(unknown)}; "
                               f"choose from {', '.join(W.REGISTRY)}")
    try:
        W.fetch(list(names) or None, dest=dest, force=force, progress=not quiet,
                log=lambda s: click.echo(s, err=True))
    except (OSError, ValueError) as exc:
        click.echo(error_line(str(exc)), err=True)
        click.echo("no internet here? fetch on a connected machine and copy the file over with "
                   "'evalkit weights import FILE'", err=True)
        sys.exit(1)


@weights.command("import")
@click.argument("files", nargs=-1, required=True,
                type=click.Path(path_type=Path, dir_okay=False, exists=True))
@click.option("--dest", type=click.Path(path_type=Path, file_okay=False),
              help="Folder to copy into [default: $EVALKIT_WEIGHTS_DIR, else the torch hub cache].")
def import_cmd(files: tuple[Path, ...], dest: Path | None) -> None:
    """Check FILE(s) fetched elsewhere against the known sha256 and copy them into place.

    A file is recognised by its hash, not its name. Exit 2 when a file matches nothing.
    """
    from evalkit.measure import weights as W
    failed = False
    for f in files:
        try:
            target = W.import_file(f, dest=dest)
        except ValueError as exc:
            click.echo(error_line(str(exc)), err=True)
            failed = True
            continue
        click.echo(f"{f} -> {target} (hash ok)")
    if failed:
        sys.exit(2)
