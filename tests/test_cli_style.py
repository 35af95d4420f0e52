"""One CLI style: the README's usage block agrees with every command's ``--help``, and help
texts say what the code does (racing's growth, the demo's default example)."""

from __future__ import annotations

import re
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from evalkit.cli import COMMANDS, cli

README = Path(__file__).resolve().parents[1] / "README.md"


def usage_block(text: str) -> str:
    """The ```bash block under README's '## Usage' heading."""
    section = text.split("\n## Usage\n", 1)[1]
    return section.split("```bash\n", 1)[1].split("\n```", 1)[0]


def _split_alternatives(line: str) -> list[str]:
    """``a | b`` at bracket depth 0 (``[--x | --y]``, ``(--x | --y)`` and ``table|csv``
    stay whole)."""
    parts, depth, cur = [], 0, ""
    for i, ch in enumerate(line):
        depth += ch in "[("
        depth -= ch in "])"
        if ch == "|" and depth == 0 and line[i - 1:i] == " ":
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    return [*parts, cur]


def usage_entries(block: str) -> list[tuple[tuple[str, ...], list[str]]]:
    """``[(command path, --options named)]`` for each command line of the usage block
    (continuation lines joined, ``# comments`` dropped, ``a | b`` alternatives split)."""
    lines: list[str] = []
    for raw in block.splitlines():
        line = raw.split("#", 1)[0].rstrip().rstrip("\\").rstrip()
        if not line:
            continue
        if raw.startswith("evalkit "):
            lines.append(line)
        elif lines:
            lines[-1] += " " + line.strip()
    entries = []
    for line in lines:
        group: tuple[str, ...] = ()
        for alt in _split_alternatives(line):
            words = alt.split()
            if words[0] == "evalkit":
                words = words[1:]
            if words[0] in COMMANDS:  # the command and the word after it (maybe a sub-command)
                path: tuple[str, ...] = tuple(words[:2])
                group = path
            else:  # `weights status | fetch`: a sub-command of the group before
                path = (*group[:1], words[0])
            entries.append((path, re.findall(r"(?<![\w-])--[a-z][a-z0-9-]*", alt)))
    return entries


def resolve(path: tuple[str, ...]) -> tuple[click.Command, list[str]]:
    """The click command README's ``path`` runs, and its argv for ``--help``."""
    ctx = click.Context(cli)
    cmd = cli.get_command(ctx, path[0])
    assert cmd is not None, f"README names 'evalkit {path[0]}', which does not exist"
    argv = [path[0]]
    if isinstance(cmd, click.Group):
        sub = path[1] if len(path) > 1 else None
        if sub not in cmd.commands:
            sub = "serve" if path[0] == "review" else None  # `evalkit review OUT`
        if sub is not None:
            cmd = cmd.commands[sub]
            argv.append(sub)
    return cmd, argv


def test_usage_block_is_parsed_whole():
    entries = usage_entries(usage_block(README.read_text(encoding="utf-8")))
    paths = {p for p, _ in entries}
    # every top-level command appears in the README's usage block
    assert {p[0] for p in paths} == set(COMMANDS)
    assert ("weights", "fetch") in paths and ("review", "import") in paths
    opts = {o for _, os_ in entries for o in os_}
    assert {"--heldout", "--checkpoint", "--json", "--convert-hed", "--reviewer"} <= opts


def _id(x: object) -> str | None:
    """A test id: the command words of a README path (``review import``)."""
    if not isinstance(x, tuple):
        return None
    return " ".join(w for w in x if w.isalpha() and w.islower())


@pytest.mark.parametrize("path, options", usage_entries(usage_block(
    README.read_text(encoding="utf-8"))), ids=_id)
def test_every_readme_option_is_in_that_commands_help(path, options):
    cmd, argv = resolve(path)
    r = CliRunner().invoke(cli, [*argv, "--help"])
    assert r.exit_code == 0, r.output
    known = {o for p in cmd.params for o in (*p.opts, *p.secondary_opts)}
    for opt in options:
        assert opt in known and re.search(rf"(?<![\w-]){opt}(?![\w-])", r.output), \
            f"README's usage names 'evalkit {' '.join(path)} ... {opt}', " \
            f"which 'evalkit {' '.join(argv)} --help' does not list"


def _help(*argv: str) -> str:
    r = CliRunner().invoke(cli, [*argv, "--help"], terminal_width=200)
    assert r.exit_code == 0, r.output
    return " ".join(r.output.split())


def test_run_help_states_the_racing_growth_of_docs_and_code():
    from evalkit.execute.racing.race import DEFAULT_GROWTH

    assert DEFAULT_GROWTH == pytest.approx(2 ** 0.5)
    assert "`growth` sqrt(2)" in (README.parent / "docs" / "racing.md").read_text()
    text = _help("run")
    assert "grow the subset by sqrt(2)" in text and "double" not in text


