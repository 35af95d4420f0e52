"""In-process vs Ray: wall time of ``evalkit run`` on the shipped example (2 domains, 14
checkpoints) and on a 6-checkpoint run (its gemstone domain), with Ray's start-up cost and
its per-task overhead, measured side by side on this machine.

Each run is a fresh process and a fresh OUT (``evalkit run ... --no-report --quiet``); the
child times ``evaluate_domains`` (the evaluation) and Ray's ``ray.init``. Then:

* **Ray start-up** = ``ray.init`` + cold start of the workers: in a separate fresh Ray
  instance, one task per worker that imports what a unit needs (evalkit, TensorFlow, the
  torch stack), all at once (what every fresh worker pays once);
* **per-task overhead** = round trip of an empty task on warm workers (submit -> result),
  mean of 20;
* **target**: Ray's whole command may be slower than in-process by at most its start-up.

The results must be identical (every value, compared exactly). Requires ``evalkit[ray]``.
Usage: ``.venv/bin/python benchmarks/bench_scale.py [--workers 2]``
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

CHILD = r"""
import json, sys, time
import evalkit.execute.engine as engine
timings = {"units": []}

from benchmarks._timed import timed

engine.evaluate_domains = timed(timings, "evaluation", engine.evaluate_domains)
real_store = engine._store_result
def store_result(unit, result, *a, **k):
    timings["units"].append(result.seconds)
    return real_store(unit, result, *a, **k)
engine._store_result = store_result
try:
    import evalkit.execute.ray_executor as rx
    init = rx.RayExecutor.__init__
    def timed_init(self, *a, **k):
        init(self, *a, **k)
        timings["ray_init"] = self.startup_s
    rx.RayExecutor.__init__ = timed_init
except ImportError:
    pass
import evalkit.commands.run as run_cmd
from evalkit.cli import main
t0 = time.perf_counter()
try:
    main(sys.argv[2:])
except SystemExit as exc:
    timings["exit"] = exc.code
timings["command"] = time.perf_counter() - t0
json.dump(timings, open(sys.argv[1], "w"))
"""

STARTUP = r"""
import json, sys, time
import ray
workers = int(sys.argv[2])
t0 = time.perf_counter()
ray.init(num_cpus=workers, include_dashboard=False, _node_ip_address="127.0.0.1",
         configure_logging=False, log_to_driver=False)
t_init = time.perf_counter() - t0

@ray.remote(num_cpus=1)
def warm(_):
    import os, time
    time.sleep(0.5)  # hold the slot so that each task lands on its own worker
    import evalkit, evalkit.core.tf, evalkit.execute.executors, torchmetrics  # what a unit imports
    return os.getpid()

t1 = time.perf_counter()
pids = ray.get([warm.remote(i) for i in range(workers)])
t_warm = time.perf_counter() - t1 - 0.5

@ray.remote(num_cpus=1)
def empty(x):
    return x

ray.get(empty.remote(0))
t2 = time.perf_counter()
for i in range(20):
    ray.get(empty.remote(i))
per_task = (time.perf_counter() - t2) / 20
ray.shutdown()
json.dump({"ray_init": t_init, "warm_workers": t_warm, "distinct_workers": len(set(pids)),
           "per_task": per_task}, open(sys.argv[1], "w"))
"""


_NO_WEIGHTS = Path(tempfile.mkdtemp(prefix="bench-scale-noweights-"))


def env() -> dict:
    """Offline, as in CI: fid/kid/lpips skipped alike both ways (one empty folder, so
    that the skip reasons, which name it, are the same too)."""
    return {**os.environ, "PYTHONPATH": str(ROOT), "RAY_USAGE_STATS_ENABLED": "0",
            "TORCH_HOME": str(_NO_WEIGHTS), "EVALKIT_WEIGHTS_DIR": str(_NO_WEIGHTS)}


def child(script: str, args: list[str], work: Path, tag: str) -> dict:
    stats = work / f"{tag}.json"
    r = subprocess.run([sys.executable, "-c", script, str(stats), *args], env=env(),
                       capture_output=True, text=True, timeout=3600)
    if not stats.exists():
        raise SystemExit(f"{tag} failed:\n{r.stderr[-3000:]}")
    return json.loads(stats.read_text())


def same_results(a: Path, b: Path) -> bool:
    import pandas as pd

    import evalkit

    ra = evalkit.load_results(a).sort_values(["checkpoint", "dataset", "metric"])
    rb = evalkit.load_results(b).sort_values(["checkpoint", "dataset", "metric"])
    try:
        pd.testing.assert_frame_equal(ra.reset_index(drop=True), rb.reset_index(drop=True),
                                      check_exact=True)
    except AssertionError:
        return False
    return True


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-scale-"))
    start = child(STARTUP, [str(args.workers)], work, "startup")
    startup = start["ray_init"] + start["warm_workers"]
    print(f"Ray start-up: ray.init {start['ray_init']:.1f} s + {args.workers} cold workers "
          f"{start['warm_workers']:.1f} s = {startup:.1f} s; per-task overhead "
          f"{start['per_task'] * 1000:.1f} ms (empty task round trip, warm workers)")
    scenarios = [("example (2 domains, 14 checkpoints)", ROOT / "examples" / "checkpoints"),
                 ("6-checkpoint run (gemstone)", ROOT / "examples" / "checkpoints" / "gemstone")]
    ok_all = True
    print(f"\n| run | in-process s | Ray s ({args.workers} workers) | Ray - in-process s | "
          "Ray start-up s | within start-up | identical |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for label, run_dir in scenarios:
        outs = {}
        t = {}
        for mode in ("inprocess", "ray"):
            out = work / f"{run_dir.name}-{mode}"
            extra = ["--executor", "ray", "--workers", str(args.workers)] if mode == "ray" \
                else []
            t[mode] = child(CHILD, ["run", str(run_dir), "--out", str(out), "--no-report",
                                    "--quiet", *extra], work, f"{run_dir.name}-{mode}")
            outs[mode] = out
        same = same_results(outs["inprocess"], outs["ray"])
        diff = t["ray"]["command"] - t["inprocess"]["command"]
        within = diff <= startup
        ok_all &= within and same
        print(f"| {label} | {t['inprocess']['command']:.1f} | {t['ray']['command']:.1f} | "
              f"{diff:+.1f} | {startup:.1f} | {'yes' if within else 'NO'} | "
              f"{'yes' if same else 'NO'} |")
        u_in, u_ray = t["inprocess"]["units"], t["ray"]["units"]
        print(f"|   evaluation only | {t['inprocess']['evaluation']:.1f} | "
              f"{t['ray']['evaluation']:.1f} (+ ray.init {t['ray'].get('ray_init', 0):.1f}) | "
              f"units: {len(u_in)} / {len(u_ray)}, mean {sum(u_in) / max(1, len(u_in)):.2f} "
              f"/ {sum(u_ray) / max(1, len(u_ray)):.2f} s | | | |")
    print(f"\nwork folder: {work}")
    return 0 if ok_all else 1


if __name__ == "__main__":
    t0 = time.perf_counter()
    code = main()
    print(f"benchmark took {time.perf_counter() - t0:.0f} s")
    sys.exit(code)
