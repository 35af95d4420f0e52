"""The domain overview page (``report/index.html`` of a multi-domain evaluation): the release
decision, one row per domain: the chosen checkpoint and its step, how sure (P(first) as a
bar, stable or not against ``[ranking] stable_at``), the runner-up with the head-to-head
margin and the headline metric of each track for both (95 % CIs, n), the gate status;
linking to the domain's own report."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from evalkit.decide.ranking.rule import DIRECTIONS
from evalkit.present.report.render import _env, _num

#: Headline metrics of the domain overview, per dataset kind.
OVERVIEW_METRICS = {"heldout": ["l1", "ssim", "lpips", "kid"],
                    "sketches": ["adherence_f1", "kid", "lpips"],
                    "human": ["bt_score"]}


#: The one metric per track the overview compares the pick and the runner-up on.
HEADLINE = {"heldout": ["l1", "ssim"], "sketches": ["adherence_f1", "l1"],
            "human": ["bt_score"]}


def _headline(results: pd.DataFrame, pick: str, runner_up: str | None) -> list[dict]:
    """Per track: the headline metric's value and 95 % CI for the pick and the runner-up,
    the samples it rests on, and whether the pick is better on it."""
    out = []
    for kind, candidates in HEADLINE.items():
        track = results[(results["kind"] == kind) & (results["status"] == "ok")
                        & results["value"].notna()]
        for m in candidates:
            mine = track[(track["checkpoint"] == pick) & (track["metric"] == m)]
            if mine.empty:
                continue
            a = mine.iloc[0]
            cell = {"track": kind, "metric": m, "value": _num(a["value"]),
                    "ci": None if pd.isna(a.get("ci_low")) else
                    f"{_num(a['ci_low'])}–{_num(a['ci_high'])}",
                    "n": None if pd.isna(a.get("n")) else int(a["n"]),
                    "other": None, "other_ci": None, "better": None}
            theirs = track[(track["checkpoint"] == runner_up) & (track["metric"] == m)]
            if runner_up and not theirs.empty:
                b = theirs.iloc[0]
                lower = DIRECTIONS.get(m) == "lower"
                cell.update(other=_num(b["value"]),
                            other_ci=None if pd.isna(b.get("ci_low")) else
                            f"{_num(b['ci_low'])}–{_num(b['ci_high'])}",
                            better=bool(a["value"] < b["value"]) if lower
                            else bool(a["value"] > b["value"]))
            out.append(cell)
            break
    return out


def domain_summary(domain: str, selection: dict | None, error: str | None,
                    results: pd.DataFrame) -> dict:
    """One row of the domain overview: the release decision for the domain."""
    row: dict[str, Any] = {"domain": domain, "page": f"{domain}/index.html", "error": error,
                           "checkpoint": None, "step": None, "score": None, "p_first": None,
                           "stable": None, "stable_at": None, "runner_up": None,
                           "margin": None, "runner_up_p": None, "headline": [], "thin": [],
                           "metrics": [], "change": None, "comparison": None,
                           "compare_href": None}
    if selection is None:
        return row
    st = selection.get("stability", {})
    ru = selection.get("runner_up") or {}
    row.update(checkpoint=selection["checkpoint"], step=selection.get("step"),
               score=selection["score"], p_first=st.get("p_first"),
               stable=st.get("stable"), stable_at=st.get("stable_at"),
               runner_up=ru.get("checkpoint"), margin=ru.get("margin"),
               runner_up_p=ru.get("p_first"), thin=selection.get("thin_tracks") or [])
    row["headline"] = _headline(results, selection["checkpoint"], ru.get("checkpoint"))
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
                     config_path: Path | None, score_text: str = "",
                     unmeasured: list[dict] | None = None) -> None:
    """``report/index.html``: one row per domain, linking to its report."""
    import evalkit

    gate, gate_note = _gate_status(out_dir, config_path)
    for s in summaries:
        s["gate"] = gate.get(s["domain"])
    env = _env()
    html = env.get_template("overview.html").render(
        title="evalkit report: domains", evalkit_version=evalkit.__version__,
        out_dir=str(out_dir.resolve()), domains=summaries, gate_note=gate_note,
        fmt=_num, score_text=score_text, unmeasured=unmeasured or [])
    (report_dir / "index.html").write_text(html, encoding="utf-8")
