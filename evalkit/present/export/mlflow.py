"""Results as MLflow runs: one run per domain, metrics at each checkpoint's step.

Written with MLflow's own client (``mlflow.MlflowClient``; the optional extra
``evalkit[mlflow]``) to any tracking URI: a local ``sqlite:///path/mlflow.db`` or
``file:///path/mlruns`` needs no server. Each domain of the evaluation folder becomes one
run in the experiment (default ``evalkit``), named after the domain:

Names from folders are made safe for MLflow: the dataset in a metric key is cleaned like a
TensorBoard tag (:func:`evalkit.core.names.key_segment`: MLflow refuses keys with other
characters), and run names, params and tags have control characters written as visible
escapes (:func:`evalkit.core.names.visible`).

* metrics ``<dataset>/<metric>`` (``heldout/ssim``) at each checkpoint's step, and
  ``<dataset>/<metric>/ci_low`` / ``ci_high`` for the 95% CI bounds;
* params: what the numbers were measured with (image size, --limit, datasets and their n,
  the ranking method, evalkit's version);
* tags: the selection (``evalkit.selected.checkpoint``, ``.step``, ``.content_hash``,
  ``.score``, ``.p_first``, ``.runner_up``) and where the results live (``evalkit.out``);
* artifacts: the report folder (``report/``) and ``selection.json``.

Re-exporting the same folder finds its runs again (tag ``evalkit.export_id``, a digest of
the folder's path and the domain) and logs only the points not logged yet; the selection
tags are updated. When a logged point changed (a checkpoint re-evaluated) or a param
changed, the run is deleted and logged again, so MLflow never holds two values at one step.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

from evalkit.core.names import key_segment, visible
from evalkit.present.export.points import Point, load_points

DEFAULT_EXPERIMENT = "evalkit"
#: MLflow's cap on one log_batch call.
_BATCH = 1000


@dataclass
class MlflowRunExport:
    """One domain's run: its id, how many metric points were logged now, whether it was new."""

    domain: str
    run_id: str
    logged: int
    unchanged: int
    created: bool
    artifact_location: str = ""


def tracking_target(tracking_uri: str | None) -> tuple[str, str]:
    """``(uri, source)``: the tracking URI :func:`export_mlflow` writes to for
    ``tracking_uri`` (absolute, as MLflow resolves it) and where it comes from:
    ``--mlflow-uri``, ``$MLFLOW_TRACKING_URI``, or MLflow's default (a ``mlflow.db``/``mlruns``
    in the current folder). ImportError names the extra when MLflow is absent."""
    import os

    try:
        import mlflow
    except ImportError as exc:
        raise ImportError("MLflow export needs mlflow: pip install 'evalkit[mlflow]'") from exc
    if tracking_uri:
        return tracking_uri, "--mlflow-uri"
    if os.environ.get("MLFLOW_TRACKING_URI"):
        return mlflow.get_tracking_uri(), "$MLFLOW_TRACKING_URI"
    return mlflow.get_tracking_uri(), "MLflow's default, in the current folder"


def metric_items(points: list[Point]) -> dict[tuple[str, int], float]:
    """``(key, step) -> value`` of one domain's points (keys ``heldout/ssim[/ci_low]``)."""
    items = {}
    for p in points:
        dataset = "/".join(key_segment(part) for part in p.dataset.split("/"))
        base = f"{dataset}/{p.metric}"
        for k, v in ((base, p.value), (base + "/ci_low", p.ci_low),
                     (base + "/ci_high", p.ci_high)):
            if v is not None:
                items[(k, p.step)] = float(v)
    return items


def _selection_tags(entry: dict | None, error: str | None) -> dict[str, str]:
    if entry is None:
        return {"evalkit.selected.checkpoint": "", "evalkit.selected.error": error or ""}
    stab = entry.get("stability") or {}
    runner = entry.get("runner_up") or {}
    tags = {
        "evalkit.selected.checkpoint": entry.get("checkpoint"),
        "evalkit.selected.step": entry.get("step"),
        "evalkit.selected.content_hash": entry.get("content_hash"),
        "evalkit.selected.score": entry.get("score"),
        "evalkit.selected.p_first": stab.get("p_first"),
        "evalkit.selected.runner_up": runner.get("checkpoint"),
        "evalkit.selected.explanation": (entry.get("explanation") or "")[:4000],
        "evalkit.selected.error": "",
    }
    return {k: "" if v is None else visible(str(v), keep="\n" if k.endswith("explanation")
                                            else "") for k, v in tags.items()}


def _params(domain: str, datasets, runs, sel_entry: dict | None) -> dict[str, str]:
    import evalkit

    latest = runs.iloc[-1] if len(runs) else None
    options = {}
    if latest is not None:
        try:
            options = json.loads(latest["options"] or "{}")
        except ValueError:
            options = {}
    ds = datasets[datasets["domain"].fillna("") == domain]
    params = {
        "domain": domain or "-",
        "image_size": "" if latest is None else str(latest["image_size"]),
        "limit": str(options.get("limit")),
        "datasets": "; ".join(f"{r.name} (n={r.n})" for r in ds.itertuples()),
        "evalkit_version": evalkit.__version__,
    }
    if sel_entry is not None:
        params["ranking_method"] = str((sel_entry.get("rule") or {}).get("method"))
    return {k: visible(v) for k, v in params.items()}


