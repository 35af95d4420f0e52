"""Foundation every stage may use, importing nothing else of evalkit.

* :mod:`~evalkit.core.import_order`: TensorFlow + torch import-order safety (DESIGN.md).
* :mod:`~evalkit.core.tf`: the one way to get TensorFlow (``from evalkit.core.tf import tf,
  tf_keras``).
* :mod:`~evalkit.core.quiet`: TensorFlow/absl/oneDNN log lines hidden unless ``--verbose``.
* :mod:`~evalkit.core.config`: ``evalkit.toml`` lookup and typed ``[run]`` settings.
* :mod:`~evalkit.core.hashing`: sha256 content hashes that key caches and results.
* :mod:`~evalkit.core.faults`: disk full, SIGINT/SIGTERM exit codes, stale temporary files.
"""
