"""What every model source kind shares: options, the lazily opened runner, and the runner
base class that applies an input contract batch by batch.

A runner takes the dataset's served inputs ``(N, S, S, c)`` float32 in [0, 1] and returns
raw outputs ``(N, S, S, 3)`` float32 in [-1, 1]; :func:`evalkit.execute.generate.generate` applies
the output contract. ``served_channels`` is how many served channels it consumes.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from evalkit.inputs.checkpoints.load import CheckpointError, _one_line
from evalkit.inputs.sources.contracts import InputContract


@dataclass(frozen=True)
class SourceOptions:
    """User choices that select or configure a model source (``None`` = the default).

    net_g, norm: pix2pix ``--netG`` / ``--norm`` (default: inferred from the weights).
    contract: input contract name (default: the kind's own, see :mod:`evalkit.inputs.sources`).
    image_size: the served size S.
    precision: ``fp32`` or ``bf16`` (:mod:`evalkit.execute.precision`; the seed generator only).
    trust_model_code: skip :mod:`evalkit.inputs.sources.safety`'s checks of Keras, SavedModel
    and ONNX files (Keras Lambda layers load, ``safe_mode=False``); recorded in those
    checkpoints' content hashes.
    """

    net_g: str | None = None
    norm: str | None = None
    contract: str | None = None
    image_size: int = 256
    precision: str = "fp32"
    trust_model_code: bool = False

    @classmethod
    def of(cls, options: Any) -> SourceOptions:
        """From any object with these attributes (``engine.RunOptions``), or None."""
        if options is None:
            return cls()
        if isinstance(options, cls):
            return options
        return cls(net_g=getattr(options, "net_g", None), norm=getattr(options, "norm", None),
                   contract=getattr(options, "contract", None),
                   image_size=getattr(options, "image_size", 256),
                   precision=getattr(options, "precision", "fp32"),
                   trust_model_code=bool(getattr(options, "trust_model_code", False)))


@dataclass
class PreparedSource:
    """A checkpoint whose kind and architecture are known; the runner is built and the
    weights loaded only when :meth:`runner` is first called (cached outputs need neither).

    description: one line for the store's ``architecture`` column (kind, architecture,
    what was inferred, the contract).
    """

    description: str
    open: Callable[[], Any]
    _runner: Any = field(default=None, repr=False)

    def runner(self):
        if self._runner is None:
            self._runner = self.open()
        return self._runner


def tile_rgb(y: np.ndarray) -> np.ndarray:
    """A 1-channel output as 3 identical channels (what pix2pix's ``tensor2im`` does)."""
    return np.repeat(y, 3, axis=-1) if y.shape[-1] == 1 else y


class ModelRunner(ABC):
    """Base of every non-seed runner: contract per batch, then :meth:`forward`.

    Subclasses set ``model_channels`` (input channels of the model) and implement
    ``forward(x)`` for ``x`` ``(n, S, S, model_channels)`` float32 (NHWC) returning
    ``(n, S, S, out)``.
    """

    def __init__(self, contract: InputContract, model_channels: int, size: int):
        self.contract = contract
        self.model_channels = model_channels
        self.size = size

    @property
    def served_channels(self) -> int:
        """Served channels this runner consumes (1 when the contract replicates grey)."""
        if self.contract.model_channels_ok(1, self.model_channels):
            return 1
        return self.model_channels

    @abstractmethod
    def forward(self, x: np.ndarray) -> np.ndarray:
        """The model on ``(n, S, S, model_channels)`` float32 NHWC -> ``(n, S, S, out)``."""

    def run(self, inputs: np.ndarray, batch_size: int = 4,
            on_batch: Callable[[int], None] | None = None) -> np.ndarray:
        """Raw outputs ``(N, S, S, 3)`` float32 in [-1, 1] for served inputs."""
        outs = []
        for i in range(0, len(inputs), batch_size):
            batch = self.contract.to_model(inputs[i:i + batch_size], self.model_channels)
            try:
                y = np.asarray(self.forward(batch), dtype=np.float32)
            except CheckpointError:
                raise
            except Exception as exc:  # a model that cannot run fails its checkpoint only
                raise CheckpointError(f"inference failed on input {list(batch.shape)}: "
                                      f"{_one_line(exc)}") from exc
            if y.ndim != 4 or y.shape[:3] != batch.shape[:3] or y.shape[-1] not in (1, 3):
                raise CheckpointError(f"the model returned shape {list(y.shape)} for input "
                                      f"{list(batch.shape)}; evalkit needs (N, S, S, 3) "
                                      "images in [-1, 1]")
            outs.append(tile_rgb(y))
            if on_batch:
                on_batch(len(batch))
        if not outs:
            return np.zeros((0, self.size, self.size, 3), np.float32)
        return np.concatenate(outs)


def image_layout(shape: list, what: str) -> tuple[str, int]:
    """``("NCHW" | "NHWC", channels)`` of a 4-D image input shape whose unknown dims are
    None or names. Channels are 1, 3 or 4 and sit beside a batch axis; NCHW wins a tie."""
    if len(shape) != 4:
        raise CheckpointError(f"{what} takes a {len(shape)}-D input {shape}; evalkit needs "
                              "a 4-D image batch (N, H, W, C) or (N, C, H, W)")

    def small(d) -> bool:
        return isinstance(d, int) and d in (1, 3, 4)

    if small(shape[1]) and not small(shape[3]):
        return "NCHW", shape[1]
    if small(shape[3]):
        return "NHWC", shape[3]
    if small(shape[1]):
        return "NCHW", shape[1]
    raise CheckpointError(f"{what}: cannot tell the channel axis of input shape {shape}; "
                          "export it with a fixed channel count (1 or 3)")


def check_spatial(shape: list, layout: str, size: int, what: str) -> None:
    """A fixed input height/width must equal the served size."""
    hw = shape[2:4] if layout == "NCHW" else shape[1:3]
    for d in hw:
        if isinstance(d, int) and d > 0 and d != size:
            raise CheckpointError(f"{what} takes {hw[0]}x{hw[1]} images but the run serves "
                                  f"{size}x{size}: pass --image-size {d}")
