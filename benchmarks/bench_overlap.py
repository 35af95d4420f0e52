"""Can metrics overlap generation on this machine? (issue 25 part 3, a feasibility test)

The seed generator at ``--size`` px, width 64 (random weights), makes ``--batches`` batches
of 4; after each batch the metrics a full run computes on it: l1/ssim/psnr
(:mod:`evalkit.measure.paired`) and the FID-cost Inception-v3 forward pass (torch-fidelity's
network, random weights, as ``benchmarks/bench_run.py``). Two ways, interleaved over
``--repeats`` (medians):

* **serial**: generate batch k, then its metrics (what evalkit does today, per dataset);
* **overlap**: a bounded queue (1 slot) and one metrics thread: the metrics of batch k run
  while the generator makes batch k+1.

Each way is run with TensorFlow's intra-op pool at all cores, and (overlap) at cores - 1 with
torch at 1 thread, so that the two pools do not fight. Values are compared: the overlap
must give the same numbers bit for bit. Prints wall and CPU (process) seconds, the overlap /
serial ratio and the whole / bare-generator ratio (target <= 1.25).

Usage: ``.venv/bin/python benchmarks/bench_overlap.py [--size 256 --batches 4 --repeats 3]
[--record]``
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

#: one way in a fresh process (thread pools are fixed at TensorFlow's first op):
#: ARGV = mode size batches tf_threads torch_threads
CHILD = r"""
import json, sys, time, threading, queue, hashlib
mode, size, batches, tf_threads, torch_threads = sys.argv[1], *map(int, sys.argv[2:6])
import numpy as np
import evalkit  # torch before TensorFlow
import torch
from benchmarks.bench_run import inception_module
from evalkit.core.tf import tf
if tf_threads:
    tf.config.threading.set_intra_op_parallelism_threads(tf_threads)
if torch_threads:
    torch.set_num_threads(torch_threads)
from evalkit.inputs.models import resnet_generator
from evalkit.measure.paired import psnr_per_sample, ssim_per_sample
from evalkit.core.tf import tf_keras
tf_keras.utils.set_random_seed(0)  # the same generator weights in every process
model = resnet_generator(1, 3, 64)
fn = tf.function(lambda x: model(x, training=False), autograph=False,
                 input_signature=[tf.TensorSpec((None, size, size, 1), tf.float32)])
incep = inception_module()
rng = np.random.default_rng(0)
xs = [rng.uniform(-1, 1, (4, size, size, 1)).astype(np.float32) for _ in range(batches)]
ts = [rng.integers(0, 256, (4, size, size, 3), dtype=np.uint8) for _ in range(batches)]
fn(xs[0]).numpy()  # trace, warm both
with torch.no_grad():
    incep(torch.zeros((1, 3, size, size), dtype=torch.uint8))

def gen(k):
    y = fn(xs[k]).numpy()
    return np.clip(np.round((y + 1) * 127.5), 0, 255).astype(np.uint8)

def metrics(k, out):
    t = ts[k]
    l1 = np.abs(out.astype(np.float64) - t).mean(axis=(1, 2, 3)) / 255
    with torch.no_grad():
        f = incep(torch.from_numpy(np.ascontiguousarray(out)).permute(0, 3, 1, 2).contiguous())
    return [l1, psnr_per_sample(out, t), ssim_per_sample(out, t), f.double().numpy()]

c0, t0 = time.process_time(), time.perf_counter()
results = [None] * batches
if mode == "bare":
    for k in range(batches):
        gen(k)
elif mode == "serial":
    for k in range(batches):
        results[k] = metrics(k, gen(k))
else:
    q = queue.Queue(maxsize=1)
    def worker():
        while (item := q.get()) is not None:
            results[item[0]] = metrics(*item)
    th = threading.Thread(target=worker)
    th.start()
    for k in range(batches):
        q.put((k, gen(k)))
    q.put(None)
    th.join()
wall, cpu = time.perf_counter() - t0, time.process_time() - c0
h = hashlib.sha256()
for r in results:
    for a in r or []:
        h.update(np.ascontiguousarray(a).tobytes())
print(json.dumps({"wall": wall, "cpu": cpu, "digest": h.hexdigest() if mode != "bare" else ""}))
"""


def one(mode: str, size: int, batches: int, tf_threads: int, torch_threads: int) -> dict:
    import json

    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    r = subprocess.run([sys.executable, "-c", CHILD, mode, str(size), str(batches),
                        str(tf_threads), str(torch_threads)], cwd=ROOT, env=env,
                       capture_output=True, text=True, timeout=1800)
    if r.returncode != 0:
        sys.exit(f"{mode} failed:\n{r.stderr[-3000:]}")
    return json.loads(r.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--batches", type=int, default=4)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--record", action="store_true")
    args = ap.parse_args()
    n = os.cpu_count() or 1
    ways = {"bare generator": ("bare", 0, 0), "serial (today)": ("serial", 0, 0),
            "overlap, shared pools": ("overlap", 0, 0),
            f"overlap, TF {max(1, n - 1)} + torch 1 threads": ("overlap", max(1, n - 1), 1)}
    got: dict[str, list[dict]] = {k: [] for k in ways}
    for r in range(args.repeats):
        for name, (mode, tft, tht) in ways.items():
            got[name].append(one(mode, args.size, args.batches, tft, tht))
        print(f"repeat {r + 1} done", flush=True)
    from benchmarks._record import Printer, record

    say = Printer()
    say(f"machine load (1-min average) at the end: {os.getloadavg()[0]:.1f} on {n} CPUs "
        "(above the CPU count: shared with other work, noisy)")
    say(f"seed generator {args.size}x{args.size} width 64, {args.batches} batches of 4; "
        f"metrics per batch: l1/psnr/ssim + Inception-v3 forward (random weights); "
        f"{args.repeats} interleaved repeats, medians")
    bare = statistics.median(x["wall"] for x in got["bare generator"])
    serial = statistics.median(x["wall"] for x in got["serial (today)"])
    ref = {x["digest"] for x in got["serial (today)"]}
    say(f"{'way':<36}{'wall s':>8}{'CPU s':>8}{'CPU/wall':>9}{'/ bare':>8}{'/ serial':>10}"
        "  values = serial's")
    for name, runs in got.items():
        w = statistics.median(x["wall"] for x in runs)
        c = statistics.median(x["cpu"] for x in runs)
        same = "-" if name == "bare generator" else \
            ("yes" if {x["digest"] for x in runs} == ref and len(ref) == 1 else "NO")
        say(f"{name:<36}{w:>8.2f}{c:>8.2f}{c / w:>9.2f}{w / bare:>8.2f}{w / serial:>10.2f}"
            f"  {same}")
    if args.record:
        cmd = "benchmarks/bench_overlap.py " + " ".join(sys.argv[1:])
        say(f"recorded in {record('bench_overlap', 'Metrics overlapping generation: feasibility on this machine', cmd.strip(), say.text)}")


if __name__ == "__main__":
    main()
