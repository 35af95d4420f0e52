"""`evalkit gate`: rule parsing (file:line errors), each rule kind, each exit code, outputs."""

from __future__ import annotations

import functools
import json
import shutil
import textwrap
import xml.etree.ElementTree as ET
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from evalkit.cli import cli
from evalkit.core.config import ConfigError
from evalkit.decide.baseline import Baseline
from evalkit.decide.gate import (
    FAILED,
    PASSED,
    SKIPPED,
    evaluate_rule,
    load_gate_config,
)
from evalkit.measure.base import MetricValue

SIZE = 32
KID_REASON = "pretrained Inception weights not found offline (evalkit weights fetch)"


class OfflineKid:
    """A metric family that behaves like KID without its weights: always skipped."""

    name = "offline_kid"
    metrics = ("kid",)

    def compute(self, ctx) -> list[MetricValue]:
        return [MetricValue.skipped("kid", KID_REASON, retryable=True)]


@functools.cache
def finished_run(base: str) -> Path:
    """A tiny finished run (3 seed checkpoints x 8 held-out pairs at 32 px), made once per
    session and shared by test_gate and test_baseline. Do not modify it; copy it."""
    from evalkit.execute.engine import RunOptions, evaluate_run
    from evalkit.inputs.data.pairs import load_pairs
    from evalkit.measure.paired import PairedMetrics
    from tests.conftest import make_ab_folder
    from tests.seed_reference import save_seed_checkpoint

    d = Path(base) / "gate-run"
    heldout = make_ab_folder(d / "heldout", n=8)
    (d / "run").mkdir(parents=True)
    save_seed_checkpoint(d / "run", n=3, hidden=4)
    ds = load_pairs(heldout, size=SIZE, name="heldout")
    summary = evaluate_run(d / "run", d / "out", [ds],
                           RunOptions(image_size=SIZE, progress=False),
                           families=[PairedMetrics(), OfflineKid()], log=lambda s: None)
    assert summary.exit_code == 0
    return d / "out"


@pytest.fixture(scope="session")
def out(tmp_path_factory) -> Path:
    return finished_run(str(tmp_path_factory.getbasetemp()))


@pytest.fixture
def out_copy(out, tmp_path) -> Path:
    """A private copy of the results (for tests that write selection.json)."""
    dst = tmp_path / "out"
    dst.mkdir()
    for f in out.glob("results.sqlite*"):
        shutil.copy(f, dst / f.name)
    return dst


def results(out: Path) -> pd.DataFrame:
    import evalkit

    return evalkit.load_results(out)


def gate_cli(*args: str):
    return CliRunner().invoke(cli, ["gate", *map(str, args)], catch_exceptions=False)


def write_config(folder: Path, body: str, name: str = "evalkit.toml") -> Path:
    path = folder / name
    path.write_text(textwrap.dedent(body).lstrip())
    return path


def junit_cases(path: Path) -> list[ET.Element]:
    return ET.parse(path).getroot().findall("./testsuite/testcase")


PASSING = """
    [[gate.rules]]
    dataset = "heldout"
    metric = "l1"
    max = 2.0

    [[gate.rules]]
    dataset = "heldout"
    metric = "psnr"
    min = 0

    [[gate.rules]]
    dataset = "heldout"
    metric = "ssim"
    min = -1
    max = 1

    [[gate.rules]]
    dataset = "heldout"
    metric = "kid"
    max = 0.02
    allow_skipped = true
"""


