"""Cost of an unchanged re-run of the demo, offline, as a % of the first run.

Runs the real ``evalkit demo --out OUT`` twice into one fresh folder, each in its own
process, with the FID/LPIPS weights absent (``TORCH_HOME`` and ``EVALKIT_WEIGHTS_DIR`` point
at empty folders: the normal state of an offline CI machine, where fid/kid/lpips are skipped
as retryable). Each process times its phases by wrapping the functions the demo calls:

* evaluation: :func:`evalkit.execute.engine.evaluate_domains` (what issue 12 is about: the re-run must
  not re-evaluate anything whose skip cause is still there);
* report: :func:`evalkit.commands.run.render_report_safely`;
* whole command: the process's wall time (interpreter start, imports, data loading, table).

It also checks that the re-run left the results identical. Target: evaluation of the re-run
<= 2 % of the first run's.

Then the everyday loop (issue 25): ``evalkit run examples/checkpoints --out OUT --quiet``
(the example's evalkit.toml) on the same folder, once to settle (its command line is new
to the report's fingerprint, so it re-renders the report), then ``--repeats`` times
unchanged: the median wall time of the whole process, as a % of the first demo's whole
command (the full run), and which of TensorFlow, torch, pandas, scipy and matplotlib were
imported. Targets: <= 1.5 s and <= 2 %, none of them imported. Then the floor: a bare
``python -c pass`` and ``python -c 'import numpy, PIL.Image'`` (what reading the data
needs), medians of the same number of repeats.

Every child keeps its bytecode (``PYTHONPYCACHEPREFIX`` in the work folder), as an installed
evalkit does.

Usage: ``.venv/bin/python benchmarks/bench_rerun.py [--keep DIR] [--repeats 3] [--record]``
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TARGET_PCT = 2.0
TARGET_RERUN_S = 1.5

CHILD = r"""
import json, sys
import evalkit.commands.run as run_cmd
import evalkit.execute.engine as engine
timings = {}

from benchmarks._timed import timed

engine.evaluate_domains = timed(timings, "evaluation", engine.evaluate_domains)
run_cmd.render_report_safely = timed(timings, "report", run_cmd.render_report_safely)
from evalkit.cli import main
try:
    main(["demo", "--out", sys.argv[1], "--quiet"])
except SystemExit as exc:
    timings["exit"] = exc.code
json.dump(timings, open(sys.argv[2], "w"))
"""

#: ``evalkit ARGV[2:]``; writes its exit code and whether TF/torch were imported to ARGV[1]
RUN_CHILD = r"""
import json, sys
HEAVY = ("tensorflow", "torch", "pandas", "scipy", "matplotlib")
from evalkit.cli import main
code = 0
try:
    main(sys.argv[2:])
except SystemExit as exc:
    code = exc.code
json.dump({"exit": code, "imported": sorted(m for m in HEAVY if m in sys.modules)},
          open(sys.argv[1], "w"))
"""


def run_unchanged(out: Path, env: dict) -> tuple[float, float, list[str]]:
    """Wall and CPU seconds of one ``evalkit run examples/checkpoints --out OUT`` process,
    and the heavy modules it imported."""
    stats = out.parent / "run.json"
    t0, c0 = time.perf_counter(), children_cpu()
    proc = subprocess.run([sys.executable, "-c", RUN_CHILD, str(stats), "run",
                           str(ROOT / "examples" / "checkpoints"), "--out", str(out), "--quiet"],
                          env=env, cwd=ROOT, capture_output=True, text=True)
    wall, cpu = time.perf_counter() - t0, children_cpu() - c0
    got = json.loads(stats.read_text()) if stats.exists() else {"exit": proc.returncode}
    if got["exit"] != 0:
        sys.exit(f"evalkit run failed (exit {got['exit']}):\n{proc.stderr[-3000:]}")
    return wall, cpu, got["imported"]


def floor(code: str, env: dict, repeats: int) -> tuple[float, float]:
    """Median wall and CPU seconds of ``python -c CODE`` (the interpreter's own floor)."""
    walls, cpus = [], []
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), children_cpu()
        subprocess.run([sys.executable, "-c", code], env=env, check=True)
        walls.append(time.perf_counter() - t0)
        cpus.append(children_cpu() - c0)
    return statistics.median(walls), statistics.median(cpus)


