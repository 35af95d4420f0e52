"""Hostile folder names (controls, newlines, HTML, ``|``, quotes, backticks) in every output
a CI job or a person reads: each format is read back with its own parser."""

from __future__ import annotations

import csv
import io
import json
import re
import textwrap
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from click.testing import CliRunner

from evalkit.cli import cli
from evalkit.core.names import key_segment, visible
from tests.conftest import make_ab_folder

SIZE = 32
#: A domain folder and a run folder inside it, as a stranger's checkpoints might be named.
DOMAIN = "d<img src=x onerror=alert(1)>|\"q'\x01\x1b[31m`x`\r\nnl\u202e"
#: (No ``[``, ``*``, ``?`` in folder names: TensorFlow's checkpoint reader globs its path.)
RUN = "r<b>|`t`\x07\"\x0b\n _z_ ~~s~~ &amp;"
GATE = """
    [[gate.rules]]
    dataset = "heldout"
    metric = "l1"
    max = 0.01

    [[gate.rules]]
    dataset = "heldout"
    metric = "ssim"
    min = -1
"""


def invoke(*args):
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture(scope="module")
def hostile(tmp_path_factory) -> Path:
    """OUT of a run whose domain and checkpoint folders have hostile names."""
    from tests.seed_reference import save_seed_checkpoint

    base = tmp_path_factory.mktemp("hostile")
    ckpts = base / "checkpoints" / DOMAIN / RUN
    ckpts.mkdir(parents=True)
    save_seed_checkpoint(ckpts, n=2, hidden=4)
    make_ab_folder(base / "heldout" / DOMAIN, n=4, half=SIZE)
    r = invoke("run", base / "checkpoints", "--heldout", base / "heldout", "--out",
               base / "out", "--image-size", SIZE, "--quiet", "--no-report")
    assert r.exit_code == 0, r.output
    return base / "out"


@pytest.fixture(scope="module")
def gated(hostile, tmp_path_factory) -> Path:
    """The gate's JUnit, Markdown and JSON files of the hostile run (it fails l1)."""
    d = tmp_path_factory.mktemp("gate")
    (d / "evalkit.toml").write_text(textwrap.dedent(GATE))
    r = invoke("gate", hostile, "--config", d / "evalkit.toml", "--junit", d / "g.xml",
               "--markdown", d / "g.md", "--json", d / "g.json")
    assert r.exit_code == 1, r.output
    return d


def checkpoint_name() -> str:
    return f"{DOMAIN}/{RUN}/ckpt-2"


def test_visible_escapes_what_xml_and_terminals_cannot_take():
    s = "a\x00b\x1b[1m\n\u202e\udcff\ufffe ok é"
    v = visible(s)
    assert v == "a\\x00b\\x1b[1m\\n\\u202e\\udcff\\ufffe ok é"
    v.encode("utf-8")  # no lone surrogate left
    assert visible("a\nb", keep="\n") == "a\nb" and visible("plain") == "plain"


def test_key_segment_is_clean_and_keeps_names_apart():
    assert key_segment("car") == "car" and key_segment("") == ""
    a, b = key_segment("a<b"), key_segment("a>b")
    assert a != b and re.fullmatch(r"[-\w.]+", a) and a.startswith("a_b-")
    assert key_segment("..") != ".."


def test_junit_parses_and_names_read_back(gated):
    root = ET.parse(gated / "g.xml").getroot()  # the raw \x01 made this fail to parse
    props = {p.get("name"): p.get("value") for p in root.iter("property")}
    assert props["checkpoint"] == visible(checkpoint_name())
    assert props["domain"] == visible(DOMAIN)
    assert "<img src=x onerror=alert(1)>" in props["domain"]  # markup escaped, read back
    assert "\\x01" in props["domain"] and "\\n" in props["domain"]
    failed = [c for c in root.iter("testcase") if c.find("failure") is not None]
    assert len(failed) == 1 and "<img" in failed[0].get("classname")
    assert not re.search(r"[\x00-\x08\x0b\x0c\x0e-\x1f]", (gated / "g.xml").read_text())