# -- config validation ------------------------------------------------------------------
@pytest.mark.parametrize("body, line, words", [
    ("""
     [[gate.rules]]
     dataset = "heldout"
     metric = "ssim"
     minimum = 0.5
     """, 4, "unknown key 'minimum'"),
    ("""
     [[gate.rules]]
     dataset = "heldout"
     metric = "ssim"
     min = 0.5

     [[gate.rules]]
     dataset = "heldout"
     metric = "l1"
     max = "0.3"
     """, 9, "'max' must be a number"),
    ("""
     [[gate.rules]]
     dataset = "heldout"
     metric = "ssim"
     min = 0.9
     max = 0.5
     """, 5, "no value can pass"),
    ("""
     [[gate.rules]]
     dataset = "heldout"
     min = 0.9
     """, 1, "needs 'metric'"),
    ("""
     [[gate.rules]]
     dataset = "heldout"
     metric = "ssim"
     min = 0.1
     ci_must_not_overlap = true
     """, 5, "applies to regression rules"),
    ("""
     [[gate.rules]]
     dataset = "heldout"
     metric = "sharpness"
     max_regression = 0.1
     """, 3, "unknown metric 'sharpness'"),
    ("""
     [[gate.rules]]
     dataset = "heldout"
     metric = "l1"
     max_regression = -0.1
     """, 4, "must be >= 0"),
    ("""
     [[gate.rules]]
     dataset = "heldout"
     metric = "l1"
     allow_skipped = "yes"
     """, 4, "'allow_skipped' must be a bool"),
    ("""
     [gate]
     baseline = "b.json"
     treshold = 1
     """, 3, "unknown key 'treshold' in [gate]"),
])
def test_malformed_config_names_file_line_and_problem(tmp_path, body, line, words):
    path = write_config(tmp_path, body)
    with pytest.raises(ConfigError) as err:
        load_gate_config(path)
    assert f"{path}:{line}:" in str(err.value)
    assert words in str(err.value)


def test_config_without_rules_or_with_bad_toml_is_rejected(tmp_path):
    with pytest.raises(ConfigError, match="no \\[gate\\] section"):
        load_gate_config(write_config(tmp_path, "[run]\nimage_size = 32\n"))
    with pytest.raises(ConfigError, match="no gate rules"):
        load_gate_config(write_config(tmp_path, "[gate]\nbaseline = 'b.json'\n"))
    with pytest.raises(ConfigError, match="invalid TOML"):
        load_gate_config(write_config(tmp_path, "[[gate.rules]]\ndataset = heldout\n"))
    with pytest.raises(ConfigError, match="not found"):
        load_gate_config(tmp_path / "missing.toml")


def test_rule_kinds_labels_and_baseline_path(tmp_path):
    path = write_config(tmp_path, """
        [gate]
        baseline = "deployed/baseline.json"

        [[gate.rules]]
        dataset = "heldout"
        metric = "ssim"
        min = 1

        [[gate.rules]]
        dataset = "heldout"
        metric = "l1"
        max_regression = 0.01
        max_regression_pct = 2

        [[gate.rules]]
        name = "kid is computed"
        dataset = "sketches"
        metric = "kid"
    """)
    cfg = load_gate_config(path)
    assert cfg.baseline == (tmp_path / "deployed" / "baseline.json").resolve()
    assert [r.kind for r in cfg.rules] == ["threshold", "regression", "required"]
    assert [r.label for r in cfg.rules] == ["heldout ssim >= 1",
                                            "heldout l1 regression <= 0.01 and 2%",
                                            "kid is computed"]
    assert cfg.rules[1].where == f"{path}:9"


# -- each rule kind on synthetic numbers -----------------------------------------------------
def row(value=0.5, lo=0.45, hi=0.55, status="ok", reason=None, n=10) -> pd.Series:
    return pd.Series({"value": value, "ci_low": lo, "ci_high": hi, "n": n, "status": status,
                      "reason": reason})


def one_rule(tmp_path, body: str):
    return load_gate_config(write_config(tmp_path, "[[gate.rules]]\ndataset = 'heldout'\n"
                                         + textwrap.dedent(body))).rules[0]


def baseline_of(metric: str, value, lo=None, hi=None, status="ok") -> Baseline:
    return Baseline(path=Path("b.json"), data={
        "checkpoint": "ckpt-0", "datasets": {"heldout": {"content_hash": "h"}},
        "metrics": {"heldout": {metric: {"value": value, "ci_low": lo, "ci_high": hi,
                                         "status": status, "reason": None}}}})


