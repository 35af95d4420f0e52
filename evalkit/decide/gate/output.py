"""Gate outputs: the terminal summary, JSON, JUnit XML and Markdown, grouped by domain."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from typing import Any

import pandas as pd

from evalkit.core.names import visible
from evalkit.decide.gate.evaluate import FAILED, PASSED, SKIPPED, DomainGate, GateReport, _fmt


def _domain_label(d: DomainGate) -> str:
    return d.domain or "(run)"


def _checkpoint_line(d: DomainGate) -> str:
    c = d.checkpoint
    if c is None:
        return "none"
    return f"{c.name} (step {c.step}, {(c.content_hash or '?')[:12]}); {c.how}"


def rule_table(d: DomainGate) -> pd.DataFrame:
    """One row per rule of a domain: result, rule, value [CI], baseline, worse-by, detail."""
    rows = []
    for r in d.results:
        ci = (f" [{_fmt(r.ci_low)}, {_fmt(r.ci_high)}]"
              if r.ci_low is not None and r.ci_high is not None else "")
        label = r.rule.label if r.dataset in ("", r.rule.dataset) else \
            r.rule.label.replace(r.rule.dataset, r.dataset, 1)
        rows.append({"result": r.status.upper(), "rule": label, "value": _fmt(r.value) + ci,
                     "baseline": _fmt(r.baseline_value), "worse_by": _fmt(r.worse_by),
                     "detail": r.message})
    return pd.DataFrame(rows, columns=["result", "rule", "value", "baseline", "worse_by",
                                       "detail"])


def summary_lines(report: GateReport) -> list[str]:
    """The short human summary printed by ``evalkit gate``: one block per domain."""
    lines = []
    if report.baseline is not None:
        lines.append(f"baseline:   {report.baseline.describe()}")
    lines.append(f"config:     {report.config}")
    short = {PASSED: "PASS", FAILED: "FAIL", SKIPPED: "SKIP"}
    for d in report.domains:
        head = f"[{d.domain}] " if d.domain else ""
        lines.append(f"{head}checkpoint: {_checkpoint_line(d)}")
        if d.problem:
            lines.append(f"FAIL  {head}{d.problem}")
        table = rule_table(d)
        width = int(table.rule.str.len().max()) if len(table) else 0
        for r, row in zip(d.results, table.itertuples(), strict=True):
            lines.append(f"{short[r.status]}  {row.rule:<{width}}  {row.detail}")
    c = report.counts()
    verdict = "PASSED" if report.passed else "FAILED"
    tail = (f"gate {verdict}: {c[FAILED]} failed, {c[PASSED]} passed, {c[SKIPPED]} skipped "
            f"of {len(report.results)} rules")
    if len(report.domains) > 1 or report.failed_domains:
        bad = [_domain_label(d) for d in report.failed_domains]
        tail += (f"; {len(report.domains) - len(bad)} of {len(report.domains)} domains "
                 "passed" + (f" (failed: {', '.join(bad)})" if bad else ""))
    lines.append(tail)
    return lines


def _choice_json(d: DomainGate) -> dict[str, Any] | None:
    c = d.checkpoint
    if c is None:
        return None
    return {"name": c.name, "step": c.step, "content_hash": c.content_hash, "chosen_by": c.how}


def to_json(report: GateReport) -> dict[str, Any]:
    """The gate's outcome as a JSON-ready dict, with one entry per domain."""
    b = report.baseline
    return {"passed": report.passed, "exit_code": report.exit_code,
            "counts": report.counts(), "out": str(report.out), "config": str(report.config),
            "failed_domains": [d.domain for d in report.failed_domains],
            "baseline": None if b is None else {
                "path": str(b.path), "checkpoints": b.checkpoints},
            "domains": {d.domain: {"passed": d.passed, "checkpoint": _choice_json(d),
                                   "problem": d.problem,
                                   "rules": [r.as_dict() for r in d.results]}
                        for d in report.domains}}


