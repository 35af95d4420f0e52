"""Code that makes the shipped example and the starter sketch set; not part of evalkit.

* :mod:`benchmarks.example.faces` -- procedural cartoon faces (the ``person`` domain).
* :mod:`benchmarks.example.gemstones` -- procedural faceted gemstones (the ``gemstone`` domain).
* :mod:`benchmarks.example.train` -- a small pix2pix trainer with the seed's recipe.
* :mod:`benchmarks.example.draw` -- the procedural stroke drawer behind ``human_sketches/``.

``benchmarks/make_example.py`` uses them to (re)make ``examples/``; tests import them as
``benchmarks.example.*`` (the repository root is on ``sys.path`` under pytest).
"""
