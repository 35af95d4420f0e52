"""Gate rule parsing: ``[[gate.rules]]`` of an ``evalkit.toml`` -> validated :class:`Rule`s.

Errors are :class:`~evalkit.core.config.ConfigError` with ``file:line`` of the offending entry.
Two rules with the same domain, dataset, metric and kind are refused (they would be counted
twice). The file must be UTF-8 text (:func:`evalkit.core.config.load_config` says so otherwise).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from evalkit.core.config import ConfigError, load_config

#: Which way is better, per metric: "lower" or "higher" (shared with the ranking).
from evalkit.decide.ranking.rank import DIRECTIONS

RULE_KEYS: dict[str, tuple[type, ...]] = {
    "dataset": (str,), "metric": (str,), "domain": (str,), "name": (str,),
    "min": (int, float), "max": (int, float), "max_regression": (int, float),
    "max_regression_pct": (int, float), "ci_must_not_overlap": (bool,),
    "allow_skipped": (bool,), "direction": (str,),
}
GATE_KEYS = {"rules", "baseline", "require_stable"}


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
    domain: str | None = None
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

    @property
    def identity(self) -> tuple:
        """What makes two rules the same rule (then the config is refused)."""
        return (self.domain, self.dataset, self.metric, self.kind)


@dataclass
class GateConfig:
    """The validated ``[gate]`` section of one config file."""

    path: Path
    rules: list[Rule]
    baseline: Path | None = None
    #: ``[gate] require_stable``: each domain's gated checkpoint must be its selection.json
    #: choice, and that choice stable (P(first) >= ``[ranking] stable_at``).
    require_stable: bool = False


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

    Raises :class:`~evalkit.core.config.ConfigError` with ``file:line`` of the offending entry.
    """
    from evalkit.core.config import find_line

    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: gate config not found (pass --config FILE)")
    cfg = load_config(path)  # refuses non-UTF-8 and binary files, naming the file
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
    require_stable = gate.get("require_stable", False)
    if not isinstance(require_stable, bool):
        raise ConfigError(f"{path}:{find_line(text, 'require_stable', 'gate') or '?'}: "
                          f"'require_stable' must be true or false, got {require_stable!r}")
    raw_rules = gate.get("rules")
    if not raw_rules:
        raise ConfigError(f"{path}: no gate rules; add at least one [[gate.rules]] table")
    if not isinstance(raw_rules, list):
        raise ConfigError(f"{path}:{find_line(text, 'rules', 'gate') or '?'}: 'gate.rules' "
                          "must be an array of tables ([[gate.rules]])")
    headers = _rule_header_lines(text)
    rules_line = find_line(text, "rules", "gate")
    rules = [_parse_rule(path, text, i, raw, headers, rules_line)
             for i, raw in enumerate(raw_rules)]
    seen: dict[tuple, Rule] = {}
    for r in rules:  # one dict lookup per rule: linear in the number of rules
        first = seen.setdefault(r.identity, r)
        if first is not r:
            scope = f"domain '{r.domain}', " if r.domain else ""
            raise ConfigError(f"{r.where}: duplicate gate rule: {scope}dataset '{r.dataset}', "
                              f"metric '{r.metric}', kind {r.kind} is already ruled at "
                              f"{first.where}; merge the two rules into one")
    return GateConfig(path=path, baseline=baseline, rules=rules,
                      require_stable=require_stable)


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