def _cells(line: str) -> list[str]:
    """A GFM table row's cells: split on ``|`` not escaped by a backslash."""
    return re.split(r"(?<!\\)\|", line.strip())[1:-1]


def test_markdown_keeps_its_table_and_has_no_raw_html(gated):
    md = (gated / "g.md").read_text()
    assert "<img" not in md and "<b>" not in md and "\x1b" not in md and "\r" not in md
    rows = [ln for ln in md.splitlines() if ln.startswith("|")]
    assert len(rows) == 4  # header, rule, two rules: no row broken by a newline
    assert {len(_cells(r)) for r in rows} == {6}
    assert not any(ln.startswith("nl") for ln in md.splitlines())
    markdown_it = pytest.importorskip("markdown_it")
    html = markdown_it.MarkdownIt("commonmark").enable("table").render(md)
    assert "<img" not in html and "<em>" not in html and "<del>" not in html
    assert "&amp;amp;" in html  # an entity in a name is shown as written
    body = re.findall(r"<tr>(.*?)</tr>", html, re.S)
    assert len(body) == 3 and {r.count("<td>") + r.count("<th>") for r in body} == {6}
    assert "d&lt;img src=x onerror=alert(1)&gt;|" in html  # readable once rendered


def test_gate_json_round_trips(gated):
    data = json.loads((gated / "g.json").read_text())
    assert list(data["domains"]) == [DOMAIN]
    assert data["domains"][DOMAIN]["checkpoint"]["name"] == checkpoint_name()


def test_results_csv_and_json_round_trip(hostile):
    names = {checkpoint_name(), f"{DOMAIN}/{RUN}/ckpt-1"}
    r = invoke("results", hostile, "--format", "csv")
    # (click's Result.stdout turns \r\n into \n: read the bytes)
    rows = list(csv.DictReader(io.StringIO(r.stdout_bytes.decode(), newline="")))
    assert rows and {x["checkpoint"] for x in rows} == names
    assert {x["domain"] for x in rows} == {DOMAIN}
    r = invoke("results", hostile, "--format", "json")
    assert {x["checkpoint"] for x in json.loads(r.stdout_bytes)} == names
    table = invoke("results", hostile).stdout  # the terminal table: no escape sequences
    assert "\x1b" not in table and "\\x1b[31m" in table


def test_terminal_tables_show_controls_as_escapes(hostile):
    from evalkit.commands.results import checkpoint_table

    text = checkpoint_table(hostile).to_string()  # `evalkit run`'s final table
    assert not re.search(r"[\x00-\x08\x0b-\x1f\x7f]", text) and "\\x1b[31m" in text


def test_tensorboard_tags_are_clean_and_distinct(hostile, tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from evalkit.present.export.tensorboard import export_tensorboard

    export_tensorboard(hostile, tmp_path / "tb", images=False)
    acc = EventAccumulator(str(tmp_path / "tb"), size_guidance={"scalars": 0})
    acc.Reload()
    tags = acc.Tags()["scalars"]
    assert tags and all(re.fullmatch(r"[-\w./]+", t) for t in tags)
    assert {t.split("/")[1] for t in tags} == {key_segment(DOMAIN)}
    assert len(acc.Scalars(f"evalkit/{key_segment(DOMAIN)}/heldout/ssim")) == 2


def test_mlflow_params_and_tags_are_visible_text(hostile, tmp_path):
    mlflow = pytest.importorskip("mlflow")
    from evalkit.present.export.mlflow import export_mlflow

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    [exp] = export_mlflow(hostile, uri, experiment="hostile")
    run = mlflow.MlflowClient(tracking_uri=uri).get_run(exp.run_id)
    assert run.data.params["domain"] == visible(DOMAIN)
    assert run.info.run_name == visible(DOMAIN)
    assert run.data.tags["evalkit.domain"] == visible(DOMAIN)
    assert run.data.tags["evalkit.selected.checkpoint"] in {
        visible(checkpoint_name()), visible(f"{DOMAIN}/{RUN}/ckpt-1")}
    for text in [*run.data.params.values(), *run.data.tags.values()]:
        assert not re.search(r"[\x00-\x08\x0b-\x1f\x7f]", text), text
