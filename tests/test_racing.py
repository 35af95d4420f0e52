"""Racing selection (evalkit.racing, ``evalkit run --race``) on tiny models."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from evalkit.cli import cli
from evalkit.data.pairs import load_pairs
from evalkit.racing import subset
from evalkit.store import Store
from tests.conftest import make_ab_folder


def test_subsets_are_nested_seeded_and_have_their_own_identity(tmp_path):
    ds = load_pairs(make_ab_folder(tmp_path / "h", n=10, half=16), size=16)
    order = np.random.default_rng(3).permutation(len(ds))
    a, b = subset(ds, 3, order, 0), subset(ds, 6, order, 1)
    assert set(a.ids) < set(b.ids) and len(a) == 3 and len(b) == 6
    assert a.content_hash not in (b.content_hash, ds.content_hash)
    assert a.meta["race"] == {"round": 0, "n": 3, "full_n": 10}
    i = ds.ids.index(a.ids[0])
    assert np.array_equal(a.inputs[0], ds.inputs[i])
    assert subset(ds, 10, order, 2) is ds


@pytest.fixture
def race_run(tmp_path):
    from tests.seed_reference import save_seed_checkpoint

    run = tmp_path / "run"
    run.mkdir()
    save_seed_checkpoint(run, n=6, hidden=4)
    heldout = make_ab_folder(tmp_path / "heldout", n=24, half=32)
    out = tmp_path / "out"
    r = CliRunner().invoke(cli, ["run", str(run), "--heldout", str(heldout), "--out", str(out),
                                 "--image-size", "32", "--race", "--quiet", "--no-report"])
    assert r.exit_code == 0, r.output
    return run, heldout, out, r.output


def test_race_finishes_leaders_in_full_and_lists_the_raced_out(race_run):
    run, heldout, out, output = race_run
    assert "race: generator ran on" in output
    with Store(out, create=False) as store:
        ck = store.checkpoints()
        res = store.results()
    raced = ck[ck["status"] == "raced"]
    ok = ck[ck["status"] == "ok"]
    assert len(raced) + len(ok) == 6 and len(ok) >= 1
    assert len(raced) >= 1, output  # 6 random generators differ a lot on 24 pairs
    for e in raced["error"]:
        assert "raced out in round" in e and "chance of being the final choice" in e
    # the main store holds full values only, of the leaders only
    assert set(res["checkpoint"]) == set(ok["name"])
    assert (res[res["metric"] == "l1"]["n"] == 24).all()
    assert not any(json.loads(f or "{}").get("raced") for f in res["flags"])
    # the raced values live apart, with their real n and the raced flag
    with Store(out / "race" / "run", create=False) as scratch:
        sres = scratch.results(history=True)
    l1 = sres[sres["metric"] == "l1"]
    assert (l1["n"] < 24).all()
    assert all(json.loads(f)["raced"] and json.loads(f)["full_n"] == 24 for f in l1["flags"])
    # the ranking lists raced-out checkpoints as excluded with their evidence
    from evalkit.ranking import rank_out

    table = rank_out(out).table
    ex = table[table["status"] == "raced"]
    assert len(ex) == len(raced) and ex["rank"].isna().all()
    assert ex["error"].str.contains("raced out").all()


def test_a_later_full_run_completes_the_raced_out(race_run):
    run, heldout, out, _ = race_run
    r = CliRunner().invoke(cli, ["run", str(run), "--heldout", str(heldout), "--out", str(out),
                                 "--image-size", "32", "--quiet", "--no-report"])
    assert r.exit_code == 0, r.output
    with Store(out, create=False) as store:
        ck = store.checkpoints()
        res = store.results()
    assert (ck["status"] == "ok").all()
    assert len(set(res["checkpoint"])) == 6


def test_selection_and_gate_say_which_checkpoints_were_raced_out(race_run):
    run, heldout, out, _ = race_run
    r = CliRunner().invoke(cli, ["select", str(out)])
    assert r.exit_code == 0, r.output
    sel = json.loads((out / "selection.json").read_text())
    entry = next(iter(sel["domains"].values())) if "domains" in sel else sel
    excluded = entry["excluded"]
    assert excluded and all("raced out" in e["error"] for e in excluded)
    assert "raced out" in r.output
    # the gate's default candidate (the newest checkpoint), when raced out, is said to be
    from evalkit.baseline import choose_candidates

    with Store(out, create=False) as store:
        ck, res = store.checkpoints(), store.results()
    name = ck[ck["status"] == "raced"].iloc[0]["name"]
    ck.loc[ck["name"] == name, "step"] = 10_000  # make a raced-out one the newest
    (choice, problem), = choose_candidates(out, res, ck).values()
    assert choice.name == name and "raced out in round" in problem
