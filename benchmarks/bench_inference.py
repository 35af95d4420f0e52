"""Inference and re-run cost at the real size: 256x256, width 64 (11.4 M parameters).

Measured side by side in one process, printed as ratios:

1. evalkit's batched, traced inference (``evalkit.inputs.models.runner.Runner``, batch 8) against a
   per-image eager ``model(x)`` loop, the way an ad-hoc evaluation script calls the model;
2. a second ``evaluate_run`` over the same checkpoint and data (everything from the store
   and the output cache) against the first.

Usage: ``.venv/bin/python benchmarks/bench_inference.py [--images 16]``
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import evalkit  # noqa: E402,F401
from evalkit.core.tf import tf  # noqa: E402
from evalkit.execute.engine import RunOptions, evaluate_run  # noqa: E402
from evalkit.inputs.checkpoints.load import Architecture  # noqa: E402
from evalkit.inputs.data.pairs import load_pairs  # noqa: E402
from evalkit.inputs.models import resnet_generator  # noqa: E402
from evalkit.inputs.models.runner import Runner  # noqa: E402
from evalkit.measure.paired import PairedMetrics  # noqa: E402
from tests.conftest import make_ab_folder  # noqa: E402

SIZE = 256


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--images", type=int, default=16)
    ap.add_argument("--batch-size", type=int, default=4)
    args = ap.parse_args()
    n = args.images
    x = np.random.default_rng(0).random((n, SIZE, SIZE, 1)).astype(np.float32)

    model = resnet_generator()
    model(x[:1])  # build
    t = time.perf_counter()
    eager = np.concatenate([model(x[i:i + 1]).numpy() for i in range(n)])
    t_eager = time.perf_counter() - t

    runner = Runner(Architecture(1, 3, 64), SIZE)
    for a, b in zip(runner.model.weights, model.weights, strict=True):
        a.assign(b)
    traced = {}
    for bs in sorted({1, 4, args.batch_size}):
        runner.run(x[:bs], batch_size=bs)  # warm-up at this batch shape (not timed)
        t = time.perf_counter()
        batched = runner.run(x, batch_size=bs)
        traced[bs] = time.perf_counter() - t
        assert np.abs(batched - eager).max() < 1e-4

    tmp = Path(tempfile.mkdtemp())
    try:
        heldout = make_ab_folder(tmp / "heldout", n=n, half=SIZE)
        run = tmp / "run"
        tf.train.Checkpoint(generator=model).save(str(run / "ckpt"))
        ds = [load_pairs(heldout, size=SIZE)]
        opts = RunOptions(image_size=SIZE, batch_size=args.batch_size, progress=False)
        t = time.perf_counter()
        evaluate_run(run, tmp / "out", ds, opts, families=[PairedMetrics()])
        t_first = time.perf_counter() - t
        t = time.perf_counter()
        evaluate_run(run, tmp / "out", ds, opts, families=[PairedMetrics()])
        t_again = time.perf_counter() - t
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    print(f"images: {n} at {SIZE}x{SIZE}, width 64, batch {args.batch_size}, "
          f"{tf.config.threading.get_intra_op_parallelism_threads() or 'default'} TF threads")
    print(f"eager per-image loop : {t_eager:7.2f} s  ({t_eager / n:.3f} s/image)")
    for bs, secs in traced.items():
        print(f"evalkit traced, batch {bs:<2}: {secs:7.2f} s  ({secs / n:.3f} s/image)  "
              f"{t_eager / secs:.2f}x vs eager")
    print(f"evaluate_run first   : {t_first:7.2f} s (incl. tracing, metrics, store)")
    print(f"evaluate_run again   : {t_again:7.2f} s (store + cache, no generator)")
    print(f"re-run speed-up: {t_first / t_again:.1f}x")


if __name__ == "__main__":
    main()
