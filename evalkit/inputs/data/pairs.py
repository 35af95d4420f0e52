"""Held-out paired data: pix2pix AB images, or an ``A/`` + ``B/`` folder pair.

AB images (the seed's ``combine.py`` format) hold the edge image A on the left and the
photo B on the right, side by side, halves of any equal size, JPEG or PNG. Inputs go
through the serving contract (:mod:`evalkit.inputs.data.serving`); targets get the same resize.

Every file of the folder is either loaded or listed in ``Dataset.skipped`` with its reason
(:func:`evalkit.inputs.data.files.scan_folder`): unreadable or malformed files, edge halves that are
blank or inverted *as served*, non-image files, symlinks that loop or leave the folder.
Nothing is fatal but a folder with no usable pair.

Sample ids are file names **with** their extension, so ``x.png`` and ``x.jpg`` are two
samples. In the ``A/`` + ``B/`` layout an edge image and a photo pair by stem; when a stem
is ambiguous (``A/x.png`` and ``A/x.jpg``), files with the very same name pair first
(``A/x.png`` with ``B/x.png``), then a single leftover on each side pairs, and any other
leftover is skipped as ambiguous. The id is the edge image's name (``x.png``).

``meta["edge_detector"]`` is the detector id from ``detector.json`` beside the pairs (written
by ``evalkit edges``), or None when there is none; ``meta["edges"]`` the whole record.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from evalkit.core.hashing import combine, file_sha256
from evalkit.inputs.data.dataset import Dataset, Skipped
from evalkit.inputs.data.files import (
    IMAGE_EXTENSIONS,
    first_line,
    read_image,
    scan_folder,
    served_sketch,
)
from evalkit.inputs.data.samples import RowWriter
from evalkit.inputs.data.serving import target_to_array

__all__ = ["IMAGE_EXTENSIONS", "DatasetError", "list_images", "load_pairs"]

LOADER_VERSION = "pairs-v2"  # v2: ids keep the extension; blank/inverted inputs skipped
DETECTOR_FILE = "detector.json"


class DatasetError(ValueError):
    """A dataset folder that cannot be used at all (message names the folder and fix)."""


def list_images(folder: Path) -> list[Path]:
    """Image files directly in ``folder``, sorted by name (other entries ignored)."""
    return scan_folder(folder, recursive=False)[0]


def _split_ab(im):
    w, h = im.size
    if w < 2 or w % 2:
        raise ValueError(f"AB image is {w}x{h}: its width must be even (edge A and photo B "
                         "side by side, halves of equal size)")
    return im.crop((0, 0, w // 2, h)), im.crop((w // 2, 0, w, h))


def _pair_a_b(root: Path, skipped: list[Skipped]) -> list[tuple[str, list[Path]]]:
    """Pairs of the ``A/`` + ``B/`` layout, by stem (see the module docstring)."""
    a_files, a_skip = scan_folder(root / "A", recursive=False, top=root)
    b_files, b_skip = scan_folder(root / "B", recursive=False, top=root)
    skipped.extend(a_skip + b_skip)
    _, other = scan_folder(root, recursive=False, exclude={"A", "B"})
    skipped.extend(Skipped(s.file, "not read in the A/ + B/ layout (only A/ and B/ are)")
                   for s in other)
    by_stem: dict[str, tuple[list[Path], list[Path]]] = {}
    for p in a_files:
        by_stem.setdefault(p.stem, ([], []))[0].append(p)
    for p in b_files:
        by_stem.setdefault(p.stem, ([], []))[1].append(p)
    items: list[tuple[str, list[Path]]] = []
    for stem in sorted(by_stem):
        a_list, b_list = by_stem[stem]
        same = {p.name for p in a_list} & {p.name for p in b_list}
        pairs = [(root / "A" / n, root / "B" / n) for n in sorted(same)]
        a_left = [p for p in a_list if p.name not in same]
        b_left = [p for p in b_list if p.name not in same]
        if len(a_left) == 1 and len(b_left) == 1:
            pairs.append((a_left[0], b_left[0]))
            a_left, b_left = [], []
        for p, q in pairs:
            items.append((p.name, [p, q]))
        names = ", ".join(f"{p.parent.name}/{p.name}" for p in a_list + b_list)
        for p in a_left:
            reason = ("no photo with this stem in B/" if not b_list else
                      f"ambiguous stem '{stem}' ({names}): rename so each edge image in A/ has "
                      "one photo in B/ with its stem (or the same file name)")
            skipped.append(Skipped(p.relative_to(root).as_posix(), reason))
        for p in b_left:
            reason = ("no edge image with this stem in A/" if not a_list else
                      f"ambiguous stem '{stem}' ({names}): rename so each photo in B/ has one "
                      "edge image in A/ with its stem (or the same file name)")
            skipped.append(Skipped(p.relative_to(root).as_posix(), reason))
    return sorted(items)


def read_detector(root: Path) -> dict | None:
    """The ``detector.json`` record beside the pairs (None when absent or unreadable)."""
    path = root / DETECTOR_FILE
    if not path.is_file():
        return None
    try:
        rec = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None
    return rec if isinstance(rec, dict) else None


def load_pairs(root: str | Path, size: int = 256, name: str = "heldout",
               limit: int | None = None) -> Dataset:
    """Read held-out pairs from ``root`` (AB images, or ``A/`` and ``B/`` subfolders).

    ``ids`` are file names with extension (``pair_00.png``); see the module docstring.
    Raises :class:`DatasetError` when the folder is missing or holds no usable pair.
    """
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"held-out folder {root} does not exist: pass --heldout DIR "
                           "(a folder of AB images, or one with A/ and B/ subfolders)")
    skipped: list[Skipped] = []
    notes: list[str] = []
    if (root / "A").is_dir() and (root / "B").is_dir():
        items = _pair_a_b(root, skipped)
        layout = "A/B"
    else:
        files, skipped = scan_folder(root, recursive=False)
        items = [(p.name, [p]) for p in files]
        layout = "AB"
    if limit is not None:
        items = items[:limit]

    ids: list[str] = []
    hashes: list[str] = []
    # rows stream into arrays that go to disk when large (evalkit.inputs.data.samples)
    inputs = RowWriter(len(items), (size, size, 1), np.float32)
    targets = RowWriter(len(items), (size, size, 3), np.uint8)
    for sid, files in items:
        try:
            im, note = read_image(files[0])
            if layout == "AB":
                a_img, b_img = _split_ab(im)
            else:
                a_img = im
                b_img, note_b = read_image(files[1])
                note = note or note_b
            x, _ = served_sketch(a_img, size)
            y = target_to_array(b_img, size)
        except Exception as exc:  # unreadable, truncated, malformed, blank as served
            skipped.append(Skipped(files[0].relative_to(root).as_posix(), first_line(exc)))
            continue
        if note:
            notes.append(f"{sid}: {note}")
        ids.append(sid)
        inputs.append(x[..., None])
        targets.append(y)
        hashes.extend(f"{f.relative_to(root).as_posix()}:{file_sha256(f)}" for f in files)
    if not ids:
        raise DatasetError(f"no usable image pairs in {root} ({len(skipped)} skipped): expected "
                           "pix2pix AB images (edge left, photo right) or A/ + B/ subfolders")
    content_hash = combine([LOADER_VERSION, f"size={size}", *hashes])
    record = read_detector(root)
    return Dataset(
        name=name, kind="heldout", root=root, ids=ids,
        inputs=inputs.finish(), targets=targets.finish(),
        content_hash=content_hash, size=size, skipped=skipped,
        meta={"layout": layout, "notes": notes,
              "edge_detector": record.get("detector") if record else None,
              "edges": record},
    )
