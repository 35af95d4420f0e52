"""`evalkit select`: selection.json, the explanation, and the seed-layout export."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from PIL import Image

from evalkit.cli import cli
from evalkit.decide.ranking.rank import RankingConfig, rank_checkpoints
from evalkit.decide.selection import SelectionError, build_selection, select
from evalkit.present.deploy import export_checkpoint
from evalkit.store.results import Store
from tests.conftest import make_ab_folder

SIZE = 32


@pytest.fixture(scope="module")
def evaluated(tmp_path_factory):
    """A seed-format run (3 checkpoints, written by independent code) evaluated once."""
    from evalkit.execute.engine import RunOptions, evaluate_run
    from evalkit.inputs.data.pairs import load_pairs
    from tests.seed_reference import save_seed_checkpoint

    d = tmp_path_factory.mktemp("select")
    heldout = make_ab_folder(d / "heldout", n=6)
    (d / "run").mkdir()
    save_seed_checkpoint(d / "run", n=3, hidden=4)
    ds = load_pairs(heldout, size=SIZE)
    summary = evaluate_run(d / "run", d / "out", [ds], RunOptions(image_size=SIZE,
                                                                 progress=False),
                           log=lambda s: None)
    assert summary.exit_code == 0
    return d, ds


def test_selection_file_names_the_ranking_winner_with_its_hash_and_metrics(evaluated):
    d, _ = evaluated
    sel = select(d / "out")["domains"][""]
    on_disk = json.loads((d / "out" / "selection.json").read_text())
    assert on_disk["domains"][""]["checkpoint"] == sel["checkpoint"]
    with Store(d / "out", create=False) as store:
        ck = store.checkpoints().set_index("name")
        res = store.results()
    assert sel["content_hash"] == ck.loc[sel["checkpoint"], "content_hash"]
    assert sel["path"] == ck.loc[sel["checkpoint"], "path"]
    mine = res[(res.checkpoint == sel["checkpoint"]) & (res.metric == "l1")]
    assert sel["metrics"]["heldout"]["l1"]["value"] == pytest.approx(float(mine.value.iloc[0]))
    assert sel["runner_up"]["checkpoint"] != sel["checkpoint"]
    assert sel["runner_up"]["score"] >= sel["score"]
    assert 0 <= sel["stability"]["p_first"] <= 1 and sel["stability"]["bootstrap"] == 1000
    assert {c["metric"] for c in sel["rule"]["counted"]} >= {"l1", "ssim"}
    assert sum(c["weight"] for c in sel["rule"]["counted"]) == pytest.approx(1.0)
    assert sel["checkpoint"] in sel["explanation"] and "bootstrap" in sel["explanation"]
    # head to head (the default rule): the winner's direct wins are stated
    others = sel["n_candidates"] - 1
    wins = {r["checkpoint"]: r["wins"] for r in sel["ranking"]}
    assert sel["wins"] == wins[sel["checkpoint"]] and 0 <= sel["wins"] <= others
    assert f"of the {others} other(s) directly" in sel["explanation"]
    assert sel["rule"]["config"]["method_key"] == "pairwise" and "Schulze" in sel["rule"]["text"]


def test_selection_is_reproducible(evaluated):
    d, _ = evaluated
    a, b = select(d / "out", write=False), select(d / "out", write=False)
    a.pop("created_at"), b.pop("created_at")
    assert a == b


def test_export_restores_in_a_seed_layout_generator_and_reproduces_outputs(evaluated, tmp_path):
    """The exported ckpt-1 restores into an independently built seed-layout generator
    (different initial weights) that reproduces the selected checkpoint's cached outputs."""
    from evalkit.core.tf import tf
    from tests.seed_reference import SeedLikeGenerator, serve_output

    d, ds = evaluated
    sel = select(d / "out")["domains"][""]
    dest = export_checkpoint(sel, tmp_path / "deploy")
    names = sorted(p.name for p in dest.iterdir())
    assert names == ["checkpoint", "ckpt-1.data-00000-of-00001", "ckpt-1.index",
                     "selection.json"]
    assert (dest / "checkpoint").read_text() == ('model_checkpoint_path: "ckpt-1"\n'
                                                 'all_model_checkpoint_paths: "ckpt-1"\n')
    assert tf.train.latest_checkpoint(str(dest)) == str(dest / "ckpt-1")

    g = SeedLikeGenerator(hidden=4, seed=1234)  # weights differ from every checkpoint
    status = tf.train.Checkpoint(generator=g).restore(str(dest / "ckpt-1"))
    status.assert_existing_objects_matched()
    served = serve_output(g(ds.inputs).numpy())

    with Store(d / "out", create=False) as store:
        ev = store.evaluations()
    folder = d / "out" / ev[ev.checkpoint == sel["checkpoint"]].outputs_dir.iloc[0]
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["ids"] == ds.ids
    cached = np.stack([np.asarray(Image.open(folder / f).convert("RGB"))
                       for f in manifest["files"]])
    assert served.shape == cached.shape
    assert np.array_equal(served, cached)
    # ... and they are the selected checkpoint's outputs, not any checkpoint's
    others = ev[ev.checkpoint != sel["checkpoint"]].outputs_dir
    for o in others:
        m = json.loads((d / "out" / o / "manifest.json").read_text())
        other = np.stack([np.asarray(Image.open(d / "out" / o / f).convert("RGB"))
                          for f in m["files"]])
        assert not np.array_equal(served, other)


