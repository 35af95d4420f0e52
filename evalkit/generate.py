"""Batched inference and the generation cache.

One generator is built and traced (``tf.function``) per architecture and image size, then
reused for every checkpoint of that shape (the first trace costs seconds). Outputs are
post-processed exactly like serving (:func:`evalkit.data.serving.output_to_uint8`) and saved
as PNG under ``OUT/outputs/<checkpoint hash>/<dataset hash>/`` with a ``manifest.json``
written last, so a folder with a manifest is complete and no later step (metrics, reports,
a re-run) runs a generator again for the same checkpoint and dataset.

The per-sample L1 on the [-1, 1] scale needs the raw (pre-truncation) output, so it is
computed here, while the raw output exists, and kept in the manifest.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

from evalkit.checkpoints.load import Architecture, assign_weights, read_generator_weights
from evalkit.data.dataset import Dataset
from evalkit.data.serving import output_to_uint8
from evalkit.metrics.paired import l1_per_sample

MANIFEST = "manifest.json"
CACHE_VERSION = 1
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


class Runner:
    """A built, traced generator of one architecture at one image size."""

    def __init__(self, arch: Architecture, size: int):
        from evalkit._tf import tf
        from evalkit.models import resnet_generator

        if size % 4:
            raise ValueError(f"image size {size} must be a multiple of 4 for this generator")
        self.arch, self.size = arch, size
        self.model = resnet_generator(arch.input_channels, arch.output_channels,
                                      arch.hidden_channels)
        spec = tf.TensorSpec((None, size, size, arch.input_channels), tf.float32)
        self._fn = tf.function(lambda x: self.model(x, training=False), input_signature=[spec],
                               autograph=False)

    @property
    def served_channels(self) -> int:
        """Served input channels the model takes (the seed contract feeds them as is)."""
        return self.arch.input_channels

    def load(self, prefix: str | Path) -> None:
        """Read, check and assign a checkpoint's weights (CheckpointError on failure)."""
        assign_weights(self.model, read_generator_weights(prefix, self.model))

    def run(self, inputs: np.ndarray, batch_size: int = 4,
            on_batch: Callable[[int], None] | None = None) -> np.ndarray:
        """Raw outputs ``(N, S, S, out)`` float32 in [-1, 1] for inputs ``(N, S, S, in)``."""
        outs = []
        for i in range(0, len(inputs), batch_size):
            batch = np.ascontiguousarray(inputs[i:i + batch_size], dtype=np.float32)
            outs.append(self._fn(batch).numpy())
            if on_batch:
                on_batch(len(batch))
        return np.concatenate(outs) if outs else np.zeros((0, self.size, self.size, 3), np.float32)


class RunnerPool:
    """Keeps one runner per (architecture, size): a :class:`Runner` for the seed's
    architectures, or what ``factory`` builds for another kind's (hashable) architecture."""

    def __init__(self) -> None:
        self._runners: dict[tuple[object, int], object] = {}

    def get(self, arch, size: int, factory: Callable[[], object] | None = None):
        key = (arch, size)
        if key not in self._runners:
            self._runners[key] = factory() if factory else Runner(arch, size)
        return self._runners[key]


def sample_filename(index: int, sample_id: str) -> str:
    """File name of one output in the cache: ``00012_<id>.png`` (id made file-safe)."""
    return f"{index:05d}_{_UNSAFE.sub('_', sample_id)[:80]}.png"


class OutputCache:
    """Served outputs on disk, keyed by checkpoint and dataset content hashes."""

    def __init__(self, out_dir: str | Path):
        self.root = Path(out_dir) / "outputs"

    def folder(self, checkpoint_hash: str, dataset_hash: str) -> Path:
        return self.root / checkpoint_hash[:16] / dataset_hash[:16]

    def load(self, checkpoint_hash: str, ds: Dataset
             ) -> tuple[np.ndarray, np.ndarray | None] | None:
        """``(outputs uint8 (N,S,S,3), raw_l1 (N,) or None)``, or None if not cached."""
        folder = self.folder(checkpoint_hash, ds.content_hash)
        try:
            manifest = json.loads((folder / MANIFEST).read_text())
        except (OSError, ValueError):
            return None
        if manifest.get("version") != CACHE_VERSION or manifest.get("ids") != ds.ids:
            return None
        try:
            outputs = np.stack([np.asarray(Image.open(folder / f).convert("RGB"))
                                for f in manifest["files"]])
        except Exception:
            return None  # damaged cache: regenerate
        raw = manifest.get("raw_l1")
        raw_l1 = None if raw is None else np.array([np.nan if v is None else v for v in raw])
        return outputs, raw_l1

    def save(self, checkpoint_hash: str, ds: Dataset, outputs: np.ndarray,
             raw_l1: np.ndarray | None) -> Path:
        """Write PNGs and the manifest atomically (temp folder, then rename)."""
        folder = self.folder(checkpoint_hash, ds.content_hash)
        tmp = folder.with_name(folder.name + f".tmp{os.getpid()}")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        files = []
        for i, (sid, img) in enumerate(zip(ds.ids, outputs, strict=True)):
            name = sample_filename(i, sid)
            Image.fromarray(img).save(tmp / name, optimize=False, compress_level=1)
            files.append(name)
        manifest = {
            "version": CACHE_VERSION, "checkpoint_hash": checkpoint_hash,
            "dataset": ds.name, "dataset_hash": ds.content_hash, "ids": ds.ids,
            "files": files,
            "raw_l1": None if raw_l1 is None else
            [None if not np.isfinite(v) else float(v) for v in raw_l1],
        }
        (tmp / MANIFEST).write_text(json.dumps(manifest))
        shutil.rmtree(folder, ignore_errors=True)
        os.replace(tmp, folder)
        return folder


def generate(runner: Runner, ds: Dataset, batch_size: int = 4,
             on_batch: Callable[[int], None] | None = None
             ) -> tuple[np.ndarray, np.ndarray | None]:
    """Run the loaded generator on a dataset: served uint8 outputs and per-sample raw L1
    (NaN where a sample has no target; None when the dataset has no targets).

    ``runner`` is a seed :class:`Runner` or any runner of :mod:`evalkit.sources`
    (``served_channels``, ``run(inputs, batch_size, on_batch)`` -> raw [-1, 1] outputs).
    """
    if ds.inputs.shape[-1] != runner.served_channels:
        raise ValueError(
            f"the model takes {runner.served_channels} input channels; dataset "
            f"'{ds.name}' supplies {ds.inputs.shape[-1]} (edge only)")
    y = runner.run(ds.inputs, batch_size=batch_size, on_batch=on_batch)
    served = output_to_uint8(y)
    raw_l1 = None
    if ds.targets is not None:
        raw_l1 = np.full(len(ds), np.nan)
        mask = ds.has_targets
        raw_l1[mask] = l1_per_sample(y[mask], ds.targets[mask])
    return served, raw_l1
