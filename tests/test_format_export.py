"""``select --export`` for non-seed formats: the chosen file copied as it is, hash-checked."""

from __future__ import annotations

import json

import pytest

import evalkit  # noqa: F401
from evalkit.core.hashing import file_sha256
from evalkit.decide.selection import SelectionError, select
from evalkit.execute.engine import RunOptions, evaluate_run
from evalkit.inputs.data.pairs import load_pairs
from evalkit.measure.paired import PairedMetrics
from evalkit.present.deploy import export
from tests import pix2pix_reference as ref
from tests.conftest import make_ab_folder


@pytest.fixture
def evaluated(tmp_path):
    run = ref.save_run(tmp_path / "run", {
        f"{e}_net_G.pth": ref.resnet_state(ngf=2, n_blocks=6, seed=e) for e in (1, 2)})
    ds = load_pairs(make_ab_folder(tmp_path / "heldout", n=4), size=32)
    evaluate_run(run, tmp_path / "out", [ds], RunOptions(image_size=32, progress=False),
                 families=[PairedMetrics()])
    return run, tmp_path / "out"


def test_export_copies_the_pth_as_is(evaluated, tmp_path):
    run, out = evaluated
    sel = select(out)["domains"][""]  # a run without domains: one entry
    dest = export(sel, tmp_path / "deploy")
    src = run / sel["checkpoint"]
    assert dest == tmp_path / "deploy" / src.name
    assert file_sha256(dest) == file_sha256(src)
    assert json.loads((tmp_path / "deploy" / "selection.json").read_text())["checkpoint"] == \
        sel["checkpoint"]
    with pytest.raises(SelectionError, match="not empty"):
        export(sel, tmp_path / "deploy")
    assert export(sel, tmp_path / "deploy", force=True) == dest


def test_export_refuses_changed_files(evaluated, tmp_path):
    run, out = evaluated
    sel = select(out)["domains"][""]
    (run / sel["checkpoint"]).write_bytes(b"changed")
    with pytest.raises(SelectionError, match="files changed after evaluation"):
        export(sel, tmp_path / "deploy")


def test_export_of_a_seed_checkpoint_keeps_the_seed_layout(seed_run, tmp_path):
    ds = load_pairs(make_ab_folder(tmp_path / "heldout", n=3), size=32)
    evaluate_run(seed_run, tmp_path / "out", [ds], RunOptions(image_size=32, progress=False),
                 families=[PairedMetrics()])
    dest = export(select(tmp_path / "out")["domains"][""], tmp_path / "deploy")
    assert dest == tmp_path / "deploy" / "ckpt-1"
    assert (tmp_path / "deploy" / "checkpoint").is_file()
    assert (tmp_path / "deploy" / "ckpt-1.index").is_file()


def test_cli_select_export_copies_the_file(evaluated, tmp_path):
    from click.testing import CliRunner

    from evalkit.cli import cli

    run, out = evaluated
    r = CliRunner().invoke(cli, ["select", str(out), "--export", str(tmp_path / "d")],
                           catch_exceptions=False)
    assert r.exit_code == 0, r.output
    chosen = json.loads((out / "selection.json").read_text())["domains"][""]["checkpoint"]
    assert file_sha256(tmp_path / "d" / chosen) == file_sha256(run / chosen)
