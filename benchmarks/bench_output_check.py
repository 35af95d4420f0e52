"""What checking cached outputs costs an unchanged re-run: full sha256 vs the keyed check.

Builds a seed-format run (``--checkpoints`` tiny checkpoints, hidden width 8, and
``--pairs`` held-out pairs) evaluated at ``--size`` px, offline, then:

* times the first ``evalkit run`` and two unchanged re-runs (each its own process; the
  first re-run records the stat keys, the second is the steady state);
* times, in this process, one pass of the check over every cached output folder, as an
  unchanged re-run does it (:class:`evalkit.store.outputs.CheckedFolder`), in both modes:
  ``full`` (``EVALKIT_OUTPUT_CHECK=full``: sha256 of every PNG) and ``keyed`` (one
  ``fstat`` per PNG against ``.checked.json``). Median of 3 passes; the files are in the
  page cache (a re-run just read them), so the hashing is CPU-bound.

The issue's rule: if full hashing costs more than 2 % of an unchanged re-run, key the check.

Usage: ``.venv/bin/python benchmarks/bench_output_check.py [--size 256] [--record]``
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _evalkit(args: list[str], env: dict) -> float:
    t0 = time.perf_counter()
    p = subprocess.run([sys.executable, "-m", "evalkit.cli", *args], env=env, cwd=ROOT,
                       capture_output=True, text=True)
    if p.returncode != 0:
        sys.exit(f"evalkit {' '.join(args)} failed ({p.returncode}):\n{p.stderr[-3000:]}")
    return time.perf_counter() - t0


def _check_pass(folders: list[Path]) -> float:
    from evalkit.store.outputs import CheckedFolder

    t0 = time.perf_counter()
    for f in folders:
        c = CheckedFolder(f)
        assert not c.problems(), f
        c.save_keys()
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--checkpoints", type=int, default=3)
    ap.add_argument("--pairs", type=int, default=60)
    ap.add_argument("--record", action="store_true", help="write reports/benchmarks.md")
    args = ap.parse_args()
    sys.path.insert(0, str(ROOT))
    from benchmarks._record import Printer, record
    from tests.conftest import make_ab_folder
    from tests.seed_reference import save_seed_checkpoint

    say = Printer()
    base = Path(tempfile.mkdtemp(prefix="bench-outcheck-"))
    empty = base / "no-weights"
    empty.mkdir()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TORCH_HOME": str(empty),
           "EVALKIT_WEIGHTS_DIR": str(empty)}
    env.pop("EVALKIT_OUTPUT_CHECK", None)
    (base / "ck").mkdir()
    save_seed_checkpoint(base / "ck", n=args.checkpoints, hidden=8)
    make_ab_folder(base / "heldout", n=args.pairs, half=args.size, seed=0)
    cmd = ["run", str(base / "ck"), "--heldout", str(base / "heldout"), "--out",
           str(base / "out"), "--image-size", str(args.size), "--quiet", "--no-report"]
    first = _evalkit(cmd, env)
    time.sleep(2.5)  # past SETTLE_NS: the first re-run may record keys
    rerun1 = _evalkit(cmd, env)
    rerun2 = _evalkit(cmd, env)
    rerun_full = _evalkit(cmd, {**env, "EVALKIT_OUTPUT_CHECK": "full"})
    folders = sorted(p.parent for p in (base / "out" / "outputs").glob("*/*/manifest.json"))
    pngs = [p for f in folders for p in f.glob("*.png")]
    mb = sum(p.stat().st_size for p in pngs) / 2**20
    os.environ["EVALKIT_OUTPUT_CHECK"] = "full"
    full = statistics.median(_check_pass(folders) for _ in range(3))
    os.environ.pop("EVALKIT_OUTPUT_CHECK")
    keyed = statistics.median(_check_pass(folders) for _ in range(3))
    say(f"{args.checkpoints} checkpoints x ({args.pairs} held-out pairs"
        f") at {args.size} px: "
        f"{len(pngs)} cached PNGs, {mb:.1f} MiB")
    say(f"first run                                 {first:8.2f} s")
    say(f"unchanged re-run (keys recorded here)     {rerun1:8.2f} s")
    say(f"unchanged re-run (steady, keyed check)    {rerun2:8.2f} s")
    say(f"unchanged re-run, EVALKIT_OUTPUT_CHECK=full {rerun_full:6.2f} s")
    say(f"check pass, full sha256 of every PNG      {full:8.3f} s = "
        f"{100 * full / rerun2:.2f} % of the steady re-run")
    say(f"check pass, keyed (fstat per PNG)         {keyed:8.3f} s = "
        f"{100 * keyed / rerun2:.2f} % of the steady re-run")
    say(f"full / keyed: {full / keyed:.1f}x")
    if args.record:
        c = "python benchmarks/bench_output_check.py" + (
            f" --size {args.size}" if args.size != 256 else "")
        print("recorded in", record("bench_output_check", "Checking cached outputs on an "
                                    "unchanged re-run: full sha256 vs keyed", c, say.text))


if __name__ == "__main__":
    main()
