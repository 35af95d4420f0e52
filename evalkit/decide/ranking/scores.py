"""The arithmetic of a ranking: normalized ranks, head-to-head (Schulze) scores, the
participant order and the paired bootstrap of the ranks.

Split from :mod:`evalkit.decide.ranking.rank` (which gathers the values and builds the table) by job;
the rule is documented there and in ``docs/ranking.md``.
"""

from __future__ import annotations

import zlib

import numpy as np
import pandas as pd

from evalkit.decide.ranking.rule import RankingConfig

#: Margins within this of 0 are ties (sums of float weights are not exact).
MARGIN_EPS = 1e-12


def effective_weights(counted: pd.DataFrame, stored: dict[str, float], rule: str
                      ) -> tuple[np.ndarray, pd.DataFrame]:
    """Effective weight of each counted (dataset, metric), by ``[ranking] track_weights``.

    Args:
        counted: one row per counted pair: ``dataset``, ``mw`` (metric weight > 0), ``tw``
            (the dataset's ``[ranking.tracks]`` weight > 0).
        stored: per dataset, the summed metric weight of every metric of the ranking's list
            (weight > 0) stored there, measured or not (skipped for missing weights or
            targets, failed): what the track would count were everything measured.
        rule: ``"fixed"``, ``"measured"`` or ``"per_metric"`` (:data:`TRACK_WEIGHT_RULES`).

    Returns:
        ``(weights, tracks)``: ``weights`` ``(J,)`` summing to 1 (metric weights normalized
        within their track, times the track's weight), and one row per counted track:
        ``dataset``, ``configured`` (its ``[ranking.tracks]`` weight normalized over the
        counted tracks: its weight under ``"fixed"``), ``measured`` (counted / stored metric
        weight, in (0, 1]), ``weight`` (its total effective weight under ``rule``).

    ``fixed``: track weight ``t_d = tw_d``. ``measured``: ``t_d = tw_d * measured_d``.
    Both then normalize ``t_d`` to sum 1 and split it over the track's counted metrics in
    proportion to their weights. ``per_metric``: weight ``tw_d * mw`` for every counted
    metric, normalized over all of them (no per-track normalization).
    """
    if counted.empty:
        return np.zeros(0), pd.DataFrame(columns=["dataset", "configured", "measured",
                                                  "weight"])
    mw = counted["mw"].to_numpy(float)
    tw = counted["tw"].to_numpy(float)
    track_sum = counted.groupby("dataset")["mw"].transform("sum").to_numpy(float)
    tracks = counted.drop_duplicates("dataset")[["dataset", "tw"]].reset_index(drop=True)
    counted_mw = counted.groupby("dataset")["mw"].sum()
    tracks["measured"] = [min(1.0, float(counted_mw[d]) / max(stored.get(d, 0.0),
                                                               float(counted_mw[d])))
                          for d in tracks["dataset"]]
    tracks["configured"] = tracks["tw"] / tracks["tw"].sum()
    if rule == "per_metric":
        weights = tw * mw / float((tw * mw).sum())
    else:
        scale = tracks["measured"] if rule == "measured" else 1.0
        t = tracks["tw"] * scale
        t = dict(zip(tracks["dataset"], t / t.sum(), strict=True))
        weights = mw / track_sum * counted["dataset"].map(t).to_numpy(float)
    tracks["weight"] = [float(weights[(counted["dataset"] == d).to_numpy()].sum())
                        for d in tracks["dataset"]]
    return weights, tracks[["dataset", "configured", "measured", "weight"]]


