"""``evalkit gate`` and ``evalkit baseline``: release gating with CI-native output.

Exit codes: 0 every rule passed, 1 a rule failed, 2 bad config or unusable inputs
(the message names the file and line, the dataset, or the hashes).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click


def _die(command: str, message: str) -> None:
    """Print ``evalkit COMMAND: error: ...`` on stderr and exit 2."""
    click.echo(f"evalkit {command}: error: {message}", err=True)
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
                   "it: up from the run folder of OUT's latest run, else up from OUT, then "
                   "./evalkit.toml).")
@click.option("--junit", type=click.Path(path_type=Path, dir_okay=False),
              help="Write JUnit XML (one testcase per rule).")
@click.option("--markdown", type=click.Path(path_type=Path, dir_okay=False),
              help="Write Markdown (CI step summary / PR comment).")
@click.option("--json", "json_path", type=click.Path(path_type=Path, dir_okay=False),
              help="Write the full outcome as JSON.")
def gate(out: Path, checkpoint: tuple[str, ...], selected: bool, baseline: Path | None,
         config: Path | None, junit: Path | None, markdown: Path | None,
         json_path: Path | None) -> None:
    """Check each domain's checkpoint in OUT against the release rules in evalkit.toml.

    Every domain is judged on its own candidate (by default what is released: its
    checkpoint in OUT/selection.json, else its newest discovered checkpoint; the output says
    which and why); the release passes only if every domain passes (rules may name a domain;
    output is grouped by domain).

    Rules ([[gate.rules]]): absolute bounds (min/max), regression against a baseline
    (max_regression, max_regression_pct, ci_must_not_overlap) and required metrics
    (allow_skipped). See docs/gate.md. Exit 0 pass, 1 a rule failed, 2 bad config/inputs.
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

    try:
        report = run_gate(out, config, checkpoint=list(checkpoint), selected=selected,
                          baseline=baseline)
    except (ConfigError, GateInputError) as exc:
        _die("gate", str(exc))
        return
    for line in summary_lines(report):
        click.echo(line)
    written = []
    if junit:
        junit.parent.mkdir(parents=True, exist_ok=True)
        to_junit(report).write(junit, encoding="utf-8", xml_declaration=True)
        written.append(f"JUnit {junit}")
    if markdown:
        markdown.parent.mkdir(parents=True, exist_ok=True)
        markdown.write_text(to_markdown(report), encoding="utf-8")
        written.append(f"Markdown {markdown}")
    if json_path:
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(json.dumps(to_json(report), indent=2) + "\n", encoding="utf-8")
        written.append(f"JSON {json_path}")
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
@click.option("--write", "write", type=click.Path(path_type=Path, dir_okay=False),
              required=True, help="The baseline JSON file to write (commit it).")
def baseline(out: Path, checkpoint: tuple[str, ...], selected: bool, write: Path) -> None:
    """Record a checkpoint's results in OUT (values, CIs, n, dataset and checkpoint hashes,
    provenance) as a small baseline JSON file for `evalkit gate --baseline`."""
    from evalkit.decide.baseline import GateInputError, make_baseline, write_baseline

    try:
        record = make_baseline(out, checkpoint=list(checkpoint), selected=selected)
    except GateInputError as exc:
        _die("baseline", str(exc))
        return
    write_baseline(record, write)
    n = sum(len(m) for m in record["metrics"].values())
    who = "; ".join(f"{c['checkpoint']} (step {c['step']}, {(c['content_hash'] or '?')[:12]})"
                    for c in record["checkpoints"].values())
    click.echo(f"baseline: {who}, {n} metrics on {', '.join(record['datasets'])} -> {write}")
