"""`evalkit compare OUT_A OUT_B`: each domain's pick in B against A's, paired on the samples
both evaluated, head to head by B's rule; different data is never compared."""

from __future__ import annotations

import json
import shutil
import sqlite3

import pytest
from click.testing import CliRunner

from evalkit.cli import cli
from evalkit.decide.compare import compare
from evalkit.decide.selection import select
from evalkit.store.results import Store
from tests.conftest import make_ab_folder

SIZE = 32


@pytest.fixture(scope="module")
def two(tmp_path_factory):
    """One evaluation (3 checkpoints); A selects by the defaults, B by l1 alone, and the
    picks differ."""
    from evalkit.execute.engine import RunOptions, evaluate_run
    from evalkit.inputs.data.pairs import load_pairs
    from tests.seed_reference import save_seed_checkpoint

    d = tmp_path_factory.mktemp("compare")
    heldout = make_ab_folder(d / "heldout", n=6)
    (d / "run").mkdir()
    save_seed_checkpoint(d / "run", n=3, hidden=4)
    ds = load_pairs(heldout, size=SIZE)
    evaluate_run(d / "run", d / "a", [ds], RunOptions(image_size=SIZE, progress=False),
                 log=lambda s: None)
    shutil.copytree(d / "a", d / "b")
    with Store(d / "a", create=False) as store:
        res = store.results()
    l1 = res[res.metric == "l1"].set_index("checkpoint")["value"]
    worst = l1.idxmax()  # A deploys the checkpoint with the worst l1 (by an l1-only rule)
    cfg_a = d / "a.toml"
    cfg_a.write_text("[ranking]\n[ranking.metrics]\nl1 = { weight = 1.0, direction = "
                     '"higher" }\n')
    cfg_b = d / "b.toml"
    cfg_b.write_text("[ranking]\n[ranking.metrics]\nl1 = { weight = 1.0 }\n")
    sa = select(d / "a", cfg_a)["domains"][""]
    sb = select(d / "b", cfg_b)["domains"][""]
    assert sa["checkpoint"] == worst != sb["checkpoint"] == l1.idxmin()
    return d, sa, sb


def test_paired_difference_and_head_to_head(two):
    d, sa, sb = two
    cmp = compare(d / "a", d / "b")
    (dom,) = cmp["domains"]
    assert dom["a"]["checkpoint"] == sa["checkpoint"] and not dom["same_pick"]
    (row,) = dom["metrics"]  # B's rule counts l1 only
    with Store(d / "a", create=False) as store:
        sm = store.sample_metrics()
    sm = sm[sm.metric == "l1"]
    a = sm[sm.checkpoint == sa["checkpoint"]].set_index("sample_id")["value"]
    b = sm[sm.checkpoint == sb["checkpoint"]].set_index("sample_id")["value"]
    diffs = (b - a[b.index]).to_numpy()
    assert row["diff"] == pytest.approx(diffs.mean()) and row["n"] == 6
    assert row["ci_low"] <= row["diff"] <= row["ci_high"]
    assert row["b_better"] is True and dom["margin"] == pytest.approx(1.0)
    assert dom["verdict"].startswith("B's pick beats A's")
    r = CliRunner().invoke(cli, ["compare", str(d / "a"), str(d / "b"), "--format", "json"])
    assert r.exit_code == 0 and json.loads(r.output)["domains"][0]["margin"] == 1.0


def test_different_data_is_not_compared(two, tmp_path):
    d, _, _ = two
    b = tmp_path / "b"
    shutil.copytree(d / "b", b)
    with sqlite3.connect(b / "results.sqlite") as conn:
        conn.execute("UPDATE datasets SET content_hash = 'other'")
    (dom,) = compare(d / "a", b)["domains"]
    assert dom["metrics"] == [] and dom["margin"] is None
    assert "different data in A and B" in dom["not_compared"][0]


def test_a_folder_without_selection_is_a_usage_error(two, tmp_path):
    d, _, _ = two
    r = CliRunner().invoke(cli, ["compare", str(d / "a"), str(tmp_path)])
    assert r.exit_code == 2 and "evalkit select" in r.output


def test_a_new_pick_that_loses_is_said_and_exits_1(monkeypatch, tmp_path):
    """B's winner among B's checkpoints can still lose to A's pick (another run)."""
    import pandas as pd

    from evalkit.decide import compare as C

    rule = {"counted": [{"dataset": "heldout", "metric": "l1", "weight": 0.5,
                         "direction": "lower"},
                        {"dataset": "heldout", "metric": "ssim", "weight": 0.5,
                         "direction": "higher"}]}
    a = {"checkpoint": "old/ckpt-9", "step": 9, "content_hash": "h9", "rule": rule}
    b = {"checkpoint": "new/ckpt-3", "step": 3, "content_hash": "h3", "rule": rule}
    res = pd.DataFrame([
        ("old/ckpt-9", "heldout", "l1", 0.10, 4, "ok"), ("old/ckpt-9", "heldout", "ssim", 0.8, 4, "ok"),
        ("new/ckpt-3", "heldout", "l1", 0.20, 4, "ok"), ("new/ckpt-3", "heldout", "ssim", 0.7, 4, "ok")],
        columns=["checkpoint", "dataset", "metric", "value", "n", "status"])
    sm = pd.DataFrame([(ck, "heldout", f"s{i}", m, v + 0.01 * i)
                       for ck, m, v in [("old/ckpt-9", "l1", 0.10), ("new/ckpt-3", "l1", 0.20)]
                       for i in range(4)],
                      columns=["checkpoint", "dataset", "sample_id", "metric", "value"])
    ds = pd.DataFrame({"name": ["heldout"], "content_hash": ["same"]})
    dom = C.compare_domain("", a, b, res, res, sm, sm, ds, ds)
    assert dom["margin"] == pytest.approx(-1.0) and dom["verdict"].startswith("A's pick beats")
    l1 = next(r for r in dom["metrics"] if r["metric"] == "l1")
    assert l1["diff"] == pytest.approx(0.10) and l1["ci_low"] == pytest.approx(0.10)
    assert l1["b_better"] is False and l1["clear"] is True
    ssim = next(r for r in dom["metrics"] if r["metric"] == "ssim")
    assert ssim["ci_low"] is None and ssim["diff"] == pytest.approx(-0.1)  # set-level only
    monkeypatch.setattr(C, "compare", lambda x, y: {"a": str(x), "b": str(y), "domains": [dom],
                                                     "only_in_a": [], "only_in_b": []})
    r = CliRunner().invoke(cli, ["compare", str(tmp_path), str(tmp_path)])
    assert r.exit_code == 1 and "A's pick beats B's" in r.output


