"""bf16 screening vs fp32: at the served size, and on the example's trained run.

It first prints the CPU flags it ran on (the bfloat16 ones decide whether bf16 is fast),
then:

**Served size** (``--size 256 --width 64``, the seed generator as served; random weights,
the same in both precisions): seconds per image of the traced generator in fp32 and in bf16
over ``--repeats`` interleaved repeats of ``--images`` images (medians; bf16 speed-up =
fp32 median / bf16 median, with its range over repeats), and the share of served uint8
values that differ.

**Example** (examples/checkpoints, 64 px; skipped with ``--served-only``): for each domain of the example (person, gemstone; 6 checkpoints each, width 12) it prints:

* speed: seconds per image of the traced generator in fp32 and in bf16 (Keras
  ``mixed_bfloat16``), same weights, same batches, interleaved; the speed-up;
* served-pixel difference: the share of served uint8 values (pixels x channels) that
  differ between bf16 and fp32 outputs, and the largest difference in levels;
* rank agreement: a full evalkit evaluation of the domain in fp32 and one in bf16, ranked
  by the same rule: Kendall tau between the two orders, and whether the winner is the same.

bf16 is fast only with bfloat16 hardware (evalkit.execute.precision); without it, evalkit refuses
``--precision bf16`` and this script says so and stops, unless ``--emulate`` is given: then
it measures anyway (TensorFlow emulates bf16; the speed is then NOT representative, the
pixel difference and rank agreement are).

Usage: ``.venv/bin/python benchmarks/bench_bf16.py [--emulate] [--served-only] [--repeats 5]
[--record]``
"""

from __future__ import annotations

import argparse
import dataclasses
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import evalkit  # noqa: E402,F401  (torch before TensorFlow)
from benchmarks._record import Printer, record  # noqa: E402

SIZE = 64
EXAMPLE = ROOT / "examples"
#: CPU flags printed (bfloat16 arithmetic and the AVX-512 / AMX families around it)
FLAGS_SHOWN = ("avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "avx512_fp16",
               "amx_tile", "amx_bf16", "amx_int8")