def test_export_refuses_changed_source_and_non_empty_destination(evaluated, tmp_path):
    d, _ = evaluated
    sel = select(d / "out", write=False)["domains"][""]
    export_checkpoint(sel, tmp_path / "a")
    with pytest.raises(SelectionError, match="not empty"):
        export_checkpoint(sel, tmp_path / "a")
    export_checkpoint(sel, tmp_path / "a", force=True)  # replaces its ckpt files

    copy = tmp_path / "copy"
    shutil.copytree(d / "run", copy)
    prefix = copy / Path(sel["path"]).name
    with open(prefix.with_name(prefix.name + ".data-00000-of-00001"), "ab") as f:
        f.write(b"\0")
    with pytest.raises(SelectionError, match="changed after evaluation"):
        export_checkpoint({**sel, "path": str(prefix)}, tmp_path / "b")
    assert not (tmp_path / "b").exists()


def test_select_cli_prints_explanation_and_exports(evaluated, tmp_path):
    d, _ = evaluated
    r = CliRunner().invoke(cli, ["select", str(d / "out"), "--export", str(tmp_path / "x")])
    assert r.exit_code == 0, r.output
    sel = json.loads((d / "out" / "selection.json").read_text())["domains"][""]
    assert sel["explanation"] in r.output
    assert (tmp_path / "x" / "ckpt-1.index").is_file()


def test_select_cli_usage_errors(tmp_path):
    r = CliRunner().invoke(cli, ["select", str(tmp_path / "nothing")])
    assert r.exit_code == 2 and "no results" in r.output


def test_no_selectable_checkpoint_is_an_error():
    results = pd.DataFrame(columns=["checkpoint", "step", "dataset", "kind", "metric", "value",
                                    "n", "std", "ci_low", "ci_high", "status", "reason",
                                    "flags", "checkpoint_hash", "dataset_hash"])
    ckpts = pd.DataFrame({"name": ["ckpt-1"], "step": [1], "content_hash": [None],
                          "path": ["/x/ckpt-1"], "status": ["failed"],
                          "error": ["truncated data shard"], "architecture": [None]})
    ranking = rank_checkpoints(results, ckpts, None, RankingConfig())
    with pytest.raises(SelectionError, match="truncated data shard"):
        build_selection(ranking, results, ckpts)


