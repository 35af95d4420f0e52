"""Choosing the deployment checkpoint and explaining the choice.

:func:`select` ranks the checkpoints of an evaluation folder (:mod:`evalkit.decide.ranking.rank`) and
writes ``OUT/selection.json``, one entry per domain (``""`` for a run without domains)::

    {
      "format": "evalkit-selection/2",
      "domains": {"car": {
        "domain": "car", "checkpoint": "car/ckpt-7", "step": 7,
        "content_hash": "<sha256 of its files>", "path": "/abs/run/car/ckpt-7", "score": 0.08,
        "wins": 9 (other checkpoints it beats head to head),
        "metrics": {"heldout/car": {"l1": {"value", "ci_low", "ci_high", "std", "n",
                                           "status", "reason", "flags"}}, ...},
        "runner_up": {"checkpoint", "step", "content_hash", "score", "p_first",
                      "margin" (head-to-head share the pick beats it by, [-1, 1])} | null,
        "stability": {"p_first", "mean_rank", "rank_lo", "rank_hi", "bootstrap", "seed",
                      "stable_at", "stable" (p_first >= stable_at; null without bootstrap),
                      "set_level"},
        "rule": {"method", "text", "counted": [{"dataset", "metric", "direction", "weight",
                 "resampled"}], "not_counted": [...], "config": {...} (with
                 "track_weights"), "tracks": [{"dataset", "configured", "measured",
                 "weight"}] (each counted track's weight before and after the
                 track_weights rule, evalkit.decide.ranking.scores.effective_weights)},
        "ranking": [{"checkpoint", "step", "rank", "score", "p_first", ...}, ...],
        "excluded": [{"checkpoint", "error"}],
        "human": {"dataset", "votes", "weight", "rule", "winner_without", "changed",
                  "text"} (only with reviewers' votes, see evalkit.decide.review.effect),
        "results_digest": "<sha256 of the domain's aggregate values ranked>",
        "thin_tracks": [{"dataset", "metrics", "weight", "why", "configured", "measured",
                         "effect"}] (one metric only, or the pick's and runner-up's CIs
                        overlap on all of the track's metrics; effect: what the
                        track_weights rule did to its weight),
        "settle": [{"dataset", "n", "factor", "more", "p_first", "leader"}] (only when the
                   pick is unstable: evalkit.decide.ranking.settle),
        "explanation": "<one paragraph>"}, ...},
      "errors": {"<domain>": "why nothing could be selected there"},
      "evalkit_version": "0.1.0", "created_at": "<ISO 8601 UTC>"
    }

Each domain is ranked on its own checkpoints and datasets only (never pooled).
The same results and the same rule give the same file (except ``created_at``): the
bootstrap is seeded, and ``results_digest`` says which numbers were ranked. An unchanged
selection is not rewritten (``created_at`` stays the time it was first made), so an
unchanged re-run leaves the report up to date (:mod:`evalkit.present.report.stamp`).
A changed selection moves the file it replaces to ``OUT/selection.previous.json`` (one
level kept), from which the report says what changed since the last selection
(:func:`evalkit.decide.compare.last_selection`).

Exporting the choice for the service (``select --export``) is :mod:`evalkit.present.deploy`.
"""

from __future__ import annotations

import json
import math
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from evalkit.decide.ranking.rank import (
    METHODS,
    Ranking,
    rank_checkpoints,
    ranking_config,
    results_digest,
)

FORMAT = "evalkit-selection/2"
SELECTION_NAME = "selection.json"
#: The selection that ``selection.json`` replaced (kept so the report can say what changed).
PREVIOUS_NAME = "selection.previous.json"


class SelectionError(ValueError):
    """Nothing to select, or an export that cannot be done safely (message says why)."""


def _clean(v: Any) -> Any:
    """JSON-safe scalar (NaN/NA -> None, numpy -> Python)."""
    if v is None:
        return None
    if hasattr(v, "item"):
        v = v.item()
    if isinstance(v, float) and not math.isfinite(v):
        return None
    try:
        if pd.isna(v):
            return None
    except (TypeError, ValueError):
        pass
    return v


def _flags(raw: Any) -> dict:
    if not raw:
        return {}
    try:
        out = json.loads(raw) if isinstance(raw, str) else dict(raw)
    except (TypeError, ValueError):
        return {"raw": str(raw)}
    return out if isinstance(out, dict) else {"raw": out}


