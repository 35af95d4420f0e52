"""The HTML report of an evaluation folder: ``OUT/report/index.html``.

A self-contained folder: ``index.html`` (overview, the selection and why, the sortable
ranking table, comparison grids per dataset, plots), one page per checkpoint
(``c<N>.html``) and ``img/`` with every image as a file beside them. jinja2 renders with
autoescaping on, so sample ids, file names and dataset metadata are always text, never
markup; the pages make no network request (a Content-Security-Policy forbids any) and
carry one tiny inline script (table sorting, grid views). It opens from disk in any
browser.

Usage: ``render_report(out_dir)`` (also ``evalkit report OUT`` and the end of
``evalkit run``) returns the path of ``index.html``.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import pandas as pd

from evalkit.decide.ranking.rule import SCORE_TEXT
from evalkit.present.report import cache as report_cache
from evalkit.present.report import grids, plots
from evalkit.present.report.cache import ReportCache
from evalkit.present.report.cache import key as cache_key
from evalkit.present.report.colors import checkpoint_colors
from evalkit.present.report.compare_page import since_last, write_report_compare
from evalkit.present.report.overview import domain_summary, render_overview
from evalkit.present.report.render import (
    _badges,
    _env,
    _flags,
    _metric_sort_key,
    _nan,
    _num,
)
from evalkit.present.report.skipped import unmeasured, unmeasured_pairs

__all__ = ["render_report"]

class _Notes:
    """Footnotes: each distinct reason gets one number."""

    def __init__(self) -> None:
        self.items: list[str] = []

    def ref(self, text: str) -> int:
        if text not in self.items:
            self.items.append(text)
        return self.items.index(text) + 1


def _ranking_rows(results: pd.DataFrame, ranking, columns: list[tuple[str, str]],
                  directions: dict[str, str], pages: dict[str, str], notes: _Notes
                  ) -> list[dict]:
    """Rows of the ranking table: participants in rank order, then excluded ones."""
    by_key = {(r.checkpoint, r.dataset, r.metric): r for r in results.itertuples()}
    # best value per column among participants
    best: dict[tuple[str, str], float] = {}
    part = ranking.participants["checkpoint"].tolist()
    for ds, m in columns:
        vals = [float(by_key[(c, ds, m)].value) for c in part
                if (c, ds, m) in by_key and by_key[(c, ds, m)].status == "ok"
                and not _nan(by_key[(c, ds, m)].value)]
        d = directions.get(m)
        if vals and d in ("lower", "higher") and len(part) > 1:
            best[(ds, m)] = min(vals) if d == "lower" else max(vals)
    rows = []
    for r in ranking.table.itertuples():
        row = {"checkpoint": r.checkpoint, "step": r.step, "page": pages.get(r.checkpoint),
               "excluded": _nan(r.rank), "error": r.error, "rank": r.rank, "score": r.score,
               "wins": r.wins,
               "p_first": r.p_first, "rank_lo": r.rank_lo, "rank_hi": r.rank_hi,
               "cells": []}
        for ds, m in columns:
            x = by_key.get((r.checkpoint, ds, m))
            cell: dict[str, Any] = {"v": "", "text": "–", "ci": None, "cls": "", "note": None,
                                    "badges": [], "title": ""}
            if x is not None:
                flags = _flags(x.flags)
                cell["badges"] = _badges(flags)
                if x.status == "ok" and not _nan(x.value):
                    cell["v"] = repr(float(x.value))
                    cell["text"] = _num(x.value)
                    if not _nan(x.ci_low) and not _nan(x.ci_high):
                        cell["ci"] = f"{_num(x.ci_low)} – {_num(x.ci_high)}"
                    cell["title"] = (f"95% CI {cell['ci']} · " if cell["ci"] else "") + \
                        f"n = {x.n}"
                    if (ds, m) in best and float(x.value) == best[(ds, m)]:
                        cell["cls"] = "best"
                else:
                    cell["text"] = x.status
                    cell["cls"] = x.status
                    reason = x.reason if isinstance(x.reason, str) and x.reason else "no reason"
                    cell["note"] = notes.ref(f"{m} {x.status}: {reason}")
                    cell["title"] = reason
            row["cells"].append(cell)
        rows.append(row)
    return rows


def _provenance(results: pd.DataFrame) -> list[dict]:
    """Per (dataset, metric): n, status counts, flags constant across checkpoints (and
    which ones vary), skip/fail reasons."""
    out = []
    for (ds, m), g in results.groupby(["dataset", "metric"], sort=False):
        flags = [_flags(f) for f in g["flags"]]
        keys = sorted({k for f in flags for k in f})
        shown = []
        for k in keys:
            vals = {json.dumps(f.get(k), sort_keys=True, default=str) for f in flags if k in f}
            if len(vals) == 1:
                v = next(iter(vals))
                shown.append((k, json.loads(v) if v else v))
            else:
                shown.append((k, f"varies by checkpoint ({len(vals)} values)"))
        ns = sorted({int(n) for n in g["n"].dropna()})
        out.append({"dataset": ds, "metric": m,
                    "n": "–" if not ns else (str(ns[0]) if len(ns) == 1 else f"{ns[0]}–{ns[-1]}"),
                    "status": g["status"].value_counts().to_dict(), "flags": shown,
                    "reasons": sorted({str(x) for x in g["reason"].dropna() if x})})
    out.sort(key=lambda p: (p["dataset"], _metric_sort_key(p["metric"])))
    return out


def _dataset_info(datasets: pd.DataFrame) -> list[dict]:
    out = []
    for r in datasets.itertuples():
        try:
            meta = json.loads(r.meta or "{}")
        except ValueError:
            meta = {"meta": r.meta}
        try:
            skipped = json.loads(r.skipped or "[]")
        except ValueError:
            skipped = []
        facts = []
        for k, v in (meta.items() if isinstance(meta, dict) else []):
            if isinstance(v, list) and v and isinstance(v[0], dict):
                facts.append((k, f"{len(v)} entries"))
            else:
                facts.append((k, v if isinstance(v, str) else json.dumps(v, default=str)))
        det = Path(str(r.root)) / "detector.json"
        detector = None
        if det.is_file():
            try:
                dj = json.loads(det.read_text())
                detector = {"name": str(dj.get("detector", "?")),
                            "description": str(dj.get("description", ""))}
            except (OSError, ValueError, AttributeError):
                detector = None
        out.append({"name": r.name, "kind": r.kind, "n": r.n, "root": r.root,
                    "hash": (r.content_hash or "")[:16], "facts": facts, "skipped": skipped,
                    "detector": detector})
    return out


def _existing_selection(out_dir: Path, selection: dict | None, domain: str = ""
                        ) -> dict | None:
    """What ``OUT/selection.json`` says for ``domain``, and whether it agrees with this
    report."""
    from evalkit.decide.selection import SelectionError, read_selection

    p = out_dir / "selection.json"
    if not p.is_file():
        return None
    try:
        entries = read_selection(p)
    except SelectionError:
        return {"checkpoint": None, "agrees": False, "created_at": None,
                "note": f"{p.name} is not a readable selection file"}
    created = None
    try:
        created = json.loads(p.read_text(encoding="utf-8")).get("created_at")
    except (OSError, ValueError, AttributeError):
        pass
    s = entries.get(domain)
    if s is None:
        return {"checkpoint": None, "agrees": False, "created_at": created,
                "note": f"it has no choice for domain '{domain}'"}
    agrees = bool(selection) and s.get("checkpoint") == selection["checkpoint"] and \
        s.get("results_digest") == selection["results_digest"]
    return {"checkpoint": s.get("checkpoint"), "created_at": created or s.get("created_at"),
            "agrees": agrees, "note": None}


def _plain_strings(df: pd.DataFrame) -> pd.DataFrame:
    """``df`` with its text columns as Python objects instead of pandas' Arrow-backed
    strings: the report reads them a cell at a time (``itertuples``, ``to_dict``, jinja),
    where each Arrow access costs a conversion (~0.1 s of an 8-domain report's 2 s).
    Values are unchanged."""
    cols = {c: object for c in df.columns
            if pd.api.types.is_string_dtype(df[c]) and df[c].dtype != object}
    return df.astype(cols) if cols else df


def render_report(out_dir: Path, config_path: Path | None = None,
                  dest: Path | None = None) -> Path:
    """Render ``out_dir/report/`` from ``out_dir/results.sqlite``; returns the path of
    ``index.html``. The ranking rule comes from ``config_path`` or the run's evalkit.toml
    (see :func:`evalkit.decide.ranking.rank.config_for`). The report folder is ``dest`` (default
    ``out_dir/report``; another folder for a read-only OUT).

    With several domains, ``index.html`` is the domain overview (domain -> chosen
    checkpoint, score, P(first), headline metrics on both tracks, gate status) and each
    domain has its own report in ``report/<domain>/`` (ranking, grids, plots, checkpoint
    pages), computed on that domain's results only. The report is rendered into a temporary
    folder and renamed into place, so an interrupted render never leaves a half report (the
    next run removes the leftover).
    """
    from evalkit.decide.ranking.rank import config_for, ranking_config
    from evalkit.decide.selection import domain_frames, domains_of
    from evalkit.store.results import Store

    out_dir = Path(out_dir)
    config = ranking_config(config_for(out_dir, config_path))
    with Store(out_dir, create=False) as store:
        results = store.results()
        ckpts = store.checkpoints()
        datasets = store.datasets()
        sm = store.sample_metrics()
        evals = store.evaluations()
        runs = store.runs()
        samples = pd.read_sql_query("SELECT dataset, idx, sample_id, has_target FROM samples",
                                    store.conn)
        review = _review_inputs(store)
    results, ckpts, datasets, sm, evals, runs, samples = (
        _plain_strings(df) for df in (results, ckpts, datasets, sm, evals, runs, samples))
    final = Path(dest) if dest is not None else out_dir / "report"
    tmp = final.with_name(f"{final.name}.tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    domains = domains_of(ckpts, results)
    try:
        recycled = report_cache.begin(final, tmp)
        cache = ReportCache(final if final.is_dir() else None, tmp)
        if len(domains) <= 1:
            one = _render_domain(out_dir, tmp, config, results, ckpts, datasets, sm, evals,
                                 runs, samples, domains[0] if domains else "", review=review,
                                 cache=cache)
            write_report_compare(out_dir, tmp, [one], multi=False)
        else:
            summaries = []
            for d in domains:
                r, c, s_ = domain_frames(d, results, ckpts, sm)
                ds = datasets[datasets["domain"] == d]
                summaries.append(_render_domain(
                    out_dir, tmp / d, config, r, c, ds, s_,
                    evals[evals["checkpoint"].isin(set(c["name"]))], runs,
                    samples[samples["dataset"].isin(set(ds["name"]))], d, up="../index.html",
                    review=review, cache=cache))
            render_overview(out_dir, tmp, summaries, config_path, SCORE_TEXT[config.method],
                            unmeasured(results))
            write_report_compare(out_dir, tmp, summaries, multi=True)
        cache.save()
        report_cache.prune(recycled)
        _swap_into_place(tmp, final, recycle=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return final / "index.html"


def _review_inputs(store) -> dict:
    """Votes and the folder's id for the Review page and the Human review section."""
    from evalkit.decide.review.votes import load_votes, out_id

    return {"votes": load_votes(store.conn), "out": out_id(store.conn)}


def _render_domain(out_dir: Path, report_dir: Path, config, results: pd.DataFrame,
                   ckpts: pd.DataFrame, datasets: pd.DataFrame, sm: pd.DataFrame,
                   evals: pd.DataFrame, runs: pd.DataFrame, samples: pd.DataFrame,
                   domain: str, up: str | None = None, review: dict | None = None,
                   cache: ReportCache | None = None) -> dict:
    """Render one domain's report into ``report_dir``; returns its overview summary."""
    import evalkit
    from evalkit.decide.ranking.rank import rank_checkpoints
    from evalkit.decide.selection import SelectionError, build_selection, verdict
    from evalkit.present.review.page import (
        MAX_REVIEW_SAMPLES,
        human_section,
        write_review_page,
    )

    ranking = rank_checkpoints(results, ckpts, sm, config)
    directions = {m: r.direction for m, r in config.metrics.items()}
    from evalkit.decide.ranking.rank import DIRECTIONS
    for m in results["metric"].unique():
        directions.setdefault(m, DIRECTIONS.get(m, ""))
    selection, selection_error = None, None
    try:
        selection = build_selection(ranking, results, ckpts)
    except SelectionError as exc:
        selection_error = str(exc)
    winner = ranking.winner
    change, comparison = since_last(out_dir, domain, selection, results, sm, datasets)
    compare_href = ("../compare.html" if up else "compare.html") + f"#cmp-{domain}"

    (report_dir / "img" / "plots").mkdir(parents=True, exist_ok=True)
    cache = cache or ReportCache(None, report_dir)

    # plots
    table = ranking.table
    sel_step = None
    if winner is not None:
        sel_step = int(table.loc[table["checkpoint"] == winner, "step"].iloc[0])
    colors = checkpoint_colors(zip(ckpts["name"], ckpts["step"], strict=True))
    plot_dir = report_dir / "img" / "plots"
    metric_figs = cache.call(
        cache_key("metric_plots", results, directions, sel_step, colors), plot_dir,
        lambda: plots.metric_plots(results, plot_dir, directions, sel_step, colors))
    mismatch_figs = cache.call(
        cache_key("mismatch_plots", results, directions, winner, colors), plot_dir,
        lambda: plots.mismatch_plots(results, plot_dir, directions, winner, colors))

    # which samples each page shows
    grid_cols, reduced = grids.grid_columns(table)
    ds_names = datasets["name"].tolist()
    # the reviewers' track has no images: no grids for it
    shown = datasets[datasets["kind"] != "human"]
    n_of = {r.name: int(r.n) for r in datasets.itertuples()}
    ds_views: dict[str, dict] = {}
    needed: dict[str, set[int]] = {}
    for ds in shown["name"]:
        metric = grids.sort_metric(sm, ds, directions)
        v = grids.views(sm, ds, n_of[ds], winner, metric, directions.get(metric))
        ds_views[ds] = {"metric": metric, "direction": directions.get(metric), "views": v}
        needed[ds] = {i for idx in v.values() for i in idx} | set(
            range(min(n_of[ds], grids.MAX_PAGE_SAMPLES)))
    for ds in shown.loc[shown["kind"] == "sketches", "name"]:  # the Review page's samples
        needed[ds] |= set(range(min(n_of[ds], MAX_REVIEW_SAMPLES)))
    latest = runs.iloc[-1] if len(runs) else None
    size = int(latest["image_size"]) if latest is not None else 256
    limit = None
    if latest is not None:
        try:
            limit = json.loads(latest["options"] or "{}").get("limit")
        except ValueError:
            limit = None
    participants = ranking.participants["checkpoint"].tolist()
    sets = grids.build_display_sets(out_dir, report_dir, shown, samples, evals,
                                    participants, size, limit, needed, cache=cache)
    sm_lookup: dict[tuple[str, str, str, int], float] = {}
    for r in sm.itertuples():
        if not _nan(r.idx):
            sm_lookup[(r.checkpoint, r.dataset, r.metric, int(r.idx))] = r.value

    # ranking table columns: per dataset, counted metrics first, then the rest
    counted = {(r.dataset, r.metric): r.weight for r in ranking.counted.itertuples()}
    columns: list[tuple[str, str]] = []
    for ds in ds_names:
        ms = sorted(results.loc[results["dataset"] == ds, "metric"].unique(),
                    key=_metric_sort_key)
        columns += [(ds, m) for m in ms if (ds, m) in counted]
        columns += [(ds, m) for m in ms if (ds, m) not in counted]
    missing = unmeasured(results)  # said once below the table, not as a column
    gone = unmeasured_pairs(missing)
    columns = [c for c in columns if c not in gone]
    col_info = [{"dataset": ds, "metric": m, "direction": directions.get(m, ""),
                 "weight": counted.get((ds, m)), "extra": (ds, m) not in counted}
                for ds, m in columns]
    for j, c in enumerate(col_info):  # a track's (counted or not) columns start a group
        c["first"] = j == 0 or (col_info[j - 1]["dataset"], col_info[j - 1]["extra"]) != \
            (c["dataset"], c["extra"])
    pages = {c: f"c{j}.html" for j, c in enumerate(ckpts["name"])}
    notes = _Notes()
    rows = _ranking_rows(results, ranking, columns, directions, pages, notes)

    # grids
    grid_data = []
    for disp in sets:
        dv = ds_views[disp.name]
        view_rows = {}
        for view, idxs in dv["views"].items():
            view_rows[view] = [_grid_row(disp, i, grid_cols, sm_lookup, dv["metric"])
                               for i in idxs]
        grid_data.append({"set": disp, "columns": grid_cols, "views": view_rows,
                          "metric": dv["metric"], "direction": dv["direction"]})

    detectors: dict[str, list[str]] = {}
    for d in _dataset_info(datasets):
        if d["detector"]:
            detectors.setdefault(d["detector"]["name"], []).append(f"made {d['name']} inputs")
    provenance = _provenance(results)
    for p in provenance:
        for k, v in p["flags"]:
            if k == "edge_detector":
                uses = detectors.setdefault(str(v), [])
                label = f"{p['dataset']} {p['metric'].split('_')[0]} metrics"
                if label not in uses:
                    uses.append(label)
    run_info = [] if runs.empty else runs.to_dict("records")
    for r in run_info:
        try:
            r["argv"] = " ".join(json.loads(r["argv"] or "[]"))
        except ValueError:
            pass
    env = _env()
    common = {"evalkit_version": evalkit.__version__, "winner": winner,
              "directions": directions, "domain": domain, "up": up, "colors": colors}
    review = review or {"votes": [], "out": ""}
    review_page = write_review_page(report_dir, env, ranking, sets, ckpts, domain,
                                    review["out"], common)
    human = human_section(ranking, [v for v in review["votes"] if v.domain == domain],
                          ckpts, results, sm, directions)
    ctx = {
        **common,
        "title": f"evalkit report: {domain}" if domain else "evalkit report",
        "out_dir": str(out_dir.resolve()),
        "runs": run_info,
        "image_size": size,
        "datasets": _dataset_info(datasets),
        "provenance": provenance, "detectors": detectors,
        "selection": selection, "selection_error": selection_error,
        "verdict": verdict(selection) if selection else None,
        "h2h": _head_to_head(ranking),
        "existing_selection": _existing_selection(out_dir, selection, domain),
        "change": change, "compare_href": compare_href if comparison else None,
        "ranking": ranking, "columns": col_info, "rows": rows, "notes": notes.items,
        "not_counted": [n for n in ranking.not_counted.to_dict("records")
                        if (n["dataset"], n["metric"]) not in gone],
        "unmeasured": missing, "unmeasured_keys": {f"{ds} {m}" for ds, m in gone},
        "grids": grid_data, "reduced": reduced,
        "output_problems": [p for d in sets for p in d.changed], "top_k": grids.TOP_K,
        "metric_figs": metric_figs, "mismatch_figs": mismatch_figs,
        "config": config, "review_page": review_page, "human": human,
        "score_text": SCORE_TEXT[config.method],
        "n_participants": len(ranking.participants),
    }
    (report_dir / "index.html").write_text(env.get_template("index.html").render(**ctx),
                                           encoding="utf-8")
    tmpl = env.get_template("checkpoint.html")
    trow = table.set_index("checkpoint")
    # one split per frame, not one filter per checkpoint page
    by_checkpoint = dict(tuple(results.groupby("checkpoint", sort=False)))
    comps = dict(tuple(ranking.components.groupby("checkpoint", sort=False))) \
        if len(ranking.components) else {}
    for c in ckpts.itertuples():
        mine = by_checkpoint.get(c.name, results.iloc[:0])
        metric_rows = []
        for r in sorted(mine.itertuples(), key=lambda r: (r.dataset, _metric_sort_key(r.metric))):
            metric_rows.append({"dataset": r.dataset, "metric": r.metric, "value": r.value,
                                "ci_low": r.ci_low, "ci_high": r.ci_high, "std": r.std,
                                "n": r.n, "status": r.status, "reason": r.reason,
                                "flags": _flags(r.flags), "badges": _badges(_flags(r.flags)),
                                "direction": directions.get(r.metric, ""),
                                "weight": counted.get((r.dataset, r.metric))})
        comp = comps.get(c.name, ranking.components.iloc[:0])
        cols = [c.name] + ([winner] if winner and winner != c.name else [])
        outputs = []
        for disp in sets:
            if c.name not in disp.outputs:
                continue
            n_show = min(len(disp.ids), grids.MAX_PAGE_SAMPLES)
            outputs.append({"set": disp, "columns": cols, "n_total": len(disp.ids),
                            "rows": [_grid_row(disp, i, cols, sm_lookup,
                                               ds_views[disp.name]["metric"])
                                     for i in range(n_show)]})
        info = trow.loc[c.name] if c.name in trow.index else None
        html = tmpl.render(
            **common, title=f"{c.name} – evalkit report", ck=c._asdict(),
            info=None if info is None else info.to_dict(),
            metrics=metric_rows, components=comp.to_dict("records"), outputs=outputs,
            metric=None)
        (report_dir / pages[c.name]).write_text(html, encoding="utf-8")
    summary = domain_summary(domain, selection, selection_error, results)
    summary.update(change=change, comparison=comparison,
                   compare_href=(compare_href.removeprefix("../") if comparison else None))
    return summary


def _head_to_head(ranking, limit: int = 12) -> dict:
    """The head-to-head margins among the first ``limit`` checkpoints in rank order:
    ``{"names", "short", "cells": [[{"m", "style"}]], "more"}``; a cell is how much the row
    beats the column by (weighted share of counted metrics, -1..1), coloured green (wins)
    to red (losses) by size."""
    names = [str(n) for n in ranking.participants["checkpoint"]
             if n in ranking.margins.index][:limit]
    cells = []
    for a in names:
        row = []
        for b in names:
            m = None if a == b else float(ranking.margins.loc[a, b])
            if m is not None and abs(m) < 1e-9:
                m = 0.0  # a tie (never "-0.00")
            if m is None:
                style = "background:#eef0f3"
            else:
                alpha = 0.15 + 0.6 * min(1.0, abs(m))
                rgb = "44,138,75" if m > 0 else "179,38,30" if m < 0 else "150,150,150"
                style = f"background:rgba({rgb},{alpha:.2f})"
            row.append({"m": m, "style": style})
        cells.append(row)
    return {"names": names, "short": [n.rsplit("/", 1)[-1] for n in names], "cells": cells,
            "more": max(0, len(ranking.participants) - len(names))}


def _swap_into_place(new: Path, final: Path, recycle: bool = False) -> None:
    """Replace folder ``final`` by ``new`` (a directory cannot be renamed over a non-empty
    one: the old one is renamed away first, then removed; with ``recycle``, emptied and
    kept for the next render, :func:`evalkit.present.report.cache.recycle`)."""
    old = final.with_name(f"{final.name}.old{os.getpid()}")
    if final.exists():
        shutil.rmtree(old, ignore_errors=True)
        os.replace(final, old)
    os.replace(new, final)
    if recycle and old.is_dir():
        report_cache.recycle(old, final)
    shutil.rmtree(old, ignore_errors=True)


def _grid_row(disp: grids.DisplaySet, i: int, cols: list[str], sm_lookup: dict,
              metric: str | None) -> dict:
    """One sample's row: id, input, target, and per column checkpoint image + value."""
    cells = []
    for c in cols:
        paths = disp.outputs.get(c)
        v = sm_lookup.get((c, disp.name, metric, i)) if metric else None
        cells.append({"checkpoint": c, "src": paths[i] if paths else None,
                      "problem": disp.problems.get((c, i)),
                      "value": None if v is None else _num(v, 3)})
    return {"index": i, "id": disp.ids[i] if i < len(disp.ids) else str(i),
            "input": disp.inputs[i] if i < len(disp.inputs) else None,
            "target": disp.targets[i] if i < len(disp.targets) else None, "cells": cells}
