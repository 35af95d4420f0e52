"""`evalkit run` end to end on seed-format runs written by independent code."""

from __future__ import annotations

import json
import sqlite3

import numpy as np
import pytest
from click.testing import CliRunner
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

import evalkit
from evalkit.cli import cli
from evalkit.execute.engine import RunOptions, evaluate_run
from evalkit.inputs.data.pairs import load_pairs
from evalkit.measure.paired import PairedMetrics
from tests.conftest import make_ab_folder
from tests.seed_reference import save_seed_checkpoint, serve_output, serve_sketch

SIZE = 32


def run_cli(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """A seed-format run (3 checkpoints) evaluated once by the CLI."""
    d = tmp_path_factory.mktemp("e2e")
    heldout = make_ab_folder(d / "heldout", n=6)
    (d / "run").mkdir()
    gens = save_seed_checkpoint(d / "run", n=3, hidden=4)
    r = run_cli("run", str(d / "run"), "--heldout", str(heldout), "--out", str(d / "out"),
                "--image-size", str(SIZE), "--no-report", "--quiet")
    return d, gens, r


def test_metrics_agree_with_independent_serving_implementation(finished):
    d, gens, r = finished
    assert r.exit_code == 0, r.output
    df = evalkit.load_results(d / "out")
    assert set(df.checkpoint) == {"ckpt-1", "ckpt-2", "ckpt-3"}
    files = sorted((d / "heldout").glob("*.png"))
    for name, gen in zip(["ckpt-1", "ckpt-2", "ckpt-3"], gens, strict=True):
        l1s, psnrs, ssims = [], [], []
        for f in files:
            from PIL import Image
            with Image.open(f) as im:
                w, h = im.size
                a, b = im.crop((0, 0, w // 2, h)), im.crop((w // 2, 0, w, h))
                x = serve_sketch(a, SIZE)[None, ..., None]
                target = np.asarray(b.convert("RGB").resize((SIZE, SIZE)))
            y = gen(x).numpy()[0]
            served = serve_output(y)
            l1s.append(np.mean(np.abs(y - (target / 127.5 - 1))))
            psnrs.append(peak_signal_noise_ratio(target, served, data_range=255))
            ssims.append(structural_similarity(target, served, gaussian_weights=True, sigma=1.5,
                                               use_sample_covariance=False, data_range=255,
                                               channel_axis=-1))
        got = df[df.checkpoint == name].set_index("metric").value
        assert got["l1"] == pytest.approx(np.mean(l1s), abs=1e-4)
        assert got["psnr"] == pytest.approx(np.mean(psnrs), abs=1e-3)
        assert got["ssim"] == pytest.approx(np.mean(ssims), abs=1e-3)
        assert (df[df.checkpoint == name].n == 6).all()


def test_outputs_cached_as_png_keyed_by_hashes(finished):
    d, _, _ = finished
    con = sqlite3.connect(d / "out" / "results.sqlite")
    dirs = [r[0] for r in con.execute("SELECT outputs_dir FROM evaluations")]
    assert len(set(dirs)) == 3
    manifest = json.loads((d / "out" / dirs[0] / "manifest.json").read_text())
    assert len(manifest["files"]) == 6 and all(f.endswith(".png") for f in manifest["files"])


def test_results_command_csv_and_json(finished):
    d, _, _ = finished
    r = run_cli("results", str(d / "out"), "--format", "csv")
    header = r.output.splitlines()[0].split(",")
    assert header[:1] == ["checkpoint"] and {"dataset", "metric", "value", "n"} <= set(header)
    rows = json.loads(run_cli("results", str(d / "out"), "--format", "json").output)
    metrics = {row["metric"] for row in rows}
    assert {"l1", "ssim", "psnr"} <= metrics
    assert len(rows) == 3 * len(metrics)  # one row per checkpoint and metric
    assert len(r.output.strip().splitlines()) == 1 + len(rows)


def test_results_on_missing_folder_is_usage_error(tmp_path):
    r = run_cli("results", str(tmp_path / "nothing"))
    assert r.exit_code == 2 and "evalkit run" in r.output


def test_truncated_checkpoint_fails_alone_and_rerun_adds_nothing(tmp_path):
    heldout = make_ab_folder(tmp_path / "heldout", n=4)
    run = tmp_path / "run"
    run.mkdir()
    save_seed_checkpoint(run, n=3, hidden=4)
    data = run / "ckpt-2.data-00000-of-00001"
    data.write_bytes(data.read_bytes()[: data.stat().st_size // 2])
    args = ["run", str(run), "--heldout", str(heldout), "--out", str(tmp_path / "out"),
            "--image-size", str(SIZE), "--no-report", "--quiet"]
    r = run_cli(*args)
    assert r.exit_code == 1
    assert "ckpt-2" in r.output and "failed" in r.output
    df = evalkit.load_results(tmp_path / "out")
    assert set(df.checkpoint) == {"ckpt-1", "ckpt-3"}
    con = sqlite3.connect(tmp_path / "out" / "results.sqlite")
    status, error = con.execute(
        "SELECT status, error FROM checkpoints WHERE name='ckpt-2'").fetchone()
    assert status == "failed" and "\n" not in error and error
    n_rows = con.execute("SELECT COUNT(*) FROM metrics").fetchone()[0]
    n_samples = con.execute("SELECT COUNT(*) FROM sample_metrics").fetchone()[0]
    assert run_cli(*args).exit_code == 1
    assert con.execute("SELECT COUNT(*) FROM metrics").fetchone()[0] == n_rows
    assert con.execute("SELECT COUNT(*) FROM sample_metrics").fetchone()[0] == n_samples


def test_wrong_architecture_and_missing_shard(tmp_path):
    from evalkit.core.tf import tf
    from evalkit.inputs.models import resnet_generator

    heldout = make_ab_folder(tmp_path / "heldout", n=2)
    run = tmp_path / "run"
    save_seed_checkpoint(run / "good", n=1, hidden=4)
    tf.train.Checkpoint(discriminator=resnet_generator(hidden_channels=2)).save(
        str(run / "other" / "ckpt"))
    save_seed_checkpoint(run / "noshard", n=1, hidden=4)
    (run / "noshard" / "ckpt-1.data-00000-of-00001").unlink()
    ds = [load_pairs(heldout, size=SIZE)]
    summary = evaluate_run(run, tmp_path / "out", ds, RunOptions(image_size=SIZE, progress=False))
    outcome = {c.name: c for c in summary.checkpoints}
    assert outcome["good/ckpt-1"].status == "evaluated"
    assert "not a seed ResNet generator" in outcome["other/ckpt-1"].error
    assert "missing" in outcome["noshard/ckpt-1"].error
    assert summary.exit_code == 1


class Interrupt(BaseException):
    """Stands in for a kill (KeyboardInterrupt / SIGTERM) in the middle of a run."""


class DyingMetrics(PairedMetrics):
    def __init__(self, die_on: str):
        self.die_on = die_on

    def compute(self, ctx):
        if ctx.checkpoint == self.die_on:
            raise Interrupt
        return super().compute(ctx)


def test_killed_run_resumes_without_loss_or_double_counting(tmp_path, monkeypatch):
    import evalkit.execute.generate as gen_mod

    heldout = make_ab_folder(tmp_path / "heldout", n=3)
    run = tmp_path / "run"
    run.mkdir()
    save_seed_checkpoint(run, n=3, hidden=4)
    ds = [load_pairs(heldout, size=SIZE)]
    opts = RunOptions(image_size=SIZE, progress=False)
    with pytest.raises(Interrupt):
        evaluate_run(run, tmp_path / "out", ds, opts, families=[DyingMetrics("ckpt-2")])
    partial = evalkit.load_results(tmp_path / "out")
    assert set(partial.checkpoint) == {"ckpt-1"}

    calls = []
    real = gen_mod.generate
    monkeypatch.setattr("evalkit.execute.executors.generate",
                        lambda *a, **k: calls.append(a[1].name) or real(*a, **k))
    summary = evaluate_run(run, tmp_path / "out", ds, opts, families=[PairedMetrics()])
    assert [c.status for c in summary.checkpoints] == ["cached", "evaluated", "evaluated"]
    # ckpt-2's outputs were cached before the kill: only ckpt-3 runs the generator again
    assert calls == ["heldout"]
    df = evalkit.load_results(tmp_path / "out")
    assert len(df) == 9 and not df.duplicated(["checkpoint", "dataset", "metric"]).any()
    again = evaluate_run(run, tmp_path / "out", ds, opts, families=[PairedMetrics()])
    assert [c.status for c in again.checkpoints] == ["cached"] * 3
    assert len(evalkit.load_results(tmp_path / "out")) == 9


def test_changed_checkpoint_is_reevaluated(tmp_path):
    heldout = make_ab_folder(tmp_path / "heldout", n=2)
    run = tmp_path / "run"
    run.mkdir()
    save_seed_checkpoint(run, n=1, hidden=4, seed=0)
    ds = [load_pairs(heldout, size=SIZE)]
    opts = RunOptions(image_size=SIZE, progress=False)
    evaluate_run(run, tmp_path / "out", ds, opts)
    before = evalkit.load_results(tmp_path / "out").set_index("metric").value
    for f in run.glob("ckpt-1.*"):
        f.unlink()
    (run / "checkpoint").unlink()
    save_seed_checkpoint(run, n=1, hidden=4, seed=7)
    s = evaluate_run(run, tmp_path / "out", ds, opts)
    assert s.checkpoints[0].status == "evaluated"
    after = evalkit.load_results(tmp_path / "out").set_index("metric").value
    assert after["l1"] != before["l1"]


def test_usage_errors_exit_2(tmp_path):
    (tmp_path / "run").mkdir()
    heldout = make_ab_folder(tmp_path / "heldout", n=1)
    r = run_cli("run", str(tmp_path / "run"), "--heldout", str(heldout), "--out",
                str(tmp_path / "o"), "--no-report")
    assert r.exit_code == 2 and "no checkpoints" in r.output
    r = run_cli("run", str(tmp_path / "run"), "--out", str(tmp_path / "o"))
    assert r.exit_code == 2 and "--heldout" in r.output


def test_config_names_heldout(tmp_path):
    heldout = make_ab_folder(tmp_path / "data" / "heldout", n=2)
    run = tmp_path / "checkpoints" / "car"
    run.mkdir(parents=True)
    save_seed_checkpoint(run, n=1, hidden=4)
    (tmp_path / "evalkit.toml").write_text(
        f'[run]\nheldout = "data/heldout"\nimage_size = {SIZE}\n')
    r = run_cli("run", str(run), "--no-report", "--quiet")
    assert r.exit_code == 0, r.output
    df = evalkit.load_results(run / "evalkit-out")
    assert set(df.dataset) == {"heldout"} and (df.n == 2).all()
    assert heldout.exists()
    (tmp_path / "evalkit.toml").write_text('[run]\nheldout = 3\n')
    r = run_cli("run", str(run), "--no-report")
    assert r.exit_code == 2 and "evalkit.toml:2" in r.output


class FlakyWeights:
    """A family whose metric is skipped (retryable) until its 'weights' appear."""

    name, metrics = "flaky", ("flaky",)

    def __init__(self, present: bool):
        self.present = present
        self.calls = 0

    def available(self) -> bool:
        return self.present

    def compute(self, ctx):
        from evalkit.measure.base import MetricValue

        self.calls += 1
        if not self.present:
            return [MetricValue.skipped("flaky", "weights file w.pth not found", retryable=True)]
        return [MetricValue(metric="flaky", value=1.0, n=len(ctx.dataset))]


class CountingPaired(PairedMetrics):
    calls = 0

    def compute(self, ctx):
        type(self).calls += 1
        return super().compute(ctx)


def test_retryable_skips_are_retried_only_when_their_cause_is_gone(tmp_path):
    heldout = make_ab_folder(tmp_path / "heldout", n=2)
    run = tmp_path / "run"
    run.mkdir()
    save_seed_checkpoint(run, n=2, hidden=4)
    ds = [load_pairs(heldout, size=SIZE)]
    opts = RunOptions(image_size=SIZE, progress=False)
    first = evaluate_run(run, tmp_path / "out", ds, opts,
                         families=[PairedMetrics(), FlakyWeights(False)])
    assert first.notes == ["weights file w.pth not found"]
    # still missing: nothing is recomputed (the skip stands), and it is reported again
    paired, flaky = CountingPaired(), FlakyWeights(False)
    again = evaluate_run(run, tmp_path / "out", ds, opts, families=[paired, flaky])
    assert [c.status for c in again.checkpoints] == ["cached", "cached"]
    assert again.notes == ["weights file w.pth not found"]
    assert CountingPaired.calls == 0 and flaky.calls == 0
    # the weights appear: only that family runs, from the cached outputs
    before = evalkit.load_results(tmp_path / "out").set_index(["checkpoint", "metric"])
    flaky = FlakyWeights(True)
    fixed = evaluate_run(run, tmp_path / "out", ds, opts, families=[paired, flaky])
    assert [c.status for c in fixed.checkpoints] == ["evaluated", "evaluated"]
    assert fixed.notes == [] and flaky.calls == 2 and CountingPaired.calls == 0
    df = evalkit.load_results(tmp_path / "out")
    assert (df[df.metric == "flaky"].status == "ok").all()
    after = df.set_index(["checkpoint", "metric"])
    assert after.loc[before.index.drop([i for i in before.index if i[1] == "flaky"]), "value"] \
        .equals(before.drop([i for i in before.index if i[1] == "flaky"])["value"])
    done = evaluate_run(run, tmp_path / "out", ds, opts,
                        families=[PairedMetrics(), FlakyWeights(True)])
    assert [c.status for c in done.checkpoints] == ["cached", "cached"]
