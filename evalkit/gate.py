"""Release gating: check one checkpoint's results against rules in ``evalkit.toml``.

Rules live in ``[[gate.rules]]`` tables::

    [gate]
    baseline = "baseline.json"     # optional default for --baseline (relative to this file)

    [[gate.rules]]
    dataset = "heldout"            # a dataset name exactly as `evalkit results` prints it
    metric = "ssim"
    min = 0.55                     # absolute bounds: min and/or max (inclusive)

    [[gate.rules]]
    dataset = "heldout"
    metric = "l1"
    max_regression = 0.01          # fails when worse than the baseline by more than this
    max_regression_pct = 5         # ... or by more than 5 % of the baseline value
    ci_must_not_overlap = true     # count a regression only if the 95 % CIs are disjoint

    [[gate.rules]]
    dataset = "sketches"
    metric = "kid"
    max = 0.02
    allow_skipped = true           # a skipped metric (e.g. no weights offline) passes

Every rule requires its metric: a metric that was skipped or failed fails the rule unless
``allow_skipped = true`` (skipped only). A rule with neither bounds nor a regression
tolerance just requires the metric. Optional keys: ``name`` (the JUnit test name) and
``direction = "lower"|"higher"`` for a metric evalkit does not know.

Regression is measured in the metric's bad direction (:data:`DIRECTIONS`): for a
lower-is-better metric ``worse = value - baseline``, for higher-is-better
``worse = baseline - value``. With both tolerances, exceeding either fails the rule.
"""

from __future__ import annotations

import json
import math
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from evalkit.baseline import Baseline, CheckpointChoice, GateInputError
from evalkit.config import ConfigError, load_config

#: Which way is better, per metric: "lower" or "higher". The one place gate rules read it:
#: :data:`evalkit.ranking.DIRECTIONS` (shared with the ranking) when that module is present,
#: else this same table.
DIRECTIONS: dict[str, str]
try:
    from evalkit.ranking import DIRECTIONS
except ImportError:  # pragma: no cover - a checkout without the ranking module
    DIRECTIONS = {
        "l1": "lower", "fid": "lower", "kid": "lower", "lpips": "lower",
        "ssim": "higher", "psnr": "higher", "adherence_precision": "higher",
        "adherence_recall": "higher", "adherence_f1": "higher",
    }

PASSED, FAILED, SKIPPED = "passed", "failed", "skipped"

RULE_KEYS: dict[str, tuple[type, ...]] = {
    "dataset": (str,), "metric": (str,), "name": (str,), "min": (int, float),
    "max": (int, float), "max_regression": (int, float), "max_regression_pct": (int, float),
    "ci_must_not_overlap": (bool,), "allow_skipped": (bool,), "direction": (str,),
}
GATE_KEYS = {"rules", "baseline"}

__all__ = ["DIRECTIONS", "ConfigError", "GateConfig", "GateInputError", "GateReport", "Rule",
           "RuleResult", "evaluate_rules", "load_gate_config", "run_gate", "to_json",
           "to_junit", "to_markdown", "summary_lines"]


def metric_direction(metric: str, override: str | None = None) -> str | None:
    """``"lower"``/``"higher"`` (better), the rule's override first; None if unknown."""
    return override or DIRECTIONS.get(metric)


@dataclass
class Rule:
    """One ``[[gate.rules]]`` entry."""

    index: int
    where: str
    dataset: str
    metric: str
    name: str | None = None
    min: float | None = None
    max: float | None = None
    max_regression: float | None = None
    max_regression_pct: float | None = None
    ci_must_not_overlap: bool = False
    allow_skipped: bool = False
    direction: str | None = None

    @property
    def is_threshold(self) -> bool:
        return self.min is not None or self.max is not None

    @property
    def is_regression(self) -> bool:
        return self.max_regression is not None or self.max_regression_pct is not None

    @property
    def kind(self) -> str:
        """``threshold``, ``regression``, ``threshold+regression`` or ``required``."""
        kinds = [k for k, on in (("threshold", self.is_threshold),
                                 ("regression", self.is_regression)) if on]
        return "+".join(kinds) or "required"

    @property
    def label(self) -> str:
        """The rule's name, or a readable one made from its bounds."""
        if self.name:
            return self.name
        parts = []
        if self.min is not None:
            parts.append(f">= {self.min:g}")
        if self.max is not None:
            parts.append(f"<= {self.max:g}")
        if self.is_regression:
            tol = [f"{self.max_regression:g}" if self.max_regression is not None else None,
                   f"{self.max_regression_pct:g}%" if self.max_regression_pct is not None
                   else None]
            parts.append("regression <= " + " and ".join(t for t in tol if t))
            if self.ci_must_not_overlap:
                parts.append("(disjoint CIs)")
        if not parts:
            parts.append("required")
        return f"{self.dataset} {self.metric} " + " ".join(parts)


