"""``evalkit gate`` and ``evalkit baseline``: release gating with CI-native output.

Exit codes: 0 every rule passed, 1 a rule failed, 2 bad config or unusable inputs
(the message names the file and line, the dataset, or the hashes).
"""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path

import click

from evalkit.commands._output import emit, format_options, is_stdout, render

#: ``gate --format csv`` columns: one row per rule and domain (a domain that could not be
#: judged: one row with its ``problem``)
GATE_COLUMNS = ["domain", "checkpoint", "domain_passed", "status", "rule", "kind", "dataset",
                "metric", "value", "ci_low", "ci_high", "n", "baseline_value", "worse_by",
                "failures", "notes", "problem"]


def gate_rows(doc: dict) -> list[dict]:
    """Flatten the gate's JSON document (:func:`evalkit.decide.gate.to_json`) to records:
    one per rule and domain; a domain judged on no rule (e.g. nothing to gate) one row."""
    rows = []
    for d, g in doc["domains"].items():
        head = {"domain": d, "checkpoint": (g.get("checkpoint") or {}).get("name"),
                "domain_passed": g["passed"], "problem": g.get("problem")}
        rows += [{**{k: r.get(k) for k in GATE_COLUMNS if k in r}, **head}
                 for r in g["rules"]] or [head]
    return rows


def _die(command: str, message: str) -> None:
    """Print ``evalkit COMMAND: error: ...`` on stderr and exit 2."""
    from evalkit.commands import error_line

    click.echo(error_line(message, command), err=True)
    sys.exit(2)


@click.command()
@click.argument("out", type=click.Path(path_type=Path, file_okay=False))
@click.option("--checkpoint", "checkpoint", metavar="NAME", multiple=True,
              help="A checkpoint to gate, one per domain, repeatable (default: each domain's "
                   "checkpoint in OUT/selection.json when OUT has one, else its newest "
                   "discovered checkpoint; the gate fails if that one failed).")
@click.option("--selected", is_flag=True,
              help="Gate each domain's checkpoint named by OUT/selection.json (evalkit select).")
@click.option("--baseline", "baseline", type=click.Path(path_type=Path, dir_okay=False),
              help="Baseline JSON (evalkit baseline) for regression rules; default: "
                   "[gate] baseline in the config.")
@click.option("--config", "config", type=click.Path(path_type=Path, dir_okay=False),
              help="The evalkit.toml holding [[gate.rules]] (default: found as `run` finds "
                   "it: up from the run folder of OUT's latest run, else ./evalkit.toml, "
                   "else up from OUT).")
@click.option("--junit", type=click.Path(path_type=Path, dir_okay=False, allow_dash=True),
              help="Write JUnit XML (one testcase per rule); '-' for stdout.")
@click.option("--markdown", type=click.Path(path_type=Path, dir_okay=False, allow_dash=True),
              help="Write Markdown (CI step summary / PR comment); '-' for stdout.")
@click.option("--json", "json_path",
              type=click.Path(path_type=Path, dir_okay=False, allow_dash=True),
              help="Write the full outcome as JSON; '-' for stdout (same as --format json "
                   "-o FILE).")
