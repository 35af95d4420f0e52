"""Discover and load: what is evaluated, on what, exactly as the service would see it.

* :mod:`~evalkit.inputs.checkpoints`: every saved checkpoint in a run folder; reading TF and
  ``.pth`` weights.
* :mod:`~evalkit.inputs.sources`: the model-source seam (seed TF checkpoints, pix2pix
  ``.pth``, Keras/SavedModel/ONNX), each prepared into a runner.
* :mod:`~evalkit.inputs.models`: generator architectures and the traced TF runner.
* :mod:`~evalkit.inputs.data`: the serving contract, held-out pairs, bounded file reading.
* :mod:`~evalkit.inputs.sketches`: hand-drawn sketch sets (manifest, import, checks).
* :mod:`~evalkit.inputs.edges`: HED and its post-processing, AB pairs from photos.

Imports only :mod:`evalkit.core`.
"""
