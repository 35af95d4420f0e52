"""LPIPS: evalkit's plain-torch network (evalkit/measure/lpips_net.py) against torchmetrics'
``_NoTrainLpips`` (torchvision's AlexNet) on the same random AlexNet weights: the largest
difference in value, and the time per batch as a ratio of interleaved repeats (median; the order alternates),
with CPU time (user+system) and the 1-min load average.

    python benchmarks/bench_lpips_net.py [--pairs 8] [--size 128] [--repeats 7] [--record]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _record import Printer, record  # noqa: E402

import evalkit  # noqa: E402,F401  (import-order safety first)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pairs", type=int, default=8)
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--record", action="store_true")
    args = ap.parse_args()

    import torch
    import torchvision
    from torchmetrics.functional.image.lpips import _NoTrainLpips

    from evalkit.measure.lpips import build_lpips_net

    say = Printer()
    torch.manual_seed(0)
    tv = torchvision.models.alexnet(weights=None).eval()
    ref = _NoTrainLpips(pretrained=True, net="alex", pnet_rand=True)
    slices = {0: 1, 1: 1, 2: 2, 3: 2, 4: 2, 5: 3, 6: 3, 7: 3, 8: 4, 9: 4, 10: 5, 11: 5}
    ref.net.load_state_dict({f"slice{slices[int(k.split('.')[0])]}.{k}": v
                             for k, v in tv.features.state_dict().items()})
    ours, _, _ = build_lpips_net(tv)
    a = torch.rand(args.pairs, 3, args.size, args.size) * 2 - 1
    b = torch.rand(args.pairs, 3, args.size, args.size) * 2 - 1
    nets = {"evalkit": lambda: ours(a, b), "torchmetrics": lambda: ref(a, b, normalize=False)}
    with torch.no_grad():
        diff = float((nets["evalkit"]() - nets["torchmetrics"]()).abs().max())
        wall = {k: [] for k in nets}
        cpu = {k: [] for k in nets}
        for i in range(args.repeats):  # interleaved, order alternating: same machine noise
            for k in (list(nets) if i % 2 == 0 else list(nets)[::-1]):
                f = nets[k]
                t0, c0 = time.perf_counter(), os.times()
                f()
                c1 = os.times()
                wall[k].append(time.perf_counter() - t0)
                cpu[k].append(c1.user - c0.user + c1.system - c0.system)
    say(f"{args.pairs} pairs at {args.size} px, {args.repeats} interleaved repeats, "
        f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    say(f"largest |evalkit - torchmetrics| LPIPS: {diff:.2e}")
    for k in nets:
        say(f"{k:>12}: median {statistics.median(wall[k]) * 1e3:7.1f} ms wall, "
            f"{statistics.median(cpu[k]) * 1e3:7.1f} ms CPU")
    ratios = [x / y for x, y in zip(wall["evalkit"], wall["torchmetrics"], strict=True)]
    say(f"evalkit / torchmetrics wall time: median ratio {statistics.median(ratios):.3f} "
        f"(min {min(ratios):.3f}, max {max(ratios):.3f})")
    say(f"machine load (1-min average): {os.getloadavg()[0]:.1f}")
    if args.record:
        record("lpips-own-alexnet", "LPIPS: evalkit's plain-torch AlexNet vs torchmetrics",
               f"python benchmarks/bench_lpips_net.py --pairs {args.pairs} --size {args.size} "
               f"--repeats {args.repeats} --record", say.text)


if __name__ == "__main__":
    main()
