"""Comparison grids: samples x (input | target | checkpoints), as ``<img>`` cells.

Images are files in ``OUT/report/img/``: the cached served outputs are read from
``OUT/outputs/``, checked against their manifest's sha256 (:mod:`evalkit.store.outputs`;
one that fails is not shown, its cell says why) and the checked bytes written (a copy, not
a link, so a later change to the cache cannot change the report), and the served inputs and targets are
written as PNG after reloading each dataset from its recorded root with the recorded image
size (only when the reloaded dataset has the recorded content hash, so the grid never shows
inputs the outputs were not made from); an input/target PNG the previous report already
holds for the same content is reused rather than encoded again
(:mod:`evalkit.present.report.cache`). File names in ``img/`` are generated from indices
(``d0/in/00012.png``), never from sample ids, so no name from the data reaches an HTML
attribute; ids are shown as (escaped) text only.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from evalkit.present.report.cache import ReportCache, key
from evalkit.store.outputs import CheckedFolder, OutputChanged

#: Rows per view (best / worst / random) of a comparison grid.
ROWS_PER_VIEW = 6
#: Checkpoint columns shown in full; above this, the top-K by rank plus the latest.
MAX_COLUMNS = 8
TOP_K = 5
#: Samples shown per dataset on a checkpoint's page.
MAX_PAGE_SAMPLES = 48
#: Per-sample metric used to order samples, by preference.
SORT_METRICS = ("l1", "lpips", "ssim", "psnr", "adherence_f1")


@dataclass
class DisplaySet:
    """What the grids of one dataset can show.

    Attributes:
        name, kind: the dataset.
        index: its number in the report (``img/d<index>/``).
        ids: sample ids in dataset order.
        inputs: relative image paths per sample (None where unavailable).
        targets: relative image paths per sample (None where the sample has no target).
        outputs: checkpoint -> relative image paths per sample.
        note: why inputs/targets are not shown, if they are not.
        size: served size in px.
        problems: (checkpoint, sample index) -> why that output is not shown (it failed
            its check, :mod:`evalkit.store.outputs`).
        changed: one line per output file that failed its check.
    """

    name: str
    kind: str
    index: int
    ids: list[str]
    size: int
    inputs: list[str | None] = field(default_factory=list)
    targets: list[str | None] = field(default_factory=list)
    outputs: dict[str, list[str | None]] = field(default_factory=dict)
    note: str | None = None
    problems: dict[tuple[str, int], str] = field(default_factory=dict)
    changed: list[str] = field(default_factory=list)

    @property
    def has_targets(self) -> bool:
        return any(t is not None for t in self.targets)


def _reload(row: pd.Series, size: int, limit: int | None):
    """The dataset as evaluated, or a string saying why it cannot be shown."""
    from evalkit.inputs.data.pairs import load_pairs

    root = Path(str(row["root"]))
    if not root.is_dir():
        return f"inputs not shown: {root} is no longer there"
    try:
        meta = json.loads(row["meta"] or "{}")
    except ValueError:
        meta = {}
    try:
        if row["kind"] == "sketches":
            from evalkit.inputs.sketches.dataset import load_sketches
            domain = meta.get("domain") if isinstance(meta.get("domain"), str) else None
            ds = load_sketches(root, size=size, name=row["name"], domain=domain, limit=limit)
        else:
            ds = load_pairs(root, size=size, name=row["name"], limit=limit)
    except Exception as exc:  # any reason: the grid still shows the outputs
        return f"inputs not shown: {root} could not be read again ({type(exc).__name__})"
    if ds.content_hash != row["content_hash"]:
        return f"inputs not shown: the files in {root} changed since they were evaluated"
    return ds


def build_display_sets(out_dir: Path, report_dir: Path, datasets: pd.DataFrame,
                       samples: pd.DataFrame, evaluations: pd.DataFrame,
                       checkpoints: list[str], size: int, limit: int | None,
                       needed: dict[str, set[int]],
                       log: Callable[[str], None] = lambda s: print(s, file=sys.stderr),
                       cache: ReportCache | None = None) -> list[DisplaySet]:
    """Prepare image files for every dataset; ``needed[dataset]`` are the sample indices
    any page shows (only those images are written/linked). Every output is checked
    against its folder's manifest first (:mod:`evalkit.store.outputs`); one that fails is
    not linked, its cell says why, and ``log`` gets a line. With ``cache``, an input or
    target PNG the previous report already holds for the same dataset content, size,
    limit and sample is reused instead of encoded again (the dataset is still reloaded and
    its content hash checked)."""
    sets = []
    for k, row in enumerate(datasets.itertuples(index=False)):
        r = pd.Series(row._asdict())
        ids = samples[samples["dataset"] == r["name"]].sort_values("idx")["sample_id"].tolist()
        disp = DisplaySet(name=r["name"], kind=r["kind"], index=k, ids=ids, size=size)
        want = sorted(i for i in needed.get(r["name"], set()) if i < len(ids))
        base = f"img/d{k}"
        disp.inputs = [None] * len(ids)
        disp.targets = [None] * len(ids)
        ds = _reload(r, size, limit)
        if isinstance(ds, str):
            disp.note = ds
        elif ds.ids != ids:
            disp.note = "inputs not shown: the reloaded sample ids differ from the stored ones"
        else:
            has_t = ds.has_targets
            for i in want:
                disp.inputs[i] = _image(report_dir, f"{base}/in", i, cache,
                                        ("input", r["content_hash"], size, limit, i),
                                        partial(_input_image, ds, i))
                if ds.targets is not None and has_t[i]:
                    disp.targets[i] = _image(report_dir, f"{base}/tg", i, cache,
                                             ("target", r["content_hash"], size, limit, i),
                                             partial(_target_image, ds, i))
        ev = evaluations[evaluations["dataset"] == r["name"]]
        folders = dict(zip(ev["checkpoint"], ev["outputs_dir"], strict=True))
        for j, ck in enumerate(checkpoints):
            paths: list[str | None] = [None] * len(ids)
            folder = folders.get(ck)
            if folder is not None:
                try:
                    checked = CheckedFolder(out_dir / folder)
                    files = checked.files()
                except (OSError, ValueError, KeyError, TypeError):
                    checked, files = None, {}
                for i in want:
                    f = files.get(ids[i])
                    if checked is None or f is None or not (out_dir / folder / f).is_file():
                        continue
                    try:
                        data = checked.read(f)
                    except OutputChanged as exc:
                        disp.problems[(ck, i)] = (f"not shown: {exc.reason}; run evalkit run "
                                                  "again to regenerate it")
                        disp.changed.append(str(exc))
                        log(f"{exc}: not shown in the report (run evalkit run again to "
                            "regenerate it)")
                        continue
                    rel = f"{base}/c{j}/{i:05d}.png"
                    (report_dir / rel).parent.mkdir(parents=True, exist_ok=True)
                    (report_dir / rel).write_bytes(data)  # the checked bytes, not a link
                    paths[i] = rel
            disp.outputs[ck] = paths
        sets.append(disp)
    return sets


def _input_image(ds, i: int) -> Image.Image:
    """Sample ``i``'s served input (grey, as the model saw it)."""
    return Image.fromarray(ds.input_uint8(i), mode="L")