@dataclass
class GateConfig:
    """The validated ``[gate]`` section of one config file."""

    path: Path
    rules: list[Rule]
    baseline: Path | None = None


def _rule_header_lines(text: str) -> list[int]:
    """1-based line numbers of each ``[[gate.rules]]`` header, in order."""
    return [i for i, line in enumerate(text.splitlines(), 1)
            if line.strip().replace(" ", "").startswith("[[gate.rules]]")]


def _key_line(text: str, start: int, key: str) -> int | None:
    """Line of ``key =`` in the table that starts at line ``start`` (a header line)."""
    lines = text.splitlines()
    for i in range(start, len(lines)):
        s = lines[i].strip()
        if s.startswith("["):
            break
        if s.split("=", 1)[0].strip() == key:
            return i + 1
    return None


def load_gate_config(path: str | Path) -> GateConfig:
    """Read and validate the gate rules of an ``evalkit.toml``.

    Raises :class:`~evalkit.config.ConfigError` with ``file:line`` of the offending entry.
    """
    from evalkit.config import find_line

    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: gate config not found (pass --config FILE)")
    cfg = load_config(path)
    text = cfg.text
    gate = cfg.raw.get("gate")
    if gate is None:
        raise ConfigError(f"{path}: no [gate] section; add [[gate.rules]] tables "
                          "(see docs/gate.md)")
    if not isinstance(gate, dict):
        raise ConfigError(f"{path}:{find_line(text, 'gate') or 1}: 'gate' must be a table")
    for key in gate:
        if key not in GATE_KEYS:
            line = find_line(text, key, "gate")
            raise ConfigError(f"{path}:{line or '?'}: unknown key '{key}' in [gate]; known "
                              f"keys: {', '.join(sorted(GATE_KEYS))}")
    baseline = None
    if "baseline" in gate:
        if not isinstance(gate["baseline"], str):
            raise ConfigError(f"{path}:{find_line(text, 'baseline', 'gate') or '?'}: "
                              f"'baseline' must be a string (a path), got {gate['baseline']!r}")
        baseline = (path.parent / gate["baseline"]).resolve()
    raw_rules = gate.get("rules")
    if not raw_rules:
        raise ConfigError(f"{path}: no gate rules; add at least one [[gate.rules]] table")
    if not isinstance(raw_rules, list):
        raise ConfigError(f"{path}:{find_line(text, 'rules', 'gate') or '?'}: 'gate.rules' "
                          "must be an array of tables ([[gate.rules]])")
    headers = _rule_header_lines(text)
    rules_line = find_line(text, "rules", "gate")
    return GateConfig(path=path, baseline=baseline,
                      rules=[_parse_rule(path, text, i, raw, headers, rules_line)
                             for i, raw in enumerate(raw_rules)])