def checkpoint_metrics(results: pd.DataFrame, checkpoint: str) -> dict[str, dict[str, dict]]:
    """``{dataset: {metric: {value, ci_low, ci_high, std, n, status, reason, flags}}}``."""
    out: dict[str, dict[str, dict]] = {}
    for r in results[results["checkpoint"] == checkpoint].itertuples():
        out.setdefault(r.dataset, {})[r.metric] = {
            "value": _clean(r.value), "ci_low": _clean(r.ci_low), "ci_high": _clean(r.ci_high),
            "std": _clean(r.std), "n": _clean(r.n), "status": r.status,
            "reason": _clean(r.reason), "flags": _flags(r.flags)}
    return out


def weight_effect(track: dict, rule: str) -> str:
    """What ``[ranking] track_weights`` did to one track's weight, as a clause.

    ``track``: a row of :attr:`evalkit.decide.ranking.rank.Ranking.tracks` (``configured``:
    its normalized ``[ranking.tracks]`` weight; ``measured``: the share of its stored metric
    weight that counts; ``weight``: its effective weight)."""
    conf, w, share = track["configured"], track["weight"], track["measured"]
    head = f'[ranking] track_weights = "{rule}" '
    if rule == "fixed":
        return (head + f"keeps its configured weight, {w:.2f} of the choice"
                + (f", although {share:.0%} of its metric weight was measured" if share < 1
                   else ""))
    if rule == "measured":
        how = (f"cut its weight from {conf:.2f} to {w:.2f}" if w < conf - 1e-9 else
               f"raised its weight from {conf:.2f} to {w:.2f}" if w > conf + 1e-9 else
               f"left its weight at {w:.2f}")
        return head + f"{how}, as {share:.0%} of its metric weight was measured"
    return (head + f"weighs each counted metric on its own, which gives it {w:.2f} of the "
            f"choice instead of its configured {conf:.2f}")


def thin_tracks(counted: list[dict], results: pd.DataFrame, pick: str,
                runner_up: str | None, tracks: list[dict] | None = None,
                rule: str = "fixed") -> list[dict]:
    """The counted tracks (datasets) whose evidence is thin, each
    ``{"dataset", "metrics", "weight", "why"}``: only one metric counts there (so it carries
    the track's whole weight, e.g. offline, where FID/KID/LPIPS are skipped and drawn
    sketches without targets leave adherence alone), and/or the pick's and the runner-up's
    95 % CIs overlap on every counted metric of the track (the track cannot tell them
    apart). With ``tracks`` (:attr:`~evalkit.decide.ranking.rank.Ranking.tracks` records)
    each entry also has ``configured`` (the track's weight before ``rule``), ``measured``
    (share of its metric weight measured) and ``effect`` (:func:`weight_effect`)."""
    by_track = {t["dataset"]: t for t in tracks or []}
    out = []
    for ds in sorted({c["dataset"] for c in counted}):
        cs = [c for c in counted if c["dataset"] == ds]
        why = []
        if len(cs) == 1:
            why.append(f"only {cs[0]['metric']} counts there, so it carries the track's whole "
                       f"weight {cs[0]['weight']:.2f}")
        if runner_up is not None:
            overlap = []
            for c in cs:
                rows = results[(results["dataset"] == ds) & (results["metric"] == c["metric"])
                               & results["checkpoint"].isin([pick, runner_up])
                               & results["ci_low"].notna() & results["ci_high"].notna()]
                if len(rows) == 2:
                    lo, hi = rows["ci_low"].astype(float), rows["ci_high"].astype(float)
                    overlap.append(bool(lo.max() <= hi.min()))
            if overlap and all(overlap):
                why.append(f"the 95% CIs of {pick} and {runner_up} overlap on "
                           + ("its metric" if len(cs) == 1 else f"all {len(cs)} of its metrics"))
        if why:
            entry = {"dataset": ds, "metrics": [c["metric"] for c in cs],
                     "weight": float(sum(c["weight"] for c in cs)), "why": "; ".join(why)}
            if ds in by_track:
                t = by_track[ds]
                entry.update(configured=float(t["configured"]), measured=float(t["measured"]),
                             effect=weight_effect(t, rule))
            out.append(entry)
    return out