def test_an_unchanged_selection_is_not_rewritten(evaluated, monkeypatch):
    """Selecting again from the same results keeps the file and its time, so the report
    fingerprint (which covers selection.json) still matches; a changed choice rewrites."""
    from evalkit.present.report import stamp as reportstamp
    d, _ = evaluated
    out = d / "out"
    first = select(out)
    before = (out / "selection.json").read_bytes()
    digest = reportstamp.fingerprint(out)
    import evalkit.decide.selection as selection_mod

    class Later(selection_mod.datetime):
        @classmethod
        def now(cls, tz=None):
            return selection_mod.datetime(2031, 1, 1, tzinfo=tz)

    monkeypatch.setattr(selection_mod, "datetime", Later)
    again = select(out)
    assert (out / "selection.json").read_bytes() == before
    assert again["created_at"] == first["created_at"]
    assert reportstamp.fingerprint(out) == digest
    doc = json.loads(before)
    doc["evalkit_version"] = "0.0.0"  # a file that says something else is replaced
    (out / "selection.json").write_text(json.dumps(doc))
    assert select(out)["created_at"].startswith("2031-01-01")
    assert json.loads((out / "selection.json").read_text())["evalkit_version"] != "0.0.0"


def test_runner_up_margin_is_the_weighted_head_to_head_share(evaluated):
    d, _ = evaluated
    sel = select(d / "out", write=False)["domains"][""]
    with Store(d / "out", create=False) as store:
        res = store.results().set_index(["checkpoint", "dataset", "metric"])["value"]
    a, b = sel["checkpoint"], sel["runner_up"]["checkpoint"]
    want = 0.0
    for c in sel["rule"]["counted"]:
        va, vb = res[(a, c["dataset"], c["metric"])], res[(b, c["dataset"], c["metric"])]
        better = va < vb if c["direction"] == "lower" else va > vb
        want += c["weight"] * (0 if va == vb else (1 if better else -1))
    assert sel["runner_up"]["margin"] == pytest.approx(want)
    assert sel["runner_up"]["margin"] >= 0  # the pick is never beaten by the runner-up here


def test_stable_mark_follows_stable_at(evaluated, tmp_path):
    d, _ = evaluated
    st = select(d / "out", write=False)["domains"][""]["stability"]
    assert st["stable_at"] == 0.5 and st["stable"] == (st["p_first"] >= 0.5)
    cfg = tmp_path / "evalkit.toml"
    cfg.write_text("[ranking]\nstable_at = 1.0\n")
    st = select(d / "out", cfg, write=False)["domains"][""]["stability"]
    assert st["stable_at"] == 1.0 and st["stable"] == (st["p_first"] >= 1.0)
    for bad in ("0", "1.5", '"high"'):
        cfg.write_text(f"[ranking]\nstable_at = {bad}\n")
        with pytest.raises(Exception, match="stable_at"):
            select(d / "out", cfg, write=False)


def test_select_prints_the_decision_table_before_the_explanation(evaluated):
    d, _ = evaluated
    r = CliRunner().invoke(cli, ["select", str(d / "out")])
    assert r.exit_code == 0, r.output
    sel = json.loads((d / "out" / "selection.json").read_text())["domains"][""]
    lines = r.output.splitlines()
    header = lines[0].split()
    assert header[:4] == ["domain", "pick", "step", "P(first)"], lines[0]
    assert {"runner-up", "margin", "n"} <= set(header)
    row = lines[1]
    assert sel["checkpoint"] in row and sel["runner_up"]["checkpoint"] in row
    assert f"{sel['stability']['p_first']:.2f}" in row
    assert ("stable" if sel["stability"]["stable"] else "UNSTABLE") in row
    assert f"{sel['runner_up']['margin']:+.2f}" in row and "heldout 6" in row
    assert r.output.index(row) < r.output.index(sel["explanation"][:40])


def test_select_refreshes_an_existing_report(evaluated, tmp_path):
    from evalkit.present.report import render_report

    d, _ = evaluated
    out = tmp_path / "out"
    shutil.copytree(d / "out", out)
    (out / "selection.json").unlink(missing_ok=True)
    render_report(out)
    before = (out / "report" / "index.html").read_text()
    assert "Not yet recorded" in before
    r = CliRunner().invoke(cli, ["select", str(out)])
    assert r.exit_code == 0, r.output
    pick = json.loads((out / "selection.json").read_text())["domains"][""]["checkpoint"]
    after = (out / "report" / "index.html").read_text()
    assert "Not yet recorded" not in after and pick in after
    # selecting again with nothing changed leaves the report as it is
    mtime = (out / "report" / "index.html").stat().st_mtime_ns
    r = CliRunner().invoke(cli, ["select", str(out)])
    assert r.exit_code == 0 and "(up to date)" in r.output
    assert (out / "report" / "index.html").stat().st_mtime_ns == mtime


