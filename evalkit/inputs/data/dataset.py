"""The dataset every later step consumes (rows in memory, or on disk when large)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from evalkit.inputs.data.samples import DiskArray

#: Kinds of dataset. ``heldout``: HED-edge inputs with paired target photos;
#: ``sketches``: hand-drawn inputs, targets only where a reference photo exists.
KINDS = ("heldout", "sketches")


@dataclass
class Skipped:
    """An input file that could not be used, and why (shown to the user, stored)."""

    file: str
    reason: str


@dataclass
class Dataset:
    """Served inputs (and targets) of one evaluation dataset.

    Attributes:
        name: the name results use (``heldout``, ``sketches``, ...).
        kind: one of :data:`KINDS`.
        root: folder it was read from.
        ids: one sample id per row (file stem, relative to ``root``).
        inputs: ``(N, S, S, 1)`` float32 in [0, 1] after the serving contract.
        targets: ``(N, S, S, 3)`` uint8 RGB or ``None`` when no sample has one.
            Both are numpy arrays, or :class:`evalkit.inputs.data.samples.DiskArray` s (same
            row indexing) for a large dataset: stream them with
            :func:`evalkit.inputs.data.samples.iter_chunks`, never ``np.asarray`` them whole.
        target_mask: ``(N,)`` bool, which rows have a real target; ``None`` = all rows
            (when ``targets`` is not None).
        content_hash: sha256 over files, image size and loader version.
        skipped: files reported and left out.
        meta: free-form facts (edge detector, manifest entries...).
        domain: the generator subject this dataset belongs to (``car``...), ``""`` when the
            run has no domains, ``"all"`` for an explicitly pooled evaluation. Part of the
            dataset's identity: :func:`dataset_name` gives ``heldout/car``.
    """

    name: str
    kind: str
    root: Path
    ids: list[str]
    inputs: np.ndarray | DiskArray
    targets: np.ndarray | DiskArray | None
    content_hash: str
    size: int
    target_mask: np.ndarray | None = None
    skipped: list[Skipped] = field(default_factory=list)
    meta: dict = field(default_factory=dict)
    domain: str = ""

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def has_targets(self) -> np.ndarray:
        """``(N,)`` bool: rows with a target."""
        if self.targets is None:
            return np.zeros(len(self), dtype=bool)
        if self.target_mask is None:
            return np.ones(len(self), dtype=bool)
        return self.target_mask

    def input_uint8(self, rows=None) -> np.ndarray:
        """Served inputs as ``(N, S, S)`` uint8 (for display and edge matching): all
        rows, or those of ``rows`` (an int gives one ``(S, S)`` image)."""
        if isinstance(rows, (int, np.integer)):
            return np.round(self.inputs[int(rows)][..., 0] * 255.0).astype(np.uint8)
        x = self.inputs[:] if rows is None else self.inputs[np.asarray(rows)]
        return np.round(np.asarray(x)[..., 0] * 255.0).astype(np.uint8)


#: The domain of an explicitly pooled evaluation (``--domain all``).
POOLED = "all"


def dataset_name(kind: str, domain: str = "") -> str:
    """A dataset's identity in results: ``heldout/car``; just the kind without a domain."""
    return f"{kind}/{domain}" if domain else kind
