"""Seed TF inference before and after the model-source seam, at the real size (256x256,
width 64, 11.4 M parameters), measured side by side in one process.

* before: what the engine did before the seam -- ``RunnerPool.get(arch, size)``,
  ``runner.load(prefix)``, ``generate(runner, ds)``;
* after: ``evalkit.inputs.sources.discover`` + ``sources.prepare(ref, pool, options).runner()``,
  then the same ``generate``.

Each path has its own pool, traced and warmed before timing; the repeats are interleaved
(ABBA: before, after, after, before, ...) so machine load hits both alike; medians, their
ratio and the median of the paired ratios are printed, and the served outputs must be
identical. For scale, the same images through a PyTorch pix2pix ``resnet_9blocks``
(instance norm, ngf 64) are timed once.

Usage: ``.venv/bin/python benchmarks/bench_formats.py [--images 4] [--repeats 10]``
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import evalkit  # noqa: E402,F401
from evalkit import sources  # noqa: E402
from evalkit.core.tf import tf  # noqa: E402
from evalkit.execute.engine import RunOptions  # noqa: E402
from evalkit.execute.generate import generate  # noqa: E402
from evalkit.inputs.checkpoints.load import infer_architecture, read_shapes  # noqa: E402
from evalkit.inputs.data.pairs import load_pairs  # noqa: E402
from evalkit.inputs.models import resnet_generator  # noqa: E402
from evalkit.inputs.models.runner import RunnerPool  # noqa: E402
from tests.conftest import make_ab_folder  # noqa: E402

SIZE = 256


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--images", type=int, default=4)
    ap.add_argument("--repeats", type=int, default=10)
    ap.add_argument("--batch-size", type=int, default=4)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp())
    try:
        model = resnet_generator()
        rng = np.random.default_rng(0)
        for w in model.weights:
            w.assign(rng.normal(0, 0.05, w.shape).astype(np.float32))
        run = tmp / "run"
        tf.train.Checkpoint(generator=model).save(str(run / "ckpt"))
        ds = load_pairs(make_ab_folder(tmp / "heldout", n=args.images, half=SIZE), size=SIZE)
        opts = RunOptions(image_size=SIZE, batch_size=args.batch_size, progress=False)
        (ref,) = sources.discover(run, options=opts)

        pool_before, pool_after = RunnerPool(), RunnerPool()

        def before():
            arch = infer_architecture(read_shapes(ref.prefix))
            runner = pool_before.get(arch, SIZE)
            runner.load(ref.prefix)
            return generate(runner, ds, args.batch_size)[0]

        def after():
            runner = sources.prepare(ref, pool_after, opts).runner()
            return generate(runner, ds, args.batch_size)[0]

        out_before, out_after = before(), after()  # trace + warm both
        assert np.array_equal(out_before, out_after), "the seam changed the seed's outputs"
        times: dict[str, list[float]] = {"before": [], "after": []}
        pairs = (("before", before), ("after", after))
        for i in range(args.repeats):  # ABBA order: a drift in machine load cancels out
            for name, fn in (pairs if i % 2 == 0 else pairs[::-1]):
                t = time.perf_counter()
                fn()
                times[name].append(time.perf_counter() - t)
        med = {k: statistics.median(v) for k, v in times.items()}
        paired = statistics.median(a / b for a, b in zip(times["after"], times["before"],
                                                           strict=True))

        torch_secs = _torch_reference(ds, args.batch_size, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    n = args.images
    print(f"images: {n} at {SIZE}x{SIZE}, seed generator width 64, batch {args.batch_size}, "
          f"{args.repeats} interleaved repeats (load + inference + output contract)")
    for k in ("before", "after"):
        print(f"seed TF {k:6} the seam: median {med[k]:6.2f} s ({med[k] / n:.3f} s/image); "
              f"runs {', '.join(f'{t:.2f}' for t in times[k])}")
    print(f"after / before = {med['after'] / med['before']:.3f} (ratio of medians), "
          f"{paired:.3f} (median of paired ratios); 1.0 = no change; outputs identical")
    print(f"pix2pix resnet_9blocks (PyTorch, instance, ngf 64), once: {torch_secs:.2f} s "
          f"({torch_secs / n:.3f} s/image)")


def _torch_reference(ds, batch_size: int, tmp: Path) -> float:
    import torch

    from evalkit.inputs.models.pix2pix import build_generator
    from evalkit.inputs.models.pix2pix_arch import Pix2PixArchitecture

    net = build_generator(Pix2PixArchitecture("resnet_9blocks", "instance", 3, 3, 64))
    torch.save(net.state_dict(), tmp / "run" / "latest_net_G.pth")
    opts = RunOptions(image_size=SIZE, batch_size=batch_size, progress=False)
    (ref,) = [r for r in sources.discover(tmp / "run", options=opts) if r.kind != "tf-checkpoint"]
    runner = sources.prepare(ref, RunnerPool(), opts).runner()
    generate(runner, ds, batch_size)  # warm
    t = time.perf_counter()
    generate(runner, ds, batch_size)
    return time.perf_counter() - t


if __name__ == "__main__":
    main()
