"""Batched inference and the generation cache.

Runners (:mod:`evalkit.inputs.models.runner`) are built and traced once per architecture and
image size, then reused for every checkpoint of that shape. Outputs are
post-processed exactly like serving (:func:`evalkit.inputs.data.serving.output_to_uint8`) and saved
as PNG under ``OUT/outputs/<checkpoint hash>/<dataset hash>/`` with a ``manifest.json``
written last, so a folder with a manifest is complete and no later step (metrics, reports,
a re-run) runs a generator again for the same checkpoint and dataset. A folder is written
as ``<name>.tmp<PID>`` and renamed into place; temporary folders whose process is gone (a
kill, a full disk) are removed by the next :class:`OutputCache`. The manifest records each
PNG's sha256, checked whenever the outputs are read (:mod:`evalkit.store.outputs`): a file
changed since (even into another valid image) makes the folder be regenerated, with a
message.

The per-sample L1 on the [-1, 1] scale needs the raw (pre-truncation) output, so it is
computed here, while the raw output exists, and kept in the manifest.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import shutil
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

from evalkit.core.faults import as_disk_full, is_disk_full, remove_stale_temps
from evalkit.inputs.data.dataset import Dataset
from evalkit.inputs.data.samples import (
    CHUNK_ROWS,
    DiskArray,
    RowWriter,
    iter_chunks,
    new_rows,
)
from evalkit.inputs.data.serving import output_to_uint8
from evalkit.inputs.models.runner import Runner
from evalkit.measure.paired import l1_per_sample
from evalkit.store.outputs import MANIFEST, CheckedFolder, OutputChanged

CACHE_VERSION = 2  # 2: per-file sha256 in the manifest
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def sample_filename(index: int, sample_id: str) -> str:
    """File name of one output in the cache: ``00012_<id>.png`` (id made file-safe)."""
    return f"{index:05d}_{_UNSAFE.sub('_', sample_id)[:80]}.png"


class OutputCache:
    """Served outputs on disk, keyed by checkpoint and dataset content hashes.

    Creating one removes temporary folders of dead processes under ``OUT/outputs`` (not
    with ``clean=False``: a remote worker, which cannot tell another host's processes).
    ``log`` receives one line when a cached folder fails its check and is regenerated.
    """

    def __init__(self, out_dir: str | Path,
                 log: Callable[[str], None] = lambda s: print(s, file=sys.stderr),
                 clean: bool = True):
        self.root = Path(out_dir) / "outputs"
        self.log = log
        self.removed_temps = remove_stale_temps(self.root) if clean else []

    def folder(self, checkpoint_hash: str, dataset_hash: str) -> Path:
        return self.folder_of(self.root.parent, checkpoint_hash, dataset_hash)

    @staticmethod
    def folder_of(out_dir: str | Path, checkpoint_hash: str, dataset_hash: str) -> Path:
        """``OUT/outputs/<checkpoint hash[:16]>/<dataset hash[:16]>``."""
        return Path(out_dir) / "outputs" / checkpoint_hash[:16] / dataset_hash[:16]

    def load(self, checkpoint_hash: str, ds: Dataset
             ) -> tuple[np.ndarray, np.ndarray | None] | None:
        """``(outputs uint8 (N,S,S,3), raw_l1 (N,) or None)``, or None if not cached or
        the folder fails its check (then it will be regenerated; a changed file is said)."""
        folder = self.folder(checkpoint_hash, ds.content_hash)
        try:
            checked = CheckedFolder(folder)
        except (OSError, ValueError):
            return None
        manifest = checked.manifest
        if manifest.get("version") != CACHE_VERSION or manifest.get("ids") != ds.ids:
            return None
        images: RowWriter | None = None  # on disk when large (evalkit.inputs.data.samples)
        try:
            for name in manifest["files"]:
                data = checked.read(name)
                img = np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))
                if images is None:  # rows on disk when the dataset's are, or when large
                    images = RowWriter(len(manifest["files"]), img.shape, np.uint8,
                                       like=getattr(ds, "inputs", None))
                images.append(img)
        except OutputChanged as exc:
            if "sha256" in exc.reason:
                self.log(f"{exc}: regenerating that folder")
            else:
                self.log(f"cached outputs in {folder} unreadable ({exc.path.name} "
                         f"{exc.reason}): regenerating that folder")
            return None
        except Exception as exc:  # damaged cache (undecodable PNG, bad manifest): regenerate
            self.log(f"cached outputs in {folder} unreadable ({type(exc).__name__}): "
                     "regenerating that folder")
            return None
        checked.save_keys()
        raw = manifest.get("raw_l1")
        raw_l1 = None if raw is None else np.array([np.nan if v is None else v for v in raw])
        if images is None:
            return None
        return images.finish(), raw_l1

    def save(self, checkpoint_hash: str, ds: Dataset, outputs: np.ndarray,
             raw_l1: np.ndarray | None) -> Path:
        """Write PNGs and the manifest atomically (temp folder, then rename). A failure
        (full disk, signal) removes the temp folder; a full disk raises
        :class:`evalkit.core.faults.DiskFull` with about the space the folder needs."""
        folder = self.folder(checkpoint_hash, ds.content_hash)
        tmp = folder.with_name(folder.name + f".tmp{os.getpid()}")
        shutil.rmtree(tmp, ignore_errors=True)
        written, files, digests = 0, [], []
        try:
            tmp.mkdir(parents=True)
            for i, (sid, img) in enumerate(zip(ds.ids, outputs, strict=True)):
                name = sample_filename(i, sid)
                buf = io.BytesIO()
                Image.fromarray(img).save(buf, format="PNG", optimize=False, compress_level=1)
                data = buf.getvalue()
                (tmp / name).write_bytes(data)
                written += len(data)
                files.append(name)
                digests.append(hashlib.sha256(data).hexdigest())
            manifest = {
                "version": CACHE_VERSION, "checkpoint_hash": checkpoint_hash,
                "dataset": ds.name, "dataset_hash": ds.content_hash, "ids": ds.ids,
                "files": files, "sha256": digests,
                "raw_l1": None if raw_l1 is None else
                [None if not np.isfinite(v) else float(v) for v in raw_l1],
            }
            (tmp / MANIFEST).write_text(json.dumps(manifest))
            shutil.rmtree(folder, ignore_errors=True)
            os.replace(tmp, folder)
        except BaseException as exc:
            shutil.rmtree(tmp, ignore_errors=True)
            if isinstance(exc, Exception) and is_disk_full(exc):
                # about what the folder needs: its PNGs at the size written so far (or raw
                # RGB size when none was), plus the manifest
                n = len(outputs)
                per_file = written / len(files) if files else (outputs[0].nbytes if n else 0)
                raise as_disk_full(exc, folder, int(per_file * n * 1.1) + 4096) from exc
            raise
        return folder


def generate(runner: Runner, ds: Dataset, batch_size: int = 4,
             on_batch: Callable[[int], None] | None = None,
             timings: dict[str, float] | None = None,
             ) -> tuple[np.ndarray | DiskArray, np.ndarray | None]:
    """Run the loaded generator on a dataset: served uint8 outputs and per-sample raw L1
    (NaN where a sample has no target; None when the dataset has no targets).

    The dataset streams through in chunks of :data:`evalkit.inputs.data.samples.CHUNK_ROWS` rows
    (a multiple of ``batch_size``, so the batches are those of one whole-array pass): only a
    chunk's raw float outputs exist at a time, and the served outputs go to a
    :class:`evalkit.inputs.data.samples.DiskArray` when the dataset's own rows are on disk or the
    outputs are large.

    ``timings``, when given, receives the seconds of the forward passes (``generator``) and
    of the serving post-processing + raw L1 (``serve + raw l1``).

    ``runner`` is a seed :class:`Runner` or any runner of :mod:`evalkit.inputs.sources`
    (``served_channels``, ``run(inputs, batch_size, on_batch)`` -> raw [-1, 1] outputs).
    """
    if ds.inputs.shape[-1] != runner.served_channels:
        raise ValueError(
            f"the model takes {runner.served_channels} input channels; dataset "
            f"'{ds.name}' supplies {ds.inputs.shape[-1]} (edge only)")
    n = len(ds)
    mask = ds.has_targets
    raw_l1 = None if ds.targets is None else np.full(n, np.nan)
    chunk = max(1, CHUNK_ROWS // batch_size) * batch_size
    outputs: np.ndarray | DiskArray | None = None
    t_gen = t_serve = 0.0
    for idx, x in iter_chunks(ds.inputs, chunk=chunk):
        t0 = time.perf_counter()
        y = runner.run(x, batch_size=batch_size, on_batch=on_batch)
        t1 = time.perf_counter()
        served = output_to_uint8(y)
        if outputs is None:
            outputs = new_rows(n, served.shape[1:], np.uint8, like=ds.inputs)
        outputs[int(idx[0]):int(idx[-1]) + 1] = served
        if raw_l1 is not None:
            m = mask[idx]
            if m.any():
                raw_l1[idx[m]] = l1_per_sample(y[m], ds.targets[idx[m]])
        t_gen += t1 - t0
        t_serve += time.perf_counter() - t1
    if outputs is None:  # no rows
        outputs = np.zeros((0, *ds.inputs.shape[1:3], 3), np.uint8)
    if timings is not None:
        timings["generator"] = timings.get("generator", 0.0) + t_gen
        timings["serve + raw l1"] = timings.get("serve + raw l1", 0.0) + t_serve
    return outputs, raw_l1