def _parse_rule(path: Path, text: str, i: int, raw: Any, headers: list[int],
                rules_line: int | None) -> Rule:
    header = headers[i] if i < len(headers) else None

    def where(key: str | None = None) -> str:
        line = None
        if header is not None:
            line = (_key_line(text, header, key) if key else None) or header
        line = line or rules_line
        return f"{path}:{line}" if line else str(path)

    if not isinstance(raw, dict):
        raise ConfigError(f"{where()}: gate rule {i + 1} must be a table, got {raw!r}")
    for key, value in raw.items():
        if key not in RULE_KEYS:
            raise ConfigError(f"{where(key)}: unknown key '{key}' in gate rule {i + 1}; "
                              f"known keys: {', '.join(RULE_KEYS)}")
        types = RULE_KEYS[key]
        if not isinstance(value, types) or (bool not in types and isinstance(value, bool)):
            what = "a number" if float in types else f"a {types[0].__name__}"
            raise ConfigError(f"{where(key)}: '{key}' must be {what}, got {value!r}")
        if isinstance(value, float) and not math.isfinite(value):
            raise ConfigError(f"{where(key)}: '{key}' must be finite, got {value!r}")
    for key in ("dataset", "metric"):
        if not raw.get(key):
            raise ConfigError(f"{where()}: gate rule {i + 1} needs '{key}'")
    for key in ("max_regression", "max_regression_pct"):
        if key in raw and raw[key] < 0:
            raise ConfigError(f"{where(key)}: '{key}' must be >= 0, got {raw[key]!r}")
    if "min" in raw and "max" in raw and raw["min"] > raw["max"]:
        raise ConfigError(f"{where('max')}: 'min' ({raw['min']}) is above 'max' "
                          f"({raw['max']}); no value can pass")
    if "direction" in raw and raw["direction"] not in ("lower", "higher"):
        raise ConfigError(f"{where('direction')}: 'direction' must be \"lower\" or "
                          f"\"higher\" (which is better), got {raw['direction']!r}")
    rule = Rule(index=i + 1, where=where(), **{k: (float(v) if isinstance(v, int)
                                                    and not isinstance(v, bool) else v)
                                                for k, v in raw.items()})
    if rule.ci_must_not_overlap and not rule.is_regression:
        raise ConfigError(f"{where('ci_must_not_overlap')}: 'ci_must_not_overlap' applies to "
                          "regression rules; add max_regression or max_regression_pct")
    if rule.is_regression and metric_direction(rule.metric, rule.direction) is None:
        raise ConfigError(
            f"{where('metric')}: unknown metric '{rule.metric}': a regression rule needs to "
            f"know which way is better; known metrics: {', '.join(DIRECTIONS)} (or set "
            "direction = \"lower\"|\"higher\")")
    return rule


@dataclass
class RuleResult:
    """The outcome of one rule: status, the numbers behind it and why."""

    rule: Rule
    status: str
    value: float | None = None
    ci_low: float | None = None
    ci_high: float | None = None
    n: int | None = None
    metric_status: str | None = None
    baseline_value: float | None = None
    baseline_ci: tuple[float | None, float | None] | None = None
    worse_by: float | None = None
    failures: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def message(self) -> str:
        """One line: the failures, else the notes."""
        return "; ".join(self.failures or self.notes)

    def as_dict(self) -> dict[str, Any]:
        r = self.rule
        return {"rule": r.label, "index": r.index, "kind": r.kind, "dataset": r.dataset,
                "metric": r.metric, "status": self.status, "value": self.value,
                "ci_low": self.ci_low, "ci_high": self.ci_high, "n": self.n,
                "metric_status": self.metric_status, "min": r.min, "max": r.max,
                "max_regression": r.max_regression,
                "max_regression_pct": r.max_regression_pct,
                "ci_must_not_overlap": r.ci_must_not_overlap,
                "allow_skipped": r.allow_skipped, "baseline_value": self.baseline_value,
                "baseline_ci": list(self.baseline_ci) if self.baseline_ci else None,
                "worse_by": self.worse_by, "failures": self.failures, "notes": self.notes,
                "where": r.where}


def _num(v: Any) -> float | None:
    if v is None:
        return None
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def _fmt(v: float | None) -> str:
    return "-" if v is None else f"{v:.4g}"


def check_inputs(rules: list[Rule], rows: pd.DataFrame, all_results: pd.DataFrame,
                 choice: CheckpointChoice, baseline: Baseline | None) -> None:
    """Refuse (exit 2) what cannot be judged: unknown datasets or metrics, missing results,
    a missing baseline, a baseline computed on different data."""
    known_ds = sorted(all_results.dataset.unique())
    for r in rules:
        if r.dataset not in known_ds:
            raise GateInputError(f"{r.where}: unknown dataset '{r.dataset}': datasets in the "
                                 f"results: {', '.join(known_ds) or 'none'}")
        known_metrics = set(DIRECTIONS) | set(all_results.metric)
        if r.metric not in known_metrics:
            raise GateInputError(f"{r.where}: unknown metric '{r.metric}'; known metrics: "
                                 f"{', '.join(sorted(known_metrics))}")
        sub = rows[(rows.dataset == r.dataset) & (rows.metric == r.metric)]
        if sub.empty:
            what = ("was not evaluated on" if rows[rows.dataset == r.dataset].empty
                    else f"has no '{r.metric}' result on")
            raise GateInputError(f"{r.where}: missing results: checkpoint {choice.name} {what} "
                                 f"dataset '{r.dataset}' (run 'evalkit run' with it first)")
    needs = [r for r in rules if r.is_regression]
    if needs and baseline is None:
        raise GateInputError(f"{needs[0].where}: rule '{needs[0].label}' compares against a "
                             "baseline: pass --baseline FILE (or set baseline = \"FILE\" in "
                             "[gate]); write one with 'evalkit baseline OUT --checkpoint NAME "
                             "--write FILE'")
    for r in needs:
        assert baseline is not None
        current = rows[rows.dataset == r.dataset].dataset_hash.dropna().unique()
        cur_hash = str(current[0]) if len(current) else None
        base_hash = baseline.dataset_hash(r.dataset)
        if base_hash is None:
            raise GateInputError(f"{r.where}: baseline {baseline.path} has no results on "
                                 f"dataset '{r.dataset}'")
        if cur_hash != base_hash:
            raise GateInputError(
                f"baseline {baseline.path} was recorded on a different '{r.dataset}' dataset: "
                f"baseline dataset hash {base_hash}, current dataset hash {cur_hash} (files or "
                "image size changed); record a new baseline on the same data")
        if baseline.metric(r.dataset, r.metric) is None:
            raise GateInputError(f"{r.where}: baseline {baseline.path} has no '{r.metric}' "
                                 f"on dataset '{r.dataset}'")


