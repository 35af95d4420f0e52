"""Baseline files: one checkpoint's recorded results as a small JSON file to commit.

``evalkit baseline OUT --checkpoint NAME --write baseline.json`` writes it; ``evalkit gate
--baseline baseline.json`` compares a new checkpoint against it. Shape::

    {
      "format": "evalkit-baseline/1",
      "checkpoint": "ckpt-2", "step": 2, "content_hash": "<checkpoint sha256>",
      "created_at": "2025-01-01T12:00:00+00:00",
      "provenance": {"out_dir": ..., "runs": [{"id", "run_dir", "evalkit_version",
                     "tensorflow_version", "torch_version", "image_size", "finished_at"}]},
      "datasets": {"heldout": {"kind": "heldout", "content_hash": "...", "n": 8}},
      "metrics": {"heldout": {"ssim": {"value", "ci_low", "ci_high", "std", "n",
                                        "status", "reason", "flags"}}}
    }

``content_hash`` is the checkpoint's content hash, as in ``evalkit results`` and
``OUT/selection.json``; each dataset's ``content_hash`` covers its files and the image size,
so a gate can refuse to compare numbers computed on different data.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

FORMAT = "evalkit-baseline/1"


class GateInputError(ValueError):
    """Unusable gate/baseline inputs (exit code 2); the message says what to fix."""


def _clean(v: Any) -> Any:
    """JSON-safe scalar: NaN/None -> None, numpy numbers -> Python numbers."""
    if v is None:
        return None
    if isinstance(v, float | int) and not isinstance(v, bool):
        f = float(v)
        if not math.isfinite(f):
            return None
        return int(v) if isinstance(v, int) else f
    try:
        if pd.isna(v):
            return None
    except (TypeError, ValueError):
        pass
    if hasattr(v, "item"):
        return _clean(v.item())
    return v


@dataclass
class CheckpointChoice:
    """The checkpoint a gate or baseline is about, and how it was chosen."""

    name: str
    step: int | None
    content_hash: str | None
    how: str


def choose_checkpoint(out: Path, results: pd.DataFrame, checkpoints: pd.DataFrame,
                      checkpoint: str | None, selected: bool,
                      default_latest: bool = True) -> CheckpointChoice:
    """Resolve ``--checkpoint NAME`` / ``--selected`` / the default.

    The default (neither given) is the latest evaluated checkpoint, i.e. the one with the
    highest step among those with results; with ``default_latest=False`` one of the two
    options is required.
    """
    if checkpoint and selected:
        raise GateInputError("pass either --checkpoint NAME or --selected, not both")
    evaluated = results.drop_duplicates("checkpoint")[["checkpoint", "step"]]
    ckpt_rows = checkpoints.set_index("name") if not checkpoints.empty else None

    def info(name: str, how: str) -> CheckpointChoice:
        if ckpt_rows is not None and name in ckpt_rows.index:
            row = ckpt_rows.loc[name]
            if row["status"] != "ok":
                raise GateInputError(f"checkpoint {name} failed to evaluate "
                                     f"({row['error']}); it has no results to check")
        if name not in set(evaluated.checkpoint):
            names = ", ".join(evaluated.checkpoint) or "none"
            raise GateInputError(f"no results for checkpoint {name!r} in {out}; "
                                 f"checkpoints with results: {names}")
        sub = results[results.checkpoint == name]
        step = _clean(sub.step.iloc[0])
        hashes = sub.checkpoint_hash.dropna().unique()
        return CheckpointChoice(name, None if step is None else int(step),
                                str(hashes[0]) if len(hashes) else None, how)

    if checkpoint:
        return info(checkpoint, "--checkpoint")
    if selected:
        sel_path = out / "selection.json"
        if not sel_path.is_file():
            raise GateInputError(f"--selected: {sel_path} not found; run 'evalkit select "
                                 f"{out}' first")
        try:
            sel = json.loads(sel_path.read_text())
            name = sel["checkpoint"]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise GateInputError(f"--selected: {sel_path} is not a selection file "
                                 f"(expected {{\"checkpoint\": NAME, ...}}): {exc}") from exc
        choice = info(str(name), f"--selected ({sel_path.name})")
        want = sel.get("content_hash")
        if want and choice.content_hash and want != choice.content_hash:
            raise GateInputError(
                f"--selected: {sel_path} names {name} with content hash {want[:12]}, but "
                f"its results in {out} are for content hash {choice.content_hash[:12]}; "
                f"run 'evalkit select {out}' again")
        return choice
    if not default_latest:
        raise GateInputError("say which checkpoint: --checkpoint NAME or --selected")
    if evaluated.empty:
        raise GateInputError(f"no results in {out}: run 'evalkit run RUN_DIR --out {out}'")
    latest = evaluated.sort_values(["step", "checkpoint"]).iloc[-1].checkpoint
    return info(str(latest), "default: the latest evaluated checkpoint (highest step); "
                             "pass --checkpoint NAME or --selected to choose")


def make_baseline(out: str | Path, checkpoint: str | None = None,
                  selected: bool = False) -> dict[str, Any]:
    """The baseline record of one checkpoint of evaluation folder ``out``."""
    from evalkit.store import ResultsError, Store

    out = Path(out)
    try:
        with Store(out, create=False) as store:
            results = store.results()
            ckpts = store.checkpoints()
            datasets = store.datasets()
            evals = store.evaluations()
            runs = store.runs()
    except ResultsError as exc:
        raise GateInputError(str(exc)) from exc
    choice = choose_checkpoint(out, results, ckpts, checkpoint, selected,
                               default_latest=False)
    rows = results[results.checkpoint == choice.name]
    ds_info = datasets.set_index("name")
    record_ds: dict[str, Any] = {}
    metrics: dict[str, dict[str, Any]] = {}
    for ds_name, sub in rows.groupby("dataset", sort=True):
        hashes = sub.dataset_hash.dropna().unique()
        n = ds_info.loc[ds_name, "n"] if ds_name in ds_info.index else None
        record_ds[str(ds_name)] = {"kind": _clean(sub.kind.iloc[0]),
                                   "content_hash": str(hashes[0]) if len(hashes) else None,
                                   "n": _clean(n)}
        metrics[str(ds_name)] = {
            str(r.metric): {"value": _clean(r.value), "ci_low": _clean(r.ci_low),
                            "ci_high": _clean(r.ci_high), "std": _clean(r.std),
                            "n": _clean(r.n), "status": r.status, "reason": _clean(r.reason),
                            "flags": json.loads(r.flags) if isinstance(r.flags, str) else {}}
            for r in sub.sort_values("metric").itertuples()}
    run_ids = sorted(set(evals[evals.checkpoint == choice.name].run_id.dropna().astype(int)))
    run_rows = runs[runs.id.isin(run_ids)]
    provenance = {
        "out_dir": str(out.resolve()),
        "runs": [{"id": int(r.id), "run_dir": r.run_dir,
                  "evalkit_version": _clean(r.evalkit_version),
                  "tensorflow_version": _clean(r.tensorflow_version),
                  "torch_version": _clean(r.torch_version),
                  "image_size": _clean(r.image_size),
                  "finished_at": _iso(_clean(r.finished_at))} for r in run_rows.itertuples()],
    }
    return {"format": FORMAT, "checkpoint": choice.name, "step": choice.step,
            "content_hash": choice.content_hash,
            "created_at": datetime.now(UTC).replace(microsecond=0).isoformat(),
            "provenance": provenance, "datasets": record_ds, "metrics": metrics}


def _iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, UTC).replace(microsecond=0).isoformat()


def write_baseline(record: dict[str, Any], path: str | Path) -> Path:
    """Write a baseline record as stable, diff-friendly JSON."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record, indent=2, sort_keys=False) + "\n")
    return path