def _average_ranks(values: np.ndarray) -> np.ndarray:
    """Ranks along axis 0 (1 = smallest), ties share their average rank, NaN stays NaN.

    ``rank_i = #{j: x_j < x_i} + (#{j: x_j == x_i} + 1) / 2`` over the non-NaN entries of
    the column (what ``scipy.stats.rankdata(method="average", nan_policy="omit")`` gives,
    without importing scipy.stats, which costs seconds). Chunked over columns to keep the
    ``(K, K, chunk)`` comparison under ~50 MB.
    """
    k = values.shape[0]
    flat = values.reshape(k, -1)
    out = np.full(flat.shape, np.nan)
    step = max(1, int(5e7 // max(1, k * k)))
    for a in range(0, flat.shape[1], step):
        x = flat[:, a:a + step]
        less = (x[None, :, :] < x[:, None, :]).sum(axis=1)
        equal = (x[None, :, :] == x[:, None, :]).sum(axis=1)
        out[:, a:a + step] = np.where(np.isnan(x), np.nan, less + (equal + 1) / 2.0)
    return out.reshape(values.shape)


def _norm_ranks(values: np.ndarray, lower_better: bool) -> np.ndarray:
    """Normalized ranks along axis 0 of ``values`` ``(K, ...)``: 0 = best, 1 = worst;
    NaN (no value) -> 1. Ties share the average rank."""
    k = values.shape[0]
    if k <= 1:
        return np.where(np.isnan(values), 1.0, 0.0)
    ranks = _average_ranks(values if lower_better else -values)
    return np.where(np.isnan(values), 1.0, (ranks - 1.0) / (k - 1))


def _margins(vals: np.ndarray, weights: np.ndarray, lower: np.ndarray) -> np.ndarray:
    """Weighted head-to-head margins ``(..., K, K)`` of ``vals`` ``(J, ..., K)``.

    ``m_ab = sum_j w_j * s_j(a, b)`` in [-1, 1] over the J counted (dataset, metric) pairs
    (``weights`` ``(J,)`` effective, summing to 1; ``lower`` ``(J,)`` whether lower is
    better), with ``s = +1`` when ``a`` is better on pair j, ``-1`` when worse, 0 when
    equal; no value (NaN) is worse than any value (two NaN: equal). ``a`` beats ``b``
    head to head when ``m_ab > 0``: better on a larger weighted share of the metrics.
    """
    k = vals.shape[-1]
    margin = np.zeros(vals.shape[1:] + (k,))
    for j in range(vals.shape[0]):
        x = np.where(np.isnan(vals[j]), np.inf, vals[j] if lower[j] else -vals[j])
        a, b = x[..., :, None], x[..., None, :]
        margin += weights[j] * ((a < b).astype(np.float64) - (a > b))
    return margin


def _schulze_scores(margin: np.ndarray) -> np.ndarray:
    """Schulze loss share of each participant, for ``[ranking] method = "pairwise"``.

    ``margin`` is ``(..., K, K)`` head-to-head margins (:func:`_margins`). Schulze's
    method (M. Schulze, "A new monotonic, clone-independent, reversal symmetric, and
    Condorcet-consistent single-winner election method", Social Choice and Welfare 36,
    2011): the strength of a chain of head-to-head wins ``a -> c -> ... -> b`` is its
    weakest margin, ``p_ab`` the strongest chain from ``a`` to ``b`` (0 if none), and
    ``a`` comes before ``b`` when ``p_ab > p_ba``. That order is transitive; a checkpoint
    that beats every other head to head (a Condorcet winner) comes first, and a
    checkpoint that every member of the top group beats (the Smith set) cannot change
    the order of that group, nor can adding near copies of a checkpoint (clone
    independence: consecutive checkpoints often are near copies).
    Returns ``(..., K)`` in [0, 1]: ``(checkpoints before it + ties / 2) / (K - 1)``
    (0 = first; 0 for K = 1).

    Why by hand: neither numpy, scipy nor pandas has Schulze's method; it is a widest-path
    Floyd-Warshall (K steps over ``(..., K, K)``), chunked by the caller to bound memory.
    """
    k = margin.shape[-1]
    eps = MARGIN_EPS
    p = np.where(margin > eps, margin, 0.0)
    for c in range(k):
        np.maximum(p, np.minimum(p[..., :, c:c + 1], p[..., c:c + 1, :]), out=p)
    diff = p - np.swapaxes(p, -1, -2)
    before = (diff < -eps).sum(axis=-1)  # b with p_ba > p_ab: b comes before a
    ties = (np.abs(diff) <= eps).sum(axis=-1) - 1  # minus the diagonal
    return (before + ties / 2.0) / max(1, k - 1)


def _smith_members(margin: np.ndarray) -> np.ndarray:
    """``(..., K)`` whether each participant is in the Smith set of ``margin`` ``(..., K, K)``.

    The Smith set is the smallest non-empty group whose every member beats (``m > 0``) or
    ties every outsider head to head; a participant is in it exactly when it reaches every
    other through a chain of "beats or ties" (Smith, "Aggregation of preferences with
    variable electorate", Econometrica 41, 1973). Schulze's order is independent of
    Smith-dominated alternatives: removing a participant outside the Smith set cannot
    change who comes first, which is what lets a race drop it.

    Why by hand: a transitive closure (Warshall) over ``(..., K, K)`` booleans, which
    numpy, scipy and pandas do not offer batched.
    """
    reach = margin >= -MARGIN_EPS
    k = margin.shape[-1]
    for c in range(k):
        reach |= reach[..., :, c:c + 1] & reach[..., c:c + 1, :]
    return reach.all(axis=-1)


def _group_rank_scores(vals: np.ndarray, weights: np.ndarray, lower: np.ndarray,
                       primary: np.ndarray) -> np.ndarray:
    """The tie-break of the head-to-head order: each participant's weighted normalized-rank
    score among only the participants it ties with on ``primary`` (its Schulze score).

    ``vals`` ``(J, ..., K)``, ``weights``/``lower`` ``(J,)`` as in :func:`_margins`,
    ``primary`` ``(..., K)``. For every group of equal primary score (within 1e-12) and
    counted metric j: ``r = (rank within the group - 1) / (group size - 1)`` in [0, 1]
    (0 = best, ties share the average rank, no value = 1, a group of one: 0), then
    ``sum_j w_j * r_j``. Returns ``(..., K)``.

    Why only the tied group: ranked among all participants, a checkpoint that every member
    of the top group beats (outside the Smith set) could still change how a tie at the top
    is broken, by lying between two tied checkpoints on one metric; then racing it out, or
    evaluating one more early epoch, could change the deployment pick. Schulze's order
    never depends on such checkpoints (they are strictly beaten by every Smith member, so
    no strongest chain between members passes through them), and within a group only its
    members count, so the whole order of the Smith set is independent of them.
    Why by hand: a group-restricted average rank, batched over resamples, which numpy,
    scipy and pandas do not offer.
    """
    same = np.abs(primary[..., :, None] - primary[..., None, :]) <= 1e-12  # (..., K, K)
    size = same.sum(axis=-1)
    out = np.zeros(primary.shape)
    for j in range(vals.shape[0]):
        x = vals[j] if lower[j] else -vals[j]  # lower is better; NaN compares False
        a, b = x[..., :, None], x[..., None, :]  # a: the participant, b: the others
        better = (same & (b < a)).sum(axis=-1)
        equal = (same & (b == a)).sum(axis=-1)  # includes itself unless NaN
        rank = better + (equal + 1) / 2.0
        with np.errstate(invalid="ignore", divide="ignore"):
            r = np.where(size > 1, (rank - 1.0) / (size - 1), 0.0)
        out += weights[j] * np.where(np.isnan(x), np.where(size > 1, 1.0, 0.0), r)
    return out


def _order(scores: np.ndarray, rank_scores: np.ndarray, steps: np.ndarray,
           names: list[str]) -> np.ndarray:
    """Participant order: lowest score, then the lowest tie-break score (``rank_scores``:
    the normalized-rank score, for ``method = "pairwise"`` among the tied participants
    only, :func:`_group_rank_scores`), then higher step, then name."""
    keys = sorted(range(len(names)), key=lambda i: (round(float(scores[i]), 12),
                                                    round(float(rank_scores[i]), 12),
                                                    -steps[i], names[i]))
    return np.array(keys, dtype=int)


def _bootstrap_ranks(counted: pd.DataFrame, point: np.ndarray, ci_sd: np.ndarray,
                     per_sample: dict, sample_ids: dict, weights: np.ndarray,
                     steps: np.ndarray, names: list[str], config: RankingConfig,
                     B: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(B, K)`` ranks (1 = first) of each participant in each bootstrap resample,
    ``(B, K)`` whether it is in that resample's Smith set (:func:`_smith_members`), and
    ``(B, K)`` its share of first place (1 when it alone has the best score, ``1/k`` when
    k participants tie for it, else 0; each row sums to 1)."""
    K = point.shape[1]
    # one multinomial count matrix per dataset, seeded by (seed, dataset name), so that
    # adding a dataset does not change another dataset's draws
    counts: dict[str, np.ndarray] = {}
    for ds, ids in sample_ids.items():
        rng = np.random.default_rng([config.seed, zlib.crc32(ds.encode())])
        n = len(ids)
        counts[ds] = rng.multinomial(n, np.full(n, 1.0 / n), size=B).astype(np.float64)
    set_rng = np.random.default_rng([config.seed, 1])
    score_b = np.zeros((B, K))
    pairwise = config.method == "pairwise"
    all_vals = np.empty((len(counted), B, K))
    for j, r in enumerate(counted.itertuples()):
        key = (r.dataset, r.metric)
        vals = np.repeat(point[j][None, :], B, axis=0)  # (B, K)
        if key in per_sample:
            mat = per_sample[key]
            mask = np.isfinite(mat)
            num = counts[r.dataset] @ np.where(mask, mat, 0.0).T  # (B, K)
            den = counts[r.dataset] @ mask.T.astype(np.float64)
            with np.errstate(invalid="ignore", divide="ignore"):
                boot = num / den
            has_ps = mask.any(axis=1)
            # a checkpoint without per-sample values here keeps the set-level treatment
            vals = np.where(has_ps[None, :], boot, vals)
            # where a resample drew only samples without a value, fall back to the point
            vals = np.where(has_ps[None, :] & ~np.isfinite(vals), point[j][None, :], vals)
            set_cols = ~has_ps
        else:
            set_cols = np.ones(K, bool)
        if config.set_level == "ci":
            sd = np.where(set_cols & np.isfinite(ci_sd[j]) & np.isfinite(point[j]),
                          ci_sd[j], 0.0)
            vals = vals + set_rng.standard_normal((B, K)) * sd[None, :]
        if not pairwise:  # pairwise: the tie-break is computed among the tied, below
            score_b += weights[j] * _norm_ranks(vals.T, r.direction == "lower").T  # (B, K)
        all_vals[j] = vals
    primary = np.empty((B, K)) if pairwise else score_b
    smith = np.empty((B, K), dtype=bool)
    lower = np.array([r.direction == "lower" for r in counted.itertuples()], dtype=bool)
    chunk = max(1, int(4e6 // max(1, K * K)))  # bounds the (chunk, K, K) margins
    for a in range(0, B, chunk):
        margin = _margins(all_vals[:, a:a + chunk], weights, lower)
        smith[a:a + chunk] = _smith_members(margin)
        if pairwise:
            primary[a:a + chunk] = _schulze_scores(margin)
            # ties of the head-to-head order are broken among the tied only
            score_b[a:a + chunk] = _group_rank_scores(all_vals[:, a:a + chunk], weights,
                                                      lower, primary[a:a + chunk])
    # same order as _order, vectorized: score, tie-break score (rounded), then the
    # tie-break position
    tie = np.empty(K, dtype=np.int64)
    tie[sorted(range(K), key=lambda i: (-steps[i], names[i]))] = np.arange(K)
    order = np.lexsort((np.broadcast_to(tie, (B, K)), np.round(score_b, 12),
                        np.round(primary, 12)), axis=-1)
    ranks = np.empty((B, K), dtype=np.int64)
    np.put_along_axis(ranks, order, np.broadcast_to(np.arange(1, K + 1), (B, K)), axis=-1)
    # credit for coming first: where k participants share the best primary score (a tie
    # of the head-to-head order, broken only by the tie-break), each gets 1/k, so that
    # P(first) measures the data's evidence, not the tie-break's preference
    prim = np.round(primary, 12)
    top = prim == prim.min(axis=1, keepdims=True)
    first_share = top / top.sum(axis=1, keepdims=True)
    return ranks, smith, first_share
