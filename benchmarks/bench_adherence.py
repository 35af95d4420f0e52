"""Sketch adherence: the old pipeline vs the current one, side by side, same values.

The adherence family (:class:`evalkit.measure.adherence.AdherenceMetrics`, Sobel fallback
detector) on ``--images`` held-out pairs at ``--size`` px (the strokes and colour blobs of
``benchmarks/bench_run.py``), for ``--checkpoints`` sets of outputs: those of random-weight
seed generators (width ``--width``, as bench_run's checkpoints) plus the photo-like
targets. Two paths, interleaved over ``--repeats`` (order alternating), medians printed:

* **old**: ``tests/adherence_reference.py``, the pipeline before issue #13 kept verbatim
  (scikit-image ``thin`` three times per sample, per-channel Sobel, NMS at every pixel, a
  KD-tree matching graph, the stroke skeleton recomputed for every checkpoint);
* **new**: one ``AdherenceMetrics`` instance across the checkpoints, as the engine uses it
  (a fresh instance per repeat, so building its stroke-skeleton cache is counted).

Both must give the same per-sample precision, recall and F1 (checked; exits 1 if not).

Usage: ``.venv/bin/python benchmarks/bench_adherence.py [--repeats 5 --record]``
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import evalkit  # noqa: E402,F401  (torch before TensorFlow)
from benchmarks._record import Printer, record  # noqa: E402


def fixture(images: int, size: int, checkpoints: int, width: int):
    """Served inputs ``(N, S, S, 1)`` and a list of ``(name, (N, S, S, 3) uint8 outputs)``."""
    import numpy as np

    from evalkit.inputs.data.pairs import load_pairs
    from tests.conftest import make_ab_folder
    from tests.seed_reference import SeedLikeGenerator, serve_output

    with tempfile.TemporaryDirectory(prefix="bench-adh-") as tmp:
        ds = load_pairs(make_ab_folder(Path(tmp) / "heldout", n=images, half=size), size=size)
        inputs = np.stack([ds.inputs[i] for i in range(len(ds))])
        outputs = [("photo-like targets", np.stack([ds.targets[i] for i in range(len(ds))]))]
    for seed in range(checkpoints):
        gen = SeedLikeGenerator(in_ch=1, hidden=width, seed=seed)
        y = [serve_output(gen(inputs[i:i + 4]).numpy()) for i in range(0, len(inputs), 4)]
        outputs.append((f"random-weight generator, seed {seed}", np.concatenate(y)))
    return inputs, outputs


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--images", type=int, default=16)
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--checkpoints", type=int, default=3,
                    help="random-weight generators (the targets are one more output set)")
    ap.add_argument("--width", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--record", action="store_true", help="write into reports/benchmarks.md")
    args = ap.parse_args()

    import numpy as np

    from evalkit.inputs.data.dataset import Dataset
    from evalkit.measure.adherence import AdherenceMetrics
    from evalkit.measure.base import MetricContext
    from tests.adherence_reference import per_sample_reference

    inputs, outputs = fixture(args.images, args.size, args.checkpoints, args.width)
    ds = Dataset(name="heldout", kind="pairs", root=ROOT, ids=[str(i) for i in
                 range(len(inputs))], inputs=inputs, targets=None, content_hash="bench",
                 size=args.size)
    units = len(outputs) * len(inputs)

    def old() -> list:
        return [per_sample_reference(inputs, out) for _, out in outputs]

    def new() -> list:
        fam = AdherenceMetrics()
        with tempfile.TemporaryDirectory() as tmp:
            return [{v.metric: v.per_sample for v in fam.compute(
                MetricContext(ds, out, f"ckpt{k}", f"h{k}", Path(tmp)))}
                for k, (_, out) in enumerate(outputs)]

    times: dict[str, list[float]] = {"old": [], "new": []}
    results: dict[str, list] = {}
    for r in range(args.repeats):
        for who in (("old", "new") if r % 2 == 0 else ("new", "old")):
            t = time.perf_counter()
            results[who] = (old if who == "old" else new)()
            times[who].append(time.perf_counter() - t)
    mismatches = 0
    for ref, got in zip(results["old"], results["new"], strict=True):
        for i, m in enumerate(ref):
            want = (np.nan,) * 3 if m is None else (m.precision, m.recall, m.f1)
            have = tuple(got[k][i] for k in ("adherence_precision", "adherence_recall",
                                             "adherence_f1"))
            mismatches += not np.array_equal(want, have, equal_nan=True)

    say = Printer()  # prints, and keeps the lines for --record

    say(f"adherence (Sobel fallback): {len(inputs)} held-out pairs at {args.size}x{args.size}, "
        f"{len(outputs)} output sets ({', '.join(n for n, _ in outputs[:2])}, ...), "
        f"median of {args.repeats} interleaved repeats")
    o, n = statistics.median(times["old"]), statistics.median(times["new"])
    ratios = [a / b for a, b in zip(times["old"], times["new"], strict=True)]
    say(f"old (reference path):  {1000 * o / units:7.1f} ms per output image")
    say(f"new:                   {1000 * n / units:7.1f} ms per output image")
    say(f"speed-up old/new: {statistics.median(ratios):.2f}x (median of per-repeat ratios; "
        f"range {min(ratios):.2f}-{max(ratios):.2f}x)")
    say(f"per-sample precision/recall/F1 identical: "
        f"{'yes' if not mismatches else f'NO ({mismatches} samples differ)'} "
        f"({units} samples)")
    if args.record:
        cmd = "benchmarks/bench_adherence.py " + " ".join(sys.argv[1:])
        print(f"recorded in {record('bench_adherence', 'Sketch adherence: old vs new path', cmd.strip(), say.text)}")
    sys.exit(1 if mismatches else 0)


if __name__ == "__main__":
    main()
