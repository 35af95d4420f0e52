"""The notebook API (``evalkit.run/results/select/report/gate``), as docs/internals.md shows it:
the same results as the commands, errors as exceptions with the command's exit code."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

import evalkit
from tests.conftest import make_ab_folder
from tests.seed_reference import save_seed_checkpoint


def test_importing_evalkit_imports_no_framework():
    code = ("import sys, evalkit; evalkit.select; "
            "print(sorted(m for m in ('tensorflow', 'torch') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out == "[]"


def test_unknown_names_and_options_are_errors(tmp_path):
    with pytest.raises(AttributeError):
        evalkit.no_such_thing  # noqa: B018
    with pytest.raises(TypeError, match="no option 'imagesize'"):
        evalkit.run(tmp_path, out=tmp_path / "out", imagesize=32)


def test_run_results_select_report_gate(tmp_path):
    heldout = make_ab_folder(tmp_path / "heldout", n=4)
    (tmp_path / "run").mkdir()
    save_seed_checkpoint(tmp_path / "run", n=2, hidden=4)
    out = evalkit.run(tmp_path / "run", out=tmp_path / "out", heldout=heldout, image_size=32,
                      quiet=True, no_report=True)
    assert out == tmp_path / "out"

    df = evalkit.results(out)
    assert set(df.checkpoint) == {"ckpt-1", "ckpt-2"}
    assert {"l1", "ssim", "psnr"} <= set(df.metric)

    sel = evalkit.select(out)
    assert sel == json.loads((out / "selection.json").read_text())
    assert sel["domains"][""]["checkpoint"] in {"ckpt-1", "ckpt-2"}

    index = evalkit.report(out)
    assert index == out / "report" / "index.html" and index.is_file()

    cfg = tmp_path / "evalkit.toml"
    cfg.write_text('[[gate.rules]]\ndataset = "heldout"\nmetric = "l1"\nmax = 100.0\n'
                   '[[gate.rules]]\ndataset = "heldout"\nmetric = "ssim"\nmin = 2.0\n')
    report = evalkit.gate(out, config=cfg, selected=True)
    assert not report.passed and report.exit_code == 1


def test_run_failure_raises_with_the_exit_code(tmp_path):
    with pytest.raises(evalkit.EvalkitError) as info:
        evalkit.run(tmp_path / "missing", out=tmp_path / "out", quiet=True)
    assert info.value.code == 2
