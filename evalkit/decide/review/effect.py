"""How the reviewers' track changed (or did not change) a domain's choice.

The domain is ranked twice more with the same rule: once without the ``human`` dataset
(the metrics alone), and, when the human track has weight 0, once with it at the sketch
track's weight (what the votes would do if they counted). ``evalkit select`` and the
report print the sentence :func:`human_effect` writes.
"""

from __future__ import annotations

import copy

import pandas as pd

from evalkit.decide.ranking.rank import HUMAN_KIND, Ranking, rank_checkpoints


def _fmt_bt(results: pd.DataFrame, dataset: str, checkpoint: str | None) -> str:
    row = results[(results["dataset"] == dataset) & (results["checkpoint"] == checkpoint)
                  & (results["metric"] == "bt_score")]
    if checkpoint is None or row.empty or row.iloc[0]["status"] != "ok":
        return f"{checkpoint} (no votes)"
    r = row.iloc[0]
    ci = (f" [{r['ci_low']:.2f}, {r['ci_high']:.2f}]"
          if pd.notna(r["ci_low"]) and pd.notna(r["ci_high"]) else "")
    return f"{checkpoint} {r['value']:+.2f}{ci}"


def human_effect(ranking: Ranking, results: pd.DataFrame, checkpoints: pd.DataFrame
                 ) -> dict | None:
    """``{"dataset", "votes", "weight", "rule", "winner", "winner_without", "changed",
    "winner_if_counted", "text"}`` for a domain with a human track, else None."""
    if not ranking.human:
        return None
    dataset, info = next(iter(ranking.human.items()))
    cfg = copy.deepcopy(ranking.config)
    cfg.bootstrap = 0
    metrics_only = results[results["kind"] != HUMAN_KIND]
    without = rank_checkpoints(metrics_only, checkpoints, None, cfg).winner
    winner = ranking.winner
    out = {"dataset": dataset, "votes": info["votes"], "weight": info["weight"],
           "rule": info["rule"], "winner": winner, "winner_without": without,
           "changed": winner != without, "winner_if_counted": None}
    shown = [winner] + [c for c in (without, _reviewers_top(results, dataset))
                        if c is not None and c != winner]
    bt = ("Reviewers' Bradley-Terry scores (log-strength, 95% CI): "
          + "; ".join(_fmt_bt(results, dataset, c) for c in dict.fromkeys(shown)))
    top = _reviewers_top(results, dataset)
    if top is not None:
        bt += f" (reviewers' favourite: {top})"
    if info["weight"] > 0:
        if out["changed"]:
            text = (f"The human review CHANGED the choice: {info['votes']} votes on {dataset} "
                    f"count ({info['rule']}); the metrics alone would pick {without}, with "
                    f"the reviewers' scores counted {winner} ranks first. {bt}.")
        else:
            text = (f"The human review did not change the choice: {info['votes']} votes on "
                    f"{dataset} count ({info['rule']}), and the metrics alone pick the same "
                    f"checkpoint. {bt}.")
    else:
        sketch_w = _sketch_weight(ranking)
        cfg.tracks = {**cfg.tracks, dataset: sketch_w}
        counted = rank_checkpoints(results, checkpoints, None, cfg).winner
        out["winner_if_counted"] = counted
        text = (f"The human review did not change the choice: {info['votes']} votes on "
                f"{dataset} are not counted ({info['rule']}); counted at the sketch track's "
                f"weight they would pick {counted}"
                + (" too" if counted == winner else " instead") + f". {bt}.")
    out["text"] = text
    return out


def _reviewers_top(results: pd.DataFrame, dataset: str) -> str | None:
    """The checkpoint with the highest bt_score in ``dataset``."""
    rows = results[(results["dataset"] == dataset) & (results["metric"] == "bt_score")
                   & (results["status"] == "ok") & results["value"].notna()]
    return None if rows.empty else str(rows.loc[rows["value"].idxmax(), "checkpoint"])


def _sketch_weight(ranking: Ranking) -> float:
    sk = ranking.counted[ranking.counted["dataset"].str.startswith("sketches")]
    return ranking.config.track_weight("sketches", "sketches") if sk.empty else \
        ranking.config.track_weight(str(sk.iloc[0]["dataset"]), "sketches")
