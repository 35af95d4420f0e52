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
import json, os, sys, time
import ray
workers = int(sys.argv[2])
t0 = time.perf_counter()
ray.init(num_cpus=workers, include_dashboard=False, _node_ip_address="127.0.0.1",
         configure_logging=False, log_to_driver=False)
t_init = time.perf_counter() - t0

@ray.remote(num_cpus=1)
def phases(submitted):
    # what a cold worker pays before and during its first unit's imports, phase by phase
    import os, time
    t = {"worker start": time.time() - submitted}  # process start + task delivery
    time.sleep(0.5)  # hold the slot so that each task lands on its own worker
    import evalkit
    from evalkit.execute.ray_executor import _torch_metrics_can_run
    need = _torch_metrics_can_run()  # what the executor's warm-up decides (weights here?)
    t["torch stack needed (weights here)"] = need
    for name, mod in (("import TensorFlow (evalkit.core.tf)", "evalkit.core.tf"),
                      ("import the unit's code", "evalkit.execute.executors"),
                      ("import the torch stack (torchmetrics)", "torchmetrics")):
        if mod == "torchmetrics" and not need:
            continue
        c = time.process_time()
        w = time.perf_counter()
        __import__(mod)
        t[name] = time.perf_counter() - w
        t[name + " (CPU)"] = time.process_time() - c
    return os.getpid(), t

t1 = time.perf_counter()
got = ray.get([phases.remote(time.time()) for i in range(workers)])
t_warm = time.perf_counter() - t1 - 0.5

@ray.remote(num_cpus=1)
def empty(x):
    return x

ray.get(empty.remote(0))
t2 = time.perf_counter()
for i in range(20):
    ray.get(empty.remote(i))
per_task = (time.perf_counter() - t2) / 20
t3 = time.perf_counter()
ray.shutdown()
t_shutdown = time.perf_counter() - t3
json.dump({"ray_init": t_init, "warm_workers": t_warm,
           "distinct_workers": len({p for p, _ in got}), "phases": [t for _, t in got],
           "per_task": per_task, "shutdown": t_shutdown,
           "runtime_env": "none (local instance: no working_dir or package upload)"},
          open(sys.argv[1], "w"))
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


def startup_breakdown(start: dict, args) -> int:
    """Print (and with ``--record`` write) Ray's fixed cost phase by phase."""
    import statistics

    from benchmarks._record import Printer, record

    say = Printer()
    say(f"machine load (1-min average) at the end: {os.getloadavg()[0]:.1f} on "
        f"{os.cpu_count()} CPUs (above the CPU count: shared with other work, noisy)")
    say(f"local Ray, {args.workers} workers, weights absent (offline); runtime_env: "
        f"{start['runtime_env']}")
    say(f"{'phase':<44}{'wall s':>8}{'CPU s':>8}")
    say(f"{'ray.init (driver: GCS, raylet, object store)':<44}{start['ray_init']:>8.2f}"
        f"{'':>8}")
    phases = start["phases"]
    for name in phases[0]:
        if name.endswith("(CPU)") or isinstance(phases[0][name], bool):
            continue
        wall = statistics.median(p[name] for p in phases)
        cpu = p_cpu = phases[0].get(name + " (CPU)")
        if cpu is not None:
            p_cpu = statistics.median(p[name + " (CPU)"] for p in phases)
        say(f"{name + ' (median of workers)':<44}{wall:>8.2f}"
            + (f"{p_cpu:>8.2f}" if cpu is not None else ""))
    say(f"{'all workers warm (parallel, from submit)':<44}{start['warm_workers']:>8.2f}")
    say(f"{'per task (empty round trip, warm)':<44}{start['per_task']:>8.4f}")
    say(f"{'ray.shutdown':<44}{start['shutdown']:>8.2f}")
    needed = phases[0]["torch stack needed (weights here)"]
    total = start["ray_init"] + start["warm_workers"] + start["shutdown"]
    say(f"fixed cost (ray.init + workers warm + shutdown): {total:.1f} s, "
        f"{'with' if needed else 'without'} the torch stack (workers import it only when "
        f"the LPIPS/Inception weights are here) against the <= 15 s target: "
        f"{'meets' if total <= 15 else 'MISSES'}")
    if args.record:
        cmd = "benchmarks/bench_scale.py " + " ".join(sys.argv[1:])
        say(f"recorded in {record('bench_scale_startup', 'Ray fixed cost, phase by phase', cmd.strip(), say.text)}")
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--startup-only", action="store_true",
                    help="only Ray's fixed cost, phase by phase (no example runs)")
    ap.add_argument("--record", action="store_true",
                    help="--startup-only: write the breakdown into reports/benchmarks.md")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-scale-"))
    start = child(STARTUP, [str(args.workers)], work, "startup")
    startup = start["ray_init"] + start["warm_workers"]
    print(f"Ray start-up: ray.init {start['ray_init']:.1f} s + {args.workers} cold workers "
          f"{start['warm_workers']:.1f} s = {startup:.1f} s; per-task overhead "
          f"{start['per_task'] * 1000:.1f} ms (empty task round trip, warm workers)")
    if args.startup_only:
        return startup_breakdown(start, args)
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
