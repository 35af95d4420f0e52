"""Release gating: check each domain's candidate checkpoint against ``[[gate.rules]]``.

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

Since evaluations are per domain, a rule may name ``domain = "car"`` (or a dataset
``heldout/car``); a rule without one applies to every domain that has its dataset, and the
release fails if any domain fails. Modules: :mod:`evalkit.decide.gate.rules` (parsing),
:mod:`evalkit.decide.gate.evaluate` (judging), :mod:`evalkit.decide.gate.output` (JUnit, Markdown, JSON).
"""

from evalkit.core.config import ConfigError
from evalkit.decide.baseline import GateInputError
from evalkit.decide.gate.evaluate import (
    FAILED,
    PASSED,
    SKIPPED,
    DomainGate,
    GateReport,
    RuleResult,
    evaluate_rule,
    expand_rules,
    run_gate,
)
from evalkit.decide.gate.output import summary_lines, to_json, to_junit, to_markdown
from evalkit.decide.gate.rules import (
    DIRECTIONS,
    GateConfig,
    Rule,
    load_gate_config,
    metric_direction,
)

__all__ = ["DIRECTIONS", "FAILED", "PASSED", "SKIPPED", "ConfigError", "DomainGate",
           "GateConfig", "GateInputError", "GateReport", "Rule", "RuleResult",
           "evaluate_rule", "expand_rules", "load_gate_config", "metric_direction",
           "run_gate", "summary_lines", "to_json", "to_junit", "to_markdown"]
