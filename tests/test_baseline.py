"""`evalkit baseline`: what the committed JSON records, and how bad inputs are refused."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from evalkit.cli import cli
from evalkit.decide.baseline import FORMAT, GateInputError, read_baseline
from tests.test_gate import SIZE, finished_run, out_copy, results  # noqa: F401


@pytest.fixture(scope="session")
def out(tmp_path_factory) -> Path:
    return finished_run(str(tmp_path_factory.getbasetemp()))


def baseline_cli(*args):
    return CliRunner().invoke(cli, ["baseline", *map(str, args)], catch_exceptions=False)


def test_baseline_records_values_cis_n_hashes_and_provenance(out, tmp_path):
    path = tmp_path / "deployed" / "baseline.json"
    r = baseline_cli(out, "--checkpoint", "ckpt-2", "--write", path)
    assert r.exit_code == 0, r.output
    assert "ckpt-2 (step 2" in r.output
    data = json.loads(path.read_text())
    res = results(out)
    mine = res[res.checkpoint == "ckpt-2"]
    assert data["format"] == FORMAT
    assert data["checkpoints"] == {"": {"checkpoint": "ckpt-2", "step": 2,
                                        "content_hash": mine.checkpoint_hash.iloc[0]}}
    assert data["datasets"] == {"heldout": {"kind": "heldout", "n": 8, "domain": "",
                                            "content_hash": mine.dataset_hash.iloc[0]}}
    recorded = data["metrics"]["heldout"]
    assert set(recorded) == set(mine.metric) == {"l1", "ssim", "psnr", "kid"}
    for r_ in mine.itertuples():
        entry = recorded[r_.metric]
        assert entry["status"] == r_.status and entry["n"] == r_.n
        if r_.status == "ok":
            assert entry["value"] == pytest.approx(r_.value, rel=1e-12)
            assert entry["ci_low"] == pytest.approx(r_.ci_low, rel=1e-12)
            assert entry["ci_high"] == pytest.approx(r_.ci_high, rel=1e-12)
            assert entry["ci_low"] <= entry["value"] <= entry["ci_high"]
    assert recorded["kid"]["value"] is None and "weights" in recorded["kid"]["reason"]
    (run,) = data["provenance"]["runs"]
    assert run["image_size"] == SIZE and run["evalkit_version"]
    assert run["tensorflow_version"] and run["run_dir"].endswith("run")
    # Small and stable: re-recording gives the same content apart from the timestamp.
    again = tmp_path / "again.json"
    baseline_cli(out, "--checkpoint", "ckpt-2", "--write", again)
    a, b = json.loads(path.read_text()), json.loads(again.read_text())
    a.pop("created_at"), b.pop("created_at")
    assert a == b
    assert path.stat().st_size < 8000


def test_baseline_of_the_selected_checkpoint(out_copy, tmp_path):  # noqa: F811
    r = baseline_cli(out_copy, "--selected", "--write", tmp_path / "b.json")
    assert r.exit_code == 2 and "run 'evalkit select" in r.output
    (out_copy / "selection.json").write_text(json.dumps(
        {"format": "evalkit-selection/2", "domains": {"": {"checkpoint": "ckpt-1",
                                                           "content_hash": None}}}))
    r = baseline_cli(out_copy, "--selected", "--write", tmp_path / "b.json")
    assert r.exit_code == 0, r.output
    got = json.loads((tmp_path / "b.json").read_text())["checkpoints"]
    assert got[""]["checkpoint"] == "ckpt-1"


def test_baseline_refuses_bad_inputs(out, tmp_path):
    target = tmp_path / "b.json"
    r = baseline_cli(out, "--write", target)
    assert r.exit_code == 2 and "--checkpoint NAME or --selected" in r.output
    r = baseline_cli(out, "--checkpoint", "ckpt-7", "--write", target)
    assert r.exit_code == 2 and "no results for checkpoint 'ckpt-7'" in r.output
    r = baseline_cli(tmp_path / "empty", "--checkpoint", "ckpt-1", "--write", target)
    assert r.exit_code == 2 and "no results in" in r.output
    assert not target.exists()


def test_read_baseline_rejects_what_is_not_a_baseline(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(GateInputError, match="not readable JSON"):
        read_baseline(bad)
    bad.write_text(json.dumps({"checkpoint": "x"}))
    with pytest.raises(GateInputError, match="not an evalkit baseline"):
        read_baseline(bad)
    bad.write_text(json.dumps({"format": FORMAT, "checkpoints": {}, "datasets": [],
                               "metrics": {}}))
    with pytest.raises(GateInputError, match="'datasets' missing or not a dict"):
        read_baseline(bad)
    with pytest.raises(GateInputError, match="evalkit baseline OUT --checkpoint"):
        read_baseline(tmp_path / "absent.json")


def test_baseline_write_dash_is_stdout(out, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    r = baseline_cli(out, "--checkpoint", "ckpt-2", "--write", "-")
    assert r.exit_code == 0, r.output
    assert not (tmp_path / "-").exists()
    data = json.loads(r.stdout)  # stdout is the baseline alone; the summary is on stderr
    assert data["format"] == FORMAT and data["checkpoints"][""]["checkpoint"] == "ckpt-2"
    assert "ckpt-2 (step 2" in r.stderr and "-> stdout" in r.stderr
    baseline_cli(out, "--checkpoint", "ckpt-2", "--write", tmp_path / "b.json")
    on_disk = json.loads((tmp_path / "b.json").read_text())
    assert {k: v for k, v in on_disk.items() if k != "created_at"} == \
        {k: v for k, v in data.items() if k != "created_at"}
