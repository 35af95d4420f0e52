"""The executor seam (issue 14) without Ray: the unit of work never touches the store,
returns outputs when workers cannot see OUT, refuses another evalkit version; --device and
--executor ray errors; the device is recorded and reported."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import evalkit
from evalkit.cli import cli
from tests.conftest import make_ab_folder

SIZE = 32


@pytest.fixture(scope="module")
def small(tmp_path_factory) -> tuple[Path, Path]:
    from tests.seed_reference import save_seed_checkpoint

    base = tmp_path_factory.mktemp("small")
    (base / "run").mkdir()
    save_seed_checkpoint(base / "run", n=2, hidden=4)
    make_ab_folder(base / "heldout", n=3, half=SIZE)
    return base / "run", base / "heldout"


def _unit(small, out: Path, shared: bool, version: str | None = None):
    from evalkit.execute.executors import WorkUnit
    from evalkit.inputs.checkpoints.discover import discover_checkpoints
    from evalkit.inputs.data.pairs import load_pairs
    from evalkit.measure.paired import PairedMetrics

    run, heldout = small
    ds = load_pairs(heldout, size=SIZE)
    ref = discover_checkpoints(run)[0]
    fam = PairedMetrics()
    unit = WorkUnit(ref=ref, domain="", checkpoint_hash=ref.content_hash(),
                    todo=[(ds.name, [fam.name])], reference=ds.name, image_size=SIZE,
                    batch_size=4, feature_extractor=None, device="cpu", out_dir=out,
                    shared_fs=shared, n_families=1,
                    evalkit_version=version or evalkit.__version__)
    return unit, {ds.name: ds}, [fam]


def test_unit_returns_values_and_never_opens_the_store(small, tmp_path):
    from evalkit.execute.executors import evaluate_unit
    from evalkit.inputs.models.runner import RunnerPool

    out = tmp_path / "out"
    unit, datasets, fams = _unit(small, out, shared=True)
    res = evaluate_unit(unit, datasets, fams, RunnerPool())
    assert res.error is None and res.device == "cpu" and res.architecture
    (ev,) = res.evaluations
    assert {v.metric for v in ev.values} == set(fams[0].metrics)
    assert all(v.flags["device"] == "cpu" for v in ev.values)
    assert ev.outputs is None  # shared filesystem: the unit wrote the PNGs itself
    assert len(list((out / ev.outputs_dir).glob("*.png"))) == 3
    assert not (out / "results.sqlite").exists()


def test_unit_without_shared_fs_returns_the_outputs_and_writes_nothing(small, tmp_path):
    from evalkit.execute.executors import evaluate_unit
    from evalkit.inputs.models.runner import RunnerPool

    out = tmp_path / "out"
    unit, datasets, fams = _unit(small, out, shared=False)
    res = evaluate_unit(unit, datasets, fams, RunnerPool())
    (ev,) = res.evaluations
    assert ev.outputs is not None and ev.outputs.shape == (3, SIZE, SIZE, 3)
    assert ev.outputs.dtype == np.uint8 and ev.raw_l1 is not None
    assert not out.exists()


def test_unit_refuses_another_evalkit_version(small, tmp_path):
    from evalkit.execute.executors import evaluate_unit
    from evalkit.inputs.models.runner import RunnerPool

    unit, datasets, fams = _unit(small, tmp_path / "out", shared=True, version="0.0.0-other")
    res = evaluate_unit(unit, datasets, fams, RunnerPool())
    assert res.version_mismatch and "0.0.0-other" in res.version_mismatch
    assert res.evaluations == [] and not (tmp_path / "out").exists()


def _run(small, out, *extra):
    run, heldout = small
    return CliRunner().invoke(cli, ["run", str(run), "--heldout", str(heldout), "--out",
                                    str(out), "--image-size", str(SIZE), "--quiet",
                                    "--no-report", *extra], catch_exceptions=False)


def test_device_is_recorded_with_every_value_and_in_the_run(small, tmp_path):
    r = _run(small, tmp_path / "out", "--device", "cpu")
    assert r.exit_code == 0, r.output
    df = evalkit.load_results(tmp_path / "out")
    assert {json.loads(f)["device"] for f in df["flags"]} == {"cpu"}
    from evalkit.store.results import Store

    with Store(tmp_path / "out", create=False) as store:
        opts = json.loads(store.runs().options.iloc[-1])
    assert opts["executor"] == "inprocess" and opts["device"] == "cpu"


def test_device_flag_is_shown_in_the_report(small, tmp_path):
    r = _run(small, tmp_path / "out")
    assert r.exit_code == 0, r.output
    from evalkit.present.report import render_report

    html = Path(render_report(tmp_path / "out")).read_text()
    assert "device: cpu" in html


def test_device_gpu_without_a_gpu_exits_2(small, tmp_path):
    from evalkit.execute.device import visible_gpus

    if visible_gpus():
        pytest.skip("a GPU is visible here")
    r = _run(small, tmp_path / "out", "--device", "gpu")
    assert r.exit_code == 2
    assert "--device gpu" in r.output and "no GPU" in r.output


def test_executor_ray_without_ray_exits_2_saying_how_to_install(small, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # as if not installed
    r = _run(small, tmp_path / "out", "--executor", "ray")
    assert r.exit_code == 2
    assert "pip install 'evalkit[ray]'" in r.output


def test_ray_options_need_executor_ray(small, tmp_path):
    r = _run(small, tmp_path / "out", "--address", "auto")
    assert r.exit_code == 2 and "--executor ray" in r.output


def test_compare_served_counts_levels_and_share():
    from evalkit.execute.device import compare_served

    a = np.zeros((2, 4, 4, 3), np.uint8)
    b = a.copy()
    b[0, 0, 0, 0] = 3
    b[1, 2, 2, 1] = 255
    d = compare_served(a, b)
    assert d.max_levels == 255 and d.share == pytest.approx(2 / a.size)
    assert compare_served(a, a).max_levels == 0


def test_without_shared_fs_the_driver_writes_outputs_and_ships_cached_ones(small, tmp_path,
                                                                          monkeypatch):
    """Workers that cannot see OUT: they return the outputs and the driver writes the PNGs;
    a later metric-only pass gets the cached outputs from the driver (no generation)."""
    from evalkit.execute.engine import RunOptions, evaluate_run
    from evalkit.execute.executors import InProcess
    from evalkit.inputs.data.pairs import load_pairs
    from evalkit.measure.adherence import AdherenceMetrics
    from evalkit.measure.paired import PairedMetrics

    class NotShared(InProcess):
        shared_fs = False

    run, heldout = small
    ds = [load_pairs(heldout, size=SIZE)]
    shared = evaluate_run(run, tmp_path / "a", ds, RunOptions(image_size=SIZE, progress=False),
                          families=[PairedMetrics()])
    opts = RunOptions(image_size=SIZE, progress=False, executor=NotShared())
    apart = evaluate_run(run, tmp_path / "b", ds, opts, families=[PairedMetrics()])
    assert [c.status for c in apart.checkpoints] == [c.status for c in shared.checkpoints]
    ra, rb = (evalkit.load_results(tmp_path / o).drop(columns=["flags"]) for o in "ab")
    assert ra.equals(rb)
    manifests = {o: sorted(p.read_text() for p in (tmp_path / o).glob("outputs/*/*/manifest.json"))
                 for o in "ab"}
    assert manifests["a"] == manifests["b"] and len(manifests["b"]) == 2

    calls = []
    import evalkit.execute.executors as ex

    real = ex.generate
    monkeypatch.setattr(ex, "generate", lambda *a, **k: calls.append(1) or real(*a, **k))
    more = evaluate_run(run, tmp_path / "b", ds, opts,
                        families=[PairedMetrics(), AdherenceMetrics()])
    assert [c.status for c in more.checkpoints] == ["evaluated", "evaluated"]
    assert calls == []  # the adherence pass used the outputs the driver shipped
    res = evalkit.load_results(tmp_path / "b")
    assert {"adherence_f1", "ssim"} <= set(res.metric)
