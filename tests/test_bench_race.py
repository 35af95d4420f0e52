"""benchmarks/bench_race.py's helpers for issue 23 part 2: finding a cycle among the top of
a full evaluation, the earlier racing rule it compares with, and --keep's safety."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from tests.test_ranking import _ckpts, _cycle_config, _cycle_results, _results

NAMES = ["ckpt-1", "ckpt-2", "ckpt-3"]


@pytest.fixture(scope="module")
def bench():
    from benchmarks import bench_race

    return bench_race


def _rank(rows, names):
    from evalkit.decide.ranking.rank import rank_checkpoints

    return rank_checkpoints(rows, _ckpts(names), None, _cycle_config())


def test_top_cycle_finds_the_cycle_and_the_winners_record(bench):
    # X beats Y, Y beats Z, Z beats X (tests/test_ranking.py's cycle): Y wins by a chain
    r = _rank(_cycle_results(NAMES), NAMES)
    smith, record = bench.top_cycle(r)
    assert r.winner == "ckpt-2"
    assert sorted(smith) == NAMES
    assert record == (1, 0, 1)  # beats Z, loses to X


def test_top_cycle_of_a_condorcet_winner_is_one_checkpoint(bench):
    # ckpt-4 is worse than all three on every metric; ckpt-1..3 without their cycle:
    rows = _results([(ck, i + 1, "heldout", m, float(i) if m == "l1" else float(10 - i))
                     for i, ck in enumerate(NAMES + ["ckpt-4"])
                     for m in ("l1", "ssim", "psnr")])
    r = _rank(rows, NAMES + ["ckpt-4"])
    smith, record = bench.top_cycle(r)
    assert smith == ["ckpt-1"] and record == (3, 0, 0)


def test_earlier_rule_drops_the_checkpoint_that_carries_the_chain(bench):
    from evalkit.execute.racing.race import losers

    r = _rank(_cycle_results(NAMES), NAMES)
    p = dict(zip(r.table.checkpoint, r.table.p_first, strict=True))
    # no per-sample values: every resample has ckpt-2 first, so P(first) alone drops both
    assert set(bench.earlier_losers(r, p, 0.01, settled=[])) == {"ckpt-1", "ckpt-3"}
    assert set(bench.earlier_losers(r, p, 0.01, settled=["ckpt-3"])) == {"ckpt-1"}
    assert losers(r, p, 0.01, settled=[]) == {}  # the current rule keeps it


def test_kept_run_trained_with_other_settings_is_refused(bench, tmp_path):
    run = tmp_path / "run" / "person"
    run.mkdir(parents=True)
    for i in range(1, 4):
        (run / f"ckpt-{i}.index").write_bytes(b"")
    (tmp_path / "run" / "trained.json").write_text(json.dumps(
        {"epochs": 3, "width": 8, "pairs": 160, "seed": 1}))
    assert bench.trained_run(tmp_path, 3, 8, 160, seed=1) == run  # same settings: reused
    with pytest.raises(SystemExit, match="trained with .*use another --keep"):
        bench.trained_run(tmp_path, 3, 8, 160, seed=2)


def test_full_evaluation_is_kept_per_data_and_checkpoint_files(bench, tmp_path, monkeypatch):
    """--keep reuses a full evaluation only for the same datasets and checkpoint files."""
    import types

    calls = []
    monkeypatch.setattr("evalkit.execute.engine.evaluate_domains",
                        lambda plans, out, opts, log: (calls.append(out), out.mkdir()))
    ck = tmp_path / "ckpt-1.index"
    ck.write_bytes(b"one")
    from evalkit.inputs.checkpoints.discover import CheckpointRef

    ref = CheckpointRef("ckpt-1", 1, tmp_path / "ckpt-1", files=[ck])

    def plan(hashes):
        return types.SimpleNamespace(refs=[ref], datasets=[
            types.SimpleNamespace(content_hash=h) for h in hashes])

    a, _, _ = bench.full_evaluation(tmp_path, plan(["a" * 64, "s" * 64]), None, reuse=True)
    again, _, _ = bench.full_evaluation(tmp_path, plan(["a" * 64, "s" * 64]), None, reuse=True)
    other, _, _ = bench.full_evaluation(tmp_path, plan(["b" * 64, "s" * 64]), None, reuse=True)
    ck.write_bytes(b"two")  # re-trained: other weights
    retrained, _, _ = bench.full_evaluation(tmp_path, plan(["a" * 64, "s" * 64]), None,
                                            reuse=True)
    assert again == a and len({a, other, retrained}) == 3
    assert calls == [a, other, retrained]
    assert pd.notna(json.loads((a / "wall_s.json").read_text())["cpu_s"])
