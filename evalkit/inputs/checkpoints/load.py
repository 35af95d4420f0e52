"""Read a checkpoint's generator variables, check them against the seed architecture,
and put them into a generator.

Variables are read with ``tf.train.load_checkpoint`` and assigned by name (the route
DESIGN.md measured as sound), after every one has been read and checked: a truncated or
corrupt data shard, or a variable that does not fit, fails the checkpoint with a one-line
reason before any weight is touched. The architecture (input, hidden and output channels)
is inferred from the shapes, so narrow test models and edge+colour-hint models (more input
channels) load too.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = "generator"
SUFFIX = "/.ATTRIBUTES/VARIABLE_VALUE"


class CheckpointError(Exception):
    """A checkpoint that cannot be evaluated; ``str()`` is a one-line reason."""


@dataclass(frozen=True)
class Architecture:
    """Shape parameters of a seed ResNet generator."""

    input_channels: int
    output_channels: int
    hidden_channels: int

    def describe(self) -> str:
        return (f"ResNet generator in={self.input_channels} hidden={self.hidden_channels} "
                f"out={self.output_channels}")


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    msg = text[0] if text else type(exc).__name__
    return f"{type(exc).__name__}: {msg}"[:300]


def read_shapes(prefix: str | Path) -> dict[str, list[int]]:
    """``{variable key: shape}`` from the index file alone."""
    from evalkit.core.tf import tf

    try:
        return {k: list(s) for k, s in tf.train.list_variables(str(prefix))}
    except Exception as exc:
        raise CheckpointError(f"cannot read index {Path(str(prefix) + '.index').name}: "
                              f"{_one_line(exc)}") from exc


def infer_architecture(shapes: dict[str, list[int]]) -> Architecture:
    """Channels of the generator stored in a checkpoint, from its variable shapes."""
    first = shapes.get(f"{ROOT}/c7s1_64_conv/kernel{SUFFIX}")
    last = shapes.get(f"{ROOT}/c7s1_3_conv/kernel{SUFFIX}")
    if first is None or last is None:
        roots = sorted({k.split("/")[0] for k in shapes if "/" in k})
        raise CheckpointError(
            "not a seed ResNet generator checkpoint: no generator/c7s1_64_conv/kernel "
            f"(top-level objects: {', '.join(roots) or 'none'}); it must be saved with "
            "tf.train.Checkpoint(generator=model)")
    if len(first) != 4 or len(last) != 4:
        raise CheckpointError(f"unexpected kernel ranks {first} / {last} for the first/last conv")
    return Architecture(input_channels=first[2], output_channels=last[3],
                        hidden_channels=first[3])


def expected_variables(model) -> dict[str, object]:
    """``{checkpoint key: tf.Variable}`` for a generator built by evalkit.inputs.models.

    The keys are those ``tf.train.Checkpoint(generator=model)`` writes (tested against the
    real index files).
    """
    from evalkit.inputs.models.resnet import N_RESIDUAL_BLOCKS

    out: dict[str, object] = {}

    def conv(path: str, layer) -> None:
        out[f"{ROOT}/{path}/kernel{SUFFIX}"] = layer.kernel
        if layer.use_bias:
            out[f"{ROOT}/{path}/bias{SUFFIX}"] = layer.bias

    def norm(path: str, layer) -> None:
        out[f"{ROOT}/{path}/gamma{SUFFIX}"] = layer.gamma
        out[f"{ROOT}/{path}/beta{SUFFIX}"] = layer.beta

    for name in ("c7s1_64", "d128", "d256"):
        conv(f"{name}_conv", getattr(model, f"{name}_conv"))
        norm(f"{name}_instance_norm", getattr(model, f"{name}_instance_norm"))
    for i in range(1, N_RESIDUAL_BLOCKS + 1):
        block = getattr(model, f"R256_{i}")
        for j in (1, 2):
            conv(f"R256_{i}/conv_{j}", getattr(block, f"conv_{j}"))
            norm(f"R256_{i}/instance_norm_{j}", getattr(block, f"instance_norm_{j}"))
    for name in ("u128", "u256"):
        conv(f"{name}_conv_transpose", getattr(model, f"{name}_conv_transpose"))
        norm(f"{name}_instance_norm", getattr(model, f"{name}_instance_norm"))
    conv("c7s1_3_conv", model.c7s1_3_conv)
    return out


def read_generator_weights(prefix: str | Path, model) -> dict[str, np.ndarray]:
    """Read and check every generator variable ``model`` needs; nothing is assigned yet.

    Raises CheckpointError (one line) for a missing/corrupt shard, a missing variable or
    a shape that does not fit.
    """
    from evalkit.core.tf import tf

    expected = expected_variables(model)
    try:
        reader = tf.train.load_checkpoint(str(prefix))
    except Exception as exc:
        raise CheckpointError(f"cannot open checkpoint: {_one_line(exc)}") from exc
    shapes = reader.get_variable_to_shape_map()
    values: dict[str, np.ndarray] = {}
    for key, var in expected.items():
        if key not in shapes:
            raise CheckpointError(f"variable {key.removesuffix(SUFFIX)} is missing: the "
                                  "checkpoint does not fit the seed ResNet generator")
        if list(shapes[key]) != list(var.shape):
            raise CheckpointError(f"variable {key.removesuffix(SUFFIX)} has shape "
                                  f"{list(shapes[key])}, the architecture needs {list(var.shape)}")
        try:
            values[key] = reader.get_tensor(key)
        except Exception as exc:  # truncated or corrupt data shard
            raise CheckpointError(f"data shard unreadable at {key.removesuffix(SUFFIX)}: "
                                  f"{_one_line(exc)}") from exc
    for key, v in values.items():
        if not np.all(np.isfinite(v)):
            raise CheckpointError(f"variable {key.removesuffix(SUFFIX)} holds NaN or inf")
    return values


def assign_weights(model, values: dict[str, np.ndarray]) -> None:
    """Assign values read by :func:`read_generator_weights` into ``model``."""
    for key, var in expected_variables(model).items():
        var.assign(values[key])
