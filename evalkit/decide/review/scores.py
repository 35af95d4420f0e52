"""Votes -> the ``human`` dataset of each domain (``metric = bt_score``, higher better).

For each domain with votes, the counted votes (not skipped, both checkpoints still
evaluated with the content voted on) are fitted with Bradley–Terry
(:mod:`evalkit.decide.review.bt`) and written through the Store's own API as dataset
``human/<domain>`` (``human`` without domains), kind ``human``:

* ``Store.put_dataset``: content hash = sha256 of the counted votes and the fit settings,
  ``n`` = counted votes; a changed vote set drops the old values (the Store does that);
* ``Store.put_evaluation`` per checkpoint of the domain: ``bt_score`` = centred
  log-strength with its bootstrap 95 % CI and std, ``n`` = the domain's counted votes,
  ``flags`` = votes the checkpoint took part in, reviewers, prior, resamples. A checkpoint
  no reviewer saw is ``skipped`` ("no votes yet"): the ranking counts a missing value as
  worst, as for any metric.

:func:`update_human_scores` is called by the review server after each vote and by
``evalkit review import``; it is idempotent.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

from evalkit.decide.review.bt import (
    DEFAULT_BOOTSTRAP,
    DEFAULT_PRIOR,
    BTFit,
    answer_score,
    fit_votes,
)
from evalkit.decide.review.votes import Vote, load_votes
from evalkit.inputs.data.dataset import dataset_name
from evalkit.measure.base import MetricValue

KIND = "human"
METRIC = "bt_score"
METHOD = ("Bradley-Terry strengths (Hunter 2004 MM), 'same' = half a win each, "
          f"{DEFAULT_PRIOR:g} virtual tied game per pair, percentile bootstrap over votes")


@dataclass
class HumanDataset:
    """What ``Store.put_dataset`` needs of a dataset (the human track has no samples)."""

    name: str
    content_hash: str
    root: str
    domain: str
    n: int
    meta: dict
    kind: str = KIND
    skipped: list = field(default_factory=list)
    ids: list = field(default_factory=list)
    has_targets: list = field(default_factory=list)

    def __len__(self) -> int:
        return self.n


def counted_votes(votes: list[Vote], hashes: dict[str, str]) -> list[Vote]:
    """Votes that count: an answer (not a skip) on two checkpoints whose current content
    hash (``hashes``: hash -> name) is the one voted on."""
    return [v for v in votes if v.answer != "skip" and v.left_hash in hashes
            and v.right_hash in hashes]


def fit_domain(votes: list[Vote], checkpoints: list[tuple[str, str]],
               bootstrap: int = DEFAULT_BOOTSTRAP, seed: int = 0) -> tuple[BTFit, list[Vote]]:
    """BT fit of one domain's votes; ``checkpoints``: (name, content hash) in step order."""
    hashes = {h: n for n, h in checkpoints if h}
    use = counted_votes(votes, hashes)
    rows = [(hashes[v.left_hash], hashes[v.right_hash], answer_score(v.answer)) for v in use]
    return fit_votes([n for n, _ in checkpoints], rows, bootstrap=bootstrap, seed=seed), use


def update_human_scores(store, bootstrap: int = DEFAULT_BOOTSTRAP, seed: int = 0
                        ) -> dict[str, BTFit]:
    """Refit every domain with votes and store its ``human`` dataset (see the module
    docstring). ``store``: an open :class:`evalkit.store.results.Store`. Returns domain -> fit."""
    conn = store.conn
    votes = load_votes(conn)
    domains = sorted({v.domain for v in votes})
    ck = store.checkpoints()
    fits = {}
    for d in domains:
        mine = ck[(ck["domain"].fillna("") == d) & (ck["status"] == "ok")
                  & ck["content_hash"].notna()].sort_values(["step", "name"])
        pairs = list(zip(mine["name"], mine["content_hash"], strict=True))
        fit, used = fit_domain([v for v in votes if v.domain == d], pairs, bootstrap, seed)
        fits[d] = fit
        blob = json.dumps([[v.reviewer, v.time, v.dataset, v.sample_id, v.left_hash,
                            v.right_hash, v.answer] for v in used]
                          + [DEFAULT_PRIOR, bootstrap, seed, pairs])
        reviewers = sorted({v.reviewer for v in used})
        ds = HumanDataset(
            name=dataset_name(KIND, d), content_hash=hashlib.sha256(blob.encode()).hexdigest(),
            root=str(Path(store.out_dir).resolve()), domain=d, n=len(used),
            meta={"method": METHOD, "votes": len(used), "reviewers": reviewers,
                  "ties": sum(v.answer == "same" for v in used), "bootstrap": bootstrap})
        store.put_dataset(ds)
        fitted = {n: k for k, n in enumerate(fit.items)}
        for name, h in pairs:
            if name in fitted:
                k = fitted[name]
                value = MetricValue(
                    METRIC, float(fit.theta[k]), n=len(used), std=_f(fit.std[k]),
                    ci_low=_f(fit.ci_low[k]), ci_high=_f(fit.ci_high[k]),
                    flags={"votes_with": int(fit.votes[k]), "reviewers": len(reviewers),
                           "prior": DEFAULT_PRIOR, "bootstrap": fit.bootstrap})
            else:
                value = MetricValue.skipped(METRIC, "no votes yet (not among the reviewed "
                                            "candidates)", n=len(used))
            store.put_evaluation(name, ds.name, h, ds.content_hash, None, "", [value], [])
    return fits


def _f(x: float) -> float | None:
    return None if x != x else float(x)