def test_demo_help_names_the_example_it_runs():
    from evalkit.commands.demo import EXAMPLE, find_example

    text = _help("demo")
    assert f"[default: {EXAMPLE}/ of this checkout, else ./{EXAMPLE}]" in text
    assert "examples/person" not in text
    found = find_example()
    if found is not None:  # run from the clone: the default is that folder
        assert found.name == str(EXAMPLE) and (found / "checkpoints").is_dir()


# -- results: filters, and a skip reason printed once --------------------------------------
@pytest.fixture(scope="module")
def finished(tmp_path_factory) -> Path:
    from tests.test_gate import finished_run

    return finished_run(str(tmp_path_factory.getbasetemp()))


def _results(*args: str):
    return CliRunner().invoke(cli, ["results", *map(str, args)], catch_exceptions=False)


def test_results_filters_by_domain_checkpoint_and_metric(finished):
    import json

    every = json.loads(_results(finished, "--format", "json").output)
    r = _results(finished, "--checkpoint", "ckpt-2", "--metric", "ssim", "--metric", "l1",
                 "--domain", "", "--format", "json")
    assert r.exit_code == 0, r.output
    rows = json.loads(r.output)
    assert sorted((x["checkpoint"], x["metric"]) for x in rows) == [("ckpt-2", "l1"),
                                                                   ("ckpt-2", "ssim")]
    assert len(every) > len(rows)
    csv = _results(finished, "--checkpoint", "ckpt-1", "--checkpoint", "ckpt-3",
                   "--format", "csv").output.splitlines()
    assert {line.split(",")[0] for line in csv[1:]} == {"ckpt-1", "ckpt-3"}
    samples = json.loads(_results(finished, "--per-sample", "--checkpoint", "ckpt-1",
                                  "--metric", "l1", "--domain", "", "--format",
                                  "json").output)
    assert len(samples) == 8 and {(s["checkpoint"], s["metric"]) for s in samples} == \
        {("ckpt-1", "l1")}


@pytest.mark.parametrize("option, value, known", [
    ("--checkpoint", "ckpt-9", "known: ckpt-1, ckpt-2, ckpt-3"),
    ("--metric", "sharpness", "known: kid, l1, psnr, ssim"),
    ("--domain", "car", "known: ''"),
])
def test_results_unknown_filter_value_exits_2_listing_the_known(finished, option, value,
                                                                  known):
    r = _results(finished, option, value)
    assert r.exit_code == 2
    assert f"{option} {value}: not in these results; {known}" in r.output
    assert "Traceback" not in r.output


def test_results_table_prints_each_skip_reason_once(finished):
    from tests.test_gate import KID_REASON

    r = _results(finished)
    assert r.exit_code == 0, r.output
    assert r.output.count(KID_REASON) == 1  # below the table, once
    table, notes = r.output.split("\nreasons:\n")
    kid_rows = [line for line in table.splitlines() if " kid " in line]
    assert len(kid_rows) == 3 and all(line.rstrip().endswith("[1]") for line in kid_rows)
    assert notes.strip() == f"[1] {KID_REASON}"
    assert max(map(len, table.splitlines())) < 130
    # csv/json keep the full reason on every row
    assert _results(finished, "--format", "csv").output.count(KID_REASON) == 3


# -- one error prefix: `evalkit CMD: error: ...` -------------------------------------------
@pytest.mark.parametrize("argv, prefix, words", [
    (["results", "{tmp}/none"], "evalkit results", "no results in"),
    (["results", "{tmp}/none", "--format", "yaml"], "evalkit results", "'yaml' is not one of"),
    (["gate", "{tmp}", "--config", "{tmp}/absent.toml"], "evalkit gate",
     "gate config not found"),
    (["export", "{tmp}"], "evalkit export", "nothing to export to"),
    (["run", "{tmp}/missing"], "evalkit run", "does not exist"),
    (["weights", "fetch", "nope"], "evalkit weights fetch", "unknown weight file(s) nope"),
    (["weights", "import", "{tmp}/junk.bin", "--dest", "{tmp}/w"], "evalkit weights import",
     "is none of the weight files"),
    (["review", "import", "{tmp}/none", "{tmp}/junk.bin"], "evalkit review import",
     "no results in"),
    (["--bogus"], "evalkit", "No such option '--bogus'"),
    (["bogus"], "evalkit", "No such command 'bogus'"),
])
def test_every_error_has_the_one_prefix(tmp_path, argv, prefix, words):
    (tmp_path / "junk.bin").write_bytes(b"not a weight file")
    argv = [a.format(tmp=tmp_path) for a in argv]
    r = CliRunner().invoke(cli, argv)
    assert r.exit_code == 2, r.output
    last = r.stderr.strip().splitlines()[-1]
    assert last.startswith(f"{prefix}: error: ") and words in last, r.stderr
    assert not re.search(r"^(Error|error):", r.stderr, re.M)  # no other prefix anywhere
    assert "Traceback" not in r.output


