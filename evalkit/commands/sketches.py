"""``evalkit sketches import`` and ``evalkit sketches check``.

Exit codes: 0 success; 1 a check failed, or some drawings could not be imported (each is
listed); 2 usage errors (missing paths, bad options).
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import click

from evalkit.commands._output import emit, format_options, render
from evalkit.inputs.data.pairs import IMAGE_EXTENSIONS

_DOMAIN_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


@click.group()
def sketches() -> None:
    """Import and check hand-drawn sketch sets (see human_sketches/README.md)."""


def _expand(sources: tuple[Path, ...]) -> tuple[list[Path], list[tuple[Path, str]]]:
    """Files to import, and the entries of folders that are not importable (with why)."""
    from evalkit.inputs.data.files import scan_folder

    files: list[Path] = []
    skipped: list[tuple[Path, str]] = []
    for s in sources:
        if s.is_dir():
            found, other = scan_folder(s, recursive=True)
            files.extend(found)
            skipped.extend((s / o.file, o.reason) for o in other)
        else:
            files.append(s)
    return files, skipped


def _source_provenance(src: Path) -> str | None:
    """Provenance of ``src`` from a manifest.json in its folder or the one above, if listed."""
    from evalkit.inputs.sketches.manifest import ManifestError, read_manifest

    for root in (src.parent, src.parent.parent):
        if not (root / "manifest.json").is_file():
            continue
        try:
            m = read_manifest(root)
        except ManifestError:
            return None
        try:
            rel = src.resolve().relative_to(root.resolve()).as_posix()
        except ValueError:  # a symlink into another folder
            return None
        entry = m.by_file().get(rel)
        return entry.provenance if entry and entry.provenance else None
    return None


def _target_name(domain_dir: Path, source: Path, digest: str, manifest, domain: str,
                 suffix: str = ".png") -> str:
    """``domain/stem.ext``; re-importing the same source file (same name and bytes) reuses
    its name, any other clash gets ``_2``..."""
    by_file = manifest.by_file()
    source_name, stem = source.name, source.stem
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", stem).strip("._") or "sketch"
    for k in range(1, 10_000):
        name = f"{domain}/{stem if k == 1 else f'{stem}_{k}'}{suffix}"
        entry = by_file.get(name)
        if entry is None and not (domain_dir.parent / name).exists():
            return name
        if (entry is not None and entry.extra.get("source_sha256") == digest
                and entry.extra.get("source_file") == source_name):
            return name
    raise click.ClickException(f"too many files named {stem} in {domain_dir}")


@sketches.command("import")
@click.argument("sources", nargs=-1, required=True,
                type=click.Path(exists=True, path_type=Path))
@click.option("--domain", "-d", required=True, help="Subject of the drawings (car, person...).")
@click.option("--into", "into", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="The sketch set folder (created if needed).")
@click.option("--mode", type=click.Choice(["auto", "digital", "scan"]), default="auto",
              show_default=True,
              help="digital: keep the file byte for byte (app exports); scan: normalize a "
                   "photo/scan of paper; auto: scan when the background is uneven or dark.")
@click.option("--fit", is_flag=True,
              help="Scan mode: crop to the strokes (plus --margin) instead of keeping the page.")
@click.option("--size", default=256, show_default=True, type=click.IntRange(16, 4096),
              help="Served size the drawing is measured at (the run's --image-size); scan "
                   "mode also writes this side.")
@click.option("--margin", default=0.08, show_default=True, type=click.FloatRange(0, 0.45),
              help="With --fit: blank margin on each side, as a fraction of the side.")
@click.option("--provenance", help="Who drew them and how (recorded for every file).")
@click.option("--tag", "tags", multiple=True, help="Tag for every imported sketch (repeatable).")
@click.option("--reference", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Photo the drawing was traced from (only with a single SOURCE file).")
def import_(sources: tuple[Path, ...], domain: str, into: Path, mode: str, fit: bool,
            size: int, margin: float, provenance: str | None, tags: tuple[str, ...],
            reference: Path | None) -> None:
    """Import drawings (files or folders) into the set DIR/<domain>/ + manifest.json.

    Digital mode (app exports: clean or transparent background) stores each file byte for
    byte, as the service receives it. Scan mode (photos and scans of paper, chosen
    automatically for uneven or dark backgrounds) flattens the lighting, fixes polarity,
    binarizes, removes specks too small to survive serving, pads to a square and resizes
    (--fit also crops to the strokes). Each file's line says what was changed; its manifest
    entry records the mode, the provenance and every step. Re-importing replaces the entry.
    """
    from evalkit.core.hashing import file_sha256
    from evalkit.inputs.data.files import first_line
    from evalkit.inputs.sketches.importer import ImportRefused, import_drawing
    from evalkit.inputs.sketches.manifest import (
        Manifest,
        ManifestError,
        SketchEntry,
        read_manifest,
        write_manifest,
    )

    if not _DOMAIN_RE.match(domain):
        raise click.UsageError(f"--domain '{domain}' must be a plain folder name "
                               "(letters, digits, '_', '-', '.')")
    if fit and mode == "digital":
        raise click.UsageError("--fit crops the drawing: it applies to --mode scan (or auto) "
                               "only; digital mode keeps the file as it is")
    files, failed = _expand(sources)
    if not files and not failed:
        raise click.UsageError("no image files in the given sources "
                               f"(extensions: {', '.join(sorted(IMAGE_EXTENSIONS))})")
    if reference is not None and len(files) != 1:
        raise click.UsageError("--reference needs exactly one SOURCE drawing")
    into.mkdir(parents=True, exist_ok=True)
    try:
        manifest = read_manifest(into) if (into / "manifest.json").exists() else Manifest()
    except ManifestError as exc:
        raise click.UsageError(str(exc)) from exc
    domain_dir = into / domain
    domain_dir.mkdir(exist_ok=True)

    from PIL import Image

    imported = 0
    for src in files:
        try:
            res = import_drawing(src, mode=mode, size=size, fit=fit, margin=margin)
        except ImportRefused as exc:
            failed.append((src, f"not imported: {exc}"))
            continue
        except Exception as exc:  # unreadable, empty
            failed.append((src, first_line(exc)))
            continue
        digest = file_sha256(src)
        name = _target_name(domain_dir, src, digest, manifest, domain, res.suffix)
        if isinstance(res.data, bytes):
            (into / name).write_bytes(res.data)
        else:
            Image.fromarray(res.data, mode="L").save(into / name, optimize=True)
        origin = _source_provenance(src)
        who = provenance or origin or "original author not recorded (pass --provenance)"
        entry_prov = f"{who}; imported from '{src.name}' by `evalkit sketches import`"
        ref_name = None
        if reference is not None:
            ref_name = f"{domain}/references/{Path(name).stem}{reference.suffix.lower()}"
            (into / ref_name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(reference, into / ref_name)
        extra = {"source_file": src.name, "source_sha256": digest,
                 "import": {"mode": res.mode, "reason": res.reason, "changes": res.changes,
                            "served": {k: v for k, v in res.served.items() if k != "defect"}}}
        if res.mode == "scan":
            extra["normalization"] = res.info
        manifest.upsert(SketchEntry(
            file=name, domain=domain, provenance=entry_prov, reference=ref_name,
            tags=sorted(set(tags) | {"imported", res.mode}), extra=extra))
        imported += 1
        click.echo(f"{src} -> {into / name}: {res.summary()}")
    if imported:
        write_manifest(manifest, into)
    click.echo(f"imported {imported} of {len(files)} into {into} (domain '{domain}')")
    if failed:
        click.echo(f"{len(failed)} not imported:", err=True)
        for src, reason in failed:
            click.echo(f"  {src}: {reason}", err=True)
        raise SystemExit(1)


@sketches.command("check")
@click.argument("directory", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--image-size", default=256, show_default=True, type=click.IntRange(16, 4096),
              help="Size the sketches are served at (the run's --image-size).")
@click.option("--strict", is_flag=True, help="Exit 1 on warnings (style notes) too.")
@format_options(what="the check")
@click.option("--json", "as_json", is_flag=True,
              help="Same as --format json (kept for scripts).")
def check(directory: Path, image_size: int, strict: bool, fmt: str, output: Path | None,
          as_json: bool) -> None:
    """Validate the sketch set in DIRECTORY; exit 1 and list the errors if any.

    Errors (what `evalkit run` skips or refuses too, judged by the same function): manifest
    schema and provenance, paths outside the set, missing/unlisted/unreadable files,
    drawings blank, nearly blank or inverted as served at --image-size (16-bit, grey+alpha,
    palette transparency: the cause is named). Warnings (the drawing is scored; exit 0
    unless --strict): faint strokes at this size, duplicates, non-square images,
    stroke-width outliers. csv: one row per problem (file, severity, check, message).
    """
    import numpy as np

    from evalkit.inputs.sketches.check import check_set

    report = check_set(directory, serve_size=image_size)
    failed = not report.ok or (strict and report.warnings)
    fmt = "json" if as_json else fmt

    def table() -> str:
        domains = report.domains
        widths = [s.stroke_width for s in report.stats]
        summary = (f"{report.n_files} sketches, domains: {', '.join(d or '(none)' for d in domains)}"
                   + (f", stroke width median {np.median(widths):.2f} px "
                      f"(range {min(widths):.2f}-{max(widths):.2f})" if widths else ""))
        head = "FAILED" if failed else "OK"
        lines = [f"{head}: {directory}: {len(report.errors)} error(s), "
                 f"{len(report.warnings)} warning(s) at {image_size} px; {summary}"]
        lines += [f"  error {p}" for p in report.errors]
        lines += [f"  warning {p}" for p in report.warnings]
        return "\n".join(lines)

    problems = [{**p.__dict__, "severity": p.severity} for p in report.problems]
    doc = {"ok": report.ok, "n_files": report.n_files,
           "n_errors": len(report.errors), "n_warnings": len(report.warnings),
           "problems": problems,
           "stroke_width_px": {s.file: round(s.stroke_width, 3) for s in report.stats}}
    emit(render(fmt, problems, document=doc, table=table,
                columns=["file", "severity", "check", "message"]), output, "the check", fmt)
    if failed:
        raise SystemExit(1)
