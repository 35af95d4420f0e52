"""Racing subsets and the outputs generated on them.

A race evaluates checkpoints on nested, seeded subsets of each dataset (:func:`subset`).
A subset's content hash is derived from its parent's content hash and its sample ids
(:func:`subset_hash`), so outputs cached for a subset (``OUT/race/<domain>/outputs/<ckpt
key>/<subset hash>/``, the ordinary :class:`evalkit.execute.generate.OutputCache` layout) can be
proved to belong to a given parent dataset without trusting any index:
:func:`raced_outputs` recomputes the hash from the parent and the manifest's ids.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import sys
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from evalkit.inputs.data.dataset import Dataset
from evalkit.inputs.data.samples import new_rows, take_rows

SCRATCH = "race"  # OUT/race/<domain>/: the rounds' store and output cache


def subset_hash(parent_hash: str, ids: list[str]) -> str:
    """Content hash of the subset of the dataset ``parent_hash`` holding ``ids`` (in the
    parent's order): sha256 of the parent's hash and the ids."""
    return hashlib.sha256(f"{parent_hash}:race:".encode() + "\0".join(ids).encode()
                          ).hexdigest()


def subset(ds: Dataset, n: int, order: np.ndarray, round_no: int) -> Dataset:
    """The first ``n`` samples of ``order`` (kept in the dataset's own order), as a
    Dataset with its own content hash (:func:`subset_hash`) and ``meta["race"]``; the
    whole dataset when ``n >= len(ds)``."""
    if n >= len(ds):
        return ds
    idx = np.sort(order[:n])
    ids = [ds.ids[i] for i in idx]
    return dataclasses.replace(
        ds, ids=ids, inputs=take_rows(ds.inputs, idx),
        targets=None if ds.targets is None else take_rows(ds.targets, idx),
        target_mask=None if ds.target_mask is None else ds.target_mask[idx],
        content_hash=subset_hash(ds.content_hash, ids),
        meta={**ds.meta, "race": {"round": round_no, "n": n, "full_n": len(ds)}})


class RacedOutputs(Mapping):
    """Sample id -> (served output uint8 ``(S, S, 3)``, raw L1 or NaN), read when asked:
    the rows stay where :meth:`evalkit.execute.generate.OutputCache.load` put them (on disk for a
    large folder, :mod:`evalkit.inputs.data.samples`), so memory does not grow with the number of
    raced samples. :meth:`add` records where a sample's row is."""

    def __init__(self) -> None:
        self._rows: dict[str, tuple[object, int, float]] = {}

    def add(self, sid: str, rows, j: int, raw: float) -> None:
        self._rows.setdefault(sid, (rows, j, raw))

    def __getitem__(self, sid: str) -> tuple[np.ndarray, float]:
        rows, j, raw = self._rows[sid]
        return np.asarray(rows[j]), raw

    def __iter__(self) -> Iterator[str]:
        return iter(self._rows)

    def __len__(self) -> int:
        return len(self._rows)


def raced_outputs(out_dir: Path, out_key: str, ds: Dataset,
                  log: Callable[[str], None] = lambda s: print(s, file=sys.stderr),
                  ) -> RacedOutputs:
    """Outputs a race generated for one checkpoint on subsets of ``ds``.

    Args:
        out_dir: the run's output folder ``OUT`` (the race's scratch folders are
            ``OUT/race/<domain>/``).
        out_key: the checkpoint's output-cache key
            (:func:`evalkit.execute.precision.cache_key` of its content hash and precision).
        ds: the full dataset (only subsets whose parent is exactly this dataset, by
            content hash, count).
        log: receives a line for a cached folder that fails its check (skipped).

    Returns:
        a :class:`RacedOutputs`: sample id -> (served output uint8 ``(S, S, 3)``, raw L1
        on the [-1, 1] scale or NaN where the sample has no target). Empty when nothing
        was raced. Every folder is checked as :meth:`evalkit.execute.generate.OutputCache.load`
        checks it (manifest version, ids, sha256 of every PNG); one that fails is left
        out. The rounds' subsets are nested, so the largest folders are read first and a
        folder whose samples are all found already is not read at all.
    """
    from evalkit.execute.generate import MANIFEST, OutputCache

    found = RacedOutputs()
    pos = {sid: i for i, sid in enumerate(ds.ids)}
    candidates = []
    for scratch in sorted((Path(out_dir) / SCRATCH).glob("*")):
        cache = OutputCache(scratch, log=log, clean=False)
        for folder in sorted((cache.root / out_key[:16]).glob("*")):
            try:
                manifest = json.loads((folder / MANIFEST).read_text())
                ids, digest = list(manifest["ids"]), str(manifest["dataset_hash"])
            except (OSError, ValueError, KeyError, TypeError):
                continue
            if manifest.get("checkpoint_hash") != out_key or not all(s in pos for s in ids):
                continue
            if digest != ds.content_hash and digest != subset_hash(ds.content_hash, ids):
                continue  # a subset of another dataset (or another size, another loader)
            if digest == ds.content_hash and ids != ds.ids:
                continue
            if [pos[s] for s in ids] != sorted(pos[s] for s in ids):
                continue  # subsets keep the parent's order
            candidates.append((cache, ids, digest))
    for cache, ids, digest in sorted(candidates, key=lambda c: -len(c[1])):
        if all(s in found for s in ids):
            continue
        got = cache.load(out_key, SimpleNamespace(content_hash=digest, ids=ids))
        if got is None:
            continue
        outputs, raw = got
        for j, sid in enumerate(ids):
            found.add(sid, outputs, j, np.nan if raw is None else float(raw[j]))
    return found


def complete_outputs(ds: Dataset, have: Mapping[str, tuple[np.ndarray, float]],
                     generate_part: Callable[[Dataset], tuple[np.ndarray, np.ndarray | None]],
                     ) -> tuple[np.ndarray, np.ndarray | None, int]:
    """``ds``'s full outputs from ``have`` (e.g. :func:`raced_outputs`) plus the generator
    on the samples missing there.

    ``generate_part(part)`` runs the generator on a dataset of the missing samples (in
    ``ds``'s order) and returns ``(served uint8 (n,S,S,3), raw L1 (n,) or None)``, as
    :func:`evalkit.execute.generate.generate` does. Returns ``(outputs (N,S,S,3) uint8, raw L1 (N,)
    or None when ``ds`` has no targets, images generated)``.
    """
    need = [i for i, sid in enumerate(ds.ids) if sid not in have]
    if len(need) == len(ds):  # nothing raced: the generator's own (streamed) outputs
        outs, raw = generate_part(ds)
        return outs, raw, len(ds)
    part_out, part_raw, row_of = None, None, {}
    if need:
        part = subset(ds, len(need), np.array(need), 0)
        part_out, part_raw = generate_part(part)
        row_of = {sid: j for j, sid in enumerate(part.ids)}

    def get(sid: str) -> tuple[np.ndarray, float]:
        if sid in have:
            return have[sid]
        j = row_of[sid]
        return part_out[j], np.nan if part_raw is None else float(part_raw[j])

    outputs, raw_l1 = gather(ds, get)
    return outputs, raw_l1, len(need)


def gather(ds: Dataset, get: Callable[[str], tuple[np.ndarray, float]]
           ) -> tuple[np.ndarray, np.ndarray | None]:
    """``ds``'s served outputs ``(N, S, S, 3)`` uint8 and raw L1 ``(N,)`` (None when ``ds``
    has no targets), in its order, row by row from ``get(sample id) -> (output, raw L1)``.
    The rows go to disk when the dataset's are (:mod:`evalkit.inputs.data.samples`): memory
    stays flat. ``ds`` has at least one sample."""
    outputs = None
    raw_l1 = None if ds.targets is None else np.full(len(ds), np.nan)
    for i, sid in enumerate(ds.ids):
        img, raw = get(sid)
        if outputs is None:
            outputs = new_rows(len(ds), img.shape, np.uint8, like=ds.inputs)
        outputs[i] = img
        if raw_l1 is not None:
            raw_l1[i] = raw
    return outputs, raw_l1
