"""Results as TensorBoard scalars and grid images, beside the training's own curves.

Written with TensorBoard's own event-file writer (``torch.utils.tensorboard.SummaryWriter``,
which needs the ``tensorboard`` package) into ``LOGDIR``; pass the training run's log folder
and evalkit's curves appear in the same run as the training loss. Tags, at each checkpoint's
step (the ``N`` of ``ckpt-N``):

* ``evalkit/<domain>/<dataset>/<metric>``: the aggregate value (TensorBoard stores float32);
* ``evalkit/<domain>/<dataset>/<metric>/ci_low`` and ``.../ci_high``: its 95% CI bounds;
* ``evalkit/<domain>/<dataset>/grid``: a few samples' input | target | output
  (:mod:`evalkit.present.export.images`).

``<domain>`` is left out for a run without domains; ``<dataset>`` is ``heldout`` or
``sketches``. Domain and dataset names are cleaned the way ``tf.summary`` cleans tags: each
character other than letters, digits, ``_``, ``-``, ``.`` becomes ``_``, and a cleaned name
gets ``-`` and 6 hex digits of its sha256 so two names never merge
(:func:`evalkit.core.names.key_segment`).

**No duplicates on re-export.** ``LOGDIR/.evalkit-tensorboard.json`` records, per evaluation
folder, the event files evalkit wrote and each (tag, step) with a digest of its value. An
export writes only the points not yet recorded, into a new event file named
``*.evalkit-<digest of OUT's path>``. When a recorded point changed (a checkpoint
re-evaluated) or disappeared, or the index and the event files disagree (a file deleted,
the index lost), that folder's own event files are deleted and all its points written
again, so TensorBoard never shows two values at one step. Other tools'
event files in LOGDIR are never touched.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from evalkit.core.names import key_segment
from evalkit.present.export.points import Point, load_points

INDEX_NAME = ".evalkit-tensorboard.json"
INDEX_FORMAT = "evalkit-tensorboard/1"
FILE_SUFFIX = ".evalkit"


@dataclass
class TensorBoardExport:
    """What one export did."""

    logdir: Path
    scalars: int = 0  # scalar points written now
    images: int = 0  # images written now
    unchanged: int = 0  # points already in LOGDIR, not written again
    rewritten: bool = False  # the folder's event files were replaced
    notes: list[str] = field(default_factory=list)

    def summary(self) -> str:
        what = (f"{self.scalars} scalars and {self.images} images written, "
                f"{self.unchanged} already there")
        return what + (" (this folder's earlier evalkit event files replaced)"
                       if self.rewritten else "")


def tag(domain: str, dataset: str, name: str) -> str:
    """``evalkit/<domain>/<dataset>/<name>`` (no domain segment without a domain); domain
    and each ``/``-part of dataset cleaned by :func:`evalkit.core.names.key_segment`."""
    parts = [key_segment(domain), *(key_segment(p) for p in dataset.split("/")), name]
    return "/".join(p for p in ("evalkit", *parts) if p)


def scalar_items(points: list[Point]) -> dict[str, tuple[str, int, float]]:
    """``"tag@step" -> (tag, step, value)`` for every value and CI bound."""
    items = {}
    for p in points:
        base = tag(p.domain, p.dataset, p.metric)
        for t, v in ((base, p.value), (base + "/ci_low", p.ci_low),
                     (base + "/ci_high", p.ci_high)):
            if v is not None:
                items[f"{t}@{p.step}"] = (t, p.step, v)
    return items


def _load_index(path: Path) -> dict:
    try:
        doc = json.loads(path.read_text())
        if doc.get("format") == INDEX_FORMAT and isinstance(doc.get("outs"), dict):
            return doc
    except (OSError, ValueError, AttributeError):
        pass
    return {"format": INDEX_FORMAT, "outs": {}}


def _save_index(path: Path, doc: dict) -> None:
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    tmp.write_text(json.dumps(doc, indent=1, sort_keys=True))
    os.replace(tmp, path)


def _event_files(logdir: Path) -> set[str]:
    return {p.name for p in logdir.glob("events.out.tfevents.*")}


def export_tensorboard(out_dir: str | Path, logdir: str | Path,
                       images: bool = True) -> TensorBoardExport:
    """Write ``out_dir``'s results into ``logdir`` (created if needed); see the module
    docstring for tags and the no-duplicates rule. ImportError names the package to
    install when TensorBoard is absent."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError as exc:
        raise ImportError("TensorBoard export needs the tensorboard package: "
                          "pip install tensorboard (or 'evalkit[tensorboard]')") from exc

    out_dir, logdir = Path(out_dir), Path(logdir)
    logdir.mkdir(parents=True, exist_ok=True)
    result = TensorBoardExport(logdir)
    points, result.notes = load_points(out_dir)
    scalars = scalar_items(points)
    want: dict[str, str] = {k: repr(float(v)) for k, (_, _, v) in scalars.items()}
    grids = []
    if images:
        grids, notes = grid_items(out_dir)
        result.notes += notes
        want.update({k: g.digest for k, g in grids.items()})

    index_path = logdir / INDEX_NAME
    index = _load_index(index_path)
    key = str(out_dir.resolve())
    suffix = f"{FILE_SUFFIX}-{hashlib.sha256(key.encode()).hexdigest()[:12]}"
    entry = index["outs"].get(key) or {"files": [], "points": {}}
    own = {f for f in _event_files(logdir) if f.endswith(suffix)}  # this OUT's files
    done: dict[str, str] = entry["points"]
    stale = (set(entry["files"]) != own  # a file gone, or the index lost
             or any(want.get(k) != h for k, h in done.items()))
    if stale and own:
        for f in own:
            (logdir / f).unlink(missing_ok=True)
        result.rewritten = True
    if stale:
        entry, done = {"files": [], "points": {}}, {}
    todo = [k for k in want if k not in done]
    result.unchanged = len(want) - len(todo)
    if todo:
        before = _event_files(logdir)
        writer = SummaryWriter(str(logdir), filename_suffix=suffix)
        try:
            for k in sorted(todo, key=lambda k: int(k.rsplit("@", 1)[1])):
                if k in scalars:
                    t, step, v = scalars[k]
                    writer.add_scalar(t, v, step)
                    result.scalars += 1
                else:
                    g = grids[k]
                    writer.add_image(tag(g.domain, g.dataset, "grid"), g.image, g.step,
                                     dataformats="HWC")
                    result.images += 1
        finally:
            writer.close()
        entry["files"] = sorted(set(entry["files"]) | (_event_files(logdir) - before))
        done.update({k: want[k] for k in todo})
    entry["points"] = done
    index["outs"][key] = entry
    _save_index(index_path, index)
    return result


def grid_items(out_dir: Path) -> tuple[dict, list[str]]:
    """``"grid-tag@step" -> GridImage`` of :func:`evalkit.present.export.images.grid_images`."""
    from evalkit.present.export.images import grid_images

    images, notes = grid_images(out_dir)
    items = {}
    for g in images:
        k = f"{tag(g.domain, g.dataset, 'grid')}@{g.step}"
        if k in items:  # two checkpoints at one step: the first by name, like the scalars
            continue
        items[k] = g
    return items, notes

