"""Results exported to TensorBoard and MLflow, read back with each tool's own reader."""

from __future__ import annotations

import importlib.util
import math
import shutil
import sqlite3
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import evalkit
from evalkit.cli import cli
from tests.conftest import make_ab_folder

SIZE = 32
DOMAINS = {"car": 2, "shoe": 3}  # domain -> checkpoints


def invoke(*args):
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture(scope="module")
def evaluated(tmp_path_factory) -> tuple[Path, Path]:
    """Two domains evaluated by `run --tensorboard`; returns (OUT, LOGDIR)."""
    from tests.seed_reference import save_seed_checkpoint

    base = tmp_path_factory.mktemp("export")
    for k, (d, n) in enumerate(DOMAINS.items()):
        (base / "checkpoints" / d).mkdir(parents=True)
        save_seed_checkpoint(base / "checkpoints" / d, n=n, hidden=4, seed=10 * k)
        make_ab_folder(base / "heldout" / d, n=4 + k, half=SIZE, seed=k)
    r = invoke("run", base / "checkpoints", "--heldout", base / "heldout", "--out",
               base / "out", "--image-size", SIZE, "--quiet", "--tensorboard", base / "tb")
    assert r.exit_code == 0, r.output
    if importlib.util.find_spec("tensorboard") is not None:
        assert "tensorboard: " in r.output
    return base / "out", base / "tb"


def _ok_rows(out: Path):
    df = evalkit.load_results(out)
    df = df[(df.status == "ok") & df.value.map(lambda v: v is not None and math.isfinite(v))]
    assert len(df) > 0
    return df


def _accumulator(logdir: Path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(logdir), size_guidance={"scalars": 0, "images": 0})
    acc.Reload()
    return acc


def test_tensorboard_holds_every_stored_value_at_its_step_once(evaluated):
    pytest.importorskip("tensorboard")
    out, logdir = evaluated
    r = invoke("export", out, "--tensorboard", logdir)  # a re-export: nothing new
    assert r.exit_code == 0, r.output
    assert "0 scalars and 0 images written" in r.output
    acc = _accumulator(logdir)
    scalars = set(acc.Tags()["scalars"])
    rows = _ok_rows(out)
    for row in rows.itertuples():
        base = f"evalkit/{row.domain}/heldout/{row.metric}"
        for t, v in ((base, row.value), (base + "/ci_low", row.ci_low),
                     (base + "/ci_high", row.ci_high)):
            if v is None or not math.isfinite(v):
                continue
            events = acc.Scalars(t)
            # one point per checkpoint of the domain: no duplicates after two writes
            assert sorted(e.step for e in events) == list(range(1, DOMAINS[row.domain] + 1))
            got = [e.value for e in events if e.step == row.step]
            assert got == [pytest.approx(np.float32(v), rel=1e-6)], (t, row.step)
            scalars.discard(t)
    assert not scalars  # nothing but stored values
    for d, n in DOMAINS.items():
        images = acc.Images(f"evalkit/{d}/heldout/grid")
        assert [e.step for e in images] == list(range(1, n + 1))
        # 4 samples wide; input, target and output rows
        assert (images[0].width, images[0].height) == (4 * SIZE, 3 * SIZE)


def test_tensorboard_changed_value_replaces_its_point_and_leaves_training_logs(evaluated,
                                                                              tmp_path):
    pytest.importorskip("tensorboard")
    from torch.utils.tensorboard import SummaryWriter

    out = tmp_path / "out"
    shutil.copytree(evaluated[0], out)
    logdir = tmp_path / "train-logs"
    w = SummaryWriter(str(logdir))  # the training's own curve in the same run
    for step in range(1, 4):
        w.add_scalar("loss", 1.0 / step, step)
    w.close()
    assert invoke("export", out, "--tensorboard", logdir, "--no-images").exit_code == 0
    con = sqlite3.connect(out / "results.sqlite")
    with con:  # a re-evaluation changed one value
        con.execute("UPDATE metrics SET value = 0.123 WHERE checkpoint='shoe/ckpt-2' AND "
                    "metric='ssim'")
    con.close()
    r = invoke("export", out, "--tensorboard", logdir, "--no-images")
    assert r.exit_code == 0 and "replaced" in r.output, r.output
    acc = _accumulator(logdir)
    ssim = [(e.step, e.value) for e in acc.Scalars("evalkit/shoe/heldout/ssim")]
    assert [s for s, _ in ssim] == [1, 2, 3]
    assert dict(ssim)[2] == pytest.approx(0.123)
    assert [e.step for e in acc.Scalars("loss")] == [1, 2, 3]
    assert "evalkit/car/heldout/grid" not in acc.Tags()["images"]
    (logdir / ".evalkit-tensorboard.json").unlink()  # the index lost: still no duplicates
    assert invoke("export", out, "--tensorboard", logdir, "--no-images").exit_code == 0
    steps = [e.step for e in _accumulator(logdir).Scalars("evalkit/shoe/heldout/ssim")]
    assert steps == [1, 2, 3]


