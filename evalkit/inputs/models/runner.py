"""A generator ready to run: one traced TensorFlow seed generator per (architecture, image
size), and the pool that keeps them (so a run of many checkpoints traces once and only
assigns weights per checkpoint; tracing costs ~1-5 s, see DESIGN.md)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from evalkit.inputs.checkpoints.load import Architecture, assign_weights, read_generator_weights


class Runner:
    """A built, traced generator of one architecture at one image size."""

    def __init__(self, arch: Architecture, size: int, precision: str = "fp32"):
        from evalkit.core.tf import tf, tf_keras
        from evalkit.inputs.models import resnet_generator

        if size % 4:
            raise ValueError(f"image size {size} must be a multiple of 4 for this generator")
        self.arch, self.size, self.precision = arch, size, precision
        old = tf_keras.mixed_precision.global_policy()
        if precision == "bf16":  # bf16 compute, fp32 weights (evalkit.execute.precision)
            tf_keras.mixed_precision.set_global_policy("mixed_bfloat16")
        try:
            self.model = resnet_generator(arch.input_channels, arch.output_channels,
                                          arch.hidden_channels)
        finally:
            tf_keras.mixed_precision.set_global_policy(old)
        spec = tf.TensorSpec((None, size, size, arch.input_channels), tf.float32)
        self._fn = tf.function(lambda x: tf.cast(self.model(x, training=False), tf.float32),
                               input_signature=[spec], autograph=False)

    @property
    def served_channels(self) -> int:
        """Served input channels the model takes (the seed contract feeds them as is)."""
        return self.arch.input_channels

    def load(self, prefix: str | Path) -> None:
        """Read, check and assign a checkpoint's weights (CheckpointError on failure)."""
        assign_weights(self.model, read_generator_weights(prefix, self.model))

    def run(self, inputs: np.ndarray, batch_size: int = 4,
            on_batch: Callable[[int], None] | None = None) -> np.ndarray:
        """Raw outputs ``(N, S, S, out)`` float32 in [-1, 1] for inputs ``(N, S, S, in)``."""
        outs = []
        for i in range(0, len(inputs), batch_size):
            batch = np.ascontiguousarray(inputs[i:i + batch_size], dtype=np.float32)
            outs.append(self._fn(batch).numpy())
            if on_batch:
                on_batch(len(batch))
        return np.concatenate(outs) if outs else np.zeros((0, self.size, self.size, 3), np.float32)


class RunnerPool:
    """Keeps one runner per (architecture, size): a :class:`Runner` for the seed's
    architectures, or what ``factory`` builds for another kind's (hashable) architecture."""

    def __init__(self) -> None:
        self._runners: dict[tuple[object, int], object] = {}

    def get(self, arch, size: int, factory: Callable[[], object] | None = None):
        key = (arch, size)
        if key not in self._runners:
            self._runners[key] = factory() if factory else Runner(arch, size)
        return self._runners[key]
