"""Hand-drawn sketch sets: the manifest, import (digital / scan), checks, loading.

* :mod:`evalkit.inputs.sketches.manifest` -- the ``manifest.json`` schema, read/write, validation.
* :mod:`evalkit.inputs.sketches.importer` -- import one drawing: digital (byte for byte) or scan.
* :mod:`evalkit.inputs.sketches.normalize` -- the scan cleanup of photos and scans of paper.
* :mod:`evalkit.inputs.sketches.check` -- validate a set (``evalkit sketches check``).
* :mod:`evalkit.inputs.sketches.dataset` -- :func:`load_sketches`, a set as an evaluation dataset.

The procedural stroke drawer behind ``human_sketches/`` makes data, not evaluations: it lives
beside the example's makers in ``benchmarks/example/draw.py``.
"""
