"""Cost of adding one checkpoint to N evaluated ones, as a share of a full run (issue 25).

A one-domain run folder of the example's 8 ``person`` checkpoints (64 px, width 12) is
evaluated once (``evalkit run``, the example's held-out pairs and sketches, report
rendered, FID/KID/LPIPS weights absent as on an offline CI machine); that OUT is kept.
Then, interleaved over ``--repeats``:

* **add one**: a 9th checkpoint added to the run folder (the example's ``gemstone/ckpt-1``,
  same architecture, new content), ``evalkit run`` on that OUT timed; then the 9th's files,
  results and outputs are removed again (back to 8 evaluated);
* **full**: the same 9 checkpoints into an empty OUT, ``evalkit run`` timed.

Each run is its own process (interpreter start, imports, TensorFlow, report included: what
a user waits for). Prints the medians (wall and CPU = user + system), the ratio add one /
full against the target 1.2 / N (N = 8), and the add-one run's phases (evaluation, report)
as the child measured them, so the fixed start-up is visible.

``--size 256 --width 64`` measures the same at the served size with the seed's full-width
generator (random-weight seed-layout checkpoints, :func:`tests.seed_reference.save_seed_checkpoint`,
instead of the example's trained width-12 ones), where the generator, not the fixed
start-up, is most of a run.

Usage: ``.venv/bin/python benchmarks/bench_add_one.py [--repeats 3] [--size 64]
[--width W] [--record]``
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
N = 8
TARGET = 1.2 / N

CHILD = r"""
import json, sys, time
t0 = time.perf_counter()
import evalkit.commands.run as run_cmd
import evalkit.execute.engine as engine
from benchmarks._timed import timed
timings = {}
engine.evaluate_domains = timed(timings, "evaluation", engine.evaluate_domains)
run_cmd.render_report_safely = timed(timings, "report", run_cmd.render_report_safely)
from evalkit.cli import main
code = 0
try:
    main(sys.argv[2:])
except SystemExit as exc:
    code = exc.code
timings["exit"] = code
timings["tensorflow imported"] = "tensorflow" in sys.modules
json.dump(timings, open(sys.argv[1], "w"))
"""


def children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


SIZE = {"image": 64, "batch": 16}


def evalkit_run(run_dir: Path, out: Path, env: dict) -> dict:
    """One ``evalkit run`` process: wall, CPU and the child's phase timings."""
    stats = out.parent / f"{out.name}.json"
    args = ["run", str(run_dir), "--heldout", str(ROOT / "examples" / "heldout" / "person"),
            "--sketches", str(ROOT / "examples" / "sketches"), "--domain", "person",
            "--image-size", str(SIZE["image"]), "--batch-size", str(SIZE["batch"]),
            "--out", str(out), "--quiet"]
    t0, c0 = time.perf_counter(), children_cpu()
    proc = subprocess.run([sys.executable, "-c", CHILD, str(stats), *args], env=env,
                          cwd=ROOT, capture_output=True, text=True)
    wall, cpu = time.perf_counter() - t0, children_cpu() - c0
    got = json.loads(stats.read_text()) if stats.exists() else {"exit": proc.returncode}
    if got["exit"] != 0:
        sys.exit(f"evalkit run failed (exit {got['exit']}):\n{proc.stderr[-3000:]}")
    return {**got, "wall": wall, "cpu": cpu, "log": proc.stderr}


#: where the checkpoints come from: the example's (default) or ``--width`` random ones
POOL: dict[str, Path] = {}


def make_pool(base: Path, width: int) -> None:
    """Nine random-weight seed-layout checkpoints of width ``width`` (ckpt-1..9)."""
    import evalkit  # noqa: F401  (torch before TensorFlow)
    from tests.seed_reference import save_seed_checkpoint

    pool = base / "pool"
    pool.mkdir()
    save_seed_checkpoint(pool, n=9, hidden=width)
    POOL["person"] = POOL["ninth"] = pool


def make_run(dest: Path, n: int) -> Path:
    """``dest`` with person ckpt-1..n (and ckpt-9 = gemstone/ckpt-1, or the pool's ckpt-9,
    when n == 9)."""
    src = POOL.get("person", ROOT / "examples" / "checkpoints" / "person")
    dest.mkdir(parents=True)
    for i in range(1, min(n, 8) + 1):
        for f in src.glob(f"ckpt-{i}.*"):
            shutil.copy2(f, dest / f.name)
    if n == 9:
        add_ninth(dest)
    return dest


def add_ninth(run: Path) -> None:
    if "ninth" in POOL:
        for f in POOL["ninth"].glob("ckpt-9.*"):
            shutil.copy2(f, run / f.name)
        return
    for f in (ROOT / "examples" / "checkpoints" / "gemstone").glob("ckpt-1.*"):
        shutil.copy2(f, run / f.name.replace("ckpt-1", "ckpt-9"))


