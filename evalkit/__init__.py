"""evalkit: checkpoint evaluation and model selection for sketch-to-image generators.

The pipeline is the package layout (docs/internals.md): ``core`` <- ``inputs`` <- ``measure``
<- ``store`` <- ``decide`` <- ``execute`` / ``present``, with ``cli``/``commands`` and the
Python API (:mod:`evalkit.api`) outside. The API is importable from here::

    import evalkit
    evalkit.run("checkpoints/", out="out/", heldout="heldout/", sketches="sketches/")
    evalkit.results("out/")          # pandas DataFrame
    evalkit.select("out/")           # selection.json's content
    evalkit.report("out/")           # out/report/index.html
    evalkit.gate("out/", config="evalkit.toml").passed

Importing evalkit imports neither TensorFlow nor torch; each call imports what it needs.
"""

from __future__ import annotations

from evalkit.core.import_order import make_import_order_safe

make_import_order_safe()

__version__ = "0.1.0"

#: The API's names, resolved lazily from :mod:`evalkit.api`.
_API = ("run", "results", "select", "report", "gate", "EvalkitError")


def load_results(out):
    """Aggregate results of an evaluation folder as a pandas DataFrame (same as
    :func:`evalkit.results`). Columns include ``checkpoint, dataset, metric, value, n``."""
    from evalkit.store.results import load_results as _load

    return _load(out)


def __getattr__(name: str):
    if name in _API:
        from evalkit import api

        return getattr(api, name)
    raise AttributeError(f"module 'evalkit' has no attribute {name!r}")


__all__ = ["__version__", "load_results", *_API]
