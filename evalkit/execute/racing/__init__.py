"""Racing selection: choose the deployment checkpoint at a fraction of the compute.

``evalkit run --race`` (or ``[run] race = true``); the method is in ``docs/racing.md``.
Per domain, every checkpoint is first evaluated on a seeded subset of each of the domain's
datasets; then, round after round, the checkpoints whose chance of being the final choice
and chance of being in the Smith set (the head-to-head top group) are both below a
threshold are *raced out* and the subsets grow for the others, until the leaders have the
full data.

* :mod:`evalkit.execute.racing.subsets`: the nested subsets, and :func:`raced_outputs` (outputs a
  race generated for a checkpoint on subsets of a dataset) and :func:`complete_outputs`
  (the full outputs from those plus the generator on the missing samples only);
* :mod:`evalkit.execute.racing.evidence`: the chance of being the final choice (the ranking's
  paired bootstrap with a finite-population correction);
* :mod:`evalkit.execute.racing.race`: the driver (:func:`race_domains`), with
  :mod:`evalkit.execute.racing.generator` (incremental generation, served from ``OUT`` first).
"""

from evalkit.execute.racing.race import (
    DEFAULT_GROWTH,
    DEFAULT_MIN_SAMPLES,
    DEFAULT_START_FRACTION,
    DEFAULT_THRESHOLD,
    RaceResult,
    RaceSettings,
    RoundInfo,
    race_domains,
)
from evalkit.execute.racing.subsets import (
    SCRATCH,
    complete_outputs,
    raced_outputs,
    subset,
    subset_hash,
)

__all__ = ["DEFAULT_GROWTH", "DEFAULT_MIN_SAMPLES", "DEFAULT_START_FRACTION",
           "DEFAULT_THRESHOLD", "SCRATCH", "RaceResult", "RaceSettings", "RoundInfo",
           "complete_outputs", "race_domains", "raced_outputs", "subset", "subset_hash"]