def forget_ninth(out: Path) -> None:
    """Remove ckpt-9's results and outputs from ``out`` (not a copy of OUT: a copied
    outputs folder has new inodes, so the keyed check of cached PNGs would re-hash them all,
    which a user's add-one run does not)."""
    import sqlite3

    with sqlite3.connect(out / "results.sqlite") as conn:
        dirs = [r[0] for r in conn.execute(
            "SELECT outputs_dir FROM evaluations WHERE checkpoint LIKE '%ckpt-9'")]
        for table in ("metrics", "sample_metrics", "evaluations"):
            conn.execute(f"DELETE FROM {table} WHERE checkpoint LIKE '%ckpt-9'")
        conn.execute("DELETE FROM checkpoints WHERE name LIKE '%ckpt-9'")
    for d in dirs:
        if d:
            shutil.rmtree(out / d, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--size", type=int, default=64, help="--image-size of the runs")
    ap.add_argument("--width", type=int,
                    help="random-weight seed checkpoints of this width instead of the "
                         "example's (64: the seed's generator)")
    ap.add_argument("--record", action="store_true", help="write into reports/benchmarks.md")
    args = ap.parse_args()
    SIZE.update(image=args.size, batch=16 if args.size <= 64 else 4)
    base = Path(tempfile.mkdtemp(prefix="bench-add-one-"))
    if args.width:
        sys.path.insert(0, str(ROOT))
        make_pool(base, args.width)
    empty = base / "no-weights"
    empty.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env.update({"PYTHONPATH": str(ROOT), "TORCH_HOME": str(empty),
                "EVALKIT_WEIGHTS_DIR": str(empty),
                "PYTHONPYCACHEPREFIX": str(base / "pycache")})  # as installed: bytecode kept
    run8 = make_run(base / "run8", 8)
    seed_out = base / "out8"
    first = evalkit_run(run8, seed_out, env)  # also compiles the bytecode
    run9 = make_run(base / "run9", 9)
    adds, fulls = [], []
    for r in range(args.repeats):
        add_ninth(run8)
        adds.append(evalkit_run(run8, seed_out, env))
        for f in run8.glob("ckpt-9.*"):
            f.unlink()
        forget_ninth(seed_out)  # back to 8 evaluated, the others' files untouched
        fulls.append(evalkit_run(run9, base / f"out-full-{r}", env))
        print(f"repeat {r + 1}: add one {adds[-1]['wall']:.2f} s, full {fulls[-1]['wall']:.2f} s",
              flush=True)
    for got in adds:
        if "9 of 9 checkpoints evaluated" not in got["log"]:
            sys.exit("the add-one run did not evaluate 9 checkpoints:\n" + got["log"][-2000:])
    med = {k: statistics.median(x[k] for x in adds) for k in ("wall", "cpu")}
    fmed = {k: statistics.median(x[k] for x in fulls) for k in ("wall", "cpu")}
    from benchmarks._record import Printer, record
    from benchmarks.bench_bf16 import cpu_flags

    say = Printer()
    say(f"CPU flags: {' '.join(cpu_flags()) or '(no AVX-512/AMX/bf16 flags)'}")
    say(f"machine load (1-min average) at the end: {os.getloadavg()[0]:.1f} on "
        f"{os.cpu_count()} CPUs (above the CPU count: shared with other work, noisy)")
    what = (f"random-weight seed checkpoints, width {args.width}" if args.width
            else "the example's checkpoints, width 12")
    say(f"example person data (40 held-out pairs + 12 sketches), {args.size} px, {what}: "
        f"{N} checkpoints evaluated, add a 9th; "
        f"{args.repeats} interleaved repeats, medians (first 8-checkpoint run: "
        f"{first['wall']:.1f} s wall)")
    say(f"{'':<26}{'wall s':>9}{'CPU s':>9}")
    say(f"{'full run (9 checkpoints)':<26}{fmed['wall']:>9.2f}{fmed['cpu']:>9.2f}")
    say(f"{'add one (8 evaluated)':<26}{med['wall']:>9.2f}{med['cpu']:>9.2f}")
    for what in ("wall", "cpu"):
        ratio = med[what] / fmed[what]
        verdict = "meets" if ratio <= TARGET else "MISSES"
        say(f"add one / full ({what}): {ratio:.3f} (target <= 1.2/{N} = {TARGET:.3f}: "
            f"{verdict}); per repeat "
            + ", ".join(f"{a[what] / f[what]:.3f}" for a, f in zip(adds, fulls, strict=True)))
    for phase in ("evaluation", "report"):
        a = statistics.median(x.get(phase, 0.0) for x in adds)
        f = statistics.median(x.get(phase, 0.0) for x in fulls)
        say(f"  {phase:<12} add one {a:6.2f} s, full {f:6.2f} s")
    rest_a = med["wall"] - statistics.median(x.get("evaluation", 0) + x.get("report", 0)
                                             for x in adds)
    say(f"  {'rest':<12} add one {rest_a:6.2f} s (interpreter, imports, data loading, table)")
    if args.record:
        cmd = "benchmarks/bench_add_one.py " + " ".join(sys.argv[1:])
        name, title = "bench_add_one", "Adding one checkpoint to 8 evaluated ones"
        if args.width or args.size != 64:
            name += f"_{args.size}_w{args.width or 12}"
            title += f" at {args.size} px, width {args.width or 12}"
        say(f"recorded in {record(name, title, cmd.strip(), say.text)}")
    shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
