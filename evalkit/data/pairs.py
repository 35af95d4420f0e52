"""Held-out paired data: pix2pix AB images, or an ``A/`` + ``B/`` folder pair.

AB images (the seed's ``combine.py`` format) hold the edge image A on the left and the
photo B on the right, side by side, halves of any equal size, JPEG or PNG. Inputs go
through the serving contract (:mod:`evalkit.data.serving`); targets get the same resize.
Unreadable or malformed files are reported and skipped, never fatal.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from evalkit.data.dataset import Dataset, Skipped
from evalkit.data.serving import open_image, sketch_to_input, target_to_array
from evalkit.hashing import combine, file_sha256

IMAGE_EXTENSIONS = {".png", ".jpg", ".jpeg", ".bmp", ".webp"}
LOADER_VERSION = "pairs-v1"


class DatasetError(ValueError):
    """A dataset folder that cannot be used at all (message names the folder and fix)."""


def list_images(folder: Path) -> list[Path]:
    """Image files directly in ``folder``, sorted by name."""
    return sorted(p for p in folder.iterdir()
                  if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)


def _split_ab(path: Path):
    im = open_image(path)
    w, h = im.size
    if w < 2 or w % 2:
        raise ValueError(f"AB image is {w}x{h}: its width must be even (edge A and photo B "
                         "side by side, halves of equal size)")
    return im.crop((0, 0, w // 2, h)), im.crop((w // 2, 0, w, h))


def load_pairs(root: str | Path, size: int = 256, name: str = "heldout",
               limit: int | None = None) -> Dataset:
    """Read held-out pairs from ``root`` (AB images, or ``A/`` and ``B/`` subfolders)."""
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"held-out folder {root} does not exist: pass --heldout DIR "
                           "(a folder of AB images, or one with A/ and B/ subfolders)")
    a_dir, b_dir = root / "A", root / "B"
    skipped: list[Skipped] = []
    items: list[tuple[str, list[Path]]] = []  # (sample id, files)
    if a_dir.is_dir() and b_dir.is_dir():
        a_files = {p.stem: p for p in list_images(a_dir)}
        b_files = {p.stem: p for p in list_images(b_dir)}
        for stem in sorted(a_files.keys() | b_files.keys()):
            if stem not in b_files:
                skipped.append(Skipped(str(a_files[stem]), "no photo with this stem in B/"))
            elif stem not in a_files:
                skipped.append(Skipped(str(b_files[stem]), "no edge image with this stem in A/"))
            else:
                items.append((stem, [a_files[stem], b_files[stem]]))
        layout = "A/B"
    else:
        items = [(p.stem, [p]) for p in list_images(root)]
        layout = "AB"
    if limit is not None:
        items = items[:limit]

    ids, inputs, targets, hashes = [], [], [], []
    for sid, files in items:
        try:
            if layout == "AB":
                a_img, b_img = _split_ab(files[0])
            else:
                a_img, b_img = open_image(files[0]), open_image(files[1])
            x = sketch_to_input(a_img, size)
            y = target_to_array(b_img, size)
        except Exception as exc:  # unreadable, truncated, malformed
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            skipped.append(Skipped(str(files[0]), reason))
            continue
        ids.append(sid)
        inputs.append(x)
        targets.append(y)
        hashes.extend(f"{f.relative_to(root)}:{file_sha256(f)}" for f in files)
    if not ids:
        raise DatasetError(f"no usable image pairs in {root} ({len(skipped)} skipped): expected "
                           "pix2pix AB images (edge left, photo right) or A/ + B/ subfolders")
    content_hash = combine([LOADER_VERSION, f"size={size}", *hashes])
    return Dataset(
        name=name, kind="heldout", root=root, ids=ids,
        inputs=np.stack(inputs)[..., None], targets=np.stack(targets),
        content_hash=content_hash, size=size, skipped=skipped,
        meta={"layout": layout},
    )