def _fmt(v: float | None) -> str:
    if v is None:
        return "n/a"
    return f"{v:.4g}"


def explain(sel: dict) -> str:
    """One paragraph saying what was chosen, by which rule, how clearly, and its numbers."""
    st = sel["stability"]
    ru = sel["runner_up"]
    counted = sel["rule"]["counted"]
    method = (sel["rule"].get("config") or {}).get("method_key", "ranks")
    head = (f"{sel['checkpoint']} (step {sel['step']}, content hash "
            f"{(sel['content_hash'] or '?')[:12]}) is selected for deployment: ")
    if method == "pairwise":
        others = sel["n_candidates"] - 1
        wins = sel.get("wins")
        beats = ("" if wins is None else
                 f"; it beats {'all' if wins == others else wins} of the {others} other(s) "
                 "directly")
        parts = [head + f"it comes first of {sel['n_candidates']} candidates head to head "
                 "(one checkpoint beats another when it is better on a larger weighted share "
                 "of the counted metrics; order by the strongest chains of such wins, "
                 f"Schulze's method{beats}), score {sel['score']:.3f} = share of the "
                 f"{others} other(s) that come before it, ties half"]
    else:
        parts = [head + f"it has the lowest weighted normalized-rank score, "
                 f"{sel['score']:.3f} (0 = best of {sel['n_candidates']} candidates on every "
                 "counted metric, 1 = worst)"]
    if ru:
        parts[-1] += f", ahead of {ru['checkpoint']} (step {ru['step']}, {ru['score']:.3f})"
    parts[-1] += "."
    tracks = sorted({c["dataset"] for c in counted})
    per_track = []
    for t in tracks:
        ms = [f"{c['metric']} {c['weight']:.2f}" for c in counted if c["dataset"] == t]
        per_track.append(f"{t}: " + ", ".join(ms))
    parts.append("Counted metrics and their effective weights: " + "; ".join(per_track) + ".")
    for th in sel.get("thin_tracks", []):
        effect = th.get("effect") or f"it still weighs {th['weight']:.2f} of the choice"
        parts.append(f"{th['dataset']} is thinly measured ({th['why']}): {effect}.")
    if st.get("bootstrap"):
        pf = st["p_first"]
        lo, hi = st["rank_lo"], st["rank_hi"]
        span = f"rank {_fmt(lo)}" if lo == hi else f"rank {_fmt(lo)} to {_fmt(hi)}"
        s = (f"It ranks first in {pf:.0%} of {st['bootstrap']} bootstrap resamples of the "
             f"samples (seed {st['seed']}), {span} in 90% of them")
        if ru and ru.get("p_first") is not None:
            s += f"; {ru['checkpoint']} ranks first in {ru['p_first']:.0%}"
        s += "."
        if pf < st.get("stable_at", 0.5):
            s += (f" The choice is NOT stable (first in fewer than {st.get('stable_at', 0.5):.0%}"
                  " of resamples, [ranking] stable_at): the top checkpoints are within the "
                  "noise of these evaluation sets; look at the report's grids before "
                  "shipping.")
        parts.append(s)
    shown = []
    for c in counted:
        m = sel["metrics"].get(c["dataset"], {}).get(c["metric"])
        if m and m.get("value") is not None:
            ci = (f" [{_fmt(m['ci_low'])}, {_fmt(m['ci_high'])}]"
                  if m.get("ci_low") is not None else "")
            shown.append(f"{c['dataset']} {c['metric']} {_fmt(m['value'])}{ci}")
    if shown:
        parts.append("Its numbers (95% CI): " + "; ".join(shown) + ".")
    if sel.get("human"):
        parts.append(sel["human"]["text"])
    if sel["excluded"]:
        parts.append("Excluded: " + "; ".join(f"{e['checkpoint']} ({e['error']})"
                                               for e in sel["excluded"]) + ".")
    return " ".join(parts)


def _is_stable(p_first: float | None, stable_at: float) -> bool | None:
    """Whether the pick comes first in at least ``stable_at`` of the resamples (None: no
    bootstrap was drawn)."""
    return None if p_first is None else bool(p_first >= stable_at)


