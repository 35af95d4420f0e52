"""Issue 25: quiet by default (no TensorFlow/absl/oneDNN line without ``--verbose``), and
commands that compute nothing never import TensorFlow or torch."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from evalkit.core import quiet
from tests.conftest import make_ab_folder
from tests.seed_reference import save_seed_checkpoint

ROOT = Path(__file__).resolve().parents[1]
SIZE = 32
#: what TensorFlow's native start-up says (any of them in stderr fails quiet mode)
NOISE = ("onednn", "absl", "cuda", "tensorflow binary")


def evalkit_cmd(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    """``evalkit ARGS`` in a fresh interpreter (this worktree's code, weights absent)."""
    return subprocess.run([sys.executable, "-m", "evalkit.cli", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})})


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    """A seed-format run of 2 tiny checkpoints and 4 held-out pairs."""
    d = tmp_path_factory.mktemp("quiet")
    make_ab_folder(d / "heldout", n=4, half=SIZE)
    (d / "run").mkdir()
    save_seed_checkpoint(d / "run", n=2, hidden=4)
    return d


def run_args(d: Path, out: str) -> list[str]:
    return ["run", str(d / "run"), "--heldout", str(d / "heldout"), "--out", str(d / out),
            "--image-size", str(SIZE), "--quiet", "--no-report"]


def noisy_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if any(n in line.lower() for n in NOISE)]


def test_run_says_no_tensorflow_log_line_unless_verbose(tiny):
    env = {"EVALKIT_WEIGHTS_DIR": str(tiny), "TORCH_HOME": str(tiny)}
    env.pop("TF_CPP_MIN_LOG_LEVEL", None)
    r = evalkit_cmd(*run_args(tiny, "out-quiet"), env=env)
    assert r.returncode == 0, r.stderr
    assert "2 of 2 checkpoints evaluated" in r.stderr  # evalkit's own lines still shown
    assert noisy_lines(r.stderr) == []
    v = evalkit_cmd("--verbose", *run_args(tiny, "out-verbose"), env=env)
    assert v.returncode == 0, v.stderr
    if platform.machine() in ("x86_64", "AMD64"):  # TensorFlow's x86 wheels use oneDNN
        assert any("oneDNN" in line for line in noisy_lines(v.stderr)), v.stderr


def test_hidden_stderr_is_dropped_but_given_back_when_the_block_fails(capfd, monkeypatch):
    monkeypatch.delenv(quiet.VERBOSE_ENV, raising=False)
    with quiet.native_stderr_hidden():
        os.write(2, b"native chatter\n")
    with pytest.raises(RuntimeError), quiet.native_stderr_hidden():
        os.write(2, b"why the import failed\n")
        raise RuntimeError("import failed")
    err = capfd.readouterr().err
    assert "native chatter" not in err
    assert "why the import failed" in err
    monkeypatch.setenv(quiet.VERBOSE_ENV, "1")
    with quiet.native_stderr_hidden():
        os.write(2, b"verbose chatter\n")
    assert "verbose chatter" in capfd.readouterr().err


# -- nothing to compute: no TensorFlow, no torch ------------------------------------------

#: runs ``evalkit ARGV[2:]`` and writes its exit code and the heavy modules it imported
#: (those of them in sys.modules) as JSON to ARGV[1]
CHILD = r"""
import json, sys
from evalkit.cli import main
code = 0
try:
    main(sys.argv[2:])
except SystemExit as exc:
    code = exc.code
mods = sorted(m for m in ("tensorflow", "torch", "tf_keras", "torchmetrics", "triton",
                          "scipy.stats", "skimage", "matplotlib", "pandas")
              if m in sys.modules)
json.dump({"exit": code, "imported": mods}, open(sys.argv[1], "w"))
"""


def heavy_imports(tmp_path: Path, *args: str, env: dict | None = None
                  ) -> tuple[int, list[str], str]:
    """(exit code, heavy modules imported, stdout + stderr) of ``evalkit ARGS`` in a fresh process."""
    report = tmp_path / "imports.json"
    r = subprocess.run([sys.executable, "-c", CHILD, str(report), *args], cwd=ROOT,
                       capture_output=True, text=True, timeout=300,
                       env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})})
    assert report.exists(), r.stderr
    got = json.loads(report.read_text())
    return got["exit"], got["imported"], r.stdout + r.stderr


def tf_or_torch(imported: list[str]) -> list[str]:
    return [m for m in imported if m in ("tensorflow", "torch", "tf_keras", "torchmetrics")]