# --- what changed since the last selection (issue 24 part 1) and the compare page (part 6)


def _reselected(two, tmp_path):
    """A copy of A selected again by B's rule: selection.json is B's pick, and the one it
    replaced (A's pick) is kept as selection.previous.json."""
    d, sa, sb = two
    c = tmp_path / "c"
    shutil.copytree(d / "a", c)
    shutil.rmtree(c / "report", ignore_errors=True)
    select(c, d / "b.toml")
    return c, sa, sb


def test_select_keeps_the_selection_it_replaces(two, tmp_path):
    c, sa, sb = _reselected(two, tmp_path)
    now = json.loads((c / "selection.json").read_text())["domains"][""]
    before = json.loads((c / "selection.previous.json").read_text())["domains"][""]
    assert now["checkpoint"] == sb["checkpoint"] and before["checkpoint"] == sa["checkpoint"]
    select(c, two[0] / "b.toml")  # unchanged: neither file moves
    assert json.loads((c / "selection.previous.json").read_text())["domains"][""][
        "checkpoint"] == sa["checkpoint"]


def test_changes_since_says_new_pick_same_pick_and_added_checkpoints():
    from evalkit.decide.compare import changes_since

    old = {"checkpoint": "car/ckpt-5", "content_hash": "h5", "step": 5,
           "ranking": [{"checkpoint": f"car/ckpt-{k}"} for k in range(1, 6)], "excluded": []}
    new = {"checkpoint": "car/ckpt-8", "content_hash": "h8",
           "ranking": [{"checkpoint": f"car/ckpt-{k}"} for k in range(1, 8)],
           "excluded": [{"checkpoint": "car/ckpt-8b", "error": "x"}]}
    ch = changes_since((old, "2026-12-01T10:00:00+00:00"), new)
    assert ch["kind"] == "new" and ch["was"] == "car/ckpt-5"
    assert ch["new_checkpoints"] == ["car/ckpt-6", "car/ckpt-7", "car/ckpt-8b"]
    assert ch["text"] == "new pick (was ckpt-5), +3 checkpoints since"
    same = changes_since((old, None), {**old, "ranking": old["ranking"][:4]})
    assert same["kind"] == "same" and same["text"] == "same pick"
    renamed = changes_since((old, None), {**old, "checkpoint": "car/copy"})  # same content
    assert renamed["kind"] == "same"
    assert changes_since(None, new)["kind"] == "first"


def test_report_says_what_changed_and_links_the_compare_page(two, tmp_path):
    from evalkit.present.report import render_report

    c, sa, sb = _reselected(two, tmp_path)
    index = render_report(c)
    short = sa["checkpoint"].rsplit("/", 1)[-1]
    page = index.read_text()
    assert f"new pick (was {short})" in page and 'href="compare.html#cmp-"' in page
    cmp = (index.parent / "compare.html").read_text()
    assert sa["checkpoint"] in cmp and sb["checkpoint"] in cmp
    assert "B beats A" in cmp and "B&#39;s pick beats A&#39;s head to head (+1.00)" in cmp
    # run added a checkpoint the recorded selection did not know: said before select runs
    sel = json.loads((c / "selection.json").read_text())
    entry = sel["domains"][""]
    gone = next(r["checkpoint"] for r in entry["ranking"] if r["checkpoint"] !=
                entry["checkpoint"])
    entry["ranking"] = [r for r in entry["ranking"] if r["checkpoint"] != gone]
    entry["results_digest"] = "older results"
    (c / "selection.json").write_text(json.dumps(sel))
    page = render_report(c).read_text()
    assert f"same pick, +1 checkpoint since ({gone})" in page


def test_compare_cli_writes_the_same_page(two, tmp_path):
    d, sa, sb = two
    dest = tmp_path / "cmp.html"
    r = CliRunner().invoke(cli, ["compare", str(d / "a"), str(d / "b"), "--html", str(dest)])
    assert r.exit_code == 0, r.output
    page = dest.read_text()
    assert 'id="compare-table"' in page and "B beats A" in page and sb["checkpoint"] in page
    r = CliRunner().invoke(cli, ["compare", str(d / "a"), str(d / "b"), "--html",
                                 str(tmp_path / "no" / "such" / "x.html")])
    assert r.exit_code == 2 and "choose a writable --html path" in r.output


def test_a_malformed_previous_selection_does_not_break_the_report(two, tmp_path):
    from evalkit.present.report import render_report

    c, _, _ = _reselected(two, tmp_path)
    (c / "selection.previous.json").write_text(json.dumps(
        {"format": "evalkit-selection/2", "domains": {"": {"ranking": 5}},
         "created_at": "x"}))
    page = render_report(c).read_text()
    assert "Since the last selection" not in page and "Selected checkpoint" in page
    assert not (c / "report" / "compare.html").exists()