def build_selection(ranking: Ranking, results: pd.DataFrame, checkpoints: pd.DataFrame
                    ) -> dict:
    """One domain's entry of ``selection.json`` for its ranking (see the module docstring).
    """
    winner = ranking.winner
    if winner is None:
        failed = ranking.table[ranking.table["rank"].isna()]
        why = "; ".join(f"{r.checkpoint}: {r.error}" for r in failed.itertuples())
        raise SelectionError("no checkpoint can be selected: none was evaluated successfully"
                             + (f" ({why})" if why else ""))
    if ranking.counted.empty:
        raise SelectionError("no metric counts for the ranking: none of the configured "
                             "metrics has a value (see `evalkit results OUT`)")
    t = ranking.table.set_index("checkpoint")
    row = t.loc[winner]
    paths = checkpoints.set_index("name")["path"].to_dict()

    def stab(name: str) -> dict:
        r = t.loc[name]
        return {"p_first": _clean(r["p_first"]), "mean_rank": _clean(r["mean_rank"]),
                "rank_lo": _clean(r["rank_lo"]), "rank_hi": _clean(r["rank_hi"])}

    ru = ranking.runner_up
    sel: dict[str, Any] = {
        "checkpoint": winner, "step": _clean(row["step"]),
        "content_hash": _clean(row["content_hash"]), "path": _clean(paths.get(winner)),
        "score": _clean(row["score"]), "wins": _clean(row["wins"]),
        "n_candidates": int(ranking.table["rank"].notna().sum()),
        "metrics": checkpoint_metrics(results, winner),
        "runner_up": None if ru is None else {
            "checkpoint": ru, "step": _clean(t.loc[ru]["step"]),
            "content_hash": _clean(t.loc[ru]["content_hash"]),
            "score": _clean(t.loc[ru]["score"]), **stab(ru),
            "margin": _clean(ranking.margin(winner, ru))},
        "stability": {**stab(winner), "bootstrap": ranking.bootstrap,
                      "seed": ranking.config.seed, "set_level": ranking.config.set_level,
                      "stable_at": ranking.config.stable_at,
                      "stable": _is_stable(_clean(row["p_first"]), ranking.config.stable_at)},
        "rule": {"method": METHODS[ranking.config.method], "text": ranking.rule_text(),
                 "counted": [{k: _clean(v) for k, v in r.items()}
                             for r in ranking.counted.to_dict("records")],
                 "not_counted": ranking.not_counted.to_dict("records"),
                 "config": ranking.config.to_json()},
        "ranking": [{k: _clean(v) for k, v in r.items()}
                    for r in ranking.table.drop(columns=["error"]).to_dict("records")
                    if _clean(r["rank"]) is not None],
        "excluded": [{"checkpoint": r.checkpoint, "error": r.error}
                     for r in ranking.table[ranking.table["rank"].isna()].itertuples()],
        "results_digest": results_digest(results),
    }
    tracks = [{k: _clean(v) for k, v in r.items()} for r in ranking.tracks.to_dict("records")]
    sel["rule"]["tracks"] = tracks
    sel["thin_tracks"] = thin_tracks(sel["rule"]["counted"], results, winner, ru, tracks,
                                     ranking.config.track_weights)
    from evalkit.decide.review.effect import human_effect

    effect = human_effect(ranking, results, checkpoints)
    if effect is not None:
        sel["human"] = effect
    sel["explanation"] = explain(sel)
    return sel


def domains_of(checkpoints: pd.DataFrame, results: pd.DataFrame) -> list[str]:
    """The domains of an evaluation folder, sorted (``""`` for a run without domains)."""
    ds = set(checkpoints["domain"]) if "domain" in checkpoints else set()
    ds |= set(results["domain"]) if "domain" in results else set()
    return sorted(str(d) for d in ds if d is not None and not (isinstance(d, float)))


def domain_frames(domain: str, results: pd.DataFrame, checkpoints: pd.DataFrame,
                  samples: pd.DataFrame | None):
    """One domain's share of the results, checkpoints and per-sample values."""
    r = results[results["domain"] == domain]
    c = checkpoints[checkpoints["domain"] == domain].copy()
    pending = c["status"] == "pending"
    c.loc[pending, "error"] = "discovered but not evaluated yet: run 'evalkit run' again"
    s = None if samples is None else samples[samples["checkpoint"].isin(set(c["name"]))]
    return r, c, s


