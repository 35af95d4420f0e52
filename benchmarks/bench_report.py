"""How long ``evalkit report`` takes (issue 25 part 2: reports in seconds).

Builds (once; ``--keep DIR`` reuses it) an evaluation of **8 domains x 24 checkpoints** of
tiny seed generators (width 4, 32 px, 4 held-out pairs and 3 sketches per domain, the seed's
layout: ``checkpoints/<domain>/ckpt-N``, ``heldout/<domain>/``, one sketch set), evaluated
with ``evalkit run --no-report``: ``out23`` with 23 checkpoints in domain ``d0``, then
``out24``, a copy of it to which ``d0/ckpt-24`` was added and evaluated. Then, each a fresh
``evalkit report`` process, interleaved ``--repeats`` times (medians):

* **from scratch**: ``out24`` without any report folder (nothing cached, no kept folder
  tree);
* **unchanged**: ``out24`` again, its report (and the report's cache) already there;
* **one checkpoint added**: ``out24`` with the report folder that was rendered from
  ``out23`` (restored before each repeat): only what shows ``d0/ckpt-24`` is drawn again;
* **example, from scratch**: ``evalkit demo``'s folder (2 domains, 14 checkpoints), its
  report folder (and kept folder tree) removed first.

Each line prints wall seconds, CPU seconds (user + system of the process), the target and
measured/target; the machine's 1-minute load average is printed with them (the machine is
shared: above its CPU count the wall times are noisy). Targets: one checkpoint added <= 3 s
at 8 x 24, the example from scratch <= 10 s.

Usage: ``.venv/bin/python benchmarks/bench_report.py [--keep DIR] [--repeats 3] [--record]``
"""

from __future__ import annotations

import argparse
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
DOMAINS = 8
CHECKPOINTS = 24
SIZE = 32
TARGET_ADDED_S = 3.0
TARGET_EXAMPLE_S = 10.0


def env(base: Path) -> dict:
    """Offline, as in CI: fid/kid/lpips skipped (their weights folders are empty)."""
    empty = base / "no-weights"
    empty.mkdir(parents=True, exist_ok=True)
    return {**os.environ, "PYTHONPATH": str(ROOT), "TORCH_HOME": str(empty),
            "EVALKIT_WEIGHTS_DIR": str(empty)}


def evalkit(args: list[str], base: Path) -> tuple[float, float]:
    """Run ``evalkit ARGS`` in a fresh process; returns (wall s, CPU s user+system)."""
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "evalkit.cli", *args], env=env(base),
                          cwd=ROOT, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        sys.exit(f"evalkit {' '.join(args)} failed (exit {proc.returncode}):\n"
                 f"{proc.stderr[-3000:]}")
    return wall, (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)


def _sketches(root: Path, domains: list[str], per_domain: int = 3) -> None:
    """One multi-domain sketch set (simple strokes) with its manifest: the tests' own."""
    from tests.test_domains import _sketch_set

    _sketch_set(root, per_domain, domains, provenance="benchmark strokes")


def build(base: Path) -> tuple[Path, Path]:
    """``base/out23`` and ``base/out24`` (see the module docstring); reused when there."""
    out23, out24 = base / "out23", base / "out24"
    if (out24 / "results.sqlite").is_file() and (base / "out23.done").is_file():
        return out23, out24
    sys.path.insert(0, str(ROOT))
    from tests.conftest import make_ab_folder
    from tests.seed_reference import save_seed_checkpoint

    svc = base / "service"
    shutil.rmtree(svc, ignore_errors=True)
    shutil.rmtree(out23, ignore_errors=True)
    shutil.rmtree(out24, ignore_errors=True)
    domains = [f"d{k}" for k in range(DOMAINS)]
    spare = base / "spare"
    shutil.rmtree(spare, ignore_errors=True)
    for k, d in enumerate(domains):
        folder = (svc / "checkpoints" / d) if k else spare
        folder.mkdir(parents=True)
        save_seed_checkpoint(folder, n=CHECKPOINTS, hidden=4, seed=100 * k)
        make_ab_folder(svc / "heldout" / d, n=4, half=SIZE, seed=k)
    _sketches(svc / "sketches", domains)
    d0 = svc / "checkpoints" / "d0"
    d0.mkdir(parents=True)
    last = f"ckpt-{CHECKPOINTS}."
    for f in spare.iterdir():  # d0 starts with 23: ckpt-24 is added later
        if f.name.startswith("ckpt-") and not f.name.startswith(last):
            shutil.copy2(f, d0 / f.name)
    run = ["run", str(svc / "checkpoints"), "--heldout", str(svc / "heldout"), "--sketches",
           str(svc / "sketches"), "--image-size", str(SIZE), "--quiet", "--no-report"]
    print(f"evaluating {DOMAINS} domains x {CHECKPOINTS - 1}..{CHECKPOINTS} checkpoints "
          "(once; --keep reuses it) ...", flush=True)
    w, _ = evalkit([*run, "--out", str(out23)], base)
    shutil.copytree(out23, out24)
    for f in spare.iterdir():
        if f.name.startswith(last):
            shutil.copy2(f, d0 / f.name)
    w2, _ = evalkit([*run, "--out", str(out24)], base)
    print(f"  evaluated in {w:.0f} s, + one checkpoint in {w2:.0f} s", flush=True)
    (base / "out23.done").write_text("")
    return out23, out24


