"""GPU vs CPU served outputs (issue 14): the same checkpoint on the same inputs, generated
on each device, compared in uint8 levels. Skipped, with the reason, where TensorFlow sees no
GPU (this project's machines and CI have none: tensorflow-cpu)."""

from __future__ import annotations

import numpy as np
import pytest

from tests.conftest import make_ab_folder

SIZE = 64
# Tolerances, not measurements: float rounding on another device may move a raw output
# across a truncation boundary (one level); anything larger means a different computation.
MAX_LEVELS = 2
MAX_SHARE = 0.02


def _gpu_or_skip() -> None:
    from evalkit.execute.device import visible_gpus

    if not visible_gpus():
        pytest.skip("no GPU visible to TensorFlow here (tensorflow-cpu, or no CUDA device): "
                    "the GPU-vs-CPU comparison needs one")


def test_gpu_and_cpu_serve_the_same_outputs_within_rounding(tmp_path, capsys):
    _gpu_or_skip()
    from evalkit.core.tf import tf
    from evalkit.execute.device import compare_served, configure
    from evalkit.execute.generate import generate
    from evalkit.inputs.checkpoints.discover import discover_checkpoints
    from evalkit.inputs.checkpoints.load import infer_architecture, read_shapes
    from evalkit.inputs.data.pairs import load_pairs
    from evalkit.inputs.models.runner import Runner
    from tests.seed_reference import save_seed_checkpoint

    assert configure("gpu") == "gpu"
    save_seed_checkpoint(tmp_path, n=1, hidden=8)
    ref = discover_checkpoints(tmp_path)[0]
    ds = load_pairs(make_ab_folder(tmp_path / "heldout", n=8, half=SIZE), size=SIZE)
    arch = infer_architecture(read_shapes(ref.prefix))
    served = {}
    for dev in ("/CPU:0", "/GPU:0"):
        with tf.device(dev):
            runner = Runner(arch, SIZE)
            runner.load(ref.prefix)
            served[dev], _ = generate(runner, ds, batch_size=4)
    d = compare_served(served["/CPU:0"], served["/GPU:0"])
    with capsys.disabled():
        print(f"\nGPU vs CPU served outputs: max difference {d.max_levels} uint8 levels, "
              f"{d.share:.4%} of values differ")
    assert d.max_levels <= MAX_LEVELS and d.share <= MAX_SHARE
    assert not np.array_equal(served["/CPU:0"], np.zeros_like(served["/CPU:0"]))


def test_auto_picks_the_cpu_without_a_gpu():
    from evalkit.execute.device import configure, torch_device, visible_gpus

    if visible_gpus():
        pytest.skip("a GPU is visible here: auto picks it")
    assert configure("auto") == "cpu" and configure("cpu") == "cpu"
    assert torch_device("cpu") == "cpu"
