"""A sketch set as an evaluation :class:`~evalkit.inputs.data.dataset.Dataset` (kind ``sketches``).

Inputs go through the serving contract (:func:`evalkit.inputs.data.serving.sketch_to_input`), so
the generator sees exactly what the service would feed it. Targets are the reference photos
the manifest names (same resize as held-out targets, :func:`target_to_array`); rows without
one are marked in ``target_mask``; ``targets`` is ``None`` when no row has one (the usual
case: hand drawings are not traced from photos, so only distribution metrics against
``ctx.reference`` and adherence apply).

Selection: with a ``manifest.json``, its entries (those of ``domain`` when given). Without
one, every image under ``root`` (recursively), or under ``root/<domain>/`` when ``domain``
is given and that folder exists. Nothing is hidden (``Dataset.skipped`` lists each file
left out, with its reason): unreadable files; sketches that are blank or inverted *as
served* (16-bit, grey+alpha, palette transparency: the cause is named); a manifest entry
listed twice (the first is used); a manifest path outside the set (absolute, ``..``, a
symlink leaving it: the same confinement as ``evalkit sketches check``); images in the
set's folders that the manifest does not list; non-image files, symlink loops. Animated
images use their first frame, said in ``meta["notes"]``. A set with no usable sketch
raises :class:`~evalkit.inputs.data.pairs.DatasetError`.
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath

import numpy as np

from evalkit.core.hashing import combine, file_sha256
from evalkit.inputs.data.dataset import Dataset, Skipped
from evalkit.inputs.data.files import confine, first_line, read_image, scan_folder, served_sketch
from evalkit.inputs.data.pairs import DatasetError
from evalkit.inputs.data.samples import RowWriter
from evalkit.inputs.data.serving import target_to_array
from evalkit.inputs.sketches.manifest import (
    MANIFEST_NAME,
    ManifestError,
    SketchEntry,
    read_manifest,
)

LOADER_VERSION = "sketches-v2"  # v2: ids keep the extension; blank/inverted skipped


def _manifest_entries(root: Path, domain: str | None
                      ) -> tuple[list[SketchEntry], str, list[Skipped]]:
    """Manifest entries to load (duplicates and refused paths left out, listed)."""
    try:
        manifest = read_manifest(root)
    except ManifestError as exc:
        raise DatasetError(str(exc)) from exc
    entries: list[SketchEntry] = []
    skipped: list[Skipped] = []
    first: dict[str, int] = {}
    scope = [(i, e) for i, e in enumerate(manifest.entries, start=1)
             if domain is None or e.domain == domain]
    if domain is not None and not scope:
        raise DatasetError(f"{root / MANIFEST_NAME} has no sketch of domain '{domain}' "
                           f"(domains: {', '.join(manifest.domains()) or 'none'})")
    for i, e in scope:
        if not e.file:
            skipped.append(Skipped(f"{MANIFEST_NAME} entry {i}", "entry has no \"file\""))
            continue
        key = PurePosixPath(e.file).as_posix()  # "./car/x.png" is "car/x.png"
        if key in first:
            skipped.append(Skipped(e.file, f"listed twice in {MANIFEST_NAME} (entry {i}); the "
                                           f"first (entry {first[key]}) is used"))
            continue
        first[key] = i
        _, reason = confine(root, e.file)
        if reason:
            skipped.append(Skipped(e.file, f"refused: {reason}"))
            continue
        entries.append(e)
    # Files in the set's folders that the manifest does not list are reported, not hidden.
    listed = set(first) | {PurePosixPath(e.reference).as_posix()
                           for e in manifest.entries if e.reference}
    folder = root / domain if domain is not None else root
    if folder.is_dir():
        found, other = scan_folder(folder, recursive=True, top=root, exclude=listed)
        skipped.extend(other)
        skipped.extend(Skipped(p.relative_to(root).as_posix(), f"not listed in {MANIFEST_NAME}: "
                               "add an entry (`evalkit sketches import`) or remove the file")
                       for p in found if p.relative_to(root).as_posix() not in listed)
    return entries, file_sha256(root / MANIFEST_NAME), skipped


def _select(root: Path, domain: str | None
            ) -> tuple[list[SketchEntry], str | None, list[Skipped]]:
    """Entries to load, the manifest's sha256 (None without one) and the files left out."""
    if (root / MANIFEST_NAME).is_file():
        return _manifest_entries(root, domain)
    folder = root / domain if domain is not None and (root / domain).is_dir() else root
    found, skipped = scan_folder(folder, recursive=True, top=root)
    entries = []
    for p in found:
        rel = p.relative_to(root)
        entries.append(SketchEntry(file=rel.as_posix(),
                                   domain=domain or (rel.parts[0] if len(rel.parts) > 1 else ""),
                                   provenance=""))
    return entries, None, skipped


