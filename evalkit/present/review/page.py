"""The report's side of the review: the static "Review" page (``review.html`` beside a
domain's ``index.html``, works from a file:// URL) and the "Human review" section of the
domain's report (votes, which weight rule applies, agreement tables).

The static page embeds, as JSON, the sketch samples whose served input and outputs the
report already holds in ``img/`` and the content hashes and names of the top
:data:`~evalkit.decide.review.pairs.TOP_CANDIDATES` checkpoints of the ranking; its script keeps
votes in the browser's localStorage and downloads them as an ``evalkit-votes/1`` file
(:mod:`evalkit.decide.review.votes`).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from evalkit.decide.review.agreement import metric_agreement, reviewer_agreement
from evalkit.decide.review.pairs import TOP_CANDIDATES
from evalkit.decide.review.scores import counted_votes
from evalkit.decide.review.votes import Vote

PAGE = "review.html"
#: Sketch samples of a domain whose images the report keeps for the Review page.
MAX_REVIEW_SAMPLES = 200


def review_candidates(ranking, sets: list, top: int = TOP_CANDIDATES) -> list[str]:
    """The top checkpoints of ``ranking`` with served outputs on a sketch display set."""
    out = []
    for name in ranking.participants["checkpoint"]:
        if any(s.kind == "sketches" and any(p is not None for p in s.outputs.get(name, []))
               for s in sets):
            out.append(str(name))
        if len(out) == top:
            break
    return out


def write_review_page(report_dir: Path, env, ranking, sets: list, checkpoints: pd.DataFrame,
                      domain: str, out: str, common: dict) -> str | None:
    """Write ``report_dir/review.html``; returns its file name, or None (no page) when no
    sketch has outputs of two candidates in the report."""
    cands = review_candidates(ranking, sets)
    hashes = checkpoints.set_index("name")["content_hash"].to_dict()
    names = {str(hashes[c]): c for c in cands if hashes.get(c)}
    items = []
    for s in sets:
        if s.kind != "sketches":
            continue
        for i, sid in enumerate(s.ids):
            outputs = {h: s.outputs[c][i] for h, c in names.items()
                       if c in s.outputs and i < len(s.outputs[c]) and s.outputs[c][i]}
            if len(outputs) >= 2:
                items.append({"dataset": s.name, "sample_id": sid,
                              "input": s.inputs[i] if i < len(s.inputs) else None,
                              "outputs": outputs})
    if not items:
        return None
    data = {"out": out, "domain": domain, "names": names, "items": items}
    html = env.get_template("review.html").render(
        **{**common, "up": "index.html"}, title=f"evalkit review{': ' + domain if domain else ''}",
        mode="static", data=data, candidates={domain: list(names.values())})
    (report_dir / PAGE).write_text(html, encoding="utf-8")
    return PAGE


def human_section(ranking, votes: list[Vote], checkpoints: pd.DataFrame,
                  results: pd.DataFrame, sample_metrics: pd.DataFrame,
                  directions: dict[str, str]) -> dict:
    """Context of the report's "Human review" section for one domain."""
    ok = checkpoints[(checkpoints["status"] == "ok") & checkpoints["content_hash"].notna()]
    names = dict(zip(ok["content_hash"], ok["name"], strict=True))
    used = counted_votes(votes, names)
    info = next(iter(ranking.human.values()), None)
    return {"votes": len(used), "all_votes": len(votes),
            "reviewers": sorted({v.reviewer for v in used}),
            "ties": sum(v.answer == "same" for v in used),
            "track": info, "dataset": next(iter(ranking.human), None),
            "reviewers_agree": reviewer_agreement(used),
            "metrics": metric_agreement(used, names, results, sample_metrics, directions)}
