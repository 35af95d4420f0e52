"""The HTML report of an evaluation folder (``OUT/report/``).

Modules: :mod:`~evalkit.present.report.build` (``render_report``: the domain pages and the
folder swap), :mod:`~evalkit.present.report.overview` (the domain overview page),
:mod:`~evalkit.present.report.grids` (comparison grids), :mod:`~evalkit.present.report.plots`
(matplotlib plots), :mod:`~evalkit.present.report.render` (jinja2 and formatting helpers),
:mod:`~evalkit.present.report.stamp` (is the report up to date?). Templates and static
files sit beside them.
"""

from evalkit.present.report.build import render_report

__all__ = ["render_report"]
