"""Two evaluation folders side by side: does the new run's pick beat the old one's?

``evalkit compare OUT_A OUT_B`` (e.g. last release's evaluation and this week's) takes each
domain's selection in both (``selection.json``, made by ``evalkit select``) and, on every
dataset both folders evaluated with the same content (same dataset hash: the same samples,
served the same way), compares B's pick with A's pick:

* per counted metric (B's rule): the paired difference ``mean_i (b_i - a_i)`` over the
  samples both have (matched by sample id), with a 95 % paired-bootstrap interval (2,000
  resamples, seed 0), or the difference of the set-level values where a metric has no
  per-sample values (then no interval);
* head to head, by B's rule: ``margin = sum_j w_j * s_j`` with ``s_j = +1`` when B's pick is
  better on metric j, ``-1`` when worse, 0 when equal (the weights renormalized over the
  metrics both have; in [-1, 1]); B's pick beats A's when ``margin > 0``.

A dataset that differs between the folders (another hash) is listed but not compared: its
numbers would measure different inputs.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from evalkit.decide.ranking.rule import DIRECTIONS

BOOTSTRAP = 2000


class CompareError(ValueError):
    """A folder cannot be compared (no results or no selection); the message says why."""


def _load(out: Path) -> tuple[dict, pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    from evalkit.decide.selection import SelectionError, read_selection
    from evalkit.store.results import ResultsError, Store

    path = out / "selection.json"
    if not path.is_file():
        raise CompareError(f"{out} has no selection.json: run 'evalkit select {out}' first")
    try:
        sel = read_selection(path)
    except SelectionError as exc:
        raise CompareError(str(exc)) from exc
    try:
        with Store(out, create=False) as store:
            return sel, store.results(), store.sample_metrics(), store.datasets()
    except ResultsError as exc:
        raise CompareError(str(exc)) from exc


def _paired(sa: pd.DataFrame, sb: pd.DataFrame, rng: np.random.Generator
            ) -> tuple[float, float, float, int] | None:
    """``(mean diff b - a, ci_low, ci_high, n)`` over the sample ids both have."""
    a = sa.groupby("sample_id")["value"].mean()
    b = sb.groupby("sample_id")["value"].mean()
    ids = a.index.intersection(b.index)
    d = (b[ids] - a[ids]).to_numpy(float)
    d = d[np.isfinite(d)]
    if len(d) == 0:
        return None
    boot = rng.choice(d, size=(BOOTSTRAP, len(d)), replace=True).mean(axis=1)
    return float(d.mean()), float(np.percentile(boot, 2.5)), float(np.percentile(boot, 97.5)), \
        len(d)


def compare_domain(domain: str, a: dict, b: dict, ra: pd.DataFrame, rb: pd.DataFrame,
                   sa: pd.DataFrame, sb: pd.DataFrame, da: pd.DataFrame,
                   db: pd.DataFrame) -> dict:
    """One domain's comparison of B's pick with A's pick (see the module docstring)."""
    pa, pb = a["checkpoint"], b["checkpoint"]
    hash_a = dict(zip(da["name"], da["content_hash"], strict=True))
    hash_b = dict(zip(db["name"], db["content_hash"], strict=True))
    counted = b["rule"]["counted"]
    rng = np.random.default_rng(0)
    rows, skipped_ds = [], []
    for ds in sorted({c["dataset"] for c in counted}):
        if hash_a.get(ds) is None:
            skipped_ds.append(f"{ds}: not evaluated in A")
            continue
        if hash_a[ds] != hash_b.get(ds):
            skipped_ds.append(f"{ds}: different data in A and B (content hash "
                              f"{str(hash_a[ds])[:12]} vs {str(hash_b.get(ds))[:12]})")
            continue
        for c in (c for c in counted if c["dataset"] == ds):
            m = c["metric"]
            va = ra[(ra.checkpoint == pa) & (ra.dataset == ds) & (ra.metric == m)
                    & (ra.status == "ok")]
            vb = rb[(rb.checkpoint == pb) & (rb.dataset == ds) & (rb.metric == m)
                    & (rb.status == "ok")]
            if va.empty or vb.empty:
                continue
            x, y = float(va["value"].iloc[0]), float(vb["value"].iloc[0])
            row = {"dataset": ds, "metric": m, "weight": c["weight"], "a": x, "b": y,
                   "diff": y - x, "ci_low": None, "ci_high": None,
                   "n": int(vb["n"].iloc[0]) if pd.notna(vb["n"].iloc[0]) else None,
                   "direction": c.get("direction") or DIRECTIONS.get(m)}
            pair = _paired(sa[(sa.checkpoint == pa) & (sa.dataset == ds) & (sa.metric == m)],
                           sb[(sb.checkpoint == pb) & (sb.dataset == ds) & (sb.metric == m)],
                           rng)
            if pair is not None:
                row["diff"], row["ci_low"], row["ci_high"], row["n"] = pair
            lower = row["direction"] == "lower"
            row["b_better"] = None if y == x else (y < x if lower else y > x)
            if row["ci_low"] is not None:
                row["clear"] = bool(row["ci_low"] > 0 or row["ci_high"] < 0)
            else:
                row["clear"] = None
            rows.append(row)
    total = sum(r["weight"] for r in rows)
    margin = None
    if rows and total > 0:
        margin = sum(r["weight"] / total * (0 if r["b_better"] is None else
                                            (1 if r["b_better"] else -1)) for r in rows)
    if pa == pb or a.get("content_hash") == b.get("content_hash"):
        verdict = "same checkpoint in both"
    elif margin is None:
        verdict = "not comparable: no counted metric on data both evaluated"
    elif margin > 0:
        verdict = f"B's pick beats A's head to head ({margin:+.2f})"
    elif margin < 0:
        verdict = f"A's pick beats B's head to head ({-margin:+.2f}): B is no improvement"
    else:
        verdict = "a tie head to head"
    return {"domain": domain,
            "a": {"checkpoint": pa, "step": a.get("step"),
                  "p_first": a.get("stability", {}).get("p_first")},
            "b": {"checkpoint": pb, "step": b.get("step"),
                  "p_first": b.get("stability", {}).get("p_first")},
            "same_pick": pa == pb or a.get("content_hash") == b.get("content_hash"),
            "margin": margin, "verdict": verdict, "metrics": rows,
            "not_compared": skipped_ds}


