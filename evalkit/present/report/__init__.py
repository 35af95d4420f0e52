"""The HTML report of an evaluation folder (``OUT/report/``).

Modules: :mod:`~evalkit.present.report.build` (``render_report``: the domain pages and the
folder swap), :mod:`~evalkit.present.report.overview` (the domain overview page),
:mod:`~evalkit.present.report.grids` (comparison grids), :mod:`~evalkit.present.report.plots`
(matplotlib plots), :mod:`~evalkit.present.report.render` (jinja2 and formatting helpers),
:mod:`~evalkit.present.report.stamp` (is the report up to date?). Templates and static
files sit beside them.

``render_report`` is resolved on first use, so that asking :mod:`~evalkit.present.report.stamp`
whether the report is up to date does not import matplotlib and the grid code.
"""

from __future__ import annotations

__all__ = ["render_report"]


def __getattr__(name: str):
    if name == "render_report":
        from evalkit.present.report.build import render_report

        return render_report
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