@pytest.fixture(scope="module")
def evaluated(tiny, tmp_path_factory) -> Path:
    """``tiny`` with 3 sketches, evaluated once (report rendered) in a fresh process."""
    sketches = tiny / "sketches"
    sketches.mkdir(exist_ok=True)
    for i in range(3):
        a = np.full((SIZE, SIZE), 255, np.uint8)
        a[4 + 8 * i, 2:30] = 0
        a[2:30, 6 + 7 * i] = 0
        Image.fromarray(a).save(sketches / f"s{i}.png")
    code, imported, out = heavy_imports(tiny, *tiny_run_args(tiny))
    assert code == 0, out
    assert "tensorflow" in imported  # the probe sees imports when there is work
    return tiny / "out"


def tiny_run_args(tiny: Path) -> list[str]:
    """The fixture's run; the same command line each time (the report's fingerprint
    includes the run settings, command line too)."""
    return ["run", str(tiny / "run"), "--heldout", str(tiny / "heldout"), "--sketches",
            str(tiny / "sketches"), "--out", str(tiny / "out"), "--image-size", str(SIZE),
            "--quiet"]


def test_unchanged_run_answers_without_tensorflow_or_torch(evaluated, tiny):
    code, imported, err = heavy_imports(tiny, *tiny_run_args(tiny))
    assert code == 0, err
    assert "2 of 2 checkpoints evaluated" in err and "(up to date)" in err
    # nor triton, scipy.stats, scikit-image (the metrics' code), matplotlib (the report's)
    # or pandas (the table and the report check are remembered: evalkit/commands/memo.py)
    assert imported == []
    # files rewritten with the same bytes (new mtime): same content hash, nothing to do
    data = tiny / "run" / "ckpt-2.data-00000-of-00001"
    data.write_bytes(data.read_bytes())
    code, imported, err = heavy_imports(tiny, *tiny_run_args(tiny), "--no-report")
    assert code == 0 and imported == [], err


def test_reading_commands_never_import_tensorflow_or_torch(evaluated, tmp_path):
    import sqlite3

    from evalkit.decide.review.votes import VOTE_FORMAT, out_id

    config = tmp_path / "evalkit.toml"
    config.write_text('[[gate.rules]]\ndataset = "heldout"\nmetric = "l1"\nmax = 5.0\n')
    with sqlite3.connect(evaluated / "results.sqlite") as conn:
        cks = dict(conn.execute("SELECT name, content_hash FROM checkpoints"))
        ds, sid = conn.execute("SELECT dataset, sample_id FROM samples WHERE dataset LIKE "
                               "'sketches%' LIMIT 1").fetchone()
        doc = {"format": VOTE_FORMAT, "out": out_id(conn), "votes": [
            {"reviewer": "ana", "time": 1.7e9, "domain": "", "dataset": ds, "sample_id": sid,
             "left_hash": cks["ckpt-1"], "right_hash": cks["ckpt-2"], "left_name": "ckpt-1",
             "right_name": "ckpt-2", "answer": "right"}]}
    votes = tmp_path / "votes.json"
    votes.write_text(json.dumps(doc))
    out = str(evaluated)
    for args in (["results", out], ["results", out, "--format", "json"],
                 ["results", out, "--mismatch"], ["select", out],
                 ["gate", out, "--config", str(config)],
                 ["baseline", out, "--checkpoint", "ckpt-2", "--write",
                  str(tmp_path / "baseline.json")],
                 ["review", "import", out, str(votes)], ["report", out]):
        code, imported, err = heavy_imports(tmp_path, *args)
        assert code == 0, (args, err)
        assert tf_or_torch(imported) == [], (args, imported)
        if args[0] == "review":
            assert "imported 1 vote(s)" in err, err


# -- the unchanged run's memos (evalkit/commands/memo.py) -----------------------------------