def evaluate_rule(rule: Rule, row: pd.Series, baseline: Baseline | None) -> RuleResult:
    """Judge one rule on the checkpoint's result row (and the baseline's entry)."""
    res = RuleResult(rule=rule, status=PASSED, value=_num(row["value"]),
                     ci_low=_num(row["ci_low"]), ci_high=_num(row["ci_high"]),
                     n=None if pd.isna(row["n"]) else int(row["n"]),
                     metric_status=str(row["status"]))
    reason = row["reason"] if isinstance(row["reason"], str) else "no reason recorded"
    if res.metric_status == "skipped":
        if rule.allow_skipped:
            res.status = SKIPPED
            res.notes.append(f"{rule.metric} was skipped ({reason}); allowed by allow_skipped")
        else:
            res.status = FAILED
            res.failures.append(f"required metric {rule.metric} was skipped ({reason}); "
                                "set allow_skipped = true to let it pass")
        return res
    if res.metric_status != "ok" or res.value is None:
        res.status = FAILED
        res.failures.append(f"{rule.metric} has no value (status {res.metric_status}: "
                            f"{reason})")
        return res
    v = res.value
    if rule.min is not None:
        if v < rule.min:
            res.failures.append(f"{rule.metric} = {v:.4g} < min {rule.min:g}")
        else:
            res.notes.append(f"{rule.metric} = {v:.4g} >= min {rule.min:g}")
    if rule.max is not None:
        if v > rule.max:
            res.failures.append(f"{rule.metric} = {v:.4g} > max {rule.max:g}")
        else:
            res.notes.append(f"{rule.metric} = {v:.4g} <= max {rule.max:g}")
    if rule.is_regression:
        assert baseline is not None
        _check_regression(rule, res, baseline)
    if rule.kind == "required":
        res.notes.append(f"{rule.metric} = {v:.4g} (required: present)")
    if res.failures:
        res.status = FAILED
    return res


def _check_regression(rule: Rule, res: RuleResult, baseline: Baseline) -> None:
    entry = baseline.metric(rule.dataset, rule.metric) or {}
    base = _num(entry.get("value"))
    if entry.get("status", "ok") != "ok" or base is None:
        msg = (f"baseline has no value for {rule.metric} (status {entry.get('status')}: "
               f"{entry.get('reason')}); regression not assessed")
        if rule.allow_skipped:
            res.notes.append(msg)
            if not res.failures and not rule.is_threshold:
                res.status = SKIPPED
        else:
            res.failures.append(msg + "; set allow_skipped = true to let it pass")
        return
    assert res.value is not None
    direction = metric_direction(rule.metric, rule.direction)
    worse = res.value - base if direction == "lower" else base - res.value
    res.baseline_value = base
    res.baseline_ci = (_num(entry.get("ci_low")), _num(entry.get("ci_high")))
    res.worse_by = worse
    exceeded = []
    if rule.max_regression is not None and worse > rule.max_regression:
        exceeded.append(f"tolerance {rule.max_regression:g}")
    if rule.max_regression_pct is not None:
        allowed = rule.max_regression_pct / 100.0 * abs(base)
        if worse > allowed:
            exceeded.append(f"{rule.max_regression_pct:g}% of baseline ({allowed:.4g})")
    change = (f"{rule.metric} = {res.value:.4g} vs baseline {base:.4g} "
              f"({'worse' if worse > 0 else 'better'} by {abs(worse):.4g}, "
              f"{direction} is better)")
    if not exceeded:
        res.notes.append(change + ": within tolerance")
        return
    if rule.ci_must_not_overlap:
        lo, hi = res.baseline_ci
        if None in (lo, hi, res.ci_low, res.ci_high):
            res.notes.append("no confidence interval on one side; regression counted "
                             "without the overlap test")
        elif res.ci_low <= hi and lo <= res.ci_high:  # type: ignore[operator]
            res.notes.append(change + f": exceeds {' and '.join(exceeded)} but the CIs "
                             f"[{res.ci_low:.4g}, {res.ci_high:.4g}] and [{lo:.4g}, {hi:.4g}] "
                             "overlap; not counted")
            return
        else:
            change += (f"; CIs [{res.ci_low:.4g}, {res.ci_high:.4g}] and "
                       f"[{lo:.4g}, {hi:.4g}] do not overlap")
    res.failures.append(f"regression: {change}; exceeds {' and '.join(exceeded)}")


