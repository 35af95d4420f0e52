"""``select --export``: write each domain's chosen checkpoint where a service can pick it up.

* the seed's TF checkpoints: :func:`export_checkpoint` (the seed's ``checkpoint`` +
  ``ckpt-1.*`` layout);
* every other kind: the file (``.pth``, ``.keras``, ``.h5``, ``.onnx``) or SavedModel
  folder copied as it is, under its own name, beside ``selection.json`` (provenance).

The source is hashed before copying (it must still be what was evaluated: its files hash,
possibly combined with a named contract and --trust-model-code, must equal the selection's content hash) and the
copy after (it must hash the same).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from evalkit.decide.selection import SELECTION_NAME, SelectionError
from evalkit.inputs.checkpoints.discover import CheckpointRef, _shards, settings_hash

EXPORT_PREFIX = "ckpt-1"
#: The seed's ``checkpoint`` state file (tf.train.CheckpointState text proto) for ckpt-1.
STATE_FILE = ('model_checkpoint_path: "ckpt-1"\n'
              'all_model_checkpoint_paths: "ckpt-1"\n')


def ref_for_path(path: Path) -> CheckpointRef | None:
    """The single-file or folder checkpoint at ``path`` (None: a TF prefix or nothing)."""
    from evalkit.inputs.sources import exported, torch_pix2pix

    if path.is_dir() and (path / "saved_model.pb").is_file():
        return CheckpointRef(path.name, 0, path, exported.saved_model_files(path),
                             kind=exported.SAVED_MODEL)
    kinds = {".pth": torch_pix2pix.KIND, ".keras": exported.KERAS, ".h5": exported.KERAS,
             ".onnx": exported.ONNX}
    if path.is_file() and path.suffix in kinds:
        return CheckpointRef(path.name, 0, path, [path], kind=kinds[path.suffix])
    return None


def _matches(files_hash: str, want: str | None) -> bool:
    from evalkit.inputs.sources import TRUSTED
    from evalkit.inputs.sources.contracts import CONTRACTS

    if not want:
        return True
    options = [{}, *({"contract": c} for c in CONTRACTS)]
    options += [{**o, **TRUSTED} for o in options]
    return want in {settings_hash(files_hash, o) for o in options}


def export(selection: dict, dest: str | Path, force: bool = False) -> Path:
    """Export the selected checkpoint into ``dest``; returns the exported path (the
    ``ckpt-1`` prefix for the seed's format, else the copied file or folder).

    Raises :class:`evalkit.decide.selection.SelectionError` when the source is gone or changed
    since evaluation, ``dest`` is not empty (without ``force``), or the copy is corrupt.
    """
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


def export_selection(sel: dict, dest: str | Path, force: bool = False) -> dict[str, Path]:
    """Export every domain's chosen checkpoint: ``dest/<domain>/`` each in the seed's
    serving layout (ready to replace the service's ``checkpoints/`` folder); a run without
    domains exports flat into ``dest``. Returns ``{domain: folder}``."""
    dest = Path(dest)
    entries = sel["domains"]
    if list(entries) == [""]:
        return {"": export(entries[""], dest, force=force)}
    if dest.exists() and any(p for p in dest.iterdir() if p.name not in entries) and not force:
        raise SelectionError(f"export folder {dest} holds files other than domain folders: "
                             "choose a new folder or pass --force")
    out = {}
    for d, entry in entries.items():
        out[d] = export(entry, dest / d, force=force)
    return out


def _source_files(prefix: Path) -> list[Path]:
    index = prefix.with_name(prefix.name + ".index")
    if not index.is_file():
        raise SelectionError(f"cannot export: {index} not found (the run folder moved or "
                             "the checkpoint was deleted since it was evaluated)")
    shards, problem = _shards(prefix)
    if problem:
        raise SelectionError(f"cannot export {prefix}: {problem}")
    return [index, *shards]


def export_checkpoint(selection: dict, dest: str | Path, force: bool = False) -> Path:
    """Write the selected checkpoint to ``dest`` in the seed's layout; returns ``dest``.

    ``dest`` gets ``checkpoint`` (:data:`STATE_FILE`), ``ckpt-1.index``, every
    ``ckpt-1.data-NNNNN-of-MMMMM`` shard and ``selection.json`` (provenance). ``dest`` must
    not exist or be empty unless ``force`` (then its ``checkpoint``/``ckpt-*`` files are
    replaced). Raises :class:`SelectionError` when the source files no longer hash to the
    selected content hash, or the copies do not.
    """
    dest = Path(dest)
    if not selection.get("path"):
        raise SelectionError("the selection has no checkpoint path to export from")
    prefix = Path(selection["path"])
    files = _source_files(prefix)
    want = selection.get("content_hash")
    src_ref = CheckpointRef(name=prefix.name, step=0, prefix=prefix, files=files)
    got = src_ref.content_hash()
    if want and got != want:
        raise SelectionError(
            f"cannot export {prefix}: its files now hash to {got[:12]}, but the evaluated "
            f"checkpoint hashed to {want[:12]}; the files changed after evaluation: run "
            "'evalkit run' again, then 'evalkit select'")
    if dest.exists() and any(dest.iterdir()):
        if not force:
            raise SelectionError(f"export folder {dest} is not empty: choose a new folder "
                                 "or pass --force to replace its checkpoint files")
        for p in dest.iterdir():
            if p.name == "checkpoint" or p.name.startswith("ckpt-"):
                p.unlink()
    dest.mkdir(parents=True, exist_ok=True)
    copied = []
    for f in files:
        target = dest / (EXPORT_PREFIX + f.name[len(prefix.name):])
        shutil.copyfile(f, target)
        copied.append(target)
    (dest / "checkpoint").write_text(STATE_FILE)
    (dest / SELECTION_NAME).write_text(json.dumps(selection, indent=2) + "\n")
    out_ref = CheckpointRef(name=EXPORT_PREFIX, step=1, prefix=dest / EXPORT_PREFIX,
                            files=copied)
    if out_ref.content_hash() != got:
        raise SelectionError(f"export to {dest} is corrupt: the copies hash to "
                             f"{out_ref.content_hash()[:12]}, the source to {got[:12]}")
    return dest
