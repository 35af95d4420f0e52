"""Small comparison grids for dashboards: a few samples x (input | target | output).

One image per (checkpoint, dataset): the same few samples in every checkpoint's image (the
report's seeded "random" view, :func:`evalkit.present.report.grids.views`), so a dashboard's step
slider shows one set of samples evolving. Columns are samples; rows are the served input,
the target (held-out pairs only) and the checkpoint's cached served output
(``OUT/outputs/...``); nothing is generated again.
"""

from __future__ import annotations

import hashlib
import io
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from evalkit.present.export.points import dataset_label

#: Samples per grid image.
GRID_SAMPLES = 4


@dataclass
class GridImage:
    """One grid: ``image`` is uint8 HWC RGB; ``digest`` is the sha256 of its pixels."""

    domain: str
    dataset: str
    checkpoint: str
    step: int
    image: np.ndarray
    digest: str


def _rgb(a: np.ndarray) -> np.ndarray:
    return np.repeat(a[..., None], 3, axis=-1) if a.ndim == 2 else a[..., :3]


def _run_settings(runs: pd.DataFrame) -> tuple[int, int | None]:
    """Image size and --limit of the latest run (what the stored datasets were read with)."""
    if runs.empty:
        return 256, None
    latest = runs.iloc[-1]
    try:
        limit = json.loads(latest["options"] or "{}").get("limit")
    except ValueError:
        limit = None
    return int(latest["image_size"]), limit


def grid_images(out_dir: str | Path, samples: int = GRID_SAMPLES) -> tuple[list[GridImage],
                                                                          list[str]]:
    """Grid images of every evaluated (checkpoint, dataset) with cached outputs, and notes
    (a dataset whose inputs cannot be shown any more still gets its outputs row)."""
    from evalkit.present.report.grids import _reload, views
    from evalkit.store.results import Store

    out_dir = Path(out_dir)
    with Store(out_dir, create=False) as store:
        datasets = store.datasets()
        ckpts = store.checkpoints()
        evals = store.evaluations()
        runs = store.runs()
        ids_of = pd.read_sql_query("SELECT dataset, idx, sample_id FROM samples", store.conn)
    size, limit = _run_settings(runs)
    step_of = dict(zip(ckpts["name"], ckpts["step"], strict=True))
    images: list[GridImage] = []
    notes: list[str] = []
    for row in datasets.itertuples(index=False):
        ids = ids_of[ids_of["dataset"] == row.name].sort_values("idx")["sample_id"].tolist()
        pick = views(pd.DataFrame(), row.name, len(ids), None, None, None)["random"][:samples]
        if not pick:
            continue
        fixed: list[np.ndarray] = []  # input and target rows, the same for every checkpoint
        ds = _reload(pd.Series(row._asdict()), size, limit)
        if isinstance(ds, str):
            notes.append(f"{row.name}: {ds}")
        elif ds.ids == ids:
            fixed.append(np.concatenate([_rgb(ds.input_uint8(i)) for i in pick], axis=1))
            if ds.targets is not None and ds.has_targets[pick].all():
                fixed.append(np.concatenate([_rgb(ds.targets[i]) for i in pick], axis=1))
        ev = evals[evals["dataset"] == row.name]
        for ck, folder in zip(ev["checkpoint"], ev["outputs_dir"], strict=True):
            out_row = _outputs_row(out_dir / folder, [ids[i] for i in pick], size, notes)
            if out_row is None or ck not in step_of:
                continue
            image = np.ascontiguousarray(np.concatenate([*fixed, out_row], axis=0))
            domain = row.domain or ""
            images.append(GridImage(domain, dataset_label(row.name, domain), ck,
                                    int(step_of[ck]), image,
                                    hashlib.sha256(image.tobytes()).hexdigest()))
    images.sort(key=lambda g: (g.domain, g.dataset, g.step, g.checkpoint))
    return images, notes


def _outputs_row(folder: Path, ids: list[str], size: int,
                 notes: list[str] | None = None) -> np.ndarray | None:
    """The cached served outputs of ``ids`` side by side, or None when any is missing or
    fails its check against the folder's manifest (:mod:`evalkit.store.outputs`; then
    ``notes`` gets a line saying which)."""
    from evalkit.store.outputs import CheckedFolder, OutputChanged

    try:
        checked = CheckedFolder(folder)
        files = checked.files()
        tiles = []
        for sid in ids:
            with Image.open(io.BytesIO(checked.read(files[sid]))) as im:
                tiles.append(_rgb(np.asarray(im.convert("RGB").resize((size, size)))))
    except OutputChanged as exc:
        if notes is not None:
            notes.append(f"{exc}: not exported (run evalkit run again to regenerate it)")
        return None
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return np.concatenate(tiles, axis=1)
