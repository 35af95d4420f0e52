"""Baseline files: the recorded results of one checkpoint per domain, a small JSON file to
commit; and the choice of the checkpoint(s) a gate or baseline is about.

``evalkit baseline OUT --selected --write baseline.json`` (or ``--checkpoint NAME``, once per
domain) writes it; ``evalkit gate --baseline baseline.json`` compares new checkpoints against
it, each domain against its own entry. Shape::

    {
      "format": "evalkit-baseline/2",
      "checkpoints": {"car": {"checkpoint": "car/ckpt-2", "step": 2,
                              "content_hash": "<checkpoint sha256>"}, ...},
      "created_at": "2025-01-01T12:00:00+00:00",
      "provenance": {"out_dir": ..., "runs": [{"id", "run_dir", "evalkit_version",
                     "tensorflow_version", "torch_version", "image_size", "finished_at"}]},
      "datasets": {"heldout/car": {"kind": "heldout", "domain": "car",
                                   "content_hash": "...", "n": 8}},
      "metrics": {"heldout/car": {"ssim": {"value", "ci_low", "ci_high", "std", "n",
                                            "status", "reason", "flags"}}}
    }

Dataset names carry the domain, so one file holds every domain without mixing them. Each
dataset's ``content_hash`` covers its files and the image size, so a gate can refuse to
compare numbers computed on different data. Format 1 files (one checkpoint, no domains)
are still read.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

FORMAT = "evalkit-baseline/2"
FORMATS = (FORMAT, "evalkit-baseline/1")


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


def _choice(out: Path, results: pd.DataFrame, ckpts: pd.DataFrame, name: str,
            how: str) -> CheckpointChoice:
    """The candidate ``name``; GateInputError when it failed or has no results."""
    rows = ckpts[ckpts["name"] == name]
    if len(rows) and rows["status"].iloc[0] == "failed":
        raise GateInputError(f"checkpoint {name} failed to evaluate "
                             f"({rows['error'].iloc[0]}); it has no results to check")
    sub = results[results.checkpoint == name]
    if sub.empty:
        names = ", ".join(results.drop_duplicates("checkpoint").checkpoint) or "none"
        raise GateInputError(f"no results for checkpoint {name!r} in {out}; "
                             f"checkpoints with results: {names}")
    step = _clean(sub.step.iloc[0])
    hashes = sub.checkpoint_hash.dropna().unique()
    return CheckpointChoice(name, None if step is None else int(step),
                            str(hashes[0]) if len(hashes) else None, how)


def _domain_of(ckpts: pd.DataFrame, results: pd.DataFrame, name: str) -> str:
    rows = ckpts[ckpts["name"] == name]
    if len(rows):
        return str(rows["domain"].iloc[0] or "")
    rows = results[results["checkpoint"] == name]
    return str(rows["domain"].iloc[0] or "") if len(rows) else ""


def _selected_choices(out: Path, results: pd.DataFrame, checkpoints: pd.DataFrame,
                      who: str, how: str) -> dict[str, CheckpointChoice]:
    """Each domain's choice in ``OUT/selection.json``; ``who`` starts every error message
    (``--selected`` or the default), ``how`` says how the choice was made."""
    from evalkit.decide.selection import SelectionError, read_selection

    sel_path = out / "selection.json"
    if not sel_path.is_file():
        raise GateInputError(f"{who}: {sel_path} not found; run 'evalkit select "
                             f"{out}' first")
    try:
        entries = read_selection(sel_path)
    except SelectionError as exc:
        raise GateInputError(f"{who}: {exc}") from exc
    chosen: dict[str, CheckpointChoice] = {}
    for d, entry in entries.items():
        name = str(entry.get("checkpoint"))
        choice = _choice(out, results, checkpoints, name, how)
        want = entry.get("content_hash")
        if want and choice.content_hash and want != choice.content_hash:
            raise GateInputError(
                f"{who}: {sel_path} names {name} with content hash {want[:12]}, but "
                f"its results in {out} are for content hash {choice.content_hash[:12]}; "
                f"run 'evalkit select {out}' again")
        chosen[str(d)] = choice
    return chosen


def _newest(out: Path, results: pd.DataFrame, checkpoints: pd.DataFrame, newest: pd.Series,
            how: str) -> tuple[CheckpointChoice, str | None]:
    """The domain's newest discovered checkpoint, and the problem when it cannot pass."""
    name, step = str(newest["name"]), int(newest["step"])
    bare = CheckpointChoice(name, step, None, how)
    if newest["status"] == "failed":
        return bare, (f"the newest checkpoint {name} (step {step}) failed to evaluate: "
                      f"{newest['error']}; fix or remove it, or gate another with "
                      "--checkpoint NAME / --selected")
    if newest["status"] == "raced":  # evalkit.execute.racing: not evaluated in full
        return bare, (f"the newest checkpoint {name} (step {step}) was {newest['error']}; "
                      "gate the race's choice with --selected, or evaluate it in full with "
                      "'evalkit run' (without --race)")
    if results[results.checkpoint == name].empty:
        return bare, (f"the newest checkpoint {name} (step {step}) has no results (not "
                      "evaluated yet): run 'evalkit run' again")
    return _choice(out, results, checkpoints, name, how), None