@format_options(what="the outcome")
def gate(out: Path, checkpoint: tuple[str, ...], selected: bool, baseline: Path | None,
         config: Path | None, junit: Path | None, markdown: Path | None,
         json_path: Path | None, fmt: str, output: Path | None) -> None:
    """Check each domain's checkpoint in OUT against the release rules in evalkit.toml.

    Every domain is judged on its own candidate (by default what is released: its
    checkpoint in OUT/selection.json, else its newest discovered checkpoint; the output says
    which and why); the release passes only if every domain passes (rules may name a domain;
    output is grouped by domain).

    Rules ([[gate.rules]]): absolute bounds (min/max), regression against a baseline
    (max_regression, max_regression_pct, ci_must_not_overlap) and required metrics
    (allow_skipped). See docs/gate.md. Exit 0 pass, 1 a rule failed, 2 bad config/inputs.
    With one output as '-' it alone goes to stdout and the summary to stderr.
    --format json is the --json document; csv one row per rule (domain, checkpoint, rule,
    status, value, CI, baseline, worse_by, message); table the summary. With
    --format csv/json on stdout the summary goes to stderr.
    """
    from evalkit.decide.gate import (
        ConfigError,
        GateInputError,
        run_gate,
        summary_lines,
        to_json,
        to_junit,
        to_markdown,
    )

    outputs = {"--junit": junit, "--markdown": markdown, "--json": json_path}
    dashes = [k for k, v in outputs.items() if v is not None and str(v) == "-"]
    if fmt != "table" and is_stdout(output):
        dashes.append(f"--format {fmt}")
    if len(dashes) > 1:
        _die("gate", f"{' and '.join(dashes)} both write to stdout ('-'); give all but one "
                     "of them a file name (-o FILE for --format)")
    try:
        report = run_gate(out, config, checkpoint=list(checkpoint), selected=selected,
                          baseline=baseline)
    except (ConfigError, GateInputError) as exc:
        _die("gate", str(exc))
        return
    summary = "\n".join(summary_lines(report)) + "\n"
    if fmt == "table" and not is_stdout(output):
        emit(summary, output, "the gate summary")
    else:  # stdout stays machine-readable when a '-' output or --format csv/json uses it
        click.echo(summary, err=bool(dashes), nl=False)
    if fmt != "table":
        doc = to_json(report)
        emit(render(fmt, gate_rows(doc), document=doc, columns=GATE_COLUMNS), output,
             "the gate outcome", fmt)
    texts = {}
    if junit:
        buf = io.BytesIO()  # the bytes ElementTree writes to a file, declaration included
        to_junit(report).write(buf, encoding="utf-8", xml_declaration=True)
        texts["--junit"] = ("JUnit", junit, buf.getvalue().decode("utf-8"))
    if markdown:
        texts["--markdown"] = ("Markdown", markdown, to_markdown(report))
    if json_path:
        texts["--json"] = ("JSON", json_path, json.dumps(to_json(report), indent=2) + "\n")
    written = []
    for kind, path, text in texts.values():
        if str(path) == "-":
            click.echo(text, nl=False)
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        written.append(f"{kind} {path}")
    if written:
        click.echo("wrote " + ", ".join(written), err=True)
    sys.exit(report.exit_code)


@click.command()
@click.argument("out", type=click.Path(path_type=Path, file_okay=False))
@click.option("--checkpoint", "checkpoint", metavar="NAME", multiple=True,
              help="A checkpoint to record (e.g. the deployed one), one per domain, "
                   "repeatable.")
@click.option("--selected", is_flag=True,
              help="Record each domain's checkpoint named by OUT/selection.json.")
@click.option("--write", "write",
              type=click.Path(path_type=Path, dir_okay=False, allow_dash=True),
              required=True, help="The baseline JSON file to write (commit it); '-' for "
                                  "stdout (the summary then goes to stderr).")
def baseline(out: Path, checkpoint: tuple[str, ...], selected: bool, write: Path) -> None:
    """Record a checkpoint's results in OUT (values, CIs, n, dataset and checkpoint hashes,
    provenance) as a small baseline JSON file for `evalkit gate --baseline`."""
    from evalkit.decide.baseline import GateInputError, make_baseline, write_baseline

    try:
        record = make_baseline(out, checkpoint=list(checkpoint), selected=selected)
    except GateInputError as exc:
        _die("baseline", str(exc))
        return
    to_stdout = str(write) == "-"
    if to_stdout:
        click.echo(json.dumps(record, indent=2) + "\n", nl=False)
    else:
        write_baseline(record, write)
    n = sum(len(m) for m in record["metrics"].values())
    who = "; ".join(f"{c['checkpoint']} (step {c['step']}, {(c['content_hash'] or '?')[:12]})"
                    for c in record["checkpoints"].values())
    click.echo(f"baseline: {who}, {n} metrics on {', '.join(record['datasets'])} -> "
               f"{'stdout' if to_stdout else write}", err=to_stdout)