@pytest.mark.parametrize("bounds, value, status", [
    ("min = 0.5", 0.5, PASSED),       # bounds are inclusive
    ("min = 0.5", 0.4999, FAILED),
    ("max = 0.5", 0.5, PASSED),
    ("max = 0.5", 0.5001, FAILED),
    ("min = 0.2\nmax = 0.4", 0.3, PASSED),
    ("min = 0.2\nmax = 0.4", 0.41, FAILED),
])
def test_threshold_rules(tmp_path, bounds, value, status):
    rule = one_rule(tmp_path, f"metric = 'ssim'\n{bounds}\n")
    res = evaluate_rule(rule, row(value), None)
    assert res.status == status
    if status == FAILED:
        assert f"{value:.4g}" in res.message


@pytest.mark.parametrize("metric, base, value, tol, status", [
    ("l1", 0.30, 0.305, "max_regression = 0.01", PASSED),    # lower is better
    ("l1", 0.30, 0.32, "max_regression = 0.01", FAILED),
    ("l1", 0.30, 0.10, "max_regression = 0", PASSED),        # improvement
    ("ssim", 0.60, 0.595, "max_regression = 0.01", PASSED),  # higher is better
    ("ssim", 0.60, 0.58, "max_regression = 0.01", FAILED),
    ("ssim", 0.60, 0.90, "max_regression = 0", PASSED),
    ("psnr", 20.0, 19.7, "max_regression_pct = 2", PASSED),  # 0.3 <= 2% of 20 = 0.4
    ("psnr", 20.0, 19.5, "max_regression_pct = 2", FAILED),
    ("fid", 40.0, 41.0, "max_regression = 5\nmax_regression_pct = 2", FAILED),  # either
])
def test_regression_rules(tmp_path, metric, base, value, tol, status):
    rule = one_rule(tmp_path, f"metric = '{metric}'\n{tol}\n")
    res = evaluate_rule(rule, row(value, None, None), baseline_of(metric, base))
    assert res.status == status, res.message
    assert res.worse_by == pytest.approx(value - base if metric in ("l1", "fid")
                                         else base - value)
    if status == FAILED:
        assert "regression" in res.message and f"{base:.4g}" in res.message


def test_regression_with_ci_overlap(tmp_path):
    rule = one_rule(tmp_path, "metric = 'l1'\nmax_regression = 0.01\n"
                              "ci_must_not_overlap = true\n")
    base = baseline_of("l1", 0.30, 0.28, 0.32)
    overlapping = evaluate_rule(rule, row(0.33, 0.31, 0.35), base)
    assert overlapping.status == PASSED and "overlap; not counted" in overlapping.message
    disjoint = evaluate_rule(rule, row(0.36, 0.34, 0.38), base)
    assert disjoint.status == FAILED and "do not overlap" in disjoint.message
    no_ci = evaluate_rule(rule, row(0.33, None, None), base)
    assert no_ci.status == FAILED and "without the overlap test" in " ".join(no_ci.notes)
    # Without the option the same overlapping numbers fail.
    plain = one_rule(tmp_path, "metric = 'l1'\nmax_regression = 0.01\n")
    assert evaluate_rule(plain, row(0.33, 0.31, 0.35), base).status == FAILED


def test_required_metric_skipped_or_failed(tmp_path):
    required = one_rule(tmp_path, "metric = 'kid'\nmax = 0.02\n")
    res = evaluate_rule(required, row(None, status="skipped", reason=KID_REASON), None)
    assert res.status == FAILED and KID_REASON in res.message and "allow_skipped" in res.message
    allowed = one_rule(tmp_path, "metric = 'kid'\nmax = 0.02\nallow_skipped = true\n")
    res = evaluate_rule(allowed, row(None, status="skipped", reason=KID_REASON), None)
    assert res.status == SKIPPED and KID_REASON in res.message
    # allow_skipped does not excuse a metric that failed to compute.
    res = evaluate_rule(allowed, row(None, status="failed", reason="ValueError: x"), None)
    assert res.status == FAILED and "ValueError" in res.message
    bare = one_rule(tmp_path, "metric = 'kid'\n")
    assert bare.kind == "required"
    assert evaluate_rule(bare, row(0.5), None).status == PASSED


