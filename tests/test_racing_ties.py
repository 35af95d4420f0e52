"""Racing's guarantee when the head-to-head (Schulze) order ties at the top.

Found by ``benchmarks/bench_race.py --train-seed 2`` (200 + 12, reports/benchmarks.md section
``bench_race_smith_2_same_run``): three checkpoints beat each other in a cycle of equal
margins, so Schulze ties them; the tie is broken by the weighted normalized ranks over *all*
participants, which a checkpoint outside the Smith set can change. Every race kept the whole
Smith set and still picked another checkpoint than the full evaluation (0 of 5). The tie is
now broken among the tied checkpoints only (``scores._group_rank_scores``).
"""

from __future__ import annotations

import pytest

from tests.test_ranking import _ckpts, _results

METRICS = ("l1", "ssim", "psnr")
# rank on each metric (1 = best): X, Y, Z form a cycle with equal margins (1/3 each);
# W loses to each of them head to head but lies between X and Y on l1.
RANKS = {"ckpt-1": (1, 2, 3),   # X
         "ckpt-2": (3, 3, 1),   # Y
         "ckpt-3": (4, 1, 2),   # Z
         "ckpt-4": (2, 4, 4)}   # W


def _rows(names):
    return _results([(ck, int(ck.split("-")[1]), "heldout", m,
                      float(r) if m == "l1" else float(10 - r))
                     for ck in names for m, r in zip(METRICS, RANKS[ck], strict=True)])


def _config():
    from evalkit.decide.ranking.rule import MetricRule, RankingConfig

    return RankingConfig(bootstrap=200, set_level="fixed", metrics={
        m: MetricRule(m, 1 / 3, "lower" if m == "l1" else "higher") for m in METRICS})


def _rank(names):
    from evalkit.decide.ranking.rank import rank_checkpoints

    return rank_checkpoints(_rows(names), _ckpts(names), None, _config())


def test_the_constructed_case_is_a_tied_cycle_with_a_smith_dominated_fourth():
    full = _rank(list(RANKS))
    m = full.margins
    assert m.loc["ckpt-1", "ckpt-2"] == pytest.approx(1 / 3)
    assert m.loc["ckpt-2", "ckpt-3"] == pytest.approx(1 / 3)
    assert m.loc["ckpt-3", "ckpt-1"] == pytest.approx(1 / 3)
    assert (m.loc["ckpt-4"].drop("ckpt-4") < 0).all()
    t = full.participants.set_index("checkpoint")
    top = t.loc[["ckpt-1", "ckpt-2", "ckpt-3"], "score"]
    assert top.nunique() == 1  # Schulze ties the cycle
    assert t.loc["ckpt-4", "p_smith"] == 0.0


def test_a_checkpoint_racing_drops_cannot_change_the_pick_when_the_top_ties():
    from evalkit.execute.racing.race import losers

    full = _rank(list(RANKS))
    p = dict(zip(full.table.checkpoint, full.table.p_first, strict=True))
    dropped = losers(full, p, 0.01, settled=[])
    assert "ckpt-4" in dropped  # outside the Smith set in every resample
    kept = [c for c in RANKS if c not in dropped]
    assert _rank(kept).winner == full.winner


def test_group_rank_scores_equal_normalized_ranks_within_each_tied_group():
    """Cross-check against :func:`_norm_ranks` applied to each group's members alone."""
    import numpy as np

    from evalkit.decide.ranking.scores import _group_rank_scores, _norm_ranks

    rng = np.random.default_rng(3)
    J, B, K = 3, 40, 7
    vals = rng.integers(0, 4, size=(J, B, K)).astype(float)  # many equal values
    vals[rng.random((J, B, K)) < 0.1] = np.nan
    primary = rng.integers(0, 3, size=(B, K)) / 6.0  # groups of equal score
    weights = np.array([0.5, 0.3, 0.2])
    lower = np.array([True, False, True])
    got = _group_rank_scores(vals, weights, lower, primary)
    for b in range(B):
        for level in np.unique(primary[b]):
            g = np.flatnonzero(primary[b] == level)
            want = sum(weights[j] * _norm_ranks(vals[j, b, g], bool(lower[j]))
                       for j in range(J))
            if len(g) == 1:
                want = np.zeros(1)
            np.testing.assert_allclose(got[b, g], want, atol=1e-12)