def select(out_dir: str | Path, config_path: str | Path | None = None,
           write: bool = True) -> dict:
    """Rank each domain's checkpoints in ``out_dir`` and choose one per domain; write
    ``OUT/selection.json`` (when ``write``) and return its content::

        {"format": "evalkit-selection/2", "domains": {"car": {<one domain's selection>}},
         "errors": {"shoe": "why nothing could be selected"}, "created_at", ...}

    Raises :class:`SelectionError` when no domain has a selectable checkpoint,
    :class:`evalkit.core.config.ConfigError` on a bad ``[ranking]`` section,
    :class:`evalkit.store.results.ResultsError` when ``out_dir`` has no results."""
    import evalkit
    from evalkit.decide.ranking.rank import config_for
    from evalkit.store.results import Store

    out_dir = Path(out_dir)
    config = ranking_config(config_for(out_dir, config_path))
    with Store(out_dir, create=False) as store:
        results = store.results()
        checkpoints = store.checkpoints()
        samples = store.sample_metrics() if config.bootstrap else None
    entries: dict[str, dict] = {}
    errors: dict[str, str] = {}
    for d in domains_of(checkpoints, results):
        r, c, s = domain_frames(d, results, checkpoints, samples)
        try:
            entry = build_selection(rank_checkpoints(r, c, s, config), r, c)
        except SelectionError as exc:
            errors[d] = str(exc)
            continue
        if entry["stability"].get("stable") is False and s is not None:
            _add_settle_advice(entry, r, c, s, config)
        entries[d] = {"domain": d, **entry}
    if not entries:
        why = "; ".join(f"{d or 'run'}: {e}" for d, e in errors.items())
        raise SelectionError(why or "no checkpoint can be selected: no results")
    sel = {"format": FORMAT, "domains": entries, "errors": errors,
           "evalkit_version": evalkit.__version__,
           "created_at": datetime.now(UTC).isoformat(timespec="seconds")}
    if write:
        path = out_dir / SELECTION_NAME
        old = _unchanged(path, sel)
        if old is not None:  # the same choice from the same results: the file stays, so
            return old       # its time does not make the report look out of date
        tmp = out_dir / (SELECTION_NAME + f".tmp{os.getpid()}")
        tmp.write_text(json.dumps(sel, indent=2) + "\n")
        if path.is_file():  # the one it replaces stays as selection.previous.json
            keep = out_dir / (PREVIOUS_NAME + f".tmp{os.getpid()}")
            keep.write_bytes(path.read_bytes())
            os.replace(keep, out_dir / PREVIOUS_NAME)
        os.replace(tmp, path)
    return sel


def _add_settle_advice(entry: dict, results: pd.DataFrame, checkpoints: pd.DataFrame,
                       samples: pd.DataFrame, config) -> None:
    """An unstable pick: which track's extra samples would most likely settle it
    (:mod:`evalkit.decide.ranking.settle`), into ``entry["settle"]`` and its explanation."""
    from evalkit.decide.ranking.settle import advice_text, settle_advice

    counted = sorted({c["dataset"] for c in entry["rule"]["counted"]})
    n = {}
    for ds in counted:
        ns = [m.get("n") for m in entry["metrics"].get(ds, {}).values() if m.get("n")]
        n[ds] = int(max(ns)) if ns else 0
    advice = settle_advice(results, checkpoints, samples, config, counted, n)
    entry["settle"] = advice
    entry["explanation"] += " " + advice_text(advice, config.stable_at)


def _unchanged(path: Path, sel: dict) -> dict | None:
    """The selection file at ``path`` when it says exactly what ``sel`` says (all but
    ``created_at``), else None."""
    try:
        old = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    new = json.loads(json.dumps(sel))  # as written: tuples become lists, and so on
    if not isinstance(old, dict) or "created_at" not in old:
        return None
    same = {k: v for k, v in old.items() if k != "created_at"} == \
        {k: v for k, v in new.items() if k != "created_at"}
    return old if same else None