def test_memos_follow_every_change_of_what_they_show(evaluated, tmp_path):
    import shutil
    import sqlite3

    from evalkit.commands import memo
    from evalkit.present.report import stamp

    out = tmp_path / "out"
    shutil.copytree(evaluated, out)
    table_key, report_key = memo.table_key(out), memo.report_key(out)
    assert table_key and report_key
    (out / memo.TABLE_MEMO).unlink(missing_ok=True)  # whatever earlier tests left
    assert memo.remember_table(out, lambda: "table") == "table"
    assert memo.remember_table(out, lambda: "not called") == "table"
    with sqlite3.connect(out / "results.sqlite") as conn:  # what every run rewrites
        conn.execute("UPDATE checkpoints SET updated_at = updated_at + 1")
        cols = ", ".join(r[1] for r in conn.execute("PRAGMA table_info(runs)")
                         if r[1] not in ("id", "started_at"))
        conn.execute(f"INSERT INTO runs (started_at, {cols}) SELECT started_at + 1, {cols} "
                     "FROM runs ORDER BY id DESC LIMIT 1")  # the same run again
        conn.execute("INSERT INTO meta SELECT 'signature:999', value FROM meta WHERE key LIKE "
                     "'signature:%' LIMIT 1")
    assert (memo.table_key(out), memo.report_key(out)) == (table_key, report_key)
    with sqlite3.connect(out / "results.sqlite") as conn:  # a stored value changes
        conn.execute("UPDATE metrics SET value = value + 1 WHERE metric = 'l1'")
    assert memo.table_key(out) != table_key and memo.report_key(out) != report_key
    assert memo.remember_table(out, lambda: "new table") == "new table"
    assert memo.remember_table(out, lambda: "not called") == "new table"
    report_key = memo.report_key(out)
    (out / "selection.json").write_text("{}")
    assert memo.report_key(out) != report_key
    report_key = memo.report_key(out)
    config = tmp_path / "evalkit.toml"  # found for the recorded run folder
    shutil.copytree(evaluated.parent / "run", tmp_path / "run")
    with sqlite3.connect(out / "results.sqlite") as conn:
        conn.execute("UPDATE runs SET run_dir = ?", (str(tmp_path / "run"),))
    report_key = memo.report_key(out)
    config.write_text("[ranking]\nbootstrap = 10\n")
    assert memo.report_key(out) != report_key
    # the report memo answers only while the report keeps the stamp it had
    rendered = []

    # as stamp.render_if_stale: render, stamp
    def render(o: Path, config_path: Path | None = None) -> tuple[Path, bool]:
        rendered.append(1)
        (o / "report" / stamp.STAMP).write_text(f"stamp {len(rendered)}")
        return o / "report" / "index.html", True

    memo.report_if_stale(out, render)
    memo.report_if_stale(out, render)
    assert rendered == [1]
    (out / "report" / stamp.STAMP).unlink()  # what `evalkit report` does
    memo.report_if_stale(out, render)
    assert rendered == [1, 1]


def test_report_memo_covers_what_the_stamp_reads():
    """memo.report_key must cover everything stamp.fingerprint reads: when fingerprint
    changes, check evalkit/commands/memo.py's report_key and update this pin."""
    import hashlib
    import inspect

    from evalkit.present.report import stamp

    src = inspect.getsource(stamp.fingerprint) + repr(stamp._RUN_SETTINGS)
    assert hashlib.sha256(src.encode()).hexdigest()[:12] == PINNED_FINGERPRINT_SOURCE


PINNED_FINGERPRINT_SOURCE = "cb860c1c4903"


#: ``evalkit ARGV[1:]`` with a library that warns while the run evaluates
WARNING_CHILD = r"""
import sys, warnings
import evalkit.execute.engine as engine
real = engine.evaluate_domains
def noisy(*a, **k):
    warnings.warn("a library's chatter", UserWarning)
    warnings.warn("a library's chatter", UserWarning)
    return real(*a, **k)
engine.evaluate_domains = noisy
from evalkit.cli import main
main(sys.argv[1:])
"""


def test_python_warnings_reach_the_user_only_with_verbose(evaluated, tiny):
    env = {k: v for k, v in os.environ.items() if k != quiet.VERBOSE_ENV}
    env["PYTHONPATH"] = str(ROOT)

    def stderr(*extra: str) -> str:
        r = subprocess.run([sys.executable, "-c", WARNING_CHILD, *extra, *tiny_run_args(tiny),
                            "--no-report"], cwd=ROOT, capture_output=True, text=True,
                           timeout=300, env=env)
        assert r.returncode == 0, r.stderr
        return r.stderr

    quiet_err = stderr()
    assert "2 of 2 checkpoints evaluated" in quiet_err
    assert "chatter" not in quiet_err and "Warning" not in quiet_err
    notes = [line for line in quiet_err.splitlines() if line.startswith("note:")]
    assert len(notes) == len(set(notes))  # each said once
    assert "UserWarning: a library's chatter" in stderr("--verbose")


def test_a_run_without_the_torch_weights_never_imports_torch(tiny, tmp_path):
    """Offline (no LPIPS/Inception weights) fid/kid/lpips are skipped before torch is
    imported: a run with work pays TensorFlow only (not torch, torchmetrics, Keras 3)."""
    empty = tmp_path / "no-weights"
    empty.mkdir()
    code, imported, err = heavy_imports(
        tmp_path, *run_args(tiny, "out-no-torch"),
        env={"EVALKIT_WEIGHTS_DIR": str(empty), "TORCH_HOME": str(empty)})
    assert code == 0, err
    assert "lpips skipped" in err and "fid/kid skipped" in err
    assert "tensorflow" in imported
    assert not {"torch", "torchmetrics", "matplotlib"} & set(imported), imported