def compare(out_a: str | Path, out_b: str | Path) -> dict:
    """``{"a", "b", "domains": [per-domain comparison], "only_in_a", "only_in_b"}``."""
    out_a, out_b = Path(out_a), Path(out_b)
    sel_a, ra, sa, da = _load(out_a)
    sel_b, rb, sb, db = _load(out_b)
    both = sorted(set(sel_a) & set(sel_b))
    return {"a": str(out_a), "b": str(out_b),
            "domains": [compare_domain(d, sel_a[d], sel_b[d], ra, rb, sa, sb, da, db)
                        for d in both],
            "only_in_a": sorted(set(sel_a) - set(sel_b)),
            "only_in_b": sorted(set(sel_b) - set(sel_a))}


def to_text(cmp: dict) -> str:
    """The comparison for a terminal: one block per domain."""
    lines = [f"A: {cmp['a']}", f"B: {cmp['b']}", ""]
    for d in cmp["domains"]:
        a, b = d["a"], d["b"]
        lines.append(f"[{d['domain'] or '-'}] A {a['checkpoint']} -> B {b['checkpoint']}: "
                     f"{d['verdict']}")
        for r in d["metrics"]:
            ci = "" if r["ci_low"] is None else f" [{r['ci_low']:+.4g}, {r['ci_high']:+.4g}]"
            mark = {True: "B better", False: "B worse", None: "equal"}[r["b_better"]]
            if r.get("clear") is False and r["b_better"] is not None:
                mark += " (within noise)"
            lines.append(f"  {r['dataset']} {r['metric']}: {r['a']:.4g} -> {r['b']:.4g} "
                         f"(diff {r['diff']:+.4g}{ci}, n={r['n']}) {mark}")
        for why in d["not_compared"]:
            lines.append(f"  not compared: {why}")
        lines.append("")
    for side, key in (("A", "only_in_a"), ("B", "only_in_b")):
        if cmp[key]:
            lines.append(f"only in {side}: {', '.join(cmp[key])}")
    return "\n".join(lines).rstrip()


def to_json(cmp: dict) -> str:
    return json.dumps(cmp, indent=2)


def _names(entry: dict) -> set[str]:
    """Every checkpoint a selection entry knew: ranked and excluded."""
    return {str(r["checkpoint"]) for r in entry.get("ranking", []) if r.get("checkpoint")} | \
        {str(e["checkpoint"]) for e in entry.get("excluded", []) if e.get("checkpoint")}


def _read(path: Path) -> tuple[dict[str, dict], str | None] | None:
    """``({domain: entry}, created_at)`` of a selection file, None when absent or unreadable."""
    from evalkit.decide.selection import SelectionError, read_selection

    if not path.is_file():
        return None
    try:
        entries = read_selection(path)
        created = json.loads(path.read_text(encoding="utf-8")).get("created_at")
    except (SelectionError, OSError, ValueError, AttributeError):
        return None
    return entries, created


def last_selection(out: str | Path, domain: str, current: dict | None
                   ) -> tuple[dict, str | None] | None:
    """The last recorded selection of ``domain`` that ``current`` (this report's choice) is
    to be compared with, as ``(entry, created_at)``, or None when there is none:
    ``OUT/selection.json`` when it records another choice or other results than
    ``current`` (e.g. ``run`` added checkpoints since ``select``), else the one it replaced,
    ``OUT/selection.previous.json`` (``select`` just recorded ``current``)."""
    from evalkit.decide.selection import PREVIOUS_NAME, SELECTION_NAME

    out = Path(out)
    now = _read(out / SELECTION_NAME)
    if now is not None and domain in now[0]:
        e = now[0][domain]
        agrees = current is not None and e.get("checkpoint") == current.get("checkpoint") \
            and e.get("results_digest") == current.get("results_digest")
        if not agrees:
            return e, now[1]
    before = _read(out / PREVIOUS_NAME)
    if before is not None and domain in before[0]:
        return before[0][domain], before[1]
    return None


def changes_since(last: tuple[dict, str | None] | None, current: dict | None) -> dict | None:
    """What changed in one domain since the last selection: ``{"kind": "first" | "same" |
    "new", "was" (the last pick), "was_step", "since" (its created_at), "new_checkpoints"
    (names the last selection did not know, sorted), "text"}``; None without a current
    choice. ``"same"`` means the same checkpoint (by name or content hash)."""
    if current is None:
        return None
    if last is None:
        return {"kind": "first", "was": None, "was_step": None, "since": None,
                "new_checkpoints": [], "text": "first selection"}
    entry, created = last
    same = entry.get("checkpoint") == current["checkpoint"] or (
        entry.get("content_hash") is not None
        and entry.get("content_hash") == current.get("content_hash"))
    added = sorted(_names(current) - _names(entry))
    was = str(entry.get("checkpoint"))
    text = "same pick" if same else f"new pick (was {was.rsplit('/', 1)[-1]})"
    if added:
        text += f", +{len(added)} checkpoint{'s' if len(added) != 1 else ''} since"
    return {"kind": "same" if same else "new", "was": was, "was_step": entry.get("step"),
            "since": created, "new_checkpoints": added, "text": text}
