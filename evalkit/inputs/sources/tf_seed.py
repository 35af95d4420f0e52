"""The seed's format: ``tf.train.Checkpoint(generator=model)`` files ``ckpt-N.index`` +
``ckpt-N.data-*`` (discovery: :mod:`evalkit.inputs.checkpoints.discover`, loading:
:mod:`evalkit.inputs.checkpoints.load`, inference: :class:`evalkit.inputs.models.runner.Runner`).

With the default ``seed`` contract the runner is the traced seed Runner itself, untouched,
so this path costs what it cost before the source seam (benchmarks/bench_formats.py).
"""

from __future__ import annotations

import numpy as np

from evalkit.inputs.checkpoints.discover import CheckpointRef, discover_checkpoints
from evalkit.inputs.checkpoints.load import infer_architecture, read_shapes
from evalkit.inputs.sources.base import ModelRunner, PreparedSource, SourceOptions
from evalkit.inputs.sources.contracts import SEED, InputContract

KIND = "tf-checkpoint"
DEFAULT_CONTRACT = SEED.name


class _ContractSeedRunner(ModelRunner):
    """The seed Runner behind a non-default input contract."""

    def __init__(self, inner, contract: InputContract):
        super().__init__(contract, inner.arch.input_channels, inner.size)
        self.inner = inner

    def forward(self, x: np.ndarray) -> np.ndarray:
        return self.inner.run(x, batch_size=len(x))


def discover(run_dir, exclude) -> list[CheckpointRef]:
    return discover_checkpoints(run_dir, exclude=exclude)


def prepare(ref: CheckpointRef, pool, options: SourceOptions,
            contract: InputContract) -> PreparedSource:
    arch = infer_architecture(read_shapes(ref.prefix))

    def open_runner():
        if options.precision != "fp32":
            from evalkit.inputs.models.runner import Runner

            runner = pool.get((arch, options.precision), options.image_size,
                              factory=lambda: Runner(arch, options.image_size,
                                                     options.precision))
        else:
            runner = pool.get(arch, options.image_size)
        runner.load(ref.prefix)
        return runner if contract is SEED else _ContractSeedRunner(runner, contract)

    desc = arch.describe()
    if contract is not SEED:
        desc += f"; contract {contract.name}"
    return PreparedSource(desc, open_runner)
