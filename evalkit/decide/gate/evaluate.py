"""Judging gate rules, one domain at a time.

The candidate of each domain is ``--checkpoint NAME`` (one per domain), ``--selected``
(``OUT/selection.json``), or by default what is released: the domain's choice in
``OUT/selection.json`` when OUT has one, else the newest *discovered* checkpoint of the domain
(highest step among every checkpoint the run found, failed or not yet evaluated included):
when that one failed or has no results, the domain fails and says which and why; the gate
never falls back to an older checkpoint silently. A rule applies to the domain it names
(``domain = "car"`` or ``dataset = "heldout/car"``), else to every domain that has its
dataset; a release passes only when every domain passes. Cost is linear in rules + rows
(results are indexed once by (dataset, metric)).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from evalkit.core.config import ConfigError
from evalkit.decide.baseline import Baseline, CheckpointChoice, GateInputError
from evalkit.decide.gate.rules import Rule, load_gate_config, metric_direction
from evalkit.inputs.data.dataset import dataset_name

PASSED, FAILED, SKIPPED = "passed", "failed", "skipped"


@dataclass
class RuleResult:
    """The outcome of one rule: status, the numbers behind it and why."""

    rule: Rule
    status: str
    domain: str = ""
    dataset: str = ""
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
        return {"rule": r.label, "index": r.index, "kind": r.kind, "domain": self.domain,
                "dataset": self.dataset or r.dataset,
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


def evaluate_rule(rule: Rule, row: pd.Series, baseline: Baseline | None,
                  domain: str = "", dataset: str | None = None) -> RuleResult:
    """Judge one rule on the checkpoint's result row (and the baseline's entry) for one
    domain; ``dataset`` is the rule's dataset in that domain (``heldout/car``)."""
    dataset = dataset or rule.dataset
    res = RuleResult(rule=rule, status=PASSED, domain=domain, dataset=dataset,
                     value=_num(row["value"]),
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
        _check_regression(rule, res, baseline, dataset)
    if rule.kind == "required":
        res.notes.append(f"{rule.metric} = {v:.4g} (required: present)")
    if res.failures:
        res.status = FAILED
    return res


def _check_regression(rule: Rule, res: RuleResult, baseline: Baseline, dataset: str) -> None:
    entry = baseline.metric(dataset, rule.metric) or {}
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


def _rule_dataset(rule: Rule, domain: str) -> str | None:
    """The rule's dataset in ``domain`` (None: the rule is about another domain)."""
    if rule.domain is not None and rule.domain != domain:
        return None
    if "/" in rule.dataset:
        return rule.dataset if rule.dataset.split("/", 1)[1] == domain else None
    return dataset_name(rule.dataset, domain)


def expand_rules(rules: list[Rule], domains: list[str], datasets: dict[str, set[str]]
                 ) -> dict[str, list[tuple[Rule, str]]]:
    """``{domain: [(rule, dataset)]}``; ``datasets`` maps each domain to its dataset names.
    A rule naming an unknown domain or a dataset no domain has is a GateInputError."""
    known = sorted({d for ds in datasets.values() for d in ds})
    out: dict[str, list[tuple[Rule, str]]] = {d: [] for d in domains}
    for r in rules:
        if r.domain is not None and r.domain not in datasets:
            raise GateInputError(f"{r.where}: unknown domain '{r.domain}': domains in the "
                                 f"results: {', '.join(sorted(datasets)) or 'none'}")
        hits = 0
        for d in domains:
            ds = _rule_dataset(r, d)
            if ds is not None and ds in datasets.get(d, set()):
                out[d].append((r, ds))
                hits += 1
        named = r.domain is not None or "/" in r.dataset
        if hits == 0 and (named or not any(_rule_dataset(r, d) in datasets.get(d, set())
                                           for d in datasets)):
            raise GateInputError(f"{r.where}: unknown dataset '{r.dataset}'"
                                 + (f" in domain '{r.domain}'" if r.domain else "")
                                 + f": datasets in the results: {', '.join(known) or 'none'}")
    return out


def check_inputs(pairs: list[tuple[Rule, str]], ds_hash: dict[str, str],
                 known_metrics: set[str], baseline: Baseline | None) -> None:
    """Refuse (exit 2) what cannot be judged in one domain: unknown metrics, a missing
    baseline, a baseline computed on different data."""
    for r, _ds in pairs:
        if r.metric not in known_metrics:
            raise GateInputError(f"{r.where}: unknown metric '{r.metric}'; known metrics: "
                                 f"{', '.join(sorted(known_metrics))}")
    needs = [(r, ds) for r, ds in pairs if r.is_regression]
    if needs and baseline is None:
        r = needs[0][0]
        raise GateInputError(f"{r.where}: rule '{r.label}' compares against a baseline: pass "
                             "--baseline FILE (or set baseline = \"FILE\" in [gate]); write "
                             "one with 'evalkit baseline OUT --selected --write FILE'")
    for r, ds in needs:
        assert baseline is not None
        cur_hash = ds_hash.get(ds)
        base_hash = baseline.dataset_hash(ds)
        if base_hash is None:
            raise GateInputError(f"{r.where}: baseline {baseline.path} has no results on "
                                 f"dataset '{ds}'")
        if cur_hash is not None and cur_hash != base_hash:
            raise GateInputError(
                f"baseline {baseline.path} was recorded on a different '{ds}' dataset: "
                f"baseline dataset hash {base_hash}, current dataset hash {cur_hash} (files or "
                "image size changed); record a new baseline on the same data")
        if baseline.metric(ds, r.metric) is None:
            raise GateInputError(f"{r.where}: baseline {baseline.path} has no '{r.metric}' "
                                 f"on dataset '{ds}'")


@dataclass
class DomainGate:
    """One domain's verdict: its candidate (or why there is none) and its rules."""

    domain: str
    checkpoint: CheckpointChoice | None
    results: list[RuleResult] = field(default_factory=list)
    problem: str | None = None

    @property
    def failed(self) -> list[RuleResult]:
        return [r for r in self.results if r.status == FAILED]

    @property
    def passed(self) -> bool:
        return self.problem is None and not self.failed


def judge_domain(domain: str, choice: CheckpointChoice | None, problem: str | None,
                 pairs: list[tuple[Rule, str]], rows: pd.DataFrame,
                 baseline: Baseline | None, known_metrics: set[str]) -> DomainGate:
    """Judge one domain's rules on its candidate's result rows."""
    index = {(r.dataset, r.metric): r for _, r in rows.iterrows()}  # linear in rows
    evaluated = set(rows["dataset"])
    ds_hash = dict(zip(rows["dataset"], rows["dataset_hash"], strict=True))
    gate = DomainGate(domain, choice, problem=problem)
    check_inputs(pairs, ds_hash, known_metrics, baseline)
    if problem is not None:
        return gate
    assert choice is not None
    for rule, ds in pairs:
        row = index.get((ds, rule.metric))
        if row is None:
            what = ("was not evaluated on" if ds not in evaluated
                    else f"has no '{rule.metric}' result on")
            raise GateInputError(f"{rule.where}: missing results: checkpoint {choice.name} "
                                 f"{what} dataset '{ds}' (run 'evalkit run' with it first)")
        gate.results.append(evaluate_rule(rule, row, baseline, domain, ds))
    return gate


@dataclass
class GateReport:
    """Everything a gate decided, per domain, ready to print or write."""

    out: Path
    config: Path
    baseline: Baseline | None
    domains: list[DomainGate]

    @property
    def results(self) -> list[RuleResult]:
        return [r for d in self.domains for r in d.results]

    @property
    def failed(self) -> list[RuleResult]:
        return [r for r in self.results if r.status == FAILED]

    @property
    def failed_domains(self) -> list[DomainGate]:
        return [d for d in self.domains if not d.passed]

    @property
    def passed(self) -> bool:
        return not self.failed_domains

    @property
    def exit_code(self) -> int:
        return 0 if self.passed else 1

    def counts(self) -> dict[str, int]:
        return {s: sum(r.status == s for r in self.results) for s in (PASSED, FAILED, SKIPPED)}

    @property
    def checkpoint(self) -> CheckpointChoice | None:
        """The candidate of a one-domain gate (None with several domains)."""
        return self.domains[0].checkpoint if len(self.domains) == 1 else None


def find_gate_config(out: Path) -> Path:
    """The evalkit.toml that applies to ``out`` when no ``--config`` is given, found as
    ``evalkit run``/``select``/``report`` find it: up from the run folder of the latest run
    recorded in OUT that still exists, else ``./evalkit.toml``
    (:func:`evalkit.decide.ranking.rule.config_for`); else up from OUT itself. ConfigError
    (exit 2) when there is none;
    GateInputError when OUT has no results."""
    from evalkit.core.config import find_config
    from evalkit.decide.ranking.rule import config_for
    from evalkit.store.results import ResultsError

    try:
        found = config_for(out)
    except ResultsError as exc:
        raise GateInputError(str(exc)) from exc
    found = found or find_config(out)
    if found is None:
        raise ConfigError(f"no evalkit.toml found for {out}: searched up from its run folder, "
                          f"from {out} and in {Path.cwd()}; pass --config FILE")
    return found


def run_gate(out: str | Path, config: str | Path | None = None,
             checkpoint: str | list[str] | None = None,
             selected: bool = False, baseline: str | Path | None = None) -> GateReport:
    """Load config, results and baseline; judge every rule in every domain. ``config``:
    the evalkit.toml with ``[[gate.rules]]`` (None: :func:`find_gate_config`).

    Raises :class:`~evalkit.core.config.ConfigError` or :class:`GateInputError` (both exit code
    2) for what cannot be judged.
    """
    from evalkit.decide.baseline import choose_candidates, read_baseline
    from evalkit.decide.ranking.rank import DIRECTIONS
    from evalkit.store.results import ResultsError, Store

    out = Path(out)
    cfg = load_gate_config(find_gate_config(out) if config is None else config)
    try:
        with Store(out, create=False) as store:
            results = store.results()
            ckpts = store.checkpoints()
    except ResultsError as exc:
        raise GateInputError(str(exc)) from exc
    names = [checkpoint] if isinstance(checkpoint, str) else list(checkpoint or [])
    candidates = choose_candidates(out, results, ckpts, names, selected,
                                   prefer_selection=True)
    base_path = Path(baseline) if baseline is not None else cfg.baseline
    base = read_baseline(base_path) if base_path is not None else None
    datasets: dict[str, set[str]] = {}
    for d, ds in results[["domain", "dataset"]].drop_duplicates().itertuples(index=False):
        datasets.setdefault(str(d), set()).add(str(ds))
    for d in candidates:
        datasets.setdefault(d, set())
    per_domain = expand_rules(cfg.rules, sorted(candidates), datasets)
    known_metrics = set(DIRECTIONS) | set(results["metric"])
    by_ckpt = {name: g for name, g in results.groupby("checkpoint")}
    gates = []
    for d in sorted(candidates):
        choice, problem = candidates[d]
        rows = by_ckpt.get(choice.name, results.iloc[0:0]) if choice else results.iloc[0:0]
        gates.append(judge_domain(d, choice, problem, per_domain[d], rows, base,
                                  known_metrics))
        if cfg.require_stable and choice is not None:
            gates[-1].results.append(judge_stability(out, cfg.path, d, choice.name))
    return GateReport(out=out, config=cfg.path, baseline=base, domains=gates)


def judge_stability(out: Path, config: Path, domain: str, checkpoint: str) -> RuleResult:
    """``[gate] require_stable``: the gated checkpoint is the domain's selection.json choice
    and that choice is stable (its P(first) over bootstrap resamples reaches ``[ranking]
    stable_at``, as ``evalkit select`` recorded it)."""
    from evalkit.decide.selection import SelectionError, read_selection

    rule = Rule(index=-1, where=f"{config}: [gate] require_stable", dataset="selection",
                metric="p_first", name="stable deployment pick")
    res = RuleResult(rule=rule, status=FAILED, domain=domain, dataset="selection")
    path = out / "selection.json"
    try:
        entry = read_selection(path).get(domain) if path.is_file() else None
    except SelectionError as exc:
        res.failures.append(str(exc))
        return res
    if entry is None:
        res.failures.append(f"no selection for domain '{domain}' in {path}: run "
                            f"'evalkit select {out}' first")
        return res
    st = entry.get("stability", {})
    res.value = st.get("p_first")
    stable = st.get("stable")
    if stable is None and res.value is not None:  # a selection.json from before stable_at
        stable = res.value >= st.get("stable_at", 0.5)
    if entry.get("checkpoint") != checkpoint:
        res.failures.append(f"the gated checkpoint {checkpoint} is not the selected "
                            f"{entry.get('checkpoint')}")
    elif stable:
        res.status = PASSED
        res.notes.append(f"{checkpoint} is first in {st['p_first']:.0%} of resamples "
                         f">= stable_at {st.get('stable_at', 0.5):.0%}")
    else:
        pf = st.get("p_first")
        res.failures.append(
            f"{checkpoint} is first in {'?' if pf is None else f'{pf:.0%}'} of resamples, "
            f"below stable_at {st.get('stable_at', 0.5):.0%}: the pick is within the noise "
            "of the evaluation sets (more samples, or look at the grids and decide)")
    return res
