"""Hand-drawn sketch sets: the manifest, import (normalization), checks, loading.

* :mod:`evalkit.sketches.manifest` -- the ``manifest.json`` schema, read/write, validation.
* :mod:`evalkit.sketches.normalize` -- turn any real drawing into a clean square sketch.
* :mod:`evalkit.sketches.check` -- validate a set (``evalkit sketches check``).
* :mod:`evalkit.sketches.dataset` -- :func:`load_sketches`, a set as an evaluation dataset.

The procedural stroke drawer behind ``human_sketches/`` makes data, not evaluations: it lives
beside the example's makers in ``benchmarks/example/draw.py``.
"""