def to_junit(report: GateReport) -> ET.ElementTree:
    """JUnit XML: one testsuite per domain, one testcase per rule (plus one for the
    candidate checkpoint when it failed or has no results); failures carry the numbers."""
    c = report.counts()
    n_problem = sum(d.problem is not None for d in report.domains)
    suites = ET.Element("testsuites", name="evalkit gate",
                        tests=str(len(report.results) + n_problem),
                        failures=str(c[FAILED] + n_problem), errors="0",
                        skipped=str(c[SKIPPED]))
    for d in report.domains:
        dc = {s: sum(r.status == s for r in d.results) for s in (PASSED, FAILED, SKIPPED)}
        name = f"evalkit gate [{d.domain}]" if d.domain else "evalkit gate"
        cls = "evalkit.gate" + (f".{d.domain}" if d.domain else "")
        suite = ET.SubElement(suites, "testsuite", name=name,
                              tests=str(len(d.results) + (d.problem is not None)),
                              failures=str(dc[FAILED] + (d.problem is not None)), errors="0",
                              skipped=str(dc[SKIPPED]), time="0")
        props = ET.SubElement(suite, "properties")
        info = {"domain": d.domain, "config": str(report.config), "out": str(report.out)}
        if d.checkpoint is not None:
            info.update({"checkpoint": d.checkpoint.name,
                         "checkpoint_step": str(d.checkpoint.step),
                         "checkpoint_hash": d.checkpoint.content_hash or "",
                         "checkpoint_chosen_by": d.checkpoint.how})
        if report.baseline is not None:
            info["baseline"] = report.baseline.describe()
        for k, v in info.items():
            ET.SubElement(props, "property", name=k, value=v)
        if d.problem is not None:
            case = ET.SubElement(suite, "testcase", name="candidate checkpoint",
                                 classname=cls, time="0")
            ET.SubElement(case, "failure", message=d.problem, type="gate.candidate")
        for r in d.results:
            case = ET.SubElement(suite, "testcase", name=r.rule.label,
                                 classname=f"{cls}.{r.dataset or r.rule.dataset}", time="0")
            details = json.dumps(r.as_dict(), indent=1)
            if r.status == FAILED:
                fail = ET.SubElement(case, "failure", message=r.message,
                                     type=f"gate.{r.rule.kind}")
                fail.text = details
            elif r.status == SKIPPED:
                ET.SubElement(case, "skipped", message=r.message)
            if r.notes:
                out = ET.SubElement(case, "system-out")
                out.text = "\n".join(r.notes)
    _xml_safe(suites)
    ET.indent(suites)
    return ET.ElementTree(suites)


def _xml_safe(root: ET.Element) -> None:
    """Every attribute and text of ``root``'s tree made legal XML 1.0: characters XML
    cannot hold (controls, lone surrogates) written as visible escapes (``\\x01``); in
    attributes newlines and tabs too, so names read as one line. Markup (``<``, ``&``,
    quotes) is escaped by ElementTree when it writes."""
    for el in root.iter():
        for k, v in el.attrib.items():
            el.set(k, visible(v))
        if el.text:
            el.text = visible(el.text, keep="\n\t")


#: Characters Markdown (CommonMark/GFM) gives a meaning to inline: backslash-escaped.
_MD_SPECIAL = set("\\`*_[]|~")
_MD_HTML = {"&": "&amp;", "<": "&lt;", ">": "&gt;"}


def _md_escape(s: str) -> str:
    """``s`` as literal Markdown text that stays inside one table cell or heading: controls
    and newlines as visible escapes (``\\n``), ``&<>`` as HTML entities (no raw HTML), and
    Markdown's inline punctuation (``|``, backticks, ``*_[]``...) backslash-escaped."""
    return "".join(_MD_HTML.get(ch) or (f"\\{ch}" if ch in _MD_SPECIAL else ch)
                   for ch in visible(s))


def to_markdown(report: GateReport) -> str:
    """Markdown for a CI step summary or a PR comment: a verdict, then a section per
    domain."""
    icon = {PASSED: "✅", FAILED: "❌", SKIPPED: "⚪"}
    c = report.counts()
    head = "✅ evalkit gate passed" if report.passed else "❌ evalkit gate failed"
    bad = [_domain_label(d) for d in report.failed_domains]
    if len(report.domains) == 1 and report.domains[0].checkpoint is not None:
        head += f": {_md_escape(report.domains[0].checkpoint.name)}"
    elif bad:
        head += f" in {_md_escape(', '.join(bad))}"
    lines = [f"## {head}", "",
             f"**{c[FAILED]} failed**, {c[PASSED]} passed, {c[SKIPPED]} skipped of "
             f"{len(report.results)} rules in {len(report.domains)} domain(s).", ""]
    if report.baseline is not None:
        lines.append(f"- Baseline: {_md_escape(str(report.baseline.path))}")
    lines += [f"- Config: {_md_escape(str(report.config))}", ""]
    header = ["", "Rule", "Value [95% CI]", "Baseline", "Worse by", "Detail"]
    for d in report.domains:
        mark = "✅" if d.passed else "❌"
        name = d.checkpoint.name if d.checkpoint else "no checkpoint"
        lines.append(f"### {mark} {_md_escape(d.domain or 'run')}: {_md_escape(name)}")
        lines.append("")
        if d.checkpoint is not None:
            lines.append(f"Checkpoint {_md_escape(d.checkpoint.name)} (step {d.checkpoint.step}, "
                         f"`{(d.checkpoint.content_hash or '?')[:12]}`); "
                         f"{_md_escape(d.checkpoint.how)}")
            lines.append("")
        if d.problem:
            lines.append(f"❌ {_md_escape(d.problem)}")
            lines.append("")
        if not d.results:
            continue
        table = rule_table(d)
        table["result"] = [f"{icon[r.status]} {r.status}" for r in d.results]
        lines.append("| " + " | ".join(header) + " |")
        lines.append("|" + "---|" * len(header))
        for row in table.itertuples(index=False):
            lines.append("| " + " | ".join(_md_escape(str(x)) for x in row) + " |")
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"
