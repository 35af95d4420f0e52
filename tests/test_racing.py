"""Racing selection (evalkit.execute.racing, ``evalkit run --race``) on tiny models."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from evalkit.cli import cli
from evalkit.execute.racing import subset
from evalkit.inputs.data.pairs import load_pairs
from evalkit.store.results import Store
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
    from evalkit.decide.ranking.rank import rank_out

    table = rank_out(out).table
    ex = table[table["status"] == "raced"]
    assert len(ex) == len(raced) and ex["rank"].isna().all()
    assert ex["error"].str.contains("raced out").all()


def test_a_later_full_run_completes_the_raced_out(race_run, monkeypatch, tmp_path):
    """Without --race, the raced-out checkpoints are evaluated in full, the generator
    running only on the samples the race did not generate for them; the values are those
    of a fresh full evaluation (to float rounding: the raw L1 is computed on the
    generator's float output, whose last bits depend on the batch a sample ran in)."""
    from evalkit.execute.racing import raced_outputs

    run, heldout, out, _ = race_run
    ds = load_pairs(heldout, size=32)
    with Store(out, create=False) as store:
        ck0 = store.checkpoints()
    raced = ck0[ck0["status"] == "raced"]
    have = {r.name: len(raced_outputs(out, r.content_hash, ds)) for r in raced.itertuples()}
    assert all(0 < n < 24 for n in have.values()), have
    seen = _count_forward_passes(monkeypatch)
    args = ["--heldout", str(heldout), "--image-size", "32", "--quiet", "--no-report"]
    r = CliRunner().invoke(cli, ["run", str(run), "--out", str(out), *args])
    assert r.exit_code == 0, r.output
    assert sum(seen) == sum(24 - n for n in have.values())  # only the missing samples
    with Store(out, create=False) as store:
        ck = store.checkpoints()
        res = store.results()
    assert (ck["status"] == "ok").all()
    assert len(set(res["checkpoint"])) == 6
    fresh = tmp_path / "fresh"
    r = CliRunner().invoke(cli, ["run", str(run), "--out", str(fresh), *args])
    assert r.exit_code == 0, r.output
    with Store(fresh, create=False) as store:
        ref = store.results()
    cols = ["checkpoint", "dataset", "metric", "value", "n", "ci_low", "ci_high"]
    key = ["checkpoint", "dataset", "metric"]
    got = res[res["checkpoint"].isin(raced["name"])][cols].sort_values(key)
    want = ref[ref["checkpoint"].isin(raced["name"])][cols].sort_values(key)
    pd.testing.assert_frame_equal(got.reset_index(drop=True), want.reset_index(drop=True),
                                  check_exact=False, rtol=1e-7, atol=0)


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
    from evalkit.decide.baseline import choose_candidates

    with Store(out, create=False) as store:
        ck, res = store.checkpoints(), store.results()
    name = ck[ck["status"] == "raced"].iloc[0]["name"]
    ck.loc[ck["name"] == name, "step"] = 10_000  # make a raced-out one the newest
    (choice, problem), = choose_candidates(out, res, ck).values()
    assert choice.name == name and "raced out in round" in problem


# -- raced outputs, the store first, no evidence ------------------------------------------

def _plan(run, ds):
    from evalkit.execute.domains import DomainPlan
    from evalkit.inputs import sources

    return DomainPlan("", run, sources.discover(run), datasets=[ds])


def _count_forward_passes(monkeypatch) -> list[int]:
    """Every generator forward pass (images), wherever it runs (race or engine)."""
    from evalkit.inputs.models.runner import Runner

    seen: list[int] = []
    real = Runner.run

    def run(self, inputs, *a, **k):
        seen.append(len(inputs))
        return real(self, inputs, *a, **k)

    monkeypatch.setattr(Runner, "run", run)
    return seen


def test_raced_outputs_stay_on_disk_and_read_each_sample_once(race_run, monkeypatch):
    """Memory flat in the raced samples: with rows spilled to disk (EVALKIT_SPILL_MB=0),
    the raced outputs are rows of the cache's disk arrays, read when asked; the nested
    rounds' folders are read largest first, and a folder whose samples are all found
    already is not decoded at all."""
    from evalkit.execute.generate import OutputCache
    from evalkit.execute.precision import cache_key
    from evalkit.execute.racing import raced_outputs
    from evalkit.inputs.data.samples import DiskArray

    run, heldout, out, _ = race_run
    ds = load_pairs(heldout, size=32)
    with Store(out, create=False) as store:
        ck = store.checkpoints()
    raced = ck[ck["status"] == "raced"]
    in_memory = {r.name: dict(raced_outputs(out, cache_key(r.content_hash, "fp32"), ds))
                 for r in raced.itertuples()}
    monkeypatch.setenv("EVALKIT_SPILL_MB", "0")
    loads: list[int] = []
    real = OutputCache.load

    def load(self, key, d):
        loads.append(len(d.ids))
        return real(self, key, d)

    monkeypatch.setattr(OutputCache, "load", load)
    for r in raced.itertuples():
        loads.clear()
        got = raced_outputs(out, cache_key(r.content_hash, "fp32"), ds)
        folders = list((out / "race").glob(f"*/outputs/{cache_key(r.content_hash, 'fp32')[:16]}/*"))
        assert len(folders) >= 1 and loads == [max(loads)]  # the largest folder only
        assert set(got) == set(in_memory[r.name]) and len(got) == max(loads)
        assert all(isinstance(rows, DiskArray) for rows, _, _ in got._rows.values())
        for sid, (img, l1) in got.items():
            want_img, want_l1 = in_memory[r.name][sid]
            assert img.tobytes() == want_img.tobytes()
            assert l1 == want_l1 or (np.isnan(l1) and np.isnan(want_l1))


def test_raced_outputs_are_the_fresh_outputs_of_that_checkpoint_and_dataset(race_run):
    from evalkit.execute.engine import RunOptions
    from evalkit.execute.generate import generate
    from evalkit.execute.precision import cache_key
    from evalkit.execute.racing import raced_outputs
    from evalkit.inputs import sources
    from evalkit.inputs.models.runner import RunnerPool

    run, heldout, out, _ = race_run
    ds = load_pairs(heldout, size=32)  # the very dataset the race ran on
    with Store(out, create=False) as store:
        ck = store.checkpoints()
    raced = ck[ck["status"] == "raced"]["name"].tolist()
    refs = {r.name: r for r in sources.discover(run)}
    ref = refs[raced[0]]
    key = cache_key(ref.content_hash(), "fp32")
    got = raced_outputs(out, key, ds)
    assert 0 < len(got) < len(ds) and set(got) <= set(ds.ids)
    runner = sources.prepare(ref, RunnerPool(), RunOptions(image_size=32)).runner()
    fresh, raw = generate(runner, ds)
    for sid, (img, l1) in got.items():
        i = ds.ids.index(sid)
        assert img.dtype == np.uint8 and img.tobytes() == fresh[i].tobytes()
        assert l1 == pytest.approx(raw[i], rel=1e-6)
    # a later full run needs the generator on the missing samples only
    from evalkit.execute.racing import complete_outputs

    parts: list[int] = []

    def gen_part(part):
        parts.append(len(part))
        return generate(runner, part)

    outs, l1s, n_new = complete_outputs(ds, got, gen_part)
    assert n_new == parts[0] == len(ds) - len(got)
    assert outs.tobytes() == fresh.tobytes() and l1s == pytest.approx(raw, rel=1e-6)
    # nothing for another dataset (other content), another checkpoint or another precision
    assert raced_outputs(out, key, load_pairs(heldout, size=32, limit=20)) == {}
    assert raced_outputs(out, "0" * 64, ds) == {}
    assert raced_outputs(out, cache_key(ref.content_hash(), "bf16"), ds) == {}
    assert raced_outputs(out / "elsewhere", key, ds) == {}
    # a changed PNG fails its sha256 check: its folder is left out, the others still count
    folders = sorted((out / "race").glob(f"*/outputs/{key[:16]}/*"),
                     key=lambda f: len(list(f.glob("*.png"))))
    ids = [set(json.loads((f / "manifest.json").read_text())["ids"]) for f in folders]
    png = sorted(folders[-1].glob("*.png"))[0]
    png.write_bytes(png.read_bytes() + b"\0")
    lines: list[str] = []
    assert set(raced_outputs(out, key, ds, log=lines.append)) == set().union(*ids[:-1])
    assert any("sha256" in s for s in lines)


def test_racing_serves_fully_evaluated_checkpoints_from_the_store(tmp_path, monkeypatch):
    import shutil

    from evalkit.execute.engine import RunOptions, evaluate_domains
    from evalkit.execute.racing import RaceSettings, race_domains
    from tests.seed_reference import save_seed_checkpoint

    made = tmp_path / "made"
    made.mkdir()
    save_seed_checkpoint(made, n=6, hidden=4)
    run = tmp_path / "run"
    run.mkdir()
    for f in made.glob("ckpt-[12].*"):  # two checkpoints first, evaluated in full
        shutil.copy(f, run / f.name)
    ds = load_pairs(make_ab_folder(tmp_path / "heldout", n=24, half=32), size=32)
    out = tmp_path / "out"
    opts = RunOptions(image_size=32, progress=False)
    evaluate_domains([_plan(run, ds)], out, opts, log=lambda s: None)
    from evalkit.execute.precision import cache_key
    from evalkit.inputs import sources

    refs = {r.name: r for r in sources.discover(run)}
    # ckpt-2's outputs are gone from the cache (its stored values are current)
    shutil.rmtree(out / "outputs" / cache_key(refs["ckpt-2"].content_hash(), "fp32")[:16])
    for f in made.glob("ckpt-[3456].*"):  # then four more: race them all
        shutil.copy(f, run / f.name)
    passes = _count_forward_passes(monkeypatch)
    # threshold 5%: these random generators are close at 4 samples, and under the Smith
    # rule none leaves at 1% (each is in a resample's top group more often than that)
    res = race_domains([_plan(run, ds)], out, opts, RaceSettings(threshold=0.05),
                       log=lambda s: None)
    assert sorted(res.settled) == ["ckpt-1", "ckpt-2"]
    assert res.full_cost == 4 * 24  # what a full run would generate now: the new four
    assert res.generated == sum(passes)  # counted honestly: every forward pass, no more
    assert res.generated <= 4 * 24 and res.raced_out  # (6 random generators differ a lot)
    # ckpt-1 ran no generator: its round subsets came from its full outputs; ckpt-2 (no
    # outputs left) was not raced at all, its stored full values stand
    assert res.reused == max(sum(r.samples.values()) for r in res.rounds)
    assert all("ckpt-1" in r.p_first and "ckpt-2" not in r.p_first for r in res.rounds)
    assert not set(res.raced_out) & {"ckpt-1", "ckpt-2"}
    with Store(out, create=False) as store:
        ck = store.checkpoints().set_index("name")
        r = store.results()
    assert (ck.loc[["ckpt-1", "ckpt-2"], "status"] == "ok").all()
    l1 = r[(r["metric"] == "l1")].set_index("checkpoint")["n"]
    assert l1["ckpt-1"] == 24 and l1["ckpt-2"] == 24
    # racing again changes nothing and generates nothing
    passes.clear()
    again = race_domains([_plan(run, ds)], out, opts, RaceSettings(threshold=0.05),
                         log=lambda s: None)
    assert again.generated == 0 and sum(passes) == 0


def test_no_bootstrap_evidence_races_nobody_out(tmp_path):
    from evalkit.decide.ranking.rank import MetricRule, RankingConfig
    from evalkit.execute.engine import RunOptions
    from evalkit.execute.racing import RaceSettings, race_domains
    from evalkit.measure.paired import PairedMetrics
    from tests.seed_reference import save_seed_checkpoint

    run = tmp_path / "run"
    run.mkdir()
    save_seed_checkpoint(run, n=4, hidden=4)
    ds = load_pairs(make_ab_folder(tmp_path / "heldout", n=16, half=32), size=32)
    out = tmp_path / "out"
    # the rule counts only KID, which this run does not compute: nothing to resample
    config = RankingConfig(metrics={"kid": MetricRule("kid", 1.0, "lower")})
    lines: list[str] = []
    res = race_domains([_plan(run, ds)], out, RunOptions(image_size=32, progress=False),
                       RaceSettings(ranking_config=config), families=[PairedMetrics()],
                       log=lines.append)
    assert res.raced_out == {} and len(res.rounds) == 1
    assert any("no bootstrap evidence" in s for s in lines)
    with Store(out, create=False) as store:
        ck, r = store.checkpoints(), store.results()
    assert (ck["status"] == "ok").all() and len(ck) == 4
    assert (r[r["metric"] == "l1"]["n"] == 16).all() and len(set(r["checkpoint"])) == 4
    assert res.generated == 4 * 16  # every checkpoint finished in full, nothing twice


def test_round_sizes_grow_to_the_full_data_from_the_same_start():
    from evalkit.execute.racing import RaceSettings

    s = RaceSettings()
    for n in (1, 3, 12, 40, 200):
        sizes = s.sizes(n)
        assert sizes[-1] == n and sizes == sorted(sizes)
        assert sizes[0] == min(n, max(4, -(-n // 8)))
    assert RaceSettings(growth=2).sizes(40) == [5, 10, 20, 40]
    assert len(RaceSettings(growth=2 ** 0.5).sizes(40)) > len(RaceSettings(growth=2).sizes(40))
    with pytest.raises(ValueError, match="growth"):
        RaceSettings(growth=1).sizes(10)


def test_finite_population_correction_shrinks_the_spread_not_the_means():
    import pandas as pd

    from evalkit.execute.racing.evidence import finite_population, fpc_factor

    assert fpc_factor(100, 100) == 0 and fpc_factor(1, 100) == 1 and fpc_factor(5, 0) == 1
    assert fpc_factor(50, 100) == pytest.approx((0.5 * 50 / 49) ** 0.5)
    assert fpc_factor(10, 1000) > 1  # tiny share seen: the unbiased variance, a bit wider
    rng = np.random.default_rng(0)
    rows = [{"checkpoint": c, "dataset": "d", "metric": "l1", "sample_id": f"s{i}",
             "value": float(v)} for c in ("a", "b") for i, v in enumerate(rng.normal(size=20))]
    samples = pd.DataFrame(rows)
    results = pd.DataFrame([{"checkpoint": "a", "dataset": "d", "metric": "kid", "value": 1.0,
                             "n": 20, "ci_low": 0.5, "ci_high": 1.5}])
    res, sm = finite_population(results, samples, {"d": 80})
    c = fpc_factor(20, 80)
    for ck in ("a", "b"):
        x, y = samples[samples.checkpoint == ck].value, sm[sm.checkpoint == ck].value
        assert y.mean() == pytest.approx(x.mean())
        assert (y - y.mean()).to_numpy() == pytest.approx(c * (x - x.mean()).to_numpy())
    assert res.iloc[0].ci_low == pytest.approx(1 - 0.5 * c)
    assert res.iloc[0].ci_high == pytest.approx(1 + 0.5 * c)
    same, _ = finite_population(results, samples, {})  # full size unknown: unchanged
    assert same.iloc[0].ci_low == 0.5


def test_a_checkpoint_that_cannot_race_is_said_and_evaluated_in_full(tmp_path):
    """A checkpoint whose weights cannot be read leaves the race with its reason in the
    log, and the full evaluation records its failure; the others race as usual."""
    from tests.seed_reference import save_seed_checkpoint

    run = tmp_path / "run"
    run.mkdir()
    save_seed_checkpoint(run, n=5, hidden=4)
    data = sorted(run.glob("ckpt-2.data-*"))
    assert data
    data[0].write_bytes(data[0].read_bytes()[:64])  # truncated shard
    heldout = make_ab_folder(tmp_path / "heldout", n=24, half=32)
    out = tmp_path / "out"
    r = CliRunner().invoke(cli, ["run", str(run), "--heldout", str(heldout), "--out", str(out),
                                 "--image-size", "32", "--race", "--quiet", "--no-report"])
    assert r.exit_code in (0, 1), r.output
    assert "ckpt-2 cannot take part in round 1 (" in r.output, r.output
    with Store(out, create=False) as store:
        ck = store.checkpoints().set_index("name")
    assert ck.loc["ckpt-2", "status"] == "failed" and ck.loc["ckpt-2", "error"]
    assert (ck.drop(index="ckpt-2")["status"].isin(["ok", "raced"])).all()


def test_race_generator_keeps_rows_on_disk_when_large(tmp_path, monkeypatch):
    """With rows spilled (EVALKIT_SPILL_MB=0) the race's incremental outputs stay on disk
    (memory flat in the data); the cached subset outputs are those of a fresh generation,
    and a larger round generates only the new samples."""
    from evalkit.execute.engine import RunOptions
    from evalkit.execute.generate import OutputCache, generate
    from evalkit.execute.precision import cache_key
    from evalkit.execute.racing.generator import RaceGenerator
    from evalkit.inputs import sources
    from evalkit.inputs.data.samples import DiskArray
    from evalkit.inputs.models.runner import RunnerPool
    from tests.seed_reference import save_seed_checkpoint

    monkeypatch.setenv("EVALKIT_SPILL_MB", "0")
    run = tmp_path / "run"
    run.mkdir()
    save_seed_checkpoint(run, n=1, hidden=4)
    ds = load_pairs(make_ab_folder(tmp_path / "h", n=12, half=32), size=32)
    ref = sources.discover(run)[0]
    opts = RunOptions(image_size=32)
    order = np.random.default_rng(0).permutation(len(ds))
    gen = RaceGenerator(tmp_path / "out")
    scratch = tmp_path / "scratch"
    small, big = subset(ds, 5, order, 0), subset(ds, 9, order, 1)
    assert gen.prepare(ref, [(small, ds)], scratch, opts)
    assert gen.prepare(ref, [(big, ds)], scratch, opts)
    assert gen.generated["fp32"] == 9  # 5, then the 4 new ones
    memo = next(iter(gen.memo.values()))
    assert len(memo) == 9
    assert all(isinstance(rows, DiskArray) for rows, _, _ in memo._rows.values())
    runner = sources.prepare(ref, RunnerPool(), opts).runner()
    fresh, _ = generate(runner, ds)
    key = cache_key(ref.content_hash(), "fp32")
    cached, raw = OutputCache(scratch, log=lambda s: None).load(key, big)
    for j, sid in enumerate(big.ids):
        assert np.asarray(cached[j]).tobytes() == np.asarray(fresh[ds.ids.index(sid)]).tobytes()
    assert raw is not None and len(raw) == 9