def evaluate_rules(rules: list[Rule], rows: pd.DataFrame,
                   baseline: Baseline | None) -> list[RuleResult]:
    """Judge every rule on one checkpoint's result rows (after :func:`check_inputs`)."""
    out = []
    for r in rules:
        row = rows[(rows.dataset == r.dataset) & (rows.metric == r.metric)].iloc[0]
        out.append(evaluate_rule(r, row, baseline))
    return out


@dataclass
class GateReport:
    """Everything a gate decided, ready to print or write."""

    out: Path
    config: Path
    checkpoint: CheckpointChoice
    baseline: Baseline | None
    results: list[RuleResult]

    @property
    def failed(self) -> list[RuleResult]:
        return [r for r in self.results if r.status == FAILED]

    @property
    def passed(self) -> bool:
        return not self.failed

    @property
    def exit_code(self) -> int:
        return 0 if self.passed else 1

    def counts(self) -> dict[str, int]:
        return {s: sum(r.status == s for r in self.results) for s in (PASSED, FAILED, SKIPPED)}

    def table(self) -> pd.DataFrame:
        """One row per rule: result, rule, value [CI], baseline, worse-by, detail."""
        rows = []
        for r in self.results:
            ci = (f" [{_fmt(r.ci_low)}, {_fmt(r.ci_high)}]"
                  if r.ci_low is not None and r.ci_high is not None else "")
            rows.append({"result": r.status.upper(), "rule": r.rule.label,
                         "value": _fmt(r.value) + ci,
                         "baseline": _fmt(r.baseline_value),
                         "worse_by": _fmt(r.worse_by), "detail": r.message})
        return pd.DataFrame(rows, columns=["result", "rule", "value", "baseline", "worse_by",
                                           "detail"])


def run_gate(out: str | Path, config: str | Path, checkpoint: str | None = None,
             selected: bool = False, baseline: str | Path | None = None) -> GateReport:
    """Load config, results and baseline; judge every rule.

    Raises :class:`ConfigError` or :class:`GateInputError` (both exit code 2) for what
    cannot be judged.
    """
    from evalkit.baseline import choose_checkpoint, read_baseline
    from evalkit.store import ResultsError, Store

    out = Path(out)
    cfg = load_gate_config(config)
    try:
        with Store(out, create=False) as store:
            results = store.results()
            ckpts = store.checkpoints()
    except ResultsError as exc:
        raise GateInputError(str(exc)) from exc
    choice = choose_checkpoint(out, results, ckpts, checkpoint, selected)
    base_path = Path(baseline) if baseline is not None else cfg.baseline
    base = read_baseline(base_path) if base_path is not None else None
    rows = results[results.checkpoint == choice.name]
    check_inputs(cfg.rules, rows, results, choice, base)
    return GateReport(out=out, config=cfg.path, checkpoint=choice, baseline=base,
                      results=evaluate_rules(cfg.rules, rows, base))


# -- outputs -------------------------------------------------------------------------------
def _checkpoint_line(report: GateReport) -> str:
    c = report.checkpoint
    return f"{c.name} (step {c.step}, {(c.content_hash or '?')[:12]}); {c.how}"