def test_regression_against_a_skipped_baseline_value(tmp_path):
    rule = one_rule(tmp_path, "metric = 'kid'\nmax_regression = 0.001\n")
    base = baseline_of("kid", None, status="skipped")
    assert evaluate_rule(rule, row(0.01), base).status == FAILED
    allowed = one_rule(tmp_path, "metric = 'kid'\nmax_regression = 0.001\n"
                                 "allow_skipped = true\n")
    assert evaluate_rule(allowed, row(0.01), base).status == SKIPPED


# -- the command on a finished run ---------------------------------------------------------
def test_passing_config_exits_0_and_writes_all_outputs(out, tmp_path):
    cfg = write_config(tmp_path, PASSING)
    r = gate_cli(out, "--config", cfg, "--junit", tmp_path / "gate.xml", "--markdown",
                 tmp_path / "gate.md", "--json", tmp_path / "gate.json")
    assert r.exit_code == 0, r.output
    assert "gate PASSED" in r.output
    # Default checkpoint: the latest evaluated one, and the output says so.
    assert "ckpt-3 (step 3" in r.output and "newest discovered checkpoint" in r.output
    root = ET.parse(tmp_path / "gate.xml").getroot()
    suite = root.find("testsuite")
    assert suite is not None
    assert (suite.get("tests"), suite.get("failures"), suite.get("skipped")) == ("4", "0", "1")
    cases = junit_cases(tmp_path / "gate.xml")
    assert [c.find("skipped") is not None for c in cases] == [False, False, False, True]
    assert KID_REASON in cases[3].find("skipped").get("message")
    md = (tmp_path / "gate.md").read_text()
    assert md.startswith("## ✅ evalkit gate passed: ckpt-3")
    assert md.count("\n| ") == 5  # header + 4 rules
    data = json.loads((tmp_path / "gate.json").read_text())
    assert data["passed"] is True and data["exit_code"] == 0
    assert data["domains"][""]["checkpoint"]["name"] == "ckpt-3"
    assert [x["status"] for x in data["domains"][""]["rules"]] == ["passed", "passed", "passed", "skipped"]


def test_one_impossible_threshold_exits_1_with_exactly_that_failure(out, tmp_path):
    cfg = write_config(tmp_path, PASSING.replace("min = -1\n    max = 1", "min = 0.999") )
    r = gate_cli(out, "--config", cfg, "--junit", tmp_path / "gate.xml", "--markdown",
                 tmp_path / "gate.md")
    assert r.exit_code == 1, r.output
    assert "gate FAILED: 1 failed" in r.output
    cases = junit_cases(tmp_path / "gate.xml")
    failed = [c for c in cases if c.find("failure") is not None]
    assert [c.get("name") for c in failed] == ["heldout ssim >= 0.999"]
    ssim = results(out).query("checkpoint == 'ckpt-3' and metric == 'ssim'").value.iloc[0]
    failure = failed[0].find("failure")
    assert failure.get("message") == f"ssim = {ssim:.4g} < min 0.999"
    assert json.loads(failure.text)["value"] == pytest.approx(ssim)
    assert ET.parse(tmp_path / "gate.xml").getroot().get("failures") == "1"
    md = (tmp_path / "gate.md").read_text()
    assert md.startswith("## ❌ evalkit gate failed") and md.count("❌ failed") == 1


def test_required_skipped_metric_fails_the_gate(out, tmp_path):
    cfg = write_config(tmp_path, """
        [[gate.rules]]
        dataset = "heldout"
        metric = "kid"
        max = 0.02
    """)
    r = gate_cli(out, "--config", cfg, "--junit", tmp_path / "g.xml")
    assert r.exit_code == 1
    assert "required metric kid was skipped" in r.output and KID_REASON in r.output
    assert junit_cases(tmp_path / "g.xml")[0].find("failure").get("type") == "gate.threshold"


def test_malformed_config_exits_2_naming_the_problem(out, tmp_path):
    cfg = write_config(tmp_path, """
        [[gate.rules]]
        dataset = "heldout"
        metric = "ssim"
        mni = 0.5
    """)
    r = gate_cli(out, "--config", cfg, "--junit", tmp_path / "g.xml")
    assert r.exit_code == 2
    assert f"{cfg}:4: unknown key 'mni'" in r.output
    assert not (tmp_path / "g.xml").exists()


