"""The comparison of two selections as an HTML page: ``report/compare.html`` (the last
recorded selection in OUT against this report's choice) and ``evalkit compare A B --html``.

Both render the dict of :func:`evalkit.decide.compare.compare` (per domain: both picks,
the paired difference B - A per counted metric with its 95 % interval, the head-to-head
verdict) with the same template, ``templates/compare.html``.
"""

from __future__ import annotations

from pathlib import Path

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