def example(base: Path) -> Path:
    """``evalkit demo``'s folder (evaluated once; reused with --keep)."""
    out = base / "demo"
    if not (out / "results.sqlite").is_file():
        print("evaluating the example (evalkit demo, once) ...", flush=True)
        evalkit(["demo", "--out", str(out), "--quiet"], base)
    return out


def scratch(out: Path) -> None:
    """No previous report: its folder and the kept folder tree removed."""
    from evalkit.present.report.cache import dirs_folder

    shutil.rmtree(out / "report", ignore_errors=True)
    shutil.rmtree(dirs_folder(out / "report"), ignore_errors=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--keep", type=Path, help="Build into (and reuse) this folder.")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--record", action="store_true", help="write into reports/benchmarks.md")
    args = ap.parse_args()
    sys.path.insert(0, str(ROOT))
    base = Path(args.keep or tempfile.mkdtemp(prefix="bench-report-")).resolve()
    base.mkdir(parents=True, exist_ok=True)
    out23, out24 = build(base)
    demo = example(base)
    # the report of the 23-checkpoint state, restored before each "one added" repeat
    before = base / "report23"
    scratch(out23)
    evalkit(["report", str(out23)], base)
    shutil.rmtree(before, ignore_errors=True)
    shutil.copytree(out23 / "report", before)

    times: dict[str, list[tuple[float, float]]] = {k: [] for k in
                                                   ("scratch", "unchanged", "added", "example")}
    for _ in range(args.repeats):
        scratch(out24)
        times["scratch"].append(evalkit(["report", str(out24)], base))
        times["unchanged"].append(evalkit(["report", str(out24)], base))
        shutil.rmtree(out24 / "report")
        shutil.copytree(before, out24 / "report")
        times["added"].append(evalkit(["report", str(out24)], base))
        scratch(demo)
        times["example"].append(evalkit(["report", str(demo)], base))
    load = os.getloadavg()[0]

    from benchmarks._record import Printer, record
    from benchmarks.bench_bf16 import cpu_flags

    say = Printer()
    say(f"evalkit report, fresh process each, median of {args.repeats} interleaved repeats; "
        f"1-min load average {load:.1f} on {os.cpu_count()} CPUs (above the CPU count: "
        f"shared, noisy); CPU flags: {' '.join(cpu_flags()) or '-'}")
    say("CPU s = user + system of the report process (less sensitive to other work); "
        "/scratch = CPU s against the same report from scratch")
    say(f"{'report of':<44}{'wall s':>8}{'CPU s':>8}{'/scratch':>9}{'target s':>10}"
        f"{'wall/target':>13}{'CPU/target':>12}")
    scratch_cpu = statistics.median(t[1] for t in times["scratch"])
    rows = [("scratch", f"{DOMAINS} x {CHECKPOINTS}, from scratch", None),
            ("unchanged", f"{DOMAINS} x {CHECKPOINTS}, unchanged", None),
            ("added", f"{DOMAINS} x {CHECKPOINTS}, one checkpoint added", TARGET_ADDED_S),
            ("example", "example (2 x 7), from scratch", TARGET_EXAMPLE_S)]
    ok = True
    for key, label, target in rows:
        wall = statistics.median(t[0] for t in times[key])
        cpu = statistics.median(t[1] for t in times[key])
        rel = f"{cpu / scratch_cpu:>9.2f}" if key in ("unchanged", "added") else f"{'–':>9}"
        if target is None:
            say(f"{label:<44}{wall:>8.2f}{cpu:>8.2f}{rel}{'–':>10}{'–':>13}{'–':>12}")
            continue
        ok &= wall <= target
        say(f"{label:<44}{wall:>8.2f}{cpu:>8.2f}{rel}{target:>10.1f}{wall / target:>13.2f}"
            f"{cpu / target:>12.2f}{'' if wall <= target else '  MISSES (wall)'}")
    for key, _, _ in rows:
        say(f"  {key}: " + ", ".join(f"{w:.2f}/{c:.2f}" for w, c in times[key])
            + " s (wall/CPU per repeat)")
    say(f"targets {'met' if ok else 'NOT met'}")
    if args.record:
        cmd = "benchmarks/bench_report.py " + " ".join(sys.argv[1:])
        say(f"recorded in {record('bench_report', 'Report rendering (issue 25 part 2)', cmd.strip(), say.text)}")
    if not args.keep:
        shutil.rmtree(base, ignore_errors=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
