"""Bradley–Terry fit (evalkit.decide.review.bt): hand-computed cases, the likelihood equations,
agreement with choix, recovery of known strengths and CI coverage in a seeded simulation."""

from __future__ import annotations

import math

import numpy as np
import pytest

from evalkit.decide.review.bt import fit_counts, fit_votes, win_matrix


def _simulate(theta: np.ndarray, n_votes: int, rng: np.random.Generator, tie_rate: float = 0.0
              ) -> list[tuple[str, str, float]]:
    """Votes from the BT model with strengths ``theta`` on uniformly drawn pairs; with
    ``tie_rate``, that share of votes is "same" instead."""
    k = len(theta)
    out = []
    for _ in range(n_votes):
        i, j = rng.choice(k, size=2, replace=False)
        if rng.random() < tie_rate:
            s = 0.5
        else:
            p = 1.0 / (1.0 + math.exp(theta[j] - theta[i]))
            s = 1.0 if rng.random() < p else 0.0
        out.append((f"c{i}", f"c{j}", s))
    return out


def test_two_checkpoints_by_hand():
    # A beat B 3 times, B beat A once: the MLE of t_A - t_B is log(3/1)
    w = win_matrix([(0, 1, 1.0)] * 3 + [(0, 1, 0.0)], 2)
    assert w.tolist() == [[0, 3], [1, 0]]
    t = fit_counts(w, prior=0)
    assert t[0] - t[1] == pytest.approx(math.log(3), abs=1e-9)
    assert t.sum() == pytest.approx(0, abs=1e-12)  # centred
    # a tie is half a win each: 2 wins + 1 tie vs 0 wins + 1 tie -> log(2.5 / 0.5)
    w = win_matrix([(0, 1, 1.0), (0, 1, 1.0), (0, 1, 0.5)], 2)
    assert w.tolist() == [[0, 2.5], [0.5, 0]]
    t = fit_counts(w, prior=0)
    assert t[0] - t[1] == pytest.approx(math.log(5), abs=1e-9)
    # the default prior: one virtual tied game, half a win each way -> log(3.5 / 1.5)
    t = fit_counts(np.array([[0, 3.0], [1.0, 0]]))
    assert t[0] - t[1] == pytest.approx(math.log(3.5 / 1.5), abs=1e-9)
    # all wins: no MLE without the prior, a finite one with it: log(3.5 / 0.5)
    with pytest.raises(ValueError, match="strongly connected"):
        fit_counts(np.array([[0, 3.0], [0, 0]]), prior=0)
    t = fit_counts(np.array([[0, 3.0], [0, 0]]))
    assert t[0] - t[1] == pytest.approx(math.log(7), abs=1e-9)


def test_cycle_by_hand_gives_equal_strengths():
    # A>B 2-1, B>C 2-1, C>A 2-1: every checkpoint wins 3 of 6; symmetric, so all equal
    w = np.array([[0, 2, 1], [1, 0, 2], [2, 1, 0]], float)
    assert np.allclose(fit_counts(w, prior=0), 0, atol=1e-9)


def test_fit_solves_the_likelihood_equations():
    # at the MLE each checkpoint's observed wins equal its expected wins (Hunter 2004)
    rng = np.random.default_rng(3)
    w = rng.integers(1, 6, (5, 5)).astype(float)
    np.fill_diagonal(w, 0)
    t = fit_counts(w, prior=0)
    p = 1 / (1 + np.exp(t[None, :] - t[:, None]))  # p[i, j] = P(i beats j)
    n = w + w.T
    expected = (n * p).sum(axis=1)
    assert np.allclose(expected, w.sum(axis=1), atol=1e-7)


def test_agrees_with_choix():
    choix = pytest.importorskip("choix", reason="choix (the reference BT implementation, "
                                                "a dev extra) is not installed")
    rng = np.random.default_rng(5)
    w = rng.integers(0, 5, (6, 6)).astype(float)
    np.fill_diagonal(w, 0)
    ref = choix.ilsr_pairwise_dense(w, tol=1e-12, max_iter=10000)
    assert np.abs(fit_counts(w, prior=0) - ref).max() < 1e-6
    off = 1 - np.eye(6)
    ref = choix.ilsr_pairwise_dense(w + 0.5 * off, tol=1e-12, max_iter=10000)
    assert np.abs(fit_counts(w, prior=1.0) - ref).max() < 1e-6


def test_batched_fit_equals_one_by_one():
    rng = np.random.default_rng(1)
    stack = rng.integers(0, 4, (7, 4, 4)).astype(float)
    batched = fit_counts(stack)
    for b in range(7):
        assert np.allclose(batched[b], fit_counts(stack[b]), atol=1e-9)


def test_recovers_the_order_of_known_strengths():
    theta = np.array([-1.0, -0.4, 0.1, 0.5, 1.2])
    rng = np.random.default_rng(11)
    votes = _simulate(theta, 600, rng, tie_rate=0.1)
    fit = fit_votes([f"c{i}" for i in range(5)], votes, bootstrap=200, seed=0)
    assert fit.items == [f"c{i}" for i in range(5)]
    assert list(np.argsort(fit.theta)) == [0, 1, 2, 3, 4]
    # random ties (not part of the model) shrink strengths toward 0, not the order
    assert np.corrcoef(fit.theta, theta)[0, 1] > 0.98
    assert (fit.ci_low < fit.theta).all() and (fit.theta < fit.ci_high).all()
    assert fit.n_votes == 600 and fit.votes.sum() == 1200


def test_checkpoints_without_votes_are_left_out():
    fit = fit_votes(["a", "b", "c"], [("a", "c", 1.0), ("c", "a", 1.0), ("a", "c", 1.0)],
                    bootstrap=50)
    assert fit.items == ["a", "c"]
    assert fit.theta[0] > fit.theta[1]
    assert fit.votes.tolist() == [3, 3]


def test_bootstrap_ci_covers_the_truth_at_about_the_nominal_rate():
    """Seeded simulation: 160 data sets of 300 votes among 4 checkpoints with known
    strengths; the 95 % percentile intervals of the centred strengths should cover the
    centred truth in about 95 % of 640 cases."""
    theta = np.array([-0.6, -0.2, 0.2, 0.6])
    truth = theta - theta.mean()
    rng = np.random.default_rng(7)
    hits = total = 0
    for rep in range(160):
        votes = _simulate(theta, 300, rng)
        fit = fit_votes([f"c{i}" for i in range(4)], votes, bootstrap=200, seed=rep)
        assert fit.items == [f"c{i}" for i in range(4)]
        hits += int(((fit.ci_low <= truth) & (truth <= fit.ci_high)).sum())
        total += 4
    coverage = hits / total
    print(f"coverage {coverage:.3f} of {total} intervals")
    assert 0.92 <= coverage <= 0.98, coverage