def test_results_wide_is_one_row_per_checkpoint_like_run(finished):
    import json

    long = {(x["checkpoint"], x["metric"]): x["value"] for x in json.loads(
        _results(finished, "--format", "json").output) if x["status"] == "ok"}
    r = _results(finished, "--wide", "--format", "json")
    assert r.exit_code == 0, r.output
    rows = json.loads(r.output)
    assert [x["checkpoint"] for x in rows] == ["ckpt-1", "ckpt-2", "ckpt-3"]
    for x in rows:
        for m in ("l1", "ssim", "psnr"):
            assert x[f"heldout:{m}"] == pytest.approx(long[(x["checkpoint"], m)], abs=5e-5)
    r = _results(finished, "--wide", "--metric", "ssim", "--checkpoint", "ckpt-2")
    assert r.exit_code == 0, r.output
    head, row = r.output.strip().splitlines()
    assert head.split() == ["checkpoint", "step", "status", "heldout:ssim"]
    assert row.split()[0] == "ckpt-2"
    r = _results(finished, "--wide", "--per-sample")
    assert r.exit_code == 2 and "does not combine" in r.output


@pytest.mark.parametrize("argv", [["--quiet", "weights", "fetch", "alexnet"],
                                  ["weights", "fetch", "alexnet", "--quiet"],
                                  ["weights", "fetch", "--quiet", "alexnet"],
                                  ["weights", "fetch", "alexnet"]])
def test_global_quiet_before_or_after_the_command(argv, monkeypatch):
    """`evalkit --quiet CMD` and `evalkit CMD --quiet` both turn progress bars off (here
    weights fetch's download bar); without it they stay on."""
    from evalkit.measure import weights as W

    seen = {}
    monkeypatch.setattr(W, "fetch", lambda keys, dest=None, force=False, progress=True,
                        log=print: seen.setdefault("progress", progress) and [])
    r = CliRunner().invoke(cli, argv)
    assert r.exit_code == 0, r.output
    assert seen["progress"] is ("--quiet" not in argv)


@pytest.mark.parametrize("argv", [["--quiet", "run"], ["run", "--quiet"], ["run"]])
def test_global_quiet_reaches_run(argv, monkeypatch, tmp_path):
    """run keeps its own --quiet; the global one before the command works the same."""
    import evalkit.execute.engine as engine

    class Stop(Exception):
        pass

    def options(**kw):
        raise Stop(kw["progress"])

    monkeypatch.setattr(engine, "RunOptions", options)
    (tmp_path / "ckpts").mkdir()
    r = CliRunner().invoke(cli, [*argv, str(tmp_path / "ckpts"), "--out", str(tmp_path / "o")])
    assert isinstance(r.exception, Stop), r.output
    assert r.exception.args[0] is ("--quiet" not in argv)


def test_global_flags_on_every_command_and_output_note(monkeypatch, tmp_path):
    """Every command and sub-command accepts --quiet and --verbose after its name; --quiet
    drops the 'wrote FILE' note of -o; --verbose after the command turns verbose on."""
    import os

    from evalkit.core.quiet import VERBOSE_ENV

    ctx = click.Context(cli)
    for name in COMMANDS:
        cmd = cli.get_command(ctx, name)
        subs = list(cmd.commands.values()) if isinstance(cmd, click.Group) else [cmd]
        for c in subs:
            opts = {o for p in c.params for o in getattr(p, "opts", [])}
            assert {"--quiet", "--verbose"} <= opts, f"{name} {c.name}"
    monkeypatch.setenv("EVALKIT_WEIGHTS_DIR", str(tmp_path / "w"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "th"))
    dest = tmp_path / "s.json"
    r = CliRunner().invoke(cli, ["weights", "status", "--format", "json", "-o", str(dest)])
    assert r.exit_code == 0 and "wrote weights status" in r.output
    r = CliRunner().invoke(cli, ["weights", "status", "--format", "json", "-o", str(dest),
                                 "--quiet"])
    assert r.exit_code == 0 and r.output == "" and dest.is_file()
    monkeypatch.setenv(VERBOSE_ENV, "0")
    assert CliRunner().invoke(cli, ["weights", "status", "--verbose"]).exit_code == 0
    assert os.environ[VERBOSE_ENV] == "1"


def test_commands_taking_quiet_accept_it_on_their_own(tmp_path):
    """demo and weights fetch declare --quiet themselves (the global flag), so the command
    objects parse it even when called without the evalkit group (as tests do)."""
    from evalkit.commands.demo import demo
    from evalkit.commands.weights import fetch_cmd

    r = CliRunner().invoke(demo, ["--quiet", "--example", str(tmp_path / "none")])
    assert r.exit_code == 2 and "No such option" not in r.output and "does not exist" in r.output
    r = CliRunner().invoke(fetch_cmd, ["--quiet", "nonesuch"])
    assert r.exit_code == 2 and "unknown weight file(s) nonesuch" in r.output