def test_mlflow_run_per_domain_read_back_with_mlflows_client(evaluated, tmp_path):
    mlflow = pytest.importorskip("mlflow", reason="MLflow export is the optional extra "
                                                  "evalkit[mlflow]")
    out = evaluated[0]
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    for _ in range(2):  # exported twice: nothing logged twice
        r = invoke("export", out, "--mlflow", "--mlflow-uri", uri, "--experiment", "ek")
        assert r.exit_code == 0, r.output
    assert "0 metric points logged" in r.output
    client = mlflow.MlflowClient(tracking_uri=uri)
    exp = client.get_experiment_by_name("ek")
    runs = {run.data.tags["evalkit.domain"]: run for run in client.search_runs(
        [exp.experiment_id])}
    assert set(runs) == set(DOMAINS)
    rows = _ok_rows(out)
    sel = evalkit.decide.selection.select(out, write=False)
    for d, run in runs.items():
        assert run.info.run_name == d and run.info.status == "FINISHED"
        mine = rows[rows.domain == d]
        for metric, group in mine.groupby("metric"):
            history = client.get_metric_history(run.info.run_id, f"heldout/{metric}")
            assert sorted((m.step, m.value) for m in history) == sorted(
                zip(group.step.astype(int), group.value, strict=True))
        ci = client.get_metric_history(run.info.run_id, "heldout/ssim/ci_low")
        assert len(ci) == DOMAINS[d]
        assert run.data.tags["evalkit.selected.checkpoint"] == sel["domains"][d]["checkpoint"]
        assert run.data.params["image_size"] == str(SIZE)
        artifacts = {a.path for a in client.list_artifacts(run.info.run_id, "report")}
        assert "report/index.html" in artifacts
        assert "selection.json" in {a.path for a in client.list_artifacts(run.info.run_id)}


def test_mlflow_without_uri_says_where_it_writes(evaluated, tmp_path, monkeypatch):
    pytest.importorskip("mlflow", reason="MLflow export is the optional extra evalkit[mlflow]")
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.chdir(tmp_path)
    r = invoke("export", evaluated[0], "--mlflow", "--experiment", "ek")
    assert r.exit_code == 0, r.output
    # it names the place (absolute), says it is MLflow's default, and how to choose another
    assert (f"mlflow: writing to sqlite:///{tmp_path / 'mlflow.db'} (MLflow's default, in "
            "the current folder; pass --mlflow-uri URI to write elsewhere)") in r.output
    assert (tmp_path / "mlflow.db").is_file()  # ... and that is where it wrote
    art = tmp_path / "mlartifacts" / "ek"  # beside the database, as for any sqlite URI
    assert f"artifacts in {art.as_uri()}" in r.output and any(art.rglob("index.html"))
    assert not (tmp_path / "mlruns").exists()
    uri = f"sqlite:///{tmp_path / 'other.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    r = invoke("export", evaluated[0], "--mlflow", "--experiment", "ek")
    assert r.exit_code == 0, r.output
    assert f"mlflow: writing to {uri} ($MLFLOW_TRACKING_URI; pass --mlflow-uri" in r.output


def test_export_needs_a_target_and_results(tmp_path, evaluated):
    r = CliRunner().invoke(cli, ["export", str(evaluated[0])])
    assert r.exit_code == 2 and "--tensorboard" in r.output
    r = CliRunner().invoke(cli, ["export", str(tmp_path), "--tensorboard", str(tmp_path / "t")])
    assert r.exit_code == 2 and "no results" in r.output
