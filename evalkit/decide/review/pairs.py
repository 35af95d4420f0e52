"""Which comparison a reviewer sees next.

A comparison is one hand-drawn sketch and two checkpoints' served outputs for it. The
candidates of a domain are the top :data:`TOP_CANDIDATES` checkpoints of that domain's
current ranking (the human track included, as it stands), among those with served outputs
on the domain's sketch set. Choice, for one reviewer:

1. never a (sketch, checkpoint pair) this reviewer has answered (skips included);
2. the domain with the fewest counted votes so far (domains are reviewed evenly);
3. in it, the checkpoint pair with the fewest votes so far, then the one closest in rank
   (neighbours in the ranking are where a human judgement can change the order), then a
   seeded random draw;
4. for that pair, the sketch with the fewest votes, then a random one;
5. sides randomized (a fair coin).
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from itertools import combinations
from pathlib import Path

import pandas as pd

from evalkit.decide.review.votes import Vote

#: Checkpoints per domain that reviewers compare.
TOP_CANDIDATES = 4


@dataclass
class Candidate:
    name: str
    content_hash: str
    rank: float
    #: dataset -> sample id -> output PNG path relative to OUT
    outputs: dict[str, dict[str, str]] = field(default_factory=dict)


@dataclass
class DomainPlan:
    """What can be compared in one domain."""

    domain: str
    datasets: list[str]
    sample_ids: dict[str, list[str]]
    candidates: list[Candidate]


@dataclass
class Comparison:
    """One comparison as shown: ``left``/``right`` are candidates in shown order."""

    domain: str
    dataset: str
    sample_id: str
    left: Candidate
    right: Candidate


def output_files(out_dir: Path, evaluations: pd.DataFrame, checkpoint: str, dataset: str
                 ) -> dict[str, str]:
    """sample id -> served output PNG (relative to ``out_dir``) of a (checkpoint, dataset),
    from the output cache's manifest; only files that exist."""
    ev = evaluations[(evaluations["checkpoint"] == checkpoint)
                     & (evaluations["dataset"] == dataset)]
    if ev.empty or not isinstance(ev.iloc[0]["outputs_dir"], str) or \
            not ev.iloc[0]["outputs_dir"]:
        return {}
    folder = ev.iloc[0]["outputs_dir"]
    try:
        manifest = json.loads((out_dir / folder / "manifest.json").read_text())
        files = dict(zip(manifest["ids"], manifest["files"], strict=True))
    except (OSError, ValueError, KeyError, TypeError):
        return {}
    return {sid: f"{folder}/{f}" for sid, f in files.items() if (out_dir / folder / f).is_file()}


def plan_domain(out_dir: Path, domain: str, ranking_table: pd.DataFrame,
                datasets: pd.DataFrame, samples: pd.DataFrame, evaluations: pd.DataFrame,
                top: int = TOP_CANDIDATES) -> DomainPlan:
    """The candidates of one domain (``ranking_table``: that domain's ranking)."""
    sk = datasets[(datasets["kind"] == "sketches") & (datasets["domain"] == domain)]
    names = sk["name"].tolist()
    ids = {ds: samples[samples["dataset"] == ds].sort_values("idx")["sample_id"].tolist()
           for ds in names}
    cands = []
    part = ranking_table[ranking_table["rank"].notna()].sort_values("rank")
    for r in part.itertuples():
        c = Candidate(r.checkpoint, str(r.content_hash), float(r.rank))
        for ds in names:
            files = output_files(out_dir, evaluations, r.checkpoint, ds)
            if files:
                c.outputs[ds] = files
        if c.outputs:
            cands.append(c)
        if len(cands) == top:
            break
    return DomainPlan(domain, names, ids, cands)


def next_comparison(plans: list[DomainPlan], votes: list[Vote], reviewer: str,
                    rng: random.Random) -> Comparison | None:
    """The next comparison for ``reviewer`` (see the module docstring), or None when this
    reviewer has answered every possible one."""
    seen = {v.pair_key() for v in votes if v.reviewer == reviewer}
    counted = [v for v in votes if v.answer != "skip"]
    by_domain: dict[str, int] = {}
    by_pair: dict[tuple[str, str, str], int] = {}
    by_item: dict[tuple[str, str, str], int] = {}
    for v in counted:
        by_domain[v.domain] = by_domain.get(v.domain, 0) + 1
        a, b = sorted((v.left_hash, v.right_hash))
        by_pair[(v.domain, a, b)] = by_pair.get((v.domain, a, b), 0) + 1
        k = v.pair_key()
        by_item[k] = by_item.get(k, 0) + 1
    options = []
    for plan in plans:
        for ca, cb in combinations(plan.candidates, 2):
            a, b = sorted((ca.content_hash, cb.content_hash))
            items = []
            for ds in plan.datasets:
                for sid in plan.sample_ids.get(ds, []):
                    key = (ds + "\0" + sid, a, b)
                    if key in seen or sid not in ca.outputs.get(ds, {}) or \
                            sid not in cb.outputs.get(ds, {}):
                        continue
                    items.append((by_item.get(key, 0), rng.random(), ds, sid))
            if items:
                options.append(((by_domain.get(plan.domain, 0), by_pair.get(
                    (plan.domain, a, b), 0), abs(ca.rank - cb.rank), rng.random()),
                    plan, ca, cb, min(items)))
    if not options:
        return None
    _, plan, ca, cb, (_, _, ds, sid) = min(options, key=lambda o: o[0])
    if rng.random() < 0.5:
        ca, cb = cb, ca
    return Comparison(plan.domain, ds, sid, ca, cb)