@pytest.mark.parametrize("dataset, metric, words", [
    ("sketches", "ssim", "unknown dataset 'sketches': datasets in the results: heldout"),
    ("heldout", "sharpness", "unknown metric 'sharpness'"),
    ("heldout", "lpips", "missing results: checkpoint ckpt-3 has no 'lpips' result on "
                         "dataset 'heldout'"),
])
def test_rules_the_results_cannot_answer_exit_2(out, tmp_path, dataset, metric, words):
    cfg = write_config(tmp_path, f"""
        [[gate.rules]]
        dataset = "{dataset}"
        metric = "{metric}"
        max = 1
    """)
    r = gate_cli(out, "--config", cfg)
    assert r.exit_code == 2
    assert f"{cfg}:1: {words}" in r.output


def test_missing_inputs_exit_2(out, tmp_path):
    cfg = write_config(tmp_path, PASSING)
    r = gate_cli(tmp_path / "nowhere", "--config", cfg)
    assert r.exit_code == 2 and "no results in" in r.output
    r = gate_cli(out, "--config", tmp_path / "absent.toml")
    assert r.exit_code == 2 and "gate config not found" in r.output
    r = gate_cli(out, "--config", cfg, "--checkpoint", "ckpt-9")
    assert r.exit_code == 2 and "no results for checkpoint 'ckpt-9'" in r.output
    assert "ckpt-1, ckpt-2, ckpt-3" in r.output
    r = gate_cli(out, "--config", cfg, "--checkpoint", "ckpt-1", "--selected")
    assert r.exit_code == 2 and "not both" in r.output
    # An explicit baseline is read even when no rule needs it: a wrong path is an error.
    r = gate_cli(out, "--config", cfg, "--baseline", tmp_path / "typo.json")
    assert r.exit_code == 2 and "typo.json not found" in r.output


def test_explicit_and_selected_checkpoint(out_copy, tmp_path):
    cfg = write_config(tmp_path, PASSING)
    r = gate_cli(out_copy, "--config", cfg, "--checkpoint", "ckpt-1")
    assert r.exit_code == 0 and "checkpoint: ckpt-1 (step 1" in r.output
    r = gate_cli(out_copy, "--config", cfg, "--selected")
    assert r.exit_code == 2 and f"run 'evalkit select {out_copy}' first" in r.output
    res = results(out_copy)
    h2 = res[res.checkpoint == "ckpt-2"].checkpoint_hash.iloc[0]
    (out_copy / "selection.json").write_text(json.dumps(
        {"format": "evalkit-selection/2", "domains": {"": {"checkpoint": "ckpt-2",
                                                           "content_hash": h2}}}))
    r = gate_cli(out_copy, "--config", cfg, "--selected", "--json", tmp_path / "g.json")
    assert r.exit_code == 0 and "checkpoint: ckpt-2 (step 2" in r.output
    g = json.loads((tmp_path / "g.json").read_text())
    assert g["domains"][""]["checkpoint"]["chosen_by"].startswith("--selected")
    (out_copy / "selection.json").write_text(json.dumps(
        {"format": "evalkit-selection/2", "domains": {"": {"checkpoint": "ckpt-2",
                                                           "content_hash": "0" * 64}}}))
    r = gate_cli(out_copy, "--config", cfg, "--selected")
    assert r.exit_code == 2 and "content hash 000000000000" in r.output


# -- regression against a recorded baseline -------------------------------------------------
def best_and_worst(out: Path) -> tuple[str, str, float]:
    l1 = results(out).query("metric == 'l1'").set_index("checkpoint").value
    return str(l1.idxmin()), str(l1.idxmax()), float(l1.max() - l1.min())


def regression_config(folder: Path, tol: float, baseline: str | None = None) -> Path:
    head = f'[gate]\nbaseline = "{baseline}"\n\n' if baseline else ""
    return write_config(folder, head + f"""
[[gate.rules]]
dataset = "heldout"
metric = "l1"
max_regression = {tol!r}
""")