@dataclass
class Baseline:
    """A baseline file read back (see the module docstring for its shape)."""

    path: Path
    data: dict[str, Any]

    @property
    def checkpoint(self) -> str:
        return str(self.data.get("checkpoint"))

    @property
    def content_hash(self) -> str | None:
        return self.data.get("content_hash")

    def dataset_hash(self, dataset: str) -> str | None:
        """The content hash of ``dataset`` when the baseline was recorded (None: absent)."""
        return (self.data.get("datasets", {}).get(dataset) or {}).get("content_hash")

    def metric(self, dataset: str, metric: str) -> dict[str, Any] | None:
        """The recorded entry of ``dataset``/``metric``, or None."""
        return (self.data.get("metrics", {}).get(dataset) or {}).get(metric)

    def describe(self) -> str:
        step = self.data.get("step")
        h = (self.content_hash or "")[:12]
        return f"{self.path} ({self.checkpoint}, step {step}, {h})"


def read_baseline(path: str | Path) -> Baseline:
    """Read and check a baseline file; :class:`GateInputError` says what is wrong."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError as exc:
        raise GateInputError(f"baseline {path} not found: write one with 'evalkit baseline "
                             f"OUT --checkpoint NAME --write {path}'") from exc
    except (OSError, ValueError) as exc:
        raise GateInputError(f"baseline {path} is not readable JSON: {exc}") from exc
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        got = data.get("format") if isinstance(data, dict) else type(data).__name__
        raise GateInputError(f"baseline {path} is not an evalkit baseline (format {got!r}, "
                             f"expected {FORMAT!r})")
    for key, kind in (("checkpoint", str), ("datasets", dict), ("metrics", dict)):
        if not isinstance(data.get(key), kind):
            raise GateInputError(f"baseline {path}: '{key}' missing or not a "
                                 f"{kind.__name__}")
    return Baseline(path=path, data=data)