def test_thin_tracks_are_said_with_what_they_weigh():
    from evalkit.decide.selection import thin_tracks

    counted = [{"dataset": "heldout/car", "metric": "l1", "weight": 0.25},
               {"dataset": "heldout/car", "metric": "ssim", "weight": 0.25},
               {"dataset": "sketches/car", "metric": "adherence_f1", "weight": 0.5}]
    rows = [  # pick A vs runner-up B: held-out CIs apart on l1; sketch CIs overlap
        ("A", "heldout/car", "l1", 0.10, 0.09, 0.11), ("B", "heldout/car", "l1", 0.20, 0.18, 0.22),
        ("A", "heldout/car", "ssim", 0.7, 0.6, 0.8), ("B", "heldout/car", "ssim", 0.65, 0.55, 0.75),
        ("A", "sketches/car", "adherence_f1", 0.30, 0.25, 0.35),
        ("B", "sketches/car", "adherence_f1", 0.31, 0.26, 0.36)]
    res = pd.DataFrame(rows, columns=["checkpoint", "dataset", "metric", "value", "ci_low",
                                      "ci_high"])
    out = thin_tracks(counted, res, "A", "B")
    assert [t["dataset"] for t in out] == ["sketches/car"]
    assert out[0]["weight"] == 0.5 and out[0]["metrics"] == ["adherence_f1"]
    assert "only adherence_f1 counts" in out[0]["why"] and "overlap" in out[0]["why"]
    # held-out CIs overlapping on both metrics make that track thin too
    res.loc[(res.checkpoint == "B") & (res.metric == "l1"), ["ci_low", "ci_high"]] = [0.1, 0.3]
    out = thin_tracks(counted, res, "A", "B")
    assert [t["dataset"] for t in out] == ["heldout/car", "sketches/car"]
    assert "overlap on all 2 of its metrics" in out[0]["why"]
    assert "only" not in out[0]["why"]


def test_the_explanation_says_a_thin_track(evaluated):
    d, _ = evaluated
    sel = select(d / "out", write=False)["domains"][""]
    assert ("is thinly measured" in sel["explanation"]) == bool(sel["thin_tracks"])
    for th in sel["thin_tracks"]:
        assert f"{th['dataset']} is thinly measured ({th['why']})" in sel["explanation"]


def test_select_with_another_config_refreshes_the_report_with_that_rule(tmp_path):
    """`select --config F` refreshes the report ranked by F, so the page agrees with the
    selection.json it just wrote; a later `evalkit report` under the run's own rule says
    that selection.json was made with another rule instead of contradicting it silently."""
    from tests.test_report_decision import make_domains_out

    out = make_domains_out(tmp_path)
    assert CliRunner().invoke(cli, ["report", str(out)]).exit_code == 0
    cfg = tmp_path / "adherence-only.toml"
    cfg.write_text('[ranking.metrics]\nadherence_f1 = { weight = 1.0 }\n')
    r = CliRunner().invoke(cli, ["select", str(out), "--config", str(cfg)])
    assert r.exit_code == 0, r.output
    sel = json.loads((out / "selection.json").read_text())
    assert sel["domains"]["shoe"]["checkpoint"] == "shoe/ckpt-3"  # the run's rule: ckpt-5
    page = (out / "report" / "shoe" / "index.html").read_text()
    assert "shoe/ckpt-3 is chosen" in page
    assert "records the same choice from the same results" in page
    assert CliRunner().invoke(cli, ["report", str(out)]).exit_code == 0
    page = (out / "report" / "shoe" / "index.html").read_text()
    assert "OUT/selection.json names shoe/ckpt-3" in page and "another rule" in page