def children_cpu() -> float:
    """CPU seconds (user + system) of this process's finished children so far."""
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def run_demo(out: Path, env: dict, tag: str) -> dict:
    stats = out.parent / "timings.json"  # one name: the command line must not differ
    t0, c0 = time.perf_counter(), children_cpu()
    proc = subprocess.run([sys.executable, "-c", CHILD, str(out), str(stats)], env=env,
                          cwd=ROOT, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    cpu = children_cpu() - c0
    if proc.returncode != 0 or not stats.exists():
        sys.exit(f"demo ({tag}) failed (exit {proc.returncode}):\n{proc.stderr[-3000:]}")
    timings = json.loads(stats.read_text())
    timings["whole command"] = wall
    timings["cpu"] = cpu
    timings["log"] = proc.stderr
    return timings


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--keep", type=Path, help="Use (and keep) this folder instead of a temp one.")
    ap.add_argument("--repeats", type=int, default=3, help="unchanged `evalkit run` repeats")
    ap.add_argument("--record", action="store_true", help="write into reports/benchmarks.md")
    args = ap.parse_args()
    base = Path(args.keep or tempfile.mkdtemp(prefix="bench-rerun-"))
    base.mkdir(parents=True, exist_ok=True)
    empty = base / "no-weights"
    empty.mkdir(exist_ok=True)
    # bytecode kept (in BASE/pycache), as in an installed evalkit: without it every process
    # compiles evalkit's sources again (PYTHONDONTWRITEBYTECODE=1 on some machines)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env.update({"PYTHONPATH": str(ROOT), "TORCH_HOME": str(empty),
                "EVALKIT_WEIGHTS_DIR": str(empty),
                "PYTHONPYCACHEPREFIX": str(base / "pycache")})
    out = base / "demo-out"
    if out.exists():
        sys.exit(f"{out} exists: pass an empty --keep folder")
    sys.path.insert(0, str(ROOT))
    import evalkit

    first = run_demo(out, env, "first")
    snapshot = evalkit.load_results(out)
    second = run_demo(out, env, "rerun")
    same = evalkit.load_results(out).equals(snapshot)
    skipped = "skipped: weights file" in second["log"]
    run_unchanged(out, env)  # settles the report (a new command line in its fingerprint)
    walls, cpus, imported = [], [], set()
    for _ in range(args.repeats):
        wall, cpu, mods = run_unchanged(out, env)
        walls.append(wall)
        cpus.append(cpu)
        imported.update(mods)
    same_run = evalkit.load_results(out).equals(snapshot)
    from benchmarks._record import Printer, record

    say = Printer()
    say(f"machine load (1-min average) at the end: {os.getloadavg()[0]:.1f} on "
        f"{os.cpu_count()} CPUs (above the CPU count: shared with other work, noisy)")
    say(f"evalkit demo, offline (weights absent: {'yes' if skipped else 'NO'}), "
        f"{os.cpu_count()} CPUs; results identical after the re-runs: {same and same_run}")
    say(f"{'phase':<16}{'first run':>12}{'re-run':>12}{'re-run/first':>15}")
    for phase in ("evaluation", "report", "whole command"):
        a, b = first.get(phase, 0.0), second.get(phase, 0.0)
        pct = 100 * b / a if a else float("nan")
        say(f"{phase:<16}{a:>10.2f} s{b:>10.2f} s{pct:>14.1f}%")
    pct = 100 * second["evaluation"] / first["evaluation"]
    verdict = "meets" if pct <= TARGET_PCT else "MISSES"
    say(f"unchanged re-run, evaluation: {pct:.2f} % of the first run "
        f"({verdict} the <= {TARGET_PCT:.0f} % target)")
    wall = statistics.median(walls)
    run_pct = 100 * wall / first["whole command"]
    ok = wall <= TARGET_RERUN_S and run_pct <= TARGET_PCT and not imported
    say(f"unchanged `evalkit run examples/checkpoints`: {wall:.2f} s wall (median of "
        f"{len(walls)}: {', '.join(f'{w:.2f}' for w in walls)} s; target <= "
        f"{TARGET_RERUN_S} s), {run_pct:.2f} % of the full first run's whole command "
        f"(target <= {TARGET_PCT:.0f} %); TensorFlow/torch/pandas/scipy/matplotlib imported: "
        f"{', '.join(sorted(imported)) or 'none'} -> {'meets' if ok else 'MISSES'} the targets")
    cpu = statistics.median(cpus)
    say(f"  in CPU time (user + system, less sensitive to other work on the machine): "
        f"{cpu:.2f} s, {100 * cpu / first['cpu']:.2f} % of the full first run's "
        f"{first['cpu']:.1f} s")
    for label, code in (("python -c pass", "pass"),
                        ("python -c 'import numpy, PIL.Image'", "import numpy, PIL.Image")):
        fw, fc = floor(code, env, args.repeats)
        say(f"  floor, {label}: {fw:.2f} s wall, {fc:.2f} s CPU "
            f"({100 * fw / first['whole command']:.2f} % / {100 * fc / first['cpu']:.2f} %)")
    if args.record:
        cmd = "benchmarks/bench_rerun.py " + " ".join(sys.argv[1:])
        say(f"recorded in {record('bench_rerun', 'Unchanged re-run (demo and evalkit run)', cmd.strip(), say.text)}")
    if not args.keep:
        import shutil
        shutil.rmtree(base, ignore_errors=True)
    sys.exit(0 if same and same_run and pct <= TARGET_PCT and ok else 1)


if __name__ == "__main__":
    main()