def read_selection(path: str | Path) -> dict[str, dict]:
    """``{domain: entry}`` from a selection file (format 2, or format 1: one entry, domain
    ``""``). Raises :class:`SelectionError` naming the file when it is not one."""
    path = Path(path)
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise SelectionError(f"{path} not found: run 'evalkit select {path.parent}' "
                             "first") from exc
    except (OSError, ValueError) as exc:
        raise SelectionError(f"{path} is not a readable selection file: {exc}") from exc
    if isinstance(doc, dict) and doc.get("format") == FORMAT and \
            isinstance(doc.get("domains"), dict):
        return doc["domains"]
    if isinstance(doc, dict) and doc.get("format") == "evalkit-selection/1" and \
            "checkpoint" in doc:
        return {"": doc}
    raise SelectionError(f"{path} is not an evalkit selection (expected format {FORMAT!r}); "
                         f"run 'evalkit select {path.parent}' again")


def verdict(sel: dict) -> str:
    """One domain's choice in one sentence: what is chosen, how it beats the others head to
    head, and which others are close (first in at least 5 % of bootstrap resamples)."""
    others = max(0, int(sel.get("n_candidates") or 1) - 1)
    wins = sel.get("wins")
    head = (f"it beats all {others} other(s) head to head" if wins == others and others
            else f"it beats {wins} of the {others} other(s) head to head" if others
            else "it is the only candidate")
    close = [r for r in sel.get("ranking", [])
             if r.get("checkpoint") != sel["checkpoint"] and (r.get("p_first") or 0) >= 0.05]
    if close:
        tail = "; close: " + ", ".join(f"{r['checkpoint']} (first in {r['p_first']:.0%} of "
                                       "resamples)" for r in close)
    elif others and sel.get("stability", {}).get("p_first") is not None:
        tail = "; no other comes first in 5% or more of the resamples"
    else:
        tail = ""
    pf = sel.get("stability", {}).get("p_first")
    sure = "" if pf is None else (f" It is first in {pf:.0%} of resamples"
                                  + ("." if sel["stability"].get("stable") else
                                     ": NOT stable, look at the grids before shipping."))
    return f"{sel['checkpoint']} is chosen: {head}{tail}.{sure}"


def summary_table(sel: dict) -> str:
    """The selection in one table, one row per domain: the pick and its step, P(first) (how
    often it comes first over bootstrap resamples) marked stable/UNSTABLE against
    ``[ranking] stable_at``, the runner-up, the head-to-head margin between them (the
    weighted share of counted metrics the pick wins, in [-1, 1]) and the samples per track.
    A domain with nothing selected says why."""
    rows = []
    for d, e in sel["domains"].items():
        st = e.get("stability", {})
        p, stable = st.get("p_first"), st.get("stable")
        ru = e.get("runner_up") or {}
        n = {}
        for ds, metrics in e.get("metrics", {}).items():
            ns = [m.get("n") for m in metrics.values() if m.get("n") is not None]
            if ns:
                n[ds.split("/")[0] if d else ds] = int(max(ns))
        rows.append({
            "domain": d or "-", "pick": e["checkpoint"],
            "step": "" if e.get("step") is None else str(e["step"]),
            "P(first)": "-" if p is None else
            f"{p:.2f} " + ("stable" if stable else "UNSTABLE"),
            "runner-up": ru.get("checkpoint") or "-",
            "margin": "-" if ru.get("margin") is None else f"{ru['margin']:+.2f}",
            "n": ", ".join(f"{k} {v}" for k, v in n.items()) or "-"})
    for d, err in sel.get("errors", {}).items():
        rows.append({"domain": d or "-", "pick": "(none)", "step": "", "P(first)": "-",
                     "runner-up": "-", "margin": "-", "n": err[:60]})
    if not rows:
        return "nothing selected"
    # left-aligned columns (pandas right-aligns string cells: hard to scan for names)
    cols = list(rows[0])
    width = {c: max(len(c), *(len(r[c]) for r in rows)) for c in cols}
    return "\n".join("  ".join(str(r[c]).ljust(width[c]) for c in cols).rstrip()
                     for r in [dict(zip(cols, cols, strict=True)), *rows])


def explain_all(sel: dict) -> str:
    """The explanation of every domain's choice, one paragraph per domain."""
    parts = []
    for d, entry in sel["domains"].items():
        parts.append((f"[{d}] " if d else "") + entry["explanation"])
    for d, err in sel.get("errors", {}).items():
        parts.append((f"[{d}] " if d else "") + f"nothing selected: {err}")
    return "\n\n".join(parts)
