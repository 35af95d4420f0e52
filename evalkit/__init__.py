"""evalkit: checkpoint evaluation and model selection for sketch-to-image generators."""

from __future__ import annotations

from evalkit._imports import make_import_order_safe

make_import_order_safe()

__version__ = "0.1.0"


def load_results(out):
    """Aggregate results of an evaluation folder as a pandas DataFrame.

    Columns include ``checkpoint, dataset, metric, value, n`` (see :mod:`evalkit.store`).
    """
    from evalkit.store import load_results as _load

    return _load(out)


__all__ = ["__version__", "load_results"]
