"""Ranking checkpoints: weighted pairwise majority (or normalized ranks), and how stable
the winner is.

The method (documented for users in ``docs/ranking.md``):

1. **Participants.** Every checkpoint with status ``ok`` and stored results. Failed
   checkpoints are listed as excluded, with their error.
2. **Counted metrics.** ``[ranking.metrics]`` says which metrics count, with a weight
   (>= 0) and, for a metric evalkit does not know, a direction. A (dataset, metric) pair
   counts when its metric has weight > 0, its dataset's track weight is > 0, and at least
   one participant has an ``ok`` finite value for it. Everything else is shown in the
   report as "not counted", with the reason.
3. **Normalized rank.** For each counted (dataset, metric), participants are ranked by value
   in the metric's better direction (rank 1 = best, ties share the average rank) and the
   rank is mapped to ``r = (rank - 1) / (K - 1)`` in [0, 1] (``K`` participants; ``r = 0``
   when ``K == 1``). A participant without a value there (metric skipped or failed for it)
   gets ``r = 1``, the worst: a checkpoint cannot win by not being measured.
4. **Weights.** Within a dataset ("track") the metric weights are normalized to sum to 1
   over its counted metrics; the tracks are then weighted by ``[ranking.tracks]`` and
   normalized to sum to 1. So the effective weight of (dataset d, metric m) is
   ``w_d * w_m / (sum_m' w_m') / (sum_d' w_d')`` and all effective weights sum to 1. A track
   with many metrics does not outweigh a track with few. ``[ranking] track_weights``
   says how a track's weight follows the metrics actually measured there (``"fixed"``,
   ``"measured"``, ``"per_metric"``): :func:`~evalkit.decide.ranking.scores.effective_weights`.
5. **Rank score.** ``rank_score = sum of effective weight * r``, in [0, 1]: 0 = best on
   every counted metric, 1 = worst on every one.
6. **Score** (``[ranking] method``):

   - ``"pairwise"`` (default): checkpoint ``a`` *beats* ``b`` head to head when it is
     better on a larger weighted share of the counted metrics, each compared between
     ``a`` and ``b`` alone: margin ``m_ab = sum_j w_j * s_j(a, b) > 0`` with ``s = +1``
     better, ``-1`` worse, ``0`` equal (no value is worse than any value). The order is
     Schulze's (Social Choice and Welfare 36, 2011): ``p_ab`` = the strongest chain of
     wins from ``a`` to ``b`` (a chain is as strong as its weakest margin), and ``a``
     comes before ``b`` when ``p_ab > p_ba``. ``score = (checkpoints before it + ties /
     2) / (K - 1)`` in [0, 1]; 0 = first. A checkpoint that beats every other head to
     head (a Condorcet winner) is first.
     Why: the choice between two checkpoints then does not depend on poorer ones. With
     normalized ranks it does: a checkpoint worse than both that lies between them on
     one metric moves their ranks, so adding or dropping an early, poor checkpoint could
     change the deployment pick (measured on a trained 12-checkpoint run: dropping any
     one of four early checkpoints did; docs/ranking.md). Under Schulze, checkpoints
     that every member of the top group beats cannot change the order of that group,
     nor can near copies of a checkpoint (consecutive checkpoints often are). That is
     also what lets a race (:mod:`evalkit.execute.racing`) drop the poor ones without changing
     the choice.
   - ``"ranks"``: ``score = rank_score`` (the rule before pairwise was the default).

   Lowest score ranks first; ties go to the lower rank score (for ``"pairwise"``: computed
   among the tied checkpoints only, so a checkpoint outside the Smith set cannot break a
   tie at the top), then the later checkpoint (higher step), then the name.
7. **Stability.** ``B`` bootstrap resamples (``[ranking] bootstrap``, default 1000,
   seed ``[ranking] seed``, default 0): for each dataset, its samples are drawn with
   replacement (one draw per resample, shared by every checkpoint and metric of that
   dataset: a paired bootstrap), every per-sample metric is re-averaged over the drawn
   samples, and steps 3-6 are repeated. Reported per checkpoint: ``p_first`` (fraction of
   resamples in which it ranks first; where k participants tie for first place on the
   score, each counts 1/k: the tie-break is a rule, not evidence), its mean rank and
   5-95 % rank interval.
   Set-level metrics without per-sample values (FID, KID) cannot be resampled by sample:
   with ``set_level = "ci"`` (default) each resample draws them from a normal distribution
   with the stored value as mean and the stored 95 % CI's half-width / 1.96 as standard
   deviation (independently per checkpoint), and keeps the point value when there is no
   CI; with ``set_level = "fixed"`` they keep their point value in every resample.

Configuration, in ``evalkit.toml`` (every key optional)::

    [ranking]
    method = "pairwise"     # or "ranks" (see step 6)
    bootstrap = 1000        # resamples for the stability estimate (0 = none)
    seed = 0                # bootstrap seed
    set_level = "ci"        # "ci" or "fixed": FID/KID in the bootstrap (see above)
    track_weights = "measured"  # or "fixed", "per_metric": see step 4

    [ranking.tracks]        # weight of each dataset, by dataset name or kind
    heldout = 1.0
    sketches = 1.0

    [ranking.metrics]       # REPLACES the default list: only these metrics count
    l1 = 1.0
    ssim = 1.0
    my_metric = { weight = 0.5, direction = "higher" }

Defaults: :data:`DEFAULT_METRIC_WEIGHTS` and :data:`DEFAULT_TRACK_WEIGHTS` (the hand-drawn
track counts as much as the held-out one).

The reviewers' track (kind ``human``, metric ``bt_score`` from :mod:`evalkit.decide.review`): unless
``[ranking.tracks]`` names it, its weight is 0 below :data:`HUMAN_MIN_VOTES` counted votes
and then equal to the sketch track's (:meth:`RankingConfig.human_weight`); ``Ranking.human``
records which rule applied.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from evalkit.decide.ranking.rule import (  # noqa: F401  (re-exported: callers import them from here)
    _Z95,
    DEFAULT_BOOTSTRAP,
    DEFAULT_METHOD,
    DEFAULT_METRIC_WEIGHTS,
    DEFAULT_SEED,
    DEFAULT_TRACK_WEIGHTS,
    DIRECTIONS,
    HUMAN_KIND,
    HUMAN_MIN_VOTES,
    METHOD,
    METHODS,
    METRIC_KEYS,
    RANKING_KEYS,
    SCORE_TEXT,
    SET_LEVEL_MODES,
    TRACK_WEIGHT_RULES,
    MetricRule,
    RankingConfig,
    config_for,
    ranking_config,
)
from evalkit.decide.ranking.scores import (
    MARGIN_EPS,
    _bootstrap_ranks,
    _group_rank_scores,
    _margins,
    _norm_ranks,
    _order,
    _schulze_scores,
    effective_weights,
)


@dataclass
class Ranking:
    """The ranking of one evaluation folder.

    Attributes:
        config: the rule applied.
        table: one row per checkpoint (participants first, in rank order, then failed
            ones): ``checkpoint, step, status, content_hash, rank`` (1 = best; NA for
            excluded), ``score`` in [0, 1] (lower is better), ``p_first`` in [0, 1],
            ``mean_rank``, ``rank_lo``/``rank_hi`` (5-95 % bootstrap rank interval),
            ``error`` (why a checkpoint is excluded).
        components: one row per (checkpoint, counted dataset/metric): ``value``,
            ``norm_rank`` in [0, 1] (0 = best), ``weight`` (effective).
        counted: one row per counted (dataset, metric): ``dataset, metric, direction,
            weight`` (effective, summing to 1), ``resampled`` (``per-sample``, ``ci`` or
            ``fixed``: how the bootstrap treats it).
        not_counted: ``dataset, metric, reason`` for metrics present but not counted.
        bootstrap: resamples actually drawn (0 when none or fewer than 2 participants).
        human: per ``human`` dataset: ``{"votes", "weight", "rule"}`` (which default or
            configured weight applied to the reviewers' track).
        margins: head-to-head margins between participants (index beats column by this
            weighted share of the counted metrics, in [-1, 1]; antisymmetric).
        tracks: one row per counted track: ``dataset``, ``configured`` (its normalized
            ``[ranking.tracks]`` weight), ``measured`` (share of its stored metric weight
            that counts, in (0, 1]), ``weight`` (its effective weight under ``[ranking]
            track_weights``; :func:`~evalkit.decide.ranking.scores.effective_weights`).
        boot_winners: the checkpoint ranked first in each bootstrap resample, in order
            (empty without a bootstrap): paired comparisons of two rules use it.
    """

    config: RankingConfig
    table: pd.DataFrame
    components: pd.DataFrame
    counted: pd.DataFrame
    not_counted: pd.DataFrame
    bootstrap: int
    human: dict[str, dict] = field(default_factory=dict)
    margins: pd.DataFrame = field(default_factory=pd.DataFrame)
    tracks: pd.DataFrame = field(default_factory=pd.DataFrame)
    boot_winners: list[str] = field(default_factory=list)

    def margin(self, a: str, b: str) -> float | None:
        """The weighted share of counted metrics by which ``a`` beats ``b`` head to head
        (``sum_j w_j * s_j(a, b)``, in [-1, 1]; None when either is not ranked)."""
        if a not in self.margins.index or b not in self.margins.columns:
            return None
        return float(self.margins.loc[a, b])

    @property
    def participants(self) -> pd.DataFrame:
        return self.table[self.table["rank"].notna()]

    @property
    def winner(self) -> str | None:
        p = self.participants
        return None if p.empty else str(p.iloc[0]["checkpoint"])

    @property
    def runner_up(self) -> str | None:
        p = self.participants
        return None if len(p) < 2 else str(p.iloc[1]["checkpoint"])

    def rule_text(self) -> str:
        """The rule in one sentence (what ``selection.json`` calls ``rule.text``)."""
        parts = [f"{r.dataset} {r.metric} ({'lower' if r.direction == 'lower' else 'higher'}"
                 f" better, weight {r.weight:.3f})" for r in self.counted.itertuples()]
        src = str(self.config.source) if self.config.source else "evalkit defaults"
        boot = (f"; stability from {self.bootstrap} paired bootstrap resamples of the samples "
                f"(seed {self.config.seed}, set-level metrics: {self.config.set_level})"
                if self.bootstrap else "")
        if self.config.method == "pairwise":
            head = ("first head to head, one checkpoint beating another when it is better "
                    "on a larger weighted share of ")
            tail = ("; ordered by the strongest chains of such wins (Schulze's method), ties "
                    "to the lower weighted normalized rank score among the tied, then the later "
                    "step")
        else:
            head = "lowest weighted normalized rank score over "
            tail = "; ties go to the later step"
        tw = (f"; track weights \"{self.config.track_weights}\": "
              f"{TRACK_WEIGHT_RULES[self.config.track_weights]}")
        return head + ", ".join(parts) + f" (rule from {src}){tw}{tail}{boot}"


def _direction(config: RankingConfig, metric: str) -> str | None:
    rule = config.metrics.get(metric)
    return rule.direction if rule else DIRECTIONS.get(metric)


def rank_checkpoints(results: pd.DataFrame, checkpoints: pd.DataFrame,
                     sample_metrics: pd.DataFrame | None = None,
                     config: RankingConfig | None = None) -> Ranking:
    """Rank checkpoints by the rule of ``config`` (see the module docstring).

    Args:
        results: :meth:`evalkit.store.results.Store.results` (long: one row per checkpoint,
            dataset, metric).
        checkpoints: :meth:`evalkit.store.results.Store.checkpoints`.
        sample_metrics: :meth:`evalkit.store.results.Store.sample_metrics`, for the bootstrap;
            None or empty gives no per-sample resampling (set-level treatment everywhere).
        config: the rule; default :class:`RankingConfig()`.
    """
    config = config or RankingConfig()
    ck = checkpoints.copy()
    evaluated = set(results["checkpoint"]) if len(results) else set()
    ok_ck = ck[(ck["status"] == "ok") & ck["name"].isin(evaluated)].sort_values(
        ["step", "name"])
    names = ok_ck["name"].tolist()
    steps = ok_ck["step"].to_numpy(dtype=float)
    idx = {n: i for i, n in enumerate(names)}
    K = len(names)
    kinds = (results.drop_duplicates("dataset").set_index("dataset")["kind"].to_dict()
             if len(results) else {})

    # which (dataset, metric) pairs count, and which do not (with the reason)
    res = results[results["checkpoint"].isin(names)]
    okv = res[(res["status"] == "ok") & res["value"].notna()]
    okv = okv[np.isfinite(okv["value"].astype(float))]
    counted_rows, not_counted = [], []
    human = _human_tracks(res, kinds, config)
    stored: dict[str, float] = {}  # per dataset: metric weight stored there, measured or not
    for (ds, metric), _ in res.groupby(["dataset", "metric"], sort=True):
        rule = config.metrics.get(metric)
        tw = human[ds]["weight"] if ds in human else config.track_weight(ds, kinds.get(ds))
        if rule is not None and rule.weight > 0 and tw > 0:
            stored[ds] = stored.get(ds, 0.0) + rule.weight
        have = okv[(okv["dataset"] == ds) & (okv["metric"] == metric)]
        if rule is None:
            reason = "not in the ranking's metric list"
        elif rule.weight == 0:
            reason = "weight 0"
        elif tw == 0:
            reason = (f"track '{ds}' has weight 0" if ds not in human
                      else f"track '{ds}': {human[ds]['rule']}")
        elif have.empty:
            sub = res[(res["dataset"] == ds) & (res["metric"] == metric)]
            reasons = sorted({str(r) for r in sub["reason"].dropna()})
            reason = "no checkpoint has a value" + (f" ({reasons[0]})" if reasons else "")
        else:
            counted_rows.append((ds, metric, rule.direction, rule.weight, tw))
            continue
        not_counted.append({"dataset": ds, "metric": metric, "reason": reason})
    counted = pd.DataFrame(counted_rows, columns=["dataset", "metric", "direction", "mw", "tw"])
    weights, tracks = effective_weights(counted, stored, config.track_weights)
    counted["weight"] = weights

    # per-sample matrices for the bootstrap: (dataset, metric) -> (K, N) with NaN gaps
    per_sample: dict[tuple[str, str], np.ndarray] = {}
    sample_ids: dict[str, list[str]] = {}
    if sample_metrics is not None and len(sample_metrics) and not counted.empty:
        sm = sample_metrics[sample_metrics["checkpoint"].isin(names)]
        for ds in counted["dataset"].unique():
            sds = sm[sm["dataset"] == ds]
            if sds.empty:
                continue
            order = sds.drop_duplicates("sample_id").sort_values("idx", kind="stable")
            ids = order["sample_id"].tolist()
            sample_ids[ds] = ids
            col = {s: j for j, s in enumerate(ids)}
            for metric in counted[counted["dataset"] == ds]["metric"]:
                sub = sds[sds["metric"] == metric]
                if sub.empty:
                    continue
                mat = np.full((K, len(ids)), np.nan)
                mat[sub["checkpoint"].map(idx).to_numpy(),
                    sub["sample_id"].map(col).to_numpy()] = sub["value"].to_numpy(float)
                per_sample[(ds, metric)] = mat

    # point values (the stored aggregates), normalized ranks, scores
    point = np.full((len(counted), K), np.nan)
    ci_sd = np.full((len(counted), K), np.nan)
    resampled = []
    comp_rows = []
    for j, r in enumerate(counted.itertuples()):
        sub = okv[(okv["dataset"] == r.dataset) & (okv["metric"] == r.metric)]
        for row in sub.itertuples():
            i = idx[row.checkpoint]
            point[j, i] = float(row.value)
            if pd.notna(row.ci_low) and pd.notna(row.ci_high):
                ci_sd[j, i] = (float(row.ci_high) - float(row.ci_low)) / (2 * _Z95)
        resampled.append("per-sample" if (r.dataset, r.metric) in per_sample
                         else ("ci" if config.set_level == "ci" else "fixed"))
    counted["resampled"] = resampled
    norm = np.stack([_norm_ranks(point[j], r.direction == "lower")
                     for j, r in enumerate(counted.itertuples())]) if len(counted) else \
        np.zeros((0, K))
    rank_scores = weights @ norm if len(counted) else np.zeros(K)
    lower = np.array([r.direction == "lower" for r in counted.itertuples()], dtype=bool)
    margin = _margins(point, weights, lower)  # (K, K); zeros when nothing counts
    scores = (_schulze_scores(margin) if config.method == "pairwise" and len(counted)
              else rank_scores)
    # direct head-to-head wins (shown with either method: who beats whom, not the order)
    wins = (margin > MARGIN_EPS).sum(axis=-1)
    for j, r in enumerate(counted.itertuples()):
        for i, name in enumerate(names):
            comp_rows.append({"checkpoint": name, "dataset": r.dataset, "metric": r.metric,
                              "value": point[j, i], "norm_rank": norm[j, i],
                              "weight": weights[j]})
    # ties of the head-to-head order go to the normalized-rank score among the tied only
    tie_scores = (_group_rank_scores(point, weights, lower, scores)
                  if config.method == "pairwise" and len(counted) else rank_scores)
    order = _order(scores, tie_scores, steps, names) if K else np.zeros(0, int)
    rank = np.empty(K)
    rank[order] = np.arange(1, K + 1)

    # bootstrap stability
    B = config.bootstrap if (K >= 2 and len(counted)) else 0
    p_first = np.full(K, np.nan)
    p_smith = np.full(K, np.nan)
    mean_rank = np.full(K, np.nan)
    rank_lo = np.full(K, np.nan)
    rank_hi = np.full(K, np.nan)
    boot_winners: list[str] = []
    if K == 1 and len(counted):
        p_first[:] = p_smith[:] = 1.0
        mean_rank[:] = rank_lo[:] = rank_hi[:] = 1.0
    if B:
        boot_ranks, boot_smith, first_share = _bootstrap_ranks(
            counted, point, ci_sd, per_sample, sample_ids, weights, steps, names, config, B)
        p_first = first_share.mean(axis=0)  # a tie at the top counts 1/k for each
        p_smith = boot_smith.mean(axis=0)
        mean_rank = boot_ranks.mean(axis=0)
        rank_lo = np.percentile(boot_ranks, 5, axis=0, method="lower")
        rank_hi = np.percentile(boot_ranks, 95, axis=0, method="higher")
        boot_winners = [names[i] for i in boot_ranks.argmin(axis=1)]

    table = pd.DataFrame({
        "checkpoint": names, "step": ok_ck["step"].to_numpy(), "status": "ok",
        "content_hash": ok_ck["content_hash"].to_numpy(), "rank": rank, "score": scores,
        "rank_score": rank_scores, "wins": wins,
        "p_first": p_first, "p_smith": p_smith, "mean_rank": mean_rank, "rank_lo": rank_lo,
        "rank_hi": rank_hi, "error": None,
    }).sort_values("rank")
    excluded = ck[~ck["name"].isin(names)]
    if len(excluded):
        ex = pd.DataFrame({
            "checkpoint": excluded["name"].to_numpy(), "step": excluded["step"].to_numpy(),
            "status": excluded["status"].to_numpy(),
            "content_hash": excluded["content_hash"].to_numpy(),
            "rank": np.nan, "score": np.nan, "rank_score": np.nan, "wins": np.nan,
            "p_first": np.nan, "p_smith": np.nan, "mean_rank": np.nan,
            "rank_lo": np.nan, "rank_hi": np.nan,
            "error": [e if isinstance(e, str) and e else "no results stored"
                      for e in excluded["error"]],
        })
        table = pd.concat([table, ex], ignore_index=True)
    table = table.reset_index(drop=True)
    table["wins"] = table["wins"].astype("Int64")
    return Ranking(config=config, table=table,
                   components=pd.DataFrame(comp_rows, columns=[
                       "checkpoint", "dataset", "metric", "value", "norm_rank", "weight"]),
                   counted=counted[["dataset", "metric", "direction", "weight", "resampled"]],
                   not_counted=pd.DataFrame(not_counted, columns=["dataset", "metric",
                                                                  "reason"]),
                   bootstrap=B, human=human,
                   margins=pd.DataFrame(margin, index=names, columns=names),
                   tracks=tracks, boot_winners=boot_winners)


def _human_tracks(res: pd.DataFrame, kinds: dict, config: RankingConfig) -> dict[str, dict]:
    """Per ``human`` dataset of the results: counted votes (the largest ``n`` of its rows),
    its weight and the rule that gave it (:meth:`RankingConfig.human_weight`)."""
    sketches = [d for d, k in kinds.items() if k == "sketches"]
    sketch_w = max((config.track_weight(d, "sketches") for d in sketches),
                   default=config.track_weight("sketches", "sketches"))
    out = {}
    for ds, g in res[res["kind"] == HUMAN_KIND].groupby("dataset"):
        votes = int(g["n"].max()) if g["n"].notna().any() else 0
        w, rule = config.human_weight(ds, votes, sketch_w)
        out[ds] = {"votes": votes, "weight": w, "rule": rule}
    return out


def rank_out(out_dir: str | Path, config_path: str | Path | None = None) -> Ranking:
    """Rank the checkpoints evaluated in ``out_dir`` (reads ``OUT/results.sqlite``)."""
    from evalkit.store.results import Store

    config = ranking_config(config_for(out_dir, config_path))
    with Store(out_dir, create=False) as store:
        results = store.results()
        checkpoints = store.checkpoints()
        samples = store.sample_metrics() if config.bootstrap else None
    return rank_checkpoints(results, checkpoints, samples, config)


def results_digest(results: pd.DataFrame) -> str:
    """sha256 of the aggregate values a ranking reads (to tell whether it is reproducible
    from the same results)."""
    import hashlib

    cols = ["checkpoint", "checkpoint_hash", "dataset", "dataset_hash", "metric", "value",
            "ci_low", "ci_high", "status"]
    rows = results[cols].sort_values(["checkpoint", "dataset", "metric"]).astype(object)
    rows = rows.where(pd.notna(rows), None)
    blob = json.dumps(rows.values.tolist(), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()