def summary_lines(report: GateReport) -> list[str]:
    """The short human summary printed by ``evalkit gate``."""
    lines = [f"checkpoint: {_checkpoint_line(report)}"]
    if report.baseline is not None:
        lines.append(f"baseline:   {report.baseline.describe()}")
    lines.append(f"config:     {report.config}")
    table = report.table()
    width = int(table.rule.str.len().max()) if len(table) else 0
    short = {PASSED: "PASS", FAILED: "FAIL", SKIPPED: "SKIP"}
    for r, row in zip(report.results, table.itertuples(), strict=True):
        lines.append(f"{short[r.status]}  {row.rule:<{width}}  {row.detail}")
    c = report.counts()
    verdict = "PASSED" if report.passed else "FAILED"
    lines.append(f"gate {verdict}: {c[FAILED]} failed, {c[PASSED]} passed, {c[SKIPPED]} "
                 f"skipped of {len(report.results)} rules")
    return lines


def to_json(report: GateReport) -> dict[str, Any]:
    """The gate's outcome as a JSON-ready dict."""
    c = report.checkpoint
    b = report.baseline
    return {"passed": report.passed, "exit_code": report.exit_code,
            "counts": report.counts(), "out": str(report.out), "config": str(report.config),
            "checkpoint": {"name": c.name, "step": c.step, "content_hash": c.content_hash,
                           "chosen_by": c.how},
            "baseline": None if b is None else {
                "path": str(b.path), "checkpoint": b.checkpoint, "step": b.data.get("step"),
                "content_hash": b.content_hash},
            "rules": [r.as_dict() for r in report.results]}


def to_junit(report: GateReport) -> ET.ElementTree:
    """JUnit XML: one testsuite, one testcase per rule; failures carry the numbers."""
    c = report.counts()
    suites = ET.Element("testsuites", name="evalkit gate", tests=str(len(report.results)),
                        failures=str(c[FAILED]), errors="0", skipped=str(c[SKIPPED]))
    suite = ET.SubElement(suites, "testsuite", name="evalkit gate",
                          tests=str(len(report.results)), failures=str(c[FAILED]),
                          errors="0", skipped=str(c[SKIPPED]), time="0")
    props = ET.SubElement(suite, "properties")
    info = {"checkpoint": report.checkpoint.name,
            "checkpoint_step": str(report.checkpoint.step),
            "checkpoint_hash": report.checkpoint.content_hash or "",
            "checkpoint_chosen_by": report.checkpoint.how, "config": str(report.config),
            "out": str(report.out)}
    if report.baseline is not None:
        info["baseline"] = report.baseline.describe()
    for k, v in info.items():
        ET.SubElement(props, "property", name=k, value=v)
    for r in report.results:
        case = ET.SubElement(suite, "testcase", name=r.rule.label,
                             classname=f"evalkit.gate.{r.rule.dataset}", time="0")
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
    ET.indent(suites)
    return ET.ElementTree(suites)


def _md_escape(s: str) -> str:
    return s.replace("|", "\\|").replace("\n", " ")


def to_markdown(report: GateReport) -> str:
    """Markdown for a CI step summary or a PR comment."""
    icon = {PASSED: "✅", FAILED: "❌", SKIPPED: "⚪"}
    c = report.counts()
    head = ("✅ evalkit gate passed" if report.passed else "❌ evalkit gate failed")
    lines = [f"## {head}: {report.checkpoint.name}", "",
             f"**{c[FAILED]} failed**, {c[PASSED]} passed, {c[SKIPPED]} skipped of "
             f"{len(report.results)} rules.", "",
             f"- Checkpoint: `{report.checkpoint.name}` (step {report.checkpoint.step}, "
             f"`{(report.checkpoint.content_hash or '?')[:12]}`); {report.checkpoint.how}"]
    if report.baseline is not None:
        lines.append(f"- Baseline: `{report.baseline.path}` "
                     f"(`{report.baseline.checkpoint}`, step {report.baseline.data.get('step')}, "
                     f"`{(report.baseline.content_hash or '?')[:12]}`)")
    lines += [f"- Config: `{report.config}`", ""]
    table = report.table()
    table["result"] = [f"{icon[r.status]} {r.status}" for r in report.results]
    cols = ["result", "rule", "value", "baseline", "worse_by", "detail"]
    header = ["", "Rule", "Value [95% CI]", "Baseline", "Worse by", "Detail"]
    lines.append("| " + " | ".join(header) + " |")
    lines.append("|" + "---|" * len(header))
    for row in table[cols].itertuples(index=False):
        lines.append("| " + " | ".join(_md_escape(str(x)) for x in row) + " |")
    return "\n".join(lines) + "\n"
