"""The comparison of two selections as an HTML page: ``report/compare.html`` (the last
recorded selection in OUT against this report's choice: :func:`since_last` per domain,
:func:`write_report_compare`) and ``evalkit compare A B --html``.

Both render the dict of :func:`evalkit.decide.compare.compare` (per domain: both picks,
the paired difference B - A per counted metric with its 95 % interval, the head-to-head
verdict) with the same template, ``templates/compare.html``.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from evalkit.present.report.render import _env, _num


def _signed(v: float | None) -> str:
    return "–" if v is None else f"{v:+.4g}"


def render_compare(cmp: dict, label_a: str, label_b: str, up: str | None = None,
                   domain_pages: dict[str, str] | None = None) -> str:
    """The page's HTML; ``label_a``/``label_b`` name the two sides (e.g. "last selection,
    2026-12-04" and "this report"); ``domain_pages`` links each domain to its report."""
    import evalkit

    return _env().get_template("compare.html").render(
        title="evalkit report: what changed", evalkit_version=evalkit.__version__, cmp=cmp,
        label_a=label_a, label_b=label_b, up=up, pages=domain_pages or {}, fmt=_num,
        signed=_signed)


def write_compare_page(dest: Path, cmp: dict, label_a: str, label_b: str,
                       up: str | None = None, domain_pages: dict[str, str] | None = None
                       ) -> Path:
    """Write :func:`render_compare` to ``dest`` (a file path); returns it."""
    dest.write_text(render_compare(cmp, label_a, label_b, up, domain_pages), encoding="utf-8")
    return dest


def since_last(out_dir: Path, domain: str, selection: dict | None, results: pd.DataFrame,
               sm: pd.DataFrame, datasets: pd.DataFrame) -> tuple[dict | None, dict | None]:
    """What changed since the last recorded selection of ``domain``
    (:func:`evalkit.decide.compare.changes_since`) and, when there is one, the comparison
    of its pick with this report's on this folder's results (the ``evalkit compare`` view,
    A = the last selection, B = this report)."""
    from evalkit.decide.compare import changes_since, compare_domain, last_selection

    last = last_selection(out_dir, domain, selection)
    try:
        change = changes_since(last, selection)
        if last is None or selection is None:
            return change, None
        cmp = compare_domain(domain, last[0], selection, results, results, sm, sm,
                             datasets, datasets)
    except (KeyError, TypeError, ValueError, AttributeError):
        return None, None  # a hand-edited or foreign selection file must not break the report
    cmp["a"]["since"] = last[1]
    return change, cmp


def write_report_compare(out_dir: Path, report_dir: Path, summaries: list[dict],
                         multi: bool) -> None:
    """``report/compare.html``: each domain's last recorded selection against this
    report's choice (only when some domain has a last selection)."""
    comps = [s["comparison"] for s in summaries if s.get("comparison")]
    if not comps:
        return
    cmp = {"a": f"{out_dir.resolve()} (selection.json / selection.previous.json)",
           "b": f"{out_dir.resolve()} (results now)", "domains": comps,
           "only_in_a": [], "only_in_b": []}
    pages = {s["domain"]: s["page"] for s in summaries} if multi else {"": "index.html"}
    write_compare_page(report_dir / "compare.html", cmp, "the last recorded selection",
                       "this report", up="index.html", domain_pages=pages)