def cpu_flags() -> list[str]:
    """The :data:`FLAGS_SHOWN` this CPU has (``/proc/cpuinfo``), in that order."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                have = set(line.split(":", 1)[1].split())
                return [f for f in FLAGS_SHOWN if f in have]
    except OSError:
        pass
    return []


def served_size(say, size: int, width: int, images: int, repeats: int,
                batch_size: int) -> None:
    """fp32 vs bf16 of the seed generator at ``size`` px, width ``width``: interleaved
    repeats, medians (module docstring)."""
    from evalkit.inputs.checkpoints.load import Architecture
    from evalkit.inputs.data.serving import output_to_uint8
    from evalkit.inputs.models.runner import Runner

    arch = Architecture(1, 3, width)
    runners = {p: Runner(arch, size, p) for p in ("fp32", "bf16")}
    for a, b in zip(runners["fp32"].model.weights, runners["bf16"].model.weights,
                    strict=True):
        b.assign(a)  # same (random) weights; bf16 keeps fp32 variables
    rng = np.random.default_rng(0)
    x = np.where(rng.random((images, size, size, 1)) < 0.1, -1.0, 1.0).astype(np.float32)
    for r in runners.values():
        r.run(x[:batch_size], batch_size)  # warm-up (trace)
    wall: dict[str, list[float]] = {"fp32": [], "bf16": []}
    cpu: dict[str, list[float]] = {"fp32": [], "bf16": []}
    served = {}
    for rep in range(repeats):
        order = ("fp32", "bf16") if rep % 2 == 0 else ("bf16", "fp32")  # interleaved
        for p in order:
            t, c = time.perf_counter(), time.process_time()
            y = runners[p].run(x, batch_size)
            wall[p].append((time.perf_counter() - t) / images)
            cpu[p].append((time.process_time() - c) / images)
            served[p] = output_to_uint8(y)
    d = np.abs(served["fp32"].astype(int) - served["bf16"].astype(int))
    say(f"served size {size}x{size}, width {width}, batch {batch_size}: {images} images x "
        f"{repeats} interleaved repeats (fp32 and bf16 alternate); served values differing "
        f"{(d > 0).mean():.1%}, max {int(d.max())} levels")
    for what, per_img in (("wall", wall), ("CPU (all threads)", cpu)):
        med = {p: statistics.median(v) for p, v in per_img.items()}
        ratios = [f / b for f, b in zip(per_img["fp32"], per_img["bf16"], strict=True)]
        say(f"  {what}: fp32 {med['fp32'] * 1000:.0f} ms/img, bf16 {med['bf16'] * 1000:.0f} "
            f"ms/img (medians); bf16 speed-up {med['fp32'] / med['bf16']:.2f}x (ratio of "
            f"medians; per repeat {min(ratios):.2f}-{max(ratios):.2f}x, median "
            f"{statistics.median(ratios):.2f}x)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--emulate", action="store_true",
                    help="measure even without bfloat16 hardware (speed not representative)")
    ap.add_argument("--batch-size", type=int, default=16, help="example part's batch")
    ap.add_argument("--size", type=int, default=256, help="served-size part: image size")
    ap.add_argument("--width", type=int, default=64, help="served-size part: hidden width")
    ap.add_argument("--images", type=int, default=8, help="served-size part: images/repeat")
    ap.add_argument("--repeats", type=int, default=5, help="served-size part: repeats")
    ap.add_argument("--served-batch", type=int, default=4,
                    help="served-size part: batch (evalkit run's default)")
    ap.add_argument("--served-only", action="store_true", help="skip the example part")
    ap.add_argument("--record", action="store_true", help="write into reports/benchmarks.md")
    args = ap.parse_args()
    from scipy.stats import kendalltau

    from evalkit.commands.run import load_datasets
    from evalkit.decide.ranking.rank import rank_out
    from evalkit.execute import precision
    from evalkit.execute.domains import DomainPlan
    from evalkit.execute.engine import RunOptions, evaluate_domains
    from evalkit.inputs.checkpoints.discover import discover_checkpoints
    from evalkit.inputs.checkpoints.load import infer_architecture, read_shapes
    from evalkit.inputs.data.serving import output_to_uint8
    from evalkit.inputs.models.runner import Runner

    say = Printer()  # prints, and keeps the lines for --record
    say(f"CPU flags: {' '.join(cpu_flags()) or '(none of ' + ', '.join(FLAGS_SHOWN) + ')'}")
    why = precision.bf16_unsupported()
    if why and not args.emulate:
        say(f"bf16 not measured: {why} (evalkit refuses --precision bf16 here; "
            "--emulate measures anyway)")
        return
    if why:
        say(f"EMULATED bf16 ({why}): speed not representative; pixel and rank "
            "results are")
        precision.bf16_unsupported = lambda: None  # let the engine run it
    served_size(say, args.size, args.width, args.images, args.repeats, args.served_batch)
    base = Path(tempfile.mkdtemp(prefix="bench-bf16-"))
    try:
        for domain in () if args.served_only else ("person", "gemstone"):
            run = EXAMPLE / "checkpoints" / domain
            refs = [dataclasses.replace(r, name=f"{domain}/{r.name}")
                    for r in discover_checkpoints(run)]
            datasets = load_datasets(EXAMPLE / "heldout" / domain, EXAMPLE / "sketches", SIZE,
                                     None, domain)
            x = np.concatenate([d.inputs for d in datasets])
            arch = infer_architecture(read_shapes(refs[0].prefix))
            runners = {p: Runner(arch, SIZE, p) for p in ("fp32", "bf16")}
            secs = {"fp32": 0.0, "bf16": 0.0}
            differ, total, max_lv = 0, 0, 0
            for ref in refs:
                served = {}
                for p, r in runners.items():
                    r.load(ref.prefix)
                    r.run(x[:args.batch_size], args.batch_size)  # warm-up (trace)
                    t = time.perf_counter()
                    served[p] = output_to_uint8(r.run(x, args.batch_size))
                    secs[p] += time.perf_counter() - t
                d = np.abs(served["fp32"].astype(int) - served["bf16"].astype(int))
                differ += int((d > 0).sum())
                total += d.size
                max_lv = max(max_lv, int(d.max()))
            n_img = len(x) * len(refs)
            orders = {}
            for p in ("fp32", "bf16"):
                out = base / f"{domain}-{p}"
                plan = DomainPlan(domain, run, refs, datasets=datasets)
                evaluate_domains([plan], out, RunOptions(image_size=SIZE, precision=p,
                                                         batch_size=args.batch_size,
                                                         progress=False), log=lambda s: None)
                table = rank_out(out).participants
                orders[p] = table["checkpoint"].tolist()
            names = orders["fp32"]
            tau = kendalltau([names.index(c) for c in names],
                             [orders["bf16"].index(c) for c in names]).statistic
            say(f"{domain}: {len(refs)} checkpoints x {len(x)} images; fp32 "
                f"{secs['fp32'] / n_img * 1000:.2f} ms/img, bf16 "
                f"{secs['bf16'] / n_img * 1000:.2f} ms/img (speed-up "
                f"{secs['fp32'] / secs['bf16']:.2f}x); served values differing "
                f"{differ / total:.1%}, max {max_lv} levels; rank agreement Kendall tau "
                f"{tau:.2f}, winner fp32 {names[0]} / bf16 {orders['bf16'][0]} "
                f"({'same' if names[0] == orders['bf16'][0] else 'DIFFERENT'})")
        if args.record:
            cmd = "benchmarks/bench_bf16.py " + " ".join(sys.argv[1:])
            print(f"recorded in {record('bench_bf16', 'bf16 screening vs fp32', cmd.strip(), say.text)}")
    finally:
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