def choose_candidates(out: Path, results: pd.DataFrame, checkpoints: pd.DataFrame,
                      names: list[str] | None = None, selected: bool = False,
                      default_newest: bool = True, prefer_selection: bool = False
                      ) -> dict[str, tuple[CheckpointChoice | None, str | None]]:
    """The checkpoint each domain is judged on: ``{domain: (choice, problem)}``.

    * ``names`` (``--checkpoint``, repeatable): those checkpoints, one per domain; only
      their domains are judged. A name without results is a GateInputError (exit 2).
    * ``selected``: each domain's choice in ``OUT/selection.json`` (the file must exist).
    * default with ``prefer_selection`` (what ``evalkit gate`` does) and an
      ``OUT/selection.json``: each domain's selected checkpoint, i.e. what is released; a
      domain the selection has no choice for gets its newest, as below. An unreadable or
      out-of-date selection is a GateInputError (exit 2).
    * default otherwise: each domain's newest *discovered* checkpoint (highest step, failed
      and not-yet-evaluated ones included). When it failed or has no results the domain
      gets a ``problem`` (the gate fails, exit 1): a release whose newest checkpoint failed
      never passes by falling back to an older one. With ``default_newest=False`` one of
      the two options is required.
    """
    names = list(names or [])
    if names and selected:
        raise GateInputError("pass either --checkpoint NAME or --selected, not both")
    out_: dict[str, tuple[CheckpointChoice | None, str | None]] = {}
    if names:
        for name in names:
            d = _domain_of(checkpoints, results, name)
            if d in out_:
                raise GateInputError(f"--checkpoint {name}: domain '{d}' already has "
                                     f"--checkpoint {out_[d][0].name}; one per domain")
            out_[d] = (_choice(out, results, checkpoints, name, "--checkpoint"), None)
        return out_
    if selected:
        chosen = _selected_choices(out, results, checkpoints, "--selected",
                                   "--selected (selection.json)")
        return {d: (c, None) for d, c in chosen.items()}
    if not default_newest:
        raise GateInputError("say which checkpoint: --checkpoint NAME or --selected")
    if checkpoints.empty and results.empty:
        raise GateInputError(f"no results in {out}: run 'evalkit run RUN_DIR --out {out}'")
    sel_path = out / "selection.json"
    has_sel = prefer_selection and sel_path.is_file()
    chosen = {}
    if has_sel:
        chosen = _selected_choices(
            out, results, checkpoints, f"default candidate ({sel_path} exists)",
            "default: the checkpoint OUT/selection.json selects (evalkit select: what is "
            "released)")
    for d, rows in checkpoints.groupby("domain", sort=True):
        newest = rows.sort_values(["step", "name"]).iloc[-1]
        d = str(d)
        if d in chosen:
            c = chosen.pop(d)
            if str(newest["name"]) != c.name:
                c.how += (f"; the domain's newest checkpoint {newest['name']} (step "
                          f"{int(newest['step'])}) is not the selected one")
            c.how += "; pass --checkpoint NAME to gate another"
            out_[d] = (c, None)
            continue
        how = ("default: the newest discovered checkpoint of the domain (highest step); "
               + (f"{sel_path.name} has no choice for this domain; " if has_sel else
                  "OUT has no selection.json; " if prefer_selection else "")
               + "pass --checkpoint NAME or --selected to choose")
        out_[d] = _newest(out, results, checkpoints, newest, how)
    for d, c in chosen.items():  # selected, but not among the discovered checkpoints
        c.how += "; pass --checkpoint NAME to gate another"
        out_[d] = (c, None)
    return out_


