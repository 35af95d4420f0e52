"""``select --export``: write the chosen checkpoint where a service can pick it up.

* the seed's TF checkpoints: :func:`evalkit.selection.export_checkpoint` (the seed's
  ``checkpoint`` + ``ckpt-1.*`` layout);
* every other kind: the file (``.pth``, ``.keras``, ``.h5``, ``.onnx``) or SavedModel
  folder copied as it is, under its own name, beside ``selection.json`` (provenance).

The source is hashed before copying (it must still be what was evaluated: its files hash,
possibly combined with a named contract, must equal the selection's content hash) and the
copy after (it must hash the same).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from evalkit.checkpoints.discover import CheckpointRef, settings_hash

SELECTION_NAME = "selection.json"


def ref_for_path(path: Path) -> CheckpointRef | None:
    """The single-file or folder checkpoint at ``path`` (None: a TF prefix or nothing)."""
    from evalkit.sources import exported, torch_pix2pix

    if path.is_dir() and (path / "saved_model.pb").is_file():
        return CheckpointRef(path.name, 0, path, exported.saved_model_files(path),
                             kind=exported.SAVED_MODEL)
    kinds = {".pth": torch_pix2pix.KIND, ".keras": exported.KERAS, ".h5": exported.KERAS,
             ".onnx": exported.ONNX}
    if path.is_file() and path.suffix in kinds:
        return CheckpointRef(path.name, 0, path, [path], kind=kinds[path.suffix])
    return None


def _matches(files_hash: str, want: str | None) -> bool:
    from evalkit.sources.contracts import CONTRACTS

    if not want:
        return True
    return want in {files_hash, *(settings_hash(files_hash, {"contract": c}) for c in CONTRACTS)}


def export(selection: dict, dest: str | Path, force: bool = False) -> Path:
    """Export the selected checkpoint into ``dest``; returns the exported path (the
    ``ckpt-1`` prefix for the seed's format, else the copied file or folder).

    Raises :class:`evalkit.selection.SelectionError` when the source is gone or changed
    since evaluation, ``dest`` is not empty (without ``force``), or the copy is corrupt.
    """
    from evalkit.selection import EXPORT_PREFIX, SelectionError, export_checkpoint

    dest = Path(dest)
    if not selection.get("path"):
        raise SelectionError("the selection has no checkpoint path to export from")
    src = Path(selection["path"])
    ref = ref_for_path(src)
    if ref is None:
        if Path(str(src) + ".index").is_file():
            return export_checkpoint(selection, dest, force=force) / EXPORT_PREFIX
        raise SelectionError(f"cannot export: {src} not found (the run folder moved or the "
                             "checkpoint was deleted since it was evaluated)")
    got = ref.files_hash()
    want = selection.get("content_hash")
    if not _matches(got, want):
        raise SelectionError(
            f"cannot export {src}: its files now hash to {got[:12]}, but the evaluated "
            f"checkpoint hashed to {want[:12]}; the files changed after evaluation: run "
            "'evalkit run' again, then 'evalkit select'")
    target = dest / src.name
    if dest.exists() and any(dest.iterdir()):
        if not force:
            raise SelectionError(f"export folder {dest} is not empty: choose a new folder "
                                 "or pass --force to replace it")
        if target.is_dir():
            shutil.rmtree(target)
        elif target.exists():
            target.unlink()
    dest.mkdir(parents=True, exist_ok=True)
    if src.is_dir():
        shutil.copytree(src, target)
    else:
        shutil.copyfile(src, target)
    (dest / SELECTION_NAME).write_text(json.dumps(selection, indent=2) + "\n")
    copy = ref_for_path(target)
    if copy is None or copy.files_hash() != got:
        raise SelectionError(f"export to {dest} is corrupt: the copy does not hash to "
                             f"{got[:12]} like its source")
    return target
