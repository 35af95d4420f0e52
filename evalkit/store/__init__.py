"""Store: results in SQLite (``OUT/results.sqlite``) and its guards.

* :mod:`~evalkit.store.results`: ``Store`` (current values and history) and
  ``load_results(out) -> DataFrame``.
* :mod:`~evalkit.store.file`: opening the file: schema versions, read-only readers, damaged,
  foreign or newer files refused (exit 2).
* :mod:`~evalkit.store.lock`: one run per OUT (``flock``).
* :mod:`~evalkit.store.endings`: how a command ends on SIGINT/SIGTERM/disk full, saying what
  is stored.

Imports only :mod:`evalkit.core`.
"""
