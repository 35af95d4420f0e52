"""Peak memory of a full ``evalkit run`` at 200 and at 2,000 held-out pairs.

Issue 13's target: datasets stream in chunks from disk through generation and per-sample
metrics (features and per-sample values accumulate, images do not), so the peak resident
memory (RSS) at 2,000 pairs is within 10 % of the peak at 200.

Builds one seed-layout checkpoint (``--width``, random weights) and held-out AB pairs at
``--size`` px (the same procedural pairs as ``bench_run.py``), then runs the real command,
``python -m evalkit.cli run RUN --heldout H --out OUT`` (report included), once per size in
a fresh process, and reads that process's own peak RSS (``ru_maxrss`` from ``wait4``).
FID/KID use torch-fidelity's Inception-v3 with random weights as a TorchScript extractor
(the standard weights cannot be downloaded here; same network, same memory); ``--fast``
uses a tiny extractor instead. ``--in-memory`` adds the same two runs with streaming off
(``EVALKIT_SPILL_MB`` very large: every array in memory, as before streaming), side by side.

``--race K`` measures ``evalkit run --race`` of K random-weight checkpoints instead (the
race's incremental outputs and its leaders' full data stream the same way).

Prints each run's peak RSS (MiB), wall time, and the 2,000 / 200 ratio; ``--record`` writes
the output into reports/benchmarks.md.

Usage: ``.venv/bin/python benchmarks/bench_memory.py [--small 200 --large 2000 --repeats N --record]``
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks._record import Printer  # noqa: E402

TARGET = 0.10  # the bound on (peak at large / peak at small) - 1


def build(base: Path, n: int, size: int, width: int, checkpoints: int = 1
          ) -> tuple[Path, Path]:
    from tests.conftest import make_ab_folder
    from tests.seed_reference import save_seed_checkpoint

    run = base / ("run" if checkpoints == 1 else f"run-{checkpoints}")
    if not run.is_dir():
        run.mkdir(parents=True)
        save_seed_checkpoint(run, n=checkpoints, hidden=width)
    held = base / f"heldout-{n}"
    if not held.is_dir():
        make_ab_folder(held, n=n, half=size, fmt="jpg")
    return run, held


def extractor(base: Path, size: int, fast: bool) -> Path:
    path = base / ("tiny.pt" if fast else "inception-random.pt")
    if path.is_file():
        return path
    if fast:
        from tests.test_tracks_e2e import _extractor

        return _extractor(path)
    from benchmarks.bench_run import inception_torchscript

    return inception_torchscript(path, size)


def peak_rss(cmd: list[str], env: dict[str, str]) -> tuple[float, float, int, str]:
    """(peak RSS in MiB, wall seconds, exit code, stderr tail) of one command."""
    t0 = time.perf_counter()
    with tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        err.seek(0)
        tail = err.read().decode(errors="replace")[-2000:]
    return usage.ru_maxrss / 1024, time.perf_counter() - t0, proc.returncode, tail


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--small", type=int, default=200)
    ap.add_argument("--large", type=int, default=2000)
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--width", type=int, default=8, help="generator width (memory of the "
                    "data, not of the model, is measured; 8 keeps 2,000 images quick)")
    ap.add_argument("--fast", action="store_true", help="tiny feature extractor")
    ap.add_argument("--in-memory", action="store_true",
                    help="also run both sizes with streaming off, for comparison")
    ap.add_argument("--race", type=int, default=0, metavar="K",
                    help="instead: `evalkit run --race` of K checkpoints (racing's own "
                         "outputs are kept on disk too)")
    ap.add_argument("--repeats", type=int, default=1,
                    help="interleaved runs per size; the peak per size is their median "
                         "(peak RSS varies from run to run with allocation patterns)")
    ap.add_argument("--keep", type=Path, help="work folder to keep (reuses built data)")
    ap.add_argument("--record", action="store_true", help="write into reports/benchmarks.md")
    args = ap.parse_args()
    base = args.keep or Path(tempfile.mkdtemp(prefix="bench-memory-"))
    base.mkdir(parents=True, exist_ok=True)
    say = Printer()  # prints, and keeps the lines for --record

    try:
        ext = extractor(base, args.size, args.fast)
        modes = [("streamed", None)] + ([("in memory", "1000000")] if args.in_memory else [])
        k = max(1, args.race)
        say(f"evalkit run{' --race' if args.race else ''}: {k} checkpoint(s) (width "
            f"{args.width}), held-out pairs at "
            f"{args.size}x{args.size}, FID/KID with "
            f"{'a tiny extractor' if args.fast else 'Inception-v3 (random weights)'}, "
            "report included; peak RSS of the evalkit process")
        say(f"{'mode':<11}{'pairs':>7}{'peak RSS MiB':>14}{'wall s':>9}")
        peaks: dict[tuple[str, int], list[float]] = {}
        for label, spill in modes:
            for n in [m for _ in range(args.repeats) for m in (args.small, args.large)]:
                run, held = build(base, n, args.size, args.width, k)
                out = base / f"out-{label.replace(' ', '-')}-{n}"
                shutil.rmtree(out, ignore_errors=True)
                env = {**os.environ, "PYTHONPATH": str(ROOT)}
                env.pop("EVALKIT_SPILL_MB", None)
                if spill:
                    env["EVALKIT_SPILL_MB"] = spill
                cmd = [sys.executable, "-m", "evalkit.cli", "run", str(run), "--heldout",
                       str(held), "--out", str(out), "--image-size", str(args.size),
                       "--feature-extractor", str(ext)] + (["--race"] if args.race else [])
                rss, wall, code, tail = peak_rss(cmd, env)
                if code != 0:
                    sys.exit(f"evalkit run failed (exit {code}) on {n} pairs:\n{tail}")
                peaks.setdefault((label, n), []).append(rss)
                say(f"{label:<11}{n:>7}{rss:>14.0f}{wall:>9.0f}")
        for label, _ in modes:
            ratio = (statistics.median(peaks[(label, args.large)])
                     / statistics.median(peaks[(label, args.small)]))
            verdict = ("" if label != "streamed" else
                       f"  (target <= {1 + TARGET:.2f}: "
                       f"{'met' if ratio <= 1 + TARGET else 'NOT met'})")
            med = f" (medians of {args.repeats} runs each)" if args.repeats > 1 else ""
            say(f"{label}: peak at {args.large} / peak at {args.small} = {ratio:.3f}{med}"
                f"{verdict}")
    finally:
        if not args.keep:
            shutil.rmtree(base, ignore_errors=True)
    if args.record:
        from benchmarks._record import record

        cmd = "benchmarks/bench_memory.py" + (" --in-memory" if args.in_memory else "") + (
            " --fast" if args.fast else "") + (f" --race {args.race}" if args.race else "") + (
            f" --repeats {args.repeats}" if args.repeats > 1 else "")
        if args.race:
            record("bench_memory_race", "Peak memory vs data size, racing "
                   f"({args.race} checkpoints)", cmd, say.text)
        else:
            record("bench_memory", "Peak memory vs data size (streaming datasets)", cmd,
                   say.text)


if __name__ == "__main__":
    main()
