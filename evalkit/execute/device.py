"""Where an evaluation runs: ``--device auto|cpu|gpu``.

TensorFlow runs the generator and torch the metrics; both use a visible GPU when asked to
(``gpu``) or when one is present (``auto``). TensorFlow gets *memory growth* on every GPU so
that it does not reserve the whole card and torch can share it. ``cpu`` hides the GPUs from
TensorFlow. The device actually used is recorded with every metric value (flag ``device``)
and shown by the report, because GPU results may differ from CPU ones in float rounding
(``tests/test_device.py`` compares served outputs on both when a GPU exists).

TensorFlow fixes its visible devices when its runtime starts: in a process where it already
ran (an earlier in-process run), the setting cannot change any more; then the device in use
is reported as it is, never silently claimed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

DEVICES = ("auto", "cpu", "gpu")


class DeviceError(ValueError):
    """The requested device is not available (exit 2); the message says what to do."""


def visible_gpus() -> list:
    """TensorFlow's physical GPUs (does not start the TF runtime)."""
    from evalkit.core.tf import tf

    return list(tf.config.list_physical_devices("GPU"))


def configure(requested: str = "auto") -> str:
    """Set TensorFlow up for ``requested`` and return the device used: ``cpu`` or ``gpu``.

    Raises :class:`DeviceError` for ``gpu`` when no GPU is visible.
    """
    from evalkit.core.tf import tf

    if requested not in DEVICES:
        raise DeviceError(f"unknown device '{requested}': use one of {', '.join(DEVICES)}")
    gpus = visible_gpus()
    if requested == "gpu" and not gpus:
        raise DeviceError(
            "--device gpu: TensorFlow sees no GPU here (a CPU-only TensorFlow, no CUDA "
            "driver, or CUDA_VISIBLE_DEVICES empty); install a CUDA build of TensorFlow "
            "(pip install tensorflow[and-cuda]) or use --device auto|cpu")
    if requested == "cpu" or not gpus:
        if gpus:
            try:
                tf.config.set_visible_devices([], "GPU")
            except RuntimeError:  # TF already started in this process: GPUs stay visible
                return "gpu" if tf.config.get_visible_devices("GPU") else "cpu"
        return "cpu"
    for g in gpus:
        try:
            tf.config.experimental.set_memory_growth(g, True)
        except (RuntimeError, ValueError):  # already initialised: keep its setting
            pass
    return "gpu" if tf.config.get_visible_devices("GPU") else "cpu"


def torch_device(device: str) -> str:
    """The torch device for metrics on ``device`` (``cuda`` only if torch sees one)."""
    if device != "gpu":
        return "cpu"
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


@dataclass(frozen=True)
class ServedDifference:
    """How two served uint8 outputs of the same inputs differ.

    Attributes:
        max_levels: largest absolute difference in uint8 levels (0-255).
        share: fraction of channel values that differ at all (0-1).
    """

    max_levels: int
    share: float


def compare_served(a: np.ndarray, b: np.ndarray) -> ServedDifference:
    """Compare served outputs (same shape, uint8), e.g. a GPU run against a CPU run."""
    if a.shape != b.shape:
        raise ValueError(f"shapes differ: {a.shape} vs {b.shape}")
    d = np.abs(a.astype(np.int16) - b.astype(np.int16))
    return ServedDifference(int(d.max()) if d.size else 0,
                            float(np.count_nonzero(d)) / d.size if d.size else 0.0)
