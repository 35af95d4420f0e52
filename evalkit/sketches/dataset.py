"""A sketch set as an evaluation :class:`~evalkit.data.dataset.Dataset` (kind ``sketches``).

Inputs go through the serving contract (:func:`evalkit.data.serving.sketch_to_input`), so
the generator sees exactly what the service would feed it. Targets are the reference photos
the manifest names (same resize as held-out targets, :func:`target_to_array`); rows without
one are marked in ``target_mask``; ``targets`` is ``None`` when no row has one (the usual
case: hand drawings are not traced from photos, so only distribution metrics against
``ctx.reference`` and adherence apply).

Selection: with a ``manifest.json``, its entries (those of ``domain`` when given). Without
one, every image under ``root`` (recursively), or under ``root/<domain>/`` when ``domain``
is given and that folder exists. Unreadable files are listed in ``skipped`` (never fatal);
a set with no usable sketch raises :class:`~evalkit.data.pairs.DatasetError`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from evalkit.data.dataset import Dataset, Skipped
from evalkit.data.pairs import IMAGE_EXTENSIONS, DatasetError
from evalkit.data.serving import sketch_to_input, target_to_array
from evalkit.hashing import combine, file_sha256
from evalkit.sketches.manifest import (
    MANIFEST_NAME,
    ManifestError,
    SketchEntry,
    read_manifest,
)

LOADER_VERSION = "sketches-v1"


def _images_under(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*")
                  if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)


def _select(root: Path, domain: str | None) -> tuple[list[SketchEntry], str | None]:
    """Entries to load and the manifest's sha256 (None without a manifest)."""
    if (root / MANIFEST_NAME).is_file():
        try:
            manifest = read_manifest(root)
        except ManifestError as exc:
            raise DatasetError(str(exc)) from exc
        entries = [e for e in manifest.entries if e.file]
        if domain is not None:
            entries = [e for e in entries if e.domain == domain]
            if not entries:
                raise DatasetError(f"{root / MANIFEST_NAME} has no sketch of domain '{domain}' "
                                   f"(domains: {', '.join(manifest.domains()) or 'none'})")
        return entries, file_sha256(root / MANIFEST_NAME)
    folder = root / domain if domain is not None and (root / domain).is_dir() else root
    entries = [SketchEntry(file=p.relative_to(root).as_posix(),
                           domain=domain or (p.relative_to(root).parts[0]
                                             if len(p.relative_to(root).parts) > 1 else ""),
                           provenance="")
               for p in _images_under(folder)]
    return entries, None


def load_sketches(root: str | Path, size: int = 256, name: str = "sketches",
                  domain: str | None = None, limit: int | None = None) -> Dataset:
    """Load the sketch set in ``root`` as a ``sketches`` dataset served at ``size`` px.

    Args:
        root: the set folder (``manifest.json`` + one folder per domain), or any image folder.
        size: served size (the seed serves 256).
        name: the ``dataset`` value results use.
        domain: keep only this domain's sketches (manifest ``domain``, or the subfolder).
        limit: keep the first ``limit`` sketches (sorted by manifest order / file name).

    ``ids`` are the file paths relative to ``root`` without extension (``car/car_01``);
    ``content_hash`` covers the loader version, ``size``, the manifest's bytes and every
    loaded file's (and reference photo's) bytes; ``meta`` holds ``domain`` (the requested
    one, or the sorted list of domains loaded), ``manifest`` (path or None) and ``entries``
    (the manifest entry of each loaded row, in row order).
    """
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"sketch folder {root} does not exist: pass --sketches DIR (a set "
                           "made by `evalkit sketches import`, or any folder of drawings)")
    entries, manifest_hash = _select(root, domain)
    if limit is not None:
        entries = entries[:limit]
    ids: list[str] = []
    inputs: list[np.ndarray] = []
    targets: list[np.ndarray | None] = []
    kept: list[SketchEntry] = []
    skipped: list[Skipped] = []
    hashes: list[str] = []
    for e in entries:
        path = root / e.file
        try:
            x = sketch_to_input(path, size)
        except Exception as exc:  # missing, unreadable, truncated
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            skipped.append(Skipped(e.file, reason))
            continue
        y = None
        if e.reference:
            try:
                y = target_to_array(root / e.reference, size)
                hashes.append(f"{e.reference}:{file_sha256(root / e.reference)}")
            except Exception as exc:
                skipped.append(Skipped(e.reference, f"reference photo of {e.file} not used: "
                                       f"{str(exc).splitlines()[0] if str(exc) else exc!r}"))
        ids.append(str(Path(e.file).with_suffix("").as_posix()))
        inputs.append(x)
        targets.append(y)
        kept.append(e)
        hashes.append(f"{e.file}:{file_sha256(path)}")
    if not ids:
        raise DatasetError(f"no usable sketch in {root}"
                           + (f" for domain '{domain}'" if domain else "")
                           + f" ({len(skipped)} skipped): expected PNG/JPEG drawings, "
                           "dark strokes on white")
    mask = np.array([t is not None for t in targets])
    if mask.any():
        blank = np.zeros((size, size, 3), np.uint8)
        target_arr = np.stack([t if t is not None else blank for t in targets])
        target_mask = None if mask.all() else mask
    else:
        target_arr, target_mask = None, None
    content_hash = combine([LOADER_VERSION, f"size={size}", f"manifest={manifest_hash}",
                            *hashes])
    domains = sorted({e.domain for e in kept if e.domain})
    return Dataset(
        name=name, kind="sketches", root=root, ids=ids,
        inputs=np.stack(inputs)[..., None], targets=target_arr, target_mask=target_mask,
        content_hash=content_hash, size=size, skipped=skipped,
        meta={"domain": domain if domain is not None else domains,
              "manifest": str(root / MANIFEST_NAME) if manifest_hash else None,
              "entries": [e.to_json() for e in kept]},
    )
