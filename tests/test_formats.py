"""One output convention (issue 28): every command that prints data takes
``--format table|csv|json`` and ``-o/--output FILE`` (``-``: stdout); json parses, csv has its
header, ``-o`` writes the same bytes as stdout, old flags (``select --json``, ``gate --json
FILE``, ``sketches check --json``, ``weights status --json``) still work."""

from __future__ import annotations

import csv
import io
import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from evalkit.cli import cli
from tests.test_gate import PASSING, finished_run, write_config
from tests.test_sketches_check import _copy_starter


@pytest.fixture(scope="module")
def out(tmp_path_factory) -> Path:
    """A private copy of test_gate's tiny finished run, with a selection."""
    src = finished_run(str(tmp_path_factory.getbasetemp()))
    dst = tmp_path_factory.mktemp("formats") / "out"
    dst.mkdir()
    for f in src.glob("results.sqlite*"):
        shutil.copy(f, dst / f.name)
    r = CliRunner().invoke(cli, ["select", str(dst), "--quiet"])
    assert r.exit_code == 0, r.output
    return dst


def _invoke(args: list[str]):
    r = CliRunner().invoke(cli, args)
    assert r.exit_code == 0, r.output
    return r


def _csv(text: str) -> tuple[list[str], list[dict]]:
    rows = list(csv.reader(io.StringIO(text)))
    return rows[0], [dict(zip(rows[0], r, strict=True)) for r in rows[1:]]


def _check_all_formats(args: list[str], header: list[str], tmp_path: Path) -> object:
    """json parses, csv starts with ``header``, -o FILE equals stdout; returns the json."""
    data = json.loads(_invoke([*args, "--format", "json"]).stdout)
    head, rows = _csv(_invoke([*args, "--format", "csv"]).stdout)
    assert head[:len(header)] == header, head
    dest = tmp_path / "sub" / "out.csv"
    r = _invoke([*args, "--format", "csv", "-o", str(dest)])
    assert _csv(dest.read_text()) == (head, rows) and "wrote " in r.stderr
    assert dest.read_text() not in r.stdout  # (gate still prints its summary there)
    assert _invoke([*args, "--format", "csv", "-o", "-"]).stdout == dest.read_text()
    return data


def test_results(out, tmp_path):
    data = _check_all_formats(["results", str(out)], ["checkpoint", "step"], tmp_path)
    assert {r["metric"] for r in data} >= {"l1", "ssim", "psnr"}
    wide = _check_all_formats(["results", str(out), "--wide"], ["checkpoint", "step"],
                              tmp_path)
    assert len(wide) == 3 and "heldout:l1" in wide[0]
    dest = tmp_path / "t.txt"
    _invoke(["results", str(out), "-o", str(dest)])
    assert dest.read_text() == _invoke(["results", str(out)]).stdout


def test_select(out, tmp_path):
    data = _check_all_formats(["select", str(out)], ["domain", "checkpoint", "step"], tmp_path)
    assert data == json.loads(_invoke(["select", str(out), "--json"]).stdout)
    pick = data["domains"][""]["checkpoint"]
    _, rows = _csv(_invoke(["select", str(out), "--format", "csv"]).stdout)
    assert [r["checkpoint"] for r in rows] == [pick]
    assert data == json.loads((out / "selection.json").read_text())


def test_gate(out, tmp_path):
    cfg = write_config(tmp_path, PASSING)
    args = ["gate", str(out), "--config", str(cfg)]
    data = _check_all_formats(args, ["domain", "checkpoint", "domain_passed", "status"],
                              tmp_path)
    assert data["passed"] is True and data["exit_code"] == 0
    r = _invoke([*args, "--format", "json"])
    assert "gate PASSED" in r.stderr and "gate PASSED" not in r.stdout  # summary: stderr
    old = tmp_path / "old.json"
    _invoke([*args, "--json", str(old)])
    assert json.loads(old.read_text()) == data
    _, rows = _csv(_invoke([*args, "--format", "csv"]).stdout)
    assert len(rows) == len(data["domains"][""]["rules"]) and rows[0]["status"] == "passed"
    r = CliRunner().invoke(cli, [*args, "--format", "json", "--json", "-"])
    assert r.exit_code == 2 and "--json and --format json both write to stdout" in r.output


def test_compare(out, tmp_path):
    data = _check_all_formats(["compare", str(out), str(out)],
                              ["domain", "a_checkpoint", "b_checkpoint", "verdict"], tmp_path)
    assert data["domains"][0]["verdict"] == "same checkpoint in both"


def test_review_scores_without_votes(out, tmp_path):
    data = _check_all_formats(["review", "scores", str(out)], ["domain", "checkpoint",
                                                                "bt_score"], tmp_path)
    assert data == []
    assert "no votes yet" in _invoke(["review", "scores", str(out)]).stdout


def test_sketches_check(tmp_path):
    root = _copy_starter(tmp_path, n=3)
    data = _check_all_formats(["sketches", "check", str(root), "--image-size", "64"],
                              ["file", "severity", "check", "message"], tmp_path)
    assert data["ok"] is True and data["n_files"] == 3
    assert data == json.loads(_invoke(["sketches", "check", str(root), "--image-size", "64",
                                       "--json"]).stdout)


def test_unwritable_output_is_exit_2(out, tmp_path):
    (tmp_path / "file").write_text("x")
    r = CliRunner().invoke(cli, ["results", str(out), "--format", "csv", "-o",
                                 str(tmp_path / "file" / "r.csv")])
    assert r.exit_code == 2 and "cannot write" in r.output and "-o/--output" in r.output