def test_worse_checkpoint_fails_against_better_baseline(out, tmp_path):
    best, worst, gap = best_and_worst(out)
    assert gap > 0.01  # the seed checkpoints really differ
    base = tmp_path / "baseline.json"
    r = CliRunner().invoke(cli, ["baseline", str(out), "--checkpoint", best, "--write",
                                 str(base)])
    assert r.exit_code == 0, r.output
    cfg = regression_config(tmp_path, gap / 2)
    r = gate_cli(out, "--config", cfg, "--checkpoint", worst, "--baseline", base,
                 "--junit", tmp_path / "g.xml")
    assert r.exit_code == 1, r.output
    assert f"worse by {gap:.4g}" in r.output
    failure = junit_cases(tmp_path / "g.xml")[0].find("failure")
    assert failure.get("type") == "gate.regression" and best not in failure.get("message")
    # The baseline's own checkpoint does not regress against itself, even with zero slack.
    cfg0 = regression_config(tmp_path, 0.0, baseline="baseline.json")  # [gate] baseline
    r = gate_cli(out, "--config", cfg0, "--checkpoint", best)
    assert r.exit_code == 0, r.output
    assert f"baseline:   {base.resolve()} ({best}" in r.output
    # A tolerance wider than the gap lets the worse one through.
    r = gate_cli(out, "--config", regression_config(tmp_path, gap * 2), "--checkpoint",
                 worst, "--baseline", base)
    assert r.exit_code == 0, r.output


def test_regression_without_baseline_or_with_foreign_baseline_exits_2(out, tmp_path):
    cfg = regression_config(tmp_path, 0.01)
    r = gate_cli(out, "--config", cfg)
    assert r.exit_code == 2 and "pass --baseline FILE" in r.output
    r = gate_cli(out, "--config", cfg, "--baseline", tmp_path / "none.json")
    assert r.exit_code == 2 and "baseline" in r.output and "not found" in r.output
    base = tmp_path / "baseline.json"
    CliRunner().invoke(cli, ["baseline", str(out), "--checkpoint", "ckpt-1", "--write",
                             str(base)])
    data = json.loads(base.read_text())
    real = data["datasets"]["heldout"]["content_hash"]
    data["datasets"]["heldout"]["content_hash"] = "f" * 64
    base.write_text(json.dumps(data))
    r = gate_cli(out, "--config", cfg, "--baseline", base)
    assert r.exit_code == 2
    assert "different 'heldout' dataset" in r.output
    assert "f" * 64 in r.output and real in r.output


# -- the default candidate: what is released (selection.json), else the newest -------------
def write_selection(out: Path, entries: dict[str, str | None]) -> None:
    """OUT/selection.json choosing ``{domain: checkpoint}`` (None: nothing selected)."""
    res = results(out)
    domains = {d: {"checkpoint": c, "content_hash":
                   res[res.checkpoint == c].checkpoint_hash.iloc[0]}
               for d, c in entries.items() if c is not None}
    errors = {d: "no checkpoint can be selected" for d, c in entries.items() if c is None}
    (out / "selection.json").write_text(json.dumps(
        {"format": "evalkit-selection/2", "domains": domains, "errors": errors}))


def separating_rule(out: Path, good: str, bad: str) -> str:
    """A heldout l1 bound that ``good`` passes and ``bad`` fails."""
    l1 = results(out).query("metric == 'l1'").set_index("checkpoint").value
    mid = float(l1[good] + l1[bad]) / 2
    bound = f"max = {mid!r}" if l1[good] < l1[bad] else f"min = {mid!r}"
    return f'[[gate.rules]]\ndataset = "heldout"\nmetric = "l1"\n{bound}\n'


def test_default_gates_the_selected_checkpoint_and_says_why(out_copy, tmp_path):
    cfg = write_config(tmp_path, separating_rule(out_copy, "ckpt-1", "ckpt-3"))
    r = gate_cli(out_copy, "--config", cfg)  # no selection: the newest, which fails here
    assert r.exit_code == 1, r.output
    assert "checkpoint: ckpt-3 (step 3" in r.output and "OUT has no selection.json" in r.output
    write_selection(out_copy, {"": "ckpt-1"})  # as `evalkit select` would
    r = gate_cli(out_copy, "--config", cfg, "--json", tmp_path / "g.json")
    assert r.exit_code == 0, r.output
    assert "checkpoint: ckpt-1 (step 1" in r.output
    assert "OUT/selection.json selects" in r.output
    assert "newest checkpoint ckpt-3 (step 3) is not the selected one" in r.output
    chosen = json.loads((tmp_path / "g.json").read_text())["domains"][""]["checkpoint"]
    assert chosen["name"] == "ckpt-1" and chosen["chosen_by"].startswith("default: the "
                                                                         "checkpoint OUT/sel")
    # --checkpoint still overrides the selection
    r = gate_cli(out_copy, "--config", cfg, "--checkpoint", "ckpt-3")
    assert r.exit_code == 1 and "checkpoint: ckpt-3 (step 3" in r.output