def _default_artifacts(uri: str | None, experiment: str) -> str | None:
    """For a local SQLite store: artifacts beside the database (``<db folder>/mlartifacts``,
    like ``mlflow server``), not in the current directory."""
    if not uri or not uri.startswith("sqlite:///"):
        return None
    db = Path(urlparse(uri).path)
    return (db.parent / "mlartifacts" / experiment).resolve().as_uri()


def export_mlflow(out_dir: str | Path, tracking_uri: str | None = None,
                  experiment: str = DEFAULT_EXPERIMENT) -> list[MlflowRunExport]:
    """Log ``out_dir``'s results to MLflow (see the module docstring); returns one
    :class:`MlflowRunExport` per domain. ImportError names the extra when MLflow is absent."""
    try:
        from mlflow import MlflowClient
        from mlflow.entities import Metric, Param, RunTag
    except ImportError as exc:
        raise ImportError("MLflow export needs mlflow: pip install 'evalkit[mlflow]'") from exc
    from evalkit.decide.selection import SelectionError, select
    from evalkit.store.results import Store

    out_dir = Path(out_dir)
    points, _ = load_points(out_dir)
    with Store(out_dir, create=False) as store:
        datasets = store.datasets()
        runs = store.runs()
        ckpts = store.checkpoints()
    try:
        sel = select(out_dir, write=False)
    except SelectionError as exc:
        sel = {"domains": {}, "errors": {"": str(exc)}}
    _ensure_report(out_dir)

    client = MlflowClient(tracking_uri=tracking_uri)
    exp = client.get_experiment_by_name(experiment)
    exp_id = exp.experiment_id if exp is not None else client.create_experiment(
        experiment, artifact_location=_default_artifacts(tracking_uri, experiment))
    domains = sorted(set(ckpts["domain"].fillna("")) | {p.domain for p in points})
    exports = []
    for d in domains:
        entry = sel["domains"].get(d)
        error = sel.get("errors", {}).get(d) or sel.get("errors", {}).get("")
        want = metric_items([p for p in points if p.domain == d])
        params = _params(d, datasets, runs, entry)
        export_id = hashlib.sha256(f"{out_dir.resolve()}\0{d}".encode()).hexdigest()[:32]
        found = client.search_runs([exp_id], f"tags.`evalkit.export_id` = '{export_id}'")
        run = found[0] if found else None
        logged: dict[tuple[str, int], float] = {}
        if run is not None:
            for key in run.data.metrics:
                for m in client.get_metric_history(run.info.run_id, key):
                    logged[(m.key, int(m.step))] = m.value
            changed = any(k not in want or want[k] != v for k, v in logged.items())
            params_changed = any(run.data.params.get(k, v) != v for k, v in params.items())
            if changed or params_changed:
                client.delete_run(run.info.run_id)
                run, logged = None, {}
        created = run is None
        if created:
            run = client.create_run(exp_id, run_name=visible(d or out_dir.name), tags={
                "evalkit.export_id": export_id, "evalkit.out": visible(str(out_dir.resolve())),
                "evalkit.domain": visible(d)})
        run_id = run.info.run_id
        now = int(time.time() * 1000)
        todo = [Metric(k, v, now, step) for (k, step), v in sorted(
            want.items(), key=lambda kv: (kv[0][1], kv[0][0])) if (k, step) not in logged]
        tags = [RunTag(k, v) for k, v in _selection_tags(entry, error).items()]
        new_params = [Param(k, v) for k, v in params.items()
                      if created or k not in run.data.params]
        client.log_batch(run_id, metrics=todo[:_BATCH], params=new_params, tags=tags)
        for i in range(_BATCH, len(todo), _BATCH):
            client.log_batch(run_id, metrics=todo[i:i + _BATCH])
        if (out_dir / "report").is_dir():
            client.log_artifacts(run_id, str(out_dir / "report"), "report")
        if entry is not None:  # the selection computed now, not a possibly older file
            with tempfile.TemporaryDirectory() as tmp:
                path = Path(tmp) / "selection.json"
                path.write_text(json.dumps({**sel, "domains": {d: entry}}, indent=2))
                client.log_artifact(run_id, str(path))
        client.set_terminated(run_id, "FINISHED")
        exports.append(MlflowRunExport(d, run_id, len(todo), len(want) - len(todo), created,
                                       client.get_experiment(exp_id).artifact_location))
    return exports


def _ensure_report(out_dir: Path) -> None:
    """Render OUT/report when it is missing (it is logged as an artifact); a report that
    cannot be rendered is left out, the metrics are still logged."""
    if (out_dir / "report" / "index.html").is_file():
        return
    try:
        from evalkit.present.report import render_report

        render_report(out_dir)
    except Exception:  # the report is a view; its absence must not block the metrics
        pass
