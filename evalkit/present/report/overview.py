"""The domain overview page (``report/index.html`` of a multi-domain evaluation): one row
per domain with its chosen checkpoint, score, P(first), headline metrics on both tracks and
gate status, linking to the domain's own report."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from evalkit.present.report.render import _env, _num

#: Headline metrics of the domain overview, per dataset kind.
OVERVIEW_METRICS = {"heldout": ["l1", "ssim", "lpips", "kid"],
                    "sketches": ["adherence_f1", "kid", "lpips"],
                    "human": ["bt_score"]}


def domain_summary(domain: str, selection: dict | None, error: str | None,
                    results: pd.DataFrame) -> dict:
    """One row of the domain overview."""
    row: dict[str, Any] = {"domain": domain, "page": f"{domain}/index.html", "error": error,
                           "checkpoint": None, "score": None, "p_first": None,
                           "metrics": []}
    if selection is None:
        return row
    row.update(checkpoint=selection["checkpoint"], score=selection["score"],
               p_first=selection["stability"].get("p_first"))
    mine = results[results["checkpoint"] == selection["checkpoint"]]
    for kind, metrics in OVERVIEW_METRICS.items():
        for m in metrics:
            hit = mine[(mine["kind"] == kind) & (mine["metric"] == m)]
            if hit.empty:
                continue
            h = hit.iloc[0]
            value = _num(h["value"]) if h["status"] == "ok" else h["status"]
            row["metrics"].append({"track": kind, "metric": m, "value": value})
    return row


def _gate_status(out_dir: Path, config_path: Path | None) -> tuple[dict[str, str], str | None]:
    """``({domain: "passed"|"failed: ..."}, note)`` from the run's ``[gate]`` rules, judged
    read-only like ``evalkit gate`` with its default candidates; ``note`` when not judged."""
    from evalkit.decide.ranking.rank import config_for

    cfg = config_for(out_dir, config_path)
    if cfg is None:
        return {}, "no evalkit.toml with [gate] rules found"
    from evalkit.core.config import ConfigError, load_config
    try:
        if "gate" not in load_config(cfg).raw:
            return {}, f"not judged: {cfg} has no [gate] rules"
    except ConfigError as exc:
        return {}, f"not judged: {exc}"
    try:
        from evalkit.decide.gate import run_gate
        rep = run_gate(out_dir, cfg)
    except Exception as exc:  # a gate that cannot be judged must not break the report
        return {}, f"gate not judged: {str(exc).splitlines()[0] if str(exc) else exc!r}"
    status = {}
    for d in rep.domains:
        if d.passed:
            status[d.domain] = "passed"
        else:
            why = d.problem or "; ".join(r.rule.label for r in d.failed)
            status[d.domain] = f"failed: {why}"
    return status, None


def render_overview(out_dir: Path, report_dir: Path, summaries: list[dict],
                     config_path: Path | None, score_text: str = "") -> None:
    """``report/index.html``: one row per domain, linking to its report."""
    import evalkit

    gate, gate_note = _gate_status(out_dir, config_path)
    for s in summaries:
        s["gate"] = gate.get(s["domain"])
    env = _env()
    html = env.get_template("overview.html").render(
        title="evalkit report: domains", evalkit_version=evalkit.__version__,
        out_dir=str(out_dir.resolve()), domains=summaries, gate_note=gate_note,
        fmt=_num, score_text=score_text)
    (report_dir / "index.html").write_text(html, encoding="utf-8")