def _target_image(ds, i: int) -> Image.Image:
    return Image.fromarray(ds.targets[i])


def _image(report_dir: Path, folder: str, i: int, cache: ReportCache | None,
           parts: tuple, draw: Callable[[], Image.Image]) -> str:
    """Write sample ``i``'s PNG into ``report_dir/folder`` (reused from ``cache`` under the
    key of ``parts`` when there); returns its path relative to ``report_dir``."""
    name = f"{i:05d}.png"
    dest = report_dir / folder
    k = key("grid-image", *parts) if cache is not None else ""
    if cache is None or cache.get(k, dest) is None:
        dest.mkdir(parents=True, exist_ok=True)
        save_png(draw(), dest / name)
        if cache is not None:
            cache.put(k, dest, [name], name)
    return f"{folder}/{name}"


def save_png(img: Image.Image, path: Path) -> None:
    """Encode one grid image (the one place grid PNGs are drawn: tests count calls)."""
    img.save(path)


def sort_metric(sample_metrics: pd.DataFrame, dataset: str, directions: dict[str, str]
                ) -> str | None:
    """The per-sample metric that orders a dataset's samples (best/worst views)."""
    have = set(sample_metrics.loc[sample_metrics["dataset"] == dataset, "metric"])
    for m in SORT_METRICS:
        if m in have:
            return m
    known = sorted(m for m in have if m in directions)
    return known[0] if known else None


def views(sample_metrics: pd.DataFrame, dataset: str, n: int, checkpoint: str | None,
          metric: str | None, direction: str | None, seed: int = 0) -> dict[str, list[int]]:
    """Sample indices of the ``best``, ``worst`` and ``random`` views of a dataset.

    Best/worst are by ``checkpoint``'s per-sample ``metric`` (in its better ``direction``);
    samples without a value are left out of those two. ``random`` is a seeded draw
    (seed 0: the same samples in every report of the same dataset).
    """
    k = min(ROWS_PER_VIEW, n)
    rng = np.random.default_rng(seed)
    out = {"random": sorted(rng.choice(n, size=k, replace=False).tolist()) if n else []}
    if metric is None or checkpoint is None:
        return out
    sm = sample_metrics[(sample_metrics["dataset"] == dataset)
                        & (sample_metrics["metric"] == metric)
                        & (sample_metrics["checkpoint"] == checkpoint)]
    sm = sm[sm["idx"].notna()]
    if sm.empty:
        return out
    asc = direction != "higher"  # lower is better: ascending puts the best first
    ordered = sm.sort_values(["value", "idx"], ascending=[asc, True])["idx"].astype(int)
    out["best"] = ordered.head(k).tolist()
    out["worst"] = ordered.tail(k).tolist()[::-1]
    return {"best": out["best"], "worst": out["worst"], "random": out["random"]}


def grid_columns(table: pd.DataFrame) -> tuple[list[str], bool]:
    """Checkpoints shown as grid columns, in step order: all participants when there are at
    most :data:`MAX_COLUMNS`, else the top :data:`TOP_K` by rank plus the latest. Returns
    ``(names, reduced)``."""
    part = table[table["rank"].notna()]
    if len(part) <= MAX_COLUMNS:
        return part.sort_values(["step", "checkpoint"])["checkpoint"].tolist(), False
    keep = set(part.sort_values("rank").head(TOP_K)["checkpoint"])
    keep.add(part.sort_values(["step", "checkpoint"]).iloc[-1]["checkpoint"])
    chosen = part[part["checkpoint"].isin(keep)].sort_values(["step", "checkpoint"])
    return chosen["checkpoint"].tolist(), True
