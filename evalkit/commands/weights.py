"""``evalkit weights status|fetch|import``: the pretrained files FID, KID and LPIPS need.

``status`` works offline and lists every file (name, where evalkit looks, size, sha256, found
or not); ``fetch`` downloads them on a connected machine; ``import FILE`` checks a file fetched
elsewhere and puts it where evalkit looks. See :mod:`evalkit.measure.weights` for the lookup order.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from evalkit.commands import error_line, is_quiet, quiet_option
from evalkit.commands._output import emit, format_options, is_stdout, render


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
@format_options(what="the status")
@click.option("--json", "as_json", is_flag=True,
              help="Same as --format json (kept for scripts).")
@click.option("--check", "--require", "check", is_flag=True,
              help="Also exit 1 when a file is not installed (missing).")
def status_cmd(fmt: str, output: Path | None, as_json: bool, check: bool) -> None:
    """List each weight file: metrics, state, size, sha256 and location (works offline).

    States: found, bundled (inside torchmetrics), missing (not installed: the metrics it
    feeds are skipped), bad-hash (present but corrupt, truncated or other weights),
    unreadable (present, no read permission). Exit 1 when a file is present but unusable
    (bad-hash, unreadable), naming the file, the cause and the fix; a missing file is
    exit 0 (it only disables its metrics) unless --check/--require. json: {"search_dirs",
    "files": [...]}; csv: one row per file.
    """
    from evalkit.measure import weights as W

    fmt = "json" if as_json else fmt
    rows = W.status()
    missing = [r for r in rows if r.state == "missing"]
    bad = [r for r in rows if r.unusable]
    text = render(fmt, [_csv_row(r) for r in rows], table=lambda: _table(W, rows),
                  document={"search_dirs": [str(d) for d in W.search_dirs()],
                            "files": [r.as_dict() for r in rows]})
    emit(text, output, "weights status", fmt)
    # machine output on stdout carries state/problem/fix itself; elsewhere say it on stderr
    if fmt == "table" or not is_stdout(output):
        for r in bad:
            click.echo(error_line(f"{r.name} at {r.path} {r.problem}; {', '.join(r.used_by)} "
                                  f"cannot run; fix: {r.fix()}"), err=True)
    if bad or (check and missing):
        sys.exit(1)


def _csv_row(r) -> dict:
    d = r.as_dict()
    return {k: d[k] for k in ("key", "name", "state", "used_by", "path", "size", "sha256",
                              "expected", "hash_check", "problem", "fix")}


def _table(W, rows) -> str:
    lines = ["evalkit looks in: " + ", ".join(str(d) for d in W.search_dirs())
             + ("" if os.environ.get(W.ENV_DIR) else f"  (set {W.ENV_DIR} to add a folder)")]
    for r in rows:
        lines.append(f"\n{r.name}  [{r.state}]")
        lines.append(f"  used by:  {', '.join(r.used_by)}  ({r.description})")
        where = r.path if r.path else "not found in " + ", ".join(map(str, r.looked_in))
        lines.append(f"  location: {where}")
        size = _fmt_size(r.size) + (" (expected)" if r.path is None and r.size else "")
        lines.append(f"  size:     {size}")
        lines.append(f"  sha256:   {r.sha256 or '-'}")
        lines.append(f"  expected: {r.expected}  (check: {r.hash_check})")
        if r.problem:
            lines.append(f"  problem:  {r.problem}")
        if not r.usable:
            lines.append(f"  fix:      {r.fix()}")
    missing = [r for r in rows if r.state == "missing"]
    bad = [r for r in rows if r.unusable]
    if missing:
        off = sorted({m for r in missing for m in r.used_by})
        lines.append(f"\n{len(missing)} file(s) not installed: {', '.join(off)} will be "
                     "skipped; run 'evalkit weights fetch' on a connected machine, or "
                     "'evalkit weights import FILE' with a copy fetched elsewhere.")
    if bad:
        lines.append(f"\n{len(bad)} file(s) present but unusable: "
                     + "; ".join(f"{r.name} ({r.state})" for r in bad))
    return "\n".join(lines)


@weights.command("fetch")
@click.argument("names", nargs=-1)
@click.option("--dest", type=click.Path(path_type=Path, file_okay=False),
              help="Folder to save into [default: $EVALKIT_WEIGHTS_DIR, else the torch hub cache].")
@click.option("--force", is_flag=True, help="Download even when a valid copy is present.")
@quiet_option
def fetch_cmd(names: tuple[str, ...], dest: Path | None, force: bool) -> None:
    """Download weight files (NAMES: inception, alexnet; default all) and check their sha256.

    Needs internet. Exit 1 when a download fails or a hash does not match.
    """
    from evalkit.measure import weights as W
    unknown = [n for n in names if n not in W.REGISTRY]
    if unknown:
        raise click.UsageError(f"unknown weight file(s) {', '.join(unknown)}; "
                               f"choose from {', '.join(W.REGISTRY)}")
    try:
        W.fetch(list(names) or None, dest=dest, force=force, progress=not is_quiet(),
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
