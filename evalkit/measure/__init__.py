"""Measure: metrics on served outputs, one small module per family.

* :mod:`~evalkit.measure.base`: ``MetricValue``, ``MetricContext``, the ``MetricFamily``
  protocol.
* :mod:`~evalkit.measure.stats`: summaries and bootstrap confidence intervals.
* :mod:`~evalkit.measure.paired`: L1, SSIM, PSNR against the target.
* :mod:`~evalkit.measure.distribution`, :mod:`~evalkit.measure.features`: FID and KID with
  cached real-image features.
* :mod:`~evalkit.measure.lpips`: LPIPS (AlexNet, v0.1).
* :mod:`~evalkit.measure.adherence`: how well outputs follow the drawn lines.
* :mod:`~evalkit.measure.weights`: offline-first registry of pretrained weight files.

Imports :mod:`evalkit.core` and :mod:`evalkit.inputs`.
"""
