"""bf16 screening (--precision bf16): refused without hardware support; where run, a
separate evaluation identity (cache key, metric setting, flag)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from evalkit.cli import cli
from evalkit.execute import precision
from evalkit.store.results import Store
from tests.conftest import make_ab_folder


@pytest.fixture
def small_run(tmp_path):
    from tests.seed_reference import save_seed_checkpoint

    run = tmp_path / "run"
    run.mkdir()
    save_seed_checkpoint(run, n=2, hidden=4)
    return run, make_ab_folder(tmp_path / "heldout", n=4, half=32)


def test_unknown_precision_and_cache_keys():
    with pytest.raises(ValueError, match="unknown precision"):
        precision.check_precision("fp8")
    assert precision.cache_key("ab" * 32, "fp32") == "ab" * 32
    assert precision.cache_key("ab" * 32, "bf16") != "ab" * 32


def test_bf16_refused_with_exit_2_without_hardware(small_run, tmp_path, monkeypatch):
    monkeypatch.setattr(precision, "bf16_unsupported", lambda: "no bfloat16 here (test)")
    run, heldout = small_run
    r = CliRunner().invoke(cli, ["run", str(run), "--heldout", str(heldout), "--out",
                                 str(tmp_path / "out"), "--image-size", "32",
                                 "--precision", "bf16", "--quiet", "--no-report"])
    assert r.exit_code == 2 and "bf16 refused" in r.output and "no bfloat16 here" in r.output
    assert not (tmp_path / "out" / "results.sqlite").exists()


def test_bf16_runner_is_close_to_fp32_but_not_equal():
    from evalkit.inputs.checkpoints.load import Architecture
    from evalkit.inputs.models.runner import Runner

    a, b = Runner(Architecture(1, 3, 4), 32), Runner(Architecture(1, 3, 4), 32, "bf16")
    for va, vb in zip(a.model.weights, b.model.weights, strict=True):
        assert vb.dtype.name == "float32"  # weights stay fp32
        vb.assign(va)
    x = np.random.default_rng(0).random((2, 32, 32, 1)).astype(np.float32)
    ya, yb = a.run(x), b.run(x)
    assert yb.dtype == np.float32
    diff = np.abs(ya - yb).max()
    assert 0 < diff < 0.2


def test_bf16_values_are_flagged_and_never_mixed_with_fp32(small_run, tmp_path, monkeypatch):
    monkeypatch.setattr(precision, "bf16_unsupported", lambda: None)  # emulated here
    run, heldout = small_run
    out = tmp_path / "out"
    base = ["run", str(run), "--heldout", str(heldout), "--out", str(out), "--image-size",
            "32", "--quiet", "--no-report"]

    def l1_rows():
        with Store(out, create=False) as s:
            res = s.results()
        return res[res["metric"] == "l1"].sort_values("checkpoint")

    assert CliRunner().invoke(cli, base).exit_code == 0
    fp32 = l1_rows()
    assert not any("precision" in json.loads(f or "{}") for f in fp32["flags"])
    r = CliRunner().invoke(cli, base + ["--precision", "bf16"])
    assert r.exit_code == 0, r.output
    bf16 = l1_rows()
    assert all(json.loads(f)["precision"] == "bf16" for f in bf16["flags"])
    assert not np.allclose(fp32["value"].to_numpy(), bf16["value"].to_numpy(), atol=0, rtol=0)
    # back to fp32: recomputed from the fp32 outputs cache, same values as the first run
    assert CliRunner().invoke(cli, base).exit_code == 0
    again = l1_rows()
    assert np.array_equal(again["value"].to_numpy(), fp32["value"].to_numpy())
    assert not any("precision" in json.loads(f or "{}") for f in again["flags"])


def _cpu_flags() -> set[str]:
    from pathlib import Path

    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def test_bf16_runs_end_to_end_where_the_cpu_has_it(small_run, tmp_path):
    """No emulation: on a CPU with avx512_bf16/amx_bf16, evalkit accepts bf16 by itself."""
    if not _cpu_flags() & {"avx512_bf16", "amx_bf16"}:
        pytest.skip("this CPU has no avx512_bf16/amx_bf16 (bf16 refusal tested above)")
    assert precision.bf16_unsupported() is None
    run, heldout = small_run
    out = tmp_path / "out"
    r = CliRunner().invoke(cli, ["run", str(run), "--heldout", str(heldout), "--out", str(out),
                                 "--image-size", "32", "--precision", "bf16", "--quiet",
                                 "--no-report"])
    assert r.exit_code == 0, r.output
    with Store(out, create=False) as s:
        res = s.results()
    assert len(res) and all(json.loads(f)["precision"] == "bf16" for f in res["flags"])
