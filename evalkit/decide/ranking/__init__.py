"""Ranking checkpoints within one domain.

* :mod:`~evalkit.decide.ranking.rule`: the ``[ranking]`` config (metrics, weights, method),
  validated with ``file:line`` errors.
* :mod:`~evalkit.decide.ranking.scores`: the arithmetic (normalized ranks, head-to-head
  margins, Schulze's order, the bootstrap).
* :mod:`~evalkit.decide.ranking.rank`: the ranking table of an evaluation folder.
"""

from evalkit.decide.ranking.rank import Ranking, rank_checkpoints, rank_out, results_digest
from evalkit.decide.ranking.rule import RankingConfig, config_for, ranking_config

__all__ = ["Ranking", "RankingConfig", "config_for", "rank_checkpoints", "rank_out",
           "ranking_config", "results_digest"]