def make_baseline(out: str | Path, checkpoint: str | list[str] | None = None,
                  selected: bool = False) -> dict[str, Any]:
    """The baseline record of one checkpoint per domain of evaluation folder ``out``
    (``--checkpoint`` names, or ``--selected``)."""
    from evalkit.store.results import ResultsError, Store

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
    names = [checkpoint] if isinstance(checkpoint, str) else list(checkpoint or [])
    choices = choose_candidates(out, results, ckpts, names, selected, default_newest=False)
    ds_info = datasets.set_index("name")
    record_ds: dict[str, Any] = {}
    metrics: dict[str, dict[str, Any]] = {}
    chosen = {}
    for d, (choice, _) in sorted(choices.items()):
        assert choice is not None
        chosen[d] = {"checkpoint": choice.name, "step": choice.step,
                     "content_hash": choice.content_hash}
        rows = results[results.checkpoint == choice.name]
        for ds_name, sub in rows.groupby("dataset", sort=True):
            hashes = sub.dataset_hash.dropna().unique()
            n = ds_info.loc[ds_name, "n"] if ds_name in ds_info.index else None
            record_ds[str(ds_name)] = {"kind": _clean(sub.kind.iloc[0]), "domain": d,
                                       "content_hash": str(hashes[0]) if len(hashes) else None,
                                       "n": _clean(n)}
            metrics[str(ds_name)] = {
                str(r.metric): {"value": _clean(r.value), "ci_low": _clean(r.ci_low),
                                "ci_high": _clean(r.ci_high), "std": _clean(r.std),
                                "n": _clean(r.n), "status": r.status,
                                "reason": _clean(r.reason),
                                "flags": json.loads(r.flags) if isinstance(r.flags, str)
                                else {}}
                for r in sub.sort_values("metric").itertuples()}
    names_chosen = {c["checkpoint"] for c in chosen.values()}
    run_ids = sorted(set(evals[evals.checkpoint.isin(names_chosen)].run_id.dropna()
                         .astype(int)))
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
    return {"format": FORMAT, "checkpoints": chosen,
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
    def checkpoints(self) -> dict[str, dict[str, Any]]:
        """``{domain: {"checkpoint", "step", "content_hash"}}`` (format 1: domain "")."""
        if "checkpoints" in self.data:
            return self.data["checkpoints"]
        return {"": {k: self.data.get(k) for k in ("checkpoint", "step", "content_hash")}}

    def dataset_hash(self, dataset: str) -> str | None:
        """The content hash of ``dataset`` when the baseline was recorded (None: absent)."""
        return (self.data.get("datasets", {}).get(dataset) or {}).get("content_hash")

    def metric(self, dataset: str, metric: str) -> dict[str, Any] | None:
        """The recorded entry of ``dataset``/``metric``, or None."""
        return (self.data.get("metrics", {}).get(dataset) or {}).get(metric)

    def describe(self) -> str:
        parts = [f"{c['checkpoint']}, step {c.get('step')}, {(c.get('content_hash') or '')[:12]}"
                 for c in self.checkpoints.values()]
        return f"{self.path} ({'; '.join(parts)})"


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
    if not isinstance(data, dict) or data.get("format") not in FORMATS:
        got = data.get("format") if isinstance(data, dict) else type(data).__name__
        raise GateInputError(f"baseline {path} is not an evalkit baseline (format {got!r}, "
                             f"expected {FORMAT!r})")
    who = ("checkpoints", dict) if data["format"] == FORMAT else ("checkpoint", str)
    for key, kind in (who, ("datasets", dict), ("metrics", dict)):
        if not isinstance(data.get(key), kind):
            raise GateInputError(f"baseline {path}: '{key}' missing or not a "
                                 f"{kind.__name__}")
    return Baseline(path=path, data=data)
