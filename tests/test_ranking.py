"""Ranking: [ranking] config validation, weighted pairwise majority and weighted normalized
ranks, bootstrap stability."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from evalkit.core.config import ConfigError
from evalkit.decide.ranking.rank import RankingConfig, rank_checkpoints, ranking_config

COLS = ["checkpoint", "step", "dataset", "kind", "metric", "value", "n", "std", "ci_low",
        "ci_high", "status", "reason", "flags", "checkpoint_hash", "dataset_hash"]


def _results(rows: list[tuple]) -> pd.DataFrame:
    """rows: (checkpoint, step, dataset, metric, value[, status, ci_low, ci_high])."""
    out = []
    for r in rows:
        ck, step, ds, metric, value = r[:5]
        status = r[5] if len(r) > 5 else "ok"
        lo, hi = (r[6], r[7]) if len(r) > 7 else (None, None)
        out.append({"checkpoint": ck, "step": step, "dataset": ds,
                    "kind": "sketches" if ds == "sketches" else "heldout", "metric": metric,
                    "value": value, "n": 10, "std": None, "ci_low": lo, "ci_high": hi,
                    "status": status, "reason": None if status == "ok" else "no weights",
                    "flags": "{}", "checkpoint_hash": f"h{ck}", "dataset_hash": f"d{ds}"})
    return pd.DataFrame(out, columns=COLS)


def _ckpts(names: list[str], failed: dict[str, str] | None = None) -> pd.DataFrame:
    failed = failed or {}
    return pd.DataFrame({
        "name": names, "step": [int(n.split("-")[1]) for n in names],
        "content_hash": [f"h{n}" for n in names], "path": [f"/run/{n}" for n in names],
        "status": ["failed" if n in failed else "ok" for n in names],
        "error": [failed.get(n) for n in names], "architecture": [None] * len(names)})


# A: best heldout l1, worst ssim and sketch f1; B: best ssim and f1.
THREE = [
    ("ckpt-1", 1, "heldout", "l1", 0.1), ("ckpt-2", 2, "heldout", "l1", 0.2),
    ("ckpt-3", 3, "heldout", "l1", 0.3),
    ("ckpt-1", 1, "heldout", "ssim", 0.5), ("ckpt-2", 2, "heldout", "ssim", 0.9),
    ("ckpt-3", 3, "heldout", "ssim", 0.7),
    ("ckpt-1", 1, "sketches", "adherence_f1", 0.1), ("ckpt-2", 2, "sketches", "adherence_f1", 0.3),
    ("ckpt-3", 3, "sketches", "adherence_f1", 0.2),
]


def test_scores_are_weighted_normalized_ranks_computed_by_hand():
    r = rank_checkpoints(_results(THREE), _ckpts(["ckpt-1", "ckpt-2", "ckpt-3"]), None,
                         RankingConfig(bootstrap=0))
    # effective weights: heldout l1 .25, heldout ssim .25, sketches f1 .5 (tracks 1:1)
    w = r.counted.set_index(["dataset", "metric"])["weight"]
    assert w[("heldout", "l1")] == pytest.approx(0.25)
    assert w[("heldout", "ssim")] == pytest.approx(0.25)
    assert w[("sketches", "adherence_f1")] == pytest.approx(0.5)
    s = r.table.set_index("checkpoint")["rank_score"]
    assert s["ckpt-1"] == pytest.approx(0.25 * 0 + 0.25 * 1 + 0.5 * 1)
    assert s["ckpt-2"] == pytest.approx(0.25 * 0.5 + 0.25 * 0 + 0.5 * 0)
    assert s["ckpt-3"] == pytest.approx(0.25 * 1 + 0.25 * 0.5 + 0.5 * 0.5)
    assert r.winner == "ckpt-2" and r.runner_up == "ckpt-3"
    assert r.table["rank"].tolist() == [1, 2, 3]
    ranks = rank_checkpoints(_results(THREE), _ckpts(["ckpt-1", "ckpt-2", "ckpt-3"]), None,
                             RankingConfig(bootstrap=0, method="ranks"))
    assert ranks.table["score"].tolist() == ranks.table["rank_score"].tolist()
    assert ranks.table["rank_score"].tolist() == r.table["rank_score"].tolist()


def test_pairwise_scores_are_head_to_head_losses_computed_by_hand():
    r = rank_checkpoints(_results(THREE), _ckpts(["ckpt-1", "ckpt-2", "ckpt-3"]), None,
                         RankingConfig(bootstrap=0))
    assert r.config.method == "pairwise"
    # 2 vs 1: l1 -.25, ssim +.25, f1 +.5 -> 2 wins; 2 vs 3: +.25 +.25 +.5 -> 2 wins;
    # 3 vs 1: l1 -.25, ssim +.25, f1 +.5 -> 3 wins: no cycle, so the Schulze order is
    # the head-to-head one. Score = checkpoints before it / (K - 1).
    s = r.table.set_index("checkpoint")["score"]
    assert (s["ckpt-2"], s["ckpt-3"], s["ckpt-1"]) == (0.0, 0.5, 1.0)
    assert r.table.set_index("checkpoint")["wins"].to_dict() == {
        "ckpt-2": 2, "ckpt-3": 1, "ckpt-1": 0}
    assert r.rule_text().startswith("first head to head") and "Schulze" in r.rule_text()


# B beats A head to head (better on y and z: weight .6 of 1); C is worse than both on
# aggregate but lies between A and B on x. Normalized ranks then prefer A, without C B.
IRRELEVANT = [
    ("ckpt-1", 1, "heldout", "x", 0.1), ("ckpt-2", 2, "heldout", "x", 0.3),
    ("ckpt-3", 3, "heldout", "x", 0.2),
    ("ckpt-1", 1, "heldout", "y", 0.2), ("ckpt-2", 2, "heldout", "y", 0.1),
    ("ckpt-3", 3, "heldout", "y", 0.9),
    ("ckpt-1", 1, "heldout", "z", 0.2), ("ckpt-2", 2, "heldout", "z", 0.1),
    ("ckpt-3", 3, "heldout", "z", 0.9),
]


@pytest.mark.parametrize("method, with_c, without_c", [
    ("pairwise", "ckpt-2", "ckpt-2"), ("ranks", "ckpt-1", "ckpt-2")])
def test_a_worse_checkpoint_does_not_change_the_pairwise_choice(tmp_path, method, with_c,
                                                                 without_c):
    cfg = tmp_path / "evalkit.toml"
    cfg.write_text(f"[ranking]\nbootstrap = 0\nmethod = \"{method}\"\n[ranking.metrics]\n"
                   "x = { weight = 0.4, direction = \"lower\" }\n"
                   "y = { weight = 0.3, direction = \"lower\" }\n"
                   "z = { weight = 0.3, direction = \"lower\" }\n")
    config = ranking_config(cfg)
    three = rank_checkpoints(_results(IRRELEVANT), _ckpts(["ckpt-1", "ckpt-2", "ckpt-3"]),
                             None, config)
    two = rank_checkpoints(_results(IRRELEVANT[:2] + IRRELEVANT[3:5] + IRRELEVANT[6:8]),
                           _ckpts(["ckpt-1", "ckpt-2"]), None, config)
    assert (three.winner, two.winner) == (with_c, without_c)


def test_pairwise_cycle_is_ordered_by_the_strongest_chains_of_wins():
    """1 beats 2 (margin .2), 2 beats 3 (.6), 3 beats 1 (.2): a Condorcet cycle. Schulze:
    the strongest chain 3 -> 1 -> 2 is .2, as strong as 1 -> 2 (a tie), 2 -> 3 (.6) is
    stronger than 3 -> 1 -> 2 (.2): 2 before 3, 1 tied with both."""
    rows = [("ckpt-1", 1, "heldout", "l1", 0.1), ("ckpt-2", 2, "heldout", "l1", 0.2),
            ("ckpt-3", 3, "heldout", "l1", 0.3),
            ("ckpt-1", 1, "heldout", "lpips", 0.3), ("ckpt-2", 2, "heldout", "lpips", 0.1),
            ("ckpt-3", 3, "heldout", "lpips", 0.2),
            ("ckpt-1", 1, "heldout", "psnr", 20.0), ("ckpt-2", 2, "heldout", "psnr", 10.0),
            ("ckpt-3", 3, "heldout", "psnr", 30.0)]
    r = rank_checkpoints(_results(rows), _ckpts(["ckpt-1", "ckpt-2", "ckpt-3"]), None,
                         RankingConfig(bootstrap=0))
    t = r.table.set_index("checkpoint")
    assert t["score"].round(6).to_dict() == {"ckpt-2": 0.25, "ckpt-1": 0.5, "ckpt-3": 0.75}
    # l1 1, lpips 1, psnr 0.5 (weights .4, .4, .2): rank scores 0.5, 0.4, 0.6
    assert t["rank_score"].round(6).to_dict() == {"ckpt-1": 0.5, "ckpt-2": 0.4, "ckpt-3": 0.6}
    assert r.table["checkpoint"].tolist() == ["ckpt-2", "ckpt-1", "ckpt-3"]


def _schulze_reference(vals: np.ndarray, weights: np.ndarray, lower: np.ndarray
                       ) -> np.ndarray:
    """Textbook Schulze with loops (Wikipedia's pseudocode): the cross-check."""
    n_metrics, k = vals.shape
    d = [[0.0] * k for _ in range(k)]
    for a in range(k):
        for b in range(k):
            for j in range(n_metrics):
                x, y = vals[j, a], vals[j, b]
                x = np.inf if np.isnan(x) else (x if lower[j] else -x)
                y = np.inf if np.isnan(y) else (y if lower[j] else -y)
                d[a][b] += weights[j] * (int(x < y) - int(x > y))
    p = [[d[a][b] if a != b and d[a][b] > 1e-12 else 0.0 for b in range(k)]
         for a in range(k)]
    for i in range(k):
        for a in range(k):
            for b in range(k):
                if i not in (a, b) and a != b:
                    p[a][b] = max(p[a][b], min(p[a][i], p[i][b]))
    out = []
    for a in range(k):
        before = sum(p[b][a] > p[a][b] + 1e-12 for b in range(k) if b != a)
        ties = sum(abs(p[b][a] - p[a][b]) <= 1e-12 for b in range(k) if b != a)
        out.append((before + ties / 2) / max(1, k - 1))
    return np.array(out)


def test_pairwise_scores_match_a_textbook_schulze_including_batches_and_gaps():
    from evalkit.decide.ranking.scores import _margins, _schulze_scores

    rng = np.random.default_rng(3)
    for _trial in range(30):
        k, j = int(rng.integers(2, 8)), int(rng.integers(1, 6))
        vals = rng.integers(0, 4, size=(j, 3, k)).astype(float)  # ties likely
        vals[rng.random(vals.shape) < 0.1] = np.nan
        weights = rng.random(j)
        weights /= weights.sum()
        lower = rng.random(j) < 0.5
        batch = _schulze_scores(_margins(vals, weights, lower))  # as the bootstrap does
        assert batch.shape == (3, k)
        for b in range(3):
            np.testing.assert_allclose(batch[b], _schulze_reference(vals[:, b], weights,
                                                                    lower), atol=1e-12)


def test_config_chooses_metrics_and_tracks(tmp_path):
    cfg = tmp_path / "evalkit.toml"
    cfg.write_text("[ranking]\nbootstrap = 0\n[ranking.tracks]\nheldout = 1\nsketches = 0\n"
                   "[ranking.metrics]\nl1 = 1.0\n")
    r = rank_checkpoints(_results(THREE), _ckpts(["ckpt-1", "ckpt-2", "ckpt-3"]), None,
                         ranking_config(cfg))
    assert r.winner == "ckpt-1"
    assert r.counted[["dataset", "metric"]].values.tolist() == [["heldout", "l1"]]
    reasons = r.not_counted.set_index(["dataset", "metric"])["reason"]
    assert reasons[("heldout", "ssim")] == "not in the ranking's metric list"
    assert "weight 0" in reasons[("sketches", "adherence_f1")] or \
        "not in the ranking" in reasons[("sketches", "adherence_f1")]


def test_missing_value_ranks_worst_and_failed_checkpoints_are_excluded():
    rows = [("ckpt-1", 1, "heldout", "l1", 0.1), ("ckpt-2", 2, "heldout", "l1", None, "skipped"),
            ("ckpt-3", 3, "heldout", "l1", 0.3)]
    r = rank_checkpoints(_results(rows), _ckpts(["ckpt-1", "ckpt-2", "ckpt-3", "ckpt-4"],
                                                {"ckpt-4": "truncated shard"}),
                         None, RankingConfig(bootstrap=0))
    s = r.table.set_index("checkpoint")
    assert s.loc["ckpt-2", "score"] == 1.0  # unmeasured: worst, not best
    assert s.loc["ckpt-3", "score"] == pytest.approx(0.5)
    assert np.isnan(s.loc["ckpt-4", "rank"]) and s.loc["ckpt-4", "error"] == "truncated shard"
    assert r.winner == "ckpt-1"


def test_ties_go_to_the_later_step():
    rows = [("ckpt-1", 1, "heldout", "l1", 0.2), ("ckpt-2", 2, "heldout", "l1", 0.2)]
    r = rank_checkpoints(_results(rows), _ckpts(["ckpt-1", "ckpt-2"]), None,
                         RankingConfig(bootstrap=0))
    assert r.winner == "ckpt-2"


def _samples(values: dict[str, np.ndarray], dataset="heldout", metric="l1") -> pd.DataFrame:
    rows = []
    for ck, v in values.items():
        for i, x in enumerate(v):
            rows.append({"checkpoint": ck, "dataset": dataset, "sample_id": f"s{i}",
                         "metric": metric, "value": float(x), "idx": i})
    return pd.DataFrame(rows)


def _from_samples(values: dict[str, np.ndarray]) -> pd.DataFrame:
    return _results([(ck, int(ck.split("-")[1]), "heldout", "l1", float(np.mean(v)))
                     for ck, v in values.items()])


def test_bootstrap_clear_winner_always_first_and_noise_spreads_first_place():
    rng = np.random.default_rng(0)
    base = rng.normal(0.3, 0.05, 40)
    clear = {"ckpt-1": base + 0.2, "ckpt-2": base, "ckpt-3": base + 0.1}
    r = rank_checkpoints(_from_samples(clear), _ckpts(list(clear)), _samples(clear),
                         RankingConfig(bootstrap=300))
    t = r.table.set_index("checkpoint")
    assert r.winner == "ckpt-2" and t.loc["ckpt-2", "p_first"] == 1.0
    assert t["p_first"].sum() == pytest.approx(1.0)
    assert (t.loc["ckpt-2", "rank_lo"], t.loc["ckpt-2", "rank_hi"]) == (1, 1)
    assert r.counted["resampled"].tolist() == ["per-sample"]

    noise = {f"ckpt-{i}": rng.normal(0.3, 0.05, 40) for i in (1, 2, 3)}
    r2 = rank_checkpoints(_from_samples(noise), _ckpts(list(noise)), _samples(noise),
                          RankingConfig(bootstrap=300))
    pf = r2.table.set_index("checkpoint")["p_first"]
    assert pf.sum() == pytest.approx(1.0)
    assert pf.max() < 0.9 and (pf > 0).sum() >= 2
    # seeded: the same inputs give the same stability; another seed another draw
    again = rank_checkpoints(_from_samples(noise), _ckpts(list(noise)), _samples(noise),
                             RankingConfig(bootstrap=300))
    assert again.table["p_first"].tolist() == r2.table["p_first"].tolist()
    other = rank_checkpoints(_from_samples(noise), _ckpts(list(noise)), _samples(noise),
                             RankingConfig(bootstrap=300, seed=5))
    assert other.table["p_first"].tolist() != r2.table["p_first"].tolist()


def test_bootstrap_is_paired_across_checkpoints():
    """Checkpoint 2 is better than 1 on EVERY sample by a hair, while samples vary a lot:
    a paired bootstrap (same draw for both) always ranks 2 first."""
    rng = np.random.default_rng(1)
    base = rng.uniform(0.1, 0.9, 30)
    vals = {"ckpt-1": base + 0.001, "ckpt-2": base}
    r = rank_checkpoints(_from_samples(vals), _ckpts(list(vals)), _samples(vals),
                         RankingConfig(bootstrap=200))
    assert r.table.set_index("checkpoint").loc["ckpt-2", "p_first"] == 1.0


def test_set_level_metrics_use_their_ci_or_stay_fixed():
    rows = [("ckpt-1", 1, "heldout", "kid", 0.010, "ok", 0.0, 0.030),
            ("ckpt-2", 2, "heldout", "kid", 0.011, "ok", 0.0, 0.030)]
    ck = _ckpts(["ckpt-1", "ckpt-2"])
    fixed = rank_checkpoints(_results(rows), ck, None, RankingConfig(bootstrap=200,
                                                                     set_level="fixed"))
    assert fixed.counted["resampled"].tolist() == ["fixed"]
    assert fixed.table.set_index("checkpoint").loc["ckpt-1", "p_first"] == 1.0
    ci = rank_checkpoints(_results(rows), ck, None, RankingConfig(bootstrap=400))
    assert ci.counted["resampled"].tolist() == ["ci"]
    pf = ci.table.set_index("checkpoint")["p_first"]
    assert 0.3 < pf["ckpt-1"] < 0.7  # overlapping CIs: a coin flip, and it says so


def test_default_config_hand_drawn_counts_at_least_as_much():
    c = RankingConfig()
    assert c.track_weight("sketches", "sketches") >= c.track_weight("heldout", "heldout") > 0
    assert ranking_config(None).bootstrap == 1000


@pytest.mark.parametrize("body, line, match", [
    ("[ranking]\nbogus = 1\n", 2, "unknown key 'bogus'"),
    ("[ranking]\nbootstrap = -3\n", 2, "'bootstrap' must be an integer"),
    ("[ranking]\nset_level = \"wild\"\n", 2, "'set_level' must be one of"),
    ("[ranking]\nmethod = \"borda\"\n", 2, "'method' must be one of 'pairwise', 'ranks'"),
    ("[ranking.metrics]\nl1 = -1\n", 2, "weight of metric 'l1'"),
    ("[ranking.metrics]\nl1 = 1\nsharpness = 2\n", 3, "does not know whether lower or higher"),
    ("[ranking.metrics]\nsharp = { weight = 1, direction = \"up\" }\n", 2, "direction of metric"),
    ("[ranking.metrics]\n\n[ranking.metrics.l1]\nweight = 1\nhow = 2\n", 5, "unknown key 'how'"),
    ("[ranking.tracks]\nheldout = \"a lot\"\n", 2, "track weight of 'heldout'"),
    ("[ranking.tracks]\nheldout = 0\nsketches = 0\n", None, "every track weight"),
    ("[ranking.metrics]\nl1 = 0\n", None, "every metric weight"),
])
def test_config_errors_name_file_and_line(tmp_path, body, line, match):
    cfg = tmp_path / "evalkit.toml"
    cfg.write_text("[run]\nimage_size = 32\n\n" + body)
    with pytest.raises(ConfigError, match=match) as exc:
        ranking_config(cfg)
    if line is not None:
        assert f"{cfg}:{line + 3}:" in str(exc.value)
    else:
        assert str(cfg) in str(exc.value)


def test_custom_metric_with_direction(tmp_path):
    cfg = tmp_path / "evalkit.toml"
    cfg.write_text("[ranking]\nbootstrap = 0\n[ranking.metrics]\n"
                   "sharp = { weight = 1, direction = \"higher\" }\n")
    rows = [("ckpt-1", 1, "heldout", "sharp", 3.0), ("ckpt-2", 2, "heldout", "sharp", 1.0)]
    r = rank_checkpoints(_results(rows), _ckpts(["ckpt-1", "ckpt-2"]), None,
                         ranking_config(cfg))
    assert r.winner == "ckpt-1"
    assert str(cfg) in r.rule_text()


# A cycle through a weak-looking checkpoint (three metrics weighted .25/.40/.35, one per
# order): X beats Y by 0.2, Y beats Z by 0.3, Z beats X by 0.5. Schulze: Y first (its chain
# Y->Z->X, 0.3, beats X's direct 0.2). Z never comes first, but without Z, X beats Y
# directly and comes first: Z carries the full pick's chain.
CYCLE_METRICS = {"l1": 0.25, "ssim": 0.40, "psnr": 0.35}
#   rank on:      l1 ssim psnr  (1 = best)
CYCLE_RANKS = {"ckpt-1": [1, 3, 2],   # X
               "ckpt-2": [2, 1, 3],   # Y
               "ckpt-3": [3, 2, 1]}   # Z


def _cycle_results(names):
    rows = []
    for ck in names:
        for m, rank in zip(CYCLE_METRICS, CYCLE_RANKS[ck], strict=True):
            lower = m == "l1"
            rows.append((ck, int(ck.split("-")[1]), "heldout", m,
                         float(rank) if lower else float(10 - rank)))
    return _results(rows)


def _cycle_config():
    from evalkit.decide.ranking.rule import MetricRule

    return RankingConfig(bootstrap=200, set_level="fixed", metrics={
        m: MetricRule(m, w, "lower" if m == "l1" else "higher")
        for m, w in CYCLE_METRICS.items()})


def test_smith_set_membership_and_its_bootstrap_share():
    from evalkit.decide.ranking.scores import _smith_members

    names = ["ckpt-1", "ckpt-2", "ckpt-3"]
    r = rank_checkpoints(_cycle_results(names), _ckpts(names), None, _cycle_config())
    m = r.margins
    assert m.loc["ckpt-1", "ckpt-2"] == pytest.approx(0.2)
    assert m.loc["ckpt-2", "ckpt-3"] == pytest.approx(0.3)
    assert m.loc["ckpt-3", "ckpt-1"] == pytest.approx(0.5)
    assert r.winner == "ckpt-2"
    t = r.table.set_index("checkpoint")
    assert t.loc["ckpt-3", "p_first"] == 0.0 and t.loc["ckpt-3", "p_smith"] == 1.0
    # a Condorcet loser is outside; a tie keeps both in
    loser = np.array([[0, .2, .2], [-.2, 0, .2], [-.2, -.2, 0]])
    assert _smith_members(loser).tolist() == [True, False, False]
    assert _smith_members(np.zeros((2, 2))).tolist() == [True, True]


def test_racing_keeps_a_weak_checkpoint_that_carries_the_full_pick():
    from evalkit.execute.racing.race import losers

    names = ["ckpt-1", "ckpt-2", "ckpt-3"]
    full = rank_checkpoints(_cycle_results(names), _ckpts(names), None, _cycle_config())
    p = dict(zip(full.table.checkpoint, full.table.p_first, strict=True))
    # the old rule (p_first alone) would drop ckpt-3, and the pick would change:
    assert p["ckpt-3"] < 0.01
    without = rank_checkpoints(_cycle_results(names[:2]), _ckpts(names[:2]), None,
                               _cycle_config())
    assert without.winner == "ckpt-1" != full.winner
    # the race rule keeps it: it is in the Smith set in every resample
    assert losers(full, p, 0.01, settled=[]) == {}
    # a checkpoint every other beats is still raced out
    rows = _cycle_results(names)
    rows = pd.concat([rows, _results([("ckpt-4", 4, "heldout", m, 9.0 if m == "l1" else 0.0)
                                      for m in CYCLE_METRICS])])
    four = names + ["ckpt-4"]
    r4 = rank_checkpoints(rows, _ckpts(four), None, _cycle_config())
    p4 = dict(zip(r4.table.checkpoint, r4.table.p_first, strict=True))
    assert set(losers(r4, p4, 0.01, settled=[])) == {"ckpt-4"}
    assert losers(r4, p4, 0.01, settled=["ckpt-4"]) == {}


def _close_race(n=24, seed=3):
    """Three checkpoints whose l1 means differ by less than their noise."""
    rng = np.random.default_rng(seed)
    means = {"ckpt-1": 0.500, "ckpt-2": 0.508, "ckpt-3": 0.530}
    srows, rows = [], []
    for ck, mu in means.items():
        vals = mu + rng.normal(0, 0.04, n)
        vals += mu - vals.mean()  # exact means
        for i, v in enumerate(vals):
            srows.append({"checkpoint": ck, "dataset": "heldout", "sample_id": f"s{i}",
                          "metric": "l1", "value": float(v), "idx": i})
        rows.append((ck, int(ck[-1]), "heldout", "l1", mu))
    res = _results(rows)
    res["n"] = n
    return res, _ckpts(list(means)), pd.DataFrame(srows)


def test_settle_advice_projects_the_samples_that_would_make_the_pick_stable():
    from evalkit.decide.ranking.rule import MetricRule
    from evalkit.decide.ranking.settle import FACTORS, _shrink, settle_advice

    res, ck, sm = _close_race()
    cfg = RankingConfig(bootstrap=400, metrics={"l1": MetricRule("l1", 1.0, "lower")},
                        stable_at=0.8)
    top = rank_checkpoints(res, ck, sm, cfg).participants.iloc[0]
    assert top["p_first"] < 0.8  # unstable as measured
    (adv,) = settle_advice(res, ck, sm, cfg, ["heldout"], {"heldout": 24})
    assert adv["factor"] in FACTORS and adv["leader"] == "ckpt-1"
    assert adv["more"] == int(np.ceil(24 * (adv["factor"] - 1)))
    # consistent with the projection it reports: the factor before it does not settle it
    smaller = [k for k in FACTORS if k < adv["factor"]]
    if smaller:
        r, s = _shrink(res, sm, "heldout", smaller[-1])
        assert rank_checkpoints(r, ck, s, cfg).participants.iloc[0]["p_first"] < 0.8
    assert adv["p_first"] >= 0.8
    # shrinking keeps each checkpoint's mean
    _, s = _shrink(res, sm, "heldout", 4.0)
    assert s.groupby("checkpoint")["value"].mean().to_dict() == pytest.approx(
        sm.groupby("checkpoint")["value"].mean().to_dict())
