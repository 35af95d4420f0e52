"""Decide: from stored values to the checkpoint each domain deploys, and whether to release.

* :mod:`~evalkit.decide.ranking`: the ranking rule (config, head-to-head/Schulze arithmetic,
  bootstrap stability) and the ranking table.
* :mod:`~evalkit.decide.selection`: ``selection.json``, one choice per domain, explained.
* :mod:`~evalkit.decide.baseline`: baselines of one checkpoint per domain.
* :mod:`~evalkit.decide.gate`: release rules judged per domain.
* :mod:`~evalkit.decide.review`: people's pairwise votes and their Bradley-Terry scores.
* :mod:`~evalkit.decide.mismatch`: the held-out-vs-drawn table.

Imports :mod:`evalkit.core`, :mod:`evalkit.inputs`, :mod:`evalkit.measure`,
:mod:`evalkit.store`.
"""
