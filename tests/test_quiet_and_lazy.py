"""Issue 25: quiet by default (no TensorFlow/absl/oneDNN line without ``--verbose``), and
commands that compute nothing never import TensorFlow or torch."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from pathlib import Path

import pytest

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