def test_default_after_evalkit_select_gates_its_choice(out_copy, tmp_path):
    r = CliRunner().invoke(cli, ["select", str(out_copy)], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    chosen = json.loads((out_copy / "selection.json").read_text())["domains"][""]
    r = gate_cli(out_copy, "--config", write_config(tmp_path, PASSING), "--json",
                 tmp_path / "g.json")
    assert r.exit_code == 0, r.output
    g = json.loads((tmp_path / "g.json").read_text())["domains"][""]["checkpoint"]
    assert (g["name"], g["content_hash"]) == (chosen["checkpoint"], chosen["content_hash"])
    assert "selection.json" in g["chosen_by"]


def test_failed_newest_fails_without_selection_and_selection_wins_with_one(out_copy,
                                                                           tmp_path):
    import sqlite3

    with sqlite3.connect(out_copy / "results.sqlite") as db:
        db.execute("UPDATE checkpoints SET status = 'failed', error = 'shard truncated' "
                   "WHERE name = 'ckpt-3'")
    cfg = write_config(tmp_path, PASSING)
    r = gate_cli(out_copy, "--config", cfg)
    assert r.exit_code == 1, r.output
    assert "newest checkpoint ckpt-3 (step 3) failed to evaluate: shard truncated" in r.output
    # a selection without a choice for the domain still gates (and fails on) the newest
    write_selection(out_copy, {"": None})
    r = gate_cli(out_copy, "--config", cfg)
    assert r.exit_code == 1, r.output
    assert "failed to evaluate" in r.output
    assert "selection.json has no choice for this domain" in r.output
    # with a choice, the selected (released) checkpoint is gated, and the newest is named
    write_selection(out_copy, {"": "ckpt-2"})
    r = gate_cli(out_copy, "--config", cfg)
    assert r.exit_code == 0, r.output
    assert "checkpoint: ckpt-2 (step 2" in r.output and "ckpt-3 (step 3) is not the" in r.output


def test_default_with_unusable_selection_exits_2(out_copy, tmp_path):
    cfg = write_config(tmp_path, PASSING)
    sel = out_copy / "selection.json"
    sel.write_text("{not json")
    r = gate_cli(out_copy, "--config", cfg, "--junit", tmp_path / "g.xml")
    assert r.exit_code == 2, r.output
    assert f"{sel}" in r.output and "not a readable selection file" in r.output
    assert not (tmp_path / "g.xml").exists()
    write_selection(out_copy, {"": "ckpt-2"})
    doc = json.loads(sel.read_text())
    doc["domains"][""]["content_hash"] = "0" * 64
    sel.write_text(json.dumps(doc))
    r = gate_cli(out_copy, "--config", cfg)
    assert r.exit_code == 2 and "content hash 000000000000" in r.output
    assert f"run 'evalkit select {out_copy}' again" in r.output


# -- evalkit.toml found as `evalkit run` finds it -------------------------------------------
def test_config_is_found_from_the_run_folder_then_out_like_run(out_copy, tmp_path,
                                                                 monkeypatch):
    import sqlite3

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # no ./evalkit.toml
    project = tmp_path / "project"
    (project / "checkpoints").mkdir(parents=True)
    write_config(project, PASSING)
    with sqlite3.connect(out_copy / "results.sqlite") as db:
        db.execute("UPDATE runs SET run_dir = ?", (str(project / "checkpoints"),))
    r = gate_cli(out_copy)  # found above the run folder, not in the current folder
    assert r.exit_code == 0, r.output
    assert f"config:     {project / 'evalkit.toml'}" in r.output
    # the run folder is gone: searched up from OUT (here: OUT's parent)
    shutil.rmtree(project)
    r = gate_cli(out_copy)
    assert r.exit_code == 2 and "no evalkit.toml found" in r.output
    assert "pass --config FILE" in r.output
    write_config(tmp_path, PASSING)
    r = gate_cli(out_copy)
    assert r.exit_code == 0, r.output
    assert f"config:     {tmp_path / 'evalkit.toml'}" in r.output


# -- '-' means stdout ----------------------------------------------------------------------
@pytest.mark.parametrize("option", ["--json", "--junit", "--markdown"])
def test_dash_writes_that_output_alone_to_stdout(out, tmp_path, monkeypatch, option):
    monkeypatch.chdir(tmp_path)
    cfg = write_config(tmp_path, PASSING)
    r = CliRunner().invoke(cli, ["gate", str(out), "--config", str(cfg), option, "-",
                                 "--json" if option != "--json" else "--junit",
                                 str(tmp_path / "other")], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    assert not (tmp_path / "-").exists()
    assert "gate PASSED" in r.stderr and "gate PASSED" not in r.stdout  # summary: stderr
    if option == "--json":
        assert json.loads(r.stdout)["domains"][""]["checkpoint"]["name"] == "ckpt-3"
        ET.parse(tmp_path / "other")  # the other output still goes to its file
    elif option == "--junit":
        root = ET.fromstring(r.stdout.encode())
        assert root.tag == "testsuites" and root.get("tests") == "4"
        assert json.loads((tmp_path / "other").read_text())["passed"] is True
    else:
        assert r.stdout.startswith("## ✅ evalkit gate passed: ckpt-3")


def test_two_outputs_on_stdout_exit_2(out, tmp_path):
    cfg = write_config(tmp_path, PASSING)
    r = gate_cli(out, "--config", cfg, "--json", "-", "--markdown", "-")
    assert r.exit_code == 2
    assert "--markdown and --json both write to stdout" in r.output


def test_require_stable_passes_a_stable_pick_and_fails_an_unstable_one(out_copy, tmp_path):
    """[gate] require_stable: the released checkpoint must be the selection and stable."""
    import json

    from evalkit.decide.selection import select

    sel = select(out_copy)["domains"][""]
    cfg = write_config(tmp_path, """
        [gate]
        require_stable = true
        [[gate.rules]]
        dataset = "heldout"
        metric = "l1"
        max = 100
    """)
    r = gate_cli(out_copy, "--config", cfg, "--json", tmp_path / "g.json")
    doc = json.loads((tmp_path / "g.json").read_text())
    stab = [x for d in doc["domains"].values() for x in d["rules"]
            if x["rule"] == "stable deployment pick"]
    assert len(stab) == 1
    want = sel["stability"]["p_first"] >= 0.5
    assert (stab[0]["status"] == "passed") == want and (r.exit_code == 0) == want
    # a stricter stable_at recorded in selection.json fails it with the reason
    data = json.loads((out_copy / "selection.json").read_text())
    data["domains"][""]["stability"].update(stable=False, stable_at=0.99, p_first=0.6)
    (out_copy / "selection.json").write_text(json.dumps(data))
    r = gate_cli(out_copy, "--config", cfg)
    assert r.exit_code == 1 and "below stable_at 99%" in r.output
    # another checkpoint than the selected one fails it too
    other = next(c for c in ("ckpt-1", "ckpt-2", "ckpt-3") if c != sel["checkpoint"])
    data["domains"][""]["stability"].update(stable=True)
    (out_copy / "selection.json").write_text(json.dumps(data))
    r = gate_cli(out_copy, "--config", cfg, "--checkpoint", other)
    assert r.exit_code == 1 and f"{other} is not the selected" in r.output
    bad = write_config(tmp_path, """
        [gate]
        require_stable = "yes"
        [[gate.rules]]
        dataset = "heldout"
        metric = "l1"
    """, name="bad.toml")
    r = gate_cli(out_copy, "--config", bad)
    assert r.exit_code == 2 and "'require_stable' must be true or false" in r.output