def load_sketches(root: str | Path, size: int = 256, name: str = "sketches",
                  domain: str | None = None, limit: int | None = None) -> Dataset:
    """Load the sketch set in ``root`` as a ``sketches`` dataset served at ``size`` px.

    Args:
        root: the set folder (``manifest.json`` + one folder per domain), or any image folder.
        size: served size (the seed serves 256).
        name: the ``dataset`` value results use.
        domain: keep only this domain's sketches (manifest ``domain``, or the subfolder).
        limit: keep the first ``limit`` sketches (sorted by manifest order / file name).

    ``ids`` are the file paths relative to ``root`` with extension (``car/car_01.png``),
    unique (a file listed twice is loaded once);
    ``content_hash`` covers the loader version, ``size``, the manifest's bytes and every
    loaded file's (and reference photo's) bytes; ``meta`` holds ``domain`` (the requested
    one, or the sorted list of domains loaded), ``manifest`` (path or None) and ``entries``
    (the manifest entry of each loaded row, in row order).
    """
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"sketch folder {root} does not exist: pass --sketches DIR (a set "
                           "made by `evalkit sketches import`, or any folder of drawings)")
    entries, manifest_hash, skipped = _select(root, domain)
    if limit is not None:
        entries = entries[:limit]
    ids: list[str] = []
    # rows stream into arrays that go to disk when large (evalkit.inputs.data.samples)
    inputs = RowWriter(len(entries), (size, size, 1), np.float32)
    targets = RowWriter(len(entries), (size, size, 3), np.uint8)
    has_target: list[bool] = []
    kept: list[SketchEntry] = []
    notes: list[str] = []
    hashes: list[str] = []
    for e in entries:
        path = root / e.file
        try:
            x, note = served_sketch(path, size)
        except Exception as exc:  # missing, unreadable, truncated, blank/inverted as served
            skipped.append(Skipped(e.file, first_line(exc)))
            continue
        if note:
            notes.append(f"{e.file}: {note}")
        y = None
        if e.reference:
            ref, reason = confine(root, e.reference)
            try:
                if reason:
                    raise ValueError(f"refused: {reason}")
                y = target_to_array(read_image(ref)[0], size)
                hashes.append(f"{e.reference}:{file_sha256(ref)}")
            except Exception as exc:
                skipped.append(Skipped(e.reference, f"reference photo of {e.file} not used: "
                                       f"{first_line(exc)}"))
        ids.append(e.file)
        inputs.append(x[..., None])
        targets.append(y if y is not None else np.zeros((size, size, 3), np.uint8))
        has_target.append(y is not None)
        kept.append(e)
        hashes.append(f"{e.file}:{file_sha256(path)}")
    if not ids:
        raise DatasetError(f"no usable sketch in {root}"
                           + (f" for domain '{domain}'" if domain else "")
                           + f" ({len(skipped)} skipped): expected PNG/JPEG drawings, "
                           "dark strokes on white")
    mask = np.array(has_target, dtype=bool)
    if mask.any():  # rows without a reference photo hold a blank image
        target_arr = targets.finish()
        target_mask = None if mask.all() else mask
    else:
        target_arr, target_mask = None, None
    content_hash = combine([LOADER_VERSION, f"size={size}", f"manifest={manifest_hash}",
                            *hashes])
    domains = sorted({e.domain for e in kept if e.domain})
    return Dataset(
        name=name, kind="sketches", root=root, ids=ids,
        inputs=inputs.finish(), targets=target_arr, target_mask=target_mask,
        content_hash=content_hash, size=size, skipped=skipped,
        meta={"domain": domain if domain is not None else domains,
              "manifest": str(root / MANIFEST_NAME) if manifest_hash else None,
              "entries": [e.to_json() for e in kept], "notes": notes},
    )
